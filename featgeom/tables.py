"""Results tables, built once as a grid of cells and rendered three ways: Markdown, LaTeX (booktabs) and HTML (the
rendering `snakemake --report` shows in place).

A `Document` is what one table file holds: heading lines (the pilot banner, warnings), then one `Grid` per
experiment (caption, header, rows of cells, footnote, a note line under it). A piece of text is a string or a tuple
of fragments: plain strings, `Strong`, `Code` and `Math` (a formula in a Unicode and a LaTeX form). The grid holds no
markup: each renderer escapes plain text for its format and sets the fragments its own way.

`summary_grid` lays out a `stats.summarise_runs` summary as the HAFrame paper's comparison tables: one row per
(model type, method), the model type written only on the first row of its group, one column per metric, cells
"mean ± ci95".

Small renderers rather than pandas' Styler.to_latex / to_html: Styler needs jinja2, which featgeom does not declare
(snakemake brings it), writes no Markdown, and its LaTeX escaping leaves ±, ↑, ↓, α and − to the font.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace

import pandas as pd

from featgeom import pilot

MAIN_METRICS = [
    ("top1", "Top-1"),
    ("mistake_severity", "Mistake Severity"),
    ("hierdist@1", "HierDist@1"),
    ("hierdist@5", "HierDist@5"),
    ("hierdist@20", "HierDist@20"),
]
MISSING = "–"
PM = " ± "


@dataclass(frozen=True)
class Strong:
    """Bold text: a result that misses the paper's interval, a caption."""
    text: str


@dataclass(frozen=True)
class Code:
    """A config key or file name, set in monospace."""
    text: str


@dataclass(frozen=True)
class Math:
    """A formula: `plain` (Unicode) in Markdown and HTML, `latex` (LaTeX math source, set between $...$) in LaTeX."""
    plain: str
    latex: str


@dataclass(frozen=True)
class Grid:
    """One table. align: one 'l' or 'r' per column (default: all left); group_starts: the rows that open a new
    group (a \\midrule in LaTeX); note: a plain line under the table (a comment in LaTeX)."""
    caption: object
    header: list
    rows: list
    align: str = ""
    footnote: object = ""
    group_starts: tuple = ()
    note: str = ""

    def alignment(self) -> str:
        return self.align or "l" * len(self.header)


@dataclass(frozen=True)
class Document:
    """The content of one table file: `heading` lines (set in bold above every table), then the grids."""
    heading: list
    grids: list


# ----------------------------------------------------------------------------- text fragments per format

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  # OT1 fonts set < and > as ¡ and ¿ outside math (the pilot banner's "seeds<=1")
                  "<": r"\textless{}", ">": r"\textgreater{}",
                  # symbols the comparison tables print, in forms pdflatex sets without extra packages
                  "±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "α": r"$\alpha$", "−": r"$-$",
                  "–": "--"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _html_escape(text: str) -> str:
    return html.escape(str(text), quote=False)


_MARKDOWN = {str: str, Strong: lambda f: f"**{f.text}**", Code: lambda f: f"`{f.text}`", Math: lambda f: f.plain}
_LATEX = {str: latex_escape, Strong: lambda f: rf"\textbf{{{latex_escape(f.text)}}}",
          Code: lambda f: rf"\texttt{{{latex_escape(f.text)}}}", Math: lambda f: f"${f.latex}$"}
_HTML = {str: _html_escape, Strong: lambda f: f"<strong>{_html_escape(f.text)}</strong>",
         Code: lambda f: f"<code>{_html_escape(f.text)}</code>", Math: lambda f: _html_escape(f.plain)}
_PLAIN = {str: str, Strong: lambda f: f.text, Code: lambda f: f.text, Math: lambda f: f.plain}


def _render(text, fragment_forms: dict) -> str:
    fragments = text if isinstance(text, tuple) else (text,)
    return "".join(next(form for kind, form in fragment_forms.items() if isinstance(f, kind))(f) for f in fragments)


def plain_text(text) -> str:
    """Text without markup, for a page or figure title."""
    return _render(text, _PLAIN)


# ----------------------------------------------------------------------------- Markdown

def _markdown_row(cells) -> str:
    return "| " + " | ".join(_render(c, _MARKDOWN).replace("|", r"\|") for c in cells) + " |"


def _markdown_grid(grid: Grid) -> str:
    lines = [f"**{_render(grid.caption, _MARKDOWN)}**", ""] if grid.caption else []
    lines.append(_markdown_row(grid.header))
    lines.append("|" + "".join("---:|" if a == "r" else "---|" for a in grid.alignment()))
    lines += [_markdown_row(row) for row in grid.rows]
    lines += ["", f"_{_render(grid.footnote, _MARKDOWN)}_", ""] if grid.footnote else [""]
    return "\n".join(lines)


def markdown(document: Document) -> str:
    blocks = [f"> **{line}**\n" for line in document.heading]
    for grid in document.grids:
        blocks += [_markdown_grid(grid)] + ([f"{grid.note}\n"] if grid.note else [])
    return "\n".join(blocks)


# ----------------------------------------------------------------------------- LaTeX

def _latex_row(cells) -> str:
    return " & ".join(_render(c, _LATEX) for c in cells) + r" \\"


def _latex_grid(grid: Grid) -> str:
    """booktabs tabular in a table float, the footnote in small print under the tabular."""
    lines = [r"\begin{table}[t]", r"\centering"]
    if grid.caption:
        lines.append(rf"\caption{{{_render(grid.caption, _LATEX)}}}")
    lines += [r"\begin{tabular}{" + grid.alignment() + "}", r"\toprule", _latex_row(grid.header), r"\midrule"]
    for i, row in enumerate(grid.rows):
        if i in grid.group_starts:
            lines.append(r"\midrule")
        lines.append(_latex_row(row))
    lines += [r"\bottomrule", r"\end{tabular}"]
    if grid.footnote:
        lines.append(r"\\[2pt]{\footnotesize " + _render(grid.footnote, _LATEX) + "}")
    return "\n".join(lines + [r"\end{table}", ""])


def latex(document: Document) -> str:
    blocks = [f"% {line}\n\\textbf{{{latex_escape(line)}}}\n" for line in document.heading]
    for grid in document.grids:
        blocks += [_latex_grid(grid)] + ([f"% {grid.note}\n"] if grid.note else [])
    return "\n".join(blocks)


# ----------------------------------------------------------------------------- HTML (for `snakemake --report`)
# The report shows HTML (and images) in place but offers Markdown and CSV only as downloads.

_HTML_STYLE = ("body{font-family:sans-serif;font-size:14px} table{border-collapse:collapse;margin:8px 0}"
               " th,td{border:1px solid #bbb;padding:3px 8px;text-align:left} .r{text-align:right}"
               " .banner{color:#b00;font-weight:bold}")


def _html_row(cells, tag: str, align: str) -> str:
    opening = {"l": f"<{tag}>", "r": f'<{tag} class="r">'}
    return "<tr>" + "".join(f"{opening[a]}{_render(c, _HTML)}</{tag}>" for c, a in zip(cells, align)) + "</tr>"


def _html_grid(grid: Grid) -> list[str]:
    lines = [f"<p><strong>{_render(grid.caption, _HTML)}</strong></p>"] if grid.caption else []
    lines += ["<table>", _html_row(grid.header, "th", grid.alignment())]
    lines += [_html_row(row, "td", grid.alignment()) for row in grid.rows] + ["</table>"]
    lines += [f"<p><em>{_render(grid.footnote, _HTML)}</em></p>"] if grid.footnote else []
    return lines + ([f"<p>{_html_escape(grid.note)}</p>"] if grid.note else [])


def html_page(document: Document, title: str) -> str:
    """A standalone HTML page of the document."""
    body = [f'<p class="banner"><strong>{_html_escape(line)}</strong></p>' for line in document.heading]
    for grid in document.grids:
        body += _html_grid(grid)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_HTML_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# ----------------------------------------------------------------------------- grids of a summary over seeds

def _cells(summary_df: pd.DataFrame, metrics, digits: int):
    """[(model_type, method, [cell per metric])] in first-appearance order."""
    experiments = summary_df["experiment"].unique()
    if len(experiments) > 1:
        raise ValueError(f"one table per experiment: filter the summary first (found {list(experiments)})")
    lookup = {(r.model_type, r.method, r.metric): (r.mean, r.ci95)
              for r in summary_df[["model_type", "method", "metric", "mean", "ci95"]].itertuples(index=False)}
    rows = []
    for model_type, method in summary_df[["model_type", "method"]].drop_duplicates().itertuples(index=False):
        cells = [_format_cell(*lookup[(model_type, method, key)], digits)
                 if (model_type, method, key) in lookup else MISSING
                 for key, _ in metrics]
        rows.append((str(model_type), str(method), cells))
    return rows


def _format_cell(mean, ci95, digits: int) -> str:
    if mean is None or math.isnan(float(mean)):
        return MISSING
    if ci95 is None or math.isnan(float(ci95)):
        return f"{mean:.{digits}f}"  # a single seed has no interval
    return f"{mean:.{digits}f}{PM}{ci95:.{digits}f}"


def _seed_counts(summary_df: pd.DataFrame) -> Math:
    counts = sorted({int(n) for n in summary_df["n_seeds"]})
    if len(counts) == 1:
        return Math(f"n = {counts[0]}", f"n = {counts[0]}")
    listed = ", ".join(map(str, counts))
    return Math(f"n ∈ {{{listed}}}", rf"n \in \{{{listed}\}}")


def ci_footnote(summary_df: pd.DataFrame, ddof: int = 0) -> tuple:
    """How the cells' intervals are computed."""
    return ("mean ± 95% CI half-width over ", _seed_counts(summary_df), " seeds: ",
            Math(f"t₀.₉₇₅,ₙ₋₁ · std(ddof={ddof}) / √n",
                 rf"t_{{0.975,n-1}}\cdot\mathrm{{std}}_{{\mathrm{{ddof}}={ddof}}}/\sqrt{{n}}"))


def summary_grid(summary_df: pd.DataFrame, metrics=MAIN_METRICS, caption="", digits: int = 2, ddof: int = 0,
                 note: str = "") -> Grid:
    """The table of one experiment's summary; `metrics` is [(summary metric key, column header)]. A new model type
    opens a group."""
    rows, starts, previous_type = [], [], None
    for model_type, method, cells in _cells(summary_df, metrics, digits):
        if previous_type is not None and model_type != previous_type:
            starts.append(len(rows))
        rows.append([model_type if model_type != previous_type else "", method, *cells])
        previous_type = model_type
    return Grid(caption, ["Model", "Method", *(h for _, h in metrics)], rows, "ll" + "r" * len(metrics),
                ci_footnote(summary_df, ddof), tuple(starts), note)


def document(grids: list[Grid], banner: str | None, warnings=()) -> Document:
    """A table file: a pilot run's `banner` and the `warnings` over the grids, the pilot mark on every caption."""
    return Document(pilot.heading(banner) + list(warnings), [replace(g, caption=pilot.marked(g.caption, banner))
                                                             for g in grids])
