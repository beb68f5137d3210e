"""featgeom.stats (CI over seeds) and featgeom.tables (one grid of cells, rendered as Markdown, LaTeX and HTML)."""
import math

import numpy as np
import pandas as pd
import pytest

from featgeom.stats import SUMMARY_COLUMNS, ci95_halfwidth, summarise_runs
from featgeom.tables import (MAIN_METRICS, Code, Grid, Math, Strong, document, html_page, latex, latex_escape,
                             markdown, summary_grid)

T_975_4DOF = 2.776445105  # scipy.stats.t.ppf(0.975, 4), as used by HAFrame's multiple_runs_eval.py


def test_ci95_population_std_by_default():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    std0 = math.sqrt(((values - 3.0) ** 2).sum() / 5)  # = sqrt(2)
    assert ci95_halfwidth(values) == pytest.approx(T_975_4DOF * std0 / math.sqrt(5), rel=1e-8)


def test_ci95_sample_std_option():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    std1 = math.sqrt(((values - 3.0) ** 2).sum() / 4)
    assert ci95_halfwidth(values, ddof=1) == pytest.approx(T_975_4DOF * std1 / math.sqrt(5), rel=1e-8)


def test_ci95_single_value_is_nan():
    assert math.isnan(ci95_halfwidth([3.0]))


def runs():
    rows = []
    for model_type, method in [("Type-I", "CE"), ("Type-I", "CE+CRM"), ("Type-II", "HAFrame")]:
        for seed in range(5):
            rows.append(("cifar100_main", model_type, method, seed, "top1", 70.0 + seed))
            rows.append(("cifar100_main", model_type, method, seed, "hierdist@1", 1.0 + 0.1 * seed))
    return pd.DataFrame(rows, columns=["experiment", "model_type", "method", "seed", "metric", "value"])


def test_summarise_runs_columns_order_and_values():
    summary = summarise_runs(runs())
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["method"].unique()) == ["CE", "CE+CRM", "HAFrame"]
    assert list(summary["metric"].iloc[:2]) == ["top1", "hierdist@1"]  # input order, not sorted
    top1 = summary.iloc[0]
    assert top1["mean"] == pytest.approx(72.0)
    assert top1["ci95"] == pytest.approx(ci95_halfwidth([70, 71, 72, 73, 74]))
    assert top1["n_seeds"] == 5


def test_summarise_runs_rejects_bad_input():
    with pytest.raises(ValueError, match="lacks column"):
        summarise_runs(runs().drop(columns="seed"))
    doubled = pd.concat([runs(), runs().iloc[:1]])
    with pytest.raises(ValueError, match="same seed appears twice"):
        summarise_runs(doubled)


def render_markdown(summary, metrics, **grid):
    return markdown(document([summary_grid(summary, metrics, **grid)], None))


def render_latex(summary, metrics, **grid):
    return latex(document([summary_grid(summary, metrics, **grid)], None))


def test_markdown_table():
    text = render_markdown(summarise_runs(runs()), MAIN_METRICS, caption="CIFAR-100", digits=2)
    lines = text.splitlines()
    assert "**CIFAR-100**" in lines[0]
    assert "| Model | Method | Top-1 | Mistake Severity | HierDist@1 | HierDist@5 | HierDist@20 |" in lines
    ce_row = next(line for line in lines if "| CE |" in line)
    assert ce_row.startswith("| Type-I | CE | 72.00 ± 1.76 | – | 1.20 ± ")
    crm_row = next(line for line in lines if "| CE+CRM |" in line)
    assert crm_row.startswith("|  | CE+CRM |")  # model type shown once per group
    assert any(line.startswith("| Type-II | HAFrame |") for line in lines)
    assert "95% CI half-width over n = 5 seeds" in text and "std(ddof=0)" in text


def test_latex_table_escapes_and_booktabs():
    summary = summarise_runs(runs())
    summary["method"] = summary["method"].str.replace("CE+CRM", "CE_CRM")
    text = render_latex(summary, [("top1", "Top-1"), ("hierdist@1", "HierDist@1"), ("missing_key", "X_Y")],
                        caption="tiered_imagenet results")
    assert r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text
    assert r"\begin{tabular}{llrrr}" in text
    assert r"CE\_CRM" in text and r"X\_Y" in text and r"tiered\_imagenet" in text
    assert "CE_CRM" not in text.replace(r"CE\_CRM", "")
    assert r"72.00 $\pm$ 1.76" in text and "--" in text
    assert r"95\% CI" in text and r"t_{0.975,n-1}" in text


def test_latex_escape_specials():
    assert latex_escape("a_b & 50% #1 <=2") == r"a\_b \& 50\% \#1 \textless{}=2"


def test_mixed_seed_counts_keep_their_braces_in_latex():
    summary = summarise_runs(runs()[lambda r: (r.method != "HAFrame") | (r.seed < 3)])
    assert r"$n \in \{3, 5\}$ seeds" in render_latex(summary, MAIN_METRICS)
    assert "n ∈ {3, 5} seeds" in render_markdown(summary, MAIN_METRICS)


def test_every_rendering_escapes_its_special_characters():
    grid = Grid(("A & B ", Code("published:")), ["x_1", "<y>"], [[Strong("a|b"), Math("√n", r"\sqrt{n}")]], "lr")
    doc = document([grid], None)
    assert "**A & B `published:`**" in markdown(doc) and r"| **a\|b** | √n |" in markdown(doc)
    tex = latex(doc)
    assert r"\caption{A \& B \texttt{published:}}" in tex and r"x\_1 & \textless{}y\textgreater{} \\" in tex
    assert r"\textbf{a|b} & $\sqrt{n}$ \\" in tex and r"\begin{tabular}{lr}" in tex
    page = html_page(doc, "t")
    assert "<p><strong>A &amp; B <code>published:</code></strong></p>" in page
    assert '<tr><th>x_1</th><th class="r">&lt;y&gt;</th></tr>' in page
    assert '<tr><td><strong>a|b</strong></td><td class="r">√n</td></tr>' in page


def test_one_table_per_experiment():
    two = pd.concat([runs(), runs().assign(experiment="other")])
    with pytest.raises(ValueError, match="one table per experiment"):
        render_markdown(summarise_runs(two), MAIN_METRICS, caption="x", digits=2)


def test_html_rendering_of_a_table():
    grid = summary_grid(summarise_runs(runs()), MAIN_METRICS, caption="A & B", note="Losses: CE: ce")
    page = html_page(document([grid], "PILOT RUN (seeds<=1)"), title="cifar100: main")
    assert page.startswith("<!DOCTYPE html>") and "<title>cifar100: main</title>" in page
    assert '<p class="banner"><strong>PILOT RUN (seeds&lt;=1)</strong></p>' in page
    assert "<p><strong>A &amp; B [PILOT RUN: not a result]</strong></p>" in page
    assert '<tr><th>Model</th><th>Method</th><th class="r">Top-1</th>' in page
    assert '<tr><td>Type-I</td><td>CE</td><td class="r">72.00 ± 1.76</td>' in page
    assert page.count("<tr>") == 4 and "<p><em>mean ± 95% CI half-width" in page
    assert "<p>Losses: CE: ce</p>" in page
