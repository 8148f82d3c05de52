"""orjson rendering and the float16 encoding."""

from __future__ import annotations

import base64
import enum
import threading
import warnings
from collections import OrderedDict, defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import orjson
import pytest

from app.serialize import (
    CHUNK_VALUES,
    PARALLEL_MIN_VALUES,
    decode_f16,
    dumps,
    encode_f16,
    encode_tensor,
)


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


def _reference_f16(values: np.ndarray) -> str:
    with np.errstate(over="ignore"):
        return base64.b64encode(values.reshape(-1).astype("<f2").tobytes()).decode("ascii")


def _awkward(n: int, seed: int) -> np.ndarray:
    """n float32 values with every kind of special case sprinkled in."""
    rng = np.random.default_rng(seed)
    values = (rng.normal(size=n) * 3e4).astype(np.float32)
    specials = np.array(
        [np.nan, np.inf, -np.inf, 65504.0, 65520.0, -1e6, 7e4, 6e-8, -3e-8, 1e-45, -0.0, 0.0],
        np.float32,
    )
    nan_payloads = np.array([0x7F800001, 0xFFC00123, 0x7FFFE000], np.uint32).view(np.float32)
    for k, v in enumerate(np.concatenate([specials, nan_payloads])):
        values[k % max(n, 1) :: 97 + k] = v
    return values


@pytest.mark.parametrize(
    "n",
    [
        0,
        1,
        2,
        3,
        4,
        5,  # 10 bytes: base64 padding '=='
        7,  # 14 bytes: padding '='
        CHUNK_VALUES - 1,
        CHUNK_VALUES + 1,
        PARALLEL_MIN_VALUES - 1,  # the last size done on one thread
        PARALLEL_MIN_VALUES,
        3 * PARALLEL_MIN_VALUES + 5,  # several chunks per thread, an odd tail
    ],
)
def test_f16_is_bit_identical_to_numpy_half_in_base64(n):
    values = _awkward(n, seed=n)
    data = encode_tensor(values, "f16")
    assert isinstance(data, str)
    assert data == _reference_f16(values)
    # through the JSON renderer too: the same text, properly quoted
    assert orjson.loads(dumps({"data": data, "n": n})) == {"data": data, "n": n}


def test_f16_of_non_contiguous_and_float64_arrays():
    values = _awkward(6 * 7 * 11, seed=3).reshape(6, 7, 11).transpose(2, 0, 1)[:, ::2]
    assert encode_f16(values) == _reference_f16(np.ascontiguousarray(values))
    doubles = np.array([1e300, -1e-300, 0.1, np.nan], np.float64)
    with np.errstate(over="ignore"):
        assert encode_f16(doubles) == _reference_f16(doubles.astype(np.float32))


def test_f16_overflow_warns_on_no_thread():
    values = np.full(PARALLEL_MIN_VALUES + 3, 1e6, np.float32)  # the threaded path
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = encode_f16(values)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert np.all(decode_f16(data, values.shape) == np.inf)


def test_f16_from_many_threads_at_once():
    arrays = [_awkward(PARALLEL_MIN_VALUES + 11 * k, seed=k) for k in range(6)]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(encode_f16, arrays))
    assert results == [_reference_f16(a) for a in arrays]


def test_dumps_keeps_subclasses_of_json_types_as_before():
    class Name(str):
        pass

    class Count(int):
        pass

    class Level(enum.IntEnum):
        HIGH = 3

    content = {
        "name": Name('a "quoted" name'),
        "n": Count(7),
        "flag": True,
        "level": Level.HIGH,
        "ordered": OrderedDict(b=1, a=[Name("x")]),
        "counts": defaultdict(int, {"k": 2}),
    }
    assert orjson.loads(dumps(content)) == {
        "name": 'a "quoted" name',
        "n": 7,
        "flag": True,
        "level": 3,
        "ordered": {"b": 1, "a": ["x"]},
        "counts": {"k": 2},
    }
    with pytest.raises(TypeError):
        dumps({"x": object()})


def _recording_cast(monkeypatch, wait_for_helper: bool) -> list[tuple[int, int, int]]:
    """Replace serialize._cast by one that records (thread, lo, hi); with wait_for_helper the
    caller's cast waits until another thread has started one."""
    import app.serialize as serialize

    real = serialize._cast
    caller = threading.get_ident()
    helper_started = threading.Event()
    calls: list[tuple[int, int, int]] = []

    def cast(flat, half, lo, hi):
        calls.append((threading.get_ident(), lo, hi))
        if threading.get_ident() != caller:
            helper_started.set()
        elif wait_for_helper:
            assert helper_started.wait(10), "no helper thread cast a part"
        real(flat, half, lo, hi)

    monkeypatch.setattr(serialize, "_cast", cast)
    return calls


def test_large_f16_is_cast_partly_by_a_helper_thread(monkeypatch):
    values = _awkward(PARALLEL_MIN_VALUES + 1, seed=5)
    expected = _reference_f16(values)
    calls = _recording_cast(monkeypatch, wait_for_helper=True)
    assert encode_f16(values) == expected
    assert len({thread for thread, _, _ in calls}) == 2
    assert sorted((lo, hi) for _, lo, hi in calls) == [
        (0, CHUNK_VALUES),
        (CHUNK_VALUES, values.size),
    ]


def test_large_f16_does_not_wait_for_a_busy_helper(monkeypatch):
    """With every helper thread busy elsewhere, the caller casts the helper's part itself
    instead of waiting."""
    import app.serialize as serialize

    pool = serialize._helper_pool()
    release = threading.Event()
    blockers = [pool.submit(release.wait, 30) for _ in range(serialize._HELPERS)]
    try:
        values = _awkward(3 * PARALLEL_MIN_VALUES, seed=6)
        expected = _reference_f16(values)
        calls = _recording_cast(monkeypatch, wait_for_helper=False)
        assert encode_f16(values) == expected
        assert {thread for thread, _, _ in calls} == {threading.get_ident()}
        assert not release.is_set() and not any(b.done() for b in blockers)
    finally:
        release.set()
