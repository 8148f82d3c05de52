"""Engine speed and memory, as ratios measured in one run (the machine is shared and noisy).

For every zoo model at batch 1 (and tiny-vgg at batch 256): the forward pass with every
activation kept (median of repeated runs after a warm-up), its effective GFLOP/s
(2 x MACs / time), that rate as a fraction of a large float32 matmul measured in the
same run on the same cores, and the peak memory the pass needs beyond the activations
it keeps (tracemalloc sees NumPy's allocations). Then a tiny-vgg training step
(forward + backward, batch 128) and the epoch time it implies. If PyTorch happens to
be installed, the ratio to torch.nn.functional on the same weights and threads.

    OPENBLAS_NUM_THREADS=1 python benchmarks/engine.py [--repeats 5] [--quick] [--layers vgg16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine import ops, zoo  # noqa: E402


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up: first-touch page faults, thread pool start
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def matmul_fn(size: int = 2048):
    """A size x size float32 matmul split over the engine's threads, as the convolutions
    are (row blocks, one per thread); returns (run, flops)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), np.float32)
    step = -(-size // ops._threads)

    def block(r0):
        np.matmul(a[r0 : r0 + step], b, out=out[r0 : r0 + step])

    return (lambda: ops._map_chunks(block, range(0, size, step))), 2 * size**3


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _passes(model, repeats: int) -> int:
    """Models under a GFLOP per pass take milliseconds: a median of 5 would be noise."""
    return repeats if model.macs > 5e8 else max(repeats, 50)


def _warm_median(fn, runs: int) -> float:
    """Median of ``runs`` back-to-back calls: the first may find caches emptied by the matmul."""
    return statistics.median(timed(fn) for _ in range(runs))


def forward_stats(name: str, batch: int, repeats: int, matmul) -> dict:
    """Forward time (median) and its fraction of the matmul rate. The machine is shared, so
    each forward sample is paired with a matmul run just before it and the fraction is the
    median of the pairs' ratios: load that comes and goes hits both sides of a pair. A sample
    of a small model is the median of several back-to-back passes (warm caches, as in a
    server answering requests), one pass of a big one."""
    model = zoo.build(name)
    x = np.random.default_rng(1).standard_normal((batch, *model.input_spec.shape), dtype=np.float32)
    run_matmul, matmul_flops = matmul
    flops = 2 * model.macs * batch
    warm_up = timed(lambda: model.forward(x))  # first-touch page faults, thread pool start
    runs = 1 if warm_up > 0.05 else 11  # passes of a few milliseconds: 11 back to back
    pairs = [
        (timed(run_matmul), _warm_median(lambda: model.forward(x), runs)) for _ in range(repeats)
    ]
    seconds = statistics.median(f for _, f in pairs)
    fraction = statistics.median((flops / f) / (matmul_flops / m) for m, f in pairs)
    tracemalloc.start()
    trace = model.forward(x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kept = trace.nbytes - trace.input.nbytes
    return {
        "model": name,
        "batch": batch,
        "seconds": seconds,
        "gflops": flops / seconds / 1e9,
        "fraction": fraction,
        "kept_mb": kept / 2**20,
        "extra_ratio": (peak - kept) / kept,
        "x": x,
        "net": model,
    }


def train_step_seconds(repeats: int, batch: int = 128) -> float:
    model = zoo.build("tiny-vgg")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 10, batch)
    scores_layer = model.logits_layer

    def step():
        trace = model.forward(x, training=True, until=scores_layer)
        grad = ops.cross_entropy_backward(trace[scores_layer], labels)
        model.backward(grad, from_layer=scores_layer, input_grad=False)

    return median_time(step, repeats)


def torch_seconds(model, x: np.ndarray, repeats: int) -> float | None:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(ops._threads)
    tensors = {k: torch.from_numpy(v) for k, v in model.state_dict().items()}
    xt = torch.from_numpy(x)

    def run():
        with torch.no_grad():
            h = xt
            for layer in model.layers:
                p = layer.name
                if layer.kind == "conv2d":
                    h = F.conv2d(
                        h,
                        tensors[f"{p}.weight"],
                        tensors[f"{p}.bias"],
                        layer.stride,
                        layer.pads(h.shape[2:])[::2],
                        layer.dilation,
                    )
                elif layer.kind == "relu":
                    h = F.relu(h)
                elif layer.kind == "maxpool2d":
                    h = F.max_pool2d(h, layer.kernel, layer.stride)
                elif layer.kind == "flatten":
                    h = h.flatten(1)
                elif layer.kind == "linear":
                    h = F.linear(h, tensors[f"{p}.weight"], tensors[f"{p}.bias"])
                elif layer.kind == "softmax":
                    h = F.softmax(h, dim=1)

    return median_time(run, repeats)


def conv_matmul_fn(layer, out_shape):
    """The matmul of a convolution's im2col alone: (C_out x K) @ (K x H_out W_out), its
    columns split over the engine's threads as the convolution's blocks are, but with no
    im2col copy, bias or write-back: the floor for an im2col engine on this layer."""
    rng = np.random.default_rng(2)
    weight = layer.params["weight"]
    w2 = weight.reshape(weight.shape[0], -1)
    cols = rng.standard_normal((w2.shape[1], out_shape[2] * out_shape[3]), dtype=np.float32)
    out = np.empty((w2.shape[0], cols.shape[1]), np.float32)
    step = -(-cols.shape[1] // ops._threads)

    def block(c0):
        np.matmul(w2, cols[:, c0 : c0 + step], out=out[:, c0 : c0 + step])

    return lambda: ops._map_chunks(block, range(0, cols.shape[1], step))


def layer_profile(name: str, repeats: int) -> None:
    """Best time of each layer of one forward pass, slowest first, with its GFLOP/s; for
    convolutions also the best time of their matmul alone (``conv_matmul_fn``)."""
    model = zoo.build(name)
    h0 = np.random.default_rng(1).standard_normal((1, *model.input_spec.shape), dtype=np.float32)
    best: dict[str, float] = {}
    matmuls: dict[str, Any] = {}
    passes = _passes(model, repeats + 1)
    for _ in range(passes):
        h = h0
        for layer in model.layers:
            started = time.perf_counter()
            h = layer.forward(h)
            best[layer.name] = min(best.get(layer.name, np.inf), time.perf_counter() - started)
            if layer.kind == "conv2d":
                matmul = matmuls.setdefault(layer.name, conv_matmul_fn(layer, h.shape))
                started = time.perf_counter()
                matmul()
                key = layer.name + " matmul"
                best[key] = min(best.get(key, np.inf), time.perf_counter() - started)
    flops = {d["name"]: d["flops"] for d in model.describe()}
    print(f"\n{name} per layer (best of {passes}), slowest first:")
    layers = [(n, t) for n, t in best.items() if not n.endswith(" matmul")]
    for layer_name, seconds in sorted(layers, key=lambda kv: -kv[1])[:12]:
        rate = f"{flops[layer_name] / seconds / 1e9:.0f} GFLOP/s" if flops[layer_name] else ""
        alone = best.get(layer_name + " matmul")
        note = f"  (its matmul alone {alone * 1e3:.3f} ms)" if alone else ""
        print(f"  {layer_name:10} {seconds * 1e3:8.3f} ms  {rate}{note}")
    convs = sum(t for n, t in layers if n in matmuls)
    print(
        f"  sum of all layers {sum(t for _, t in layers) * 1e3:.1f} ms; convolutions "
        f"{convs * 1e3:.1f} ms, their matmuls alone "
        f"{sum(best[n + ' matmul'] for n in matmuls) * 1e3:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats, skip tiny-vgg batch 256"
    )
    parser.add_argument("--layers", metavar="MODEL", help="also time every layer of MODEL")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats

    print(
        f"threads: engine {ops._threads}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
        f"cores {os.cpu_count()}, NumPy {np.__version__}"
    )
    matmul = matmul_fn()
    rate = matmul[1] / median_time(matmul[0], repeats) / 1e9
    print(f"float32 2048x2048 matmul: {rate:.1f} GFLOP/s (load average {os.getloadavg()[0]:.2f})\n")
    cases = [("tiny-vgg", 1), ("lenet5", 1), ("vgg16", 1)] + (
        [] if args.quick else [("tiny-vgg", 256)]
    )
    print(
        "| model | batch | forward ms | ms/image | GFLOP/s | of matmul | activations kept MB "
        "| peak extra / kept | vs PyTorch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, batch in cases:
        s = forward_stats(name, batch, repeats, matmul)
        torch_s = torch_seconds(s["net"], s["x"], repeats)
        vs_torch = f"{s['seconds'] / torch_s:.2f}x" if torch_s else "n/a"
        print(
            f"| {name} | {batch} | {s['seconds'] * 1e3:.1f} | {s['seconds'] * 1e3 / batch:.3f} | "
            f"{s['gflops']:.1f} | {s['fraction']:.0%} | {s['kept_mb']:.1f} | "
            f"{s['extra_ratio']:.2f} | {vs_torch} |"
        )
        del s
    if args.layers:
        layer_profile(args.layers, repeats)
    print(f"\nload average {os.getloadavg()[0]:.2f}")
    step = train_step_seconds(repeats)
    print(
        f"\ntiny-vgg training step (batch 128, forward + backward): {step * 1e3:.0f} ms "
        f"-> {step * 50000 / 128 / 60:.1f} min per 50,000-image epoch (compute only)"
    )


if __name__ == "__main__":
    main()
