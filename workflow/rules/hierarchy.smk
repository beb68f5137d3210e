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
        coarse_level=lambda wc: fg.coarse_level(config["datasets"][wc.dataset]),
    log:
        "logs/{dataset}/hierarchy.log",
    benchmark:
        "results/{dataset}/benchmarks/hierarchy.tsv"
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/hierarchy.py"


rule haframe_s_min:
    # s_min depends only on (distances, gamma): searched once here (100 eigendecompositions: about
    # 57 s at K=1010), not in every training job that builds a HAFrame.
    input:
        distances="results/{dataset}/hierarchy/distances.csv",
    output:
        s_min="results/{dataset}/hierarchy/haframe_s_min_gamma{gamma}.json",
    wildcard_constraints:
        gamma=r"[0-9]+(\.[0-9]+)?",
    log:
        "logs/{dataset}/hierarchy/haframe_s_min_gamma{gamma}.log",
    benchmark:
        "results/{dataset}/benchmarks/haframe_s_min_gamma{gamma}.tsv"
    # before any training job (their priority is their run count): HAFrame's runs wait for it
    priority: 1000
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/haframe_s_min.py"
