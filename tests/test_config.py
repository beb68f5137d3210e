"""Config checks beyond the schema: every bad cross reference is named by its key path."""
import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from featgeom.config import ConfigError, check_config, resolve_run

REPO = Path(__file__).resolve().parent.parent
SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")


def load(name):
    return yaml.safe_load((REPO / name).read_text())


@pytest.mark.parametrize("name", ["config/config.yaml", "config/demo.yaml", "tests/data/tiny.yaml"])
def test_shipped_configs_are_valid(name):
    config = load(name)
    validate(config, SCHEMA)
    check_config(config)


def tiny():
    config = load("tests/data/tiny.yaml")
    validate(config, SCHEMA)
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
])
def test_bad_cross_references_name_their_key(edit, message):
    config = tiny()
    edit(config)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_config(config)


def test_schema_rejects_unknown_keys_and_bad_values():
    config = tiny()
    config["datasets"]["synthetic"]["experiments"]["main"]["train"]["epoch"] = 3
    with pytest.raises(WorkflowError, match="epoch"):
        validate(config, SCHEMA)
    config = tiny()
    methods(config)["ce_t1"]["loss"]["name"] = "focal"
    with pytest.raises(WorkflowError, match="focal"):
        validate(config, SCHEMA)


def test_method_train_block_overrides_the_experiment():
    config = tiny()
    methods(config)["haframe"]["train"] = {"epochs": 7}
    spec = resolve_run(config, "synthetic", "main", "haframe")
    assert spec["train"]["epochs"] == 7 and spec["train"]["batch_size"] == 32
    assert resolve_run(config, "synthetic", "main", "ce_t1")["train"]["epochs"] == 2
