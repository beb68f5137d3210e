# Config validation, wildcard constraints and input functions shared by all rule files.
# Keep this cheap: every SLURM job re-parses it (no torch, no globbing).
import os

import featgeom.config as fg
from featgeom import layout, registry
from featgeom.config_files import checked_config
from featgeom.dataset_kinds import dataset_kind
from featgeom.data.manifest import folder_listing
from featgeom.hierarchy_stage import check_hierarchy_files
from featgeom.io import update_json
from featgeom.lineage import training_code_hash
from featgeom.run_guard import RunFolderBusy, busy_message, busy_run_folders, hold_workflow_directory, mark_forced
from featgeom.published import PUBLISHED_FILE

# Before Snakemake looks at incomplete files or its own locks: a second Snakemake on this directory is told so
# plainly (SLURM job steps and local job subprocesses re-read this file; only the main process locks).
if workflow.is_main_process:
    hold_workflow_directory(warn_only=workflow.output_settings.dryrun)

# Our validator instead of snakemake.utils.validate: it reports every error with its key path and
# names misspelled keys ("did you mean"), where snakemake's stops at the first. tools/check_config.py runs the same.
config.update(checked_config(config, os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")))

NEVER = "(?!x)x"  # a regex that matches nothing, for a dataset kind absent from the config


def datasets_prepared_by(rule):
    """The datasets whose source kind the data rule `rule` prepares (featgeom.dataset_kinds), as a regex."""
    names = [d for d, spec in config["datasets"].items() if dataset_kind(spec["source"]).prepare_rule == rule]
    return "|".join(names) or NEVER


def experiment_spec(wildcards):
    return config["datasets"][wildcards.dataset]["experiments"][wildcards.experiment]


def methods_regex(predicate):
    names = {m for _, _, exp in fg.experiments(config) for m, spec in exp["methods"].items() if predicate(spec)}
    return "|".join(sorted(names)) or NEVER


wildcard_constraints:
    **layout.WILDCARDS,


RUN = layout.RUN_DIR
LOG = layout.RUN_LOG_DIR


def experiment_runs(dataset, experiment, methods=None, seeds=None):
    """(method, seed) of each run of an experiment, in the order of experiment_files."""
    exp = config["datasets"][dataset]["experiments"][experiment]
    return [(m, s) for m in (methods or exp["methods"]) for s in (seeds or range(exp["seeds"]))]


def experiment_files(dataset, experiment, name, methods=None, seeds=None):
    """One file per (method, seed) of an experiment."""
    runs = experiment_runs(dataset, experiment, methods, seeds)
    return [layout.run_path(dataset, experiment, method, seed, name) for method, seed in runs]


def training_data(wildcards):
    return experiment_training_data(wildcards.dataset, wildcards.experiment)


def experiment_training_data(dataset, experiment):
    """The data file an experiment's runs train on: arrays, its long-tail subsample, or an image-folder manifest."""
    if not fg.in_memory(config["datasets"][dataset]["source"]):
        return layout.IMAGE_MANIFEST.format(dataset=dataset)
    if config["datasets"][dataset]["experiments"][experiment]["kind"] == "longtail":
        return layout.LONGTAIL_ARRAYS.format(dataset=dataset, experiment=experiment)
    return layout.ARRAYS.format(dataset=dataset)


def repo_path(path):
    """Hierarchy files shipped with or added to the repository: relative to the repository, like `script:`."""
    return path if os.path.isabs(path) else os.path.join(workflow.basedir, path)


def configured_hierarchy_files(dataset):
    """Hierarchy files named in the config (paths CSV, edge list, published distances)."""
    hierarchy = config["datasets"][dataset]["hierarchy"]
    return {key: repo_path(hierarchy[key]) for key in ("paths", "edges", "distances") if key in hierarchy}


def tree_files(wildcards):
    """The configured tree (paths CSV or edge list), without distances: the split classes are checked against it."""
    return {k: v for k, v in configured_hierarchy_files(wildcards.dataset).items() if k != "distances"}


def hierarchy_source_files(wildcards):
    """The hierarchy rule's inputs: the configured files, or the synthetic generator's tree."""
    files = configured_hierarchy_files(wildcards.dataset)
    if dataset_kind(config["datasets"][wildcards.dataset]["source"]).writes_tree:
        files["paths"] = layout.SYNTHETIC_PATHS.format(dataset=wildcards.dataset)
    return files


def run_spec(wildcards):
    return fg.resolve_run(config, wildcards.dataset, wildcards.experiment, wildcards.method)


def model_inputs(wildcards):
    return method_model_inputs(wildcards.dataset, wildcards.experiment, wildcards.method)


def method_model_inputs(dataset, experiment, method):
    """Files a method's model needs besides its data: HAFrame's s_min (per gamma), local backbone weights, and the
    resized-image cache of its images (resized_input).

    Only weights this workflow fetches are declared inputs; a user's own `weights_path` (the PASS
    checkpoint) is checked by the job, so `snakemake -n` works on a machine without it.
    """
    spec = fg.resolve_run(config, dataset, experiment, method)
    files = {}
    if spec["model"].get("frame") == "haframe":
        files["s_min"] = layout.HAFRAME_S_MIN.format(dataset=dataset, gamma=float(spec["frame"]["gamma"]))
    if spec["model"].get("backbone_kwargs", {}).get("weights_path") == fg.imagenet_weights_path(config):
        files["weights"] = fg.imagenet_weights_path(config)
    return {**files, **resized_input(dataset, spec)}


def resized_input(dataset, spec):
    """The resized-image cache (rule resize_images) of a run whose every pass starts with the deterministic
    Resize((size, size)): crop_flip on an image folder (FGVC); {} for other runs, which decode each image."""
    if fg.in_memory(spec["source"]) or spec["train"]["augment"] != "crop_flip":
        return {}
    return {"resized": layout.RESIZED_KEY.format(dataset=dataset, size=spec["train"]["image_size"])}


def run_threads(wildcards):
    """Cores a run's training (or feature-dump) job books: its loader workers and main process for an image
    folder, else threads_per_run (featgeom.config.booked_threads)."""
    return fg.booked_threads(config, wildcards.dataset, wildcards.experiment, wildcards.method)


def run_execution(wildcards):
    return fg.resolve_execution(config, wildcards.dataset, wildcards.experiment, wildcards.method)


def train_resource(key):
    return lambda wildcards: run_execution(wildcards)["resources"][key]


def gpu_share(wildcards):
    """The run's share of one GPU (`gpu_percent`; `--resources gpu_percent=100` = one GPU)."""
    return fg.gpu_percent(run_execution(wildcards)["resources"]["runs_per_gpu"])


def pack_outputs(pack):
    """The run files of a pack's rule: what training writes for each of its runs (featgeom.config.pack_runs; a
    pack writes the features itself: rule dump_features is not needed for them)."""
    return [path for run in fg.pack_runs(config, pack) for key, path in run["outputs"].items() if key != "run_dir"]


def pack_model_inputs(pack):
    """method_model_inputs of every method of a pack, named `<name>_of_<method>` (featgeom.packs.run_inputs)."""
    return {f"{name}{fg.PACK_INPUT_OF}{method}": path for method in fg.pack_methods(pack)
            for name, path in method_model_inputs(pack["dataset"], pack["experiment"], method).items()}


def pack_specs(pack):
    """{method: resolved spec} of a pack's methods: the pack reruns when one of them changes."""
    return {method: fg.resolve_run(config, pack["dataset"], pack["experiment"], method)
            for method in fg.pack_methods(pack)}


def check_hierarchies():
    """Every dataset's hierarchy files, configured and produced, parse and validate (see
    featgeom.hierarchy_stage.check_hierarchy_files): run at parse time, before any job."""
    for dataset, ds in config["datasets"].items():
        produced = {"distances": layout.DISTANCES.format(dataset=dataset)}
        if dataset_kind(ds["source"]).writes_tree:
            produced["paths"] = layout.SYNTHETIC_PATHS.format(dataset=dataset)
        check_hierarchy_files(configured_hierarchy_files(dataset), produced)


def write_image_listings():
    """Each image folder's listing (featgeom.data.manifest.folder_listing), rewritten only when it changed: its
    mtime is then newer than the manifest exactly when files were added, removed or changed since verification."""
    for dataset, ds in config["datasets"].items():
        if dataset_kind(ds["source"]).user_folder:
            update_json(layout.IMAGE_LISTING.format(dataset=dataset), folder_listing(ds["source"]["root"]))


# Only where the DAG is built: SLURM jobs re-parse this file and need not re-read every hierarchy, nor walk
# the image folders (one stat per image).
if workflow.is_main_process:
    check_hierarchies()
    write_image_listings()


def train_counts(dataset, experiment):
    """A long-tail experiment's per-class training counts (many / medium / few-shot metrics)."""
    if config["datasets"][dataset]["experiments"][experiment]["kind"] == "longtail":
        return {"train_counts": layout.LONGTAIL_TRAIN_COUNTS.format(dataset=dataset, experiment=experiment)}
    return {}


def figure_features(key):
    """The features (seed 0, every trained method) of the experiment named in figures.<key>."""

    def inputs(wildcards):
        name = config["datasets"][wildcards.dataset]["figures"][key]
        exp = config["datasets"][wildcards.dataset]["experiments"][name]
        return experiment_files(wildcards.dataset, name, layout.FEATURES_FILE, methods=fg.trained_methods(exp),
                                seeds=[0])

    return inputs


def table_inputs(wildcards):
    """Run files behind one table: metrics (+ probe and final collapse for coarse_fine); collapse only for `collapse`;
    the trained runs' provenance."""
    files = {"metrics": [], "probe": [], "collapse": [], "provenance": []}
    for exp in fg.experiments_of_table(config, wildcards.dataset, wildcards.table):
        spec = config["datasets"][wildcards.dataset]["experiments"][exp]
        trained = fg.trained_methods(spec)
        # which training code made each run: the table names the runs of other code than the current one
        files["provenance"] += experiment_files(wildcards.dataset, exp, layout.RUN_OUTPUTS["provenance"],
                                                methods=trained)
        if wildcards.table == "collapse" or spec["kind"] == "coarse_fine":
            files["collapse"] += experiment_files(wildcards.dataset, exp, layout.RUN_OUTPUTS["collapse"],
                                                  methods=trained)
        if wildcards.table != "collapse":
            files["metrics"] += experiment_files(wildcards.dataset, exp, layout.METRICS_FILE)
        if wildcards.table == "coarse_fine":
            files["probe"] += experiment_files(wildcards.dataset, exp, layout.PROBE_FILE)
    return files


def collapse_curve_files(wildcards):
    """The collapse.json of every run with NC curves: each trained method's train.collapse_seeds."""
    files = []
    for name, exp in config["datasets"][wildcards.dataset]["experiments"].items():
        for method in fg.trained_methods(exp):
            seeds = fg.resolve_run(config, wildcards.dataset, name, method)["train"]["collapse_seeds"]
            files += experiment_files(wildcards.dataset, name, layout.RUN_OUTPUTS["collapse"], methods=[method],
                                      seeds=seeds)
    return files


def class_names_source(wildcards):
    """{'names': the arrays holding the dataset's own class names} for in-memory datasets (CIFAR's meta names);
    nothing for image folders, whose folder names are the names."""
    if fg.in_memory(config["datasets"][wildcards.dataset]["source"]):
        return {"names": layout.ARRAYS.format(dataset=wildcards.dataset)}
    return {}


def published_name(wildcards):
    """The dataset's published counterpart (`published:`), None when the paper has no numbers for it."""
    return config["datasets"][wildcards.dataset].get("published")


def run_targets(dataset):
    """Every file of every run of a dataset. Snakemake remakes a missing input of a job only when that job must run
    itself, so with tables alone as targets a deleted run folder (or a pack's outputs removed after a failure) would
    never be remade: the tables are newer than the files that remain. As targets, a missing file is remade, only
    its own run is trained again, and the tables rerun with it."""
    files = []
    for name, exp in config["datasets"][dataset]["experiments"].items():
        features = set(fg.feature_seeds(config, dataset, name))
        for method, spec in exp["methods"].items():
            for seed in range(exp["seeds"]):
                crm = [layout.RUN_OUTPUTS["test_logits"], layout.RUN_OUTPUTS["provenance"]]  # rule crm's outputs
                names = crm if "crm_of" in spec else list(layout.trained_files(seed in features).values())
                names += [layout.METRICS_FILE] + ([layout.PROBE_FILE] if exp["kind"] == "coarse_fine" else [])
                files += [layout.run_path(dataset, name, method, seed, file) for file in names]
    return files


def all_targets():
    targets = []
    for dataset in config["datasets"]:
        targets += run_targets(dataset)
        spec = config["datasets"][dataset]  # the registry says which tables and figures it gets
        tables, figures = registry.names_for(registry.TABLES, spec), registry.names_for(registry.FIGURES, spec)
        targets += expand(f"{layout.TABLES}/{{table}}.{{ext}}", dataset=dataset, table=tables,
                          ext=["csv", "md", "tex", "html"])
        targets += expand(f"{layout.FIGURES}/{{figure}}.{{ext}}", dataset=dataset, figure=figures, ext=["png", "pdf"])
        targets.append(layout.DISTANCES.format(dataset=dataset))
    return targets


def is_training_job(job):
    return job.rule.name == "train" or job.rule.name in PACK_RULES


def training_run_dirs(job):
    """The run folders a training job (rule train or a pack) trains."""
    return sorted({os.path.dirname(f) for f in job.output if os.path.basename(f) == layout.RUN_OUTPUTS["test_logits"]})


def forced_by_snakemake(dag):
    """job -> whether Snakemake forced it (-F, -R, --forcerun) or reruns it because of a job it forced upstream."""
    memo = {}

    def forced(job):
        if job not in memo:
            memo[job] = dag.reason(job).forced or any(forced(dep) for dep in dag.dependencies[job] if dag.needrun(dep))
        return memo[job]

    return forced


def guard_training_jobs(dag):
    """Before any job starts: refuse to start while another process trains one of the run folders about to be
    trained (Snakemake would delete that job's outputs first), and mark the runs of forced jobs
    (featgeom.run_guard). Reads Snakemake's DAG (workflow.dag, DAG.reason and DAG.dependencies of Snakemake 9)."""
    jobs = [job for job in dag.needrun_jobs() if is_training_job(job)]
    busy = busy_run_folders(run_dir for job in jobs for run_dir in training_run_dirs(job))
    if busy:
        raise RunFolderBusy(busy_message(busy))
    forced = forced_by_snakemake(dag)
    mark_forced(run_dir for job in jobs if forced(job) for run_dir in training_run_dirs(job))


onstart:
    guard_training_jobs(workflow.dag)
