# Training stage: one job per (dataset, experiment, method, seed); CRM methods reuse the
# logits of the CE run they name instead of training.


rule train:
    input:
        unpack(model_inputs),
        data=training_data,
        distances="results/{dataset}/hierarchy/distances.csv",
        levels="results/{dataset}/hierarchy/levels.json",
    output:
        test_logits=f"{RUN}/test_logits.npz",
        checkpoint=f"{RUN}/checkpoint_best.pt",
        history=f"{RUN}/history.json",
        collapse=f"{RUN}/collapse.json",
        provenance=f"{RUN}/provenance.json",
    params:
        spec=run_spec,
        run_dir=RUN,
    wildcard_constraints:
        method=methods_regex(lambda spec: "crm_of" not in spec),
    threads: run_threads
    resources:
        gpu_percent=gpu_share,
        mem_mb=train_resource("mem_mb"),
        runtime=train_resource("runtime"),
    log:
        f"{LOG}/train.log",
    benchmark:
        f"{RUN}/benchmark_train.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/train.py"


rule crm:
    input:
        test_logits=lambda wc: run_path(wc.dataset, wc.experiment, experiment_spec(wc)["methods"][wc.method]["crm_of"],
                                        wc.seed, "test_logits.npz"),
        distances="results/{dataset}/hierarchy/distances.csv",
    output:
        test_logits=f"{RUN}/test_logits.npz",
        provenance=f"{RUN}/provenance.json",
    params:
        spec=run_spec,
    wildcard_constraints:
        method=methods_regex(lambda spec: "crm_of" in spec),
    log:
        f"{LOG}/crm.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/crm.py"


rule dump_features:
    input:
        unpack(model_inputs),
        checkpoint=f"{RUN}/checkpoint_best.pt",
        data=training_data,
        distances="results/{dataset}/hierarchy/distances.csv",
        levels="results/{dataset}/hierarchy/levels.json",
    output:
        features=f"{RUN}/features.npz",
    params:
        spec=run_spec,
    threads: run_threads
    resources:
        gpu_percent=gpu_share,
        mem_mb=train_resource("mem_mb"),
        runtime=60,
    log:
        f"{LOG}/dump_features.log",
    benchmark:
        f"{RUN}/benchmark_dump_features.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/dump_features.py"
