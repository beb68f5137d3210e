"""Neural-collapse curves over epochs: one panel per experiment and metric, one line per method (the mean of the
seeds with curves, train.collapse_seeds, and their band where there are several)."""
from pathlib import Path

from featgeom.registry import FIGURES
from featgeom.rule_io import rule_log, write_rule_provenance

with rule_log(snakemake):
    FIGURES["nc_curves"](list(snakemake.input.collapse), Path(snakemake.output.png).with_suffix(""),
                         banner=snakemake.params.pilot)
    write_rule_provenance(snakemake)
