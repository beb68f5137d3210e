# Training runs in packs (featgeom/packs.py): where an experiment has runs_per_gpu x runs_per_process > 1,
# one job trains up to that many of its runs (seeds, and methods with the same execution settings):
# runs_per_gpu processes share one GPU at once, each training its runs one after another (torch's start-up
# paid once per process). The same job shape runs under `--cores N` and as one SLURM job holding one GPU.
# Each run keeps its own folder, log and resume point.


PACKS = fg.run_packs(config)
PACK_RULES = {pack["name"] for pack in PACKS}

for pack in PACKS:
    first = pack_method_wildcards(pack)[0]
    booked = run_execution(first)["resources"]  # the same for every run of the pack (featgeom.config.run_packs)
    workers = booked_workers(pack)

    rule:
        name:
            pack["name"]
        input:
            **pack_model_inputs(pack),
            data=training_data(first),
            distances=f"results/{pack['dataset']}/hierarchy/distances.csv",
            levels=f"results/{pack['dataset']}/hierarchy/levels.json",
        output:
            pack_outputs(pack),
        params:
            specs=pack_specs(pack),
        threads: pack_threads(pack) * workers
        # longest jobs first (the more runs, the longer), so that the last one to finish is a short one
        priority: len(pack["runs"])
        resources:
            gpu_percent=min(100, gpu_share(first) * workers),
            mem_mb=booked["mem_mb"] * workers,
            # worst case, sharing the GPU gains nothing: every run of the pack one after another
            runtime=booked["runtime"] * len(pack["runs"]),
        log:
            f"logs/{pack['dataset']}/{pack['experiment']}/{pack['name']}.log",
        benchmark:
            f"results/{pack['dataset']}/benchmarks/{pack['name']}.tsv"
        conda:
            "../../envs/featgeom.yaml"
        script:
            "../scripts/train.py"

    # Both this rule and `train` (or `dump_features`) can make these files: the pack makes them.
    workflow.ruleorder(pack["name"], "train")
    workflow.ruleorder(pack["name"], "dump_features")
    # A profile's cluster settings for training jobs (`set-resources: train:` GPU partition and gres, in
    # profiles/slurm) are keyed by rule name; a pack is a training job too, so it takes the same ones
    # (`_parsed_overwrite_resources` is what Snakemake itself applies to rule `train`: workflow.py).
    workflow.get_rule(pack["name"]).resources.update(
        workflow.resource_settings._parsed_overwrite_resources.get("train", {})
    )
