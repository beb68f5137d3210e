"""Training throughput of ResNet-32 fed by the in-memory device loader vs a plain torch DataLoader.

Both paths see the same random CIFAR-shaped uint8 data, the same augmentation (reflect-pad 4,
random 32 crop, horizontal flip, normalise), the same model/optimizer and the same number of timed
steps after the same warm-up; CUDA work is synchronised before each clock read. The timed steps
are split into rounds that alternate between the paths (every step on CPU), so load from other
processes on a shared machine hits both paths alike. A second table times the loaders alone (no
model), which is what the in-memory path actually changes.

    python benchmarks/bench_dataloader.py                    # CUDA if available, else CPU
    python benchmarks/bench_dataloader.py --device cpu --steps 20 --workers 2
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from featgeom.data.gpu_loader import InMemoryLoader, plain_dataloader
from featgeom.models import build_model


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=None, help="images (default 50000 on CUDA, 5000 on CPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per path (default 200 CUDA, 10 CPU)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the clock starts")
    parser.add_argument("--data-steps", type=int, default=100, help="timed steps of the loader-only table")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating timing rounds (default: every step on CPU, 4 on CUDA)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    args.n = args.n or (50_000 if cuda else 5_000)
    args.steps = args.steps or (200 if cuda else 10)
    # A shared CPU's speed swings by 3x within seconds, so there only step-by-step alternation is
    # fair; on CUDA, a sync per step would cut the CPU/GPU overlap, so alternate in a few blocks.
    args.rounds = args.rounds or (4 if cuda else args.steps)
    return args


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forever(loader):
    while True:  # restart epochs as needed so every path runs the same number of steps
        yield from loader


def make_loaders(images, labels, args, device):
    memory = InMemoryLoader(images, labels, args.batch_size, augment=True, drop_last=True,
                            device=device, channels_last=args.channels_last)
    plain = plain_dataloader(images, labels, args.batch_size, augment=True, drop_last=True,
                             num_workers=args.workers, pin_memory=device.type == "cuda")
    return {"in-memory": memory, f"DataLoader({args.workers} workers)": plain}


def to_device(batch, device, channels_last):
    images, labels = batch
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels.to(device, non_blocking=True)


def run_steps(batches, step, steps, device, args) -> float:
    """Seconds for `steps` calls of step(batch), synchronised at both ends."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(*to_device(next(batches), device, args.channels_last))
    sync(device)
    return time.perf_counter() - start


def time_paths(loaders, make_step, steps, rounds, device, args) -> dict:
    """Total timed seconds per path: warm-up first (untimed), then alternating rounds."""
    runs = {path: (forever(loader), make_step()) for path, loader in loaders.items()}
    for batches, step in runs.values():
        run_steps(batches, step, args.warmup, device, args)
    seconds = dict.fromkeys(runs, 0.0)
    rounds = min(rounds, steps)
    per_round = [steps // rounds + (r < steps % rounds) for r in range(rounds)]
    for round_steps in per_round:
        for path, (batches, step) in runs.items():
            seconds[path] += run_steps(batches, step, round_steps, device, args)
    return seconds


def train_step_fn(args, device):
    torch.manual_seed(0)
    model = build_model({"backbone": "resnet32", "head": "linear"}, args.classes).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.train()

    def step(images, labels):
        logits = model(images).logits
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def data_only_step(images, labels):
    pass  # the batch is already on the device: only loading, augmenting and transfer are timed


def report(title, seconds, steps, args):
    print(f"\n{title}")
    print(f"{'path':<28}{'images/s':>12}{'ms/step':>10}")
    for path, secs in seconds.items():
        print(f"{path:<28}{steps * args.batch_size / secs:>12.0f}{1000 * secs / steps:>10.2f}")
    fast, plain = seconds.values()
    print(f"in-memory / DataLoader throughput ratio: {plain / fast:.2f}x")


def main():
    args = parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, args.classes, size=args.n)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} N={args.n} "
          f"batch={args.batch_size} steps={args.steps} warmup={args.warmup} channels_last={args.channels_last}")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"gpu={torch.cuda.get_device_name(device)}")
    loaders = make_loaders(images, labels, args, device)
    train = time_paths(loaders, lambda: train_step_fn(args, device), args.steps, args.rounds, device, args)
    report("ResNet-32 training (forward + backward + SGD step)", train, args.steps, args)
    # Two blocks only: while one path is timed, the DataLoader's workers refill their prefetch
    # queue (2 batches per worker), a head start that many short rounds would multiply.
    data = time_paths(loaders, lambda: data_only_step, args.data_steps, 2, device, args)
    report("loader only (batches delivered on the device)", data, args.data_steps, args)


if __name__ == "__main__":
    main()
