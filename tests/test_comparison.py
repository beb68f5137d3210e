"""Published numbers (HAFrame Tables 3, 4, 6) and the paper-vs-ours / ablation builders on fixed numbers."""
import math

import pandas as pd
import pytest

from featgeom import published, tables
from featgeom.comparison import (COMPARED, NO_PUBLISHED, NOT_RUN, build_ablation, build_paper_vs_ours, compare,
                                 intervals_overlap, metric_label)
from featgeom.config import ConfigError
from featgeom.figures import paper_vs_ours_figure

METRICS = ["top1", "mistake_severity", "hierdist@1", "hierdist@5", "hierdist@20"]
# Copied literally from the paper's text (each line: the row's metric cells, tab-separated).
PAPER_LINES = {
    ("3", "cifar100", "crm_t1"):
        "77.63 +/- 0.2800\t2.30 +/- 0.0255\t0.51 +/- 0.0093\t1.11 +/- 0.0077\t2.18 +/- 0.0028",
    ("4", "inaturalist19", "hafeature_t2"):
        "68.46 +/- 4.6278\t2.21 +/- 0.1298\t0.70 +/- 0.1501\t1.50 +/- 0.1235\t2.49 +/- 0.0842",
    ("6", "tiered_imagenet", "haframe_noloss"):
        "73.54 +/- 0.2328\t6.93 +/- 0.0274\t1.83 +/- 0.0117\t5.45 +/- 0.0026\t6.82 +/- 0.0048",
    ("6", "fgvc_aircraft", "haframe"):
        "80.49 +/- 0.4692\t2.02 +/- 0.0381\t0.39 +/- 0.0039\t1.74 +/- 0.0027\t2.45 +/- 0.0024",
}


@pytest.fixture(scope="module")
def cells():
    return published.read_published()


@pytest.mark.parametrize("key", sorted(PAPER_LINES))
def test_published_file_matches_cells_copied_from_the_paper(cells, key):
    table, dataset, method = key
    expected = [tuple(float(x) for x in cell.split(" +/- ")) for cell in PAPER_LINES[key].split("\t")]
    row = {c.metric: (c.mean, c.ci) for c in cells if (c.table, c.dataset, c.method) == key}
    assert [row[m] for m in METRICS] == expected


def test_published_file_has_every_cell_of_tables_3_4_6(cells):
    assert len(cells) == 34 * 5
    per_table = {t: {(c.dataset, c.row) for c in cells if c.table == t} for t in ("3", "4", "6")}
    assert len(per_table["3"]) == 9 and len(per_table["4"]) == 9 and len(per_table["6"]) == 16
    assert published.published_datasets(cells) == ["cifar100", "fgvc_aircraft", "inaturalist19", "tiered_imagenet"]
    assert published.ablation_methods(cells) == {1: "ce_t1", 2: "ce_t2", 3: "haframe_noloss", 4: "haframe"}
    # Table 6 repeats Table 3's CIFAR-100 rows: one merged number, from both tables
    assert published.numbers_of(cells, "cifar100")[("haframe", "top1")].tables == "3, 6"


def _published_file(tmp_path, body):
    path = tmp_path / "published.csv"
    path.write_text("# source\n" + ",".join(published.COLUMNS) + "\n" + body)
    return path


@pytest.mark.parametrize("body, message", [
    ("3,cifar100,1,CE,ce_t1,top1,77.65,0.2635,extra\n", "line 3: 9 fields"),
    ("3,cifar100,1,CE,ce_t1,top1,seventy,0.26\n", "line 3: row, mean and ci must be numbers"),
    ("3,cifar100,1,CE,ce_t1,top5,77.65,0.26\n", "line 3: unknown metric 'top5'"),
    ("3,cifar100,1,CE,ce_t1,top1,77.65,-0.26\n", "line 3: mean must be finite and ci"),
    ("3,cifar100,1,CE,ce_t1,top1,77.65,0.26\n6,cifar100,1,R50,ce_t1,top1,77.60,0.26\n",
     "cifar100 ce_t1 top1 is 77.65 ± 0.26 in table 3 but 77.6 ± 0.26 in table 6"),
])
def test_malformed_published_file_is_named(tmp_path, body, message):
    path = _published_file(tmp_path, body)
    with pytest.raises(ValueError, match=str(path)) as error:
        published.read_published(path)
    assert message in str(error.value)


def test_published_name_without_numbers_is_rejected(cells):
    config = {"datasets": {"mine": {"published": "cifar10"}, "demo": {}}}
    with pytest.raises(ConfigError, match="datasets.mine.published = 'cifar10': no published numbers"):
        published.check_published_names(config, cells)
    published.check_published_names({"datasets": {"c": {"published": "cifar100"}, "demo": {}}}, cells)


def test_intervals_overlap_closed_and_single_seed_points():
    assert intervals_overlap(10.0, 1.0, 12.0, 1.0)  # [9, 11] and [11, 13] touch
    assert not intervals_overlap(10.0, 1.0, 12.5, 1.0)
    assert intervals_overlap(10.0, 1.0, 10.9, math.nan) and not intervals_overlap(10.0, 1.0, 11.1, math.nan)


def ours(rows):
    """A main-table summary: rows of (method, {metric: (mean, ci95)}, n_seeds)."""
    return pd.DataFrame([{"experiment": "main", "model_type": "II", "method": method, "metric": metric,
                          "mean": mean, "ci95": ci, "n_seeds": n}
                         for method, values, n in rows for metric, (mean, ci) in values.items()],
                        columns=["experiment", "model_type", "method", "metric", "mean", "ci95", "n_seeds"])


FIXED = ours([
    # CIFAR-100 paper: HAFrame top-1 77.71 ± 0.2319, HierDist@5 1.11 ± 0.0018
    ("haframe", {"top1": (77.50, 0.1), "hierdist@5": (1.20, 0.02)}, 5),
    ("ce_t1", {"top1": (77.00, math.nan)}, 1),  # paper 77.65 ± 0.2635: a point outside
    ("mine", {"top1": (50.0, 1.0)}, 5),
])


def row(frame, method, metric):
    return frame[(frame.method == method) & (frame.metric == metric)].iloc[0]


def test_paper_vs_ours_on_fixed_numbers(cells):
    frame, document = build_paper_vs_ours(FIXED, cells, "cifar100", "cifar100")
    markdown, latex = tables.markdown(document), tables.latex(document)
    top1 = row(frame, "haframe", "top1")
    assert (top1.paper_mean, top1.paper_ci, top1.status) == (77.71, 0.2319, COMPARED)
    assert top1.difference == pytest.approx(-0.21) and top1.overlap  # [77.40, 77.60] meets [77.48, 77.94]
    far = row(frame, "haframe", "hierdist@5")  # [1.18, 1.22] vs [1.1082, 1.1118]
    assert far.difference == pytest.approx(0.09) and not far.overlap
    point = row(frame, "ce_t1", "top1")
    assert not point.overlap and math.isnan(point.ours_ci)
    assert row(frame, "mine", "top1").status == NO_PUBLISHED and pd.isna(row(frame, "mine", "top1").overlap)
    assert row(frame, "flamingo_t2", "hierdist@20").status == NOT_RUN
    assert set(frame.method) == {"haframe", "ce_t1", "mine", "crm_t1", "flamingo_t1", "hafeature_t1", "ce_t2",
                                 "crm_t2", "flamingo_t2", "hafeature_t2", "haframe_noloss"}
    lines = markdown.splitlines()
    assert ("| haframe | Type-II HAFrame (ours) | Top-1 (%) ↑ | 77.71 ± 0.23 | 77.50 ± 0.10 | -0.21 | yes |"
            in lines)
    assert "|  |  | HierDist@5 ↓ | 1.1100 ± 0.0018 | 1.200 ± 0.020 | +0.09 | **no** |" in lines
    assert "| 77.65 ± 0.26 | 77.00 (1 seed) | -0.65 | **no (ours: 1 seed, a point)** |" in markdown
    assert "| mine |  | Top-1 (%) ↑ | no published number | 50.00 ± 1.00 | – | – |" in lines
    assert r"\textbf{no}" in latex and r"77.71 $\pm$ 0.23" in latex and "Table(s) 3, 6" in markdown


def test_experiment_without_any_published_method_is_not_compared(cells):
    # The NC figure's type-I CE baseline (hidden units = K) is its own experiment, of no paper row.
    baseline = ours([("ce_t1_h1010", {"top1": (60.0, math.nan)}, 1)]).assign(experiment="nc_etf_baseline")
    summary = pd.concat([FIXED, baseline], ignore_index=True)
    frame = compare(summary, published.numbers_of(cells, "inaturalist19"))
    assert set(frame.experiment) == {"main"} and "ce_t1_h1010" not in set(frame.method)
    assert set(compare(summary, {}).experiment) == {"main", "nc_etf_baseline"}  # no paper: every run says so


def test_dataset_without_published_numbers_says_so(cells):
    frame, document = build_paper_vs_ours(FIXED, cells, "synthetic", None, banner="PILOT RUN (seeds<=1)")
    markdown = tables.markdown(document)
    assert set(frame.status) == {NO_PUBLISHED} and set(frame.method) == {"haframe", "ce_t1", "mine"}
    assert markdown.startswith("> **PILOT RUN (seeds<=1)**")
    assert "the paper has no numbers for this dataset" in markdown and "`published:`" in markdown
    assert r"\texttt{published:}" in tables.latex(document)


def test_ablation_shows_table6_rows_beside_the_papers(cells):
    frame, document = build_ablation(FIXED, cells, "cifar100", "cifar100")
    markdown = tables.markdown(document)
    assert list(dict.fromkeys(frame.row)) == [1, 2, 3, 4]
    assert list(dict.fromkeys(frame.method)) == ["ce_t1", "ce_t2", "haframe_noloss", "haframe"]
    assert row(frame, "haframe_noloss", "top1").paper_mean == 77.30 and row(frame, "ce_t2", "top1").status == NOT_RUN
    lines = markdown.splitlines()
    row3 = "| 3 | type-II, fixed HAFrame, α = 0 | haframe_noloss | paper (Table 6) | 77.30 ± 0.38"
    assert any(line.startswith(row3) for line in lines)
    missing = "no value in our runs"  # haframe runs but FIXED gives it two metrics only
    assert f"|  |  |  | ours | 77.50 ± 0.10 | {missing} | {missing} | **1.200 ± 0.020** | {missing} |" in lines


def test_paper_vs_ours_figure_draws_one_panel_per_metric(cells, tmp_path):
    frame = compare(FIXED, published.numbers_of(cells, "cifar100"))
    fig = paper_vs_ours_figure(frame, tmp_path / "paper_vs_ours", title="cifar100")
    assert (tmp_path / "paper_vs_ours.png").read_bytes()[:4] == b"\x89PNG"
    assert [ax.get_title() for ax in fig.axes] == [metric_label(m) for m in dict.fromkeys(frame.metric)]
    top1 = fig.axes[0]
    assert [t.get_text() for t in top1.get_xticklabels()] == list(frame[frame.metric == "top1"].method)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"paper (mean ± 95% CI)", "ours, overlaps the paper", "ours, does not overlap the paper"} <= set(legend)
    assert fig._suptitle.get_text() == "cifar100"
