"""POST /models/{id}/runs and /activations, and everything under /runs/{run_id}."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.heatmap import colorize, colormap_table
from app.schemas import Activations, CellExplanation, LayerTensor, RunSummary, SaliencyData
from app.serialize import decode_f16
from engine import preprocess, zoo
from engine.saliency import grad_cam, input_gradient

from ..conftest import API, encode, photo, upload


@pytest.fixture(scope="module")
def tiny():
    return zoo.load("tiny-vgg")


@pytest.fixture(scope="module")
def expected(tiny, photo_png):
    """The engine's own trace of the test photo, computed without the server."""
    image = preprocess.open_image(photo_png, size_hint=preprocess.decode_size(tiny))
    x = preprocess.prepare(image, tiny)
    return tiny.forward(x[None])


def url(run: dict, path: str = "") -> str:
    return f"{API}/runs/{run['run_id']}{path}"


def png_image(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


# --- creating runs ------------------------------------------------------------------------


def test_run_summary_fields_and_numbers(tiny_run, tiny, expected):
    summary = RunSummary.model_validate(tiny_run)
    assert set(tiny_run) == {
        "run_id",
        "model_id",
        "created",
        "reused",
        "input",
        "predictions",
        "layers",
    }
    assert tiny_run["model_id"] == "tiny-vgg" and len(tiny_run["run_id"]) >= 20
    assert tiny_run["input"] == {
        "shape": [3, 32, 32],
        "image_url": f"/api/v1/runs/{summary.run_id}/input.png",
    }
    assert tiny_run["created"].endswith("Z")
    probabilities = [p["probability"] for p in tiny_run["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-6)
    softmax = expected["softmax"][0]
    for p in tiny_run["predictions"]:
        assert p["class"] == tiny.classes[p["index"]]
        assert p["probability"] == pytest.approx(float(softmax[p["index"]]), rel=1e-6)
    assert [layer["name"] for layer in tiny_run["layers"]] == list(expected.outputs)
    for layer in tiny_run["layers"]:
        out = expected[layer["name"]][0]
        assert layer["shape"] == list(out.shape)
        assert layer["kind"] == tiny.layer(layer["name"]).kind
        assert layer["min"] == pytest.approx(float(out.min()), abs=1e-6)
        assert layer["max"] == pytest.approx(float(out.max()), abs=1e-6)
        assert layer["mean"] == pytest.approx(float(out.mean()), rel=1e-5, abs=1e-6)


def test_identical_upload_reuses_the_run(client, app, tiny_run, photo_png):
    kept = len(app.state.runs)
    again = client.post(f"{API}/models/tiny-vgg/runs", **upload(photo_png, "other-name.png"))
    assert again.status_code == 201
    assert again.json()["run_id"] == tiny_run["run_id"] and again.json()["reused"] is True
    assert len(app.state.runs) == kept
    other_model = client.post(f"{API}/models/lenet5/runs", **upload(photo_png))
    assert other_model.status_code == 201 and other_model.json()["run_id"] != tiny_run["run_id"]


def test_raw_image_body(client, tiny_run, photo_png):
    response = client.post(
        f"{API}/models/tiny-vgg/runs", content=photo_png, headers={"content-type": "image/png"}
    )
    assert response.status_code == 201 and response.json()["run_id"] == tiny_run["run_id"]


def test_get_run_again(client, tiny_run):
    response = client.get(url(tiny_run))
    assert response.status_code == 200
    assert {**response.json(), "reused": False} == {**tiny_run, "reused": False}


def test_unknown_run(client):
    response = client.get(f"{API}/runs/not-a-run/layers/conv1_1")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "run_not_found" and "post the image again" in error["message"]


def test_evicted_run_says_post_again(make_client, photo_png):
    small = make_client(run_cache_bytes=1)  # every new run evicts the previous one
    first = small.post(f"{API}/models/tiny-vgg/runs", **upload(photo_png)).json()
    second = small.post(f"{API}/models/tiny-vgg/runs", **upload(encode(photo(seed=5)))).json()
    assert small.get(f"{API}/runs/{second['run_id']}").status_code == 200
    response = small.get(f"{API}/runs/{first['run_id']}/layers/conv1_1")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "run_expired"
    assert "expired" in error["message"] and "post the image again" in error["message"]
    again = small.post(f"{API}/models/tiny-vgg/runs", **upload(photo_png))
    assert again.status_code == 201 and again.json()["reused"] is False


# --- layers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["conv1_1", "relu2_1", "pool3", "flatten", "fc1", "softmax"])
def test_layer_json_equals_the_trace(client, tiny_run, expected, layer):
    response = client.get(url(tiny_run, f"/layers/{layer}"))
    assert response.status_code == 200
    body = LayerTensor.model_validate(response.json())
    out = expected[layer][0]
    assert body.shape == list(out.shape) and body.encoding == "json" and body.channel is None
    np.testing.assert_array_equal(np.array(body.data, np.float32).reshape(out.shape), out)
    assert body.min == pytest.approx(float(out.min())) and body.max == pytest.approx(
        float(out.max())
    )
    assert response.headers["cache-control"].startswith("private")


def test_input_layer_is_the_normalised_image(client, tiny_run, expected):
    body = client.get(url(tiny_run, "/layers/input")).json()
    assert body["kind"] == "input" and body["shape"] == [3, 32, 32]
    np.testing.assert_array_equal(
        np.array(body["data"], np.float32).reshape(3, 32, 32), expected.input[0]
    )


def test_layer_f16_within_half_precision(client, tiny_run, expected):
    body = client.get(url(tiny_run, "/layers/conv2_1?encoding=f16")).json()
    assert body["encoding"] == "f16" and isinstance(body["data"], str)
    decoded = decode_f16(body["data"], body["shape"])
    out = expected["conv2_1"][0]
    np.testing.assert_allclose(decoded, out, rtol=2**-11, atol=2**-24)
    assert np.abs(decoded - out).max() > 0  # it is f16, not f32 in disguise


def test_one_channel(client, tiny_run, expected):
    body = client.get(url(tiny_run, "/layers/relu1_2?channel=5")).json()
    out = expected["relu1_2"][0, 5]
    assert body["shape"] == [32, 32] and body["channel"] == 5
    np.testing.assert_array_equal(np.array(body["data"], np.float32).reshape(32, 32), out)
    assert body["max"] == pytest.approx(float(out.max()))


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/layers/conv7", 404, "unknown_layer"),
        ("/layers/conv1_1?channel=32", 422, "out_of_range"),
        ("/layers/fc1?channel=0", 422, "not_a_map"),
        ("/layers/conv1_1?encoding=png", 422, "invalid_parameter"),
        ("/layers/conv1_1?channel=abc", 422, "invalid_parameter"),
    ],
)
def test_layer_errors(client, tiny_run, path, status, code):
    response = client.get(url(tiny_run, path))
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_validation_error_names_the_parameter(client, tiny_run):
    error = client.get(url(tiny_run, "/layers/conv1_1?channel=abc")).json()["error"]
    assert (
        "channel" in error["message"]
        and error["details"][0]["location"] == "query parameter 'channel'"
    )


# --- PNGs -------------------------------------------------------------------------------------


def test_input_png_is_what_the_model_saw(client, tiny_run, expected, tiny):
    image = png_image(client.get(url(tiny_run, "/input.png")))
    assert image.size == (32, 32) and image.mode == "RGB"
    np.testing.assert_array_equal(
        np.asarray(image), preprocess.to_display(expected.input[0], tiny.input_spec)
    )
    big = png_image(client.get(url(tiny_run, "/input.png?scale=3")))
    assert big.size == (96, 96)
    np.testing.assert_array_equal(np.asarray(big)[::3, ::3], np.asarray(image))


def test_channel_png_colours_and_range(client, tiny_run, expected):
    response = client.get(url(tiny_run, "/layers/conv1_1/channels/4.png?scale=2"))
    image = png_image(response)
    assert image.size == (64, 64)
    layer = expected["conv1_1"][0]
    m = float(np.abs(layer).max())  # diverging, symmetric: conv outputs have both signs
    assert response.headers["x-colormap"] == "diverging"
    assert float(response.headers["x-vmin"]) == pytest.approx(-m) and float(
        response.headers["x-vmax"]
    ) == pytest.approx(m)
    np.testing.assert_array_equal(
        np.asarray(image)[::2, ::2], colorize(layer[4], "diverging", -m, m)
    )


def test_channel_png_defaults_to_sequential_for_relu(client, tiny_run, expected):
    response = client.get(url(tiny_run, "/layers/relu1_1/channels/0.png"))
    assert (
        response.headers["x-colormap"] == "sequential" and float(response.headers["x-vmin"]) == 0.0
    )
    top = float(expected["relu1_1"][0].max())
    np.testing.assert_array_equal(
        np.asarray(png_image(response)), colorize(expected["relu1_1"][0, 0], "sequential", 0, top)
    )


def test_channel_png_fixed_range(client, tiny_run, expected):
    response = client.get(
        url(tiny_run, "/layers/conv1_1/channels/0.png?cmap=sequential&vmin=-1&vmax=2")
    )
    np.testing.assert_array_equal(
        np.asarray(png_image(response)), colorize(expected["conv1_1"][0, 0], "sequential", -1, 2)
    )


@pytest.mark.parametrize(
    "path",
    [
        "/layers/conv1_1/channels/0.png?vmin=2&vmax=1",
        "/layers/conv1_1/channels/0.png?vmin=nan",
        "/layers/conv1_1/channels/0.png?scale=0",
        "/layers/conv1_1/channels/0.png?scale=65",
        "/layers/conv1_1/channels/0.png?cmap=jet",
        "/layers/conv1_1/channels/99.png",
        "/layers/fc1/channels/0.png",
        "/layers/fc1/channels.png",
        "/input.png?scale=200",
    ],
)
def test_png_parameter_errors(client, tiny_run, path):
    response = client.get(url(tiny_run, path))
    assert response.status_code == 422, path
    assert set(response.json()["error"]) >= {"code", "message"}


def test_channel_atlas(client, tiny_run, expected):
    response = client.get(url(tiny_run, "/layers/conv2_1/channels.png?cols=10"))
    image = png_image(response)
    assert image.mode == "P"
    assert response.headers["x-grid"] == "10 7 16 16"  # 64 channels in rows of 10
    assert image.size == (160, 112)
    rgb = np.asarray(image.convert("RGB"))
    layer = expected["conv2_1"][0]
    m = float(np.abs(layer).max())
    tile = rgb[16 * 2 : 16 * 3, 16 * 3 : 16 * 4]  # channel 23: row 2, column 3
    np.testing.assert_array_equal(tile, colorize(layer[23], "diverging", -m, m))
    np.testing.assert_array_equal(
        np.asarray(image.getpalette(), np.uint8).reshape(-1, 3)[:256], colormap_table("diverging")
    )


# --- explain --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "query", "cell"),
    [
        ("conv1_1", "channel=3&y=0&x=31", (3, 0, 31)),
        ("conv2_2", "channel=10&y=7&x=8", (10, 7, 8)),
        ("relu1_1", "channel=0&y=5&x=5", (0, 5, 5)),
        ("pool2", "channel=4&y=3&x=2", (4, 3, 2)),
        ("flatten", "index=100", (100,)),
        ("fc1", "index=17", (17,)),
        ("relu_fc1", "index=17", (17,)),
        ("fc2", "index=9", (9,)),
        ("softmax", "index=2", (2,)),
    ],
)
def test_explain_value_equals_the_activation(client, tiny_run, expected, layer, query, cell):
    response = client.get(url(tiny_run, f"/layers/{layer}/explain?{query}"))
    assert response.status_code == 200, response.text
    info = response.json()
    CellExplanation.model_validate(info)
    stored = float(expected[layer][0][cell])
    assert info["layer"] == layer and info["cell"] == list(cell)
    assert info["activation"] == pytest.approx(stored, abs=0)
    assert info["value"] == pytest.approx(stored, rel=1e-5, abs=1e-5)
    fetched = client.get(url(tiny_run, f"/layers/{layer}")).json()["data"]
    assert np.float32(
        fetched[int(np.ravel_multi_index(cell, expected[layer][0].shape))]
    ) == np.float32(stored)


def test_explain_conv_arithmetic_and_receptive_field(client, tiny_run, tiny):
    info = client.get(url(tiny_run, "/layers/conv1_1/explain?channel=2&y=0&x=0")).json()
    assert info["kind"] == "conv2d" and info["rows"] == [-1, 0, 1]
    assert info["padded"] == [[True, True, True], [True, False, False], [True, False, False]]
    products = np.array(info["products"])
    np.testing.assert_allclose(products, np.array(info["window"]) * np.array(info["kernel"]))
    np.testing.assert_allclose(info["channel_sums"], products.sum(axis=(1, 2)))
    assert sum(info["channel_sums"]) + info["bias"] == pytest.approx(info["value"])
    assert info["receptive_field"] == {"top": 0, "left": 0, "bottom": 2, "right": 2}
    deep = client.get(url(tiny_run, "/layers/conv3_1/explain?channel=0&y=3&x=6")).json()
    # conv3_1 sees 24 x 24 pixels, 4 apart: cell (3, 6) is centred on (13.5, 25.5)
    assert deep["receptive_field"] == {"top": 2, "left": 14, "bottom": 26, "right": 32}
    assert deep["receptive_field"] == tiny.receptive_fields()["conv3_1"].region(3, 6, 32, 32)


def test_explain_pool_has_nan_free_window_and_argmax(client, tiny_run, expected):
    info = client.get(url(tiny_run, "/layers/pool1/explain?channel=1&y=4&x=6")).json()
    window = np.array(info["window"], dtype=np.float64)
    ay, ax = info["argmax"]
    assert window[ay, ax] == info["value"] == pytest.approx(float(expected["pool1"][0, 1, 4, 6]))
    assert info["argmax_input"] == [8 + ay, 12 + ax]


def test_explain_linear_terms(client, tiny_run):
    info = client.get(url(tiny_run, "/layers/fc2/explain?index=4")).json()
    assert len(info["terms"]) == 10 and len(info["products"]) == 256
    assert info["terms_sum"] + info["bias"] == pytest.approx(info["value"], abs=1e-6)
    magnitudes = [abs(t["product"]) for t in info["terms"]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert "receptive_field" not in info


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/layers/conv1_1/explain?channel=0&y=0", "missing_parameter"),
        ("/layers/conv1_1/explain?channel=0&y=0&x=32", "out_of_range"),
        ("/layers/conv1_1/explain?channel=32&y=0&x=0", "out_of_range"),
        ("/layers/fc1/explain?channel=0&y=0&x=0", "missing_parameter"),
        ("/layers/fc1/explain?index=256", "out_of_range"),
        ("/layers/fc1/explain?index=-1", "invalid_parameter"),
        ("/layers/input/explain?channel=0&y=0&x=0", "not_computed"),
    ],
)
def test_explain_errors(client, tiny_run, path, code):
    response = client.get(url(tiny_run, path))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


# --- saliency -------------------------------------------------------------------------------


def test_saliency_json_equals_the_engine(client, tiny_run, expected, tiny):
    response = client.get(url(tiny_run, "/saliency?class=6&format=json"))
    assert response.status_code == 200
    body = SaliencyData.model_validate(response.json()).model_dump(by_alias=True)
    reference = grad_cam(tiny, expected, 6)
    assert (
        body["class"] == 6 and body["class_name"] == tiny.classes[6] and body["layer"] == "conv3_2"
    )
    assert body["shape"] == [32, 32]
    np.testing.assert_allclose(
        np.array(body["data"]).reshape(32, 32), reference.cam, rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(body["weights"], reference.weights, rtol=1e-5, atol=1e-8)
    assert body["max"] == pytest.approx(float(reference.cam.max()))


def test_saliency_defaults_to_the_top_class_and_png(client, tiny_run):
    top = tiny_run["predictions"][0]["index"]
    body = client.get(url(tiny_run, "/saliency?format=json")).json()
    assert body["class"] == top
    image = png_image(client.get(url(tiny_run, "/saliency?scale=2")))
    assert image.size == (64, 64) and image.mode == "RGBA"
    opaque = png_image(client.get(url(tiny_run, "/saliency?overlay=false")))
    assert opaque.mode == "RGB" and opaque.size == (32, 32)
    values = np.array(body["data"]).reshape(32, 32)
    if body["max"] > 0:
        alpha = np.asarray(image)[::2, ::2, 3]
        np.testing.assert_array_equal(
            alpha, np.floor(values / body["max"] * 200 + 0.5).astype(np.uint8)
        )


def test_input_gradient_saliency(client, tiny_run, expected, tiny):
    body = client.get(url(tiny_run, "/saliency?class=1&method=gradient&format=json")).json()
    assert body["method"] == "gradient" and body["layer"] is None and body["weights"] is None
    reference = input_gradient(tiny, expected, 1).saliency
    np.testing.assert_allclose(
        np.array(body["data"]).reshape(32, 32), reference, rtol=1e-5, atol=1e-8
    )


def test_saliency_errors(client, tiny_run):
    assert client.get(url(tiny_run, "/saliency?class=10")).json()["error"]["code"] == "out_of_range"
    assert client.get(url(tiny_run, "/saliency?layer=fc1")).status_code == 422
    assert client.get(url(tiny_run, "/saliency?format=gif")).status_code == 422
    other = client.get(url(tiny_run, "/saliency?layer=relu2_2&format=json")).json()
    assert other["layer"] == "relu2_2"


def test_lenet_run_and_saliency(client, lenet_run):
    assert lenet_run["input"]["shape"] == [1, 32, 32] and len(lenet_run["predictions"]) == 10
    body = client.get(url(lenet_run, "/saliency?format=json")).json()
    assert body["layer"] == "conv2" and body["shape"] == [32, 32]
    assert png_image(client.get(url(lenet_run, "/input.png"))).mode == "RGB"


# --- activations ------------------------------------------------------------------------------


def test_activations_equal_the_trace(client, photo_png, expected):
    response = client.post(f"{API}/models/tiny-vgg/activations", **upload(photo_png))
    assert response.status_code == 200
    body = Activations.model_validate(response.json())
    assert [layer.name for layer in body.layers] == list(expected.outputs)
    for layer in body.layers:
        out = expected[layer.name][0]
        assert layer.shape == list(out.shape)
        np.testing.assert_array_equal(np.array(layer.data, np.float32).reshape(out.shape), out)
    assert [p.index for p in body.predictions] == list(
        np.argsort(-expected["softmax"][0], kind="stable")
    )


def test_activations_some_layers_as_f16(client, photo_png, expected):
    response = client.post(
        f"{API}/models/tiny-vgg/activations?layers=input,conv1_1,fc2&encoding=f16",
        **upload(photo_png),
    )
    body = response.json()
    assert [layer["name"] for layer in body["layers"]] == ["input", "conv1_1", "fc2"]
    for layer in body["layers"]:
        np.testing.assert_allclose(
            decode_f16(layer["data"], layer["shape"]),
            expected[layer["name"]][0],
            rtol=2**-11,
            atol=2**-24,
        )
    missing = client.post(
        f"{API}/models/tiny-vgg/activations?layers=conv1_1,nope", **upload(photo_png)
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_layer"
