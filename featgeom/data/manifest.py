"""Check an image-folder dataset on disk without importing torch: root/{train,val,test}/<class>/<images>.

Class order = sorted folder names, as torchvision's ImageFolder assigns indices. Every image is
decoded once here, so a truncated or foreign file fails this step (naming all such files) rather
than a training job hours later. The manifest lists the files that were checked; training reads
exactly those.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
SPLITS = ("train", "val", "test")
SHOW_BAD = 20  # bad files named in the error; the rest are counted
CHUNK = 256  # images per decoding task: one future per image would cost ~1 KB each on 500k-image datasets
# 16-bit grayscale (PNG, TIFF). PIL's convert() clips these to 255 instead of scaling, so a 16-bit image would
# train as all white. PIL opened 16-bit grayscale PNGs as mode "I" before Pillow 10.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def verify_image_folder(root, max_per_class: int | None = None, workers: int | None = None) -> dict:
    """Manifest {root, classes, counts, max_per_class, files}; ValueError naming what is missing,
    inconsistent or undecodable.

    files: {split: [[path relative to root, class name], ...]} in ImageFolder order (classes
    sorted, files sorted), keeping the first `max_per_class` files of each class in each split
    (None = all). counts: images per split in `files`. Images are decoded by `workers` threads
    (default os.cpu_count()).
    """
    root = Path(root)
    if max_per_class is not None and (type(max_per_class) is not int or max_per_class < 1):
        raise ValueError(f"max_per_class must be a positive integer or None, got {max_per_class!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist: place the dataset as "
                                f"{root}/{{train,val,test}}/<class>/<images> (see README, 'Datasets')")
    listing = {split: _nonempty_split(root, split) for split in SPLITS}
    _check_same_classes(root, listing)
    files = {split: [[path, cls] for cls, paths in per_class.items() for path in paths[:max_per_class]]
             for split, per_class in listing.items()}
    _decode_all(root, [path for rows in files.values() for path, _ in rows], workers)
    return {"root": str(root), "classes": list(listing["train"]),
            "counts": {split: len(rows) for split, rows in files.items()},
            "max_per_class": max_per_class, "files": files}


def folder_listing(root) -> dict:
    """{root, entries, bytes, sha256} of every folder and file under root/{train,val,test}: path, size and
    mtime, nothing decoded (one stat per file), so it is cheap enough for every Snakemake start-up. It changes
    when a file is added, removed, replaced or touched, or a folder is added or removed; a missing split (or
    root) is part of it, so placing the dataset later changes it too.
    """
    root = Path(root)
    digest, entries, total = hashlib.sha256(), 0, 0
    for split in SPLITS:
        if not (root / split).is_dir():
            digest.update(f"{split}\tmissing\n".encode())
            continue
        for rel, size, mtime_ns in _walk_entries(root, split):
            digest.update(f"{rel}\t{size}\t{mtime_ns}\n".encode())
            entries += 1
            total += size or 0
    return {"root": str(root), "entries": entries, "bytes": total, "sha256": digest.hexdigest()}


def _walk_entries(root: Path, split: str):
    """(path relative to root, size, mtime_ns) of every folder and file under root/split, sorted; None, None
    for a folder and for a broken link (verification then names it). Links are followed, as _class_images does."""
    for dirpath, dirnames, names in os.walk(root / split, followlinks=True):
        dirnames.sort()  # os.walk descends in this order
        yield Path(dirpath).relative_to(root).as_posix() + "/", None, None
        for name in sorted(names):
            path = Path(dirpath, name)
            yield (path.relative_to(root).as_posix(), *_size_and_mtime(path))


def _size_and_mtime(path: Path) -> tuple:
    try:
        stat = path.stat()
    except OSError:
        return None, None
    return stat.st_size, stat.st_mtime_ns


def list_split(root, split: str) -> dict:
    """{class: [image path relative to root, ...]} of root/<split>, classes and files in ImageFolder order."""
    root = Path(root)
    folder = root / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing (expected {root}/{{train,val,test}}/<class>/)")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not _hidden(p.name))
    return {cls: _class_images(root, folder / cls) for cls in classes}


def _nonempty_split(root: Path, split: str) -> dict:
    per_class = list_split(root, split)
    empty = [cls for cls, paths in per_class.items() if not paths]
    if empty:
        raise ValueError(f"{root / split}: class folder(s) without images: {empty[:5]}")
    return per_class


def _class_images(root: Path, folder: Path) -> list:
    # The walk of torchvision's make_dataset: directories sorted by path, files sorted by name.
    return [Path(dirpath, name).relative_to(root).as_posix()
            for dirpath, names in sorted(_visible_walk(folder))
            for name in sorted(names) if Path(name).suffix.lower() in IMAGE_SUFFIXES and not _hidden(name)]


def _visible_walk(folder: Path):
    """(folder, file names) of `folder` and its subfolders, skipping hidden subfolders (e.g. .ipynb_checkpoints)."""
    for dirpath, dirnames, names in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        yield dirpath, names


def _hidden(name: str) -> bool:
    # What file managers, Jupyter (.ipynb_checkpoints) and macOS (._x.jpg, .DS_Store) leave behind is no data.
    return name.startswith(".")


def _check_same_classes(root: Path, listing: dict) -> None:
    reference = list(listing["train"])
    for split in SPLITS[1:]:
        if list(listing[split]) != reference:
            diff = sorted(set(reference) ^ set(listing[split]))
            raise ValueError(f"{root / split} and {root / 'train'} hold different classes, e.g. {diff[:5]}")


def _decode_all(root: Path, paths: list, workers: int | None) -> None:
    """ValueError naming every image (the first SHOW_BAD, then a count) that PIL cannot decode.

    Threads, not processes: Pillow releases the GIL while decoding, and threads need no pickling
    or start-up of the whole path list.
    """
    chunks = [paths[start:start + CHUNK] for start in range(0, len(paths), CHUNK)]
    with strict_decoding(), ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        problems = [problem for found in pool.map(partial(_chunk_problems, root), chunks) for problem in found]
    if problems:
        lines = [f"  {root / path}: {why}" for path, why in problems[:SHOW_BAD]]
        if len(problems) > SHOW_BAD:
            lines.append(f"  ... and {len(problems) - SHOW_BAD} more")
        raise ValueError(f"{root}: {len(problems)} of {len(paths)} images cannot be decoded; "
                         "replace or remove them:\n" + "\n".join(lines))


def _chunk_problems(root: Path, paths: list) -> list:
    """[(path, why)] of the images among `paths` (relative to root) that do not decode."""
    return [(path, why) for path in paths if (why := _decode_problem(root / path)) is not None]


def read_rgb(path) -> Image.Image:
    """The whole image at `path` decoded to 8-bit RGB: what verification checks and training reads.

    16-bit grayscale keeps its top 8 bits (value >> 8): equal-width bins, an 8-bit image stored as 16 bits
    (v * 257 or v << 8) comes back exactly, and PIL itself reduces 16-bit RGB PNGs this way. Pixels of no
    known bit depth (32-bit integers, floats) raise ValueError rather than being clipped.
    """
    with Image.open(path) as image:
        return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """An opened image as 8-bit RGB, by read_rgb's rules (for callers that also read the image's own metadata)."""
    if image.mode in SIXTEEN_BIT_MODES or (image.mode == "I" and image.format == "PNG"):
        return Image.fromarray((np.asarray(image) >> 8).astype(np.uint8), mode="L").convert("RGB")
    if image.mode in ("I", "F"):
        kind = "32-bit integer" if image.mode == "I" else "floating-point"
        raise ValueError(f"mode {image.mode!r} ({kind} pixels) has no known 8-bit scale; "
                         "save the image with 8 or 16 bits per channel")
    return image.convert("RGB")


def _decode_problem(path) -> str | None:
    """None if `read_rgb` decodes the image at `path`, else why not (e.g. 'truncated (...)')."""
    try:
        read_rgb(path)
    except UnidentifiedImageError as err:
        return f"not an image ({err})"
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for damaged files
        kind = "truncated" if "truncated" in str(err).lower() else "cannot be decoded"
        return f"{kind} ({type(err).__name__}: {err})"
    return None


@contextmanager
def strict_decoding():
    # With LOAD_TRUNCATED_IMAGES (a global some libraries set) PIL pads a truncated image with grey
    # instead of raising: turn it off while checking, then restore whatever the caller had.
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved
