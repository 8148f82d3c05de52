"""engine.train on a tiny synthetic dataset: it learns, it resumes exactly, its schedule."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from engine.data import Dataset
from engine.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Softmax
from engine.model import InputSpec, Sequential
from engine.train import TrainConfig, augment, evaluate, learning_rate, to_input, train

CLASSES = ["horizontal", "vertical", "diagonal"]


def _bars(n: int, seed: int) -> Dataset:
    """8x8 grey images of a bright bar (row, column or diagonal) on a noisy dark background."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 1, 8, 8)).astype(np.uint8)
    for i, label in enumerate(labels):
        k = rng.integers(1, 7)
        if label == 0:
            images[i, 0, k, :] = 220
        elif label == 1:
            images[i, 0, :, k] = 220
        else:
            images[i, 0, np.arange(8), (np.arange(8) + k) % 8] = 220
    return Dataset(images, labels, CLASSES, f"bars(seed={seed})")


def _model(seed: int = 0) -> Sequential:
    layers = [
        Conv2d("conv1", 1, 6, 3, padding=1),
        ReLU("relu1"),
        MaxPool2d("pool1", 2),
        Flatten("flatten"),
        Linear("fc1", 6 * 4 * 4, 3),
        Softmax("softmax"),
    ]
    return Sequential(layers, InputSpec(1, 8, 8, [0.3], [0.35]), "bars", CLASSES).init(seed)


CONFIG = dict(
    batch_size=16, lr=0.05, warmup_epochs=0.5, crop_padding=0, flip=False, weight_decay=1e-4
)


def test_a_tiny_model_learns(tmp_path):
    model = _model()
    data, test = _bars(192, seed=1), _bars(96, seed=2)
    before = evaluate(model, test)["accuracy"]
    config = TrainConfig(epochs=5, **CONFIG)
    log = io.StringIO()
    history = train(model, data, config, tmp_path / "bars.ckpt.npz", test, out=log)
    assert [h.epoch for h in history] == [1, 2, 3, 4, 5]
    assert history[0].loss > 0.6  # about ln 3 = 1.1 at the start
    assert history[-1].loss < 0.1 * history[0].loss
    assert history[-1].accuracy >= 0.95 and history[-1].test_accuracy >= 0.95 > before
    assert "epoch 5: loss" in log.getvalue()
    assert (tmp_path / "bars.ckpt.npz").exists()
    result = evaluate(model, test)
    assert result["count"] == 96 and np.sum(result["confusion"]) == 96
    assert result["accuracy"] == history[-1].test_accuracy
    assert result["accuracy"] == np.trace(result["confusion"]) / 96


class _Stop(Exception):
    pass


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_from_a_checkpoint_is_exact(tmp_path, optimizer):
    """Stopped after epoch 2 and resumed (in a fresh model) = never stopped, bit for bit."""
    data = _bars(64, seed=3)
    lr = 0.05 if optimizer == "sgd" else 0.005
    config = TrainConfig(
        epochs=4, **{**CONFIG, "lr": lr, "crop_padding": 1, "flip": True}, optimizer=optimizer
    )

    straight = _model(seed=7)
    whole = train(straight, data, config, tmp_path / "straight.npz", out=io.StringIO())

    def stop_after_two(history):
        if len(history) == 2:
            raise _Stop

    interrupted = _model(seed=7)
    checkpoint = tmp_path / "resumed.npz"
    with pytest.raises(_Stop):
        train(interrupted, data, config, checkpoint, out=io.StringIO(), on_epoch=stop_after_two)
    resumed = _model(seed=99)  # different starting weights: the checkpoint must replace them
    log = io.StringIO()
    history = train(resumed, data, config, checkpoint, resume=True, out=log)
    assert "after epoch 2" in log.getvalue()
    assert [h.epoch for h in history] == [1, 2, 3, 4]
    assert [h.loss for h in history] == [h.loss for h in whole]
    for key, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)


def test_learning_rate_warms_up_then_follows_a_cosine():
    config = TrainConfig(epochs=10, lr=0.1, warmup_epochs=2)
    assert 0 < learning_rate(config, 0.0) < 1e-3  # never exactly zero: the first step moves
    assert learning_rate(config, 1.0) == pytest.approx(0.05, rel=2e-3)  # linear warm-up
    assert learning_rate(config, 2.0) == pytest.approx(0.1)  # peak
    assert learning_rate(config, 6.0) == pytest.approx(0.05)  # half way down the cosine
    assert learning_rate(config, 4.0) == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    assert learning_rate(config, 10.0) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(config, 12.0) == pytest.approx(0.0, abs=1e-12)
    rates = [learning_rate(config, p / 10) for p in range(101)]
    peak = rates.index(max(rates))
    assert peak == 20
    assert all(a < b for a, b in zip(rates[:peak], rates[1 : peak + 1], strict=True))
    assert all(a >= b for a, b in zip(rates[peak:], rates[peak + 1 :], strict=False))
    no_warmup = TrainConfig(epochs=4, lr=0.2, warmup_epochs=0)
    assert learning_rate(no_warmup, 0.0) == pytest.approx(0.2)
    assert learning_rate(no_warmup, 2.0) == pytest.approx(0.1)


def test_to_input_normalises_and_centres_small_images():
    model = _model()
    images = np.full((2, 1, 6, 6), 255, np.uint8)
    x = to_input(images, model)
    assert x.shape == (2, 1, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, :, 1:7, 1:7], (1 - 0.3) / 0.35, rtol=1e-6)
    np.testing.assert_allclose(x[:, :, 0], (0 - 0.3) / 0.35, rtol=1e-6)  # black border
    with pytest.raises(ValueError, match=r"\(1, 9, 9\) do not fit the model input \(1, 8, 8\)"):
        to_input(np.zeros((1, 1, 9, 9), np.uint8), model)


def test_augment_crops_and_flips():
    rng = np.random.default_rng(0)
    x = np.random.default_rng(1).standard_normal((64, 1, 5, 5)).astype(np.float32)
    flipped = augment(x.copy(), rng, 0, True)
    same = [np.array_equal(a, b) for a, b in zip(flipped, x, strict=True)]
    mirrored = [np.array_equal(a, b[:, :, ::-1]) for a, b in zip(flipped, x, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert 10 < sum(mirrored) < 54  # about half
    cropped = augment(x.copy(), rng, 2, False)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for a, b in zip(cropped, padded, strict=True):
        offsets = [
            (i, j)
            for i in range(5)
            for j in range(5)
            if np.array_equal(a, b[:, i : i + 5, j : j + 5])
        ]
        assert offsets, "each crop is a 5x5 window of the zero-padded image"
