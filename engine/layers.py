"""Layer objects: one per op, each able to run, learn, describe itself and explain one cell.

A layer holds its hyper-parameters and parameters; the arithmetic lives in
:mod:`engine.ops`. ``describe()`` is what the API and the pages read instead of
guessing a layer's type from its name, and ``explain()`` recomputes one output
cell from the same arrays the forward pass used, step by visible step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import ops

__all__ = [
    "Layer",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Flatten",
    "Linear",
    "Softmax",
    "ReceptiveField",
    "LAYER_KINDS",
    "layer_from_config",
]

Shape = tuple[int, ...]  # one image: (C, H, W) or (features,)


@dataclass(frozen=True)
class ReceptiveField:
    """Where an output cell looks in the input image, per axis (rows, cols).

    ``size``: side of the input region one cell depends on; ``jump``: input pixels
    between neighbouring output cells; ``start``: input coordinate of the centre of
    output cell 0 (may be fractional or negative because of padding). ``full`` marks
    layers whose every unit sees the whole input (after flatten).
    """

    size: tuple[int, int] = (1, 1)
    jump: tuple[int, int] = (1, 1)
    start: tuple[float, float] = (0.0, 0.0)
    full: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": list(self.size),
            "jump": list(self.jump),
            "start": list(self.start),
            "full": self.full,
        }

    def region(self, y: int, x: int, height: int, width: int) -> dict[str, int]:
        """The input rectangle (clipped to the image) that output cell (y, x) depends on."""
        if self.full:
            return {"top": 0, "left": 0, "bottom": height, "right": width}
        cy = self.start[0] + y * self.jump[0]
        cx = self.start[1] + x * self.jump[1]
        top = int(np.floor(cy - (self.size[0] - 1) / 2))
        left = int(np.floor(cx - (self.size[1] - 1) / 2))
        return {
            "top": max(top, 0),
            "left": max(left, 0),
            "bottom": min(top + self.size[0], height),
            "right": min(left + self.size[1], width),
        }


class Layer:
    """Base class. Subclasses set ``kind`` and implement the shape and arithmetic hooks."""

    kind: ClassVar[str] = "layer"

    def __init__(self, name: str) -> None:
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._cache: Any = None

    # --- running ------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """dL/dinput from dL/doutput, for the last forward(..., training=True); fills grads.
        With ``input_grad=False`` (the first layer in training) dL/dinput may be skipped."""
        raise NotImplementedError

    def _need_cache(self) -> Any:
        if self._cache is None:
            raise RuntimeError(
                f"{self.name}: backward needs a forward pass with training=True first"
            )
        return self._cache

    # --- shapes and costs ---------------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def macs(self, input_shape: Shape) -> int:
        """Multiply-accumulates for one image."""
        return 0

    def receptive_field(
        self, rf: ReceptiveField, input_shape: Shape | None = None
    ) -> ReceptiveField:
        return rf

    def hyperparameters(self) -> dict[str, Any]:
        return {}

    @property
    def param_count(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def config(self) -> dict[str, Any]:
        """What the architecture JSON stores to rebuild this layer."""
        return {"kind": self.kind, "name": self.name, **self.hyperparameters()}

    def describe(self, input_shape: Shape, rf: ReceptiveField | None = None) -> dict[str, Any]:
        """Kind, hyper-parameters, shapes, parameters, MACs, FLOPs and receptive field."""
        rf_out = self.receptive_field(rf or ReceptiveField(), input_shape)
        macs = self.macs(input_shape)
        return {
            "name": self.name,
            "kind": self.kind,
            "hyperparameters": self.hyperparameters(),
            "input_shape": list(input_shape),
            "output_shape": list(self.output_shape(input_shape)),
            "params": self.param_count,
            "param_shapes": {k: list(v.shape) for k, v in self.params.items()},
            "macs": macs,
            "flops": 2 * macs,
            "receptive_field": rf_out.to_dict(),
        }

    # --- explanation --------------------------------------------------------------
    def explain(self, x: np.ndarray, y: np.ndarray, cell: Sequence[int]) -> dict[str, Any]:
        """The arithmetic of one output cell, for one image: x is this layer's input
        (C, H, W) or (features,), y its output, cell an index into y."""
        raise NotImplementedError

    def _check_cell(self, y: np.ndarray, cell: Sequence[int]) -> tuple[int, ...]:
        cell = tuple(int(c) for c in cell)
        if len(cell) != y.ndim or any(not 0 <= c < n for c, n in zip(cell, y.shape, strict=True)):
            raise IndexError(f"{self.name}: cell {cell} is outside the output of shape {y.shape}")
        return cell

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({self.name!r}{', ' if hp else ''}{hp})"


# ------------------------------------------------------------------------ sliding windows


def _window_positions(origin: int, kernel: int, dilation: int) -> np.ndarray:
    return origin + dilation * np.arange(kernel)


class _Windowed(Layer):
    """Shared geometry of conv and pooling: kernel, stride, padding, dilation."""

    def __init__(self, name: str, kernel, stride, padding, dilation=1) -> None:
        super().__init__(name)
        self.kernel = ops._pair(kernel, "kernel", name)
        self.stride = ops._pair(stride if stride is not None else kernel, "stride", name)
        self.dilation = ops._pair(dilation, "dilation", name)
        self.padding = (
            padding
            if isinstance(padding, str)
            else (padding if isinstance(padding, int) else list(padding))
        )

    def pads(self, in_hw: Sequence[int]) -> ops.Pads:
        return ops.normalize_padding(
            self.padding, self.kernel, self.stride, self.dilation, tuple(in_hw), self.name
        )

    def _out_hw(self, input_shape: Shape) -> tuple[int, int]:
        return ops._geometry(
            self.name,
            tuple(input_shape[1:3]),
            self.kernel,
            self.stride,
            self.pads(input_shape[1:3]),
            self.dilation,
        )

    def receptive_field(
        self, rf: ReceptiveField, input_shape: Shape | None = None
    ) -> ReceptiveField:
        # Needs the padding in pixels: "same" with stride > 1 depends on the input size.
        in_hw = None if input_shape is None else tuple(input_shape[1:3])
        pads = ops.normalize_padding(
            self.padding, self.kernel, self.stride, self.dilation, in_hw, self.name
        )
        size, jump, start = [], [], []
        for axis, before in ((0, pads[0]), (1, pads[2])):
            reach = self.dilation[axis] * (self.kernel[axis] - 1) + 1
            size.append(rf.size[axis] + (reach - 1) * rf.jump[axis])
            jump.append(rf.jump[axis] * self.stride[axis])
            start.append(rf.start[axis] + ((reach - 1) / 2 - before) * rf.jump[axis])
        return ReceptiveField(tuple(size), tuple(jump), tuple(start), rf.full)

    def _window(
        self, x: np.ndarray, y0: int, x0: int, fill: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Values under the window of output cell (y0, x0) for every channel of x (C, H, W),
        with a mask of padded taps and the taps' input rows and columns."""
        pads = self.pads(x.shape[1:])
        rows = _window_positions(y0 * self.stride[0] - pads[0], self.kernel[0], self.dilation[0])
        cols = _window_positions(x0 * self.stride[1] - pads[2], self.kernel[1], self.dilation[1])
        inside_r = (rows >= 0) & (rows < x.shape[1])
        inside_c = (cols >= 0) & (cols < x.shape[2])
        padded = ~(inside_r[:, None] & inside_c[None, :])
        values = np.full((x.shape[0], len(rows), len(cols)), fill, dtype=np.float64)
        rr, cc = np.clip(rows, 0, x.shape[1] - 1), np.clip(cols, 0, x.shape[2] - 1)
        inner = x[:, rr][:, :, cc].astype(np.float64)
        values = np.where(padded[None], values, inner)
        return values, padded, rows, cols

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "padding": self.padding,
            "dilation": list(self.dilation),
        }


class Conv2d(_Windowed):
    """C_out kernels of C_in x kH x kW, each giving one output map (plus a bias)."""

    kind = "conv2d"

    def __init__(
        self,
        name: str,
        in_channels: int,
        out_channels: int,
        kernel: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: ops.Padding = 0,
        dilation: int | Sequence[int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(name, kernel, stride, padding, dilation)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.params["weight"] = np.zeros((out_channels, in_channels, *self.kernel), np.float32)
        if bias:
            self.params["bias"] = np.zeros(out_channels, np.float32)
        # Operations merged into these weights on import (engine.onnx_io: BatchNormalization).
        self.folded: list[dict[str, Any]] = []

    def init(self, rng: np.random.Generator) -> None:
        """He (Kaiming) normal initialisation for ReLU networks; zero biases."""
        fan_in = self.in_channels * self.kernel[0] * self.kernel[1]
        w = self.params["weight"]
        w[...] = rng.standard_normal(w.shape) * np.sqrt(2.0 / fan_in)
        if "bias" in self.params:
            self.params["bias"][...] = 0

    def _args(self):
        return dict(
            stride=self.stride, padding=self.padding, dilation=self.dilation, layer=self.name
        )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        cols: list | None = [] if training else None
        y = ops.conv2d(
            x, self.params["weight"], self.params.get("bias"), **self._args(), keep_cols=cols
        )
        self._cache = (x, cols) if training else None
        return y

    def forward_relu(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inference of this layer and a ReLU after it: (output, its ReLU), two arrays."""
        self._cache = None
        return ops.conv2d_relu(x, self.params["weight"], self.params.get("bias"), **self._args())

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        x, cols = self._need_cache()
        dx, dw, db = ops.conv2d_backward(
            dy, x, self.params["weight"], **self._args(), cols=cols, input_grad=input_grad
        )
        self.grads["weight"] = dw
        if "bias" in self.params:
            self.grads["bias"] = db
        return dx

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(
                f"{self.name}: expects an input of {self.in_channels} channels, "
                f"got shape {tuple(input_shape)}"
            )
        return (self.out_channels, *self._out_hw(input_shape))

    def macs(self, input_shape: Shape) -> int:
        _, ho, wo = self.output_shape(input_shape)
        return ho * wo * self.out_channels * self.in_channels * self.kernel[0] * self.kernel[1]

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            **super().hyperparameters(),
            "bias": "bias" in self.params,
            **({"folded": self.folded} if self.folded else {}),
        }

    def explain(self, x: np.ndarray, y: np.ndarray, cell: Sequence[int]) -> dict[str, Any]:
        """Window x kernel for every input channel, per-channel sums, plus bias = value."""
        c, oy, ox = self._check_cell(y, cell)
        window, padded, rows, cols = self._window(x, oy, ox, fill=0.0)
        kernel = self.params["weight"][c].astype(np.float64)
        products = window * kernel
        channel_sums = products.sum(axis=(1, 2))
        bias = float(self.params["bias"][c]) if "bias" in self.params else 0.0
        return {
            "layer": self.name,
            "kind": self.kind,
            "cell": [c, oy, ox],
            "rows": rows.tolist(),
            "cols": cols.tolist(),
            "window": window.tolist(),
            "padded": padded.tolist(),
            "kernel": kernel.tolist(),
            "products": products.tolist(),
            "channel_sums": channel_sums.tolist(),
            "bias": bias,
            "value": float(channel_sums.sum() + bias),
            "activation": float(y[c, oy, ox]),
        }


class _Pool(_Windowed):
    def __init__(self, name: str, kernel=2, stride=None, padding: ops.Padding = 0) -> None:
        super().__init__(name, kernel, stride, padding)

    def _args(self):
        return dict(kernel=self.kernel, stride=self.stride, padding=self.padding, layer=self.name)

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: expects (C, H, W) maps, got shape {tuple(input_shape)}")
        pads = self.pads(input_shape[1:3])
        if max(pads[:2]) * 2 > self.kernel[0] or max(pads[2:]) * 2 > self.kernel[1]:
            raise ValueError(
                f"{self.name}: padding {pads} must be at most half the kernel {self.kernel}"
            )
        return (input_shape[0], *self._out_hw(input_shape))

    def hyperparameters(self) -> dict[str, Any]:
        hp = super().hyperparameters()
        hp.pop("dilation")
        return hp


class MaxPool2d(_Pool):
    """The largest value of each window, per channel; no parameters."""

    kind = "maxpool2d"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y = ops.max_pool2d(x, **self._args())
        self._cache = (x, y) if training else None
        return y

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        x, y = self._need_cache()
        return ops.max_pool2d_backward(dy, x, y=y, **self._args())

    def explain(self, x: np.ndarray, y: np.ndarray, cell: Sequence[int]) -> dict[str, Any]:
        """The window and its first maximum (padding is -inf, never chosen)."""
        c, oy, ox = self._check_cell(y, cell)
        window, padded, rows, cols = self._window(x[c : c + 1], oy, ox, fill=-np.inf)
        flat = int(np.argmax(window[0]))  # first maximum, as in the engine's backward
        ay, ax = divmod(flat, window.shape[2])
        return {
            "layer": self.name,
            "kind": self.kind,
            "cell": [c, oy, ox],
            "rows": rows.tolist(),
            "cols": cols.tolist(),
            "window": np.where(padded, np.nan, window[0]).tolist(),
            "padded": padded.tolist(),
            "argmax": [ay, ax],
            "argmax_input": [int(rows[ay]), int(cols[ax])],
            "value": float(window[0, ay, ax]),
            "activation": float(y[c, oy, ox]),
        }


class AvgPool2d(_Pool):
    """The mean of each window, per channel; padded zeros count in the mean."""

    kind = "avgpool2d"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._cache = x if training else None
        return ops.avg_pool2d(x, **self._args())

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        return ops.avg_pool2d_backward(dy, self._need_cache(), **self._args())

    def explain(self, x: np.ndarray, y: np.ndarray, cell: Sequence[int]) -> dict[str, Any]:
        c, oy, ox = self._check_cell(y, cell)
        window, padded, rows, cols = self._window(x[c : c + 1], oy, ox, fill=0.0)
        total = float(window.sum())
        count = self.kernel[0] * self.kernel[1]
        return {
            "layer": self.name,
            "kind": self.kind,
            "cell": [c, oy, ox],
            "rows": rows.tolist(),
            "cols": cols.tolist(),
            "window": window[0].tolist(),
            "padded": padded.tolist(),
            "sum": total,
            "count": count,
            "value": total / count,
            "activation": float(y[c, oy, ox]),
        }


# ----------------------------------------------------------------------------- activations


class _Activation(Layer):
    formula: ClassVar[str] = ""

    def _f(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _df(self, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._cache = x if training else None
        return self._f(x)

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        return self._df(dy, self._need_cache())

    def explain(self, x: np.ndarray, y: np.ndarray, cell: Sequence[int]) -> dict[str, Any]:
        cell = self._check_cell(y, cell)
        value_in = float(x[cell])
        return {
            "layer": self.name,
            "kind": self.kind,
            "cell": list(cell),
            "formula": self.formula,
            "input": value_in,
            "value": float(self._f(np.array([value_in]))[0]),
            "activation": float(y[cell]),
        }


class ReLU(_Activation):
    kind = "relu"
    formula = "max(0, x)"

    def _f(self, x):
        return ops.relu(x)

    def _df(self, dy, x):
        return ops.relu_backward(dy, x)

    def explain(self, x, y, cell):
        info = super().explain(x, y, cell)
        info["clipped"] = info["input"] < 0
        return info


class LeakyReLU(_Activation):
    kind = "leaky_relu"

    def __init__(self, name: str, slope: float = 0.01) -> None:
        super().__init__(name)
        self.slope = float(slope)

    @property
    def formula(self) -> str:  # type: ignore[override]
        return f"x if x > 0 else {self.slope:g} * x"

    def _f(self, x):
        return ops.leaky_relu(x, self.slope)

    def _df(self, dy, x):
        return ops.leaky_relu_backward(dy, x, self.slope)

    def hyperparameters(self):
        return {"slope": self.slope}


class Sigmoid(_Activation):
    kind = "sigmoid"
    formula = "1 / (1 + exp(-x))"

    def _f(self, x):
        return ops.sigmoid(x)

    def _df(self, dy, x):
        return ops.sigmoid_backward(dy, x)


class Tanh(_Activation):
    kind = "tanh"
    formula = "tanh(x)"

    def _f(self, x):
        return ops.tanh(x)

    def _df(self, dy, x):
        return ops.tanh_backward(dy, x)


# --------------------------------------------------------------------- flatten and dense


class Flatten(Layer):
    """(C, H, W) maps laid out as one vector, row-major: index = (c * H + y) * W + x."""

    kind = "flatten"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._cache = x.shape if training else None
        return ops.flatten(x)

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        return ops.flatten_backward(dy, self._need_cache())

    def output_shape(self, input_shape: Shape) -> Shape:
        return (int(np.prod(input_shape)),)

    def receptive_field(
        self, rf: ReceptiveField, input_shape: Shape | None = None
    ) -> ReceptiveField:
        return ReceptiveField(rf.size, rf.jump, rf.start, full=True)

    def explain(self, x: np.ndarray, y: np.ndarray, cell: Sequence[int]) -> dict[str, Any]:
        (i,) = self._check_cell(y, cell)
        source = [int(v) for v in np.unravel_index(i, x.shape)]
        return {
            "layer": self.name,
            "kind": self.kind,
            "cell": [i],
            "source": source,
            "input_shape": list(x.shape),
            "value": float(x[tuple(source)]),
            "activation": float(y[i]),
        }


class Linear(Layer):
    """Fully connected: y = W x + b, W of shape (out, in)."""

    kind = "linear"
    top_terms = 10

    def __init__(self, name: str, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(name)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.params["weight"] = np.zeros((out_features, in_features), np.float32)
        if bias:
            self.params["bias"] = np.zeros(out_features, np.float32)
        self.folded: list[dict[str, Any]] = []  # as in Conv2d

    def init(self, rng: np.random.Generator) -> None:
        w = self.params["weight"]
        w[...] = rng.standard_normal(w.shape) * np.sqrt(2.0 / self.in_features)
        if "bias" in self.params:
            self.params["bias"][...] = 0

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._cache = x if training else None
        return ops.linear(x, self.params["weight"], self.params.get("bias"), layer=self.name)

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        x = self._need_cache()
        dx, dw, db = ops.linear_backward(dy, x, self.params["weight"])
        self.grads["weight"] = dw
        if "bias" in self.params:
            self.grads["bias"] = db
        return dx

    def output_shape(self, input_shape: Shape) -> Shape:
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(
                f"{self.name}: expects {self.in_features} input features, "
                f"got shape {tuple(input_shape)}"
            )
        return (self.out_features,)

    def macs(self, input_shape: Shape) -> int:
        return self.in_features * self.out_features

    def hyperparameters(self) -> dict[str, Any]:
        hp = {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": "bias" in self.params,
        }
        return {**hp, **({"folded": self.folded} if self.folded else {})}

    def explain(
        self, x: np.ndarray, y: np.ndarray, cell: Sequence[int], top: int | None = None
    ) -> dict[str, Any]:
        """Bias plus every w_ij x_j; the largest contributions by magnitude listed first."""
        (i,) = self._check_cell(y, cell)
        weights = self.params["weight"][i].astype(np.float64)
        inputs = x.astype(np.float64)
        products = weights * inputs
        bias = float(self.params["bias"][i]) if "bias" in self.params else 0.0
        order = np.argsort(-np.abs(products), kind="stable")[: top or self.top_terms]
        terms_sum = float(products.sum())
        return {
            "layer": self.name,
            "kind": self.kind,
            "cell": [i],
            "bias": bias,
            "terms": [
                {
                    "index": int(j),
                    "input": float(inputs[j]),
                    "weight": float(weights[j]),
                    "product": float(products[j]),
                }
                for j in order
            ],
            "products": products.tolist(),
            "terms_sum": terms_sum,
            "value": terms_sum + bias,
            "activation": float(y[i]),
        }


class Softmax(Layer):
    """Scores to probabilities: exp(z_i - max z) / sum_j exp(z_j - max z)."""

    kind = "softmax"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y = ops.softmax(x)
        self._cache = y if training else None
        return y

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        return ops.softmax_backward(dy, self._need_cache())

    def explain(self, x: np.ndarray, y: np.ndarray, cell: Sequence[int] = (0,)) -> dict[str, Any]:
        (i,) = self._check_cell(y, cell)
        logits = x.astype(np.float64)
        shift = float(logits.max())
        exps = np.exp(logits - shift)
        total = float(exps.sum())
        return {
            "layer": self.name,
            "kind": self.kind,
            "cell": [i],
            "logits": logits.tolist(),
            "shift": shift,
            "exps": exps.tolist(),
            "sum": total,
            "probabilities": (exps / total).tolist(),
            "value": float(exps[i] / total),
            "activation": float(y[i]),
        }


LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (
        Conv2d,
        MaxPool2d,
        AvgPool2d,
        ReLU,
        LeakyReLU,
        Sigmoid,
        Tanh,
        Flatten,
        Linear,
        Softmax,
    )
}


def layer_from_config(config: dict[str, Any]) -> Layer:
    """Rebuild a layer from its ``config()`` dict (the architecture JSON)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in LAYER_KINDS:
        raise ValueError(
            f"unknown layer kind {kind!r}; known kinds: {', '.join(sorted(LAYER_KINDS))}"
        )
    cls = LAYER_KINDS[kind]
    name = config.pop("name")
    if cls is Conv2d:
        conv = Conv2d(
            name,
            config["in_channels"],
            config["out_channels"],
            config["kernel"],
            config["stride"],
            config["padding"],
            config["dilation"],
            config.get("bias", True),
        )
        conv.folded = list(config.get("folded", []))
        return conv
    if cls in (MaxPool2d, AvgPool2d):
        return cls(name, config["kernel"], config["stride"], config["padding"])
    if cls is Linear:
        linear = Linear(
            name, config["in_features"], config["out_features"], config.get("bias", True)
        )
        linear.folded = list(config.get("folded", []))
        return linear
    if cls is LeakyReLU:
        return LeakyReLU(name, config.get("slope", 0.01))
    return cls(name)
