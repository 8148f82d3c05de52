"""engine.onnx_io: ONNX graphs built with onnx.helper, converted to engine models, and
checked against onnxruntime at every layer; export and re-import; the errors."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from engine import zoo  # noqa: E402
from engine.layers import (  # noqa: E402
    AvgPool2d,
    Conv2d,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    Sigmoid,
    Tanh,
)
from engine.model import InputSpec, Sequential  # noqa: E402
from engine.onnx_io import (  # noqa: E402
    OnnxImportError,
    UnsupportedGraphError,
    export_onnx,
    imagenet_classes,
    load_onnx,
)

from .checks import assert_close  # noqa: E402
from .onnx_graphs import GraphBuilder, run_ort, vgg16_graph  # noqa: E402


def _image(model: Sequential, batch: int = 2, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, *model.input_spec.shape)).astype(np.float32)


def assert_matches_ort(proto, model: Sequential, batch: int = 2) -> dict[str, np.ndarray]:
    """Every engine layer equals the ONNX tensor it stands for, to 1e-4 of its scale."""
    sources = model.meta["onnx"]["outputs"]
    assert list(sources) == [layer.name for layer in model.layers]
    x = _image(model, batch)
    expected = run_ort(proto, x, list(sources.values()))
    trace = model.forward(x)
    for name, tensor in sources.items():
        assert_close(trace[name], expected[tensor], rtol=1e-4, what=f"{name} <- {tensor}")
    return expected


# ------------------------------------------------------------------ every op and attribute


def _conv_net(opset: int) -> tuple[object, list[str]]:
    """Convolutions with every padding form, BN folding, every pooling and activation."""
    g = GraphBuilder((3, 21, 19), seed=opset, opset=opset)
    g.conv(6, 3, name="asym", pads=[1, 0, 2, 1], strides=[2, 1], dilations=[2, 1])  # 10 x 18
    g.batchnorm(6, name="asym_bn")
    g.node("LeakyRelu", [], "leaky", alpha=0.2)
    g.conv(8, (3, 2), name="same_upper", auto_pad="SAME_UPPER", strides=[2, 2])  # 5 x 9
    g.node("Relu", [], "relu_a")
    g.conv(8, 2, bias=False, name="same_lower", auto_pad="SAME_LOWER", strides=[2, 1])  # 3 x 9
    g.batchnorm(8, name="bn_no_bias")
    g.node("Sigmoid", [], "sig")
    g.conv(8, (1, 3), name="valid", auto_pad="VALID")  # 3 x 7
    g.node("Tanh", [], "tanh")
    g.node("MaxPool", [], "pool_ceil", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)  # 2 x 4
    g.node("Identity", [], "ident")
    g.node("AveragePool", [], "avg_pad", kernel_shape=[2, 3], strides=[1, 1], pads=[1, 1, 0, 1],
           count_include_pad=1)  # fmt: skip  # 2 x 4
    g.node("MaxPool", [], "pool_pad", kernel_shape=[3, 3], strides=[1, 2], pads=[1] * 4)  # 2 x 2
    g.node("AveragePool", [], "avg_plain", kernel_shape=[1, 2], strides=[1, 1])  # 2 x 1
    g.conv(10, 1, name="pointwise")
    g.node("GlobalAveragePool", [], "gap")
    g.spatial(1, 1)
    g.flatten("flat")
    g.gemm(12, trans_b=1, alpha=0.7, beta=1.3, name="gemm_tb")
    g.batchnorm(12, name="gemm_bn")
    g.node("Relu", [], "relu_b")
    g.node("Dropout", [], "drop", outputs=2)  # mask unused
    g.gemm(9, trans_b=0, alpha=1.5, beta=0.5, bias_shape="row", name="gemm_t0")
    g.node("Tanh", [], "tanh_b")
    g.matmul(7, name="mm")
    g.node("Softmax", [], "probs", axis=-1 if opset >= 13 else 1)
    kinds = ["conv2d", "leaky_relu", "conv2d", "relu", "conv2d", "sigmoid", "conv2d", "tanh",
             "maxpool2d", "avgpool2d", "maxpool2d", "avgpool2d", "conv2d", "avgpool2d",
             "flatten", "linear", "relu", "linear", "tanh", "linear", "softmax"]  # fmt: skip
    return g.model(), kinds


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_every_op_and_attribute_matches_onnxruntime(opset):
    proto, kinds = _conv_net(opset)
    model = load_onnx(proto, model_id="ops")
    assert [layer.kind for layer in model.layers] == kinds
    assert_matches_ort(proto, model)
    conv = model.layer("asym")
    assert conv.padding == [1, 2, 0, 1]  # ONNX [top, left, bottom, right] -> engine order
    assert (conv.stride, conv.dilation) == ((2, 1), (2, 1))
    assert model.layer("same_upper").padding == [0, 1, 0, 0]  # the odd pixel at the bottom
    assert model.layer("same_lower").padding == [1, 0, 1, 0]  # ... and here at the top, left
    # ceil_mode=1 on 3 x 7 gives 2 x 4: one row and one column of -inf padding at the end.
    assert model.layer("pool_ceil").padding == [0, 1, 0, 1]
    assert model.layer("gap").kernel == (2, 1) and model.layer("gap").kind == "avgpool2d"


def test_folds_are_recorded_in_describe_and_survive_save(tmp_path):
    proto, _ = _conv_net(13)
    model = load_onnx(proto, model_id="ops")
    by_name = {info["name"]: info for info in model.describe()}
    assert by_name["asym"]["hyperparameters"]["folded"] == [
        {"node": "asym_bn", "op": "BatchNormalization", "epsilon": pytest.approx(1e-3)}
    ]
    # A conv without bias gets one from the folded batch norm; MatMul + Add is one layer.
    assert by_name["same_lower"]["hyperparameters"]["bias"] is True
    assert by_name["mm"]["hyperparameters"]["folded"] == [{"node": "mm_bias", "op": "Add"}]
    assert "folded" not in by_name["valid"]["hyperparameters"]
    description = model.meta["description"]
    assert "into asym" in description and "drop (Dropout)" in description
    model.save(tmp_path / "ops")
    again = Sequential.load(tmp_path / "ops")
    assert again.describe() == model.describe()
    x = _image(model)
    assert np.array_equal(again.predict(x), model.predict(x))


def _flatten_net(opset: int, reshape: str) -> object:
    """Reshape-as-flatten (constant shape, or computed from Shape), GlobalMaxPool, Squeeze,
    a per-channel Add after a conv, a MatMul without Add, Gemm with a scalar C."""
    g = GraphBuilder((2, 9, 9), seed=5, opset=opset, batch=3)
    g.conv(4, 3, bias=False, name="conv")
    per_channel = g.rng.normal(0, 0.5, (1, 4, 1, 1)).astype(np.float32)
    g.node("Add", [g.const("conv_bias", per_channel)], "conv_add")
    g.node("Relu", [], "relu")
    if reshape == "squeeze":
        g.node("GlobalMaxPool", [], "gmp")
        g.node("Squeeze", name="squeeze", **g.axes_input([2, 3]))
        g.features = 4
    elif reshape == "constant":
        g.node("Reshape", [g.const("target", np.array([0, -1], np.int64))], "reshape")
        g.features = 4 * 7 * 7
    else:  # x.view(x.size(0), -1) as PyTorch's exporter writes it
        maps = g.current
        shape = "shape_out"
        g.nodes.append(helper.make_node("Shape", [maps], [shape], name="shape"))
        g.nodes.append(helper.make_node("Gather", [shape, g.const("zero", np.array(0, np.int64))],
                                        ["batch"], name="gather", axis=0))  # fmt: skip
        unsq = {"axes": [0]} if opset < 13 else {}
        extra = [g.const("axis0", np.array([0], np.int64))] if opset >= 13 else []
        g.nodes.append(helper.make_node("Unsqueeze", ["batch", *extra], ["batch1"], **unsq))
        minus = g.const("minus_one", np.array([-1], np.int64))
        g.nodes.append(helper.make_node("Concat", ["batch1", minus], ["target"], axis=0))
        g.node("Reshape", ["target"], "reshape")
        g.features = 4 * 7 * 7
    g.matmul(5, add_bias=False, name="mm")
    g.gemm(3, bias_shape="scalar", name="gemm", beta=2.0)
    return g.model()


@pytest.mark.parametrize(("opset", "reshape"), [(13, "constant"), (11, "computed"),
                                                 (13, "computed"), (13, "squeeze"),
                                                 (11, "squeeze")])  # fmt: skip
def test_reshape_squeeze_and_bias_adds_match_onnxruntime(opset, reshape):
    proto = _flatten_net(opset, reshape)
    model = load_onnx(proto, model_id="flat")
    pool = ["maxpool2d"] if reshape == "squeeze" else []
    kinds = ["conv2d", "relu", *pool, "flatten", "linear", "linear"]
    assert [ly.kind for ly in model.layers] == kinds
    assert model.layer("mm").params.get("bias") is None  # MatMul alone: no bias
    assert model.input_spec.shape == (2, 9, 9)
    assert_matches_ort(proto, model, batch=3)


def test_layer_names_are_sanitised_unique_and_default_by_kind():
    g = GraphBuilder((1, 6, 6))
    g.conv(2, 3, name="/features/conv 1", pads=[1, 1, 1, 1])
    g.node("Relu", [], "input")  # reserved for the model's input
    g.conv(2, 3, name="", pads=[1, 1, 1, 1])
    g.node("Relu", [], "")
    g.conv(2, 3, name="/features/conv 1")  # the same ONNX name again
    g.spatial(4, 4)
    g.flatten("")
    g.gemm(3, name="")
    g.node("Softmax", [], "")
    model = load_onnx(g.model(), model_id="names")
    assert [ly.name for ly in model.layers] == [
        "features_conv_1", "input_layer", "conv2", "relu2", "features_conv_1_2", "flatten",
        "fc1", "softmax",
    ]  # fmt: skip


# --------------------------------------------------------------------------------- VGG-16


def test_vgg16_topology_at_reduced_size_matches_onnxruntime_at_every_layer():
    proto = vgg16_graph(size=32, widths=(8, 16, 16, 32, 32), fc=48, classes=10)
    model = load_onnx(proto, model_id="vgg16-small")
    blocks = [[8] * 2, [16] * 2, [16] * 3, [32] * 3, [32] * 3]
    reference = zoo.vgg_stack(3, blocks, 32, [48, 48], 10)
    assert [ly.kind for ly in model.layers] == [ly.kind for ly in reference][:-1]  # no softmax
    assert model.layers[0].name == "features_features.0_Conv"
    assert model.classes == [str(i) for i in range(10)]
    assert_matches_ort(proto, model)


def test_full_size_vgg16_graph_converts_with_138_million_parameters():
    model = load_onnx(vgg16_graph(zeros=True), model_id="vgg16-onnx",
                      mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])  # fmt: skip
    assert model.param_count == 138_357_544
    builtin = zoo.architecture("vgg16")  # without drawing weights
    assert model.shapes() == builtin.shapes()[:-1]  # the graph ends with logits, no softmax
    assert model.macs == builtin.macs
    assert model.classes == imagenet_classes() and model.classes[0] == "tench"
    assert model.meta["dataset"] == "imagenet"
    assert model.input_spec.std == [0.229, 0.224, 0.225]
    assert [d.name for d in model.layers if d.kind == "linear"] == [
        f"classifier_classifier.{k}_Gemm" for k in (0, 3, 6)
    ]


# ------------------------------------------------------------------------ export and back


@pytest.mark.parametrize("name", ["tiny-vgg", "lenet5"])
def test_export_runs_in_onnxruntime_and_round_trips_exactly(name, tmp_path):
    model = zoo.load(name)
    path = tmp_path / f"{name}.onnx"
    proto = export_onnx(model, path)
    assert path.stat().st_size > model.param_count * 4
    assert proto.opset_import[0].version == 13
    ops_used = {node.op_type for node in proto.graph.node}
    assert ops_used == {"Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Softmax"}
    x = _image(model, batch=3)
    outputs = run_ort(proto, x, [ly.name for ly in model.layers])
    trace = model.forward(x)
    for layer in model.layers:
        assert_close(trace[layer.name], outputs[layer.name], rtol=1e-4, what=layer.name)
    again = load_onnx(path, model_id=f"{name}-again")
    assert again.architecture()["layers"] == model.architecture()["layers"]
    assert (again.classes, again.input_spec) == (model.classes, model.input_spec)
    assert again.meta["title"] == model.meta["title"]
    for key, value in model.state_dict().items():
        assert np.array_equal(again.state_dict()[key], value), key
    assert np.array_equal(again.predict(x), model.predict(x))


def test_export_of_every_layer_kind_and_padding_form():
    layers = [
        Conv2d("c1", 2, 4, (3, 2), (2, 1), [1, 2, 0, 1], (1, 2)), LeakyReLU("lr", 0.1),
        Conv2d("c2", 4, 4, 3, 2, "same", bias=False), Sigmoid("sg"),
        AvgPool2d("ap", 2, 1, 1), MaxPool2d("mp", 3, 2, "same"), Tanh("th"),
        Flatten("fl"), Linear("fc", 36, 5),
    ]  # fmt: skip
    model = Sequential(layers, InputSpec(2, 15, 11), "kinds", [str(i) for i in range(5)]).init(3)
    proto = export_onnx(model)
    x = _image(model)
    outputs = run_ort(proto, x, [ly.name for ly in model.layers])
    trace = model.forward(x)
    for layer in model.layers:
        assert_close(trace[layer.name], outputs[layer.name], rtol=1e-4, what=layer.name)
    again = load_onnx(proto, model_id="kinds")
    assert np.array_equal(again.predict(x), model.predict(x))
    with pytest.raises(ValueError, match="opset 13 or newer"):
        export_onnx(model, opset=12)


# ----------------------------------------------------------------------------- refusals


def test_unsupported_graph_lists_every_bad_node_by_name_and_op():
    g = GraphBuilder((4, 8, 8))
    g.conv(4, 3, name="stem", pads=[1, 1, 1, 1])
    skip = g.current
    g.conv(4, 3, name="branch", pads=[1, 1, 1, 1])
    g.nodes.append(helper.make_node("Add", [g.current, skip], ["res"], name="residual_add"))
    g.current = "res"
    w = numpy_helper.from_array(np.zeros((8, 2, 3, 3), np.float32), "gw")
    g.inits.append(w)
    g.node("Conv", ["gw"], "grouped", group=2, pads=[1, 1, 1, 1])
    g.node("LRN", [], "lrn", size=3)
    g.node("Relu", [], "relu")
    g.batchnorm(8, name="bn_after_relu")
    g.node("Transpose", [], "nhwc", perm=[0, 2, 3, 1])
    g.features = 8
    with pytest.raises(UnsupportedGraphError) as info:
        load_onnx(g.model(), model_id="bad")
    problems = {(name, op) for name, op, _ in info.value.problems}
    assert problems == {
        ("'residual_add'", "Add"), ("'grouped'", "Conv"), ("'lrn'", "LRN"),
        ("'bn_after_relu'", "BatchNormalization"), ("'nhwc'", "Transpose"),
    }  # fmt: skip
    message = str(info.value)
    assert message.startswith("cannot import this graph: 5 nodes cannot be converted")
    assert "'residual_add' (Add): combines the computed tensors" in message
    assert "'grouped' (Conv): grouped convolution (group=2)" in message
    assert "'lrn' (LRN): operator not supported" in message
    assert "'bn_after_relu' (BatchNormalization): BatchNormalization after Relu 'relu'" in message
    assert "Supported operators on the image's path: Conv, Relu" in message


def test_a_branch_that_reads_a_tensor_twice_is_refused():
    g = GraphBuilder((1, 4, 4))
    g.conv(2, 3, name="a", pads=[1, 1, 1, 1])
    shared = g.current
    g.node("Relu", [], "left")
    g.nodes.append(helper.make_node("Sigmoid", [shared], ["right_out"], name="right"))
    g.spatial(4, 4)
    g.flatten("flat")
    g.features = 32
    with pytest.raises(UnsupportedGraphError) as info:
        load_onnx(g.model(), model_id="branch")
    assert [(n, op) for n, op, _ in info.value.problems][0] == ("'right'", "Sigmoid")
    assert "the graph branches" in str(info.value)


def _pooled(count_include_pad: int, pads: list[int]):
    g = GraphBuilder((1, 6, 6))
    g.node("AveragePool", [], "avg", kernel_shape=[3, 3], strides=[3, 3], pads=pads,
           count_include_pad=count_include_pad)  # fmt: skip
    g.spatial(2 if not any(pads) else 3, 2 if not any(pads) else 3)
    g.flatten("flat")
    return g


def test_average_pool_count_include_pad_zero_with_padding_is_refused_clearly():
    g = _pooled(0, [1, 1, 1, 1])
    with pytest.raises(UnsupportedGraphError, match=r"'avg' \(AveragePool\): count_include_pad=0 "
                       r"with padding \(1, 1, 1, 1\)"):  # fmt: skip
        load_onnx(g.model(), model_id="avg")
    # Without padding the attribute changes nothing: accepted and equal to onnxruntime.
    proto = _pooled(0, [0, 0, 0, 0]).model()
    assert_matches_ort(proto, load_onnx(proto, model_id="avg"))


def test_dynamic_spatial_size_needs_input_size():
    g = GraphBuilder((3, 8, 8))
    g.input = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    g.conv(2, 3, pads=[1, 1, 1, 1])
    g.node("GlobalAveragePool")
    g.flatten()
    g.features = 2
    with pytest.raises(OnnxImportError, match=r"dynamic height \('H'\).*input_size=\(H, W\)"):
        load_onnx(g.model(), model_id="dyn")
    model = load_onnx(g.model(), model_id="dyn", input_size=(10, 12))
    assert model.input_spec.shape == (3, 10, 12)
    assert model.layers[1].kernel == (10, 12)


def test_external_data_is_refused_in_bytes_and_never_read(tmp_path):
    g = GraphBuilder((1, 4, 4))
    g.conv(2, 3)
    g.spatial(2, 2)
    g.flatten()
    proto = g.model()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(18, dtype=np.float32).tobytes())
    weight = proto.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", str(secret)), ("offset", "0"), ("length", "72")):
        weight.external_data.add(key=key, value=value)
    with pytest.raises(OnnxImportError, match="external data files .*self-contained"):
        load_onnx(proto.SerializeToString(), model_id="ext")
    # From a file on disk, an absolute location outside the model's folder is refused by onnx.
    path = tmp_path / "model" / "m.onnx"
    path.parent.mkdir()
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(OnnxImportError, match="external data"):
        load_onnx(path, model_id="ext")
    # A file whose weights sit beside it (as big exports do) imports from disk.
    good = g.model()
    weight = numpy_helper.to_array(good.graph.initializer[0])  # saving moves it out of `good`
    kept = tmp_path / "kept" / "m.onnx"
    kept.parent.mkdir()
    onnx.save_model(good, str(kept), save_as_external_data=True, location="w.bin", size_threshold=0)
    assert (kept.parent / "w.bin").is_file()
    model = load_onnx(kept, model_id="ext")
    assert np.array_equal(model.layers[0].params["weight"], weight)
    with pytest.raises(OnnxImportError, match="self-contained"):
        load_onnx(kept.read_bytes(), model_id="ext")


def test_corrupt_oversized_invalid_and_multi_input_files_are_refused(tmp_path):
    with pytest.raises(OnnxImportError, match="not an ONNX model"):
        load_onnx(b"\x08\x07\x12\xff\xff\xff\xff\x0fgarbage", model_id="x")
    with pytest.raises(OnnxImportError, match="the ONNX checker rejected the model"):
        load_onnx(b"", model_id="x")  # an empty protobuf message: parses, but is no model
    proto = export_onnx(zoo.load("lenet5"))
    data = proto.SerializeToString()
    with pytest.raises(OnnxImportError, match=f"{len(data):,} bytes, more than the limit of 1,000"):
        load_onnx(data, model_id="x", max_bytes=1000)
    broken = onnx.ModelProto()
    broken.CopyFrom(proto)
    broken.graph.node[0].input[1] = "nowhere"  # an undefined tensor
    with pytest.raises(OnnxImportError, match="checker rejected"):
        load_onnx(broken, model_id="x")
    two = onnx.ModelProto()
    two.CopyFrom(proto)
    two.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 4]))
    with pytest.raises(OnnxImportError, match=r"2 inputs \(input, extra\)"):
        load_onnx(two, model_id="x")
    (tmp_path / "x.onnx").write_bytes(b"\x00" * 10)
    with pytest.raises(OnnxImportError, match="x.onnx"):
        load_onnx(tmp_path / "x.onnx", model_id="x")


def test_class_names_mean_and_std_are_checked():
    proto = export_onnx(zoo.load("lenet5"))
    model = load_onnx(proto, model_id="d", classes=list("abcdefghij"), mean=[0.5], std=[0.25])
    assert model.classes[:3] == ["a", "b", "c"] and model.input_spec.mean == [0.5]
    with pytest.raises(OnnxImportError, match="3 class names given, but the model has 10 outputs"):
        load_onnx(proto, model_id="d", classes=["a", "b", "c"])
    with pytest.raises(OnnxImportError, match="mean needs 1 value, got 3"):
        load_onnx(proto, model_id="d", mean=[0.1, 0.2, 0.3])
    with pytest.raises(OnnxImportError, match="std values must be positive"):
        load_onnx(proto, model_id="d", std=[0.0])
    unnamed = zoo.load("lenet5")
    unnamed.classes = []
    assert load_onnx(export_onnx(unnamed), model_id="d").classes == [str(i) for i in range(10)]


def test_ceil_mode_pooling_matches_onnxruntime_or_is_refused_clearly():
    g = GraphBuilder((2, 3, 8))
    # Height: ceil mode would start a window in the bottom padding, which onnxruntime
    # drops (as PyTorch does); width: one more window, from -inf padding at the right.
    g.node("MaxPool", [], "ceil", kernel_shape=[2, 3], strides=[2, 2], pads=[1, 0, 1, 0],
           ceil_mode=1)  # fmt: skip
    g.node("AveragePool", [], "ceil_avg", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    g.spatial(1, 2)
    g.flatten("flat")
    proto = g.model()
    model = load_onnx(proto, model_id="ceil")
    assert model.shapes()[:2] == [(2, 2, 4), (2, 1, 2)]
    assert model.layer("ceil").padding == [1, 1, 0, 1]
    assert_matches_ort(proto, model)
    g = GraphBuilder((2, 3, 6))
    g.node("MaxPool", [], "wide", kernel_shape=[2, 3], strides=[2, 2], pads=[1, 1, 1, 1],
           ceil_mode=1)  # fmt: skip
    g.spatial(2, 4)
    g.flatten("flat")
    with pytest.raises(UnsupportedGraphError, match=r"'wide' \(MaxPool\): ceil_mode=1 needs "
                       r"padding \(1, 1, 1, 2\)"):  # fmt: skip
        load_onnx(g.model(), model_id="wide")
    g = GraphBuilder((2, 5, 5))
    g.node("AveragePool", [], "avg", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    g.spatial(3, 3)
    g.flatten("flat")
    with pytest.raises(UnsupportedGraphError, match="makes the output 3 instead of 2"):
        load_onnx(g.model(), model_id="avg")
