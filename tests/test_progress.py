"""Training progress from the runs' logs: the per-epoch line, one run's state, the workflow summary (no torch),
and the optional TensorBoard curves."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from featgeom.progress import epoch_line, format_duration, read_run, summarise

REPO = Path(__file__).resolve().parent.parent
RECORD = {"epoch": 3, "train_loss": 1.23456, "train_top1": 45.1, "val_top1": 40.25}


def test_epoch_line_has_loss_top1_lr_speed_and_eta():
    line = epoch_line(RECORD, 200, [0.1, 0.1, 0.01], images_per_s=5000 / 2.0, epoch_s=40.0, remaining_epochs=197)
    assert line == ("epoch 3/200  train_loss=1.235  train_top1=45.10  val_top1=40.25  lr=0.1/0.01  img/s=2500  "
                    "epoch_s=40.0  eta=2:11:20")
    assert format_duration(2 * 86400 + 61) == "2d 0:01:01"


def write_log(folder: Path, attempts: list[list[str]], closing: str | None = "finished", age_s: float = 0) -> Path:
    folder.mkdir(parents=True)
    lines = []
    for n, body in enumerate(attempts, 1):
        lines += [f"==== attempt {n} started on vm (pid 1) 2026-01-01T00:00:00+00:00", *body]
        if n < len(attempts):
            lines.append(f"==== attempt {n} failed (KeyboardInterrupt) 2026-01-01T00:00:00+00:00")
    if closing:
        lines.append(f"==== attempt {len(attempts)} {closing} 2026-01-01T00:00:00+00:00")
    log = folder / "train.log"
    log.write_text("\n".join(lines) + "\n")
    os.utime(log, (log.stat().st_atime - age_s, log.stat().st_mtime - age_s))
    return log


def epochs(first, last, total, epoch_s=10.0):
    return [epoch_line({**RECORD, "epoch": e}, total, [0.1], 100 / 1.0, epoch_s, total - e)
            for e in range(first, last + 1)]


def test_a_run_reads_its_last_attempt(tmp_path):
    run = tmp_path / "cifar100" / "main" / "haframe" / "seed0"
    write_log(run, [epochs(1, 3, 10), ["resumed from last_checkpoint.pt after epoch 3", *epochs(4, 5, 10)]],
              closing=None)
    progress = read_run(run / "train.log")
    assert progress.run == "cifar100/main/haframe/seed0"
    assert (progress.epoch, progress.total, progress.epoch_s) == (5, 10, 10)
    assert progress.state == "training" and progress.experiment == "cifar100/main"
    assert read_run(tmp_path / "absent" / "a" / "b" / "seed1" / "train.log").state == "waiting"


def test_summary_gives_epoch_per_run_and_eta_per_experiment(tmp_path):
    results = tmp_path / "results"
    write_log(results / "c100/main/ce_t1/seed0", [epochs(1, 10, 10)])                      # finished
    write_log(results / "c100/main/ce_t1/seed1", [epochs(1, 4, 10)], closing=None)         # training: 6 x 10 s
    write_log(results / "c100/main/haframe/seed0", [epochs(1, 2, 10)], closing=None)       # training: 8 x 10 s
    write_log(results / "c100/main/haframe/seed1", [epochs(1, 1, 10)], closing=None, age_s=3600)  # killed: 9 x 10 s
    write_log(results / "c100/lt/ce/seed0", [epochs(1, 1, 2, epoch_s=5.0)], closing=None, age_s=3600)
    write_log(results / "c100/lt/ce/seed1", [], closing=None)                               # started, no epoch yet
    (results / "c100/main/crm_t1/seed0").mkdir(parents=True)                                 # CRM: never trained
    text = summarise(results)
    rows = {line.split()[0]: line.split() for line in text.splitlines()[1:] if line and not line.startswith(" ")}
    assert rows["c100/main"] == ["c100/main", "1", "2", "1", "0:01:55"]  # (60 + 80 + 90) s over 2 runs training
    assert rows["c100/lt"] == ["c100/lt", "0", "1", "1", "0:00:15"]  # (1 + 2) epochs at 5 s, one run training
    runs = [line.split() for line in text.splitlines() if line.startswith("  ")]
    assert ["c100/main/ce_t1/seed1", "epoch", "4/10", "training"] in runs
    assert ["c100/main/haframe/seed1", "epoch", "1/10", "stopped"] in runs
    assert ["c100/lt/ce/seed1", "epoch", "0/?", "training"] in runs
    assert not any(run[0].startswith("c100/main/crm_t1") for run in runs)
    assert not any(run[0] == "c100/main/ce_t1/seed0" for run in runs)  # finished runs are counted, not listed


def test_progress_tool_reads_the_logs_without_torch(tmp_path):
    write_log(tmp_path / "results/c100/main/ce_t1/seed0", [epochs(1, 2, 10)], closing=None)
    tool = str(REPO / "tools" / "progress.py")
    code = ("import atexit, runpy, sys; atexit.register(lambda: print('torch' in sys.modules)); "
            f"runpy.run_path({tool!r}, run_name='__main__')")  # the tool ends with sys.exit: print at exit
    probe = subprocess.run([sys.executable, "-c", code, str(tmp_path / "results")], capture_output=True, text=True)
    assert "c100/main" in probe.stdout and "epoch 2/10  training" in probe.stdout, probe.stderr
    assert probe.stdout.split()[-1] == "False"
    empty = subprocess.run([sys.executable, str(REPO / "tools" / "progress.py"), str(tmp_path / "nothing")],
                           capture_output=True, text=True)
    assert "no training run has started under" in empty.stdout


def test_tensorboard_curves_write_event_files(tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard extra is not installed")
    from featgeom.curves import EVENTS_DIR, open_curves
    curves = open_curves("tensorboard", tmp_path)
    curves.epoch(RECORD, [0.1], 123.0)
    curves.close()
    assert list((tmp_path / EVENTS_DIR).glob("events.out.tfevents.*"))
    assert open_curves("none", tmp_path) is None
