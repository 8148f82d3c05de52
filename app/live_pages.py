"""HTML pages of classroom mode: join a class, follow it, present it.

``/live/{code}`` is the student's page, ``/live/{code}/present`` the presenter's (the
token stays in the URL fragment and is checked by the WebSocket, never by this page), and
``/live`` a form to type a code. An unknown or ended code gives a page that says so, with
status 404. The join QR code is drawn here, as inline SVG, by segno (pure Python).
"""

from __future__ import annotations

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .api.live import HubDep, join_url
from .live import normalize_code
from .pages import templates

__all__ = ["router", "qr_svg"]

router = APIRouter(tags=["pages"], include_in_schema=False)


def qr_svg(url: str, title: str) -> str:
    """A QR code of ``url`` as an inline <svg> (no size: CSS sets it; white quiet zone)."""
    code = segno.make(url, error="m")
    return code.svg_inline(
        scale=4, border=2, dark="#111", light="#fff", title=title, svgclass="live-qr-svg",
        lineclass=None, omitsize=True,
    )  # fmt: skip


def _missing(request: Request, code: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "live_missing.html", {"code": code, "missing": True}, status_code=404
    )


@router.get("/live", response_class=HTMLResponse)
def live_join_page(request: Request, code: str | None = None) -> Response:
    """Type a class code (``?code=`` jumps to the class)."""
    if code:
        normal = normalize_code(code)
        if normal is not None:
            return RedirectResponse(request.url_for("live_follow_page", code=normal), 303)
        return _missing(request, code)
    return templates.TemplateResponse(request, "live_missing.html", {"code": "", "missing": False})


# async: the hub is only touched on the event loop (with Redis it may load a class).
@router.get("/live/{code}", response_class=HTMLResponse)
async def live_follow_page(request: Request, code: str, hub: HubDep) -> HTMLResponse:
    """A student's view of a class: whatever the presenter shows."""
    session = hub.get(code)
    if session is None:
        return _missing(request, code)
    return templates.TemplateResponse(request, "live_follow.html", {"code": session.code})


@router.get("/live/{code}/present", response_class=HTMLResponse)
async def live_present_page(request: Request, code: str, hub: HubDep) -> HTMLResponse:
    """The presenter's page: join code, QR code, students, the view and the questions."""
    session = hub.get(code)
    if session is None:
        return _missing(request, code)
    url = join_url(request, session.code)
    return templates.TemplateResponse(
        request,
        "live_present.html",
        {"code": session.code, "join_url": url, "qr": qr_svg(url, f"QR code: {url}")},
    )
