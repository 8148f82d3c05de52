"""Which parts of the input made the network choose a class: Grad-CAM and input gradients.

Both start from a forward :class:`~engine.model.Trace` that is already computed and never
change the model: the layers they backpropagate through are shallow copies that share the
weights but keep their own forward caches, so several threads may explain the same model
at once while other threads run forward passes on it.

Grad-CAM (Selvaraju et al., 2017) for class k and a layer with maps A (C, h, w):
    alpha_c = mean over (y, x) of d score_k / d A[c, y, x]
    cam     = ReLU(sum_c alpha_c A[c])            (h, w)
then bilinearly resized to the input's (H, W). ``score_k`` is the class score before the
softmax (the logits layer), as in the paper.

Input gradient (Simonyan et al., 2014): d score_k / d input (C, H, W); the saliency map is
its largest absolute value over the channels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .layers import Layer
from .model import Sequential, Trace

__all__ = [
    "GradCam",
    "InputGradient",
    "grad_cam",
    "input_gradient",
    "last_conv_layer",
    "resize_bilinear",
]


@dataclass
class GradCam:
    """Grad-CAM of one class: ``cam`` at the input's size, ``raw`` at the layer's size."""

    class_index: int
    layer: str
    weights: np.ndarray  # (C,) alpha_c
    raw: np.ndarray  # (h, w) ReLU of the weighted sum of the layer's maps
    cam: np.ndarray  # (H, W) raw resized to the input


@dataclass
class InputGradient:
    """d score / d input (C, H, W), and the saliency map max_c |gradient| (H, W)."""

    class_index: int
    gradient: np.ndarray
    saliency: np.ndarray


def last_conv_layer(model: Sequential) -> str:
    """The last conv2d layer: Grad-CAM's default (the deepest maps that keep positions)."""
    for layer in reversed(model.layers):
        if layer.kind == "conv2d":
            return layer.name
    raise ValueError(f"{model.name} has no conv2d layer for Grad-CAM")


def _private_copies(layers: list[Layer]) -> list[Layer]:
    """Copies that share parameters but own their forward caches and gradients."""
    copies = []
    for layer in layers:
        twin = copy.copy(layer)
        twin.grads = {}
        twin._cache = None
        copies.append(twin)
    return copies


def _class_onehot(model: Sequential, scores_shape: tuple[int, ...], class_index: int) -> np.ndarray:
    classes = scores_shape[-1]
    if not 0 <= class_index < classes:
        raise IndexError(f"class {class_index} is outside 0..{classes - 1} of {model.name}")
    onehot = np.zeros(scores_shape, dtype=np.float32)
    onehot[0, class_index] = 1.0
    return onehot


def _backprop_score(
    model: Sequential, start: int, stop: int, x: np.ndarray, class_index: int
) -> np.ndarray:
    """d score_k / d x, where x (1, ...) is the input of layer ``start`` and the score is the
    output of layer ``stop`` (inclusive), through private copies of those layers."""
    tail = _private_copies(model.layers[start : stop + 1])
    h = x
    for layer in tail:
        h = layer.forward(h, training=True)
    grad = _class_onehot(model, h.shape, class_index)
    for layer in reversed(tail):
        grad = layer.backward(grad)
    return grad


def grad_cam(
    model: Sequential, trace: Trace, class_index: int, layer: str | None = None, image: int = 0
) -> GradCam:
    """Grad-CAM of ``class_index`` at ``layer`` (default: the last conv2d) for one image."""
    layer = layer or last_conv_layer(model)
    maps = trace[layer][image : image + 1]
    if maps.ndim != 4:
        raise ValueError(
            f"Grad-CAM needs a layer with (C, H, W) maps; {layer} has shape {maps.shape[1:]}"
        )
    start = model.index(layer) + 1
    stop = model.index(model.logits_layer)
    if start > stop:
        raise ValueError(f"layer {layer} comes after the class scores ({model.logits_layer})")
    grads = _backprop_score(model, start, stop, maps, class_index)[0]
    weights = grads.mean(axis=(1, 2))
    raw = np.maximum(np.tensordot(weights, maps[0], axes=1), 0.0).astype(np.float32)
    size = trace.input.shape[2:]
    return GradCam(class_index, layer, weights.astype(np.float32), raw, resize_bilinear(raw, size))


def input_gradient(
    model: Sequential, trace: Trace, class_index: int, image: int = 0
) -> InputGradient:
    """Gradient of the class score with respect to the (normalised) input image."""
    stop = model.index(model.logits_layer)
    x = trace.input[image : image + 1]
    gradient = _backprop_score(model, 0, stop, x, class_index)[0].astype(np.float32)
    return InputGradient(class_index, gradient, np.abs(gradient).max(axis=0))


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a 1-D linear resize with half-pixel centres
    (align_corners=False): output i samples input position (i + 0.5) * n_in / n_out - 0.5."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo)


def resize_bilinear(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D map (h, w) to ``size`` (H, W), float32."""
    h, w = a.shape
    out_h, out_w = int(size[0]), int(size[1])
    r0, r1, ry = _linear_taps(h, out_h)
    c0, c1, cx = _linear_taps(w, out_w)
    a = a.astype(np.float64)
    rows = a[r0] * (1 - ry)[:, None] + a[r1] * ry[:, None]
    out = rows[:, c0] * (1 - cx)[None, :] + rows[:, c1] * cx[None, :]
    return out.astype(np.float32)
