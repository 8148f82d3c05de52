"""engine.data: the shared .npz files, the CIFAR-10 python tarball and MNIST idx files, built
small in tmp_path, and every malformed input giving a DataError that names the file."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data import DataError, load_dataset, read_cifar10_python, read_mnist_idx, read_npz

CIFAR_NAMES = [
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


# --- .npz ----------------------------------------------------------------------------------
def test_npz_grey_images(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    path = tmp_path / "digits.npz"
    np.savez(
        path,
        images=images,
        labels=np.array([3, 1, 4, 1, 5], np.uint8),
        class_names=np.array([str(d) for d in range(10)]),
    )
    data = read_npz(path)
    assert data.images.shape == (5, 1, 28, 28) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images[:, 0], images)
    assert data.labels.tolist() == [3, 1, 4, 1, 5] and data.labels.dtype == np.uint8
    assert data.class_names == [str(d) for d in range(10)]
    assert len(data) == 5 and data.source == str(path)
    part = data.subset(np.array([4, 0]))
    assert part.labels.tolist() == [5, 3] and np.array_equal(part.images[1, 0], images[0])


def test_npz_colour_images_become_channel_first(tmp_path):
    images = np.zeros((2, 4, 6, 3), np.uint8)
    images[1, 2, 5] = (10, 20, 30)
    path = tmp_path / "colour.npz"
    np.savez_compressed(path, images=images, labels=np.array([7, 2]))
    data = read_npz(path)
    assert data.images.shape == (2, 3, 4, 6)
    assert data.images[1, :, 2, 5].tolist() == [10, 20, 30]
    assert data.class_names == [str(i) for i in range(8)]  # no names stored: 0..max label


def test_npz_jpeg_bytes_with_offsets(tmp_path):
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    blobs = []
    for colour in colours:
        buf = io.BytesIO()
        Image.new("RGB", (32, 32), colour).save(buf, "JPEG", quality=95)
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    path = tmp_path / "cifar_like.npz"
    np.savez(
        path,
        jpeg=np.concatenate(blobs),
        offsets=offsets,
        labels=np.array([0, 1, 2], np.uint8),
        class_names=np.array(CIFAR_NAMES),
    )
    data = read_npz(path)
    assert data.images.shape == (3, 3, 32, 32)
    for i, colour in enumerate(colours):
        assert np.abs(data.images[i, :, 16, 16].astype(int) - colour).max() <= 3
    assert data.class_names == CIFAR_NAMES and data.labels.tolist() == [0, 1, 2]


def _write(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((2, 4, 4), np.uint8)}, "expected an array 'labels'"),
        (
            {"pixels": np.zeros((2, 4, 4), np.uint8), "labels": np.zeros(2, np.uint8)},
            "expected 'images', or 'jpeg' and 'offsets' \\(found: labels, pixels\\)",
        ),
        (
            {"images": np.zeros((3, 4, 4), np.uint8), "labels": np.zeros(2, np.uint8)},
            "3 images but 2 labels",
        ),
        ({"images": np.full((2, 4, 4), 0.5), "labels": np.zeros(2, np.uint8)}, "uint8"),
        ({"images": np.zeros((2, 4), np.uint8), "labels": np.zeros(2, np.uint8)}, r"\(2, 4\)"),
        ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.full(2, -1)}, "integers 0-255"),
        (
            {
                "jpeg": np.frombuffer(b"not a jpeg at all", np.uint8),
                "offsets": np.array([0, 5, 17]),
                "labels": np.zeros(2, np.uint8),
            },
            "image 0 is not a decodable JPEG",
        ),
        (
            {
                "jpeg": np.zeros(0, np.uint8),
                "offsets": np.zeros(1, np.int64),
                "labels": np.zeros(0, np.uint8),
            },
            "holds no images",
        ),
    ],
)
def test_npz_with_wrong_contents(tmp_path, arrays, message):
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as caught:
        read_npz(path)
    assert str(path) in str(caught.value)


def test_npz_missing_file(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(DataError, match="file not found") as caught:
        read_npz(path)
    assert str(path) in str(caught.value)


def test_npz_that_is_not_an_archive(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello\n")
    with pytest.raises(DataError, match=f"{text}: not a NumPy .npz archive"):
        read_npz(text)
    good = _write(tmp_path / "good.npz", images=np.zeros((9, 8, 8), np.uint8), labels=np.zeros(9))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(DataError, match=str(truncated)):
        read_npz(truncated)
    single = tmp_path / "single.npz"
    with single.open("wb") as f:
        np.save(f, np.zeros(3, np.uint8))  # a .npy array under an .npz name
    with pytest.raises(DataError, match=f"{single}: a single .npy array"):
        read_npz(single)


# --- CIFAR-10 python -----------------------------------------------------------------------
def cifar_batch(images: np.ndarray, labels: list[int], str_keys: bool = False) -> bytes:
    """A batch as the official files hold it: rows of 3072 bytes (1024 R, 1024 G, 1024 B,
    each row-major 32x32), pickled with bytes keys (they were written by Python 2)."""
    key = str if str_keys else (lambda s: s.encode())
    batch = {
        key("batch_label"): b"synthetic",
        key("labels"): labels,
        key("data"): images.reshape(len(images), 3072),
        key("filenames"): [b"x.png"] * len(images),
    }
    return pickle.dumps(batch, protocol=2)


def cifar_images(n: int, first: int) -> np.ndarray:
    images = np.zeros((n, 3, 32, 32), np.uint8)
    for i in range(n):
        images[i, 0, 0, 0] = first + i  # red, top-left: which image this is
        images[i, 2, 31, 5] = 200  # blue, bottom row, column 5: checks the layout
    return images


def cifar_files() -> dict[str, bytes]:
    files = {}
    for b in range(1, 6):
        files[f"data_batch_{b}"] = cifar_batch(cifar_images(2, 10 * b), [b - 1, b])
    files["test_batch"] = cifar_batch(cifar_images(3, 100), [9, 8, 7])
    files["batches.meta"] = pickle.dumps({b"label_names": [n.encode() for n in CIFAR_NAMES]})
    return files


def write_tarball(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def check_cifar(train, test):
    assert train.images.shape == (10, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    assert train.labels.tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert train.images[:, 0, 0, 0].tolist() == [10, 11, 20, 21, 30, 31, 40, 41, 50, 51]
    assert (train.images[:, 2, 31, 5] == 200).all() and train.images[:, 2].sum() == 200 * 10
    assert test.labels.tolist() == [9, 8, 7] and test.images[:, 0, 0, 0].tolist() == [100, 101, 102]
    assert train.class_names == CIFAR_NAMES


@pytest.mark.parametrize(
    ("name", "mode"), [("cifar-10-python.tar.gz", "w:gz"), ("c.tgz", "w:gz"), ("c.tar", "w")]
)
def test_cifar_tarball(tmp_path, name, mode):
    path = write_tarball(tmp_path / name, cifar_files(), mode)
    check_cifar(read_cifar10_python(path, "train"), read_cifar10_python(path, "test"))
    check_cifar(load_dataset(path, "train"), load_dataset(path, "test"))


def test_cifar_extracted_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, payload in cifar_files().items():
        (folder / name).write_bytes(payload)
    check_cifar(read_cifar10_python(folder, "train"), load_dataset(folder, "test"))
    (folder / "data_batch_4").unlink()
    with pytest.raises(
        DataError, match=f"{folder / 'data_batch_4'}: CIFAR-10 batch file not found"
    ):
        read_cifar10_python(folder, "train")


def test_cifar_batch_repickled_with_str_keys(tmp_path):
    files = cifar_files()
    files["test_batch"] = cifar_batch(cifar_images(3, 100), [9, 8, 7], str_keys=True)
    path = write_tarball(tmp_path / "c.tar.gz", files)
    assert read_cifar10_python(path, "test").labels.tolist() == [9, 8, 7]


def test_cifar_not_a_tarball(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(DataError, match=f"{path}: not a CIFAR-10 python tarball"):
        read_cifar10_python(path)


def test_cifar_truncated_tarball(tmp_path):
    files = cifar_files()
    rng = np.random.default_rng(0)  # incompressible, so half the file is half the members
    files["test_batch"] = cifar_batch(rng.integers(0, 256, (40, 3, 32, 32), np.uint8), [0] * 40)
    path = write_tarball(tmp_path / "c.tar.gz", files)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=str(path)):
        read_cifar10_python(path, "test")


def test_cifar_missing_file_and_missing_member(tmp_path):
    with pytest.raises(DataError, match="absent.tar.gz: file not found"):
        read_cifar10_python(tmp_path / "absent.tar.gz")
    files = cifar_files()
    del files["test_batch"]
    path = write_tarball(tmp_path / "c.tar.gz", files)
    with pytest.raises(DataError, match=f"{path}: tarball lacks test_batch"):
        read_cifar10_python(path, "test")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not a pickle", "not a CIFAR-10 python batch"),
        (pickle.dumps({b"labels": [1]}), "not a CIFAR-10 python batch"),
        (cifar_batch(cifar_images(3, 0), [1, 2]), "3 images but 2 labels"),
    ],
)
def test_cifar_malformed_batch(tmp_path, payload, message):
    files = cifar_files()
    files["test_batch"] = payload
    path = write_tarball(tmp_path / "c.tar.gz", files)
    with pytest.raises(DataError, match=f"{path}:test_batch: {message}"):
        read_cifar10_python(path, "test")


# --- MNIST idx -----------------------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(
    folder: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool, dotted: bool = False
) -> None:
    prefix = "train" if split == "train" else "t10k"
    folder.mkdir(exist_ok=True)
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        name = f"{prefix}-{kind}-ubyte"
        if dotted:
            name = name.replace("-idx", ".idx")
        raw = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)


def mnist_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


@pytest.mark.parametrize(
    ("gz", "dotted"), [(True, False), (False, False), (False, True), (True, True)]
)
def test_mnist_idx(tmp_path, gz, dotted):
    folder = tmp_path / "mnist"
    train_images, train_labels = mnist_arrays(6, 0)
    test_images, test_labels = mnist_arrays(4, 1)
    write_mnist(folder, "train", train_images, train_labels, gz, dotted)
    write_mnist(folder, "test", test_images, test_labels, gz, dotted)
    for split, images, labels in (
        ("train", train_images, train_labels),
        ("test", test_images, test_labels),
    ):
        for data in (read_mnist_idx(folder, split), load_dataset(folder, split)):
            assert data.images.shape == (len(labels), 1, 28, 28) and data.images.dtype == np.uint8
            np.testing.assert_array_equal(data.images[:, 0], images)
            np.testing.assert_array_equal(data.labels, labels)
            assert data.class_names == [str(d) for d in range(10)]


def test_mnist_gzip_detected_by_content_not_name(tmp_path):
    # Browsers often save the .gz files already unpacked, keeping the .gz name.
    folder = tmp_path / "mnist"
    images, labels = mnist_arrays(3, 2)
    write_mnist(folder, "test", images, labels, gz=False)
    for path in list(folder.iterdir()):
        path.rename(path.with_name(path.name + ".gz"))
    np.testing.assert_array_equal(read_mnist_idx(folder, "test").images[:, 0], images)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda raw: b"\x00\x00\x0d\x03" + raw[4:],
            r"not an idx file of unsigned bytes \(bad magic",
        ),  # float idx, not bytes
        (lambda raw: b"PK\x03\x04" + raw[4:], r"not an idx file of unsigned bytes \(bad magic"),
        (lambda raw: raw[:-10], r"idx header says \(3, 28, 28\) but the file holds 2342 bytes"),
        (lambda raw: raw[:9], "idx header of 3 dimensions is cut short"),
        (lambda raw: gzip.compress(raw)[:40], "cannot be read"),  # truncated gzip
    ],
)
def test_mnist_malformed_images_file(tmp_path, damage, message):
    folder = tmp_path / "mnist"
    images, labels = mnist_arrays(3, 3)
    write_mnist(folder, "test", images, labels, gz=False)
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=f"{path}: {message}"):
        read_mnist_idx(folder, "test")


def test_mnist_missing_or_mismatched_files(tmp_path):
    folder = tmp_path / "mnist"
    images, labels = mnist_arrays(3, 4)
    write_mnist(folder, "test", images, labels, gz=True)
    with pytest.raises(DataError, match=f"{folder}: expected train-images-idx3-ubyte or"):
        read_mnist_idx(folder, "train")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels[:2])))
    with pytest.raises(DataError, match=f"{folder}: images \\(3, 28, 28\\) and labels \\(2,\\)"):
        read_mnist_idx(folder, "test")


# --- load_dataset dispatch -----------------------------------------------------------------
def test_load_dataset_npz_and_folder_of_npz(tmp_path):
    train = _write(
        tmp_path / "digits_train.npz", images=np.zeros((4, 8, 8), np.uint8), labels=np.arange(4)
    )
    _write(tmp_path / "digits_test.npz", images=np.ones((2, 8, 8), np.uint8), labels=np.arange(2))
    assert len(load_dataset(train)) == 4
    assert len(load_dataset(tmp_path, "train")) == 4
    assert load_dataset(tmp_path, "test").images.max() == 1
    _write(tmp_path / "other_test.npz", images=np.ones((2, 8, 8), np.uint8), labels=np.arange(2))
    with pytest.raises(DataError, match="several test sets \\(digits_test.npz, other_test.npz\\)"):
        load_dataset(tmp_path, "test")


def test_load_dataset_rejects_unknown_and_missing(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path}: folder holds neither"):
        load_dataset(tmp_path)
    other = tmp_path / "readme.txt"
    other.write_text("hi")
    with pytest.raises(DataError, match=f"{other}: unknown dataset format"):
        load_dataset(other)
    with pytest.raises(DataError, match="nothing.bin: file not found"):
        load_dataset(tmp_path / "nothing.bin")
