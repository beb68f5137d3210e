"""Airbench-style in-memory loader: the whole split lives on the device as uint8, and shuffling,
reflect-pad-4 + random-32-crop + horizontal flip and normalisation run there in batches.

All randomness of an epoch is drawn up front from a CPU torch.Generator seeded with (seed, epoch),
so the batches are identical on CPU and GPU, and `set_epoch(e)` on a resumed run replays exactly the
batches an uninterrupted run saw in epoch e.

`plain_dataloader` feeds the same data through a torch DataLoader with torchvision transforms: the
usual recipe, kept as the baseline for benchmarks/bench_dataloader.py.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

# HAFrame util/data_loader.py CIFAR-100 statistics: the defaults of the loaders below (runs pass their own split's).
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[tuple, tuple]:
    """Per-channel (mean, std) in [0, 1] units of uint8 NHWC images, e.g. a synthetic train split.

    Accumulated over chunks of images, so CIFAR's 150M pixel values never become one float64 copy.
    """
    channels = images.shape[-1]
    total, total_sq, count = np.zeros(channels), np.zeros(channels), 0
    for start in range(0, len(images), chunk):
        pixels = images[start:start + chunk].reshape(-1, channels).astype(np.float64)
        total += pixels.sum(0)
        total_sq += np.square(pixels).sum(0)
        count += len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return tuple((mean / 255.0).tolist()), tuple((std / 255.0).tolist())


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """CPU generator whose state depends only on (seed, epoch)."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


class InMemoryLoader:
    """Yields (float32 NCHW normalised images, int64 labels) on `device`; one pass = one epoch.

    Each `iter()` uses the current epoch, then advances it by one; call `set_epoch(e)` to pick the
    epoch explicitly (e.g. every epoch, or once when resuming).
    """

    def __init__(self, images: np.ndarray, labels, batch_size: int, *, shuffle=True, augment=False,
                 mean=CIFAR100_MEAN, std=CIFAR100_STD, drop_last=False, seed=0, device="cpu",
                 channels_last=False, pad=4):
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"InMemoryLoader wants uint8 NHWC images, got {images.dtype} {images.shape}")
        if len(labels) != len(images):
            raise ValueError(f"InMemoryLoader: {len(images)} images but {len(labels)} labels")
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.drop_last, self.seed, self.channels_last, self.pad = drop_last, seed, channels_last, pad
        self.device, self.epoch = torch.device(device), 0
        self.size = images.shape[1]
        if augment:  # pad once, on the host; each batch then only gathers crops
            images = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        hwc = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        self.images = hwc.permute(0, 3, 1, 2).contiguous()  # uint8 NCHW, padded if augment
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64).to(self.device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255

    @classmethod
    def from_arrays(cls, arrays: dict, split: str, batch_size: int, label_key="labels", **kwargs):
        """Loader over `arrays[f'{split}_images']` with labels `arrays[f'{split}_{label_key}']`."""
        return cls(arrays[f"{split}_images"], arrays[f"{split}_{label_key}"], batch_size, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        order, shifts, flips = self._epoch_plan(self.epoch)
        self.epoch += 1
        return self._batches(order, shifts, flips)

    def _epoch_plan(self, epoch: int):
        """Image order, crop offsets [N, 2] and flip flags [N] for one epoch, moved to the device."""
        n, gen = len(self.labels), epoch_generator(self.seed, epoch)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        shifts = flips = None
        if self.augment:
            # offsets 0..2·pad−1, as HAFrame's RandomPadandCrop `np.random.randint(0, h - new_h)`: never 2·pad
            shifts = torch.randint(0, 2 * self.pad, (n, 2), generator=gen)
            flips = torch.rand(n, generator=gen) < 0.5
            shifts, flips = shifts.to(self.device), flips.to(self.device)
        return order.to(self.device), shifts, flips

    def _batches(self, order, shifts, flips):
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = start + self.batch_size
            idx = order[start:stop]
            if self.augment:  # crops and flips are drawn per position in the epoch, not per image
                images = crop_and_flip(self.images[idx], shifts[start:stop], flips[start:stop], self.size)
            else:
                images = self.images[idx]
            yield self._normalise(images), self.labels[idx]

    def _normalise(self, images_uint8):
        images = images_uint8.float().sub_(self.mean).div_(self.std)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images


def crop_and_flip(padded, shifts, flips, size: int):
    """Per-image crops padded[i, :, y:y+size, x:x+size] (shifts[i] = (y, x)), mirrored where flips[i].

    The flip is folded into the column indices, so the whole batch is one torch.gather over
    flattened pixels: no Python loop over images (and ~3x faster on CPU than 4-d advanced indexing).
    """
    batch, channels, height, width = padded.shape
    offsets = torch.arange(size, device=padded.device)
    cols = shifts[:, 1:2] + offsets  # [B, size]
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    rows = shifts[:, 0:1] + offsets
    pixel = (rows[:, :, None] * width + cols[:, None, :]).view(batch, 1, size * size)
    crops = padded.reshape(batch, channels, height * width).gather(2, pixel.expand(-1, channels, -1))
    return crops.view(batch, channels, size, size)


# --- baseline: plain torch DataLoader -----------------------------------------------------

class ArrayDataset(Dataset):
    """uint8 NHWC arrays as PIL images through torchvision transforms, like torchvision's CIFAR."""

    def __init__(self, images: np.ndarray, labels, transform):
        self.images, self.labels, self.transform = images, np.asarray(labels, dtype=np.int64), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def cifar_transform(augment: bool, mean=CIFAR100_MEAN, std=CIFAR100_STD):
    from torchvision import transforms as T
    steps = [T.RandomCrop(32, padding=4, padding_mode="reflect"), T.RandomHorizontalFlip()] if augment else []
    return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])


def plain_dataloader(images: np.ndarray, labels, batch_size: int, *, shuffle=True, augment=False,
                     mean=CIFAR100_MEAN, std=CIFAR100_STD, drop_last=False, seed=0, num_workers=0,
                     pin_memory=False) -> DataLoader:
    """The same data through torch.utils.data.DataLoader (CPU tensors; move them to the device)."""
    dataset = ArrayDataset(images, labels, cifar_transform(augment, mean, std))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(seed))
