"""Slow, obvious loop versions of the engine's sliding-window and dense ops.

Written straight from the definitions, in float64, one output cell at a time, so
that they are easy to check by eye; the fast ops in ``engine.ops`` must agree with
them. Padding is always explicit here: (top, bottom, left, right).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "out_size",
    "same_pads",
    "pad",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "linear",
]

Pads = tuple[int, int, int, int]


def out_size(n: int, kernel: int, stride: int, pad_total: int, dilation: int = 1) -> int:
    """floor((n + p_total - d(f - 1) - 1) / s) + 1."""
    return (n + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def same_pads(
    size: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> Pads:
    """TensorFlow's SAME (ONNX SAME_UPPER): output ceil(n / s), the odd pixel at the end."""
    pads = []
    for n, f, s, d in zip(size, kernel, stride, dilation, strict=True):
        out = -(-n // s)
        total = max((out - 1) * s + d * (f - 1) + 1 - n, 0)
        pads += [total // 2, total - total // 2]
    return (pads[0], pads[1], pads[2], pads[3])


def pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """x (N, C, H, W) in float64 with ``value`` around it."""
    top, bottom, left, right = pads
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            out[:, :, top + i, left + j] = x[:, :, i, j]
    return out


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    pads: Pads,
    dilation: tuple[int, int],
) -> np.ndarray:
    """y[n, o, i, j] = b[o] + sum_{c,p,q} xpad[n, c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]."""
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    (sh, sw), (dh, dw) = stride, dilation
    xp = pad(x, pads)
    ho = out_size(h, kh, sh, pads[0] + pads[1], dh)
    wo = out_size(w, kw, sw, pads[2] + pads[3], dw)
    y = np.zeros((n, c_out, ho, wo))
    for b in range(n):
        for o in range(c_out):
            for i in range(ho):
                for j in range(wo):
                    total = 0.0 if bias is None else float(bias[o])
                    for c in range(c_in):
                        for p in range(kh):
                            for q in range(kw):
                                total += xp[b, c, i * sh + p * dh, j * sw + q * dw] * float(
                                    weight[o, c, p, q]
                                )
                    y[b, o, i, j] = total
    return y


def conv_transpose2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_padding: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """Every input cell x[n, c, i, j] adds x * w[c, o, p, q] at (i*s + p*d, j*s + q*d) of a
    full-size output; then ``padding`` rows/cols are cut from each side.
    Weight (C_in, C_out, kH, kW), as in PyTorch."""
    n, c_in, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + oph
    full_w = (w - 1) * sw + dw * (kw - 1) + 1 + opw
    full = np.zeros((n, c_out, full_h, full_w))
    for b in range(n):
        for c in range(c_in):
            for i in range(h):
                for j in range(w):
                    for o in range(c_out):
                        for p in range(kh):
                            for q in range(kw):
                                full[b, o, i * sh + p * dh, j * sw + q * dw] += float(
                                    x[b, c, i, j]
                                ) * float(weight[c, o, p, q])
    y = full[:, :, ph : full_h - ph, pw : full_w - pw]
    if bias is not None:
        for o in range(c_out):
            y[:, o] += float(bias[o])
    return y


def _pool_windows(x, kernel, stride, pads, fill):
    """Yield (b, c, i, j, window) for every output cell; window is kH x kW in float64."""
    (kh, kw), (sh, sw) = kernel, stride
    xp = pad(x, pads, fill)
    n, c, h, w = x.shape
    ho = out_size(h, kh, sh, pads[0] + pads[1])
    wo = out_size(w, kw, sw, pads[2] + pads[3])
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    yield b, ch, i, j, xp[b, ch, i * sh : i * sh + kh, j * sw : j * sw + kw]


def _pool_shape(x, kernel, stride, pads):
    n, c, h, w = x.shape
    return (
        n,
        c,
        out_size(h, kernel[0], stride[0], pads[0] + pads[1]),
        out_size(w, kernel[1], stride[1], pads[2] + pads[3]),
    )


def max_pool2d(x: np.ndarray, kernel, stride, pads: Pads) -> np.ndarray:
    """Largest value of each window; padded cells are -inf."""
    y = np.zeros(_pool_shape(x, kernel, stride, pads))
    for b, c, i, j, window in _pool_windows(x, kernel, stride, pads, -np.inf):
        best = -np.inf
        for value in window.ravel():
            best = max(best, value)
        y[b, c, i, j] = best
    return y


def max_pool2d_backward(dy: np.ndarray, x: np.ndarray, kernel, stride, pads: Pads) -> np.ndarray:
    """Each window's gradient goes to its first maximum in row-major order."""
    (sh, sw), (top, left) = stride, (pads[0], pads[2])
    dx = np.zeros(x.shape)
    for b, c, i, j, window in _pool_windows(x, kernel, stride, pads, -np.inf):
        best, where = -np.inf, None
        for p in range(window.shape[0]):
            for q in range(window.shape[1]):
                if window[p, q] > best:  # strict: a later equal value never wins
                    best, where = window[p, q], (p, q)
        dx[b, c, i * sh + where[0] - top, j * sw + where[1] - left] += dy[b, c, i, j]
    return dx


def avg_pool2d(x: np.ndarray, kernel, stride, pads: Pads) -> np.ndarray:
    """Mean of each window; padded zeros count (PyTorch's count_include_pad=True)."""
    y = np.zeros(_pool_shape(x, kernel, stride, pads))
    for b, c, i, j, window in _pool_windows(x, kernel, stride, pads, 0.0):
        y[b, c, i, j] = sum(window.ravel()) / window.size
    return y


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """y[n, o] = b[o] + sum_j x[n, j] * w[o, j]."""
    n, features = x.shape
    y = np.zeros((n, weight.shape[0]))
    for b in range(n):
        for o in range(weight.shape[0]):
            total = 0.0 if bias is None else float(bias[o])
            for j in range(features):
                total += float(x[b, j]) * float(weight[o, j])
            y[b, o] = total
    return y
