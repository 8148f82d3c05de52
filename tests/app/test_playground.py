"""The playground endpoints against the loop oracle, PyTorch's reference outputs and the
textbook's worked examples; their 422 messages; the image-to-grid endpoint."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app
from tests.engine import oracle
from tests.engine.checks import assert_close

DATA = Path(__file__).resolve().parents[1] / "data"
API = "/api/v1/playground"


@pytest.fixture(scope="module")
def client() -> TestClient:
    with TestClient(create_app(Settings(preload=()))) as c:
        yield c


def post(client: TestClient, path: str, body: dict, status: int = 200) -> dict:
    response = client.post(API + path, json=body)
    assert response.status_code == status, response.text
    return response.json()


def kernels_body(weights: np.ndarray, biases: np.ndarray) -> list[dict]:
    return [{"weights": w.tolist(), "bias": float(b)} for w, b in zip(weights, biases, strict=True)]


# ------------------------------------------------------------------------ convolution

CONV_CASES = [
    # channels, (h, w), kernels, f, padding, stride, dilation
    (1, (6, 6), 1, 3, 0, 1, 1),
    (1, (7, 5), 2, 3, "same", 1, 1),
    (3, (5, 5), 2, 3, 1, 2, 1),
    (2, (9, 8), 3, 2, "same", 2, 1),
    (1, (16, 16), 1, 5, 2, 3, 2),
    (3, (8, 8), 4, 1, "valid", 1, 1),
    (2, (10, 7), 1, 4, 3, 2, 3),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "-".join(map(str, c[1:2] + c[3:])))
def test_conv_matches_the_loop_oracle_cell_by_cell(client, case) -> None:
    channels, (h, w), count, f, padding, stride, dilation = case
    rng = np.random.default_rng(len(str(case)))
    x = rng.integers(-9, 10, (channels, h, w)).astype(np.float64)
    weights = rng.integers(-3, 4, (count, channels, f, f)).astype(np.float64)
    biases = rng.integers(-5, 6, count).astype(np.float64)
    body = {
        "input": x.tolist(),
        "kernels": kernels_body(weights, biases),
        "padding": padding,
        "stride": stride,
        "dilation": dilation,
    }
    conv = post(client, "/conv", body)["conv"]
    pads = tuple(conv["pads"])
    if padding == "same":
        assert pads == oracle.same_pads((h, w), (f, f), (stride, stride), (dilation, dilation))
    else:
        assert pads == ((0,) * 4 if padding == "valid" else (padding,) * 4)
    expected = oracle.conv2d(
        x[None], weights, biases, (stride, stride), pads, (dilation, dilation)
    )[0]
    assert_close(np.array(conv["pre_activation"]), expected, what="conv")
    assert np.array_equal(np.array(conv["padded"]["data"]), oracle.pad(x[None], pads)[0])
    # The formula's result is the map's size, along each axis.
    ho = oracle.out_size(h, f, stride, pads[0] + pads[1], dilation)
    wo = oracle.out_size(w, f, stride, pads[2] + pads[3], dilation)
    assert conv["shape"] == [count, ho, wo]
    assert conv["size"]["height"]["result"] == ho and conv["size"]["width"]["result"] == wo
    assert conv["size"]["height"]["fits"] and conv["size"]["width"]["fits"]
    # Every cell's arithmetic: window x kernel summed per channel, plus the bias.
    xp = oracle.pad(x[None], pads)[0]
    assert len(conv["cells"]) == count * ho * wo
    for cell in conv["cells"]:
        k, i, j = cell["cell"]
        rows = [i * stride + p * dilation for p in range(f)]
        cols = [j * stride + q * dilation for q in range(f)]
        window = xp[:, rows][:, :, cols]
        assert np.array_equal(np.array(cell["window"]), window)
        assert np.array_equal(np.array(cell["products"]), window * weights[k])
        assert np.allclose(cell["channel_sums"], (window * weights[k]).sum(axis=(1, 2)))
        assert cell["bias"] == biases[k]
        assert cell["value"] == pytest.approx(expected[k, i, j], abs=1e-4)
        assert cell["rows"] == [r - pads[0] for r in rows]


def test_the_429_window(client) -> None:
    window = [[18, 54, 51], [55, 121, 75], [35, 24, 204]]
    body = {
        "input": [window],
        "kernels": [{"weights": [[[1, 0, 1], [0, 1, 0], [1, 0, 1]]], "bias": 0}],
    }
    conv = post(client, "/conv", body)["conv"]
    assert conv["output"] == [[[429.0]]]
    (cell,) = conv["cells"]
    assert [v for row in cell["products"][0] for v in row if v] == [18, 51, 121, 35, 204]
    assert conv["size"]["height"]["formula"] == "floor((3 + 2×0 - 1×(3 - 1) - 1) / 1) + 1 = 1"


@pytest.mark.parametrize(
    ("n", "f", "padding", "stride", "expected", "formula"),
    [
        (6, 3, 0, 1, 4, "floor((6 + 2×0 - 1×(3 - 1) - 1) / 1) + 1 = 4"),
        (6, 3, 1, 1, 6, "floor((6 + 2×1 - 1×(3 - 1) - 1) / 1) + 1 = 6"),
        (5, 3, 0, 2, 2, "floor((5 + 2×0 - 1×(3 - 1) - 1) / 2) + 1 = 2"),
        (32, 5, 0, 1, 28, None),  # the textbook's 32x32x3 with 5x5x3 -> 28x28
    ],
)
def test_textbook_output_sizes(client, n, f, padding, stride, expected, formula) -> None:
    channels = 3 if n == 32 else 1
    body = {
        "input": np.ones((channels, min(n, 16), min(n, 16))).tolist(),
        "kernels": [{"weights": np.ones((channels, f, f)).tolist()}],
        "padding": padding,
        "stride": stride,
    }
    if n > 16:  # over the playground's limit: refused in words, not clipped
        error = post(client, "/conv", {**body, "input": np.ones((3, n, n)).tolist()}, 422)["error"]
        assert error["code"] == "input_too_large"
        assert error["message"] == "the input is 32x32; the playground accepts grids up to 16x16"
        return
    size = post(client, "/conv", body)["conv"]["size"]["width"]
    assert size["result"] == expected
    assert size["formula"] == formula


def test_three_channel_demo_gives_3x3x2(client) -> None:
    """5x5x3 padded to 7x7x3, two 3x3x3 filters with biases, stride 2 -> 3x3x2; one output is
    the sum of three per-channel inner products plus the bias."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (3, 5, 5)).astype(float)
    w = rng.integers(-1, 2, (2, 3, 3, 3)).astype(float)
    b = np.array([1.0, 0.0])
    conv = post(
        client,
        "/conv",
        {"input": x.tolist(), "kernels": kernels_body(w, b), "padding": 1, "stride": 2},
    )["conv"]
    assert conv["shape"] == [2, 3, 3]
    assert conv["padded"]["shape"] == [3, 7, 7]
    assert conv["params"] == {"weights": 54, "biases": 2}
    cell = conv["cells"][9 + 4]  # w1 at the centre
    assert cell["cell"] == [1, 1, 1]
    assert len(cell["channel_sums"]) == 3
    assert cell["value"] == pytest.approx(sum(cell["channel_sums"]) + b[1])
    assert cell["value"] == conv["pre_activation"][1][1][1]


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_activation_applies_to_every_cell_and_gives_its_curve(client, activation) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 5, 5)).round(2)
    w = rng.normal(size=(1, 1, 3, 3)).round(2)
    body = {
        "input": x.tolist(),
        "kernels": kernels_body(w, np.zeros(1)),
        "activation": activation,
        "slope": 0.2,
    }
    conv = post(client, "/conv", body)["conv"]
    z = np.array(conv["pre_activation"])
    reference = {
        "relu": np.maximum(z, 0),
        "leaky_relu": np.where(z > 0, z, 0.2 * z),
        "sigmoid": 1 / (1 + np.exp(-z)),
        "tanh": np.tanh(z),
    }[activation]
    assert_close(np.array(conv["output"]), reference, rtol=1e-6, what=activation)
    assert all(
        cell["output"] == conv["output"][0][cell["cell"][1]][cell["cell"][2]]
        for cell in conv["cells"]
    )
    curve = conv["activation"]["curve"]
    assert len(curve["x"]) == len(curve["y"]) == 121
    assert curve["x"][0] <= z.min() and curve["x"][-1] >= z.max()
    xs = np.array(curve["x"])
    expected_curve = {
        "relu": np.maximum(xs, 0),
        "leaky_relu": np.where(xs > 0, xs, 0.2 * xs),
        "sigmoid": 1 / (1 + np.exp(-xs)),
        "tanh": np.tanh(xs),
    }[activation]
    assert np.allclose(curve["y"], expected_curve)


# ---------------------------------------------------------------------------- pooling


@pytest.mark.parametrize(
    ("mode", "k", "s"), [("max", 2, 2), ("max", 3, 1), ("max", 3, 2), ("avg", 2, 2), ("avg", 3, 2)]
)
def test_pooling_the_input_matches_the_oracle(client, mode, k, s) -> None:
    rng = np.random.default_rng(k * 10 + s)
    x = rng.integers(0, 20, (2, 7, 6)).astype(float)
    result = post(
        client,
        "/conv",
        {"input": x.tolist(), "pool": {"mode": mode, "kernel": k, "stride": s, "on": "input"}},
    )
    assert result["mode"] == "pool" and result["conv"] is None
    pool = result["pool"]
    reference = (oracle.max_pool2d if mode == "max" else oracle.avg_pool2d)(
        x[None], (k, k), (s, s), (0, 0, 0, 0)
    )[0]
    assert_close(np.array(pool["output"]), reference, what=f"{mode} pool")
    assert pool["shape"] == list(reference.shape)
    for cell in pool["cells"]:
        c, i, j = cell["cell"]
        window = x[c, i * s : i * s + k, j * s : j * s + k]
        assert np.array_equal(np.array(cell["window"]), window)
        if mode == "max":
            ay, ax = cell["argmax"]
            assert window[ay, ax] == window.max() == cell["value"]
        else:
            assert cell["sum"] == window.sum() and cell["count"] == k * k


def test_pooling_the_activated_conv_output(client) -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(1, 8, 8))
    w = rng.normal(size=(2, 1, 3, 3))
    body = {
        "input": x.tolist(),
        "kernels": kernels_body(w, np.zeros(2)),
        "padding": "same",
        "activation": "relu",
        "pool": {"mode": "max", "kernel": 2, "stride": 2, "on": "conv"},
    }
    result = post(client, "/conv", body)
    activated = np.maximum(oracle.conv2d(x[None], w, None, (1, 1), (1, 1, 1, 1), (1, 1)), 0)
    assert_close(
        np.array(result["pool"]["output"]),
        oracle.max_pool2d(activated, (2, 2), (2, 2), (0,) * 4)[0],
    )
    assert result["pool"]["input_shape"] == [2, 8, 8] and result["pool"]["shape"] == [2, 4, 4]


# --------------------------------------------------------------------- explain endpoints


def test_explain_endpoints_repeat_the_cells_of_the_full_result(client) -> None:
    rng = np.random.default_rng(5)
    body = {
        "input": rng.normal(size=(2, 6, 6)).tolist(),
        "kernels": kernels_body(rng.normal(size=(2, 2, 3, 3)), np.array([0.5, -1])),
        "padding": 1,
        "stride": 2,
        "activation": "tanh",
        "pool": {"mode": "avg", "kernel": 2, "stride": 1, "on": "conv"},
    }
    full = post(client, "/conv", body)
    conv_cell = post(
        client, "/conv/explain", {**body, "cell": {"stage": "conv", "channel": 1, "y": 2, "x": 0}}
    )
    assert conv_cell == {"stage": "conv", **full["conv"]["cells"][9 + 6]}
    pool_cell = post(
        client, "/conv/explain", {**body, "cell": {"stage": "pool", "channel": 0, "y": 1, "x": 1}}
    )
    assert pool_cell == {"stage": "pool", **full["pool"]["cells"][3]}
    error = post(
        client,
        "/conv/explain",
        {**body, "cell": {"stage": "conv", "channel": 2, "y": 0, "x": 0}},
        422,
    )
    assert error["error"]["code"] == "cell_out_of_range"


def test_large_results_leave_cells_to_the_explain_endpoint(client) -> None:
    rng = np.random.default_rng(2)
    body = {
        "input": rng.normal(size=(3, 16, 16)).tolist(),
        "kernels": kernels_body(rng.normal(size=(4, 3, 7, 7)), np.zeros(4)),
        "padding": 8,
    }
    conv = post(client, "/conv", body)["conv"]
    assert conv["shape"] == [4, 26, 26] and conv["cells"] is None
    cell = post(client, "/conv/explain", {**body, "cell": {"channel": 3, "y": 25, "x": 0}})
    assert cell["value"] == pytest.approx(conv["pre_activation"][3][25][0], abs=1e-4)
    assert cell["padded"][-1] == [True] * 7  # the last row of the window is all padding


# --------------------------------------------------------------------------- the 422s


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            {"kernels": [{"weights": np.ones((1, 5, 5)).tolist()}]},
            "kernel_does_not_fit",
            "the 5x5 kernel does not fit in the 3x3 input padded by 0: output would be 0x0; "
            "use a smaller kernel or dilation, or more padding",
        ),
        (
            {"dilation": 2},
            "kernel_does_not_fit",
            "the 3x3 (5x5 with dilation 2) kernel does not fit in the 3x3 input padded by 0: "
            "output would be 0x0; use a smaller kernel or dilation, or more padding",
        ),
        ({"stride": 9}, "invalid_parameter", "stride must be between 1 and 8, got 9"),
        ({"padding": 12}, "invalid_parameter", "padding must be between 0 and 8, got 12"),
        (
            {"kernels": [{"weights": np.ones((2, 3, 3)).tolist()}]},
            "invalid_parameter",
            "kernel 0 has 2 channel grid(s) but the input has 1 channel(s): a kernel needs one "
            "grid per input channel",
        ),
        (
            {"input": [[[1, 2], [3]]]},
            "invalid_parameter",
            "input: every row must have the same number of values",
        ),
        ({"kernels": []}, "invalid_parameter", "give 1 to 4 kernels, got 0"),
        (
            {"pool": {"kernel": 4, "stride": 1, "on": "input"}},
            "pool_does_not_fit",
            "the 4x4 pooling window does not fit in the 3x3 input: output would be 0x0; "
            "use a smaller window",
        ),
    ],
)
def test_impossible_requests_are_explained_in_words(client, change, code, message) -> None:
    body = {
        "input": np.ones((1, 3, 3)).tolist(),
        "kernels": [{"weights": np.ones((1, 3, 3)).tolist()}],
        **change,
    }
    error = post(client, "/conv", body, 422)["error"]
    assert error["code"] == code
    assert error["message"] == message
    if code == "kernel_does_not_fit":  # the page shows the formula filled in, even so
        assert error["size"]["width"]["fits"] is False
        assert error["size"]["width"]["result"] < 1


# ------------------------------------------------------------------ transposed convolution


def reference_cases() -> list[dict]:
    cases = json.loads((DATA / "torch_ops.json").read_text())["cases"]
    return [c for c in cases if c["kind"] == "conv_transpose2d"]


@pytest.fixture(scope="module")
def reference_arrays():
    with np.load(DATA / "torch_ops.npz") as data:
        yield {k: data[k] for k in data.files}


@pytest.mark.parametrize("case", reference_cases(), ids=lambda c: str(c["id"]))
def test_transposed_matches_pytorch(client, case, reference_arrays) -> None:
    arrays = {k: reference_arrays[v] for k, v in case["arrays"].items()}
    p = case["params"]
    x, weight = arrays["x"][0].astype(np.float64), arrays["weight"].astype(np.float64)
    body = {
        "input": x.tolist(),
        "kernels": kernels_body(weight.transpose(1, 0, 2, 3), arrays["bias"]),
        "stride": p["stride"],
        "padding": p["padding"],
        "output_padding": p["output_padding"],
    }
    result = post(client, "/transposed", body)
    y = arrays["y"][0]
    assert_close(np.array(result["output"]), y, what=f"case {case['id']}")
    assert [result["size"]["height"]["result"], result["size"]["width"]["result"]] == list(
        y.shape[1:]
    )
    # Each cell, as a convolution of the intermediate and as a sum of input contributions.
    cells = result["cells"]
    if cells is None:  # too many to send at once: ask for some, one by one
        some = [
            (o, i, j)
            for o in range(y.shape[0])
            for i in (0, y.shape[1] - 1)
            for j in range(y.shape[2])
        ]
        cells = [
            post(client, "/transposed/explain", {**body, "cell": {"channel": o, "y": i, "x": j}})
            for o, i, j in some
        ]
    for cell in cells:
        o, i, j = cell["cell"]
        assert cell["value"] == pytest.approx(y[o, i, j], abs=1e-4)
        scattered = sum(c["product"] for c in cell["contributions"]) + cell["bias"]
        assert scattered == pytest.approx(y[o, i, j], abs=1e-4)


@pytest.mark.parametrize(
    ("s", "p", "op", "d", "f"), [(2, 0, 0, 1, 3), (2, 1, 1, 1, 3), (3, 2, 0, 2, 2), (1, 0, 0, 1, 1)]
)
def test_transposed_intermediate_and_contributions_against_the_loop(client, s, p, op, d, f) -> None:
    rng = np.random.default_rng(s + p + op + d + f)
    x = rng.integers(1, 9, (2, 3, 4)).astype(float)
    kernels = rng.integers(-2, 3, (2, 2, f, f)).astype(float)  # (C_out, C_in, f, f)
    weight = kernels.transpose(1, 0, 2, 3)
    body = {
        "input": x.tolist(),
        "kernels": kernels_body(kernels, np.array([1.0, -1.0])),
        "stride": s,
        "padding": p,
        "output_padding": op,
        "dilation": d,
    }
    result = post(client, "/transposed", body)
    y = oracle.conv_transpose2d(
        x[None], weight, np.array([1.0, -1.0]), (s, s), (p, p), (op, op), (d, d)
    )[0]
    assert_close(np.array(result["output"]), y)
    # The zero-inserted input: the input's cells s apart, zeros between.
    inserted = np.array(result["inserted"]["data"])
    assert inserted.shape == (2, 2 * s + 1, 3 * s + 1)
    assert np.array_equal(inserted[:, ::s, ::s], x)
    assert inserted.sum() == x.sum()
    edge = d * (f - 1) - p
    assert result["edges"] == [edge, edge + op, edge, edge + op]
    kinds = np.array(result["kinds"])  # 0 input cell, 1 inserted zero, 2 padding
    assert kinds.shape == np.array(result["intermediate"]["data"]).shape[1:]
    assert (kinds == 0).sum() == 3 * 4 and (kinds == 1).sum() == inserted[0].size - 3 * 4
    rows = kinds.shape[0]
    assert (kinds[:edge] == 2).all() and (kinds[rows - edge - op :] == 2).all()
    assert (kinds[edge : rows - edge - op, edge : kinds.shape[1] - edge - op] < 2).all()
    # The loop's scatter: which input cells and taps land on each output cell.
    for cell in result["cells"]:
        o, oy, ox = cell["cell"]
        expected = sorted(
            ([c, i, j], [a, b])
            for c in range(2)
            for i in range(3)
            for j in range(4)
            for a in range(f)
            for b in range(f)
            if i * s + a * d - p == oy and j * s + b * d - p == ox
        )
        assert sorted((c["input"], c["tap"]) for c in cell["contributions"]) == expected


def test_transposed_rejects_padding_beyond_the_kernel(client) -> None:
    body = {
        "input": [[[1, 2], [3, 4]]],
        "kernels": [{"weights": np.ones((1, 3, 3)).tolist()}],
        "padding": 3,
    }
    error = post(client, "/transposed", body, 422)["error"]
    assert error["code"] == "padding_too_large"
    assert error["message"].startswith(
        "padding must be between 0 and d(f - 1) = 2 for a 3x3 kernel"
    )


# ----------------------------------------------------------------------------- images


def test_an_uploaded_image_becomes_a_grid_of_block_means(client) -> None:
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pixels[:4, :4] = (200, 0, 0)
    pixels[:4, 4:] = (0, 100, 0)
    pixels[4:, :4] = (0, 0, 50)
    pixels[4:, 4:, :] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    files = {"image": ("blocks.png", buffer.getvalue(), "image/png")}
    rgb = client.post(API + "/from-image?size=2&color=rgb", files=files)
    assert rgb.status_code == 200, rgb.text
    assert rgb.json()["input"]["data"] == [
        [[200, 0], [0, 255]],
        [[0, 100], [0, 255]],
        [[0, 0], [50, 255]],
    ]
    grey = client.post(API + "/from-image?size=4&color=grayscale", files=files).json()["input"]
    assert grey["shape"] == [1, 4, 4]
    luma = [round(200 * 299 / 1000), round(100 * 587 / 1000), round(50 * 114 / 1000), 255]
    assert [
        grey["data"][0][0][0],
        grey["data"][0][0][3],
        grey["data"][0][3][0],
        grey["data"][0][3][3],
    ] == luma


def test_a_sample_becomes_a_grid_and_bad_input_is_refused(client) -> None:
    samples = client.get("/api/v1/samples").json()["samples"]
    result = client.post(API + "/from-image?size=6&color=rgb", data={"sample": samples[0]["id"]})
    assert result.status_code == 200, result.text
    grid = np.array(result.json()["input"]["data"])
    assert grid.shape == (3, 6, 6) and 0 <= grid.min() and grid.max() <= 255
    assert np.array_equal(grid, grid.round())
    assert (
        client.post(API + "/from-image?size=17", data={"sample": samples[0]["id"]}).status_code
        == 422
    )
    unknown = client.post(API + "/from-image", data={"sample": "no-such-sample"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_sample"
    text = client.post(
        API + "/from-image", files={"image": ("a.png", b"not an image", "image/png")}
    )
    assert text.status_code == 415
