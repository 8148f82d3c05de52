"""Small helpers shared by the page tests: API calls through the page's request context."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from playwright.sync_api import expect

API = "/api/v1"
# Pages wait on forward passes and PNGs from a shared 2-core machine: give assertions the
# same 15 s the fixtures give actions, instead of Playwright's default 5 s.
EXPECT_TIMEOUT_MS = 15_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def api_get(page, server_url: str, path: str) -> Any:
    """GET an API path and return its JSON (asserting 200)."""
    response = page.request.get(f"{server_url}{API}{path}")
    assert response.status == 200, (path, response.status, response.text())
    return response.json()


def create_run(page, server_url: str, model_id: str, sample: str) -> dict[str, Any]:
    """POST a sample as a new run and return the RunSummary."""
    response = page.request.post(
        f"{server_url}{API}/models/{model_id}/runs", multipart={"sample": sample}
    )
    assert response.status in (200, 201), response.text()
    return response.json()


def first_sample(page, server_url: str, dataset: str, label: str | None = None) -> str:
    samples = api_get(page, server_url, f"/samples?dataset={dataset}")["samples"]
    assert samples, f"no samples for {dataset}"
    for s in samples:
        if label is None or s["label"] == label:
            return s["id"]
    raise AssertionError(f"no {label} sample in {dataset}")


def stub_layer_pages(page) -> None:
    """Answer /runs/{id}/layers/{layer} with a bare page, so these tests check where a
    click leads without depending on the layer view (tested in its own files)."""

    def is_layer_page(url: str) -> bool:
        path = urlparse(url).path
        return path.startswith("/runs/") and "/layers/" in path

    page.route(
        is_layer_page,
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>layer</title>"
        ),
    )


def percent_in(text: str) -> float:
    """The percentage written in a prediction's text ("cat 57.2%" -> 57.2)."""
    match = re.search(r"(<)?(\d+(?:\.\d+)?)%", text)
    assert match, text
    return float(match.group(2))
