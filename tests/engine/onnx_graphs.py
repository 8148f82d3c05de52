"""ONNX graphs built with onnx.helper for the import tests (no downloads), and a helper
that runs a graph in onnxruntime with any intermediate tensors as extra outputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["GraphBuilder", "run_ort", "vgg16_graph"]


class GraphBuilder:
    """A single-path graph grown node by node from one image input; seeded random weights.

    Every method appends one node that reads the current tensor and makes its output the
    current one, and returns the node's name."""

    def __init__(
        self,
        shape: Sequence[int],
        seed: int = 0,
        batch: int | str = "N",
        opset: int = 13,
        input_name: str = "image",
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.opset = opset
        self.channels, self.height, self.width = shape
        self.features: int | None = None
        self.batch = batch
        self.input = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, *shape])
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.current = input_name
        self._count = 0
        self.zeros = False  # weights all zero (a big graph that is converted, never run)

    # --- plumbing -----------------------------------------------------------------------
    def const(self, name: str, value: np.ndarray) -> str:
        if self.zeros and np.asarray(value).size > 1 << 16:  # big zeros: one cheap copy
            value = np.asarray(value)
            tensor = helper.make_tensor(
                name, TensorProto.FLOAT, value.shape, bytes(value.nbytes), raw=True
            )
            self.inits.append(tensor)
        else:
            self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(
        self, op: str, extra_inputs: Sequence[str] = (), name: str | None = None,
        outputs: int = 1, **attrs,
    ) -> str:  # fmt: skip
        """Append ``op`` reading the current tensor (then ``extra_inputs``)."""
        self._count += 1
        name = f"{op.lower()}{self._count}" if name is None else name
        outs = [f"{name or op}_{self._count}_out{i}" for i in range(outputs)]
        self.nodes.append(
            helper.make_node(op, [self.current, *extra_inputs], outs, name=name, **attrs)
        )
        self.current = outs[0]
        return name

    def _w(self, *shape: int) -> np.ndarray:
        if self.zeros:
            return np.broadcast_to(np.float32(0), shape)  # no memory until serialised
        fan_in = int(np.prod(shape[1:]))
        return (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    # --- layers -------------------------------------------------------------------------
    def conv(
        self, out: int, kernel: int | tuple[int, int] = 3, bias: bool = True,
        name: str | None = None, **attrs,
    ) -> str:  # fmt: skip
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        tag = f"w{len(self.inits)}"
        inputs = [self.const(tag, self._w(out, self.channels, kh, kw))]
        if bias:
            inputs.append(self.const(tag + "_b", self.rng.normal(0, 0.1, out).astype(np.float32)))
        self.channels = out
        return self.node("Conv", inputs, name, kernel_shape=[kh, kw], **attrs)

    def batchnorm(self, size: int, name: str | None = None, **attrs) -> str:
        tag = f"bn{len(self.inits)}"
        stats = [
            self.rng.uniform(0.5, 1.5, size),  # scale
            self.rng.normal(0, 0.2, size),  # bias
            self.rng.normal(0, 0.3, size),  # running mean
            self.rng.uniform(0.3, 2.0, size),  # running variance
        ]
        inputs = [self.const(f"{tag}_{i}", s.astype(np.float32)) for i, s in enumerate(stats)]
        return self.node("BatchNormalization", inputs, name, epsilon=1e-3, **attrs)

    def gemm(
        self, out: int, trans_b: int = 1, alpha: float = 1.0, beta: float = 1.0,
        bias_shape: str = "vector", name: str | None = None,
    ) -> str:  # fmt: skip
        w = self._w(out, self.features)
        inputs = [self.const(f"g{len(self.inits)}", w if trans_b else np.ascontiguousarray(w.T))]
        if bias_shape != "none":
            c = self.rng.normal(0, 0.1, out).astype(np.float32)
            shaped = {"vector": c, "row": c[None, :], "scalar": c[:1]}[bias_shape]
            inputs.append(self.const(f"g{len(self.inits)}_c", shaped))
        self.features = out
        return self.node("Gemm", inputs, name, transB=trans_b, alpha=alpha, beta=beta)

    def matmul(self, out: int, add_bias: bool = True, name: str | None = None) -> str:
        w = np.ascontiguousarray(self._w(out, self.features).T)  # (in, out)
        mm = self.node("MatMul", [self.const(f"m{len(self.inits)}", w)], name)
        if add_bias:
            b = self.rng.normal(0, 0.1, out).astype(np.float32)
            self.node(
                "Add",
                [self.const(f"m{len(self.inits)}_b", b)],
                None if name is None else name + "_bias",
            )
        self.features = out
        return mm

    def flatten(self, name: str | None = None) -> str:
        self.features = self.channels * self.height * self.width
        return self.node("Flatten", [], name, axis=1)

    def axes_input(self, axes: Sequence[int], **kwargs) -> dict:
        """Squeeze/Unsqueeze axes: an attribute before opset 13, an input from 13."""
        if self.opset >= 13:
            return {
                "extra_inputs": [self.const(f"axes{len(self.inits)}", np.array(axes, np.int64))]
            }
        return {"axes": list(axes)}

    def spatial(self, height: int, width: int) -> None:
        """Record the map size after a layer (the tests know their geometry)."""
        self.height, self.width = height, width

    def model(self, outputs: Sequence[str] = ()) -> onnx.ModelProto:
        """The graph; its output is the current tensor, a vector of ``features`` per image."""
        final = helper.make_tensor_value_info(
            self.current, TensorProto.FLOAT, [self.batch, self.features]
        )
        extra = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
        graph = helper.make_graph(
            self.nodes, "test-graph", [self.input], [final, *extra], initializer=self.inits
        )
        opsets = [helper.make_opsetid("", self.opset)]
        proto = helper.make_model(graph, opset_imports=opsets, producer_name="convscope-tests")
        proto.ir_version = helper.find_min_ir_version_for(opsets)
        return proto


def run_ort(proto: onnx.ModelProto, x: np.ndarray, tensors: Sequence[str]) -> dict[str, np.ndarray]:
    """Run ``proto`` in onnxruntime (one thread) and return the named tensors."""
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    present = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in present:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
            present.add(name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name
    names = list(dict.fromkeys(tensors))
    values = session.run(names, {input_name: x})
    return dict(zip(names, values, strict=True))


def vgg16_graph(
    size: int = 224, widths: Sequence[int] = (64, 128, 256, 512, 512), fc: int = 4096,
    classes: int = 1000, seed: int = 0, zeros: bool = False,
) -> onnx.ModelProto:  # fmt: skip
    """VGG-16 (configuration D) as torchvision exports it: features.N convs and pools,
    flatten, classifier.N linears with ReLU and Dropout. ``zeros`` skips drawing weights."""
    g = GraphBuilder((3, size, size), seed=seed)
    g.zeros = zeros
    index = 0
    for width, repeats in zip(widths, (2, 2, 3, 3, 3), strict=True):
        for _ in range(repeats):
            g.conv(width, 3, name=f"/features/features.{index}/Conv", pads=[1, 1, 1, 1])
            g.node("Relu", [], f"/features/features.{index + 1}/Relu")
            index += 2
        g.node("MaxPool", [], f"/features/features.{index}/MaxPool", kernel_shape=[2, 2],
               strides=[2, 2])  # fmt: skip
        index += 1
        g.spatial(g.height // 2, g.width // 2)
    g.flatten("/Flatten")
    for k, out in ((0, fc), (3, fc), (6, classes)):
        g.gemm(out, name=f"/classifier/classifier.{k}/Gemm")
        if k < 6:
            g.node("Relu", [], f"/classifier/classifier.{k + 1}/Relu")
            g.node("Dropout", [], f"/classifier/classifier.{k + 2}/Dropout")
    return g.model()
