"""On-disk format of an in-memory image dataset: one `.npz` file, no pickles.

Keys (N_s = images in split s, K = fine classes, C = coarse classes):
  {train,val,test}_images         uint8 [N_s, H, W, 3]  (NHWC, same H, W in every split)
  {train,val,test}_labels         int64 [N_s], values in [0, K)
  {train,val,test}_labels_coarse  int64 [N_s], optional (all three or none), values in [0, C)
  class_names                     str [K], fine classes in class-index order, unique
  coarse_names                    str [C], optional
Any other key (e.g. `fine_label_names`) is carried along unchecked.

numpy only: rules that prepare data must not pay for importing torch.
"""
from __future__ import annotations

import numpy as np

from featgeom.io import write_npz

SPLITS = ("train", "val", "test")


def save_arrays(path, arrays: dict) -> None:
    """Validate `arrays` and write them atomically to `path` (.npz)."""
    validate_arrays(arrays, path)
    write_npz(path, **arrays)


def load_arrays(path) -> dict:
    """Read and validate an arrays `.npz`; every problem is a ValueError naming file and key."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable arrays .npz ({err})") from err
    validate_arrays(arrays, path)
    return arrays


def class_counts(labels, num_classes: int) -> np.ndarray:
    """Images per class, int64 [num_classes]; classes with no image count 0."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels span [{labels.min()}, {labels.max()}], outside [0, {num_classes})")
    return np.bincount(labels, minlength=num_classes).astype(np.int64)


def fine_to_coarse(arrays: dict) -> np.ndarray:
    """int64 [K]: the coarse class of each fine class, read off the train split."""
    K = len(arrays["class_names"])
    mapping = np.full(K, -1, dtype=np.int64)
    mapping[arrays["train_labels"]] = arrays["train_labels_coarse"]
    return mapping


# --- validation -------------------------------------------------------------------------

def validate_arrays(arrays: dict, path="<arrays>") -> None:
    """Raise ValueError naming `path` and the offending key if `arrays` breaks the format."""
    num_classes = _check_names(arrays, "class_names", path, required=True)
    num_coarse = _check_names(arrays, "coarse_names", path, required=False)
    image_hw = None
    for split in SPLITS:
        n, hw = _check_images(arrays, f"{split}_images", path)
        if image_hw is not None and hw != image_hw:
            raise ValueError(f"{path}: key '{split}_images' has images of size {hw}, other splits {image_hw}")
        image_hw = hw
        _check_labels(arrays, f"{split}_labels", n, num_classes, path)
    coarse_keys = [f"{split}_labels_coarse" for split in SPLITS]
    present = [key in arrays for key in coarse_keys]
    if any(present) and not all(present):
        missing = [key for key, ok in zip(coarse_keys, present) if not ok][0]
        raise ValueError(f"{path}: missing key '{missing}' (coarse labels must be given for all splits or none)")
    if all(present):
        for split in SPLITS:
            n = len(arrays[f"{split}_labels"])
            _check_labels(arrays, f"{split}_labels_coarse", n, num_coarse, path)
        _check_coarse_is_function_of_fine(arrays, path)


def _check_names(arrays, key, path, required) -> int | None:
    if key not in arrays:
        if required:
            raise ValueError(f"{path}: missing key '{key}'")
        return None
    names = np.asarray(arrays[key])
    if names.ndim != 1 or names.dtype.kind != "U" or names.size == 0:
        raise ValueError(f"{path}: key '{key}' must be a non-empty 1-d str array, got {names.dtype} {names.shape}")
    if len(set(names.tolist())) != names.size:
        raise ValueError(f"{path}: key '{key}' has duplicate names")
    return names.size


def _check_images(arrays, key, path) -> tuple[int, tuple]:
    if key not in arrays:
        raise ValueError(f"{path}: missing key '{key}'")
    images = arrays[key]
    if images.dtype != np.uint8:
        raise ValueError(f"{path}: key '{key}' has dtype {images.dtype}, expected uint8")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{path}: key '{key}' has shape {images.shape}, expected [N, H, W, 3] (NHWC)")
    if images.shape[0] == 0:
        raise ValueError(f"{path}: key '{key}' is an empty split")
    return images.shape[0], tuple(images.shape[1:3])


def _check_labels(arrays, key, n, num_classes, path) -> None:
    if key not in arrays:
        raise ValueError(f"{path}: missing key '{key}'")
    labels = arrays[key]
    if labels.dtype != np.int64:
        raise ValueError(f"{path}: key '{key}' has dtype {labels.dtype}, expected int64")
    if labels.shape != (n,):
        raise ValueError(f"{path}: key '{key}' has shape {labels.shape}, expected ({n},) to match the images")
    upper = np.iinfo(np.int64).max if num_classes is None else num_classes
    if labels.min() < 0 or labels.max() >= upper:
        raise ValueError(f"{path}: key '{key}' has labels in [{labels.min()}, {labels.max()}], "
                         f"outside [0, {num_classes}) classes")


def _check_coarse_is_function_of_fine(arrays, path) -> None:
    # A fine class under two coarse classes (in any split) means the label files were mis-joined.
    fine = np.concatenate([arrays[f"{split}_labels"] for split in SPLITS])
    coarse = np.concatenate([arrays[f"{split}_labels_coarse"] for split in SPLITS])
    pairs = np.unique(np.stack([fine, coarse], axis=1), axis=0)
    repeated = np.nonzero(np.diff(pairs[:, 0]) == 0)[0]
    if repeated.size:
        bad = pairs[repeated[0], 0]
        raise ValueError(f"{path}: keys '*_labels_coarse' put fine class {bad} under more than one coarse class")
