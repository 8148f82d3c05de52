"""The playground's HTML page. Everything it shows is fetched from /api/v1/playground."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

__all__ = ["router"]

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/playground", response_class=HTMLResponse)
def playground(request: Request) -> HTMLResponse:
    """Convolution, pooling and transposed convolution of the student's own numbers."""
    return request.app.state.templates.TemplateResponse(request, "playground.html", {})
