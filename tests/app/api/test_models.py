"""GET /models, /models/{id}, /models/{id}/layers/{layer}/weights."""

from __future__ import annotations

import numpy as np
import pytest

from app.schemas import LayerWeights, ModelDetail, ModelList
from app.serialize import decode_f16
from engine import zoo

from ..conftest import API

SUMMARY_FIELDS = {
    "id",
    "name",
    "description",
    "input",
    "classes",
    "trained",
    "test_accuracy",
    "params",
    "macs",
    "flops",
    "preprocess",
    "dataset",
}


@pytest.fixture(scope="module")
def tiny():
    return zoo.load("tiny-vgg")


def test_list_models(client, tiny):
    response = client.get(f"{API}/models")
    assert response.status_code == 200
    body = ModelList.model_validate(response.json())
    assert [m.id for m in body.models] == ["tiny-vgg", "lenet5", "vgg16"]
    first = response.json()["models"][0]
    assert set(first) == SUMMARY_FIELDS
    assert first["input"] == {
        "channels": 3,
        "height": 32,
        "width": 32,
        "mean": tiny.input_spec.mean,
        "std": tiny.input_spec.std,
    }
    assert first["classes"] == tiny.classes and len(first["classes"]) == 10
    assert first["params"] == tiny.param_count
    assert first["flops"] == 2 * first["macs"] == 2 * tiny.macs
    assert first["preprocess"] == "photo" and first["dataset"] == "cifar10"
    assert first["trained"] == bool(tiny.meta.get("trained"))
    lenet = response.json()["models"][1]
    assert (
        lenet["input"]["channels"] == 1
        and lenet["preprocess"] == "digit"
        and lenet["dataset"] == "mnist"
    )


def test_model_detail_layers(client, tiny):
    response = client.get(f"{API}/models/tiny-vgg")
    assert response.status_code == 200
    detail = ModelDetail.model_validate(response.json())
    assert [layer.name for layer in detail.layers] == [layer.name for layer in tiny.layers]
    conv = response.json()["layers"][0]
    assert conv == {**tiny.describe()[0], "receptive_field": conv["receptive_field"]}
    assert conv["kind"] == "conv2d" and conv["index"] == 0
    assert conv["hyperparameters"]["kernel"] == [3, 3] and conv["hyperparameters"]["padding"] == 1
    assert conv["input_shape"] == [3, 32, 32] and conv["output_shape"] == [32, 32, 32]
    assert conv["params"] == 32 * 3 * 9 + 32 and conv["param_shapes"] == {
        "weight": [32, 3, 3, 3],
        "bias": [32],
    }
    assert conv["receptive_field"] == {
        "size": [3, 3],
        "jump": [1, 1],
        "start": [0.0, 0.0],
        "full": False,
    }
    pool1 = next(layer for layer in response.json()["layers"] if layer["name"] == "pool1")
    assert pool1["receptive_field"]["size"] == [6, 6] and pool1["receptive_field"]["jump"] == [2, 2]


def test_vgg16_metadata_without_loading_it(client, app):
    response = client.get(f"{API}/models/vgg16")
    assert response.status_code == 200
    body = response.json()
    assert body["params"] == 138_357_544
    assert len(body["layers"]) == 38 and len(body["classes"]) == 1000
    assert body["layers"][0]["output_shape"] == [64, 224, 224]
    assert body["flops"] == 2 * body["macs"] and 30e9 < body["flops"] < 31.5e9
    assert not app.state.registry.is_loaded("vgg16")  # metadata never draws the weights
    health = client.get(f"{API}/health").json()
    assert "vgg16" not in health["models_loaded"]


def test_unknown_model(client):
    for url in (f"{API}/models/resnet", f"{API}/models/resnet/layers/conv1/weights"):
        response = client.get(url)
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "unknown_model"
        assert "'resnet'" in error["message"] and "tiny-vgg, lenet5, vgg16" in error["message"]


def test_weights_json_equal_the_model(client, tiny):
    response = client.get(f"{API}/models/tiny-vgg/layers/conv1_1/weights")
    assert response.status_code == 200
    body = LayerWeights.model_validate(response.json())
    assert body.weight.shape == [32, 3, 3, 3] and body.weight.encoding == "json"
    np.testing.assert_array_equal(
        np.array(body.weight.data, np.float32).reshape(32, 3, 3, 3),
        tiny.layer("conv1_1").params["weight"],
    )
    np.testing.assert_array_equal(
        np.array(body.bias.data, np.float32), tiny.layer("conv1_1").params["bias"]
    )


def test_weights_f16_and_one_output(client, tiny):
    weight = tiny.layer("fc1").params["weight"]
    body = client.get(f"{API}/models/tiny-vgg/layers/fc1/weights?encoding=f16").json()
    assert body["weight"]["encoding"] == "f16" and body["weight"]["shape"] == list(weight.shape)
    decoded = decode_f16(body["weight"]["data"], body["weight"]["shape"])
    np.testing.assert_allclose(decoded, weight, rtol=2**-11, atol=2**-24)
    one = client.get(f"{API}/models/tiny-vgg/layers/fc1/weights?out=7").json()
    assert one["weight"]["shape"] == [weight.shape[1]] and one["bias"]["shape"] == [1]
    np.testing.assert_array_equal(np.array(one["weight"]["data"], np.float32), weight[7])


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("tiny-vgg/layers/relu1_1/weights", 404, "no_weights"),
        ("tiny-vgg/layers/conv9/weights", 404, "unknown_layer"),
        ("tiny-vgg/layers/conv1_1/weights?out=32", 422, "out_of_range"),
        ("tiny-vgg/layers/conv1_1/weights?out=-1", 422, "invalid_parameter"),
        ("tiny-vgg/layers/conv1_1/weights?encoding=f32", 422, "invalid_parameter"),
    ],
)
def test_weights_errors(client, url, status, code):
    response = client.get(f"{API}/models/{url}")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_weights_too_large_for_json(make_client):
    small = make_client(max_json_values=1000)
    response = small.get(f"{API}/models/tiny-vgg/layers/conv2_1/weights")  # 18,432 values
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "response_too_large" and "encoding=f16" in error["message"]
    assert small.get(f"{API}/models/tiny-vgg/layers/conv1_1/weights?out=0").status_code == 200
