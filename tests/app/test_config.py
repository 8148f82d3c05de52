"""Settings from CONVSCOPE_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings


def test_defaults():
    settings = Settings.from_env({})
    assert settings.max_upload_bytes == 10 * 1024 * 1024
    assert settings.max_pixels == 40_000_000
    assert settings.run_cache_bytes == 512 * 1024 * 1024
    assert settings.workers == 2
    assert settings.models == ("tiny-vgg", "lenet5", "vgg16")
    assert (settings.static_dir / "js").is_dir()


def test_environment_overrides():
    settings = Settings.from_env(
        {
            "CONVSCOPE_MAX_UPLOAD_BYTES": "1000",
            "CONVSCOPE_MODELS": "lenet5, tiny-vgg",
            "CONVSCOPE_RUN_TTL": "2.5",
            "CONVSCOPE_QUEUE_LIMIT": "0",
            "CONVSCOPE_STATIC_DIR": "/tmp/x",
            "OTHER": "ignored",
        }
    )
    assert settings.max_upload_bytes == 1000 and settings.models == ("lenet5", "tiny-vgg")
    assert (
        settings.run_ttl == 2.5
        and settings.queue_limit == 0
        and settings.static_dir == Path("/tmp/x")
    )


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("WORKERS", "two", "CONVSCOPE_WORKERS"),
        ("WORKERS", "0", "workers must be at least 1"),
        ("QUEUE_LIMIT", "-1", "queue_limit"),
    ],
)
def test_bad_values_name_the_variable(name, value, match):
    with pytest.raises(ValueError, match=match):
        Settings.from_env({f"CONVSCOPE_{name}": value})


def test_unknown_model_is_refused_at_startup():
    from app.main import create_app

    with pytest.raises(ValueError, match="alexnet"):
        create_app(Settings(models=("alexnet",), preload=()))


def test_redis_settings_from_the_environment():
    assert Settings.from_env({}).redis_url == ""  # one process, everything in memory
    settings = Settings.from_env(
        {
            "CONVSCOPE_REDIS_URL": " redis://10.0.0.5:6379/2 ",
            "CONVSCOPE_REDIS_PREFIX": "school-a",
        }
    )
    assert settings.redis_url == "redis://10.0.0.5:6379/2"
    assert settings.redis_prefix == "school-a"
    with pytest.raises(ValueError, match="allow_model_upload and redis_url"):
        Settings.from_env(
            {"CONVSCOPE_REDIS_URL": "redis://r:6379/0", "CONVSCOPE_ALLOW_MODEL_UPLOAD": "1"}
        )


@pytest.mark.parametrize("flags, logged", [([], False), (["--access-log"], True)])
def test_serve_logs_requests_only_when_asked(monkeypatch, flags, logged):
    """`convscope serve` passes its options to uvicorn; the access log is opt-in."""
    import uvicorn

    from app.cli import main

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    assert main(["serve", "--port", "8123", *flags]) == 0
    assert calls[0]["access_log"] is logged
    assert calls[0]["port"] == 8123 and calls[0]["ws_per_message_deflate"] is False
