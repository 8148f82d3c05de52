"""Dataset readers: images as uint8 (N, C, H, W) arrays with uint8 labels.

Formats read:
- the ``.npz`` files of ``shared/datasets`` (MNIST as decoded pixels, CIFAR-10 as
  concatenated JPEG bytes with offsets);
- the official CIFAR-10 python tarball (``cifar-10-python.tar.gz``) or its
  extracted folder;
- MNIST idx files (``train-images-idx3-ubyte`` ... gzipped or not) in a folder.

Every failure names the file and what was expected. JPEG decoding needs Pillow,
imported only when such a file is read.
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "CIFAR10_CLASSES",
    "Dataset",
    "DataError",
    "load_dataset",
    "read_npz",
    "read_cifar10_python",
    "read_mnist_idx",
]

# What a damaged compressed file raises: truncation (EOFError), bad deflate data (zlib.error),
# a broken zip directory (BadZipFile), and OSError/ValueError for the rest.
_DAMAGED = (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile)


class DataError(ValueError):
    """A dataset file is missing or not in the expected format."""


@dataclass
class Dataset:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # uint8 (N,)
    class_names: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> Dataset:
        return Dataset(self.images[indices], self.labels[indices], self.class_names, self.source)


def _decode_jpegs(buf: np.ndarray, offsets: np.ndarray, path: Path) -> np.ndarray:
    from PIL import Image

    if len(offsets) < 2:
        raise DataError(f"{path}: 'offsets' holds no images")
    images = []
    raw = buf.tobytes()
    for i in range(len(offsets) - 1):
        try:
            with Image.open(io.BytesIO(raw[offsets[i] : offsets[i + 1]])) as im:
                images.append(np.asarray(im.convert("RGB")))
        except OSError as exc:
            raise DataError(f"{path}: image {i} is not a decodable JPEG ({exc})") from exc
    if len({image.shape for image in images}) > 1:
        raise DataError(f"{path}: the JPEG images differ in size")
    return np.stack(images).transpose(0, 3, 1, 2)


def read_npz(path: str | Path) -> Dataset:
    """A ``shared/datasets`` file: ``images`` (N, H, W) or (N, H, W, C) uint8, or ``jpeg`` +
    ``offsets``; plus ``labels`` and ``class_names``."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except _DAMAGED as exc:
        raise DataError(f"{path}: not a NumPy .npz archive ({exc})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single .npy array, not an .npz archive of named arrays")
    with data:
        try:
            images, labels, names = _npz_arrays(data, path)
        except DataError:  # already says what is wrong (and is a ValueError, caught below)
            raise
        except _DAMAGED as exc:  # members are read lazily: a damaged one fails only here
            raise DataError(f"{path}: an array in the archive cannot be read ({exc})") from exc
    if len(images) != len(labels):
        raise DataError(f"{path}: {len(images)} images but {len(labels)} labels")
    return Dataset(np.ascontiguousarray(images), labels, names, str(path))


def _npz_arrays(data: np.lib.npyio.NpzFile, path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    files = set(data.files)
    found = ", ".join(sorted(files)) or "none"
    if "labels" not in files:
        raise DataError(f"{path}: expected an array 'labels' (found: {found})")
    labels = data["labels"]
    in_range = labels.size == 0 or (labels.min() >= 0 and labels.max() <= 255)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or not in_range:
        raise DataError(f"{path}: 'labels' must be integers 0-255 of shape (N,)")
    labels = labels.astype(np.uint8)
    if "images" in files:
        images = data["images"]
        if images.dtype != np.uint8:
            raise DataError(f"{path}: 'images' must be uint8 pixels 0-255, got {images.dtype}")
        if images.ndim == 3:
            images = images[:, None]
        elif images.ndim == 4 and images.shape[-1] in (1, 3):
            images = images.transpose(0, 3, 1, 2)
        else:
            raise DataError(
                f"{path}: 'images' must be (N, H, W) or (N, H, W, C), got {images.shape}"
            )
    elif {"jpeg", "offsets"} <= files:
        images = _decode_jpegs(data["jpeg"], data["offsets"], path)
    else:
        raise DataError(f"{path}: expected 'images', or 'jpeg' and 'offsets' (found: {found})")
    if "class_names" in files:
        names = [str(n) for n in data["class_names"]]
    else:
        names = [str(i) for i in range(int(labels.max()) + 1 if labels.size else 0)]
    return images, labels, names


# CIFAR-10's class names, in label order (the python tarball's batches.meta holds the same).
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def _cifar_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = pickle.loads(raw, encoding="bytes")
        # Keys are bytes in the official (Python 2) pickles, str if re-pickled by Python 3.
        data = np.asarray(batch.get(b"data", batch.get("data")), dtype=np.uint8)
        data = data.reshape(-1, 3, 32, 32)
        labels = np.asarray(batch.get(b"labels", batch.get("labels")), dtype=np.uint8)
    except Exception as exc:  # a pickle can fail in many ways; all mean "not a CIFAR batch"
        raise DataError(f"{name}: not a CIFAR-10 python batch ({exc})") from exc
    if labels.shape != (len(data),):
        raise DataError(f"{name}: {len(data)} images but {labels.size} labels")
    return data, labels


def read_cifar10_python(path: str | Path, split: str = "train") -> Dataset:
    """The official ``cifar-10-python.tar.gz`` or its extracted ``cifar-10-batches-py`` folder."""
    path = Path(path)
    wanted = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts: dict[str, bytes] = {}
    if path.is_dir():
        for name in wanted:
            file = path / name
            if not file.exists():
                raise DataError(f"{file}: CIFAR-10 batch file not found")
            parts[name] = file.read_bytes()
    else:
        try:
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    base = member.name.rsplit("/", 1)[-1]
                    if base in wanted and member.isfile():
                        parts[base] = tar.extractfile(member).read()
        except FileNotFoundError as exc:
            raise DataError(f"{path}: file not found") from exc
        except tarfile.TarError as exc:
            raise DataError(f"{path}: not a CIFAR-10 python tarball ({exc})") from exc
        except _DAMAGED as exc:
            raise DataError(f"{path}: the tarball is truncated or damaged ({exc})") from exc
        missing = [n for n in wanted if n not in parts]
        if missing:
            raise DataError(f"{path}: tarball lacks {', '.join(missing)}")
    batches = [_cifar_batch(parts[n], f"{path}:{n}") for n in wanted]
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    return Dataset(images, labels, list(CIFAR10_CLASSES), str(path))


def _read_idx(file: Path) -> np.ndarray:
    try:
        raw = file.read_bytes()
        # Decide by content, not name: browsers often save MNIST's .gz files already
        # decompressed but still named .gz (and the reverse happens too).
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError as exc:
        raise DataError(f"{file}: file not found") from exc
    except _DAMAGED as exc:
        raise DataError(f"{file}: cannot be read ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{file}: not an idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{file}: idx header of {ndim} dimensions is cut short")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(dims)):
        raise DataError(
            f"{file}: idx header says {dims} but the file holds {len(raw) - header} bytes of data"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_mnist_idx(folder: str | Path, split: str = "train") -> Dataset:
    """MNIST's four idx files in ``folder``, gzipped or not."""
    folder = Path(folder)
    prefix = "train" if split == "train" else "t10k"
    found = {}
    for kind, stem in (
        ("images", f"{prefix}-images-idx3-ubyte"),
        ("labels", f"{prefix}-labels-idx1-ubyte"),
    ):
        dotted = stem.replace("-idx", ".idx")  # another common spelling: t10k-images.idx3-ubyte
        candidates = [folder / name for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz")]
        file = next((c for c in candidates if c.exists()), None)
        if file is None:
            raise DataError(f"{folder}: expected {stem} or {stem}.gz")
        found[kind] = _read_idx(file)
    images, labels = found["images"], found["labels"]
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    return Dataset(
        np.ascontiguousarray(images[:, None]),
        labels.copy(),
        [str(d) for d in range(10)],
        str(folder),
    )


def load_dataset(path: str | Path, split: str = "train") -> Dataset:
    """Read any supported dataset: a .npz file, a CIFAR-10 tarball/folder, or an MNIST idx folder.

    For a folder holding one dataset's .npz files, ``split`` picks ``*_train.npz`` or
    ``*_test.npz``.
    """
    path = Path(path)
    if path.suffix == ".npz":
        return read_npz(path)
    if path.is_dir():
        if (path / "data_batch_1").exists() or (path / "test_batch").exists():
            return read_cifar10_python(path, split)
        if any(path.glob("*idx*-ubyte*")):
            return read_mnist_idx(path, split)
        npz = sorted(path.glob(f"*_{split}.npz"))
        if len(npz) == 1:
            return read_npz(npz[0])
        if len(npz) > 1:
            names = ", ".join(p.name for p in npz)
            raise DataError(f"{path}: several {split} sets ({names}): name the file")
        raise DataError(
            f"{path}: folder holds neither CIFAR-10 batches, MNIST idx files nor *_{split}.npz"
        )
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return read_cifar10_python(path, split)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    raise DataError(
        f"{path}: unknown dataset format (expected .npz, a CIFAR-10 tarball or an MNIST idx folder)"
    )
