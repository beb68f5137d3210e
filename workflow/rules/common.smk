# Config validation, wildcard constraints and input functions shared by all rule files.
# Keep this cheap: every SLURM job re-parses it (no torch, no globbing).
import os

from snakemake.utils import validate

import featgeom.config as fg

validate(config, schema="../schemas/config.schema.yaml")
fg.check_config(config)

NEVER = "(?!x)x"  # a regex that matches nothing, for a dataset kind absent from the config


def datasets_of_kind(*kinds):
    names = [d for d, spec in config["datasets"].items() if spec["source"]["kind"] in kinds]
    return "|".join(names) or NEVER


def experiment_spec(wildcards):
    return config["datasets"][wildcards.dataset]["experiments"][wildcards.experiment]


def methods_regex(predicate):
    names = {m for _, _, exp in fg.experiments(config) for m, spec in exp["methods"].items() if predicate(spec)}
    return "|".join(sorted(names)) or NEVER


wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    experiment="[A-Za-z0-9_]+",
    method="[A-Za-z0-9_]+",
    seed=r"\d+",


RUN = "results/{dataset}/{experiment}/{method}/seed{seed}"
LOG = "logs/{dataset}/{experiment}/{method}/seed{seed}"


def run_path(dataset, experiment, method, seed, name):
    return f"results/{dataset}/{experiment}/{method}/seed{seed}/{name}"


def experiment_files(dataset, experiment, name, methods=None, seeds=None):
    """One file per (method, seed) of an experiment."""
    exp = config["datasets"][dataset]["experiments"][experiment]
    return [run_path(dataset, experiment, m, s, name)
            for m in (methods or exp["methods"]) for s in (seeds or range(exp["seeds"]))]


def training_data(wildcards):
    """The data file a run trains on: arrays, its long-tail subsample, or an image-folder manifest."""
    ds = config["datasets"][wildcards.dataset]
    exp = experiment_spec(wildcards)
    if ds["source"]["kind"] == "image_folder":
        return f"results/{wildcards.dataset}/data/image_folder.json"
    if exp["kind"] == "longtail":
        return f"results/{wildcards.dataset}/data/{wildcards.experiment}_longtail.npz"
    return f"results/{wildcards.dataset}/data/arrays.npz"


def repo_path(path):
    """Hierarchy files shipped with or added to the repository: relative to the repository, like `script:`."""
    return path if os.path.isabs(path) else os.path.join(workflow.basedir, path)


def hierarchy_source_files(wildcards):
    """Hierarchy inputs named in the config (paths CSV, edge list, published distances)."""
    ds = config["datasets"][wildcards.dataset]
    files = {key: repo_path(ds["hierarchy"][key]) for key in ("paths", "edges", "distances") if key in ds["hierarchy"]}
    if ds["source"]["kind"] == "synthetic":
        files["paths"] = f"results/{wildcards.dataset}/data/paths.csv"
    return files


def train_counts(wildcards):
    if experiment_spec(wildcards)["kind"] == "longtail":
        return {"train_counts": f"results/{wildcards.dataset}/data/{wildcards.experiment}_train_counts.json"}
    return {}


def figure_features(key):
    """features.npz (seed 0, every trained method) of the experiment named in figures.<key>."""

    def inputs(wildcards):
        name = config["datasets"][wildcards.dataset]["figures"][key]
        exp = config["datasets"][wildcards.dataset]["experiments"][name]
        return experiment_files(wildcards.dataset, name, "features.npz", methods=fg.trained_methods(exp), seeds=[0])

    return inputs


def table_inputs(wildcards):
    """Run files behind one table: metrics (+ probe and final collapse for coarse_fine); collapse only for `collapse`."""
    files = {"metrics": [], "probe": [], "collapse": []}
    for exp in fg.experiments_of_table(config, wildcards.dataset, wildcards.table):
        spec = config["datasets"][wildcards.dataset]["experiments"][exp]
        trained = fg.trained_methods(spec)
        if wildcards.table == "collapse" or spec["kind"] == "coarse_fine":
            files["collapse"] += experiment_files(wildcards.dataset, exp, "collapse.json", methods=trained)
        if wildcards.table != "collapse":
            files["metrics"] += experiment_files(wildcards.dataset, exp, "metrics.json")
        if wildcards.table == "coarse_fine":
            files["probe"] += experiment_files(wildcards.dataset, exp, "probe.json")
    return files


def figure_names(dataset):
    figs = config["datasets"][dataset].get("figures", {})
    names = ["nc_curves"]
    names += ["tsne"] if "tsne_experiment" in figs else []
    names += ["muller"] if "muller_experiment" in figs else []
    return names


def all_targets():
    targets = []
    for dataset in config["datasets"]:
        tables = fg.table_targets(config, dataset) + ["collapse"]
        targets += expand("results/{d}/tables/{t}.{ext}", d=dataset, t=tables, ext=["csv", "md", "tex"])
        targets += expand("results/{d}/figures/{f}.{ext}", d=dataset, f=figure_names(dataset), ext=["png", "pdf"])
        targets.append(f"results/{dataset}/hierarchy/distances.csv")
    return targets
