"""Stride and dilation on a real network: an imported model with a 3x3 convolution of stride 2,
padding 2 and dilation 2, served from CONVSCOPE_MODELS_DIR by a second server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from engine.layers import Conv2d, Flatten, Linear, ReLU, Softmax
from engine.model import InputSpec, Sequential

from .conftest import VIEWPORT, _start_server, _stop
from .layer_helpers import create_run, expect_cell, explain, open_layer

MODEL = "strided-dilated"


@pytest.fixture(scope="module")
def strided_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    models = tmp_path_factory.mktemp("models")
    layers = [
        Conv2d("conv1", 3, 4, kernel=3, stride=2, padding=2, dilation=2),
        ReLU("relu1"),
        Flatten("flatten"),
        Linear("fc", 4 * 16 * 16, 10),
        Softmax("softmax"),
    ]
    meta = {"title": "Strided, dilated", "dataset": "cifar10", "preprocess": "photo"}
    spec = InputSpec(3, 32, 32, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    classes = [str(i) for i in range(10)]
    Sequential(layers, spec, MODEL, classes, meta).init(3).save(models / MODEL)
    previous = os.environ.get("CONVSCOPE_MODELS_DIR")
    os.environ["CONVSCOPE_MODELS_DIR"] = str(models)
    try:
        proc, url = _start_server(tmp_path_factory.mktemp("server") / "server.log")
    finally:
        if previous is None:
            del os.environ["CONVSCOPE_MODELS_DIR"]
        else:
            os.environ["CONVSCOPE_MODELS_DIR"] = previous
    try:
        yield url
    finally:
        _stop(proc)


def test_stride_2_dilation_2_on_a_served_model(browser, console, strided_url, screenshot) -> None:
    run = create_run(strided_url, MODEL, "cifar10-cat-1")
    context = browser.new_context(base_url=strided_url, viewport=VIEWPORT, locale="en-US")
    try:
        page = context.new_page()
        console.watch(page)
        open_layer(page, run, "conv1", "?channel=1&y=0&x=3")
        expect_cell(page, strided_url, run, "conv1", channel=1, y=0, x=3)
        ex = explain(strided_url, run, "conv1", channel=1, y=0, x=3)
        # taps 2 apart, starting 2 cells into the padding: rows -2, 0, 2; columns 4, 6, 8
        assert ex["rows"] == [-2, 0, 2] and ex["cols"] == [4, 6, 8]
        assert ex["padded"][0] == [True, True, True]
        expect(page.locator(".cv-in .lv-sub")).to_have_text("32 × 32, zero-padded by 2 → 36 × 36")
        expect(page.locator("[data-lv-facts]")).to_contain_text("stride 2 · padding 2 · dilation 2")
        expect(page.locator("[data-lv-lesson]")).to_contain_text("reaches 5 pixels")
        expect(page.locator(".lv-key-next")).to_have_text("next position (stride 2)")
        page.get_by_test_id("step-next").click()
        expect_cell(page, strided_url, run, "conv1", channel=1, y=0, x=4)
        assert explain(strided_url, run, "conv1", channel=1, y=0, x=4)["cols"] == [6, 8, 10]
        screenshot(page, "layer-conv-strided")
    finally:
        context.close()
