# Evaluation stage (numpy / scikit-learn only, no torch): metrics of every run from its saved
# test scores, and the MSC fine-grained linear probe on frozen coarse-pretrained features.


rule score:
    input:
        unpack(train_counts),
        test_logits=f"{RUN}/{layout.RUN_OUTPUTS['test_logits']}",
        distances=layout.DISTANCES,
    output:
        metrics=f"{RUN}/{layout.METRICS_FILE}",
    params:
        label_level=lambda wc: experiment_spec(wc).get("label_level", "fine"),
        longtail=lambda wc: experiment_spec(wc).get("longtail"),
    log:
        f"{LOG}/score.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/score.py"


rule probe:
    input:
        features=f"{RUN}/{layout.FEATURES_FILE}",
        distances=layout.DISTANCES,
    output:
        probe=f"{RUN}/{layout.PROBE_FILE}",
    params:
        probe=lambda wc: experiment_spec(wc).get("probe", {}),
        seed=lambda wc: int(wc.seed),
    threads: config.get("threads_per_run", 1)
    resources:
        mem_mb=16000,
        runtime=120,
    log:
        f"{LOG}/probe.log",
    benchmark:
        f"{RUN}/benchmark_probe.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/probe.py"
