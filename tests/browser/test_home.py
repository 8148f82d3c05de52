"""Home page: choose a model, upload a file, pick a sample, draw a digit, see errors."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from .pages_helpers import api_get, percent_in

REPO = Path(__file__).resolve().parents[2]
RUN_URL = re.compile(r"/runs/[A-Za-z0-9_-]+$")


def test_home_lists_models_and_uploads_a_file(page, server_url, screenshot) -> None:
    page.goto("/")
    models = api_get(page, server_url, "/models")["models"]
    cards = page.locator('[data-testid="model-card"]')
    expect(cards).to_have_count(len(models))
    for model, card in zip(models, cards.all(), strict=True):
        expect(card).to_contain_text(model["name"])
        expect(card).to_contain_text(f"{model['params']:,}")
        if not model["trained"]:
            expect(card).to_contain_text("untrained")
    expect(cards.first).to_have_attribute("aria-checked", "true")
    expect(page.locator('[data-testid="sample"]').first).to_be_visible()
    screenshot(page, "home")

    image = REPO / "static" / "samples" / "cifar10-cat-1.png"
    page.get_by_test_id("image-input").set_input_files(str(image))
    page.wait_for_url(RUN_URL)
    detail = api_get(page, server_url, "/models/tiny-vgg")
    expect(page.locator('[data-testid="layer"]')).to_have_count(len(detail["layers"]))


def test_sample_from_the_gallery_opens_its_run(page, server_url) -> None:
    page.goto("/?model=lenet5")
    samples = api_get(page, server_url, "/samples?dataset=mnist")["samples"]
    gallery = page.locator('[data-testid="sample"]')
    expect(gallery).to_have_count(len(samples))
    gallery.nth(2).click()
    page.wait_for_url(RUN_URL)
    run_id = page.url.rsplit("/", 1)[1]
    run = api_get(page, server_url, f"/runs/{run_id}")
    assert run["model_id"] == "lenet5"
    assert run["input"]["shape"] == [1, 32, 32]


def test_drawing_a_digit_shows_live_predictions(page, server_url, screenshot) -> None:
    page.goto("/?model=lenet5")
    pad = page.get_by_test_id("draw-pad")
    expect(pad).to_be_visible()
    box = pad.bounding_box()
    assert box is not None and round(box["width"]) == 280 and round(box["height"]) == 280
    # A "7": a top bar and a diagonal stroke, drawn with mouse events.
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + 70, y0 + 60)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x0 + 70 + 14 * i, y0 + 60)
    for i in range(1, 16):
        page.mouse.move(x0 + 210 - 7 * i, y0 + 60 + 12 * i)
    page.mouse.up()

    predictions = page.get_by_test_id("live-prediction")
    # aria-busy turns false once the finished drawing (not a partial stroke) has been run.
    expect(page.get_by_test_id("live-predictions")).to_have_attribute("aria-busy", "false")
    expect(predictions).to_have_count(10)
    open_link = page.get_by_test_id("pad-open")
    expect(open_link).to_be_visible()
    run_id = open_link.get_attribute("href").rsplit("/", 1)[1]
    run = api_get(page, server_url, f"/runs/{run_id}")
    top = run["predictions"][0]
    if api_get(page, server_url, "/models/lenet5")["trained"]:
        assert top["class"] == "7", run["predictions"][:3]
    top_row = page.locator('[data-testid="live-prediction"].top')
    expect(top_row).to_contain_text(top["class"])
    assert abs(percent_in(top_row.inner_text()) - 100 * top["probability"]) <= 0.051
    screenshot(page, "home-draw")

    page.get_by_test_id("pad-clear").click()
    expect(predictions).to_have_count(0)
    expect(open_link).to_be_hidden()


def test_drop_and_paste_start_runs(page, console) -> None:
    console.allow(r"status of 415")
    page.goto("/")
    expect(page.locator('[data-testid="model-card"]').first).to_be_visible()
    # A text file dropped on the drop zone: the plain-words error, no navigation.
    page.evaluate(
        """() => {
            const dt = new DataTransfer();
            dt.items.add(new File(["hello"], "notes.txt", {type: "text/plain"}));
            const zone = document.getElementById("dropzone");
            const init = {dataTransfer: dt, bubbles: true, cancelable: true};
            zone.dispatchEvent(new DragEvent("drop", init));
        }"""
    )
    expect(page.get_by_test_id("upload-error")).to_contain_text("not an image")
    # An image pasted from the clipboard opens its run.
    page.evaluate(
        """async () => {
            const blob = await (await fetch("/static/samples/cifar10-ship-1.png")).blob();
            const dt = new DataTransfer();
            dt.items.add(new File([blob], "pasted.png", {type: "image/png"}));
            document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true}));
        }"""
    )
    page.wait_for_url(RUN_URL)


def test_text_file_upload_explains_the_error(page, console) -> None:
    console.allow(r"status of 415")
    page.goto("/")
    expect(page.locator('[data-testid="model-card"]').first).to_be_visible()
    page.get_by_test_id("image-input").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"just some words\n"}]
    )
    error = page.get_by_test_id("upload-error")
    expect(error).to_have_text(re.compile(r"not an image.*PNG, JPEG", re.S))
    expect(error).to_have_attribute("role", "alert")
    assert "/runs/" not in page.url
