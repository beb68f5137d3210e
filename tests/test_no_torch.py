"""Rules that do not train must not pay ~6 s and ~800 MB for `import torch`."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "workflow" / "scripts"
TRAINING_SCRIPTS = {"train.py", "dump_features.py"}


def imported_modules(script: Path) -> list[str]:
    return re.findall(r"^(?:from|import)\s+([\w.]+)", script.read_text(), flags=re.M)


def imports_torch(modules: list[str]) -> bool:
    """Whether importing `modules` in a fresh interpreter loads torch."""
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip() == "True"


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.py") if p.name not in TRAINING_SCRIPTS))
def test_script_imports_no_torch(script):
    modules = imported_modules(SCRIPTS / script)
    assert not imports_torch(modules), f"{script} pulls in torch through {modules}"


@pytest.mark.parametrize("rules", sorted(p.name for p in (SCRIPTS.parent / "rules").glob("*.smk")))
def test_rule_files_import_no_torch(rules):
    """Every SLURM job re-parses the rule files: torch there would cost every job ~6 s."""
    modules = imported_modules(SCRIPTS.parent / "rules" / rules)
    assert not imports_torch(modules), f"{rules} pulls in torch through {modules}"
