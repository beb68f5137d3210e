"""The papers' published numbers (featgeom/resources/published/): read, validated, looked up per dataset.

Only the csv module: the config check reads the file at parse time, on every SLURM job's re-parse.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

PUBLISHED_FILE = Path(__file__).resolve().parent / "resources" / "published" / "haframe_iccv2023.csv"
SOURCE = "HAFrame (Liang & Davis, ICCV 2023, arXiv:2303.05689)"
COLUMNS = ["table", "dataset", "row", "paper_row", "method", "metric", "mean", "ci"]
# Our metric key: (column header, which direction is better). Top-1 is an accuracy in %, as in metrics.json.
METRICS = {
    "top1": ("Top-1 (%)", "higher"),
    "mistake_severity": ("Mistake Severity", "lower"),
    "hierdist@1": ("HierDist@1", "lower"),
    "hierdist@5": ("HierDist@5", "lower"),
    "hierdist@20": ("HierDist@20", "lower"),
}
ABLATION_TABLE = "6"


@dataclass(frozen=True)
class PublishedCell:
    table: str
    dataset: str
    row: int
    paper_row: str
    method: str
    metric: str
    mean: float
    ci: float


@dataclass(frozen=True)
class PublishedNumber:
    """One (method, metric) of a dataset, merged over the tables that print it (they must agree)."""
    tables: str
    paper_row: str
    mean: float
    ci: float


def _data_lines(path):
    """(line number, text) of the file's non-comment, non-blank lines: the header first."""
    with open(path, encoding="utf-8") as fh:
        return [(n, line) for n, line in enumerate(fh, 1) if line.strip() and not line.startswith("#")]


def _parse_cell(path, lineno: int, values: list[str]) -> PublishedCell:
    where = f"{path}, line {lineno}"
    if len(values) != len(COLUMNS):
        raise ValueError(f"{where}: {len(values)} fields, expected {len(COLUMNS)} ({', '.join(COLUMNS)})")
    record = dict(zip(COLUMNS, values))
    if record["metric"] not in METRICS:
        raise ValueError(f"{where}: unknown metric {record['metric']!r}; known: {', '.join(METRICS)}")
    try:
        row, mean, ci = int(record["row"]), float(record["mean"]), float(record["ci"])
    except ValueError as err:
        raise ValueError(f"{where}: row, mean and ci must be numbers ({err})") from None
    if not (math.isfinite(mean) and math.isfinite(ci)) or ci < 0:
        raise ValueError(f"{where}: mean must be finite and ci a finite half-width >= 0 (got {mean}, {ci})")
    return PublishedCell(record["table"], record["dataset"], row, record["paper_row"], record["method"],
                         record["metric"], mean, ci)


def read_published(path=PUBLISHED_FILE) -> list[PublishedCell]:
    """Every cell of the file, checked: header, field types, one value per cell, repeated cells agree."""
    lines = _data_lines(path)
    if not lines:
        raise ValueError(f"{path}: no header and no data")
    (header_line, header), *rows = lines
    columns = next(csv.reader([header]))
    if columns != COLUMNS:
        raise ValueError(f"{path}, line {header_line}: header {columns}, expected {COLUMNS}")
    cells = [_parse_cell(path, n, next(csv.reader([text]))) for n, text in rows]
    _check_unique(path, cells)
    _check_repeats_agree(path, cells)
    return cells


def _check_unique(path, cells) -> None:
    seen = set()
    for c in cells:
        key = (c.table, c.dataset, c.row, c.metric)
        if key in seen:
            raise ValueError(f"{path}: table {c.table}, {c.dataset}, row {c.row}, {c.metric} appears twice")
        seen.add(key)


def _check_repeats_agree(path, cells) -> None:
    """A (dataset, method, metric) printed in two tables (Table 6 repeats Tables 3/4) must read the same."""
    first = {}
    for c in cells:
        other = first.setdefault((c.dataset, c.method, c.metric), c)
        if (other.mean, other.ci) != (c.mean, c.ci):
            raise ValueError(f"{path}: {c.dataset} {c.method} {c.metric} is {other.mean} ± {other.ci} in table "
                             f"{other.table} but {c.mean} ± {c.ci} in table {c.table}")


def published_datasets(cells) -> list[str]:
    return sorted({c.dataset for c in cells})


def numbers_of(cells, dataset: str | None) -> dict[tuple[str, str], PublishedNumber]:
    """{(method, metric): PublishedNumber} of one published dataset, in the paper's row order; {} for None."""
    merged: dict[tuple[str, str], list[PublishedCell]] = {}
    for c in sorted((c for c in cells if c.dataset == dataset), key=lambda c: (c.table, c.row)):
        merged.setdefault((c.method, c.metric), []).append(c)
    return {key: PublishedNumber(", ".join(c.table for c in group), group[0].paper_row, group[0].mean, group[0].ci)
            for key, group in merged.items()}


def ablation_methods(cells) -> dict[int, str]:
    """{row: our method key} of the ablation table (Table 6), the same for every dataset it covers."""
    methods: dict[int, str] = {}
    for c in cells:
        if c.table == ABLATION_TABLE and methods.setdefault(c.row, c.method) != c.method:
            raise ValueError(f"table {ABLATION_TABLE} row {c.row} is {methods[c.row]!r} for one dataset but "
                             f"{c.method!r} for {c.dataset}")
    return dict(sorted(methods.items()))


def check_published_names(config, cells) -> None:
    """Every `datasets.<name>.published` names a dataset of the published file (ConfigError otherwise)."""
    from featgeom.config import ConfigError

    known = published_datasets(cells)
    for dataset, ds in config["datasets"].items():
        name = ds.get("published")
        if name is not None and name not in known:
            raise ConfigError(f"datasets.{dataset}.published = {name!r}: no published numbers under that name in "
                              f"{PUBLISHED_FILE.name} (it has: {', '.join(known)})")
