"""MSC protocol: multinomial logistic regression on frozen features, fine labels; every run of an experiment."""
from featgeom.evaluation import load_features
from featgeom.hierarchy import read_distance_csv
from featgeom.io import write_json
from featgeom.probe import fine_probe
from featgeom.reporting import parse_run_path
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    _, distances = read_distance_csv(snakemake.input.distances)
    for features, probe in zip(snakemake.input.features, snakemake.output.probe, strict=True):
        result = fine_probe(load_features(features), distances, seed=parse_run_path(probe)["seed"],
                            **snakemake.params.probe)
        write_json(probe, result)
        print(probe, result)
