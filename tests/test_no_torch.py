"""Rules that do not train must not pay ~6 s and ~800 MB for `import torch`; the per-run scoring jobs not even
scikit-learn's ~2.5 s (the demo has 45 of them, the papers' DAG hundreds)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "workflow" / "scripts"
TRAINING_SCRIPTS = {"train.py", "dump_features.py"}
PER_RUN_SCORING_SCRIPTS = ["score.py", "crm.py"]


def imported_modules(script: Path) -> list[str]:
    return re.findall(r"^(?:from|import)\s+([\w.]+)", script.read_text(), flags=re.M)


def loads(modules: list[str], package: str) -> bool:
    """Whether importing `modules` in a fresh interpreter loads `package`."""
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + f"print({package!r} in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip() == "True"


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.py") if p.name not in TRAINING_SCRIPTS))
def test_script_imports_no_torch(script):
    modules = imported_modules(SCRIPTS / script)
    assert not loads(modules, "torch"), f"{script} pulls in torch through {modules}"


@pytest.mark.parametrize("rules", sorted(p.name for p in (SCRIPTS.parent / "rules").glob("*.smk")))
def test_rule_files_import_no_torch(rules):
    """Every SLURM job re-parses the rule files: torch there would cost every job ~6 s."""
    modules = imported_modules(SCRIPTS.parent / "rules" / rules)
    assert not loads(modules, "torch"), f"{rules} pulls in torch through {modules}"


@pytest.mark.parametrize("script", PER_RUN_SCORING_SCRIPTS)
def test_scoring_script_imports_no_sklearn(script):
    modules = imported_modules(SCRIPTS / script)
    assert not loads(modules, "sklearn"), f"{script} pulls in scikit-learn through {modules}"
