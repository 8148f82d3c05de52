"""The convolution playground: convolution, pooling and transposed convolution of a
student's own numbers, with the output-size formula and every cell's arithmetic."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from engine import playground as pg
from engine.preprocess import ImageError, open_image

from .. import playground as glue
from ..errors import ERROR_RESPONSES, ApiError
from ..uploads import read_image_form
from .common import IMAGE_BODY

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/playground", tags=["playground"], responses=ERROR_RESPONSES)


@router.post("/conv")
def conv(req: glue.ConvRequest) -> dict[str, Any]:
    """Convolve (then activate and pool), or pool the input: maps, sizes and cell arithmetic."""
    return glue.run_conv(req)


@router.post("/conv/explain")
def conv_explain(req: glue.ConvExplainRequest) -> dict[str, Any]:
    """The arithmetic of one cell of the convolution or the pooling."""
    return glue.explain_conv(req)


@router.post("/transposed")
def transposed(req: glue.TransposedRequest) -> dict[str, Any]:
    """Transposed convolution as a convolution of the zero-inserted, padded input."""
    return glue.run_transposed(req)


@router.post("/transposed/explain")
def transposed_explain(req: glue.TransposedExplainRequest) -> dict[str, Any]:
    """The arithmetic of one output cell of a transposed convolution."""
    return glue.explain_transposed(req)


@router.post("/from-image", openapi_extra=IMAGE_BODY)
async def from_image(
    request: Request,
    size: int = Query(8, ge=2, le=glue.LIMITS["side"][1], description="side of the grid"),
    color: Literal["grayscale", "rgb"] = Query("grayscale"),
    zoom: float = Query(1.0, ge=1.0, le=8.0, description="take the central 1/zoom of the image"),
) -> dict[str, Any]:
    """An uploaded image or a sample, centre-cropped and downscaled to a grid of 0-255 values."""
    state = request.app.state
    form = await read_image_form(request, state.settings.max_upload_bytes)
    if form.image is not None and form.sample:
        raise ApiError(422, "invalid_form", "send either an image or a sample id, not both")
    if form.image is None and not form.sample:
        raise ApiError(
            422,
            "missing_image",
            "send an image in the multipart field 'image', or a sample id in 'sample'",
        )
    data = form.image if form.image is not None else state.samples.read(form.sample)
    channels = 1 if color == "grayscale" else 3

    def convert():
        try:
            image = open_image(data, state.settings.max_pixels, size_hint=(round(size * zoom),) * 2)
        except ImageError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        return image.size, pg.image_to_grid(image, size, channels, zoom)

    (width, height), grid = await run_in_threadpool(convert)
    return {
        "input": glue.grid_payload(grid),
        "source": {
            "width": width,
            "height": height,
            "sample": form.sample,
            "zoom": zoom,
            "color": color,
        },
    }
