# Training runs in packs (featgeom/packs.py): where an experiment has runs_per_gpu x runs_per_process > 1,
# one job trains up to that many of its runs (seeds, and methods with the same execution settings):
# runs_per_gpu processes share one GPU at once, each training its runs one after another (torch's start-up
# paid once per process). The same job shape runs under `--cores N` and as one SLURM job holding one GPU.
# Each run keeps its own folder, log and resume point.
from snakemake.resources import Resources

PACKS = fg.run_packs(config)
PACK_RULES = {pack["name"] for pack in PACKS}
# A profile's cluster settings for training jobs (`set-resources: train:`: GPU partition and gres, profiles/slurm).
# Snakemake applies set-resources by exact rule name (9.27: no patterns), and a profile cannot name the packs: their
# names depend on the config. A pack is a training job too, so it takes rule `train`'s, read from the settings
# Snakemake fills from --set-resources (`overwrite_resources`, a field of its API's ResourceSettings).
TRAINING_SET_RESOURCES = Resources.from_mapping(workflow.resource_settings.overwrite_resources.get("train", {}))

for pack in PACKS:
    # the same for every run of the pack (featgeom.config.run_packs)
    booked = fg.resolve_execution(config, pack["dataset"], pack["experiment"], pack["runs"][0]["method"])["resources"]
    workers = fg.pack_workers(pack, TRAINING_SET_RESOURCES)

    rule:
        name:
            pack["name"]
        input:
            **pack_model_inputs(pack),
            data=experiment_training_data(pack["dataset"], pack["experiment"]),
            distances=layout.DISTANCES.format(dataset=pack["dataset"]),
            levels=layout.LEVELS.format(dataset=pack["dataset"]),
        output:
            pack_outputs(pack),
        params:
            specs=pack_specs(pack),
        threads: fg.pack_threads(config, pack) * workers
        # longest jobs first (the more runs, the longer), so that the last one to finish is a short one
        priority: len(pack["runs"])
        resources:
            gpu_percent=min(100, fg.gpu_percent(booked["runs_per_gpu"]) * workers),
            mem_mb=booked["mem_mb"] * workers,
            # worst case, sharing the GPU gains nothing: every run of the pack one after another
            runtime=booked["runtime"] * len(pack["runs"]),
        log:
            layout.EXPERIMENT_JOB_LOG.format(**pack),
        benchmark:
            layout.JOB_BENCHMARK.format(**pack)
        conda:
            "../../envs/featgeom.yaml"
        script:
            "../scripts/train.py"

    # Both this rule and `train` (or `dump_features`) can make these files: the pack makes them.
    workflow.ruleorder(pack["name"], "train")
    workflow.ruleorder(pack["name"], "dump_features")
    workflow.get_rule(pack["name"]).resources.update(TRAINING_SET_RESOURCES)
