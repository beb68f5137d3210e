"""CRM at test time: re-rank a CE run's saved logits by expected hierarchical distance."""
import numpy as np

from featgeom.evaluation import crm_test_scores, load_scores
from featgeom.hierarchy import read_distance_csv
from featgeom.io import write_npz
from featgeom.provenance import write_provenance
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    logits, labels = load_scores(snakemake.input.test_logits)
    _, distances = read_distance_csv(snakemake.input.distances)
    write_npz(snakemake.output.test_logits, scores=crm_test_scores(logits, distances), labels=labels.astype(np.int64))
    write_provenance(snakemake.output.provenance, {**snakemake.params.spec, "seed": int(snakemake.wildcards.seed)},
                     extra={"crm_input": snakemake.input.test_logits})
