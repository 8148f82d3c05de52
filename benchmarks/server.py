"""Server benchmark: uvicorn on loopback, N concurrent clients, latency, errors, memory.

    python benchmarks/server.py --quick            # about a minute
    python benchmarks/server.py                    # the full run (longer levels, VGG-16 over HTTP)
    python benchmarks/server.py --soak 600         # add a 10-minute soak of repeated uploads

Measures, for tiny-vgg and a 640x480 JPEG (each upload made unique by a JPEG comment, so
every request is a real decode + forward pass, not a cache hit): runs/s, p50/p95/p99
latency and errors at 1, 8, 32 and 128 concurrent clients, and the server's peak RSS
(VmHWM of the uvicorn process). Then: latency of a layer fetch and an explain call, the
bytes a page needs for a full tiny-vgg overview, and VGG-16 conv1_1 (3.2 million values)
as JSON floats vs f16, serialised in-process and fetched from the server. Fetches are timed
with the raw client (the server's latency and CPU time per request) and, for comparison,
with httpx.

The clients run in this process on the same machine as the server: on 2 cores they take
CPU from it, so read the numbers as a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

API = "/api/v1"


# --- helpers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo_jpeg(width: int = 640, height: int = 480, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8))
    image = small.resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.normal(0, 6, (height, width, 3))
    image = Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def unique_jpeg(base: bytes, counter: int) -> bytes:
    """The same picture with a JPEG comment (COM segment) holding a counter: new bytes,
    the same decoding work."""
    payload = f"convscope benchmark {counter}".encode()
    return base[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + base[2:]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0])
    return fields


class Server:
    """uvicorn running create_app() in a subprocess on a free loopback port."""

    def __init__(self, env: dict[str, str], cwd: Path = REPO) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **env}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=cwd,  # the tree whose app runs (benchmarks/ab.py runs another revision's)
            env=full_env,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}{API}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not start within 60 s")

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def memory(self) -> dict[str, int]:
        return memory_kb(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- measurements -------------------------------------------------------------------------


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client on one socket. httpx spends about as much CPU
    per request as the server does, and on 2 shared cores that would halve the load the
    server can be given; this costs a fraction of a millisecond."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        content = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            await self.close()
        return status, headers, content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


BOUNDARY = b"convscope-benchmark-boundary"


def multipart_post(host: str, port: int, path: str, image: bytes) -> tuple[bytes, bytes]:
    """Head and body of a multipart POST with the field ``image``."""
    body = (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="image"; filename="photo.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + image + b"\r\n--" + BOUNDARY + b"--\r\n"
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY.decode()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head, body


async def load_level(
    url: str | list[str],
    base: bytes,
    clients: int,
    seconds: float,
    counter: list[int],
    unique: bool = True,
) -> dict:
    """``clients`` clients, each on its own keep-alive connection, posting runs back to back
    for ``seconds``; with several URLs (server processes), client i uses URL i mod n, as a
    load balancer would."""
    urls = [url] if isinstance(url, str) else url
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(url: str) -> None:
        nonlocal errors
        host, port = url.removeprefix("http://").split(":")
        connection = RawConnection(host, int(port))
        while time.perf_counter() < stop_at:
            counter[0] += 1
            data = unique_jpeg(base, counter[0]) if unique else base
            head, body = multipart_post(host, int(port), f"{API}/models/tiny-vgg/runs", data)
            started = time.perf_counter()
            try:
                status, headers, _ = await connection.request(head, body)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                statuses[0] = statuses.get(0, 0) + 1
                await connection.close()
                continue
            statuses[status] = statuses.get(status, 0) + 1
            if status == 201:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
                if status == 503:  # as a polite client would
                    await asyncio.sleep(float(headers.get("retry-after", "1")))
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(urls[i % len(urls)]) for i in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "runs": len(latencies),
        "runs_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "errors": errors,
        "statuses": statuses,
    }


def timed_gets(http: httpx.Client, path: str, repeat: int) -> dict:
    """Sequential GETs with httpx (as a script would fetch): latency as the client sees it,
    including httpx's own parsing (about 2 ms for a 350 KB body)."""
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = http.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        size = len(response.content)
    return {
        "path": path,
        "p50_ms": round(percentile(times, 50) * 1000, 2),
        "p95_ms": round(percentile(times, 95) * 1000, 2),
        "bytes": size,
    }


def raw_gets(server: Server, path: str, repeat: int, warmup: int = 10) -> dict:
    """Sequential GETs on one keep-alive connection with the raw client (a fraction of a
    millisecond per request, like a browser's native fetch): the server's latency, and its
    CPU time per request."""
    host, port = server.url.removeprefix("http://").split(":")
    head = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()

    async def run() -> tuple[list[float], float, int]:
        connection = RawConnection(host, int(port))
        for _ in range(warmup):
            await connection.request(head, b"")
        times, size = [], 0
        cpu_before = server.cpu()
        for _ in range(repeat):
            started = time.perf_counter()
            status, _, body = await connection.request(head, b"")
            times.append(time.perf_counter() - started)
            assert status == 200, (path, status, body[:200])
            size = len(body)
        cpu = server.cpu() - cpu_before
        await connection.close()
        return times, cpu, size

    times, cpu, size = asyncio.run(run())
    return {
        "path": path,
        "p50_ms": round(percentile(times, 50) * 1000, 2),
        "p95_ms": round(percentile(times, 95) * 1000, 2),
        "server_cpu_ms": round(cpu / repeat * 1000, 2),
        "bytes": size,
    }


def overview_bytes(http: httpx.Client, run: dict) -> dict:
    """What a page fetches to show every channel of every layer of a tiny-vgg run."""
    summary = http.get(f"{API}/runs/{run['run_id']}")
    detail = http.get(f"{API}/models/tiny-vgg")
    channel_pngs = atlases = 0
    count = 0
    for layer in run["layers"]:
        if len(layer["shape"]) != 3:
            continue
        for c in range(layer["shape"][0]):
            channel_pngs += len(
                http.get(
                    f"{API}/runs/{run['run_id']}/layers/{layer['name']}/channels/{c}.png"
                ).content
            )
            count += 1
        atlases += len(
            http.get(f"{API}/runs/{run['run_id']}/layers/{layer['name']}/channels.png").content
        )
    input_png = len(http.get(run["input"]["image_url"]).content)
    return {
        "channel_pngs": count,
        "channel_png_bytes": channel_pngs,
        "atlas_png_bytes": atlases,
        "summary_json_bytes": len(summary.content),
        "model_json_bytes": len(detail.content),
        "input_png_bytes": input_png,
        "total_with_channel_pngs": channel_pngs + len(summary.content) + input_png,
        "total_with_atlases": atlases + len(summary.content) + input_png,
    }


def serialisation_in_process(repeat: int) -> dict:
    """VGG-16 conv1_1's size (64 x 224 x 224) through app.serialize, best of ``repeat``; with,
    for comparison in the same run, the single-threaded f16 of before (astype, b64encode,
    decode, orjson of the text)."""
    import base64

    import orjson

    from app.serialize import dumps, encode_tensor

    values = np.random.default_rng(0).normal(size=(64, 224, 224)).astype(np.float32)

    def body(encoding: str) -> bytes:
        return dumps({"data": encode_tensor(values, encoding)})

    def f16_single_thread() -> bytes:
        text = base64.b64encode(values.reshape(-1).astype("<f2").tobytes()).decode("ascii")
        return orjson.dumps({"data": text})

    def cast() -> np.ndarray:
        return values.reshape(-1).astype("<f2")

    half = cast().tobytes()
    cases = {
        "json": lambda: body("json"),
        "f16": lambda: body("f16"),
        "f16_single_thread_reference": f16_single_thread,
        "f16_cast_only": cast,
        "f16_base64_only": lambda: base64.b64encode(half),
    }
    result: dict = {"values": int(values.size)}
    for name, fn in cases.items():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - started)
        result[f"{name}_ms"] = round(min(times) * 1000, 1)
        result[f"{name}_median_ms"] = round(percentile(times, 50) * 1000, 1)
        if name in ("json", "f16"):
            result[f"{name}_mb"] = round(len(out) / 1e6, 2)
    return result


def vgg16_over_http(server: Server, base: bytes, repeat: int) -> dict:
    with httpx.Client(base_url=server.url, timeout=300) as http:
        started = time.perf_counter()
        run = http.post(f"{API}/models/vgg16/runs", files={"image": ("p.jpg", base, "image/jpeg")})
        first = time.perf_counter() - started
        assert run.status_code == 201, run.text[:300]
        run_id = run.json()["run_id"]
        started = time.perf_counter()
        http.post(
            f"{API}/models/vgg16/runs",
            files={"image": ("p.jpg", unique_jpeg(base, -1), "image/jpeg")},
        )
        second = time.perf_counter() - started
    out = {"first_run_s (loads the model)": round(first, 2), "run_s": round(second, 2)}
    for encoding in ("json", "f16"):
        stats = raw_gets(
            server, f"{API}/runs/{run_id}/layers/conv1_1?encoding={encoding}", repeat, warmup=1
        )
        out[f"conv1_1_{encoding}_p50_ms"] = stats["p50_ms"]
        out[f"conv1_1_{encoding}_server_cpu_ms"] = stats["server_cpu_ms"]
        out[f"conv1_1_{encoding}_mb"] = round(stats["bytes"] / 1e6, 2)
    return out


def soak(seconds: float, cache_mb: int, base: bytes) -> dict:
    """Unique uploads from 8 clients for ``seconds`` on a fresh tiny-vgg server whose run cache
    is ``cache_mb``: once the cache is full, memory must stay flat while runs are evicted."""
    server = Server(
        {
            "CONVSCOPE_MODELS": "tiny-vgg",
            "CONVSCOPE_PRELOAD": "tiny-vgg",
            "CONVSCOPE_RUN_CACHE_BYTES": str(cache_mb * 1024 * 1024),
        }
    )
    samples = []
    counter = [10**9]
    try:
        started = time.time()
        while time.time() - started < seconds:
            level = asyncio.run(load_level(server.url, base, 8, min(15.0, seconds), counter))
            health = httpx.get(f"{server.url}{API}/health").json()
            samples.append(
                {
                    "t_s": round(time.time() - started),
                    "rss_mb": round(server.memory()["VmRSS"] / 1024, 1),
                    "runs_per_s": level["runs_per_s"],
                    "errors": level["errors"],
                    "runs_kept": health["runs"],
                    "evictions": health["evictions"],
                }
            )
            print("soak", json.dumps(samples[-1]), flush=True)
        peak = round(server.memory()["VmHWM"] / 1024, 1)
    finally:
        server.stop()
    return {"cache_mb": cache_mb, "samples": samples, "peak_rss_mb": peak}


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short levels, no VGG-16 over HTTP")
    parser.add_argument("--seconds", type=float, help="seconds per concurrency level")
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument(
        "--soak", type=float, default=0, help="seconds of repeated uploads, RSS sampled"
    )
    parser.add_argument("--only-soak", action="store_true", help="skip everything but the soak")
    parser.add_argument(
        "--soak-cache-mb",
        type=int,
        default=64,
        help="run cache of the soak's server: small, so that eviction starts early",
    )
    parser.add_argument(
        "--vgg16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run VGG-16 on the server (default: on in the full run)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    repeat = 30 if args.quick else 200
    use_vgg = (not args.quick) if args.vgg16 is None else args.vgg16
    levels = [int(n) for n in args.levels.split(",")]

    if args.only_soak:
        result = soak(args.soak or 60, args.soak_cache_mb, photo_jpeg())
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
        return 0
    models = "tiny-vgg,lenet5" + (",vgg16" if use_vgg else "")
    server = Server({"CONVSCOPE_MODELS": models, "CONVSCOPE_PRELOAD": "tiny-vgg,lenet5"})
    results: dict = {
        "command": " ".join(["python", "benchmarks/server.py", *(argv or sys.argv[1:])]),
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    try:
        base = photo_jpeg()
        results["jpeg_bytes"] = len(base)
        results["rss_idle_kb"] = server.memory()["VmRSS"]
        counter = [0]
        asyncio.run(load_level(server.url, base, 4, 1.0, counter))  # warm-up
        results["levels"] = []
        for clients in levels:
            cpu_before, client_before = server.cpu(), time.process_time()
            level = asyncio.run(load_level(server.url, base, clients, seconds, counter))
            # CPU time per run does not depend on what else the machine is doing: with the
            # wall-clock numbers it tells how much of a slowdown is the machine's load.
            runs = max(level["runs"], 1)
            level["server_cpu_ms_per_run"] = round((server.cpu() - cpu_before) / runs * 1000, 2)
            level["client_cpu_ms_per_run"] = round(
                (time.process_time() - client_before) / runs * 1000, 2
            )
            level["server_hwm_mb"] = round(server.memory()["VmHWM"] / 1024, 1)
            results["levels"].append(level)
            print(json.dumps(level), flush=True)
        cpu_before = server.cpu()
        repeated = asyncio.run(load_level(server.url, base, 32, seconds, counter, unique=False))
        repeated["server_cpu_ms_per_run"] = round(
            (server.cpu() - cpu_before) / max(repeated["runs"], 1) * 1000, 2
        )
        results["repeated_upload_32_clients"] = repeated
        print("repeated", json.dumps(repeated), flush=True)

        with httpx.Client(base_url=server.url, timeout=60) as http:
            run = http.post(
                f"{API}/models/tiny-vgg/runs", files={"image": ("p.jpg", base, "image/jpeg")}
            ).json()
            rid = run["run_id"]
            paths = [
                f"{API}/runs/{rid}/layers/conv1_1",
                f"{API}/runs/{rid}/layers/conv1_1?encoding=f16",
                f"{API}/runs/{rid}/layers/conv2_1?channel=0",
                f"{API}/runs/{rid}/layers/conv2_1/explain?channel=3&y=4&x=5",
                f"{API}/runs/{rid}/layers/fc1/explain?index=7",
                f"{API}/runs/{rid}/layers/conv1_1/channels/0.png",
                f"{API}/runs/{rid}/layers/conv2_1/channels.png",
                f"{API}/runs/{rid}/saliency",
            ]
            results["fetch"] = []
            for path in paths:
                row = raw_gets(server, path, repeat)
                row["httpx_p50_ms"] = timed_gets(http, path, repeat)["p50_ms"]
                results["fetch"].append(row)
                print(json.dumps(row), flush=True)
            results["overview"] = overview_bytes(http, run)
            print(json.dumps(results["overview"]), flush=True)

        results["serialisation_in_process"] = serialisation_in_process(7 if args.quick else 11)
        print(json.dumps(results["serialisation_in_process"]), flush=True)
        if use_vgg:
            results["vgg16_http"] = vgg16_over_http(server, base, 3 if args.quick else 5)
            print(json.dumps(results["vgg16_http"]), flush=True)

        results["server_peak_rss_mb"] = round(server.memory()["VmHWM"] / 1024, 1)
        results["server_rss_end_mb"] = round(server.memory()["VmRSS"] / 1024, 1)
    finally:
        server.stop()
    if args.soak > 0:
        results["soak"] = soak(args.soak, args.soak_cache_mb, base)
    results["load_average_after"] = os.getloadavg()
    print(
        json.dumps(
            {
                k: results[k]
                for k in ("server_peak_rss_mb", "server_rss_end_mb", "load_average_after")
            }
        )
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
