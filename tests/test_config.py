"""Config checks beyond the schema: every bad cross reference is named by its key path."""
import copy
import re
from pathlib import Path

import pytest
import yaml

import featgeom.config as config_module
from featgeom.config import (
    MAIN_PROCESS_CORES, ConfigError, apply_limits, booked_threads, check_config, deep_merge, gpu_percent,
    pack_runs, pack_workers, resolve_execution, resolve_run, run_pack, run_packs, validate_schema,
)
from featgeom.config_files import checked_config, with_schema_defaults
from featgeom.layout import run_outputs

REPO = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO / "workflow/schemas/config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())


def load(name):
    return yaml.safe_load((REPO / name).read_text())


def filled(config):
    """The config as the library reads it: with the schema's defaults written out (checked_config does this)."""
    return with_schema_defaults(config, SCHEMA)


@pytest.mark.parametrize("name", ["config/config.yaml", "config/demo.yaml", "tests/data/tiny.yaml",
                                  "config/pilot.yaml"])
def test_shipped_configs_are_valid(name):
    # Snakemake deep-merges several --configfile arguments; deep_merge does the same here.
    config = deep_merge(load("config/config.yaml"), load(name)) if name == "config/pilot.yaml" else load(name)
    checked_config(config, SCHEMA_PATH)


def tiny():
    config = load("tests/data/tiny.yaml")
    validate_schema(config, SCHEMA)
    return copy.deepcopy(config)


def methods(config, experiment="main"):
    return config["datasets"]["synthetic"]["experiments"][experiment]["methods"]


@pytest.mark.parametrize("edit, message", [
    (lambda c: methods(c)["crm_t1"].update(crm_of="missing"), "methods.crm_t1.crm_of = 'missing'"),
    (lambda c: methods(c)["haframe"]["model"].pop("frame"), "methods.haframe.loss 'haframe' needs model.frame"),
    (lambda c: methods(c)["haframe"].update(frame={}), "methods.haframe.frame.gamma is required"),
    (lambda c: methods(c, "coarse_fine")["hinge_ce"]["model"].update(frame="haframe"),
     "methods.hinge_ce.model.frame must be 'etf'"),
    (lambda c: c["datasets"]["synthetic"]["experiments"]["coarse_fine"].update(label_level="fine"),
     "coarse_fine.label_level must be 'coarse'"),
    (lambda c: c["datasets"]["synthetic"]["figures"].update(tsne_experiment="nope"),
     "figures.tsne_experiment = 'nope'"),
    (lambda c: c["datasets"]["synthetic"].update(source={"kind": "image_folder", "root": "x", "recipe": "fgvc"}),
     "experiments.coarse_fine: kind 'coarse_fine' / label_level 'coarse' need an in-memory dataset"),
    (lambda c: c["datasets"]["synthetic"]["hierarchy"].update(flat=True, paths="p.csv"),
     "datasets.synthetic.hierarchy: flat: true makes every class a sibling and would ignore paths"),
    (lambda c: c["datasets"]["synthetic"]["hierarchy"].update(paths="p.csv", edges="e.csv"),
     "datasets.synthetic.hierarchy: give paths or edges, not both"),
    (lambda c: methods(c)["haframe"].update(train={"collapse_seeds": [0, 7]}),
     "experiments.main.methods.haframe.train.collapse_seeds: seed(s) [7] are not seeds of this experiment"),
    (lambda c: methods(c)["ce_t1"]["loss"].update(tau=0.5, alpha=0.3),
     "methods.ce_t1.loss: alpha, tau has no effect on loss ce (its options: label_smoothing)"),
    (lambda c: methods(c, "coarse_fine")["hinge_ce"]["loss"].update(cone_angle_deg=30),
     "methods.hinge_ce.loss: cone_angle_deg has no effect on loss hinge_ce, mode hinge (its options: mode, tau)"),
    (lambda c: methods(c, "coarse_fine")["hinge_ce"]["loss"].update(mode="cone"),
     "methods.hinge_ce.loss: tau has no effect on loss hinge_ce, mode cone"),
    (lambda c: methods(c, "coarse_fine")["hinge_ce"].update(loss={"name": "hinge_ce", "mode": "cone"}),
     "methods.hinge_ce.loss: mode cone needs cone_angle_deg"),
])
def test_bad_cross_references_name_their_key(edit, message):
    config = tiny()
    edit(config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_config(filled(config))


@pytest.mark.parametrize("where, key", [
    (lambda c: c["datasets"]["synthetic"]["experiments"]["main"]["train"], "epoch"),
    (lambda c: methods(c)["haframe"].setdefault("train", {}), "epocs"),       # a method's train override
    (lambda c: c["datasets"]["synthetic"]["source"], "downlaod"),
    (lambda c: methods(c)["ce_t1"]["model"].setdefault("backbone_kwargs", {}), "widht"),
    (lambda c: c.setdefault("limits", {}), "epochz"),
])
def test_schema_names_every_unknown_key(where, key):
    config = tiny()
    where(config)[key] = 3
    with pytest.raises(ConfigError, match=f"unknown key\\(s\\) '{key}'"):
        validate_schema(config, SCHEMA)


def test_misspelled_required_key_is_named_next_to_the_missing_one():
    config = tiny()
    train = config["datasets"]["synthetic"]["experiments"]["longtail_r4"]["train"] = dict(
        config["datasets"]["synthetic"]["experiments"]["longtail_r4"]["train"])
    train["epocs"] = train.pop("epochs")
    with pytest.raises(ConfigError) as error:
        validate_schema(config, SCHEMA)
    message = str(error.value)
    assert "longtail_r4.train: unknown key(s) 'epocs' (did you mean 'epochs'?)" in message
    assert "longtail_r4.train: 'epochs' is a required property" in message
    assert message.index("epocs") < message.index("is a required property")


def test_schema_rejects_bad_values():
    config = tiny()
    methods(config)["ce_t1"]["loss"]["name"] = "focal"
    with pytest.raises(ConfigError, match="methods.ce_t1.loss.name: 'focal' is not one of"):
        validate_schema(config, SCHEMA)


def test_cifar100_coarse_labels_are_the_20_superclasses():
    config = filled(load("config/config.yaml"))
    from featgeom.config import coarse_level
    assert coarse_level(config["datasets"]["cifar100"]) == 4
    assert resolve_run(config, "cifar100", "coarse_fine", "hinge_ce")["label_level"] == "coarse"


def test_coarse_labels_on_a_dataset_without_a_default_level_need_one():
    config = tiny()
    config["datasets"]["synthetic"]["source"] = {"kind": "cifar10", "root": "x"}
    with pytest.raises(ConfigError, match=r"datasets\.synthetic\.hierarchy\.coarse_level is required"):
        check_config(filled(config))


def test_methods_of_one_experiment_share_their_backbone():
    config = tiny()
    methods(config, "coarse_fine")["hinge_ce"]["model"]["backbone_kwargs"] = {"width": 16}
    with pytest.raises(ConfigError, match="coarse_fine: methods use different backbones"):
        check_config(filled(config))


def test_papers_recipes_resolve_as_published():
    config = filled(load("config/config.yaml"))
    inat = {m: resolve_run(config, "inaturalist19", "main", m)["train"] for m in ("ce_t1", "ce_t2", "haframe")}
    assert inat["ce_t1"]["lr"] == {"backbone": 0.01, "head": 0.1, "classifier": 0.1}      # no --larger-backbone
    assert inat["ce_t2"]["lr"]["head"] == inat["haframe"]["lr"]["head"] == 0.01          # --larger-backbone
    assert inat["ce_t1"]["augment"] == "random_resized_crop_flip" and inat["ce_t1"]["image_size"] == 224
    fgvc = resolve_run(config, "fgvc_aircraft", "main", "haframe")
    assert fgvc["train"]["augment"] == "crop_flip" and fgvc["train"]["lr"]["head"] == 0.1
    assert fgvc["model"]["backbone_kwargs"] == {"weights_path": "data/pretrained/resnet50-0676ba61.pth"}
    lt = config["datasets"]["cifar100"]["experiments"]["longtail_r100"]["methods"]
    assert {repr(m["model"].get("backbone_kwargs")) for m in lt.values()} == {"{'width': 32}"}
    assert resolve_execution(config, "cifar100", "main", "haframe")["resources"]["runtime"] == 480


@pytest.mark.parametrize("dataset, method", [("inaturalist19", "ce_t1_h1010"), ("tiered_imagenet", "ce_t1_h608")])
def test_nc_figures_etf_baseline_is_type1_ce_with_k_hidden_units_on_seed_0(dataset, method):
    # HAFrame experiments/<ds>/neural-collapse-viz.sh: type-I CE, --hidden_units K, seed 0, every 5 epochs.
    config = filled(load("config/config.yaml"))
    paths = REPO / config["datasets"][dataset]["hierarchy"]["paths"]
    num_classes = len(paths.read_text().splitlines()) - 1  # one leaf per line after the header
    assert config["datasets"][dataset]["experiments"]["nc_etf_baseline"]["seeds"] == 1
    baseline = resolve_run(config, dataset, "nc_etf_baseline", method)
    published = resolve_run(config, dataset, "main", "ce_t1")
    assert baseline["model"] == {**published["model"], "hidden_units": num_classes}
    assert baseline["loss"] == published["loss"] == {"name": "ce", "label_smoothing": 0.0}
    assert baseline["train"] == published["train"] and baseline["train"]["collapse_every"] == 5


def test_in_memory_data_refuses_image_folder_only_options():
    config = tiny()
    methods(config)["ce_t1"]["train"] = {"augment": "random_resized_crop_flip"}
    with pytest.raises(ConfigError, match="methods.ce_t1: train.augment random_resized_crop_flip needs an image"):
        check_config(filled(config))
    methods(config)["ce_t1"]["train"] = {"num_workers": 2}
    with pytest.raises(ConfigError, match="methods.ce_t1: train.num_workers applies to image folders only"):
        check_config(filled(config))


def test_limits_cap_seeds_epochs_and_image_size_and_are_announced():
    config = filled(load("config/config.yaml"))
    config["limits"] = {"seeds": 2, "epochs": 1, "image_size": 32}
    capped = apply_limits(config)
    assert capped["datasets"]["cifar100"]["experiments"]["main"]["seeds"] == 2
    run = resolve_run(capped, "inaturalist19", "main", "ce_t1")
    assert run["train"]["epochs"] == 1 and run["train"]["image_size"] == 32
    assert run["pilot"].startswith("PILOT RUN (seeds<=2, epochs<=1, image_size<=32)")
    assert config["datasets"]["cifar100"]["experiments"]["main"]["seeds"] == 5  # the input is not modified
    assert resolve_run(filled(load("config/config.yaml")), "inaturalist19", "main", "ce_t1")["pilot"] is None


def test_limits_cap_collapse_seeds_with_the_seeds():
    """A pilot keeps the collapse seeds it still runs, rather than refusing the papers' config."""
    config = deep_merge(load("config/config.yaml"), load("config/pilot.yaml"))
    main = config["datasets"]["cifar100"]["experiments"]["main"]
    main["train"] = {**main["train"], "collapse_seeds": [0, 3]}
    main["methods"]["haframe"]["train"] = {"collapse_seeds": [4]}
    capped = apply_limits(filled(config))
    check_config(capped)
    assert resolve_run(capped, "cifar100", "main", "ce_t1")["train"]["collapse_seeds"] == [0]
    assert resolve_run(capped, "cifar100", "main", "haframe")["train"]["collapse_seeds"] == []


def test_method_train_block_overrides_the_experiment():
    config = tiny()
    methods(config)["haframe"]["train"] = {"epochs": 7, "speed": {"compile": True}}
    config["datasets"]["synthetic"]["experiments"]["main"]["train"]["momentum"] = 0.8
    raw, config = config, filled(config)
    assert "schedule" not in raw["datasets"]["synthetic"]["experiments"]["main"]["train"]  # the input stays as given
    spec = resolve_run(config, "synthetic", "main", "haframe")
    assert spec["train"]["epochs"] == 7 and spec["train"]["batch_size"] == 32
    assert spec["train"]["momentum"] == 0.8  # an override is not filled with defaults that would replace these
    assert resolve_execution(config, "synthetic", "main", "haframe")["speed"] == {
        "channels_last": False, "compile": True, "cuda_graph": False, "cudnn_benchmark": True}
    assert resolve_run(config, "synthetic", "main", "ce_t1")["train"]["epochs"] == 2


def test_execution_settings_stay_out_of_the_run_spec():
    """Speed and resources change how fast a run goes, not its result: the spec (fingerprint, Snakemake params)
    must not see them, so changing them neither reruns finished runs nor refuses to resume."""
    config = tiny()
    before = resolve_run(filled(config), "synthetic", "main", "ce_t1")
    config["datasets"]["synthetic"]["experiments"]["main"]["train"]["speed"] = {"compile": True, "cuda_graph": True}
    config["datasets"]["synthetic"]["experiments"]["main"]["train"]["resources"] = {"runtime": 5, "runs_per_gpu": 2}
    config = filled(config)
    assert resolve_run(config, "synthetic", "main", "ce_t1") == before
    execution = resolve_execution(config, "synthetic", "main", "ce_t1")
    assert execution["speed"] == {"channels_last": False, "compile": True, "cuda_graph": True, "cudnn_benchmark": True}
    assert execution["resources"]["runs_per_gpu"] == 2 and execution["resources"]["runtime"] == 5
    assert before["train"]["precision"] == "fp32"
    assert execution["logger"] == "none"
    config["logger"] = "tensorboard"  # the top-level default, then an experiment's own
    assert resolve_execution(config, "synthetic", "main", "ce_t1")["logger"] == "tensorboard"
    config["datasets"]["synthetic"]["experiments"]["main"]["train"]["logger"] = "none"
    assert resolve_execution(config, "synthetic", "main", "ce_t1")["logger"] == "none"
    assert resolve_run(config, "synthetic", "main", "ce_t1") == before


def test_tensorboard_logger_without_the_package_is_refused_by_name(monkeypatch):
    import featgeom.curves
    monkeypatch.setattr(featgeom.curves, "tensorboard_installed", lambda: False)
    config = tiny()
    config["datasets"]["synthetic"]["experiments"]["main"]["train"]["logger"] = "tensorboard"
    validate_schema(config, SCHEMA)
    config = filled(config)
    with pytest.raises(ConfigError, match=r"datasets\.synthetic\.experiments\.main\.methods\.\w+: train\.logger is "
                                          r"'tensorboard' but the tensorboard package is not installed: pip install "
                                          r"'featgeom\[tensorboard\]'"):
        check_config(config)
    with pytest.raises(RuntimeError, match="tensorboard package is not installed"):
        featgeom.curves.open_curves("tensorboard", "unused")


def test_runs_per_gpu_defaults_per_backbone_and_books_a_fitting_share():
    config = filled(load("config/config.yaml"))
    assert resolve_execution(config, "cifar100", "main", "haframe")["resources"]["runs_per_gpu"] == 3      # WRN-28-8
    assert resolve_execution(config, "cifar100", "longtail_r10", "ce")["resources"]["runs_per_gpu"] == 4   # ResNet-32
    assert resolve_execution(config, "inaturalist19", "main", "ce_t1")["resources"]["runs_per_gpu"] == 1   # ResNet-50
    for k in range(1, 11):
        assert k * gpu_percent(k) <= 100 < (k + 1) * gpu_percent(k)


def test_a_job_books_its_loader_workers_and_its_main_process():
    """num_workers is what runs: an image-folder job books those workers and the training process's core; in-memory
    data and loaders without workers book threads_per_run (the training process's torch threads)."""
    config = filled(load("config/config.yaml"))
    assert booked_threads(config, "inaturalist19", "main", "ce_t1") == 5 + MAIN_PROCESS_CORES
    assert booked_threads(config, "fgvc_aircraft", "main", "ce_t1") == 2 + MAIN_PROCESS_CORES
    assert booked_threads(config, "cifar100", "main", "haframe") == config["threads_per_run"]
    config["datasets"]["inaturalist19"]["experiments"]["main"]["train"] = {
        **config["datasets"]["inaturalist19"]["experiments"]["main"]["train"], "num_workers": 0}
    assert booked_threads(config, "inaturalist19", "main", "ce_t1") == config["threads_per_run"]


def test_run_packs_chunk_each_trained_methods_seeds():
    config = tiny()
    main = config["datasets"]["synthetic"]["experiments"]["main"]
    main["seeds"] = 5
    main["train"]["resources"] = {"runs_per_gpu": 1}
    assert not [p for p in run_packs(filled(config)) if p["experiment"] == "main"]  # one run per job
    main["train"]["resources"] = {"runs_per_gpu": 2}
    packs = [p for p in run_packs(filled(config)) if p["experiment"] == "main" and p["runs"][0]["method"] == "ce_t1"]
    assert [([r["seed"] for r in p["runs"]], p["workers"]) for p in packs] == [([0, 1], 2), ([2, 3], 2), ([4], 1)]
    assert [p["name"] for p in packs][::2] == ["train_synthetic_main_ce_t1_seeds0to1", "train_synthetic_main_ce_t1_seed4"]
    main["train"]["resources"] = {"runs_per_gpu": 4}  # near-equal packs: 3 + 2 seeds, not 4 + 1
    assert [len(p["runs"]) for p in run_packs(filled(config)) if p["experiment"] == "main"] == [3, 2, 3, 2]
    assert not any(r["method"].startswith("crm") for p in run_packs(filled(config)) for r in p["runs"])  # CRM does not train


def test_run_packs_span_methods_only_with_several_runs_per_process():
    config = tiny()
    main = config["datasets"]["synthetic"]["experiments"]["main"]
    main["seeds"] = 5
    main["train"]["resources"] = {"runs_per_gpu": 2, "runs_per_process": 2}  # packs of <= 4 of 10 runs: 4, 3, 3
    packs = [p for p in run_packs(filled(config)) if p["experiment"] == "main"]
    assert [[(r["method"], r["seed"]) for r in p["runs"]] for p in packs] == [
        [("ce_t1", 0), ("ce_t1", 1), ("ce_t1", 2), ("ce_t1", 3)],
        [("ce_t1", 4), ("haframe", 0), ("haframe", 1)],
        [("haframe", 2), ("haframe", 3), ("haframe", 4)]]
    assert [p["name"] for p in packs] == ["train_synthetic_main_ce_t1_seeds0to3",
                                          "train_synthetic_main_ce_t1_seed4_to_haframe_seed1",
                                          "train_synthetic_main_haframe_seeds2to4"]
    # the same settings, given per method in another order, are the same; other settings get packs of their own
    main["train"].pop("resources")
    methods(config)["ce_t1"]["train"] = {"resources": {"runs_per_gpu": 2, "runs_per_process": 2}}
    methods(config)["haframe"]["train"] = {"resources": {"runs_per_process": 2, "runs_per_gpu": 2}}
    assert len([p for p in run_packs(filled(config)) if p["experiment"] == "main"]) == 3
    methods(config)["haframe"]["train"]["resources"]["mem_mb"] = 4000
    assert {tuple(sorted({r["method"] for r in p["runs"]})) for p in run_packs(filled(config))
            if p["experiment"] == "main"} == {("ce_t1",), ("haframe",)}


def test_top_level_runs_per_process_is_every_experiments_default():
    config = tiny()
    config["runs_per_process"] = 50
    assert resolve_execution(filled(config), "synthetic", "main", "ce_t1")["resources"]["runs_per_process"] == 50
    assert [len(p["runs"]) for p in run_packs(filled(config))] == [4, 4, 2]  # each experiment: one pack
    methods(config)["ce_t1"]["train"] = {"resources": {"runs_per_process": 1}}
    assert resolve_execution(filled(config), "synthetic", "main", "ce_t1")["resources"]["runs_per_process"] == 1


def test_a_pack_job_finds_its_runs_and_their_files_by_its_rule_name():
    config = tiny()
    config["datasets"]["synthetic"]["experiments"]["main"]["train"]["resources"] = {"runs_per_gpu": 2}
    config = filled(config)
    pack = run_pack(config, "train_synthetic_main_haframe_seeds0to1")
    runs = pack_runs(config, pack)
    assert [(run["method"], run["seed"]) for run in runs] == [("haframe", 0), ("haframe", 1)]
    assert runs[1]["outputs"] == run_outputs("synthetic", "main", "haframe", 1, features=False)


def test_a_pack_shares_a_gpu_only_where_its_job_gets_one(monkeypatch):
    pack = {"workers": 3}
    monkeypatch.setattr(config_module, "has_nvidia_gpu", lambda: False)
    assert pack_workers(pack, {"mem_mb": 4000}) == 1  # on CPU: one process, the runs one after another
    assert pack_workers(pack, {"gres": "gpu:1"}) == pack_workers(pack, {"gpu": 1}) == 3  # a profile's GPU
    monkeypatch.setattr(config_module, "has_nvidia_gpu", lambda: True)
    assert pack_workers(pack, {}) == 3


# --- config files: syntax errors name file, line and column (tools/check_config.py) -----------------------

@pytest.mark.parametrize("text, where, problem", [
    ("datasets:\n  x:\n\tsource: 1\n", "line 3, column 1", r"found character '\\t'.*a tab in the indentation"),
    ("a: 1\n b: 2\n", "line 2, column 3", "mapping values are not allowed here"),
    ("a: [1, 2\nb: 3\n", "line 2, column 2", "expected ',' or ']'"),
])
def test_a_yaml_syntax_error_names_file_line_and_column(tmp_path, text, where, problem):
    from featgeom.config_files import load_config_file
    (tmp_path / "my.yaml").write_text(text)
    with pytest.raises(ValueError, match=rf"my\.yaml, {where}: YAML syntax error: {problem}"):
        load_config_file(tmp_path / "my.yaml")


def test_a_config_file_must_be_a_mapping(tmp_path):
    from featgeom.config_files import load_config_file
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match=r"list\.yaml: a config file must map keys at its top level, found list"):
        load_config_file(tmp_path / "list.yaml")
    with pytest.raises(ValueError, match=r"absent\.yaml: cannot be read as a config file \(FileNotFoundError"):
        load_config_file(tmp_path / "absent.yaml")


def test_check_config_tool_merges_files_as_snakemake_and_names_the_broken_one(tmp_path):
    import subprocess
    import sys
    repo = REPO
    tool = [sys.executable, str(repo / "tools" / "check_config.py")]
    pilot = subprocess.run([*tool, "config/config.yaml", "config/pilot.yaml"], cwd=repo, capture_output=True, text=True)
    papers = load("config/config.yaml")["datasets"]
    counts = f"{len(papers)} dataset(s), {sum(len(ds['experiments']) for ds in papers.values())} experiment(s)"
    assert pilot.returncode == 0 and counts in pilot.stdout, pilot.stderr
    (tmp_path / "typo.yaml").write_text("datasets:\n  synthetic:\n    experiments: {main: {seeds: two}}\n")
    typo = subprocess.run([*tool, "config/demo.yaml", str(tmp_path / "typo.yaml")], cwd=repo, capture_output=True,
                          text=True)
    assert typo.returncode == 1 and "datasets.synthetic.experiments.main.seeds" in typo.stderr
    (tmp_path / "broken.yaml").write_text("limits:\n  seeds: 1\n epochs: 1\n")
    broken = subprocess.run([*tool, "config/config.yaml", str(tmp_path / "broken.yaml")], cwd=repo,
                            capture_output=True, text=True)
    assert broken.returncode == 1 and f"{tmp_path / 'broken.yaml'}, line 3, column" in broken.stderr


# --- defaults: written once, from the schema and featgeom.config, into every resolved spec ---------------------

def test_every_default_is_in_the_resolved_spec():
    """tiny.yaml gives no momentum, weight decay, schedule...: the run spec (hence provenance.json) holds them."""
    spec = resolve_run(filled(tiny()), "synthetic", "main", "ce_t1")
    train_defaults = {key: value["default"] for key, value in SCHEMA["$defs"]["train"]["properties"].items()
                      if "default" in value and key not in ("resources", "speed")}
    assert train_defaults.keys() >= {"momentum", "weight_decay", "eval_batch_size", "schedule", "precision"}
    assert {key: spec["train"][key] for key in train_defaults} == {**train_defaults, "eval_batch_size": 256,
                                                                     "collapse_every": 1}  # tiny.yaml's own
    assert spec["train"]["augment"] == "crop_flip" and "num_workers" not in spec["train"]
    assert spec["source"]["noise"] == 24.0 and spec["loss"] == {"name": "ce", "label_smoothing": 0.0}


def test_image_folder_runs_get_their_recipes_defaults():
    config = tiny()
    config["datasets"]["synthetic"]["source"] = {"kind": "image_folder", "root": "x", "recipe": "inat"}
    train = resolve_run(filled(config), "synthetic", "main", "ce_t1")["train"]
    assert (train["augment"], train["image_size"], train["num_workers"]) == ("random_resized_crop_flip", 224, 4)


def test_loss_defaults_are_written_only_into_their_loss():
    config = tiny()
    methods(config, "coarse_fine")["hinge_ce"]["loss"] = {"name": "hinge_ce", "mode": "cone", "cone_angle_deg": 30}
    config = filled(config)
    assert methods(config, "coarse_fine")["hinge_ce"]["loss"] == {"name": "hinge_ce", "mode": "cone",
                                                                  "cone_angle_deg": 30}
    assert methods(config)["haframe"]["loss"] == {"name": "haframe", "alpha": 0.4}
    check_config(config)
    config = filled(tiny())
    assert methods(config, "coarse_fine")["hinge_ce"]["loss"] == {"name": "hinge_ce", "mode": "hinge", "tau": 0.5}


def test_synthetic_defaults_are_the_generators():
    import inspect

    from featgeom.data.synthetic import make_synthetic
    source = filled({"datasets": {"s": {"source": {"kind": "synthetic"}}}})["datasets"]["s"]["source"]
    generator = {name: p.default for name, p in inspect.signature(make_synthetic).parameters.items()}
    assert {k: v for k, v in source.items() if k != "kind"} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in generator.items() if k != "max_shift"}


# --- dataset kinds: one registry --------------------------------------------------------------------------------

def test_the_schema_lists_exactly_the_registered_dataset_kinds():
    from featgeom.dataset_kinds import DATASET_KINDS
    assert SCHEMA["$defs"]["source"]["properties"]["kind"]["enum"] == list(DATASET_KINDS)


def test_every_dataset_kind_is_prepared_by_a_data_rule():
    from featgeom.dataset_kinds import DATASET_KINDS
    rules = set(re.findall(r"^rule (\w+):", (REPO / "workflow/rules/data.smk").read_text(), flags=re.MULTILINE))
    assert {kind.prepare_rule for kind in DATASET_KINDS.values()} <= rules


def test_each_preparation_module_takes_the_kinds_its_rule_prepares():
    from featgeom.data import cifar, prepare_raw
    from featgeom.dataset_kinds import DATASET_KINDS
    prepared_by = {rule: {name for name, kind in DATASET_KINDS.items() if kind.prepare_rule == rule}
                   for rule in ("prepare_cifar", "prepare_stretched_images")}
    assert set(cifar.LOADERS) == prepared_by["prepare_cifar"]
    assert set(prepare_raw.RAW_KINDS) == prepared_by["prepare_stretched_images"]
