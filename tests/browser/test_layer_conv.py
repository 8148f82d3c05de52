"""The convolution layer view: stepping, jumping, keyboard, deep links and language, with every
displayed value checked against the API's explain result for the same cell."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .layer_helpers import click_output_cell, create_run, expect_cell, explain, open_layer


@pytest.fixture(scope="module")
def tiny_run(server_url: str) -> str:
    return create_run(server_url, "tiny-vgg", "cifar10-cat-1")


def test_step_forward_back_and_click_a_cell(page, server_url, tiny_run) -> None:
    open_layer(page, tiny_run, "conv1_1")
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=0, y=0, x=0)
    # the corner cell stands on the padding: the page says so, in numbers
    expect(page.locator(".cv-in .lv-sub")).to_have_text("32 × 32, zero-padded by 1 → 34 × 34")
    ex = explain(server_url, tiny_run, "conv1_1", channel=0, y=0, x=0)
    assert ex["padded"][0] == [True, True, True]  # what the ring of zeros stands for

    page.get_by_test_id("step-next").click()
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=0, y=0, x=1)
    page.get_by_test_id("step-next").click()
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=0, y=0, x=2)
    page.get_by_test_id("step-prev").click()
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=0, y=0, x=1)

    click_output_cell(page, y=5, x=7, height=32, width=32)
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=0, y=5, x=7)
    assert "channel=0&y=5&x=7" in page.url  # the URL follows the state

    # the arithmetic shown: one inner product per input channel, as the API computed them
    ex = explain(server_url, tiny_run, "conv1_1", channel=0, y=5, x=7)
    sums = [round(v, 4) for v in ex["channel_sums"]]
    shown = [float(t) for t in page.locator(".cv-sumrow .lv-num").all_text_contents()]
    assert shown == pytest.approx(sums, abs=1e-4)


def test_keyboard_plays_steps_and_changes_speed(page, server_url, tiny_run) -> None:
    open_layer(page, tiny_run, "conv1_1", "?channel=1&y=2&x=30")
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=1, y=2, x=30)
    page.get_by_test_id("output-map").focus()
    page.keyboard.press("ArrowRight")
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=1, y=2, x=31)
    page.keyboard.press("ArrowRight")  # wraps to the next row
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=1, y=3, x=0)
    page.keyboard.press("ArrowLeft")
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=1, y=2, x=31)

    speed = page.get_by_test_id("speed")
    before = int(speed.input_value())
    # The slider follows the player on its next frame: wait for it, do not read at once.
    page.keyboard.press("+")
    expect(speed).to_have_value(str(before + 1))
    page.keyboard.press("-")
    page.keyboard.press("-")
    expect(speed).to_have_value(str(before - 1))

    play = page.get_by_test_id("play")
    page.keyboard.press("+")
    page.keyboard.press("+")  # 8 steps per second
    page.keyboard.press(" ")
    expect(play).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("cell-position")).not_to_have_text("1, 2, 31", timeout=5000)
    page.keyboard.press(" ")
    expect(play).to_have_attribute("aria-pressed", "false")
    y, x = (int(v) for v in page.get_by_test_id("cell-position").text_content().split(", ")[1:])
    assert (y, x) > (2, 31)
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=1, y=y, x=x)


def test_deep_link_all_channels_and_tab_order(page, server_url, tiny_run) -> None:
    open_layer(page, tiny_run, "conv2_1", "?channel=2&y=3&x=4")
    expect_cell(page, server_url, tiny_run, "conv2_1", channel=2, y=3, x=4)
    expect(page.get_by_test_id("out-channel")).to_have_value("2")
    # Tab reaches every control, each with an accessible name
    page.evaluate("document.activeElement && document.activeElement.blur()")
    seen = set()
    for _ in range(20):
        page.keyboard.press("Tab")
        testid = page.evaluate("document.activeElement && document.activeElement.dataset.testid")
        if testid:
            seen.add(testid)
    assert {"step-prev", "play", "step-next", "speed", "out-channel", "mode-all"} <= seen
    for testid in ("step-prev", "play", "step-next"):
        assert page.get_by_test_id(testid).get_attribute("aria-label")

    # the full arithmetic for every input channel
    page.get_by_test_id("mode-all").click()
    expect(page.get_by_test_id("mode-all")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".cv-eqrow")).to_have_count(32)
    assert "mode=all" in page.url
    # another kernel: the output channel picker
    page.get_by_test_id("out-channel").fill("5")
    page.get_by_test_id("out-channel").press("Enter")
    expect_cell(page, server_url, tiny_run, "conv2_1", channel=5, y=3, x=4)


def test_lenet5_valid_5x5_conv_and_chinese(page, server_url, screenshot) -> None:
    run = create_run(server_url, "lenet5", "mnist-3-1")
    open_layer(page, run, "conv1", "?channel=2&y=12&x=9")
    expect_cell(page, server_url, run, "conv1", channel=2, y=12, x=9)
    expect(page.locator(".cv-in .lv-sub")).to_have_text("32 × 32, no padding (valid)")
    ex = explain(server_url, run, "conv1", channel=2, y=12, x=9)
    assert len(ex["kernel"][0]) == 5 and not any(any(r) for r in ex["padded"])
    expect(page.locator("[data-lv-lesson]")).to_contain_text("shrinks to 28 × 28")
    page.get_by_test_id("step-next").click()
    expect_cell(page, server_url, run, "conv1", channel=2, y=12, x=10)
    screenshot(page, "layer-conv-lenet5")

    page.locator('.lang-btn[data-lang="zh-CN"]').click()
    expect(page.locator("[data-lv-lesson]")).to_contain_text("valid 卷积")
    expect(page.get_by_test_id("play")).to_have_attribute("aria-label", "播放")
    expect(page.locator(".cv-math h2")).to_have_text("一个输出值是怎样算出来的")
    expect_cell(page, server_url, run, "conv1", channel=2, y=12, x=10)


def test_conv_screenshot(page, server_url, tiny_run, screenshot) -> None:
    open_layer(page, tiny_run, "conv1_1", "?channel=2&y=0&x=5")
    expect_cell(page, server_url, tiny_run, "conv1_1", channel=2, y=0, x=5)
    screenshot(page, "layer-conv")


def test_tablet_tap_jumps_to_a_cell(new_page, server_url, tiny_run) -> None:
    page = new_page(viewport={"width": 1024, "height": 768}, has_touch=True)
    open_layer(page, tiny_run, "conv1_2", "?channel=4&y=0&x=0")
    canvas = page.get_by_test_id("output-map")
    box = canvas.bounding_box()
    assert box is not None and box["width"] >= 200  # large enough to tap on a tablet
    canvas.tap(position={"x": 9.5 * box["width"] / 32, "y": 20.5 * box["height"] / 32})
    expect_cell(page, server_url, tiny_run, "conv1_2", channel=4, y=20, x=9)
