"""ImageFolder datasets (FGVC-Aircraft, iNaturalist19, tieredImageNet-H) laid out as
root/<split>/<class>/<image>, read from the file list of the verified manifest, with the
HAFrame/MBM transforms (MBM/better_mistakes/data/transforms.py) at a configurable size:

  crop_flip                 train: Resize((size,size)) -> RandomCrop(size, padding=4) -> hflip   (fgvc)
  random_resized_crop_flip  train: RandomResizedCrop(size) -> hflip                             (inat, imagenet)
  none                      train: the eval transform
  eval                             Resize((size,size))
each followed by ToTensor and the recipe's Normalize.

Class index = position in the hierarchy's class order, which must equal the manifest's sorted
folder names: `check_class_order` says where they first disagree.

Exact resume with worker processes: the data of epoch e is a function of (seed, e) only. The
sampler draws epoch e's order from epoch_generator(seed, e) and hands the workers (e, index) keys;
the dataset seeds the transform of each sample from (seed, e, index). Nothing depends on which
worker loads a sample, on the workers' base seed (which DataLoader draws when it creates an
iterator, so a restarted run draws it at another point), or on how far earlier epochs advanced a
worker's generator. So persistent workers stay on, and num_workers does not change the data. The
cost is ~30 us of seeding per sample (SeedSequence + reseeding the CPU generator), under 1% of
decoding a JPEG.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import transforms as T

from featgeom.data.gpu_loader import epoch_generator
from featgeom.data.manifest import read_rgb

NORMALISATION = {  # (mean, std), copied from MBM's transforms.py
    "fgvc": ((0.4880712, 0.5191783, 0.54383063), (0.21482512, 0.20683703, 0.23937796)),
    "inat": ((0.454, 0.474, 0.367), (0.237, 0.230, 0.249)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
AUGMENTS = ("crop_flip", "random_resized_crop_flip", "none")


class ImageLoadError(RuntimeError):
    """An image of the dataset cannot be read; the message names the file."""


def build_transform(recipe: str, augment: str, size: int, train: bool) -> T.Compose:
    """Train (augment) or eval transform at `size` x `size`, normalised with the recipe's statistics."""
    if recipe not in NORMALISATION:
        raise ValueError(f"unknown transform recipe {recipe!r}; expected one of {sorted(NORMALISATION)}")
    if augment not in AUGMENTS:
        raise ValueError(f"unknown train.augment {augment!r} for image folders; expected one of {list(AUGMENTS)}")
    mean, std = NORMALISATION[recipe]
    if train and augment == "crop_flip":
        steps = [T.Resize((size, size)), T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()]
    elif train and augment == "random_resized_crop_flip":
        steps = [T.RandomResizedCrop(size), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize((size, size))]
    return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])


def load_rgb(path) -> Image.Image:
    """The image at `path` as 8-bit RGB (manifest.read_rgb, as verified); ImageLoadError naming the file if it
    cannot be decoded."""
    try:
        return read_rgb(path)
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for damaged files
        raise ImageLoadError(f"{path}: cannot load image ({type(err).__name__}: {err}); "
                             "rerun verify_image_folder to list every bad file") from err


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of one sample's augmentation, a function of (seed, epoch, index) only."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & ((1 << 63) - 1)


class ManifestDataset(Dataset):
    """(image tensor, class index) of listed files; ImageFolder-like `classes`, `samples`, `targets`.

    Items are addressed by (epoch, index) keys from EpochSampler, or by a plain index (epoch 0).
    """

    def __init__(self, root, files, classes, transform, seed: int = 0):
        position = {name: i for i, name in enumerate(classes)}
        self.root, self.classes, self.transform, self.seed = Path(root), list(classes), transform, seed
        self.samples = [(str(self.root / path), position[name]) for path, name in files]
        self.targets = [target for _, target in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        path, target = self.samples[index]
        image = load_rgb(path)
        # torchvision draws from the global CPU generator: seed it per sample, and restore it so the
        # main process (num_workers=0) keeps its own random stream. Only the CPU generator
        # (torch.manual_seed and fork_rng would also reach CUDA, which a forked worker must not touch).
        saved = torch.get_rng_state()
        torch.default_generator.manual_seed(sample_seed(self.seed, epoch, index))
        try:
            return self.transform(image), target
        finally:
            torch.set_rng_state(saved)


class EpochSampler(Sampler):
    """Yields (epoch, index) keys of all samples: shuffled by epoch_generator(seed, epoch), or in order."""

    def __init__(self, size: int, shuffle: bool, seed: int = 0):
        self.size, self.shuffle, self.seed, self.epoch = size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        order = (torch.randperm(self.size, generator=epoch_generator(self.seed, self.epoch)) if self.shuffle
                 else torch.arange(self.size))
        return iter([(self.epoch, i) for i in order.tolist()])


def manifest_dataset(manifest: dict, split: str, class_order, transform, seed: int = 0) -> ManifestDataset:
    """Dataset of one split's verified files; ValueError if the manifest's classes differ from `class_order`."""
    if "files" not in manifest:
        raise ValueError(f"image-folder manifest of {manifest.get('root')} has no file list (written by an older "
                         "version): rerun its verify_image_folder rule")
    check_class_order(manifest["classes"], class_order, where=f"{manifest['root']} (manifest)")
    return ManifestDataset(manifest["root"], manifest["files"][split], class_order, transform, seed)


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
    """DataLoader over an EpochSampler (set the epoch with `loader.sampler.set_epoch`).

    The generator only feeds DataLoader's worker base seed, which no sample depends on; a private
    one keeps iterator creation from drawing on the global torch RNG that checkpoints restore.
    """
    return DataLoader(dataset, batch_size=batch_size, sampler=EpochSampler(len(dataset), shuffle, seed),
                      drop_last=drop_last, num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(seed))
