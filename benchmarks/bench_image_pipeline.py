"""Per-core img/s of the image-folder sample paths: today's float path on the original JPEGs (the baseline) and
the training path (uint8 workers, normalisation on the device, stretched 224 copies or the resize cache).

Fixtures are made here, in a temporary folder: smooth multi-scale textures with fine noise, saved as JPEG q90 at
- imagenet: about 500 x 375 (tieredImageNet-H's source images), and their 224 x 224 stretched copies;
- inat: up to 800 x 600 (iNaturalist 2019's), and their 224 x 224 stretched copies;
- fgvc: about 1000 x 700 (FGVC-Aircraft after the banner crop), and the resize cache (featgeom.data.resized).
The stretched copies are PIL's antialiased bicubic resize of the originals, saved at q90.

Table 1 times one sample at a time in this process (one torch thread): the train and the eval sample path of
each case, by CPU time, so other processes on a shared machine slow neither path's figure; the paths alternate
round by round. Baseline = featgeom.data.imagefolder.reference_transform (Resize / RandomResizedCrop / crop,
flip, ToTensor, Normalize: the published composition) on the decoded original. The new path stops at uint8:
its normalisation (DeviceNormalise) runs on the GPU, a few microseconds per image there; Table 1 also gives its
CPU cost per image, which is what it costs where training runs on a CPU.
Table 2 times a DataLoader with N workers over the new train path (wall clock, batches of 64).
The last lines: `speedup <case>: <ratio>x` (train path, per core), then the cores one H100 needs at ResNet-50
bf16 speed (GPU_IMAGES_PER_S): the loader workers at the measured per-core rate, plus the training process.

(benchmarks/bench_dataloader.py times the other loader, CIFAR's in-memory one, against a DataLoader.)

    python benchmarks/bench_image_pipeline.py            # about 30 s on one free core
    python benchmarks/bench_image_pipeline.py --quick    # about 10 s: fewer images and rounds
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from featgeom.data.imagefolder import (DeviceNormalise, ManifestDataset, image_folder_loader, reference_transform,
                                       worker_transform)
from featgeom.data.resized import open_resized, write_resized
from featgeom.io import write_json

SIZE = 224
QUALITY = 90
# ResNet-50 training at bf16 on one H100, about 2.7k img/s: the issue's estimate from NVIDIA DeepLearningExamples'
# and Lambda's published tables; benchmarks/bench_train_gpu.py --resnet50 measures featgeom's own step.
GPU_IMAGES_PER_S = 2700
MAIN_PROCESS_CORES = 1  # featgeom.config.MAIN_PROCESS_CORES: the training process decodes nothing
# (recipe, augment, original sizes (w, h), how the new path reads it)
CASES = {
    "imagenet": ("imagenet", "random_resized_crop_flip", [(500, 375), (375, 500), (500, 333)], "stretched"),
    "inat": ("inat", "random_resized_crop_flip", [(800, 600), (600, 800), (800, 533), (500, 375)], "stretched"),
    "fgvc": ("fgvc", "crop_flip", [(1000, 700), (1000, 667), (1024, 680)], "cache"),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds (under 2 minutes)")
    parser.add_argument("--images", type=int, default=None, help="fixture images per case (default 48, quick 12)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating timing rounds (default 6, quick 2)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of Table 2 (0: skip Table 2)")
    parser.add_argument("--batches", type=int, default=None, help="timed batches of Table 2 (default 20, quick 4)")
    args = parser.parse_args()
    args.images = args.images or (12 if args.quick else 48)
    args.rounds = args.rounds or (2 if args.quick else 6)
    args.batches = args.batches or (4 if args.quick else 20)
    return args


def natural_like(width: int, height: int, rng) -> Image.Image:
    """Smooth colour fields at four scales plus fine noise: JPEG sizes and decode times near photographs'."""
    acc = np.zeros((height, width, 3), np.float32)
    for cells, amplitude in ((3, 70), (12, 45), (48, 30), (160, 20)):
        grid_h = max(2, height * cells // max(height, width))
        grid_w = max(2, width * cells // max(height, width))
        grid = rng.integers(0, 256, (grid_h, grid_w, 3), dtype=np.uint8)
        field = np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC), np.float32)
        acc += (field - 128) * (amplitude / 128)
    acc += rng.normal(0, 10, acc.shape)
    return Image.fromarray(np.clip(acc + 128, 0, 255).astype(np.uint8))


def write_manifest(root: Path, names: list[str], path: Path) -> Path:
    """A manifest (featgeom.data.manifest format) listing `names` under root/train/c0 as the train split."""
    write_json(path, {"root": str(root), "classes": ["c0"],
                      "files": {"train": [[f"train/c0/{n}", "c0"] for n in names], "val": [], "test": []}})
    return path


def make_case(folder: Path, sizes, images: int, rng) -> dict:
    """Originals and their stretched copies as image folders, with manifests; the resize cache of the originals."""
    names = [f"{i:04d}.jpg" for i in range(images)]
    for kind in ("original", "stretched"):
        (folder / kind / "train" / "c0").mkdir(parents=True)
    for i, name in enumerate(names):
        width, height = sizes[i % len(sizes)]
        image = natural_like(width, height, rng)
        image.save(folder / "original" / "train" / "c0" / name, quality=QUALITY)
        stretched = image.resize((SIZE, SIZE), Image.Resampling.BICUBIC)
        stretched.save(folder / "stretched" / "train" / "c0" / name, quality=QUALITY)
    manifests = {kind: write_manifest(folder / kind, names, folder / f"{kind}.json")
                 for kind in ("original", "stretched")}
    key = folder / f"resized_{SIZE}.json"
    write_resized(manifests["original"], SIZE, folder / f"resized_{SIZE}.npy", key, workers=1)
    images_path, spans = open_resized(key, manifests["original"], SIZE)
    return {"manifests": manifests, "cache": (images_path, spans["train"][0]), "names": names}


def dataset(case: dict, kind: str, transform, cached: bool = False) -> ManifestDataset:
    manifest = json.loads(case["manifests"][kind].read_text())
    return ManifestDataset(manifest["root"], manifest["files"]["train"], ["c0"], transform, seed=0,
                           resized=case["cache"] if cached else None)


class Repeated(torch.utils.data.Dataset):
    """`data` `times` over, so that a DataLoader runs long enough on a few fixture files (read from page cache)."""

    def __init__(self, data, times: int):
        self.data, self.times = data, times

    def __len__(self) -> int:
        return len(self.data) * self.times

    def __getitem__(self, key):
        epoch, index = key
        return self.data[(epoch, index % len(self.data))]


def sample_paths(case: dict, recipe: str, augment: str, new_source: str) -> dict:
    """{path name: dataset}: train and eval, baseline on the originals and new on the copies or the cache."""
    cached = new_source == "cache"
    new_kind = "original" if cached else "stretched"
    paths = {}
    for training, label in ((True, "train"), (False, "eval")):
        paths[f"{label} baseline"] = dataset(case, "original", reference_transform(recipe, augment, SIZE, training))
        paths[f"{label} new"] = dataset(case, new_kind, worker_transform(augment, SIZE, training, cached), cached)
    return paths


def cpu_seconds(data: ManifestDataset, epoch: int) -> float:
    """CPU time of this process for one pass over `data` at `epoch`."""
    start = time.process_time()
    for index in range(len(data)):
        data[(epoch, index)]
    return time.process_time() - start


def time_sample_paths(paths: dict, rounds: int) -> dict:
    """Per-core img/s of each path: one warm-up pass, then `rounds` passes alternating between the paths."""
    for data in paths.values():
        cpu_seconds(data, 0)
    seconds = dict.fromkeys(paths, 0.0)
    for epoch in range(1, rounds + 1):
        for name, data in paths.items():
            seconds[name] += cpu_seconds(data, epoch)
    return {name: rounds * len(paths[name]) / secs for name, secs in seconds.items()}


def normalise_cost(batch: int = 64) -> float:
    """CPU microseconds per image of DeviceNormalise on a CPU (on a GPU it is one elementwise kernel per batch)."""
    images = torch.randint(0, 256, (batch, 3, SIZE, SIZE), dtype=torch.uint8)
    normalise = DeviceNormalise("imagenet", "cpu")
    normalise(images)
    start, repeats = time.process_time(), 5
    for _ in range(repeats):
        normalise(images)
    return 1e6 * (time.process_time() - start) / (repeats * batch)


def loader_rate(data: ManifestDataset, workers: int, batches: int, batch: int = 64) -> float:
    """Wall-clock img/s of a DataLoader with `workers` workers over `data`, after one untimed batch per worker."""
    loader = image_folder_loader(data, batch, shuffle=True, num_workers=workers, pin_memory=False, drop_last=True)
    stream = iter(loader)
    for _ in range(max(1, workers)):
        next(stream)
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return batches * batch / (time.perf_counter() - start)


def main():
    args = parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"torch={torch.__version__} images per case={args.images} rounds={args.rounds} size={SIZE} q{QUALITY}; "
          "per-core img/s by CPU time")
    print(f"{'case':<10}{'path':<16}{'img/s/core':>11}{'vs baseline':>13}")
    speedups, new_train = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench_image_pipeline.") as tmp:
        cases = {}
        for name, (recipe, augment, sizes, source) in CASES.items():
            cases[name] = make_case(Path(tmp) / name, sizes, args.images, rng)
            rates = time_sample_paths(sample_paths(cases[name], recipe, augment, source), args.rounds)
            for path, rate in rates.items():
                baseline = rates[path.split()[0] + " baseline"]
                print(f"{name:<10}{path:<16}{rate:>11.0f}{rate / baseline:>12.2f}x")
            speedups[name] = rates["train new"] / rates["train baseline"]
            new_train[name] = rates["train new"]
        print(f"DeviceNormalise on a CPU: {normalise_cost():.0f} us per image (not in the new paths' figures)")
        if args.workers:
            print(f"\nDataLoader, new train path, {args.workers} workers, batches of 64 (wall clock)")
            for name, (recipe, augment, _, source) in CASES.items():
                cached = source == "cache"
                data = Repeated(dataset(cases[name], "original" if cached else "stretched",
                                        worker_transform(augment, SIZE, True, cached), cached),
                                math.ceil(64 * (args.batches + args.workers + 1) / args.images))
                rate = loader_rate(data, args.workers, args.batches)
                print(f"{name:<10}{rate:>9.0f} img/s  {rate / args.workers:>7.0f} per worker")
    print()
    for name in CASES:
        print(f"speedup {name}: {speedups[name]:.2f}x")
    for name in CASES:
        workers = GPU_IMAGES_PER_S / new_train[name]
        print(f"cores per H100 at ResNet-50 bf16 ({GPU_IMAGES_PER_S} img/s) {name}: "
              f"{workers + MAIN_PROCESS_CORES:.1f} ({workers:.1f} workers + {MAIN_PROCESS_CORES} main)")


if __name__ == "__main__":
    main()
