"""Shared assertions of the engine tests: scale-aware closeness and finite differences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["assert_close", "numerical_gradient", "assert_gradient"]


def assert_close(
    actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-5, what: str = ""
) -> None:
    """Shapes equal and |a - b| <= rtol * max(1, max |b|) everywhere.

    The bound is relative to the array's scale: float32 sums of many products carry
    an error proportional to the magnitude of the terms, not of each (possibly tiny) result.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values"
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    error = float(np.max(np.abs(actual.astype(np.float64) - expected), initial=0.0))
    assert error <= rtol * scale, f"{what}: max error {error:.3g} > {rtol:g} x scale {scale:.3g}"


def numerical_gradient(
    loss: Callable[[], float],
    array: np.ndarray,
    eps: float = 1e-6,
    samples: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Central differences (L(a + eps) - L(a - eps)) / 2 eps of ``loss`` at the entries of the
    float64 ``array`` (perturbed in place and restored). With ``samples``, only that many
    random entries are checked. Returns (flat indices, gradient values)."""
    assert array.dtype == np.float64, "finite differences need float64"
    flat = array.reshape(-1)  # a view: writing to it perturbs ``array``
    indices = np.arange(flat.size)
    if samples is not None and samples < flat.size:
        indices = (rng or np.random.default_rng(0)).choice(flat.size, samples, replace=False)
    grads = np.empty(len(indices))
    for k, index in enumerate(indices):
        saved = flat[index]
        flat[index] = saved + eps
        up = loss()
        flat[index] = saved - eps
        down = loss()
        flat[index] = saved
        grads[k] = (up - down) / (2 * eps)
    return indices, grads


def assert_gradient(
    loss: Callable[[], float],
    array: np.ndarray,
    analytic: np.ndarray,
    what: str,
    rtol: float = 1e-6,
    samples: int | None = 40,
) -> None:
    """The analytic gradient of ``loss`` w.r.t. ``array`` equals central differences."""
    assert analytic.shape == array.shape, (
        f"{what}: gradient shape {analytic.shape} != {array.shape}"
    )
    indices, numeric = numerical_gradient(loss, array, samples=samples)
    assert_close(analytic.reshape(-1)[indices], numeric, rtol=rtol, what=f"d loss / d {what}")
