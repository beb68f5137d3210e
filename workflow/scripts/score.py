"""metrics.json of every run of an experiment from its test scores (full test set, vectorised numpy)."""
import numpy as np

from featgeom.evaluation import load_scores, run_metrics
from featgeom.hierarchy import read_distance_csv
from featgeom.io import read_json, write_json
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    _, distances = read_distance_csv(snakemake.input.distances)
    counts = None
    if "train_counts" in snakemake.input.keys():
        counts = np.asarray(read_json(snakemake.input.train_counts)["counts"])
    for test_logits, metrics in zip(snakemake.input.test_logits, snakemake.output.metrics, strict=True):
        scores, labels = load_scores(test_logits)
        write_json(metrics, run_metrics(scores, labels, distances, snakemake.params.label_level, counts,
                                        snakemake.params.longtail))
