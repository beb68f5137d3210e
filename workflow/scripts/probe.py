"""MSC protocol: multinomial logistic regression on frozen features, fine labels; every run of an experiment."""
from featgeom.evaluation import load_features
from featgeom.hierarchy import read_distance_csv
from featgeom.io import write_json
from featgeom.probe import fine_probe
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    _, distances = read_distance_csv(snakemake.input.distances)
    runs = zip(snakemake.input.features, snakemake.output.probe, snakemake.params.seeds, strict=True)
    for features, probe, seed in runs:
        result = fine_probe(load_features(features), distances, seed=seed, **snakemake.params.probe)
        write_json(probe, result)
        print(probe, result)
