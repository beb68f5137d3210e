"""ImageFolder datasets (FGVC-Aircraft, iNaturalist19, tieredImageNet-H) laid out as
root/<split>/<class>/<image>, read from the file list of the verified manifest, with the
HAFrame/MBM transforms (MBM/better_mistakes/data/transforms.py) at a configurable size:

  crop_flip                 train: Resize((size,size)) -> RandomCrop(size, padding=4) -> hflip   (fgvc)
  random_resized_crop_flip  train: RandomResizedCrop(size) -> hflip                             (inat, imagenet)
  none                      train: the eval transform
  eval                             Resize((size,size))
each followed by ToTensor and the recipe's Normalize (`reference_transform`: the published float path).

What runs computes exactly that, bit for bit, in less CPU time (tests/test_image_pipeline.py):
- workers return the uint8 CHW pixels (PILToTensor); `DeviceNormalise` turns a whole batch into floats
  on the training device with ToTensor's and Normalize's float32 operations (/255, -mean, /std);
- a deterministic Resize((size,size)) is skipped where the image already has that size (torchvision returns
  it unchanged: the 224 x 224 stretched copies), and read from a cache made once (featgeom.data.resized)
  where the workflow made one: every pass of a crop_flip dataset (FGVC), whose eval resize and whose
  training resize before the random crop are the same; the crop and flip then run on the uint8 tensor.

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


def sample_steps(augment: str, size: int, train: bool) -> list:
    """The transform steps before ToTensor (PIL in, PIL out), as MBM's transforms.py has them."""
    if augment not in AUGMENTS:
        raise ValueError(f"unknown train.augment {augment!r} for image folders; expected one of {list(AUGMENTS)}")
    if train and augment == "crop_flip":
        return [T.Resize((size, size)), T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()]
    if train and augment == "random_resized_crop_flip":
        return [T.RandomResizedCrop(size), T.RandomHorizontalFlip()]
    return [T.Resize((size, size))]


def recipe_stats(recipe: str) -> tuple:
    if recipe not in NORMALISATION:
        raise ValueError(f"unknown transform recipe {recipe!r}; expected one of {sorted(NORMALISATION)}")
    return NORMALISATION[recipe]


def reference_transform(recipe: str, augment: str, size: int, train: bool) -> T.Compose:
    """The published float path: train (augment) or eval steps, ToTensor, Normalize with the recipe's statistics.

    Training runs `worker_transform` + `DeviceNormalise`, which compute the same numbers; this composition is
    what they are checked against (tests) and timed against (benchmarks/bench_image_pipeline.py).
    """
    mean, std = recipe_stats(recipe)
    return T.Compose(sample_steps(augment, size, train) + [T.ToTensor(), T.Normalize(mean, std)])


def worker_transform(augment: str, size: int, train: bool, resized: bool = False) -> T.Compose:
    """What a loader worker applies: the steps, then PILToTensor (uint8 CHW, not normalised).

    resized: the input is already the cached Resize((size, size)) as a uint8 CHW tensor, so the resize is
    dropped and the rest (RandomCrop with zero padding, flip: index operations only) runs on the tensor.
    """
    steps = sample_steps(augment, size, train)
    if not resized:
        return T.Compose(steps + [T.PILToTensor()])
    if not isinstance(steps[0], T.Resize):
        raise ValueError(f"train.augment {augment!r} does not start with a deterministic resize: nothing to cache")
    return T.Compose(steps[1:])


class DeviceNormalise:
    """uint8 NCHW batch -> float32 (x / 255 - mean) / std on the batch's device: ToTensor's `.float().div(255)`
    then Normalize's `sub_(mean).div_(std)`, the same float32 operations in the same order.

    255, mean and std are tensors on the device, not Python numbers: CUDA divides by a CPU scalar as a
    multiplication by its reciprocal, which can differ in the last bit; by a tensor it divides (IEEE division,
    as the CPU does). Bit-identity is tested on CPU; on a GPU it is expected from that, not yet measured.
    """

    def __init__(self, recipe: str, device):
        mean, std = recipe_stats(recipe)
        shape = (1, 3, 1, 1)
        self.scale = torch.full(shape, 255.0, device=device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(shape)
        self.recipe = recipe

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"DeviceNormalise expects uint8 images, got {images.dtype}")
        return images.float().div_(self.scale).sub_(self.mean).div_(self.std)

    def __repr__(self) -> str:
        mean, std = recipe_stats(self.recipe)
        return f"on the device: float32 /255, then Normalize(mean={list(mean)}, std={list(std)})"


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
    """(uint8 image tensor, class index) of listed files; ImageFolder-like `classes`, `samples`, `targets`.

    Items are addressed by (epoch, index) keys from EpochSampler, or by a plain index (epoch 0).
    resized: (cache .npy, offset of this split's first image) of featgeom.data.resized; the sample is then
    that array's row instead of the decoded file, and `transform` must take a uint8 CHW tensor.
    """

    def __init__(self, root, files, classes, transform, seed: int = 0, resized: tuple | None = None):
        position = {name: i for i, name in enumerate(classes)}
        self.root, self.classes, self.transform, self.seed = Path(root), list(classes), transform, seed
        self.samples = [(str(self.root / path), position[name]) for path, name in files]
        self.targets = [target for _, target in self.samples]
        self.resized, self._cache = resized, None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        path, target = self.samples[index]
        image = load_rgb(path) if self.resized is None else self._cached(index)
        # torchvision draws from the global CPU generator: seed it per sample, and restore it so the
        # main process (num_workers=0) keeps its own random stream. Only the CPU generator
        # (torch.manual_seed and fork_rng would also reach CUDA, which a forked worker must not touch).
        saved = torch.get_rng_state()
        torch.default_generator.manual_seed(sample_seed(self.seed, epoch, index))
        try:
            return self.transform(image), target
        finally:
            torch.set_rng_state(saved)

    def _cached(self, index: int) -> torch.Tensor:
        if self._cache is None:  # opened in each worker: a memory map shares the page cache, not pickled arrays
            self._cache = np.load(self.resized[0], mmap_mode="r")
        return torch.from_numpy(np.array(self._cache[self.resized[1] + index])).permute(2, 0, 1)


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


def manifest_dataset(manifest: dict, split: str, class_order, transform, seed: int = 0,
                     resized: tuple | None = None) -> ManifestDataset:
    """Dataset of one split's verified files; ValueError if the manifest's classes differ from `class_order`.
    resized: (cache .npy, offset) of featgeom.data.resized for this split."""
    if "files" not in manifest:
        raise ValueError(f"image-folder manifest of {manifest.get('root')} has no file list (written by an older "
                         "version): rerun its verify_image_folder rule")
    check_class_order(manifest["classes"], class_order, where=f"{manifest['root']} (manifest)")
    return ManifestDataset(manifest["root"], manifest["files"][split], class_order, transform, seed, resized)


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


def image_folder_loader(dataset, batch_size: int, *, shuffle: bool, num_workers: int,
                        pin_memory: bool = True, drop_last: bool = False, seed: int = 0) -> DataLoader:
    """DataLoader over an EpochSampler (set the epoch with `loader.sampler.set_epoch`).

    The generator only feeds DataLoader's worker base seed, which no sample depends on; a private
    one keeps iterator creation from drawing on the global torch RNG that checkpoints restore.
    """
    return DataLoader(dataset, batch_size=batch_size, sampler=EpochSampler(len(dataset), shuffle, seed),
                      drop_last=drop_last, num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(seed))
