#!/usr/bin/env python3
"""Transcribe HAFrame (ICCV 2023) Tables 3, 4 and 6 from the paper's text into the published-numbers CSV.

    python tools/transcribe_haframe_tables.py SOURCE.txt featgeom/resources/published/haframe_iccv2023.csv

SOURCE.txt is the paper's text with each table row on one tab-separated line and every cell printed as
"<mean> +/- <ci>" (the form of the source document the project was given). Means and CIs are copied as
printed, never re-rounded. Run once; the CSV is checked by eye and by tests/test_comparison.py against
cells copied literally from the source. featgeom.published reads the CSV; nothing reads SOURCE.txt at run time.
"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

HEADER = """\
# Published numbers of HAFrame: T. Liang, J. Davis, "Inducing Neural Collapse to a Fixed Hierarchy-Aware Frame
# for Reducing Mistake Severity", ICCV 2023, arXiv:2303.05689. Tables 3 (CIFAR-100), 4 (iNaturalist2019) and
# 6 (ablation, four datasets): mean and 95% CI half-width over 5 runs, copied as printed.
# Made by tools/transcribe_haframe_tables.py; see README.md in this folder.
"""
COLUMNS = ["table", "dataset", "row", "paper_row", "method", "metric", "mean", "ci"]
METRICS = ["top1", "mistake_severity", "hierdist@1", "hierdist@5", "hierdist@20"]  # the tables' column order
CELL = re.compile(r"^(?P<mean>\d+\.\d+) \+/- (?P<ci>\d+\.\d+)$")
CAPTION = re.compile(r"^Table (?P<table>\d+)\.")
TABLE_DATASET = {"3": "cifar100", "4": "inaturalist19"}
TABLE6_DATASET = {"FGVC-Aircraft": "fgvc_aircraft", "CIFAR-100": "cifar100",
                  "iNaturalist2019": "inaturalist19", "tiered-ImageNet-H": "tiered_imagenet"}
METHOD_KEY = {"cross-entropy": "ce", "CRM [24]": "crm", "Flamingo [7]": "flamingo", "HAFeature [17]": "hafeature"}
MODEL_SUFFIX = {"Type-I": "_t1", "Type-II": "_t2"}
# Table 6 rows by their ticks (L_CE, T(.), HAF, L_COS): our method keys.
TABLE6_METHOD = {"✓✗✗✗": "ce_t1", "✓✓✗✗": "ce_t2", "✓✓✓✗": "haframe_noloss", "✓✓✓✓": "haframe"}
TABLE6_COMPONENTS = ("L_CE", "T", "HAF", "L_COS")


def metric_cells(cells: list[str]) -> list[tuple[str, str]]:
    """(mean, ci) of the five metric cells, as printed."""
    if len(cells) != len(METRICS):
        raise ValueError(f"expected {len(METRICS)} metric cells, got {cells}")
    matches = [CELL.match(c.strip()) for c in cells]
    if not all(matches):
        raise ValueError(f"cell not of the form '<mean> +/- <ci>' in {cells}")
    return [(m["mean"], m["ci"]) for m in matches]


def comparison_row(cells: list[str], model: str) -> tuple[str, str, str, list]:
    """Tables 3 / 4: 'Type-I<TAB>cross-entropy<TAB>...' or '<TAB>CRM [24]<TAB>...' (model carried down)."""
    model = cells[0] or model
    label = cells[1]
    method = "haframe" if label == "HAFrame (ours)" else METHOD_KEY[label] + MODEL_SUFFIX[model]
    return model, f"{model} {label}", method, metric_cells(cells[2:])


def ablation_row(cells: list[str], dataset: str) -> tuple[str, str, str, list]:
    """Table 6: 'CIFAR-100<TAB>WideResNet28<TAB>✓<TAB>✗<TAB>✗<TAB>✗<TAB>...' (dataset carried down)."""
    dataset = cells[0] or dataset
    ticks = "".join(c.strip() for c in cells[2:6])
    used = " + ".join(name for name, tick in zip(TABLE6_COMPONENTS, ticks) if tick == "✓")
    return dataset, f"{cells[1]} ({used})", TABLE6_METHOD[ticks], metric_cells(cells[6:])


def table_blocks(text: str):
    """(table number, row lines) of every table whose header row names 'Mistake Severity'."""
    block = None
    for line in text.splitlines():
        if "Mistake Severity" in line and "\t" in line:
            block = []
        elif block is not None and (caption := CAPTION.match(line.strip())):
            yield caption["table"], block
            block = None
        elif block is not None and "+/-" in line:
            block.append(line.rstrip("\n").split("\t"))


def transcribe(text: str) -> list[dict]:
    rows = []
    for table, lines in table_blocks(text):
        carried, position = "", {}
        for cells in lines:
            if table == "6":
                carried, label, method, values = ablation_row(cells, carried)
                dataset = TABLE6_DATASET[carried]
            else:
                carried, label, method, values = comparison_row(cells, carried)
                dataset = TABLE_DATASET[table]
            position[dataset] = position.get(dataset, 0) + 1
            rows += [{"table": table, "dataset": dataset, "row": position[dataset], "paper_row": label,
                      "method": method, "metric": metric, "mean": mean, "ci": ci}
                     for metric, (mean, ci) in zip(METRICS, values)]
    return rows


def main(source: str, out: str) -> None:
    rows = transcribe(Path(source).read_text(encoding="utf-8"))
    with open(out, "w", newline="", encoding="utf-8") as fh:
        fh.write(HEADER)
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} cells from tables {sorted({r['table'] for r in rows})} -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
