"""Wall time of the demo (config/demo.yaml) from a clean folder: this tree next to a baseline commit, in one call,
so that both see the same machine. The target is 60 s on 2 idle cores.

The baseline (default c6500e6: one scoring job and one probe job per run, 76 jobs) is checked out with
`git worktree add` into a temporary folder and run by the same Python, with PYTHONPATH pointing at its tree (each
tree's Snakefile, rules, scripts and featgeom). Each round runs every layout once, alternating which goes first.
CPU seconds are those of Snakemake and all its jobs (user + system): on a busy machine they vary less than
the wall time.

    .venv/bin/python benchmarks/bench_demo.py [--baseline c6500e6] [--rounds 1] [--cores 2]
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 60
STEPS_DONE = re.compile(r"(\d+) of (\d+) steps \(100%\) done")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_demo(tree: Path, workdir: Path, cores: int) -> dict:
    """Wall and CPU seconds and job count of the demo of `tree`, in the empty folder `workdir`."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(tree / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(tree / "config" / "demo.yaml"), "--cores", str(cores)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    workdir.mkdir(parents=True)
    check_library_of(tree, env, workdir)
    cpu, started = children_cpu_seconds(), time.perf_counter()
    # run from workdir: `python -m` puts the current folder first on sys.path, ahead of PYTHONPATH, so run from the
    # repository every tree would import the repository's featgeom
    done = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the demo of {tree} failed:\n{done.stderr[-4000:]}")
    return {"wall": wall, "cpu": children_cpu_seconds() - cpu, "jobs": int(STEPS_DONE.findall(done.stderr)[-1][1])}


def check_library_of(tree: Path, env: dict, workdir: Path) -> None:
    """The demo of `tree` must run `tree`'s featgeom, not the one the venv's editable install points to."""
    where = subprocess.run([sys.executable, "-c", "import featgeom; print(featgeom.__file__)"], env=env, cwd=workdir,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(where).is_relative_to(tree):
        sys.exit(f"the demo of {tree} would import featgeom from {where}")


def baseline_tree(commit: str, scratch: Path) -> Path:
    tree = scratch / f"baseline-{commit}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(tree), commit], check=True)
    return tree


def remove_tree(tree: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)


def print_table(measured: dict, cores: int) -> None:
    print(f"demo on {cores} cores, from a clean folder (target {TARGET_SECONDS} s on 2 idle cores)")
    print(f"{'layout':24s}{'jobs':>6s}{'wall s (median)':>17s}{'cpu s (median)':>16s}   wall s per round")
    for name, rounds in measured.items():
        walls = [r["wall"] for r in rounds]
        print(f"{name:24s}{rounds[0]['jobs']:6d}{statistics.median(walls):17.1f}"
              f"{statistics.median(r['cpu'] for r in rounds):16.1f}   " + " ".join(f"{w:.1f}" for w in walls))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="c6500e6", help="commit to compare with (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each layout (default: %(default)s)")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (the target is for 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="featgeom-bench-demo-") as scratch:
        scratch = Path(scratch)
        trees = {f"baseline {args.baseline}": baseline_tree(args.baseline, scratch), "this tree": REPO}
        try:
            measured = {name: [] for name in trees}
            for round_ in range(args.rounds):
                order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                for name in order:
                    workdir = scratch / f"{name.split()[0]}-round{round_}"
                    measured[name].append(run_demo(trees[name], workdir, args.cores))
        finally:
            remove_tree(trees[f"baseline {args.baseline}"])
    print_table(measured, args.cores)


if __name__ == "__main__":
    main()
