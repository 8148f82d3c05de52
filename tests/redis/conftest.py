"""A real Redis (Debian's redis-server on a free loopback port) and several convscope
server processes sharing it, for the tests of issue 9.

``make test`` installs redis-server when it is missing; these fixtures start it with
the append-only file on (in a temporary folder), so that a restarted Redis still has
its data, as a production Redis with persistence would. CONVSCOPE_SKIP_REDIS=1 skips
these tests on a machine without it; anywhere else a missing redis-server fails them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # seconds: imports and model set-up on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(check, what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not start within {timeout:.0f} s", pytrace=False)
        time.sleep(0.05)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class RedisServer:
    """redis-server on ``port``, stopped and started again by the tests."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def _pings(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        command = [
            self.binary,
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.folder), "--save", "", "--appendonly", "yes",
            "--daemonize", "no", "--logfile", str(self.folder / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(self._pings, "redis-server", 20)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): the append-only file keeps the data."""
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if os.environ.get("CONVSCOPE_SKIP_REDIS") == "1":
        pytest.skip("CONVSCOPE_SKIP_REDIS=1: the Redis tests are skipped")
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if binary is None:
        pytest.fail(
            "redis-server is missing: `make test` installs it (apt-get install redis-server); "
            "or skip these tests with CONVSCOPE_SKIP_REDIS=1",
            pytrace=False,
        )
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


class AppProcess:
    """One convscope server process (uvicorn) using the shared Redis."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"server exited: see {self.log}", pytrace=False)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def start(self) -> None:
        command = [
            sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait(self._answers, f"server on port {self.port}")

    def kill(self) -> None:
        """An abrupt end (SIGKILL): no goodbye to Redis or to the WebSockets."""
        if self.proc is not None:
            _stop(self.proc, signal.SIGKILL)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


def app_env(redis_url: str, prefix: str, **settings: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CONVSCOPE_REDIS_URL=redis_url,
        CONVSCOPE_REDIS_PREFIX=prefix,
        CONVSCOPE_MODELS="tiny-vgg",
        CONVSCOPE_PRELOAD="tiny-vgg",
        OPENBLAS_NUM_THREADS="1",
    )
    env.update({f"CONVSCOPE_{k.upper()}": v for k, v in settings.items()})
    return env


@pytest.fixture(scope="module")
def processes(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[AppProcess]]:
    """Three server processes on one Redis, with a key prefix of their own."""
    folder = tmp_path_factory.mktemp("servers")
    env = app_env(redis_server.url, f"test-{uuid.uuid4().hex[:8]}")
    procs = [AppProcess(env, folder / f"server{i}.log") for i in range(3)]
    for proc in procs:
        proc.start()
    yield procs
    for proc in procs:
        proc.stop()
