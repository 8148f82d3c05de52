"""Colour maps and PNG heatmaps of one channel.

A colour map is a list of sRGB stops at evenly spaced positions 0..1. A value v maps to
t = clip((v - vmin) / (vmax - vmin), 0, 1), quantised to i = floor(255 t + 0.5); colour i
of the 256-entry table is the linear interpolation between the two stops around s = i / 255,
each channel rounded with floor(x + 0.5). ``static/js/render/colormap.js`` draws the legends
from the same stops and rules (documented in docs/API.md), so the two agree exactly.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image

__all__ = [
    "COLORMAPS",
    "Colormap",
    "colormap_table",
    "default_cmap",
    "default_range",
    "colorize",
    "upscale",
    "encode_png",
    "heatmap_png",
    "atlas_png",
]

Colormap = Literal["diverging", "sequential"]

COLORMAPS: dict[str, list[str]] = {
    # Blue below zero, white at zero, red above (the ends of ColorBrewer's RdBu).
    "diverging": ["#2166ac", "#ffffff", "#b2182b"],
    # viridis at 0, 1/4, 1/2, 3/4, 1: dark violet for 0 up to yellow for the maximum.
    "sequential": ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"],
}


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _build_table(stops: list[str]) -> np.ndarray:
    colours = np.array([_rgb(c) for c in stops], dtype=np.float64)
    segments = len(stops) - 1
    s = np.arange(256) / 255 * segments
    j = np.minimum(np.floor(s).astype(int), segments - 1)
    f = (s - j)[:, None]
    mixed = colours[j] + f * (colours[j + 1] - colours[j])
    return np.floor(mixed + 0.5).astype(np.uint8)


_TABLES = {name: _build_table(stops) for name, stops in COLORMAPS.items()}


def colormap_table(name: Colormap) -> np.ndarray:
    """The (256, 3) uint8 colour table of a map."""
    return _TABLES[name]


def default_cmap(layer_min: float) -> Colormap:
    """Diverging when the layer has negative values, else sequential."""
    return "diverging" if layer_min < 0 else "sequential"


def default_range(cmap: Colormap, layer_min: float, layer_max: float) -> tuple[float, float]:
    """Diverging: symmetric about zero at the layer's largest |value|. Sequential: from 0
    (or the layer's minimum when negative) to the layer's maximum."""
    if cmap == "diverging":
        m = max(abs(layer_min), abs(layer_max))
        return -m, m
    return min(0.0, layer_min), layer_max


def colorize(values: np.ndarray, cmap: Colormap, vmin: float, vmax: float) -> np.ndarray:
    """(H, W) values -> (H, W, 3) uint8. A zero range maps everything to the middle of a
    diverging map and to the start of a sequential one; NaN maps like vmin."""
    return _TABLES[cmap][_indices(values, cmap, vmin, vmax)]


def _indices(values: np.ndarray, cmap: Colormap, vmin: float, vmax: float) -> np.ndarray:
    """Colour-table index 0..255 of every value."""
    if vmax > vmin:
        t = (values.astype(np.float64) - vmin) / (vmax - vmin)
        t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0)
    else:
        t = np.full(values.shape, 0.5 if cmap == "diverging" else 0.0)
    return np.floor(t * 255 + 0.5).astype(np.intp)


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement: every pixel becomes a scale x scale block."""
    if scale == 1:
        return image
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def encode_png(image: np.ndarray) -> bytes:
    """(H, W, 3) RGB or (H, W, 4) RGBA uint8 -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def heatmap_png(
    values: np.ndarray, cmap: Colormap, vmin: float, vmax: float, scale: int = 1
) -> bytes:
    """One channel (H, W) as a PNG heatmap, enlarged ``scale`` times."""
    return encode_png(upscale(colorize(values, cmap, vmin, vmax), scale))


def atlas_png(
    maps: np.ndarray, cols: int, cmap: Colormap, vmin: float, vmax: float, scale: int = 1
) -> bytes:
    """All channels of (C, H, W) maps as one palette PNG: channel c is the tile at row
    c // cols, column c % cols; tiles past the last channel are the colour of vmin."""
    c, h, w = maps.shape
    rows = -(-c // cols)
    grid = np.full((rows * cols, h, w), vmin, dtype=np.float32)
    grid[:c] = maps
    grid = grid.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    index = _indices(grid, cmap, vmin, vmax).astype(np.uint8)
    index = np.ascontiguousarray(upscale(index, scale))
    image = Image.frombytes("P", (index.shape[1], index.shape[0]), index.tobytes())
    image.putpalette(_TABLES[cmap].tobytes())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
