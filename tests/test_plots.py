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


def test_tsne_panels_written(tmp_path):
    fine, coarse = hierarchy_labels(per_class=15)
    indices, _, _ = plots.select_tsne_subset(fine, coarse, seed=0)
    rng = np.random.default_rng(6)
    panels = [(title, rng.normal(size=(len(indices), 2)) + fine[indices, None], fine[indices], coarse[indices])
              for title in ("CE", "Hinge CE")]
    plots.plot_tsne_panels(panels, tmp_path / "tsne", fine_names={0: "beaver"})
    assert_figure_files(tmp_path / "tsne")


def test_muller_panels_written(tmp_path):
    templates = simplex_etf(3, 6)
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(3), 30)
    features = templates[labels] + 0.1 * rng.normal(size=(90, 6))
    panel = ("train", plots.muller_projection(features, templates), labels,
             plots.muller_projection(templates, templates), ["beaver", "otter", "tench"])
    plots.plot_muller_panels([panel, ("val", *panel[1:])], tmp_path / "muller")
    assert_figure_files(tmp_path / "muller")


def test_nc_curves_written(tmp_path):
    curves = {method: {"nc1": [(e, 10.0 / (e + 1 + i)) for e in range(0, 50, 5)],
                       "angular_collapse_mean": [(e, 0.2 / (e + 1)) for e in range(0, 50, 5)],
                       "nc3_self_duality": [(e, 1.0 / (e + 2)) for e in range(0, 50, 5)]}
              for i, method in enumerate(["CE", "HAFrame"])}
    plots.plot_nc_curves(curves, ["nc1", "angular_collapse_mean", "nc3_self_duality"], tmp_path / "nc")
    assert_figure_files(tmp_path / "nc")


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
    assert curves["main/ce_t1"]["nc3_self_duality"] == [(6, 0.5)]
    assert curves["main/haframe (NC3 on raw means)"]["nc3_self_duality"] == [(6, 0.1)]
    assert curves["main/haframe (NC3 on raw means)"]["nc1"] == [(6, 1.0)]
