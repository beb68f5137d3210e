"""Train the runs of one job: one (dataset, experiment, method, seed) run (rule train), or a pack of runs of one
experiment (the rules of workflow/rules/train_packs.smk); each run resumes from its own last checkpoint."""
from featgeom.run_guard import exit_with_parent, hold_run_folders

# A pack's worker processes are spawned (featgeom.packs), and spawning runs this file again as module __mp_main__,
# without the Snakemake preamble that defines `snakemake`: only the job's own process does the job.
IS_JOB_PROCESS = __name__ == "__main__"
if IS_JOB_PROCESS:  # first, before torch's seconds of imports: a Snakemake killed meanwhile would go unnoticed
    exit_with_parent()  # a killed Snakemake takes its training jobs with it

from featgeom.config import pack_runs, pack_threads, pack_workers, resolve_execution, run_pack  # noqa: E402
from featgeom.packs import train_pack  # noqa: E402
from featgeom.rule_io import rule_log  # noqa: E402
from featgeom.runner import run_training  # noqa: E402


def execution_of(spec):
    """Execution settings come from the config, not from params: changing them must not rerun finished runs."""
    return resolve_execution(snakemake.config, spec["dataset"], spec["experiment"], spec["method"])


def train_one_run():
    spec = snakemake.params.spec
    outputs = {**dict(snakemake.output.items()), "run_dir": snakemake.params.run_dir}
    with rule_log(snakemake, keep_in=snakemake.params.run_dir) as log, hold_run_folders([snakemake.params.run_dir]):
        execution = execution_of(spec)
        run_training(spec, int(snakemake.wildcards.seed), dict(snakemake.input), outputs, threads=snakemake.threads,
                     log=log, speed=execution["speed"], logger=execution["logger"])


def train_the_pack():
    # The pack's runs come from the config by the rule's name, not from params: regrouping runs into packs (an
    # execution setting) must not make Snakemake rerun finished runs.
    pack = run_pack(snakemake.config, snakemake.rule)
    specs = snakemake.params.specs
    execution = execution_of(next(iter(specs.values())))  # the same for every run of a pack (config.run_packs)
    workers = pack_workers(pack, snakemake.resources.keys())  # as the rule booked them
    # what each process booked (threads_per_run, or an image folder's loader workers and main process; CPU numerics
    # depend on the thread count), fewer where Snakemake capped the job's threads (--cores) below the booking
    threads = max(1, min(pack_threads(snakemake.config, pack), snakemake.threads // workers))
    train_pack(specs, pack_runs(snakemake.config, pack), dict(snakemake.input), workers, threads=threads,
               speed=execution["speed"], log_path=snakemake.log[0], logger=execution["logger"])


if IS_JOB_PROCESS:
    train_one_run() if snakemake.rule == "train" else train_the_pack()
