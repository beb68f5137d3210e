"""MSC protocol: multinomial logistic regression on frozen features, fine labels."""
from featgeom.evaluation import load_features
from featgeom.hierarchy import read_distance_csv
from featgeom.io import write_json
from featgeom.probe import fine_probe
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    _, distances = read_distance_csv(snakemake.input.distances)
    result = fine_probe(load_features(snakemake.input.features), distances, seed=snakemake.params.seed,
                        **snakemake.params.probe)
    write_json(snakemake.output.probe, result)
    print(result)
