"""Training progress as text: the line a run logs after every epoch, and a summary of a workflow read from them.

Every epoch a run appends one line to its logs (`results/.../seed<N>/train.log` keeps every attempt):

    epoch 3/200  train_loss=1.234  train_top1=45.10  val_top1=40.20  lr=0.1/0.01  img/s=1234  epoch_s=40.5  eta=2:13:05

`summarise` reads the last attempt of every run's train.log (no torch, nothing but text) for
`tools/progress.py`: epoch / total per run, and an ETA per experiment.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from featgeom.rule_io import ATTEMPT_HEADER, RUN_LOG

EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)\s.*?\bepoch_s=([\d.]+)")
RESUMED_LINE = re.compile(r"^resumed from .* after epoch (\d+)")
STALE_AFTER_S = 600  # a log silent for longer than this and 3 epochs is not being written to (killed job)


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def epoch_line(record: dict, epochs: int, lrs: list[float], images_per_s: float, epoch_s: float,
               remaining_epochs: int) -> str:
    """The log line of one finished epoch; images_per_s: training images over the training pass only; the ETA is
    the remaining epochs at this epoch's whole time (training, validation, checkpoint)."""
    metrics = "  ".join(f"{k}={v:.4g}" if k.endswith("loss") else f"{k}={v:.2f}"
                        for k, v in record.items() if k != "epoch")
    lr = "/".join(f"{v:.4g}" for v in dict.fromkeys(lrs))  # one value per distinct group lr, in group order
    return (f"epoch {record['epoch']}/{epochs}  {metrics}  lr={lr}  img/s={images_per_s:.0f}  "
            f"epoch_s={epoch_s:.1f}  eta={format_duration(remaining_epochs * epoch_s)}")


@dataclass
class RunProgress:
    run: str          # <dataset>/<experiment>/<method>/seed<N>
    epoch: int        # epochs done (0 = none logged yet)
    total: int | None  # epochs of the run, None before its first epoch line
    epoch_s: float | None
    state: str        # training | finished | stopped | waiting

    @property
    def experiment(self) -> str:
        return self.run.rsplit("/", 2)[0]


def read_run(log_path: Path, now: float | None = None) -> RunProgress:
    """The progress of one run from its train.log: the last attempt's epoch lines and its closing stamp."""
    run = "/".join(log_path.parent.parts[-4:])
    if not log_path.exists():
        return RunProgress(run, 0, None, None, "waiting")
    attempt = _last_attempt(log_path.read_text(errors="replace"))
    epoch, total, epoch_s = _last_epoch(attempt)
    closing = attempt[-1] if attempt else ""
    if closing.startswith(ATTEMPT_HEADER) and " finished " in closing:
        state = "finished"
    elif closing.startswith(ATTEMPT_HEADER) and " failed " in closing:
        state = "stopped"
    else:
        silent_s = (time.time() if now is None else now) - log_path.stat().st_mtime
        state = "stopped" if silent_s > max(STALE_AFTER_S, 3 * (epoch_s or 0)) else "training"
    return RunProgress(run, epoch, total, epoch_s, state)


def _last_attempt(text: str) -> list[str]:
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(ATTEMPT_HEADER) and " started " in line]
    return lines[starts[-1]:] if starts else lines


def _last_epoch(lines: list[str]) -> tuple[int, int | None, float | None]:
    epoch, total, epoch_s = 0, None, None
    for line in lines:
        if (found := EPOCH_LINE.match(line)):
            epoch, total, epoch_s = int(found[1]), int(found[2]), float(found[3])
        elif (found := RESUMED_LINE.match(line)):
            epoch = int(found[1])
    return epoch, total, epoch_s


def read_runs(results: Path, now: float | None = None) -> list[RunProgress]:
    """Every trained run under results/<dataset>/<experiment>/<method>/seed<N>/ that has started (has a train.log;
    CRM folders have none), sorted."""
    logs = sorted(Path(results).glob(f"*/*/*/seed*/{RUN_LOG}"))
    return [read_run(log, now) for log in logs]


def experiment_eta(runs: list[RunProgress]) -> str:
    """Remaining epochs of the experiment's started, unfinished runs at their measured epoch time (the slowest
    measured one for a run without an epoch yet), shared out over the runs training now; '?' until one of them has
    logged an epoch. Runs not started yet (no train.log) are not counted: an ETA of what has started."""
    measured = [r.epoch_s for r in runs if r.epoch_s]
    totals = [r.total for r in runs if r.total]
    if not measured or not totals:
        return "?"
    open_runs = [r for r in runs if r.state != "finished"]
    if not open_runs:
        return "done"
    remaining = sum(((r.total or max(totals)) - r.epoch) * (r.epoch_s or max(measured)) for r in open_runs)
    parallel = max(1, sum(r.state == "training" for r in runs))
    return format_duration(remaining / parallel)


def summarise(results: Path, now: float | None = None) -> str:
    """One screen: a line per experiment (runs finished / training / other, ETA), then the runs in training."""
    runs = read_runs(results, now)
    if not runs:
        return f"no training run has started under {results}/<dataset>/<experiment>/<method>/seed<N>/ yet"
    by_experiment: dict[str, list[RunProgress]] = {}
    for run in runs:
        by_experiment.setdefault(run.experiment, []).append(run)
    lines = [f"{'experiment':<36} {'finished':>8} {'training':>8} {'other':>6}  ETA"]
    for name, members in by_experiment.items():
        done = sum(r.state == "finished" for r in members)
        active = sum(r.state == "training" for r in members)
        lines.append(f"{name:<36} {done:>8} {active:>8} {len(members) - done - active:>6}  {experiment_eta(members)}")
    lines.append("")
    lines += [f"  {r.run:<52} epoch {r.epoch}/{r.total or '?'}  {r.state}" for r in runs if r.state != "finished"]
    return "\n".join(lines)
