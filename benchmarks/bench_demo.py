"""Wall time of the demo (config/demo.yaml) from a clean results folder, next to its target (<= 120 s on 2 CPU
cores) and next to a baseline in the same run: the same demo with `runs_per_process=1`, where every method's
seeds train in a job of their own (13 training processes instead of 4, each paying torch's ~7 s start-up).
Per-rule job seconds come from the `benchmark:` files Snakemake writes (training packs included).

    .venv/bin/python benchmarks/bench_demo.py [--cores 2] [--workdir /tmp/featgeom-demo-bench] [--no-baseline]
"""
import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from featgeom.layout import BENCHMARKS, RESULTS, run_dirs_glob

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 120
BASELINE = {"runs_per_process": 1}


def run_demo(workdir: Path, cores: int, overrides: dict) -> float:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(REPO / "config/demo.yaml"), "--cores", str(cores), "--quiet", "all"]
    if overrides:
        command += ["--config", *(f"{key}={value}" for key, value in overrides.items())]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def job_costs(workdir: Path) -> pd.DataFrame:
    rows = []
    run_level = workdir.glob(f"{RESULTS}/{run_dirs_glob()}/benchmark_*.tsv")
    dataset_level = workdir.glob(f"{BENCHMARKS.format(dataset='*')}/*.tsv")
    for tsv in [*run_level, *dataset_level]:
        frame = pd.read_csv(tsv, sep="\t")
        rule = tsv.stem.removeprefix("benchmark_")
        rows.append({"rule": "train (packs)" if rule.startswith("train_") else rule, "seconds": frame["s"].iloc[0]})
    return pd.DataFrame(rows, columns=["rule", "seconds"])


def per_rule(costs: pd.DataFrame) -> pd.DataFrame:
    return costs.groupby("rule").agg(jobs=("seconds", "size"), job_s=("seconds", "sum"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (the target is for 2)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/featgeom-demo-bench"), help="scratch folder")
    parser.add_argument("--no-baseline", action="store_true", help="skip the runs_per_process=1 baseline")
    args = parser.parse_args()
    variants = {"demo": {}} if args.no_baseline else {"demo": {}, "baseline": BASELINE}
    walls, rules = {}, {}
    for name, overrides in variants.items():
        walls[name] = run_demo(args.workdir / name, args.cores, overrides)
        rules[name] = per_rule(job_costs(args.workdir / name))
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest single process
    print(f"demo on {args.cores} cores; baseline = the demo with --config "
          + " ".join(f"{k}={v}" for k, v in BASELINE.items()))
    print(f"{'':24s}" + "".join(f"{name:>12s}" for name in walls) + f"{'target':>12s}")
    print(f"{'wall time (s)':24s}" + "".join(f"{wall:12.1f}" for wall in walls.values()) + f"{TARGET_SECONDS:12d}")
    print(f"{'peak process RSS (MB)':24s}{peak_mb:12.0f}")
    table = pd.concat(rules, axis=1).fillna(0)
    table.columns = [f"{name} {column}" for name, column in table.columns]
    print("\nrules with a benchmark file (job seconds summed over their jobs):")
    print(table.round(1).to_string())


if __name__ == "__main__":
    main()
