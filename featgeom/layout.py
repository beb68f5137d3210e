"""Where the workflow keeps its files: the folders under results/ and logs/, the names of the files in them, and the
Snakemake patterns of both (a pattern's {fields} are the rules' wildcards; `.format` gives the path of one file).

The rules, the pack scripts, the tables and the figures all read paths from here, so that a folder is named in one
place. No torch: Snakemake's main process imports this at parse time.
"""
from __future__ import annotations

import re
from pathlib import Path

RESULTS = "results"
LOGS = "logs"

# Wildcard values, as the rules constrain them (common.smk's wildcard_constraints) and as parse_run_dir reads them.
WILDCARDS = {"dataset": "[A-Za-z0-9_]+", "experiment": "[A-Za-z0-9_]+", "method": "[A-Za-z0-9_]+", "seed": r"\d+"}

# ---- one dataset: its prepared data and hierarchy ----
DATA = f"{RESULTS}/{{dataset}}/data"
ARRAYS = f"{DATA}/arrays.npz"  # in-memory datasets (CIFAR, synthetic): every split's images and labels
CLASSES = f"{DATA}/classes.txt"
SYNTHETIC_PATHS = f"{DATA}/paths.csv"  # the synthetic generator's tree
IMAGE_MANIFEST = f"{DATA}/image_folder.json"  # an image folder's every file, decoded once
IMAGE_LISTING = f"{DATA}/image_listing.json"  # what reruns an image folder's verification
LONGTAIL_ARRAYS = f"{DATA}/{{experiment}}_longtail.npz"
LONGTAIL_TRAIN_COUNTS = f"{DATA}/{{experiment}}_train_counts.json"
# The deterministic Resize((size, size)) of every image of an image folder (rule resize_images)
RESIZED_IMAGES = f"{DATA}/resized_{{size}}.npy"
RESIZED_KEY = f"{DATA}/resized_{{size}}.json"
STRETCHED_IMAGES = f"{DATA}/stretch{{size}}"  # a raw-kind dataset's images stretched to size x size

HIERARCHY = f"{RESULTS}/{{dataset}}/hierarchy"
DISTANCES = f"{HIERARCHY}/distances.csv"
LEVELS = f"{HIERARCHY}/levels.json"
HAFRAME_S_MIN = f"{HIERARCHY}/haframe_s_min_gamma{{gamma}}.json"

TABLES = f"{RESULTS}/{{dataset}}/tables"
FIGURES = f"{RESULTS}/{{dataset}}/figures"
BENCHMARKS = f"{RESULTS}/{{dataset}}/benchmarks"
DATASET_LOGS = f"{LOGS}/{{dataset}}"  # Snakemake's logs of a dataset's jobs

# ---- one training run: results/<dataset>/<experiment>/<method>/seed<N>/ ----
RUN = "{dataset}/{experiment}/{method}/seed{seed}"
RUN_DIR = f"{RESULTS}/{RUN}"
RUN_LOG_DIR = f"{LOGS}/{RUN}"  # Snakemake's logs of a run's jobs
# The files training writes in a run folder: rule train's outputs, and each run's of a pack rule.
RUN_OUTPUTS = {"test_logits": "test_logits.npz", "checkpoint": "checkpoint_best.pt", "history": "history.json",
               "collapse": "collapse.json", "provenance": "provenance.json"}
FEATURES_FILE = "features.npz"  # penultimate features of a run's best model (probe, t-SNE, Mueller figures)
METRICS_FILE = "metrics.json"
PROBE_FILE = "probe.json"
# A run folder's other files are named by the training code that writes them: its train.log (featgeom.rule_io),
# last_checkpoint.pt (featgeom.runner), tensorboard/ (featgeom.curves). Moving a name here would change the content
# hash of the training code, and with it every kept checkpoint's lineage (featgeom.lineage): no resume across it.
# A job over several runs of an experiment (a pack, featgeom.config.run_packs; its scoring; its probe): one rule per
# job, no wildcards. Its Snakemake log and benchmark file, by the job's name.
EXPERIMENT_JOB_LOG = f"{DATASET_LOGS}/{{experiment}}/{{name}}.log"
JOB_BENCHMARK = f"{BENCHMARKS}/{{name}}.tsv"

_FIELD = re.compile(r"\{(\w+)\}")
_RUN_DIR_MATCH = re.compile(_FIELD.sub(lambda field: f"(?P<{field[1]}>{WILDCARDS[field[1]]})", RUN_DIR) + "/")


def run_dir(dataset: str, experiment: str, method: str, seed) -> str:
    return RUN_DIR.format(dataset=dataset, experiment=experiment, method=method, seed=seed)


def run_path(dataset: str, experiment: str, method: str, seed, name: str) -> str:
    return f"{run_dir(dataset, experiment, method, seed)}/{name}"


def trained_files(features: bool) -> dict:
    """{key: file name} of the files training writes in a run folder: RUN_OUTPUTS, and FEATURES_FILE where the
    workflow reads the run's features (featgeom.config.feature_seeds)."""
    return {**RUN_OUTPUTS, **({"features": FEATURES_FILE} if features else {})}


def run_outputs(dataset: str, experiment: str, method: str, seed, features: bool) -> dict:
    """{key: path} of the files training writes for one run (trained_files), and its run_dir."""
    return {"run_dir": run_dir(dataset, experiment, method, seed),
            **{key: run_path(dataset, experiment, method, seed, name) for key, name in trained_files(features).items()}}


def parse_run_dir(path) -> dict:
    """{dataset, experiment, method, seed} of a file inside a run folder."""
    match = _RUN_DIR_MATCH.search(Path(path).as_posix())
    if not match:
        raise ValueError(f"{path} is not inside a run folder {RUN_DIR}/")
    return {**match.groupdict(), "seed": int(match["seed"])}


def run_dirs_glob() -> str:
    """The glob of every run folder, relative to the results folder."""
    return _FIELD.sub("*", RUN)
