"""Long-tailed subsampling of a training split (Cui et al. 2019 / LDAM-DRW convention).

Class i (0-based, head = class 0) keeps n_i = floor(n_max * (1/rho)^(i/(K-1))) images: the first
n_i of a per-class shuffle drawn from one RandomState(seed), classes visited in index order,
as kaidic/LDAM-DRW:imbalance_cifar.py does with np.random.seed(0). Val and test stay balanced.
numpy only (no torch).
"""
from __future__ import annotations

import numpy as np

from featgeom.data.arrays import class_counts, validate_arrays


def longtail_counts(n_max: int, num_classes: int, rho: float) -> np.ndarray:
    """int64 [K]: images kept per class for imbalance ratio rho = n_max / n_min."""
    if rho < 1 or num_classes < 1:
        raise ValueError(f"need rho >= 1 and num_classes >= 1, got rho={rho}, num_classes={num_classes}")
    if num_classes == 1:
        return np.array([n_max], dtype=np.int64)
    # Same float expression as LDAM-DRW (img_max * imb_factor**(i / (K - 1.0))), so floor() agrees.
    imb_factor = 1.0 / rho
    return np.array([int(n_max * imb_factor ** (i / (num_classes - 1.0))) for i in range(num_classes)],
                    dtype=np.int64)


def longtail_indices(labels, counts, seed: int = 0) -> np.ndarray:
    """Sorted indices into `labels` keeping the first counts[c] of a seeded shuffle of class c."""
    labels = np.asarray(labels)
    available = class_counts(labels, len(counts))
    short = np.nonzero(available < np.asarray(counts))[0]
    if short.size:
        c = short[0]
        raise ValueError(f"class {c} has {available[c]} images, fewer than the {counts[c]} requested")
    rng = np.random.RandomState(seed)
    keep = []
    for c, n in enumerate(counts):
        where = np.nonzero(labels == c)[0]
        rng.shuffle(where)
        keep.append(where[:n])
    return np.sort(np.concatenate(keep))


def make_longtail(arrays: dict, rho: float, seed: int = 0, n_max: int | None = None, min_per_class: int = 0) -> dict:
    """Copy of `arrays` with the train split subsampled to a long-tailed profile.

    n_max defaults to the largest train class (500 for the full CIFAR-100 train set, 450 for
    HAFrame's 45k train split). min_per_class > 0 (pilot runs, whose few images per class would
    leave tail classes empty) raises every count to at least that.
    """
    num_classes = len(arrays["class_names"])
    labels = arrays["train_labels"]
    if n_max is None:
        n_max = int(class_counts(labels, num_classes).max())
    counts = np.maximum(longtail_counts(n_max, num_classes, rho), min_per_class)
    keep = longtail_indices(labels, counts, seed)
    out = dict(arrays)
    for key in ("train_images", "train_labels", "train_labels_coarse"):
        if key in arrays:
            out[key] = arrays[key][keep]
    validate_arrays(out, "make_longtail")
    return out


def pool_train_and_val(arrays: dict) -> dict:
    """Train split = train + val, the full official training set (val kept as it is).

    The long-tail literature (LDAM-DRW, MiSLAS) subsamples the full 50k CIFAR train set with
    n_max = 500, which gives the published totals (CIFAR-100-LT, rho=100: 10,847 images). Our
    CIFAR arrays hold out 50 images per class as HAFrame's val split, so a long-tail run drawn
    from this pool may train on val images: such runs select the last epoch (train.select: last)
    and use val only to monitor.
    """
    out = dict(arrays)
    for key in ("images", "labels", "labels_coarse"):
        if f"train_{key}" in arrays:
            out[f"train_{key}"] = np.concatenate([arrays[f"train_{key}"], arrays[f"val_{key}"]])
    validate_arrays(out, "pool_train_and_val")
    return out
