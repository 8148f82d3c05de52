"""Classroom sessions shared by several server processes through Redis.

Each process keeps a replica of every session it has connections for (the
:class:`~app.live.Session` of one process, with a :class:`RedisBus`). A change (a new
state, an answer, the end, a process's connection count) is written to the session's
record and published on the session's channel by one Lua script, atomically, so the
record and the channel agree and every process receives the changes in the same order.
Each process subscribes once to the channels of all sessions (a pattern) and applies
what it receives to its replicas, which forward it to their own WebSockets.

A replica is loaded from the record when its first connection arrives; the record
outlives any process. When the subscription breaks (Redis restarted, network), the
process reconnects with backoff, reloads every replica and sends each of its followers
the current state, so nobody is left on a stale view.

Keys, under ``P:live:CODE``: the record (hash: token_hash, created, state, seq,
question_id), ``:answers`` (client id -> answer), ``:counts`` (process -> [students,
presenters, time]); the channel ``:events``; and ``P:live:sessions`` (sorted set of
codes by last activity, for the limit on classes at once). Every key expires after the
idle time, pushed back by the presenter's activity and by new connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson

from .errors import ApiError
from .live import (
    Catalog,
    LiveHub,
    LiveLimits,
    Session,
    TooManySessions,
    cancel_task,
    hash_token,
    initial_state,
    new_code,
    normalize_code,
)
from .redis_link import REDIS_ERRORS, RedisLink

__all__ = ["RedisBus", "RedisLiveHub"]

log = logging.getLogger("convscope.redis")

# How often a process repeats its connection counts, and when a silent process's counts
# are forgotten (it crashed without saying goodbye).
HEARTBEAT_SECONDS = 10.0
COUNT_STALE_SECONDS = 3 * HEARTBEAT_SECONDS
# A subscription quiet this long is pinged; without an answer within as long again, it is
# reconnected (a half-open connection would otherwise wait forever).
PING_SECONDS = 5.0
_BACKOFF_MIN, _BACKOFF_MAX = 0.1, 2.0

_CREATE = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[6])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[7]) then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'token_hash', ARGV[1], 'created', ARGV[2], 'state', ARGV[3],
           'seq', 0, 'question_id', 0)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""

# The record takes the new state and the next sequence number, and the event goes out
# with that number, in one step.
_STATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if redis.call('HGET', KEYS[1], 'question_id') ~= ARGV[2] then redis.call('DEL', KEYS[2]) end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'question_id', ARGV[2], 'open', ARGV[8])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('PUBLISH', ARGV[7], '{"seq":' .. seq .. ',' .. string.sub(ARGV[3], 2))
return seq
"""

# Only while that question is open: an answer that arrives after the reveal is refused.
_ANSWER = """
if redis.call('HGET', KEYS[1], 'question_id') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'open') ~= '1' then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
"""

_COUNT = """
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
"""

_END = """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
"""

_TOUCH = """
if redis.call('EXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""


def _json(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


class RedisBus:
    """Publishes the changes of this process's replicas (see the module docstring)."""

    immediate = False

    def __init__(self, link: RedisLink, idle_seconds: float) -> None:
        self.link = link
        self.origin = secrets.token_hex(6)  # this process
        self.ttl = max(1, round(idle_seconds))
        self._state = link.script(_STATE)
        self._answer = link.script(_ANSWER)
        self._count = link.script(_COUNT)
        self._end = link.script(_END)
        self._touch = link.script(_TOUCH)
        self._counted: dict[str, tuple[int, int]] = {}  # code -> counts last published

    def key(self, code: str, part: str = "") -> str:
        return self.link.key("live", code, part) if part else self.link.key("live", code)

    @property
    def sessions_key(self) -> str:
        return self.link.key("live", "sessions")

    def channel(self, code: str) -> str:
        return self.key(code, "events")

    @property
    def pattern(self) -> str:
        return self.link.key("live", "*", "events")

    def publish(self, session: Session, event: dict[str, Any]) -> bool:
        kind = event["e"]
        if kind == "state":
            return self._publish_state(session, event)
        code = session.code
        if kind == "answer":
            return 1 == self._answer(
                keys=[self.key(code), self.key(code, "answers")],
                args=[
                    event["question_id"],
                    event["client"],
                    _json(event["answer"]),
                    _json(event),
                    self.channel(code),
                    self.ttl,
                ],
            )
        if kind == "end":
            self._counted.pop(code, None)
            self._end(
                keys=[
                    self.key(code),
                    self.key(code, "answers"),
                    self.key(code, "counts"),
                    self.sessions_key,
                ],
                args=[code, _json(event), self.channel(code)],
            )
            return True
        raise ValueError(f"unknown event {kind!r}")

    def _publish_state(self, session: Session, event: dict[str, Any]) -> bool:
        code = session.code
        seq = self._state(
            keys=[self.key(code), self.key(code, "answers"), self.sessions_key],
            args=[
                _json(event["state"]),
                event["question_id"],
                _json({**event, "origin": self.origin}),
                self.ttl,
                time.time(),
                code,
                self.channel(code),
                "1" if event["open"] else "0",
            ],
        )
        if seq == -1:  # the record expired or was ended elsewhere: end here too
            session.end("The class has ended.")
        return True

    def connections_changed(self, session: Session, force: bool = False) -> None:
        """Tell the other processes how many connections this one has (when changed)."""
        counts = (len(session.students), len(session.presenters))
        code = session.code
        if not force and self._counted.get(code, (0, 0)) == counts:
            return
        event = {
            "e": "count",
            "proc": self.origin,
            "students": counts[0],
            "presenters": counts[1],
        }
        value = _json([*counts, time.time()]) if any(counts) else ""
        try:
            self._count(
                keys=[self.key(code, "counts")],
                args=[self.origin, value, self.ttl, _json(event), self.channel(code)],
            )
        except ApiError:  # counts are advisory: a later change or heartbeat resends them
            self._counted.pop(code, None)
            return
        self._counted[code] = counts

    def touch(self, session: Session) -> None:
        """Push the session's expiry back (a new connection); advisory: a connection to
        a replica still works while Redis is away."""
        code = session.code
        with contextlib.suppress(ApiError):
            self._touch(
                keys=[self.key(code), self.sessions_key], args=[self.ttl, time.time(), code]
            )

    def forget(self, code: str) -> None:
        self._counted.pop(code, None)


class RedisLiveHub(LiveHub):
    """The sessions of a server of several processes: records in Redis, replicas here."""

    max_sweep_interval = HEARTBEAT_SECONDS  # each sweep repeats this process's counts

    def __init__(
        self,
        catalog: Catalog,
        link: RedisLink,
        limits: LiveLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(catalog, limits, clock)
        self.link = link
        self.bus = RedisBus(link, self.limits.idle_seconds)
        self._create = link.script(_CREATE)
        self._listener: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        self.resyncs = 0  # times the subscription was re-established and replicas reloaded

    # -- sessions --

    def create(self) -> tuple[Session, str]:
        token = secrets.token_urlsafe(32)
        token_hash = hash_token(token)
        now = time.time()
        while True:
            code = new_code()
            created = self._create(
                keys=[self.bus.key(code), self.bus.sessions_key],
                args=[
                    token_hash.hex(),
                    now,
                    _json(initial_state()),
                    self.bus.ttl,
                    now,
                    now - self.limits.idle_seconds,
                    self.limits.max_sessions,
                    code,
                ],
            )
            if created == -1:
                raise TooManySessions(
                    f"the server already runs {self.limits.max_sessions} classes; "
                    "end one or try again later"
                )
            if created == 1:
                break
        session = self._replica(code, token_hash, now)
        return session, token

    def get(self, code: str) -> Session | None:
        normal = normalize_code(code)
        if normal is None:
            return None
        session = self._sessions.get(normal)
        if session is not None and not session.ended:
            return session
        self._sessions.pop(normal, None)
        return self._load(normal)

    def _replica(self, code: str, token_hash: bytes, created: float) -> Session:
        session = Session(
            code, None, self.catalog, self.limits, self.clock, self.bus, token_hash=token_hash
        )
        session.created = created
        self._sessions[code] = session
        return session

    def _read(self, code: str) -> tuple[dict[bytes, bytes], dict[bytes, bytes], dict]:
        """The record, answers and counts of a session (empty record: no such session)."""

        def read(r):
            pipe = r.pipeline(transaction=True)
            pipe.hgetall(self.bus.key(code))
            pipe.hgetall(self.bus.key(code, "answers"))
            pipe.hgetall(self.bus.key(code, "counts"))
            return pipe.execute()

        record, answers, counts = self.link.call(read)
        return record, answers, counts

    def _load(self, code: str) -> Session | None:
        """A replica of a session that another process created (None if there is none).
        Loaded and registered without yielding to the event loop, so no event published
        after the read can be missed."""
        record, answers, counts = self._read(code)
        if not record:
            return None
        session = self._replica(
            code, bytes.fromhex(record[b"token_hash"].decode()), float(record[b"created"])
        )
        self._restore(session, record, answers, counts)
        return session

    def _restore(self, session: Session, record: dict, answers: dict, counts: dict) -> None:
        session.state = orjson.loads(record[b"state"])
        session.seq = int(record[b"seq"])
        session.question_id = int(record[b"question_id"])
        session.answers = {k.decode(): orjson.loads(v) for k, v in answers.items()}
        now, clock_now = time.time(), self.clock()
        session.remote = {}
        for proc, value in counts.items():
            students, presenters, stamp = orjson.loads(value)
            if proc.decode() != self.bus.origin and now - stamp < COUNT_STALE_SECONDS:
                session.remote[proc.decode()] = (students, presenters, clock_now)

    def _remove(self, session: Session, reason: str) -> None:
        super()._remove(session, reason)
        self.bus.forget(session.code)

    def _expired(self, session: Session, now: float) -> bool:
        return False  # the record's expiry in Redis decides; see sweep()

    def sweep(self) -> int:
        """Forget replicas nobody here follows, end those whose record is gone, drop
        the counts of processes not heard from, and repeat this process's counts."""
        removed = 0
        now = self.clock()
        for session in list(self._sessions.values()):
            if session.ended or not (session.students or session.presenters):
                self._sessions.pop(session.code, None)
                self.bus.forget(session.code)
                removed += 1
                continue
            session.remote = {
                proc: entry
                for proc, entry in session.remote.items()
                if now - entry[2] < COUNT_STALE_SECONDS
            }
            try:
                exists = self.link.call(lambda r, c=session.code: r.exists(self.bus.key(c)))
            except ApiError:
                break  # Redis is away: the subscription's recovery resyncs every replica
            if not exists:
                self._remove(session, "The class ended after a long idle time.")
                removed += 1
            else:
                self.bus.connections_changed(session, force=True)
        return removed

    # -- the subscription --

    def ensure_sweeper(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._listener
        if task is None or task.done() or task.get_loop() is not loop:
            self.subscribed = asyncio.Event()
            self._listener = loop.create_task(self._listen())
        super().ensure_sweeper()

    async def _listen(self) -> None:
        """Receive every session's events, forever; reconnect with backoff."""
        backoff = _BACKOFF_MIN
        while True:
            client = self.link.async_client()
            pubsub = client.pubsub()
            try:
                await self._subscribe(pubsub)
                # Whatever was published before the subscription is in the records.
                self._resync()
                self.link.recovered()
                self.subscribed.set()
                backoff = _BACKOFF_MIN
                await self._receive(pubsub)
            except (*REDIS_ERRORS, ApiError) as exc:
                if self.subscribed.is_set() or backoff == _BACKOFF_MIN:
                    log.warning("class events from Redis interrupted (%s); reconnecting", exc)
                self.subscribed.clear()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()
            await asyncio.sleep(backoff)
            backoff = min(_BACKOFF_MAX, backoff * 2)

    async def _subscribe(self, pubsub) -> None:
        """Subscribe and wait until Redis confirms it (events published from then on
        will arrive)."""
        await pubsub.psubscribe(self.bus.pattern)
        deadline = time.monotonic() + 2 * PING_SECONDS
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "psubscribe":
                return
        raise TimeoutError("Redis did not confirm the subscription")

    async def _receive(self, pubsub) -> None:
        """Deliver events until the connection fails; a connection silent for too long
        is pinged, and dropped when even that gets no answer (half-open TCP)."""
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=PING_SECONDS)
            if message is None:  # silent for PING_SECONDS
                if pinged:
                    raise TimeoutError("no answer from Redis on the subscription")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message["type"] == "pmessage":
                self._deliver(message)
                # Let the writers send it before the next event: a burst must not make
                # every follower look slow (app.live: snapshots replace waiting ones).
                await asyncio.sleep(0)

    def _deliver(self, message: dict[str, Any]) -> None:
        channel = message["channel"].decode()
        code = channel[len(self.link.key("live", "")) :].split(":", 1)[0]
        session = self._sessions.get(code)
        if session is None or session.ended:
            return
        event = orjson.loads(message["data"])
        if event["e"] == "count" and event["proc"] == self.bus.origin:
            return
        session.apply(event)
        if session.ended:
            self._sessions.pop(code, None)
            self.bus.forget(code)

    def _resync(self) -> None:
        """On (re)subscribing: reload every replica from its record and send its
        followers the current state (they may have missed changes meanwhile)."""
        self.resyncs += 1
        for session in list(self._sessions.values()):
            record, answers, counts = self._read(session.code)  # raises: reconnect, retry
            if not record:
                self._remove(session, "The class has ended.")
                continue
            self._restore(session, record, answers, counts)
            session.resend_state()
            self.bus.connections_changed(session, force=True)

    async def close(self) -> None:
        task, self._listener = self._listener, None
        await cancel_task(task)
        await super().close()
