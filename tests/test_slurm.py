"""`--profile slurm` (the README's cluster command): dry runs of the papers' DAG, and the tiny DAG through a real
single-node SLURM (tools/slurm/start-local-slurm.sh) in both accounting settings.

The cluster tests need root and apt (Debian packages, the munge user); they skip where the machine cannot run
SLURM at all, and are marked `slurm` (deselect with `-m "not slurm"`).
"""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from featgeom import registry
from test_workflow import REPO, SNAKEMAKE, snakemake

TINY = REPO / "tests" / "data" / "tiny.yaml"
pytestmark = pytest.mark.slow  # every test runs Snakemake
PAPERS = REPO / "config" / "config.yaml"
START, STOP = REPO / "tools" / "slurm" / "start-local-slurm.sh", REPO / "tools" / "slurm" / "stop-local-slurm.sh"
# munged (user munge) reads its key there: not under pytest's root-only tmp folders
LAB = Path("/tmp/featgeom-slurm-test")
ON_LOCAL_SLURM = ["--cores", "1", "--profile", "slurm", "--profile", str(REPO / "profiles" / "slurm-local")]


def dry_run_jobs(*args, workdir):
    """(rule, wildcards, resources) of every job `snakemake -n --profile slurm` lists."""
    out = snakemake("-n", "--cores", "8", "--profile", "slurm", *args, "--directory", str(workdir)).stdout
    jobs = []
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:\n)", out):
        head = re.match(r"\s*(?:local)?rule (\w+):\n", block)
        if head:
            fields = dict(re.findall(r"^\s+(wildcards|resources): (.*)$", block, flags=re.MULTILINE))
            jobs.append((head[1], *(dict(kv.split("=", 1) for kv in fields[key].split(", ")) if key in fields else {}
                                    for key in ("wildcards", "resources"))))
    return jobs


def is_training(rule):
    """`train` (one run per job) or a training pack (workflow/rules/train_packs.smk: train_<dataset>_…)."""
    return rule == "train" or rule.startswith("train_")


def test_profile_is_found_by_its_bare_name_from_the_repository_root():
    assert (REPO / "slurm").resolve() == (REPO / "profiles" / "slurm").resolve()


def test_papers_dag_asks_for_gpus_in_training_jobs_only(tmp_path):
    jobs = dry_run_jobs("--configfile", str(PAPERS), workdir=tmp_path)
    trains = [(rule, res) for rule, _, res in jobs if is_training(rule)]
    assert {"train", "train_cifar100_main_haframe_seeds0to2"} <= {rule for rule, _ in trains}  # ResNet-50 / WRN packs
    assert all(res["gres"] == "gpu:1" and res["slurm_partition"] == "gpu" for _, res in trains)
    others = [(rule, res) for rule, _, res in jobs if not is_training(rule)]
    assert {"probe_cifar100_coarse_fine", "score_cifar100_main", "table"} <= {rule for rule, _ in others}
    assert not [rule for rule, res in others if "gres" in res or "gpu" in res or res.get("slurm_partition") != "cpu"]


def test_one_datasets_tables_rerun_only_that_dataset(tmp_path):
    # README: snakemake --cores 8 --profile slurm results/cifar100/tables/{coarse_fine,longtail,main}.md
    config = yaml.safe_load(PAPERS.read_text())
    kinds = {experiment["kind"] for experiment in config["datasets"]["cifar100"]["experiments"].values()}
    targets = [f"results/cifar100/tables/{registry.TABLE_OF_KIND[kind]}.md" for kind in sorted(kinds)]
    jobs = dry_run_jobs(*targets, "--configfile", str(PAPERS), workdir=tmp_path)
    assert {rule for rule, _, _ in jobs} >= {"table", "prepare_cifar", "train_cifar100_main_haframe_seeds0to2"}
    # packs and the per-experiment scoring and probe jobs have no wildcards: the dataset is in the name
    named = {rule for rule, _, _ in jobs if rule.startswith(("train_", "score_", "probe_"))}
    assert {rule.partition("_")[0] for rule in named} == {"train", "score", "probe"}
    assert all(rule.partition("_")[2].startswith("cifar100_") for rule in named), named
    assert {wildcards.get("dataset") for rule, wildcards, _ in jobs if rule not in named} == {"cifar100"}


def skip_unless_slurm_can_run():
    if os.geteuid() != 0:
        pytest.skip("a local SLURM needs root (munge user, /run/munge, apt-get)")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("SLURM is not installed and there is no apt-get to install it")
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and not conf.is_symlink():
        pytest.skip("this machine has its own SLURM (/etc/slurm/slurm.conf): the test cluster would replace it")


def start_cluster(accounting):
    env = {**os.environ, "SLURMLAB": str(LAB), "SLURMLAB_ACCOUNTING": accounting,
           "SLURMLAB_MEM_MB": "64000", "SLURM_CONF": str(LAB / "etc" / "slurm.conf")}
    result = subprocess.run([str(START)], env=env, capture_output=True, text=True)
    if result.returncode != 0 and "apt-get install" in result.stderr and not shutil.which("slurmctld"):
        pytest.skip(f"cannot install SLURM with apt-get: {result.stderr[-500:]}")
    assert result.returncode == 0, result.stderr
    return env


@pytest.fixture(scope="module")
def cluster_no_accounting():
    skip_unless_slurm_can_run()
    env = start_cluster("none")
    yield env
    subprocess.run([str(STOP)], env={**env, "SLURMLAB_PURGE": "1"}, check=True)


@pytest.fixture
def cluster_with_accounting():
    skip_unless_slurm_can_run()
    env = start_cluster("slurmdbd")
    yield env
    subprocess.run([str(STOP)], env={**env, "SLURMLAB_PURGE": "1"}, check=True)


def long_run(tmp_path):
    """One tiny training run of 12 epochs (long enough to be cancelled mid-run): its target and config args."""
    config = yaml.safe_load(TINY.read_text())
    dataset = config["datasets"]["synthetic"]
    dataset.pop("figures")
    main = dataset["experiments"]["main"]
    dataset["experiments"] = {"main": {**main, "seeds": 1, "train": {**main["train"], "epochs": 12},
                                       "methods": {"ce_t1": main["methods"]["ce_t1"]}}}
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    target = "results/synthetic/main/ce_t1/seed0/test_logits.npz"
    return target, [target, "--configfile", str(tmp_path / "long.yaml")]


def same_scores(target, *folders):
    with np.load(folders[0] / target) as a, np.load(folders[1] / target) as b:
        return np.array_equal(a["scores"], b["scores"])


@pytest.mark.slurm
def test_run_through_slurm_with_accounting(cluster_with_accounting, tmp_path):
    """First in this file: it stops its cluster before the module's no-accounting cluster starts.
    The profile unchanged (the plugin's default sacct status); sacct accounts the GPU of the training job."""
    target, args = long_run(tmp_path)
    local = start_snakemake("--cores", "1", *args, workdir=tmp_path / "local")
    finish(start_snakemake(*ON_LOCAL_SLURM, *args, workdir=tmp_path / "slurm", env=cluster_with_accounting))
    finish(local)
    assert same_scores(target, tmp_path / "slurm", tmp_path / "local")
    accounted = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "Partition,State,ReqTRES"],
                               env=cluster_with_accounting, capture_output=True, text=True, check=True).stdout
    assert [line for line in accounted.splitlines() if line.startswith("gpu|COMPLETED|")] and \
        all("gres/gpu=1" in line for line in accounted.splitlines() if line.startswith("gpu|"))


def profile_without_accounting(tmp_path):
    """profiles/slurm with its documented no-accounting switch turned on (the two commented lines)."""
    text = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    switched = re.sub(r"^# (slurm-status-command: squeue|slurm-init-seconds-before-status-checks: \d+)", r"\1",
                      text, flags=re.MULTILINE)
    assert switched.count("\nslurm-") == text.count("\nslurm-") + 2, "the no-accounting switch is not in the profile"
    (tmp_path / "slurm").mkdir()
    (tmp_path / "slurm" / "config.yaml").write_text(switched)
    return str(tmp_path / "slurm")


def start_snakemake(*args, workdir, env=None):
    return subprocess.Popen([*SNAKEMAKE, *args, "--directory", str(workdir)], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process):
    out, _ = process.communicate()
    assert process.returncode == 0, out[-6000:]
    return out


def slurm_jobs(env):
    """Every job the cluster knows, finished ones included (MinJobAge 1 h)."""
    fields = ["id", "partition", "state", "tres", "cpus", "mem", "limit", "comment"]
    out = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%P|%T|%b|%C|%m|%l|%k"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines()]


@pytest.fixture(scope="module")
def tiny_through_slurm(cluster_no_accounting, tiny_run, tmp_path_factory):
    """The tiny DAG through SLURM (no accounting database), next to the session's local run of it (tiny_run)."""
    root = tmp_path_factory.mktemp("tiny_slurm")
    started = time.monotonic()
    log = finish(start_snakemake(*ON_LOCAL_SLURM[:3], profile_without_accounting(root), *ON_LOCAL_SLURM[4:],
                                 "--configfile", str(TINY), workdir=root / "slurm", env=cluster_no_accounting))
    wall = time.monotonic() - started
    print(f"tiny DAG through SLURM: {wall:.0f} s, {log.count('has been submitted with SLURM jobid')} sbatch jobs")
    return {"slurm": root / "slurm", "local": tiny_run.parent.parent, "log": log,
            "jobs": slurm_jobs(cluster_no_accounting)}


def result_files(folder):
    return sorted(p.relative_to(folder) for pattern in ("results/**/metrics.json", "results/**/tables/*.csv",
                                                        "results/**/test_logits.npz", "results/**/features.npz")
                  for p in folder.glob(pattern))


@pytest.mark.slurm
def test_tiny_dag_through_slurm_equals_local_run(tiny_through_slurm):
    slurm, local = tiny_through_slurm["slurm"], tiny_through_slurm["local"]
    files = result_files(local)
    assert len(files) > 30 and result_files(slurm) == files
    for name in files:
        if name.suffix == ".npz":
            with np.load(slurm / name) as a, np.load(local / name) as b:
                assert all(np.array_equal(a[key], b[key]) for key in b.files), name
        elif name.suffix == ".csv":
            pd.testing.assert_frame_equal(pd.read_csv(slurm / name), pd.read_csv(local / name))
        else:
            assert json.loads((slurm / name).read_text()) == json.loads((local / name).read_text()), name


@pytest.mark.slurm
def test_jobs_went_through_sbatch_and_only_training_holds_a_gpu(tiny_through_slurm):
    jobs, log = tiny_through_slurm["jobs"], tiny_through_slurm["log"]
    assert len(jobs) == log.count("has been submitted with SLURM jobid") > 5
    assert {job["state"] for job in jobs} == {"COMPLETED"}
    rules = {job["id"]: job["comment"].split("_wildcards")[0].removeprefix("rule_") for job in jobs}
    training = [job for job in jobs if is_training(rules[job["id"]])]
    assert training and all(job["partition"] == "gpu" and job["tres"] == "gres:gpu:1" for job in training)
    others = [job for job in jobs if job not in training]
    assert "probe_synthetic_coarse_fine" in {rules[job["id"]] for job in others}
    assert all(job["partition"] == "cpu" and "gpu" not in job["tres"] for job in others)


@pytest.mark.slurm
def test_changed_method_reruns_only_its_runs_and_what_is_built_from_them(tiny_through_slurm, tmp_path):
    # README: edit one method's settings, then rerun the same command: params changes trigger its runs only
    config = yaml.safe_load(TINY.read_text())
    config["datasets"]["synthetic"]["experiments"]["main"]["methods"]["haframe"]["loss"]["alpha"] = 0.5
    # key order kept: Snakemake compares a dict param's text, so a reordered source block would rerun the data
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    jobs = dry_run_jobs("--configfile", str(tmp_path / "changed.yaml"), workdir=tiny_through_slurm["slurm"])
    trained = {rule for rule, _, _ in jobs if is_training(rule)}
    assert trained == {"train_synthetic_main_haframe_seeds0to1"}  # its two seeds, in one pack job
    assert {rule for rule, _, _ in jobs} - trained == {"score_synthetic_main", "table", "nc_curves", "paper_vs_ours",
                                                      "ablation", "all"}
    assert all(w.get("method", "haframe") == "haframe" for _, w, _ in jobs)


@pytest.mark.slurm
def test_cancelled_training_job_resumes_from_its_checkpoint(cluster_no_accounting, tmp_path):
    """scancel a training job after its first epoch; Snakemake's retry (profile: retries 1) resumes it from
    its checkpoint and it ends where an uninterrupted run does. Without accounting (squeue status): with sacct,
    plugin 2.8 reads a hand-cancelled job's state "CANCELLED by 0" as still running and waits forever."""
    target, args = long_run(tmp_path)
    local = start_snakemake("--cores", "1", *args, workdir=tmp_path / "local")
    run = start_snakemake(*ON_LOCAL_SLURM[:3], profile_without_accounting(tmp_path), *ON_LOCAL_SLURM[4:], *args,
                          workdir=tmp_path / "slurm", env=cluster_no_accounting)
    run_dir = tmp_path / "slurm" / Path(target).parent
    cancelled = cancel_training_after_first_epoch(run, run_dir, cluster_no_accounting)
    finish(run)
    finish(local)
    train_log = (run_dir / "train.log").read_text()
    assert re.search(r"resumed from .*last_checkpoint\.pt after epoch ([1-9]|1[01])\b", train_log), train_log
    assert same_scores(target, tmp_path / "slurm", tmp_path / "local")
    states = {job["id"]: job["state"] for job in slurm_jobs(cluster_no_accounting)}
    assert states[cancelled] == "CANCELLED" and "COMPLETED" in {s for i, s in states.items() if int(i) > int(cancelled)}


def cancel_training_after_first_epoch(snakemake_process, run_dir, env, timeout=300):
    """scancel the GPU job once the run has written its first epoch checkpoint; its SLURM job id."""
    deadline = time.monotonic() + timeout
    while not (run_dir / "last_checkpoint.pt").exists():
        if snakemake_process.poll() is not None:
            pytest.fail(f"snakemake ended before the run's first checkpoint:\n{snakemake_process.stdout.read()[-6000:]}")
        assert time.monotonic() < deadline, "the training job wrote no checkpoint"
        time.sleep(0.2)
    running = [job for job in slurm_jobs(env) if job["partition"] == "gpu" and job["state"] == "RUNNING"]
    assert len(running) == 1, running
    subprocess.run(["scancel", running[0]["id"]], env=env, check=True)
    return running[0]["id"]
