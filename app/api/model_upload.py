"""POST /models: import an ONNX model at run time (off unless the settings allow it)."""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..deps import RegistryDep, SettingsDep
from ..errors import ERROR_RESPONSES, ApiError
from ..imported import (
    ModelForm,
    check_model_id,
    import_onnx,
    parse_classes,
    parse_floats,
    read_model_form,
)
from ..schemas import ModelSummary
from ..serialize import OrjsonResponse

__all__ = ["router"]

router = APIRouter(prefix="/models", tags=["models"], responses=ERROR_RESPONSES)

# One conversion at a time: a big model holds its bytes, its graph and its weights at once.
_converting = threading.Lock()

_MODEL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["model", "id"],
                    "properties": {
                        "model": {"type": "string", "format": "binary", "description": ".onnx"},
                        "id": {"type": "string", "description": "a-z, 0-9, '_', '-'"},
                        "classes": {"type": "string", "description": "one name per line"},
                        "mean": {"type": "string", "description": "per channel, e.g. 0.5 0.5 0.5"},
                        "std": {"type": "string", "description": "per channel"},
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "dataset": {"type": "string"},
                        "preprocess": {"type": "string", "enum": ["photo", "digit"]},
                    },
                }
            }
        },
    }
}


def _options(form: ModelForm) -> dict:
    """load_onnx keyword arguments from the text fields (422 when malformed)."""
    fields = form.fields
    try:
        options = {
            "classes": parse_classes(fields.get("classes")),
            "mean": parse_floats(fields.get("mean"), "mean"),
            "std": parse_floats(fields.get("std"), "std"),
        }
    except ValueError as exc:
        raise ApiError(422, "invalid_form", str(exc)) from None
    for key in ("title", "description", "dataset"):
        if fields.get(key, "").strip():
            options[key] = fields[key].strip()[:2000]
    preprocess = fields.get("preprocess", "").strip() or "photo"
    if preprocess not in ("photo", "digit"):
        raise ApiError(422, "invalid_form", "preprocess must be 'photo' or 'digit'")
    options["preprocess"] = preprocess
    return options


@router.post(
    "",
    response_model=ModelSummary,
    status_code=201,
    openapi_extra=_MODEL_BODY,
    responses={
        403: {"description": "Uploads are disabled, or this server keeps no more of them"},
        409: {"description": "A model with this id exists"},
        413: {"description": "The model file is larger than CONVSCOPE_MAX_MODEL_BYTES"},
        503: {"description": "Another model is being imported"},
    },
)
async def upload_model(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    """Import an ONNX model (multipart: model, id, classes, mean, std) and serve it."""
    if not settings.allow_model_upload:
        raise ApiError(
            403,
            "model_upload_disabled",
            "this server does not accept model uploads; its administrator can allow them "
            "with CONVSCOPE_ALLOW_MODEL_UPLOAD=1, or add the model with `convscope import`",
        )
    uploaded: list[str] = getattr(request.app.state, "uploaded_models", None) or []
    if len(uploaded) >= settings.max_uploaded_models:
        raise ApiError(
            403,
            "too_many_models",
            f"this server keeps at most {settings.max_uploaded_models} uploaded models "
            "(CONVSCOPE_MAX_UPLOADED_MODELS)",
        )
    if not _converting.acquire(blocking=False):
        raise ApiError(
            503,
            "import_busy",
            "another model is being imported; try again in a few seconds",
            headers={"Retry-After": "5"},
        )
    try:
        form = await read_model_form(request, settings.max_model_bytes)
        model_id = form.fields.get("id", "").strip()
        if model_id in registry.ids:
            raise ApiError(409, "model_exists", f"there is already a model {model_id!r}")
        try:
            check_model_id(model_id, registry.ids)
        except ValueError as exc:
            raise ApiError(422, "invalid_id", str(exc)) from None
        if not form.model:
            raise ApiError(422, "invalid_form", "the form has no file 'model' (the .onnx file)")
        options = _options(form)

        def convert():
            return import_onnx(form.model, model_id, max_bytes=settings.max_model_bytes, **options)

        try:
            model = await run_in_threadpool(convert)
        except ValueError as exc:  # OnnxImportError (a subclass) or a model the pages cannot serve
            problems = getattr(exc, "problems", None)
            extra = {"problems": [list(p) for p in problems]} if problems else {}
            code = "unsupported_graph" if problems else "invalid_model"
            raise ApiError(422, code, str(exc), **extra) from None
        try:
            registry.register(model_id, lambda: model, model)
        except ValueError as exc:  # the same id uploaded meanwhile
            raise ApiError(409, "model_exists", str(exc)) from None
        request.app.state.uploaded_models = [*uploaded, model_id]
    finally:
        _converting.release()
    return OrjsonResponse(registry.summary(model_id), status_code=201)
