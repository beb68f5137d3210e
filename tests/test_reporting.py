"""Run-level evaluation and the per-dataset tables built from run files."""
import numpy as np
import pytest

from featgeom.evaluation import crm_test_scores, load_scores, run_metrics
from featgeom.io import read_json, write_json, write_npz
from featgeom.lineage import training_code_hash
from featgeom.reporting import build_table
from featgeom.tables import latex, markdown

D = np.array([[0, 1, 2], [1, 0, 2], [2, 2, 0]])


def test_crm_prefers_the_class_with_least_expected_distance():
    # risk(0) = 3*.33 + 3*.33 = 1.98 but risk(2) = risk(3) = 3*.34 + 1*.33 = 1.35: CRM leaves argmax p.
    D4 = np.array([[0, 1, 3, 3], [1, 0, 3, 3], [3, 3, 0, 1], [3, 3, 1, 0]])
    p = np.array([[0.34, 0.0, 0.33, 0.33]]) + 1e-12
    scores = crm_test_scores(np.log(p), D4)
    assert np.argmax(p) == 0 and np.argmax(scores) in (2, 3)  # the two siblings together outweigh class 0
    np.testing.assert_allclose(-scores[0], p[0] / p.sum() @ D4, rtol=1e-6)


def test_crm_scores_stay_float64_through_the_saved_file(tmp_path):
    # Risks 3e-8 apart (float32 would tie them and rank class 0 first): the file keeps float64, so class 1 wins.
    logits = np.array([[0.0, 2.0**-23, -0.5]], dtype=np.float32)
    write_npz(tmp_path / "test_logits.npz", scores=crm_test_scores(logits, D), labels=np.array([1]))
    scores, labels = load_scores(tmp_path / "test_logits.npz")
    assert scores.dtype == np.float64
    assert run_metrics(scores, labels, D)["top1"] == 100.0


def test_metrics_json_keys_and_longtail_groups():
    scores = np.eye(3)[[0, 1, 2, 0]] + 0.0
    labels = np.array([0, 1, 2, 1])
    result = run_metrics(scores, labels, D, train_counts=np.array([200, 50, 5]),
                         longtail={"many_above": 100, "few_below": 20})
    assert result["top1"] == pytest.approx(75.0) and result["mistake_severity"] == pytest.approx(1.0)
    assert result["many_shot_top1"] == 100 and result["medium_shot_top1"] == 50 and result["few_shot_top1"] == 100
    assert run_metrics(scores, labels, D, label_level="coarse") == {"top1": 75.0, "n_test": 4}


def test_bad_logits_file_is_named(tmp_path):
    write_npz(tmp_path / "test_logits.npz", scores=np.zeros((3, 2), np.float32), labels=np.array([0, 1, 5]))
    with pytest.raises(ValueError, match="test_logits.npz: labels outside 0..1"):
        load_scores(tmp_path / "test_logits.npz")


def test_nan_is_written_as_null(tmp_path):
    write_json(tmp_path / "m.json", {"mistake_severity": float("nan"), "x": np.float32("nan")})
    assert read_json(tmp_path / "m.json") == {"mistake_severity": None, "x": None}


def test_main_table_from_run_files(tmp_path):
    experiments = {"main": {"methods": {"ce_t1": {"model_type": "I", "loss": {"name": "ce"}},
                                        "haframe": {"model_type": "II", "loss": {"name": "haframe", "alpha": 0.4}}}}}
    paths = []
    for method, top1 in (("ce_t1", [70.0, 72.0, 74.0]), ("haframe", [75.0, 75.0, 78.0])):
        for seed, value in enumerate(top1):
            path = tmp_path / f"results/ds/main/{method}/seed{seed}/metrics.json"
            write_json(path, {"top1": value, "mistake_severity": 2.0, "n_test": 10})
            paths.append(str(path))
    summary, document = build_table("main", {"metrics": paths}, experiments, ddof=0)
    row = summary[(summary.method == "ce_t1") & (summary.metric == "top1")].iloc[0]
    assert row["mean"] == pytest.approx(72.0)
    assert row["ci95"] == pytest.approx(4.302653 * np.std([70, 72, 74]) / np.sqrt(3), rel=1e-5)
    assert set(summary["metric"]) == {"top1", "mistake_severity"}
    assert "| I | ce_t1 | 72.00 ± " in markdown(document) and "\\toprule" in latex(document)
    assert "Losses: ce_t1: ce; haframe: haframe (alpha=0.4)" in markdown(document)


def _main_runs(tmp_path, metrics):
    paths = []
    for seed in range(2):
        path = tmp_path / f"results/ds/main/ce_t1/seed{seed}/metrics.json"
        write_json(path, {**metrics, "n_test": 10})
        paths.append(str(path))
    return {"metrics": paths}, {"main": {"methods": {"ce_t1": {"model_type": "I", "loss": {"name": "ce"}}}}}


def test_main_table_names_hierdist_at_the_k_computed(tmp_path):
    # A 12-class dataset has HierDist@12 where the paper's datasets have @20: the header says so.
    inputs, experiments = _main_runs(tmp_path, {"top1": 50.0, "hierdist@1": 1.0, "hierdist@5": 1.5, "hierdist@12": 2.0})
    summary, document = build_table("main", inputs, experiments)
    assert "| Model | Method | Top-1 | HierDist@1 | HierDist@5 | HierDist@12 |" in markdown(document)
    assert "HierDist@20" not in markdown(document) and "hierdist@12" in set(summary["metric"])


def test_pilot_banner_heads_every_rendering(tmp_path):
    inputs, experiments = _main_runs(tmp_path, {"top1": 50.0})
    _, pilot = build_table("main", inputs, experiments, banner="PILOT RUN (epochs<=1)")
    assert markdown(pilot).startswith("> **PILOT RUN (epochs<=1)**") and "[PILOT RUN: not a result]" in markdown(pilot)
    assert "PILOT RUN (epochs<=1)" in latex(pilot).splitlines()[0]
    _, plain = build_table("main", inputs, experiments)
    assert "PILOT" not in markdown(plain)


def test_a_table_names_the_runs_made_by_other_training_code(tmp_path):
    inputs, experiments = _main_runs(tmp_path, {"top1": 50.0})
    provenance = []
    for seed, code in enumerate([training_code_hash(), "0123456789abcdef"]):
        path = tmp_path / f"results/ds/main/ce_t1/seed{seed}/provenance.json"
        write_json(path, {"made_of": {"code": code}})
        provenance.append(str(path))
    _, document = build_table("main", {**inputs, "provenance": provenance}, experiments)
    assert f"Made by other training code than the current one ({training_code_hash()}): " \
           "main/ce_t1/seed1 (code 0123456789abcdef)" in markdown(document).splitlines()[0]
    assert "seed0" not in markdown(document).splitlines()[0] and "main/ce\\_t1/seed1" in latex(document)
    _, current = build_table("main", {**inputs, "provenance": provenance[:1]}, experiments)
    assert "other training code" not in markdown(current)

