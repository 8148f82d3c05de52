"""Extract the small, committed pieces of the CIFAR-10 and MNIST test sets.

Writes, from the shared test sets (never committed themselves):
- ``tests/data/cifar10_test_500.npz`` and ``tests/data/mnist_test_500.npz``: 50 test images
  per class, with ``images`` (uint8; (N, 32, 32, 3) RGB for CIFAR-10, (N, 28, 28) white on
  black for MNIST), ``labels``, ``class_names`` and ``indices`` (position in the full test set);
- ``static/samples/*.png`` and ``static/samples/manifest.json``: two images per class for the
  pages, the first two of each class's subset picks, at their original size.

The choice is seeded, so running this again writes the same files::

    .venv/bin/python scripts/make_samples.py --datasets ../shared/datasets
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.data import Dataset, read_npz  # noqa: E402

PER_CLASS = 50
SAMPLES_PER_CLASS = 2
DATASETS = {"cifar10": "cifar10_test.npz", "mnist": "mnist_test.npz"}


def choose(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` test-set indices of every class, drawn without replacement; within a
    class in the order drawn (so the first few are a random pick too)."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == k), per_class, replace=False) for k in range(10)]
    return np.concatenate(picks)


def to_pixels(data: Dataset, indices: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) for colour, (N, H, W) for grey, as the subset files and PNGs hold them."""
    images = data.images[indices]
    return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=ROOT, help="project root to write into")
    args = parser.parse_args(argv)

    samples_dir = args.out / "static" / "samples"
    data_dir = args.out / "tests" / "data"
    samples_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest = []
    for offset, (dataset, filename) in enumerate(DATASETS.items()):
        data = read_npz(args.datasets / filename)
        indices = choose(data.labels, PER_CLASS, args.seed + offset)
        subset_file = data_dir / f"{dataset}_test_{len(indices)}.npz"
        np.savez_compressed(
            subset_file,
            images=to_pixels(data, indices),
            labels=data.labels[indices],
            class_names=np.array(data.class_names),
            indices=indices.astype(np.int64),
        )
        print(f"{subset_file.relative_to(args.out)}: {subset_file.stat().st_size:,} bytes")
        for k, name in enumerate(data.class_names):
            chosen = indices[k * PER_CLASS : k * PER_CLASS + SAMPLES_PER_CLASS]
            for n, index in enumerate(chosen, start=1):
                sample_id = f"{dataset}-{slug(name)}-{n}"
                file = f"{sample_id}.png"
                (samples_dir / file).write_bytes(png_bytes(to_pixels(data, np.array([index]))[0]))
                manifest.append(
                    {
                        "id": sample_id,
                        "dataset": dataset,
                        "label": name,
                        "label_index": k,
                        "file": file,
                        "source_index": int(index),
                    }
                )
    manifest_file = samples_dir / "manifest.json"
    manifest_file.write_text(json.dumps({"samples": manifest}, indent=1) + "\n")
    print(f"{manifest_file.relative_to(args.out)}: {len(manifest)} samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
