"""Aggregation over seeds: mean and 95% confidence-interval half-width.

HAFrame (experiments/multiple_runs_eval.py) reports mean +- t.isf(0.025, n-1) * np.std(x) / sqrt(n),
i.e. with the population std (ddof=0); that is the default here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # = scipy.stats.t.ppf (bit for bit), without scipy.stats' ~1 s import

RUN_COLUMNS = ["experiment", "model_type", "method", "seed", "metric", "value"]
SUMMARY_COLUMNS = ["experiment", "model_type", "method", "metric", "mean", "ci95", "n_seeds"]
_GROUP = ["experiment", "model_type", "method", "metric"]


def ci95_halfwidth(values, ddof: int = 0) -> float:
    """t_{0.975, n-1} * std(values, ddof) / sqrt(n); NaN for fewer than 2 values."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n < 2:
        return float("nan")
    return float(stdtrit(n - 1, 0.975) * values.std(ddof=ddof) / np.sqrt(n))


def summarise_runs(long_df: pd.DataFrame, ddof: int = 0) -> pd.DataFrame:
    """One row per (experiment, model_type, method, metric): mean, ci95, n_seeds over the seeds.

    Groups keep the order in which they first appear in `long_df`; values are not rounded. Missing
    (NaN) values are skipped, so n_seeds counts the seeds with a value.
    """
    missing = [c for c in RUN_COLUMNS if c not in long_df.columns]
    if missing:
        raise ValueError(f"summarise_runs: input lacks column(s) {missing}; expected {RUN_COLUMNS}")
    duplicated = long_df.duplicated(subset=_GROUP + ["seed"])
    if duplicated.any():
        first = long_df.loc[duplicated, _GROUP + ["seed"]].iloc[0].to_dict()
        raise ValueError(f"summarise_runs: the same seed appears twice for {first}")
    grouped = long_df.groupby(_GROUP, sort=False, dropna=False)["value"]
    summary = grouped.agg(
        mean="mean",
        ci95=lambda v: ci95_halfwidth(v.dropna(), ddof=ddof),
        n_seeds="count",
    ).reset_index()
    summary["n_seeds"] = summary["n_seeds"].astype(np.int64)
    return summary[SUMMARY_COLUMNS]
