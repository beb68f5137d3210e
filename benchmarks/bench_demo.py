"""Wall time and peak memory of the demo (config/demo.yaml) from a clean results folder,
printed next to the target (<= 3 min on 2 CPU cores). Per-rule costs come from the
`benchmark:` files Snakemake writes for every training job.

    .venv/bin/python benchmarks/bench_demo.py [--cores 2] [--workdir /tmp/featgeom-demo-bench]
"""
import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 180


def run_demo(workdir: Path, cores: int) -> float:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(REPO / "config/demo.yaml"), "--cores", str(cores), "--quiet", "all"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def job_costs(workdir: Path) -> pd.DataFrame:
    rows = []
    run_level = workdir.glob("results/*/*/*/seed*/benchmark_*.tsv")
    dataset_level = workdir.glob("results/*/benchmarks/*.tsv")
    for tsv in [*run_level, *dataset_level]:
        frame = pd.read_csv(tsv, sep="\t")
        rows.append({"rule": tsv.stem.removeprefix("benchmark_"), "seconds": frame["s"].iloc[0],
                     "cpu_seconds": frame["cpu_time"].iloc[0], "max_rss_mb": frame["max_rss"].iloc[0]})
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (the target is for 2)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/featgeom-demo-bench"), help="scratch folder")
    args = parser.parse_args()
    wall = run_demo(args.workdir, args.cores)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest single process
    costs = job_costs(args.workdir)
    print(f"{'':24s}{'measured':>12s}{'target':>12s}")
    print(f"{'demo wall time (s)':24s}{wall:12.1f}{TARGET_SECONDS:12d}")
    print(f"{'peak process RSS (MB)':24s}{peak_mb:12.0f}{'':>12s}")
    if not costs.empty:
        summary = costs.groupby("rule").agg(jobs=("seconds", "size"), wall_s=("seconds", "sum"),
                                            cpu_s=("cpu_seconds", "sum"), max_rss_mb=("max_rss_mb", "max"))
        print("\nper rule (sums over jobs):")
        print(summary.round(1).to_string())


if __name__ == "__main__":
    main()
