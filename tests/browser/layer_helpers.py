"""Helpers for the layer-view browser tests: runs and explain results straight from the API
(httpx), and reading the view's test hooks."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

__all__ = [
    "create_run",
    "explain",
    "open_layer",
    "expect_cell",
    "click_output_cell",
]

API = "/api/v1"


def create_run(server_url: str, model_id: str, sample: str) -> str:
    """POST a sample image as a run; returns the run id."""
    response = httpx.post(
        f"{server_url}{API}/models/{model_id}/runs", data={"sample": sample}, timeout=30
    )
    assert response.status_code == 201, response.text
    return response.json()["run_id"]


def explain(server_url: str, run_id: str, layer: str, **cell: int) -> dict[str, Any]:
    """The API's arithmetic of one cell (channel=, y=, x= or index=)."""
    response = httpx.get(
        f"{server_url}{API}/runs/{run_id}/layers/{layer}/explain", params=cell, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def open_layer(page: Page, run_id: str, layer: str, query: str = "") -> None:
    """Open the layer view and wait until its first cell value is on screen."""
    response = page.goto(f"/runs/{run_id}/layers/{layer}{query}")
    assert response is not None and response.status == 200
    expect(page.get_by_test_id("cell-value")).not_to_have_text("…")
    expect(page.get_by_test_id("cell-value")).not_to_have_text("")


def expect_cell(page: Page, server_url: str, run_id: str, layer: str, **cell: int) -> float:
    """The view shows this cell, and its value is the API's explain value to 4 decimals."""
    position = (
        str(cell["index"]) if "index" in cell else f"{cell['channel']}, {cell['y']}, {cell['x']}"
    )
    expect(page.get_by_test_id("cell-position")).to_have_text(position)
    want = explain(server_url, run_id, layer, **cell)["value"]
    value = page.get_by_test_id("cell-value")
    expect(value).not_to_have_text("…")
    shown = value.text_content()
    assert shown is not None and shown.strip() != ""
    # at most 4 decimals, and equal to the API's number rounded to 4 decimals
    assert len(shown.split(".")[-1]) <= 4 or "." not in shown, shown
    assert abs(float(shown) - want) <= 0.5e-4 + 1e-9, (position, shown, want)
    return want


def click_output_cell(page: Page, y: int, x: int, height: int, width: int) -> None:
    """Click the centre of cell (y, x) of the output map (an H x W canvas, no padding)."""
    canvas = page.get_by_test_id("output-map")
    box = canvas.bounding_box()
    assert box is not None
    canvas.click(
        position={"x": (x + 0.5) * box["width"] / width, "y": (y + 0.5) * box["height"] / height}
    )
