"""The training checkpoint format: what a run's files hold, how they are written, read and refused.

- A resume point (`last_checkpoint.pt`, every epoch): the FitState, the model, optimizer and torch RNG state,
  and `made_of` (featgeom.lineage), which decides whether it may be resumed; after the last epoch only the
  FitState (checkpoint_state).
- A best-model checkpoint (`checkpoint_best.pt`): the best model, its spec and fixed frame, and the final state.
- read_torch_file: every torch file featgeom reads (checkpoints, backbone weights) names itself when damaged.

Format 2 (composed heads, featgeom.models.heads): a single-classifier head's parameters are `head.trunk.…` and
`head.classifier.…`, where format 1 had them flat (`head.channel_reduce.…`, `head.etf`). Format-1 files are read
with their keys renamed (upgrade_format_1); per-level heads already had format 2's keys.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from featgeom.io import atomic_path
from featgeom.lineage import describe_changes

CHECKPOINT_FORMAT = 2
# Format-1 keys of a single-classifier head that became its classifier's; every other flat `head.X` went to the trunk
_FORMAT_1_CLASSIFIER_KEYS = {"head.etf": "head.classifier.etf"}


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
    remedy = "delete it to restart this run from scratch"
    state = upgrade_format_1(read_torch_file(path, "checkpoint", remedy))
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path} is not a featgeom checkpoint (format {CHECKPOINT_FORMAT} or 1); {remedy}")
    changed = describe_changes(state.get("made_of"), made_of)
    return (None, changed) if changed else (state, None)


def load_best_checkpoint(path) -> dict:
    """The best model a finished run saved (model, frame, spec). Not weights_only: the frame is numpy."""
    # The run is complete and its resume point is gone, so the only fix is to train it again; a missing
    # output makes Snakemake rerun its job, --forcerun does the same without deleting anything.
    remedy = (f"delete it and run snakemake again to retrain this run (or: snakemake --forcerun {path}; "
              "-R train retrains every run)")
    state = upgrade_format_1(read_torch_file(path, "best-model checkpoint", remedy))
    is_best = isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT
    if not (is_best and {"model", "frame", "spec"} <= state.keys()):
        raise ValueError(f"{path} is not a featgeom best-model checkpoint (format {CHECKPOINT_FORMAT} or 1, with "
                         f"model, frame and spec); {remedy}")
    return state


def upgrade_format_1(state):
    """A format-1 checkpoint as format 2: its model state dicts (`model`, `best_model`) with format 2's head keys.
    Anything else is returned as it is (the callers refuse what is not theirs)."""
    if not isinstance(state, dict) or state.get("format") != 1:
        return state
    models = {key: _format_2_keys(state[key]) for key in ("model", "best_model") if isinstance(state.get(key), dict)}
    return {**state, **models, "format": 2}


def _format_2_keys(model_state: dict) -> dict:
    def renamed(key: str) -> str:
        if key in _FORMAT_1_CLASSIFIER_KEYS:
            return _FORMAT_1_CLASSIFIER_KEYS[key]
        if not key.startswith("head.") or key.startswith(("head.trunk.", "head.classifier.")):
            return key
        return "head.trunk." + key[len("head."):]
    return {renamed(key): value for key, value in model_state.items()}


@dataclass
class FitState:
    """Everything that changes during training and must survive a restart."""
    epoch: int = 0                                   # completed epochs
    best_val: float = -1.0
    best_epoch: int = -1
    best_model: dict | None = None
    history: list = field(default_factory=list)
    collapse_history: list = field(default_factory=list)


def is_final(checkpoint: dict) -> bool:
    """Written after the run's last epoch (then it holds no model or optimizer state: _checkpoint_state)."""
    return checkpoint.get("epoch") == checkpoint.get("epochs")


def final_state(state: FitState, made_of: dict, epochs: int) -> dict:
    """What a resume point holds once a run has trained every epoch: its FitState (best model included)."""
    return {"format": CHECKPOINT_FORMAT, "made_of": made_of, "epochs": epochs, **state.__dict__}


def checkpoint_state(model, optimizer, state: FitState, made_of: dict, epochs: int) -> dict:
    header = final_state(state, made_of, epochs)
    if is_final(header):
        # A finished run never steps again: its FitState (best model included) is all a rerun needs. Packs
        # keep this checkpoint, so it must stay one model's size (ResNet-50: 136 MB, not 365 MB with the
        # current weights and the momentum buffers).
        return header
    return {**header, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state()}


def restore(model, optimizer, checkpoint: dict) -> FitState:
    if not is_final(checkpoint):
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        torch.set_rng_state(checkpoint["torch_rng"])
    return FitState(**{k: checkpoint[k] for k in FitState.__dataclass_fields__})
