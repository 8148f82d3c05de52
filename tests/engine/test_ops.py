"""engine.ops against the loop oracle: property tests over shapes and geometry."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ops

from . import oracle
from .checks import assert_close

# The oracle loops in Python, so keep the shapes small and the example counts modest.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PADDING_FORMS = ("int", "pair", "tblr", "same", "valid")


def _draw_padding(draw, form: str, limit: int):
    """(padding spec for the engine, explicit (top, bottom, left, right) or None for strings)."""
    if form == "int":
        p = draw(st.integers(0, limit))
        return p, (p, p, p, p)
    if form == "pair":
        ph, pw = draw(st.integers(0, limit)), draw(st.integers(0, limit))
        return (ph, pw), (ph, ph, pw, pw)
    if form == "tblr":
        pads = tuple(draw(st.integers(0, limit)) for _ in range(4))
        return pads, pads
    return form, None


def _fitting_size(draw, reach: int, pad_total: int, extra: int = 4) -> int:
    """An input length in which a kernel of this reach fits after padding."""
    low = max(1, reach - pad_total)
    return draw(st.integers(low, low + extra))


@st.composite
def conv_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    form = draw(st.sampled_from(PADDING_FORMS))
    spec, pads = _draw_padding(draw, form, 3)
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    totals = (0, 0) if pads is None else (pads[0] + pads[1], pads[2] + pads[3])
    if form == "same":  # SAME always fits: any size works
        totals = (max(reach), max(reach))
    size = (_fitting_size(draw, reach[0], totals[0]), _fitting_size(draw, reach[1], totals[1]))
    if pads is None:
        pads = oracle.same_pads(size, kernel, stride, dilation) if form == "same" else (0, 0, 0, 0)
    return {
        "n": draw(st.integers(1, 3)),
        "c_in": draw(st.integers(1, 3)),
        "c_out": draw(st.integers(1, 3)),
        "size": size,
        "kernel": kernel,
        "stride": stride,
        "dilation": dilation,
        "padding": spec,
        "pads": pads,
        "bias": draw(st.booleans()),
        "chunk": draw(st.sampled_from(["default", "rows", "images"])),
        "seed": draw(st.integers(0, 2**31)),
    }


def _chunk_bytes(case: dict, out_hw: tuple[int, int]) -> int:
    """CHUNK_BYTES that forces a path: one output row per block, or one image per block."""
    bytes_per_row = case["c_in"] * case["kernel"][0] * case["kernel"][1] * out_hw[1] * 4
    if case["chunk"] == "rows":
        return 1  # smaller than one row: every block is a single row of one image
    if case["chunk"] == "images":
        return bytes_per_row * out_hw[0]  # exactly one image per block
    return ops.CHUNK_BYTES


def _conv_case(case):
    """Random input, kernels and bias for a generated case, and the oracle's output."""
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c_in"], *case["size"])).astype(np.float32)
    w = rng.standard_normal((case["c_out"], case["c_in"], *case["kernel"])).astype(np.float32)
    b = rng.standard_normal(case["c_out"]).astype(np.float32) if case["bias"] else None
    return x, w, b, oracle.conv2d(x, w, b, case["stride"], case["pads"], case["dilation"])


@given(conv_cases())
@FAST
def test_conv2d_matches_oracle(case):
    x, w, b, expected = _conv_case(case)
    with mock.patch.object(ops, "CHUNK_BYTES", _chunk_bytes(case, expected.shape[2:])):
        y = ops.conv2d(x, w, b, case["stride"], case["padding"], case["dilation"])
    assert y.dtype == np.float32
    assert_close(y, expected, what="conv2d")
    if case["padding"] == "same":
        # SAME keeps ceil(n / s) positions along each axis.
        assert y.shape[2:] == tuple(
            -(-n // s) for n, s in zip(case["size"], case["stride"], strict=True)
        )


@given(conv_cases())
@FAST
def test_conv2d_relu_matches_oracle(case):
    """conv2d_relu: the convolution and its ReLU, as two separate arrays, in every chunking."""
    x, w, b, expected = _conv_case(case)
    with mock.patch.object(ops, "CHUNK_BYTES", _chunk_bytes(case, expected.shape[2:])):
        y, r = ops.conv2d_relu(x, w, b, case["stride"], case["padding"], case["dilation"])
    assert not np.shares_memory(y, r)
    assert_close(y, expected, what="conv2d_relu, convolution")
    assert_close(r, np.maximum(expected, 0), what="conv2d_relu, relu")
    np.testing.assert_array_equal(r, np.maximum(y, 0))


# Fixed cases that every run checks, whatever hypothesis draws: each padding form, SAME with
# an odd total (the extra row and column go to the bottom and right), strides and dilations.
FIXED_CONV = [
    # (input H, W), kernel, stride, padding spec, explicit pads, dilation
    ((6, 6), (3, 3), (1, 1), 0, (0, 0, 0, 0), (1, 1)),
    ((6, 6), (3, 3), (1, 1), 1, (1, 1, 1, 1), (1, 1)),
    ((5, 5), (3, 3), (2, 2), "valid", (0, 0, 0, 0), (1, 1)),
    ((4, 5), (2, 2), (1, 1), "same", (0, 1, 0, 1), (1, 1)),
    ((7, 6), (3, 2), (2, 3), "same", (1, 1, 0, 0), (1, 1)),
    ((8, 8), (2, 3), (1, 1), "same", (1, 2, 2, 2), (3, 2)),
    ((5, 7), (3, 3), (1, 2), (2, 0, 1, 3), (2, 0, 1, 3), (2, 1)),
    ((9, 4), (4, 1), (3, 1), (1, 2), (1, 1, 2, 2), (1, 1)),
]


@pytest.mark.parametrize("size, kernel, stride, spec, pads, dilation", FIXED_CONV)
def test_conv2d_fixed_cases(size, kernel, stride, spec, pads, dilation):
    assert ops.normalize_padding(spec, kernel, stride, dilation, size) == pads
    rng = np.random.default_rng(sum(size) + sum(kernel))
    x = rng.standard_normal((2, 3, *size)).astype(np.float32)
    w = rng.standard_normal((2, 3, *kernel)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    y = ops.conv2d(x, w, b, stride, spec, dilation)
    assert_close(y, oracle.conv2d(x, w, b, stride, pads, dilation), what="conv2d")


def _reference_chunks(
    n: int, rows: int, bytes_per_row: int, limit: int
) -> list[tuple[int, int, int, int]]:
    if rows * bytes_per_row <= limit:
        step = max(1, limit // (rows * bytes_per_row))
        return [(i, min(n, i + step), 0, rows) for i in range(0, n, step)]
    step = max(1, limit // bytes_per_row)
    return [(i, i + 1, r, min(rows, r + step)) for i in range(n) for r in range(0, rows, step)]


@pytest.mark.parametrize("rows_per_block", [1, 2, 3])
@pytest.mark.parametrize("images_per_block", [0, 1, 2])
def test_conv2d_chunking_paths(rows_per_block, images_per_block):
    """Row blocks (images_per_block=0) and image blocks, uneven last blocks included, give the
    same result as the oracle; the Conv2d layer keeps one im2col block per chunk."""
    from engine.layers import Conv2d

    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 7, 6)).astype(np.float32)
    layer = Conv2d("conv", 2, 3, 3, stride=1, padding=(1, 0, 2, 1))
    layer.init(rng)
    ho, wo = 6, 7
    bytes_per_row = 2 * 9 * wo * 4
    limit = (
        images_per_block * ho * bytes_per_row
        if images_per_block
        else rows_per_block * bytes_per_row
    )
    blocks = _reference_chunks(3, ho, bytes_per_row, limit)
    with mock.patch.object(ops, "CHUNK_BYTES", limit):
        assert list(ops._chunks(3, ho, bytes_per_row)) == blocks
        y = layer.forward(x, training=True)
    cols = layer._cache[1]
    assert len(cols) == len(blocks)
    expected = oracle.conv2d(
        x, layer.params["weight"], layer.params["bias"], (1, 1), (1, 0, 2, 1), (1, 1)
    )
    assert_close(y, expected, what="conv2d")


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    form = draw(st.sampled_from(("int", "tblr", "same", "valid")))
    effective_stride = kernel if stride is None else stride
    if form == "int":
        p = draw(st.integers(0, min(kernel) // 2))
        spec, pads = p, (p, p, p, p)
    elif form == "tblr":
        pads = tuple(draw(st.integers(0, kernel[axis // 2] // 2)) for axis in range(4))
        spec = pads
    else:
        spec, pads = form, None
    totals = (0, 0) if pads is None else (pads[0] + pads[1], pads[2] + pads[3])
    if form == "same":
        totals = (max(kernel), max(kernel))
    size = (
        _fitting_size(draw, kernel[0], totals[0], 6),
        _fitting_size(draw, kernel[1], totals[1], 6),
    )
    if pads is None:
        pads = (
            oracle.same_pads(size, kernel, effective_stride, (1, 1))
            if form == "same"
            else (0, 0, 0, 0)
        )
    return {
        "shape": (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size),
        "kernel": kernel,
        "stride": stride,
        "effective_stride": effective_stride,
        "padding": spec,
        "pads": pads,
        "ties": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**31)),
    }


def _pool_input(case: dict) -> np.ndarray:
    rng = np.random.default_rng(case["seed"])
    if case["ties"]:  # few distinct values: windows with exact ties everywhere
        return rng.integers(-2, 2, case["shape"]).astype(np.float32)
    return rng.standard_normal(case["shape"]).astype(np.float32)


@given(pool_cases())
@FAST
def test_max_pool2d_matches_oracle(case):
    x = _pool_input(case)
    args = (case["kernel"], case["effective_stride"], case["pads"])
    y = ops.max_pool2d(x, case["kernel"], case["stride"], case["padding"])
    np.testing.assert_array_equal(y, oracle.max_pool2d(x, *args))
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    dx = ops.max_pool2d_backward(dy, x, case["kernel"], case["stride"], case["padding"])
    assert_close(dx, oracle.max_pool2d_backward(dy, x, *args), what="max_pool2d backward")


@given(pool_cases())
@FAST
def test_avg_pool2d_matches_oracle(case):
    x = _pool_input(case)
    y = ops.avg_pool2d(x, case["kernel"], case["stride"], case["padding"])
    assert_close(y, oracle.avg_pool2d(x, case["kernel"], case["effective_stride"], case["pads"]))


@given(
    n=st.integers(1, 4),
    features=st.integers(1, 20),
    units=st.integers(1, 8),
    bias=st.booleans(),
    seed=st.integers(0, 2**31),
)
@FAST
def test_linear_matches_oracle(n, features, units, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    w = rng.standard_normal((units, features)).astype(np.float32)
    b = rng.standard_normal(units).astype(np.float32) if bias else None
    assert_close(ops.linear(x, w, b), oracle.linear(x, w, b), what="linear")


@st.composite
def transpose_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    # PyTorch's rule: output_padding < max(stride, dilation)
    output_padding = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    size = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = []
    for axis in range(2):
        full = (size[axis] - 1) * stride[axis] + dilation[axis] * (kernel[axis] - 1) + 1
        full += output_padding[axis]
        padding.append(draw(st.integers(0, (full - 1) // 2)))  # leave at least one output
    return {
        "shape": (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size),
        "c_out": draw(st.integers(1, 3)),
        "kernel": kernel,
        "stride": stride,
        "padding": tuple(padding),
        "output_padding": output_padding,
        "dilation": dilation,
        "bias": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**31)),
    }


@given(transpose_cases())
@FAST
def test_conv_transpose2d_matches_oracle(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(np.float32)
    w = rng.standard_normal((case["shape"][1], case["c_out"], *case["kernel"])).astype(np.float32)
    b = rng.standard_normal(case["c_out"]).astype(np.float32) if case["bias"] else None
    geometry = (case["stride"], case["padding"], case["output_padding"], case["dilation"])
    y = ops.conv_transpose2d(x, w, b, *geometry)
    assert_close(y, oracle.conv_transpose2d(x, w, b, *geometry), what="conv_transpose2d")


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    """<conv2d(x), dy> == <x, conv_transpose2d(dy)> with the same kernels: the transposed
    convolution is exactly the input gradient of the convolution."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 10, 8))
    w = rng.standard_normal((4, 3, 3, 2))  # conv: (C_out, C_in); transposed: (C_in, C_out) of dy
    y = ops.conv2d(x, w, None, stride=2, padding=1)
    dy = rng.standard_normal(y.shape)
    # the rows the strided conv never reached come back through output_padding
    extra = ((10 + 2 - 3) % 2, (8 + 2 - 2) % 2)
    back = ops.conv_transpose2d(dy, w, None, 2, 1, extra)
    assert back.shape == x.shape
    assert np.isclose(np.sum(y * dy), np.sum(x * back), rtol=1e-10)
    dx, _, _ = ops.conv2d_backward(dy, x, w, stride=2, padding=1)
    assert_close(back, dx, rtol=1e-12, what="conv_transpose2d vs conv2d backward")


# ------------------------------------------------------------------- max-pool ties


def _max_pool_grad(x: np.ndarray, kernel, stride=None, padding=0) -> np.ndarray:
    x = np.asarray(x, np.float32).reshape(1, 1, *np.shape(x))
    y = ops.max_pool2d(x, kernel, stride, padding)
    dy = np.arange(1, y.size + 1, dtype=np.float32).reshape(y.shape)  # tells windows apart
    return ops.max_pool2d_backward(dy, x, kernel, stride, padding)[0, 0]


def test_max_pool_tie_sends_gradient_to_first_maximum_only():
    np.testing.assert_array_equal(_max_pool_grad([[5, 5], [5, 5]], 2), [[1, 0], [0, 0]])
    np.testing.assert_array_equal(_max_pool_grad([[1, 3], [3, 2]], 2), [[0, 1], [0, 0]])
    np.testing.assert_array_equal(_max_pool_grad([[1, 2], [3, 3]], 2), [[0, 0], [1, 0]])


def test_max_pool_ties_in_overlapping_windows():
    """3x3 stride 1 on a flat 4x4 image: each of the four windows picks its own top-left
    cell, so each window's gradient lands once, at a different place."""
    dx = _max_pool_grad(np.full((4, 4), 7.0), 3, 1)
    np.testing.assert_array_equal(dx, [[1, 2, 0, 0], [3, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_max_pool_ties_with_padding_never_pick_the_padding():
    """Padding is -inf: with every real value negative and equal, the first real cell wins."""
    dx = _max_pool_grad(np.full((3, 3), -4.0), 3, 2, 1)
    # windows start at padded rows/cols 0 and 2, i.e. real rows/cols -1 and 1
    expected = np.zeros((3, 3))
    for (wy, wx), value in zip([(0, 0), (0, 1), (1, 0), (1, 1)], [1, 2, 3, 4], strict=True):
        top, left = max(2 * wy - 1, 0), max(2 * wx - 1, 0)
        expected[top, left] += value
    np.testing.assert_array_equal(dx, expected)


def test_max_pool_tie_gradient_total_is_one_per_window():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, (2, 3, 9, 8)).astype(np.float32)  # ties in nearly every window
    for kernel, stride, padding in [(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 0)]:
        y = ops.max_pool2d(x, kernel, stride, padding)
        dx = ops.max_pool2d_backward(np.ones_like(y), x, kernel, stride, padding)
        assert dx.sum() == y.size  # one unit of gradient per window, never more
        assert set(np.unique(dx)) <= set(range(kernel * kernel + 1))
        pads = ops.normalize_padding(padding, (kernel, kernel))
        expected = oracle.max_pool2d_backward(
            np.ones(y.shape), x, (kernel,) * 2, (stride,) * 2, pads
        )
        np.testing.assert_array_equal(dx, expected)


# --------------------------------------------------------------------- bad geometry


def _conv(x_shape, w_shape, **kwargs):
    return lambda: ops.conv2d(
        np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32), **kwargs
    )


BAD_GEOMETRY = [
    pytest.param(
        _conv((1, 3, 4, 4), (2, 3, 5, 5), layer="conv7"),
        ["conv7", "kernel height 5", "padded input height 4 (4 + 0 + 0)"],
        id="conv-kernel-larger-than-input",
    ),
    pytest.param(
        _conv((1, 3, 4, 9), (2, 3, 3, 7), padding=(0, 0, 1, 0), dilation=(1, 2), layer="conv7"),
        [
            "conv7",
            "kernel width 7",
            "reach 13 with dilation 2",
            "padded input width 10 (9 + 1 + 0)",
        ],
        id="conv-dilated-kernel-larger-than-padded-input",
    ),
    pytest.param(
        _conv((1, 3, 8, 8), (2, 3, 3, 3), stride=0, layer="conv7"),
        ["conv7", "stride must be at least 1", "(0, 0)"],
        id="conv-stride-0",
    ),
    pytest.param(
        _conv((1, 3, 8, 8), (2, 3, 3, 3), stride=(2, 0), layer="conv7"),
        ["conv7", "stride", "(2, 0)"],
        id="conv-stride-0-width",
    ),
    pytest.param(
        _conv((1, 3, 8, 8), (2, 3, 3, 3), padding=-1, layer="conv7"),
        ["conv7", "padding must not be negative", "-1"],
        id="conv-negative-padding",
    ),
    pytest.param(
        _conv((1, 3, 8, 8), (2, 3, 3, 3), padding=(1, 1, -2, 0), layer="conv7"),
        ["conv7", "(1, 1, -2, 0)"],
        id="conv-negative-padding-one-side",
    ),
    pytest.param(
        _conv((1, 3, 8, 8), (2, 3, 3, 3), dilation=0, layer="conv7"),
        ["conv7", "dilation must be at least 1", "(0, 0)"],
        id="conv-dilation-0",
    ),
    pytest.param(
        _conv((1, 4, 8, 8), (2, 3, 3, 3), layer="conv7"),
        ["conv7", "input has 4 channels", "expect 3"],
        id="conv-wrong-channels",
    ),
    pytest.param(
        _conv((3, 8, 8), (2, 3, 3, 3), layer="conv7"),
        ["conv7", "(N, C, H, W)", "(3, 8, 8)"],
        id="conv-not-a-batch",
    ),
    pytest.param(
        lambda: ops.linear(
            np.zeros((2, 10), np.float32), np.zeros((5, 12), np.float32), layer="fc9"
        ),
        ["fc9", "input has 10 features", "expect 12"],
        id="linear-feature-mismatch",
    ),
    pytest.param(
        lambda: ops.max_pool2d(np.zeros((1, 2, 3, 5), np.float32), 4, layer="pool2"),
        ["pool2", "kernel height 4", "padded input height 3"],
        id="pool-kernel-larger-than-input",
    ),
    pytest.param(
        lambda: ops.avg_pool2d(np.zeros((1, 2, 6, 6), np.float32), 2, 0, layer="pool2"),
        ["pool2", "stride must be at least 1", "(0, 0)"],
        id="pool-stride-0",
    ),
    pytest.param(
        lambda: ops.max_pool2d(np.zeros((1, 2, 6, 6), np.float32), 2, 2, 2, layer="pool2"),
        ["pool2", "padding (2, 2, 2, 2)", "half the kernel (2, 2)"],
        id="pool-padding-over-half-kernel",
    ),
    pytest.param(
        lambda: ops.max_pool2d(np.zeros((1, 2, 6, 6), np.float32), 2, 2, -1, layer="pool2"),
        ["pool2", "-1"],
        id="pool-negative-padding",
    ),
    pytest.param(
        lambda: ops.conv_transpose2d(
            np.zeros((1, 2, 4, 4), np.float32),
            np.zeros((2, 3, 3, 3), np.float32),
            stride=0,
            layer="up1",
        ),
        ["up1", "stride", "(0, 0)"],
        id="transpose-stride-0",
    ),
    pytest.param(
        lambda: ops.conv_transpose2d(
            np.zeros((1, 2, 4, 4), np.float32), np.zeros((3, 3, 3, 3), np.float32), layer="up1"
        ),
        ["up1", "C_in=2", "(3, 3, 3, 3)"],
        id="transpose-wrong-channels",
    ),
]


@pytest.mark.parametrize("call, words", BAD_GEOMETRY)
def test_bad_geometry_is_a_value_error_naming_layer_and_numbers(call, words):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_bad_geometry_is_raised_again_on_every_call():
    """Geometry is cached per question; a bad question must fail every time it is asked."""
    x = np.zeros((1, 2, 4, 4), np.float32)
    w = np.zeros((3, 2, 5, 5), np.float32)
    for _ in range(3):
        with pytest.raises(ValueError, match="conv9"):
            ops.conv2d(x, w, layer="conv9")


def test_padding_as_list_tuple_or_int_gives_the_same_convolution():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 6, 5), dtype=np.float32)
    w = rng.standard_normal((3, 2, 3, 3), dtype=np.float32)
    expected = oracle.conv2d(x, w, None, (2, 1), (1, 1, 1, 1), (1, 1))
    for padding in (1, (1, 1), [1, 1, 1, 1], np.int64(1), (np.array(1), np.array(1))):
        assert_close(ops.conv2d(x, w, stride=[2, 1], padding=padding), expected)


def test_non_contiguous_input_is_convolved_like_its_copy():
    """The windows view needs one buffer: a transposed or sliced input still works."""
    rng = np.random.default_rng(4)
    base = rng.standard_normal((1, 2, 9, 7), dtype=np.float32)
    x = base.transpose(0, 1, 3, 2)[:, :, ::2]  # (1, 2, 4, 9), no padding: no copy by pad2d
    w = rng.standard_normal((3, 2, 3, 3), dtype=np.float32)
    assert not x.flags.c_contiguous
    assert_close(ops.conv2d(x, w), ops.conv2d(np.ascontiguousarray(x), w))
    assert_close(ops.max_pool2d(x, 2), ops.max_pool2d(np.ascontiguousarray(x), 2))


@pytest.mark.parametrize(
    "n, f, s, p, d, expected",
    [
        (6, 3, 1, 0, 1, 4),
        (6, 3, 1, 2, 1, 6),
        (5, 3, 2, 0, 1, 2),
        (7, 3, 2, 2, 1, 4),
        (9, 3, 1, 0, 2, 5),
        (32, 5, 1, 0, 1, 28),
        (224, 2, 2, 0, 1, 112),
        (8, 3, 3, 1, 1, 3),
    ],
)
def test_output_size_formula(n, f, s, p, d, expected):
    """floor((n + 2p - d(f - 1) - 1) / s) + 1, with p the total of both sides here."""
    assert ops.output_size(n, f, s, p, d) == expected
    x = np.zeros((1, 1, n, n), np.float32)
    y = ops.conv2d(x, np.zeros((1, 1, f, f), np.float32), None, s, (p // 2, p - p // 2) * 2, d)
    assert y.shape[2:] == (expected, expected)


# ------------------------------------------------------------------ numerical stability


def test_softmax_family_is_stable_for_huge_scores():
    logits = np.array([[1000.0, 0.0, -1000.0], [-5e4, -5e4 + 1, -5e4]], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = ops.softmax(logits)
        logp = ops.log_softmax(logits)
        loss = ops.cross_entropy(logits, np.array([0, 1]))
        grad = ops.cross_entropy_backward(logits, np.array([2, 1]))
    np.testing.assert_allclose(p[0], [1, 0, 0], atol=1e-30)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    e = np.e
    np.testing.assert_allclose(p[1], [1 / (2 + e), e / (2 + e), 1 / (2 + e)], rtol=1e-5)
    np.testing.assert_allclose(logp[0], [0, -1000, -2000], rtol=1e-6)
    assert loss == pytest.approx(0.5 * np.log(2 + e) - 0.5, rel=1e-5)  # (0 + (log(2+e) - 1)) / 2
    assert grad[0, 2] == pytest.approx(-0.5) and grad[0, 0] == pytest.approx(0.5)


def test_sigmoid_is_stable_for_huge_inputs():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0], np.float32)
    with np.errstate(over="raise", invalid="raise"):
        s = ops.sigmoid(x)
    assert s.dtype == np.float32
    exact = np.exp(-np.logaddexp(0, -x.astype(np.float64)))  # 1 / (1 + e^-x), no overflow
    np.testing.assert_allclose(s, exact, rtol=1e-6, atol=1e-30)
    assert s[0] == 0 and s[2] == 0.5 and s[4] == 1


@pytest.fixture
def two_threads_split_everything():
    """The thread pool with every split forced on: one image split by rows, linear
    weights split by output rows, chunks of one row."""
    before = ops._threads
    ops.set_num_threads(2)
    patches = [
        mock.patch.object(ops, "MIN_SPLIT_BYTES", 0),
        mock.patch.object(ops, "LINEAR_SPLIT_BYTES", 0),
    ]
    for p in patches:
        p.start()
    yield
    for p in patches:
        p.stop()
    ops.set_num_threads(before)


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize(
    "stride,dilation,padding", [(1, 1, 1), (2, 1, (0, 1, 2, 0)), (1, 2, "same")]
)
def test_threaded_paths_match_oracle(two_threads_split_everything, n, stride, dilation, padding):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 3, 9, 11)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    pads = ops.normalize_padding(padding, (3, 3), (stride, stride), (dilation, dilation), (9, 11))
    expected = oracle.conv2d(x, w, b, (stride, stride), pads, (dilation, dilation))
    assert_close(ops.conv2d(x, w, b, stride, padding, dilation), expected, what="threaded conv2d")
    y, r = ops.conv2d_relu(x, w, b, stride, padding, dilation)
    assert_close(y, expected, what="threaded conv2d_relu")
    assert_close(r, np.maximum(expected, 0), what="threaded conv2d_relu, relu")
    # Weight gradients are summed from per-chunk partials: same result as one thread.
    dy = rng.standard_normal(expected.shape).astype(np.float64)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    _, dw, _ = ops.conv2d_backward(dy, x64, w64, stride, padding, dilation)
    ops.set_num_threads(1)
    _, dw_one, _ = ops.conv2d_backward(dy, x64, w64, stride, padding, dilation)
    np.testing.assert_allclose(dw, dw_one, rtol=1e-12, atol=1e-12)
    ops.set_num_threads(2)
    feats = rng.standard_normal((n, 20)).astype(np.float32)
    weight = rng.standard_normal((7, 20)).astype(np.float32)
    bias = rng.standard_normal(7).astype(np.float32)
    assert_close(ops.linear(feats, weight, bias), oracle.linear(feats, weight, bias), what="linear")
