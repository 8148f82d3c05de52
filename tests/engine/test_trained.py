"""The shipped models are trained: they load, they classify the committed test subsets
above a floor a little below their full-test-set accuracy, and they recognise the
page samples. Everything here reads only files in the repository."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import zoo
from engine.data import read_npz
from engine.preprocess import open_image, prepare
from engine.train import evaluate

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "static" / "samples"

# Floors on the 500-image subsets: the full-set accuracy (docs/models.md) less a margin
# for the sampling error of 500 images (about 2 standard errors).
FLOORS = {"tiny-vgg": ("cifar10_test_500.npz", 0.76), "lenet5": ("mnist_test_500.npz", 0.98)}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_model_ships_trained_weights_with_its_record(name):
    assert zoo.weights_path(name).exists(), f"{name}: trained weights missing from engine/zoo"
    model = zoo.load(name)
    assert model.meta["trained"] is True
    assert model.meta["test_count"] == 10_000
    assert model.meta["test_accuracy"] >= (0.80 if name == "tiny-vgg" else 0.99)
    assert "convscope train" in model.meta["train_command"]
    assert zoo.weights_path(name).stat().st_size < 4 * 2**20  # "a few MB at most"


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_accuracy_on_committed_subset_is_above_floor(name):
    file, floor = FLOORS[name]
    data = read_npz(ROOT / "tests" / "data" / file)
    assert len(data) == 500
    result = evaluate(zoo.load(name), data)
    assert result["count"] == 500
    assert result["accuracy"] >= floor, f"{name}: {result['accuracy']:.3f} < floor {floor}"


def test_vgg16_is_untrained_and_says_so():
    model = zoo.build("vgg16")  # the same architecture and weights that zoo.load returns
    assert model.meta["trained"] is False
    assert "random" in model.meta["description"] or "untrained" in model.meta["title"].lower()


def test_page_samples_are_recognised():
    """A forward pass on every sample image, through the same preprocessing as an upload."""
    manifest = json.loads((SAMPLES / "manifest.json").read_text())["samples"]
    models = {"cifar10": zoo.load("tiny-vgg"), "mnist": zoo.load("lenet5")}
    correct = []
    for sample in manifest:
        model = models[sample["dataset"]]
        image = open_image((SAMPLES / sample["file"]).read_bytes())
        scores = model.predict(prepare(image, model)[None])[0]
        correct.append(int(np.argmax(scores)) == sample["label_index"])
    assert len(correct) == 40
    assert np.mean(correct) >= 0.8, f"{sum(correct)} of {len(correct)} samples recognised"


def test_lenet5_first_layer_kernels_are_smooth_strokes_not_noise():
    """LeNet-5's trained 5x5 kernels are smooth stroke detectors: neighbouring weights
    correlate (about 0.46), unlike He noise (about 0.1). (tiny-vgg's 3x3 kernels are edge
    and colour detectors, where neighbours often have opposite signs: no such test.)"""

    def neighbour_correlation(w: np.ndarray) -> float:
        a, b = w[..., :, :-1].ravel(), w[..., :, 1:].ravel()
        return float(np.corrcoef(a, b)[0, 1])

    trained = zoo.load("lenet5").layers[0].params["weight"]
    untrained = zoo.build("lenet5").layers[0].params["weight"]
    assert neighbour_correlation(trained) > neighbour_correlation(untrained) + 0.2


def test_sample_files_are_images_of_the_input_size():
    for png in SAMPLES.glob("cifar10-*.png"):
        with Image.open(png) as im:
            assert im.size == (32, 32)
