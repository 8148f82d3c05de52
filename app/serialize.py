"""Tensors to JSON: orjson with its NumPy support, or float16 bytes in base64.

The standard ``json`` module is never used for tensors: 3.2 million floats take it about
2 s, orjson about 0.15 s, and float16 base64 about 20 ms (a quarter of the bytes).
Non-finite values (NaN, +-inf) become ``null`` in JSON; in f16 they keep their IEEE
bit patterns, and values beyond +-65504 become +-inf.

The f16 text of a large tensor is made in chunks shared between the calling thread and a
helper thread: NumPy's float32 -> float16 cast releases the GIL, so one thread casts a
chunk while the other base64-encodes the previous one (``binascii`` holds the GIL). The
text is kept with its quoted JSON form (``Base64Data.json``), which ``dumps`` copies into
the response as an ``orjson.Fragment`` instead of scanning megabytes of text for
characters to escape.
"""

from __future__ import annotations

import base64
import binascii
import itertools
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

# Values per chunk: 3 * 2**17 float16 values are 786,432 bytes, a multiple of 3, so the base64
# of consecutive chunks concatenates into exactly the base64 of the whole (no '=' inside).
# Few large chunks: on a busy machine every hand-over of the GIL between the two threads can
# wait for the OS scheduler, and smaller chunks (more hand-overs) were slower there.
CHUNK_VALUES = 3 * 2**17
# Below two chunks one thread does it all (under 10 ms).
PARALLEL_MIN_VALUES = 2 * CHUNK_VALUES
_HELPERS = max(1, min(3, (os.cpu_count() or 2) - 1))
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


def _f16_pieces(flat: np.ndarray) -> list[bytes]:
    """The base64 of ``flat`` as little-endian float16, in pieces to be joined."""
    n = flat.size
    half = np.empty(n, "<f2")
    raw = memoryview(half).cast("B")
    starts = range(0, n, CHUNK_VALUES)
    pieces: list[bytes] = [b""] * len(starts)
    claim = itertools.count()
    lock = threading.Lock()

    def work() -> None:
        # errstate is per thread: overflow to inf is documented, not a warning.
        with np.errstate(over="ignore"):
            while True:
                with lock:
                    i = next(claim)
                if i >= len(starts):
                    return
                lo = starts[i]
                hi = min(lo + CHUNK_VALUES, n)
                half[lo:hi] = flat[lo:hi]  # the cast; releases the GIL
                pieces[i] = binascii.b2a_base64(raw[2 * lo : 2 * hi], newline=False)

    if n < PARALLEL_MIN_VALUES:
        work()
        return pieces
    pool = _helper_pool()
    helpers = [pool.submit(work) for _ in range(_HELPERS)]
    try:
        work()  # the caller works too, so it never waits for a helper that is busy elsewhere
    finally:
        for future in helpers:
            # A helper still queued behind another request's work has nothing left to do.
            if not future.cancel():
                future.result()
    return pieces


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
