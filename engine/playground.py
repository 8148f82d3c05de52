"""Arithmetic for the convolution playground that the layers do not already explain.

Three small jobs, NumPy only:

- :func:`window_size` fills in the output-size formula floor((n + 2p - d(f - 1) - 1) / s) + 1
  with numbers and says whether (and why not) the kernel fits, so a page can show the
  formula and explain a bad combination in words instead of failing;
- :func:`transposed_size` does the same for a transposed convolution,
  (n - 1)s - 2p + d(f - 1) + output_padding + 1;
- :func:`transposed_as_conv` and :func:`explain_transposed_cell` show a transposed
  convolution as an ordinary stride-1 convolution of the zero-inserted, padded input with
  the flipped kernel, and list which input cells and kernel taps make one output cell.
  ``ops.conv_transpose2d`` computes the outputs; these functions only explain them.

Shapes are per image: x (C_in, H, W); transposed weights (C_in, C_out, kH, kW) as in PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from . import ops

__all__ = [
    "window_size",
    "transposed_size",
    "transposed_as_conv",
    "explain_transposed_cell",
    "activation_curve",
    "image_to_grid",
]


def window_size(
    n: int, f: int, stride: int = 1, pad_before: int = 0, pad_after: int = 0, dilation: int = 1
) -> dict[str, Any]:
    """The output-size formula along one axis, filled in.

    Returns n, f, s, d, the padding (``p`` when both sides are equal, else None), the
    kernel's reach d(f - 1) + 1, the padded length, the numerator n + 2p - d(f - 1) - 1,
    ``result`` = floor(numerator / s) + 1, ``fits`` (reach <= padded length), ``leftover``
    (padded cells after the last window that no window covers, when the stride skips them)
    and ``formula``, e.g. "floor((6 + 2×1 - 1×(3 - 1) - 1) / 1) + 1 = 6".
    """
    padded = n + pad_before + pad_after
    reach = dilation * (f - 1) + 1
    numerator = padded - dilation * (f - 1) - 1
    result = numerator // stride + 1
    fits = reach <= padded
    symmetric = pad_before == pad_after
    pad_text = f"2×{pad_before}" if symmetric else f"{pad_before} + {pad_after}"
    formula = f"floor(({n} + {pad_text} - {dilation}×({f} - 1) - 1) / {stride}) + 1 = {result}"
    return {
        "n": n,
        "f": f,
        "s": stride,
        "d": dilation,
        "p": pad_before if symmetric else None,
        "pad_before": pad_before,
        "pad_after": pad_after,
        "reach": reach,
        "padded": padded,
        "numerator": numerator,
        "result": result,
        "fits": fits,
        "leftover": numerator % stride if fits else 0,
        "formula": formula,
    }


def transposed_size(
    n: int, f: int, stride: int = 1, padding: int = 0, output_padding: int = 0, dilation: int = 1
) -> dict[str, Any]:
    """(n - 1)s - 2p + d(f - 1) + output_padding + 1 along one axis, filled in.

    Also the sizes of the zero-inserted input, (n - 1)s + 1, and of the padded intermediate
    that a stride-1 convolution with the flipped kernel reads: each side gets d(f - 1) - p
    zeros (``edge``), the bottom/right also ``output_padding``. ``fits`` is False when
    p > d(f - 1) (the picture would need negative padding) or the result is below 1.
    """
    result = (n - 1) * stride - 2 * padding + dilation * (f - 1) + output_padding + 1
    inserted = (n - 1) * stride + 1
    edge = dilation * (f - 1) - padding
    formula = (
        f"({n} - 1)×{stride} - 2×{padding} + {dilation}×({f} - 1) + {output_padding} + 1 = {result}"
    )
    return {
        "n": n,
        "f": f,
        "s": stride,
        "p": padding,
        "d": dilation,
        "output_padding": output_padding,
        "inserted": inserted,
        "edge": edge,
        "padded": inserted + 2 * edge + output_padding,
        "result": result,
        "fits": edge >= 0 and result >= 1,
        "formula": formula,
    }


def _edges(kernel: tuple[int, int], padding: int, output_padding: int, dilation: int):
    """(top, bottom, left, right) zeros around the zero-inserted input."""
    eh = dilation * (kernel[0] - 1) - padding
    ew = dilation * (kernel[1] - 1) - padding
    if min(eh, ew) < 0:
        raise ValueError(
            f"transposed convolution: padding {padding} is more than d(f - 1) = "
            f"{dilation * (min(kernel) - 1)}; the playground shows at most that much"
        )
    return (eh, eh + output_padding, ew, ew + output_padding)


def transposed_as_conv(
    x: np.ndarray,
    weight: np.ndarray,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> dict[str, np.ndarray | tuple[int, ...]]:
    """The ordinary convolution hiding in a transposed one.

    x: (C_in, H, W); weight: (C_in, C_out, kH, kW). Returns:
    ``inserted`` (C_in, (H - 1)s + 1, (W - 1)s + 1): the input with s - 1 zeros between cells;
    ``intermediate``: ``inserted`` padded by d(f - 1) - p zeros (plus output_padding at the
    bottom and right); ``edges`` (top, bottom, left, right); ``kernel`` (C_out, C_in, kH, kW):
    each kernel flipped by 180 degrees and laid out as an ordinary convolution's weights;
    ``kinds`` (rows, cols) of the intermediate: 0 an input cell, 1 an inserted zero, 2 padding.
    A stride-1, dilation-d convolution of ``intermediate`` with ``kernel`` equals
    ``ops.conv_transpose2d`` (the tests check it).
    """
    c_in, h, w = x.shape
    kh, kw = weight.shape[2:]
    inserted = np.zeros((c_in, (h - 1) * stride + 1, (w - 1) * stride + 1), dtype=np.float64)
    inserted[:, ::stride, ::stride] = x
    edges = _edges((kh, kw), padding, output_padding, dilation)
    intermediate = np.pad(inserted, ((0, 0), edges[:2], edges[2:]))
    kernel = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), dtype=np.float64)
    kinds = np.full(intermediate.shape[1:], 2, dtype=np.int8)  # 2: padding
    inner = kinds[edges[0] : edges[0] + inserted.shape[1], edges[2] : edges[2] + inserted.shape[2]]
    inner[...] = 1  # 1: an inserted zero
    inner[::stride, ::stride] = 0  # 0: an input cell
    return {
        "inserted": inserted,
        "intermediate": intermediate,
        "edges": edges,
        "kernel": kernel,
        "kinds": kinds,
    }


def explain_transposed_cell(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    cell: tuple[int, int, int],
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
    y: np.ndarray | None = None,
) -> dict[str, Any]:
    """One output cell (o, oy, ox) of a transposed convolution, two ways.

    As a convolution: ``rows``/``cols`` of the window in the intermediate, ``window``
    (C_in, kH, kW), the flipped ``kernel`` of output channel o, ``products``,
    ``channel_sums``, ``bias`` and ``value``; ``source`` (kH, kW) says what each tap sits on:
    [i, j] for an input cell, "zero" for an inserted zero, "pad" for the padding.
    As a scatter: ``contributions``, one per input cell that reaches this output, with the
    original (unflipped) kernel tap: {"input": [c, i, j], "tap": [p, q], "value", "weight",
    "product"}, where oy = i·s + p·d - padding. ``activation`` is the value of
    ``ops.conv_transpose2d`` (pass it as ``y`` (C_out, H_out, W_out) to avoid recomputing).
    """
    c_in, h, w = x.shape
    c_out, kh, kw = weight.shape[1:]
    o, oy, ox = (int(v) for v in cell)
    parts = transposed_as_conv(x, weight, stride, padding, output_padding, dilation)
    inter = parts["intermediate"]
    ho, wo = inter.shape[1] - dilation * (kh - 1), inter.shape[2] - dilation * (kw - 1)
    if not (0 <= o < c_out and 0 <= oy < ho and 0 <= ox < wo):
        raise IndexError(
            f"transposed convolution: cell {list(cell)} is outside ({c_out}, {ho}, {wo})"
        )
    top, _, left, _ = parts["edges"]
    rows = oy + dilation * np.arange(kh)
    cols = ox + dilation * np.arange(kw)
    window = inter[:, rows][:, :, cols]
    kernel = parts["kernel"][o]
    products = window * kernel
    channel_sums = products.sum(axis=(1, 2))
    b = float(bias[o]) if bias is not None else 0.0

    source: list[list[Any]] = []
    for r in rows:
        line: list[Any] = []
        for col in cols:
            ry, rx = int(r) - top, int(col) - left  # position in the zero-inserted input
            inside = 0 <= ry <= (h - 1) * stride and 0 <= rx <= (w - 1) * stride
            if not inside:
                line.append("pad")
            elif ry % stride or rx % stride:
                line.append("zero")
            else:
                line.append([ry // stride, rx // stride])
        source.append(line)

    contributions = []
    for p in range(kh):
        for q in range(kw):
            src = source[kh - 1 - p][kw - 1 - q]  # flipped tap (kh-1-p, kw-1-q) is original (p, q)
            if not isinstance(src, list):
                continue
            i, j = src
            for c in range(c_in):
                value, wt = float(x[c, i, j]), float(weight[c, o, p, q])
                contributions.append(
                    {
                        "input": [c, i, j],
                        "tap": [p, q],
                        "value": value,
                        "weight": wt,
                        "product": value * wt,
                    }
                )

    if y is None:
        y = ops.conv_transpose2d(x[None], weight, bias, stride, padding, output_padding, dilation)[
            0
        ]
    return {
        "cell": [o, oy, ox],
        "rows": rows.tolist(),
        "cols": cols.tolist(),
        "window": window.tolist(),
        "source": source,
        "kernel": kernel.tolist(),
        "products": products.tolist(),
        "channel_sums": channel_sums.tolist(),
        "bias": b,
        "value": float(channel_sums.sum() + b),
        "contributions": contributions,
        "activation": float(y[o, oy, ox]),
    }


_ACTIVATIONS = {
    "relu": ops.relu,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
}


def activation_curve(
    kind: str, lo: float, hi: float, points: int = 121, slope: float = 0.01
) -> dict[str, list[float]]:
    """Samples of an activation over [lo, hi] for drawing its curve: {"x": [...], "y": [...]}."""
    xs = np.linspace(lo, hi, points)
    if kind == "leaky_relu":
        ys = ops.leaky_relu(xs, slope)
    elif kind == "none":
        ys = xs.copy()
    else:
        ys = _ACTIVATIONS[kind](xs)
    return {"x": xs.tolist(), "y": np.asarray(ys, dtype=np.float64).tolist()}


def image_to_grid(image: Image.Image, size: int, channels: int, zoom: float = 1.0) -> np.ndarray:
    """An RGB image as a small grid of 0-255 values, (channels, size, size).

    The central square of side (short side) / zoom is downscaled with a box filter (each
    grid cell is the mean of the pixels it covers) and rounded to whole numbers, like the
    pixel values in the textbook's examples. channels=1 is the ITU-R 601 luma (Pillow "L").
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if zoom < 1:
        raise ValueError(f"zoom must be at least 1, got {zoom}")
    w, h = image.size
    side = min(w, h) / zoom
    left, top = (w - side) / 2, (h - side) / 2
    mode = "L" if channels == 1 else "RGB"
    small = image.convert(mode).resize(
        (size, size), Image.Resampling.BOX, box=(left, top, left + side, top + side)
    )
    grid = np.asarray(small, dtype=np.float32)
    return grid[None] if channels == 1 else grid.transpose(2, 0, 1).copy()
