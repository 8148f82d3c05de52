"""Architecture page: the table a student checks the textbook against."""

from __future__ import annotations

from playwright.sync_api import expect

from .pages_helpers import api_get


def test_vgg16_table_matches_the_textbook(page, server_url, screenshot) -> None:
    response = page.goto("/models/vgg16/architecture")
    assert response.status == 200
    detail = api_get(page, server_url, "/models/vgg16")
    rows = page.get_by_test_id("arch-row")
    expect(rows).to_have_count(len(detail["layers"]))
    expect(page.get_by_test_id("total-params")).to_have_text("138,357,544")
    expect(page.get_by_test_id("total-params-row")).to_have_text("138,357,544")
    conv2_1 = page.locator('[data-testid="arch-row"][data-layer="conv2_1"]')
    expect(conv2_1.locator(".weights")).to_have_text("3 x 3 x 64 x 128 = 73,728 + 128")
    expect(conv2_1).to_contain_text("112 × 112 × 128")
    fc1 = page.locator('[data-testid="arch-row"][data-layer="fc1"]')
    expect(fc1.locator(".weights")).to_have_text("25,088 x 4,096 = 102,760,448 + 4,096")
    # Every row's parameter count is the engine's.
    shown = [r.locator("td.n").nth(1).inner_text() for r in rows.all()]
    assert shown == [f"{layer['params']:,}" for layer in detail["layers"]]
    screenshot(page, "architecture")


def test_unknown_model_is_a_404_page(page, console) -> None:
    console.allow(r"status of 404")
    response = page.goto("/models/alexnet/architecture")
    assert response.status == 404
    expect(page.get_by_test_id("not-found")).to_contain_text("no such model")
