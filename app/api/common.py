"""Helpers shared by the routers: request bodies, tensor payloads, PNG responses."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import Response

from ..errors import ApiError
from ..runs import Run
from ..serialize import Encoding, encode_tensor
from ..uploads import read_image_form

__all__ = [
    "IMAGE_BODY",
    "CACHE_IMMUTABLE",
    "run_from_request",
    "tensor_payload",
    "check_size",
    "layer_tensor",
    "png_response",
]

# Runs never change, so whatever was fetched for a run id stays right.
CACHE_IMMUTABLE = "private, max-age=86400, immutable"

# The request body of the endpoints that take an image, for the OpenAPI document (the
# body is parsed by app.uploads, not by FastAPI, so it must be described by hand).
IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {
                            "type": "string",
                            "format": "binary",
                            "description": "PNG, JPEG, GIF, BMP or WebP",
                        },
                        "sample": {
                            "type": "string",
                            "description": "id of a built-in sample (GET /api/v1/samples)",
                        },
                    },
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def run_from_request(request: Request, model_id: str) -> tuple[Run, bool]:
    """Read the uploaded image or sample id of a request and get its run (reused or new)."""
    state = request.app.state
    state.registry.check(model_id)  # 404 before reading any body
    form = await read_image_form(request, state.settings.max_upload_bytes)
    if form.image is not None and form.sample:
        raise ApiError(422, "invalid_form", "send either an image or a sample id, not both")
    if form.image is None:
        if not form.sample:
            raise ApiError(
                422,
                "missing_image",
                "send an image in the multipart field 'image', or a sample id in 'sample'",
            )
        data = state.samples.read(form.sample)
    else:
        data = form.image
    return await state.run_service.create(model_id, data)


def check_size(values: int, encoding: Encoding, max_json_values: int, what: str) -> None:
    """422 for tensors too large to send: JSON up to the limit, f16 up to four times it."""
    limit = max_json_values * (4 if encoding == "f16" else 1)
    if values > limit:
        advice = (
            "ask for fewer values"
            if encoding == "f16"
            else "use ?encoding=f16 or ask for fewer values"
        )
        raise ApiError(
            422,
            "response_too_large",
            f"{what} has {values:,} values, more than the {limit:,} this server sends "
            f"as {encoding}; {advice}",
        )


def tensor_payload(array: np.ndarray, encoding: Encoding) -> dict[str, Any]:
    return {
        "shape": list(array.shape),
        "encoding": encoding,
        "data": encode_tensor(array, encoding),
    }


def layer_tensor(run: Run, name: str) -> np.ndarray:
    """A layer's output in a run (or 'input'); 404 naming the layers there are."""
    try:
        return run.tensor(name)
    except KeyError:
        names = ", ".join(["input", *run.outputs])
        raise ApiError(
            404, "unknown_layer", f"model {run.model_id!r} has no layer {name!r}; layers: {names}"
        ) from None


def png_response(png: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(
        png, media_type="image/png", headers={"Cache-Control": CACHE_IMMUTABLE, **(headers or {})}
    )
