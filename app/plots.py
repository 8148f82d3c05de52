"""Small PNG figures drawn with Pillow for the model cards: training curves and kernels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["training_curve", "kernel_grid"]

_LOSS = (33, 102, 172)
_TRAIN = (178, 24, 43)
_TEST = (27, 120, 55)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def _polyline(
    draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], colour, width: int = 3
) -> None:
    if len(points) > 1:
        draw.line(points, fill=colour, width=width, joint="curve")
    for x, y in points:
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)


def training_curve(
    history: Sequence[dict], path: str | Path, width: int = 720, height: int = 320
) -> Path:
    """Loss (left axis) and train/test accuracy (right axis, 0-100 %) per epoch."""
    path = Path(path)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = _font(13)
    left, right, top, bottom = 56, width - 56, 28, height - 40
    epochs = [h["epoch"] for h in history]
    losses = [h["loss"] for h in history]
    max_loss = max(losses) * 1.1 if losses else 1.0
    last = max(epochs) if epochs else 1

    def x_of(epoch: float) -> float:
        return left + (right - left) * (epoch - 1) / max(last - 1, 1)

    draw.rectangle((left, top, right, bottom), outline=(160, 160, 160))
    for i in range(5):
        frac = i / 4
        y = bottom - (bottom - top) * frac
        draw.line((left, y, right, y), fill=(232, 232, 232))
        draw.text((left - 6, y), f"{max_loss * frac:.2f}", fill=_LOSS, font=font, anchor="rm")
        draw.text((right + 6, y), f"{100 * frac:.0f}%", fill=(60, 60, 60), font=font, anchor="lm")
    for epoch in epochs:
        draw.text((x_of(epoch), bottom + 6), str(epoch), fill=(60, 60, 60), font=font, anchor="mt")
    draw.text(((left + right) / 2, height - 14), "epoch", fill=(60, 60, 60), font=font, anchor="mm")

    _polyline(
        draw,
        [
            (x_of(e), bottom - (bottom - top) * v / max_loss)
            for e, v in zip(epochs, losses, strict=True)
        ],
        _LOSS,
    )
    _polyline(
        draw, [(x_of(h["epoch"]), bottom - (bottom - top) * h["accuracy"]) for h in history], _TRAIN
    )
    tested = [h for h in history if h.get("test_accuracy") is not None]
    _polyline(
        draw,
        [(x_of(h["epoch"]), bottom - (bottom - top) * h["test_accuracy"]) for h in tested],
        _TEST,
    )
    legend = [("loss", _LOSS), ("train accuracy", _TRAIN), ("test accuracy", _TEST)]
    x = left
    for label, colour in legend:
        draw.rectangle((x, 8, x + 14, 20), fill=colour)
        draw.text((x + 20, 14), label, fill=(40, 40, 40), font=font, anchor="lm")
        x += 30 + int(draw.textlength(label, font=font))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def kernel_grid(weight: np.ndarray, path: str | Path, cell: int = 56, columns: int = 8) -> Path:
    """First-layer kernels (C_out, C_in, kH, kW) as tiles. RGB kernels are shown in colour,
    each scaled to its own max |w| around grey; one-channel kernels in a blue-white-red map."""
    path = Path(path)
    c_out, c_in, kh, kw = weight.shape
    columns = min(columns, c_out)
    rows = -(-c_out // columns)
    gap = 4
    img = Image.new("RGB", (columns * (cell + gap) + gap, rows * (cell + gap) + gap), "white")
    for k in range(c_out):
        w = weight[k].astype(np.float64)
        scale = np.abs(w).max() or 1.0
        if c_in == 3:
            tile = np.clip(127.5 + 127.5 * w / scale, 0, 255).transpose(1, 2, 0)
        else:
            t = np.clip(w.mean(axis=0) / scale, -1, 1)[..., None]
            white = np.array([255.0, 255.0, 255.0])
            tile = np.where(
                t < 0,
                white + (-t) * (np.array([33, 102, 172]) - white),
                white + t * (np.array([178, 24, 43]) - white),
            )
        pixels = Image.fromarray(tile.astype(np.uint8)).resize((cell, cell), Image.NEAREST)
        r, c = divmod(k, columns)
        img.paste(pixels, (gap + c * (cell + gap), gap + r * (cell + gap)))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
