"""Results tables (Markdown and LaTeX) from a `stats.summarise_runs` summary.

Layout as in the HAFrame paper's comparison tables: one row per (model type, method), the model
type written only on the first row of its group, one column per metric, cells "mean ± ci95".
"""
from __future__ import annotations

import math

import pandas as pd

MAIN_METRICS = [
    ("top1", "Top-1"),
    ("mistake_severity", "Mistake Severity"),
    ("hierdist@1", "HierDist@1"),
    ("hierdist@5", "HierDist@5"),
    ("hierdist@20", "HierDist@20"),
]
MISSING = "–"
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _cells(summary_df: pd.DataFrame, metrics, digits: int, pm: str, missing: str):
    """[(model_type, method, [cell per metric])] in first-appearance order."""
    experiments = summary_df["experiment"].unique()
    if len(experiments) > 1:
        raise ValueError(f"one table per experiment: filter the summary first (found {list(experiments)})")
    lookup = {(r.model_type, r.method, r.metric): (r.mean, r.ci95)
              for r in summary_df[["model_type", "method", "metric", "mean", "ci95"]].itertuples(index=False)}
    rows = []
    for model_type, method in summary_df[["model_type", "method"]].drop_duplicates().itertuples(index=False):
        cells = [_format_cell(*lookup[(model_type, method, key)], digits, pm, missing)
                 if (model_type, method, key) in lookup else missing
                 for key, _ in metrics]
        rows.append((str(model_type), str(method), cells))
    return rows


def _format_cell(mean, ci95, digits: int, pm: str, missing: str) -> str:
    if mean is None or math.isnan(float(mean)):
        return missing
    if ci95 is None or math.isnan(float(ci95)):
        return f"{mean:.{digits}f}"  # a single seed has no interval
    return f"{mean:.{digits}f}{pm}{ci95:.{digits}f}"


def _seed_counts(summary_df: pd.DataFrame) -> str:
    counts = sorted({int(n) for n in summary_df["n_seeds"]})
    return f"n = {counts[0]}" if len(counts) == 1 else f"n ∈ {{{', '.join(map(str, counts))}}}"


def ci_footnote(summary_df: pd.DataFrame, ddof: int = 0) -> str:
    return (f"mean ± 95% CI half-width over {_seed_counts(summary_df)} seeds: "
            f"t₀.₉₇₅,ₙ₋₁ · std(ddof={ddof}) / √n")


def render_markdown(summary_df: pd.DataFrame, metrics=MAIN_METRICS, caption: str = "", digits: int = 2,
                    ddof: int = 0) -> str:
    """Markdown table; `metrics` is [(summary metric key, column header)]."""
    lines = [f"**{caption}**", ""] if caption else []
    lines.append("| Model | Method | " + " | ".join(h for _, h in metrics) + " |")
    lines.append("|---|---|" + "---:|" * len(metrics))
    previous_type = None
    for model_type, method, cells in _cells(summary_df, metrics, digits, " ± ", MISSING):
        shown_type = model_type if model_type != previous_type else ""
        previous_type = model_type
        lines.append(f"| {shown_type} | {method} | " + " | ".join(cells) + " |")
    lines += ["", f"_{ci_footnote(summary_df, ddof)}_", ""]
    return "\n".join(lines)


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def render_latex(summary_df: pd.DataFrame, metrics=MAIN_METRICS, caption: str = "", digits: int = 2,
                 ddof: int = 0) -> str:
    """booktabs tabular in a table float; a \\midrule separates model types."""
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    lines.append(r"\begin{tabular}{ll" + "c" * len(metrics) + "}")
    lines.append(r"\toprule")
    lines.append("Model & Method & " + " & ".join(latex_escape(h) for _, h in metrics) + r" \\")
    lines.append(r"\midrule")
    previous_type = None
    for model_type, method, cells in _cells(summary_df, metrics, digits, r" $\pm$ ", "--"):
        if previous_type is not None and model_type != previous_type:
            lines.append(r"\midrule")
        shown_type = latex_escape(model_type) if model_type != previous_type else ""
        previous_type = model_type
        lines.append(f"{shown_type} & {latex_escape(method)} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    counts = _seed_counts(summary_df).replace("∈", r"\in")
    lines.append(
        r"\\[2pt]{\footnotesize mean $\pm$ 95\% CI half-width over $" + counts + r"$ seeds: "
        rf"$t_{{0.975,n-1}}\cdot\mathrm{{std}}_{{\mathrm{{ddof}}={ddof}}}/\sqrt{{n}}$}}"
    )
    lines += [r"\end{table}", ""]
    return "\n".join(lines)
