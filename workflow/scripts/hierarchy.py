"""Class order, K x K leaf distances and per-level label maps of one dataset."""
from featgeom.hierarchy import write_distance_csv
from featgeom.hierarchy_stage import build_hierarchy_outputs, read_class_list
from featgeom.io import write_json, write_text
from featgeom.rule_io import rule_log, write_rule_provenance

with rule_log(snakemake):
    sources = {k: snakemake.input[k] for k in ("paths", "edges", "distances") if k in snakemake.input.keys()}
    classes = read_class_list(snakemake.input.classes)
    order, distances, levels = build_hierarchy_outputs(sources, classes, flat=snakemake.params.hierarchy["flat"],
                                                       coarse_level=snakemake.params.coarse_level,
                                                       class_list=snakemake.input.classes)
    write_text(snakemake.output.class_order, "\n".join(order) + "\n")
    write_distance_csv(snakemake.output.distances, order, distances)
    write_json(snakemake.output.levels, levels)
    print(f"{len(order)} classes, height {levels['height']}")
    write_rule_provenance(snakemake)
