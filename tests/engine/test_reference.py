"""engine.ops against outputs and gradients computed by PyTorch (tests/data/torch_ops.*).

The reference was computed in float64 and stored as float32, so every comparison is
relative to the array's scale at 1e-5. See tests/data/torch_ops.md for its provenance.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine import ops

from .checks import assert_close

DATA = Path(__file__).resolve().parent.parent / "data"
CASES = json.loads((DATA / "torch_ops.json").read_text())["cases"]
RTOL = 1e-5


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    with np.load(DATA / "torch_ops.npz") as data:
        return {key: data[key] for key in data.files}


def _case_arrays(case: dict, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: arrays[key] for name, key in case["arrays"].items()}


def _conv2d(case, a):
    p = case["params"]
    geometry = dict(stride=p["stride"], padding=tuple(p["padding_tblr"]), dilation=p["dilation"])
    y = ops.conv2d(a["x"], a["weight"], a["bias"], **geometry)
    dx, dw, db = ops.conv2d_backward(a["grad_y"], a["x"], a["weight"], **geometry)
    return {"y": y, "grad_x": dx, "grad_weight": dw, "grad_bias": db}


def _pool(forward, backward):
    def run(case, a):
        p = case["params"]
        geometry = (p["kernel_size"], p["stride"], p["padding"])
        return {"y": forward(a["x"], *geometry), "grad_x": backward(a["grad_y"], a["x"], *geometry)}

    return run


def _conv_transpose2d(case, a):
    p = case["params"]
    y = ops.conv_transpose2d(
        a["x"], a["weight"], a["bias"], p["stride"], p["padding"], p["output_padding"]
    )
    return {"y": y}


def _linear(case, a):
    dx, dw, db = ops.linear_backward(a["grad_y"], a["x"], a["weight"])
    y = ops.linear(a["x"], a["weight"], a["bias"])
    return {"y": y, "grad_x": dx, "grad_weight": dw, "grad_bias": db}


def _softmax_cross_entropy(case, a):
    logits, labels = a["logits"], a["labels"].astype(np.int64)
    return {
        "softmax": ops.softmax(logits),
        "log_softmax": ops.log_softmax(logits),
        "loss": np.array([ops.cross_entropy(logits, labels)], dtype=np.float32),  # a float
        "grad_logits": ops.cross_entropy_backward(logits, labels),
    }


RUNNERS: dict[str, Callable[[dict, dict], dict[str, np.ndarray]]] = {
    "conv2d": _conv2d,
    "max_pool2d": _pool(ops.max_pool2d, ops.max_pool2d_backward),
    "avg_pool2d": _pool(ops.avg_pool2d, ops.avg_pool2d_backward),
    "conv_transpose2d": _conv_transpose2d,
    "linear": _linear,
    "softmax_cross_entropy": _softmax_cross_entropy,
}

# What each kind must reproduce: every stored output and gradient.
EXPECTED = {
    "conv2d": ("y", "grad_x", "grad_weight", "grad_bias"),
    "max_pool2d": ("y", "grad_x"),
    "avg_pool2d": ("y", "grad_x"),
    "conv_transpose2d": ("y",),
    "linear": ("y", "grad_x", "grad_weight", "grad_bias"),
    "softmax_cross_entropy": ("softmax", "log_softmax", "loss", "grad_logits"),
}


def test_reference_covers_every_kind():
    counts: dict[str, int] = {}
    for case in CASES:
        counts[case["kind"]] = counts.get(case["kind"], 0) + 1
    assert counts == {
        "conv2d": 35,
        "max_pool2d": 20,
        "avg_pool2d": 20,
        "conv_transpose2d": 15,
        "linear": 8,
        "softmax_cross_entropy": 8,
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['id']:03d}-{c['kind']}")
def test_matches_pytorch(case, arrays):
    a = _case_arrays(case, arrays)
    result = RUNNERS[case["kind"]](case, a)
    for name in EXPECTED[case["kind"]]:
        assert result[name].dtype == np.float32, f"{name}: float32 in, {result[name].dtype} out"
        assert_close(result[name], a[name], rtol=RTOL, what=f"case {case['id']} {name}")
