"""engine.zoo: the built-in models, their initialisation, and explain() on every layer."""

from __future__ import annotations

import numpy as np
import pytest

from engine import zoo
from engine.layers import Conv2d, Linear
from engine.model import Sequential, Trace

SMALL_MODELS = ("tiny-vgg", "lenet5")


def _within(value: float, activation: float) -> bool:
    """explain()'s float64 arithmetic against the float32 forward pass: 1e-5 relative, plus
    a little absolute slack for sums of many terms that cancel to near zero."""
    return abs(value - activation) <= 1e-5 * abs(activation) + 1e-5


def _random_cells(
    shape: tuple[int, ...], count: int, rng: np.random.Generator
) -> list[tuple[int, ...]]:
    """``count`` random cells plus the first and the last (where padding is)."""
    cells = {tuple(0 for _ in shape), tuple(n - 1 for n in shape)}
    while len(cells) < min(count + 2, int(np.prod(shape))):
        cells.add(tuple(int(rng.integers(n)) for n in shape))
    return sorted(cells)


def _check_explain(model: Sequential, trace: Trace, name: str, cells, image: int) -> None:
    for cell in cells:
        info = model.explain(trace, name, cell, image=image)
        stored = float(trace[name][image][cell])
        assert info["activation"] == stored
        assert _within(info["value"], stored), (name, cell, info["value"], stored)


def test_model_names():
    assert zoo.MODEL_NAMES == ("tiny-vgg", "lenet5", "vgg16")
    with pytest.raises(KeyError, match="unknown model 'resnet'"):
        zoo.build("resnet")


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_load_works_trained_or_not(name):
    model = zoo.load(name)
    trained = zoo.weights_path(name).exists()
    assert model.meta["trained"] is trained
    assert model.meta["preprocess"] in ("photo", "digit") and model.meta["title"]
    if trained:
        assert 0.0 <= model.meta["test_accuracy"] <= 1.0
    else:
        assert model.meta["init_seed"] == 0
    assert len(model.classes) == 10
    assert model.architecture()["layers"] == zoo.build(name).architecture()["layers"]


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_build_is_seeded_he_initialisation(name):
    a, b, c = zoo.build(name, seed=0), zoo.build(name, seed=0), zoo.build(name, seed=1)
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key])
        if key.endswith(".bias"):
            assert not value.any()  # zero biases
        else:
            assert not np.array_equal(value, c.state_dict()[key])
    for layer in a.layers:
        if isinstance(layer, Conv2d | Linear):
            w = layer.params["weight"]
            fan_in = w[0].size
            if w.size >= 10_000:  # enough samples for a 5% check of the spread
                assert np.std(w) == pytest.approx(np.sqrt(2 / fan_in), rel=0.05), layer.name


def test_tiny_vgg_is_a_small_vgg():
    model = zoo.load("tiny-vgg")
    assert model.input_spec.shape == (3, 32, 32)
    assert len(model.input_spec.mean) == 3 and len(model.input_spec.std) == 3
    assert model.classes[:3] == ["airplane", "automobile", "bird"]
    convs = [layer for layer in model.layers if layer.kind == "conv2d"]
    assert convs
    for conv in convs:
        assert conv.kernel == (3, 3) and conv.stride == (1, 1) and conv.out_channels <= 64
        assert conv.pads((32, 32)) == (1, 1, 1, 1)  # same padding
        following = model.layers[model.index(conv.name) + 1]
        assert following.kind == "relu"
    for pool in (layer for layer in model.layers if layer.kind == "maxpool2d"):
        assert pool.kernel == (2, 2) and pool.stride == (2, 2)
    kinds = [layer.kind for layer in model.layers]
    assert kinds[-4:] == ["linear", "relu", "linear", "softmax"]
    assert model.shapes()[-1] == (10,)


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_explain_equals_the_trace_on_every_layer(name):
    model = zoo.load(name)
    rng = np.random.default_rng(SMALL_MODELS.index(name))
    x = rng.standard_normal((2, *model.input_spec.shape)).astype(np.float32)
    trace = model.forward(x)
    for image in range(2):
        for layer in model.layers:
            cells = _random_cells(trace[layer.name].shape[1:], 12, rng)
            _check_explain(model, trace, layer.name, cells, image)


VGG16_EXPLAINED = [
    "conv1_1",
    "relu1_2",
    "pool1",
    "conv3_2",
    "conv5_3",
    "pool5",
    "flatten",
    "fc1",
    "fc3",
    "softmax",
]


def test_vgg16_explain_equals_the_trace(vgg16, vgg16_trace):
    rng = np.random.default_rng(5)
    for name in VGG16_EXPLAINED:
        cells = _random_cells(vgg16_trace[name].shape[1:], 3, rng)
        _check_explain(vgg16, vgg16_trace, name, cells, 0)


# Receptive field side and jump (input pixels) after each VGG-16 layer with weights.
VGG16_RECEPTIVE_FIELDS = {
    "conv1_1": (3, 1), "conv1_2": (5, 1), "pool1": (6, 2),
    "conv2_1": (10, 2), "conv2_2": (14, 2), "pool2": (16, 4),
    "conv3_1": (24, 4), "conv3_2": (32, 4), "conv3_3": (40, 4), "pool3": (44, 8),
    "conv4_1": (60, 8), "conv4_2": (76, 8), "conv4_3": (92, 8), "pool4": (100, 16),
    "conv5_1": (132, 16), "conv5_2": (164, 16), "conv5_3": (196, 16), "pool5": (212, 32),
}  # fmt: skip


def test_vgg16_receptive_fields(vgg16):
    described = {info["name"]: info for info in vgg16.describe()}
    for name, (size, jump) in VGG16_RECEPTIVE_FIELDS.items():
        rf = described[name]["receptive_field"]
        assert rf["size"] == [size, size] and rf["jump"] == [jump, jump] and not rf["full"], name
        relu = name.replace("conv", "relu")
        if relu in described:  # ReLU looks at exactly what its convolution saw
            assert described[relu]["receptive_field"] == rf
    # The centre of pool1's first cell sits between input pixels 0 and 1.
    assert described["pool1"]["receptive_field"]["start"] == [0.5, 0.5]
    assert described["fc1"]["receptive_field"]["full"] is True
    fields = vgg16.receptive_fields()
    assert fields["pool1"].region(5, 3, 224, 224) == {
        "top": 8,
        "left": 4,
        "bottom": 14,
        "right": 10,
    }
    # conv5_3 cell 7: centre 7.5 + 7 x 16 = 119.5, 196 pixels wide
    assert fields["conv5_3"].region(7, 7, 224, 224) == {
        "top": 22,
        "left": 22,
        "bottom": 218,
        "right": 218,
    }
    assert fields["fc2"].region(0, 0, 224, 224) == {
        "top": 0,
        "left": 0,
        "bottom": 224,
        "right": 224,
    }
