"""featgeom.registry is the one list of tables and figures: the rules make exactly its outputs, the schema's
experiment kinds and figure keys are the ones its outputs need, and the lists kept beside the builders (metrics and
captions per run table) name its run tables."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from featgeom import registry, reporting

REPO = Path(__file__).resolve().parent.parent
OUTPUTS = {**{f"table {name}": output for name, output in registry.TABLES.items()},
           **{f"figure {name}": output for name, output in registry.FIGURES.items()}}


def needs(prefix: str) -> set[str]:
    """What the outputs need of a dataset, the part after `prefix` of those that start with it."""
    return {need.removeprefix(prefix) for output in OUTPUTS.values() for need in output.needs
            if need.startswith(prefix)}


def test_every_builder_is_a_function():
    for name, output in OUTPUTS.items():
        assert callable(output.function()), name


def test_the_schemas_kinds_and_figure_keys_are_the_ones_the_registry_needs():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["$defs"]
    kinds = set(schema["experiment"]["properties"]["kind"]["enum"])
    assert needs("kind:") == kinds == set(registry.TABLE_OF_KIND)  # every experiment kind has its table
    figure_keys = schema["dataset"]["properties"]["figures"]["properties"]
    assert needs("figures.") == {key for key in figure_keys if key.endswith("_experiment")}
    assert needs("").issubset({"published"} | {f"kind:{k}" for k in kinds} | {f"figures.{k}" for k in figure_keys})


def test_the_run_tables_metrics_and_captions_name_the_registrys_run_tables():
    assert list(reporting.TABLE_METRICS) == list(reporting.CAPTIONS) == registry.RUN_TABLES
    report_caption = (REPO / "workflow/report/table.rst").read_text()
    assert re.findall(r'^  "(\w+)":', report_caption, flags=re.M) == registry.RUN_TABLES


@pytest.mark.slow  # resolves the DAG (a few seconds)
def test_the_rules_make_every_table_and_figure_of_the_registry(tmp_path):
    tiny = yaml.safe_load((REPO / "tests/data/tiny.yaml").read_text())["datasets"]["synthetic"]
    assert registry.names_for(registry.TABLES, tiny) == list(registry.TABLES)  # tiny asks for every output
    assert registry.names_for(registry.FIGURES, tiny) == list(registry.FIGURES)
    summary = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--summary",
                              "--configfile", str(REPO / "tests/data/tiny.yaml"), "--directory", str(tmp_path)],
                             capture_output=True, text=True, check=True).stdout
    made = set(re.findall(r"^results/synthetic/(tables|figures)/(\w+)\.\w+\s", summary, flags=re.M))
    assert {name for kind, name in made if kind == "tables"} == set(registry.TABLES)
    assert {name for kind, name in made if kind == "figures"} == set(registry.FIGURES)
