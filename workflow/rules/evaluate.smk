# Evaluation stage (numpy / scikit-learn only, no torch): metrics of every run from its saved
# test scores, and the MSC fine-grained linear probe on frozen coarse-pretrained features.
# One scoring job and one probe job per experiment, each writing the files of all its runs: such a job costs
# its start-up (Python, numpy and Snakemake's script preamble, ~0.35 CPU-s; scikit-learn ~1.9 CPU-s more for a
# probe), not its runs (milliseconds to score one, ~0.4 s to fit one probe). Training stays per run (or pack):
# a retrained run reruns its experiment's scoring, which rewrites the other runs' files with the same content.


for dataset, experiment, exp in fg.experiments(config):

    rule:
        name:
            f"score_{dataset}_{experiment}"
        input:
            **train_counts(dataset, experiment),
            test_logits=experiment_files(dataset, experiment, layout.RUN_OUTPUTS["test_logits"]),
            distances=layout.DISTANCES.format(dataset=dataset),
        output:
            metrics=experiment_files(dataset, experiment, layout.METRICS_FILE),
        params:
            label_level=exp["label_level"],
            longtail=exp.get("longtail"),  # only long-tail experiments have one
        log:
            layout.EXPERIMENT_JOB_LOG.format(dataset=dataset, experiment=experiment, name="score"),
        localrule: True
        conda:
            "../../envs/featgeom.yaml"
        script:
            "../scripts/score.py"

    if exp["kind"] == "coarse_fine":

        rule:
            name:
                f"probe_{dataset}_{experiment}"
            input:
                features=experiment_files(dataset, experiment, layout.FEATURES_FILE),
                distances=layout.DISTANCES.format(dataset=dataset),
            output:
                probe=experiment_files(dataset, experiment, layout.PROBE_FILE),
            params:
                probe=exp["probe"],
                # each output's run seed (the probe's own split and init), in the order of the outputs
                seeds=[seed for _, seed in experiment_runs(dataset, experiment)],
            threads: config["threads_per_run"]
            resources:
                mem_mb=16000,
                # minutes, 20 a run: lbfgs stops at max_iter (1000 in the papers' config), ~0.14 s an iteration on
                # CIFAR-100's 50k x 64 ResNet-32 features and 100 classes, so ~2.5 minutes at worst
                runtime=20 * len(experiment_runs(dataset, experiment)),
            log:
                layout.EXPERIMENT_JOB_LOG.format(dataset=dataset, experiment=experiment, name="probe"),
            benchmark:
                layout.JOB_BENCHMARK.format(dataset=dataset, name=f"probe_{experiment}")
            conda:
                "../../envs/featgeom.yaml"
            script:
                "../scripts/probe.py"
