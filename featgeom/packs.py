"""Several training runs in one job: a pack (config: train.resources.runs_per_gpu, runs_per_process;
featgeom.config.run_packs says which runs: seeds, and methods of one experiment with the same execution settings).

At the published batch sizes one run leaves a GPU mostly idle (its step is bound by kernel launches), and
every process pays torch's start-up (about 3-6 s and 800 MB). A pack job holds one GPU share and trains
its runs with `workers` processes at once, each training its share of the runs one after another:
k runs share the GPU, and each process pays start-up once. It works the same under `--cores N` and in
one SLURM job (one GPU), where Snakemake's group jobs would run their members one after another.

Every run keeps its own folder, log (train.log, every attempt) and resume point; a run whose features the
workflow reads (featgeom.config.feature_seeds) also gets its features.npz here. A pack keeps its runs'
final checkpoints, so when Snakemake reruns the pack (one run's folder was deleted, say), the intact runs
are only evaluated again; a run that failed does not stop the others, and the job fails after all ended.
"""
from __future__ import annotations

import multiprocessing
from types import SimpleNamespace

from featgeom.config import PACK_INPUT_OF
from featgeom.rule_io import rule_log
from featgeom.run_guard import exit_with_parent, hold_run_folders
from featgeom.runner import dump_features, run_training


def run_inputs(inputs: dict, method: str) -> dict:
    """The inputs of one run of a pack: those every run shares, and its method's `<input>_of_<method>` ones
    (featgeom.config.PACK_INPUT_OF)."""
    own = {}
    for key, path in inputs.items():
        name, of, owner = key.partition(PACK_INPUT_OF)
        if not of or owner == method:
            own[name] = path
    return own


def train_pack(specs: dict, runs: list[dict], inputs: dict, workers: int, threads: int = 1, speed=None,
               log_path=None, logger: str = "none") -> None:
    """Train `runs` ([{method, seed, outputs}]: featgeom.config.pack_runs) with `workers` processes (featgeom.config
    .pack_workers): this one and workers - 1 spawned ones.
    specs: {method: resolved run spec}; inputs: the pack rule's (see run_inputs).

    Shares are dealt round-robin (worker i trains runs i, i + workers, ...). `log_path` is the rule log
    every run also writes to (its own train.log keeps each attempt).
    """
    shares = [runs[i::workers] for i in range(workers)]
    context = multiprocessing.get_context("spawn")  # a fresh CUDA context per process; fork would share one
    others = [context.Process(target=_worker, args=(specs, share, inputs, threads, speed, log_path, logger),
                              daemon=True) for share in shares[1:] if share]
    failure = None
    # This process holds every run folder of the pack until all its workers have ended (they exit with it).
    with hold_run_folders(run["outputs"]["run_dir"] for run in runs):
        for process in others:
            process.start()
        try:
            train_runs(specs, shares[0], inputs, threads, speed, log_path, logger)
        except Exception as err:  # let the other processes finish their runs first: their work is kept
            failure = err
        for process in others:
            process.join()
    failed = [p.pid for p in others if p.exitcode != 0]
    if failure is not None:
        raise failure
    if failed:
        raise RuntimeError(f"pack worker process(es) {failed} failed; their runs' train.log files say why")


def _worker(*args) -> None:
    """A spawned worker process: train_runs, stopping if the pack job dies (its run folders are no longer held)."""
    exit_with_parent()
    train_runs(*args)


def train_runs(specs: dict, runs: list[dict], inputs: dict, threads: int, speed, log_path, logger="none") -> None:
    """Train runs one after another in this process (every run is attempted; the first error is raised)."""
    failure = None
    for run in runs:
        rule = SimpleNamespace(log=[log_path] if log_path else [])
        spec, own_inputs = specs[run["method"]], run_inputs(inputs, run["method"])
        try:
            with rule_log(rule, keep_in=run["outputs"]["run_dir"]) as log:
                run_training(spec, run["seed"], own_inputs, run["outputs"], threads=threads, log=log, speed=speed,
                             keep_resume_point=True, logger=logger)
                if "features" in run["outputs"]:  # the model is trained here: no job of its own to reload it
                    dump_features(spec, run["seed"], {**own_inputs, "checkpoint": run["outputs"]["checkpoint"]},
                                  run["outputs"]["features"], threads=threads)
        except Exception as err:
            failure = failure or err
    if failure is not None:
        raise failure
