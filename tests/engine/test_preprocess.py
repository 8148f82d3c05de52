"""engine.preprocess: decoding untrusted bytes, fitting images to models, MNIST-style digits."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from engine import zoo
from engine.layers import Flatten
from engine.model import InputSpec, Sequential
from engine.preprocess import (
    CorruptImage,
    ImageError,
    ImageTooLarge,
    UnsupportedImage,
    decode_size,
    digit_to_mnist,
    open_image,
    prepare,
    to_display,
)
from engine.train import to_input

DATA = Path(__file__).resolve().parents[1] / "data"
FONT_DIR = Path("/usr/share/fonts")
ROWS, COLS = np.mgrid[:28, :28]


# --- helpers -------------------------------------------------------------------------------
def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height grey pixels but that holds no pixel data: any
    attempt to decode it fails, so an ImageTooLarge proves the size was checked first."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


def model_with(
    channels: int, height: int, width: int, preprocess: str = "photo", mean=None, std=None
):
    spec = InputSpec(channels, height, width, mean or [0.5] * channels, std or [0.25] * channels)
    return Sequential([Flatten("flatten")], spec, "test", meta={"preprocess": preprocess})


def pixel(image: Image.Image, xy=(0, 0)) -> tuple[int, ...]:
    assert image.mode == "RGB"
    return image.getpixel(xy)


# --- errors --------------------------------------------------------------------------------
def test_error_classes_carry_http_status_and_code():
    for cls, status, code in [
        (UnsupportedImage, 415, "unsupported_media_type"),
        (ImageTooLarge, 413, "image_too_large"),
        (CorruptImage, 422, "undecodable_image"),
    ]:
        err = cls("message")
        assert isinstance(err, ImageError) and isinstance(err, ValueError)
        assert (err.status, err.code, str(err)) == (status, code, "message")


def test_empty_bytes_are_unsupported():
    with pytest.raises(UnsupportedImage, match="empty"):
        open_image(b"")


def test_text_renamed_jpg_is_unsupported():
    text = b"This is a shopping list, not a photo.\nmilk\neggs\n" * 20
    with pytest.raises(UnsupportedImage, match="PNG, JPEG"):
        open_image(text)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_corrupt(fmt):
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = encode(noise, fmt)
    with pytest.raises(CorruptImage, match=fmt):
        open_image(data[: len(data) // 2])


@pytest.mark.parametrize("size", [(0, 0), (0, 5), (7, 0)])
def test_zero_size_is_corrupt(size):
    with pytest.raises(CorruptImage, match="PNG"):
        open_image(png_header_only(*size))


def test_header_claiming_50000_square_is_too_large_without_decoding():
    with pytest.raises(ImageTooLarge):
        open_image(png_header_only(50_000, 50_000))


def test_pixel_limit_is_checked_from_the_header():
    # 50 million pixels: below Pillow's own bomb limits, above ours.
    with pytest.raises(ImageTooLarge, match="10000x5000"):
        open_image(png_header_only(10_000, 5_000))
    # Raising the limit lets the header through, and then the missing data is reported.
    with pytest.raises(CorruptImage):
        open_image(png_header_only(10_000, 5_000), max_pixels=60_000_000)


def test_pillow_bomb_warning_becomes_too_large():
    # 120 million pixels lies between Pillow's warning (89M) and error (179M) limits.
    with pytest.raises(ImageTooLarge, match="pixels"):
        open_image(png_header_only(12_000, 10_000), max_pixels=200_000_000)


def test_long_thin_image_is_within_the_limit_and_gives_a_valid_tensor():
    strip = Image.new("RGB", (100_000, 1), (200, 40, 10))
    image = open_image(encode(strip))
    assert image.size == (100_000, 1)
    x = prepare(image, zoo.build("tiny-vgg"))
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    expected = (np.array([200, 40, 10], np.float32) / 255 - zoo.CIFAR10_MEAN) / zoo.CIFAR10_STD
    np.testing.assert_allclose(x.mean(axis=(1, 2)), expected, atol=2e-2)
    digit = prepare(image, zoo.build("lenet5"))
    assert digit.shape == (1, 32, 32) and np.isfinite(digit).all()
    # The limit counts pixels, not the length of a side.
    with pytest.raises(ImageTooLarge, match="100000x1"):
        open_image(encode(strip), max_pixels=50_000)


# --- colour modes --------------------------------------------------------------------------
def _palette_image(transparent: bool) -> Image.Image:
    image = Image.new("P", (4, 2), 1)
    image.putpalette([0, 0, 0, 10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 9))
    image.putpixel((0, 0), 2)
    if transparent:
        image.info["transparency"] = 1
    return image


@pytest.mark.parametrize(
    ("name", "make", "fmt", "expected"),
    [
        ("1 white", lambda: Image.new("1", (4, 4), 1), "PNG", (255, 255, 255)),
        ("1 black", lambda: Image.new("1", (4, 4), 0), "PNG", (0, 0, 0)),
        ("L", lambda: Image.new("L", (4, 4), 100), "PNG", (100, 100, 100)),
        ("LA opaque", lambda: Image.new("LA", (4, 4), (100, 255)), "PNG", (100, 100, 100)),
        ("LA clear", lambda: Image.new("LA", (4, 4), (100, 0)), "PNG", (255, 255, 255)),
        ("P", lambda: _palette_image(False), "PNG", (10, 20, 30)),
        ("RGB", lambda: Image.new("RGB", (4, 4), (10, 20, 30)), "PNG", (10, 20, 30)),
        # 40% black over white: 255 * 0.6 = 153 (alpha 102 of 255).
        ("RGBA", lambda: Image.new("RGBA", (4, 4), (0, 0, 0, 102)), "PNG", (153, 153, 153)),
        ("I;16", lambda: Image.new("I;16", (4, 4), 40_000), "PNG", (156, 156, 156)),
        ("I small", lambda: Image.new("I", (4, 4), 77), "TIFF", (77, 77, 77)),
        ("I 16-bit range", lambda: Image.new("I", (4, 4), 51_400), "TIFF", (200, 200, 200)),
        ("F fraction", lambda: Image.new("F", (4, 4), 0.5), "TIFF", (128, 128, 128)),
    ],
)
def test_every_mode_becomes_8bit_rgb(name, make, fmt, expected):
    image = open_image(encode(make(), fmt))
    assert image.mode == "RGB" and image.size[0] == 4
    assert pixel(image, (1, 1)) == expected


def test_palette_with_transparency_is_composited_on_white():
    for fmt in ("PNG", "GIF"):
        image = open_image(encode(_palette_image(True), fmt, transparency=1))
        assert pixel(image, (0, 0)) == (200, 100, 50), fmt
        assert pixel(image, (1, 1)) == (255, 255, 255), fmt


def test_rgba_partial_alpha_blends_with_white():
    image = open_image(encode(Image.new("RGBA", (2, 2), (200, 0, 0, 128))))
    # 200 * a + 255 * (1 - a) with a = 128 / 255
    blend = round(200 * 128 / 255 + 255 * 127 / 255)
    white = round(255 * 127 / 255)
    assert all(abs(a - b) <= 1 for a, b in zip(pixel(image), (blend, white, white), strict=True))


def test_16bit_gradient_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 256).astype(np.uint16).reshape(1, 256).repeat(4, axis=0)
    image = open_image(encode(Image.fromarray(ramp)))  # uint16 -> "I;16"
    row = np.asarray(image)[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.abs(row - np.arange(256)).max() <= 1  # a full-range ramp stays a full-range ramp


def test_float_and_wide_integer_images_are_stretched_to_their_range():
    values = np.array([[-1.0, 0.0, 1.0, 3.0]], np.float32)
    image = open_image(encode(Image.fromarray(values, "F"), "TIFF"))
    assert np.asarray(image)[0, :, 0].tolist() == [0, 64, 128, 255]
    big = np.array([[0, 100_000, 200_000]], np.int32)
    image = open_image(encode(Image.fromarray(big, "I"), "TIFF"))
    assert np.asarray(image)[0, :, 1].tolist() == [0, 128, 255]


def test_cmyk_jpeg_is_converted_to_its_rgb_colours():
    colours = [(220, 30, 30), (30, 200, 60), (40, 60, 210), (240, 240, 240)]
    rgb = Image.new("RGB", (64, 16))
    for i, colour in enumerate(colours):
        rgb.paste(colour, (16 * i, 0, 16 * i + 16, 16))
    data = encode(rgb.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    image = open_image(data)
    for i, colour in enumerate(colours):
        got = np.asarray(pixel(image, (16 * i + 8, 8)))
        assert np.abs(got - colour).max() <= 12, (colour, got)


@pytest.mark.parametrize(
    ("orientation", "size", "top_left", "bottom_right"),
    [
        (1, (40, 20), (255, 0, 0), (0, 0, 255)),
        (3, (40, 20), (0, 0, 255), (255, 0, 0)),  # rotated 180 degrees
        (6, (20, 40), (255, 0, 0), (0, 0, 255)),  # rotated 90 degrees clockwise: left half on top
        (8, (20, 40), (0, 0, 255), (255, 0, 0)),  # rotated 90 degrees anticlockwise
    ],
)
def test_exif_orientation_is_applied(orientation, size, top_left, bottom_right):
    raw = Image.new("RGB", (40, 20), (255, 0, 0))
    raw.paste((0, 0, 255), (20, 0, 40, 20))  # red left half, blue right half
    exif = Image.Exif()
    exif[0x0112] = orientation
    image = open_image(encode(raw, "JPEG", quality=95, exif=exif.tobytes()))
    assert image.size == size
    w, h = size
    assert np.abs(np.subtract(pixel(image, (2, 2)), top_left)).max() <= 10
    assert np.abs(np.subtract(pixel(image, (w - 3, h - 3)), bottom_right)).max() <= 10


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    image = open_image(data)
    assert image.size == (8, 8) and pixel(image, (4, 4)) == (255, 0, 0)


# --- prepare and to_display ----------------------------------------------------------------
def test_cifar_test_images_prepare_exactly_like_training():
    subset = np.load(DATA / "cifar10_test_500.npz")
    model = zoo.build("tiny-vgg")
    pixels = subset["images"][:20]  # (N, 32, 32, 3)
    expected = to_input(pixels.transpose(0, 3, 1, 2), model)
    for i, rgb in enumerate(pixels):
        x = prepare(open_image(encode(Image.fromarray(rgb))), model)
        assert x.dtype == np.float32 and x.shape == (3, 32, 32)
        np.testing.assert_array_equal(x, expected[i])


def test_mnist_test_digits_prepare_exactly_like_training():
    subset = np.load(DATA / "mnist_test_500.npz")
    model = zoo.build("lenet5")
    digits = subset["images"][:50]  # (N, 28, 28)
    expected = to_input(digits[:, None], model)
    for i, digit in enumerate(digits):
        x = prepare(open_image(encode(Image.fromarray(digit))), model)
        assert x.shape == (1, 32, 32)
        np.testing.assert_array_equal(x, expected[i])


def test_photo_is_resized_on_its_short_side_and_centre_cropped():
    image = Image.new("RGB", (96, 48), (255, 0, 0))
    image.paste((0, 200, 0), (24, 0, 72, 48))  # the central 48x48 square is green
    model = model_with(3, 32, 32)
    x = prepare(image, model)
    seen = to_display(x, model.input_spec)
    assert seen.shape == (32, 32, 3)
    # Away from the edges (where the filter reaches past the crop) only green is left.
    assert np.abs(seen[:, 3:-3].astype(int) - (0, 200, 0)).max() <= 2


def test_non_square_input_and_upscaling():
    model = model_with(3, 16, 40)
    x = prepare(Image.new("RGB", (10, 10), (0, 0, 255)), model)
    assert x.shape == (3, 16, 40)
    np.testing.assert_allclose(x[:, 8, 20], (np.array([0, 0, 1.0]) - 0.5) / 0.25, atol=1e-2)


def test_grayscale_photo_model_gets_itu601_luminance():
    model = model_with(1, 8, 8)
    x = prepare(Image.new("RGB", (8, 8), (200, 100, 50)), model)
    luma = round(200 * 0.299 + 100 * 0.587 + 50 * 0.114)  # 124
    np.testing.assert_allclose(x, (luma / 255 - 0.5) / 0.25, atol=1e-6)


def test_prepare_accepts_any_mode():
    model = model_with(3, 8, 8)
    x = prepare(Image.new("LA", (8, 8), (0, 0)), model)  # fully transparent -> white
    np.testing.assert_allclose(x, (1.0 - 0.5) / 0.25, atol=1e-6)


def test_round_trip_prepare_to_display_gives_the_pixels_back():
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    model = zoo.build("tiny-vgg")
    seen = to_display(prepare(Image.fromarray(rgb), model), model.input_spec)
    assert seen.dtype == np.uint8 and seen.shape == (32, 32, 3)
    np.testing.assert_array_equal(seen, rgb)
    # Batch of one accepted too; wrong channel count refused.
    np.testing.assert_array_equal(
        to_display(to_input(rgb.transpose(2, 0, 1)[None], model), model.input_spec), rgb
    )
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        to_display(np.zeros((1, 32, 32), np.float32), model.input_spec)


def test_digit_display_is_grey_with_black_border():
    model = zoo.build("lenet5")
    x = prepare(
        render_digit(4, fonts()[0], 160, 2, (280, 280), (70, 40), dark_on_light=True), model
    )
    seen = to_display(x, model.input_spec)
    assert seen.shape == (32, 32, 3)
    assert (seen[..., 0] == seen[..., 1]).all() and (seen[..., 1] == seen[..., 2]).all()
    border = np.concatenate(
        [seen[:2].ravel(), seen[-2:].ravel(), seen[:, :2].ravel(), seen[:, -2:].ravel()]
    )
    assert border.max() == 0 and seen.max() == 255


def test_large_jpeg_prepares_fast_with_draft():
    rng = np.random.default_rng(3)
    small = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    photo = small.resize((4000, 3000), Image.Resampling.BICUBIC)
    data = encode(photo, "JPEG", quality=90)
    model = zoo.build("tiny-vgg")
    start = time.perf_counter()
    image = open_image(data, size_hint=decode_size(model))
    x = prepare(image, model)
    elapsed = time.perf_counter() - start
    assert image.size == (500, 375)  # decoded at 1/8 scale: still larger than the 32x32 hint
    assert x.shape == (3, 32, 32)
    assert elapsed < 1.0, f"4000x3000 JPEG took {elapsed:.2f} s"
    # Decoding at reduced scale changes the result only slightly (in 0-255 pixel units).
    reference = prepare(photo, model)
    spec = model.input_spec
    diff = np.abs(to_display(x, spec).astype(int) - to_display(reference, spec).astype(int))
    assert diff.mean() < 3, diff.mean()


def test_decode_size_asks_more_for_digits():
    assert decode_size(zoo.build("tiny-vgg")) == (32, 32)
    assert min(decode_size(zoo.build("lenet5"))) >= 256


# --- digits --------------------------------------------------------------------------------
def fonts() -> list[ImageFont.FreeTypeFont | str]:
    """Up to three DejaVu faces of different shapes, or Pillow's built-in scalable font."""
    wanted = ["DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf"]
    found = (
        [p for name in wanted for p in sorted(FONT_DIR.rglob(name))[:1]]
        if FONT_DIR.exists()
        else []
    )
    return [str(p) for p in found] or ["default"]


def render_digit(digit, font, size, stroke, canvas, offset, dark_on_light):
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    image = Image.new("L", canvas, paper)
    face = (
        ImageFont.load_default(size=size) if font == "default" else ImageFont.truetype(font, size)
    )
    ImageDraw.Draw(image).text(
        offset, str(digit), fill=ink, font=face, stroke_width=stroke, stroke_fill=ink
    )
    return image


# (canvas, font size, offset): big and centred, small and off to one side, on a wide canvas.
PLACEMENTS = [((280, 280), 200, (60, 20)), ((400, 300), 110, (260, 120)), ((280, 280), 60, (12, 8))]


def ink_box_and_centre(digit: np.ndarray) -> tuple[int, float, float]:
    ink = digit >= 0.1 * digit.max()
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    longer = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    mass = digit.astype(float)
    return longer, (mass * ROWS).sum() / mass.sum(), (mass * COLS).sum() / mass.sum()


@pytest.mark.parametrize("stroke", [0, 2, 5])
@pytest.mark.parametrize("font", fonts())
def test_rendered_digits_follow_mnist_conventions(font, stroke):
    for digit in range(10):
        for canvas, size, offset in PLACEMENTS:
            dark = digit_to_mnist(render_digit(digit, font, size, stroke, canvas, offset, True))
            light = digit_to_mnist(render_digit(digit, font, size, stroke, canvas, offset, False))
            where = f"digit {digit} {canvas} size {size}"
            assert dark.shape == (28, 28) and dark.dtype == np.uint8
            assert dark.max() == 255, where
            longer, cy, cx = ink_box_and_centre(dark)
            assert 19 <= longer <= 20, where
            assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1, (where, cy, cx)
            assert np.abs(dark.astype(int) - light).max() <= 2, where


def test_blank_images_give_zeros():
    for image in [
        Image.new("L", (280, 280), 255),
        Image.new("L", (280, 280), 0),
        Image.new("RGB", (400, 300), (120, 130, 140)),
        Image.new("RGBA", (50, 50), (0, 0, 0, 0)),
        Image.new("L", (1, 1), 0),
    ]:
        out = digit_to_mnist(image)
        assert out.shape == (28, 28) and out.dtype == np.uint8 and not out.any()


def test_mnist_sized_light_on_dark_digit_is_kept_unchanged():
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:15] = 180
    np.testing.assert_array_equal(digit_to_mnist(Image.fromarray(digit)), digit)


def test_photo_of_a_digit_on_grey_paper_matches_a_clean_rendering():
    font = fonts()[0]
    clean = render_digit(7, font, 150, 3, (300, 240), (100, 40), dark_on_light=False)
    rng = np.random.default_rng(5)
    ink = np.asarray(clean, np.float32) / 255
    paper = 150 - 110 * ink + rng.normal(0, 4, ink.shape)  # grey paper 150, pencil 40, noise
    photo = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    a = digit_to_mnist(clean).astype(float).ravel()
    b = digit_to_mnist(photo).astype(float).ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.95


def test_digit_drawn_on_transparent_canvas_is_read_as_dark_on_white():
    font = fonts()[0]
    drawn = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    face = ImageFont.load_default(size=180) if font == "default" else ImageFont.truetype(font, 180)
    ImageDraw.Draw(drawn).text((70, 30), "3", fill=(0, 0, 0, 255), font=face, stroke_width=2)
    on_white = render_digit(3, font, 180, 2, (280, 280), (70, 30), dark_on_light=True)
    diff = np.abs(digit_to_mnist(drawn).astype(int) - digit_to_mnist(on_white))
    assert diff.max() <= 2


LENET_WEIGHTS = zoo.weights_path("lenet5")


@pytest.mark.skipif(
    not LENET_WEIGHTS.exists(),
    reason=f"trained LeNet-5 weights not shipped yet ({LENET_WEIGHTS.name} missing in engine/zoo)",
)
def test_trained_lenet5_reads_rendered_digits():
    model = zoo.load("lenet5")
    inputs, labels = [], []
    for font in fonts():
        for stroke in (0, 2, 5):
            for dark_on_light in (True, False):
                for digit in range(10):
                    # Every placement, in turn, keeps the test quick.
                    canvas, size, offset = PLACEMENTS[(digit + stroke) % len(PLACEMENTS)]
                    image = render_digit(digit, font, size, stroke, canvas, offset, dark_on_light)
                    inputs.append(prepare(image, model))
                    labels.append(digit)
    trace = model.forward(np.stack(inputs))
    predicted = trace.output.argmax(axis=1)
    accuracy = float((predicted == np.array(labels)).mean())
    assert accuracy >= 0.8, f"{accuracy:.1%} of {len(labels)} rendered digits read correctly"
