"""The training loop: SGD with per-group peak learning rates, a per-epoch schedule, validation
every epoch, best-val model selection, an atomic checkpoint every epoch and exact resume.

Resume is exact on CPU because everything random lives in saved state: model and optimizer
state, and the data order, which the loaders derive from (seed, epoch) alone.
"""
from __future__ import annotations

import math
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from featgeom.io import atomic_path
from featgeom.lineage import describe_changes
from featgeom.progress import epoch_line
from featgeom.step import StepOptions, TrainStep

CHECKPOINT_FORMAT = 1


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
        out, feats = model(images)
        logits.append(out.float().cpu())
        features.append(feats.float().cpu())
        labels.append(batch_labels.cpu())
    return torch.cat(logits).numpy(), torch.cat(features).numpy(), torch.cat(labels).numpy()


def save_checkpoint(path, state: dict) -> None:
    try:
        with atomic_path(path, suffix=".pt") as tmp:
            torch.save(state, tmp)
    except RuntimeError as err:
        # torch's zip writer reports a full disk or quota as "unexpected pos" or "file write failed", never as
        # ENOSPC; the previous checkpoint is still in place (atomic_path), so the run resumes once there is room.
        free_mib = shutil.disk_usage(Path(path).parent).free / 2**20
        raise OSError(f"cannot write checkpoint {path} ({err}); {free_mib:.0f} MiB are free on its file system: "
                      "a full disk or quota is the usual cause. Free space and rerun: the run resumes from its "
                      "last complete checkpoint") from err


def read_torch_file(path, what: str, remedy: str, weights_only: bool = False):
    """torch.load onto the CPU; a file that cannot be read becomes a ValueError naming it and the fix.

    torch raises bare errors that do not name the file for truncated/garbled files (RuntimeError from
    the zip reader, OSError [Errno 22], EOFError, UnpicklingError), and in a pipeline of hundreds of
    runs the message must say which file is broken.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as err:
        raise ValueError(f"{what} {path} cannot be read ({type(err).__name__}: {err}); {remedy}") from err


def load_checkpoint(path, made_of: dict) -> tuple[dict | None, str | None]:
    """(checkpoint, None) when `path` was made by exactly `made_of` (featgeom.lineage), else (None, what changed).

    A checkpoint that cannot be read, or is not featgeom's, is refused: that is a damaged file, not a stale one.
    """
    state = read_torch_file(path, "checkpoint", "delete it to restart this run from scratch")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path} is not a featgeom checkpoint (format {CHECKPOINT_FORMAT})")
    changed = describe_changes(state.get("made_of"), made_of)
    return (None, changed) if changed else (state, None)


def load_best_checkpoint(path) -> dict:
    """The best model a finished run saved (model, frame, spec). Not weights_only: the frame is numpy."""
    # The run is complete and its resume point is gone, so the only fix is to train it again; a missing
    # output makes Snakemake rerun its job, --forcerun does the same without deleting anything.
    remedy = (f"delete it and run snakemake again to retrain this run (or: snakemake --forcerun {path}; "
              "-R train retrains every run)")
    state = read_torch_file(path, "best-model checkpoint", remedy)
    is_best = isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT
    if not (is_best and {"model", "frame", "spec"} <= state.keys()):
        raise ValueError(f"{path} is not a featgeom best-model checkpoint (format {CHECKPOINT_FORMAT} with "
                         f"model, frame and spec); {remedy}")
    return state


@dataclass
class FitState:
    """Everything that changes during training and must survive a restart."""
    epoch: int = 0                                   # completed epochs
    best_val: float = -1.0
    best_epoch: int = -1
    best_model: dict | None = None
    history: list = field(default_factory=list)
    collapse_history: list = field(default_factory=list)


def _is_final(checkpoint: dict) -> bool:
    """Written after the run's last epoch (then it holds no model or optimizer state: _checkpoint_state)."""
    return checkpoint.get("epoch") == checkpoint.get("epochs")


def final_state(state: FitState, made_of: dict, epochs: int) -> dict:
    """What a resume point holds once a run has trained every epoch: its FitState (best model included)."""
    return {"format": CHECKPOINT_FORMAT, "made_of": made_of, "epochs": epochs, **state.__dict__}


def _checkpoint_state(model, optimizer, state: FitState, made_of: dict, epochs: int) -> dict:
    header = final_state(state, made_of, epochs)
    if _is_final(header):
        # A finished run never steps again: its FitState (best model included) is all a rerun needs. Packs
        # keep this checkpoint, so it must stay one model's size (ResNet-50: 136 MB, not 365 MB with the
        # current weights and the momentum buffers).
        return header
    return {**header, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state()}


def _restore(model, optimizer, checkpoint: dict) -> FitState:
    if not _is_final(checkpoint):
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        torch.set_rng_state(checkpoint["torch_rng"])
    return FitState(**{k: checkpoint[k] for k in FitState.__dataclass_fields__})


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
    sampled = collapse_epochs(epochs, settings.get("collapse_every", 0))
    state = FitState()
    if checkpoint_path.exists():
        checkpoint, changed = load_checkpoint(checkpoint_path, made_of)
        if checkpoint is not None and _is_final(checkpoint) and not reuse_final:
            checkpoint, changed = None, "snakemake forced this run to rerun (-F, -R or --forcerun)"
        if checkpoint is None:
            checkpoint_path.unlink()
            _say(log, f"training from scratch, {checkpoint_path} deleted: {changed}")
        else:
            state = _restore(model, optimizer, checkpoint)
            _say(log, f"resumed from {checkpoint_path} after epoch {state.epoch}")
    # Built after the restore: a graph-captured step binds the optimizer's (restored) momentum buffers.
    step = TrainStep(model, loss_fn, optimizer, options, next(model.parameters()).device)
    for epoch in range(state.epoch, epochs):
        started = time.perf_counter()
        set_learning_rates(optimizer, lr_factor(settings.get("schedule", "cosine_per_epoch"), epoch, epochs))
        loaders["train"].set_epoch(epoch)
        totals, images = train_one_epoch(step, loaders["train"], _progress_bar(epoch, epochs))
        record = {"epoch": epoch + 1, **totals}
        train_s = time.perf_counter() - started  # totals() waited for the device
        logits, _, labels = predict(model, loaders["val"])
        record["val_top1"] = 100.0 * float((logits.argmax(1) == labels).mean())
        _update_best(model, state, record, settings.get("select", "best_val"))
        if measure_collapse and epoch + 1 in sampled:
            state.collapse_history.append({"epoch": epoch + 1, **measure_collapse(model)})
        state.history.append(record)
        state.epoch = epoch + 1
        save_checkpoint(checkpoint_path, _checkpoint_state(model, optimizer, state, made_of, epochs))
        lrs = [group["lr"] for group in optimizer.param_groups]
        epoch_s = time.perf_counter() - started
        _say(log, epoch_line(record, epochs, lrs, images, train_s, epoch_s, epochs - epoch - 1))
        if curves is not None:
            curves.epoch(record, lrs, images / max(train_s, 1e-9))
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
