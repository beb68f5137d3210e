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
