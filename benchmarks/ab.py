"""Interleaved A/B: this working tree against a git revision, round after round.

On a shared machine two separate runs minutes apart differ by more than most changes do, so
a change is measured by alternating the two versions in fresh processes, several rounds,
and comparing medians (and per-round ratios). The revision is checked out into a temporary
git worktree (removed afterwards; after a kill, `git worktree prune` clears it). "tree" is
this working tree as it is, uncommitted edits included.

    OPENBLAS_NUM_THREADS=1 python benchmarks/ab.py forward --base HEAD~2 [--model tiny-vgg]
    OPENBLAS_NUM_THREADS=1 python benchmarks/ab.py server --base HEAD~2 [--clients 32]

``forward``: CPU milliseconds per forward pass (process CPU time over N passes after a
warm-up; CPU time is less sensitive to other processes than wall time) and the wall median;
lower is better. ``server``: uvicorn from each tree on loopback, tiny-vgg runs from unique
640x480 JPEGs at N clients (the load of ``benchmarks/server.py``), runs/s (higher is better)
and server CPU per run. Each run first checks that it imports its own tree's code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

FORWARD_SNIPPET = """
import json, sys, time
import numpy as np
import app, engine
from engine import zoo
model = zoo.load(sys.argv[1])
x = np.random.default_rng(0).random((int(sys.argv[2]), *model.input_spec.shape), np.float32)
passes = int(sys.argv[3])
for _ in range(max(5, passes // 10)):
    model.forward(x)
walls = []
cpu = time.process_time()
for _ in range(passes):
    started = time.perf_counter()
    model.forward(x)
    walls.append(time.perf_counter() - started)
cpu = time.process_time() - cpu
print(json.dumps({"cpu_ms": cpu / passes * 1e3, "wall_median_ms": sorted(walls)[passes // 2] * 1e3,
                  "code": [app.__path__[0], engine.__path__[0]]}))
"""


@contextmanager
def worktree(revision: str):
    """A checkout of ``revision`` in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="convscope-ab-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), revision],
            check=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False
            )


def _run(tree: Path, *args: str) -> str:
    """stdout of ``python args`` run in ``tree`` with that tree first on the path."""
    out = subprocess.run(
        [sys.executable, *args],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed in {tree}:\n{out.stderr}")
    return out.stdout


def _check_code(tree: Path, paths: list[str]) -> None:
    expected = [(tree / "app").resolve(), (tree / "engine").resolve()]
    if [Path(p).resolve() for p in paths] != expected:
        raise RuntimeError(f"a run in {tree} imported another tree's code: {paths}")


def forward_sample(tree: Path, model: str, batch: int, passes: int) -> dict:
    sample = json.loads(_run(tree, "-c", FORWARD_SNIPPET, model, str(batch), str(passes)))
    _check_code(tree, sample.pop("code"))
    return sample


def server_sample(tree: Path, clients: int, seconds: float) -> dict:
    from server import Server, load_level, photo_jpeg

    # uvicorn imports app.main the way this does: cwd and PYTHONPATH both the tree
    code = "import json, app, engine; print(json.dumps([app.__path__[0], engine.__path__[0]]))"
    _check_code(tree, json.loads(_run(tree, "-c", code)))
    env = {"CONVSCOPE_MODELS": "tiny-vgg", "CONVSCOPE_PRELOAD": "tiny-vgg", "PYTHONPATH": str(tree)}
    server = Server(env, cwd=tree)
    try:
        counter = [0]
        base = photo_jpeg()
        asyncio.run(load_level(server.url, base, clients, 2.0, counter))  # warm-up
        cpu = server.cpu()
        result = asyncio.run(load_level(server.url, base, clients, seconds, counter))
        cpu = server.cpu() - cpu
    finally:
        server.stop()
    return {
        "runs_per_s": result["runs_per_s"],
        "p99_ms": result["p99_ms"],
        "errors": result["errors"],
        "server_cpu_ms_per_run": round(cpu / max(result["runs"], 1) * 1e3, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("forward", "server"))
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--model", default="tiny-vgg")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--passes", type=int, default=300)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)

    key = "cpu_ms" if args.mode == "forward" else "runs_per_s"
    samples: dict[str, list[dict]] = {"base": [], "tree": []}
    print(f"{args.mode}: {args.base} (base) against the working tree, {args.rounds} rounds")
    with worktree(args.base) as base_tree:
        trees = {"base": base_tree, "tree": REPO}
        for round_ in range(args.rounds):
            for name in ("base", "tree") if round_ % 2 == 0 else ("tree", "base"):
                if args.mode == "forward":
                    sample = forward_sample(trees[name], args.model, args.batch, args.passes)
                else:
                    sample = server_sample(trees[name], args.clients, args.seconds)
                samples[name].append(sample)
                load = os.getloadavg()[0]
                print(f"round {round_ + 1} {name}: {json.dumps(sample)} load {load:.2f}")
    base = [s[key] for s in samples["base"]]
    tree = [s[key] for s in samples["tree"]]
    ratios = [t / b for t, b in zip(tree, base, strict=True)]
    better = "lower" if args.mode == "forward" else "higher"
    print(
        f"{key} ({better} is better): base median {statistics.median(base):.3f}, tree median "
        f"{statistics.median(tree):.3f}; tree/base per round: median "
        f"{statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}"
    )
    if args.mode == "server":
        errors = {name: sum(s["errors"] for s in samples[name]) for name in samples}
        print(f"errors: base {errors['base']}, tree {errors['tree']}")
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    started = time.time()
    code = main()
    print(f"({time.time() - started:.0f} s)")
    raise SystemExit(code)
