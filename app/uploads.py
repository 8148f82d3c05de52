"""Reading an uploaded image from a request body, in memory and within a byte limit.

FastAPI's ``UploadFile`` would first read the whole body without a limit and spill files
over 1 MB to a temporary file on disk; uploads here must never touch the disk, and a
client must not make the server read more than the limit. So the body is read chunk by
chunk, fed to python-multipart's streaming parser, and abandoned with 413 as soon as it
passes the limit (a Content-Length header that already says so is refused unread).

Accepted bodies: ``multipart/form-data`` with a file field ``image`` or a text field
``sample``; ``application/x-www-form-urlencoded`` with ``sample``; or the raw image bytes
with an ``image/*`` or ``application/octet-stream`` content type.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import ApiError

__all__ = ["ImageForm", "read_image_form", "FORM_OVERHEAD"]

# Room for multipart boundaries, part headers and a sample id besides the image itself.
FORM_OVERHEAD = 64 * 1024
_MAX_TEXT_FIELD = 1024


@dataclass
class ImageForm:
    image: bytes | None = None
    sample: str | None = None


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "upload_too_large",
        f"the upload is larger than the limit of {limit:,} bytes; send a smaller image",
    )


def _bad_form(message: str) -> ApiError:
    return ApiError(422, "invalid_form", message)


async def _read_limited(request: Request, limit: int, on_chunk=None) -> bytes | None:
    """The body, chunk by chunk, failing with 413 past ``limit`` bytes. With ``on_chunk``
    the chunks go there and nothing is kept."""
    total = 0
    kept = bytearray()
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        if on_chunk is None:
            kept += chunk
        else:
            on_chunk(chunk)
    return None if on_chunk is not None else bytes(kept)


class _FormCollector:
    """Callbacks for MultipartParser that keep the ``image`` and ``sample`` parts."""

    def __init__(self, max_image: int) -> None:
        self.max_image = max_image
        self.form = ImageForm()
        self.finished = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._data = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._data = bytearray()

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        self._name = name.decode("latin-1") if name is not None else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name not in ("image", "sample"):
            return  # other fields are ignored, and not kept
        self._data.extend(data[start:end])
        limit = self.max_image if self._name == "image" else _MAX_TEXT_FIELD
        if len(self._data) > limit:
            if self._name == "image":
                raise _too_large(self.max_image)
            raise _bad_form(f"form field 'sample' is longer than {_MAX_TEXT_FIELD} bytes")

    def _part_end(self) -> None:
        if self._name == "image":
            self.form.image = bytes(self._data)
        elif self._name == "sample":
            self.form.sample = self._data.decode("utf-8", errors="replace").strip()
        self._data = bytearray()

    def _end(self) -> None:
        self.finished = True


async def read_image_form(request: Request, max_bytes: int) -> ImageForm:
    """The image bytes or sample id of a request, read without exceeding ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD:
        raise _too_large(max_bytes)
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise _bad_form("multipart/form-data needs a boundary in its Content-Type")
        collector = _FormCollector(max_bytes)
        try:
            parser = MultipartParser(boundary, collector.callbacks())
            await _read_limited(request, max_bytes + FORM_OVERHEAD, parser.write)
            parser.finalize()
        except ApiError:
            raise
        except Exception as exc:  # the parser's own errors: a malformed body
            raise _bad_form(
                f"the multipart body could not be parsed ({type(exc).__name__})"
            ) from None
        if not collector.finished:
            raise _bad_form("the multipart body ended before its closing boundary")
        return collector.form
    if content_type == b"application/x-www-form-urlencoded":
        body = await _read_limited(request, _MAX_TEXT_FIELD * 4)
        values = parse_qs(body.decode("utf-8", errors="replace"))
        sample = values.get("sample", [None])[0]
        return ImageForm(sample=sample.strip() if sample else None)
    if content_type.startswith(b"image/") or content_type == b"application/octet-stream":
        return ImageForm(image=await _read_limited(request, max_bytes))
    raise ApiError(
        415,
        "unsupported_media_type",
        "send the image as multipart/form-data (field 'image'), "
        "or the image bytes with an image/* content type",
    )
