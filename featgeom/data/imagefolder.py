"""ImageFolder datasets (FGVC-Aircraft, iNaturalist19, tieredImageNet-H) laid out as
root/<split>/<class>/<image>, with the HAFrame/MBM transforms (MBM/better_mistakes/data/transforms.py):

  fgvc      train: Resize((224,224)) -> RandomCrop(224, padding=4) -> hflip
  inat      train: RandomResizedCrop(224) -> hflip
  imagenet  train: RandomResizedCrop(224) -> hflip
  all       eval : Resize((224,224))
each followed by ToTensor and the recipe's Normalize.

Class index = sorted folder name (ImageFolder), which must equal the hierarchy's leaf order:
`check_class_order` says where they first disagree.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

NORMALISATION = {  # (mean, std), copied from MBM's transforms.py
    "fgvc": ((0.4880712, 0.5191783, 0.54383063), (0.21482512, 0.20683703, 0.23937796)),
    "inat": ((0.454, 0.474, 0.367), (0.237, 0.230, 0.249)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def build_transform(recipe: str, train: bool, size: int = 224):
    if recipe not in NORMALISATION:
        raise ValueError(f"unknown transform recipe {recipe!r}; expected one of {sorted(NORMALISATION)}")
    mean, std = NORMALISATION[recipe]
    if not train:
        steps = [T.Resize((size, size))]
    elif recipe == "fgvc":
        steps = [T.Resize((size, size)), T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()]
    else:
        steps = [T.RandomResizedCrop(size), T.RandomHorizontalFlip()]
    return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])


def image_folder_dataset(root, split: str, train: bool, recipe: str, size: int = 224,
                         class_order=None) -> datasets.ImageFolder:
    """ImageFolder over root/<split>; if `class_order` is given it must equal the folder classes."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: image folder for split {split!r} not found")
    dataset = datasets.ImageFolder(str(folder), transform=build_transform(recipe, train, size))
    if class_order is not None:
        check_class_order(dataset.classes, class_order, where=str(folder))
    return dataset


def check_class_order(dataset_classes, hierarchy_class_order, where: str = "dataset", show: int = 5) -> None:
    """ValueError listing the first mismatches between folder classes and hierarchy leaves."""
    found, expected = list(dataset_classes), list(hierarchy_class_order)
    if found == expected:
        return
    problems = []
    if len(found) != len(expected):
        problems.append(f"{len(found)} classes in {where}, {len(expected)} hierarchy leaves")
    mismatches = [(i, f, e) for i, (f, e) in enumerate(zip(found, expected)) if f != e]
    problems += [f"index {i}: folder {f!r} vs leaf {e!r}" for i, f, e in mismatches[:show]]
    if len(mismatches) > show:
        problems.append(f"... {len(mismatches) - show} more")
    raise ValueError(f"{where}: class order does not match the hierarchy: " + "; ".join(problems))


def image_folder_loader(dataset, batch_size: int, *, shuffle: bool, num_workers: int = 8,
                        pin_memory: bool = True, drop_last: bool = False, seed: int = 0) -> DataLoader:
    """DataLoader with persistent workers (when there are any) and a seeded shuffle."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(seed))
