"""Classroom fan-out: N WebSocket students on loopback follow one presenter.

Starts a server (uvicorn, in a subprocess, unless --url is given), creates a tiny-vgg run
and a class, connects N students, then the presenter steps through conv1_1's cells at
--rate states per second for --seconds. Every state carries the presenter's wall clock
(``sent_at``, ms), so each student measures delivery latency on the same machine's clock.
Reports latency p50/p99/max, messages lost (states a student should have seen but did
not: the server replaces a waiting state by a newer one, so a slow student skips rather
than queues), and the server's CPU time and peak memory (from /proc, Linux only).

The students run in --client-processes Python processes (default 2) beside the server:
in a classroom each student's device parses its own messages, while here the students'
WebSocket clients need about 0.1 ms of CPU per message, more than the server spends per
delivery, and they compete with the server for the same cores, so latencies are upper
bounds.

    OPENBLAS_NUM_THREADS=1 python benchmarks/live.py [--clients 500] [--seconds 60] [--rate 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from multiprocessing.connection import Connection
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
API = "/api/v1"
LAYER = "conv1_1"  # tiny-vgg: 32 channels of 32 x 32


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, fields: dict[str, str] | None = None) -> dict:
    data = None
    headers = {}
    if fields:
        boundary = "convscope-bench"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in fields.items()
        ]
        data = ("".join(parts) + f"--{boundary}--\r\n").encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    request = urllib.request.Request(url, data=data or b"", headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _proc_memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def start_server(extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "CONVSCOPE_PRELOAD": "tiny-vgg",
        "CONVSCOPE_MODELS": "tiny-vgg",
        **(extra_env or {}),
    }
    # Without per-message compression, as `convscope serve` runs it.
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "--ws-per-message-deflate", "false"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + f"{API}/models", timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("the server did not start within 120 s")


async def follow(url: str, latencies: list[float], seqs: list[int], ready: asyncio.Event) -> None:
    """One student: record the seq and latency of every state (until cancelled)."""
    async with connect(url, max_queue=None, ping_interval=None) as ws:
        ready.set()
        async for text in ws:
            received = time.time() * 1000
            message = orjson.loads(text)
            if message["type"] == "state" and message["state"]["sent_at"] is not None:
                seqs.append(message["seq"])
                latencies.append(received - message["state"]["sent_at"])


async def _students(urls: list[str], pipe: Connection) -> None:
    """One client process's students: connect (in batches of 50), say ready, follow until
    told to stop, then send back every latency, the states received and the CPU used."""
    latencies: list[float] = []
    seqs: list[int] = []
    tasks = []
    for start in range(0, len(urls), 50):
        batch = []
        for url in urls[start : start + 50]:
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(follow(url, latencies, seqs, ready)))
            batch.append(ready.wait())
        await asyncio.wait_for(asyncio.gather(*batch), timeout=60)
    cpu0 = time.process_time()
    pipe.send("ready")
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
    cpu = time.process_time() - cpu0
    dropped = sum(task.done() for task in tasks)  # closed by the server (e.g. class full)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send((latencies, len(seqs), cpu, dropped))


def _student_process(urls: list[str], pipe: Connection) -> None:
    asyncio.run(_students(urls, pipe))


def _servers_cpu(pids: list[int]) -> float:
    return sum(_proc_cpu_seconds(pid) for pid in pids)


async def run(
    bases: list[str],
    clients: int,
    seconds: float,
    rate: float,
    pids: list[int],
    client_processes: int = 2,
) -> dict:
    """The presenter (and the run) on ``bases[0]``; students spread over all ``bases``
    in turn (several processes sharing one Redis: benchmarks/scale.py), and over
    ``client_processes`` processes of their own (in a classroom every student has a
    device; one Python process parsing every student's messages would measure itself)."""
    base = bases[0]
    sample = "cifar10-airplane-1"
    run_summary = _post(f"{base}{API}/models/tiny-vgg/runs", {"sample": sample})
    session = _post(f"{base}{API}/live")
    path = f"{API}/live/{session['code']}/ws"
    ws_base = base.replace("http://", "ws://") + path
    urls = [bases[i % len(bases)].replace("http://", "ws://") + path for i in range(clients)]

    context = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for k in range(client_processes):
        parent, child = context.Pipe()
        proc = context.Process(target=_student_process, args=(urls[k::client_processes], child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for pipe in pipes:
        if not pipe.poll(120) or pipe.recv() != "ready":
            raise SystemExit("the students did not connect within 120 s")

    cpu0 = _servers_cpu(pids)
    sent = 0
    accepted_seq = 0
    # The presenter reads its messages only at the end: an unbounded queue, or the client
    # would stop reading at 16 messages and miss the server's keepalive pings.
    presenter_url = f"{ws_base}?token={session['presenter_token']}"
    async with connect(presenter_url, max_queue=None, ping_interval=None) as presenter:
        base_state = {"view": "layer", "model_id": "tiny-vgg", "run_id": run_summary["run_id"],
                      "layer": LAYER, "playing": False}  # fmt: skip
        started = time.monotonic()
        next_at = started
        while time.monotonic() - started < seconds:
            step = sent % (32 * 32)
            cell = {"channel": 0, "y": step // 32, "x": step % 32}
            state = {**base_state, "cell": cell, "step": step, "sent_at": time.time() * 1000}
            await presenter.send(orjson.dumps({"type": "set", "state": state}).decode())
            sent += 1
            # A late presenter does not catch up in a burst (the server would rate-limit it).
            next_at = max(next_at + 1.0 / rate, time.monotonic())
            await asyncio.sleep(next_at - time.monotonic())
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.0)  # let the last states arrive
        await presenter.send('{"type":"sync"}')
        while True:
            message = orjson.loads(await asyncio.wait_for(presenter.recv(), timeout=10))
            if message["type"] == "error":
                raise SystemExit(f"the server refused a state: {message['message']}")
            if message["type"] == "state":
                accepted_seq = message["seq"]
                if message["state"]["sent_at"] is not None and accepted_seq >= sent:
                    break
    cpu1 = _servers_cpu(pids)
    latencies, received, clients_cpu, dropped = [], 0, 0.0, 0
    for pipe in pipes:
        pipe.send("stop")
    for pipe, proc in zip(pipes, procs, strict=True):
        part, count, cpu, closed = pipe.recv()
        latencies.extend(part)
        received += count
        clients_cpu += cpu
        dropped += closed
        proc.join(30)
    latencies.sort()
    expected = accepted_seq * clients
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    result = {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "rate": rate,
        "states_sent": sent,
        "deliveries_expected": expected,
        "deliveries_received": received,
        "lost": expected - received,
        "students_disconnected": dropped,
        "latency_ms": {
            "p50": round(q[49], 2),
            "p99": round(q[98], 2),
            "max": round(latencies[-1], 2) if latencies else None,
        },
    }
    # The students' own work competes with the server on a small machine.
    result["client_processes"] = client_processes
    result["clients_cpu_percent_of_one_core"] = round(100 * clients_cpu / elapsed, 1)
    if pids:
        result["server_cpu_percent_of_one_core"] = round(100 * (cpu1 - cpu0) / elapsed, 1)
        # Load-independent cost: server CPU per 1000 states delivered.
        result["server_cpu_ms_per_1000_deliveries"] = round(
            1e6 * (cpu1 - cpu0) / max(received, 1), 1
        )
        memory = [_proc_memory_mb(pid) for pid in pids]
        result["server_memory_mb"] = {
            k: round(sum(m[k] for m in memory), 1) for k in ("VmRSS", "VmHWM")
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=10.0, help="presenter states per second")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes the students run in"
    )
    parser.add_argument("--url", help="an already running server (CPU/memory not measured)")
    args = parser.parse_args()

    proc = None
    base = args.url
    if base is None:
        proc, base = start_server()
    try:
        pids = [proc.pid] if proc else []
        result = asyncio.run(
            run([base], args.clients, args.seconds, args.rate, pids, args.client_processes)
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
    load = os.getloadavg()
    result["load_average_1min"] = round(load[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
