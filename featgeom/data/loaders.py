"""Build the train / val / test / train-eval loaders of a run from its spec.

In-memory datasets (synthetic, CIFAR) live as one uint8 tensor on the training device and
are augmented there in batches (airbench style, no worker processes); image folders go
through a torchvision DataLoader. Both expose set_epoch(epoch) so the data order and the
augmentation depend only on (seed, epoch): a resumed run sees the same batches as an
uninterrupted one (for image folders, see featgeom/data/imagefolder.py).
"""
from __future__ import annotations

import numpy as np

from featgeom.config import MAIN_PROCESS_CORES, in_memory, wanted_workers
from featgeom.data.arrays import load_arrays
from featgeom.data.gpu_loader import InMemoryLoader, channel_stats
from featgeom.data.resized import open_resized
from featgeom.hierarchy_stage import coarse_labels
from featgeom.io import read_json


def coarse_of_fine(levels: dict) -> np.ndarray:
    """Coarse label of every fine class (the dataset's configured coarse level), [] without one."""
    return coarse_labels(levels)[1] if "coarse" in levels else np.zeros(0, dtype=np.int64)


def build_loaders(spec: dict, data_path, levels: dict, seed: int, device, threads: int, resized=None):
    """Return (loaders dict, num_classes). loaders: train, val, test, train_eval, label_sets, and
    transforms {train, eval}: a description of exactly what each loader applies (for provenance).
    threads: the cores of this job (image folders: `loader_workers` of them run loader workers);
    resized: the key file of the image folder's resized-image cache (featgeom.data.resized), if it has one."""
    if not in_memory(spec["source"]):
        return _image_folder_loaders(spec, data_path, levels, seed, device, loader_workers(spec, threads), resized)
    arrays = load_arrays(data_path)
    if [str(c) for c in arrays["class_names"]] != list(levels["class_order"]):
        raise ValueError(f"{data_path}: class_names differ from the hierarchy's class order; "
                         "rerun the hierarchy rule for this dataset (snakemake -R hierarchy)")
    return _in_memory_loaders(spec, arrays, levels, seed, device)


def drops_last_batch(n_train: int, batch_size: int) -> bool:
    """Training drops its last partial batch, so BatchNorm never sees a batch of one; a training set
    smaller than one batch (a pilot run, a tiny dataset) is instead trained on as one whole batch."""
    if n_train < 2:
        raise ValueError(f"the training split has {n_train} image(s); BatchNorm needs at least 2 per batch")
    return n_train >= batch_size


def _in_memory_loaders(spec, arrays, levels, seed, device):
    coarse = spec["label_level"] == "coarse"
    to_coarse = coarse_of_fine(levels)
    if coarse:
        check_coarse_labels(arrays, to_coarse)
    labels = {split: (to_coarse[arrays[f"{split}_labels"]] if coarse else arrays[f"{split}_labels"])
              for split in ("train", "val", "test")}
    num_classes = len(coarse_labels(levels)[0]) if coarse else len(levels["class_order"])
    mean, std = channel_stats(arrays["train_images"])
    train = spec["train"]
    augment = _in_memory_augment(train["augment"])

    def loader(split, training):
        return InMemoryLoader(arrays[f"{split}_images"], labels[split],
                              batch_size=train["batch_size"] if training else train["eval_batch_size"],
                              shuffle=training, augment=training and augment, mean=mean, std=std,
                              drop_last=training and drops_last_batch(len(labels[split]), train["batch_size"]),
                              seed=seed, device=device)

    loaders = {"train": loader("train", True), "val": loader("val", False), "test": loader("test", False),
               "train_eval": loader("train", False),
               "label_sets": _label_sets({split: arrays[f"{split}_labels"] for split in ("train", "test")}, to_coarse),
               "transforms": _in_memory_transforms(augment, arrays["train_images"].shape[1], mean, std)}
    return loaders, num_classes


def _in_memory_augment(name: str) -> bool:
    """train.augment as InMemoryLoader's flag: crop_flip = its reflect-pad-4 crop + flip, none = off."""
    if name == "random_resized_crop_flip":
        raise ValueError("train.augment random_resized_crop_flip is not supported for in-memory datasets "
                         "(synthetic, CIFAR): use crop_flip or none")
    if name not in ("crop_flip", "none"):
        raise ValueError(f"unknown train.augment {name!r}; in-memory datasets take crop_flip or none")
    return name == "crop_flip"


def _in_memory_transforms(augment: bool, size: int, mean, std) -> dict:
    """What InMemoryLoader applies, in words (it has no torchvision object to repr)."""
    def triple(values):
        return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"

    normalise = (f"Normalize(mean={triple(mean)}, std={triple(std)}) of [0, 1] pixels, the per-channel "
                 "statistics of this dataset's own training split")
    images = f"in-memory uint8 {size}x{size} images at native size (no resize): "
    crop = (f"reflect-pad 4 then random {size}x{size} crop (offsets 0..7) and horizontal flip (p=0.5) per image, "
            "drawn from (seed, epoch); then " if augment else "no augmentation; ")
    return {"train": images + crop + normalise, "eval": images + "no augmentation; " + normalise}


def check_coarse_labels(arrays: dict, to_coarse: np.ndarray) -> None:
    """The hierarchy's coarse level must group the fine classes as the dataset's own coarse labels do
    (CIFAR-100's pickle `coarse_labels`): a wrong `coarse_level` would silently train other classes.
    Only the grouping must agree; the hierarchy numbers its nodes in order of first appearance."""
    for split in ("train", "val", "test"):
        key = f"{split}_labels_coarse"
        if key not in arrays:
            continue
        pairs = np.unique(np.stack([to_coarse[arrays[f"{split}_labels"]], arrays[key]]), axis=1)
        if not len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]:
            raise ValueError(f"the hierarchy's coarse level groups the classes differently from the dataset's own "
                             f"coarse labels ({key}); check datasets.<name>.hierarchy.coarse_level")


def _label_sets(fine_labels: dict, to_coarse) -> dict:
    """features.npz label arrays: {split}_labels_fine and {split}_labels_coarse for every split given."""
    sets = {}
    for split, fine in fine_labels.items():
        fine = np.asarray(fine, dtype=np.int64)
        sets[f"{split}_labels_fine"] = fine
        if len(to_coarse):  # a dataset without a coarse level has fine labels only
            sets[f"{split}_labels_coarse"] = to_coarse[fine]
    return sets


def loader_workers(spec: dict, threads: int) -> int:
    """Loader worker processes of a run given the job's `threads` cores: train.num_workers for an image folder
    whose job got what it booked (featgeom.config.booked_threads: the workers and MAIN_PROCESS_CORES), else
    what the cores allow beside the main process (Snakemake's --cores below the booking, a library call
    with fewer threads; the run's log says so); 0 for in-memory data."""
    wanted = wanted_workers(spec)
    return wanted if threads >= wanted + MAIN_PROCESS_CORES else max(0, threads - MAIN_PROCESS_CORES)


class EpochSeededLoader:
    """Wraps an image_folder_loader: set_epoch picks the epoch its EpochSampler (and so the order and
    the augmentation) uses; batches move to the device, where `normalise` turns the uint8 images into the
    normalised float32 ones (imagefolder.DeviceNormalise)."""

    def __init__(self, loader, device, normalise):
        self.loader, self.device, self.normalise = loader, device, normalise

    def set_epoch(self, epoch: int) -> None:
        self.loader.sampler.set_epoch(epoch)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for images, labels in self.loader:
            images = self.normalise(images.to(self.device, non_blocking=True))
            yield images, labels.to(self.device, non_blocking=True)


def _image_folder_loaders(spec, manifest_path, levels, seed, device, workers, resized_key):
    from featgeom.data.imagefolder import DeviceNormalise, image_folder_loader, manifest_dataset, worker_transform

    manifest = read_json(manifest_path)
    recipe, train = spec["source"]["recipe"], spec["train"]
    if spec["label_level"] == "coarse":
        raise ValueError("label_level coarse is implemented for in-memory datasets only (synthetic, CIFAR)")
    # featgeom.config.resolve_train writes both out, with the recipe's published defaults.
    augment, size = train["augment"], train["image_size"]
    images, spans = open_resized(resized_key, manifest_path, size) if resized_key else (None, {})
    order = levels["class_order"]

    def dataset(split, training):
        cached = split in spans and (not training or augment == "crop_flip")
        return manifest_dataset(manifest, split, order, worker_transform(augment, size, training, cached), seed,
                                resized=(images, spans[split][0]) if cached else None)

    # "train" (eval transforms) feeds collapse metrics and feature dumps; "train_aug" feeds SGD.
    datasets = {split: dataset(split, False) for split in ("train", "val", "test")}
    datasets["train_aug"] = dataset("train", True)
    normalise = DeviceNormalise(recipe, device)

    def loader(name, training):
        batch = train["batch_size"] if training else train["eval_batch_size"]
        drop_last = training and drops_last_batch(len(datasets[name]), batch)
        return EpochSeededLoader(image_folder_loader(datasets[name], batch, shuffle=training, num_workers=workers,
                                                     pin_memory=device.type == "cuda", drop_last=drop_last,
                                                     seed=seed),
                                 device, normalise)

    label_sets = _label_sets({split: datasets[split].targets for split in ("train", "test")}, coarse_of_fine(levels))
    loaders = {"train": loader("train_aug", True), "val": loader("val", False), "test": loader("test", False),
               "train_eval": loader("train", False), "label_sets": label_sets,
               "transforms": {"train": _describe(datasets["train_aug"], normalise),
                              "eval": _describe(datasets["val"], normalise)}}
    return loaders, len(order)


def _describe(dataset, normalise) -> str:
    """What one loader applies, in words: where the pixels come from, the worker transform, the device step."""
    source = ("the resized-image cache (Resize done once)" if dataset.resized is not None
              else "the decoded file (a Resize to the image's own size is skipped, as torchvision does)")
    steps = repr(dataset.transform) if dataset.transform.transforms else "nothing (the cached uint8 pixels)"
    return f"{source}; workers: {steps}; {normalise!r}"
