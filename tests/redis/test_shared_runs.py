"""Runs shared through Redis: created by one server process, read through another."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from app.redis_link import RedisLink, StoreUnavailable
from app.runs import RunNotFound, compute_run
from app.shared_runs import RedisRunStore
from engine import zoo

from .conftest import free_port

API = "/api/v1"


def png(seed: int, size: tuple[int, int] = (48, 40)) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def post_run(base: str, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{base}{API}/models/tiny-vgg/runs",
        files={"image": ("x.png", data, "image/png")},
        timeout=30,
    )


def test_a_run_made_on_one_process_is_read_through_the_others(processes):
    a, b, c = processes
    created = post_run(a.url, png(1))
    assert created.status_code == 201, created.text
    run = created.json()
    run_id = run["run_id"]

    summary = httpx.get(f"{b.url}{API}/runs/{run_id}", timeout=30)
    assert summary.status_code == 200, summary.text
    assert summary.json()["predictions"] == run["predictions"]
    assert [(x["name"], x["min"], x["max"]) for x in summary.json()["layers"]] == [
        (x["name"], x["min"], x["max"]) for x in run["layers"]
    ]

    # The same tensor and the same arithmetic from the creator and from two others.
    layers = [
        httpx.get(f"{p.url}{API}/runs/{run_id}/layers/conv1_2", timeout=30).json()
        for p in (a, b, c)
    ]
    assert layers[0]["shape"] == [32, 32, 32]
    for other in layers[1:]:
        np.testing.assert_array_equal(other["data"], layers[0]["data"])
    query = {"channel": 3, "y": 0, "x": 5}
    explained = [
        httpx.get(
            f"{p.url}{API}/runs/{run_id}/layers/conv1_2/explain", params=query, timeout=30
        ).json()
        for p in (a, c)
    ]
    assert explained[0]["value"] == explained[1]["value"]
    assert explained[1]["value"] == pytest.approx(layers[0]["data"][3 * 1024 + 5], rel=1e-6)
    assert explained[1]["products"] == explained[0]["products"]
    png_c = httpx.get(f"{c.url}{API}/runs/{run_id}/layers/conv1_2/channels/3.png", timeout=30)
    assert png_c.status_code == 200 and png_c.content.startswith(b"\x89PNG")
    saliency = httpx.get(
        f"{b.url}{API}/runs/{run_id}/saliency", params={"format": "json"}, timeout=30
    )
    assert saliency.status_code == 200, saliency.text


def test_identical_uploads_get_one_run_id_on_every_process(processes):
    a, b, _ = processes
    data = png(2)
    first = post_run(a.url, data).json()
    second = post_run(b.url, data).json()
    assert second["run_id"] == first["run_id"]
    other = post_run(b.url, png(3)).json()
    assert other["run_id"] != first["run_id"]


def test_an_unknown_run_is_the_same_clear_404_on_every_process(processes):
    for proc in processes:
        response = httpx.get(
            f"{proc.url}{API}/runs/AAAAAAAAAAAAAAAAAAAAAA/layers/conv1_1", timeout=30
        )
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "run_not_found"
        assert "post the image again" in error["message"]


# --- the store itself, against the same Redis -------------------------------------------


@pytest.fixture()
def link(redis_server):
    link = RedisLink(redis_server.url, prefix=f"unit-{time.monotonic_ns()}")
    yield link
    link.close()


def _store(link: RedisLink, ttl: float) -> RedisRunStore:
    model = zoo.load("tiny-vgg")
    store = RedisRunStore(64 << 20, ttl, link)
    store.recompute = lambda run_id, model_id, data: compute_run(
        model_id, model, data, 10**7, run_id
    )
    return store


def test_redis_keeps_the_image_not_the_activations_and_forgets_it_after_the_ttl(link):
    model = zoo.load("tiny-vgg")
    data = png(4)
    writer, reader = _store(link, ttl=1.0), _store(link, ttl=1.0)
    run = writer.add(writer.share(compute_run("tiny-vgg", model, data, 10**7), data))
    record = link.client.hgetall(link.key("run", run.id))
    assert record == {b"model_id": b"tiny-vgg", b"image": data}  # nothing else
    assert 0 < link.client.ttl(link.key("run", run.id)) <= 1

    again = reader.get(run.id)  # another process: computed from the bytes
    assert again is not run and again.id == run.id
    for name, out in run.outputs.items():
        np.testing.assert_array_equal(again.outputs[name], out)
    assert reader.model_of(run.id) == "tiny-vgg"

    time.sleep(1.6)
    with pytest.raises(RunNotFound) as missing:
        _store(link, ttl=1.0).get(run.id)
    assert missing.value.status == 404
    assert _store(link, ttl=1.0).model_of(run.id) is None


def test_an_unreachable_redis_is_a_503_not_a_hang():
    dead = RedisLink(f"redis://127.0.0.1:{free_port()}/0", prefix="x")  # nothing listens
    store = RedisRunStore(1 << 20, 60, dead)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as unavailable:
        store.get("no-such-run")
    assert time.monotonic() - started < 3
    assert unavailable.value.status == 503
    assert unavailable.value.headers["Retry-After"] == "2"


def test_with_redis_down_the_api_answers_503_json_and_pages_503_text():
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app

    settings = Settings(
        models=("tiny-vgg",),
        preload=("tiny-vgg",),
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
    )
    with TestClient(create_app(settings)) as client:
        posted = client.post(
            f"{API}/models/tiny-vgg/runs", files={"image": ("x.png", png(5), "image/png")}
        )
        assert posted.status_code == 503
        assert posted.json()["error"]["code"] == "store_unavailable"
        assert posted.headers["retry-after"] == "2"
        layer = client.get(f"{API}/runs/AAAAAAAAAAAAAAAAAAAAAA/layers/conv1_1")
        assert layer.status_code == 503
        page = client.get("/runs/AAAAAAAAAAAAAAAAAAAAAA")
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/plain")
        assert "shared store (Redis) cannot be reached" in page.text
        assert client.post(f"{API}/live").status_code == 503
        assert client.get("/live/ABCDEF").status_code == 503
        assert client.get("/").status_code == 200  # what needs no Redis still works
        health = client.get(f"{API}/health")
        assert health.status_code == 200 and health.json()["shared_store"] == "unavailable"


def test_a_run_held_in_memory_never_computes_on_lookup_and_outlives_a_redis_outage(link):
    model = zoo.load("tiny-vgg")
    data = png(6)
    store = _store(link, ttl=60.0)
    calls = []
    store.recompute = lambda *args: calls.append(args)  # must not be called below
    run = store.add(store.share(compute_run("tiny-vgg", model, data, 10**7), data))
    assert store.find(run.key) is run

    link.failed(ConnectionError("simulated outage"))  # commands now fail fast
    store._refreshed.clear()  # a refresh of the TTL is due: it must not fail the request
    assert store.get(run.id) is run
    assert store.model_of(run.id) == "tiny-vgg"
    with pytest.raises(StoreUnavailable):
        store.get("not-held-here")
    link.recovered()
    assert calls == []


def test_after_a_failure_commands_fail_fast_for_a_cool_down():
    dead = RedisLink(f"redis://127.0.0.1:{free_port()}/0", prefix="x")
    with pytest.raises(StoreUnavailable):
        dead.call(lambda r: r.ping())
    assert not dead.available
    started = time.monotonic()
    for _ in range(100):
        with pytest.raises(StoreUnavailable):
            dead.call(lambda r: r.ping())
    assert time.monotonic() - started < 0.5  # no connection attempts while cooling down


def test_model_uploads_cannot_be_combined_with_redis():
    from app.config import Settings

    with pytest.raises(ValueError, match="allow_model_upload and redis_url"):
        Settings(redis_url="redis://127.0.0.1:6379/0", allow_model_upload=True)
