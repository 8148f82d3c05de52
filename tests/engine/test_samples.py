"""The committed test-set subsets (tests/data) and page samples (static/samples) agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import zoo

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "static" / "samples"
DATA = ROOT / "tests" / "data"
# dataset -> (subset file, class names, image shape in the subset and the PNG, PNG mode)
DATASETS = {
    "cifar10": ("cifar10_test_500.npz", zoo.CIFAR10_CLASSES, (32, 32, 3), "RGB"),
    "mnist": ("mnist_test_500.npz", [str(d) for d in range(10)], (28, 28), "L"),
}
TEST_SET_SIZE = 10_000


def manifest() -> list[dict]:
    return json.loads((SAMPLES / "manifest.json").read_text())["samples"]


def subset(dataset: str):
    return np.load(DATA / DATASETS[dataset][0])


@pytest.mark.parametrize("dataset", DATASETS)
def test_subset_has_50_test_images_per_class(dataset):
    data = subset(dataset)
    _, names, shape, _ = DATASETS[dataset]
    assert data["images"].dtype == np.uint8 and data["images"].shape == (500, *shape)
    assert data["class_names"].tolist() == names
    assert np.bincount(data["labels"], minlength=10).tolist() == [50] * 10
    indices = data["indices"]
    assert len(np.unique(indices)) == 500
    assert indices.min() >= 0 and indices.max() < TEST_SET_SIZE
    assert data["images"].std() > 20  # real pictures, not blanks


def test_mnist_subset_is_white_digits_on_black():
    images = subset("mnist")["images"]
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]])
    assert border.mean() < 1 and images.max(axis=(1, 2)).min() > 200


def test_manifest_lists_two_samples_per_class_with_valid_fields():
    samples = manifest()
    ids = [s["id"] for s in samples]
    assert len(ids) == len(set(ids)) == 40
    for s in samples:
        assert set(s) == {"id", "dataset", "label", "label_index", "file", "source_index"}
        assert re.fullmatch(r"[a-z0-9-]+", s["id"]), s["id"]
        assert s["file"] == f"{s['id']}.png"
        names = DATASETS[s["dataset"]][1]
        assert names[s["label_index"]] == s["label"]
        assert re.fullmatch(rf"{s['dataset']}-{s['label']}-[12]", s["id"])
        assert 0 <= s["source_index"] < TEST_SET_SIZE
    for dataset, (_, names, _, _) in DATASETS.items():
        labels = [s["label_index"] for s in samples if s["dataset"] == dataset]
        assert np.bincount(labels, minlength=len(names)).tolist() == [2] * len(names)


def test_every_sample_file_decodes_to_its_test_set_pixels():
    for s in manifest():
        _, _, shape, mode = DATASETS[s["dataset"]]
        path = SAMPLES / s["file"]
        assert path.is_file(), path
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode == mode
            pixels = np.asarray(image)
        assert pixels.shape == shape
        # Samples are drawn from the committed subset: same index, same label, same pixels.
        data = subset(s["dataset"])
        where = np.flatnonzero(data["indices"] == s["source_index"])
        assert len(where) == 1, s["id"]
        assert data["labels"][where[0]] == s["label_index"]
        np.testing.assert_array_equal(pixels, data["images"][where[0]])


def test_no_stray_files_in_samples():
    listed = {s["file"] for s in manifest()} | {"manifest.json"}
    assert {p.name for p in SAMPLES.iterdir()} == listed


SHARED = ROOT.parent / "shared" / "datasets"


@pytest.mark.skipif(
    not SHARED.is_dir(), reason="the full test sets (../shared/datasets) are absent"
)
@pytest.mark.parametrize("dataset", DATASETS)
def test_subset_pixels_are_the_full_test_set_pixels(dataset):
    import io

    part = subset(dataset)
    full = np.load(SHARED / f"{dataset}_test.npz")
    indices = part["indices"]
    np.testing.assert_array_equal(part["labels"], full["labels"][indices])
    if "images" in full.files:
        np.testing.assert_array_equal(part["images"], full["images"][indices])
        return
    buf, offsets = full["jpeg"], full["offsets"]
    for i, index in enumerate(indices[::10]):
        jpeg = buf[offsets[index] : offsets[index + 1]].tobytes()
        with Image.open(io.BytesIO(jpeg)) as image:
            np.testing.assert_array_equal(np.asarray(image.convert("RGB")), part["images"][10 * i])
