# Hierarchy stage: class order, K x K leaf distances (LCA height from the leaves) and per-level
# label maps of each dataset, checked against the dataset's classes.


rule hierarchy:
    input:
        unpack(hierarchy_source_files),
        classes="results/{dataset}/data/classes.txt",
    output:
        class_order="results/{dataset}/hierarchy/class_order.txt",
        distances="results/{dataset}/hierarchy/distances.csv",
        levels="results/{dataset}/hierarchy/levels.json",
        provenance="results/{dataset}/hierarchy/provenance.json",
    params:
        hierarchy=lambda wc: config["datasets"][wc.dataset]["hierarchy"],
    log:
        "logs/{dataset}/hierarchy.log",
    benchmark:
        "results/{dataset}/benchmarks/hierarchy.tsv"
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/hierarchy.py"
