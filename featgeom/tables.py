"""Results tables (Markdown, LaTeX and HTML) from a `stats.summarise_runs` summary.

Layout as in the HAFrame paper's comparison tables: one row per (model type, method), the model
type written only on the first row of its group, one column per metric, cells "mean ± ci95".
"""
from __future__ import annotations

import html
import math
import re

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
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  # symbols the comparison tables print, in forms pdflatex sets without extra packages
                  "±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "α": r"$\alpha$", "−": r"$-$",
                  "–": "--"}


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


def markdown_grid(header, rows, caption: str = "", footnote: str = "", align: str = "") -> str:
    """A Markdown pipe table; align: one 'l' or 'r' per column (default: all left)."""
    align = align or "l" * len(header)
    lines = [f"**{caption}**", ""] if caption else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "".join("---:|" if a == "r" else "---|" for a in align))
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", f"_{footnote}_", ""] if footnote else [""]
    return "\n".join(lines)


def latex_grid(header, rows, caption: str = "", footnote: str = "", colspec: str = "",
               rules_before=()) -> str:
    """booktabs tabular in a table float. Cells are LaTeX already (escape text with latex_escape);
    rules_before: indices of the rows a \\midrule precedes (group boundaries)."""
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    lines += [r"\begin{tabular}{" + (colspec or "l" * len(header)) + "}", r"\toprule",
              " & ".join(header) + r" \\", r"\midrule"]
    for i, row in enumerate(rows):
        if i in rules_before:
            lines.append(r"\midrule")
        lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"] + ([footnote] if footnote else []) + [r"\end{table}", ""]
    return "\n".join(lines)


def _grouped_rows(summary_df, metrics, digits: int, pm: str, missing: str, text=str):
    """Rows (model type shown once per group) and the indices where a new model type starts."""
    rows, starts, previous_type = [], [], None
    for model_type, method, cells in _cells(summary_df, metrics, digits, pm, missing):
        if previous_type is not None and model_type != previous_type:
            starts.append(len(rows))
        rows.append([text(model_type) if model_type != previous_type else "", text(method), *cells])
        previous_type = model_type
    return rows, starts


def render_markdown(summary_df: pd.DataFrame, metrics=MAIN_METRICS, caption: str = "", digits: int = 2,
                    ddof: int = 0) -> str:
    """Markdown table; `metrics` is [(summary metric key, column header)]."""
    rows, _ = _grouped_rows(summary_df, metrics, digits, " ± ", MISSING)
    return markdown_grid(["Model", "Method", *(h for _, h in metrics)], rows, caption,
                         ci_footnote(summary_df, ddof), align="ll" + "r" * len(metrics))


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def render_latex(summary_df: pd.DataFrame, metrics=MAIN_METRICS, caption: str = "", digits: int = 2,
                 ddof: int = 0) -> str:
    """booktabs tabular in a table float; a \\midrule separates model types."""
    rows, starts = _grouped_rows(summary_df, metrics, digits, r" $\pm$ ", "--", text=latex_escape)
    header = ["Model", "Method", *(latex_escape(h) for _, h in metrics)]
    footnote = latex_footnote(latex_ci_text(summary_df, ddof))
    return latex_grid(header, rows, caption, footnote, "ll" + "c" * len(metrics), starts)


def latex_ci_text(summary_df: pd.DataFrame, ddof: int = 0) -> str:
    """The LaTeX form of `ci_footnote`."""
    counts = _seed_counts(summary_df).replace("∈", r"\in")
    return (r"mean $\pm$ 95\% CI half-width over $" + counts + r"$ seeds: "
            rf"$t_{{0.975,n-1}}\cdot\mathrm{{std}}_{{\mathrm{{ddof}}={ddof}}}/\sqrt{{n}}$")


def latex_footnote(text: str) -> str:
    """A small-print line under a tabular (text is LaTeX already)."""
    return r"\\[2pt]{\footnotesize " + text + "}"


# ----------------------------------------------------------------------------- HTML (for `snakemake --report`)
# The report shows HTML (and images) in place but offers Markdown and CSV only as downloads, so every
# table also gets an HTML rendering, converted from its Markdown: one source for both.

_HTML_STYLE = ("body{font-family:sans-serif;font-size:14px} table{border-collapse:collapse;margin:8px 0}"
               " th,td{border:1px solid #bbb;padding:3px 8px} td{text-align:right} td:nth-child(-n+2){text-align:left}"
               " .banner{color:#b00;font-weight:bold}")
_INLINE = [(re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"), (re.compile(r"`(.+?)`"), r"<code>\1</code>")]


def _inline_html(text: str) -> str:
    text = html.escape(text, quote=False)
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


def _html_table(rows: list[str]) -> list[str]:
    """A Markdown pipe table (header, separator, body) as an HTML table."""
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    header, body = cells[0], cells[2:]
    out = ["<table>", "<tr>" + "".join(f"<th>{_inline_html(c)}</th>" for c in header) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>" for row in body]
    return out + ["</table>"]


def _html_paragraph(line: str) -> str:
    if line.startswith("> "):
        return f'<p class="banner">{_inline_html(line[2:])}</p>'
    if len(line) > 2 and line.startswith("_") and line.endswith("_"):
        return f"<p><em>{_inline_html(line[1:-1])}</em></p>"
    return f"<p>{_inline_html(line)}</p>"


def markdown_to_html(markdown: str, title: str) -> str:
    """A standalone HTML page of the Markdown these renderers write: pipe tables, bold captions, the
    pilot banner (> ...), italic footnotes (_..._), plain lines. Not a general Markdown converter."""
    body, table = [], []
    for line in markdown.splitlines() + [""]:
        if line.lstrip().startswith("|"):
            table.append(line)
            continue
        if table:
            body += _html_table(table)
            table = []
        if line.strip():
            body.append(_html_paragraph(line.strip()))
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_HTML_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
