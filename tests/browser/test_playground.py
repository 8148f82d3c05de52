"""The playground page: textbook presets against the API, keyboard control of padding, stride
and dilation with the formula text, a shared link reproducing the state, the language switch."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

# Each textbook example: the result of the output-size formula, the named cell the page opens
# on, and the value the textbook gives for it (None: the API's value is the only reference).
PRESETS = [
    ("window-429", "= 1", "(0, 0, 0)", 429),
    ("six-valid", "= 4", "(0, 0, 1)", 30),
    ("six-pad", "= 6", "(0, 0, 0)", None),
    ("stride-2", "= 2", "(0, 1, 1)", None),
    ("rgb-demo", "= 3", "(1, 1, 1)", None),
    ("maxpool-2s2", "= 2", "(0, 0, 1)", 8),
    ("maxpool-3s1", "= 3", "(0, 1, 1)", None),
    ("maxpool-3s2", "= 2", "(0, 1, 0)", None),
    ("curve-match", "= 1", "(0, 0, 0)", 6600),
    ("curve-blank", "= 1", "(0, 0, 0)", 0),
    ("transposed", "= 5", "(0, 2, 2)", 10),
]


def api_value(page, server_url: str, position: str) -> float:
    """The value of a cell, computed by the API for the request the page sends."""
    body = page.evaluate("window.convscope.request()")
    channel, y, x = (int(v) for v in re.findall(r"-?\d+", position))
    path = "/transposed" if "output_padding" in body else "/conv"
    result = page.request.post(f"{server_url}/api/v1/playground{path}", data=body).json()
    if path == "/transposed":
        return result["output"][channel][y][x]
    if result["pool"] is not None and result["conv"] is None:
        return result["pool"]["output"][channel][y][x]
    return result["conv"]["output"][channel][y][x]


def shoot(screenshot, page, name: str) -> None:
    """A full-page screenshot from the top (sticky bars stay where a student sees them)."""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, name, full_page=True)


def open_playground(page, path: str = "/playground"):
    page.goto(path)
    expect(page.locator('[data-testid="cell-position"]')).not_to_be_empty()
    return page


def settled_value(page) -> str:
    """The cell value once the page has finished computing its current state.

    A state change sets the stage's aria-busy to "true" synchronously (inside the click), and
    it turns "false" only when the current state's response and the current cell's arithmetic
    are drawn. The value is then read once, not retried: a stale value fails the test."""
    expect(page.locator('[data-testid="stage"]')).to_have_attribute("aria-busy", "false")
    return page.inner_text('[data-testid="cell-value"]')


def test_every_textbook_preset_shows_its_size_and_the_api_value(
    page, server_url, screenshot
) -> None:
    open_playground(page)
    size = page.locator('[data-testid="output-size"]')
    position = page.locator('[data-testid="cell-position"]')
    for name, result, cell, textbook in PRESETS:
        page.click(f'[data-testid="preset-{name}"]')
        expect(page.locator(f'[data-testid="preset-{name}"]')).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(size).to_contain_text(result)
        expect(position).to_have_text(cell)
        expect(page.locator('[data-testid="lesson"]')).to_be_visible()
        shown = float(settled_value(page))
        assert shown == pytest.approx(api_value(page, server_url, cell), abs=1e-3), name
        if textbook is not None:
            assert shown == textbook, name
        if name == "rgb-demo":
            expect(page.locator('[data-testid="output-shape"]')).to_have_text("output: 3 × 3 × 2")
            shoot(screenshot, page, "playground-3channel")
        if name == "transposed":
            shoot(screenshot, page, "playground-transposed")


def test_presets_clicked_in_quick_succession_show_the_last_ones_value(page, server_url) -> None:
    """Clicking curve then curve-blank without waiting: the page must end on curve-blank's
    value (0), never the 6600 of the curve preset's response or its earlier state."""
    open_playground(page)
    settled_value(page)
    page.click('[data-testid="preset-curve-match"]')
    page.click('[data-testid="preset-curve-blank"]')
    expect(page.locator('[data-testid="preset-curve-blank"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    shown = float(settled_value(page))
    assert shown == pytest.approx(api_value(page, server_url, "(0, 0, 0)"), abs=1e-3)
    assert shown == 0

    # the curve preset's response arrives after curve-blank was chosen: it is not shown
    held = []

    def hold_first(route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)  # left unanswered until curve-blank is on the page

    page.route("**/api/v1/playground/conv", hold_first)
    page.click('[data-testid="preset-curve-match"]')
    for _ in range(100):  # the request leaves after the page's short debounce
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the curve preset's request was never sent"
    expect(page.locator('[data-testid="cell-value"]')).to_have_text("…")
    page.click('[data-testid="preset-curve-blank"]')
    late = held[0].fetch()
    assert late.json()["conv"]["output"][0][0][0] == 6600  # what a stale page would show
    try:
        held[0].fulfill(response=late)
    except Exception:  # noqa: BLE001 - the page aborted that request: the best outcome
        pass
    assert float(settled_value(page)) == 0
    page.wait_for_timeout(300)  # time for a late response to be (wrongly) drawn
    assert page.inner_text('[data-testid="cell-value"]') == "0"
    page.unroute("**/api/v1/playground/conv")


def test_keyboard_changes_padding_stride_and_dilation(page, console, screenshot) -> None:
    console.allow(r"status of 422")  # the last step asks for a kernel that does not fit
    open_playground(page)
    page.click('[data-testid="preset-six-valid"]')
    size = page.locator('[data-testid="output-size"]')
    expect(size).to_have_text("convolution: floor((6 + 2×0 - 1×(3 - 1) - 1) / 1) + 1 = 4")

    page.focus('[data-testid="padding"]')
    page.keyboard.press("ArrowUp")
    expect(size).to_have_text("convolution: floor((6 + 2×1 - 1×(3 - 1) - 1) / 1) + 1 = 6")
    page.focus('[data-testid="stride"]')
    page.keyboard.press("ArrowUp")
    expect(size).to_have_text("convolution: floor((6 + 2×1 - 1×(3 - 1) - 1) / 2) + 1 = 3")
    expect(page.locator('[data-testid="size-explanation"]')).to_contain_text(
        "not a multiple of the stride 2"
    )
    page.focus('[data-testid="dilation"]')
    page.keyboard.press("ArrowUp")
    expect(size).to_have_text("convolution: floor((6 + 2×1 - 2×(3 - 1) - 1) / 2) + 1 = 2")

    # the player: arrows step once focus leaves the number boxes
    page.locator('[data-testid="play"]').focus()
    page.keyboard.press("Home")
    expect(page.locator('[data-testid="cell-position"]')).to_have_text("(0, 0, 0)")
    page.keyboard.press("ArrowRight")
    expect(page.locator('[data-testid="cell-position"]')).to_have_text("(0, 0, 1)")
    page.keyboard.press("ArrowLeft")
    expect(page.locator('[data-testid="cell-position"]')).to_have_text("(0, 0, 0)")

    # ReLU then max pooling, for the screenshot of the whole pipeline
    page.select_option('[data-testid="activation"]', "relu")
    page.focus('[data-testid="dilation"]')
    page.keyboard.press("ArrowDown")
    page.focus('[data-testid="stride"]')
    page.keyboard.press("ArrowDown")
    page.check('[data-testid="pool-after"]')
    expect(size).to_contain_text("pooling: floor((6 + 2×0 - 1×(2 - 1) - 1) / 2) + 1 = 3")
    page.locator('[data-testid="play"]').focus()
    for _ in range(9):
        page.keyboard.press("ArrowRight")
    expect(page.locator('[data-testid="cell-position"]')).to_have_text("(0, 1, 3)")
    expect(page.locator('[data-testid="activation-curve"]')).to_be_visible()
    shoot(screenshot, page, "playground")

    # a kernel that cannot fit is explained in words, and the formula still shows its numbers
    page.focus('[data-testid="dilation"]')
    for _ in range(3):
        page.keyboard.press("ArrowUp")
    expect(size).to_contain_text("floor((6 + 2×1 - 4×(3 - 1) - 1) / 1) + 1 = 0")
    expect(page.locator('[data-testid="size-explanation"]')).to_contain_text(
        "The kernel does not fit: it reaches d(f − 1) + 1 = 9 cells"
    )


def test_a_shared_link_opens_the_same_state(page, new_page) -> None:
    open_playground(page)
    page.click('[data-testid="preset-rgb-demo"]')
    expect(page.locator('[data-testid="cell-position"]')).to_have_text("(1, 1, 1)")
    page.locator('[data-testid="play"]').focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator('[data-testid="cell-position"]')).to_have_text("(1, 1, 2)")
    page.fill('[data-kernel="1"] [data-y="0"][data-x="0"][data-c="2"]', "3")  # edit one weight
    expect(page.locator('[data-testid="cell-value"]')).not_to_have_text("…")
    page.wait_for_function(
        "location.hash.length > 10 && !document.querySelector('[aria-busy=true]')"
    )
    page.wait_for_timeout(400)  # the address follows the step after a short pause
    link = page.url
    expected = {
        "size": page.inner_text('[data-testid="output-size"]'),
        "position": page.inner_text('[data-testid="cell-position"]'),
        "value": page.inner_text('[data-testid="cell-value"]'),
        "request": page.evaluate("window.convscope.request()"),
    }
    other = new_page()
    other.goto(link)
    expect(other.locator('[data-testid="cell-position"]')).to_have_text(expected["position"])
    expect(other.locator('[data-testid="output-size"]')).to_have_text(expected["size"])
    expect(other.locator('[data-testid="cell-value"]')).to_have_text(expected["value"])
    assert other.evaluate("window.convscope.request()") == expected["request"]
    assert other.input_value('[data-kernel="1"] [data-y="0"][data-x="0"][data-c="2"]') == "3"

    # classroom mode drives the page through its hook with the same compact state
    snapshot = page.evaluate("window.convscope.getState()")
    other.click('[data-testid="preset-window-429"]')
    expect(other.locator('[data-testid="cell-value"]')).to_have_text("429")
    other.evaluate("(s) => window.convscope.setState(s)", snapshot)
    expect(other.locator('[data-testid="cell-position"]')).to_have_text(expected["position"])
    expect(other.locator('[data-testid="cell-value"]')).to_have_text(expected["value"])


def test_the_language_switch_translates_the_page(page) -> None:
    open_playground(page)
    page.click('[data-testid="preset-stride-2"]')
    expect(page.locator("h1")).to_have_text("Convolution playground")
    page.click('.lang-btn[data-lang="zh-CN"]')
    expect(page.locator("h1")).to_have_text("卷积演练场")
    expect(page.locator('[data-testid="output-size"]')).to_have_text(
        "卷积: floor((5 + 2×0 - 1×(3 - 1) - 1) / 2) + 1 = 2"
    )
    expect(page.locator('[data-testid="lesson"]')).to_contain_text("步长为 2")
    expect(page.locator('[data-testid="preset-maxpool-2s2"]')).to_have_text("最大池化 2×2，步长 2")
    page.click('.lang-btn[data-lang="en"]')
    expect(page.locator('[data-testid="lesson"]')).to_contain_text("With stride 2")
