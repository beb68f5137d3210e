"""The training loop: SGD with per-group peak learning rates, a per-epoch schedule, validation
every epoch, best-val model selection, an atomic checkpoint every epoch and exact resume.

Resume is exact on CPU because everything random lives in saved state: model and optimizer
state, and the data order, which the loaders derive from (seed, epoch) alone.
"""
from __future__ import annotations

import math
import random
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from featgeom.checkpoint import FitState, checkpoint_state, is_final, load_checkpoint, restore, save_checkpoint
from featgeom.progress import epoch_line
from featgeom.step import StepOptions, TrainStep


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Multiplier of every group's peak lr for 0-based `epoch`.

    cosine_per_epoch: HAFrame's cosine_anneal_schedule, lr(t) = peak*0.5*(1+cos(pi t/T)),
    set once per epoch, never reaching 0. warmup_step: LDAM-DRW's CIFAR recipe, linear warm-up
    over 5 epochs, x0.01 after 80% and x0.0001 after 90% of training (160/180 of 200).
    """
    if schedule == "cosine_per_epoch":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    if schedule == "warmup_step":
        warmup = min(5, epochs)
        if epoch < warmup:
            return (epoch + 1) / warmup
        if epoch >= 0.9 * epochs:
            return 1e-4
        return 1e-2 if epoch >= 0.8 * epochs else 1.0
    raise ValueError(f"unknown schedule {schedule!r}: use cosine_per_epoch or warmup_step")


def set_learning_rates(optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_one_epoch(step: TrainStep, loader, progress) -> tuple[dict, int]:
    """The epoch's totals (train_loss, train_top1) and the number of training images it saw."""
    step.model.train()
    step.start_epoch()
    seen = 0
    for images, labels in progress(loader):
        step(images, labels)
        seen += len(labels)
    return step.totals(), seen


@torch.no_grad()
def predict(model, loader):
    """Logits, penultimate features and labels of a whole split, in eval mode, as numpy."""
    model.eval()
    logits, features, labels = [], [], []
    for images, batch_labels in loader:
        output = model(images)
        logits.append(output.logits.float().cpu())
        features.append(output.features.float().cpu())
        labels.append(batch_labels.cpu())
    return torch.cat(logits).numpy(), torch.cat(features).numpy(), torch.cat(labels).numpy()


def fit(model, loss_fn, optimizer, loaders, settings: dict, checkpoint_path, made_of: dict,
        measure_collapse=None, log=None, options: StepOptions = StepOptions(), reuse_final: bool = True,
        curves=None) -> FitState:
    """Train for settings['epochs'], resuming from `checkpoint_path` when it was made by `made_of`.

    loaders: dict with 'train' (has set_epoch) and 'val'. measure_collapse(model) -> dict is called where
    HAFrame samples its collapse curves (`collapse_epochs`) and after the last epoch. `options` are the step
    options that apply on this device (StepOptions.applied). A checkpoint made by anything else is deleted and
    the run trains from scratch; so is a final one when not `reuse_final` (Snakemake forced this run).
    `log` gets one line per epoch (featgeom.progress.epoch_line); `curves` (featgeom.curves), if any, each epoch's
    numbers.
    """
    epochs = settings["epochs"]
    sampled = collapse_epochs(epochs, settings["collapse_every"])
    state = FitState()
    if checkpoint_path.exists():
        checkpoint, changed = load_checkpoint(checkpoint_path, made_of)
        if checkpoint is not None and is_final(checkpoint) and not reuse_final:
            checkpoint, changed = None, "snakemake forced this run to rerun (-F, -R or --forcerun)"
        if checkpoint is None:
            checkpoint_path.unlink()
            _say(log, f"training from scratch, {checkpoint_path} deleted: {changed}")
        else:
            state = restore(model, optimizer, checkpoint)
            _say(log, f"resumed from {checkpoint_path} after epoch {state.epoch}")
    # Built after the restore: a graph-captured step binds the optimizer's (restored) momentum buffers.
    step = TrainStep(model, loss_fn, optimizer, options, next(model.parameters()).device)
    for epoch in range(state.epoch, epochs):
        started = time.perf_counter()
        set_learning_rates(optimizer, lr_factor(settings["schedule"], epoch, epochs))
        loaders["train"].set_epoch(epoch)
        totals, images = train_one_epoch(step, loaders["train"], _progress_bar(epoch, epochs))
        record = {"epoch": epoch + 1, **totals}
        train_s = time.perf_counter() - started  # totals() waited for the device
        logits, _, labels = predict(model, loaders["val"])
        record["val_top1"] = 100.0 * float((logits.argmax(1) == labels).mean())
        _update_best(model, state, record, settings["select"])
        if measure_collapse and epoch + 1 in sampled:
            state.collapse_history.append({"epoch": epoch + 1, **measure_collapse(model)})
        state.history.append(record)
        state.epoch = epoch + 1
        save_checkpoint(checkpoint_path, checkpoint_state(model, optimizer, state, made_of, epochs))
        lrs = [group["lr"] for group in optimizer.param_groups]
        epoch_s = time.perf_counter() - started
        images_per_s = images / max(train_s, 1e-9)
        _say(log, epoch_line(record, epochs, lrs, images_per_s, epoch_s, epochs - epoch - 1))
        if curves is not None:
            curves.epoch(record, lrs, images_per_s)
    return state


def collapse_epochs(epochs: int, every: int) -> set[int]:
    """Numbers of completed epochs after which collapse is measured: HAFrame's curves and the final metrics.

    HAFrame saves a checkpoint after 0-based epoch e when e > 0 and e % ckpt_freq == 0 (`start_training.py`), and
    its curves read e = ckpt_freq, 2·ckpt_freq, … < epochs (`neural_collapse.py`: np.arange(ckpt_freq, epochs,
    ckpt_freq)), i.e. the models after e + 1 = 6, 11, …, 96 epochs for ckpt_freq 5 and 100 epochs, which its plot
    labels 5, 10, …, 95. `collapse.json` counts completed epochs, so those points read 6, 11, …, 96.
    """
    curve = {e + 1 for e in range(every, epochs, every)} if every else set()
    return curve | {epochs}


def _update_best(model, state: FitState, record: dict, select: str) -> None:
    # ">" keeps the earliest epoch among ties, like the official best.checkpoint selection.
    if select == "last" or record["val_top1"] > state.best_val:
        state.best_val, state.best_epoch = record["val_top1"], record["epoch"]
        state.best_model = {k: v.detach().clone() for k, v in model.state_dict().items()}


def _progress_bar(epoch, epochs):
    # A bar only where someone watches it: the log files get one line per epoch (epoch_line), not a stream of
    # carriage returns.
    def wrap(loader):
        return tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", file=sys.stderr, ascii=True,
                    mininterval=2.0, disable=not sys.stderr.isatty(), leave=False)
    return wrap


def _say(log, message: str) -> None:
    if log is not None:
        print(message, file=log, flush=True)
