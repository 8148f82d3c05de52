"""A corpus of awkward and broken uploads, made here: each has a stated outcome, never a 500,
and the server keeps serving afterwards."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from .conftest import API, encode, photo, upload


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a valid CRC and a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_640x480() -> bytes:
    return encode(photo(640, 480, seed=3), "JPEG", quality=90)


def cmyk_jpeg() -> bytes:
    return encode(photo(40, 30, seed=4).convert("CMYK"), "JPEG")


def png16() -> bytes:
    ramp = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    image = Image.fromarray(ramp)
    assert image.mode in ("I;16", "I")
    return encode(image)


def palette_transparent() -> bytes:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (10, 10, 30, 30))
    return encode(image, transparency=0)  # red is transparent: the border becomes white


def animated_gif() -> bytes:
    frames = [
        Image.new("RGB", (30, 30), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))
    ]
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0
    )
    return buffer.getvalue()


def wide() -> bytes:
    row = (np.arange(100_000) % 256).astype(np.uint8)
    return encode(Image.fromarray(np.stack([row] * 3, axis=-1)[None]))


# (id, bytes, file name, content type, status, error code or None for success)
CORPUS = [
    ("empty", lambda: b"", "empty.jpg", "image/jpeg", 415, "unsupported_media_type"),
    (
        "text-renamed-jpg",
        lambda: b"this is not a picture\n" * 20,
        "notes.jpg",
        "image/jpeg",
        415,
        "unsupported_media_type",
    ),
    (
        "truncated-jpeg",
        lambda: jpeg_640x480()[:4000],
        "cut.jpg",
        "image/jpeg",
        422,
        "undecodable_image",
    ),
    (
        "truncated-png",
        lambda: encode(photo(200, 150, seed=2))[:3000],
        "cut.png",
        "image/png",
        422,
        "undecodable_image",
    ),
    (
        "zero-size-png",
        lambda: png_header_only(0, 0),
        "zero.png",
        "image/png",
        422,
        "undecodable_image",
    ),
    (
        "claims-100000x100000",
        lambda: png_header_only(100_000, 100_000),
        "bomb.png",
        "image/png",
        413,
        "image_too_large",
    ),
    (
        "claims-8000x6000",
        lambda: png_header_only(8000, 6000),
        "big.png",
        "image/png",
        413,
        "image_too_large",
    ),
    ("100000x1", wide, "wide.png", "image/png", 201, None),
    ("cmyk-jpeg", cmyk_jpeg, "cmyk.jpg", "image/jpeg", 201, None),
    ("16-bit-png", png16, "deep.png", "image/png", 201, None),
    ("palette-transparency", palette_transparent, "p.png", "image/png", 201, None),
    ("animated-gif", animated_gif, "anim.gif", "image/gif", 201, None),
    ("bmp", lambda: encode(photo(33, 21), "BMP"), "x.bmp", "image/bmp", 201, None),
    ("webp", lambda: encode(photo(50, 40), "WEBP"), "x.webp", "image/webp", 201, None),
    ("rgba-png", lambda: encode(photo(20, 20).convert("RGBA")), "x.png", "image/png", 201, None),
    ("one-bit-png", lambda: encode(photo(20, 20).convert("1")), "x.png", "image/png", 201, None),
    (
        "1x1-png",
        lambda: encode(Image.new("RGB", (1, 1), (9, 99, 199))),
        "dot.png",
        "image/png",
        201,
        None,
    ),
    ("jpeg-640x480", jpeg_640x480, "x.jpg", "image/jpeg", 201, None),
]


@pytest.mark.parametrize(
    ("data", "name", "content_type", "status", "code"),
    [c[1:] for c in CORPUS],
    ids=[c[0] for c in CORPUS],
)
@pytest.mark.parametrize("model", ["tiny-vgg", "lenet5"])
def test_upload_outcome(client, model, data, name, content_type, status, code):
    response = client.post(f"{API}/models/{model}/runs", **upload(data(), name, content_type))
    assert response.status_code == status, response.text
    if code is None:
        shape = response.json()["input"]["shape"]
        assert shape == ([3, 32, 32] if model == "tiny-vgg" else [1, 32, 32])
        assert np.isfinite([p["probability"] for p in response.json()["predictions"]]).all()
    else:
        error = response.json()["error"]
        assert error["code"] == code and len(error["message"]) > 10
    assert client.get(f"{API}/health").status_code == 200


def test_transparency_is_white_and_animation_is_its_first_frame(client):
    run = client.post(f"{API}/models/tiny-vgg/runs", **upload(palette_transparent())).json()
    shown = np.asarray(Image.open(io.BytesIO(client.get(run["input"]["image_url"]).content)))
    assert (shown[0, 0] >= 254).all()  # the transparent border, composited on white
    assert shown[16, 16, 2] > 200 and shown[16, 16, 0] < 40  # the opaque blue square
    gif = client.post(
        f"{API}/models/tiny-vgg/runs", **upload(animated_gif(), "a.gif", "image/gif")
    ).json()
    first = np.asarray(Image.open(io.BytesIO(client.get(gif["input"]["image_url"]).content)))
    assert first[16, 16, 0] > 200 and first[16, 16, 2] < 40  # red, the first of three frames


def test_oversize_bodies_stop_at_the_limit(make_client):
    small = make_client(max_upload_bytes=20_000)
    noise = np.random.default_rng(9).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    big = encode(Image.fromarray(noise), "PNG")
    assert len(big) > 100_000
    for response in (
        small.post(f"{API}/models/tiny-vgg/runs", **upload(big)),
        small.post(
            f"{API}/models/tiny-vgg/runs", content=big, headers={"content-type": "image/png"}
        ),
    ):
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["code"] == "upload_too_large" and "20,000 bytes" in error["message"]
    ok = small.post(f"{API}/models/tiny-vgg/runs", **upload(encode(photo(32, 32)))).json()
    assert ok["model_id"] == "tiny-vgg"


def test_oversize_stream_without_content_length(make_client):
    small = make_client(max_upload_bytes=20_000)

    def chunks():  # sent chunked, with no Content-Length to refuse it early
        for _ in range(100):
            yield b"\0" * 16_384

    response = small.post(
        f"{API}/models/tiny-vgg/runs", content=chunks(), headers={"content-type": "image/png"}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "upload_too_large"


def test_oversize_image_part_inside_multipart(make_client):
    small = make_client(max_upload_bytes=20_000)
    data = b"\x89PNG\r\n\x1a\n" + b"\0" * 30_000  # under the body allowance, over the image limit
    response = small.post(f"{API}/models/tiny-vgg/runs", **upload(data))
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"data": {"other": "x"}, "files": {"unused": ("a.txt", b"abc", "text/plain")}},
            422,
            "missing_image",
        ),
        (
            {
                "content": b"--xx\r\nbroken",
                "headers": {"content-type": "multipart/form-data; boundary=xx"},
            },
            422,
            "invalid_form",
        ),
        ({"content": b"", "headers": {"content-type": "multipart/form-data"}}, 422, "invalid_form"),
        ({"json": {"image": "cat.jpg"}}, 415, "unsupported_media_type"),
        ({"content": b"abc"}, 415, "unsupported_media_type"),
        ({"data": {"sample": "no-such-sample"}}, 422, "unknown_sample"),
        (
            {"data": {"sample": "x"}, "files": {"image": ("a.png", b"123", "image/png")}},
            422,
            "invalid_form",
        ),
    ],
)
def test_malformed_requests(client, kwargs, status, code):
    response = client.post(f"{API}/models/tiny-vgg/runs", **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_unknown_model_is_refused_before_reading(client):
    response = client.post(f"{API}/models/alexnet/runs", **upload(encode(photo())))
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_model"


def test_still_serving_after_the_corpus(client):
    response = client.post(f"{API}/models/tiny-vgg/runs", **upload(encode(photo(seed=42))))
    assert response.status_code == 201
    assert client.get(response.json()["input"]["image_url"]).status_code == 200
