"""The one piece every workflow script shares: send its output to the rule's log file (and, for a
training run, to the run folder's own log, which keeps every attempt)."""
from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import traceback
from datetime import datetime
from pathlib import Path

RUN_LOG = "train.log"
ATTEMPT_HEADER = "==== attempt "  # opens and closes every attempt of a kept log (featgeom.progress reads it)


@contextlib.contextmanager
def rule_log(snakemake, keep_in=None):
    """Redirect stdout/stderr to snakemake.log[0]; the traceback of a failure lands there too.

    keep_in: a run folder; everything also goes to its train.log, which keeps every attempt (attempt_log).
    """
    with contextlib.ExitStack() as stack:
        streams = [stack.enter_context(open(snakemake.log[0], "a"))] if snakemake.log else []
        if keep_in is not None:
            streams.append(stack.enter_context(attempt_log(Path(keep_in) / RUN_LOG)))
        if not streams:
            yield sys.stderr
            return
        log = streams[0] if len(streams) == 1 else _Tee(streams)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                yield log
            except BaseException:
                traceback.print_exc(file=log)
                raise


@contextlib.contextmanager
def attempt_log(path):
    """Append to a log that keeps every attempt of a job, each opened by a header line.

    Snakemake deletes a job's declared log files before every (re)run, retries included
    (snakemake/jobs.py: Job.prepare -> Job.remove_existing_output -> `for f in self.log: f.remove()`),
    so a resumed training run would lose the log of the attempts it resumes. This file is not a
    declared output, so Snakemake leaves it alone. The attempt number counts this file's headers:
    snakemake.attempt does not reach scripts, and restarts by a new snakemake call start it at 1 again.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    attempt = 1 + _count_attempts(path)
    with open(path, "a") as log:
        _stamp(log, f"{attempt} started on {socket.gethostname()} (pid {os.getpid()}{_slurm_job()})")
        try:
            yield log
        except BaseException as err:
            _stamp(log, f"{attempt} failed ({type(err).__name__})")
            raise
        _stamp(log, f"{attempt} finished")  # a killed attempt has no closing line


def _count_attempts(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, errors="replace") as log:
        return sum(line.startswith(ATTEMPT_HEADER) and " started " in line for line in log)


def _stamp(log, what: str) -> None:
    print(f"{ATTEMPT_HEADER}{what} {datetime.now().astimezone().isoformat(timespec='seconds')}", file=log, flush=True)


def _slurm_job() -> str:
    job = os.environ.get("SLURM_JOB_ID")
    return f", SLURM job {job}" if job else ""


class _Tee(io.TextIOBase):
    """A text stream that writes to several (the rule log and the run's own log)."""

    def __init__(self, streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def fileno(self) -> int:  # for code that writes to the fd (faulthandler): the rule log gets it
        return self.streams[0].fileno()


def write_rule_provenance(snakemake) -> None:
    """provenance.json of a per-dataset output (tables, figures, hierarchy): the rule's params and
    inputs, git SHA and package versions."""
    from featgeom.provenance import write_provenance

    write_provenance(snakemake.output.provenance, {"rule": snakemake.rule, "params": dict(snakemake.params.items()),
                                                   "inputs": [str(p) for p in snakemake.input]})
