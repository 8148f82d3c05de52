"""A Sequential model of named layers, its forward Trace, and its files on disk.

A model is saved as two files side by side: ``NAME.json`` (the architecture, the
input normalisation, the class names, metadata, a format version) and ``NAME.npz``
(the weights, keyed ``<layer>.<param>``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .layers import Conv2d, Layer, ReceptiveField, ReLU, layer_from_config

__all__ = ["InputSpec", "Sequential", "Trace", "FORMAT_VERSION", "ModelFileError"]

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file is missing, malformed, or does not match its architecture."""


@dataclass
class InputSpec:
    """What the model expects: (channels, height, width) and per-channel mean/std applied
    to pixel values scaled to [0, 1]."""

    channels: int
    height: int
    width: int
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "height": self.height,
            "width": self.width,
            "mean": list(self.mean),
            "std": list(self.std),
        }


@dataclass
class Trace:
    """Everything one forward pass computed: the input and every layer's output, in order."""

    input: np.ndarray
    outputs: dict[str, np.ndarray]
    logits_layer: str | None = None  # the layer whose output is the class scores

    def __getitem__(self, name: str) -> np.ndarray:
        if name == "input":
            return self.input
        return self.outputs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    @property
    def logits(self) -> np.ndarray:
        """The class scores (the output of the model's ``logits_layer``)."""
        return self.outputs[self.logits_layer] if self.logits_layer else self.output

    @property
    def output(self) -> np.ndarray:
        return self.outputs[next(reversed(self.outputs))]

    @property
    def nbytes(self) -> int:
        return self.input.nbytes + sum(a.nbytes for a in self.outputs.values())


class Sequential:
    """Layers applied one after another; every layer has a unique, stable name."""

    def __init__(
        self,
        layers: Sequence[Layer],
        input_spec: InputSpec,
        name: str = "model",
        classes: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        names = [layer.name for layer in layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"layer names must be unique, repeated: {', '.join(duplicates)}")
        if "input" in names:
            raise ValueError("'input' is reserved for the model's input")
        self.layers = list(layers)
        self.input_spec = input_spec
        self.name = name
        self.classes = list(classes) if classes is not None else []
        self.meta = dict(meta or {})
        self.shapes()  # fail now if the layers do not fit together

    # --- structure ------------------------------------------------------------------
    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"model {self.name!r} has no layer {name!r}")

    def index(self, name: str) -> int:
        return [layer.name for layer in self.layers].index(name)

    def input_of(self, name: str) -> str:
        """Name of the array a layer reads: the previous layer's output, or 'input'."""
        i = self.index(name)
        return "input" if i == 0 else self.layers[i - 1].name

    def shapes(self) -> list[tuple[int, ...]]:
        """Per-image output shape of every layer, checking that consecutive layers fit."""
        shape: tuple[int, ...] = self.input_spec.shape
        result = []
        for layer in self.layers:
            shape = tuple(layer.output_shape(shape))
            result.append(shape)
        return result

    def describe(self) -> list[dict[str, Any]]:
        """describe() of every layer with its index, in order."""
        shape: tuple[int, ...] = self.input_spec.shape
        rf = ReceptiveField()
        result = []
        for i, layer in enumerate(self.layers):
            info = layer.describe(shape, rf)
            info["index"] = i
            rf = layer.receptive_field(rf, shape)
            shape = tuple(info["output_shape"])
            result.append(info)
        return result

    def receptive_fields(self) -> dict[str, ReceptiveField]:
        rf = ReceptiveField()
        result = {}
        inputs = [self.input_spec.shape, *self.shapes()][:-1]  # each layer's input shape
        for layer, shape in zip(self.layers, inputs, strict=True):
            rf = layer.receptive_field(rf, shape)
            result[layer.name] = rf
        return result

    @property
    def logits_layer(self) -> str:
        """The layer whose output is the class scores: the last one, or the one before a
        final softmax (training, Grad-CAM and the API's predictions start from it)."""
        if self.layers[-1].kind == "softmax" and len(self.layers) > 1:
            return self.layers[-2].name
        return self.layers[-1].name

    @property
    def param_count(self) -> int:
        return sum(layer.param_count for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(info["macs"] for info in self.describe())

    def summary(self) -> str:
        """A printable table: layer, kind, output shape, params, MACs; then the totals."""
        rows = [("layer", "kind", "output (C, H, W)", "params", "MACs")]
        for info in self.describe():
            rows.append(
                (
                    info["name"],
                    info["kind"],
                    " x ".join(map(str, info["output_shape"])),
                    f"{info['params']:,}",
                    f"{info['macs']:,}",
                )
            )
        rows.append(("total", "", "", f"{self.param_count:,}", f"{self.macs:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        )

    # --- parameters -----------------------------------------------------------------
    def init(self, seed: int = 0) -> Sequential:
        """Seeded He initialisation of every layer with weights."""
        rng = np.random.default_rng(seed)
        for layer in self.layers:
            if hasattr(layer, "init"):
                layer.init(rng)
        return self

    def parameters(self) -> Iterator[tuple[str, np.ndarray, Layer]]:
        for layer in self.layers:
            for key, value in layer.params.items():
                yield f"{layer.name}.{key}", value, layer

    def state_dict(self) -> dict[str, np.ndarray]:
        return {key: value for key, value, _ in self.parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray], source: str = "weights") -> None:
        expected = {key: value.shape for key, value, _ in self.parameters()}
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            raise ModelFileError(
                f"{source}: weights do not match the architecture of {self.name!r}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; unexpected: {', '.join(extra)}" if extra else "")
            )
        for key, shape in expected.items():
            if tuple(state[key].shape) != tuple(shape):
                raise ModelFileError(
                    f"{source}: {key} has shape {tuple(state[key].shape)} "
                    f"but the architecture needs {tuple(shape)}"
                )
        for key, value, _ in self.parameters():
            value[...] = np.asarray(state[key], dtype=np.float32)

    # --- running --------------------------------------------------------------------
    def _check_input(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_spec.shape:
            raise ValueError(
                f"{self.name}: input must be (N, {', '.join(map(str, self.input_spec.shape))}), "
                f"got shape {x.shape}"
            )
        return np.ascontiguousarray(x, dtype=np.float32)

    def forward(self, x: np.ndarray, training: bool = False, until: str | None = None) -> Trace:
        """Run a batch (N, C, H, W); keep every layer's output. ``until`` stops after that layer."""
        x = self._check_input(x)
        outputs: dict[str, np.ndarray] = {}
        h = x
        relu_of_conv = None  # a ReLU's output, computed with the convolution before it
        for layer, after in zip(self.layers, [*self.layers[1:], None], strict=True):
            if relu_of_conv is not None:
                h, relu_of_conv = relu_of_conv, None
                layer._cache = None  # as its own inference forward would leave it
            elif (
                not training
                and isinstance(layer, Conv2d)
                and isinstance(after, ReLU)
                and layer.name != until
            ):
                # Each block's ReLU while the block is in cache; still two separate arrays.
                h, relu_of_conv = layer.forward_relu(h)
            else:
                h = layer.forward(h, training=training)
            outputs[layer.name] = h
            if layer.name == until:
                break
        return Trace(input=x, outputs=outputs, logits_layer=self.logits_layer)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class scores of the last layer for a batch, keeping nothing else."""
        h = self._check_input(x)
        for layer in self.layers:
            h = layer.forward(h)
        return h

    def backward(
        self, dy: np.ndarray, from_layer: str | None = None, input_grad: bool = True
    ) -> np.ndarray | None:
        """Backpropagate dL/d(output of ``from_layer``, default the last layer) to the input,
        filling every earlier layer's grads. Needs a forward pass with training=True.
        Returns dL/dinput, or None when ``input_grad`` is False (training skips it)."""
        start = len(self.layers) - 1 if from_layer is None else self.index(from_layer)
        for i in range(start, -1, -1):
            dy = self.layers[i].backward(dy, input_grad=input_grad or i > 0)
        return dy

    def explain(
        self, trace: Trace, layer_name: str, cell: Sequence[int], image: int = 0
    ) -> dict[str, Any]:
        """The arithmetic of one output cell of one layer, from the arrays in ``trace``."""
        layer = self.layer(layer_name)
        x = trace[self.input_of(layer_name)][image]
        y = trace[layer_name][image]
        return layer.explain(x, y, cell)

    # --- files ----------------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "input": self.input_spec.to_dict(),
            "classes": self.classes,
            "meta": self.meta,
            "layers": [layer.config() for layer in self.layers],
        }

    def save(self, path: str | Path, compress: bool = True) -> tuple[Path, Path]:
        """Write PATH.json (architecture) and PATH.npz (weights); returns both paths.
        ``compress=False`` skips zlib: it saves little on trained float32 weights and costs
        tens of seconds on VGG-16's 550 MB, at saving and at every load."""
        base = Path(path).with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        json_path, npz_path = base.with_suffix(".json"), base.with_suffix(".npz")
        json_path.write_text(json.dumps(self.architecture(), indent=2, ensure_ascii=False) + "\n")
        (np.savez_compressed if compress else np.savez)(npz_path, **self.state_dict())
        return json_path, npz_path

    @classmethod
    def from_architecture(cls, arch: dict[str, Any], source: str = "architecture") -> Sequential:
        version = arch.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelFileError(
                f"{source}: format_version {version!r} is not supported (expected {FORMAT_VERSION})"
            )
        try:
            spec = InputSpec(**arch["input"])
            layers = [layer_from_config(c) for c in arch["layers"]]
            return cls(
                layers, spec, arch.get("name", "model"), arch.get("classes"), arch.get("meta")
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{source}: invalid architecture: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path, weights: bool = True) -> Sequential:
        """Read PATH.json and (when ``weights``) PATH.npz, checking that they match."""
        base = Path(path).with_suffix("")
        json_path, npz_path = base.with_suffix(".json"), base.with_suffix(".npz")
        try:
            arch = json.loads(json_path.read_text())
        except FileNotFoundError as exc:
            raise ModelFileError(f"{json_path}: architecture file not found") from exc
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{json_path}: not valid JSON ({exc})") from exc
        model = cls.from_architecture(arch, str(json_path))
        if weights:
            try:
                with np.load(npz_path) as data:
                    model.load_state_dict({k: data[k] for k in data.files}, str(npz_path))
            except FileNotFoundError as exc:
                raise ModelFileError(f"{npz_path}: weights file not found") from exc
        return model
