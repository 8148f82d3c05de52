"""The layer views of ReLU, max-pool, flatten, fully connected and softmax: each opens at a
deep-linked cell, steps, and shows the API's explain value for the cell on screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .layer_helpers import click_output_cell, create_run, expect_cell, explain, open_layer


@pytest.fixture(scope="module")
def tiny_run(server_url: str) -> str:
    return create_run(server_url, "tiny-vgg", "cifar10-cat-1")


def test_relu_marks_clipped_cells(page, server_url, tiny_run, screenshot) -> None:
    # find a clipped cell and a passed one in row 3 of channel 2 through the API
    cells = {x: explain(server_url, tiny_run, "relu1_1", channel=2, y=3, x=x) for x in range(8)}
    clipped = next(x for x, ex in cells.items() if ex["clipped"])
    passed = next(x for x, ex in cells.items() if not ex["clipped"])
    open_layer(page, tiny_run, "relu1_1", f"?channel=2&y=3&x={clipped}")
    expect_cell(page, server_url, tiny_run, "relu1_1", channel=2, y=3, x=clipped)
    assert page.get_by_test_id("cell-value").text_content() == "0"
    expect(page.locator(".act-verdict")).to_have_text("x is negative, so it is clipped to 0.")
    click_output_cell(page, y=3, x=passed, height=32, width=32)
    expect_cell(page, server_url, tiny_run, "relu1_1", channel=2, y=3, x=passed)
    expect(page.locator(".act-verdict")).to_have_text(
        "x is not negative, so it passes through unchanged."
    )
    expect(page.locator(".act-formula")).to_contain_text("max(0, ")
    screenshot(page, "layer-relu")


def test_maxpool_window_and_maximum(page, server_url, tiny_run, screenshot) -> None:
    open_layer(page, tiny_run, "pool1", "?channel=2&y=3&x=4")
    ex = explain(server_url, tiny_run, "pool1", channel=2, y=3, x=4)
    expect_cell(page, server_url, tiny_run, "pool1", channel=2, y=3, x=4)
    # stride 2: output (3, 4) reads input rows 6-7 and columns 8-9
    assert ex["rows"] == [6, 7] and ex["cols"] == [8, 9]
    expect(page.locator(".pool-eq figcaption")).to_contain_text("input rows 6–7, columns 8–9")
    y, x = ex["argmax_input"]
    expect(page.locator(".pool-math .act-verdict")).to_contain_text(f"input ({y}, {x})")
    page.get_by_test_id("step-next").click()
    expect_cell(page, server_url, tiny_run, "pool1", channel=2, y=3, x=5)
    page.get_by_test_id("step-prev").click()
    expect_cell(page, server_url, tiny_run, "pool1", channel=2, y=3, x=4)
    screenshot(page, "layer-pool")


def test_flatten_order_and_hover(page, server_url, tiny_run, screenshot) -> None:
    open_layer(page, tiny_run, "flatten", "?index=39")
    ex = expect_cell(page, server_url, tiny_run, "flatten", index=39)
    source = explain(server_url, tiny_run, "flatten", index=39)["source"]
    assert source == [2, 1, 3]  # (2 * 4 + 1) * 4 + 3 = 39 on 64 x 4 x 4 maps
    expect(page.locator(".fl-math .pool-formula")).to_contain_text("39 = (2 × 4 + 1) × 4 + 3")
    assert ex == explain(server_url, tiny_run, "pool3", channel=2, y=1, x=3)["value"]
    # hovering a vector entry names the map cell it came from
    vec = page.get_by_test_id("output-map")
    box = vec.bounding_box()
    assert box is not None
    cell = (box["width"] - 36) / 16  # one channel of 4 x 4 per row, after 34 px of labels
    vec.hover(position={"x": 35 + 5.5 * cell, "y": 1 + 3.5 * cell})  # row 3, entry 5: 53
    expect(page.locator(".fl-vec .lv-hover")).to_contain_text("i = 53 ← (c, y, x) = (3, 1, 1)")
    page.keyboard.press("ArrowRight")
    expect_cell(page, server_url, tiny_run, "flatten", index=40)
    screenshot(page, "layer-flatten")


def test_linear_neuron_terms(page, server_url, tiny_run, screenshot) -> None:
    open_layer(page, tiny_run, "fc1", "?index=5")
    expect_cell(page, server_url, tiny_run, "fc1", index=5)
    ex = explain(server_url, tiny_run, "fc1", index=5)
    products = [float(v) for v in page.locator(".fc-prod").all_text_contents()]
    assert products == pytest.approx([t["product"] for t in ex["terms"]], abs=1e-4)
    expect(page.locator(".fc-math .cv-total")).to_contain_text("sum of all 1024 terms")
    page.get_by_test_id("step-next").click()
    expect_cell(page, server_url, tiny_run, "fc1", index=6)
    screenshot(page, "layer-linear")


def test_softmax_probabilities_and_prediction(page, server_url, tiny_run, screenshot) -> None:
    open_layer(page, tiny_run, "softmax", "?index=9")
    expect_cell(page, server_url, tiny_run, "softmax", index=9)
    ex = explain(server_url, tiny_run, "softmax", index=9)
    cells = page.locator(".sm-table tbody td:last-child .lv-num")
    shown = [float(v) for v in cells.all_text_contents()]
    assert shown == pytest.approx(ex["probabilities"], abs=1e-4)
    best = max(range(10), key=lambda i: ex["probabilities"][i])
    expect(page.locator(".sm-table tr.is-predicted")).to_have_attribute("data-index", str(best))
    page.keyboard.press("Home")
    expect_cell(page, server_url, tiny_run, "softmax", index=0)
    page.locator(f'.sm-table tr[data-index="{best}"]').click()
    expect_cell(page, server_url, tiny_run, "softmax", index=best)
    screenshot(page, "layer-softmax")
