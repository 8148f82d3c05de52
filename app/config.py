"""Server settings, read once from ``CONVSCOPE_*`` environment variables.

Handlers obtain them through the cached :func:`get_settings` dependency, so tests swap
them with ``app.dependency_overrides`` (``create_app(settings)`` does that for you).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

__all__ = ["Settings", "get_settings", "REPO_DIR"]

REPO_DIR = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


@dataclass(frozen=True)
class Settings:
    """Limits and defaults of one server process. Every field ``foo`` can be set with the
    environment variable ``CONVSCOPE_FOO``."""

    # Largest accepted upload body (the image file); reading stops there with 413.
    max_upload_bytes: int = 10 * MB
    # Largest decoded image, in pixels (width x height), checked before decoding.
    max_pixels: int = 40_000_000
    # Forward traces kept for the pages, least recently used evicted beyond this.
    run_cache_bytes: int = 512 * MB
    # A run unused for this many seconds is forgotten.
    run_ttl: float = 3600.0
    # Threads that run preprocessing, forward passes and saliency.
    workers: int = 2
    # Jobs allowed to wait for a worker; beyond this the API answers 503.
    queue_limit: int = 64
    # Seconds a client is told to wait (Retry-After) when the queue is full.
    retry_after: int = 1
    # Models served, and those loaded at startup (the others load on first use).
    models: tuple[str, ...] = ("tiny-vgg", "lenet5", "vgg16")
    preload: tuple[str, ...] = ("tiny-vgg", "lenet5")
    # Largest tensor returned as JSON floats (values); f16 allows four times as many.
    max_json_values: int = 8_000_000
    # Largest side of a PNG after ?scale=N.
    max_png_side: int = 4096
    # Classroom mode (app/live.py): classes at once, students per class, the largest
    # WebSocket message, messages per second per connection, idle time before a class ends.
    live_max_sessions: int = 100
    live_max_students: int = 500
    live_max_message_bytes: int = 16384
    live_rate: float = 20.0
    live_idle_seconds: float = 3 * 3600.0
    # Imported models (docs/import.md): a folder of ID.json + ID.npz served beside the
    # built-in ones; POST /api/v1/models (ONNX uploads, kept in memory) when allowed, the
    # largest upload, and how many uploads one process keeps.
    models_dir: Path | None = None
    allow_model_upload: bool = False
    max_model_bytes: int = 600 * MB
    max_uploaded_models: int = 4
    # Several server processes share runs and classes through one Redis (docs/deploy.md):
    # e.g. redis://127.0.0.1:6379/0. Empty: this process keeps everything in memory.
    redis_url: str = ""
    # The prefix of every key, so that several deployments can share one Redis.
    redis_prefix: str = "convscope"
    static_dir: Path = field(default=REPO_DIR / "static")
    templates_dir: Path = field(default=REPO_DIR / "templates")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Defaults overridden by ``CONVSCOPE_<FIELD>`` variables (comma lists for models)."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(f"CONVSCOPE_{f.name.upper()}")
            if raw is None:
                continue
            default = getattr(cls, f.name, None)
            try:
                if isinstance(default, tuple):
                    values[f.name] = _names(raw)
                elif isinstance(default, bool):
                    values[f.name] = raw.lower() in ("1", "true", "yes")
                elif isinstance(default, int):
                    values[f.name] = int(raw)
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                elif isinstance(default, str):
                    values[f.name] = raw.strip()
                else:
                    values[f.name] = Path(raw)
            except ValueError as exc:
                raise ValueError(f"CONVSCOPE_{f.name.upper()}={raw!r}: {exc}") from exc
        return cls(**values)

    def __post_init__(self) -> None:
        for name in (
            "max_upload_bytes",
            "max_pixels",
            "run_cache_bytes",
            "workers",
            "max_json_values",
            "max_model_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"setting {name} must be at least 1")
        live = ("live_max_sessions", "live_max_students", "live_max_message_bytes", "live_rate")
        if any(getattr(self, name) < 1 for name in live) or self.live_idle_seconds <= 0:
            raise ValueError(f"settings {', '.join(live)} must be >= 1, live_idle_seconds > 0")
        if self.queue_limit < 0:
            raise ValueError("setting queue_limit must be at least 0")
        if self.redis_url and self.allow_model_upload:
            # An uploaded model lives in one process; the others would not know it (or
            # would know another model by the same id). Shared models go in models_dir.
            raise ValueError(
                "settings allow_model_upload and redis_url cannot be combined: give every "
                "process the same models with CONVSCOPE_MODELS_DIR (docs/deploy.md)"
            )


@lru_cache
def get_settings() -> Settings:
    """The process's settings (read from the environment once)."""
    return Settings.from_env()
