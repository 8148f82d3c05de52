"""Training and evaluation with the engine's own forward and backward passes.

Mini-batch SGD with momentum (or Adam), weight decay, linear warm-up then cosine
decay, random crop and flip augmentation, seeded shuffling, a checkpoint after every
epoch and exact resumption: epoch e draws its randomness from (seed, e), so a run
resumed from a checkpoint continues exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import ops
from .data import Dataset
from .model import Sequential

__all__ = ["TrainConfig", "Optimizer", "to_input", "augment", "evaluate", "train", "EpochStats"]


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (with momentum) or "adam"
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 2.0
    crop_padding: int = 4  # random crop after zero padding by this many pixels; 0 disables
    flip: bool = True  # random horizontal flip (never for digits)
    seed: int = 0


@dataclass
class EpochStats:
    epoch: int
    loss: float
    accuracy: float
    test_accuracy: float | None
    lr: float
    seconds: float
    images_per_second: float


def to_input(images: np.ndarray, model: Sequential) -> np.ndarray:
    """uint8 (N, C, H, W) pixels -> the model's normalised float32 input.

    Images smaller than the model's input are centred on a black border (MNIST's 28x28
    digits become LeNet's 32x32), as LeCun did.
    """
    spec = model.input_spec
    n, c, h, w = images.shape
    if c != spec.channels or h > spec.height or w > spec.width:
        raise ValueError(
            f"images of shape {images.shape[1:]} do not fit the model input {spec.shape}"
        )
    x = images.astype(np.float32) * np.float32(1 / 255)
    if (h, w) != (spec.height, spec.width):
        top, left = (spec.height - h) // 2, (spec.width - w) // 2
        x = ops.pad2d(x, (top, spec.height - h - top, left, spec.width - w - left))
    mean = np.asarray(spec.mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(1, -1, 1, 1)
    return (x - mean) / std


def augment(x: np.ndarray, rng: np.random.Generator, crop_padding: int, flip: bool) -> np.ndarray:
    """Random crop of the zero-padded batch (same size back) and random horizontal flip."""
    n, _, h, w = x.shape
    if crop_padding:
        p = crop_padding
        padded = ops.pad2d(x, p)
        dy = rng.integers(0, 2 * p + 1, n)
        dx = rng.integers(0, 2 * p + 1, n)
        x = np.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    if flip:
        mask = rng.random(n) < 0.5
        x[mask] = x[mask, :, :, ::-1]
    return x


class Optimizer:
    """SGD with momentum, or Adam; decoupled from the model except through its parameters."""

    def __init__(self, model: Sequential, config: TrainConfig) -> None:
        self.model = model
        self.config = config
        self.state: dict[str, np.ndarray] = {}
        self.steps = 0

    def step(self, lr: float) -> None:
        cfg = self.config
        self.steps += 1
        for key, param, layer in self.model.parameters():
            grad = layer.grads[key.split(".", 1)[1]]
            if cfg.weight_decay and param.ndim > 1:  # decay weights, not biases
                grad = grad + cfg.weight_decay * param
            if cfg.optimizer == "sgd":
                velocity = self.state.setdefault(key, np.zeros_like(param))
                velocity *= cfg.momentum
                velocity += grad
                param -= lr * velocity
            elif cfg.optimizer == "adam":
                m = self.state.setdefault(key + ".m", np.zeros_like(param))
                v = self.state.setdefault(key + ".v", np.zeros_like(param))
                m *= 0.9
                m += 0.1 * grad
                v *= 0.999
                v += 0.001 * grad * grad
                m_hat = m / (1 - 0.9**self.steps)
                v_hat = v / (1 - 0.999**self.steps)
                param -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
            else:
                raise ValueError(f"unknown optimizer {cfg.optimizer!r}: use 'sgd' or 'adam'")


def learning_rate(config: TrainConfig, progress: float) -> float:
    """Linear warm-up over ``warmup_epochs``, then cosine decay to zero; progress in epochs."""
    if progress < config.warmup_epochs:
        return config.lr * (progress + 1e-3) / config.warmup_epochs
    span = max(config.epochs - config.warmup_epochs, 1e-9)
    return (
        config.lr
        * 0.5
        * (1 + math.cos(math.pi * min((progress - config.warmup_epochs) / span, 1.0)))
    )


def evaluate(model: Sequential, data: Dataset, batch_size: int = 500) -> dict[str, Any]:
    """Top-1 accuracy, per-class accuracy and the confusion matrix (rows: true class)."""
    k = len(model.classes) or int(data.labels.max()) + 1
    confusion = np.zeros((k, k), dtype=np.int64)
    scores_layer = model.logits_layer
    for start in range(0, len(data), batch_size):
        x = to_input(data.images[start : start + batch_size], model)
        scores = model.forward(x, until=scores_layer)[scores_layer]
        predicted = scores.argmax(axis=1)
        np.add.at(confusion, (data.labels[start : start + batch_size], predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "accuracy": float(confusion.trace() / max(confusion.sum(), 1)),
        "per_class": per_class.tolist(),
        "confusion": confusion.tolist(),
        "count": int(confusion.sum()),
    }


def _progress(
    out: TextIO,
    epoch: int,
    epochs: int,
    done: int,
    total: int,
    loss: float,
    acc: float,
    rate: float,
) -> None:
    width = 24
    filled = int(width * done / total)
    line = (
        f"epoch {epoch}/{epochs} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
        f"loss {loss:.4f} acc {acc:.3f} {rate:.0f} img/s"
    )
    if out.isatty():
        out.write("\r" + line)
    else:
        out.write(line + "\n")
    out.flush()


def save_checkpoint(
    path: Path,
    model: Sequential,
    optimizer: Optimizer,
    config: TrainConfig,
    history: list[EpochStats],
) -> None:
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"opt/{k}": v for k, v in optimizer.state.items()})
    meta = {
        "config": asdict(config),
        "steps": optimizer.steps,
        "history": [asdict(h) for h in history],
        "architecture": model.architecture(),
    }
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    tmp.replace(path)  # atomic: a crash mid-write never leaves a broken checkpoint


def load_checkpoint(path: Path, model: Sequential, optimizer: Optimizer) -> list[EpochStats]:
    with np.load(path) as data:
        meta = json.loads(data["__meta__"].tobytes())
        model.load_state_dict(
            {k[6:]: data[k] for k in data.files if k.startswith("param/")}, str(path)
        )
        optimizer.state = {k[4:]: data[k].copy() for k in data.files if k.startswith("opt/")}
    optimizer.steps = meta["steps"]
    return [EpochStats(**h) for h in meta["history"]]


def train(
    model: Sequential,
    train_data: Dataset,
    config: TrainConfig,
    checkpoint: Path,
    test_data: Dataset | None = None,
    resume: bool = False,
    out: TextIO = sys.stderr,
    on_epoch: Callable[[list[EpochStats]], None] | None = None,
) -> list[EpochStats]:
    """Train ``model`` in place; write ``checkpoint`` after every epoch; return the history."""
    optimizer = Optimizer(model, config)
    history: list[EpochStats] = []
    if resume and checkpoint.exists():
        history = load_checkpoint(checkpoint, model, optimizer)
        out.write(f"resumed from {checkpoint} after epoch {len(history)}\n")
    scores_layer = model.logits_layer
    n = len(train_data)
    batches = n // config.batch_size  # drop the last partial batch: equal-sized steps
    for epoch in range(len(history) + 1, config.epochs + 1):
        rng = np.random.default_rng([config.seed, epoch])
        order = rng.permutation(n)
        started = time.perf_counter()
        loss_sum = correct = seen = 0
        for b in range(batches):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            x = augment(
                to_input(train_data.images[idx], model), rng, config.crop_padding, config.flip
            )
            labels = train_data.labels[idx]
            trace = model.forward(x, training=True, until=scores_layer)
            scores = trace[scores_layer]
            loss = ops.cross_entropy(scores, labels)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss} at epoch {epoch}, batch {b}: lower the learning rate"
                )
            model.backward(
                ops.cross_entropy_backward(scores, labels),
                from_layer=scores_layer,
                input_grad=False,
            )
            lr = learning_rate(config, epoch - 1 + b / batches)
            optimizer.step(lr)
            loss_sum += loss * len(idx)
            correct += int((scores.argmax(axis=1) == labels).sum())
            seen += len(idx)
            if b % 50 == 0 or b == batches - 1:
                rate = seen / (time.perf_counter() - started)
                _progress(
                    out, epoch, config.epochs, b + 1, batches, loss_sum / seen, correct / seen, rate
                )
        seconds = time.perf_counter() - started
        test_acc = evaluate(model, test_data)["accuracy"] if test_data is not None else None
        stats = EpochStats(
            epoch, loss_sum / seen, correct / seen, test_acc, lr, seconds, seen / seconds
        )
        history.append(stats)
        save_checkpoint(checkpoint, model, optimizer, config, history)
        out.write(
            f"\nepoch {epoch}: loss {stats.loss:.4f} train acc {stats.accuracy:.4f} "
            f"test acc {test_acc if test_acc is None else round(test_acc, 4)} "
            f"{seconds:.0f}s ({stats.images_per_second:.0f} img/s)\n"
        )
        out.flush()
        if on_epoch:
            on_epoch(history)
    return history
