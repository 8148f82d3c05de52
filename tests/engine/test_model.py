"""engine.model: Sequential structure, forward Trace, summary, and model files."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest

from engine import ops
from engine.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Softmax
from engine.model import FORMAT_VERSION, InputSpec, ModelFileError, Sequential


def _model(seed: int = 0) -> Sequential:
    layers = [
        Conv2d("conv1", 3, 4, 3, padding=1),
        ReLU("relu1"),
        MaxPool2d("pool1", 2),
        Flatten("flatten"),
        Linear("fc1", 4 * 4 * 4, 5),
        Softmax("softmax"),
    ]
    spec = InputSpec(3, 8, 8, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3])
    classes = ["猫", "dog", "bird", "ship", "frog"]  # non-ASCII names survive the JSON
    return Sequential(layers, spec, "small", classes, {"title": "Small", "trained": False}).init(
        seed
    )


def _input(n: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 8, 8)).astype(np.float32)


# ------------------------------------------------------------------------- structure


def test_duplicate_layer_names_are_rejected():
    with pytest.raises(ValueError, match="layer names must be unique, repeated: relu"):
        Sequential([ReLU("relu"), Flatten("flatten"), ReLU("relu")], InputSpec(1, 2, 2))


def test_input_is_a_reserved_layer_name():
    with pytest.raises(ValueError, match="'input' is reserved"):
        Sequential([ReLU("input")], InputSpec(1, 2, 2))


def test_layers_that_do_not_fit_are_rejected_at_construction():
    with pytest.raises(ValueError, match=r"fc1: expects 65 input features, got shape \(64,\)"):
        Sequential([Flatten("flatten"), Linear("fc1", 65, 2)], InputSpec(4, 4, 4))


def test_lookup_helpers():
    model = _model()
    assert model.index("pool1") == 2
    assert model.input_of("conv1") == "input" and model.input_of("fc1") == "flatten"
    assert model.layer("fc1").kind == "linear"
    with pytest.raises(KeyError, match="no layer 'fc9'"):
        model.layer("fc9")


def test_shapes_describe_and_summary():
    model = _model()
    assert model.shapes() == [(4, 8, 8), (4, 8, 8), (4, 4, 4), (64,), (5,), (5,)]
    described = model.describe()
    assert [d["index"] for d in described] == list(range(6))
    assert [d["input_shape"] for d in described][:2] == [[3, 8, 8], [4, 8, 8]]
    assert model.param_count == (4 * 3 * 9 + 4) + (64 * 5 + 5) == 437
    assert model.macs == 8 * 8 * 4 * 3 * 9 + 64 * 5
    text = model.summary()
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "kind", "output", "(C,", "H,", "W)", "params", "MACs"]
    assert lines[1].split() == ["conv1", "conv2d", "4", "x", "8", "x", "8", "112", "6,912"]
    assert lines[-1].split() == ["total", "437", "7,232"]


# --------------------------------------------------------------------------- running


def test_forward_keeps_every_output_in_order():
    model = _model()
    x = _input()
    trace = model.forward(x)
    assert list(trace) == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(trace.input, x)
    np.testing.assert_array_equal(trace["input"], x)
    h = x
    for layer in model.layers:
        h = layer.forward(h)
        np.testing.assert_array_equal(trace[layer.name], h)
        assert trace[layer.name].dtype == np.float32
    np.testing.assert_array_equal(trace.output, trace["softmax"])
    np.testing.assert_array_equal(trace.logits, trace["fc1"])
    np.testing.assert_allclose(trace.output.sum(axis=1), 1.0, rtol=1e-6)
    assert trace.nbytes == x.nbytes + sum(a.nbytes for a in trace.outputs.values())
    np.testing.assert_array_equal(model.predict(x), trace.output)


def test_forward_until_stops_early():
    trace = _model().forward(_input(), until="pool1")
    assert list(trace) == ["conv1", "relu1", "pool1"]


def test_conv_relu_pairs_are_computed_together_but_kept_apart():
    """Inference computes a convolution and the ReLU after it in one pass (conv2d_relu): the
    trace still holds two separate arrays, equal to running the layers one by one, and it
    stops at the convolution when asked to."""
    model = _model()
    x = _input()
    with mock.patch.object(ops, "conv2d_relu", wraps=ops.conv2d_relu) as fused:
        trace = model.forward(x)
        assert fused.call_count == 1
        conv, relu = trace["conv1"], trace["relu1"]
        assert not np.shares_memory(conv, relu)
        np.testing.assert_array_equal(conv, model.layer("conv1").forward(x))
        np.testing.assert_array_equal(relu, np.maximum(conv, 0))
        assert (conv < 0).any()  # the ReLU did clip something, in its own array
        fused.reset_mock()
        assert list(model.forward(x, until="conv1")) == ["conv1"]
        assert fused.call_count == 0
        training = model.forward(x, training=True)  # training runs the layers one by one
        assert fused.call_count == 0
    np.testing.assert_array_equal(training["relu1"], relu)
    model.forward(x)  # an inference pass forgets the training caches, the fused ReLU's too
    with pytest.raises(RuntimeError, match="relu1: backward needs a forward pass"):
        model.layer("relu1").backward(np.ones_like(relu))


def test_forward_rejects_the_wrong_input_shape():
    with pytest.raises(
        ValueError, match=r"small: input must be \(N, 3, 8, 8\), got shape \(2, 3, 8, 9\)"
    ):
        _model().forward(np.zeros((2, 3, 8, 9), np.float32))


def test_explain_reads_the_trace_of_the_chosen_image():
    model = _model()
    trace = model.forward(_input(3))
    for image in range(3):
        for name, cell in [
            ("conv1", (2, 7, 0)),
            ("pool1", (1, 3, 2)),
            ("fc1", (4,)),
            ("softmax", (0,)),
        ]:
            info = model.explain(trace, name, cell, image=image)
            assert info["activation"] == float(trace[name][image][cell])
            assert abs(info["value"] - info["activation"]) <= 1e-6 + 1e-5 * abs(info["activation"])


# ----------------------------------------------------------------------------- files


def test_save_and_load_round_trip(tmp_path):
    model = _model(seed=4)
    json_path, npz_path = model.save(tmp_path / "nested" / "small")
    assert (json_path.name, npz_path.name) == ("small.json", "small.npz")
    arch = json.loads(json_path.read_text(encoding="utf-8"))
    assert arch["format_version"] == FORMAT_VERSION
    assert arch["classes"][0] == "猫"
    with np.load(npz_path) as data:
        assert sorted(data.files) == ["conv1.bias", "conv1.weight", "fc1.bias", "fc1.weight"]

    loaded = Sequential.load(tmp_path / "nested" / "small.json")
    assert loaded.architecture() == model.architecture()
    assert loaded.input_spec == model.input_spec and loaded.classes == model.classes
    assert loaded.meta == model.meta and loaded.name == "small"
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)
    x = _input()
    np.testing.assert_array_equal(loaded.forward(x).output, model.forward(x).output)
    # Architecture only: the layers, with zero weights.
    bare = Sequential.load(tmp_path / "nested" / "small", weights=False)
    assert bare.architecture() == model.architecture()
    assert not bare.state_dict()["fc1.weight"].any()


@pytest.mark.parametrize("version", [None, 0, 2, "1"])
def test_unsupported_format_version_fails(tmp_path, version):
    json_path, _ = _model().save(tmp_path / "m")
    arch = json.loads(json_path.read_text())
    if version is None:
        del arch["format_version"]
    else:
        arch["format_version"] = version
    json_path.write_text(json.dumps(arch))
    with pytest.raises(ModelFileError, match=f"format_version {version!r} is not supported"):
        Sequential.load(json_path)


def test_weights_of_the_wrong_shape_fail_naming_parameter_and_shapes(tmp_path):
    json_path, npz_path = _model().save(tmp_path / "m")
    state = _model().state_dict()
    state["fc1.weight"] = np.zeros((5, 63), np.float32)
    np.savez(npz_path, **state)
    with pytest.raises(ModelFileError) as error:
        Sequential.load(json_path)
    message = str(error.value)
    for word in ["m.npz", "fc1.weight", "(5, 63)", "(5, 64)"]:
        assert word in message, message


def test_architecture_that_disagrees_with_its_weights_fails(tmp_path):
    """Editing the JSON (more kernels) without new weights: the npz no longer fits."""
    json_path, _ = _model().save(tmp_path / "m")
    arch = json.loads(json_path.read_text())
    arch["layers"][0]["out_channels"] = 6
    arch["layers"][4]["in_features"] = 96
    json_path.write_text(json.dumps(arch))
    with pytest.raises(
        ModelFileError,
        match=r"conv1.weight has shape \(4, 3, 3, 3\) but the architecture needs \(6, 3, 3, 3\)",
    ):
        Sequential.load(json_path)


def test_missing_and_unexpected_weights_are_named(tmp_path):
    json_path, npz_path = _model().save(tmp_path / "m")
    state = _model().state_dict()
    del state["conv1.bias"]
    state["conv2.weight"] = np.zeros(3, np.float32)
    np.savez(npz_path, **state)
    with pytest.raises(ModelFileError, match="missing: conv1.bias; unexpected: conv2.weight"):
        Sequential.load(json_path)


def test_missing_or_broken_files(tmp_path):
    with pytest.raises(ModelFileError, match="architecture file not found"):
        Sequential.load(tmp_path / "absent")
    json_path, npz_path = _model().save(tmp_path / "m")
    npz_path.unlink()
    with pytest.raises(ModelFileError, match="m.npz: weights file not found"):
        Sequential.load(json_path)
    json_path.write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        Sequential.load(json_path)
    json_path.write_text(json.dumps({"format_version": FORMAT_VERSION, "input": {"channels": 1}}))
    with pytest.raises(ModelFileError, match="invalid architecture"):
        Sequential.load(json_path, weights=False)


def test_logits_layer_is_found_by_kind_not_by_name():
    layers = [Flatten("flat"), Linear("scores", 4, 3), Softmax("probabilities")]
    model = Sequential(layers, InputSpec(1, 2, 2), "renamed")
    model.init(0)
    assert model.logits_layer == "scores"
    trace = model.forward(np.ones((1, 1, 2, 2), np.float32))
    np.testing.assert_array_equal(trace.logits, trace["scores"])
    without_softmax = Sequential(layers[:2], InputSpec(1, 2, 2), "no-softmax")
    assert without_softmax.logits_layer == "scores"
