"""Train one (dataset, experiment, method, seed) run; resumes from its last checkpoint."""
from featgeom.provenance import write_provenance
from featgeom.rule_io import rule_log
from featgeom.runner import resolve_device, run_training

with rule_log(snakemake) as log:
    spec, seed = snakemake.params.spec, int(snakemake.wildcards.seed)
    outputs = {**snakemake.output, "run_dir": snakemake.params.run_dir}
    run_training(spec, seed, dict(snakemake.input), outputs, threads=snakemake.threads, log=log)
    write_provenance(snakemake.output.provenance, {**spec, "seed": seed}, device=str(resolve_device(spec["device"])))
