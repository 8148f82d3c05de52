"""app.uploads: bodies are read in chunks and abandoned at the limit, whatever the headers say."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from app.errors import ApiError
from app.uploads import FORM_OVERHEAD, read_image_form

CHUNK = 16_384


def streaming_request(
    content_type: bytes,
    chunks: int,
    declared_length: int | None = None,
    body: bytes | None = None,
    first: bytes | None = None,
):
    """A request whose body arrives as ``body``, or as ``first`` then ``chunks`` pieces of
    zeros; returns it and a counter of the pieces the server pulled."""
    pulled = [0]
    pieces = [body] if body is not None else [first or b"\0" * CHUNK] + [b"\0" * CHUNK] * chunks

    async def receive():
        index = pulled[0]
        pulled[0] += 1
        return {"type": "http.request", "body": pieces[index], "more_body": index + 1 < len(pieces)}

    headers = [(b"content-type", content_type)]
    if declared_length is not None:
        headers.append((b"content-length", str(declared_length).encode()))
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    return Request(scope, receive), pulled


def read(request, limit):
    return asyncio.run(read_image_form(request, limit))


@pytest.mark.parametrize("declared", [None, 100])  # no Content-Length, or one that lies
def test_raw_body_stops_at_the_limit(declared):
    request, pulled = streaming_request(b"image/png", chunks=1000, declared_length=declared)
    with pytest.raises(ApiError) as caught:
        read(request, 50_000)
    assert caught.value.status == 413 and caught.value.code == "upload_too_large"
    assert pulled[0] == 50_000 // CHUNK + 1  # 16 MB offered, 64 KB read


def part(name: str) -> bytes:
    return f'--abc\r\nContent-Disposition: form-data; name="{name}"; filename="a"\r\n\r\n'.encode()


@pytest.mark.parametrize(
    ("field", "limit_read"), [("image", 50_000), ("other", 50_000 + FORM_OVERHEAD)]
)
def test_multipart_stops_at_the_image_limit_or_the_body_limit(field, limit_read):
    request, pulled = streaming_request(
        b"multipart/form-data; boundary=abc", chunks=1000, first=part(field)
    )
    with pytest.raises(ApiError) as caught:
        read(request, 50_000)
    assert caught.value.status == 413
    assert pulled[0] == limit_read // CHUNK + 2  # the part header, then the chunks up to the limit


def test_declared_length_over_the_limit_is_refused_unread():
    request, pulled = streaming_request(b"image/png", chunks=10, declared_length=10**9)
    with pytest.raises(ApiError) as caught:
        read(request, 50_000)
    assert caught.value.status == 413 and pulled[0] == 0


def test_multipart_parts_are_kept_in_memory():
    body = (
        b'--abc\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
        b'--abc\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG-bytes\r\n--abc--\r\n"
    )
    request, _ = streaming_request(b"multipart/form-data; boundary=abc", 1, body=body)
    form = read(request, 1000)
    assert form.image == b"\x89PNG-bytes" and form.sample is None


def test_sample_field_urlencoded():
    request, _ = streaming_request(
        b"application/x-www-form-urlencoded", 1, body=b"sample=mnist-7-1&x=1"
    )
    assert read(request, 1000).sample == "mnist-7-1"
