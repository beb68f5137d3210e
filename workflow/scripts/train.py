"""Train one (dataset, experiment, method, seed) run; resumes from its last checkpoint."""
from featgeom.rule_io import rule_log
from featgeom.runner import run_training

with rule_log(snakemake, keep_in=snakemake.params.run_dir) as log:
    outputs = {**snakemake.output, "run_dir": snakemake.params.run_dir}
    run_training(snakemake.params.spec, int(snakemake.wildcards.seed), dict(snakemake.input), outputs,
                 threads=snakemake.threads, log=log)
