"""Training throughput (img/s) of featgeom's own step: HAFrame type-II model and loss, in-memory loader.

Table 1, per workload (WRN-28-8 at batch 64 and 128, ResNet-32 at batch 128, CIFAR-100 shaped data):
today's fp32 eager step as the baseline, then each step option (bf16 autocast, channels_last,
torch.compile, whole-step CUDA graph) and their combination, with the speed-up over the baseline and
the implied time of one CIFAR-100 training epoch (45,000 images, HAFrame's split).
Table 2: k = 1, 2, 4 runs sharing the device, as separate processes started together (what Snakemake
does with `gpu_percent`), aggregate img/s over the common timing window.
Table 3 (--resnet50): ResNet-50 on an image folder of 224 x 224 stretched JPEG copies (iNat19 / tieredImageNet-H
as the papers trained them), end to end: featgeom's loaders (RandomResizedCrop + flip in `--loader-workers`
worker processes, uint8 batches, normalisation on the device) feeding featgeom's step, in fp32 and in
bf16 + channels_last, with cuDNN autotuning on (the config's default). Next to each: the step alone on one
batch already on the device, so the table says whether the loader or the GPU sets the pace.

Every configuration warms up (compile, graph capture, cuDNN autotuning) before its clock starts, and
CUDA work is synchronised before each clock read. The numbers are for comparing rows of one run:
a shared machine drifts between runs.

    python benchmarks/bench_train_gpu.py                           # CUDA: the published workloads
    python benchmarks/bench_train_gpu.py --small                   # CPU-sized: the demo's convnet, few steps
    python benchmarks/bench_train_gpu.py --small --options fp32,bf16,channels_last --share 1,2
    python benchmarks/bench_train_gpu.py --resnet50 --options "" --share ""   # Table 3 only (about 2 min on a GPU)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from featgeom import frames
from featgeom.data.gpu_loader import InMemoryLoader
from featgeom.data.loaders import build_loaders
from featgeom.data.manifest import verify_image_folder
from featgeom.hierarchy import read_distance_csv
from featgeom.io import write_json
from featgeom.losses import CrossEntropyLoss, HAFrameLoss
from featgeom.models import build_model, param_groups
from featgeom.step import StepOptions, TrainStep

CIFAR100_DISTANCES = Path(__file__).resolve().parents[1] / "featgeom/resources/hierarchies/cifar100_distances.csv"
EPOCH_IMAGES = 45_000  # HAFrame's CIFAR-100 train split (official train minus 50 val images per class)
OPTIONS = {
    "fp32": StepOptions(),
    "bf16": StepOptions(precision="bf16"),
    "channels_last": StepOptions(channels_last=True),
    "compile": StepOptions(compile=True),
    "cuda_graph": StepOptions(cuda_graph=True),
    "all": StepOptions("bf16", channels_last=True, compile=True, cuda_graph=True),
}
WORKLOADS = {"full": [("wrn28_8", 64), ("wrn28_8", 128), ("resnet32", 128)], "small": [("convnet_small", 16)]}
BACKBONE_KWARGS = {"resnet32": {"width": 32},        # 128-d, as the long-tail HAFrame runs
                   "convnet_small": {"width": 8}}     # the demo's network, CPU-sized
# Table 3: (image size, batch, images in the folder, classes); small = a CPU-sized check of the same code
RESNET50 = {"full": (224, 256, 2048, 100), "small": (32, 4, 24, 3)}
RESNET50_OPTIONS = {"fp32": StepOptions(cudnn_benchmark=True),
                    "bf16+channels_last": StepOptions("bf16", channels_last=True, cudnn_benchmark=True)}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="the demo's small convnet at batch 16, few steps: a CPU-sized check")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per configuration (default 100, small 4)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10, small 2)")
    parser.add_argument("--options", default=",".join(OPTIONS), help=f"comma list of {', '.join(OPTIONS)}")
    parser.add_argument("--share", default="1,2,4", help="run counts k for the sharing table (empty: skip)")
    parser.add_argument("--share-option", default="fp32", help="step option the sharing table uses")
    parser.add_argument("--resnet50", action="store_true", help="Table 3: ResNet-50 fed by the image-folder loader")
    parser.add_argument("--loader-workers", type=int, default=min(8, max(1, (os.cpu_count() or 2) - 1)),
                        help="Table 3's loader workers (default: the cores less one, at most 8)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # JSON job of one sharing process
    args = parser.parse_args()
    args.steps = args.steps or (4 if args.small else 100)
    args.warmup = args.warmup or (2 if args.small else 10)
    args.workloads = WORKLOADS["small" if args.small else "full"]
    return args


def haframe_setup(num_classes: int = 100):
    """HAFrame's fixed classifier and similarity for CIFAR-100 (gamma 2), as the papers' runs use."""
    _, distances = read_distance_csv(CIFAR100_DISTANCES)
    gamma = 2.0
    similarity = frames.haframe_similarity(distances, gamma, frames.find_s_min(distances, gamma))
    return frames.haframe_weights(similarity, num_classes, seed=0), similarity


def make_step(backbone: str, batch: int, options: StepOptions, device, frame, similarity):
    torch.manual_seed(0)
    spec = {"backbone": backbone, "backbone_kwargs": BACKBONE_KWARGS.get(backbone, {}), "head": "type2",
            "frame": "haframe"}
    model = build_model(spec, 100, frame).to(device)
    loss_fn = HAFrameLoss(frame, similarity, alpha=0.4).to(device)
    sgd = torch.optim.SGD(param_groups(model, {"backbone": 0.01, "head": 0.01, "classifier": 0.1}),
                          momentum=0.9, weight_decay=5e-4)
    applied = options.applied(device, static_batches=True)
    return TrainStep(model, loss_fn, sgd, applied, device)


def make_loader(batch: int, steps: int, device):
    images = np.random.default_rng(0).integers(0, 256, (batch * steps, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(batch * steps) % 100
    return InMemoryLoader(images, labels, batch, augment=True, drop_last=True, device=device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(backbone, batch, option_name, device, warmup, steps, barrier=None) -> dict:
    """img/s of `steps` training steps after `warmup` untimed ones; `barrier()` lines up sharing processes."""
    frame, similarity = haframe_setup()
    step = make_step(backbone, batch, OPTIONS[option_name], device, frame, similarity)
    step.model.train()
    step.start_epoch()
    for images, labels in make_loader(batch, warmup, device):
        step(images, labels)
    sync(device)
    loader = make_loader(batch, steps, device)
    if barrier is not None:
        barrier()
    start = time.perf_counter()
    for images, labels in loader:
        step(images, labels)
    sync(device)
    seconds = time.perf_counter() - start
    step.totals()
    return {"images": batch * steps, "seconds": seconds, "start": time.time() - seconds}


def options_table(args, device) -> list[str]:
    names = [n for n in args.options.split(",") if n]
    lines = [f"{'workload':<20}{'option':<15}{'img/s':>10}{'vs fp32':>9}{'epoch (s)':>11}  applied here"]
    for backbone, batch in args.workloads:
        baseline = None
        for name in names:
            result = time_steps(backbone, batch, name, device, args.warmup, args.steps)
            rate = result["images"] / result["seconds"]
            baseline = baseline or rate
            applied = OPTIONS[name].applied(device, static_batches=True)
            lines.append(f"{backbone + ' b' + str(batch):<20}{name:<15}{rate:>10.0f}{rate / baseline:>8.2f}x"
                         f"{EPOCH_IMAGES / rate:>11.1f}  {describe(applied)}")
    return lines


def describe(options: StepOptions) -> str:
    flags = [k for k in ("channels_last", "compile", "cuda_graph") if getattr(options, k)]
    return "+".join([options.precision] + flags)


def sharing_table(args, device) -> list[str]:
    counts = [int(k) for k in args.share.split(",") if k]
    lines = [f"{'workload':<20}{'runs':>5}{'total img/s':>13}{'vs 1 run':>10}{'epoch each (s)':>16}"]
    for backbone, batch in args.workloads:
        single = None
        for k in counts:
            total = shared_rate(args, backbone, batch, k)
            single = single or total
            lines.append(f"{backbone + ' b' + str(batch):<20}{k:>5}{total:>13.0f}{total / single:>9.2f}x"
                         f"{EPOCH_IMAGES * k / total:>16.1f}")
    return lines


def shared_rate(args, backbone, batch, k) -> float:
    """Aggregate img/s of k processes timing the same workload at once (one CUDA context each).

    Each worker says 'ready' after its imports and warm-up and starts its clock on 'go', sent to all at once.
    """
    job = {"backbone": backbone, "batch": batch, "option": args.share_option, "device": str(args.device),
           "warmup": args.warmup, "steps": args.steps}
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(job)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(k)]
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"sharing worker exited before warm-up (exit {proc.wait()})")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"sharing worker failed (exit {proc.returncode}): {out}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    window = max(r["start"] + r["seconds"] for r in results) - min(r["start"] for r in results)
    return sum(r["images"] for r in results) / window


def stretched_folder(root: Path, size: int, images: int, classes: int) -> Path:
    """An image folder of `images` JPEG q90 copies at size x size (bench_image_pipeline's textures), verified."""
    from bench_image_pipeline import QUALITY, natural_like  # the same directory: the same fixtures

    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        count = images if split == "train" else classes
        for i in range(count):
            folder = root / "ds" / split / f"c{i % classes:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            natural_like(size, size, rng).save(folder / f"{i:05d}.jpg", quality=QUALITY)
    write_json(root / "manifest.json", verify_image_folder(root / "ds"))
    return root / "manifest.json"


def resnet50_rates(manifest: Path, option: str, args, device) -> tuple[float, float]:
    """(img/s end to end through the loader, img/s of the step alone on one batch on the device)."""
    size, batch, _, classes = RESNET50["small" if args.small else "full"]
    spec = {"source": {"kind": "image_folder", "recipe": "inat"}, "label_level": "fine",
            "train": {"batch_size": batch, "eval_batch_size": batch, "num_workers": args.loader_workers,
                      "augment": "random_resized_crop_flip", "image_size": size}}
    levels = {"class_order": [f"c{k:03d}" for k in range(classes)]}
    loaders, _ = build_loaders(spec, manifest, levels, 0, device, args.loader_workers + 1)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    torch.manual_seed(0)
    model = build_model({"backbone": "resnet50", "head": "linear"}, classes, None).to(device)
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    step = TrainStep(model, CrossEntropyLoss(), sgd, RESNET50_OPTIONS[option].applied(device, False), device)
    step.model.train()
    batches = forever(loaders["train"])
    images, labels = next(batches)
    for _ in range(args.warmup):  # cuDNN autotuning, the workers' start-up and their first prefetch
        step(*next(batches))
    timed = [lambda: step(*next(batches)), lambda: step(images, labels)]
    rates = []
    for call in timed:
        sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            call()
        sync(device)
        rates.append(args.steps * batch / (time.perf_counter() - start))
    step.totals()
    return rates[0], rates[1]


def forever(loader):
    epoch = 0
    while True:  # next epochs as needed: every configuration times the same number of steps
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def resnet50_table(args, device) -> list[str]:
    size, batch, images, classes = RESNET50["small" if args.small else "full"]
    lines = [f"{'option':<22}{'batch':>6}{'loader+step img/s':>19}{'step alone img/s':>18}{'vs step alone':>15}"]
    with tempfile.TemporaryDirectory(prefix="bench_train_gpu.") as tmp:
        manifest = stretched_folder(Path(tmp), size, images, classes)
        for option in RESNET50_OPTIONS:
            end_to_end, step_alone = resnet50_rates(manifest, option, args, device)
            lines.append(f"{option:<22}{batch:>6}{end_to_end:>19.0f}{step_alone:>18.0f}"
                         f"{end_to_end / step_alone:>14.2f}x")
    return lines


def wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def main():
    args = parse_args()
    if args.worker:
        job = json.loads(args.worker)
        result = time_steps(job["backbone"], job["batch"], job["option"], torch.device(job["device"]),
                            job["warmup"], job["steps"], barrier=wait_for_go)
        print(json.dumps(result))
        return
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device={name} torch={torch.__version__} steps={args.steps} warmup={args.warmup}")
    print("\n".join(options_table(args, device)))
    if args.share:
        print(f"\nruns sharing the device ({args.share_option} step, separate processes)")
        print("\n".join(sharing_table(args, device)))
    if args.resnet50:
        size = RESNET50["small" if args.small else "full"][0]
        print(f"\nResNet-50 on {size} x {size} stretched JPEG copies, {args.loader_workers} loader workers"
              + (" (small: CPU-sized)" if args.small else ""))
        print("\n".join(resnet50_table(args, device)))


if __name__ == "__main__":
    main()
