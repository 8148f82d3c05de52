"""Imported models: the models directory read at startup, and ONNX uploads read at run time.

``convscope import`` converts an ONNX file once and saves the engine model as ``ID.json`` +
``ID.npz`` in the models directory (``CONVSCOPE_MODELS_DIR``). At startup each pair is
registered from its architecture alone (weights are read on first use, as for VGG-16); a
file that cannot be read is logged and skipped, and the other models are served as usual.

An upload (``POST /api/v1/models``, off unless ``CONVSCOPE_ALLOW_MODEL_UPLOAD``) is read into
memory within ``CONVSCOPE_MAX_MODEL_BYTES``, converted, and registered only when everything
succeeded; it is never written to disk, and external data files are refused.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from engine import zoo
from engine.model import ModelFileError, Sequential

from .errors import ApiError
from .models import ModelRegistry

__all__ = [
    "MODEL_ID_PATTERN",
    "check_model_id",
    "check_servable",
    "import_onnx",
    "load_models_dir",
    "ModelForm",
    "read_model_form",
    "parse_floats",
    "parse_classes",
]

log = logging.getLogger("convscope.imported")

# Ids appear in URLs, file names (ID.json, ID.npz) and the DOM: lower-case letters, digits,
# '_' and '-' (no '.', which file names would take for a suffix).
MODEL_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TEXT_FIELDS = ("id", "classes", "mean", "std", "title", "description", "dataset", "preprocess")
_MAX_TEXT_FIELD = 256 * 1024  # 1,000 class names take about 20 KB
_FORM_OVERHEAD = 2 * _MAX_TEXT_FIELD


def check_model_id(model_id: str, taken: Sequence[str] = ()) -> str:
    """``model_id`` if it is a valid, unused id; ValueError otherwise."""
    if not MODEL_ID_PATTERN.fullmatch(model_id or ""):
        raise ValueError(
            f"model id {model_id!r} must be 1-64 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    if model_id in zoo.MODEL_NAMES or model_id in taken:
        raise ValueError(f"there is already a model {model_id!r}; choose another id")
    return model_id


def check_servable(model: Sequential) -> Sequential:
    """The pages feed images (1 or 3 channels) and read class scores (a vector)."""
    if model.input_spec.channels not in (1, 3):
        raise ValueError(
            f"the model takes {model.input_spec.channels} input channels; images give 1 or 3"
        )
    if model.meta.get("preprocess", "photo") not in ("photo", "digit"):
        raise ValueError("preprocess must be 'photo' or 'digit'")
    return model


def parse_floats(text: str | None, what: str) -> list[float] | None:
    """'0.485 0.456 0.406' or '0.485,0.456,0.406' -> floats (None when empty)."""
    if text is None or not text.strip():
        return None
    try:
        return [float(v) for v in re.split(r"[\s,]+", text.strip())]
    except ValueError:
        raise ValueError(f"{what} must be numbers separated by spaces or commas") from None


def parse_classes(text: str | None) -> list[str] | None:
    """One class name per line (a trailing empty line is ignored); None when empty."""
    if text is None or not text.strip():
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def import_onnx(source: str | Path | bytes, model_id: str, **options) -> Sequential:
    """engine.onnx_io.load_onnx, plus the checks of a model the pages can serve."""
    from engine.onnx_io import load_onnx

    return check_servable(load_onnx(source, model_id=model_id, **options))


# ------------------------------------------------------------------- the models directory


def _check_weights_file(model: Sequential, npz_path: Path) -> None:
    """Parameter names and shapes from the .npy headers inside the .npz, without reading
    the weights themselves (VGG-16's are 550 MB)."""
    expected = {key: tuple(value.shape) for key, value, _ in model.parameters()}
    found: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(npz_path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as stream:
                    version = np.lib.format.read_magic(stream)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    found[member[:-4]] = tuple(read(stream)[0])
    except FileNotFoundError:
        raise ModelFileError(f"{npz_path}: weights file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{npz_path}: not a readable .npz file ({exc})") from None
    if found != expected:
        missing = sorted(set(expected) - set(found))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        raise ModelFileError(
            f"{npz_path}: weights do not match {npz_path.with_suffix('.json').name}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; wrong shapes: {', '.join(wrong)}" if wrong else "")
        )


def load_models_dir(
    registry: ModelRegistry, models_dir: Path, preload: Sequence[str] = ()
) -> list[str]:
    """Register every ID.json + ID.npz of ``models_dir``; returns the ids registered.
    A pair that cannot be served is logged and skipped: it never stops the server."""
    if not models_dir.is_dir():
        log.warning("models directory %s does not exist: no imported models", models_dir)
        return []
    registered = []
    for json_path in sorted(models_dir.glob("*.json")):
        model_id = json_path.stem
        try:
            check_model_id(model_id, registry.ids)
            architecture = check_servable(Sequential.load(json_path, weights=False))
            _check_weights_file(architecture, json_path.with_suffix(".npz"))
            registry.register(model_id, lambda path=json_path: Sequential.load(path), architecture)
        except (ModelFileError, ValueError, OSError) as exc:
            log.warning("skipping imported model %s: %s", json_path.name, exc)
            continue
        registered.append(model_id)
        if model_id in preload:
            registry.get(model_id)
    if registered:
        log.info("imported models from %s: %s", models_dir, ", ".join(registered))
    return registered


# ------------------------------------------------------------------------------ uploads


@dataclass
class ModelForm:
    """The parts of a model upload: the ONNX bytes and the text fields."""

    model: bytes | None = None
    fields: dict[str, str] = field(default_factory=dict)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "model_too_large",
        f"the model file is larger than this server's limit of {limit:,} bytes "
        "(CONVSCOPE_MAX_MODEL_BYTES)",
    )


class _Collector:
    """MultipartParser callbacks keeping the ``model`` file and the known text fields,
    each within its limit; other parts are skipped unread."""

    def __init__(self, max_model: int) -> None:
        self.max_model = max_model
        self.form = ModelForm()
        self.finished = False
        self._field, self._value = bytearray(), bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._data = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._name, self._data = {}, None, bytearray()

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        self._name = name.decode("latin-1") if name is not None else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name != "model" and self._name not in _TEXT_FIELDS:
            return
        self._data.extend(data[start:end])
        if self._name == "model" and len(self._data) > self.max_model:
            raise _too_large(self.max_model)
        if self._name != "model" and len(self._data) > _MAX_TEXT_FIELD:
            raise ApiError(
                422, "invalid_form", f"form field {self._name!r} is longer than {_MAX_TEXT_FIELD:,}"
            )

    def _part_end(self) -> None:
        if self._name == "model":
            self.form.model = bytes(self._data)
        elif self._name in _TEXT_FIELDS:
            self.form.fields[self._name] = self._data.decode("utf-8", errors="replace")
        self._data = bytearray()

    def _end(self) -> None:
        self.finished = True


async def read_model_form(request: Request, max_model_bytes: int) -> ModelForm:
    """The multipart body of a model upload, read in memory without passing the limit."""
    limit = max_model_bytes + _FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(max_model_bytes)
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the model as multipart/form-data: a file field 'model' (the .onnx file) and "
            "a field 'id', optionally 'classes', 'mean', 'std', 'title', 'description'",
        )
    collector = _Collector(max_model_bytes)
    parser = MultipartParser(options[b"boundary"], collector.callbacks())
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise _too_large(max_model_bytes)
            parser.write(chunk)
        parser.finalize()
    except ApiError:
        raise
    except Exception as exc:  # the parser's own errors: a malformed body
        raise ApiError(
            422, "invalid_form", f"the multipart body could not be parsed ({type(exc).__name__})"
        ) from None
    if not collector.finished:
        raise ApiError(422, "invalid_form", "the multipart body ended before its closing boundary")
    return collector.form
