"""Plots: Müller projection geometry, subset selection, t-SNE wrappers, and figure files on disk."""
import numpy as np
import pytest

from featgeom import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def simplex_etf(K, d, seed=0):
    """K unit rows in R^d with pairwise cosine −1/(K−1), randomly rotated (d ≥ K)."""
    basis, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, K)))
    return np.sqrt(K / (K - 1)) * (np.eye(K) - 1.0 / K) @ basis.T


def pairwise_distances(points):
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


@pytest.mark.parametrize("templates", [
    simplex_etf(3, 7),
    np.random.default_rng(0).normal(size=(3, 9)),
], ids=["etf", "random"])
def test_templates_project_to_a_congruent_triangle_with_t1_at_origin(templates):
    coords = plots.muller_projection(templates, templates)
    assert coords[0] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert pairwise_distances(coords) == pytest.approx(pairwise_distances(templates), abs=1e-12)


def test_etf_templates_give_an_equilateral_triangle():
    sides = pairwise_distances(plots.muller_projection(simplex_etf(3, 5), simplex_etf(3, 5)))[np.triu_indices(3, 1)]
    assert sides == pytest.approx(np.full(3, sides[0]))


def test_projection_drops_only_the_off_plane_component():
    templates = np.random.default_rng(1).normal(size=(3, 6))
    origin, basis = plots.muller_basis(templates)
    assert basis @ basis.T == pytest.approx(np.eye(2), abs=1e-12)
    offset = np.random.default_rng(8).normal(size=6)
    off_plane = offset - (basis @ offset) @ basis  # orthogonal to both basis vectors
    in_plane = origin + np.array([1.5, -2.0]) @ basis
    assert plots.muller_projection((in_plane + off_plane)[None], templates)[0] == pytest.approx([1.5, -2.0])


def test_collinear_templates_are_an_error():
    t1, direction = np.ones(4), np.arange(4.0)
    with pytest.raises(ValueError, match="collinear"):
        plots.muller_projection(np.zeros((1, 4)), np.stack([t1, t1 + direction, t1 - 2.5 * direction]))


def test_bias_augmentation_reproduces_logits():
    rng = np.random.default_rng(2)
    X, W, bias = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)), rng.normal(size=4)
    X_aug, W_aug = plots.augment_with_bias(X, W, bias)
    assert X_aug @ W_aug.T == pytest.approx(X @ W.T + bias)
    assert plots.augment_with_bias(X, W, None)[1].shape == (4, 3)


def test_default_muller_classes_two_siblings_and_an_outsider():
    parent = np.repeat(np.arange(5), 4)
    first, second, outsider = plots.default_muller_classes(parent, seed=3)
    assert parent[first] == parent[second] and parent[outsider] != parent[first] and first != second
    assert list(plots.default_muller_classes(parent, seed=3)) == [first, second, outsider]


def hierarchy_labels(n_coarse=5, fine_per_coarse=3, per_class=50):
    fine = np.repeat(np.arange(n_coarse * fine_per_coarse), per_class)
    return fine, fine // fine_per_coarse


def test_tsne_subset_is_deterministic_and_respects_the_hierarchy():
    fine, coarse = hierarchy_labels()
    indices, chosen_coarse, chosen_fine = plots.select_tsne_subset(fine, coarse, max_per_class=20, seed=4)
    again = plots.select_tsne_subset(fine, coarse, max_per_class=20, seed=4)
    assert np.array_equal(indices, again[0]) and np.array_equal(chosen_fine, again[2])
    assert len(chosen_coarse) == 3 and len(chosen_fine) == 6 and len(indices) == 120
    assert set(np.unique(coarse[indices])) == set(chosen_coarse.tolist())
    assert np.all(np.bincount(fine[indices])[chosen_fine] == 20)


def test_tsne_subset_needs_enough_coarse_classes():
    fine, coarse = hierarchy_labels(n_coarse=2)
    with pytest.raises(ValueError, match="need 3"):
        plots.select_tsne_subset(fine, coarse)


@pytest.mark.parametrize("backend", ["opentsne", "sklearn"])
def test_tsne_embed_shape_and_seed_determinism(backend):
    X = np.random.default_rng(5).normal(size=(90, 64))
    first = plots.tsne_embed(X, seed=0, backend=backend)
    assert first.shape == (90, 2) and np.all(np.isfinite(first))
    assert np.array_equal(first, plots.tsne_embed(X, seed=0, backend=backend))


def test_unknown_tsne_backend_is_an_error():
    with pytest.raises(ValueError, match="backend"):
        plots.tsne_embed(np.zeros((10, 3)), backend="umap")


def assert_figure_files(stem):
    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    assert sorted(p.name for p in stem.parent.iterdir()) == sorted([png.name, pdf.name])  # no temp leftovers


def drawn(fig):
    """The figure laid out as saved, and a renderer to measure its texts with."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def overlapping(texts, renderer):
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_text()]
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]


def legend_texts(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_tsne_panels_draw_one_panel_per_method_with_class_names(tmp_path):
    fine, coarse = hierarchy_labels(per_class=15)
    indices, _, chosen_fine = plots.select_tsne_subset(fine, coarse, seed=0)
    rng = np.random.default_rng(6)
    panels = [(title, rng.normal(size=(len(indices), 2)) + fine[indices, None], fine[indices], coarse[indices])
              for title in ("CE", "Hinge CE")]
    names = {int(f): f"fine-{f}" for f in chosen_fine}
    fig = plots.plot_tsne_panels(panels, tmp_path / "tsne", fine_names=names, coarse_names={0: "mammals"},
                                 banner="PILOT RUN (seeds<=1)")
    assert_figure_files(tmp_path / "tsne")
    assert [ax.get_title() for ax in fig.axes] == ["CE", "Hinge CE"]
    assert legend_texts(fig) == [names[int(f)] for f in sorted(chosen_fine)]
    assert all(len(ax.collections) == 6 for ax in fig.axes)  # 3 coarse x 2 fine classes
    assert_banner_clear_of_titles(fig)


def assert_banner_clear_of_titles(fig):
    renderer = drawn(fig)
    banner = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        title = ax.title.get_window_extent(renderer)
        assert title.y1 <= banner.y0, (ax.get_title(), title, banner)


def test_muller_panels_label_every_star_without_overprinting(tmp_path):
    templates = simplex_etf(3, 6)
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(3), 30)
    # features spread 20x wider than the templates' triangle (CE): the stars sit close together on the panel
    features = 20 * templates[labels] + rng.normal(size=(90, 6))
    panel = ("ce", plots.muller_projection(features, templates), labels,
             plots.muller_projection(templates, templates), ["beaver", "otter", "tench"])
    fig = plots.plot_muller_panels([panel, ("haframe", *panel[1:])], tmp_path / "muller", banner="PILOT")
    assert_figure_files(tmp_path / "muller")
    assert [ax.get_title() for ax in fig.axes] == ["ce", "haframe"]
    assert legend_texts(fig) == ["beaver", "otter", "tench"]
    renderer = drawn(fig)
    for ax in fig.axes:
        stars = [t for t in ax.texts if t.get_text() in ("beaver", "otter", "tench")]
        assert len(stars) == 3 and not overlapping(stars, renderer)
    assert_banner_clear_of_titles(fig)


def nc_history(scale, epochs=range(0, 50, 5)):
    return {"nc1": [(e, scale * 10.0 / (e + 1)) for e in epochs],
            "angular_collapse_mean": [(e, scale * 0.2 / (e + 1)) for e in epochs],
            "nc3_self_duality": [(e, scale / (e + 2)) for e in epochs]}


def by_seed(*scales):
    per_seed = [nc_history(s) for s in scales]
    return {metric: {seed: h[metric] for seed, h in enumerate(per_seed)} for metric in per_seed[0]}


def test_nc_curves_one_panel_per_experiment_and_metric_with_the_seeds_band(tmp_path):
    curves = {"main": {"ce_t1": by_seed(1.0, 1.2), "haframe": by_seed(0.5)},
              "coarse_fine": {"ce": by_seed(2.0)}}
    curves["coarse_fine"]["ce"]["angular_collapse_mean"] = {0: []}  # no frame, no angular collapse
    metrics = ["nc1", "angular_collapse_mean", "nc3_self_duality"]
    fig = plots.plot_nc_curves(curves, metrics, tmp_path / "nc", banner="PILOT")
    assert_figure_files(tmp_path / "nc")
    assert len(fig.axes) == 6
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split(":")[0] for t in titles] == ["main"] * 3 + ["coarse_fine"] * 3
    assert titles[0] == "main: " + plots._METRIC_TITLES["nc1"]
    assert [len(ax.lines) for ax in fig.axes] == [2, 2, 2, 1, 0, 1]  # methods of that experiment only
    assert [len(ax.collections) for ax in fig.axes] == [1, 1, 1, 0, 0, 0]  # the band of ce_t1's 2 seeds
    assert [t.get_text() for t in fig.axes[4].texts] == ["not measured in this experiment"]
    band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() == pytest.approx(1.2 * 10.0) and band.min() == pytest.approx(10.0 / 46)
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), [1.1 * 10.0 / (e + 1) for e in range(0, 50, 5)])
    assert legend_texts(fig) == ["ce_t1 (mean, band: 2 seeds)", "haframe", "ce"]
    assert fig.axes[0].get_yscale() == "log"
    assert_banner_clear_of_titles(fig)


def test_paper_vs_ours_clips_intervals_to_the_metric_range_and_marks_it(tmp_path):
    entries = [("ce_t1", (77.65, 0.26), (60.0, 80.0), True), ("haframe", (77.71, 0.23), (99.0, 0.5), False),
               ("mine", None, (50.0, np.nan), None)]
    fig = plots.plot_paper_vs_ours([("Top-1 (%)", entries, (0.0, 100.0))], tmp_path / "pvo", title="cifar100",
                                   banner="PILOT")
    assert_figure_files(tmp_path / "pvo")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ce_t1", "haframe", "mine"]
    bar_ends = np.concatenate([c.get_segments()[0][:, 1] for c in ax.collections])
    assert bar_ends.min() == pytest.approx(0.0) and bar_ends.max() == pytest.approx(100.0)  # not -20 .. 140
    clipped = [line for line in ax.lines if line.get_marker() == "x"]
    assert sorted(float(line.get_ydata()[0]) for line in clipped) == [0.0, 100.0]
    assert "CI clipped at the metric's range" in legend_texts(fig)
    assert fig._suptitle.get_text() == "PILOT\ncifar100"
    assert_banner_clear_of_titles(fig)


def test_cifar_codes_are_shown_by_the_datasets_own_names(tmp_path):
    from featgeom.figures import _named, display_names
    np.savez(tmp_path / "arrays.npz", class_names=np.array(["L5-0", "L5-1"]), coarse_names=np.array(["L4-0"]),
             fine_label_names=np.array(["apple", "aquarium_fish"]), coarse_label_names=np.array(["fruit"]))
    names = display_names(tmp_path / "arrays.npz")
    assert names == {"L5-0": "apple", "L5-1": "aquarium_fish", "L4-0": "fruit"}
    assert _named(["L5-1", "L4-0", "nat0001"], names) == ["aquarium_fish", "fruit", "nat0001"]
    np.savez(tmp_path / "folders.npz", class_names=np.array(["a", "b"]))  # names are the codes: nothing to map
    assert display_names(tmp_path / "folders.npz") == {} and display_names(None) == {}


def test_nc_curves_are_read_per_experiment_method_and_seed(tmp_path):
    from featgeom.figures import nc_curves
    from featgeom.io import write_json
    paths = []
    for experiment, method, seed in (("main", "ce_t1", 0), ("main", "ce_t1", 1), ("lt", "ce", 0)):
        path = tmp_path / "results" / "c100" / experiment / method / f"seed{seed}" / "collapse.json"
        path.parent.mkdir(parents=True)
        write_json(path, {"history": [{"epoch": 5, "nc1": 1.0 + seed}, {"epoch": 10, "nc1": 0.5 + seed}]})
        paths.append(path)
    curves = nc_curves(paths)
    assert list(curves) == ["main", "lt"] and list(curves["main"]) == ["ce_t1"]
    assert curves["main"]["ce_t1"]["nc1"] == {0: [(5, 1.0), (10, 0.5)], 1: [(5, 2.0), (10, 1.5)]}
    assert curves["main"]["ce_t1"]["cone_angle_mean_deg"] == {0: [], 1: []}


def test_nc_curves_put_raw_and_centred_self_duality_in_one_panel_and_say_which(tmp_path):
    from featgeom import figures
    from featgeom.io import write_json
    history = {"ce_t1": [{"epoch": 6, "nc1": 2.0, "nc3_self_duality": 0.5}],
               "haframe": [{"epoch": 6, "nc1": 1.0, "nc3_self_duality_raw": 0.1}]}
    paths = []
    for method, records in history.items():
        path = tmp_path / f"results/synthetic/main/{method}/seed0/collapse.json"
        path.parent.mkdir(parents=True)
        write_json(path, {"final": records[-1], "history": records})
        paths.append(path)
    curves = figures.nc_curves(paths)
    assert curves["main"]["ce_t1"]["nc3_self_duality"] == {0: [(6, 0.5)]}
    assert curves["main"]["haframe (NC3 on raw means)"]["nc3_self_duality"] == {0: [(6, 0.1)]}
    assert curves["main"]["haframe (NC3 on raw means)"]["nc1"] == {0: [(6, 1.0)]}
