"""Penultimate features of train and test (eval mode, no augmentation) from the best checkpoint."""
from featgeom.rule_io import rule_log
from featgeom.runner import dump_features

with rule_log(snakemake):
    dump_features(snakemake.params.spec, int(snakemake.wildcards.seed), dict(snakemake.input),
                  snakemake.output.features, threads=snakemake.threads)
