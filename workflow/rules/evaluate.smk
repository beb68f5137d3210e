# Evaluation stage (numpy / scikit-learn only, no torch): metrics of every run from its saved
# test scores, and the MSC fine-grained linear probe on frozen coarse-pretrained features.


rule score:
    input:
        unpack(train_counts),
        test_logits=f"{RUN}/test_logits.npz",
        distances="results/{dataset}/hierarchy/distances.csv",
    output:
        metrics=f"{RUN}/metrics.json",
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
        features=f"{RUN}/features.npz",
        distances="results/{dataset}/hierarchy/distances.csv",
    output:
        probe=f"{RUN}/probe.json",
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
