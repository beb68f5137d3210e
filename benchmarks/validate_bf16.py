"""Is bf16 safe for a dataset? Train its HAFrame-table experiment in fp32 and in bf16, and check every
bf16 mean against the fp32 mean +- 95% CI over seeds.

featgeom's default precision stays fp32 (the papers') until this check passes on a GPU. It runs one
Snakemake workflow in WORKDIR holding two copies of the experiment: `<experiment>` (fp32) and
`<experiment>_bf16` (train.precision bf16), seeds and everything else equal; both land in the same
results table, which the check then reads. WORKDIR gets a `data` link to your data folder, so nothing
is downloaded twice and your own results/ are never touched.

    python benchmarks/validate_bf16.py --dataset cifar100 --workdir /scratch/bf16 -- --cores 16 \\
        --resources gpu_percent=100
    python benchmarks/validate_bf16.py --configfile config/demo.yaml --dataset synthetic --workdir /tmp/bf16 \\
        -- --cores 2                                            # the demo, on a laptop

Exit status 0 when every metric of every method is inside the fp32 interval, 1 otherwise.
"""
from __future__ import annotations

import argparse
import copy
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from featgeom.layout import TABLES

REPO = Path(__file__).resolve().parents[1]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--experiment", default="main", help="a `hierarchy` experiment of the dataset")
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--data-dir", default="data", type=Path, help="your data folder (linked as WORKDIR/data)")
    parser.add_argument("snakemake_args", nargs="*", help="after --: passed to snakemake (cores, resources, profile)")
    return parser.parse_args()


def bf16_config(config: dict, dataset: str, experiment: str) -> dict:
    """The config reduced to `dataset` with `experiment` twice: as configured, and with precision bf16."""
    ds = copy.deepcopy(config["datasets"][dataset])
    if experiment not in ds.get("experiments", {}):
        raise SystemExit(f"{dataset} has no experiment {experiment!r}; it has {sorted(ds.get('experiments', {}))}")
    fp32 = ds["experiments"][experiment]
    bf16 = copy.deepcopy(fp32)
    bf16["train"]["precision"] = "bf16"
    ds["experiments"] = {experiment: fp32, f"{experiment}_bf16": bf16}
    ds.pop("figures", None)
    return {**{k: v for k, v in config.items() if k not in ("datasets", "_recipes")}, "datasets": {dataset: ds}}


def bf16_inside_fp32_ci(summary: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Per (method, metric): fp32 mean, ci95, bf16 mean, and whether bf16's mean lies in fp32's interval."""
    fp32 = summary[summary["experiment"] == experiment].set_index(["method", "metric"])
    bf16 = summary[summary["experiment"] == f"{experiment}_bf16"].set_index(["method", "metric"])
    joined = fp32[["mean", "ci95", "n_seeds"]].join(bf16[["mean"]].rename(columns={"mean": "mean_bf16"}), how="inner")
    if joined.empty:
        raise ValueError(f"no (method, metric) is present for both {experiment} and {experiment}_bf16")
    if joined["ci95"].isna().any():
        raise ValueError("fp32 has no confidence interval (one seed?): run the check with at least 2 seeds")
    joined["inside"] = (joined["mean_bf16"] - joined["mean"]).abs() <= joined["ci95"]
    return joined.reset_index()


def run_workflow(args, config: dict) -> Path:
    args.workdir.mkdir(parents=True, exist_ok=True)
    link = args.workdir / "data"
    if not link.exists():
        link.symlink_to(args.data_dir.resolve(), target_is_directory=True)
    configfile = args.workdir / "bf16_check.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    table = f"{TABLES.format(dataset=args.dataset)}/main.csv"
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(args.workdir),
               "--configfile", str(configfile), *args.snakemake_args, table]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return args.workdir / table


def main():
    args = parse_args()
    config = yaml.safe_load(Path(args.configfile).read_text())
    table = run_workflow(args, bf16_config(config, args.dataset, args.experiment))
    result = bf16_inside_fp32_ci(pd.read_csv(table), args.experiment)
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(result.to_string(index=False, float_format=lambda v: f"{v:.3f}" if not math.isnan(v) else "nan"))
    outside = result[~result["inside"]]
    print(f"\n{len(result) - len(outside)}/{len(result)} bf16 means inside the fp32 mean +- 95% CI "
          f"({int(result['n_seeds'].min())} seeds)")
    sys.exit(0 if outside.empty else 1)


if __name__ == "__main__":
    main()
