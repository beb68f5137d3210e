"""The Snakemake workflow: lint, dry-run of the papers' DAG, and the whole demo DAG on tiny data."""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from featgeom.registry import FIGURES, TABLES
from featgeom.run_guard import hold_run_folders

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
TINY = ("--configfile", str(REPO / "tests/data/tiny.yaml"))  # tiny_run (conftest.py) is this config's whole DAG
pytestmark = pytest.mark.slow  # every test runs Snakemake


def snakemake(*args, cwd=REPO, check=True):
    result = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def test_lint_is_clean():
    result = snakemake("--lint", "--configfile", "config/demo.yaml", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


@pytest.mark.parametrize("config_args", [["--configfile", str(REPO / "config/config.yaml")],
                                         ["--config", "ci_ddof=1"]])  # default config file + one override
def test_papers_dag_resolves_without_datasets(tmp_path, config_args):
    result = snakemake("-n", "--quiet", "rules", *config_args, "--directory", str(tmp_path))
    out = result.stdout + result.stderr
    for rule in ("train", "crm", "score_cifar100_main", "probe_cifar100_coarse_fine", "table", "tsne", "muller",
                 "nc_curves", "prepare_cifar", "prepare_stretched_images", "make_longtail", "hierarchy",
                 "prepare_fgvc_aircraft", "fetch_imagenet_weights", "haframe_s_min",
                 "train_cifar100_main_haframe_seeds0to2", "train_cifar100_coarse_fine_ce_seeds3to4"):  # packs
        assert f"\n{rule} " in out, f"rule {rule} missing from the papers' DAG:\n{out}"


def test_bad_config_is_rejected_with_its_key(tmp_path):
    bad = (REPO / "tests/data/tiny.yaml").read_text().replace("crm_of: ce_t1", "crm_of: nonexistent")
    (tmp_path / "bad.yaml").write_text(bad)
    result = snakemake("-n", "--configfile", str(tmp_path / "bad.yaml"), "--directory", str(tmp_path), check=False)
    assert result.returncode != 0
    assert "methods.crm_t1.crm_of = 'nonexistent'" in result.stdout + result.stderr


@pytest.fixture
def finished(tiny_run, tmp_path):
    """A copy of the finished tiny project (results, logs, Snakemake's metadata) to change and rerun."""
    work = tmp_path / "work"
    shutil.copytree(tiny_run.parent.parent, work, symlinks=True)
    return work


def test_demo_dag_writes_the_output_contract(tiny_run):
    run = tiny_run / "main" / "haframe" / "seed0"
    for name in ("test_logits.npz", "metrics.json", "provenance.json", "collapse.json", "checkpoint_best.pt"):
        assert (run / name).stat().st_size > 0, name
    assert (tiny_run / "main" / "crm_t1" / "seed1" / "metrics.json").exists()
    distances = pd.read_csv(tiny_run / "hierarchy" / "distances.csv", index_col=0)
    assert distances.shape == (12, 12) and distances.values.max() == 3


def test_demo_tables_have_every_method_and_metric(tiny_run):
    main = pd.read_csv(tiny_run / "tables" / "main.csv")
    assert list(main.columns) == ["experiment", "model_type", "method", "metric", "mean", "ci95", "n_seeds"]
    assert set(main["method"]) == {"ce_t1", "crm_t1", "haframe"}
    # 12 classes: HierDist@20 is computed at k = 12 and named so
    assert set(main["metric"]) == {"top1", "mistake_severity", "hierdist@1", "hierdist@5", "hierdist@12"}
    assert (main["n_seeds"] == 2).all()
    assert "±" in (tiny_run / "tables" / "main.md").read_text()
    probe = pd.read_csv(tiny_run / "tables" / "coarse_fine.csv")
    assert {"coarse_top1", "probe_top1", "probe_mistake_severity", "nc1"} <= set(probe["metric"])
    longtail = pd.read_csv(tiny_run / "tables" / "longtail.csv")
    assert {"many_shot_top1", "few_shot_top1"} <= set(longtail["metric"])
    assert (tiny_run / "tables" / "collapse.tex").read_text().startswith("\\begin{table}")
    provenance = json.loads((tiny_run / "tables" / "main.provenance.json").read_text())
    assert provenance["git_sha"] and provenance["packages"]["numpy"] and provenance["config"]["rule"] == "table"


def test_demo_figures_are_written(tiny_run):
    for name in FIGURES:
        png = tiny_run / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tiny_run / "figures" / f"{name}.pdf").stat().st_size > 1000


def test_tiny_compares_with_the_papers_numbers_it_names(tiny_run):
    comparison = pd.read_csv(tiny_run / "tables" / "paper_vs_ours.csv")
    ours = comparison[comparison["method"].isin(["ce_t1", "crm_t1", "haframe"])]
    top1 = ours[ours.metric == "top1"]
    assert set(top1["status"]) == {"compared"} and top1["ours_mean"].notna().all() and len(top1) == 3
    assert "(published as cifar100:" in (tiny_run / "tables" / "paper_vs_ours.md").read_text()
    ablation = pd.read_csv(tiny_run / "tables" / "ablation.csv")
    assert list(dict.fromkeys(ablation["method"])) == ["ce_t1", "ce_t2", "haframe_noloss", "haframe"]
    assert set(ablation[ablation.method == "ce_t2"]["status"]) == {"not run"}
    assert (tiny_run / "figures" / "paper_vs_ours.png").read_bytes()[:4] == b"\x89PNG"


# tiny.yaml asks for every table and figure of the registry
REPORT_TABLES = [f"results/synthetic/tables/{t}.html" for t in TABLES]
REPORT_FIGURES = [f"results/synthetic/figures/{f}.png" for f in FIGURES]


def _report_variable(page, name):
    """A JSON object the report page assigns in `var <name> = {...};`."""
    return json.loads(re.search(rf"var {name} = (\{{.*?\}});\n", page).group(1))


def test_report_holds_every_table_and_figure_with_captions(tiny_run, tmp_path):
    report = tmp_path / "report.html"
    snakemake("--report", str(report), *TINY, "--directory", str(tiny_run.parent.parent))
    page = report.read_text()
    categories = _report_variable(page, "categories")
    assert sorted(categories["synthetic"]["tables"]) == sorted(REPORT_TABLES)
    assert sorted(categories["synthetic"]["figures"]) == sorted(REPORT_FIGURES)
    results = _report_variable(page, "results")
    for path in REPORT_TABLES:
        assert "95% CI" in results[path]["caption"] and results[path]["mime_type"] == "text/html", path
    assert all(results[path]["caption"] for path in REPORT_FIGURES)
    embedded = results["results/synthetic/tables/paper_vs_ours.html"]["data_uri"].split("base64,")[1]
    assert ">no published number</td>" in base64.b64decode(embedded).decode()  # a cell of its own


def _edit_and_run(path, edit, workdir):
    """Apply `edit` to a file of a finished project and run the workflow."""
    path.write_text(edit(path.read_text()))
    return snakemake("--cores", "1", *TINY, "--directory", str(workdir), check=False)


def _asymmetric(text):
    lines = text.splitlines()
    cells = lines[1].split(",")
    cells[2] = "3"  # row 0, column 1: siblings made distance 3 one way only
    return "\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n"


def _duplicate_leaf(text):
    lines = text.splitlines()
    return "\n".join(lines + [lines[-1]]) + "\n"


@pytest.mark.parametrize("name, edit, message", [
    ("hierarchy/distances.csv", _asymmetric, "not symmetric"),
    ("data/paths.csv", _duplicate_leaf, "duplicate leaf"),
])
def test_bad_hierarchy_edit_stops_before_any_job_and_deletes_nothing(finished, name, edit, message):
    results = finished / "results" / "synthetic"
    files = sorted(p for p in results.rglob("*") if p.is_file())
    result = _edit_and_run(results / name, edit, finished)
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert str(results / name) in result.stdout + result.stderr or name in result.stdout + result.stderr
    assert "Building DAG" not in result.stdout + result.stderr  # stopped at parse time, before any job
    assert sorted(p for p in results.rglob("*") if p.is_file()) == files


def test_rerun_has_nothing_to_do(tiny_run):
    workdir = tiny_run.parent.parent
    result = snakemake("-n", *TINY, "--directory", str(workdir))
    assert "Nothing to be done" in result.stdout + result.stderr


def last_attempt(work, experiment, method, seed) -> str:
    """The last attempt's part of a run's train.log (featgeom.rule_io.attempt_log)."""
    text = (work / "results" / "synthetic" / experiment / method / f"seed{seed}" / "train.log").read_text()
    return re.split(r"^==== attempt \d+ started ", text, flags=re.M)[-1]


def trained_epochs(attempt: str) -> int:
    return len(re.findall(r"^epoch \d+/\d+ ", attempt, flags=re.M))


def test_a_deleted_run_folder_is_retrained_alone_and_the_tables_follow(finished):
    """The README's recovery: delete the folder, run snakemake. Its pack's other run is only evaluated again."""
    shutil.rmtree(finished / "results/synthetic/main/haframe/seed1")
    table = finished / "results/synthetic/tables/main.csv"
    before = table.stat().st_mtime_ns
    snakemake("--cores", "2", *TINY, "--directory", str(finished))
    assert trained_epochs(last_attempt(finished, "main", "haframe", 1)) == 2
    sibling = last_attempt(finished, "main", "haframe", 0)
    assert "resumed from" in sibling and trained_epochs(sibling) == 0
    assert table.stat().st_mtime_ns > before
    assert "Nothing to be done" in snakemake("-n", *TINY, "--directory", str(finished)).stdout


def test_forcing_a_table_trains_its_runs_again(finished):
    snakemake("--cores", "2", *TINY, "--directory", str(finished), "-F", "results/synthetic/tables/main.csv")
    for method in ("ce_t1", "haframe"):
        for seed in (0, 1):
            attempt = last_attempt(finished, "main", method, seed)
            assert "snakemake forced this run to rerun" in attempt and trained_epochs(attempt) == 2, (method, seed)


def test_a_run_folder_being_trained_stops_snakemake_before_any_job(finished):
    """A second Snakemake (after `--unlock` of a live one, or a SLURM job still running) must not train a run
    folder another process holds, nor delete the outputs of its pack first."""
    run = finished / "results/synthetic/main/haframe/seed0"
    (run / "test_logits.npz").unlink()
    files = sorted(p for p in finished.rglob("*") if p.is_file() and ".snakemake" not in p.parts)
    with hold_run_folders([run]):
        result = snakemake("--cores", "2", *TINY, "--directory", str(finished), check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"being trained by another process: results/synthetic/main/haframe/seed0 by pid {os.getpid()} on " in out
    assert sorted(p for p in finished.rglob("*") if p.is_file() and ".snakemake" not in p.parts) == files


def test_a_second_snakemake_on_a_directory_is_told_that_another_holds_it(tmp_path):
    from test_run_guard import hold_directory
    holder = hold_directory(tmp_path)
    try:
        refused = snakemake("--cores", "1", "--configfile", "config/demo.yaml", "--directory", str(tmp_path),
                            check=False)
        dry = snakemake("-n", "--configfile", "config/demo.yaml", "--directory", str(tmp_path))
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode != 0 and not (tmp_path / "results").exists()
    busy = f"another Snakemake is running in this directory ({tmp_path}): pid {holder.pid} on "
    assert busy in refused.stdout + refused.stderr
    assert busy in dry.stderr and "this dry run sees its running jobs' outputs as incomplete" in dry.stderr


def test_a_dataset_without_published_numbers_gets_no_paper_comparison(tmp_path):
    out = snakemake("-n", "--quiet", "rules", "--configfile", "config/demo.yaml", "--directory", str(tmp_path)).stdout
    assert "\ntable " in out and "paper_vs_ours" not in out and "ablation" not in out


def _dry_run_reasons(out):
    """{(rule, wildcards): reason} of every job a dry run lists."""
    jobs = {}
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:\n)", out):
        head = re.match(r"\s*(?:local)?rule (\w+):\n", block)
        if head:
            fields = dict(re.findall(r"^\s+(wildcards|reason): (.*)$", block, flags=re.MULTILINE))
            jobs[head[1], fields.get("wildcards", "")] = fields["reason"]
    return jobs


def test_dry_run_with_params_trigger_names_the_jobs_whose_params_changed(tiny_run, tmp_path):
    # README "Partial reruns": `snakemake -n --rerun-triggers params` names them, and nothing on an unchanged project
    workdir, tiny = tiny_run.parent.parent, REPO / "tests/data/tiny.yaml"
    unchanged = snakemake("-n", "--rerun-triggers", "params", "--configfile", str(tiny), "--directory", str(workdir))
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr
    # ... and not `--list-changes params`: Snakemake 9.27 prints an output of every job with params metadata,
    # changed or not (persistence.ParamsChange keeps its file even when empty; DAG.get_outputs_with_changes
    # lists the files of every job's result without asking whether it is a change)
    listed = snakemake("--list-changes", "params", "--configfile", str(tiny), "--directory", str(workdir)).stdout
    assert "results/synthetic/main/haframe/" in listed, "Snakemake fixed --list-changes params: README may use it"

    config = yaml.safe_load(tiny.read_text())
    config["datasets"]["synthetic"]["experiments"]["main"]["methods"]["haframe"]["loss"]["alpha"] = 0.5
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(config, sort_keys=False))  # key order kept (test_slurm)
    changed = snakemake("-n", "--rerun-triggers", "params", "--configfile", str(tmp_path / "changed.yaml"),
                        "--directory", str(workdir)).stdout
    jobs = _dry_run_reasons(changed)
    assert {rule for (rule, _), reason in jobs.items() if reason.startswith("Params have changed")} == {
        "train_synthetic_main_haframe_seeds0to1"}  # the pack job training haframe's two seeds
    others = {job: reason for job, reason in jobs.items() if not reason.startswith("Params have changed")}
    assert all(reason.startswith("Input files updated by another job") for reason in others.values()), others
    assert {rule for rule, _ in others} == {"score_synthetic_main", "table", "nc_curves", "paper_vs_ours", "ablation",
                                            "all"}
    assert all("method=" not in w or "method=haframe" in w for _, w in others)


def test_a_failing_run_of_a_pack_costs_its_siblings_no_training(finished):
    """Snakemake removes every output of a failed pack job; the next run brings the finished runs back by
    evaluating their kept final checkpoints again, and leaves no folder with metrics but no logits."""
    runs = finished / "results/synthetic/main/haframe"
    (runs / "seed0" / "last_checkpoint.pt").write_bytes(b"not a checkpoint")  # seed 0 fails when the pack reruns
    (runs / "seed1" / "test_logits.npz").unlink()
    failed = snakemake("--cores", "2", *TINY, "--directory", str(finished), check=False)
    assert failed.returncode != 0 and "last_checkpoint.pt cannot be read" in (runs / "seed0" / "train.log").read_text()
    (runs / "seed0" / "last_checkpoint.pt").unlink()  # what the message says to do
    snakemake("--cores", "2", *TINY, "--directory", str(finished))
    assert trained_epochs(last_attempt(finished, "main", "haframe", 0)) == 2
    sibling = last_attempt(finished, "main", "haframe", 1)
    assert "resumed from" in sibling and trained_epochs(sibling) == 0
    for run in finished.glob("results/synthetic/*/*/seed*"):
        assert (run / "metrics.json").exists() and (run / "test_logits.npz").exists(), run
