"""Classroom sessions: one presenter drives a view state that every follower receives.

A session is found by a short code that is easy to read aloud (6 characters, no 0/O or
1/I). The presenter proves itself with a secret token, of which only a SHA-256 hash is
kept. Each connection has an outbox drained by its own writer task, so one slow phone
never delays the others. Every state reaches a connection that keeps up; once a
connection falls behind (several messages waiting), a newer snapshot of the same kind
(state, student count, answers) replaces the last one waiting, because each is complete
on its own: a slow phone skips states instead of queueing them without bound.

Everything here runs on the server's event loop (no locks): the HTTP layer
(``app.api.live``) only parses frames and calls :meth:`Session.handle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from .errors import ApiError

__all__ = [
    "Bus",
    "LocalBus",
    "cancel_task",
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "CLOSE_ENDED",
    "CLOSE_FORBIDDEN",
    "CLOSE_FULL",
    "CLOSE_NOT_FOUND",
    "CLOSE_POLICY",
    "CLOSE_TRY_AGAIN",
    "Catalog",
    "Connection",
    "LiveHub",
    "LiveLimits",
    "ModelShape",
    "Session",
    "StateError",
    "TooManySessions",
    "hash_token",
    "initial_state",
    "new_code",
    "normalize_code",
    "validate_state",
]

# 24 letters and 8 digits: nothing that reads like another character (0/O, 1/I).
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
_CODE_RE = re.compile(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

VIEWS = ("home", "overview", "layer", "playground")
QUESTIONS = ("value", "class")
# The player's slowest and fastest speeds (static/js/player.js SPEEDS), in steps per second.
SPEED_MIN, SPEED_MAX = 0.5, 120.0
# The playground page's own state travels opaquely; it must stay small.
PLAYGROUND_MAX_BYTES = 8192
# Kinds of message where only the newest matters: a waiting one may be replaced.
_SNAPSHOT_KINDS = frozenset({"state", "students", "answers", "error"})
# Messages waiting in one outbox from which on a connection counts as behind.
_BEHIND = 8
# Messages that may wait in one outbox before the connection is considered stuck.
_OUTBOX_LIMIT = 64
# Presenter-facing summaries are sent at most this often (seconds).
_SUMMARY_INTERVAL = 0.2
# Consecutive refused messages (rate limit) before a connection is closed.
_MAX_STRIKES = 50

# WebSocket close codes (4000-4999 are for applications). The client stops reconnecting
# after NOT_FOUND, FORBIDDEN and ENDED; it retries later after FULL.
CLOSE_NOT_FOUND = 4404
CLOSE_FORBIDDEN = 4403
CLOSE_ENDED = 4410
CLOSE_FULL = 4429
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013  # the server cannot serve the class right now (shared store away)


class StateError(ValueError):
    """A state the server refuses; the message says which field and why."""


class TooManySessions(RuntimeError):
    """The server already holds ``max_sessions`` sessions."""


@dataclass(frozen=True)
class ModelShape:
    """What validation needs to know about one model."""

    layers: dict[str, tuple[int, ...]]  # layer name -> output shape (C, H, W) or (n,)
    classes: int


class Catalog(Protocol):
    """The app's models and runs, as validation sees them."""

    def model(self, model_id: str) -> ModelShape | None:
        """The model's layers and class count, or None when the server has no such model."""

    def run_model(self, run_id: str) -> str | None:
        """The model id of a run the server still holds, or None."""


@dataclass(frozen=True)
class LiveLimits:
    """Limits of the classroom feature (from ``Settings.live_*``)."""

    max_sessions: int = 100
    max_students: int = 500
    max_message_bytes: int = 16384
    rate: float = 20.0  # messages per second per connection (a burst of 2 s is allowed)
    idle_seconds: float = 3 * 3600.0


# --- codes and tokens -----------------------------------------------------------------


def new_code() -> str:
    """A random session code, e.g. "K7QM3X" (32^6, about a billion codes)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str | None:
    """The code a person typed, upper-cased without spaces or dashes; None if it cannot be
    a code at all."""
    code = re.sub(r"[\s-]", "", text).upper()
    return code if _CODE_RE.fullmatch(code) else None


def hash_token(token: str) -> bytes:
    """What is kept of a presenter token: its SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).digest()


# --- the state ------------------------------------------------------------------------


def initial_state() -> dict[str, Any]:
    """The state of a new session: everyone on the home page."""
    return {
        "view": "home",
        "model_id": None,
        "run_id": None,
        "layer": None,
        "cell": None,
        "step": 0,
        "playing": False,
        "speed": 4,
        "frozen": False,
        "revealed": False,
        "question": None,
        "playground": None,
        "sent_at": None,
    }


_FIELDS = frozenset(initial_state())


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def _check_cell(cell: Any, shape: tuple[int, ...], layer: str) -> None:
    if not isinstance(cell, dict):
        raise StateError("cell must be an object or null")
    if len(shape) == 3:
        names = ("channel", "y", "x")
    elif len(shape) == 1:
        names = ("index",)
    else:
        raise StateError(f"layer {layer!r} has no cells to point at (shape {list(shape)})")
    if set(cell) != set(names):
        raise StateError(
            f"a cell of layer {layer!r} (shape {list(shape)}) is {{{', '.join(names)}}}"
        )
    for name, size in zip(names, shape, strict=True):
        v = cell[name]
        if not _is_int(v) or not 0 <= v < size:
            raise StateError(f"cell {name}={v!r} is outside layer {layer!r}: 0 <= {name} < {size}")


def validate_state(current: dict[str, Any], patch: Any, catalog: Catalog) -> dict[str, Any]:
    """The state after applying ``patch`` (a subset of the fields) to ``current``.

    Changing the model resets layer, cell and step, and changing the layer resets cell
    and step, unless the same patch sets them. Raises StateError, naming the field, when
    the result is not a state the pages can show.
    """
    if not isinstance(patch, dict):
        raise StateError("state must be a JSON object")
    unknown = sorted(set(patch) - _FIELDS)
    if unknown:
        raise StateError(f"unknown state fields: {', '.join(unknown)}")
    state = {**current, **patch}
    resets: tuple[tuple[str, Any], ...] = ()
    if state["model_id"] != current["model_id"]:
        resets = (("layer", None), ("cell", None), ("step", 0))
    elif state["layer"] != current["layer"]:
        resets = (("cell", None), ("step", 0))
    for name, empty in resets:
        if name not in patch:
            state[name] = empty

    view = state["view"]
    if view not in VIEWS:
        raise StateError(f"view must be one of {', '.join(VIEWS)}")

    model_id, run_id, layer = state["model_id"], state["run_id"], state["layer"]
    for name in ("model_id", "run_id", "layer"):
        if state[name] is not None and not isinstance(state[name], str):
            raise StateError(f"{name} must be a string or null")
    if view in ("overview", "layer") and (model_id is None or run_id is None):
        raise StateError(f"view {view!r} needs model_id and run_id")
    if view == "layer" and layer is None:
        raise StateError("view 'layer' needs a layer")

    model = None
    if model_id is not None:
        model = catalog.model(model_id)
        if model is None:
            raise StateError(f"unknown model {model_id!r}")
    if run_id is not None:
        if model_id is None:
            raise StateError("run_id needs model_id")
        owner = catalog.run_model(run_id)
        if owner is None:
            raise StateError(f"unknown or expired run {run_id!r}: create the run again")
        if owner != model_id:
            raise StateError(f"run {run_id!r} belongs to model {owner!r}, not {model_id!r}")

    shape: tuple[int, ...] | None = None
    if layer is not None:
        if model is None:
            raise StateError("layer needs model_id")
        shape = model.layers.get(layer)
        if shape is None:
            raise StateError(f"model {model_id!r} has no layer {layer!r}")
    if state["cell"] is not None:
        if shape is None:
            raise StateError("cell needs a layer")
        _check_cell(state["cell"], shape, layer)

    step = state["step"]
    # The layer view's steps sweep one channel row by row (step = y * W + x), or a
    # vector's indices (static/js/views/layer-common.js, cellSteps).
    last = 0
    if shape is not None:
        last = shape[1] * shape[2] - 1 if len(shape) == 3 else math.prod(shape) - 1
    if not _is_int(step) or not 0 <= step <= last:
        raise StateError(f"step must be an integer from 0 to {last}")

    for name in ("playing", "frozen", "revealed"):
        if not isinstance(state[name], bool):
            raise StateError(f"{name} must be true or false")
    speed = state["speed"]
    if not _is_number(speed) or not SPEED_MIN <= speed <= SPEED_MAX:
        raise StateError(f"speed must be a number from {SPEED_MIN:g} to {SPEED_MAX:g}")
    if state["question"] not in (None, *QUESTIONS):
        raise StateError("question must be 'value', 'class' or null")
    if state["frozen"] and state["playing"]:
        raise StateError("a frozen view cannot be playing: pause it first")
    if state["question"] == "class" and model is None:
        raise StateError("a 'class' question needs model_id")
    if state["sent_at"] is not None and not _is_number(state["sent_at"]):
        raise StateError("sent_at must be a number or null")

    playground = state["playground"]
    if playground is not None:
        if not isinstance(playground, dict):
            raise StateError("playground must be an object or null")
        if len(orjson.dumps(playground)) > PLAYGROUND_MAX_BYTES:
            raise StateError(f"playground state is larger than {PLAYGROUND_MAX_BYTES} bytes")
    return state


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode("utf-8")


def _error(code: str, message: str) -> str:
    return _dumps({"type": "error", "code": code, "message": message})


# --- how a change reaches every process ----------------------------------------------


class Bus(Protocol):
    """Carries a session's changes (events) to every server process that has followers.

    With ``immediate`` the session applies its own events at once (one process); else
    each event comes back through :meth:`Session.apply` on every process, this one
    included, in one order for all (app/live_redis.py). Publishing methods raise
    :class:`~app.errors.ApiError` (503) when the events cannot be carried: then nothing
    has changed.
    """

    immediate: bool
    origin: str  # this process's id in the events it publishes

    def publish(self, session: Session, event: dict[str, Any]) -> bool:
        """A new state, an answer or the end; False when the shared record refuses it (an
        answer to a question that closed meanwhile)."""
        ...

    def connections_changed(self, session: Session) -> None: ...

    def touch(self, session: Session) -> None: ...


class LocalBus:
    """One process: nothing to carry."""

    immediate = True
    origin = "local"

    def publish(self, session: Session, event: dict[str, Any]) -> bool:
        return True

    def connections_changed(self, session: Session) -> None:
        return None

    def touch(self, session: Session) -> None:
        return None


# --- connections ----------------------------------------------------------------------


class Connection:
    """One WebSocket as the session sees it: a role, an outbox and a rate limit.

    ``send`` delivers one text frame; :meth:`run_writer` drains the outbox through it
    until the session closes the connection (it then returns the close code).
    """

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        *,
        presenter: bool,
        client_id: str | None = None,
        rate: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.presenter = presenter
        self.client_id = (
            client_id if client_id and _CLIENT_ID_RE.fullmatch(client_id) else secrets.token_hex(8)
        )
        self._send = send
        self._outbox: deque[list[str]] = deque()  # [kind, text] pairs, oldest first
        self._waiting: dict[str, list[str]] = {}  # kind -> its entry still in the outbox
        self._wake = asyncio.Event()
        self.close_code: int | None = None  # set when the session closes the connection
        self._rate = rate
        self._burst = max(1.0, 2.0 * rate)
        self._tokens = self._burst
        self._clock = clock
        self._stamp = clock()
        self.strikes = 0
        self.replaced = 0  # snapshots overtaken by newer ones before they were sent
        self.dropped = 0  # messages dropped from a full outbox

    def push(self, kind: str, text: str) -> None:
        """Queue a message; on a connection that is behind, a snapshot kind replaces the
        newest one of its kind still waiting."""
        if self.close_code is not None:
            return
        behind = len(self._outbox) >= _BEHIND
        entry = self._waiting.get(kind) if behind and kind in _SNAPSHOT_KINDS else None
        if entry is not None:
            entry[1] = text
            self.replaced += 1
        else:
            if len(self._outbox) >= _OUTBOX_LIMIT:
                # Stuck reader: forget the oldest message (the next state resyncs it).
                old_kind, _ = old = self._outbox.popleft()
                if self._waiting.get(old_kind) is old:
                    del self._waiting[old_kind]
                self.dropped += 1
            entry = [kind, text]
            self._outbox.append(entry)
            if kind in _SNAPSHOT_KINDS:
                self._waiting[kind] = entry
        self._wake.set()

    def close(self, code: int) -> None:
        """Send what is queued, then close with ``code``."""
        if self.close_code is None:
            self.close_code = code
            self._wake.set()

    def take(self) -> list[str]:
        """Remove and return the queued messages, oldest first (for tests and tools)."""
        texts = [text for _, text in self._outbox]
        self._outbox.clear()
        self._waiting.clear()
        return texts

    async def run_writer(self) -> int:
        """Send queued messages in order until closed; returns the close code."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                entry = self._outbox.popleft()
                if self._waiting.get(entry[0]) is entry:
                    del self._waiting[entry[0]]
                await self._send(entry[1])
            if self.close_code is not None:
                return self.close_code

    def allow(self) -> bool:
        """Token bucket: ``rate`` messages per second, bursts of two seconds' worth."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.strikes = 0
            return True
        self.strikes += 1
        return False


# --- sessions -------------------------------------------------------------------------


class Session:
    """One class: its state, its connections and the answers to the open question."""

    def __init__(
        self,
        code: str,
        token: str | None,
        catalog: Catalog,
        limits: LiveLimits,
        clock: Callable[[], float] = time.monotonic,
        bus: Bus | None = None,
        token_hash: bytes | None = None,
    ) -> None:
        self.code = code
        self._token_hash = token_hash if token is None else hash_token(token)
        self._catalog = catalog
        self.limits = limits
        self._clock = clock
        self.bus: Bus = bus or LocalBus()
        self.created = time.time()
        self.last_activity = clock()
        self.state = initial_state()
        self.seq = 0
        self.presenters: set[Connection] = set()
        self.students: set[Connection] = set()
        self.question_id = 0
        self.answers: dict[str, float | int] = {}  # client id -> number or class index
        # Connections of the server's other processes: process id -> (students,
        # presenters, when heard). Empty when one process serves everything.
        self.remote: dict[str, tuple[int, int, float]] = {}
        self.ended = False
        self._summary_due = False
        self._summary_handle: asyncio.TimerHandle | None = None
        # What this process has published but not yet seen come back (state, question):
        # the presenter's next change builds on it, not on an older applied state.
        self._head: tuple[dict[str, Any], int] | None = None
        self._in_flight = 0

    # -- identity and membership --

    def is_presenter_token(self, token: str | None) -> bool:
        """Constant-time check of a presenter token."""
        return bool(token) and hmac.compare_digest(hash_token(token), self._token_hash)

    def touch(self) -> None:
        self.last_activity = self._clock()

    def join(self, conn: Connection) -> bool:
        """Add a connection and send it the current state; False (and a closing error)
        when the session already has ``max_students`` students."""
        if not conn.presenter and self.student_count() >= self.limits.max_students:
            conn.push("error", _error("session_full", "This class is full. Try again later."))
            conn.close(CLOSE_FULL)
            return False
        (self.presenters if conn.presenter else self.students).add(conn)
        self.touch()
        self.bus.touch(self)
        role = "presenter" if conn.presenter else "student"
        conn.push(
            "hello",
            _dumps({"type": "hello", "role": role, "code": self.code, "client_id": conn.client_id}),
        )
        conn.push("state", self._state_message())
        if conn.presenter:
            conn.push("students", self._students_message())
            if self.question_id:
                conn.push("answers", self._answers_message())
        elif self.state["revealed"] and self.question_id:
            conn.push("answers", self._answers_message())
        self._schedule_summary()
        return True

    def leave(self, conn: Connection) -> None:
        if conn in self.students or conn in self.presenters:
            self.students.discard(conn)
            self.presenters.discard(conn)
            self._schedule_summary()

    def student_count(self) -> int:
        """Students following, on this process and (with Redis) on the others."""
        return len(self.students) + sum(n for n, _, _ in self.remote.values())

    def presenter_connected(self) -> bool:
        return bool(self.presenters) or any(p for _, p, _ in self.remote.values())

    def public_info(self) -> dict[str, Any]:
        """What anyone with the code may know (GET /live/{code})."""
        return {
            "code": self.code,
            "model_id": self.state["model_id"],
            "run_id": self.state["run_id"],
            "view": self.state["view"],
            "students": self.student_count(),
            "presenter_connected": self.presenter_connected(),
            "created": self.created,
        }

    # -- messages --

    def handle(self, conn: Connection, text: str | bytes) -> None:
        """Act on one frame from ``conn``: set, answer, sync, ping or end."""
        size = len(text.encode("utf-8")) if isinstance(text, str) else len(text)
        if size > self.limits.max_message_bytes:
            conn.push(
                "error",
                _error(
                    "too_large", f"Messages are limited to {self.limits.max_message_bytes} bytes."
                ),
            )
            return
        if not conn.allow():
            conn.push("error", _error("rate_limited", "Too many messages: slow down."))
            if conn.strikes >= _MAX_STRIKES:
                conn.close(CLOSE_POLICY)
            return
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.push("error", _error("bad_message", "Messages are JSON objects."))
            return
        kind = message.get("type") if isinstance(message, dict) else None
        try:
            self._dispatch(conn, kind, message)
        except ApiError as exc:  # the shared store (Redis) is unreachable: nothing changed
            conn.push("error", _error(exc.code, exc.message))

    def _dispatch(self, conn: Connection, kind: Any, message: Any) -> None:
        if kind == "ping":
            conn.push("pong", _dumps({"type": "pong"}))
        elif kind == "sync":
            conn.push("state", self._state_message())
        elif kind == "set":
            self._on_set(conn, message.get("state"))
        elif kind == "answer":
            self._on_answer(conn, message)
        elif kind == "end":
            if not conn.presenter:
                conn.push("error", _error("forbidden", "Only the presenter can end the class."))
            else:
                self._emit({"e": "end", "reason": "The presenter ended the class."})
        else:
            conn.push("error", _error("bad_message", "Unknown message type."))

    def _on_set(self, conn: Connection, patch: Any) -> None:
        if not conn.presenter:
            conn.push("error", _error("forbidden", "Only the presenter can change the view."))
            return
        self.touch()
        current, question_id = self._head or (self.state, self.question_id)
        try:
            new = validate_state(current, patch, self._catalog)
        except StateError as exc:
            conn.push("error", _error("invalid_state", str(exc)))
            return
        was_open, now_open = self._question_open(current), self._question_open(new)
        if now_open and (not was_open or self._question_key(new) != self._question_key(current)):
            question_id += 1
        event = {
            "e": "state",
            "state": new,
            "question_id": question_id,
            "open": now_open,
            "reveal": new["revealed"] and not current["revealed"],
            "summary": now_open != was_open,
        }
        # Pending from now on (apply() counts it back); undone if it cannot be sent.
        previous = self._head, self._in_flight
        self._head, self._in_flight = (new, question_id), self._in_flight + 1
        try:
            self._emit(event)
        except ApiError:
            self._head, self._in_flight = previous
            raise

    def _emit(self, event: dict[str, Any]) -> bool:
        """Send a change to every process, this one included; False when refused. Raises
        ApiError (503) when it cannot be sent: then nothing changed."""
        if not self.bus.publish(self, event):
            return False
        if self.bus.immediate:
            self.apply(event)
        return True

    def apply(self, event: dict[str, Any]) -> None:
        """Act on one change of the class, in the order every process sees them: a new
        state, an answer, another process's connection count, the end."""
        kind = event["e"]
        if kind == "state":
            self._apply_state(event)
        elif kind == "answer":
            if event["question_id"] == self.question_id and self._question_open(self.state):
                self.answers[event["client"]] = event["answer"]
                self._schedule_summary()
        elif kind == "count":
            self.remote[event["proc"]] = (event["students"], event["presenters"], self._clock())
            self._schedule_summary()
        elif kind == "end":
            self.end(event["reason"])

    def _apply_state(self, event: dict[str, Any]) -> None:
        if event.get("origin") in (None, self.bus.origin) and self._in_flight:
            self._in_flight -= 1
            if not self._in_flight:
                self._head = None
        seq = event.get("seq", self.seq + 1)
        if seq <= self.seq:
            return  # already applied (a replica loaded after it was published)
        if event["question_id"] != self.question_id:
            self.question_id = event["question_id"]
            self.answers = {}
        self.state = event["state"]
        self.seq = seq
        self.broadcast("state", self._state_message())
        if event["reveal"] and self.question_id:
            # Everyone sees how the class answered next to the true arithmetic.
            self.broadcast("answers", self._answers_message())
        elif event["summary"]:
            self._send_summary()

    @staticmethod
    def _question_open(state: dict[str, Any]) -> bool:
        return state["frozen"] and state["question"] is not None and not state["revealed"]

    @staticmethod
    def _question_key(state: dict[str, Any]) -> tuple:
        cell = state["cell"]
        return (
            state["question"],
            state["run_id"],
            state["layer"],
            tuple(sorted(cell.items())) if cell else None,
            state["step"],
        )

    def _on_answer(self, conn: Connection, message: dict[str, Any]) -> None:
        if not self._question_open(self.state):
            conn.push("error", _error("not_accepting", "No question is open."))
            return
        question = self.state["question"]
        if question == "value":
            value = message.get("value")
            if not _is_number(value):
                conn.push("error", _error("invalid_answer", "Answer with a number."))
                return
            answer: float | int = float(value)
        else:
            value = message.get("class")
            classes = self._catalog.model(self.state["model_id"]).classes
            if not _is_int(value) or not 0 <= value < classes:
                conn.push(
                    "error",
                    _error("invalid_answer", f"Answer with a class index from 0 to {classes - 1}."),
                )
                return
            answer = value
        event = {
            "e": "answer",
            "client": conn.client_id,
            "question_id": self.question_id,
            "answer": answer,
        }
        if not self._emit(event):  # the question closed meanwhile
            conn.push("error", _error("not_accepting", "No question is open."))
            return
        conn.push(
            "answered",
            _dumps({"type": "answered", "question_id": self.question_id, "answer": answer}),
        )

    # -- outgoing --

    def _state_message(self) -> str:
        return _dumps({"type": "state", "seq": self.seq, "state": self.state})

    def _students_message(self) -> str:
        return _dumps({"type": "students", "count": self.student_count()})

    def _answers_message(self) -> str:
        question = self.state["question"]
        body: dict[str, Any] = {
            "type": "answers",
            "question_id": self.question_id,
            "question": question,
            "count": len(self.answers),
            "revealed": self.state["revealed"],
        }
        if question == "class":
            counts = [0] * self._catalog.model(self.state["model_id"]).classes
            for v in self.answers.values():
                if 0 <= int(v) < len(counts):
                    counts[int(v)] += 1
            body["counts"] = counts
        else:
            body["values"] = sorted(v for v in self.answers.values())
        return _dumps(body)

    def resend_state(self) -> None:
        """Send every connection the current state again (after it was reloaded)."""
        self._head, self._in_flight = None, 0
        self.broadcast("state", self._state_message())

    def broadcast(self, kind: str, text: str) -> None:
        for conn in self.presenters:
            conn.push(kind, text)
        for conn in self.students:
            conn.push(kind, text)

    def _schedule_summary(self) -> None:
        """Tell presenters the student count and answers, at most every 0.2 s."""
        if self._summary_due:
            return
        self._summary_due = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the server (unit tests): send now
            self._send_summary()
            return
        self._summary_handle = loop.call_later(_SUMMARY_INTERVAL, self._send_summary)

    def _send_summary(self) -> None:
        self._summary_due = False
        if self.ended:
            return
        self.bus.connections_changed(self)
        students, answers = self._students_message(), None
        if self.question_id:
            answers = self._answers_message()
        for conn in self.presenters:
            conn.push("students", students)
            if answers is not None:
                conn.push("answers", answers)

    def end(self, reason: str = "The presenter ended the class.") -> None:
        """Tell everyone, then close every connection."""
        if self.ended:
            return
        self.ended = True
        if self._summary_handle is not None:
            self._summary_handle.cancel()
        text = _dumps({"type": "ended", "message": reason})
        for conn in [*self.presenters, *self.students]:
            conn.push("ended", text)
            conn.close(CLOSE_ENDED)


# --- all sessions ---------------------------------------------------------------------


async def cancel_task(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task and wait for it (it may belong to a loop that ended)."""
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            await task


class LiveHub:
    """The sessions of this server process, with their limits and idle expiry.

    A session is idle when neither its presenter has sent anything nor anyone has
    connected for ``idle_seconds`` (students' pings and answers do not keep it alive).
    """

    def __init__(
        self,
        catalog: Catalog,
        limits: LiveLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.limits = limits or LiveLimits()
        # One clock for idle expiry and the connections' rate limits (tests pass a fake).
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self) -> tuple[Session, str]:
        """A new session and its presenter token (returned once, never stored)."""
        self.sweep()
        if len(self._sessions) >= self.limits.max_sessions:
            raise TooManySessions(
                f"the server already runs {self.limits.max_sessions} classes; "
                "end one or try again later"
            )
        code = new_code()
        while code in self._sessions:
            code = new_code()
        token = secrets.token_urlsafe(32)
        session = Session(code, token, self.catalog, self.limits, self.clock)
        self._sessions[code] = session
        return session, token

    def get(self, code: str) -> Session | None:
        """The live session of a (typed) code, or None when unknown, ended or expired."""
        normal = normalize_code(code)
        if normal is None:
            return None
        session = self._sessions.get(normal)
        if session is None:
            return None
        if session.ended or self._expired(session, self.clock()):
            self._remove(session, "The class ended after a long idle time.")
            return None
        return session

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_activity > self.limits.idle_seconds

    def _remove(self, session: Session, reason: str) -> None:
        session.end(reason)
        self._sessions.pop(session.code, None)

    def sweep(self) -> int:
        """End idle and ended sessions; returns how many were removed."""
        now = self.clock()
        gone = [s for s in self._sessions.values() if s.ended or self._expired(s, now)]
        for session in gone:
            self._remove(session, "The class ended after a long idle time.")
        return len(gone)

    def ensure_sweeper(self) -> None:
        """Start the periodic sweep on the running loop (again, if a test's loop ended)."""
        loop = asyncio.get_running_loop()
        task = self._sweeper
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._sweeper = loop.create_task(self._sweep_forever())

    async def close(self) -> None:
        """Stop the background tasks (at server shutdown)."""
        task, self._sweeper = self._sweeper, None
        await cancel_task(task)

    # The longest pause between sweeps (a shared hub also sends heartbeats then).
    max_sweep_interval = 60.0

    async def _sweep_forever(self) -> None:
        interval = min(self.max_sweep_interval, max(0.05, self.limits.idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            self.sweep()
