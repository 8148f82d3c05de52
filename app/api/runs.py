"""/runs: the layers of one image's forward pass, as numbers, heatmaps and arithmetic."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from engine.saliency import grad_cam, input_gradient

from ..deps import PoolDep, RegistryDep, RunsDep, SettingsDep
from ..errors import ERROR_RESPONSES, ApiError
from ..heatmap import (
    Colormap,
    atlas_png,
    colorize,
    default_cmap,
    default_range,
    encode_png,
    heatmap_png,
    upscale,
)
from ..runs import Run
from ..schemas import CellExplanation, LayerTensor, RunSummary, SaliencyData
from ..serialize import Encoding, OrjsonResponse, encode_tensor
from .common import CACHE_IMMUTABLE, check_size, layer_tensor, png_response

__all__ = ["router"]

router = APIRouter(prefix="/runs", tags=["runs"], responses=ERROR_RESPONSES)

_PNG = {200: {"content": {"image/png": {}}, "description": "A PNG image"}}
Scale = Annotated[int, Query(ge=1, le=64, description="Nearest-neighbour enlargement factor")]


def _check_png_size(height: int, width: int, scale: int, limit: int) -> None:
    if max(height, width) * scale > limit:
        raise ApiError(
            422,
            "image_too_large",
            f"scale={scale} would give a {width * scale}x{height * scale} PNG; "
            f"the largest side allowed is {limit}",
        )


def _channel(tensor: np.ndarray, name: str, channel: int) -> np.ndarray:
    if tensor.ndim != 3:
        raise ApiError(
            422,
            "not_a_map",
            f"layer {name!r} is a vector of shape {list(tensor.shape)}, it has no channels",
        )
    if not 0 <= channel < tensor.shape[0]:
        raise ApiError(
            422,
            "out_of_range",
            f"channel {channel} is outside 0..{tensor.shape[0] - 1} of layer {name!r}",
        )
    return tensor[channel]


def _colour_range(
    run: Run, name: str, cmap: Colormap | None, vmin: float | None, vmax: float | None
):
    """The colour map and value range: the query's, or the layer's defaults."""
    for label, value in (("vmin", vmin), ("vmax", vmax)):
        if value is not None and not math.isfinite(value):
            raise ApiError(422, "invalid_parameter", f"{label} must be a finite number")
    lo, hi, _ = run.layer_stats(name)
    cmap = cmap or default_cmap(lo)
    d_lo, d_hi = default_range(cmap, lo, hi)
    vmin = d_lo if vmin is None else vmin
    vmax = d_hi if vmax is None else vmax
    if vmin > vmax:
        raise ApiError(422, "invalid_parameter", f"vmin ({vmin}) must not exceed vmax ({vmax})")
    return cmap, vmin, vmax


def _range_headers(cmap: str, vmin: float, vmax: float) -> dict[str, str]:
    return {"X-Colormap": cmap, "X-Vmin": repr(float(vmin)), "X-Vmax": repr(float(vmax))}


@router.get("/{run_id}", response_model=RunSummary)
def get_run(run_id: str, runs: RunsDep) -> Response:
    """The summary of a run: predictions and each layer's shape, min, max and mean."""
    return OrjsonResponse({**runs.get(run_id).summary(), "reused": True})


@router.get("/{run_id}/input.png", responses=_PNG, response_class=Response)
def input_png(run_id: str, runs: RunsDep, settings: SettingsDep, scale: Scale = 1) -> Response:
    """The image exactly as the model saw it: resized, cropped, de-normalised."""
    run = runs.get(run_id)
    _check_png_size(*run.display.shape[:2], scale, settings.max_png_side)
    return png_response(encode_png(upscale(run.display, scale)))


@router.get("/{run_id}/layers/{layer}", response_model=LayerTensor)
def get_layer(
    run_id: str,
    layer: str,
    runs: RunsDep,
    settings: SettingsDep,
    encoding: Encoding = "json",
    channel: Annotated[
        int | None, Query(ge=0, description="Only this channel, shape [H, W]")
    ] = None,
) -> Response:
    """One layer's output (or `input`), flat row-major, as floats or base64 float16."""
    run = runs.get(run_id)
    tensor = layer_tensor(run, layer)
    if channel is not None:
        tensor = _channel(tensor, layer, channel)
        lo, hi = float(tensor.min()), float(tensor.max())
    else:
        lo, hi, _ = run.layer_stats(layer)
    check_size(tensor.size, encoding, settings.max_json_values, f"layer {layer}")
    body = {
        "name": layer,
        "kind": run.kind(layer),
        "shape": list(tensor.shape),
        "channel": channel,
        "encoding": encoding,
        "data": encode_tensor(tensor, encoding),
        "min": lo,
        "max": hi,
    }
    return OrjsonResponse(body, headers={"Cache-Control": CACHE_IMMUTABLE})


@router.get(
    "/{run_id}/layers/{layer}/channels/{channel}.png", responses=_PNG, response_class=Response
)
def channel_png(
    run_id: str,
    layer: str,
    channel: int,
    runs: RunsDep,
    settings: SettingsDep,
    cmap: Colormap | None = None,
    scale: Scale = 1,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Response:
    """A heatmap of one channel. By default all channels of a layer share one scale: the
    layer's largest |value| for the diverging map, [0, max] for the sequential one. The
    headers X-Colormap, X-Vmin and X-Vmax give the map and range used (for a legend)."""
    run = runs.get(run_id)
    values = _channel(layer_tensor(run, layer), layer, channel)
    _check_png_size(*values.shape, scale, settings.max_png_side)
    cmap, vmin, vmax = _colour_range(run, layer, cmap, vmin, vmax)
    return png_response(
        heatmap_png(values, cmap, vmin, vmax, scale), _range_headers(cmap, vmin, vmax)
    )


@router.get("/{run_id}/layers/{layer}/channels.png", responses=_PNG, response_class=Response)
def channels_atlas(
    run_id: str,
    layer: str,
    runs: RunsDep,
    settings: SettingsDep,
    cols: Annotated[
        int | None, Query(ge=1, le=1024, description="Tiles per row (default: a square grid)")
    ] = None,
    cmap: Colormap | None = None,
    scale: Scale = 1,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Response:
    """Every channel of a layer in one PNG: tiles of H x W in rows of `cols`, channel c at
    row c // cols, column c % cols, no gaps (X-Grid: cols rows tile_height tile_width).
    One request and about a third of the bytes of the separate channel PNGs."""
    run = runs.get(run_id)
    tensor = layer_tensor(run, layer)
    if tensor.ndim != 3:
        raise ApiError(
            422,
            "not_a_map",
            f"layer {layer!r} is a vector of shape {list(tensor.shape)}, it has no channels",
        )
    c, h, w = tensor.shape
    cols = min(cols or math.ceil(math.sqrt(c)), c)
    rows = math.ceil(c / cols)
    _check_png_size(rows * h, cols * w, scale, settings.max_png_side)
    cmap, vmin, vmax = _colour_range(run, layer, cmap, vmin, vmax)
    headers = {
        **_range_headers(cmap, vmin, vmax),
        "X-Grid": f"{cols} {rows} {h * scale} {w * scale}",
    }
    return png_response(atlas_png(tensor, cols, cmap, vmin, vmax, scale), headers)


def _cell(tensor: np.ndarray, layer: str, channel, y, x, index) -> tuple[int, ...]:
    if tensor.ndim == 3:
        if None in (channel, y, x):
            raise ApiError(
                422, "missing_parameter", f"layer {layer!r} has maps: give ?channel=&y=&x="
            )
        cell = (channel, y, x)
    else:
        if index is None:
            raise ApiError(422, "missing_parameter", f"layer {layer!r} is a vector: give ?index=")
        cell = (index,)
    if any(not 0 <= v < n for v, n in zip(cell, tensor.shape, strict=True)):
        raise ApiError(
            422,
            "out_of_range",
            f"cell {list(cell)} is outside the output of {layer!r}, of shape {list(tensor.shape)}",
        )
    return cell


@router.get("/{run_id}/layers/{layer}/explain", response_model=CellExplanation)
def explain(
    run_id: str,
    layer: str,
    runs: RunsDep,
    registry: RegistryDep,
    channel: Annotated[int | None, Query(ge=0)] = None,
    y: Annotated[int | None, Query(ge=0)] = None,
    x: Annotated[int | None, Query(ge=0)] = None,
    index: Annotated[int | None, Query(ge=0, description="For vector layers")] = None,
) -> Response:
    """The arithmetic of one output cell, recomputed from the run's arrays: its `value`
    equals the stored activation."""
    run = runs.get(run_id)
    if layer == "input":
        raise ApiError(
            422, "not_computed", "the input is not computed by a layer: explain a layer instead"
        )
    tensor = layer_tensor(run, layer)
    cell = _cell(tensor, layer, channel, y, x, index)
    model = registry.get(run.model_id)
    info: dict[str, Any] = model.explain(run.trace(), layer, cell)
    if tensor.ndim == 3:
        rf = model.receptive_fields()[layer]
        _, height, width = run.input.shape
        info["receptive_field"] = rf.region(cell[1], cell[2], height, width)
    return OrjsonResponse(info, headers={"Cache-Control": CACHE_IMMUTABLE})


def _saliency(run: Run, model, class_index: int, method: str, layer: str | None):
    trace = run.trace()
    if method == "gradient":
        result = input_gradient(model, trace, class_index)
        return result.saliency, None, None
    result = grad_cam(model, trace, class_index, layer)
    return result.cam, result.layer, result.weights


@router.get("/{run_id}/saliency", responses=_PNG, response_model=SaliencyData)
async def saliency(
    run_id: str,
    runs: RunsDep,
    registry: RegistryDep,
    pool: PoolDep,
    settings: SettingsDep,
    class_index: Annotated[
        int | None, Query(alias="class", ge=0, description="Default: the top prediction")
    ] = None,
    method: Literal["gradcam", "gradient"] = "gradcam",
    layer: Annotated[
        str | None, Query(description="Grad-CAM layer (default: the last conv2d)")
    ] = None,
    format: Literal["png", "json"] = "png",
    scale: Scale = 1,
    overlay: Annotated[bool, Query(description="PNG with alpha rising with the value")] = True,
) -> Response:
    """Which input pixels matter for a class: Grad-CAM (default) or the input gradient,
    as a heatmap at the input's size ([0, max], sequential map) or as numbers."""
    # Off the event loop: with Redis, a run of another process is computed again first.
    run = await run_in_threadpool(runs.get, run_id)
    n_classes = len(run.predictions)
    if class_index is None:
        class_index = run.predictions[0]["index"]
    if class_index >= n_classes:
        raise ApiError(422, "out_of_range", f"class {class_index} is outside 0..{n_classes - 1}")
    if layer is not None:
        tensor = layer_tensor(run, layer)
        if method != "gradcam" or tensor.ndim != 3 or layer == "input":
            raise ApiError(
                422, "invalid_parameter", f"Grad-CAM needs a layer with maps; {layer!r} is not one"
            )
    height, width = run.input.shape[1:]
    if format == "png":
        _check_png_size(height, width, scale, settings.max_png_side)

    def compute() -> Response:
        values, used_layer, weights = _saliency(
            run, registry.get(run.model_id), class_index, method, layer
        )
        top = float(values.max())
        if format == "json":
            body = {
                "method": method,
                "class": class_index,
                "class_name": next(
                    p["class"] for p in run.predictions if p["index"] == class_index
                ),
                "layer": used_layer,
                "shape": list(values.shape),
                "data": values.reshape(-1),
                "max": top,
                "weights": weights,
            }
            return OrjsonResponse(body, headers={"Cache-Control": CACHE_IMMUTABLE})
        rgb = colorize(values, "sequential", 0.0, top)
        if overlay:
            t = values / top if top > 0 else np.zeros_like(values)
            alpha = np.floor(np.clip(t, 0, 1) * 200 + 0.5).astype(np.uint8)
            rgb = np.dstack([rgb, alpha])
        return png_response(encode_png(upscale(rgb, scale)), _range_headers("sequential", 0.0, top))

    return await pool.run(compute)
