# Hierarchy stage: class order, K x K leaf distances (LCA height from the leaves) and per-level
# label maps of each dataset, checked against the dataset's classes.


rule hierarchy:
    input:
        unpack(hierarchy_source_files),
        classes=layout.CLASSES,
    output:
        class_order=f"{layout.HIERARCHY}/class_order.txt",
        distances=layout.DISTANCES,
        levels=layout.LEVELS,
        provenance=f"{layout.HIERARCHY}/provenance.json",
    params:
        hierarchy=lambda wc: config["datasets"][wc.dataset]["hierarchy"],
        coarse_level=lambda wc: fg.coarse_level(config["datasets"][wc.dataset]),
    log:
        f"{layout.DATASET_LOGS}/hierarchy.log",
    benchmark:
        f"{layout.BENCHMARKS}/hierarchy.tsv"
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/hierarchy.py"


rule haframe_s_min:
    # s_min depends only on (distances, gamma): searched once here (100 eigendecompositions: about
    # 57 s at K=1010), not in every training job that builds a HAFrame.
    input:
        distances=layout.DISTANCES,
    output:
        s_min=layout.HAFRAME_S_MIN,
    wildcard_constraints:
        gamma=r"[0-9]+(\.[0-9]+)?",
    log:
        f"{layout.DATASET_LOGS}/hierarchy/haframe_s_min_gamma{{gamma}}.log",
    benchmark:
        f"{layout.BENCHMARKS}/haframe_s_min_gamma{{gamma}}.tsv"
    # before any training job (their priority is their run count): HAFrame's runs wait for it
    priority: 1000
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/haframe_s_min.py"
