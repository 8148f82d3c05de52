"""Runs shared by several server processes through Redis.

Redis keeps what cannot be recomputed, the uploaded image's bytes (and its model), under
the run id for ``run_ttl`` seconds; never the activations, which are large and take a few
milliseconds to compute again. A process asked for a run it does not hold computes it
from those bytes, with the same id, and keeps it in its own bounded cache. Identical
uploads to the same model get the same run id on every process.

Keys (prefix from ``CONVSCOPE_REDIS_PREFIX``):
``P:run:ID`` hash {model_id, image}; ``P:runkey:MODEL:SHA256`` -> ID.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from .redis_link import RedisLink, StoreUnavailable
from .runs import Run, RunNotFound, RunStore

__all__ = ["RedisRunStore"]

# The id for an upload: an existing run's when its record is still there, else the new
# one, stored with the image. Atomic, so two processes that receive the same image at the
# same moment agree on one id.
_CLAIM = """
local existing = redis.call('GET', KEYS[1])
if existing then
  local record = ARGV[5] .. existing
  if redis.call('EXISTS', record) == 1 then
    redis.call('EXPIRE', record, ARGV[4])
    redis.call('EXPIRE', KEYS[1], ARGV[4])
    return existing
  end
end
redis.call('HSET', KEYS[2], 'model_id', ARGV[2], 'image', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
return ARGV[1]
"""


class RedisRunStore(RunStore):
    """A :class:`RunStore` whose misses are looked up in Redis and computed again.

    ``recompute(run_id, model_id, image_bytes)`` computes a run (on the worker pool);
    it is set by the app once its run service exists.
    """

    def __init__(self, max_bytes: int, ttl: float, link: RedisLink) -> None:
        super().__init__(max_bytes, ttl)
        self.link = link
        self.recompute: Callable[[str, str, bytes], Run] | None = None
        self._ttl_seconds = max(1, round(ttl))
        self._claim = link.script(_CLAIM)
        # Runs being computed again, so that concurrent requests wait for one computation.
        self._loading: dict[str, Future[Run]] = {}
        self._loading_lock = threading.Lock()
        # When each local run's Redis keys were last refreshed (their TTL is sliding).
        self._refreshed: dict[str, float] = {}
        self._refreshed_lock = threading.Lock()

    def _record(self, run_id: str) -> str:
        return self.link.key("run", run_id)

    def share(self, run: Run, data: bytes) -> Run:
        model_id, digest = run.key
        run.id = self._claim(
            keys=[self._runkey(run), self._record(run.id)],
            args=[run.id, model_id, data, self._ttl_seconds, self.link.key("run", "")],
        ).decode("ascii")
        self._mark_refreshed(run.id)
        return run

    def _runkey(self, run: Run) -> str:
        model_id, digest = run.key
        return self.link.key("runkey", model_id, digest)

    def get(self, run_id: str) -> Run:
        try:
            run = self.held(run_id)
        except RunNotFound:
            return self._load(run_id)
        self._keep_alive(run)
        return run

    def model_of(self, run_id: str) -> str | None:
        try:
            run = self.held(run_id)
        except RunNotFound:
            model_id = self.link.call(lambda r: r.hget(self._record(run_id), "model_id"))
            return model_id.decode("utf-8") if model_id is not None else None
        self._keep_alive(run)
        return run.model_id

    def _mark_refreshed(self, run_id: str) -> None:
        with self._refreshed_lock:
            self._refreshed[run_id] = time.monotonic()
            if len(self._refreshed) > 2 * len(self) + 64:  # forget evicted runs
                self._refreshed = {k: v for k, v in self._refreshed.items() if k in self._runs}

    def _keep_alive(self, run: Run) -> None:
        """Push the expiry of the run's keys back while a process still uses it (at most
        a few times per TTL, so that a page's many tile requests cost no Redis calls).
        Advisory: a run held here keeps answering while Redis is away."""
        with self._refreshed_lock:
            if time.monotonic() - self._refreshed.get(run.id, 0.0) < self.ttl / 10:
                return
        self._mark_refreshed(run.id)

        def refresh(r) -> None:
            pipe = r.pipeline(transaction=False)
            pipe.expire(self._record(run.id), self._ttl_seconds)
            pipe.expire(self._runkey(run), self._ttl_seconds)
            pipe.execute()

        with contextlib.suppress(StoreUnavailable):
            self.link.call(refresh)

    def _load(self, run_id: str) -> Run:
        """Compute a run of another process from its image in Redis (once, however many
        requests ask for it at the same time)."""
        with self._loading_lock:
            pending = self._loading.get(run_id)
            owner = pending is None
            if owner:
                try:  # computed by another request while this one waited for the lock
                    return self.held(run_id)
                except RunNotFound:
                    pending = self._loading[run_id] = Future()
        if not owner:
            return pending.result()
        try:
            fields = self.link.call(lambda r: r.hmget(self._record(run_id), "model_id", "image"))
            model_id, image = fields
            if model_id is None or image is None or self.recompute is None:
                raise RunNotFound(run_id, expired=False)
            run = self.add(self.recompute(run_id, model_id.decode("utf-8"), image))
            self._mark_refreshed(run_id)
            pending.set_result(run)
            return run
        except BaseException as exc:
            pending.set_exception(exc)
            raise
        finally:
            with self._loading_lock:
                self._loading.pop(run_id, None)
