"""One trainer per run folder (an OS lock), trainers that die with their parent, and the forced-rerun mark."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from featgeom.run_guard import RunFolderBusy, busy_run_folders, hold_run_folders

HOLD_DIRECTORY = """
import time
from featgeom.run_guard import hold_workflow_directory
hold_workflow_directory()
print("held", flush=True)
time.sleep(60)
"""


def hold_directory(workdir):
    """A process holding `workdir` as a Snakemake main process does (the caller kills it)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_DIRECTORY], cwd=workdir, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder

HOLD = """
import sys, time
from featgeom.run_guard import hold_run_folders
with hold_run_folders([sys.argv[1]]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_trainer_of_a_run_folder_fails_at_once_naming_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "seed0")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match=rf"being trained by another process: \S+seed0 by pid {holder.pid} on "):
            with hold_run_folders([tmp_path / "seed1", tmp_path / "seed0"]):
                pytest.fail("a second trainer got the lock")
        assert busy_run_folders([tmp_path / "seed0", tmp_path / "seed1"]) == [str(tmp_path / "seed0")]
        with hold_run_folders([tmp_path / "seed1"]):  # seed1's lock was not kept by the failed attempt
            pass
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead holder's lock: no stale lock to clean up by hand
    assert busy_run_folders([tmp_path / "seed0"]) == []
    with hold_run_folders([tmp_path / "seed0"]):
        assert f"pid {os.getpid()} on " in (tmp_path / "seed0" / "train.lock").read_text()


CHILD = """
import time
from featgeom.run_guard import exit_with_parent
exit_with_parent(0.1)
print("watching", flush=True)
time.sleep(60)
"""
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
child.wait()
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


def test_a_trainer_exits_when_its_parent_is_killed(tmp_path):
    """`kill -9` of Snakemake (here: of the child's parent) leaves no trainer running."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, text=True)
    child_pid, state = parent.stdout.readline().split()
    assert state == "watching"
    assert _alive(int(child_pid))
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(int(child_pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(int(child_pid)), "the child kept running after its parent was killed"


def test_a_second_snakemake_main_process_is_told_who_holds_the_directory(tmp_path, monkeypatch, capsys):
    from featgeom import run_guard
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_guard, "_held_directory", None)
    holder = hold_directory(tmp_path)
    try:
        with pytest.raises(run_guard.DirectoryBusy, match=rf"another Snakemake is running in this directory "
                                                          rf"\({tmp_path}\): pid {holder.pid} on .* running `"):
            run_guard.hold_workflow_directory()
        assert run_guard.hold_workflow_directory(warn_only=True) is None  # a dry run goes on, warned
        warned = capsys.readouterr().err
        assert f"another Snakemake is running in this directory ({tmp_path}): pid {holder.pid}" in warned
    finally:
        holder.kill()
        holder.wait()
    fd = run_guard.hold_workflow_directory()  # the dead holder's lock is gone with it
    assert run_guard.hold_workflow_directory() == fd  # the Snakefile read twice by one process keeps its lock
    assert f"pid {os.getpid()} on " in (tmp_path / ".snakemake" / "featgeom_main.lock").read_text()
    os.close(fd)
