"""orjson rendering and the float16 encoding."""

from __future__ import annotations

import base64

import numpy as np
import orjson

from app.serialize import decode_f16, dumps, encode_tensor


def test_json_floats_round_trip_exactly_and_non_finite_is_null():
    values = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    decoded = orjson.loads(dumps({"data": encode_tensor(values)}))["data"]
    np.testing.assert_array_equal(np.array(decoded, np.float32).reshape(4, 5), values)
    special = orjson.loads(
        dumps({"a": np.array([np.nan, np.inf, -np.inf, 1.5], np.float32), "b": float("nan")})
    )
    assert special == {"a": [None, None, None, 1.5], "b": None}


def test_f16_is_little_endian_half_floats():
    values = np.array([[1.0, -2.5], [65504.0, 1e-3]], np.float32)
    data = encode_tensor(values, "f16")
    raw = base64.b64decode(data)
    assert len(raw) == 8 and raw[:2] == b"\x00\x3c"  # 1.0 is 0x3C00, low byte first
    decoded = decode_f16(data, (2, 2))
    np.testing.assert_allclose(decoded, values, rtol=2**-11)


def test_f16_overflow_becomes_infinity_without_warning(recwarn):
    decoded = decode_f16(encode_tensor(np.array([1e6, -1e6, np.nan], np.float32), "f16"), (3,))
    assert decoded[0] == np.inf and decoded[1] == -np.inf and np.isnan(decoded[2])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_non_contiguous_arrays_are_flattened_row_major():
    values = np.arange(12, dtype=np.float32).reshape(3, 4).T  # a transposed view
    assert orjson.loads(dumps(encode_tensor(values))) == values.reshape(-1).tolist()
