"""Paper vs ours: our mean ± 95% CI over seeds beside the published mean ± CI, for every method and metric
of a dataset's hierarchy experiments, and HAFrame's Table 6 ablation layout. pandas, no torch.

Rows are matched by our method key (the published file's `method` column) and metric key. A method we run that
the paper lacks says "no published number"; a paper row we do not run says "not run".
"""
from __future__ import annotations

import math

import pandas as pd

from featgeom import published, tables
from featgeom.reporting import table_columns

COLUMNS = ["experiment", "method", "paper_table", "paper_row", "metric", "better", "paper_mean", "paper_ci",
           "ours_mean", "ours_ci", "ours_n_seeds", "difference", "overlap", "status"]
COMPARED = "compared"
NO_PUBLISHED = "no published number"
NOT_RUN = "not run"
NEITHER = "not run; no published number"
NO_VALUE = "no value in our runs"  # e.g. the mistake severity of runs without a single mistake
# HAFrame Table 6, rows 1-4 (the method of each row comes from the published file).
ABLATION_STEPS = {1: "type-I, CE", 2: "type-II (+T), CE", 3: "type-II, fixed HAFrame, α = 0", 4: "HAFrame"}
ARROW = {"higher": "↑", "lower": "↓"}


def better(metric: str) -> str:
    """Which direction is better: top-1 accuracy up, every distance (HierDist@k of any k included) down."""
    return published.METRICS.get(metric, ("", "lower"))[1]


def metric_label(metric: str) -> str:
    """The paper's column header (HierDist@k of a dataset with K < 20 classes: the main table's) and an arrow."""
    if metric in published.METRICS:
        return f"{published.METRICS[metric][0]} {ARROW[better(metric)]}"
    return f"{dict(table_columns('main', {metric}))[metric]} {ARROW[better(metric)]}"


def intervals_overlap(paper_mean: float, paper_ci: float, ours_mean: float, ours_ci: float) -> bool:
    """Whether the closed intervals [mean − ci, mean + ci] intersect; ours without a CI (one seed) is a point."""
    half_width = 0.0 if math.isnan(ours_ci) else ours_ci
    return abs(ours_mean - paper_mean) <= paper_ci + half_width


def _status(ours, paper, ran: bool) -> str:
    """ran: the experiment has the method (it may still lack this metric, or have NaN for it)."""
    if ours is None and not ran:
        return NEITHER if paper is None else NOT_RUN
    if paper is None:
        return NO_PUBLISHED
    return NO_VALUE if ours is None or math.isnan(ours.mean) else COMPARED


def _cell(experiment: str, method: str, metric: str, ours, paper, ran: bool) -> dict:
    """One (experiment, method, metric) row: both sides, ours − paper and the overlap where both exist."""
    status = _status(ours, paper, ran)
    both = status == COMPARED
    return {
        "experiment": experiment, "method": method, "metric": metric, "better": better(metric),
        "paper_table": paper.tables if paper else "", "paper_row": paper.paper_row if paper else "",
        "paper_mean": paper.mean if paper else math.nan, "paper_ci": paper.ci if paper else math.nan,
        "ours_mean": ours.mean if ours else math.nan, "ours_ci": ours.ci95 if ours else math.nan,
        "ours_n_seeds": ours.n_seeds if ours else 0,
        "difference": ours.mean - paper.mean if both else math.nan,
        "overlap": intervals_overlap(paper.mean, paper.ci, ours.mean, ours.ci95) if both else pd.NA,
        "status": status,
    }


def compare(summary: pd.DataFrame, numbers: dict, methods=None) -> pd.DataFrame:
    """One row per (experiment, method, metric). summary: the main table's CSV (stats.summarise_runs);
    numbers: published.numbers_of(...) of the dataset's published counterpart ({} when it has none);
    methods: the rows to show (default: ours in table order, then the paper's rows we do not run).
    An experiment that runs none of the paper's methods (the NC curves' type-I CE baseline with H = K) is left out:
    its rows would all read "not run" or "no published number"."""
    rows = []
    published_methods = {m for m, _ in numbers}
    for experiment, ours in summary.groupby("experiment", sort=False):
        if published_methods and not published_methods & set(ours["method"]):
            continue
        ours_cells = {(r.method, r.metric): r for r in ours.itertuples(index=False)}
        shown = methods or list(dict.fromkeys([*ours["method"], *(m for m, _ in numbers)]))
        present = set(ours["metric"]) | {metric for _, metric in numbers}
        metrics = [key for key, _ in table_columns("main", present)]
        ran = set(ours["method"])
        rows += [_cell(experiment, method, metric, ours_cells.get((method, metric)), numbers.get((method, metric)),
                       method in ran)
                 for method in shown for metric in metrics
                 # a pair neither side has is shown only for a method neither side has (an ablation row)
                 if (method, metric) in ours_cells or (method, metric) in numbers
                 or method not in ran | published_methods]
    return pd.DataFrame(rows, columns=COLUMNS)


def ablation(summary: pd.DataFrame, numbers: dict, steps: dict[int, str]) -> pd.DataFrame:
    """The comparison restricted to the ablation rows ({row: method}), every row shown, with its step."""
    frame = compare(summary, numbers, methods=list(steps.values()))
    row_of = {method: row for row, method in steps.items()}
    frame.insert(1, "row", frame["method"].map(row_of))
    frame.insert(2, "step", frame["row"].map(lambda r: ABLATION_STEPS.get(r, "")))
    return frame


# ----------------------------------------------------------------------------- cells of the renderings

def interval_text(mean: float, ci: float, pm: str) -> str:
    """Mean and CI with the same decimals (DIGITS_RULE): '77.65 ± 0.26', '1.1100 ± 0.0018'; one seed: '77.65 (1 seed)'.
    """
    if math.isnan(ci):
        return f"{mean:.2f} (1 seed)"
    digits = shared_decimals(ci)
    return f"{mean:.{digits}f}{pm}{ci:.{digits}f}"


def shared_decimals(ci: float) -> int:
    """At least 2 decimals, and as many as the CI needs for 2 significant digits (0.0018 would print 0.00)."""
    return 2 if not ci > 0 else max(2, 1 - math.floor(math.log10(ci)))


def overlap_text(row) -> str:
    if row.status != COMPARED:
        return "–"
    answer = "yes" if row.overlap else "no"
    return f"{answer} (ours: 1 seed, a point)" if math.isnan(row.ours_ci) else answer


def paper_text(row, pm: str) -> str:
    return NO_PUBLISHED if math.isnan(row.paper_mean) else interval_text(row.paper_mean, row.paper_ci, pm)


def ours_text(row, pm: str) -> str:
    if row.status in (NOT_RUN, NEITHER):
        return NOT_RUN
    return NO_VALUE if math.isnan(row.ours_mean) else interval_text(row.ours_mean, row.ours_ci, pm)


def _misses(row) -> bool:
    """Both sides exist and their intervals do not overlap."""
    return row.status == COMPARED and not row.overlap


def difference_text(row) -> str:
    return "–" if math.isnan(row.difference) else f"{row.difference:+.2f}"


# ----------------------------------------------------------------------------- paper vs ours table

COMPARISON_HEADER = ["Method", "Paper row", "Metric", "Paper", "Ours", "Ours − paper", "Overlap"]
COMPARISON_ALIGN = "lllrrrl"  # the intervals and differences right-aligned


def comparison_grid(frame: pd.DataFrame, caption: tuple, note: tuple) -> tables.Grid:
    """One experiment's comparison: method and paper row once per method; a non-overlap is set in bold."""
    rows, previous = [], None
    for row in frame.itertuples(index=False):
        first = row.method != previous
        previous = row.method
        overlap = overlap_text(row)
        rows.append([row.method if first else "", str(row.paper_row) if first else "", metric_label(row.metric),
                     paper_text(row, tables.PM), ours_text(row, tables.PM), difference_text(row),
                     tables.Strong(overlap) if overlap.startswith("no") else overlap])
    return tables.Grid(caption, COMPARISON_HEADER, rows, COMPARISON_ALIGN, note)


def heading(dataset: str, published_name: str | None, frame: pd.DataFrame) -> tuple:
    """What the table compares with (text fragments, featgeom.tables); a dataset without a published counterpart
    says so."""
    if published_name is None:
        return (f"Paper vs ours — {dataset}: the paper has no numbers for this dataset (name its published "
                "counterpart with ", tables.Code("published:"), " in the config)")
    tables_used = sorted({t for cell in frame["paper_table"] if cell for t in cell.split(", ")})
    return (f"Paper vs ours — {dataset} (published as {published_name}: {published.SOURCE}, "
            f"Table(s) {', '.join(tables_used)})",)


_NOTE_PAPER = "Paper: mean ± 95% CI half-width as printed (5 runs). Ours: "
DIGITS_RULE = ("Each mean is printed with the decimals of its CI: at least 2, and as many as the CI needs for 2 "
               "significant digits (the CSV keeps full precision).")
_NOTE_REST = ("; one seed gives a point, no interval. Ours − paper: difference of the means. Overlap: the intervals "
              "[mean − CI, mean + CI] of paper and ours intersect. " + DIGITS_RULE)


def footnote(summary: pd.DataFrame, ddof: int, extra: str = "") -> tuple:
    """The note under the table: how both intervals are computed and what overlap means."""
    return (_NOTE_PAPER, *tables.ci_footnote(summary, ddof), _NOTE_REST + extra)


def _document(frame, caption: tuple, note: tuple, banner: str | None, grid_of) -> tables.Document:
    """One grid per experiment: grid_of(that experiment's part of the frame, its caption, note)."""
    grids = [grid_of(part, (*caption, f" — {experiment}"), note)
             for experiment, part in frame.groupby("experiment", sort=False)]
    return tables.document(grids, banner)


def build_paper_vs_ours(summary: pd.DataFrame, cells, dataset: str, published_name: str | None, ddof: int = 0,
                        banner: str | None = None):
    """(comparison frame for the CSV, tables.Document) of one dataset."""
    frame = compare(summary, published.numbers_of(cells, published_name))
    document = _document(frame, heading(dataset, published_name, frame), footnote(summary, ddof), banner,
                         comparison_grid)
    return frame, document


# ----------------------------------------------------------------------------- Table 6 ablation layout

def ablation_grid(frame: pd.DataFrame, caption: tuple, note: tuple) -> tables.Grid:
    """One experiment's ablation rows: per row a paper line and an ours line (the intervals right-aligned); an ours
    interval that misses the paper's is set in bold."""
    metrics = list(dict.fromkeys(frame["metric"]))
    rows = []
    for (number, method), part in frame.groupby(["row", "method"], sort=False):
        by_metric = {r.metric: r for r in part.itertuples(index=False)}
        paper_table = part["paper_table"].iloc[0]
        rows.append([str(number), part["step"].iloc[0], method,
                     f"paper (Table {paper_table})" if paper_table else "paper"]
                    + [paper_text(by_metric[m], tables.PM) if m in by_metric else tables.MISSING for m in metrics])
        ours = [(ours_text(by_metric[m], tables.PM), _misses(by_metric[m])) if m in by_metric
                else (tables.MISSING, False) for m in metrics]
        rows.append(["", "", "", "ours"] + [tables.Strong(cell) if missed else cell for cell, missed in ours])
    header = ["Row", "Ablation step", "Method", "Source", *(metric_label(m) for m in metrics)]
    return tables.Grid(caption, header, rows, "llll" + "r" * len(metrics), note)


def build_ablation(summary: pd.DataFrame, cells, dataset: str, published_name: str | None, ddof: int = 0,
                   banner: str | None = None):
    """(ablation frame for the CSV, tables.Document): HAFrame Table 6 rows 1-4, ours beside the paper's."""
    frame = ablation(summary, published.numbers_of(cells, published_name), published.ablation_methods(cells))
    first, *rest = heading(dataset, published_name, frame)
    caption = (first.replace("Paper vs ours", "Ablation (HAFrame Table 6 layout)"), *rest)
    note = footnote(summary, ddof, " Bold: our interval does not overlap the paper's.")
    document = _document(frame, caption, note, banner, ablation_grid)
    return frame, document
