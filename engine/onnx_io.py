"""Import single-path CNNs from ONNX into engine models, and export engine models as ONNX.

This is the only module that imports ``onnx`` (the optional extra ``convscope[onnx]``),
and only when a function here is called: the rest of the engine stays NumPy-only.

Import walks the graph once, in the topological order ONNX guarantees, following the
one tensor that flows from the image input to the output. Each node on that path
becomes one engine layer (Conv -> conv2d, Gemm or MatMul -> linear, ...), is merged
into the layer before it (BatchNormalization, and an Add after MatMul, become weights
and biases), or disappears (Dropout and Identity at inference). Nodes that only compute
constants (``Shape -> Gather -> Concat`` feeding a Reshape, say) are evaluated here.
Everything else is collected, and one :class:`UnsupportedGraphError` lists every node
that cannot be imported, by name and operator, with the reason.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import ops
from .layers import (
    AvgPool2d,
    Conv2d,
    Flatten,
    Layer,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .model import InputSpec, Sequential

__all__ = [
    "OnnxImportError",
    "UnsupportedGraphError",
    "SUPPORTED_OPS",
    "EXPORT_OPSET",
    "load_onnx",
    "export_onnx",
    "imagenet_classes",
]

# Operators that can lie on the image's path (the message of UnsupportedGraphError lists them).
SUPPORTED_OPS = (
    "Conv", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape", "Squeeze", "Gemm", "MatMul",
    "Add", "Softmax", "BatchNormalization", "Dropout", "Identity",
)  # fmt: skip
# Operators evaluated when all their inputs are constants (shape arithmetic, weights).
_CONSTANT_OPS = (
    "Constant", "Identity", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat",
    "Reshape", "Transpose",
)  # fmt: skip
EXPORT_OPSET = 13
_META_PREFIX = "convscope."
_DEFAULT_NAMES = {
    "conv2d": "conv", "relu": "relu", "leaky_relu": "leaky_relu", "sigmoid": "sigmoid",
    "tanh": "tanh", "maxpool2d": "pool", "avgpool2d": "avgpool", "flatten": "flatten",
    "linear": "fc", "softmax": "softmax",
}  # fmt: skip
_UNNUMBERED = ("flatten", "softmax")  # the first of these keeps its plain name


class OnnxImportError(ValueError):
    """The file is not a model convscope can import; the message says why and what to do."""


class UnsupportedGraphError(OnnxImportError):
    """A valid ONNX graph with nodes the engine cannot run. ``problems`` holds
    (node name, operator, reason) for every one of them."""

    def __init__(self, problems: Sequence[tuple[str, str, str]]) -> None:
        self.problems = list(problems)
        lines = [f"  - {name} ({op}): {reason}" for name, op, reason in self.problems]
        count = len(self.problems)
        super().__init__(
            f"cannot import this graph: {count} node{'s' if count != 1 else ''} "
            "cannot be converted (convscope runs single-path CNNs):\n"
            + "\n".join(lines)
            + f"\nSupported operators on the image's path: {', '.join(SUPPORTED_OPS)}."
        )


class _Problem(Exception):
    """Raised inside a converter method: the reason one node cannot be imported."""


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # the optional extra is missing
        raise OnnxImportError(
            "ONNX import and export need the onnx package: pip install 'convscope[onnx]'"
        ) from exc
    return onnx


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet class names, in the usual index order (they ship with the engine)."""
    path = Path(__file__).resolve().parent / "zoo" / "imagenet_classes.txt"
    return path.read_text(encoding="utf-8").split("\n")[:1000]


# ----------------------------------------------------------------------------- reading


def _graph_tensors(graph) -> Iterator[Any]:
    """Every TensorProto of a graph: initializers, constants and subgraphs' tensors."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield from (attr.sparse_tensor.values, attr.sparse_tensor.indices)
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for sub in attr.graphs:
                yield from _graph_tensors(sub)


def _read_model(source: Any, max_bytes: int | None) -> tuple[Any, Any]:
    """The ModelProto of a path, bytes or ModelProto, and what the checker should read (the
    bytes or path themselves: no second serialisation of a 500 MB model). External data is
    read only for a file on disk, from its own folder; bytes (an upload) that refer to
    external files are refused before anything looks at those paths."""
    onnx = _onnx()
    base_dir: Path | None = None
    check_target: Any = source
    if isinstance(source, onnx.ModelProto):
        model = source
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        check_target = data
        if max_bytes is not None and len(data) > max_bytes:
            raise OnnxImportError(
                f"the model is {len(data):,} bytes, more than the limit of {max_bytes:,}"
            )
        try:
            model = onnx.load_model_from_string(data)
        except Exception as exc:  # protobuf's DecodeError and friends
            raise OnnxImportError(
                f"not an ONNX model: the bytes could not be parsed ({type(exc).__name__})"
            ) from None
    else:
        path = Path(source)
        if not path.is_file():
            raise OnnxImportError(f"{path}: no such file")
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise OnnxImportError(
                f"{path} is {path.stat().st_size:,} bytes, more than the limit of {max_bytes:,}"
            )
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:
            raise OnnxImportError(
                f"{path}: not an ONNX model (the file could not be parsed: {type(exc).__name__})"
            ) from None
        base_dir = path.parent
        check_target = str(path)
    external = [
        t for t in _graph_tensors(model.graph) if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external:
        if base_dir is None:
            raise OnnxImportError(
                f"the model keeps {len(external)} tensor(s) in external data files (first: "
                f"{external[0].name!r}); upload a single self-contained .onnx file instead "
                "(onnx.save_model(model, path, save_as_external_data=False)), or import the "
                "file with `convscope import` on the server"
            )
        try:  # onnx refuses locations outside base_dir
            onnx.load_external_data_for_model(model, str(base_dir))
        except Exception as exc:
            raise OnnxImportError(f"external data of {source}: {exc}") from None
    return model, check_target


def _check(target) -> None:
    """onnx.checker on a ModelProto, the model's bytes, or its path."""
    onnx = _onnx()
    try:
        onnx.checker.check_model(target)
    except Exception as exc:  # ValidationError, or a C++ error for malformed protos
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OnnxImportError(f"the ONNX checker rejected the model: {first}") from None


def _attributes(node) -> dict[str, Any]:
    from onnx import helper

    values = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        values[attr.name] = value.decode() if isinstance(value, bytes) else value
    return values


def _node_label(node, index: int) -> str:
    return repr(node.name) if node.name else f"node #{index}"


# --------------------------------------------------------------------------- geometry


def _explicit_pads(
    attrs: dict[str, Any], in_hw: Sequence[int], kernel: Sequence[int],
    stride: Sequence[int], dilation: Sequence[int],
) -> tuple[int, int, int, int]:  # fmt: skip
    """ONNX's pads/auto_pad as the engine's (top, bottom, left, right) for this input size."""
    auto = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if auto == "NOTSET":
        pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
        if len(pads) != 4:
            raise _Problem(f"pads {pads} are not 2-D pads (begin and end for height and width)")
        if min(pads) < 0:
            raise _Problem(f"negative pads {pads} (cropping) are not supported")
        top, left, bottom, right = pads  # ONNX: all begins, then all ends
        return (top, bottom, left, right)
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise _Problem(f"auto_pad={auto!r} is not a known padding mode")
    result = []
    for n, k, s, d in zip(in_hw, kernel, stride, dilation, strict=True):
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        small, large = total // 2, total - total // 2
        result.append((small, large) if auto == "SAME_UPPER" else (large, small))
    (top, bottom), (left, right) = result
    return (top, bottom, left, right)


def _padding_spec(pads: tuple[int, int, int, int]) -> int | list[int]:
    """The shortest engine padding that says the same: p, [ph, pw] or all four."""
    top, bottom, left, right = pads
    if top == bottom == left == right:
        return top
    if top == bottom and left == right:
        return [top, left]
    return list(pads)


def _pair_attr(attrs: dict[str, Any], key: str, default: int = 1) -> tuple[int, int]:
    value = [int(v) for v in attrs.get(key, [default, default])]
    if len(value) != 2:
        raise _Problem(f"{key}={value}: only 2-D images are supported")
    return (value[0], value[1])


def _ceil_pool_size(n: int, k: int, s: int, before: int, after: int) -> int:
    """Output length with ceil_mode=1, as onnxruntime and PyTorch compute it: the last
    window must start inside the input or its leading padding."""
    out = -(-(n + before + after - k) // s) + 1
    if (out - 1) * s >= n + before:
        out -= 1
    return out


# ------------------------------------------------------------------------------ import


class _Converter:
    """One pass over a checked graph; builds layers and collects problems."""

    def __init__(self, model, input_size: Sequence[int] | None) -> None:
        from onnx import numpy_helper

        self.to_array = numpy_helper.to_array
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.consts: dict[str, np.ndarray] = {
            init.name: self.to_array(init) for init in self.graph.initializer
        }
        self.opaque: set[str] = set()  # constants whose values could not be computed
        self.shapes: dict[str, tuple[int, ...] | None] = {}  # computed tensors, per image
        self.consumed: set[str] = set()
        self.uses = Counter(i for node in self.graph.node for i in node.input if i)
        self.uses.update(o.name for o in self.graph.output)
        self.layers: list[Layer] = []
        self.sources: dict[str, str] = {}  # layer name -> ONNX tensor holding its output
        self.removed: list[str] = []
        self.problems: list[tuple[str, str, str]] = []
        self.broken = False  # after a problem, shapes are unknown: only static checks run
        self.counts: Counter[str] = Counter()
        self.last_node: tuple[str, str] | None = None  # (op, name) that produced the current tensor
        self.input_name, self.input_shape = self._graph_input(input_size)
        self.current = self.input_name
        self.shapes[self.input_name] = self.input_shape

    # --- the graph's input ----------------------------------------------------------
    def _graph_input(self, input_size: Sequence[int] | None) -> tuple[str, tuple[int, int, int]]:
        onnx = _onnx()
        inputs = [v for v in self.graph.input if v.name not in self.consts]
        if len(inputs) != 1:
            names = ", ".join(v.name for v in inputs) or "none"
            raise OnnxImportError(
                f"the graph has {len(inputs)} inputs ({names}); convscope models take one image"
            )
        value = inputs[0]
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type") or tensor.elem_type not in (
            onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
        ):  # fmt: skip
            raise OnnxImportError(f"input {value.name!r} is not a float tensor")
        dims = list(tensor.shape.dim)
        if len(dims) != 4:
            raise OnnxImportError(
                f"input {value.name!r} has {len(dims)} dimensions; convscope needs images "
                "(batch, channels, height, width)"
            )
        sizes: list[int] = []
        for axis, label in ((1, "channels"), (2, "height"), (3, "width")):
            dim = dims[axis]
            if dim.HasField("dim_value") and dim.dim_value > 0:
                sizes.append(int(dim.dim_value))
            elif axis > 1 and input_size is not None:
                sizes.append(int(input_size[axis - 2]))
            else:
                what = repr(dim.dim_param) if dim.dim_param else "unknown"
                hint = " (pass input_size=(H, W); CLI: --input-size H W)" if axis > 1 else ""
                raise OnnxImportError(
                    f"input {value.name!r} has a dynamic {label} ({what}): the engine needs a "
                    f"fixed input size{hint}"
                )
        if input_size is not None and tuple(sizes[1:]) != tuple(int(v) for v in input_size):
            raise OnnxImportError(
                f"input {value.name!r} is fixed at {sizes[1]}x{sizes[2]}; input_size "
                f"{tuple(input_size)} does not match"
            )
        return value.name, (sizes[0], sizes[1], sizes[2])

    # --- helpers --------------------------------------------------------------------
    def _const(self, name: str, what: str) -> np.ndarray | None:
        """A constant input's value; None when it is opaque (an earlier problem)."""
        if name in self.consts:
            return self.consts[name]
        if name in self.opaque:
            return None
        raise _Problem(f"its {what} {name!r} is computed from the image, not a constant")

    def _optional(self, node, index: int) -> str:
        return node.input[index] if len(node.input) > index else ""

    def _name(self, node, kind: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", node.name).strip("_.-")[:64]
        self.counts[kind] += 1
        if not base:
            prefix = _DEFAULT_NAMES[kind]
            count = self.counts[kind]
            base = prefix if kind in _UNNUMBERED and count == 1 else f"{prefix}{count}"
        if base == "input":
            base = "input_layer"
        taken = {layer.name for layer in self.layers}
        name, k = base, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        return name

    def _add(self, layer: Layer, node) -> None:
        self.layers.append(layer)
        self.sources[layer.name] = node.output[0]

    def _affine_before(self, node) -> Conv2d | Linear | None:
        """The conv2d or linear layer that directly produced the tensor this node reads
        (None when an earlier problem left the layers unknown)."""
        affine = ("Conv", "Gemm", "MatMul", "Add", "BatchNormalization")
        if self.last_node is None or self.last_node[0] not in affine:
            after = (
                "on the input"
                if self.last_node is None
                else "after {} {!r}".format(*self.last_node)
            )
            raise _Problem(
                f"{node.op_type} {after} cannot be folded: it can only be merged into a "
                "directly preceding Conv, Gemm or MatMul"
            )
        return self.layers[-1] if not self.broken else None

    def _unused_extra_outputs(self, node) -> None:
        for extra in node.output[1:]:
            if extra and self.uses[extra]:
                raise _Problem(f"its extra output {extra!r} is used; only the main output can be")

    # --- the walk -------------------------------------------------------------------
    def run(self) -> None:
        for index, node in enumerate(self.graph.node):
            label = _node_label(node, index)
            try:
                self._visit(node)
            except _Problem as problem:
                self.problems.append((label, node.op_type, str(problem)))
                self._give_up_on(node)
            except ValueError as exc:  # the engine's geometry checks
                self.problems.append((label, node.op_type, str(exc)))
                self._give_up_on(node)
        self._check_output()

    def _give_up_on(self, node) -> None:
        """After a problem, the node's outputs are unknown: later checks skip values."""
        computed = [i for i in node.input if i in self.shapes]
        if computed:
            self.broken = True
            self.last_node = (node.op_type, node.name or node.output[0])
            self.consumed.update(computed)
            for out in node.output:
                if out:
                    self.shapes[out] = None
            if node.output:
                self.current = node.output[0]
        else:
            self.opaque.update(o for o in node.output if o)

    def _visit(self, node) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise _Problem(f"operator of domain {node.domain!r} is not supported")
        computed = [i for i in node.input if i and i in self.shapes]
        if node.op_type == "Shape" and computed:
            self._shape_of(node, computed[0])
            return
        if not computed:
            self._constant_node(node)
            return
        if len(set(computed)) > 1:
            raise _Problem(
                f"combines the computed tensors {', '.join(map(repr, sorted(set(computed))))}: "
                "a branch or residual connection"
            )
        x = computed[0]
        if x != self.current or x in self.consumed:
            raise _Problem(f"reads {x!r}, which another node already reads: the graph branches")
        handler = getattr(self, f"_op_{node.op_type}", None)
        if handler is None:
            where = (
                " on the image's path (only on constants)" if node.op_type in _CONSTANT_OPS else ""
            )
            raise _Problem(f"operator not supported{where}")
        if node.op_type not in ("Add",) and node.input[0] != x:
            raise _Problem(f"the image's tensor {x!r} must be its first input")
        shape = handler(node, _attributes(node), self.shapes[x])
        if node.op_type not in ("Identity", "Dropout"):
            self.last_node = (node.op_type, node.name or node.output[0])
        self.consumed.add(x)
        self.shapes[node.output[0]] = shape if not self.broken else None
        self.current = node.output[0]

    # --- constants ------------------------------------------------------------------
    def _shape_of(self, node, x: str) -> None:
        shape = self.shapes[x]
        if shape is None:
            self.opaque.add(node.output[0])
            return
        full = np.array([1, *shape], dtype=np.int64)  # batch taken as 1: reshapes keep it first
        attrs = _attributes(node)
        start, end = attrs.get("start", 0), attrs.get("end", None)
        self.consts[node.output[0]] = full[start:end]

    def _constant_node(self, node) -> None:
        op = node.op_type
        if op not in _CONSTANT_OPS:
            reason = (
                "operator not supported" if op not in SUPPORTED_OPS else "works on constants only"
            )
            raise _Problem(reason)
        if any(i in self.opaque for i in node.input if i):
            self.opaque.update(o for o in node.output if o)
            return
        attrs = _attributes(node)
        try:
            values = [self.consts[i] if i else None for i in node.input]
            self.consts[node.output[0]] = np.asarray(self._fold(op, attrs, values))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise _Problem(f"could not be evaluated ({type(exc).__name__}: {exc})") from None

    def _fold(self, op: str, attrs: dict[str, Any], values: list[Any]) -> np.ndarray:
        if op == "Constant":
            if "value" in attrs:
                return self.to_array(attrs["value"])
            for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                               ("value_int", np.int64), ("value_ints", np.int64)):  # fmt: skip
                if key in attrs:
                    return np.array(attrs[key], dtype=dtype)
            raise _Problem(f"a Constant with {', '.join(attrs)} is not supported")
        if op == "Identity":
            return values[0]
        if op == "Cast":
            from onnx import helper

            return values[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))
        if op == "Gather":
            return np.take(values[0], values[1], axis=attrs.get("axis", 0))
        if op in ("Unsqueeze", "Squeeze"):
            axes = attrs.get("axes")
            if axes is None and len(values) > 1 and values[1] is not None:
                axes = [int(a) for a in values[1]]
            if op == "Unsqueeze":
                result = values[0]
                for axis in sorted(a % (result.ndim + len(axes)) for a in axes):
                    result = np.expand_dims(result, axis)
                return result
            return np.squeeze(values[0], axis=None if axes is None else tuple(axes))
        if op == "Concat":
            return np.concatenate([np.atleast_1d(v) for v in values], axis=attrs["axis"])
        if op == "Reshape":
            target = [int(d) for d in values[1]]
            if not attrs.get("allowzero", 0):
                target = [values[0].shape[i] if d == 0 else d for i, d in enumerate(target)]
            return values[0].reshape(target)
        if op == "Transpose":
            return np.transpose(values[0], attrs.get("perm"))
        raise _Problem("operator not supported")  # unreachable: _CONSTANT_OPS covers the above

    # --- layers on the image's path ---------------------------------------------------
    def _op_Conv(self, node, attrs, shape):
        weight = self._const(node.input[1], "weight")
        bias_name = self._optional(node, 2)
        bias = self._const(bias_name, "bias") if bias_name else None
        group = int(attrs.get("group", 1))
        if group != 1:
            raise _Problem(
                f"grouped convolution (group={group}): convscope's conv2d connects every "
                "input channel to every output channel"
            )
        if weight is None:
            return None
        if weight.ndim != 4:
            raise _Problem(f"a {weight.ndim - 2}-D convolution: only 2-D images are supported")
        kernel = tuple(int(k) for k in weight.shape[2:])
        if "kernel_shape" in attrs and tuple(attrs["kernel_shape"]) != kernel:
            raise _Problem(
                f"kernel_shape {attrs['kernel_shape']} differs from the weight's {kernel}"
            )
        stride, dilation = _pair_attr(attrs, "strides"), _pair_attr(attrs, "dilations")
        pads = _explicit_pads(attrs, shape[1:] if shape else (0, 0), kernel, stride, dilation)
        if shape is None:
            return None
        if len(shape) != 3:
            raise _Problem(f"its input is a vector of {shape[0]}, not feature maps")
        if weight.shape[1] != shape[0]:
            raise _Problem(
                f"weight expects {weight.shape[1]} input channels, the maps have {shape[0]}"
            )
        conv = Conv2d(self._name(node, "conv2d"), shape[0], weight.shape[0], kernel, stride,
                      _padding_spec(pads), dilation, bias=bias is not None)  # fmt: skip
        conv.params["weight"][...] = weight
        if bias is not None:
            conv.params["bias"][...] = bias.reshape(-1)
        self._add(conv, node)
        return conv.output_shape(shape)

    def _pool(self, node, attrs, shape, kind: str):
        if "kernel_shape" not in attrs or len(attrs["kernel_shape"]) != 2:
            raise _Problem(
                f"kernel_shape {attrs.get('kernel_shape')}: only 2-D pooling is supported"
            )
        kernel = (int(attrs["kernel_shape"][0]), int(attrs["kernel_shape"][1]))
        stride = _pair_attr(attrs, "strides")
        if _pair_attr(attrs, "dilations") != (1, 1):
            raise _Problem(f"dilated pooling (dilations={attrs['dilations']}) is not supported")
        self._unused_extra_outputs(node)
        if shape is None:
            _explicit_pads(attrs, (0, 0), kernel, stride, (1, 1))  # static checks only
            return None
        if len(shape) != 3:
            raise _Problem(f"its input is a vector of {shape[0]}, not feature maps")
        pads = list(_explicit_pads(attrs, shape[1:], kernel, stride, (1, 1)))
        if kind == "avgpool2d" and any(pads) and not attrs.get("count_include_pad", 0):
            raise _Problem(
                f"count_include_pad=0 with padding {tuple(pads)}: the engine's average pool "
                "divides by the whole window, padded zeros included (count_include_pad=1); "
                "export with count_include_pad=1 or without padding"
            )
        requested = tuple(pads)
        if attrs.get("ceil_mode", 0):
            for axis, (before, after) in enumerate(((0, 1), (2, 3))):
                n, k, s = shape[1 + axis], kernel[axis], stride[axis]
                floor = ops.output_size(n, k, s, pads[before] + pads[after])
                ceil = _ceil_pool_size(n, k, s, pads[before], pads[after])
                if ceil == floor:
                    continue
                if kind == "avgpool2d":
                    raise _Problem(
                        f"ceil_mode=1 makes the output {ceil} instead of {floor} here, and the "
                        "engine's average pool has no ceil mode"
                    )
                # Max over extra padding (-inf) at the end gives ceil mode's last window.
                pads[after] += (ceil - 1) * s + k - (n + pads[before] + pads[after])
        cls = AvgPool2d if kind == "avgpool2d" else MaxPool2d
        layer = cls(self._name(node, kind), kernel, stride, _padding_spec(tuple(pads)))
        try:
            out = layer.output_shape(shape)  # refuses padding over half the window
        except ValueError as exc:
            if tuple(pads) == requested:
                raise
            raise _Problem(
                f"ceil_mode=1 needs padding {tuple(pads)} (top, bottom, left, right) here, "
                f"more than half the {kernel[0]}x{kernel[1]} window that the engine's pooling "
                "allows"
            ) from exc
        self._add(layer, node)
        return out

    def _op_MaxPool(self, node, attrs, shape):
        return self._pool(node, attrs, shape, "maxpool2d")

    def _op_AveragePool(self, node, attrs, shape):
        return self._pool(node, attrs, shape, "avgpool2d")

    def _global_pool(self, node, shape, cls, kind: str):
        if shape is None:
            return None
        if len(shape) != 3:
            raise _Problem(f"its input is a vector of {shape[0]}, not feature maps")
        layer = cls(self._name(node, kind), shape[1:], shape[1:], 0)
        self._add(layer, node)
        return layer.output_shape(shape)

    def _op_GlobalAveragePool(self, node, attrs, shape):
        return self._global_pool(node, shape, AvgPool2d, "avgpool2d")

    def _op_GlobalMaxPool(self, node, attrs, shape):
        return self._global_pool(node, shape, MaxPool2d, "maxpool2d")

    def _activation(self, node, shape, layer_of):
        if shape is not None:
            self._add(layer_of(), node)
        return shape

    def _op_Relu(self, node, attrs, shape):
        return self._activation(node, shape, lambda: ReLU(self._name(node, "relu")))

    def _op_LeakyRelu(self, node, attrs, shape):
        slope = float(attrs.get("alpha", 0.01))
        return self._activation(
            node, shape, lambda: LeakyReLU(self._name(node, "leaky_relu"), slope)
        )

    def _op_Sigmoid(self, node, attrs, shape):
        return self._activation(node, shape, lambda: Sigmoid(self._name(node, "sigmoid")))

    def _op_Tanh(self, node, attrs, shape):
        return self._activation(node, shape, lambda: Tanh(self._name(node, "tanh")))

    def _removed(self, node, shape):
        self.removed.append(f"{node.name or node.op_type} ({node.op_type})")
        if self.layers:  # the previous layer's output is now this node's output too
            self.sources[self.layers[-1].name] = node.output[0]
        return shape

    def _op_Dropout(self, node, attrs, shape):
        self._unused_extra_outputs(node)
        return self._removed(node, shape)

    def _op_Identity(self, node, attrs, shape):
        return self._removed(node, shape)

    def _flatten_to(self, node, shape, result: tuple[int, ...]):
        """A reshape of (1, *shape) to ``result``: a flatten, a no-op, or a problem."""
        if result == (1, *shape):
            return self._removed(node, shape)
        if len(result) == 2 and result[0] == 1 and result[1] == int(np.prod(shape)):
            if len(shape) == 1:
                return self._removed(node, shape)
            layer = Flatten(self._name(node, "flatten"))
            self._add(layer, node)
            return layer.output_shape(shape)
        raise _Problem(
            f"reshapes (N, {', '.join(map(str, shape))}) to {result}: only flattening each "
            "image to one vector is supported"
        )

    def _op_Flatten(self, node, attrs, shape):
        axis = int(attrs.get("axis", 1))
        if shape is None:
            return None
        if axis < 0:
            axis += len(shape) + 1
        if axis != 1:
            raise _Problem(f"axis={attrs.get('axis')} would mix images of a batch; use axis=1")
        return self._flatten_to(node, shape, (1, int(np.prod(shape))))

    def _op_Reshape(self, node, attrs, shape):
        target = self._const(node.input[1], "shape")
        if target is None or shape is None:
            return None
        full = (1, *shape)
        dims = [int(d) for d in target]
        if not attrs.get("allowzero", 0):
            dims = [full[i] if d == 0 and i < len(full) else d for i, d in enumerate(dims)]
        if dims.count(-1) == 1:
            known = int(np.prod([d for d in dims if d != -1]))
            if known <= 0 or int(np.prod(full)) % known:
                raise _Problem(f"cannot reshape (N, {shape}) to {tuple(int(d) for d in target)}")
            dims[dims.index(-1)] = int(np.prod(full)) // known
        return self._flatten_to(node, shape, tuple(dims))

    def _op_Squeeze(self, node, attrs, shape):
        axes = attrs.get("axes")
        if axes is None and self._optional(node, 1):
            value = self._const(node.input[1], "axes")
            axes = None if value is None else [int(a) for a in value]
        if shape is None:
            return None
        full = (1, *shape)
        if axes is None:  # every size-1 axis, except the batch
            axes = [i for i, n in enumerate(full) if n == 1 and i > 0]
        axes = sorted(a % len(full) for a in axes)
        if 0 in axes or any(full[a] != 1 for a in axes):
            raise _Problem(f"squeezes axes {axes} of (N, {', '.join(map(str, shape))})")
        result = tuple(n for i, n in enumerate(full) if i not in axes)
        return self._flatten_to(node, shape, result)

    def _linear(self, node, shape, weight: np.ndarray, bias: np.ndarray | None):
        """A linear layer from weight (out, in) and optional bias (out,)."""
        if len(shape) != 1:
            raise _Problem(
                f"its input is feature maps {shape}, not a vector: add a Flatten before it"
            )
        if weight.shape[1] != shape[0]:
            raise _Problem(f"weight expects {weight.shape[1]} inputs, the vector has {shape[0]}")
        layer = Linear(
            self._name(node, "linear"), weight.shape[1], weight.shape[0], bias=bias is not None
        )
        layer.params["weight"][...] = weight
        if bias is not None:
            layer.params["bias"][...] = bias
        self._add(layer, node)
        return layer.output_shape(shape)

    def _op_Gemm(self, node, attrs, shape):
        if int(attrs.get("transA", 0)):
            raise _Problem("transA=1 would transpose the batch of images (A must be the data)")
        b = self._const(node.input[1], "weight B")
        c_name = self._optional(node, 2)
        c = self._const(c_name, "bias C") if c_name else None
        if b is None or shape is None or (c_name and c is None):
            return None
        if b.ndim != 2:
            raise _Problem(f"weight B has shape {b.shape}, not a matrix")
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        b_used = b.T if int(attrs.get("transB", 0)) else b  # (in, out)
        # A transposed view: the layer copies it once (VGG-16's fc1 alone is 400 MB).
        weight = b_used.T if alpha == 1.0 else np.float32(alpha) * b_used.T.astype(np.float32)
        bias = None
        if c is not None:
            out = weight.shape[0]
            if c.size not in (1, out) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
                raise _Problem(f"bias C of shape {c.shape} is not one value per output ({out})")
            bias = (beta * np.broadcast_to(c.reshape(-1), (out,)).astype(np.float64)).astype(
                np.float32
            )
        return self._linear(node, shape, weight, bias)

    def _op_MatMul(self, node, attrs, shape):
        w = self._const(node.input[1], "weight")
        if w is None or shape is None:
            return None
        if w.ndim != 2:
            raise _Problem(f"weight of shape {w.shape} is not a matrix")
        return self._linear(node, shape, w.T, None)

    def _op_Add(self, node, attrs, shape):
        other = node.input[1] if node.input[0] == self.current else node.input[0]
        value = self._const(other, "addend")
        layer = self._affine_before(node)
        if value is None or shape is None or layer is None:
            return None
        out = layer.out_channels if isinstance(layer, Conv2d) else layer.out_features
        if isinstance(layer, Conv2d):  # one value per channel: shape (C, 1, 1) or (1, C, 1, 1)
            fits = value.size == 1 or (
                value.ndim in (3, 4)
                and value.shape[-2:] == (1, 1)
                and value.shape[:-3] in ((), (1,))
            )
        else:  # one value per output: shape (out,) or (1, out)
            fits = value.ndim <= 1 or (value.ndim == 2 and value.shape[0] == 1)
        if not fits or value.size not in (1, out):
            raise _Problem(
                f"adds a constant of shape {value.shape}, not one bias per output of "
                f"{layer.name!r} ({out})"
            )
        per_channel = value.reshape(-1).astype(np.float64)
        bias = layer.params.get("bias", np.zeros(out, np.float32)).astype(np.float64)
        layer.params["bias"] = (bias + np.broadcast_to(per_channel, (out,))).astype(np.float32)
        layer.folded.append({"node": node.name, "op": "Add"})
        self.sources[layer.name] = node.output[0]
        return shape

    def _op_BatchNormalization(self, node, attrs, shape):
        if int(attrs.get("training_mode", 0)):
            raise _Problem("training_mode=1: only inference-mode batch normalisation is supported")
        if self.opset < 9 and not int(attrs.get("spatial", 1)):
            raise _Problem("spatial=0 (statistics per position) cannot be folded into a conv")
        self._unused_extra_outputs(node)
        roles = ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance"))
        params = [self._const(node.input[i], what) for i, what in roles]
        layer = self._affine_before(node)
        if any(p is None for p in params) or shape is None or layer is None:
            return None
        scale, shift, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
        eps = float(attrs.get("epsilon", 1e-5))
        out = layer.out_channels if isinstance(layer, Conv2d) else layer.out_features
        if not all(p.size == out for p in (scale, shift, mean, var)):
            raise _Problem(f"statistics are not one per output of {layer.name!r} ({out})")
        factor = scale / np.sqrt(var + eps)
        weight = layer.params["weight"].astype(np.float64)
        layer.params["weight"][...] = weight * factor.reshape((-1,) + (1,) * (weight.ndim - 1))
        bias = layer.params.get("bias", np.zeros(out, np.float32)).astype(np.float64)
        layer.params["bias"] = ((bias - mean) * factor + shift).astype(np.float32)
        layer.folded.append({"node": node.name, "op": "BatchNormalization", "epsilon": eps})
        self.sources[layer.name] = node.output[0]
        return shape

    def _op_Softmax(self, node, attrs, shape):
        axis = int(attrs.get("axis", -1 if self.opset >= 13 else 1))
        if shape is None:
            return None
        if len(shape) != 1 or axis not in (1, -1):
            raise _Problem(
                f"softmax over axis {axis} of (N, {', '.join(map(str, shape))}): only the "
                "class scores of each image (a vector) are supported"
            )
        self._add(Softmax(self._name(node, "softmax")), node)
        return shape

    # --- the end ----------------------------------------------------------------------
    def _check_output(self) -> None:
        if self.broken:
            return
        outputs = [o.name for o in self.graph.output]
        if self.current not in outputs:
            self.problems.append(
                ("graph output", "-", f"the image's path ends at {self.current!r}, but the "
                 f"graph's outputs are {', '.join(map(repr, outputs))}")
            )  # fmt: skip
        elif self.shapes[self.current] is not None and len(self.shapes[self.current]) != 1:
            self.problems.append(
                ("graph output", "-", f"the output has shape {self.shapes[self.current]} per "
                 "image; convscope expects class scores (a vector)")
            )  # fmt: skip
        if not self.layers and not self.problems:
            self.problems.append(("graph", "-", "no layers: the graph computes nothing"))


def _metadata(model) -> dict[str, Any]:
    """convscope's own metadata_props (written by export_onnx), JSON-decoded."""
    values = {}
    for prop in model.metadata_props:
        if prop.key.startswith(_META_PREFIX):
            try:
                values[prop.key[len(_META_PREFIX) :]] = json.loads(prop.value)
            except ValueError:
                continue
    return values


def _floats(values: Any, channels: int, what: str) -> list[float]:
    try:
        result = [float(v) for v in values]
    except (TypeError, ValueError):
        raise OnnxImportError(f"{what} must be numbers, got {values!r}") from None
    if len(result) not in (1, channels):
        needs = "1 value" if channels == 1 else f"1 or {channels} values (one per channel)"
        raise OnnxImportError(f"{what} needs {needs}, got {len(result)}")
    if what == "std" and min(result) <= 0:
        raise OnnxImportError(f"std values must be positive, got {result}")
    return result * channels if len(result) == 1 else result  # one value per channel


def load_onnx(
    source: str | Path | bytes | Any,
    *,
    model_id: str,
    classes: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    title: str | None = None,
    description: str | None = None,
    dataset: str | None = None,
    preprocess: str = "photo",
    input_size: Sequence[int] | None = None,
    add_softmax: bool = False,
    max_bytes: int | None = None,
) -> Sequential:
    """Convert a single-path ONNX CNN (a file path, its bytes, or a ModelProto) to a
    Sequential named ``model_id``.

    ``mean``/``std`` normalise pixels scaled to [0, 1] (default: what convscope's own
    export recorded, else 0 and 1); ``classes`` names the outputs (default: recorded
    names, ImageNet's for 1,000 outputs, else the indices). ``input_size`` (H, W) fixes
    dynamic spatial sizes. ``add_softmax`` appends a softmax when the graph ends with
    scores. Raises :class:`OnnxImportError` (:class:`UnsupportedGraphError` listing every
    node that cannot be converted)."""
    model, check_target = _read_model(source, max_bytes)
    _check(check_target)
    converter = _Converter(model, input_size)
    converter.run()
    if converter.problems:
        raise UnsupportedGraphError(converter.problems)
    layers = converter.layers
    if add_softmax and layers[-1].kind != "softmax":
        softmax = Softmax(
            "softmax" if "softmax" not in {ly.name for ly in layers} else "softmax_added"
        )
        layers.append(softmax)
    recorded = _metadata(model)
    if not isinstance(recorded.get("classes"), list) or not recorded["classes"]:
        recorded.pop("classes", None)
    for key in ("title", "description", "dataset"):
        if not isinstance(recorded.get(key), str):
            recorded.pop(key, None)
    channels, height, width = converter.input_shape
    spec = InputSpec(
        channels, height, width,
        _floats(mean if mean is not None else recorded.get("mean", [0.0]), channels, "mean"),
        _floats(std if std is not None else recorded.get("std", [1.0]), channels, "std"),
    )  # fmt: skip
    sequential = Sequential(layers, spec, model_id)  # checks that the layers fit
    outputs = sequential.shapes()[-1][0]
    names = classes if classes is not None else recorded.get("classes")
    if names is None:
        names = imagenet_classes() if outputs == 1000 else [str(i) for i in range(outputs)]
    names = [str(n) for n in names]
    if len(names) != outputs:
        raise OnnxImportError(
            f"{len(names)} class names given, but the model has {outputs} outputs"
        )
    sequential.classes = names
    folds = {ly.name: [f["op"] for f in ly.folded] for ly in layers if getattr(ly, "folded", None)}
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    summary = (
        f"Imported from ONNX ({producer or 'unknown producer'}, opset {converter.opset}): "
        f"{len(model.graph.node)} nodes became {len(layers)} layers."
    )
    if folds:
        summary += (
            " Folded into the weights: "
            + "; ".join(f"{', '.join(ops_)} into {name}" for name, ops_ in folds.items())
            + "."
        )
    if converter.removed:
        summary += f" Removed at inference: {', '.join(converter.removed)}."
    sequential.meta = {
        "title": title or recorded.get("title") or model_id,
        "description": description or recorded.get("description") or summary,
        "dataset": dataset
        or recorded.get("dataset")
        or ("imagenet" if outputs == 1000 else "custom"),
        "preprocess": preprocess,
        "trained": True,
        "source": "onnx",
        "onnx": {
            "producer": producer,
            "opset": converter.opset,
            "graph": model.graph.name,
            "input": converter.input_name,
            "summary": summary,
            "removed": converter.removed,
            "outputs": converter.sources,
        },
    }
    return sequential


# ------------------------------------------------------------------------------ export


def export_onnx(model: Sequential, path: str | Path | None = None, opset: int = EXPORT_OPSET):
    """``model`` as an ONNX ModelProto (written to ``path`` when given). Node and output
    names are the layer names; the batch dimension is dynamic; classes, normalisation and
    title travel in metadata_props, so :func:`load_onnx` restores them."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    if opset < EXPORT_OPSET:
        raise ValueError(f"export needs opset {EXPORT_OPSET} or newer, got {opset}")
    nodes, inits = [], []
    shape: tuple[int, ...] = model.input_spec.shape
    previous = "input"
    for layer in model.layers:
        name, out = layer.name, layer.name
        params = {}
        for key, value in layer.params.items():
            params[key] = f"{name}.{key}"
            inits.append(numpy_helper.from_array(np.asarray(value, np.float32), params[key]))
        inputs = [previous] + [params[k] for k in ("weight", "bias") if k in params]
        if isinstance(layer, Conv2d):
            top, bottom, left, right = layer.pads(shape[1:])
            node = helper.make_node(
                "Conv", inputs, [out], name=name, kernel_shape=list(layer.kernel),
                strides=list(layer.stride), dilations=list(layer.dilation),
                pads=[top, left, bottom, right],
            )  # fmt: skip
        elif isinstance(layer, (MaxPool2d, AvgPool2d)):
            top, bottom, left, right = layer.pads(shape[1:])
            extra = {"count_include_pad": 1} if isinstance(layer, AvgPool2d) else {}
            node = helper.make_node(
                "MaxPool" if isinstance(layer, MaxPool2d) else "AveragePool", inputs, [out],
                name=name, kernel_shape=list(layer.kernel), strides=list(layer.stride),
                pads=[top, left, bottom, right], **extra,
            )  # fmt: skip
        elif isinstance(layer, Linear):
            node = helper.make_node("Gemm", inputs, [out], name=name, transB=1)
        elif isinstance(layer, Flatten):
            node = helper.make_node("Flatten", inputs, [out], name=name, axis=1)
        elif isinstance(layer, Softmax):
            node = helper.make_node("Softmax", inputs, [out], name=name, axis=-1)
        elif isinstance(layer, LeakyReLU):
            node = helper.make_node("LeakyRelu", inputs, [out], name=name, alpha=layer.slope)
        elif isinstance(layer, (ReLU, Sigmoid, Tanh)):
            op = {ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh"}[type(layer)]
            node = helper.make_node(op, inputs, [out], name=name)
        else:
            raise ValueError(f"layer {name!r} of kind {layer.kind!r} has no ONNX export")
        if getattr(layer, "folded", None):
            node.doc_string = "folded on import: " + ", ".join(f["op"] for f in layer.folded)
        nodes.append(node)
        shape = tuple(layer.output_shape(shape))
        previous = out
    graph = helper.make_graph(
        nodes, model.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *model.input_spec.shape])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["N", *shape])],
        initializer=inits,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="convscope")
    proto.ir_version = helper.find_min_ir_version_for(opsets)  # readable by older runtimes
    meta = {
        "classes": model.classes, "mean": model.input_spec.mean, "std": model.input_spec.std,
        "title": model.meta.get("title"), "description": model.meta.get("description"),
        "dataset": model.meta.get("dataset"),
    }  # fmt: skip
    helper.set_model_props(proto, {_META_PREFIX + k: json.dumps(v) for k, v in meta.items() if v})
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save_model(proto, str(path))
    return proto
