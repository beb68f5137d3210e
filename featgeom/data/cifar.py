"""CIFAR-10/100 from the official python-version archives into the featgeom arrays format.

Splits follow HAFrame's `util/data_loader.py:train_val_split`: val = the LAST `val_per_class`
images of each class in the official train order (50 for CIFAR-100, 500 here for CIFAR-10),
train = the rest, test = the official test set. Kept in the official order (HAFrame shuffles
the index lists, which only permutes them; our loaders shuffle anyway).

The pickles are the dataset's official format. `prepare_cifar` unpickles them only after the
archive's md5 has been verified; the `load_*` functions trust an already-extracted folder.
numpy only (no torch).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from featgeom.data.archives import download_url, extract, verify_md5
from featgeom.data.arrays import validate_arrays

ARCHIVES = {
    "cifar100": {"url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                 "filename": "cifar-100-python.tar.gz", "folder": "cifar-100-python",
                 "md5": "eb9058c3a382ffc7106e4002c42a8d85"},
    "cifar10": {"url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "filename": "cifar-10-python.tar.gz", "folder": "cifar-10-batches-py",
                "md5": "c58f30108f718f92721af3b95e74349a"},
}


def _archive_info(name: str) -> dict:
    if name not in ARCHIVES:
        raise ValueError(f"unknown CIFAR dataset {name!r}; expected one of {sorted(ARCHIVES)}")
    return ARCHIVES[name]


def download_cifar(name: str, root) -> Path:
    """Download the official archive to root/<filename> (atomically) unless it is already there."""
    info = _archive_info(name)
    return download_url(info["url"], Path(root) / info["filename"])


# --- reading the pickles ----------------------------------------------------------------

def _unpickle(path, required_keys) -> dict:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: missing CIFAR file")
    with open(path, "rb") as fh:
        obj = pickle.load(fh, encoding="bytes")
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    for key in required_keys:
        if key not in obj:
            raise ValueError(f"{path}: missing key {key!r}")
    return obj


def _images(batch: dict, path) -> np.ndarray:
    """CIFAR rows (N x 3072, CHW row-major) -> uint8 NHWC [N, 32, 32, 3]."""
    data = np.asarray(batch[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: key b'data' has {data.dtype} {data.shape}, expected uint8 [N, 3072]")
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _labels(batch: dict, key: bytes, n: int, path) -> np.ndarray:
    labels = np.asarray(batch[key], dtype=np.int64)
    if labels.shape != (n,):
        raise ValueError(f"{path}: key {key!r} has shape {labels.shape}, expected ({n},) to match b'data'")
    return labels


def _names(meta: dict, key: bytes) -> np.ndarray:
    return np.array([name.decode() if isinstance(name, bytes) else str(name) for name in meta[key]])


def train_val_split(labels, num_classes: int, val_per_class: int):
    """(train indices, val indices), val = the last `val_per_class` images of each class, sorted."""
    labels = np.asarray(labels)
    val = []
    for c in range(num_classes):
        where = np.nonzero(labels == c)[0]
        if len(where) <= val_per_class:
            raise ValueError(f"class {c} has {len(where)} train images, need more than {val_per_class} for val")
        val.append(where[-val_per_class:])
    val = np.sort(np.concatenate(val))
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val


def _split(images, labels, coarse, num_classes, val_per_class) -> dict:
    train, val = train_val_split(labels, num_classes, val_per_class)
    arrays = {}
    for split, idx in (("train", train), ("val", val)):
        arrays[f"{split}_images"] = images[idx]
        arrays[f"{split}_labels"] = labels[idx]
        if coarse is not None:
            arrays[f"{split}_labels_coarse"] = coarse[idx]
    return arrays


# --- loaders ----------------------------------------------------------------------------

def load_cifar100(root, val_per_class: int = 50) -> dict:
    """Arrays dict from root/cifar-100-python/{train,test,meta}; class names 'L5-<idx>' as in HAFrame."""
    folder = Path(root) / ARCHIVES["cifar100"]["folder"]
    keys = (b"data", b"fine_labels", b"coarse_labels")
    train, test = _unpickle(folder / "train", keys), _unpickle(folder / "test", keys)
    meta = _unpickle(folder / "meta", (b"fine_label_names", b"coarse_label_names"))
    fine_names, coarse_names = _names(meta, b"fine_label_names"), _names(meta, b"coarse_label_names")
    parts = {}
    for split, batch in (("train", train), ("test", test)):
        path = folder / split
        images = _images(batch, path)
        parts[split] = (images, _labels(batch, b"fine_labels", len(images), path),
                        _labels(batch, b"coarse_labels", len(images), path))
    images, labels, coarse = parts["train"]
    arrays = _split(images, labels, coarse, len(fine_names), val_per_class)
    arrays["test_images"], arrays["test_labels"], arrays["test_labels_coarse"] = parts["test"]
    # Leaves of HAFrame's CIFAR hierarchy are 'L5-<fine idx>', its L4 nodes the 20 superclasses.
    arrays["class_names"] = np.array([f"L5-{i}" for i in range(len(fine_names))])
    arrays["coarse_names"] = np.array([f"L4-{i}" for i in range(len(coarse_names))])
    arrays["fine_label_names"], arrays["coarse_label_names"] = fine_names, coarse_names
    validate_arrays(arrays, folder)
    return arrays


def load_cifar10(root, val_per_class: int = 500) -> dict:
    """Arrays dict from root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}."""
    folder = Path(root) / ARCHIVES["cifar10"]["folder"]
    keys = (b"data", b"labels")
    meta = _unpickle(folder / "batches.meta", (b"label_names",))
    names = _names(meta, b"label_names")
    images, labels = [], []
    for i in range(1, 6):
        path = folder / f"data_batch_{i}"
        batch = _unpickle(path, keys)
        images.append(_images(batch, path))
        labels.append(_labels(batch, b"labels", len(images[-1]), path))
    arrays = _split(np.concatenate(images), np.concatenate(labels), None, len(names), val_per_class)
    path = folder / "test_batch"
    test = _unpickle(path, keys)
    arrays["test_images"] = _images(test, path)
    arrays["test_labels"] = _labels(test, b"labels", len(arrays["test_images"]), path)
    arrays["class_names"] = names
    arrays["fine_label_names"] = names
    validate_arrays(arrays, folder)
    return arrays


LOADERS = {"cifar100": load_cifar100, "cifar10": load_cifar10}


def prepare_cifar(name: str, root, download: bool = False, md5: str | None = None,
                  val_per_class: int | None = None) -> dict:
    """Verify, extract and load the official archive in `root`: the arrays dict (validated).

    `md5` overrides the official checksum and `val_per_class` the split (both for test fixtures).
    """
    info = _archive_info(name)
    archive = Path(root) / info["filename"]
    if not archive.exists():
        if not download:
            raise FileNotFoundError(f"{archive}: CIFAR archive not found; download {info['url']} "
                                    f"and place it there, "
                                    f"or set `source.download: true` in this dataset's config")
        download_cifar(name, root)
    verify_md5(archive, md5 or info["md5"])
    extract(archive, root)
    load = LOADERS[name]
    return load(root) if val_per_class is None else load(root, val_per_class=val_per_class)
