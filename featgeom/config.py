"""Reading the pipeline config: which runs exist and the fully resolved spec of one run.

The JSON schema (workflow/schemas/config.schema.yaml) checks types and names; this module
checks what a schema cannot (cross references between methods, frames that the chosen head
needs) and raises ConfigError naming the offending key path. No torch here: the Snakefile
imports this at parse time on every SLURM job.
"""
from __future__ import annotations

import copy

TABLE_OF_KIND = {"hierarchy": "main", "coarse_fine": "coarse_fine", "longtail": "longtail"}


class ConfigError(ValueError):
    """A config value that cannot work; the message names its key path."""


def experiments(config):
    """Yield (dataset, experiment, experiment_spec) in config order."""
    for dataset, ds in config["datasets"].items():
        for name, exp in ds.get("experiments", {}).items():
            yield dataset, name, exp


def trained_methods(exp):
    return [m for m, spec in exp["methods"].items() if "crm_of" not in spec]


def crm_methods(exp):
    return [m for m, spec in exp["methods"].items() if "crm_of" in spec]


def deep_merge(base, override):
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_run(config, dataset, experiment, method):
    """The complete spec of one method of one experiment (seed excluded): what train.py needs.

    The method's own `train:` block overrides the experiment's, key by key.
    """
    ds = config["datasets"][dataset]
    exp = ds["experiments"][experiment]
    spec = exp["methods"][method]
    return {
        "dataset": dataset,
        "experiment": experiment,
        "method": method,
        "kind": exp["kind"],
        "label_level": exp.get("label_level", "fine"),
        "source": ds["source"],
        "model_type": str(spec.get("model_type", "")),
        "model": spec.get("model"),
        "loss": spec.get("loss"),
        "frame": spec.get("frame", {}),
        "crm_of": spec.get("crm_of"),
        "longtail": exp.get("longtail"),
        "train": deep_merge(exp.get("train", {}), spec.get("train")),
        "device": config.get("device", "auto"),
    }


def check_config(config):
    """Cross-reference checks the schema cannot express; raises ConfigError."""
    for dataset, name, exp in experiments(config):
        where = f"datasets.{dataset}.experiments.{name}"
        if exp["kind"] == "coarse_fine" and exp.get("label_level") != "coarse":
            raise ConfigError(f"{where}.label_level must be 'coarse' for kind coarse_fine")
        if exp["kind"] == "longtail" and not exp.get("longtail"):
            raise ConfigError(f"{where}.longtail (rho, seed) is required for kind longtail")
        in_memory = config["datasets"][dataset]["source"]["kind"] != "image_folder"
        if not in_memory and (exp["kind"] == "longtail" or exp.get("label_level") == "coarse"):
            raise ConfigError(f"{where}: kind {exp['kind']!r} / label_level 'coarse' need an in-memory dataset "
                              "(synthetic, cifar100, cifar10), not an image folder")
        if exp["kind"] != "hierarchy" and crm_methods(exp):
            raise ConfigError(f"{where}: CRM methods are only defined for kind 'hierarchy'")
        for method, spec in exp["methods"].items():
            _check_method(f"{where}.methods.{method}", exp, spec)
    for dataset, ds in config["datasets"].items():
        _check_figures(dataset, ds)


def _check_figures(dataset, ds):
    figures = ds.get("figures", {})
    for key in ("tsne_experiment", "muller_experiment"):
        name = figures.get(key)
        if name is not None and name not in ds["experiments"]:
            raise ConfigError(f"datasets.{dataset}.figures.{key} = {name!r} is not an experiment of {dataset}")
    tsne = figures.get("tsne_experiment")
    if tsne is not None and ds["source"]["kind"] == "image_folder":
        raise ConfigError(f"datasets.{dataset}.figures.tsne_experiment needs coarse labels: in-memory datasets only")


def _check_method(where, exp, spec):
    if "crm_of" in spec:
        base = spec["crm_of"]
        if base not in exp["methods"] or "crm_of" in exp["methods"][base]:
            raise ConfigError(f"{where}.crm_of = {base!r} is not a trained method of this experiment")
        return
    if not spec.get("model") or not spec.get("loss"):
        raise ConfigError(f"{where} needs `model` and `loss` (or `crm_of`)")
    head, frame = spec["model"]["head"], spec["model"].get("frame")
    loss = spec["loss"]["name"]
    if head == "cosine_etf" and frame != "etf":
        raise ConfigError(f"{where}.model.frame must be 'etf' for head cosine_etf")
    if frame == "haframe" and head != "type2":
        raise ConfigError(f"{where}.model.frame 'haframe' needs head type2 (got {head!r})")
    if loss == "haframe" and frame != "haframe":
        raise ConfigError(f"{where}.loss 'haframe' needs model.frame: haframe")
    if frame == "haframe" and "gamma" not in spec.get("frame", {}):
        raise ConfigError(f"{where}.frame.gamma is required for a HAFrame")
    if frame == "haframe" and exp.get("label_level", "fine") != "fine":
        raise ConfigError(f"{where}: a HAFrame is built over the leaves; use label_level fine")


def table_targets(config, dataset):
    """The table names (one per experiment kind present) of a dataset."""
    kinds = {exp["kind"] for ds, _, exp in experiments(config) if ds == dataset}
    return sorted(TABLE_OF_KIND[k] for k in kinds)


def experiments_of_table(config, dataset, table):
    """Experiments summarised by a table; the collapse table covers every experiment of the dataset."""
    return [n for ds, n, exp in experiments(config)
            if ds == dataset and table in ("collapse", TABLE_OF_KIND[exp["kind"]])]
