"""metrics.json of one run from its test scores (full test set, vectorised numpy)."""
import numpy as np

from featgeom.evaluation import load_scores, run_metrics
from featgeom.hierarchy import read_distance_csv
from featgeom.io import read_json, write_json
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    scores, labels = load_scores(snakemake.input.test_logits)
    _, distances = read_distance_csv(snakemake.input.distances)
    counts = None
    if "train_counts" in snakemake.input.keys():
        counts = np.asarray(read_json(snakemake.input.train_counts)["counts"])
    write_json(snakemake.output.metrics, run_metrics(scores, labels, distances, snakemake.params.label_level,
                                                     counts, snakemake.params.longtail))
