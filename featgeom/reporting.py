"""Per-dataset tables: gather every run's JSON results into one long table, summarise over
seeds (mean ± 95% CI) and write Markdown, LaTeX and HTML. No torch."""
from __future__ import annotations

import re

import pandas as pd

from featgeom import stats, tables
from featgeom.io import read_json, write_text
from featgeom.layout import parse_run_dir
from featgeom.lineage import runs_of_other_code, training_code_hash

# (metric key in the long table, column header) per table; keys are the names in the run's JSON files.
TABLE_METRICS = {
    "main": tables.MAIN_METRICS,
    "coarse_fine": [("coarse_top1", "Coarse Top-1"), ("probe_top1", "Fine Probe Top-1"),
                    ("probe_mistake_severity", "Fine Probe Severity"), ("nc1", "NC1"),
                    ("cone_angle_mean_deg", "Cone Angle (°)")],
    "longtail": [("top1", "Top-1"), ("many_shot_top1", "Many"), ("medium_shot_top1", "Medium"),
                 ("few_shot_top1", "Few"), ("mistake_severity", "Mistake Severity")],
    "collapse": [("nc1", "NC1"), ("nc2_equinorm_means", "NC2 equinorm"),
                 ("nc2_equiangular_std_means", "NC2 equiangular std"), ("nc2_maxangle_means", "NC2 max-angle"),
                 ("nc3_self_duality", "NC3 self-duality (centred means)"),
                 ("nc3_self_duality_raw", "NC3 self-duality (raw means, fixed frame)"), ("nc4_ncc_mismatch", "NC4"),
                 ("angular_collapse_mean", "Angular collapse"), ("cone_angle_mean_deg", "Cone angle (°)")],
}
HIERDIST = re.compile(r"^hierdist@(\d+)$")


def table_columns(table: str, present) -> list[tuple[str, str]]:
    """(metric key, header) of the columns a table shows: its metrics that are present; for `main`,
    HierDist@k at the k actually computed (a dataset with K < 20 classes has HierDist@K, not @20)."""
    columns = [(k, h) for k, h in TABLE_METRICS[table] if k in present and not (table == "main" and HIERDIST.match(k))]
    if table == "main":
        ks = sorted(int(m.group(1)) for m in map(HIERDIST.match, present) if m)
        columns += [(f"hierdist@{k}", f"HierDist@{k}") for k in ks]
    return columns


CAPTIONS = {
    "main": "Hierarchy-aware classification (HAFrame Table 3/4 layout), full test set",
    "coarse_fine": "Coarse pretraining, linear probe on fine labels (MSC Figure 1 setting)",
    "longtail": "Long-tail classification: overall and many/medium/few-shot top-1",
    "collapse": "Neural collapse of train features at the end of training",
}


def long_rows(paths, experiments: dict, read=read_json, rename=None, section=None) -> list[dict]:
    """One row per (run, numeric metric) of the given JSON files (section: a sub-dict to read)."""
    rows = []
    for path in paths:
        run = parse_run_dir(path)
        spec = experiments[run["experiment"]]["methods"][run["method"]]
        values = read(path)
        values = values.get(section, {}) if section else values
        for metric, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"experiment": run["experiment"], "model_type": str(spec.get("model_type", "")),
                             "method": run["method"], "seed": run["seed"],
                             "metric": (rename or {}).get(metric, metric), "value": float(value)})
    return rows


def table_long_frame(table: str, inputs: dict, experiments: dict) -> pd.DataFrame:
    """The long table (experiment, model_type, method, seed, metric, value) behind one table."""
    rename = {"top1": "coarse_top1"} if table == "coarse_fine" else None
    rows = long_rows(inputs.get("metrics", []), experiments, rename=rename)
    rows += long_rows(inputs.get("probe", []), experiments)
    if table in ("coarse_fine", "collapse"):
        rows += long_rows(inputs.get("collapse", []), experiments, section="final")
    return pd.DataFrame(rows, columns=stats.RUN_COLUMNS)


def describe_loss(spec: dict) -> str:
    """One line per method saying which loss made it, e.g. "hinge_ce (tau=0.5, mode=hinge)"."""
    if "crm_of" in spec:
        return f"CRM on {spec['crm_of']}"
    loss = dict(spec["loss"])  # every option, defaults included (the schema writes them into the spec)
    name = loss.pop("name")
    return f"{name} ({', '.join(f'{k}={v}' for k, v in sorted(loss.items()))})" if loss else name


def render_table(table: str, summary: pd.DataFrame, ddof: int, experiments: dict | None = None,
                 banner: str | None = None, other_code: list[str] = ()) -> tables.Document:
    """The table file: one grid per experiment, the losses listed under each. A pilot run's `banner` heads it, so a
    capped run cannot pass for a result; so does the list of runs made by other training code than the current one
    (`other_code`, featgeom.lineage.runs_of_other_code)."""
    metrics = table_columns(table, set(summary["metric"]))
    warnings = [f"Made by other training code than the current one ({training_code_hash()}): "
                f"{', '.join(other_code)}. Retrain them to report this code (README, After a code change)"
                ] if other_code else []
    grids = []
    for experiment, part in summary.groupby("experiment", sort=False):
        note = ""
        if experiments:
            methods = experiments[experiment]["methods"]
            note = "Losses: " + "; ".join(f"{m}: {describe_loss(methods[m])}" for m in part["method"].unique())
        grids.append(tables.summary_grid(part, metrics, f"{CAPTIONS[table]} — {experiment}", ddof=ddof, note=note))
    return tables.document(grids, banner, warnings)


def build_table(table: str, inputs: dict, experiments: dict, ddof: int = 0, banner: str | None = None):
    """(summary for the CSV, tables.Document). The CSV keeps full precision. inputs: metrics, probe, collapse and
    provenance (of the trained runs) file lists."""
    long = table_long_frame(table, inputs, experiments)
    long = long[long["metric"].isin({k for k, _ in table_columns(table, set(long["metric"]))})]  # e.g. n_test
    if long.empty:
        raise ValueError(f"no numeric results found for table {table!r}")
    summary = stats.summarise_runs(long, ddof=ddof)
    document = render_table(table, summary, ddof, experiments, banner, runs_of_other_code(inputs.get("provenance", [])))
    return summary, document


def write_table_files(output, frame: pd.DataFrame, document: tables.Document, title: str) -> None:
    """A table rule's outputs: output.csv (full precision), and the document as .md, .tex and .html (what the report
    shows)."""
    write_text(output.csv, frame.to_csv(index=False))
    write_text(output.md, tables.markdown(document))
    write_text(output.tex, tables.latex(document))
    write_text(output.html, tables.html_page(document, title))
