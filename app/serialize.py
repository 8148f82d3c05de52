"""Tensors to JSON: orjson with its NumPy support, or float16 bytes in base64.

The standard ``json`` module is never used for tensors: 3.2 million floats take it about
2 s, orjson about 0.15 s, and float16 base64 about 20 ms (a quarter of the bytes).
Non-finite values (NaN, +-inf) become ``null`` in JSON; in f16 they keep their IEEE
bit patterns, and values beyond +-65504 become +-inf.

The f16 text of a large tensor is made by two threads: NumPy's float32 -> float16 cast
releases the GIL, so a helper thread casts the last 60% of the values while the calling
thread casts the first 40% and base64-encodes them (``binascii`` holds the GIL), then
encodes the rest. One hand-over each way: on a busy machine every wait for the GIL can
also be a wait for the OS scheduler, and finer-grained sharing (chunks claimed by both
threads) was up to twice as slow as one thread there. The text is kept with its quoted
JSON form (``Base64Data.json``), which ``dumps`` copies into
the response as an ``orjson.Fragment`` instead of scanning megabytes of text for
characters to escape.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import orjson
from fastapi.responses import JSONResponse

__all__ = [
    "Encoding",
    "Base64Data",
    "OrjsonResponse",
    "dumps",
    "encode_tensor",
    "encode_f16",
    "decode_f16",
]

Encoding = Literal["json", "f16"]
# PASSTHROUGH_SUBCLASS sends str subclasses (Base64Data) to _default instead of serialising
# them as text; _default turns every other subclass back into its base type.
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS

# Values per base64 call: 3 * 2**17 float16 values are 786,432 bytes, a multiple of 3, so
# the base64 of consecutive pieces concatenates into exactly the base64 of the whole (no '='
# inside); each call holds the GIL for about 2 ms, so other threads (the event loop) get
# turns in between.
CHUNK_VALUES = 3 * 2**17
# Below this one thread does it all (under 10 ms).
PARALLEL_MIN_VALUES = 2 * CHUNK_VALUES
# The caller's share of the cast: it also base64-encodes everything, the helper only casts.
CALLER_SHARE = 0.4
# One helper per concurrent encoding, up to the cores there are besides the caller's.
_HELPERS = max(1, min(4, (os.cpu_count() or 2) - 1))
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


class Base64Data(str):
    """Base64 text that also keeps its JSON string form, ``json`` (the text in double
    quotes, as bytes), for ``dumps`` to copy verbatim. Otherwise an ordinary ``str``."""

    json: bytes

    @classmethod
    def from_quoted(cls, quoted: bytes) -> Base64Data:
        """From ``b'"' + base64 + b'"'`` (ASCII)."""
        text = cls(memoryview(quoted)[1:-1], "ascii")
        text.json = quoted
        return text


def _default(obj: Any) -> Any:
    if isinstance(obj, Base64Data):
        return orjson.Fragment(obj.json)
    # Subclasses of the JSON types (OPT_PASSTHROUGH_SUBCLASS): serialise as their base type,
    # as orjson does without that option (enums never come here: orjson handles them).
    for base in (str, int, dict, list):
        if isinstance(obj, base):
            return base(obj) if base is not str else str.__str__(obj)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def dumps(content: Any) -> bytes:
    """orjson bytes; NumPy arrays as (nested) lists, NaN and inf as null."""
    return orjson.dumps(content, default=_default, option=_OPTIONS)


class OrjsonResponse(JSONResponse):
    """A JSON response rendered by orjson (the app's default response class)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def _helper_pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(_HELPERS, thread_name_prefix="convscope-f16")
        return _executor


def _cast(flat: np.ndarray, half: np.ndarray, lo: int, hi: int) -> None:
    # errstate is per thread: overflow to inf is documented, not a warning.
    with np.errstate(over="ignore"):
        half[lo:hi] = flat[lo:hi]  # releases the GIL


def _base64(raw: memoryview, lo: int, hi: int) -> list[bytes]:
    """Base64 of values lo..hi (lo a multiple of CHUNK_VALUES or the end), in pieces."""
    return [
        binascii.b2a_base64(raw[2 * i : 2 * min(i + CHUNK_VALUES, hi)], newline=False)
        for i in range(lo, hi, CHUNK_VALUES)
    ]


def _f16_pieces(flat: np.ndarray) -> list[bytes]:
    """The base64 of ``flat`` as little-endian float16, in pieces to be joined."""
    n = flat.size
    half = np.empty(n, "<f2")
    raw = memoryview(half).cast("B")
    if n < PARALLEL_MIN_VALUES:
        _cast(flat, half, 0, n)
        return _base64(raw, 0, n)
    cut = max(1, round(n * CALLER_SHARE / CHUNK_VALUES)) * CHUNK_VALUES
    helper = _helper_pool().submit(_cast, flat, half, cut, n)
    try:
        _cast(flat, half, 0, cut)
        pieces = _base64(raw, 0, cut)
    finally:
        # A helper still queued behind another request's work: cast its part here instead.
        started = not helper.cancel()
    if started:
        helper.result()
    else:
        _cast(flat, half, cut, n)
    return pieces + _base64(raw, cut, n)


def encode_f16(array: np.ndarray) -> Base64Data:
    """Base64 of the little-endian float16 bytes of ``array`` flattened row-major:
    the same text as ``base64.b64encode(array.astype('<f2').tobytes())``."""
    with np.errstate(over="ignore"):  # float64 beyond float32 is inf, as beyond float16
        flat = np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
    return Base64Data.from_quoted(b"".join([b'"', *_f16_pieces(flat), b'"']))


def encode_tensor(array: np.ndarray, encoding: Encoding = "json") -> np.ndarray | Base64Data:
    """Flat row-major ``data``: a float32 array (serialised by orjson) or base64 of
    little-endian float16 bytes (a ``str``)."""
    if encoding == "f16":
        return encode_f16(array)
    return np.ascontiguousarray(array, dtype=np.float32).reshape(-1)


def decode_f16(data: str, shape: list[int] | tuple[int, ...]) -> np.ndarray:
    """The inverse of ``encode_tensor(..., "f16")``, as float32 of ``shape``."""
    values = np.frombuffer(base64.b64decode(data), dtype="<f2").astype(np.float32)
    return values.reshape(shape)
