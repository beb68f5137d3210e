"""Shared fixtures."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def dataset_fixtures(tmp_path_factory) -> Path:
    """DIR written once per session by `tools/make_fixtures.py DIR`: DIR/data/<dataset>/... in each
    dataset's real on-disk format, and DIR/checksums.yaml (md5 of the archives, sha256 of the weights)."""
    out = tmp_path_factory.mktemp("dataset_fixtures")
    result = subprocess.run([sys.executable, str(REPO / "tools" / "make_fixtures.py"), str(out)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"tools/make_fixtures.py failed:\n{result.stderr}")
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """results/synthetic of the whole tiny DAG (tests/data/tiny.yaml), run once per session on 2 cores: the workflow
    tests read it, the SLURM tests compare the cluster's results with it. Tests that change files work on a copy
    (test_workflow's `finished`)."""
    from test_workflow import TINY, snakemake
    workdir = tmp_path_factory.mktemp("tiny")
    snakemake("--cores", "2", *TINY, "--directory", str(workdir))
    return workdir / "results" / "synthetic"
