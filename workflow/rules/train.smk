# Training stage: one job per (dataset, experiment, method, seed); CRM methods reuse the
# logits of the CE run they name instead of training.


rule train:
    input:
        unpack(model_inputs),
        data=training_data,
        distances=layout.DISTANCES,
        levels=layout.LEVELS,
    output:
        **{key: f"{RUN}/{name}" for key, name in layout.RUN_OUTPUTS.items()},
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
        test_logits=lambda wc: layout.run_path(wc.dataset, wc.experiment,
                                               experiment_spec(wc)["methods"][wc.method]["crm_of"], wc.seed,
                                               layout.RUN_OUTPUTS["test_logits"]),
        distances=layout.DISTANCES,
    output:
        test_logits=f"{RUN}/{layout.RUN_OUTPUTS['test_logits']}",
        provenance=f"{RUN}/{layout.RUN_OUTPUTS['provenance']}",
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
        checkpoint=f"{RUN}/{layout.RUN_OUTPUTS['checkpoint']}",
        data=training_data,
        distances=layout.DISTANCES,
        levels=layout.LEVELS,
    output:
        features=f"{RUN}/{layout.FEATURES_FILE}",
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
