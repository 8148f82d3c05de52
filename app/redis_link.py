"""The Redis connection of one server process, when ``CONVSCOPE_REDIS_URL`` is set.

Several server processes (on one machine or many) then share runs and classroom
sessions through one Redis: see docs/deploy.md. Commands are short (a few keys each), so
they use the synchronous client with short timeouts, from the worker threads and, for
the classroom, from the event loop itself; only the classroom's event subscription uses
the asyncio client. Every command that fails because Redis is unreachable becomes
:class:`StoreUnavailable`, a 503 that tells the client to retry: nothing waits for Redis
longer than the timeouts below, and the next request reconnects by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import ApiError

__all__ = ["RedisLink", "StoreUnavailable", "REDIS_ERRORS"]

T = TypeVar("T")
log = logging.getLogger("convscope.redis")
# A loopback or LAN command takes well under a millisecond; these bound a dead or stalled
# server. Some commands run on the event loop, so a stall must cost little and rarely.
CONNECT_TIMEOUT = 0.5
COMMAND_TIMEOUT = 0.5
# After a failure, commands fail at once for this long instead of each waiting for the
# timeouts; then one command tries again (or the subscription finds Redis back first).
COOL_DOWN = 2.0
# Connection loss, timeouts, and Redis refusing writes (out of memory, read-only replica,
# loading its data, disk errors): all mean "try again later" to a client.
REDIS_ERRORS = (redis.RedisError, OSError)


class StoreUnavailable(ApiError):
    """Redis cannot be reached: a 503 with Retry-After."""

    def __init__(self, retry_after: int = 2) -> None:
        super().__init__(
            503,
            "store_unavailable",
            f"the server's shared store (Redis) cannot be reached; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class RedisLink:
    """A client for ``url``, the key prefix of this deployment, and error mapping."""

    def __init__(self, url: str, prefix: str = "convscope") -> None:
        self.url = url
        self.prefix = prefix
        self._down_until = 0.0
        self._lock = threading.Lock()
        # One attempt, no retries: a caller learns at once that Redis is gone.
        self.client = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )

    def key(self, *parts: str) -> str:
        """``prefix:part:part``: every key of a deployment shares its prefix."""
        return ":".join((self.prefix, *parts))

    @property
    def available(self) -> bool:
        """False while cooling down after a failure."""
        return time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        """Note a failure: commands fail fast for ``COOL_DOWN`` seconds."""
        with self._lock:
            first = self.available
            self._down_until = time.monotonic() + COOL_DOWN
        if first:
            connection = isinstance(exc, (redis.ConnectionError, redis.TimeoutError, OSError))
            log.warning("Redis at %s: %s", self.url_for_logs, exc, exc_info=not connection)

    def recovered(self) -> None:
        """Redis answers again (seen by the subscription): stop failing fast."""
        self._down_until = 0.0

    def call(self, command: Callable[[redis.Redis], T]) -> T:
        """``command(client)``; StoreUnavailable (503) when Redis cannot be reached or
        refuses the command."""
        if not self.available:
            raise StoreUnavailable()
        try:
            return command(self.client)
        except REDIS_ERRORS as exc:
            self.failed(exc)
            raise StoreUnavailable() from exc

    def script(self, source: str) -> Callable[..., Any]:
        """A Lua script run atomically by Redis: ``script(keys=[...], args=[...])``."""
        registered = self.client.register_script(source)

        def run(keys: list[str], args: list[Any]) -> Any:
            return self.call(lambda _client: registered(keys=keys, args=args))

        return run

    def async_client(self) -> redis.asyncio.Redis:
        """A new asyncio client (for subscriptions, which hold their connection)."""
        return redis.asyncio.Redis.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )

    @property
    def url_for_logs(self) -> str:
        """The URL without a password."""
        head, at, tail = self.url.rpartition("@")
        return f"{head.split('//')[0]}//***@{tail}" if at else self.url

    def close(self) -> None:
        self.client.close()
