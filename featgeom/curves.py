"""Live training curves for TensorBoard (config `train.logger: tensorboard`, off by default).

Each run writes event files to its own folder, `results/<dataset>/<experiment>/<method>/seed<N>/tensorboard/`,
so `tensorboard --logdir results/` shows every run's curves while it trains. How a run is watched does not change
what it computes: `logger` is an execution setting (featgeom.config.EXECUTION_KEYS), outside the run spec and its
lineage, and the event files are no declared output. `tensorboard` is an optional extra: featgeom[tensorboard].
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

LOGGERS = ("none", "tensorboard")
EVENTS_DIR = "tensorboard"
INSTALL_HINT = "pip install 'featgeom[tensorboard]' (or pip install tensorboard)"


def tensorboard_installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardCurves:
    """Per-epoch scalars of one run: train/loss, train/top1, val/top1, lr (first group), img/s."""

    def __init__(self, run_dir):
        if not tensorboard_installed():
            raise RuntimeError(f"train.logger is 'tensorboard' but the tensorboard package is not installed: "
                               f"{INSTALL_HINT}, or set train.logger: none")
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only where it is asked for

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / EVENTS_DIR))

    def epoch(self, record: dict, lrs: list[float], images_per_s: float) -> None:
        step = record["epoch"]
        self.writer.add_scalar("train/loss", record["train_loss"], step)
        self.writer.add_scalar("train/top1", record["train_top1"], step)
        self.writer.add_scalar("val/top1", record["val_top1"], step)
        self.writer.add_scalar("lr", lrs[0], step)
        self.writer.add_scalar("img_per_s", images_per_s, step)
        self.writer.flush()  # live: an epoch's numbers show up as soon as it ends

    def close(self) -> None:
        self.writer.close()


def open_curves(logger: str, run_dir) -> TensorBoardCurves | None:
    """The curve writer `logger` names (featgeom.config.resolve_execution), None for 'none'."""
    if logger not in LOGGERS:
        raise ValueError(f"unknown train.logger {logger!r}; expected one of {LOGGERS}")
    return TensorBoardCurves(run_dir) if logger == "tensorboard" else None
