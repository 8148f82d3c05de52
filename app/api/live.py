"""/live: classroom sessions. A presenter creates one, students follow it over a WebSocket.

The protocol (messages, state schema, close codes) is documented in docs/API.md,
section "Classroom"; the sessions themselves live in :mod:`app.live`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from ..errors import ERROR_RESPONSES, ApiError
from ..live import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_TRY_AGAIN,
    Connection,
    LiveHub,
    LiveLimits,
    ModelShape,
    Session,
    TooManySessions,
)
from ..live_redis import RedisLiveHub
from ..models import ModelRegistry
from ..runs import RunStore

__all__ = ["router", "build_hub", "hub_of", "get_hub", "HubDep", "AppCatalog", "join_url"]

router = APIRouter(prefix="/live", tags=["live"], responses=ERROR_RESPONSES)


class AppCatalog:
    """Validation's view of the app's model registry and run store."""

    def __init__(self, registry: ModelRegistry, runs: RunStore) -> None:
        self._registry = registry
        self._runs = runs
        self._shapes: dict[str, ModelShape] = {}

    def model(self, model_id: str) -> ModelShape | None:
        if model_id not in self._registry.ids:
            return None
        shape = self._shapes.get(model_id)
        if shape is None:
            detail = self._registry.detail(model_id)  # no weights loaded for this
            layers = {d["name"]: tuple(d["output_shape"]) for d in detail["layers"]}
            shape = self._shapes[model_id] = ModelShape(layers, len(detail["classes"]))
        return shape

    def run_model(self, run_id: str) -> str | None:
        return self._runs.model_of(run_id)  # also keeps the class's run fresh


def build_hub(app: Starlette, clock: Callable[[], float] = time.monotonic) -> LiveHub:
    """A hub for ``app`` with the limits of its settings; ``clock`` times idle expiry and
    rate limits (tests install a hub with a fake clock as ``app.state.live``)."""
    state = app.state
    s = state.settings
    limits = LiveLimits(
        max_sessions=s.live_max_sessions,
        max_students=s.live_max_students,
        max_message_bytes=s.live_max_message_bytes,
        rate=s.live_rate,
        idle_seconds=s.live_idle_seconds,
    )
    catalog = AppCatalog(state.registry, state.runs)
    link = getattr(state, "redis", None)
    if link is not None:
        return RedisLiveHub(catalog, link, limits, clock=clock)
    return LiveHub(catalog, limits, clock=clock)


def hub_of(app: Starlette) -> LiveHub:
    """The app's sessions, created on first use from its settings."""
    hub = getattr(app.state, "live", None)
    if hub is None:
        hub = app.state.live = build_hub(app)
    return hub


async def get_hub(conn: HTTPConnection) -> LiveHub:
    """The hub of a request's app (a dependency; async so that it runs on the event loop,
    the only thread that touches the hub)."""
    return hub_of(conn.app)


HubDep = Annotated[LiveHub, Depends(get_hub)]


def join_url(conn: HTTPConnection, code: str) -> str:
    """The absolute address students open (it goes into the QR code)."""
    return str(conn.url_for("live_follow_page", code=code))


def _session(hub: LiveHub, code: str) -> Session:
    session = hub.get(code)
    if session is None:
        raise ApiError(
            404,
            "unknown_session",
            f"no class with code {code!r} is running: check the code with your teacher",
        )
    return session


@router.post("", status_code=201)
async def create_session(request: Request, hub: HubDep) -> dict[str, Any]:
    """Start a class: returns its code, the presenter's secret token and the pages' URLs."""
    try:
        session, token = hub.create()
    except TooManySessions as exc:
        raise ApiError(503, "too_many_sessions", str(exc), {"Retry-After": "60"}) from None
    present = str(request.url_for("live_present_page", code=session.code))
    return {
        "code": session.code,
        "presenter_token": token,
        "join_url": join_url(request, session.code),
        # The token travels in the fragment, which browsers never send to a server.
        "present_url": f"{present}#token={token}",
        "ws_url": f"/api/v1/live/{session.code}/ws",
        "state": session.state,
    }


@router.get("/{code}")
async def session_info(code: str, request: Request, hub: HubDep) -> dict[str, Any]:
    """Public facts of a class: its model, run and view, and how many students follow."""
    session = _session(hub, code)
    return {**session.public_info(), "join_url": join_url(request, session.code)}


async def _read(websocket: WebSocket, session: Session, conn: Connection) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text")
        session.handle(conn, data if data is not None else message.get("bytes") or b"")


def _admit(
    hub: LiveHub, code: str, token: str | None
) -> tuple[Session | None, tuple[str, str, int] | None]:
    """The session a socket joins, or why it may not: (error code, message, close code)."""
    try:
        session = hub.get(code)
    except ApiError as exc:  # Redis unreachable: the client retries with backoff
        return None, (exc.code, exc.message, CLOSE_TRY_AGAIN)
    if session is None:
        return None, ("not_found", f"No class with code {code!r} is running.", CLOSE_NOT_FOUND)
    if token and not session.is_presenter_token(token):
        return None, ("forbidden", "This presenter link is not valid.", CLOSE_FORBIDDEN)
    return session, None


@router.websocket("/{code}/ws")
async def live_socket(
    websocket: WebSocket,
    code: str,
    hub: HubDep,
    token: Annotated[str | None, Query(max_length=200)] = None,
    client: Annotated[str | None, Query(max_length=64)] = None,
) -> None:
    """Follow a class (no token) or present it (?token=): JSON messages both ways."""
    await websocket.accept()
    session, refusal = _admit(hub, code, token)
    if refusal is not None:
        error, message, close_code = refusal
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.send_json({"type": "error", "code": error, "message": message})
            await websocket.close(close_code)
        return

    hub.ensure_sweeper()
    conn = Connection(
        websocket.send_text,
        presenter=bool(token),
        client_id=client,
        rate=hub.limits.rate,
        clock=hub.clock,
    )
    writer = asyncio.create_task(conn.run_writer())
    tasks = {writer}
    if session.join(conn):
        tasks.add(asyncio.create_task(_read(websocket, session, conn)))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        session.leave(conn)
        for task in tasks:
            task.cancel()
        # asyncio.wait, not gather: a cancelled gather hides whose cancellation it was
        # from the server's cancel scope (seen with Starlette's TestClient).
        await asyncio.wait(tasks)
    if writer in done and not writer.cancelled() and writer.exception() is None:
        # The session closed this connection (ended, full, abusive): say so with a code.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.close(writer.result())
