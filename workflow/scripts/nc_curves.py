"""Neural-collapse curves over epochs (seed 0), one line per experiment/method."""
from pathlib import Path

from featgeom.figures import plot_nc
from featgeom.rule_io import rule_log, write_rule_provenance

with rule_log(snakemake):
    plot_nc(list(snakemake.input.collapse), Path(snakemake.output.png).with_suffix(""), banner=snakemake.params.pilot)
    write_rule_provenance(snakemake)
