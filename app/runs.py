"""Runs: one image through one model, kept in memory for the pages to explore.

``WorkerPool`` runs the heavy work (decoding, preprocessing, the forward pass, saliency)
on a few threads, never on the event loop, and refuses work beyond a fixed queue so an
overloaded server answers 503 instead of running out of memory. ``RunStore`` keeps the
traces, bounded in bytes, least recently used evicted first, and finds the run of an
identical upload (same model, same image bytes) so it is computed once. ``RunService``
ties them together for the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from engine import preprocess
from engine.model import Sequential, Trace

from .errors import ApiError
from .models import ModelRegistry

__all__ = [
    "Run",
    "RunStore",
    "WorkerPool",
    "RunService",
    "RunNotFound",
    "PoolFull",
    "compute_run",
    "image_key",
    "new_run_id",
]

T = TypeVar("T")
RunKey = tuple[str, str]  # (model id, sha256 of the image bytes)
_REMEMBERED_EVICTIONS = 10_000


@dataclass
class Run:
    """One image's forward pass: every layer's output for that image, and what the pages
    show about it (predictions, per-layer min/max/mean, the input as the model saw it)."""

    id: str
    model_id: str
    key: RunKey
    created: float
    input: np.ndarray  # (C, H, W) normalised, as the model read it
    outputs: dict[str, np.ndarray]  # layer -> (C, H, W) or (features,)
    kinds: dict[str, str]
    display: np.ndarray  # (H, W, 3) uint8
    predictions: list[dict[str, Any]]
    stats: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return (
            self.input.nbytes + self.display.nbytes + sum(a.nbytes for a in self.outputs.values())
        )

    def tensor(self, name: str) -> np.ndarray:
        """A layer's output (or 'input') for this image; KeyError when there is none."""
        return self.input if name == "input" else self.outputs[name]

    def kind(self, name: str) -> str:
        return "input" if name == "input" else self.kinds[name]

    def trace(self) -> Trace:
        """The run as a batch of one, for engine functions that take a Trace."""
        return Trace(self.input[None], {k: v[None] for k, v in self.outputs.items()})

    def layer_stats(self, name: str) -> tuple[float, float, float]:
        """(min, max, mean) of a layer; computed once."""
        if name not in self.stats:
            # The ufuncs' reduce directly: a.min(), a.max() and a.mean() go through NumPy's
            # Python-level wrappers, which cost as much as the arithmetic here (every run
            # takes these for every layer). The sum is NumPy's pairwise float32 sum, as in
            # a.mean(): relative error about 1e-7.
            a = self.tensor(name)
            lo, hi = float(np.minimum.reduce(a, axis=None)), float(np.maximum.reduce(a, axis=None))
            total = float(np.add.reduce(a, axis=None))
            if not math.isfinite(total) and math.isfinite(lo) and math.isfinite(hi):
                # float32 overflowed (NumPy warns once); np.errstate on every call costs more
                total = float(np.add.reduce(a, axis=None, dtype=np.float64))
            self.stats[name] = (lo, hi, total / a.size)
        return self.stats[name]

    def summary(self) -> dict[str, Any]:
        """The RunSummary of the API contract."""
        layers = []
        for name, a in self.outputs.items():
            lo, hi, mean = self.layer_stats(name)
            layers.append(
                {
                    "name": name,
                    "kind": self.kinds[name],
                    "shape": list(a.shape),
                    "min": lo,
                    "max": hi,
                    "mean": mean,
                }
            )
        return {
            "run_id": self.id,
            "model_id": self.model_id,
            "created": datetime.fromtimestamp(self.created, UTC).isoformat().replace("+00:00", "Z"),
            "input": {
                "shape": list(self.input.shape),
                "image_url": f"/api/v1/runs/{self.id}/input.png",
            },
            "predictions": self.predictions,
            "layers": layers,
        }


def _predictions(model: Sequential, trace: Trace) -> list[dict[str, Any]]:
    """Every class with its probability, most probable first (ties keep class order)."""
    scores = trace.output[0].astype(np.float64)
    if model.layers[-1].kind != "softmax":
        scores = np.exp(scores - scores.max())
        scores /= scores.sum()
    order = np.argsort(-scores, kind="stable")
    names = model.classes or [str(i) for i in range(len(scores))]
    return [{"index": int(i), "class": names[i], "probability": float(scores[i])} for i in order]


def new_run_id() -> str:
    """128 random bits, URL-safe: run ids cannot be guessed."""
    return secrets.token_urlsafe(16)


def image_key(model_id: str, data: bytes) -> RunKey:
    return (model_id, hashlib.sha256(data).hexdigest())


def compute_run(
    model_id: str, model: Sequential, data: bytes, max_pixels: int, run_id: str | None = None
) -> Run:
    """Decode, preprocess and run one image (on a worker thread). ``run_id`` names a run
    that another server process created from the same bytes."""
    image = preprocess.open_image(data, max_pixels, size_hint=preprocess.decode_size(model))
    x = preprocess.prepare(image, model)
    trace = model.forward(x[None])
    run = Run(
        id=run_id or new_run_id(),
        model_id=model_id,
        key=image_key(model_id, data),
        created=time.time(),
        input=trace.input[0],
        outputs={name: out[0] for name, out in trace.outputs.items()},
        kinds={layer.name: layer.kind for layer in model.layers},
        display=preprocess.to_display(x, model.input_spec),
        predictions=_predictions(model, trace),
    )
    for name in run.outputs:
        run.layer_stats(name)
    return run


class RunNotFound(ApiError):
    def __init__(self, run_id: str, expired: bool) -> None:
        if expired:
            message = (
                f"run {run_id!r} has expired: the server keeps runs for a limited time and "
                "memory; post the image again to get a new run"
            )
        else:
            message = (
                f"there is no run {run_id!r}: it may have expired or never existed; "
                "post the image again to get a new run"
            )
        super().__init__(404, "run_expired" if expired else "run_not_found", message)


class RunStore:
    """Runs by id, bounded in bytes (least recently used evicted first) and in idle time.
    Thread-safe: sync handlers read it from the server's thread pool."""

    def __init__(
        self, max_bytes: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._runs: OrderedDict[str, tuple[Run, float]] = OrderedDict()  # id -> (run, last used)
        self._by_key: dict[RunKey, str] = {}
        self._evicted: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._runs)

    def _drop(self, run_id: str) -> None:
        run, _ = self._runs.pop(run_id)
        self._by_key.pop(run.key, None)
        self.nbytes -= run.nbytes
        self.evictions += 1
        self._evicted[run_id] = None
        if len(self._evicted) > _REMEMBERED_EVICTIONS:
            self._evicted.popitem(last=False)

    def _expire(self, now: float) -> None:
        # The least recently used come first, so stop at the first one still fresh.
        while self._runs:
            run_id, (_, used) = next(iter(self._runs.items()))
            if now - used <= self.ttl:
                break
            self._drop(run_id)

    def get(self, run_id: str) -> Run:
        """The run, marked as just used; RunNotFound (404) when evicted, expired or unknown."""
        return self.held(run_id)

    def held(self, run_id: str) -> Run:
        """``get`` from this process's memory only: never computes (a shared store's
        ``get`` may compute a run of another process)."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            entry = self._runs.get(run_id)
            if entry is None:
                raise RunNotFound(run_id, expired=run_id in self._evicted)
            self._runs[run_id] = (entry[0], now)
            self._runs.move_to_end(run_id)
            return entry[0]

    def model_of(self, run_id: str) -> str | None:
        """The model id of a run this server can serve, or None (never computes)."""
        try:
            return self.get(run_id).model_id
        except RunNotFound:
            return None

    def share(self, run: Run, data: bytes) -> Run:
        """Make a new run reachable from the server's other processes; returns it under
        the id they know it by. One process has nothing to share."""
        return run

    def find(self, key: RunKey) -> Run | None:
        """The run of an identical upload, if this process still keeps it (never computes:
        it is called on the event loop)."""
        with self._lock:
            run_id = self._by_key.get(key)
            if run_id is None:
                return None
        try:
            return self.held(run_id)
        except RunNotFound:
            return None

    def add(self, run: Run) -> Run:
        """Keep a run (or return the one already kept for the same upload), evicting the
        least recently used beyond the byte limit; the newest run is always kept."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            existing = self._by_key.get(run.key)
            if existing is not None:
                self._runs.move_to_end(existing)
                return self._runs[existing][0]
            self._runs[run.id] = (run, now)
            self._by_key[run.key] = run.id
            self.nbytes += run.nbytes
            while self.nbytes > self.max_bytes and len(self._runs) > 1:
                self._drop(next(iter(self._runs)))
            return run


class PoolFull(ApiError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            503,
            "server_busy",
            f"the server is busy with other images; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class WorkerPool:
    """A fixed number of threads and a bounded queue in front of them."""

    def __init__(self, workers: int, queue_limit: int, retry_after: int = 1) -> None:
        self.workers = workers
        self._executor: ThreadPoolExecutor | None = None  # made on first use, again after shutdown
        self.capacity = workers + queue_limit
        self.retry_after = retry_after
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        """Jobs running or waiting."""
        return self._admitted

    def _release(self, _future) -> None:
        with self._lock:
            self._admitted -= 1

    def start(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Schedule fn(*args) on a worker; PoolFull (503) when the queue is full."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise PoolFull(self.retry_after)
            self._admitted += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.workers, thread_name_prefix="convscope-worker"
                )
            executor = self._executor
        try:
            future = executor.submit(fn, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return future

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``start``, as an awaitable of the running event loop."""
        return asyncio.wrap_future(self.start(fn, *args))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    def shutdown(self) -> None:
        """Stop the threads (queued jobs are cancelled); a later job starts new ones."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


class RunService:
    """Creates runs: reuses the run of an identical upload, or one being computed, or
    computes a new one on the worker pool."""

    def __init__(
        self, registry: ModelRegistry, store: RunStore, pool: WorkerPool, max_pixels: int
    ) -> None:
        self.registry = registry
        self.store = store
        self.pool = pool
        self.max_pixels = max_pixels
        self._pending: dict[RunKey, asyncio.Future[Run]] = {}  # touched on the event loop only

    def _compute(self, model_id: str, data: bytes) -> Run:
        model = self.registry.get(model_id)  # may load a big model: on the worker, not the loop
        return self.store.share(compute_run(model_id, model, data, self.max_pixels), data)

    def recompute(self, run_id: str, model_id: str, data: bytes) -> Run:
        """The run ``run_id`` of another process, computed again from its image bytes on
        the worker pool; called from a request thread, which waits for it."""

        def work() -> Run:
            model = self.registry.get(model_id)
            return compute_run(model_id, model, data, self.max_pixels, run_id)

        return self.pool.start(work).result()

    async def create(self, model_id: str, data: bytes) -> tuple[Run, bool]:
        """(run, reused): the run of this image, computed now unless an identical upload
        already has one."""
        self.registry.check(model_id)
        key = image_key(model_id, data)
        existing = self.store.find(key)
        if existing is not None:
            return existing, True
        pending = self._pending.get(key)
        if pending is None:
            pending = self.pool.submit(self._compute, model_id, data)
            self._pending[key] = pending
            pending.add_done_callback(lambda f: self._finish(key, f))
            reused = False
        else:
            reused = True
        # shield: a client that disconnects must not cancel the others' computation
        try:
            run = await asyncio.shield(pending)
        except preprocess.ImageError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        return self.store.add(run), reused

    def _finish(self, key: RunKey, future: asyncio.Future[Run]) -> None:
        self._pending.pop(key, None)
        if not future.cancelled() and future.exception() is None:
            self.store.add(future.result())
