"""The worked examples of the teaching notes (shared/docs/teaching.md), computed by the engine."""

from __future__ import annotations

import numpy as np
import pytest

from engine import ops, zoo
from engine.layers import AvgPool2d, Conv2d, Linear, MaxPool2d, Softmax

WINDOW_429 = np.array([[18, 54, 51], [55, 121, 75], [35, 24, 204]], np.float32)
KERNEL_X = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], np.float32)


def _conv_layer(weight: np.ndarray, bias=None, stride=1, padding=0) -> Conv2d:
    c_out, c_in, kh, kw = weight.shape
    layer = Conv2d("conv", c_in, c_out, (kh, kw), stride, padding)
    layer.params["weight"][...] = weight
    layer.params["bias"][...] = 0 if bias is None else bias
    return layer


# ----------------------------------------------------------------------- convolution


def test_the_429_window_via_conv2d():
    y = ops.conv2d(WINDOW_429[None, None], KERNEL_X[None, None])
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 18 + 51 + 121 + 35 + 204 == 429


def test_the_429_window_via_explain():
    """The window sits inside a bigger image; explain() shows it, the products and the sum."""
    image = np.zeros((1, 1, 6, 6), np.float32)
    image[0, 0, 1:4, 2:5] = WINDOW_429
    layer = _conv_layer(KERNEL_X[None, None])
    y = layer.forward(image)
    info = layer.explain(image[0], y[0], (0, 1, 2))
    np.testing.assert_array_equal(info["window"], WINDOW_429[None])
    np.testing.assert_array_equal(info["kernel"], KERNEL_X[None])
    np.testing.assert_array_equal(info["products"], (WINDOW_429 * KERNEL_X)[None])
    assert info["rows"] == [1, 2, 3] and info["cols"] == [2, 3, 4]
    assert info["channel_sums"] == [429.0] and info["bias"] == 0.0
    assert info["value"] == info["activation"] == 429.0


@pytest.mark.parametrize(
    "size, kernel, stride, padding, expected",
    [
        (6, 3, 1, 0, 4),  # a 3x3 kernel has 4x4 places to stand on a 6x6 image
        (6, 3, 1, 1, 6),  # padded by 1 (8x8): "same"
        (5, 3, 2, 0, 2),  # stride 2
        (32, 5, 1, 0, 28),
        (32, 7, 1, 0, 26),
    ],
)
def test_output_sizes(size, kernel, stride, padding, expected):
    layer = Conv2d("conv", 3, 1, kernel, stride, padding)
    assert layer.output_shape((3, size, size)) == (1, expected, expected)
    y = layer.forward(np.zeros((1, 3, size, size), np.float32))
    assert y.shape == (1, 1, expected, expected)
    if padding:
        assert ops.pad2d(np.zeros((1, 3, size, size), np.float32), padding).shape == (1, 3, 8, 8)


def test_32x32x3_with_5x5x3_kernels():
    one = Conv2d("conv", 3, 1, 5).describe((3, 32, 32))
    assert one["param_shapes"]["weight"] == [1, 3, 5, 5]  # each kernel is 5x5x3
    assert one["output_shape"] == [1, 28, 28]
    assert 28 * 28 == 784 and one["macs"] == 784 * 5 * 5 * 3  # 784 positions, 75 products each
    two = Conv2d("conv", 3, 2, 5).describe((3, 32, 32))
    assert two["output_shape"] == [2, 28, 28]  # the number of kernels is the depth


def test_weight_count_does_not_depend_on_the_image_size():
    small = Conv2d("conv", 3, 8, 3, padding=1).describe((3, 32, 32))
    large = Conv2d("conv", 3, 8, 3, padding=1).describe((3, 224, 224))
    assert small["params"] == large["params"] == 3 * 3 * 3 * 8 + 8
    assert large["macs"] == small["macs"] * (224 * 224) // (32 * 32)


def test_padding_uses_border_pixels_more_than_once():
    """How many windows read each pixel: the gradient of the sum of all outputs."""
    x = np.zeros((1, 1, 6, 6))
    w = np.ones((1, 1, 3, 3))
    for padding, corner, centre in [(0, 1, 9), (1, 4, 9)]:
        y = ops.conv2d(x, w, padding=padding)
        uses, _, _ = ops.conv2d_backward(np.ones_like(y), x, w, padding=padding)
        assert uses[0, 0, 0, 0] == corner and uses[0, 0, 2, 2] == centre


def test_odd_kernels_keep_same_padding_symmetric():
    assert ops.normalize_padding("same", (3, 3), in_size=(6, 6)) == (1, 1, 1, 1)
    assert ops.normalize_padding("same", (5, 5), in_size=(6, 6)) == (2, 2, 2, 2)
    assert ops.normalize_padding("same", (2, 2), in_size=(6, 6)) == (0, 1, 0, 1)
    assert ops.normalize_padding("valid", (3, 3)) == (0, 0, 0, 0)


def test_curve_detector():
    """A kernel shaped like a curve gives a large sum over a matching curve, 0 over blank."""
    curve = [(0, 3), (1, 2), (2, 1), (3, 1), (4, 0)]  # (row, col) of the curve in a 7x7 kernel
    kernel = np.zeros((7, 7), np.float32)
    image = np.zeros((7, 14), np.float32)  # left half: a drawn curve; right half: blank
    for (r, c), ink in zip(curve, [50, 50, 50, 20, 50], strict=True):
        kernel[r, c] = 30
        image[r, c] = ink
    y = ops.conv2d(image[None, None], kernel[None, None])
    assert y.shape == (1, 1, 1, 8)
    assert y[0, 0, 0, 0] == 4 * 50 * 30 + 20 * 30 == 6600
    assert y[0, 0, 0, 7] == 0
    assert int(np.argmax(y[0, 0, 0])) == 0  # the activation map shows where the curve is


def test_the_three_channel_two_filter_demo():
    """5x5x3 input padded to 7x7x3, two 3x3x3 filters with biases, stride 2 -> 3x3x2;
    one output is three per-channel inner products plus the bias."""
    rng = np.random.default_rng(231)
    x = rng.integers(0, 3, (1, 3, 5, 5)).astype(np.float32)
    w = rng.integers(-1, 2, (2, 3, 3, 3)).astype(np.float32)  # w0 and w1
    b = np.array([1, 0], np.float32)  # b0 and b1
    assert ops.pad2d(x, 1).shape == (1, 3, 7, 7)
    layer = _conv_layer(w, b, stride=2, padding=1)
    y = layer.forward(x)
    assert y.shape == (1, 2, 3, 3)
    padded = ops.pad2d(x, 1)[0]
    for f, oy, ox in np.ndindex(2, 3, 3):
        window = padded[:, 2 * oy : 2 * oy + 3, 2 * ox : 2 * ox + 3]
        per_channel = [float(np.sum(window[c] * w[f, c])) for c in range(3)]
        info = layer.explain(x[0], y[0], (f, oy, ox))
        assert info["channel_sums"] == per_channel
        assert info["bias"] == b[f]
        assert info["value"] == sum(per_channel) + b[f] == y[0, f, oy, ox]


# --------------------------------------------------------------------------- pooling


def test_max_pool_2x2_stride_2_keeps_a_quarter():
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float32)
    y = ops.max_pool2d(x[None, None], 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[6, 8], [3, 4]])
    np.testing.assert_array_equal(ops.avg_pool2d(x[None, None], 2, 2)[0, 0], [[3.25, 5.25], [2, 2]])


@pytest.mark.parametrize(
    "kernel, stride, size, expected",
    [(2, 2, 224, 112), (3, 1, 7, 5), (3, 2, 7, 3), (3, 2, 224, 111)],
)
def test_pooling_shapes_keep_the_depth(kernel, stride, size, expected):
    for layer in (MaxPool2d("pool", kernel, stride), AvgPool2d("pool", kernel, stride)):
        assert layer.output_shape((64, size, size)) == (64, expected, expected)
        assert layer.describe((64, size, size))["params"] == 0


# ---------------------------------------------------------------------------- VGG-16

# (layer, output (C, H, W) or (features,)) straight from the teaching notes.
VGG16_SHAPES = [
    ("conv1_1", (64, 224, 224)), ("conv1_2", (64, 224, 224)), ("pool1", (64, 112, 112)),
    ("conv2_1", (128, 112, 112)), ("conv2_2", (128, 112, 112)), ("pool2", (128, 56, 56)),
    ("conv3_1", (256, 56, 56)), ("conv3_2", (256, 56, 56)), ("conv3_3", (256, 56, 56)),
    ("pool3", (256, 28, 28)),
    ("conv4_1", (512, 28, 28)), ("conv4_2", (512, 28, 28)), ("conv4_3", (512, 28, 28)),
    ("pool4", (512, 14, 14)),
    ("conv5_1", (512, 14, 14)), ("conv5_2", (512, 14, 14)), ("conv5_3", (512, 14, 14)),
    ("pool5", (512, 7, 7)),
    ("flatten", (25088,)),
    ("fc1", (4096,)), ("fc2", (4096,)), ("fc3", (1000,)), ("softmax", (1000,)),
]  # fmt: skip


def test_vgg16_shapes(vgg16, vgg16_trace):
    described = {info["name"]: info for info in vgg16.describe()}
    for name, shape in VGG16_SHAPES:
        assert tuple(described[name]["output_shape"]) == shape, name
        assert vgg16_trace[name].shape == (1, *shape), name
    assert vgg16.input_spec.shape == (3, 224, 224)
    kinds = [layer.kind for layer in vgg16.layers]
    assert (
        kinds.count("conv2d") == 13 and kinds.count("linear") == 3 and kinds.count("maxpool2d") == 5
    )
    for name, _ in VGG16_SHAPES:
        if name.startswith("conv"):
            # ReLU after each convolution, same padding
            assert vgg16.layers[vgg16.index(name) + 1].name == name.replace("conv", "relu")
            assert vgg16.layer(name).pads((224, 224)) == (1, 1, 1, 1)


def test_vgg16_weight_counts(vgg16):
    """3 x 3 x (depth of the previous output) x (number of kernels here), plus biases."""
    depth = 3
    total = 0
    macs = 0
    for name, shape in VGG16_SHAPES:
        info = next(d for d in vgg16.describe() if d["name"] == name)
        if name.startswith("conv"):
            kernels = shape[0]
            assert info["param_shapes"] == {"weight": [kernels, depth, 3, 3], "bias": [kernels]}
            assert info["params"] == 3 * 3 * depth * kernels + kernels
            macs += shape[1] * shape[2] * 3 * 3 * depth * kernels
            depth = kernels
        elif name.startswith("fc"):
            assert info["param_shapes"]["weight"] == [shape[0], depth]
            assert info["params"] == depth * shape[0] + shape[0]
            macs += depth * shape[0]
            depth = shape[0]
        elif name == "flatten":
            depth = 7 * 7 * 512
        total += info["params"]
    assert vgg16.describe()[0]["param_shapes"]["weight"] == [64, 3, 3, 3]  # (3x3x3) x 64
    assert total == vgg16.param_count == 138_357_544
    assert vgg16.macs == macs == 15_470_264_320  # 30.9 GFLOP
    assert "138,357,544" in vgg16.summary().splitlines()[-1]


# ---------------------------------------------------------------------------- LeNet-5


def test_lenet5_shapes():
    model = zoo.load("lenet5")
    assert model.input_spec.shape == (1, 32, 32)
    shapes = {info["name"]: tuple(info["output_shape"]) for info in model.describe()}
    expected = {
        "conv1": (6, 28, 28),  # C1: six 5x5 kernels
        "pool1": (6, 14, 14),  # S2
        "conv2": (16, 10, 10),  # C3: sixteen 5x5 kernels
        "pool2": (16, 5, 5),  # S4
        "fc1": (120,),  # C5
        "fc2": (84,),  # F6
        "fc3": (10,),  # output
    }
    for name, shape in expected.items():
        assert shapes[name] == shape, name
    assert model.layer("conv1").kernel == model.layer("conv2").kernel == (5, 5)


# ------------------------------------------------------------- fully connected, softmax


def test_fully_connected_16_to_15():
    layer = Linear("fc", 16, 15)
    assert layer.params["weight"].shape == (15, 16)
    rng = np.random.default_rng(15)
    layer.params["weight"][...] = rng.integers(-2, 3, (15, 16))
    layer.params["bias"][...] = rng.integers(-2, 3, 15)
    x = rng.integers(0, 4, (1, 16)).astype(np.float32)
    y = layer.forward(x)
    assert y.shape == (1, 15)
    for i in range(15):
        by_hand = sum(float(layer.params["weight"][i, j]) * float(x[0, j]) for j in range(16))
        assert y[0, i] == by_hand + layer.params["bias"][i]
        assert layer.explain(x[0], y[0], (i,))["value"] == y[0, i]


def test_softmax_prediction_example():
    p = np.array([0, 0.1, 0.1, 0.75, 0, 0, 0, 0, 0, 0.05])
    assert p.sum() == pytest.approx(1.0) and int(np.argmax(p)) == 3
    with np.errstate(divide="ignore"):
        logits = np.log(p)[None]  # scores whose softmax is exactly p
    probabilities = ops.softmax(logits)
    np.testing.assert_allclose(probabilities[0], p, atol=1e-12)
    info = Softmax("softmax").explain(logits[0], probabilities[0], (3,))
    assert info["value"] == pytest.approx(0.75) and int(np.argmax(info["probabilities"])) == 3
