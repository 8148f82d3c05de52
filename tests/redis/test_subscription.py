"""The classroom subscription of one process: quiet is not failure, a Redis that stops
answering (half-open connection) is noticed, and the subscription comes back."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from app import live_redis
from app.live_redis import RedisLiveHub
from app.redis_link import RedisLink

from .conftest import RedisServer


class NoModels:
    def model(self, model_id):
        return None

    def run_model(self, run_id):
        return None


@pytest.fixture()
def own_redis(redis_server, tmp_path):
    """A Redis of this test's own, to stop and continue (SIGSTOP/SIGCONT)."""
    server = RedisServer(redis_server.binary, tmp_path)
    server.start()
    yield server
    if server.proc is not None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


async def _until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def test_a_quiet_subscription_stays_and_a_stalled_redis_is_noticed(own_redis, monkeypatch):
    monkeypatch.setattr(live_redis, "PING_SECONDS", 0.2)

    async def scenario() -> None:
        link = RedisLink(own_redis.url, prefix="sub")
        hub = RedisLiveHub(NoModels(), link)
        hub.ensure_sweeper()
        assert await _until(hub.subscribed.is_set, 5)
        await asyncio.sleep(1.5)  # many ping intervals with no event at all
        assert hub.resyncs == 1 and hub.subscribed.is_set()

        os.kill(own_redis.proc.pid, signal.SIGSTOP)  # the connection stays open, silent
        assert await _until(lambda: not hub.subscribed.is_set(), 3)
        os.kill(own_redis.proc.pid, signal.SIGCONT)
        assert await _until(hub.subscribed.is_set, 10)
        assert hub.resyncs >= 2
        await hub.close()
        link.close()

    # On a thread of its own: the browser tests' Playwright keeps an event loop running
    # in the main thread of the same pytest process.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(scenario())
        except BaseException as exc:  # handed to the test's thread below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the scenario did not finish within 60 s"
    if errors:
        raise errors[0]
