"""engine.layers: explain() arithmetic, describe(), receptive fields, configs and errors."""

from __future__ import annotations

import numpy as np
import pytest

from engine import ops
from engine.layers import (
    LAYER_KINDS,
    AvgPool2d,
    Conv2d,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReceptiveField,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    layer_from_config,
)
from engine.model import InputSpec, Sequential

from .checks import assert_close


def _close(value: float, expected: float, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    return abs(value - expected) <= atol + rtol * abs(expected)


def _conv(name="conv", c_in=2, c_out=3, kernel=3, stride=1, padding=0, dilation=1, seed=0):
    layer = Conv2d(name, c_in, c_out, kernel, stride, padding, dilation)
    rng = np.random.default_rng(seed)
    layer.init(rng)
    layer.params["bias"][...] = rng.standard_normal(c_out)
    return layer


# --------------------------------------------------------------------------- conv2d


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation",
    [(3, 1, 1, 1), (3, 2, (2, 0, 1, 1), 1), ((2, 3), (1, 2), "same", (2, 1)), (1, 3, 0, 1)],
)
def test_conv2d_explain_is_the_window_times_the_kernel(kernel, stride, padding, dilation):
    layer = _conv(kernel=kernel, stride=stride, padding=padding, dilation=dilation, seed=1)
    x = np.random.default_rng(2).standard_normal((1, 2, 7, 6)).astype(np.float32)
    y = layer.forward(x)
    pads = layer.pads((7, 6))
    xp = ops.pad2d(x, pads)[0]
    (sh, sw), (dh, dw), (kh, kw) = layer.stride, layer.dilation, layer.kernel
    for c, oy, ox in np.ndindex(*y.shape[1:]):
        info = layer.explain(x[0], y[0], (c, oy, ox))
        rows = [oy * sh + i * dh - pads[0] for i in range(kh)]
        cols = [ox * sw + j * dw - pads[2] for j in range(kw)]
        assert info["rows"] == rows and info["cols"] == cols
        window = np.array(info["window"])
        expected = xp[
            :,
            oy * sh : oy * sh + dh * (kh - 1) + 1 : dh,
            ox * sw : ox * sw + dw * (kw - 1) + 1 : dw,
        ]
        np.testing.assert_array_equal(window, expected)
        padded = np.array(info["padded"])
        outside = [[not (0 <= r < 7 and 0 <= q < 6) for q in cols] for r in rows]
        np.testing.assert_array_equal(padded, outside)
        assert np.all(window[:, padded] == 0)
        products = np.array(info["products"])
        np.testing.assert_allclose(products, window * layer.params["weight"][c], rtol=1e-6)
        np.testing.assert_allclose(info["channel_sums"], products.sum(axis=(1, 2)), rtol=1e-12)
        assert info["bias"] == pytest.approx(float(layer.params["bias"][c]))
        assert info["value"] == pytest.approx(sum(info["channel_sums"]) + info["bias"], rel=1e-12)
        assert _close(info["value"], float(y[0, c, oy, ox]))
        assert info["activation"] == float(y[0, c, oy, ox])


def test_conv2d_describe():
    layer = Conv2d("conv1", 3, 6, 5)
    info = layer.describe((3, 32, 32))
    assert info["name"] == "conv1" and info["kind"] == "conv2d"
    assert info["input_shape"] == [3, 32, 32] and info["output_shape"] == [6, 28, 28]
    assert info["params"] == 6 * 3 * 5 * 5 + 6
    assert info["param_shapes"] == {"weight": [6, 3, 5, 5], "bias": [6]}
    assert info["macs"] == 28 * 28 * 6 * 3 * 5 * 5
    assert info["flops"] == 2 * info["macs"]
    assert info["hyperparameters"] == {
        "in_channels": 3,
        "out_channels": 6,
        "kernel": [5, 5],
        "stride": [1, 1],
        "padding": 0,
        "dilation": [1, 1],
        "bias": True,
    }
    assert info["receptive_field"] == {
        "size": [5, 5],
        "jump": [1, 1],
        "start": [2.0, 2.0],
        "full": False,
    }


# -------------------------------------------------------------------------- pooling


def test_max_pool_explain_argmax_is_where_the_gradient_goes():
    """The explained arg-max is the cell the backward pass credits, ties included."""
    layer = MaxPool2d("pool", 3, 2, 1)
    rng = np.random.default_rng(3)
    x = rng.integers(-1, 2, (1, 2, 7, 6)).astype(np.float32)  # many ties
    y = layer.forward(x, training=True)
    for c, oy, ox in np.ndindex(*y.shape[1:]):
        dy = np.zeros_like(y)
        dy[0, c, oy, ox] = 1
        dx = layer.backward(dy)
        info = layer.explain(x[0], y[0], (c, oy, ox))
        (r, q) = info["argmax_input"]
        assert dx[0, c, r, q] == 1 and dx.sum() == 1
        ay, ax = info["argmax"]
        assert (info["rows"][ay], info["cols"][ax]) == (r, q)
        window = np.array(info["window"])
        padded = np.array(info["padded"])
        assert np.all(np.isnan(window[padded])) and not np.any(np.isnan(window[~padded]))
        assert info["value"] == float(x[0, c, r, q]) == info["activation"] == np.nanmax(window)
        # first maximum in row-major order: nothing equal to it earlier in the window
        flat = np.where(padded, -np.inf, window).ravel()
        assert int(np.argmax(flat)) == ay * window.shape[1] + ax


def test_avg_pool_explain_counts_padding():
    layer = AvgPool2d("avg", 3, 2, 1)
    x = np.random.default_rng(4).standard_normal((1, 2, 5, 6)).astype(np.float32)
    y = layer.forward(x)
    info = layer.explain(x[0], y[0], (1, 0, 0))  # corner: 5 of the 9 taps are padding
    assert np.array(info["padded"]).sum() == 5
    assert info["count"] == 9
    assert info["sum"] == pytest.approx(float(x[0, 1, :2, :2].astype(np.float64).sum()), rel=1e-12)
    assert _close(info["value"], float(y[0, 1, 0, 0])) and info["value"] == info["sum"] / 9


# ---------------------------------------------------------------------- activations


@pytest.mark.parametrize(
    "layer, f",
    [
        (ReLU("r"), lambda v: max(v, 0.0)),
        (LeakyReLU("l", 0.2), lambda v: v if v > 0 else 0.2 * v),
        (Sigmoid("s"), lambda v: 1 / (1 + np.exp(-v))),
        (Tanh("t"), np.tanh),
    ],
    ids=lambda p: getattr(p, "kind", ""),
)
def test_activation_explain(layer, f):
    x = np.array([[-2.5, -0.1, 0.0, 0.3, 4.0]], np.float32)
    y = layer.forward(x)
    for i in range(5):
        info = layer.explain(x[0], y[0], (i,))
        assert info["input"] == float(x[0, i])
        assert _close(info["value"], float(f(float(x[0, i]))))
        assert _close(info["value"], float(y[0, i]))
        assert info["formula"]
        if layer.kind == "relu":
            assert info["clipped"] == (x[0, i] < 0)
    if layer.kind == "leaky_relu":
        assert "0.2" in layer.explain(x[0], y[0], (0,))["formula"]


def test_flatten_explain_gives_the_source_cell():
    layer = Flatten("flatten")
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    y = layer.forward(x)
    info = layer.explain(x[1], y[1], (37,))  # 37 = (1 * 4 + 3) * 5 + 2
    assert info["source"] == [1, 3, 2]
    assert info["value"] == info["activation"] == float(x[1, 1, 3, 2])


def test_linear_explain_lists_products_and_top_terms():
    layer = Linear("fc", 16, 15)
    rng = np.random.default_rng(5)
    layer.init(rng)
    layer.params["bias"][...] = rng.standard_normal(15)
    x = rng.standard_normal((1, 16)).astype(np.float32)
    y = layer.forward(x)
    info = layer.explain(x[0], y[0], (4,))
    products = np.array(info["products"])
    assert products.shape == (16,)
    np.testing.assert_allclose(products, layer.params["weight"][4] * x[0], rtol=1e-6)
    magnitudes = [abs(t["product"]) for t in info["terms"]]
    assert len(info["terms"]) == 10 and magnitudes == sorted(magnitudes, reverse=True)
    assert magnitudes[0] == np.abs(products).max()
    assert min(magnitudes) >= np.sort(np.abs(products))[-10]
    for term in info["terms"]:
        j = term["index"]
        assert term["input"] == float(x[0, j]) and term["weight"] == float(
            layer.params["weight"][4, j]
        )
    assert info["terms_sum"] == pytest.approx(products.sum(), rel=1e-12)
    assert info["value"] == pytest.approx(info["terms_sum"] + info["bias"], rel=1e-12)
    assert _close(info["value"], float(y[0, 4]))
    assert len(layer.explain(x[0], y[0], (4,), top=3)["terms"]) == 3


def test_softmax_explain():
    layer = Softmax("softmax")
    x = np.array([[1.0, 3.0, -2.0, 3.0, 0.5]], np.float32)
    y = layer.forward(x)
    info = layer.explain(x[0], y[0], (1,))
    assert info["shift"] == 3.0
    exps = np.exp(x[0].astype(np.float64) - 3.0)
    np.testing.assert_allclose(info["exps"], exps, rtol=1e-12)
    assert info["sum"] == pytest.approx(exps.sum(), rel=1e-12)
    assert sum(info["probabilities"]) == pytest.approx(1.0, abs=1e-12)
    assert info["value"] == pytest.approx(exps[1] / exps.sum(), rel=1e-12)
    assert _close(info["value"], float(y[0, 1]))


def test_explain_rejects_a_cell_outside_the_output():
    layer = _conv("conv9")
    x = np.zeros((1, 2, 5, 5), np.float32)
    y = layer.forward(x)
    with pytest.raises(
        IndexError, match=r"conv9: cell \(0, 3, 0\) is outside the output of shape \(3, 3, 3\)"
    ):
        layer.explain(x[0], y[0], (0, 3, 0))


def test_backward_needs_a_training_forward():
    layer = _conv("conv4")
    layer.forward(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(
        RuntimeError, match="conv4: backward needs a forward pass with training=True"
    ):
        layer.backward(np.zeros((1, 3, 3, 3), np.float32))


# ------------------------------------------------------------------ receptive fields


RF_STACKS = {
    # VGG: 3x3 same convolutions and 2x2 pools
    "vgg": (
        lambda: [
            Conv2d("c1", 1, 1, 3, padding=1),
            Conv2d("c2", 1, 1, 3, padding=1),
            AvgPool2d("p1", 2),
            Conv2d("c3", 1, 1, 3, padding=1),
            AvgPool2d("p2", 2),
            Conv2d("c4", 1, 1, 3, padding=1),
        ],
        (16, 12),
    ),
    # LeNet: valid 5x5 convolutions and 2x2 pools
    "lenet": (
        lambda: [
            Conv2d("c1", 1, 1, 5),
            AvgPool2d("p1", 2),
            Conv2d("c2", 1, 1, 5),
            AvgPool2d("p2", 2),
        ],
        (32, 28),
    ),
    # SAME with stride 2 on an even size pads only the bottom and right
    "same-strided": (
        lambda: [Conv2d("c1", 1, 1, 3, stride=2, padding="same"), Conv2d("c2", 1, 1, 3, padding=1)],
        (8, 9),
    ),
    "strided": (
        lambda: [
            Conv2d("c1", 1, 1, 3, stride=2, padding=1),
            Conv2d("c2", 1, 1, (3, 2), stride=(2, 1), padding=(1, 1, 0, 1)),
        ],
        (9, 10),
    ),
}


@pytest.mark.parametrize("stack", RF_STACKS)
def test_receptive_field_region_is_the_support_of_the_gradient(stack):
    """Independent check of size, jump and start: with positive weights, the input pixels
    that an output cell depends on are exactly those with a non-zero gradient.

    (``region`` is the theoretical receptive field clipped to the image. Where a dilated
    or overlapping kernel reaches padding next to a map that a strided layer cut short,
    the true dependence can be a few pixels smaller; the zoo's geometries have no such case.)
    """
    make, (height, width) = RF_STACKS[stack]
    layers = make()
    model = Sequential(layers, InputSpec(1, height, width), "rf")
    for layer in layers:
        for value in layer.params.values():
            value[...] = 1.0 if value.ndim > 1 else 0.0
    x = np.ones((1, 1, height, width), np.float32)
    fields = model.receptive_fields()
    for info in model.describe():
        assert info["receptive_field"] == fields[info["name"]].to_dict()
    for layer in layers:
        cut = model.index(layer.name)
        h = x
        for earlier in layers[: cut + 1]:
            h = earlier.forward(h, training=True)
        for oy, ox in np.ndindex(*h.shape[2:]):
            dy = np.zeros_like(h)
            dy[0, 0, oy, ox] = 1
            support = model.backward(dy, from_layer=layer.name)[0, 0] != 0
            ys, xs = np.nonzero(support)
            box = {"top": ys.min(), "left": xs.min(), "bottom": ys.max() + 1, "right": xs.max() + 1}
            assert fields[layer.name].region(oy, ox, height, width) == box, (layer.name, oy, ox)


def test_receptive_field_region_clips_and_full():
    rf = ReceptiveField(size=(6, 6), jump=(2, 2), start=(0.5, 0.5))
    assert rf.region(0, 0, 224, 224) == {"top": 0, "left": 0, "bottom": 4, "right": 4}
    assert rf.region(5, 3, 224, 224) == {"top": 8, "left": 4, "bottom": 14, "right": 10}
    assert rf.region(111, 111, 224, 224) == {"top": 220, "left": 220, "bottom": 224, "right": 224}
    full = ReceptiveField(size=(6, 6), jump=(2, 2), start=(0.5, 0.5), full=True)
    assert full.region(3, 0, 32, 28) == {"top": 0, "left": 0, "bottom": 32, "right": 28}


# ------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "layer",
    [
        Conv2d("c", 3, 4, (3, 2), (2, 1), (1, 0, 2, 1), 2, bias=False),
        Conv2d("c", 3, 4, 3, 1, "same"),
        MaxPool2d("m", 3, 2, 1),
        AvgPool2d("a", 2),
        ReLU("r"),
        LeakyReLU("l", 0.3),
        Sigmoid("s"),
        Tanh("t"),
        Flatten("f"),
        Linear("fc", 7, 5),
        Softmax("softmax"),
    ],
    ids=lambda layer: layer.kind,
)
def test_layer_config_round_trip(layer):
    rebuilt = layer_from_config(layer.config())
    assert type(rebuilt) is type(layer)
    assert rebuilt.config() == layer.config()
    assert {k: v.shape for k, v in rebuilt.params.items()} == {
        k: v.shape for k, v in layer.params.items()
    }


def test_every_kind_is_registered_and_unknown_kinds_fail():
    assert set(LAYER_KINDS) == {
        "conv2d", "maxpool2d", "avgpool2d", "relu", "leaky_relu", "sigmoid", "tanh",
        "flatten", "linear", "softmax",
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown layer kind 'batchnorm'"):
        layer_from_config({"kind": "batchnorm", "name": "bn"})


# -------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, words",
    [
        (
            lambda: Conv2d("conv3", 3, 8, 5).output_shape((3, 4, 4)),
            ["conv3", "kernel height 5", "4"],
        ),
        (
            lambda: Conv2d("conv3", 3, 8, 3, stride=0).output_shape((3, 8, 8)),
            ["conv3", "stride", "0"],
        ),
        (lambda: Conv2d("conv3", 3, 8, 3, padding=-1).output_shape((3, 8, 8)), ["conv3", "-1"]),
        (
            lambda: Conv2d("conv3", 3, 8, 3, dilation=0).output_shape((3, 8, 8)),
            ["conv3", "dilation", "0"],
        ),
        (
            lambda: Conv2d("conv3", 3, 8, 3).output_shape((4, 8, 8)),
            ["conv3", "3 channels", "(4, 8, 8)"],
        ),
        (
            lambda: Conv2d("conv3", 3, 8, 3).forward(np.zeros((1, 4, 8, 8), np.float32)),
            ["conv3", "4 channels", "expect 3"],
        ),
        (lambda: Linear("fc1", 400, 120).output_shape((300,)), ["fc1", "400", "(300,)"]),
        (
            lambda: Linear("fc1", 400, 120).forward(np.zeros((2, 300), np.float32)),
            ["fc1", "300 features", "expect 400"],
        ),
        (
            lambda: MaxPool2d("pool1", 2, 2, 2).output_shape((3, 8, 8)),
            ["pool1", "(2, 2, 2, 2)", "(2, 2)"],
        ),
        (lambda: MaxPool2d("pool1", 5).output_shape((3, 4, 4)), ["pool1", "kernel height 5", "4"]),
        (
            lambda: Sequential([Flatten("flatten"), Linear("fc", 99, 10)], InputSpec(3, 4, 4)),
            ["fc", "99", "(48,)"],
        ),
    ],
)
def test_layer_geometry_errors_name_layer_and_numbers(call, words):
    with pytest.raises(ValueError) as error:
        call()
    for word in words:
        assert word in str(error.value), f"{word!r} not in {str(error.value)!r}"


def test_layers_run_on_float64_and_float32():
    layer = _conv()
    x = np.random.default_rng(6).standard_normal((1, 2, 5, 5))
    y32 = layer.forward(x.astype(np.float32))
    assert y32.dtype == np.float32
    assert_close(y32, layer.forward(x), rtol=1e-5)
