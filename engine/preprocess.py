"""Uploaded image bytes -> the tensor a model reads, and back to pixels for display.

``open_image`` turns untrusted bytes into a fully decoded 8-bit RGB ``PIL.Image`` (or raises
an ``ImageError`` that carries the HTTP status to answer with). ``prepare`` fits that image to
a model: photos are resized on their short side and centre-cropped; digits follow MNIST's
conventions (``digit_to_mnist``). Both end with the same scaling and per-channel mean/std
normalisation as ``engine.train.to_input``, so an image holding a training-set picture gives
exactly the tensor the network was trained on.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    from .model import InputSpec, Sequential

__all__ = [
    "ImageError",
    "UnsupportedImage",
    "ImageTooLarge",
    "CorruptImage",
    "MAX_PIXELS",
    "open_image",
    "to_rgb",
    "decode_size",
    "prepare",
    "digit_to_mnist",
    "to_display",
]

MAX_PIXELS = 40_000_000
MNIST_SIZE = 28
MNIST_BOX = 20  # MNIST digits are scaled so that their longer side is 20 pixels
INK_FRACTION = 0.1  # pixels below this fraction of the brightest ink are noise for the crop
NOISE_SIGMAS = 4.0  # background noise up to this many standard deviations is not ink


class ImageError(ValueError):
    """An uploaded image that cannot be used; ``status`` and ``code`` are for the HTTP reply."""

    status = 400
    code = "bad_image"


class UnsupportedImage(ImageError):
    """Not an image format Pillow recognises (a text file renamed .jpg, empty bytes)."""

    status = 415
    code = "unsupported_media_type"


class ImageTooLarge(ImageError):
    """More pixels than allowed, judged from the header before decoding."""

    status = 413
    code = "image_too_large"


class CorruptImage(ImageError):
    """A recognised format whose data cannot be decoded (truncated, zero-size, broken header)."""

    status = 422
    code = "undecodable_image"


# Signatures of common formats: bytes that start like one of these claim to be an image, so a
# failure to read them means a damaged file rather than an unsupported one.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _claimed_format(data: bytes) -> str | None:
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:2] == b"BM" and data[6:10] == b"\0\0\0\0":  # BMP: "BM", size, 4 reserved zeros
        return "BMP"
    return None


def open_image(
    data: bytes, max_pixels: int = MAX_PIXELS, size_hint: tuple[int, int] | None = None
) -> Image.Image:
    """Decode untrusted image bytes into an 8-bit RGB image.

    The first frame of an animation is taken, the EXIF orientation applied, transparency
    composited on white and every colour mode converted to RGB (16-bit and floating-point
    grey scaled into 0-255). The pixel count is checked from the header, before decoding.

    ``size_hint`` (width, height), when given, is the smallest size the caller needs: a JPEG
    at least twice as large in both directions is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's
    DCT scaling), which is ten times faster for a phone photo. ``decode_size(model)`` gives a
    suitable hint.

    Raises ``UnsupportedImage`` (415), ``ImageTooLarge`` (413) or ``CorruptImage`` (422).
    """
    data = bytes(data)
    if not data:
        raise UnsupportedImage("the file is empty: upload a PNG, JPEG, GIF, BMP or WebP image")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its two bomb limits; treat that as a refusal too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(
            "the image has too many pixels to decode safely: scale it down and try again"
        ) from exc
    except UnidentifiedImageError as exc:
        claimed = _claimed_format(data)
        if claimed is None:
            raise UnsupportedImage(
                "the file is not an image format that can be read: upload a PNG, JPEG, GIF, "
                "BMP or WebP image"
            ) from exc
        raise CorruptImage(
            f"the file starts like a {claimed} image but its header is invalid "
            "(zero size or damaged)"
        ) from exc
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise CorruptImage(f"the image header cannot be read ({exc})") from exc

    width, height = image.size
    if width <= 0 or height <= 0:
        raise CorruptImage(f"the image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height:,} pixels; the limit is "
            f"{max_pixels:,}: scale it down and try again"
        )
    if size_hint is not None and image.format == "JPEG":
        image.draft("RGB", tuple(int(s) for s in size_hint))
    try:
        image.load()
    except (OSError, ValueError, EOFError, SyntaxError, IndexError, MemoryError) as exc:
        # Pillow reports truncated or garbled data as OSError ("image file is truncated"),
        # and some decoders as other exceptions.
        raise CorruptImage(f"the {image.format} image cannot be decoded ({exc})") from exc
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not lose an image that decoded
        pass
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is composited on white."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(image), mode)).convert("RGB")
    has_alpha = "A" in image.getbands() or "a" in image.getbands()
    if has_alpha or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise UnsupportedImage(f"colour mode {mode} cannot be converted to RGB") from exc


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer or float grey -> 0-255, by the range the values evidently use.

    16-bit data spans 0-65535 (divide by 257); float data in [0, 1] is a fraction of white;
    data already within 0-255 is kept; anything else is stretched from its minimum to its
    maximum, so a scientific image is visible instead of clipped to white.
    """
    v = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if mode.startswith("I;16"):
        scaled = v / 257.0
    elif mode == "F" and lo >= 0.0 and hi <= 1.0:
        scaled = v * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        scaled = v
    elif mode == "I" and lo >= 0.0 and hi <= 65535.0:
        scaled = v / 257.0
    else:
        scaled = (v - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(v)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def decode_size(model: Sequential) -> tuple[int, int]:
    """The ``size_hint`` for ``open_image``: the input size for photos; for digits more, since
    the digit may fill only part of the picture and is cropped out of it."""
    spec = model.input_spec
    if model.meta.get("preprocess") == "digit":
        return (max(256, spec.width), max(256, spec.height))
    return (spec.width, spec.height)


def prepare(image: Image.Image, model: Sequential) -> np.ndarray:
    """An image -> the model's normalised float32 input of shape (C, H, W)."""
    spec = model.input_spec
    if spec.channels not in (1, 3):
        raise ValueError(f"model input has {spec.channels} channels; images give 1 or 3")
    if model.meta.get("preprocess") == "digit":
        pixels = _fit_digit(digit_to_mnist(image), spec.height, spec.width)
        if spec.channels == 3:
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    else:
        fitted = _resize_and_crop(to_rgb(image), spec.width, spec.height)
        pixels = np.asarray(fitted.convert("L") if spec.channels == 1 else fitted)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    # The same arithmetic, in the same order and precision, as engine.train.to_input.
    x = pixels.transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255)
    mean = np.asarray(spec.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(-1, 1, 1)
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


def _resize_and_crop(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale so the image covers width x height, then take the centre: done as one resize of
    the central box, so a long thin image never becomes a huge intermediate."""
    w, h = image.size
    if (w, h) == (width, height):
        return image  # already the right size: the original pixels, no resampling
    target_aspect = width / height
    if w / h > target_aspect:
        box_w, box_h = h * target_aspect, float(h)
    else:
        box_w, box_h = float(w), w / target_aspect
    left, top = (w - box_w) / 2, (h - box_h) / 2
    return image.resize(
        (width, height),
        Image.Resampling.LANCZOS,
        box=(left, top, left + box_w, top + box_h),
        reducing_gap=3.0,  # shrink by whole factors first (fast box filter), LANCZOS the rest
    )


def _fit_digit(digit: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 28x28 MNIST digit on the model's canvas: centred on black, as ``to_input`` pads it."""
    h, w = digit.shape
    if (h, w) == (height, width):
        return digit
    if h <= height and w <= width:
        top, left = (height - h) // 2, (width - w) // 2
        canvas = np.zeros((height, width), np.uint8)
        canvas[top : top + h, left : left + w] = digit
        return canvas
    resized = Image.fromarray(digit).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(resized)


def digit_to_mnist(image: Image.Image) -> np.ndarray:
    """A picture of one digit -> uint8 (28, 28), white on black, as MNIST prepared its digits.

    Dark ink on light paper is inverted and the background (and its noise) subtracted; grey
    levels are kept, with no threshold. The digit is cropped to the bounding box of its ink,
    scaled so its longer side is 20 pixels, and placed so its centre of mass is at (14, 14).
    A 28x28 image that is already light on dark is taken as MNIST pixels, unchanged. A blank
    image gives zeros.
    """
    grey = np.asarray(to_rgb(image).convert("L"), dtype=np.float32)
    residual, noise = _minus_background(grey)
    ink_is_dark = -float(residual.min()) > float(residual.max())  # darkest ink beats brightest
    if grey.shape == (MNIST_SIZE, MNIST_SIZE) and not ink_is_dark:
        return grey.astype(np.uint8)
    ink = -residual if ink_is_dark else residual
    ink = np.clip(ink - NOISE_SIGMAS * noise, 0, None)  # paper grain and sensor noise -> 0
    peak = float(ink.max())
    if peak <= 0:
        return np.zeros((MNIST_SIZE, MNIST_SIZE), np.uint8)
    ink *= 255.0 / peak  # faint pencil and bright marker give the same contrast
    rows = np.flatnonzero((ink >= INK_FRACTION * 255).any(axis=1))
    cols = np.flatnonzero((ink >= INK_FRACTION * 255).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    h, w = crop.shape
    scale = MNIST_BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    box = Image.fromarray(np.ascontiguousarray(crop, np.float32))  # mode "F"
    box = box.resize(size, Image.Resampling.LANCZOS)
    box = np.clip(np.asarray(box), 0, 255)
    if box.max() > 0:
        box *= 255.0 / box.max()

    bh, bw = box.shape
    mass = box.sum()
    cy = float((box.sum(axis=1) * np.arange(bh)).sum() / mass)
    cx = float((box.sum(axis=0) * np.arange(bw)).sum() / mass)
    centre = MNIST_SIZE // 2
    top = int(np.clip(round(centre - cy), 0, MNIST_SIZE - bh))
    left = int(np.clip(round(centre - cx), 0, MNIST_SIZE - bw))
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    out[top : top + bh, left : left + bw] = box
    return np.rint(out).astype(np.uint8)


def _minus_background(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """The image minus its paper or canvas, and the paper's noise level.

    The background is a plane a + b*x + c*y fitted to the outer ring of pixels (a few percent
    of each side), so the uneven lighting of a phone photo is removed too; the fit is redone
    without outliers, so ink touching the edge does not pull it. The noise is the robust
    standard deviation (from the median absolute deviation) of the ring around that plane.
    """
    h, w = grey.shape
    by, bx = max(1, h // 20), max(1, w // 20)
    ring = np.ones((h, w), bool)
    if 2 * by < h and 2 * bx < w:
        ring[by:-by, bx:-bx] = False
    where = np.flatnonzero(ring)
    where = where[:: max(1, len(where) // 5_000)]  # a sample is plenty for three numbers
    ys, xs = np.divmod(where, w)
    v = grey.ravel()[where].astype(np.float64)
    design = np.stack([np.ones_like(v), xs, ys], axis=1).astype(np.float64)
    keep = np.ones(len(v), bool)
    for _ in range(2):
        a = design[keep]  # normal equations: a 3x3 system (singular for a one-pixel-high image)
        coef = np.linalg.lstsq(a.T @ a, a.T @ v[keep], rcond=None)[0]
        deviation = v - design @ coef
        noise = 1.4826 * float(np.median(np.abs(deviation[keep])))
        keep = np.abs(deviation) <= max(3 * noise, 2.0)
        if keep.sum() < 3:
            break
    plane = coef[0] + coef[1] * np.arange(w, dtype=np.float32)[None, :]
    plane = plane + coef[2] * np.arange(h, dtype=np.float32)[:, None]
    return grey - plane.astype(np.float32), noise


def to_display(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A normalised (C, H, W) input -> uint8 (H, W, 3) RGB: what the model saw."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] != spec.channels:
        raise ValueError(f"expected an input of shape ({spec.channels}, H, W), got {x.shape}")
    mean = np.asarray(spec.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(-1, 1, 1)
    pixels = np.clip(np.rint((x * std + mean) * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)
