"""Train one (dataset, experiment, method, seed) run; resumes from its last checkpoint."""
from featgeom.config import resolve_execution
from featgeom.rule_io import rule_log
from featgeom.runner import run_training

wc = snakemake.wildcards
# Speed options come from the config, not from params: changing them must not rerun finished runs.
speed = resolve_execution(snakemake.config, wc.dataset, wc.experiment, wc.method)["speed"]
with rule_log(snakemake, keep_in=snakemake.params.run_dir) as log:
    outputs = {**snakemake.output, "run_dir": snakemake.params.run_dir}
    run_training(snakemake.params.spec, int(wc.seed), dict(snakemake.input), outputs,
                 threads=snakemake.threads, log=log, speed=speed)
