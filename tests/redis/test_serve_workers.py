"""`convscope serve --workers N`: N processes behind one port, sharing one Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from .conftest import REPO, app_env, free_port
from .test_shared_runs import API, png

CONVSCOPE = [sys.executable, "-m", "app.cli"]


def test_several_workers_without_redis_are_refused():
    env = {k: v for k, v in os.environ.items() if k != "CONVSCOPE_REDIS_URL"}
    done = subprocess.run(
        [*CONVSCOPE, "serve", "--workers", "2", "--port", str(free_port())],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers 2 needs CONVSCOPE_REDIS_URL" in done.stderr


def _children(parent: int) -> set[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return {int(pid) for pid in children.read_text().split()} if children.exists() else set()


def test_two_workers_serve_every_run_whichever_process_answers(redis_server, tmp_path):
    port = free_port()
    env = app_env(redis_server.url, f"workers-{uuid.uuid4().hex[:8]}")
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*CONVSCOPE, "serve", "--workers", "2", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        ready = 0
        while ready < 10:  # both workers up: ten health checks in a row answer
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "the workers did not start"
            try:
                httpx.get(f"{base}/api/v1/health", timeout=2).raise_for_status()
                ready += 1
            except httpx.HTTPError:
                ready = 0
                time.sleep(0.2)
        # Each new connection goes to whichever worker accepts it first: two processes,
        # both children of the command, answer.
        answered = set()
        for _ in range(200):
            answered.add(httpx.get(f"{base}/api/v1/health", timeout=10).json()["process"])
            if len(answered) == 2:
                break
        assert len(answered) == 2 and answered <= _children(proc.pid)

        with httpx.Client(base_url=base, timeout=30) as client:
            # New connections each time, so the kernel spreads them over both workers.
            run_ids = []
            for seed in range(6):
                created = httpx.post(
                    f"{base}{API}/models/tiny-vgg/runs",
                    files={"image": ("x.png", png(100 + seed), "image/png")},
                    timeout=30,
                )
                assert created.status_code == 201, created.text
                run_ids.append(created.json()["run_id"])
            for run_id in run_ids:
                for _ in range(4):
                    response = httpx.get(f"{base}{API}/runs/{run_id}/layers/pool3", timeout=30)
                    assert response.status_code == 200, response.text
                    assert response.json()["shape"] == [64, 4, 4]
            code = client.post(f"{API}/live").json()["code"]
            for _ in range(6):
                assert httpx.get(f"{base}{API}/live/{code}", timeout=30).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the workers did not stop on SIGTERM")
        log.close()
