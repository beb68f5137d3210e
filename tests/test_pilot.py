"""The papers' whole DAG (config/config.yaml, unchanged) run end to end in pilot mode on fixtures of
every dataset in its real on-disk format (tools/make_fixtures.py): what CI runs to keep the product honest."""
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import featgeom.config as fg
from featgeom import registry
from featgeom.evaluation import load_scores, run_metrics
from featgeom.hierarchy import read_distance_csv

REPO = Path(__file__).resolve().parent.parent
PAPERS = yaml.safe_load((REPO / "config/config.yaml").read_text())
PILOT_ARGS = ["--configfile", str(REPO / "config/config.yaml"), str(REPO / "config/pilot.yaml")]
pytestmark = pytest.mark.slow


def snakemake(workdir, *args):
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *PILOT_ARGS,
               "--directory", str(workdir), *args]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture(scope="module")
def pilot(dataset_fixtures, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pilot")
    shutil.copytree(dataset_fixtures / "data", workdir / "data")  # the run extracts archives next to them
    result = snakemake(workdir, "--cores", "2")
    if result.returncode != 0:
        pytest.fail(f"pilot run failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return workdir


def config():
    capped = fg.deep_merge(PAPERS, yaml.safe_load((REPO / "config/pilot.yaml").read_text()))
    return fg.apply_limits(capped)


def test_pilot_writes_every_table_and_figure_of_the_papers(pilot):
    cfg = config()
    for dataset, ds in cfg["datasets"].items():
        for table in registry.names_for(registry.TABLES, ds):
            for ext in ("csv", "md", "tex"):
                assert (pilot / f"results/{dataset}/tables/{table}.{ext}").stat().st_size > 0
        for figure in registry.names_for(registry.FIGURES, ds):
            assert (pilot / f"results/{dataset}/figures/{figure}.png").read_bytes()[:4] == b"\x89PNG"
    assert "Nothing to be done" in snakemake(pilot, "-n").stdout


def test_cifar20_pretraining_trains_the_20_official_superclasses(pilot):
    levels = json.loads((pilot / "results/cifar100/hierarchy/levels.json").read_text())
    assert levels["coarse"]["depth"] == 4 and len(levels["coarse"]["names"]) == 20
    assert np.bincount(levels["coarse"]["labels"]).tolist() == [5] * 20
    with np.load(pilot / "results/cifar100/data/arrays.npz") as arrays:
        official = [str(n) for n in arrays["coarse_label_names"]]
        names_by_index = {f"L4-{i}": name for i, name in enumerate(official)}
    assert {names_by_index[n] for n in levels["coarse"]["names"]} == set(official)
    assert "aquatic_mammals" in official and "vehicles_2" in official
    for method in PAPERS["datasets"]["cifar100"]["experiments"]["coarse_fine"]["methods"]:
        scores, labels = load_scores(pilot / f"results/cifar100/coarse_fine/{method}/seed0/test_logits.npz")
        assert scores.shape[1] == 20 and set(labels.tolist()) == set(range(20))


def test_every_table_lists_its_experiments_methods(pilot):
    cfg = config()
    for dataset, ds in cfg["datasets"].items():
        for table in [t for t in registry.names_for(registry.TABLES, ds) if t in registry.RUN_TABLES]:
            rows = pd.read_csv(pilot / f"results/{dataset}/tables/{table}.csv")
            for experiment in fg.experiments_of_table(cfg, dataset, table):
                spec = ds["experiments"][experiment]
                expected = fg.trained_methods(spec) if table == "collapse" else list(spec["methods"])
                assert sorted(set(rows[rows.experiment == experiment]["method"])) == sorted(expected), (dataset, table)
            assert (rows["n_seeds"] == 1).all()


def _same(a, b):
    return (a is None and math.isnan(b)) or (isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=1e-12))


def test_every_runs_metrics_equal_a_recomputation_from_its_scores(pilot):
    cfg = config()
    checked = 0
    for dataset, experiment, exp in fg.experiments(cfg):
        _, distances = read_distance_csv(pilot / f"results/{dataset}/hierarchy/distances.csv")
        counts = None
        if exp["kind"] == "longtail":
            counts = json.loads((pilot / f"results/{dataset}/data/{experiment}_train_counts.json").read_text())["counts"]
        for method in exp["methods"]:
            for seed in range(exp["seeds"]):
                run = pilot / f"results/{dataset}/{experiment}/{method}/seed{seed}"
                scores, labels = load_scores(run / "test_logits.npz")
                expected = run_metrics(scores, labels, distances, exp.get("label_level", "fine"),
                                       None if counts is None else np.asarray(counts), exp.get("longtail"))
                saved = json.loads((run / "metrics.json").read_text())
                assert saved.keys() == expected.keys(), run
                assert all(_same(saved[k], float(v)) for k, v in expected.items()), run
                checked += 1
    assert checked == sum(len(e["methods"]) * e["seeds"] for _, _, e in fg.experiments(cfg))


def test_every_output_says_it_is_a_pilot(pilot):
    for table in pilot.glob("results/*/tables/*.md"):
        assert table.read_text().startswith("> **PILOT RUN"), table
    for table in pilot.glob("results/*/tables/*.tex"):
        assert "PILOT RUN" in table.read_text().splitlines()[0], table
    provenance = json.loads((pilot / "results/tiered_imagenet/main/haframe/seed0/provenance.json").read_text())
    assert provenance["pilot"].startswith("PILOT RUN")
    assert provenance["config"]["train"]["epochs"] == 1 and provenance["config"]["train"]["image_size"] == 16
    s_min = json.loads((pilot / "results/tiered_imagenet/hierarchy/haframe_s_min_gamma3.0.json").read_text())
    assert provenance["applied"]["haframe_s_min"] == s_min["s_min"]
    assert "RandomResizedCrop(size=(16, 16)" in provenance["applied"]["transforms"]["train"]
