"""Rules that do not train must not pay ~6 s and ~800 MB for `import torch`; the scoring jobs not even
scikit-learn's ~2 s. Each check imports with the forbidden packages blocked (an import hook refuses them), so
that any import of one, however deep or lazy, fails and names the file and line that asked for it."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "workflow" / "scripts"
TRAINING_SCRIPTS = {"train.py", "dump_features.py"}
SCORING_SCRIPTS = {"score.py", "crm.py"}

# An import hook refusing the packages in FORBIDDEN. Not None in sys.modules: libraries probe sys.modules for
# torch (scipy's array-API helpers) and would break on None.
FORBID = """
import sys
FORBIDDEN = set()

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in FORBIDDEN:
            raise ImportError(f"import of {name} refused: this job must not load it")

sys.meta_path.insert(0, Refuse())
"""

# argv[1]: [[script, forbidden packages], ...]; prints {script: [how it reached a forbidden package, ...]}.
# Scoring scripts come first: a package another script loaded before could not be refused any more.
IMPORT_SCRIPTS = FORBID + """
import ast, json, traceback

def imports(path):  # (module, names imported from it) of every import statement, in functions too
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module, [alias.name for alias in node.names]

def where(error):  # the file and line of the refused import (the hook and importlib's frames are "<...>")
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith("<")]
    return f"{frames[-1].filename}:{frames[-1].lineno}: {error}" if frames else f"the script itself: {error}"

reached = {}
for path, forbidden in json.loads(sys.argv[1]):
    FORBIDDEN.update(forbidden)
    for module, names in imports(path):
        try:
            __import__(module, fromlist=names)  # names: submodules too (from featgeom import metrics)
        except ImportError as error:
            reached.setdefault(path.rsplit("/", 1)[-1], []).append(f"{module} -> {where(error)}")
    FORBIDDEN.clear()
print(json.dumps(reached))
"""


def test_scripts_of_rules_that_do_not_train_import_no_torch_and_scoring_no_sklearn():
    scripts = sorted(SCRIPTS.glob("*.py"), key=lambda p: (p.name not in SCORING_SCRIPTS, p.name))
    checks = [[str(p), ["torch", "sklearn"] if p.name in SCORING_SCRIPTS else ["torch"]]
              for p in scripts if p.name not in TRAINING_SCRIPTS]
    result = subprocess.run([sys.executable, "-c", IMPORT_SCRIPTS, json.dumps(checks)], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    reached = json.loads(result.stdout.splitlines()[-1])
    assert reached == {}, "\n".join(f"{script}: {line}" for script, lines in reached.items() for line in lines)


def test_parsing_the_workflow_imports_no_torch(tmp_path):
    """Every SLURM job re-parses the rule files (and runs the code they call at parse time, packs, config checks):
    torch there would cost every job ~6 s. The papers' config, whose DAG has every rule."""
    parse = FORBID + ("FORBIDDEN.add('torch')\n"
                      "import runpy\n"
                      "sys.argv = ['snakemake', '--list-rules', '--directory', sys.argv[1]]\n"
                      "runpy.run_module('snakemake', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", parse, str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "score_cifar100_main" in result.stdout.split()
