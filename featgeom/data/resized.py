"""The deterministic Resize((size, size)) of an image folder, done once: uint8 arrays that training reads
instead of decoding and resizing the same image again every epoch.

Where a run's transforms start with that resize (every eval pass; FGVC's crop_flip training, which resizes
before its random crop), its result is the same every time. `write_resized` stores it for every file of the
manifest (train, val, test, in manifest order) in one .npy (N x size x size x 3 uint8) plus a key file
recording the manifest's sha256 and the size; `open_resized` refuses a cache made from another manifest or
size, so a cache never goes stale unnoticed. The manifest of a user's image folder holds the folder's
listing (paths, sizes, mtimes), so a replaced image changes the key too.

The resize is PIL's bilinear resize of the image as training decodes it (manifest.read_rgb): exactly what
torchvision's Resize((size, size)) does to a PIL image (antialiased; tests/test_image_pipeline.py checks it
bit for bit). Its cost is mostly decoding a ~1000 x 700 FGVC JPEG, which the cache then saves.

torch-free (PIL + numpy + stdlib), so the rule that writes it does not import torch.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from featgeom.data.manifest import SPLITS, read_rgb
from featgeom.io import atomic_path, file_digest, read_json, write_json

FORMAT = 1
CHUNK = 64  # images per resize task


def resize_once(path, size: int) -> np.ndarray:
    """size x size x 3 uint8: torchvision's Resize((size, size)) of the decoded image (no-op at that size)."""
    image = read_rgb(path)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image)


def write_resized(manifest_path, size: int, images_path, key_path, workers: int = 1) -> dict:
    """Resize every file of the manifest once into `images_path` (.npy) and write `key_path` (JSON); both atomic.

    The key is written last: a killed job leaves no key that vouches for a partial array.
    """
    manifest = read_json(manifest_path)
    root = Path(manifest["root"])
    paths = [root / rel for split in SPLITS for rel, _ in manifest["files"][split]]
    offsets, start = {}, 0
    for split in SPLITS:
        offsets[split] = [start, len(manifest["files"][split])]
        start += offsets[split][1]
    with atomic_path(images_path, suffix=".npy") as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
        chunks = range(0, len(paths), CHUNK)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # PIL releases the GIL while decoding
            for begin, block in zip(chunks, pool.map(lambda b: _resize_chunk(paths[b:b + CHUNK], size), chunks)):
                array[begin:begin + len(block)] = block
        array.flush()
        del array
    key = {"format": FORMAT, "manifest_sha256": file_digest(manifest_path), "size": size,
           "images": Path(images_path).name, "splits": offsets}
    write_json(key_path, key)
    return key


def _resize_chunk(paths, size: int) -> np.ndarray:
    return np.stack([_resize_named(path, size) for path in paths])


def _resize_named(path, size: int) -> np.ndarray:
    try:
        return resize_once(path, size)
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for damaged files
        raise ValueError(f"{path}: cannot load image ({type(err).__name__}: {err}); "
                         "rerun verify_image_folder to list every bad file") from err


def open_resized(key_path, manifest_path, size: int) -> tuple[Path, dict]:
    """(path of the .npy, {split: (offset, count)}) of a cache made from exactly this manifest at `size`;
    ValueError naming the key file and what differs otherwise."""
    key = read_json(key_path)
    remedy = f"delete {key_path} and rerun snakemake to rebuild it"
    if key.get("format") != FORMAT:
        raise ValueError(f"{key_path}: not a featgeom resized-image key (format {FORMAT}); {remedy}")
    if key["size"] != size:
        raise ValueError(f"{key_path}: images resized to {key['size']} px, this run needs {size} px; {remedy}")
    if key["manifest_sha256"] != file_digest(manifest_path):
        raise ValueError(f"{key_path}: made from another version of {manifest_path} (the dataset changed since); "
                         f"{remedy}")
    images = Path(key_path).parent / key["images"]
    total = sum(count for _, count in key["splits"].values())
    if _shape(images) != (total, size, size, 3):
        raise ValueError(f"{images}: holds {_shape(images) or 'no readable array'}, its key {key_path} says "
                         f"{(total, size, size, 3)}; {remedy}")
    return images, {split: tuple(span) for split, span in key["splits"].items()}


def _shape(images: Path) -> tuple | None:
    """Shape of the .npy at `images` (its header only), None if it is missing or not a whole .npy."""
    try:
        return np.load(images, mmap_mode="r").shape
    except (OSError, ValueError):  # missing, truncated (mmap longer than the file), not a .npy
        return None
