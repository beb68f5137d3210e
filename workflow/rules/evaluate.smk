# Evaluation stage (numpy / scikit-learn only, no torch): metrics of every run from its saved
# test scores, and the MSC fine-grained linear probe on frozen coarse-pretrained features.
# One scoring job and one probe job per experiment, each writing the files of all its runs: such a job costs
# its start-up (Python, numpy and Snakemake's script preamble, ~0.35 CPU-s; scikit-learn ~1.9 CPU-s more for a
# probe), not its runs (milliseconds to score one, ~0.4 s to fit one probe). Training stays per run (or pack):
# a retrained run reruns its experiment's scoring, which rewrites the other runs' files with the same content.


def experiment_log(dataset, experiment, name):
    return f"logs/{dataset}/{experiment}/{name}.log"


for dataset, experiment, exp in fg.experiments(config):
    experiment_wildcards = SimpleNamespace(dataset=dataset, experiment=experiment)

    rule:
        name:
            f"score_{dataset}_{experiment}"
        input:
            **train_counts(experiment_wildcards),
            test_logits=experiment_files(dataset, experiment, "test_logits.npz"),
            distances=f"results/{dataset}/hierarchy/distances.csv",
        output:
            metrics=experiment_files(dataset, experiment, "metrics.json"),
        params:
            label_level=exp.get("label_level", "fine"),
            longtail=exp.get("longtail"),
        log:
            experiment_log(dataset, experiment, "score"),
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
                features=experiment_files(dataset, experiment, "features.npz"),
                distances=f"results/{dataset}/hierarchy/distances.csv",
            output:
                probe=experiment_files(dataset, experiment, "probe.json"),
            params:
                probe=exp.get("probe", {}),
            threads: config.get("threads_per_run", 1)
            resources:
                mem_mb=16000,
                # minutes, 20 a run: lbfgs stops at max_iter (1000 in the papers' config), ~0.14 s an iteration on
                # CIFAR-100's 50k x 64 ResNet-32 features and 100 classes, so ~2.5 minutes at worst
                runtime=20 * len(experiment_files(dataset, experiment, "probe.json")),
            log:
                experiment_log(dataset, experiment, "probe"),
            benchmark:
                f"results/{dataset}/benchmarks/probe_{experiment}.tsv"
            conda:
                "../../envs/featgeom.yaml"
            script:
                "../scripts/probe.py"
