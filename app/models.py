"""The models this server offers: loaded at startup, or on first use for the big ones.

VGG-16 holds 138 million random weights (550 MB) that take seconds to draw, so it loads
only when a request needs its weights or a forward pass; its metadata comes from the bare
architecture, whose zero-filled parameters cost no memory until written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from engine import zoo
from engine.model import Sequential

from .errors import ApiError

__all__ = ["ModelRegistry", "model_summary", "model_detail"]


def model_summary(model_id: str, model: Sequential) -> dict[str, Any]:
    """The ModelSummary of the API contract."""
    meta = model.meta
    described = model.describe()
    return {
        "id": model_id,
        "name": meta.get("title", model_id),
        "description": meta.get("description", ""),
        "input": model.input_spec.to_dict(),
        "classes": list(model.classes),
        "trained": bool(meta.get("trained", False)),
        "test_accuracy": meta.get("test_accuracy"),
        "params": model.param_count,
        "macs": sum(info["macs"] for info in described),
        "flops": sum(info["flops"] for info in described),
        "preprocess": meta.get("preprocess", "photo"),
        "dataset": meta.get("dataset"),
    }


def model_detail(model_id: str, model: Sequential) -> dict[str, Any]:
    """ModelSummary plus every layer's describe(), in order."""
    return {**model_summary(model_id, model), "layers": model.describe()}


class ModelRegistry:
    """Model ids -> models, loading each at most once (thread-safe)."""

    def __init__(self, model_ids: Iterable[str], preload: Iterable[str] = ()) -> None:
        self.ids = tuple(model_ids)
        unknown = [m for m in self.ids if m not in zoo.MODEL_NAMES]
        if unknown:
            raise ValueError(
                f"unknown models in settings: {', '.join(unknown)}; "
                f"built-in: {', '.join(zoo.MODEL_NAMES)}"
            )
        self._models: dict[str, Sequential] = {}
        self._details: dict[str, dict[str, Any]] = {}
        self._loaders: dict[str, Callable[[], Sequential]] = {}  # imported models (app.imported)
        self._lock = threading.Lock()
        for model_id in preload:
            if model_id in self.ids:
                self.get(model_id)

    def check(self, model_id: str) -> str:
        """The id itself, or a 404 listing the models there are."""
        if model_id not in self.ids:
            raise ApiError(
                404,
                "unknown_model",
                f"there is no model {model_id!r}; available models: {', '.join(self.ids)}",
            )
        return model_id

    def is_loaded(self, model_id: str) -> bool:
        return model_id in self._models

    def get(self, model_id: str) -> Sequential:
        """The model with its weights (loading it now if needed: may take seconds)."""
        self.check(model_id)
        model = self._models.get(model_id)
        if model is None:
            with self._lock:
                model = self._models.get(model_id)
                if model is None:
                    loader = self._loaders.get(model_id)
                    model = loader() if loader else zoo.load(model_id)
                    self._models[model_id] = model
                    self._details[model_id] = model_detail(model_id, model)
        return model

    def detail(self, model_id: str) -> dict[str, Any]:
        """ModelDetail, without loading weights that are not loaded yet."""
        self.check(model_id)
        detail = self._details.get(model_id)
        if detail is None:
            detail = model_detail(model_id, zoo.architecture(model_id))
            with self._lock:
                detail = self._details.setdefault(model_id, detail)
        return detail

    def summary(self, model_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.detail(model_id).items() if k != "layers"}

    def register(
        self, model_id: str, load: Callable[[], Sequential], architecture: Sequential
    ) -> None:
        """Serve one more model (an imported one): ``architecture`` describes it now,
        ``load`` returns it with its weights on first use. ValueError if the id is taken."""
        detail = model_detail(model_id, architecture)
        with self._lock:
            if model_id in self.ids:
                raise ValueError(f"there is already a model {model_id!r}")
            self._loaders[model_id] = load
            self._details[model_id] = detail
            self.ids = (*self.ids, model_id)  # readers iterate the old tuple or the new one
