"""Every backward function against central finite differences, in float64.

One helper, many cases: each case builds float64 inputs, a forward function and the
analytic backward. The loss is sum(forward(...) * R) for a fixed random R, so dL/dy = R.
Inputs stay away from the kinks of relu and max (no value within 1e-2 of 0 for relu,
no two values in a pooling window within 1e-2 of each other), where differences lie.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from engine import ops
from engine.layers import (
    AvgPool2d,
    Conv2d,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from engine.model import InputSpec, Sequential

from .checks import assert_close, assert_gradient

Arrays = dict[str, np.ndarray]


@dataclass
class GradCase:
    id: str
    make: Callable[[np.random.Generator], Arrays]  # float64 inputs by name
    forward: Callable[[Arrays], np.ndarray]
    backward: Callable[[np.ndarray, Arrays], Arrays]  # dL/dy -> dL/d(each input)


def _normal(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape)


def _away_from_zero(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    def make(rng):
        x = rng.standard_normal(shape)
        return np.sign(x) * (np.abs(x) + 0.05)

    return make


def _distinct(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    """Values 0.05 apart in random order: no near-ties in any pooling window."""
    return lambda rng: (rng.permutation(int(np.prod(shape))) * 0.05 - 1.0).reshape(shape)


def _conv_case(name, x_shape, w_shape, stride=1, padding=0, dilation=1, bias=True) -> GradCase:
    def make(rng):
        arrays = {"x": rng.standard_normal(x_shape), "weight": rng.standard_normal(w_shape)}
        if bias:
            arrays["bias"] = rng.standard_normal(w_shape[0])
        return arrays

    geometry = dict(stride=stride, padding=padding, dilation=dilation)

    def forward(a):
        return ops.conv2d(a["x"], a["weight"], a.get("bias"), **geometry)

    def backward(dy, a):
        dx, dw, db = ops.conv2d_backward(dy, a["x"], a["weight"], **geometry)
        return {"x": dx, "weight": dw, "bias": db} if bias else {"x": dx, "weight": dw}

    return GradCase(name, make, forward, backward)


def _pool_case(name, op, op_backward, shape, kernel, stride=None, padding=0) -> GradCase:
    def make(rng):
        return {"x": _distinct(*shape)(rng)}

    return GradCase(
        name,
        make,
        lambda a: op(a["x"], kernel, stride, padding),
        lambda dy, a: {"x": op_backward(dy, a["x"], kernel, stride, padding)},
    )


def _elementwise_case(name, f, df, shape=(2, 3, 4, 5)) -> GradCase:
    return GradCase(
        name,
        lambda rng: {"x": _away_from_zero(*shape)(rng)},
        lambda a: f(a["x"]),
        lambda dy, a: {"x": df(dy, a["x"])},
    )


def _linear_backward(dy, a):
    dx, dw, db = ops.linear_backward(dy, a["x"], a["weight"])
    return {"x": dx, "weight": dw, "bias": db}


CE_LABELS = np.array([2, 0, 4, 4])


OP_CASES = [
    # stride 1 with padding <= reach: dL/dx is computed as a convolution with flipped kernels
    _conv_case("conv2d-s1-p1", (2, 3, 6, 5), (4, 3, 3, 3), padding=1),
    _conv_case("conv2d-s1-valid-5x5", (1, 2, 7, 8), (3, 2, 5, 5)),
    _conv_case(
        "conv2d-s1-dilation2-asym", (2, 2, 7, 7), (3, 2, 3, 2), padding=(2, 0, 1, 1), dilation=2
    ),
    # stride 1 but padding beyond the kernel's reach: the scatter path
    _conv_case("conv2d-s1-1x1-p1", (2, 3, 4, 4), (2, 3, 1, 1), padding=1),
    _conv_case("conv2d-s2", (2, 3, 7, 6), (4, 3, 3, 3), stride=2, padding=1),
    _conv_case("conv2d-s2x1-asym", (1, 2, 8, 7), (3, 2, 3, 2), stride=(2, 1), padding=(0, 2, 1, 0)),
    _conv_case(
        "conv2d-s3-dilation2", (2, 2, 11, 10), (2, 2, 3, 3), stride=3, padding=2, dilation=2
    ),
    _conv_case("conv2d-same-s2", (1, 2, 7, 6), (2, 2, 2, 3), stride=2, padding="same"),
    _conv_case("conv2d-no-bias", (1, 2, 5, 5), (2, 2, 3, 3), padding=1, bias=False),
    _pool_case("max_pool2d-2x2", ops.max_pool2d, ops.max_pool2d_backward, (2, 3, 6, 6), 2),
    _pool_case(
        "max_pool2d-3x3-s2-p1", ops.max_pool2d, ops.max_pool2d_backward, (1, 2, 7, 6), 3, 2, 1
    ),
    _pool_case("max_pool2d-3x3-s1", ops.max_pool2d, ops.max_pool2d_backward, (1, 2, 5, 6), 3, 1),
    _pool_case("avg_pool2d-2x2", ops.avg_pool2d, ops.avg_pool2d_backward, (2, 3, 6, 6), 2),
    _pool_case(
        "avg_pool2d-3x3-s2-p1", ops.avg_pool2d, ops.avg_pool2d_backward, (1, 2, 7, 6), 3, 2, 1
    ),
    _pool_case(
        "avg_pool2d-2x3-asym",
        ops.avg_pool2d,
        ops.avg_pool2d_backward,
        (1, 2, 5, 6),
        (2, 3),
        1,
        (0, 1, 1, 0),
    ),
    _elementwise_case("relu", ops.relu, ops.relu_backward),
    _elementwise_case(
        "leaky_relu",
        lambda x: ops.leaky_relu(x, 0.1),
        lambda dy, x: ops.leaky_relu_backward(dy, x, 0.1),
    ),
    _elementwise_case("sigmoid", ops.sigmoid, ops.sigmoid_backward),
    _elementwise_case("tanh", ops.tanh, ops.tanh_backward),
    GradCase(
        "flatten",
        lambda rng: {"x": rng.standard_normal((2, 3, 2, 4))},
        lambda a: ops.flatten(a["x"]),
        lambda dy, a: {"x": ops.flatten_backward(dy, a["x"].shape)},
    ),
    GradCase(
        "pad2d",
        lambda rng: {"x": rng.standard_normal((2, 2, 3, 4))},
        lambda a: ops.pad2d(a["x"], (1, 0, 2, 3)),
        lambda dy, a: {"x": ops.pad2d_backward(dy, (1, 0, 2, 3))},
    ),
    GradCase(
        "linear",
        lambda rng: {
            "x": rng.standard_normal((3, 7)),
            "weight": rng.standard_normal((5, 7)),
            "bias": rng.standard_normal(5),
        },
        lambda a: ops.linear(a["x"], a["weight"], a["bias"]),
        _linear_backward,
    ),
    GradCase(
        "softmax",
        lambda rng: {"x": rng.standard_normal((3, 6)) * 3},
        lambda a: ops.softmax(a["x"]),
        lambda dy, a: {"x": ops.softmax_backward(dy, ops.softmax(a["x"]))},
    ),
    GradCase(
        "cross_entropy",
        lambda rng: {"logits": rng.standard_normal((4, 5)) * 2},
        lambda a: np.array(ops.cross_entropy(a["logits"], CE_LABELS)),
        lambda dy, a: {"logits": dy * ops.cross_entropy_backward(a["logits"], CE_LABELS)},
    ),
]


def _check_case(case: GradCase, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    arrays = case.make(rng)
    y = case.forward(arrays)
    assert y.dtype == np.float64, f"{case.id}: float64 in must stay float64, got {y.dtype}"
    r = rng.standard_normal(y.shape)
    grads = case.backward(r, arrays)
    assert set(grads) == set(arrays)

    def loss() -> float:
        return float(np.sum(case.forward(arrays) * r))

    for name, array in arrays.items():
        samples = None if array.size <= 80 else 40
        assert_gradient(loss, array, np.asarray(grads[name]), f"{case.id} {name}", samples=samples)


@pytest.mark.parametrize("case", OP_CASES, ids=lambda c: c.id)
def test_op_gradient(case):
    _check_case(case)


# ---------------------------------------------------------------- layers (the cols= path)


@pytest.mark.parametrize(
    "stride, padding, dilation",
    [(1, 1, 1), (2, 1, 1), (1, (0, 2, 1, 0), 2), (2, "same", 1)],
)
@pytest.mark.parametrize("chunk_bytes", [None, 64])
def test_conv2d_layer_gradient_reuses_forward_columns(
    stride, padding, dilation, chunk_bytes, monkeypatch
):
    """Conv2d.backward hands the forward pass's im2col blocks (``cols=``) to conv2d_backward:
    the result must be the same gradient, also when the blocks are single rows."""
    if chunk_bytes is not None:
        monkeypatch.setattr(ops, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(5)
    layer = Conv2d("conv", 2, 3, 3, stride=stride, padding=padding, dilation=dilation)
    layer.params = {k: rng.standard_normal(v.shape) for k, v in layer.params.items()}
    x = rng.standard_normal((2, 2, 7, 6))
    y = layer.forward(x, training=True)
    assert len(layer._cache[1]) >= (1 if chunk_bytes is None else 2)
    r = rng.standard_normal(y.shape)
    dx = layer.backward(r)
    grads = {"x": dx, **layer.grads}
    targets = {"x": x, **layer.params}

    def loss() -> float:
        return float(np.sum(layer.forward(x) * r))

    for name, array in targets.items():
        assert_gradient(loss, array, grads[name], f"Conv2d {name}", samples=40)
    # The first layer of a network skips dL/dx but still gets its weight gradient.
    layer.forward(x, training=True)
    assert layer.backward(r, input_grad=False) is None
    assert_close(layer.grads["weight"], grads["weight"], rtol=1e-12, what="weight grad without dx")


# ------------------------------------------------------------------------- a whole model


def _small_model() -> Sequential:
    layers = [
        Conv2d("conv1", 2, 4, 3, padding=1),
        ReLU("relu1"),
        MaxPool2d("pool1", 2),
        Conv2d("conv2", 4, 5, 3, stride=2, padding=1),
        LeakyReLU("leaky2", 0.1),
        AvgPool2d("pool2", 2, 1),
        Flatten("flatten"),
        Linear("fc1", 20, 6),
        Tanh("tanh"),
        Linear("fc2", 6, 5),
        Sigmoid("sigmoid"),
        Linear("fc3", 5, 4),
        Softmax("softmax"),
    ]
    model = Sequential(layers, InputSpec(2, 10, 10), "small")
    model.init(seed=3)
    for layer in model.layers:  # float64 parameters (and non-zero biases) for the check
        for key, value in layer.params.items():
            layer.params[key] = (value + 0.1 * (key == "bias")).astype(np.float64)
    return model


def _forward64(model: Sequential, x: np.ndarray, training: bool = False) -> np.ndarray:
    """The model's layers in order, in float64 (Sequential.forward casts its input to float32)."""
    h = x
    for layer in model.layers:
        h = layer.forward(h, training=training)
    return h


def test_small_model_gradient():
    model = _small_model()
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 2, 10, 10)).astype(np.float32).astype(np.float64)
    trace = model.forward(x.astype(np.float32))
    assert_close(trace.output, _forward64(model, x), rtol=1e-5, what="float32 forward")
    y = _forward64(model, x, training=True)
    assert y.shape == (2, 4)
    r = rng.standard_normal(y.shape)
    dx = model.backward(r)
    grads = {
        "input": dx,
        **{f"{layer.name}.{k}": g.copy() for layer in model.layers for k, g in layer.grads.items()},
    }
    targets = {"input": x, **model.state_dict()}
    assert set(grads) == set(targets)

    def loss() -> float:
        return float(np.sum(_forward64(model, x) * r))

    for name, array in targets.items():
        assert_gradient(loss, array, grads[name], name, samples=25)


def test_model_backward_from_a_middle_layer():
    """backward(from_layer=...) starts at that layer's output and fills only earlier grads."""
    model = _small_model()
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 2, 10, 10))
    cut = model.index("pool2")
    h = x
    for layer in model.layers[: cut + 1]:
        h = layer.forward(h, training=True)
    r = rng.standard_normal(h.shape)
    for layer in model.layers:
        layer.grads.clear()
    dx = model.backward(r, from_layer="pool2")
    assert not model.layer("fc1").grads  # after the starting layer: untouched

    def loss() -> float:
        out = x
        for layer in model.layers[: cut + 1]:
            out = layer.forward(out)
        return float(np.sum(out * r))

    assert_gradient(loss, x, dx, "input from pool2", samples=30)
    assert_gradient(
        loss,
        model.layer("conv2").params["weight"],
        model.layer("conv2").grads["weight"],
        "conv2.weight from pool2",
        samples=20,
    )
