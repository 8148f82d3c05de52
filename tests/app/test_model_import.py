"""Imported models in the app: `convscope import` into a models directory served at startup,
`convscope export`, and POST /api/v1/models with its refusals (the server keeps serving)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto  # noqa: E402

from app.cli import main  # noqa: E402
from app.schemas import ModelDetail, ModelList, ModelSummary  # noqa: E402
from engine import preprocess, zoo  # noqa: E402
from engine.model import Sequential  # noqa: E402
from engine.onnx_io import export_onnx  # noqa: E402

from ..engine.onnx_graphs import GraphBuilder, run_ort, vgg16_graph  # noqa: E402
from .conftest import API, encode, photo, upload  # noqa: E402

BUILT_IN = ["tiny-vgg", "lenet5", "vgg16"]
NAMES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def small_vgg_file(tmp_path_factory):
    """A VGG-16-shaped ONNX file at 32x32 with narrow layers, and a class-names file."""
    folder = tmp_path_factory.mktemp("onnx")
    path = folder / "small-vgg.onnx"
    proto = vgg16_graph(size=32, widths=(4, 8, 8, 16, 16), fc=24, classes=10, seed=3)
    path.write_bytes(proto.SerializeToString())
    names = folder / "classes.txt"
    names.write_text("\n".join(NAMES) + "\n")
    return path, names


@pytest.fixture(scope="module")
def lenet_onnx() -> bytes:
    return export_onnx(zoo.load("lenet5")).SerializeToString()


def _import(path, names, models_dir, model_id="small-vgg", *extra) -> int:
    return main(
        ["import", str(path), "--id", model_id, "--classes", str(names), "--models-dir",
         str(models_dir), "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25",
         "--title", "Small VGG", "--softmax", *extra]
    )  # fmt: skip


def test_cli_import_then_the_server_serves_it_like_a_built_in_model(
    small_vgg_file, tmp_path, make_client, capsys
):
    path, names = small_vgg_file
    models_dir = tmp_path / "models"
    assert _import(path, names, models_dir) == 0
    out = capsys.readouterr().out
    assert "imported" in out and "38 layers" in out and "CONVSCOPE_MODELS_DIR=" in out
    assert (models_dir / "small-vgg.json").is_file() and (models_dir / "small-vgg.npz").is_file()
    # A second import under the same id needs --force.
    assert _import(path, names, models_dir) == 2
    assert "exists; pass --force" in capsys.readouterr().err

    client = make_client(models_dir=models_dir)
    listing = client.get(f"{API}/models")
    assert listing.status_code == 200
    body = ModelList.model_validate(listing.json())
    assert [m.id for m in body.models] == [*BUILT_IN, "small-vgg"]
    summary = listing.json()["models"][-1]
    assert summary["name"] == "Small VGG" and summary["classes"] == NAMES
    assert summary["input"] == {
        "channels": 3, "height": 32, "width": 32, "mean": [0.5] * 3, "std": [0.25] * 3,
    }  # fmt: skip
    saved = Sequential.load(models_dir / "small-vgg")
    assert summary["params"] == saved.param_count and summary["trained"] is True
    detail = ModelDetail.model_validate(client.get(f"{API}/models/small-vgg").json())
    assert detail.layers[0].name == "features_features.0_Conv"
    assert detail.layers[-1].kind == "softmax"

    image = photo(40, 30, seed=4)
    run = client.post(f"{API}/models/small-vgg/runs", **upload(encode(image)))
    assert run.status_code == 201, run.text
    predictions = run.json()["predictions"]
    x = preprocess.prepare(image, saved)
    expected = saved.predict(x[None])[0]
    top = int(np.argmax(expected))
    assert predictions[0]["class"] == NAMES[top]
    assert predictions[0]["probability"] == pytest.approx(float(expected[top]), rel=1e-5)
    page = client.get("/models/small-vgg/architecture")
    assert page.status_code == 200 and "features_features.0_Conv" in page.text
    run_id = run.json()["run_id"]
    conv = "features_features.0_Conv"
    assert client.get(f"/runs/{run_id}").status_code == 200
    assert client.get(f"/runs/{run_id}/layers/{conv}").status_code == 200
    cell = client.get(f"{API}/runs/{run_id}/layers/{conv}/explain?channel=1&y=0&x=5")
    assert cell.status_code == 200, cell.text
    assert cell.json()["value"] == pytest.approx(cell.json()["activation"], rel=1e-5, abs=1e-6)


def test_a_broken_models_directory_entry_is_skipped_and_the_rest_served(
    small_vgg_file, tmp_path, make_client, caplog
):
    path, names = small_vgg_file
    models_dir = tmp_path / "models"
    assert _import(path, names, models_dir, "good") == 0
    (models_dir / "garbage.json").write_text("{not json")
    (models_dir / "Bad Id.json").write_text((models_dir / "good.json").read_text())
    (models_dir / "no-weights.json").write_text((models_dir / "good.json").read_text())
    arch = json.loads((models_dir / "good.json").read_text())
    arch["layers"][0]["out_channels"] = 5  # weights no longer fit
    (models_dir / "mismatch.json").write_text(json.dumps(arch))
    (models_dir / "mismatch.npz").write_bytes((models_dir / "good.npz").read_bytes())
    client = make_client(models_dir=models_dir)
    ids = [m["id"] for m in client.get(f"{API}/models").json()["models"]]
    assert ids == [*BUILT_IN, "good"]
    skipped = " ".join(r.getMessage() for r in caplog.records if "skipping" in r.getMessage())
    for name in ("garbage.json", "Bad Id.json", "no-weights.json", "mismatch.json"):
        assert name in skipped
    run = client.post(f"{API}/models/tiny-vgg/runs", **upload(encode(photo())))
    assert run.status_code == 201


def test_cli_export_writes_a_model_onnxruntime_runs(small_vgg_file, tmp_path, capsys):
    out = tmp_path / "lenet5.onnx"
    assert main(["export", "lenet5", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    model = zoo.load("lenet5")
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    import onnx

    result = run_ort(onnx.load(str(out)), x, ["softmax"])["softmax"]
    np.testing.assert_allclose(result, model.predict(x), rtol=1e-4, atol=1e-6)
    # An imported model is exported by its id in the models directory.
    path, names = small_vgg_file
    assert _import(path, names, tmp_path / "models") == 0
    again = tmp_path / "again.onnx"
    assert main(["export", "small-vgg", str(again), "--models-dir", str(tmp_path / "models")]) == 0
    assert main(["export", "nothing", str(again)]) == 2
    assert "no model 'nothing'" in capsys.readouterr().err


# --------------------------------------------------------------------------------- uploads


def _form(data: bytes, model_id: str = "digits", **fields) -> dict:
    return {
        "files": {"model": ("model.onnx", data, "application/octet-stream")},
        "data": {"id": model_id, **fields},
    }


def test_uploads_are_off_by_default(client, lenet_onnx):
    response = client.post(f"{API}/models", **_form(lenet_onnx))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "model_upload_disabled"
    assert "CONVSCOPE_ALLOW_MODEL_UPLOAD" in response.json()["error"]["message"]


def test_an_uploaded_model_is_served_at_once(make_client, lenet_onnx):
    client = make_client(allow_model_upload=True, max_model_bytes=1 << 20)
    classes = "\n".join(f"digit {d}" for d in range(10))
    response = client.post(
        f"{API}/models",
        **_form(lenet_onnx, classes=classes, mean="0.2", std="0.4", preprocess="digit"),
    )
    assert response.status_code == 201, response.text
    summary = ModelSummary.model_validate(response.json())
    assert summary.id == "digits" and summary.classes[3] == "digit 3"
    assert summary.input.mean == [0.2] and summary.preprocess == "digit"
    assert summary.params == zoo.load("lenet5").param_count
    ids = [m["id"] for m in client.get(f"{API}/models").json()["models"]]
    assert ids == [*BUILT_IN, "digits"]
    from PIL import Image

    digit = Image.new("L", (40, 40), 0)
    digit.paste(255, (18, 8, 23, 32))
    run = client.post(f"{API}/models/digits/runs", **upload(encode(digit)))
    assert run.status_code == 201, run.text
    assert len(run.json()["predictions"]) == 10
    again = client.post(f"{API}/models", **_form(lenet_onnx))
    assert again.status_code == 409 and again.json()["error"]["code"] == "model_exists"
    taken = client.post(f"{API}/models", **_form(lenet_onnx, model_id="lenet5"))
    assert taken.status_code == 409


def _external_data_model(lenet_onnx: bytes) -> bytes:
    import onnx

    proto = onnx.load_model_from_string(lenet_onnx)
    weight = proto.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="/etc/hostname")
    return proto.SerializeToString()


def _unsupported_model() -> bytes:
    g = GraphBuilder((3, 8, 8))
    g.conv(4, 3, name="stem", pads=[1, 1, 1, 1])
    g.node("LRN", [], "norm", size=3)
    g.node("Conv", [g.const("gw", np.zeros((4, 2, 1, 1), np.float32))], "grouped", group=2)
    g.node("GlobalAveragePool", [], "gap")
    g.flatten("flat")
    g.features = 4
    return g.model().SerializeToString()


def test_bad_uploads_are_refused_and_the_server_keeps_serving(make_client, lenet_onnx):
    client = make_client(allow_model_upload=True, max_model_bytes=len(lenet_onnx) + 100)
    before = client.get(f"{API}/models").json()
    cases = [
        (_form(b"\x08\x07\x12\xff\xff\xff\xff\x0fgarbage"), 422, "invalid_model", "not an ONNX"),
        (_form(b"x" * (len(lenet_onnx) + 200)), 413, "model_too_large", "MAX_MODEL_BYTES"),
        (_form(_external_data_model(lenet_onnx)), 422, "invalid_model", "external data"),
        (_form(_unsupported_model()), 422, "unsupported_graph", "'norm' (LRN)"),
        (_form(lenet_onnx, model_id="Bad Id"), 422, "invalid_id", "must be 1-64 characters"),
        (_form(lenet_onnx, model_id="v.1"), 422, "invalid_id", "a-z, 0-9, '_' or '-'"),
        (_form(lenet_onnx, classes="a\nb"), 422, "invalid_model", "2 class names given"),
        (_form(lenet_onnx, mean="zero"), 422, "invalid_form", "mean must be numbers"),
        ({"files": {"weights": ("w.bin", b"1")}, "data": {"id": "x"}}, 422, "invalid_form",
         "no file 'model'"),
        ({"content": lenet_onnx, "headers": {"content-type": "application/octet-stream"}},
         415, "unsupported_media_type", "multipart/form-data"),
    ]  # fmt: skip
    for request, status, code, text in cases:
        response = client.post(f"{API}/models", **request)
        assert response.status_code == status, (code, response.text)
        error = response.json()["error"]
        assert error["code"] == code and text in error["message"], error
    unsupported = client.post(f"{API}/models", **_form(_unsupported_model()))
    assert [p[:2] for p in unsupported.json()["error"]["problems"]] == [
        ["'norm'", "LRN"], ["'grouped'", "Conv"],
    ]  # fmt: skip
    assert client.get(f"{API}/models").json() == before
    run = client.post(f"{API}/models/tiny-vgg/runs", **upload(encode(photo())))
    assert run.status_code == 201


def test_the_number_of_uploaded_models_is_limited(make_client, lenet_onnx):
    client = make_client(allow_model_upload=True, max_uploaded_models=1)
    assert client.post(f"{API}/models", **_form(lenet_onnx, model_id="one")).status_code == 201
    second = client.post(f"{API}/models", **_form(lenet_onnx, model_id="two"))
    assert second.status_code == 403 and second.json()["error"]["code"] == "too_many_models"
