"""HTML routes and the architecture table's arithmetic (no browser needed)."""

from __future__ import annotations

import pytest

from app.pages import architecture_table, shape_hwc, weight_formula


def _row(kind: str, weight: list[int] | None, bias: list[int] | None) -> dict:
    shapes = {}
    if weight:
        shapes["weight"] = weight
    if bias:
        shapes["bias"] = bias
    return {"kind": kind, "param_shapes": shapes}


@pytest.mark.parametrize(
    ("kind", "weight", "bias", "text"),
    [
        ("conv2d", [128, 64, 3, 3], [128], "3 x 3 x 64 x 128 = 73,728 + 128"),
        ("conv2d", [6, 1, 5, 5], [6], "5 x 5 x 1 x 6 = 150 + 6"),
        ("conv2d", [16, 6, 5, 3], None, "5 x 3 x 6 x 16 = 1,440"),
        ("linear", [4096, 25088], [4096], "25,088 x 4,096 = 102,760,448 + 4,096"),
        ("relu", None, None, None),
    ],
)
def test_weight_formula_reads_like_the_textbook(kind, weight, bias, text) -> None:
    assert weight_formula(_row(kind, weight, bias)) == text


def test_shapes_are_written_height_width_channels() -> None:
    assert shape_hwc([64, 224, 224]) == "224 × 224 × 64"
    assert shape_hwc([25088]) == "25,088"


def test_vgg16_totals_from_the_registry(client) -> None:
    detail = client.get("/api/v1/models/vgg16").json()
    table = architecture_table(detail["layers"])
    assert table["totals"]["params_text"] == "138,357,544"
    assert table["totals"]["biases_text"] == "13,416"  # 4,224 conv + 9,192 fc biases
    assert table["totals"]["flops_text"] == "30.9 G"
    rows = {r["name"]: r for r in table["rows"]}
    assert rows["conv1_1"]["hp_text"] == "64 kernels 3×3×3, stride 1, padding 1"
    assert rows["pool5"]["hp_text"] == "window 2×2, stride 2"
    assert rows["flatten"]["hp_text"] == "7 × 7 × 512 → 25,088 values"
    assert rows["fc3"]["output"] == "1,000"


def test_pages_render_and_unknown_ids_are_html_404(client, tiny_run) -> None:
    assert client.get("/").status_code == 200
    run_id = tiny_run["run_id"]
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    assert page.text.count('data-testid="layer"') == len(tiny_run["layers"])
    arch = client.get("/models/lenet5/architecture")
    assert "5 x 5 x 6 x 16 = 2,400 + 16" in arch.text
    for path, words in [
        ("/runs/nope", "This run has expired"),
        ("/runs/nope/layers/conv1_1", "This run has expired"),
        (f"/runs/{run_id}/layers/nope", "no such layer"),
        ("/models/nope/architecture", "no such model"),
    ]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert words in response.text
