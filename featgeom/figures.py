"""Assemble the per-dataset figures from run outputs (numpy + matplotlib, no torch)."""
from __future__ import annotations

import numpy as np

from featgeom import plots
from featgeom.comparison import COMPARED, metric_label
from featgeom.evaluation import load_features
from featgeom.hierarchy_stage import coarse_labels
from featgeom.io import read_json
from featgeom.layout import parse_run_dir

NC_CURVE_METRICS = ("nc1", "angular_collapse_mean", "nc3_self_duality", "cone_angle_mean_deg")


RAW_NC3 = "nc3_self_duality_raw"  # fixed-frame runs' NC3 (raw means), drawn in the nc3_self_duality panel


def _nc_value(record: dict, metric: str):
    if metric == "nc3_self_duality" and metric not in record:
        return record.get(RAW_NC3)
    return record.get(metric)


def nc_curves(collapse_paths) -> dict:
    """{experiment: {method: {metric: {seed: [(epoch, value), ...]}}}} from the collapse.json files of the
    seeds with NC curves (train.collapse_seeds).

    The self-duality panel holds each run's NC3: centred means, or raw means for a fixed frame (as HAFrame's plot
    shows its ETF and HAFrame curves); the method's label then says so.
    """
    curves = {}
    for path in collapse_paths:
        run = parse_run_dir(path)
        history = read_json(path)["history"]
        raw = " (NC3 on raw means)" if any(RAW_NC3 in h for h in history) else ""
        by_metric = curves.setdefault(run["experiment"], {}).setdefault(run["method"] + raw, {})
        for metric in NC_CURVE_METRICS:
            by_metric.setdefault(metric, {})[run["seed"]] = [
                (h["epoch"], _nc_value(h, metric)) for h in history if _nc_value(h, metric) is not None]
    return curves


def plot_nc(collapse_paths, path_stem, banner=None):
    curves = nc_curves(collapse_paths)
    metrics = [m for m in NC_CURVE_METRICS
               if any(any(by_seed[m].values()) for by_method in curves.values() for by_seed in by_method.values())]
    return plots.plot_nc_curves(curves, metrics, path_stem, banner=banner)


def display_names(arrays_path=None) -> dict:
    """{class code: the dataset's own name}, e.g. CIFAR-100's 'L5-3' -> 'bear' and 'L4-0' -> 'aquatic_mammals'
    from its meta pickle (kept in the arrays as fine/coarse_label_names); {} where the codes are the names
    (image folders: the folder names). The CSVs keep the codes."""
    if arrays_path is None:
        return {}
    with np.load(arrays_path, allow_pickle=False) as arrays:
        pairs = [(codes, names) for codes, names in (("class_names", "fine_label_names"),
                                                      ("coarse_names", "coarse_label_names"))
                 if codes in arrays.files and names in arrays.files]
        return {str(code): str(name) for codes, names in pairs for code, name in zip(arrays[codes], arrays[names])
                if code != name}


def _named(codes, names: dict) -> list[str]:
    return [names.get(code, code) for code in codes]


def tsne_figure(feature_paths, levels: dict, path_stem, backend="opentsne", max_per_class=200, n_jobs=1, banner=None,
                names=None):
    """MSC Figure 1 style: test features of 3 coarse x 2 fine classes, one t-SNE panel per method.
    The same samples are embedded for every method (chosen from the first run's labels). `names`: display_names."""
    panels, chosen = [], None
    for path in feature_paths:
        feats = load_features(path)
        fine, coarse = feats["test_labels_fine"], feats["test_labels_coarse"]
        if chosen is None:
            chosen, _, _ = plots.select_tsne_subset(fine, coarse, max_per_class=max_per_class)
        embedding = plots.tsne_embed(feats["test_features"][chosen], backend=backend, n_jobs=n_jobs)
        panels.append((parse_run_dir(path)["method"], embedding, fine[chosen], coarse[chosen]))
    names = names or {}
    return plots.plot_tsne_panels(panels, path_stem, fine_names=dict(enumerate(_named(levels["class_order"], names))),
                                  coarse_names=dict(enumerate(_named(coarse_labels(levels)[0], names))), banner=banner)


def muller_panel(path, levels: dict, max_per_class=200, names=None):
    """One run's train features projected on the plane of three classifier rows (bias-augmented).

    Leaf-level classifier: two sibling classes and one from another branch. Coarse-level
    classifier, as in MSC Figure 1: three coarse templates, and two fine classes of each coloured apart,
    so one sees whether fine classes stay separable inside a coarse cluster.
    """
    feats, names = load_features(path), names or {}
    fine_names, coarse_names = _named(levels["class_order"], names), _named(coarse_labels(levels)[0], names)
    weight, bias = feats["classifier_weight"], feats["classifier_bias"]
    X, W = plots.augment_with_bias(feats["train_features"], weight, bias if bias.size else None)
    method = parse_run_dir(path)["method"]
    fine, coarse = feats["train_labels_fine"], feats["train_labels_coarse"]
    if weight.shape[0] == len(levels["class_order"]):
        classes = plots.default_muller_classes(np.asarray(levels["levels"][-2]["labels"]))
        picked, local = _sample_classes(fine, classes, max_per_class)
        templates = W[classes]
        return (method, plots.muller_projection(X[picked], templates), local,
                plots.muller_projection(templates, templates), [fine_names[c] for c in classes])
    _, coarse_classes, fine_classes = plots.select_tsne_subset(fine, coarse, max_per_class=max_per_class)
    picked, local = _sample_classes(fine, fine_classes, max_per_class)
    templates = W[coarse_classes]
    template_of_class = [int(np.flatnonzero(coarse_classes == coarse[fine == f][0])[0]) for f in fine_classes]
    return (method, plots.muller_projection(X[picked], templates), local, plots.muller_projection(templates, templates),
            [fine_names[f] for f in fine_classes], template_of_class, [coarse_names[c] for c in coarse_classes])


def _sample_classes(labels, classes, max_per_class, seed=0):
    """Up to max_per_class indices of each class, and each sample's position in `classes`."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in classes]
    return np.concatenate(per_class), np.concatenate([np.full(len(idx), i) for i, idx in enumerate(per_class)])


def muller_figure(feature_paths, levels: dict, path_stem, max_per_class=200, banner=None, names=None):
    return plots.plot_muller_panels([muller_panel(p, levels, max_per_class, names) for p in feature_paths], path_stem,
                                    banner=banner)


def _mean_ci(mean, ci):
    return None if np.isnan(mean) else (float(mean), float(ci))


def metric_range(metric: str) -> tuple[float, float]:
    """The values a metric can take: top-1 accuracies are percentages, severities and distances are >= 0."""
    return (0.0, 100.0) if "top1" in metric else (0.0, np.inf)


def paper_vs_ours_panels(frame) -> list:
    """plots.plot_paper_vs_ours panels from a comparison.compare frame: one per metric, one entry per
    (experiment, method); the experiment is named only when there are several."""
    several = frame["experiment"].nunique() > 1
    panels = []
    for metric, part in frame.groupby("metric", sort=False):
        entries = [(f"{r.experiment}/{r.method}" if several else r.method, _mean_ci(r.paper_mean, r.paper_ci),
                    _mean_ci(r.ours_mean, r.ours_ci), bool(r.overlap) if r.status == COMPARED else None)
                   for r in part.itertuples(index=False)]
        panels.append((metric_label(metric), entries, metric_range(metric)))
    return panels


def paper_vs_ours_figure(frame, path_stem, title="", banner=None):
    return plots.plot_paper_vs_ours(paper_vs_ours_panels(frame), path_stem, title=title, banner=banner)
