"""Shared fixtures of the app tests: settings, apps, clients, and images made in memory."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app

API = "/api/v1"


def make_settings(**overrides) -> Settings:
    """Test settings: the two small models preloaded, vgg16 listed but never loaded."""
    values = dict(models=("tiny-vgg", "lenet5", "vgg16"), preload=("tiny-vgg", "lenet5"), workers=2)
    values.update(overrides)
    return Settings(**values)


def photo(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A smooth colour picture (blocks of random colours, bilinearly enlarged)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8))
    return small.resize((width, height), Image.Resampling.BILINEAR)


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def upload(data: bytes, name: str = "image.png", content_type: str = "image/png") -> dict:
    return {"files": {"image": (name, data, content_type)}}


@pytest.fixture(scope="session")
def app():
    return create_app(make_settings())


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """A client of a fresh app with some settings changed; closed after the test."""
    clients: list[TestClient] = []

    def factory(raise_server_exceptions: bool = True, **overrides) -> TestClient:
        test_client = TestClient(
            create_app(make_settings(**overrides)), raise_server_exceptions=raise_server_exceptions
        )
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield factory
    for test_client in clients:
        test_client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def photo_png() -> bytes:
    return encode(photo(64, 48, seed=1))


@pytest.fixture(scope="session")
def tiny_run(client, photo_png) -> dict:
    """A tiny-vgg run of a small photo: its summary."""
    response = client.post(f"{API}/models/tiny-vgg/runs", **upload(photo_png))
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="session")
def lenet_run(client) -> dict:
    digit = Image.new("L", (40, 40), 0)
    digit.paste(255, (18, 8, 23, 32))  # a white stroke: a "1"
    response = client.post(f"{API}/models/lenet5/runs", **upload(encode(digit)))
    assert response.status_code == 201, response.text
    return response.json()
