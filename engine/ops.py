"""Pure NumPy functions for the layers of a VGG-style CNN, and their gradients.

Conventions: float32 arrays, channel-first. A batch of images is (N, C, H, W),
convolution weights are (C_out, C_in, kH, kW), linear weights are (out, in), as in
PyTorch and ONNX. Every sliding-window op uses one output-size formula,
:func:`output_size`, and reports impossible geometry as a ``ValueError`` that names
the layer and the numbers.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

__all__ = [
    "Padding",
    "output_size",
    "set_num_threads",
    "normalize_padding",
    "pad2d",
    "pad2d_backward",
    "conv2d",
    "conv2d_relu",
    "conv2d_backward",
    "conv_transpose2d",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "flatten",
    "flatten_backward",
    "linear",
    "linear_backward",
    "softmax",
    "softmax_backward",
    "log_softmax",
    "cross_entropy",
    "cross_entropy_backward",
]

Padding = int | Sequence[int] | Literal["same", "valid"]
Pair = tuple[int, int]
Pads = tuple[int, int, int, int]  # top, bottom, left, right

# Convolutions are computed in chunks whose im2col matrix holds about this many
# bytes: big enough for an efficient matmul, small enough to stay in cache and to
# keep peak memory a small fraction of the activations (see docs/BENCHMARKS.md).
CHUNK_BYTES = 1 << 22
# Below this much im2col per image, splitting one image over threads costs more than it saves.
MIN_SPLIT_BYTES = 1 << 21
# A linear layer's weights are split over the threads above this size (VGG-16's fc1 is 411
# MB: at batch 1 it is a matrix-vector product bound by memory bandwidth, one core's worth).
LINEAR_SPLIT_BYTES = 1 << 24


def _default_threads() -> int:
    # Chunks run on several threads only when BLAS itself is single-threaded: two
    # levels of threads on a small machine oversubscribe the cores and spin.
    pinned = any(
        os.environ.get(v) == "1"
        for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    )
    return (os.cpu_count() or 1) if pinned else 1


_threads = _default_threads()
_pool: ThreadPoolExecutor | None = None


def set_num_threads(threads: int) -> None:
    """Threads that share a convolution's chunks (NumPy releases the GIL in copies and
    matmuls). Use 1 when BLAS is multi-threaded."""
    global _threads, _pool
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    _threads = threads
    if _pool is not None:
        _pool.shutdown(wait=False)
        _pool = None


def _map_chunks(fn: Callable[[Any], Any], chunks: Iterable) -> list[Any]:
    """fn over every chunk, in order; on the engine's thread pool when it has threads."""
    global _pool
    chunks = list(chunks)
    if _threads == 1 or len(chunks) == 1:
        return [fn(c) for c in chunks]
    if _pool is None:
        _pool = ThreadPoolExecutor(_threads, thread_name_prefix="convscope-ops")
    return list(_pool.map(fn, chunks))


# --------------------------------------------------------------------------- geometry


def _pair(value: int | Sequence[int], what: str, layer: str) -> Pair:
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    else:
        items = tuple(int(v) for v in value)
        if len(items) != 2:
            raise ValueError(f"{layer}: {what} must be one integer or two, got {value!r}")
        pair = (items[0], items[1])
    return pair


def output_size(n: int, kernel: int, stride: int = 1, pad: int = 0, dilation: int = 1) -> int:
    """Output length along one axis: floor((n + 2p - d(f - 1) - 1) / s) + 1.

    ``pad`` is the total padding on both sides (2p when symmetric). The result is
    below 1 when the dilated kernel does not fit in the padded input.
    """
    return (n + pad - dilation * (kernel - 1) - 1) // stride + 1


def normalize_padding(
    padding: Padding,
    kernel: Pair,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    in_size: Pair | None = None,
    layer: str = "conv2d",
) -> Pads:
    """Turn a padding spec into (top, bottom, left, right).

    Accepted: an int p (all sides), (ph, pw), (top, bottom, left, right), "valid"
    (no padding) or "same" (output size ceil(n / s), extra padding at the bottom
    and right, as in TensorFlow and ONNX's SAME_UPPER).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(
                f"{layer}: padding must be 'same', 'valid' or integers, got {padding!r}"
            )
        totals = []
        for axis in range(2):
            reach = dilation[axis] * (kernel[axis] - 1) + 1
            if stride[axis] == 1 or in_size is None:
                total = reach - 1
            else:
                n = in_size[axis]
                out = -(-n // stride[axis])
                total = max((out - 1) * stride[axis] + reach - n, 0)
            totals.append(total)
        (th, tw) = totals
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    if isinstance(padding, (int, np.integer)):
        pads = (int(padding),) * 4
    else:
        items = tuple(int(p) for p in padding)
        if len(items) == 2:
            pads = (items[0], items[0], items[1], items[1])
        elif len(items) == 4:
            pads = items  # type: ignore[assignment]
        else:
            raise ValueError(f"{layer}: padding must have 1, 2 or 4 integers, got {padding!r}")
    if min(pads) < 0:
        raise ValueError(f"{layer}: padding must not be negative, got {pads}")
    return pads  # type: ignore[return-value]


def _geometry(
    layer: str,
    in_hw: Pair,
    kernel: Pair,
    stride: Pair,
    pads: Pads,
    dilation: Pair,
) -> Pair:
    """Check a sliding-window geometry and return the output (H, W)."""
    if min(kernel) < 1:
        raise ValueError(f"{layer}: kernel size must be at least 1, got {kernel[0]}x{kernel[1]}")
    if min(stride) < 1:
        raise ValueError(f"{layer}: stride must be at least 1, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"{layer}: dilation must be at least 1, got {dilation}")
    out = []
    for axis, (label, lo, hi) in enumerate((("height", 0, 1), ("width", 2, 3))):
        n = in_hw[axis]
        padded = n + pads[lo] + pads[hi]
        reach = dilation[axis] * (kernel[axis] - 1) + 1
        if reach > padded:
            raise ValueError(
                f"{layer}: kernel {label} {kernel[axis]} (reach {reach} with dilation "
                f"{dilation[axis]}) is larger than the padded input {label} {padded} "
                f"({n} + {pads[lo]} + {pads[hi]})"
            )
        out.append(output_size(n, kernel[axis], stride[axis], pads[lo] + pads[hi], dilation[axis]))
    return (out[0], out[1])


def _check_4d(x: np.ndarray, layer: str, what: str = "input") -> None:
    if x.ndim != 4:
        raise ValueError(f"{layer}: {what} must be (N, C, H, W), got shape {x.shape}")


# ------------------------------------------------------------------------------ padding


def pad2d(x: np.ndarray, padding: Padding, value: float = 0.0, layer: str = "pad2d") -> np.ndarray:
    """Pad the last two axes of x (N, C, H, W) with ``value``: (top, bottom, left, right)."""
    _check_4d(x, layer)
    top, bottom, left, right = normalize_padding(padding, (1, 1), layer=layer)
    if not (top or bottom or left or right):
        return x
    n, c, h, w = x.shape
    shape = (n, c, h + top + bottom, w + left + right)
    out = np.zeros(shape, x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
    out[:, :, top : top + h, left : left + w] = x
    return out


def pad2d_backward(dy: np.ndarray, padding: Padding) -> np.ndarray:
    """Gradient of pad2d: the interior of the padded gradient."""
    top, bottom, left, right = normalize_padding(padding, (1, 1), layer="pad2d")
    h, w = dy.shape[2] - top - bottom, dy.shape[3] - left - right
    return dy[:, :, top : top + h, left : left + w]


def _windows(
    xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair
) -> np.ndarray:
    """A read-only (N, C, kH, kW, H_out, W_out) view of every window of padded xp.

    Built with the ndarray constructor over xp's buffer: as_strided does the same through
    a Python-level __array_interface__ at several times the cost, which matters at batch 1."""
    xp = np.ascontiguousarray(xp)  # one buffer to view (a copy only for unusual inputs)
    sn, sc, sh, sw = xp.strides
    n, c = xp.shape[:2]
    view = np.ndarray(
        (n, c, kernel[0], kernel[1], out_hw[0], out_hw[1]),
        xp.dtype,
        buffer=xp,
        strides=(sn, sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1]),
    )
    view.flags.writeable = False
    return view


def _chunks(n: int, rows: int, bytes_per_row: int) -> Iterator[tuple[int, int, int, int]]:
    """Split (images, output rows) into blocks of about CHUNK_BYTES of im2col.

    A single image too small for one block per thread (VGG-16's 14x14 layers) is still
    split by rows, so every thread gets work, unless the blocks would be tiny."""
    image_bytes = rows * bytes_per_row
    if n == 1 and _threads > 1 and rows >= _threads and image_bytes >= MIN_SPLIT_BYTES:
        step = -(-rows // max(_threads, -(-image_bytes // CHUNK_BYTES)))
        for r0 in range(0, rows, step):
            yield 0, 1, r0, min(rows, r0 + step)
    elif image_bytes <= CHUNK_BYTES:
        step = max(1, CHUNK_BYTES // max(image_bytes, 1))
        for n0 in range(0, n, step):
            yield n0, min(n, n0 + step), 0, rows
    else:
        step = max(1, CHUNK_BYTES // bytes_per_row)
        for n0 in range(n):
            for r0 in range(0, rows, step):
                yield n0, n0 + 1, r0, min(rows, r0 + step)


# -------------------------------------------------------------------------- convolution


def _conv_setup(x, weight, stride, padding, dilation, layer):
    _check_4d(x, layer)
    if weight.ndim != 4:
        raise ValueError(f"{layer}: weight must be (C_out, C_in, kH, kW), got shape {weight.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"{layer}: input has {x.shape[1]} channels but the kernels expect {weight.shape[1]}"
        )
    return _conv_plan(
        x.shape[2:], weight.shape[2:], _key(stride), _key(padding), _key(dilation), layer
    )


def _key(value: Any) -> Any:
    """A hashable stand-in for a stride, padding or dilation argument (lists become tuples)."""
    if isinstance(value, (int, str, np.integer)):
        return value
    return tuple(int(v) for v in value)  # what _pair and normalize_padding make of them anyway


@functools.lru_cache(maxsize=1024)
def _conv_plan(in_hw, kernel, stride, padding, dilation, layer):
    """(kernel, stride, dilation, pads, out_hw) of a convolution. Cached: a model asks the
    same few questions on every pass, and at batch 1 the answer costs as much as a small
    layer's arithmetic. Errors are raised again on every call (lru_cache keeps none)."""
    stride = _pair(stride, "stride", layer)
    dilation = _pair(dilation, "dilation", layer)
    pads = normalize_padding(padding, kernel, stride, dilation, in_hw, layer)
    out_hw = _geometry(layer, in_hw, kernel, stride, pads, dilation)
    return kernel, stride, dilation, pads, out_hw


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: Padding = 0,
    dilation: int | Sequence[int] = 1,
    layer: str = "conv2d",
    keep_cols: list | None = None,
) -> np.ndarray:
    """2-D cross-correlation, as in every deep-learning library.

    x: (N, C_in, H, W); weight: (C_out, C_in, kH, kW); bias: (C_out,) or None.
    Returns (N, C_out, H_out, W_out) with
    H_out = floor((H + p_top + p_bottom - d(kH - 1) - 1) / s) + 1 (likewise W_out).

    Each block of output positions is an im2col matrix (a sliding-window view and
    one copy) times the kernels reshaped to (C_out, C_in * kH * kW). A list passed
    as ``keep_cols`` receives those blocks, so a training step's backward pass can
    reuse them instead of copying the windows again.
    """
    y, _ = _conv2d(x, weight, bias, stride, padding, dilation, layer, keep_cols, relu=False)
    return y


def conv2d_relu(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: Padding = 0,
    dilation: int | Sequence[int] = 1,
    layer: str = "conv2d",
) -> tuple[np.ndarray, np.ndarray]:
    """(conv2d(x, ...), relu of it): two separate arrays, computed in one pass. Each block's
    ReLU is taken while the block is still in cache and on the same threads, instead of a
    second single-threaded pass over the whole output."""
    y, r = _conv2d(x, weight, bias, stride, padding, dilation, layer, None, relu=True)
    return y, r


def _conv2d(x, weight, bias, stride, padding, dilation, layer, keep_cols, relu: bool):
    kernel, stride, dilation, pads, (ho, wo) = _conv_setup(
        x, weight, stride, padding, dilation, layer
    )
    n = x.shape[0]
    c_out = weight.shape[0]
    k = weight[0].size
    w2 = weight.reshape(c_out, k)
    windows = _windows(pad2d(x, pads, layer=layer), kernel, stride, dilation, (ho, wo))
    y = np.empty((n, c_out, ho, wo), dtype=np.result_type(x, weight))
    r = np.empty_like(y) if relu else None
    b4 = None if bias is None else bias.reshape(1, c_out, 1, 1).astype(y.dtype, copy=False)

    def compute(chunk: tuple[int, int, int, int]) -> np.ndarray | None:
        n0, n1, r0, r1 = chunk
        cols = windows[n0:n1, :, :, :, r0:r1].transpose(1, 2, 3, 0, 4, 5).reshape(k, -1)
        block = (w2 @ cols).reshape(c_out, n1 - n0, r1 - r0, wo).transpose(1, 0, 2, 3)
        out = y[n0:n1, :, r0:r1]  # chunks write disjoint blocks
        if b4 is None:
            np.copyto(out, block)
        else:
            np.add(block, b4, out=out)  # the bias in the same pass as the write
        if r is not None:
            np.maximum(out, 0, out=r[n0:n1, :, r0:r1])
        return cols if keep_cols is not None else None

    kept = _map_chunks(compute, _chunks(n, ho, k * wo * x.itemsize))
    if keep_cols is not None:
        keep_cols.extend(kept)
    return y, r


def conv2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    stride: int | Sequence[int] = 1,
    padding: Padding = 0,
    dilation: int | Sequence[int] = 1,
    layer: str = "conv2d",
    cols: list | None = None,
    input_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of conv2d: (dL/dx, dL/dweight, dL/dbias) from dL/dy (N, C_out, H_out, W_out).

    dL/dweight is dL/dy times the im2col blocks (``cols`` from the forward pass when
    given, rebuilt otherwise). dL/dx: with stride 1 it is itself a convolution of
    dL/dy with the kernels flipped and transposed (a "full" convolution); otherwise
    each kernel tap's share is scattered back with one strided add. ``input_grad=False``
    skips dL/dx (returned as None): a network's first layer does not need it.
    """
    kernel, stride, dilation, pads, (ho, wo) = _conv_setup(
        x, weight, stride, padding, dilation, layer
    )
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    k = weight[0].size
    w2 = weight.reshape(c_out, k)
    reach = (dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1))
    full_pads = (reach[0] - pads[0], reach[0] - pads[1], reach[1] - pads[2], reach[1] - pads[3])
    as_convolution = stride == (1, 1) and min(full_pads) >= 0
    skip_dx = as_convolution or not input_grad
    windows = dxp = None
    if cols is None or not as_convolution:
        xp = pad2d(x, pads, layer=layer)
        windows = _windows(xp, kernel, stride, dilation, (ho, wo))
        dxp = None if skip_dx else np.zeros(xp.shape, dtype=x.dtype)
    (sh, sw), (dh, dw_) = stride, dilation

    def block_grads(item: tuple[int, tuple[int, int, int, int]]) -> np.ndarray:
        """dL/dweight of one chunk; also scatters its dL/dx share unless that is skipped."""
        index, (n0, n1, r0, r1) = item
        if cols is not None:
            block_cols = cols[index]
        else:
            block_cols = windows[n0:n1, :, :, :, r0:r1].transpose(1, 2, 3, 0, 4, 5).reshape(k, -1)
        dblock = dy[n0:n1, :, r0:r1].transpose(1, 0, 2, 3).reshape(c_out, -1)
        if not skip_dx:
            dcols = (w2.T @ dblock).reshape(c_in, kernel[0], kernel[1], n1 - n0, r1 - r0, wo)
            for i in range(kernel[0]):
                top = r0 * sh + i * dh
                rows = slice(top, top + (r1 - r0 - 1) * sh + 1, sh)
                for j in range(kernel[1]):
                    left = j * dw_
                    cols_slice = slice(left, left + (wo - 1) * sw + 1, sw)
                    dxp[n0:n1, :, rows, cols_slice] += dcols[:, i, j].transpose(1, 0, 2, 3)
        return dblock @ block_cols.T

    items = list(enumerate(_chunks(n, ho, k * wo * x.itemsize)))
    # Scattered dL/dx shares overlap between neighbouring chunks: only then run in order.
    partials = _map_chunks(block_grads, items) if skip_dx else [block_grads(item) for item in items]
    dw = partials[0]
    for partial in partials[1:]:
        dw += partial
    if not input_grad:
        dx = None
    elif as_convolution:
        flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        dx = conv2d(dy, flipped, None, 1, full_pads, dilation, layer)
    else:
        dx = np.ascontiguousarray(pad2d_backward(dxp, pads))
    db = dy.sum(axis=(0, 2, 3))
    return dx, dw.reshape(weight.shape), db


def conv_transpose2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    layer: str = "conv_transpose2d",
) -> np.ndarray:
    """Transposed convolution: x (N, C_in, H, W), weight (C_in, C_out, kH, kW) as in PyTorch.

    Every input cell scatters weight * value into the output, s cells apart:
    H_out = (H - 1) s - 2p + d(kH - 1) + output_padding + 1.
    """
    _check_4d(x, layer)
    if weight.ndim != 4 or weight.shape[0] != x.shape[1]:
        raise ValueError(
            f"{layer}: weight must be (C_in={x.shape[1]}, C_out, kH, kW), got shape {weight.shape}"
        )
    (sh, sw) = _pair(stride, "stride", layer)
    (ph, pw) = _pair(padding, "padding", layer)
    (oph, opw) = _pair(output_padding, "output_padding", layer)
    (dh, dw) = _pair(dilation, "dilation", layer)
    if min(sh, sw, dh, dw) < 1 or min(ph, pw, oph, opw) < 0:
        raise ValueError(
            f"{layer}: stride {(sh, sw)} and dilation {(dh, dw)} must be >= 1, padding {(ph, pw)} "
            f"and output_padding {(oph, opw)} >= 0"
        )
    n, c_in, h, w = x.shape
    c_out, kh, kw = weight.shape[1:]
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + oph
    full_w = (w - 1) * sw + dw * (kw - 1) + 1 + opw
    ho, wo = full_h - 2 * ph, full_w - 2 * pw
    if ho < 1 or wo < 1:
        raise ValueError(f"{layer}: padding {(ph, pw)} leaves no output from a {h}x{w} input")
    full = np.zeros((n, c_out, full_h, full_w), dtype=np.result_type(x, weight))
    # taps[i, j]: (N, C_out, H, W) contribution of kernel tap (i, j) from every input cell
    taps = np.einsum("nchw,cokl->klnohw", x, weight, optimize=True)
    for i in range(kh):
        for j in range(kw):
            full[
                :,
                :,
                i * dh : i * dh + (h - 1) * sh + 1 : sh,
                j * dw : j * dw + (w - 1) * sw + 1 : sw,
            ] += taps[i, j]
    y = full[:, :, ph : ph + ho, pw : pw + wo]
    if bias is not None:
        y = y + bias.reshape(1, c_out, 1, 1)
    return np.ascontiguousarray(y)


# ------------------------------------------------------------------------------ pooling


def _pool_setup(x, kernel, stride, padding, layer):
    _check_4d(x, layer)
    return _pool_plan(
        x.shape[2:], _key(kernel), None if stride is None else _key(stride), _key(padding), layer
    )


@functools.lru_cache(maxsize=1024)
def _pool_plan(in_hw, kernel, stride, padding, layer):
    """(kernel, stride, pads, out_hw) of a pooling layer; cached like _conv_plan."""
    kernel = _pair(kernel, "kernel", layer)
    stride = kernel if stride is None else _pair(stride, "stride", layer)
    pads = normalize_padding(padding, kernel, stride, (1, 1), in_hw, layer)
    if max(pads[0], pads[1]) * 2 > kernel[0] or max(pads[2], pads[3]) * 2 > kernel[1]:
        raise ValueError(f"{layer}: padding {pads} must be at most half the kernel {kernel}")
    out_hw = _geometry(layer, in_hw, kernel, stride, pads, (1, 1))
    return kernel, stride, pads, out_hw


def _taps(kernel: Pair, stride: Pair, out_hw: Pair) -> Iterator[tuple[int, slice, slice]]:
    """(tap index, rows, cols): the strided slice of the padded input under each kernel tap."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows = slice(i, i + (out_hw[0] - 1) * stride[0] + 1, stride[0])
            cols = slice(j, j + (out_hw[1] - 1) * stride[1] + 1, stride[1])
            yield i * kernel[1] + j, rows, cols


def _separable_pool(
    xp: np.ndarray, kernel: Pair, stride: Pair, out_hw: Pair, reduce: Callable
) -> np.ndarray:
    """``reduce`` (np.maximum or np.add) over every window of padded xp, one axis at a time:
    first the kH rows of each window (whole rows, so contiguous runs), then the kW columns.
    kH + kW passes instead of kH * kW; a max is exact either way."""
    ho, wo = out_hw
    rows = _reduce_taps(
        [xp[:, :, i : i + (ho - 1) * stride[0] + 1 : stride[0]] for i in range(kernel[0])], reduce
    )
    return _reduce_taps(
        [rows[..., j : j + (wo - 1) * stride[1] + 1 : stride[1]] for j in range(kernel[1])], reduce
    )


def _reduce_taps(taps: list[np.ndarray], reduce: Callable) -> np.ndarray:
    """reduce(...reduce(taps[0], taps[1])..., taps[-1]) into one new array."""
    if len(taps) == 1:
        return taps[0].copy()
    out = reduce(taps[0], taps[1])
    for tap in taps[2:]:
        reduce(out, tap, out=out)
    return out


def max_pool2d(
    x: np.ndarray,
    kernel: int | Sequence[int] = 2,
    stride: int | Sequence[int] | None = None,
    padding: Padding = 0,
    layer: str = "max_pool2d",
) -> np.ndarray:
    """Max over each kH x kW window, per channel; padding counts as -inf (never chosen).

    x: (N, C, H, W) -> (N, C, H_out, W_out); stride defaults to the kernel size.
    """
    kernel, stride, pads, out_hw = _pool_setup(x, kernel, stride, padding, layer)
    xp = pad2d(x, pads, value=-np.inf, layer=layer)
    return _separable_pool(xp, kernel, stride, out_hw, np.maximum)


def max_pool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    kernel: int | Sequence[int] = 2,
    stride: int | Sequence[int] | None = None,
    padding: Padding = 0,
    y: np.ndarray | None = None,
    layer: str = "max_pool2d",
) -> np.ndarray:
    """Gradient of max_pool2d: each window's gradient goes to its FIRST maximum only
    (row-major order in the window). Ties are common in JPEG-derived images, and an
    ``x == max`` mask would send the gradient to every tied cell."""
    kernel, stride, pads, out_hw = _pool_setup(x, kernel, stride, padding, layer)
    if y is None:
        y = max_pool2d(x, kernel, stride, padding, layer)
    xp = pad2d(x, pads, value=-np.inf, layer=layer)
    dxp = np.zeros(xp.shape, dtype=dy.dtype)
    unclaimed = np.ones(y.shape, dtype=bool)
    for _, rows, cols in _taps(kernel, stride, out_hw):
        hit = xp[:, :, rows, cols] == y
        hit &= unclaimed
        unclaimed &= ~hit
        dxp[:, :, rows, cols] += dy * hit
    return np.ascontiguousarray(pad2d_backward(dxp, pads))


def avg_pool2d(
    x: np.ndarray,
    kernel: int | Sequence[int] = 2,
    stride: int | Sequence[int] | None = None,
    padding: Padding = 0,
    layer: str = "avg_pool2d",
) -> np.ndarray:
    """Mean over each kH x kW window, per channel; padded zeros count in the mean."""
    kernel, stride, pads, out_hw = _pool_setup(x, kernel, stride, padding, layer)
    y = _separable_pool(pad2d(x, pads, layer=layer), kernel, stride, out_hw, np.add)
    y *= 1.0 / (kernel[0] * kernel[1])
    return y


def avg_pool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    kernel: int | Sequence[int] = 2,
    stride: int | Sequence[int] | None = None,
    padding: Padding = 0,
    layer: str = "avg_pool2d",
) -> np.ndarray:
    """Gradient of avg_pool2d: each window's gradient shared equally by its cells."""
    kernel, stride, pads, out_hw = _pool_setup(x, kernel, stride, padding, layer)
    n, c, h, w = x.shape
    dxp = np.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=dy.dtype)
    share = dy * (1.0 / (kernel[0] * kernel[1]))
    for _, rows, cols in _taps(kernel, stride, out_hw):
        dxp[:, :, rows, cols] += share
    return np.ascontiguousarray(pad2d_backward(dxp, pads))


# -------------------------------------------------------------------------- activations


def relu(x: np.ndarray) -> np.ndarray:
    """max(0, x), element-wise."""
    return np.maximum(x, 0)


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of relu: passes where x > 0."""
    return dy * (x > 0)


def leaky_relu(x: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """x where x > 0, slope * x elsewhere."""
    return np.where(x > 0, x, x * x.dtype.type(slope))


def leaky_relu_backward(dy: np.ndarray, x: np.ndarray, slope: float = 0.01) -> np.ndarray:
    return np.where(x > 0, dy, dy * dy.dtype.type(slope))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    s = sigmoid(x)
    return dy * s * (1 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    return dy * (1 - np.tanh(x) ** 2)


# ------------------------------------------------------------------- flatten and linear


def flatten(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, C * H * W), row-major: index = (c * H + y) * W + x."""
    return x.reshape(x.shape[0], -1)


def flatten_backward(dy: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    return dy.reshape(tuple(input_shape))


def linear(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, layer: str = "linear"
) -> np.ndarray:
    """y = x W^T + b; x: (N, in), weight: (out, in), bias: (out,)."""
    if x.ndim != 2:
        raise ValueError(f"{layer}: input must be (N, features), got shape {x.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"{layer}: input has {x.shape[1]} features but the weights expect {weight.shape[1]}"
        )
    if weight.nbytes < LINEAR_SPLIT_BYTES or _threads == 1:
        y = x @ weight.T
    else:
        y = np.empty((x.shape[0], weight.shape[0]), dtype=np.result_type(x, weight))
        step = -(-weight.shape[0] // _threads)

        def rows(o0: int) -> None:
            y[:, o0 : o0 + step] = x @ weight[o0 : o0 + step].T

        _map_chunks(rows, range(0, weight.shape[0], step))
    if bias is not None:
        y += bias
    return y


def linear_backward(
    dy: np.ndarray, x: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dL/dx, dL/dweight, dL/dbias) of linear."""
    return dy @ weight, dy.T @ x, dy.sum(axis=0)


# ---------------------------------------------------------------- softmax and the loss


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)): subtracting the max keeps exp from overflowing."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(dy: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Gradient of softmax given its output y: y * (dy - sum(dy * y))."""
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _check_labels(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"cross_entropy: logits must be (N, classes) and labels (N,), "
            f"got {logits.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"cross_entropy: labels must lie in [0, {logits.shape[1]})")
    return labels.astype(np.intp)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-probability of the true class; logits (N, classes), labels (N,)."""
    labels = _check_labels(logits, labels)
    logp = log_softmax(logits)
    return float(-logp[np.arange(len(labels)), labels].mean())


def cross_entropy_backward(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """dL/dlogits of the mean cross-entropy: (softmax - one_hot) / N."""
    labels = _check_labels(logits, labels)
    grad = softmax(logits)
    grad[np.arange(len(labels)), labels] -= 1
    grad /= len(labels)
    return grad
