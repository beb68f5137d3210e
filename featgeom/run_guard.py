"""One trainer per run folder, and trainers that die with the Snakemake that started them.

- A training job holds an OS lock (flock) on `train.lock` in each of its run folders while it trains. The kernel
  releases it when the process dies, however it dies, so a lock is never stale; a second trainer of the same
  folder fails at once, naming the holder's pid and host.
- A training job exits when its parent does (a watchdog thread): after `kill -9` of Snakemake, its local jobs
  would otherwise keep training, unseen, while the documented recovery starts new ones. Pack workers watch the
  pack job the same way.
- The Snakemake main process holds an OS lock on `.snakemake/featgeom_main.lock` from the moment it reads the
  Snakefile, so a second Snakemake on the same directory is told so at once, naming the first.
- `mark_forced` tells the runs of a job that Snakemake forced (-F, -R, --forcerun) not to reuse their final
  checkpoints: the trainer cannot see why Snakemake started it, only Snakemake's main process knows.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

LOCK_FILE = "train.lock"
FORCED_MARK = "forced_rerun"


SNAKEMAKE_DIR = ".snakemake"
DIRECTORY_LOCK = "featgeom_main.lock"
_held_directory: int | None = None  # this process's descriptor of DIRECTORY_LOCK, once taken


class RunFolderBusy(RuntimeError):
    """Another live process is training this run folder."""


class DirectoryBusy(RuntimeError):
    """Another live Snakemake main process runs in this working directory."""


def _holder_text() -> str:
    job = os.environ.get("SLURM_JOB_ID")
    slurm = f", SLURM job {job}" if job else ""
    since = datetime.now().astimezone().isoformat(timespec="seconds")
    return f"pid {os.getpid()} on {socket.gethostname()}{slurm}, since {since}"


def _try_lock(run_dir, name: str = LOCK_FILE) -> int | None:
    """An open, flock-ed descriptor of run_dir's lock file, or None when another process holds it."""
    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _holder(run_dir, name: str = LOCK_FILE) -> str:
    try:
        return (Path(run_dir) / name).read_text().strip() or "another process"
    except OSError:
        return "another process"


def busy_message(busy: list[str]) -> str:
    """Why training must not start: `busy` run folders (busy_run_folders) are held by other trainers."""
    listing = "; ".join(f"{run_dir} by {_holder(run_dir)}" for run_dir in busy)
    return (f"{len(busy)} run folder(s) are being trained by another process: {listing}. A second trainer would "
            "corrupt them: wait for that one to end, or stop it (its Snakemake, or scancel its SLURM job) before "
            "running snakemake again")


@contextlib.contextmanager
def hold_run_folders(run_dirs):
    """Hold the lock of every run folder for the duration, or raise RunFolderBusy before taking any."""
    held = []
    try:
        for run_dir in run_dirs:
            fd = _try_lock(run_dir)
            if fd is None:
                raise RunFolderBusy(busy_message([str(run_dir)]))
            held.append(fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, (_holder_text() + "\n").encode(), 0)
        yield
    finally:
        for fd in held:
            os.close(fd)  # releases the lock; the file stays (deleting it would race with a new holder)


def busy_run_folders(run_dirs) -> list[str]:
    """The run folders another process is training now (checked by taking and releasing each one's lock)."""
    busy = []
    for run_dir in run_dirs:
        if not (Path(run_dir) / LOCK_FILE).exists():
            continue
        fd = _try_lock(run_dir)
        if fd is None:
            busy.append(str(run_dir))
        else:
            os.close(fd)
    return busy


def hold_workflow_directory(warn_only: bool = False) -> int | None:
    """Lock the working directory for this Snakemake main process (until it exits), or say who holds it.

    Snakemake's own locks (.snakemake/locks) are plain files that a killed Snakemake leaves behind, so they cannot
    tell a live holder from a dead one; its first words to a second Snakemake are an IncompleteFilesException that
    advises --rerun-incomplete. This flock is released by the kernel when its holder dies. Raises DirectoryBusy
    when another live Snakemake holds the directory; with `warn_only` (a dry run) prints that and returns None.
    """
    global _held_directory
    if _held_directory is not None:  # the Snakefile read again in the same process
        return _held_directory
    fd = _try_lock(SNAKEMAKE_DIR, DIRECTORY_LOCK)
    if fd is None:
        message = (f"another Snakemake is running in this directory ({os.getcwd()}): "
                   f"{_holder(SNAKEMAKE_DIR, DIRECTORY_LOCK)}. Two cannot run on one directory: wait for it to end, "
                   "or stop it first; --rerun-incomplete or --unlock would not help and would break the running one. "
                   "A progress summary: python tools/progress.py")
        if not warn_only:
            raise DirectoryBusy(message)
        print(f"featgeom: {message} (this dry run sees its running jobs' outputs as incomplete)", file=sys.stderr)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{_holder_text()}, running `{' '.join(sys.argv)}`\n".encode(), 0)
    _held_directory = fd  # kept open, never closed: the lock lasts as long as this process
    return fd


def exit_with_parent(interval_s: float = 1.0) -> None:
    """Exit this process (os._exit) within `interval_s` of its parent's death (then it is re-parented)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(interval_s)
        print(f"featgeom: parent process {parent} is gone (Snakemake killed?): pid {os.getpid()} stops training",
              file=sys.stderr, flush=True)
        os._exit(70)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def mark_forced(run_dirs) -> None:
    """Mark runs whose job Snakemake forced: a final checkpoint older than the mark is not reused."""
    for run_dir in run_dirs:
        mark = Path(run_dir) / FORCED_MARK
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text("snakemake forced this run to rerun: train it again, do not reuse its final checkpoint\n")


def forced_since(run_dir) -> int | None:
    """mtime (ns) of the run's forced mark, None when it has none."""
    try:
        return (Path(run_dir) / FORCED_MARK).stat().st_mtime_ns
    except FileNotFoundError:
        return None


def clear_forced(run_dir) -> None:
    (Path(run_dir) / FORCED_MARK).unlink(missing_ok=True)
