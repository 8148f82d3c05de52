"""Grad-CAM and input gradients against finite differences on a small model."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Softmax
from engine.model import InputSpec, Sequential
from engine.saliency import grad_cam, input_gradient, last_conv_layer, resize_bilinear


def small_model() -> Sequential:
    layers = [
        Conv2d("conv1", 2, 4, 3, 1, 1),
        ReLU("relu1"),
        Conv2d("conv2", 4, 3, 3, 1, 1),
        ReLU("relu2"),
        MaxPool2d("pool", 2, 2),
        Flatten("flatten"),
        Linear("fc", 3 * 3 * 3, 5),
        Softmax("softmax"),
    ]
    model = Sequential(layers, InputSpec(2, 6, 6), "small", [f"c{i}" for i in range(5)]).init(3)
    rng = np.random.default_rng(7)
    for _, value, _ in model.parameters():  # non-zero biases so no unit sits exactly at a kink
        if value.ndim == 1:
            value[...] = rng.normal(0, 0.1, value.shape)
    return model


def scores_from(model: Sequential, layer: str, maps: np.ndarray) -> np.ndarray:
    """Class scores (logits) computed from ``layer``'s maps, in float64."""
    h = maps
    for item in model.layers[model.index(layer) + 1 : model.index(model.logits_layer) + 1]:
        h = item.forward(h)
    return h


@pytest.fixture(scope="module")
def model_and_trace():
    model = small_model()
    x = np.random.default_rng(0).normal(size=(1, 2, 6, 6)).astype(np.float32)
    return model, model.forward(x)


def test_default_layers(model_and_trace):
    model, _ = model_and_trace
    assert last_conv_layer(model) == "conv2"
    assert model.logits_layer == "fc"


@pytest.mark.parametrize("class_index", [0, 3])
def test_grad_cam_channel_weights_match_finite_differences(model_and_trace, class_index):
    model, trace = model_and_trace
    result = grad_cam(model, trace, class_index)
    maps = trace["conv2"].astype(np.float64)
    eps = 1e-5
    fd = np.empty(maps.shape[1:])
    for c, y, x in np.ndindex(*maps.shape[1:]):
        plus, minus = maps.copy(), maps.copy()
        plus[0, c, y, x] += eps
        minus[0, c, y, x] -= eps
        diff = (
            scores_from(model, "conv2", plus)[0, class_index]
            - scores_from(model, "conv2", minus)[0, class_index]
        )
        fd[c, y, x] = diff / (2 * eps)
    expected_weights = fd.mean(axis=(1, 2))
    np.testing.assert_allclose(result.weights, expected_weights, rtol=1e-4, atol=1e-6)
    assert np.abs(expected_weights).max() > 1e-3  # the check is not vacuous
    expected_raw = np.maximum(np.tensordot(expected_weights, maps[0], axes=1), 0)
    np.testing.assert_allclose(result.raw, expected_raw, rtol=1e-4, atol=1e-5)
    assert result.cam.shape == (6, 6)
    assert result.layer == "conv2" and result.class_index == class_index


def test_grad_cam_at_another_layer_and_errors(model_and_trace):
    model, trace = model_and_trace
    result = grad_cam(model, trace, 1, layer="relu1")
    assert result.weights.shape == (4,) and result.raw.shape == (6, 6)
    with pytest.raises(ValueError, match="maps"):
        grad_cam(model, trace, 1, layer="fc")
    with pytest.raises(IndexError, match="class 5"):
        grad_cam(model, trace, 5)


def test_grad_cam_leaves_the_model_untouched(model_and_trace):
    model, trace = model_and_trace
    before = {k: v.copy() for k, v in model.state_dict().items()}
    grad_cam(model, trace, 2)
    input_gradient(model, trace, 2)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    assert all(layer._cache is None for layer in model.layers)


def test_input_gradient_matches_finite_differences(model_and_trace):
    model, trace = model_and_trace
    result = input_gradient(model, trace, 4)
    x = trace.input.astype(np.float64)
    eps = 1e-5
    rng = np.random.default_rng(1)
    for flat in rng.choice(x.size, 12, replace=False):
        index = np.unravel_index(flat, x.shape)
        plus, minus = x.copy(), x.copy()
        plus[index] += eps
        minus[index] -= eps
        up = _scores_from_input(model, plus)[0, 4]
        down = _scores_from_input(model, minus)[0, 4]
        assert result.gradient[index[1:]] == pytest.approx(
            (up - down) / (2 * eps), rel=1e-3, abs=1e-5
        )
    np.testing.assert_allclose(result.saliency, np.abs(result.gradient).max(axis=0))


def _scores_from_input(model: Sequential, x: np.ndarray) -> np.ndarray:
    h = x
    for item in model.layers[: model.index(model.logits_layer) + 1]:
        h = item.forward(h)
    return h


def test_concurrent_grad_cam_and_forward_agree(model_and_trace):
    model, trace = model_and_trace
    expected = grad_cam(model, trace, 0).raw
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                model.forward(trace.input)  # clears the shared layers' caches
                results.append(grad_cam(model, trace, 0).raw)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 80
    for raw in results:
        np.testing.assert_array_equal(raw, expected)


def test_resize_bilinear():
    a = np.array([[0.0, 1.0], [2.0, 3.0]])
    out = resize_bilinear(a, (4, 4))
    # Half-pixel centres: output 0 samples -0.25 (clamped to 0), output 1 samples 0.25.
    np.testing.assert_allclose(out[0], [0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(out[:, 0], [0.0, 0.5, 1.5, 2.0])
    same = np.random.default_rng(0).random((3, 5))
    np.testing.assert_allclose(resize_bilinear(same, (3, 5)), same, rtol=1e-6)
    assert resize_bilinear(same, (7, 2)).shape == (7, 2)
