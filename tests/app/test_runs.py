"""RunStore (LRU in bytes, idle expiry), WorkerPool (bounded queue) and RunService (one
computation per identical upload)."""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest

import app.runs as runs_module
from app.errors import ApiError
from app.runs import Run, RunNotFound, RunStore, WorkerPool

from .conftest import API, encode, photo, upload


def fake_run(name: str, nbytes: int) -> Run:
    floats = nbytes // 4
    return Run(
        id=f"id-{name}",
        model_id="m",
        key=("m", name),
        created=0.0,
        input=np.zeros(floats, np.float32),
        outputs={},
        kinds={},
        display=np.zeros((0, 0, 3), np.uint8),
        predictions=[],
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize(
    "values",
    [
        np.array([-2.5, 0.0, 7.25, 1e-3], np.float32),
        np.full(1000, 1e36, np.float32),  # finite values whose float32 sum overflows
        np.array([1.0, np.inf, -3.0], np.float32),
        np.array([1.0, np.nan], np.float32),
    ],
    ids=["plain", "float32-sum-overflows", "inf", "nan"],
)
def test_layer_stats_match_numpy_in_float64(values):
    run = fake_run("stats", 0)
    run.outputs["layer"] = values.reshape(1, -1)
    lo, hi, mean = run.layer_stats("layer")
    wide = values.astype(np.float64)
    np.testing.assert_equal([lo, hi], [wide.min(), wide.max()])
    np.testing.assert_allclose(mean, wide.mean(), rtol=1e-6)


def test_store_evicts_least_recently_used_by_bytes():
    store = RunStore(max_bytes=3000, ttl=100)
    a, b, c = (store.add(fake_run(n, 1000)) for n in "abc")
    assert store.nbytes == 3000 and len(store) == 3
    store.get(a.id)  # a is now more recent than b
    store.add(fake_run("d", 1000))
    assert store.nbytes == 3000
    with pytest.raises(RunNotFound) as caught:
        store.get(b.id)
    assert caught.value.code == "run_expired" and caught.value.status == 404
    assert store.get(a.id) is a and store.get(c.id) is c
    assert store.find(("m", "b")) is None and store.find(("m", "a")) is a
    assert store.evictions == 1


def test_store_keeps_the_newest_run_even_when_too_big():
    store = RunStore(max_bytes=10, ttl=100)
    store.add(fake_run("a", 1000))
    big = store.add(fake_run("b", 5000))
    assert len(store) == 1 and store.get(big.id) is big and store.nbytes == 5000


def test_store_forgets_idle_runs():
    clock = Clock()
    store = RunStore(max_bytes=10**6, ttl=60, clock=clock)
    a = store.add(fake_run("a", 100))
    clock.now = 50
    store.get(a.id)  # use refreshes it
    clock.now = 100
    assert store.get(a.id) is a
    clock.now = 161
    with pytest.raises(RunNotFound):
        store.get(a.id)
    assert store.nbytes == 0


def test_store_same_key_returns_the_kept_run():
    store = RunStore(max_bytes=10**6, ttl=60)
    first = store.add(fake_run("a", 100))
    twin = fake_run("a", 100)
    twin.id = "other-id"
    assert store.add(twin) is first and len(store) == 1


def test_unknown_id_is_not_called_expired():
    with pytest.raises(RunNotFound) as caught:
        RunStore(10, 10).get("nope")
    assert caught.value.code == "run_not_found"


def test_pool_refuses_beyond_its_queue():
    async def scenario():
        pool = WorkerPool(workers=1, queue_limit=1, retry_after=3)
        gate = threading.Event()
        running = pool.submit(gate.wait)
        queued = pool.submit(lambda: 42)
        assert pool.admitted == 2
        with pytest.raises(ApiError) as caught:
            pool.submit(lambda: 0)
        assert caught.value.status == 503 and caught.value.headers == {"Retry-After": "3"}
        gate.set()
        assert await running is True and await queued == 42
        await asyncio.sleep(0)
        assert pool.admitted == 0
        assert await pool.run(lambda: 7) == 7
        pool.shutdown()

    asyncio.run(scenario())


def test_queue_full_answers_503_then_recovers(make_client):
    client = make_client(workers=1, queue_limit=0)
    pool = client.app.state.pool
    gate = threading.Event()
    blocker = pool.start(gate.wait)  # the only worker is busy
    try:
        response = client.post(f"{API}/models/tiny-vgg/runs", **upload(encode(photo(seed=11))))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        error = response.json()["error"]
        assert error["code"] == "server_busy" and "try again" in error["message"]
        # Reading kept runs needs no worker: still served.
        assert client.get(f"{API}/models/tiny-vgg").status_code == 200
    finally:
        gate.set()
        blocker.result(timeout=10)
    assert (
        client.post(f"{API}/models/tiny-vgg/runs", **upload(encode(photo(seed=11)))).status_code
        == 201
    )


def test_identical_concurrent_uploads_compute_once(make_client, monkeypatch):
    client = make_client()
    calls = []
    gate = threading.Event()
    original = runs_module.compute_run

    def counted(*args):
        calls.append(1)
        gate.wait(10)  # hold the first computation until every request has arrived
        return original(*args)

    monkeypatch.setattr(runs_module, "compute_run", counted)
    data = encode(photo(seed=21))

    async def scenario():
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            posts = [
                asyncio.create_task(http.post(f"{API}/models/tiny-vgg/runs", **upload(data)))
                for _ in range(5)
            ]
            while len(client.app.state.run_service._pending) == 0 or not calls:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            gate.set()
            return await asyncio.gather(*posts)

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [201] * 5
    assert len({r.json()["run_id"] for r in responses}) == 1
    assert sorted(r.json()["reused"] for r in responses) == [False] + [True] * 4
    assert len(calls) == 1
