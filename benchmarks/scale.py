"""Several server processes on one Redis: tiny-vgg runs per second and classroom fan-out.

Starts a private redis-server (no persistence) on a free loopback port, then for each
process count in --processes starts that many uvicorn servers (one port each, all with
CONVSCOPE_REDIS_URL) and drives them like a load balancer would: --clients clients, each
on its own keep-alive connection to one of the processes in turn, post 640x480 JPEGs
(each different, so each is a real decode + forward pass) for --seconds. A row with one
process and no Redis is the baseline. Then --followers WebSocket students spread over
--live-processes processes follow a presenter on the first one at --rate states per
second (benchmarks/live.py), measuring delivery latency and states lost.

Everything (servers, Redis, the clients) shares this machine's cores: beyond the core
count, more processes cannot add throughput.

    OPENBLAS_NUM_THREADS=1 python benchmarks/scale.py [--seconds 15] [--followers 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import live  # noqa: E402  (benchmarks/live.py)
from server import cpu_seconds, free_port, load_level, photo_jpeg  # noqa: E402


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(folder)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    if proc.poll() is not None:
        raise SystemExit(f"{binary} did not start")
    return proc, f"redis://127.0.0.1:{port}/0"


def start_servers(count: int, redis_url: str | None) -> list[tuple[subprocess.Popen, str]]:
    env = {
        "CONVSCOPE_REDIS_URL": redis_url or "",
        "CONVSCOPE_REDIS_PREFIX": f"scale{time.time_ns()}",
        # One class of --followers students: above the default limit of 500 per class
        # (which counts the students of every process).
        "CONVSCOPE_LIVE_MAX_STUDENTS": "5000",
    }
    return [live.start_server(env) for _ in range(count)]


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def throughput(count: int, redis_url: str | None, clients: int, seconds: float) -> dict:
    servers = start_servers(count, redis_url)
    procs = [p for p, _ in servers]
    try:
        urls = [u for _, u in servers]
        base, counter = photo_jpeg(), [0]
        asyncio.run(load_level(urls, base, clients, 2.0, counter))  # warm-up
        cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        result = asyncio.run(load_level(urls, base, clients, seconds, counter))
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
        result["server_cpu_ms_per_run"] = round(1000 * cpu / max(result["runs"], 1), 2)
    finally:
        stop(procs)
    return {"processes": count, "redis": redis_url is not None, "clients": clients, **result}


def classroom(count: int, redis_url: str, followers: int, seconds: float, rate: float) -> dict:
    servers = start_servers(count, redis_url)
    procs = [p for p, _ in servers]
    try:
        urls = [u for _, u in servers]
        result = asyncio.run(live.run(urls, followers, seconds, rate, [p.pid for p in procs]))
    finally:
        stop(procs)
    return {"processes": count, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", default="1,2,4", help="process counts to measure")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--live-processes", type=int, default=4)
    parser.add_argument("--live-seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--skip-live", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="convscope-scale-"))
    redis_proc, redis_url = start_redis(folder)
    results: dict = {"load_average_before": os.getloadavg()[0], "throughput": []}
    try:
        rows = [(1, None)] + [(int(n), redis_url) for n in args.processes.split(",")]
        for count, url in rows:
            row = throughput(count, url, args.clients, args.seconds)
            row["load_average_1min"] = round(os.getloadavg()[0], 2)
            print(json.dumps(row), file=sys.stderr)
            results["throughput"].append(row)
        if not args.skip_live:
            live_row = classroom(
                args.live_processes, redis_url, args.followers, args.live_seconds, args.rate
            )
            live_row["load_average_1min"] = round(os.getloadavg()[0], 2)
            results["classroom"] = live_row
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
