"""The convolution playground's request and response schemas, and the glue to the engine.

A student's grid, kernels and hyper-parameters arrive as JSON; they are checked here
(limits, shapes, whether the kernel fits) with messages in words, then handed to engine
layers (``Conv2d``, ``MaxPool2d``, ...), ``engine.ops`` and ``engine.playground``. Every
number in a response is computed by the engine: this module only validates, arranges and
names things. Per-cell explanations come in the response when they are small enough
(``EXPLAIN_BUDGET`` numbers); otherwise ``cells`` is null and the page asks for one cell at
a time from the explain endpoints.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from engine import ops
from engine import playground as pg
from engine.layers import AvgPool2d, Conv2d, LeakyReLU, MaxPool2d, ReLU, Sigmoid, Tanh

from .errors import ApiError

__all__ = [
    "LIMITS",
    "EXPLAIN_BUDGET",
    "KernelSpec",
    "PoolSpec",
    "ConvRequest",
    "CellRef",
    "ConvExplainRequest",
    "TransposedRequest",
    "TransposedExplainRequest",
    "run_conv",
    "explain_conv",
    "run_transposed",
    "explain_transposed",
    "grid_payload",
]

# Inclusive bounds on what a student can ask for. The grids are meant to be read cell by
# cell, so they are small; the transposed convolution's output grows with the stride.
LIMITS: dict[str, tuple[int, int]] = {
    "channels": (1, 3),
    "side": (1, 16),
    "kernels": (1, 4),
    "kernel_size": (1, 7),
    "padding": (0, 8),
    "stride": (1, 8),
    "dilation": (1, 4),
    "pool_kernel": (1, 8),
    "pool_stride": (1, 8),
    "t_side": (1, 8),
    "t_kernel_size": (1, 5),
    "t_stride": (1, 4),
    "t_dilation": (1, 3),
}
MAX_ABS_VALUE = 1e6
# Numbers of per-cell explanation sent with a whole result; beyond it, one cell per request.
EXPLAIN_BUDGET = 60_000
CURVE_POINTS = 121

Grid = list[list[list[float]]]
Activation = Literal["none", "relu", "leaky_relu", "sigmoid", "tanh"]


class KernelSpec(BaseModel):
    """One kernel: an f x f grid of weights per input channel, and its bias."""

    weights: Grid = Field(description="(C_in, f, f): one f x f grid per input channel")
    bias: float = 0.0


class PoolSpec(BaseModel):
    """Pooling on the input itself, or on the convolution's (activated) output."""

    mode: Literal["max", "avg"] = "max"
    kernel: int = Field(2, description="window side, 1-8")
    stride: int = Field(2, description="1-8")
    on: Literal["input", "conv"] = Field(
        "conv", description="'input': pool the input only (no convolution)"
    )


class ConvRequest(BaseModel):
    """A convolution (optionally followed by an activation and pooling), or pooling alone."""

    input: Grid = Field(description="(C, H, W): 1-3 channels of up to 16 x 16 numbers")
    kernels: list[KernelSpec] = Field(
        default_factory=list, description="1-4 kernels (none when pool.on is 'input')"
    )
    padding: Literal["valid", "same"] | int = Field(
        0, description="'valid', 'same' or p = 0-8 on every side"
    )
    stride: int = Field(1, description="1-8")
    dilation: int = Field(1, description="1-4")
    activation: Activation = "none"
    slope: float = Field(0.1, description="Leaky ReLU's slope for x < 0 (0-1)")
    pool: PoolSpec | None = None


class CellRef(BaseModel):
    """One output cell: of the convolution ("conv") or of the pooling ("pool")."""

    stage: Literal["conv", "pool"] = "conv"
    channel: int = 0
    y: int = 0
    x: int = 0


class ConvExplainRequest(ConvRequest):
    cell: CellRef


class TransposedRequest(BaseModel):
    """A transposed convolution: s - 1 zeros between input cells, then a convolution."""

    input: Grid = Field(description="(C, H, W): 1-3 channels of up to 8 x 8 numbers")
    kernels: list[KernelSpec] = Field(
        description="1-4 kernels of f x f (f = 1-5) per input channel"
    )
    stride: int = Field(2, description="1-4: zeros inserted between input cells = s - 1")
    padding: int = Field(0, description="0 to d(f - 1): cells cut from each side of the output")
    output_padding: int = Field(
        0, description="extra rows/columns at the bottom/right, below the stride"
    )
    dilation: int = Field(1, description="1-3")


class TransposedExplainRequest(TransposedRequest):
    cell: CellRef


# --------------------------------------------------------------------------- validation


def _invalid(message: str, code: str = "invalid_parameter", **extra: Any) -> ApiError:
    return ApiError(422, code, message, **extra)


def _check_range(name: str, value: int, limit: str | None = None) -> None:
    lo, hi = LIMITS[limit or name]
    if not lo <= value <= hi:
        raise _invalid(f"{name.replace('_', ' ')} must be between {lo} and {hi}, got {value}")


def _array(values: Any, what: str) -> np.ndarray:
    """A nested list as float32, refusing ragged rows and non-finite or huge values."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        raise _invalid(f"{what}: every row must have the same number of values") from None
    if array.size and not np.all(np.isfinite(array)):
        raise _invalid(f"{what}: every value must be a finite number")
    if array.size and np.abs(array).max() > MAX_ABS_VALUE:
        raise _invalid(f"{what}: values must lie between -{MAX_ABS_VALUE:g} and {MAX_ABS_VALUE:g}")
    return array.astype(np.float32)


def _input(values: Grid, side: str) -> np.ndarray:
    x = _array(values, "input")
    if x.ndim != 3 or 0 in x.shape:
        raise _invalid(
            "input must be a list of channels, each a grid of rows of numbers; "
            f"got shape {list(x.shape)}"
        )
    lo, hi = LIMITS["channels"]
    if not lo <= x.shape[0] <= hi:
        raise _invalid(f"input must have {lo} to {hi} channels, got {x.shape[0]}")
    lo, hi = LIMITS[side]
    if max(x.shape[1:]) > hi:
        raise _invalid(
            f"the input is {x.shape[1]}x{x.shape[2]}; the playground accepts grids up to {hi}x{hi}",
            code="input_too_large",
        )
    return x


def _kernels(
    specs: list[KernelSpec], channels: int, size_limit: str
) -> tuple[np.ndarray, np.ndarray]:
    """(K, C, f, f) weights and (K,) biases, checked against the input's channels."""
    lo, hi = LIMITS["kernels"]
    if not lo <= len(specs) <= hi:
        raise _invalid(f"give {lo} to {hi} kernels, got {len(specs)}")
    weights = []
    for k, spec in enumerate(specs):
        w = _array(spec.weights, f"kernel {k}")
        if w.ndim != 3 or 0 in w.shape or w.shape[1] != w.shape[2]:
            raise _invalid(
                f"kernel {k} must be one square f x f grid per input channel, "
                f"got shape {list(w.shape)}"
            )
        if w.shape[0] != channels:
            raise _invalid(
                f"kernel {k} has {w.shape[0]} channel grid(s) but the input has {channels} "
                "channel(s): a kernel needs one grid per input channel"
            )
        weights.append(w)
    sizes = {w.shape[1] for w in weights}
    if len(sizes) > 1:
        raise _invalid(f"all kernels must have the same size, got {sorted(sizes)}")
    _check_range("kernel size", weights[0].shape[1], size_limit)
    biases = _array([s.bias for s in specs], "bias")
    return np.stack(weights), biases


def _fit_message(
    what: str, f: int, d: int, shape: tuple[int, int], pads: tuple[int, int, int, int], size: dict
) -> str:
    h, w = shape
    reach = (
        f"{f}x{f}"
        if d == 1
        else f"{f}x{f} ({size['height']['reach']}x{size['width']['reach']} with dilation {d})"
    )
    pad = (
        str(pads[0])
        if len(set(pads)) == 1
        else "/".join(str(p) for p in pads) + " (top/bottom/left/right)"
    )
    out_h, out_w = (
        max(size[a]["result"], 0) if size[a]["fits"] else 0 for a in ("height", "width")
    )
    return (
        f"the {reach} {what} does not fit in the {h}x{w} input padded by {pad}: "
        f"output would be {out_h}x{out_w}; use a smaller {what} or dilation, or more padding"
    )


def _sizes(
    shape: tuple[int, int], f: int, stride: int, pads: tuple[int, int, int, int], d: int
) -> dict:
    return {
        "height": pg.window_size(shape[0], f, stride, pads[0], pads[1], d),
        "width": pg.window_size(shape[1], f, stride, pads[2], pads[3], d),
    }


def _fits(size: dict) -> bool:
    return size["height"]["fits"] and size["width"]["fits"]


# ----------------------------------------------------------------------------- payloads


def grid_payload(array: np.ndarray) -> dict[str, Any]:
    """{"shape", "data"} with data as nested lists (the grids are small)."""
    return {"shape": list(array.shape), "data": np.asarray(array, dtype=np.float64).tolist()}


def _activation_layer(kind: str, slope: float):
    return {
        "relu": lambda: ReLU("activation"),
        "leaky_relu": lambda: LeakyReLU("activation", slope),
        "sigmoid": lambda: Sigmoid("activation"),
        "tanh": lambda: Tanh("activation"),
    }[kind]()


def _conv_cell(conv: Conv2d, x: np.ndarray, z: np.ndarray, out: np.ndarray, cell) -> dict[str, Any]:
    info = conv.explain(x, z, cell)
    for key in ("layer", "kind", "kernel", "activation"):
        info.pop(key)
    info["output"] = float(out[tuple(cell)])  # after the activation
    return info


def _pool_cell(pool, x: np.ndarray, y: np.ndarray, cell) -> dict[str, Any]:
    info = pool.explain(x, y, cell)
    for key in ("layer", "kind", "activation"):
        info.pop(key)
    return info


def _cells(shape: tuple[int, ...], per_cell: int) -> list[tuple[int, int, int]] | None:
    """Every cell (c, y, x) in order, or None when explaining them all is too much."""
    if int(np.prod(shape)) * per_cell > EXPLAIN_BUDGET:
        return None
    return [tuple(int(v) for v in idx) for idx in np.ndindex(*shape)]


class _ConvPlan:
    """A checked ConvRequest turned into engine objects, ready to run."""

    def __init__(self, req: ConvRequest) -> None:
        self.req = req
        self.x = _input(req.input, "side")
        channels, h, w = self.x.shape
        self.pool_on_input = req.pool is not None and req.pool.on == "input"
        self.conv: Conv2d | None = None
        if not self.pool_on_input:
            self._plan_conv(channels, (h, w))
        self.pool = None
        if req.pool is not None:
            _check_range("pool_kernel", req.pool.kernel)
            _check_range("pool_stride", req.pool.stride)
            cls = MaxPool2d if req.pool.mode == "max" else AvgPool2d
            self.pool = cls("pool", req.pool.kernel, req.pool.stride, 0)

    def _plan_conv(self, channels: int, hw: tuple[int, int]) -> None:
        req = self.req
        _check_range("stride", req.stride)
        _check_range("dilation", req.dilation)
        if isinstance(req.padding, int):
            _check_range("padding", req.padding)
        if not 0 <= req.slope <= 1:
            raise _invalid(f"slope must be between 0 and 1, got {req.slope}")
        weights, biases = _kernels(req.kernels, channels, "kernel_size")
        self.weights, self.biases = weights, biases
        f = weights.shape[2]
        self.pads = ops.normalize_padding(
            req.padding, (f, f), (req.stride,) * 2, (req.dilation,) * 2, hw
        )
        self.size = _sizes(hw, f, req.stride, self.pads, req.dilation)
        if not _fits(self.size):
            raise _invalid(
                _fit_message("kernel", f, req.dilation, hw, self.pads, self.size),
                code="kernel_does_not_fit",
                stage="conv",
                size=self.size,
            )
        self.conv = Conv2d(
            "conv", channels, len(weights), f, req.stride, list(self.pads), req.dilation
        )
        self.conv.params["weight"][...] = weights
        self.conv.params["bias"][...] = biases
        self.act = (
            None if req.activation == "none" else _activation_layer(req.activation, req.slope)
        )

    def pool_size(self, shape: tuple[int, int]) -> dict:
        k, s = self.pool.kernel[0], self.pool.stride[0]
        size = _sizes(shape, k, s, (0, 0, 0, 0), 1)
        if not _fits(size):
            where = "input" if self.pool_on_input else "convolution's output"
            raise _invalid(
                f"the {k}x{k} pooling window does not fit in the {shape[0]}x{shape[1]} {where}: "
                f"output would be 0x0; use a smaller window",
                code="pool_does_not_fit",
                stage="pool",
                size=size,
            )
        return size

    def forward(self) -> dict[str, np.ndarray]:
        """Every stage's maps for the one image: z (conv), out (activated), pooled."""
        maps: dict[str, np.ndarray] = {"x": self.x}
        pool_in = self.x
        if self.conv is not None:
            z = self.conv.forward(self.x[None])[0]
            out = z if self.act is None else self.act.forward(z[None])[0]
            maps.update(z=z, out=out)
            pool_in = out
        if self.pool is not None:
            maps["pool_in"] = pool_in
            maps["pooled"] = self.pool.forward(pool_in[None])[0]
        return maps


def _activation_payload(plan: _ConvPlan, z: np.ndarray) -> dict[str, Any]:
    kind = plan.req.activation
    top = float(np.abs(z).max()) if z.size else 1.0
    span = max(top, 1.0) * 1.1  # the curve covers every pre-activation value on the page
    formula = "x" if plan.act is None else plan.act.formula
    return {
        "kind": kind,
        "formula": formula,
        "slope": plan.req.slope if kind == "leaky_relu" else None,
        "curve": pg.activation_curve(kind, -span, span, CURVE_POINTS, plan.req.slope),
    }


def run_conv(req: ConvRequest) -> dict[str, Any]:
    """The whole playground result: padded input, sizes, maps, and per-cell arithmetic."""
    plan = _ConvPlan(req)
    conv_part = None
    pool_part = None
    pool_in_shape = plan.x.shape
    if plan.conv is not None:
        pool_in_shape = (
            len(plan.weights),
            plan.size["height"]["result"],
            plan.size["width"]["result"],
        )
    if plan.pool is not None:
        pool_size = plan.pool_size(pool_in_shape[1:])
    maps = plan.forward()
    if plan.conv is not None:
        z, out = maps["z"], maps["out"]
        c, f = plan.x.shape[0], plan.weights.shape[2]
        cells = _cells(z.shape, 3 * c * f * f + c + 8)
        conv_part = {
            "pads": list(plan.pads),
            "padded": grid_payload(ops.pad2d(plan.x[None], plan.pads)[0]),
            "kernels": grid_payload(plan.weights),
            "biases": plan.biases.astype(np.float64).tolist(),
            "size": plan.size,
            "shape": list(z.shape),
            "pre_activation": z.astype(np.float64).tolist(),
            "output": out.astype(np.float64).tolist(),
            "activation": _activation_payload(plan, z),
            "params": {"weights": int(plan.weights.size), "biases": int(plan.biases.size)},
            "cells": None
            if cells is None
            else [_conv_cell(plan.conv, plan.x, z, out, cell) for cell in cells],
        }
    if plan.pool is not None:
        pool_in, pooled = maps["pool_in"], maps["pooled"]
        k = plan.pool.kernel[0]
        cells = _cells(pooled.shape, 2 * k * k + 12)
        pool_part = {
            "on": plan.req.pool.on,
            "mode": plan.req.pool.mode,
            "kernel": k,
            "stride": plan.pool.stride[0],
            "size": pool_size,
            "input_shape": list(pool_in.shape),
            "shape": list(pooled.shape),
            "output": pooled.astype(np.float64).tolist(),
            "cells": None
            if cells is None
            else [_pool_cell(plan.pool, pool_in, pooled, cell) for cell in cells],
        }
    return {
        "mode": "pool" if plan.pool_on_input else "conv",
        "input": grid_payload(plan.x),
        "conv": conv_part,
        "pool": pool_part,
    }


def _check_cell(cell: CellRef, shape: tuple[int, ...], stage: str) -> tuple[int, int, int]:
    idx = (cell.channel, cell.y, cell.x)
    if any(not 0 <= v < n for v, n in zip(idx, shape, strict=True)):
        raise _invalid(
            f"cell (channel {cell.channel}, y {cell.y}, x {cell.x}) is outside the {stage} output "
            f"of shape {list(shape)} (channels, height, width)",
            code="cell_out_of_range",
        )
    return idx


def explain_conv(req: ConvExplainRequest) -> dict[str, Any]:
    """The arithmetic of one output cell of the convolution or of the pooling."""
    plan = _ConvPlan(req)
    if req.cell.stage == "pool":
        if plan.pool is None:
            raise _invalid(
                "there is no pooling in this request: ask for a 'conv' cell or add 'pool'"
            )
        shape = plan.x.shape
        if plan.conv is not None:
            shape = (len(plan.weights), plan.size["height"]["result"], plan.size["width"]["result"])
        plan.pool_size(shape[1:])
    elif plan.conv is None:
        raise _invalid("pool.on is 'input', so there is no convolution: ask for a 'pool' cell")
    maps = plan.forward()
    if req.cell.stage == "pool":
        cell = _check_cell(req.cell, maps["pooled"].shape, "pooling")
        return {"stage": "pool", **_pool_cell(plan.pool, maps["pool_in"], maps["pooled"], cell)}
    cell = _check_cell(req.cell, maps["z"].shape, "convolution")
    return {"stage": "conv", **_conv_cell(plan.conv, plan.x, maps["z"], maps["out"], cell)}


# ------------------------------------------------------------------ transposed convolution


class _TransposedPlan:
    def __init__(self, req: TransposedRequest) -> None:
        self.x = _input(req.input, "t_side")
        _check_range("stride", req.stride, "t_stride")
        _check_range("dilation", req.dilation, "t_dilation")
        weights, self.biases = _kernels(req.kernels, self.x.shape[0], "t_kernel_size")
        self.kernels = weights  # (K, C, f, f): kernel k makes output channel k
        self.weight = np.ascontiguousarray(
            weights.transpose(1, 0, 2, 3)
        )  # PyTorch's (C_in, C_out, f, f)
        f, s, d = weights.shape[2], req.stride, req.dilation
        self.args = dict(
            stride=s, padding=req.padding, output_padding=req.output_padding, dilation=d
        )
        if req.padding < 0 or req.padding > d * (f - 1):
            raise _invalid(
                f"padding must be between 0 and d(f - 1) = {d * (f - 1)} for a {f}x{f} kernel with "
                f"dilation {d}, got {req.padding}: the page shows padding as zeros around the "
                "zero-inserted input, and d(f - 1) - p of them must remain",
                code="padding_too_large",
            )
        if not 0 <= req.output_padding < max(s, d):
            raise _invalid(
                f"output padding must be between 0 and {max(s, d) - 1} (below the stride or the "
                f"dilation), got {req.output_padding}"
            )
        h, w = self.x.shape[1:]
        self.size = {
            "height": pg.transposed_size(h, f, s, req.padding, req.output_padding, d),
            "width": pg.transposed_size(w, f, s, req.padding, req.output_padding, d),
        }

    def forward(self) -> np.ndarray:
        return ops.conv_transpose2d(self.x[None], self.weight, self.biases, **self.args)[0]

    def explain(self, y: np.ndarray, cell: tuple[int, int, int]) -> dict[str, Any]:
        info = pg.explain_transposed_cell(self.x, self.weight, self.biases, cell, y=y, **self.args)
        del info["kernel"]  # the flipped kernels are sent once, in "flipped"
        return info


def run_transposed(req: TransposedRequest) -> dict[str, Any]:
    """Zero-inserted and padded intermediate, flipped kernels, output and per-cell arithmetic."""
    plan = _TransposedPlan(req)
    y = plan.forward()
    parts = pg.transposed_as_conv(plan.x, plan.weight, **plan.args)
    c, f, s = plan.x.shape[0], plan.kernels.shape[2], req.stride
    # window and products, sources, sums, and about c f^2 / s^2 contributions of 5 numbers
    cells = _cells(y.shape, 2 * c * f * f + 2 * f * f + c + 8 + 5 * -(-c * f * f // (s * s)))
    return {
        "input": grid_payload(plan.x),
        "size": plan.size,
        "inserted": grid_payload(parts["inserted"]),
        "intermediate": grid_payload(parts["intermediate"]),
        "edges": list(parts["edges"]),
        "kinds": parts["kinds"].tolist(),
        "kernels": grid_payload(plan.kernels),
        "flipped": grid_payload(parts["kernel"]),
        "biases": plan.biases.astype(np.float64).tolist(),
        "shape": list(y.shape),
        "output": y.astype(np.float64).tolist(),
        "cells": None if cells is None else [plan.explain(y, cell) for cell in cells],
    }


def explain_transposed(req: TransposedExplainRequest) -> dict[str, Any]:
    """The arithmetic of one output cell of a transposed convolution."""
    plan = _TransposedPlan(req)
    y = plan.forward()
    cell = _check_cell(req.cell, y.shape, "transposed convolution")
    return plan.explain(y, cell)
