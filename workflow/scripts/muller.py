"""Mueller et al. (2019) projection of penultimate features onto the plane of 3 class templates."""
from pathlib import Path

from featgeom.figures import display_names
from featgeom.io import read_json
from featgeom.registry import FIGURES
from featgeom.rule_io import rule_log, write_rule_provenance

with rule_log(snakemake):
    FIGURES["muller"](list(snakemake.input.features), read_json(snakemake.input.levels),
                      Path(snakemake.output.png).with_suffix(""),
                      max_per_class=snakemake.params.figures["max_per_class"], banner=snakemake.params.pilot,
                      names=display_names(snakemake.input.get("names")))
    write_rule_provenance(snakemake)
