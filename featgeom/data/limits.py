"""Pilot-mode caps on an in-memory dataset (config `limits:`): images per class and image size.

Applied once where the arrays are prepared, so every run of the dataset sees the same capped
data. numpy only (no torch).
"""
from __future__ import annotations

import numpy as np

from featgeom.data.arrays import SPLITS, validate_arrays


def first_per_class(labels, n: int) -> np.ndarray:
    """Sorted indices of the first `n` images of each class, in dataset order."""
    labels = np.asarray(labels)
    keep = [np.flatnonzero(labels == c)[:n] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def cap_images_per_class(arrays: dict, n: int) -> dict:
    """Copy of `arrays` keeping at most `n` images per class in every split."""
    out = dict(arrays)
    for split in SPLITS:
        keep = first_per_class(arrays[f"{split}_labels"], n)
        for key in ("images", "labels", "labels_coarse"):
            if f"{split}_{key}" in arrays:
                out[f"{split}_{key}"] = arrays[f"{split}_{key}"][keep]
    return out


def downscale(arrays: dict, size: int) -> dict:
    """Copy of `arrays` with images area-averaged to size x size (an integer factor of the native size)."""
    height = arrays["train_images"].shape[1]
    if size >= height:
        return arrays
    if height % size:
        raise ValueError(f"limits.image_size {size} must divide the native image size {height} of in-memory arrays")
    factor = height // size
    out = dict(arrays)
    for split in SPLITS:
        images = arrays[f"{split}_images"].astype(np.float32)
        n, _, _, channels = images.shape
        blocks = images.reshape(n, size, factor, size, factor, channels).mean(axis=(2, 4))
        out[f"{split}_images"] = np.round(blocks).astype(np.uint8)
    return out


def apply_data_limits(arrays: dict, limits: dict, where="<arrays>") -> dict:
    """Both caps of `limits` ({} = unchanged); the result is validated."""
    if "images_per_class" in limits:
        arrays = cap_images_per_class(arrays, limits["images_per_class"])
    if "image_size" in limits:
        arrays = downscale(arrays, limits["image_size"])
    validate_arrays(arrays, where)
    return arrays
