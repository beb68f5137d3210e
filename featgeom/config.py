"""Reading the pipeline config: which runs exist and the fully resolved spec of one run.

The JSON schema (workflow/schemas/config.schema.yaml) checks types and names, and holds every default that is
one fixed value: featgeom.config_files.checked_config writes them into the config. This module writes the
defaults that depend on another value (the dataset kind's, from featgeom.dataset_kinds; the recipe's, the
backbone's and the top-level keys', from the tables below), checks what a schema cannot (cross references
between methods, frames that the chosen head needs) and raises ConfigError naming the offending key path. Its
functions take a checked config. No torch here: the Snakefile imports this at parse time on every SLURM job.
"""
from __future__ import annotations

import copy
import difflib
import json

from featgeom.dataset_kinds import dataset_kind, in_memory_kinds
from featgeom.layout import STRETCHED_IMAGES, run_outputs
from featgeom.provenance import has_nvidia_gpu
from featgeom.registry import TABLE_OF_KIND  # the run table of each experiment kind, from the registry

# train.augment of in-memory arrays, and of image folders per recipe: HAFrame's published input pipelines
# (MBM transforms.py); train.image_size of image folders.
IN_MEMORY_AUGMENT = "crop_flip"
RECIPE_AUGMENT = {"fgvc": "crop_flip", "inat": "random_resized_crop_flip", "imagenet": "random_resized_crop_flip"}
DEFAULT_IMAGE_SIZE = 224
# Training runs sharing one GPU, per backbone, when the config does not say (benchmarks/bench_train_gpu.py):
# a small-batch CIFAR step is bound by kernel launches, so several runs at once fill the GPU (H100: 4 ResNet-32
# runs gave 2.27x one run's img/s, 3 WRN-28-8 runs 2.47x); a 224-px ResNet-50 run is bound by image decoding.
DEFAULT_RUNS_PER_GPU = {"resnet32": 4, "resnet_cifar": 4, "wrn28_8": 3, "convnet_small": 8}
OTHER_BACKBONES_RUNS_PER_GPU = 1  # a 224-px ResNet-50 run fills a GPU (or its image decoding does)
# Train-block keys that set how fast a run goes, not what it computes: kept out of the run spec (and so out of
# what made a checkpoint (featgeom.lineage) and Snakemake's params), so changing them neither reruns nor restarts a run.
EXECUTION_KEYS = ("resources", "speed", "logger")  # how a run executes or is watched, not what it computes
# An image-folder run's job books one core per loader worker (train.num_workers: each decodes and augments one
# image at a time) and MAIN_PROCESS_CORES for the training process, which decodes nothing: its Python loop and
# kernel launches, and the thread that copies each uint8 batch into pinned memory (README, "Speed"). Without
# workers the job books threads_per_run, as in-memory runs do.
DEFAULT_NUM_WORKERS = 4
MAIN_PROCESS_CORES = 1
# A pack's per-method inputs (HAFrame's s_min, backbone weights) are named <input><PACK_INPUT_OF><method>;
# input names never contain it, method names may.
PACK_INPUT_OF = "_of_"
# torchvision's own file name for ResNet50_Weights.IMAGENET1K_V1 (the 8 hex digits are its sha256 prefix).
IMAGENET_RESNET50_FILE = "resnet50-0676ba61.pth"
_MAX_SCHEMA_ERRORS = 10
# Losses that train the model's per-level heads of the same name: the keys of featgeom.models.factory.LEVEL_HEADS,
# which this module cannot import (no torch here); tests/test_models.py checks that they and the schema agree.
LEVEL_HEAD_LOSSES = ("flamingo", "hafeature")
# The options each loss reads (featgeom.losses.LOSS_BUILDERS has the same names; the schema the same union):
# any other option would be silently ignored, so it is refused.
LOSS_OPTIONS = {"ce": ("label_smoothing",), "haframe": ("alpha",), "hinge_ce": ("tau", "mode", "cone_angle_deg"),
                "flamingo": (), "hafeature": ("dissimilar_from",)}


class ConfigError(ValueError):
    """A config value that cannot work; the message names its key path."""


def _key_path(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _schema_message(error) -> str:
    """One line per schema error, naming the key path; unknown keys get a 'did you mean'."""
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        known = list(error.schema.get("properties", {}))
        hints = [f"{k!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, known, 1)) else "")
                 for k in unknown]
        return f"{where}: unknown key(s) {', '.join(hints)}; allowed: {', '.join(known)}"
    return f"{where}: {error.message}"


def validate_schema(config, schema: dict) -> None:
    """Check `config` against the JSON schema, reporting every error (unknown keys first), not just one.

    A misspelled required key then reads "unknown key 'epocs' (did you mean 'epochs'?)" next to
    "'epochs' is a required property", instead of the latter alone.
    """
    import jsonschema  # parse-time only; keeps `import featgeom.config` light for scripts

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config),
                    key=lambda e: (e.validator != "additionalProperties", list(map(str, e.absolute_path))))
    if errors:
        lines = [_schema_message(e) for e in errors[:_MAX_SCHEMA_ERRORS]]
        more = f"\n  ... and {len(errors) - _MAX_SCHEMA_ERRORS} more" if len(errors) > _MAX_SCHEMA_ERRORS else ""
        raise ConfigError("config does not match workflow/schemas/config.schema.yaml:\n  " + "\n  ".join(lines) + more)


def apply_limits(config) -> dict:
    """The config with the pilot `limits:` on seeds and epochs applied uniformly; unchanged without.

    Image size is capped in `resolve_train` (image folders) and, with images per class, where the
    data is prepared (see `data_limits`).
    """
    limits = config.get("limits") or {}
    out = copy.deepcopy(config)
    for _, _, exp in experiments(out):
        if "seeds" in limits:
            exp["seeds"] = min(exp["seeds"], limits["seeds"])
        for train in [exp["train"]] + [m["train"] for m in exp["methods"].values() if "train" in m]:
            if "epochs" in limits and "epochs" in train:
                train["epochs"] = min(train["epochs"], limits["epochs"])
            # Collapse seeds the cap removes are dropped (check_config refuses seeds that are not run): a
            # pilot checks the papers' config as it is, it does not make the user edit it.
            if "seeds" in limits and "collapse_seeds" in train:
                train["collapse_seeds"] = [s for s in train["collapse_seeds"] if s < limits["seeds"]]
    return out


def data_limits(config) -> dict:
    """What the data stage caps: {'images_per_class', 'image_size'} (absent keys = no cap)."""
    limits = config.get("limits") or {}
    return {k: limits[k] for k in ("images_per_class", "image_size") if k in limits}


def pilot_banner(config) -> str | None:
    """The line every output of a capped (pilot) run carries; None for a full run."""
    limits = config.get("limits") or {}
    if not limits:
        return None
    caps = ", ".join(f"{k}<={v}" for k, v in limits.items())
    return f"PILOT RUN ({caps}): checks the pipeline only; these are not results"


def coarse_level(dataset_spec) -> int | None:
    """Depth of the hierarchy level used as coarse labels: configured, else the dataset kind's (None: neither)."""
    return dataset_spec["hierarchy"].get("coarse_level", dataset_kind(dataset_spec["source"]).coarse_level)


def in_memory(source: dict) -> bool:
    """Whether a source's data is held in memory (arrays.npz), not read from an image folder by loader workers."""
    return dataset_kind(source).in_memory


def experiments(config):
    """Yield (dataset, experiment, experiment_spec) in config order."""
    for dataset, ds in config["datasets"].items():
        for name, exp in ds["experiments"].items():
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
    train = deep_merge(exp["train"], spec.get("train"))
    return {
        "dataset": dataset,
        "experiment": experiment,
        "method": method,
        "kind": exp["kind"],
        "label_level": exp["label_level"],
        "source": ds["source"],
        "model_type": str(spec["model_type"]),
        "model": resolve_model(spec.get("model"), config),
        "loss": spec.get("loss"),
        "frame": spec["frame"],
        "crm_of": spec.get("crm_of"),
        "longtail": exp.get("longtail"),
        "train": resolve_train(train, ds["source"], config),
        "device": config["device"],
        "pilot": pilot_banner(config),
    }


def resolve_execution(config, dataset, experiment, method) -> dict:
    """How a run is executed (not what it computes): {'resources': runtime, mem_mb, runs_per_gpu; 'speed': ...;
    'logger': none | tensorboard}.

    runs_per_gpu defaults per backbone (DEFAULT_RUNS_PER_GPU), else OTHER_BACKBONES_RUNS_PER_GPU;
    runs_per_process and logger default to the config's top-level keys; the rest to the schema's defaults.
    """
    exp = config["datasets"][dataset]["experiments"][experiment]
    spec = exp["methods"][method]
    train = deep_merge(exp["train"], spec.get("train"))
    backbone = (spec.get("model") or {}).get("backbone")  # a CRM method has no model: it trains nothing
    resources = {"runs_per_gpu": DEFAULT_RUNS_PER_GPU.get(backbone, OTHER_BACKBONES_RUNS_PER_GPU),
                 "runs_per_process": config["runs_per_process"], **train["resources"]}
    return {"resources": resources, "speed": train["speed"], "logger": train.get("logger", config["logger"])}


def booked_threads(config, dataset, experiment, method) -> int:
    """Cores (Snakemake `threads`) one training or feature-dump job of this run books: train.num_workers +
    MAIN_PROCESS_CORES for an image folder with loader workers, else threads_per_run (the training process's
    torch threads)."""
    workers = wanted_workers(resolve_run(config, dataset, experiment, method))
    return workers + MAIN_PROCESS_CORES if workers else config["threads_per_run"]


def wanted_workers(spec: dict) -> int:
    """The loader workers a resolved run spec asks for: train.num_workers for an image folder, 0 for in-memory
    data."""
    return 0 if in_memory(spec["source"]) else spec["train"]["num_workers"]


def run_packs(config) -> list[dict]:
    """Runs trained by one job (featgeom/packs.py), where k x r > 1 (resources.runs_per_gpu x runs_per_process):
    a method's seeds, cut into packs of at most k x r of near-equal size. With r > 1 (runs of seconds, where
    start-up dominates) a pack also spans the methods of the experiment whose execution settings
    (resolve_execution) are the same, method by method and seed by seed; with r = 1 it holds one method's runs, so
    that changing or adding a method never reruns another's jobs. A pack: {name (its rule's), dataset, experiment,
    runs ([{method, seed}]), workers (processes sharing the GPU: min(k, runs))}."""
    packs = []
    for dataset, name, exp in experiments(config):
        groups = {}  # runs trained by the same packs, in config order
        for method in trained_methods(exp):
            execution = resolve_execution(config, dataset, name, method)
            key = json.dumps(execution, sort_keys=True) if execution["resources"]["runs_per_process"] > 1 else method
            group = groups.setdefault(key, {"resources": execution["resources"], "runs": []})
            group["runs"] += [{"method": method, "seed": seed} for seed in range(exp["seeds"])]
        for group in groups.values():
            k = group["resources"]["runs_per_gpu"]
            size = k * group["resources"]["runs_per_process"]
            for runs in _even_chunks(group["runs"], size) if size > 1 else ():
                packs.append({"name": f"train_{dataset}_{name}_{_pack_label(runs)}", "dataset": dataset,
                              "experiment": name, "runs": runs, "workers": min(k, len(runs))})
    return packs


def run_pack(config, name: str) -> dict:
    """The pack (run_packs) whose rule is `name`: a pack job's script finds its runs by its rule's name."""
    return next(pack for pack in run_packs(config) if pack["name"] == name)


def pack_runs(config, pack: dict) -> list[dict]:
    """[{method, seed, outputs}] of a pack's runs: each run's files (featgeom.layout.run_outputs), with its
    features where the workflow reads them (feature_seeds)."""
    dataset, experiment = pack["dataset"], pack["experiment"]
    features = set(feature_seeds(config, dataset, experiment))
    return [{**run, "outputs": run_outputs(dataset, experiment, run["method"], run["seed"], run["seed"] in features)}
            for run in pack["runs"]]


def pack_methods(pack: dict) -> list[str]:
    """The methods of a pack's runs, in run order."""
    return list(dict.fromkeys(run["method"] for run in pack["runs"]))


def pack_threads(config, pack: dict) -> int:
    """Cores each process of a pack books: the most any of its methods' runs book (booked_threads)."""
    return max(booked_threads(config, pack["dataset"], pack["experiment"], method) for method in pack_methods(pack))


def pack_workers(pack: dict, resources) -> int:
    """Processes a pack job trains with, decided once: the rule books cores and memory for them, the job starts them.
    The pack's `workers`, sharing one GPU, where the job gets one: its resources ask for it (`gres` or `gpu`, which a
    profile gives training jobs) or this machine has one. Else 1, training the runs one after another: on a CPU,
    runs side by side would only compete for cores."""
    return pack["workers"] if {"gres", "gpu"} & set(resources) or has_nvidia_gpu() else 1


def _even_chunks(items: list, size: int) -> list[list]:
    """`items` cut into the fewest chunks of at most `size`, of near-equal lengths (21 by 8: 7, 7, 7)."""
    n_chunks = -(-len(items) // size)
    base, extra = divmod(len(items), n_chunks)
    chunks, start = [], 0
    for i in range(n_chunks):
        end = start + base + (i < extra)
        chunks.append(items[start:end])
        start = end
    return chunks


def _pack_label(runs: list[dict]) -> str:
    """ce_t1_seeds0to2 (one method), ce_t1_seed0_to_haframe_seed2 (several), ce_t1_seed4 (one run)."""
    first, last = runs[0], runs[-1]
    if len(runs) == 1:
        return f"{first['method']}_seed{first['seed']}"
    if first["method"] == last["method"]:
        return f"{first['method']}_seeds{first['seed']}to{last['seed']}"
    return f"{first['method']}_seed{first['seed']}_to_{last['method']}_seed{last['seed']}"


def feature_seeds(config, dataset, experiment) -> list[int]:
    """Seeds whose features.npz the workflow reads: every seed of a coarse_fine experiment (its linear probe)
    and seed 0 of an experiment a figure (t-SNE, Mueller) is drawn from."""
    exp = config["datasets"][dataset]["experiments"][experiment]
    seeds = set(range(exp["seeds"])) if exp["kind"] == "coarse_fine" else set()
    if experiment in config["datasets"][dataset]["figures"].values():
        seeds.add(0)
    return sorted(seeds)


def gpu_percent(runs_per_gpu: int) -> int:
    """Share of one GPU a training job books (Snakemake resource `gpu_percent`, 100 per GPU): floor(100/k),
    so that exactly k jobs fit in 100 for k = 1..10."""
    return 100 // runs_per_gpu


def imagenet_weights_path(config) -> str:
    return f"{config['weights_root']}/{IMAGENET_RESNET50_FILE}"


def resolve_model(model: dict | None, config) -> dict | None:
    """`pretrained: true` becomes the local torchvision file, fetched once by the `fetch_imagenet_weights`
    rule, so training jobs on offline compute nodes never download."""
    if not model or not model.get("backbone_kwargs", {}).get("pretrained"):
        return model
    kwargs = {k: v for k, v in model["backbone_kwargs"].items() if k != "pretrained"}
    return {**model, "backbone_kwargs": {**kwargs, "weights_path": imagenet_weights_path(config)}}


def resolve_train(train: dict, source: dict, config) -> dict:
    """The run's train block (execution keys left out) with the defaults that depend on the data written out:
    augment (in-memory arrays: IN_MEMORY_AUGMENT; image folders: their recipe's), and for image folders
    image_size (capped by the pilot's limits) and num_workers. The schema's defaults are in `train` already, so
    provenance says everything that was applied."""
    out = {k: v for k, v in train.items() if k not in EXECUTION_KEYS}
    if in_memory(source):
        return {"augment": IN_MEMORY_AUGMENT, **out}
    out = {"augment": RECIPE_AUGMENT[source["recipe"]], "image_size": DEFAULT_IMAGE_SIZE,
           "num_workers": DEFAULT_NUM_WORKERS, **out}
    limits = config.get("limits") or {}
    if "image_size" in limits:
        out["image_size"] = min(out["image_size"], limits["image_size"])
    return out


def check_config(config):
    """Cross-reference checks the schema cannot express, on a config with the schema's defaults written out;
    raises ConfigError. Each method is checked alone before the runs it resolves to."""
    for dataset, name, exp in experiments(config):
        where = f"datasets.{dataset}.experiments.{name}"
        if exp["kind"] == "coarse_fine" and exp["label_level"] != "coarse":
            raise ConfigError(f"{where}.label_level must be 'coarse' for kind coarse_fine")
        if exp["kind"] == "longtail" and not exp.get("longtail"):
            raise ConfigError(f"{where}.longtail (rho, seed) is required for kind longtail")
        ds = config["datasets"][dataset]
        if not in_memory(ds["source"]) and (exp["kind"] == "longtail" or exp["label_level"] == "coarse"):
            raise ConfigError(f"{where}: kind {exp['kind']!r} / label_level 'coarse' need an in-memory dataset "
                              f"({', '.join(in_memory_kinds())}), not an image folder")
        if exp["label_level"] == "coarse" and coarse_level(ds) is None:
            raise ConfigError(f"datasets.{dataset}.hierarchy.coarse_level is required: {where} trains on coarse "
                              "labels (give the hierarchy depth of the coarse level, 1 = top)")
        if exp["kind"] != "hierarchy" and crm_methods(exp):
            raise ConfigError(f"{where}: CRM methods are only defined for kind 'hierarchy'")
        for method, spec in exp["methods"].items():
            _check_method(f"{where}.methods.{method}", exp, spec)
        _check_same_backbone(where, exp)
        for method in exp["methods"]:
            _check_input_pipeline(f"{where}.methods.{method}", resolve_run(config, dataset, name, method))
        for method in trained_methods(exp):
            _check_collapse_seeds(where, exp, method, resolve_run(config, dataset, name, method)["train"])
            _check_logger(f"{where}.methods.{method}", resolve_execution(config, dataset, name, method)["logger"])
    for dataset, ds in config["datasets"].items():
        _check_hierarchy_keys(f"datasets.{dataset}.hierarchy", ds["hierarchy"])
        _check_figures(dataset, ds)


def _check_logger(where, logger: str) -> None:
    from featgeom.curves import INSTALL_HINT, tensorboard_installed

    if logger == "tensorboard" and not tensorboard_installed():
        raise ConfigError(f"{where}: train.logger is 'tensorboard' but the tensorboard package is not installed: "
                          f"{INSTALL_HINT}, or drop train.logger")


def _check_hierarchy_keys(where, hierarchy) -> None:
    """One source of the tree: hierarchy_stage.load_hierarchy would silently ignore the others."""
    files = [key for key in ("paths", "edges", "distances") if key in hierarchy]
    if hierarchy.get("flat") and files:
        raise ConfigError(f"{where}: flat: true makes every class a sibling and would ignore {', '.join(files)}; "
                          "give either flat: true or the hierarchy files")
    if "paths" in hierarchy and "edges" in hierarchy:
        raise ConfigError(f"{where}: give paths or edges, not both (the edges would be ignored)")


def _check_collapse_seeds(where, exp, method, train) -> None:
    """A collapse seed that is not run would measure no collapse curve, silently."""
    outside = sorted({s for s in train["collapse_seeds"] if s >= exp["seeds"]})
    if outside:
        key = (f"{where}.methods.{method}.train" if "collapse_seeds" in exp["methods"][method].get("train", {})
               else f"{where}.train")
        raise ConfigError(f"{key}.collapse_seeds: seed(s) {outside} are not seeds of this experiment, which runs "
                          f"seeds 0..{exp['seeds'] - 1} (seeds: {exp['seeds']}); they would measure no collapse curve")


def _check_same_backbone(where, exp) -> None:
    """Every trained method of an experiment uses one backbone, so only the head and loss differ between rows."""
    backbones = {m: (s["model"]["backbone"], s["model"].get("backbone_kwargs") or {})
                 for m, s in exp["methods"].items() if "crm_of" not in s}
    if len({repr(b) for b in backbones.values()}) > 1:
        listing = "; ".join(f"{m}: {b} {kw}" for m, (b, kw) in backbones.items())
        raise ConfigError(f"{where}: methods use different backbones ({listing}); give every method the same "
                          "backbone and backbone_kwargs so that only the loss/head differs")


def _check_input_pipeline(where, run) -> None:
    train = run["train"]
    if not in_memory(run["source"]):
        return
    if train["augment"] == "random_resized_crop_flip":
        raise ConfigError(f"{where}: train.augment random_resized_crop_flip needs an image-folder dataset "
                          "(in-memory arrays support crop_flip or none)")
    if "image_size" in train:
        raise ConfigError(f"{where}: train.image_size applies to image folders only; in-memory arrays keep their "
                          "native size (limits.image_size downscales them for a pilot run)")
    if "num_workers" in train:
        raise ConfigError(f"{where}: train.num_workers applies to image folders only; in-memory arrays are "
                          "batched on the training device, without loader workers")


def _check_figures(dataset, ds):
    figures = ds["figures"]
    for key, name in figures.items():
        if key.endswith("_experiment") and name not in ds["experiments"]:  # the experiment a figure draws
            raise ConfigError(f"datasets.{dataset}.figures.{key} = {name!r} is not an experiment of {dataset}")
    tsne = figures.get("tsne_experiment")
    if tsne is not None and not in_memory(ds["source"]):
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
    if frame == "haframe" and "gamma" not in spec["frame"]:
        raise ConfigError(f"{where}.frame.gamma is required for a HAFrame")
    if frame == "haframe" and exp["label_level"] != "fine":
        raise ConfigError(f"{where}: a HAFrame is built over the leaves; use label_level fine")
    _check_level_heads(where, exp, spec)
    _check_loss_options(where, spec)


def _check_loss_options(where, spec) -> None:
    """Refuse loss options the chosen loss (hinge_ce: and mode) would ignore, and a cone hinge without its needs."""
    loss = spec["loss"]
    name, mode = loss["name"], loss.get("mode")
    takes = LOSS_OPTIONS[name]
    if name == "hinge_ce":  # mode hinge floors CE at tau; mode cone stops the gradient inside cone_angle_deg
        takes = ("mode", "tau") if mode == "hinge" else ("mode", "cone_angle_deg")
        name = f"hinge_ce, mode {mode}"
    ignored = sorted(set(loss) - {"name", *takes})
    if ignored:
        raise ConfigError(f"{where}.loss: {', '.join(ignored)} has no effect on loss {name} "
                          f"(its options: {', '.join(takes) or 'none'})")
    if mode == "cone" and "cone_angle_deg" not in loss:
        raise ConfigError(f"{where}.loss: mode cone needs cone_angle_deg")
    if mode == "cone" and "scale" not in spec["model"]:
        raise ConfigError(f"{where}.loss: mode cone needs model.scale (the cosine head's logit scale)")


def _check_level_heads(where, exp, spec) -> None:
    """Flamingo / HAFeature: per-level classifiers (model.level_heads) and their loss come together."""
    model, loss = spec["model"], spec["loss"]
    level_heads = model.get("level_heads")
    if loss["name"] in LEVEL_HEAD_LOSSES and level_heads != loss["name"]:
        raise ConfigError(f"{where}.loss {loss['name']!r} needs model.level_heads: {loss['name']}")
    if not level_heads:
        return
    if loss["name"] != level_heads:
        raise ConfigError(f"{where}.model.level_heads {level_heads!r} needs loss name {level_heads!r}")
    if model["head"] == "cosine_etf" or model.get("frame"):
        raise ConfigError(f"{where}.model.level_heads needs a learnable trunk head (linear, type1_mlp or type2) "
                          "without a frame")
    if exp["label_level"] != "fine":
        raise ConfigError(f"{where}: per-level heads are trained on every level down to the leaves; use label_level fine")
    if level_heads == "hafeature" and "dissimilar_from" not in loss:
        raise ConfigError(f"{where}.loss.dissimilar_from is required for hafeature (first level of the margin term; "
                          "official: CIFAR WRN 1, FGVC 2, iNat19 2, tiered 5)")


def experiments_of_table(config, dataset, table):
    """Experiments summarised by a table; the collapse table covers every experiment of the dataset."""
    return [n for ds, n, exp in experiments(config)
            if ds == dataset and table in ("collapse", TABLE_OF_KIND[exp["kind"]])]


def stretched_folder(config, dataset: str) -> str:
    """Where a raw-kind dataset's stretched copies go: named by the size, so two sizes never share a folder."""
    stretch = config["datasets"][dataset]["source"]["stretch"]
    return STRETCHED_IMAGES.format(dataset=dataset, size=stretch)
