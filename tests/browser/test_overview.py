"""Run overview: one column per layer, predictions as the API says, hover, click, lazy load."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .pages_helpers import api_get, create_run, first_sample, percent_in, stub_layer_pages


def _js4(x: float) -> str:
    """What the page prints for x: String(Number(x.toPrecision(4))) in JavaScript."""
    v = float(f"{x:.4g}")
    return str(int(v)) if v.is_integer() else repr(v)


def _open_run(page, server_url, model_id: str, dataset: str, label: str | None = None) -> dict:
    run = create_run(page, server_url, model_id, first_sample(page, server_url, dataset, label))
    page.goto(f"/runs/{run['run_id']}")
    return run


def test_overview_columns_and_predictions_match_the_api(page, server_url, screenshot) -> None:
    run = _open_run(page, server_url, "tiny-vgg", "cifar10", "cat")
    detail = api_get(page, server_url, "/models/tiny-vgg")
    columns = page.locator('[data-testid="layer"]')
    expect(columns).to_have_count(len(detail["layers"]))
    names = [c.get_attribute("data-layer") for c in columns.all()]
    assert names == [layer["name"] for layer in detail["layers"]]

    # The first columns draw at once from one atlas PNG per layer, whose URL fixes the
    # layer's shared colour range (symmetric for the signed conv1_1 output).
    conv = next(layer for layer in run["layers"] if layer["name"] == "conv1_1")
    m = max(abs(conv["min"]), abs(conv["max"]))
    tile = page.locator('[data-layer="conv1_1"] .map-btn .tile').first
    expect(tile).to_have_attribute("style", re.compile(r"/layers/conv1_1/channels\.png\?cols="))
    style = tile.get_attribute("style")
    vmin = float(re.search(r"vmin=([-0-9.e]+)", style).group(1))
    vmax = float(re.search(r"vmax=([-0-9.e]+)", style).group(1))
    assert vmin == -vmax and abs(vmax - m) <= 1e-6 * m
    page.wait_for_load_state("networkidle")
    screenshot(page, "overview")

    predictions = page.get_by_test_id("prediction")
    page.locator('[data-layer="softmax"]').scroll_into_view_if_needed()
    expect(predictions).to_have_count(len(detail["classes"]))
    top = run["predictions"][0]
    top_row = page.locator('[data-testid="predictions"] .prob.top')
    expect(top_row).to_contain_text(top["class"])
    assert abs(percent_in(top_row.inner_text()) - 100 * top["probability"]) <= 0.051
    for p in run["predictions"]:
        row = page.locator(f'[data-testid="prediction"][data-index="{p["index"]}"]')
        expect(row).to_contain_text(p["class"])
    expect(page.locator("#verdict")).to_contain_text(top["class"])


def test_columns_load_as_they_scroll_into_view_on_a_tablet(new_page, server_url) -> None:
    page = new_page(viewport={"width": 1024, "height": 768}, has_touch=True)
    _open_run(page, server_url, "tiny-vgg", "cifar10")
    expect(page.locator('[data-layer="conv1_1"] .map-btn')).not_to_have_count(0)
    page.wait_for_load_state("networkidle")
    # The classifier columns are off screen to the right: nothing fetched or drawn yet.
    expect(page.locator('[data-layer="fc1"] [data-testid="neurons"]')).to_have_count(0)
    expect(page.get_by_test_id("prediction")).to_have_count(0)
    page.get_by_test_id("network").evaluate(
        "n => { n.style.scrollBehavior = 'auto'; n.scrollLeft = n.scrollWidth; }"
    )
    expect(page.locator('[data-layer="fc1"] [data-testid="neurons"]')).to_have_count(1)
    expect(page.get_by_test_id("prediction")).to_have_count(10)


def test_hover_enlarges_a_map_and_click_opens_the_layer(page, server_url) -> None:
    stub_layer_pages(page)
    run = _open_run(page, server_url, "tiny-vgg", "cifar10")
    thumb = page.locator('[data-layer="conv1_2"] .map-btn[data-channel="2"]')
    thumb.hover()
    magnifier = page.locator("#magnifier")
    expect(magnifier).to_be_visible()
    expect(page.locator("#mag-title")).to_have_text("conv1_2 · channel 2")
    small = thumb.locator(".tile").bounding_box()
    large = page.locator("#mag-pic > *").bounding_box()
    assert large["width"] >= 4 * small["width"]
    channel = api_get(page, server_url, f"/runs/{run['run_id']}/layers/conv1_2?channel=2")
    expected = f"min {_js4(channel['min'])}, max {_js4(channel['max'])}"
    expect(page.locator("#mag-range")).to_have_text(expected)

    thumb.click()
    page.wait_for_url(f"**/runs/{run['run_id']}/layers/conv1_2?channel=2")


def test_keyboard_reaches_maps_and_opens_one(page, server_url) -> None:
    stub_layer_pages(page)
    run = _open_run(page, server_url, "lenet5", "mnist")
    first = page.locator('[data-layer="conv1"] .map-btn').first
    expect(first).to_be_visible()
    # One Tab stop per column: Tab from the column's heading link lands on its first map.
    page.locator('[data-layer="conv1"] header a').focus()
    page.keyboard.press("Tab")
    expect(first).to_be_focused()
    expect(page.locator("#where")).to_contain_text("conv1 (convolution): 6 kernels of size 5×5×1")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    focused = page.locator('[data-layer="conv1"] .map-btn[data-channel="2"]')
    expect(focused).to_be_focused()
    expect(focused).to_have_attribute("aria-label", "conv1, channel 2: open the layer view")
    expect(page.locator("#magnifier")).to_be_visible()
    page.keyboard.press("ArrowRight")
    expect(page.locator('[data-layer="relu1"] .map-btn').first).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/runs/{run['run_id']}/layers/relu1?channel=0")


def test_neuron_click_opens_the_vector_layer(page, server_url) -> None:
    stub_layer_pages(page)
    run = _open_run(page, server_url, "lenet5", "mnist")
    canvas = page.locator('[data-layer="fc1"] [data-testid="neurons"]')
    expect(canvas).to_be_visible()
    page.wait_for_load_state("networkidle")  # every column drawn: nothing shifts any more
    canvas.click(position={"x": 6, "y": 6})  # the first neuron sits top left
    page.wait_for_url(f"**/runs/{run['run_id']}/layers/fc1?index=0")


def test_lenet5_overview_fits_one_screen(page, server_url, screenshot) -> None:
    _open_run(page, server_url, "lenet5", "mnist")
    expect(page.get_by_test_id("prediction")).to_have_count(10)
    page.wait_for_load_state("networkidle")
    network = page.get_by_test_id("network")
    widths = network.evaluate("n => [n.scrollWidth, n.clientWidth]")
    assert widths[0] <= widths[1] + 1, f"LeNet-5 should not need horizontal scrolling: {widths}"
    screenshot(page, "overview-lenet5")


def test_unknown_run_is_a_plain_404_page(page, console) -> None:
    console.allow(r"status of 404")
    response = page.goto("/runs/no-such-run")
    assert response.status == 404
    expect(page.get_by_test_id("not-found")).to_contain_text("expired")
    expect(page.get_by_role("link", name=re.compile("home page"))).to_have_attribute("href", "/")


def test_legend_colours_equal_the_server_heatmaps(page) -> None:
    """colormap.js and app/heatmap.py give the same colour for every table entry."""
    from app.heatmap import colormap_table

    page.goto("/")
    colours = page.evaluate(
        """async () => {
            const m = await import("/static/js/render/colormap.js");
            const out = {};
            for (const cmap of ["diverging", "sequential"]) {
                // v = i / 255 on [0, 1] hits table entry i exactly.
                out[cmap] = Array.from({length: 256}, (_, i) =>
                    m.colorFor(i / 255, {cmap, vmin: 0, vmax: 1}));
            }
            return out;
        }"""
    )
    for cmap in ("diverging", "sequential"):
        assert colours[cmap] == colormap_table(cmap).tolist(), cmap


def test_f16_layers_decode_to_the_servers_numbers(page, server_url) -> None:
    """api.getLayer (base64 float16) gives the JSON encoding's values rounded to float16."""
    import numpy as np

    run = _open_run(page, server_url, "lenet5", "mnist")
    exact = api_get(page, server_url, f"/runs/{run['run_id']}/layers/fc1?encoding=json")
    decoded = page.evaluate(
        """async (runId) => {
            const api = await import("/static/js/api.js");
            const layer = await api.getLayer(runId, "fc1");
            return {shape: layer.shape, data: Array.from(layer.data)};
        }""",
        run["run_id"],
    )
    assert decoded["shape"] == exact["shape"] == [120]
    expected = np.asarray(exact["data"], dtype=np.float32).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(decoded["data"], dtype=np.float32), expected)
