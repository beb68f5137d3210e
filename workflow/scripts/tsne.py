"""t-SNE of test features, 3 coarse x 2 fine classes, one panel per method (MSC Figure 1)."""
from pathlib import Path

from featgeom.figures import display_names
from featgeom.io import read_json
from featgeom.registry import FIGURES
from featgeom.rule_io import rule_log, write_rule_provenance

with rule_log(snakemake):
    figs = snakemake.params.figures
    FIGURES["tsne"](list(snakemake.input.features), read_json(snakemake.input.levels),
                    Path(snakemake.output.png).with_suffix(""), backend=figs["tsne_backend"],
                    max_per_class=figs["max_per_class"], n_jobs=snakemake.threads,
                    banner=snakemake.params.pilot, names=display_names(snakemake.input.get("names")))
    write_rule_provenance(snakemake)
