"""A small deterministic hierarchical image dataset, for tests and smoke runs of the pipeline.

The class tree has `branching[l]` children per node at level l (default 4 coarse -> 3 mid -> 3 fine
= 36 leaves). Every node draws a prototype pattern; an image of a leaf is the sum of its ancestors'
patterns, seen through a random shift, with random contrast/brightness and pixel noise. Patterns get
finer and fainter with depth, so coarse classes share strong colour and low-frequency structure,
and fine classes within a coarse class differ in subtler, smaller-scale texture: coarse labels are
easy, fine labels are learnable but not trivial. The shift makes crop augmentation meaningful.

numpy only (no torch).
"""
from __future__ import annotations

import numpy as np

from featgeom.data.arrays import validate_arrays

WAVES_PER_NODE = 2
MEAN_GREY = 128.0


def make_synthetic(seed=0, branching=(4, 3, 3), n_train=60, n_val=10, n_test=20, image_size=32,
                   noise=24.0, max_shift=4):
    """Return (arrays dict in the featgeom.data.arrays format, hierarchy rows).

    Rows hold, for each leaf in class order, its path [level-1 node, ..., leaf] of node names such
    as ['c0', 'c0_m1', 'c0_m1_f2']. Same seed -> byte-identical output.
    """
    branching = tuple(int(b) for b in branching)
    if not branching or min(branching) < 1:
        raise ValueError(f"branching must be a non-empty tuple of positive ints, got {branching}")
    rng = np.random.default_rng(seed)
    rows = leaf_paths(branching)
    canvas = image_size + 2 * max_shift
    leaf_canvases = _leaf_canvases(rng, branching, canvas)
    arrays = {"class_names": np.array([row[-1] for row in rows]),
              "coarse_names": np.array([f"c{i}" for i in range(branching[0])])}
    leaves_per_coarse = len(rows) // branching[0]
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        labels = np.repeat(np.arange(len(rows), dtype=np.int64), n)
        arrays[f"{split}_images"] = _render(rng, leaf_canvases, labels, image_size, noise)
        arrays[f"{split}_labels"] = labels
        arrays[f"{split}_labels_coarse"] = labels // leaves_per_coarse
    validate_arrays(arrays, "make_synthetic")
    return arrays, rows


def leaf_paths(branching) -> list[list[str]]:
    """Paths of node names for every leaf, depth-first, so leaf index = mixed-radix path."""
    prefixes = _level_prefixes(len(branching))
    paths = [[]]
    for prefix, b in zip(prefixes, branching):
        paths = [path + [f"{path[-1]}_{prefix}{i}" if path else f"{prefix}{i}"]
                 for path in paths for i in range(b)]
    return paths


def _level_prefixes(depth: int) -> list[str]:
    # 'c' for coarse, 'f' for fine leaves, 'm', 'n', 'o', ... for the levels in between.
    if depth == 1:
        return ["c"]
    middle = [chr(ord("m") + i) for i in range(depth - 2)]
    return ["c"] + middle + ["f"]


def _leaf_canvases(rng, branching, canvas) -> np.ndarray:
    """float32 [leaves, canvas, canvas, 3]: grey + the sum of each leaf's ancestors' patterns."""
    depth = len(branching)
    total = np.full((1, canvas, canvas, 3), MEAN_GREY, dtype=np.float32)
    for level, b in enumerate(branching):
        fraction = level / (depth - 1) if depth > 1 else 0.0
        patterns = np.stack([_node_pattern(rng, fraction, canvas) for _ in range(total.shape[0] * b)])
        if level == 0:  # coarse classes also get a distinct mean colour
            patterns += rng.uniform(-40, 40, size=(b, 1, 1, 3)).astype(np.float32)
        total = np.repeat(total, b, axis=0) + patterns
    return total


def _node_pattern(rng, fraction, canvas) -> np.ndarray:
    """Sum of oriented colour gratings; fraction 0 (coarse) -> 1 (fine) raises frequency, lowers amplitude."""
    amplitude = 45.0 - 25.0 * fraction
    low, high = 0.5 + 3.5 * fraction, 1.5 + 5.5 * fraction  # cycles per 32 pixels
    y, x = np.mgrid[0:canvas, 0:canvas].astype(np.float32) / 32.0
    pattern = np.zeros((canvas, canvas, 3), dtype=np.float32)
    for _ in range(WAVES_PER_NODE):
        freq, angle, phase = rng.uniform(low, high), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        colour = rng.standard_normal(3).astype(np.float32)
        colour /= np.linalg.norm(colour)
        wave = np.cos(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle)) + phase)
        pattern += amplitude * wave[..., None] * colour
    return pattern


def _render(rng, leaf_canvases, labels, image_size, noise) -> np.ndarray:
    """uint8 [N, S, S, 3]: shifted crop of each label's canvas, with contrast, brightness, noise."""
    n, canvas = len(labels), leaf_canvases.shape[1]
    top = rng.integers(0, canvas - image_size + 1, size=n)
    left = rng.integers(0, canvas - image_size + 1, size=n)
    offsets = np.arange(image_size)
    rows = (top[:, None] + offsets)[:, :, None]
    cols = (left[:, None] + offsets)[:, None, :]
    images = leaf_canvases[labels[:, None, None], rows, cols]  # [N, S, S, 3]
    contrast = rng.uniform(0.8, 1.2, size=(n, 1, 1, 1)).astype(np.float32)
    brightness = rng.normal(0, 8, size=(n, 1, 1, 1)).astype(np.float32)
    images = (images - MEAN_GREY) * contrast + MEAN_GREY + brightness
    images += noise * rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)
