"""Colour tables, colourising, enlargement and PNG encoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.heatmap import (
    COLORMAPS,
    atlas_png,
    colorize,
    colormap_table,
    default_cmap,
    default_range,
    heatmap_png,
    upscale,
)


def hex_rgb(colour: str) -> list[int]:
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


@pytest.mark.parametrize("name", ["diverging", "sequential"])
def test_table_ends_are_the_first_and_last_stops(name):
    table = colormap_table(name)
    assert table.shape == (256, 3) and table.dtype == np.uint8
    assert table[0].tolist() == hex_rgb(COLORMAPS[name][0])
    assert table[255].tolist() == hex_rgb(COLORMAPS[name][-1])


def test_table_entries_follow_the_documented_rule():
    def entry(name: str, i: int) -> list[int]:
        stops = [hex_rgb(c) for c in COLORMAPS[name]]
        s = i / 255 * (len(stops) - 1)
        j = min(int(s), len(stops) - 2)
        pairs = zip(stops[j], stops[j + 1], strict=True)
        return [int(np.floor(a + (s - j) * (b - a) + 0.5)) for a, b in pairs]

    # Entry 200 of the 3-stop diverging map: s = 1.5686, 56.9% of the way from white to red.
    assert colormap_table("diverging")[200].tolist() == entry("diverging", 200)
    assert entry("diverging", 200) == [211, 124, 134]  # 255 + 0.5686 * (178 - 255) = 211.2
    for i in (1, 64, 127, 128, 254):
        assert colormap_table("diverging")[i].tolist() == entry("diverging", i)
        assert colormap_table("sequential")[i].tolist() == entry("sequential", i)
    # Zero on a symmetric range is entry 128: white to the eye.
    assert colormap_table("diverging")[128].tolist() == [255, 254, 254]


def test_colorize_maps_the_range_ends_and_clips():
    values = np.array([[-2.0, -1.0, 0.0, 1.0, 2.0, np.nan]])
    rgb = colorize(values, "diverging", -1.0, 1.0)
    table = colormap_table("diverging")
    assert rgb[0, 0].tolist() == rgb[0, 1].tolist() == table[0].tolist()
    assert rgb[0, 3].tolist() == rgb[0, 4].tolist() == table[255].tolist()
    assert rgb[0, 2].tolist() == table[128].tolist()
    assert rgb[0, 5].tolist() == table[0].tolist()  # NaN like vmin
    flat = colorize(np.zeros((2, 2)), "sequential", 0.0, 0.0)
    assert (flat == colormap_table("sequential")[0]).all()
    assert (
        colorize(np.zeros((1, 1)), "diverging", 0.0, 0.0) == colormap_table("diverging")[128]
    ).all()


def test_defaults():
    assert default_cmap(-0.1) == "diverging" and default_cmap(0.0) == "sequential"
    assert default_range("diverging", -3.0, 2.0) == (-3.0, 3.0)
    assert default_range("sequential", 0.0, 2.0) == (0.0, 2.0)
    assert default_range("sequential", -1.0, 2.0) == (-1.0, 2.0)


def test_upscale_and_png():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    big = upscale(image, 3)
    assert big.shape == (6, 9) and (big[3:6, 6:9] == 5).all()
    png = heatmap_png(np.array([[0.0, 1.0], [2.0, 3.0]]), "sequential", 0, 3, scale=4)
    decoded = Image.open(io.BytesIO(png))
    assert decoded.size == (8, 8) and decoded.mode == "RGB"
    assert np.asarray(decoded)[7, 7].tolist() == colormap_table("sequential")[255].tolist()


def test_atlas_layout():
    maps = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    decoded = Image.open(io.BytesIO(atlas_png(maps, 2, "sequential", 0.0, 29.0)))
    assert decoded.size == (6, 6) and decoded.mode == "P"  # 3 rows of 2 tiles of 2 x 3
    rgb = np.asarray(decoded.convert("RGB"))
    np.testing.assert_array_equal(rgb[2:4, 3:6], colorize(maps[3], "sequential", 0.0, 29.0))
    assert (rgb[4:6, 3:6] == colormap_table("sequential")[0]).all()  # no sixth channel: vmin
