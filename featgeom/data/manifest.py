"""Check an image-folder dataset on disk without importing torch: root/{train,val,test}/<class>/<images>.

Class order = sorted folder names, as torchvision's ImageFolder assigns indices.
"""
from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
SPLITS = ("train", "val", "test")


def _count_images(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def verify_image_folder(root) -> dict:
    """Manifest {root, classes, counts per split}; ValueError naming what is missing or inconsistent."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist: place the dataset as "
                                f"{root}/{{train,val,test}}/<class>/<images> (see README, 'Datasets')")
    classes_per_split, counts = {}, {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing (expected {root}/{{train,val,test}}/<class>/)")
        classes_per_split[split] = sorted(p.name for p in folder.iterdir() if p.is_dir())
        counts[split] = {c: _count_images(folder / c) for c in classes_per_split[split]}
        empty = [c for c, n in counts[split].items() if n == 0]
        if empty:
            raise ValueError(f"{folder}: class folder(s) without images: {empty[:5]}")
    reference = classes_per_split["train"]
    for split in SPLITS[1:]:
        if classes_per_split[split] != reference:
            diff = sorted(set(reference) ^ set(classes_per_split[split]))
            raise ValueError(f"{root / split} and {root / 'train'} hold different classes, e.g. {diff[:5]}")
    return {"root": str(root), "classes": reference,
            "counts": {split: sum(c.values()) for split, c in counts.items()}}
