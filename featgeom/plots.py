"""Figures: t-SNE panels (MSC Figure 1), Müller et al. 2019 template-plane projections, neural-collapse curves.

Figures are built on `matplotlib.figure.Figure` directly (no pyplot), so nothing depends on a display or on global
backend state; each is saved as PNG + PDF through `featgeom.io.atomic_path`.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from featgeom import pilot
from featgeom.io import atomic_path

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_METRIC_TITLES = {
    "nc1": "NC1  tr(Σ_W Σ_B⁺)/K",
    "angular_collapse_mean": "angular collapse  mean |cos − S|",
    "angular_collapse_std": "angular collapse  std(cos − S)",
    # ‖W/‖W‖ − M/‖M‖‖²; the legend marks the fixed-frame runs, whose M is the raw class means
    "nc3_self_duality": "NC3 self-duality (centred means)",
    "nc2_maxangle_means": "NC2  mean |cos + 1/(K−1)|",
    "cone_angle_mean_deg": "cone angle (deg)",
}


# ----------------------------------------------------------------------------- saving

def save_figure(fig, path_stem, dpi=150, banner=None, title=""):
    """Write `<path_stem>.png` and `<path_stem>.pdf` atomically; return the figure (tests read what it draws).

    `banner` (a pilot run's warning) is written across the top in red, over the `title`, so the figure cannot pass
    for a result. They are the figure's suptitle, for which the constrained layout makes room above the panel titles.
    """
    if banner:
        fig.suptitle("\n".join(pilot.heading(banner, title)), color="red", fontweight="bold")
    elif title:
        fig.suptitle(title, fontsize=10)
    for ext in ("png", "pdf"):
        path = f"{path_stem}.{ext}"
        # A fixed (absent) PDF creation date keeps reruns byte-identical.
        metadata = {"CreationDate": None} if ext == "pdf" else None
        with atomic_path(path, suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight", metadata=metadata)
    return fig


def _panel_grid(n_panels, panel_size=4.0):
    # Constrained layout makes room for the figure-level legend placed "outside lower center".
    fig = Figure(figsize=(panel_size * n_panels, panel_size + 0.8), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, axes


# ----------------------------------------------------------------------------- t-SNE

def _fine_to_coarse(labels_fine, labels_coarse):
    pairs = np.unique(np.stack([labels_fine, labels_coarse], axis=1), axis=0)
    if len(np.unique(pairs[:, 0])) != len(pairs):
        raise ValueError("a fine class appears under more than one coarse class")
    return dict(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist()))


def select_tsne_subset(labels_fine, labels_coarse, n_coarse=3, n_fine=2, max_per_class=200, seed=0):
    """Pick n_coarse coarse classes, n_fine fine classes in each, and ≤ max_per_class samples per fine class.

    Deterministic for a seed. Returns (sorted sample indices, chosen coarse classes, chosen fine classes grouped by
    coarse class).
    """
    labels_fine = np.asarray(labels_fine)
    labels_coarse = np.asarray(labels_coarse)
    parent = _fine_to_coarse(labels_fine, labels_coarse)
    children = {c: sorted(f for f, p in parent.items() if p == c) for c in sorted(set(parent.values()))}
    eligible = [c for c, fine in children.items() if len(fine) >= n_fine]
    if len(eligible) < n_coarse:
        raise ValueError(f"only {len(eligible)} coarse classes have ≥ {n_fine} fine classes; need {n_coarse}")
    rng = np.random.default_rng(seed)
    coarse = np.sort(rng.choice(eligible, size=n_coarse, replace=False))
    fine = np.concatenate([np.sort(rng.choice(children[c], size=n_fine, replace=False)) for c in coarse])
    indices = [rng.permutation(np.flatnonzero(labels_fine == f))[:max_per_class] for f in fine]
    return np.sort(np.concatenate(indices)), coarse, fine


def _pca(X, n_components, seed):
    from sklearn.decomposition import PCA
    n_components = min(n_components, X.shape[0], X.shape[1])
    return PCA(n_components=n_components, random_state=seed).fit_transform(np.asarray(X, dtype=np.float64))


def tsne_embed(X, seed=0, n_jobs=1, backend="opentsne", pca_dims=50, perplexity=30.0):
    """2-D t-SNE of X after PCA to ≤ pca_dims dimensions; returns [n, 2] float64.

    backend='opentsne' uses openTSNE defaults (Barnes-Hut below 10k points, FFT interpolation above); 'sklearn' uses
    scikit-learn's Barnes-Hut TSNE. Perplexity is lowered to (n−1)/3 for tiny inputs, which both libraries need.
    """
    if backend not in ("opentsne", "sklearn"):
        raise ValueError(f"unknown t-SNE backend {backend!r}; use 'opentsne' or 'sklearn'")
    reduced = _pca(X, pca_dims, seed)
    perplexity = min(perplexity, (len(reduced) - 1) / 3)
    if backend == "opentsne":
        import openTSNE
        embedding = openTSNE.TSNE(perplexity=perplexity, n_jobs=n_jobs, random_state=seed).fit(reduced)
    else:
        from sklearn.manifold import TSNE
        embedding = TSNE(perplexity=perplexity, init="pca", learning_rate="auto", n_jobs=n_jobs,
                         random_state=seed).fit_transform(reduced)
    return np.asarray(embedding, dtype=np.float64)


def _fine_class_colours(fine_to_coarse):
    """Siblings share a tab20 hue (dark/light) when every coarse class shows ≤ 2 children, else tab10 in order."""
    from matplotlib import colormaps
    groups = [sorted(f for f, c in fine_to_coarse.items() if c == coarse)
              for coarse in sorted(set(fine_to_coarse.values()))]
    if max(len(group) for group in groups) <= 2:
        palette = colormaps["tab20"].colors
        return {f: palette[(2 * i + j) % 20] for i, group in enumerate(groups) for j, f in enumerate(group)}
    palette = colormaps["tab10"].colors
    return {f: palette[i % 10] for i, f in enumerate(f for group in groups for f in group)}


def _covariance_ellipse(points, n_std=2.0, **style):
    """Dashed ellipse covering ±n_std standard deviations of a 2-D point cloud."""
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(points, rowvar=False))
    angle = np.degrees(np.arctan2(eigenvectors[1, -1], eigenvectors[0, -1]))
    width, height = 2 * n_std * np.sqrt(np.maximum(eigenvalues[::-1], 0))
    return Ellipse(points.mean(axis=0), width, height, angle=angle, fill=False, linestyle="--", **style)


def _draw_tsne_panel(ax, title, emb, fine, coarse, colours, coarse_marker, fine_names, coarse_names):
    for f in sorted(colours):
        here = fine == f
        if here.any():
            marker = coarse_marker[coarse[here][0]]
            ax.scatter(emb[here, 0], emb[here, 1], s=6, color=colours[f], marker=marker, alpha=0.7,
                       linewidths=0, label=fine_names.get(f, f"fine {f}"))
    for c in np.unique(coarse):
        points = emb[coarse == c]
        if len(points) > 2:
            ax.add_patch(_covariance_ellipse(points, edgecolor="0.3", linewidth=1.0))
            ax.annotate(coarse_names.get(c, f"coarse {c}"), points.mean(axis=0), fontsize=8, ha="center",
                        color="0.2")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_tsne_panels(panels, path_stem, fine_names=None, coarse_names=None, banner=None):
    """One panel per method: colour = fine class, marker + dashed 2σ ellipse = coarse class (MSC Figure 1).

    panels: list of (title, emb [n, 2], fine labels [n], coarse labels [n]). Returns the figure (saved).
    """
    fine_names, coarse_names = dict(fine_names or {}), dict(coarse_names or {})
    all_fine = np.concatenate([np.asarray(p[2]) for p in panels])
    all_coarse = np.concatenate([np.asarray(p[3]) for p in panels])
    fine_to_coarse = _fine_to_coarse(all_fine, all_coarse)
    colours = _fine_class_colours(fine_to_coarse)
    coarse_marker = {c: _MARKERS[i % len(_MARKERS)] for i, c in enumerate(np.unique(all_coarse).tolist())}
    fig, axes = _panel_grid(len(panels))
    for ax, (title, emb, fine, coarse) in zip(axes, panels):
        _draw_tsne_panel(ax, title, np.asarray(emb), np.asarray(fine), np.asarray(coarse), colours,
                         coarse_marker, fine_names, coarse_names)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6), markerscale=2, frameon=False)
    return save_figure(fig, path_stem, banner=banner)


# ----------------------------------------------------------------------------- Müller et al. 2019 projection

def augment_with_bias(X, W, bias=None):
    """Append a constant 1 to every x and the bias to every template row, so x·w_k reproduces the logit with bias."""
    X = np.asarray(X, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    if bias is None:
        return X, W
    return (np.hstack([X, np.ones((len(X), 1))]),
            np.hstack([W, np.asarray(bias, dtype=np.float64)[:, None]]))


def muller_basis(templates, tol=1e-9):
    """Origin t1 and orthonormal basis [2, d] of the affine plane through three templates (Gram-Schmidt)."""
    t1, t2, t3 = np.asarray(templates, dtype=np.float64)
    edge12, edge13 = t2 - t1, t3 - t1
    scale = max(np.linalg.norm(edge12), np.linalg.norm(edge13))
    if np.linalg.norm(edge12) <= tol * max(scale, 1.0):
        raise ValueError("Müller projection: templates 1 and 2 coincide")
    u1 = edge12 / np.linalg.norm(edge12)
    v = edge13 - (edge13 @ u1) * u1
    if np.linalg.norm(v) <= tol * max(scale, 1.0):
        raise ValueError("Müller projection: the three templates are collinear, they span no plane")
    return t1, np.stack([u1, v / np.linalg.norm(v)])


def muller_projection(X, templates):
    """2-D coordinates ((x − t1)·u1, (x − t1)·u2) in the plane through the three templates; t1 maps to (0, 0)."""
    origin, basis = muller_basis(templates)
    return (np.asarray(X, dtype=np.float64) - origin) @ basis.T


def default_muller_classes(level_labels_parent, seed=0):
    """Three classes for a Müller plot: two siblings (same parent) and one from another branch, as in Müller's
    beaver/dolphin/otter vs tench rows. level_labels_parent[k] = parent id of class k."""
    parent = np.asarray(level_labels_parent)
    rng = np.random.default_rng(seed)
    families = [p for p in np.unique(parent) if np.sum(parent == p) >= 2]
    if not families or len(np.unique(parent)) < 2:
        raise ValueError("need a parent with ≥ 2 children and at least two parents")
    family = rng.choice(families)
    siblings = np.sort(rng.choice(np.flatnonzero(parent == family), size=2, replace=False))
    outsider = rng.choice(np.flatnonzero(parent != family))
    return np.array([*siblings, outsider], dtype=np.int64)


def _muller_colours(template_of_class):
    """One tab10 colour per class when classes are the templates; else dark/light tab20 pairs per template."""
    from matplotlib import colormaps
    if list(template_of_class) == list(range(len(template_of_class))):
        return list(colormaps["tab10"].colors[:len(template_of_class)])
    palette, seen = colormaps["tab20"].colors, {}
    colours = []
    for template in template_of_class:
        colours.append(palette[(2 * template + seen.get(template, 0)) % 20])
        seen[template] = seen.get(template, 0) + 1
    return colours


def _draw_muller_panel(ax, title, coords, labels, template_coords, class_names, template_of_class, template_names):
    colours = _muller_colours(template_of_class)
    for k, (name, colour) in enumerate(zip(class_names, colours)):
        here = labels == k
        ax.scatter(coords[here, 0], coords[here, 1], s=5, color=colour, alpha=0.5, linewidths=0, label=name)
    for t, name in enumerate(template_names):
        colour = colours[list(template_of_class).index(t)]
        ax.scatter(*template_coords[t], s=160, marker="*", color=colour, edgecolor="black", linewidths=0.8, zorder=3)
    _label_stars(ax, template_coords, template_names)
    ax.margins(0.15)  # room for the labels of stars at the edge
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")


def _label_stars(ax, coords, names, distance_pt=12):
    """Each star's name pushed away from the triangle's centre, so that close stars (a small triangle against
    the features' spread, as with CE) get labels in different directions instead of on top of each other."""
    centre = coords.mean(axis=0)
    for point, name in zip(coords, names):
        direction = point - centre
        norm = np.linalg.norm(direction)
        unit = direction / norm if norm > 0 else np.array([0.0, 1.0])
        ax.annotate(name, point, textcoords="offset points", xytext=tuple(distance_pt * unit), fontsize=8,
                    ha="left" if unit[0] >= 0 else "right", va="bottom" if unit[1] >= 0 else "top", zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.7})


def plot_muller_panels(panels, path_stem, banner=None):
    """panels: list of (title, coords [n, 2], labels [n], template_coords [3, 2], class_names) or, when the points
    are finer classes than the templates (MSC Figure 1: 2 fine classes per coarse template), of
    (title, coords, labels, template_coords, class_names, template_of_class, template_names).

    Labels index class_names; templates are drawn as black-edged stars.
    """
    fig, axes = _panel_grid(len(panels))
    for ax, panel in zip(axes, panels):
        title, coords, labels, template_coords, class_names = panel[:5]
        template_of_class = panel[5] if len(panel) > 5 else list(range(len(class_names)))
        template_names = panel[6] if len(panel) > 6 else class_names
        _draw_muller_panel(ax, title, np.asarray(coords), np.asarray(labels), np.asarray(template_coords),
                           class_names, template_of_class, template_names)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(len(names), 6), markerscale=3, frameon=False)
    return save_figure(fig, path_stem, banner=banner)


# ----------------------------------------------------------------------------- collapse curves

def _unique_legend_entries(axes):
    """Legend entries of all panels, each label once (a method may lack a metric in the first panel)."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    return list(entries.values()), list(entries)


def plot_nc_curves(curves, metrics, path_stem, log_metrics=("nc1",), banner=None):
    """One row of panels per experiment, one panel per metric, one line per method: the mean over the seeds
    measured (train.collapse_seeds), with their min-max band where there are several.

    curves[experiment][method][metric] = {seed: [(epoch, value), ...]}. Typical metrics: ("nc1",
    "angular_collapse_mean", "nc3_self_duality"); those in log_metrics get a log y axis.
    """
    from matplotlib import colormaps
    methods = list(dict.fromkeys(m for by_method in curves.values() for m in by_method))
    palette = colormaps["tab10" if len(methods) <= 10 else "tab20"].colors
    colour = {method: palette[i % len(palette)] for i, method in enumerate(methods)}  # same colour in every panel
    fig = Figure(figsize=(4.0 * len(metrics), 3.2 * len(curves) + 0.8), layout="constrained")
    axes = fig.subplots(len(curves), len(metrics), squeeze=False)
    for row, (experiment, by_method) in zip(axes, curves.items()):
        for ax, metric in zip(row, metrics):
            for method, by_metric in by_method.items():
                _draw_seed_band(ax, by_metric.get(metric, {}), method, colour[method])
            if not ax.has_data():  # e.g. angular collapse: only runs with a hierarchy frame have it
                ax.text(0.5, 0.5, "not measured in this experiment", ha="center", va="center", color="0.4",
                        transform=ax.transAxes)
                ax.set_yticks([])
            elif metric in log_metrics:
                ax.set_yscale("log")
            ax.set_title(f"{experiment}: {_METRIC_TITLES.get(metric, metric)}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
    handles, names = _unique_legend_entries(axes.ravel())
    fig.legend(handles, names, loc="outside lower center", ncol=min(max(len(names), 1), 5), frameon=False)
    return save_figure(fig, path_stem, banner=banner)


def _draw_seed_band(ax, by_seed: dict, method: str, colour) -> None:
    """Mean over seeds at the epochs every seed has; the min-max band of the seeds where there are several."""
    series = [dict(points) for points in by_seed.values() if points]
    if not series:
        return
    epochs = sorted(set.intersection(*(set(s) for s in series)))
    values = np.array([[s[e] for e in epochs] for s in series])
    label = method if len(series) == 1 else f"{method} (mean, band: {len(series)} seeds)"
    ax.plot(epochs, values.mean(axis=0), marker="o", markersize=3, label=label, color=colour)
    if len(series) > 1:
        ax.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=colour, alpha=0.2, linewidth=0)


# ----------------------------------------------------------------------------- paper vs ours

_PAPER_STYLE = {"color": "black", "marker": "s", "label": "paper (mean ± 95% CI)"}
_OURS_STYLE = {True: {"color": "tab:blue", "label": "ours, overlaps the paper"},
               False: {"color": "tab:red", "label": "ours, does not overlap the paper"},
               None: {"color": "tab:gray", "label": "ours, no published number"}}


_CLIPPED_STYLE = {"marker": "x", "color": "black", "markersize": 6, "linestyle": "none",
                  "label": "CI clipped at the metric's range"}


def _interval(ax, x, mean_ci, value_range=(-np.inf, np.inf), **style):
    """A point with its 95% CI bar, drawn only inside the metric's range (top-1 cannot leave 0-100, whatever
    t(0.975, 1) x std gives with 2 seeds); an end cut there is marked with an x. A NaN CI (one seed) draws the
    point alone."""
    mean, ci = mean_ci
    if np.isnan(ci):
        ax.plot([x], [mean], linestyle="none", markersize=5, **{"marker": "o", **style})
        return
    low, high = max(mean - ci, value_range[0]), min(mean + ci, value_range[1])
    ax.errorbar([x], [mean], yerr=[[mean - low], [high - mean]], capsize=3, linestyle="none", markersize=5,
                **{"marker": "o", **style})
    for end, cut in ((low, mean - ci < value_range[0]), (high, mean + ci > value_range[1])):
        if cut:
            ax.plot([x], [end], **_CLIPPED_STYLE)


def plot_paper_vs_ours(panels, path_stem, title="", banner=None, offset=0.18):
    """One panel per metric; per method the paper's interval (left) beside ours (right), ours coloured by
    whether the two overlap. panels: [(metric title, [(method, paper (mean, ci) | None, ours (mean, ci) | None,
    overlap True | False | None)], (lowest, highest) value of the metric)]."""
    fig, axes = _panel_grid(len(panels), panel_size=max(3.5, 0.45 * max(len(e) for _, e, _ in panels)))
    for ax, (metric_title, entries, value_range) in zip(axes, panels):
        for x, (_, paper, ours, overlap) in enumerate(entries):
            if paper is not None:
                _interval(ax, x - offset, paper, value_range, **_PAPER_STYLE)
            if ours is not None:
                _interval(ax, x + offset, ours, value_range, **_OURS_STYLE[overlap])
        ax.set_xticks(range(len(entries)), [method for method, *_ in entries], rotation=45, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(entries) - 0.4)
        ax.set_title(metric_title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles, names = _unique_legend_entries(axes)
    fig.legend(handles, names, loc="outside lower center", ncol=min(max(len(names), 1), 4), frameon=False)
    return save_figure(fig, path_stem, banner=banner, title=title)
