# Config validation, wildcard constraints and input functions shared by all rule files.
# Keep this cheap: every SLURM job re-parses it (no torch, no globbing).
import os
from types import SimpleNamespace

import featgeom.config as fg
from featgeom import registry
from featgeom.config_files import checked_config
from featgeom.data.kinds import dataset_kind
from featgeom.data.manifest import folder_listing
from featgeom.hierarchy_stage import check_hierarchy_files
from featgeom.io import update_json
from featgeom.lineage import training_code_hash
from featgeom.provenance import has_nvidia_gpu
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
    """The datasets whose source kind the data rule `rule` prepares (featgeom.data.kinds), as a regex."""
    names = [d for d, spec in config["datasets"].items() if dataset_kind(spec["source"]).prepare_rule == rule]
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
    if not fg.in_memory(ds["source"]):
        return f"results/{wildcards.dataset}/data/image_folder.json"
    if exp["kind"] == "longtail":
        return f"results/{wildcards.dataset}/data/{wildcards.experiment}_longtail.npz"
    return f"results/{wildcards.dataset}/data/arrays.npz"


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
        files["paths"] = f"results/{wildcards.dataset}/data/paths.csv"
    return files


def run_spec(wildcards):
    return fg.resolve_run(config, wildcards.dataset, wildcards.experiment, wildcards.method)


def model_inputs(wildcards):
    """Files a run's model needs besides its data: HAFrame's s_min (per gamma), local backbone weights, and the
    resized-image cache of its images (resized_input).

    Only weights this workflow fetches are declared inputs; a user's own `weights_path` (the PASS
    checkpoint) is checked by the job, so `snakemake -n` works on a machine without it.
    """
    spec = run_spec(wildcards)
    files = {}
    if spec["model"].get("frame") == "haframe":
        files["s_min"] = f"results/{wildcards.dataset}/hierarchy/haframe_s_min_gamma{float(spec['frame']['gamma'])}.json"
    if spec["model"].get("backbone_kwargs", {}).get("weights_path") == fg.imagenet_weights_path(config):
        files["weights"] = fg.imagenet_weights_path(config)
    return {**files, **resized_input(wildcards.dataset, spec)}


def resized_input(dataset, spec):
    """The resized-image cache (rule resize_images) of a run whose every pass starts with the deterministic
    Resize((size, size)): crop_flip on an image folder (FGVC); {} for other runs, which decode each image."""
    if fg.in_memory(spec["source"]) or spec["train"]["augment"] != "crop_flip":
        return {}
    return {"resized": f"results/{dataset}/data/resized_{spec['train']['image_size']}.json"}


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


def trained_run_files(seed, feature_seeds):
    """The files training writes in a run folder: featgeom.config.RUN_OUTPUTS, and features.npz where the
    workflow reads the run's features (featgeom.config.feature_seeds)."""
    return [*fg.RUN_OUTPUTS.values(), *([fg.FEATURES_FILE] if seed in feature_seeds else [])]


def pack_outputs(pack):
    """The run files of a pack's rule: trained_run_files of each of its runs (a pack writes the features itself:
    rule dump_features is not needed for them)."""
    features = set(fg.feature_seeds(config, pack["dataset"], pack["experiment"]))
    return [run_path(pack["dataset"], pack["experiment"], run["method"], run["seed"], name)
            for run in pack["runs"] for name in trained_run_files(run["seed"], features)]


def pack_method_wildcards(pack):
    """Wildcards of each method of a pack (at its first run), for the input functions of `train`.
    What those give (spec, model inputs, resources) does not depend on the seed."""
    firsts = {}
    for run in pack["runs"]:
        firsts.setdefault(run["method"], run["seed"])
    return [SimpleNamespace(dataset=pack["dataset"], experiment=pack["experiment"], method=method, seed=seed)
            for method, seed in firsts.items()]


def pack_threads(pack):
    """Cores each process of a pack books: the most any of its methods' runs book (run_threads)."""
    return max(run_threads(run) for run in pack_method_wildcards(pack))


def pack_model_inputs(pack):
    """model_inputs of every method of a pack, named `<name>_of_<method>` (featgeom.packs.run_inputs)."""
    return {f"{name}{fg.PACK_INPUT_OF}{run.method}": path for run in pack_method_wildcards(pack)
            for name, path in model_inputs(run).items()}


def pack_specs(pack):
    """{method: resolved spec} of a pack's methods: the pack reruns when one of them changes."""
    return {run.method: run_spec(run) for run in pack_method_wildcards(pack)}


def booked_workers(pack):
    """Processes a pack job books CPUs and memory for: k sharing a GPU where training jobs get one (a profile
    that gives rule `train` a GPU, or a GPU on this machine); else 1, as featgeom.packs.pack_workers then
    trains the runs one after another in one process."""
    profile_gpu = {"gres", "gpu"} & set(workflow.resource_settings.overwrite_resources.get("train", {}))
    return pack["workers"] if profile_gpu or has_nvidia_gpu() else 1


def check_hierarchies():
    """Every dataset's hierarchy files, configured and produced, parse and validate (see
    featgeom.hierarchy_stage.check_hierarchy_files): run at parse time, before any job."""
    for dataset, ds in config["datasets"].items():
        produced = {"distances": f"results/{dataset}/hierarchy/distances.csv"}
        if dataset_kind(ds["source"]).writes_tree:
            produced["paths"] = f"results/{dataset}/data/paths.csv"
        check_hierarchy_files(configured_hierarchy_files(dataset), produced)


IMAGE_LISTING = "results/{dataset}/data/image_listing.json"  # input of verify_image_folder


def write_image_listings():
    """Each image folder's listing (featgeom.data.manifest.folder_listing), rewritten only when it changed: its
    mtime is then newer than the manifest exactly when files were added, removed or changed since verification."""
    for dataset, ds in config["datasets"].items():
        if dataset_kind(ds["source"]).user_folder:
            update_json(IMAGE_LISTING.format(dataset=dataset), folder_listing(ds["source"]["root"]))


# Only where the DAG is built: SLURM jobs re-parse this file and need not re-read every hierarchy, nor walk
# the image folders (one stat per image).
if workflow.is_main_process:
    check_hierarchies()
    write_image_listings()


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
    """Run files behind one table: metrics (+ probe and final collapse for coarse_fine); collapse only for `collapse`;
    the trained runs' provenance."""
    files = {"metrics": [], "probe": [], "collapse": [], "provenance": []}
    for exp in fg.experiments_of_table(config, wildcards.dataset, wildcards.table):
        spec = config["datasets"][wildcards.dataset]["experiments"][exp]
        trained = fg.trained_methods(spec)
        # which training code made each run: the table names the runs of other code than the current one
        files["provenance"] += experiment_files(wildcards.dataset, exp, "provenance.json", methods=trained)
        if wildcards.table == "collapse" or spec["kind"] == "coarse_fine":
            files["collapse"] += experiment_files(wildcards.dataset, exp, "collapse.json", methods=trained)
        if wildcards.table != "collapse":
            files["metrics"] += experiment_files(wildcards.dataset, exp, "metrics.json")
        if wildcards.table == "coarse_fine":
            files["probe"] += experiment_files(wildcards.dataset, exp, "probe.json")
    return files


def collapse_curve_files(wildcards):
    """The collapse.json of every run with NC curves: each trained method's train.collapse_seeds."""
    files = []
    for name, exp in config["datasets"][wildcards.dataset]["experiments"].items():
        for method in fg.trained_methods(exp):
            seeds = fg.resolve_run(config, wildcards.dataset, name, method)["train"]["collapse_seeds"]
            files += experiment_files(wildcards.dataset, name, fg.RUN_OUTPUTS["collapse"], methods=[method],
                                      seeds=seeds)
    return files


def class_names_source(wildcards):
    """{'names': the arrays holding the dataset's own class names} for in-memory datasets (CIFAR's meta names);
    nothing for image folders, whose folder names are the names."""
    if fg.in_memory(config["datasets"][wildcards.dataset]["source"]):
        return {"names": f"results/{wildcards.dataset}/data/arrays.npz"}
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
                crm = [fg.RUN_OUTPUTS["test_logits"], fg.RUN_OUTPUTS["provenance"]]  # rule crm's outputs
                names = crm if "crm_of" in spec else trained_run_files(seed, features)
                names += ["metrics.json"] + (["probe.json"] if exp["kind"] == "coarse_fine" else [])
                files += [run_path(dataset, name, method, seed, file) for file in names]
    return files


def all_targets():
    targets = []
    for dataset in config["datasets"]:
        targets += run_targets(dataset)
        spec = config["datasets"][dataset]  # the registry says which tables and figures it gets
        tables, figures = registry.names_for(registry.TABLES, spec), registry.names_for(registry.FIGURES, spec)
        targets += expand("results/{d}/tables/{t}.{ext}", d=dataset, t=tables, ext=["csv", "md", "tex", "html"])
        targets += expand("results/{d}/figures/{f}.{ext}", d=dataset, f=figures, ext=["png", "pdf"])
        targets.append(f"results/{dataset}/hierarchy/distances.csv")
    return targets


def is_training_job(job):
    return job.rule.name == "train" or job.rule.name in PACK_RULES


def training_run_dirs(job):
    """The run folders a training job (rule train or a pack) trains."""
    return sorted({os.path.dirname(f) for f in job.output if os.path.basename(f) == fg.RUN_OUTPUTS["test_logits"]})


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
