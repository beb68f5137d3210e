"""Build the train / val / test / train-eval loaders of a run from its spec.

In-memory datasets (synthetic, CIFAR) live as one uint8 tensor on the training device and
are augmented there in batches (airbench style, no worker processes); image folders go
through a torchvision DataLoader. Both expose set_epoch(epoch) so the data order depends
only on (seed, epoch): a resumed run sees the same batches as an uninterrupted one.
"""
from __future__ import annotations

import numpy as np

from featgeom.data.arrays import load_arrays
from featgeom.data.gpu_loader import InMemoryLoader, channel_stats
from featgeom.io import read_json


def coarse_of_fine(levels: dict) -> np.ndarray:
    """Top-level (coarse) label of every fine class, from the hierarchy's levels.json."""
    return np.asarray(levels["levels"][0]["labels"], dtype=np.int64)


def build_loaders(spec: dict, data_path, levels: dict, seed: int, device, threads: int):
    """Return (loaders dict, num_classes). loaders: train, val, test, train_eval, label_sets."""
    if spec["source"]["kind"] == "image_folder":
        return _image_folder_loaders(spec, data_path, levels, seed, device, threads)
    arrays = load_arrays(data_path)
    if [str(c) for c in arrays["class_names"]] != list(levels["class_order"]):
        raise ValueError(f"{data_path}: class_names differ from the hierarchy's class order; "
                         "rerun the hierarchy rule for this dataset (snakemake -R hierarchy)")
    return _in_memory_loaders(spec, arrays, levels, seed, device)


def _in_memory_loaders(spec, arrays, levels, seed, device):
    coarse = spec["label_level"] == "coarse"
    to_coarse = coarse_of_fine(levels)
    labels = {split: (to_coarse[arrays[f"{split}_labels"]] if coarse else arrays[f"{split}_labels"])
              for split in ("train", "val", "test")}
    num_classes = len(levels["levels"][0]["names"]) if coarse else len(levels["class_order"])
    mean, std = channel_stats(arrays["train_images"])
    train = spec["train"]

    def loader(split, training):
        # drop_last only while training: a last batch of one sample would break BatchNorm.
        return InMemoryLoader(arrays[f"{split}_images"], labels[split],
                              batch_size=train["batch_size"] if training else train.get("eval_batch_size", 512),
                              shuffle=training, augment=training and train.get("augment", "crop_flip") != "none",
                              mean=mean, std=std, drop_last=training, seed=seed, device=device)

    loaders = {"train": loader("train", True), "val": loader("val", False), "test": loader("test", False),
               "train_eval": loader("train", False),
               "label_sets": _label_sets({split: arrays[f"{split}_labels"] for split in ("train", "test")}, to_coarse)}
    return loaders, num_classes


def _label_sets(fine_labels: dict, to_coarse) -> dict:
    """features.npz label arrays: {split}_labels_fine and {split}_labels_coarse for every split given."""
    sets = {}
    for split, fine in fine_labels.items():
        fine = np.asarray(fine, dtype=np.int64)
        sets.update({f"{split}_labels_fine": fine, f"{split}_labels_coarse": to_coarse[fine]})
    return sets


class EpochSeededLoader:
    """Wraps a DataLoader: set_epoch reseeds its shuffling from (seed, epoch); batches move to the device."""

    def __init__(self, loader, seed, device):
        self.loader, self.seed, self.device = loader, seed, device
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.loader.generator.manual_seed(self.seed * 100_003 + epoch)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for images, labels in self.loader:
            yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)


def _image_folder_loaders(spec, manifest_path, levels, seed, device, threads):
    from featgeom.data.imagefolder import image_folder_dataset, image_folder_loader

    manifest = read_json(manifest_path)
    recipe, train = spec["source"]["recipe"], spec["train"]
    workers = min(train.get("num_workers", 4), threads)
    if spec["label_level"] == "coarse":
        raise ValueError("label_level coarse is implemented for in-memory datasets only (synthetic, CIFAR)")
    order = levels["class_order"]
    # "train" (eval transforms) feeds collapse metrics and feature dumps; "train_aug" feeds SGD.
    datasets = {split: image_folder_dataset(manifest["root"], split, train=False, recipe=recipe, class_order=order)
                for split in ("train", "val", "test")}
    datasets["train_aug"] = image_folder_dataset(manifest["root"], "train", train=True, recipe=recipe,
                                                 class_order=order)

    def loader(name, training):
        batch = train["batch_size"] if training else train.get("eval_batch_size", 256)
        return EpochSeededLoader(image_folder_loader(datasets[name], batch, shuffle=training, num_workers=workers,
                                                     pin_memory=device.type == "cuda", drop_last=training),
                                 seed, device)

    label_sets = _label_sets({split: datasets[split].targets for split in ("train", "test")}, coarse_of_fine(levels))
    loaders = {"train": loader("train_aug", True), "val": loader("val", False), "test": loader("test", False),
               "train_eval": loader("train", False), "label_sets": label_sets}
    return loaders, len(order)
