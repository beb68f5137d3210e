"""The hierarchy stage of a dataset: class order, leaf distances and per-level label maps."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from featgeom.hierarchy import (Hierarchy, HierarchyError, leaf_distances, level_labels, level_table, load_edges,
                                load_paths_csv, read_distance_csv)


def read_class_list(path) -> list[str]:
    names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path}: the dataset lists no classes")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate class names {duplicates[:5]}")
    return names


def load_hierarchy(sources: dict, classes: list[str], flat: bool = False) -> Hierarchy:
    """The tree named by the config (paths CSV or edge list), or all classes as siblings when flat."""
    if flat:
        return Hierarchy([(c,) for c in classes], source="flat hierarchy")
    if "paths" in sources:
        return load_paths_csv(sources["paths"])
    if "edges" in sources:
        return load_edges(sources["edges"])
    raise HierarchyError("the dataset's hierarchy names neither `paths` nor `edges` (nor `flat: true`)")


def check_hierarchy_files(sources: dict, produced: dict | None = None) -> None:
    """Parse-time check of a dataset's hierarchy files: a bad edit stops the workflow before any job
    runs, so nothing finished is deleted. Raises HierarchyError naming the file and the culprit.

    sources: the configured files ({paths | edges, distances}); they must exist. produced: files the
    workflow wrote ({paths, distances}: a synthetic tree, results/<ds>/hierarchy/distances.csv),
    checked when they exist, since a hand edit there would make Snakemake rerun every job downstream.
    """
    present = {k: v for k, v in (produced or {}).items() if Path(v).exists()}
    for files in (sources, present):
        if "paths" in files or "edges" in files:
            load_hierarchy(files, [])
        if "distances" in files:
            read_distance_csv(files["distances"])


def published_distances(path, classes: list[str]) -> np.ndarray:
    """A published K x K distance file, reordered to the dataset's class order."""
    names, matrix = read_distance_csv(path)
    missing = sorted(set(classes) - set(names))
    if missing:
        raise HierarchyError(f"{path}: no distances for dataset class(es) {missing[:5]}")
    index = {n: i for i, n in enumerate(names)}
    order = np.array([index[c] for c in classes])
    return matrix[np.ix_(order, order)]


def build_hierarchy_outputs(sources: dict, classes: list[str], flat: bool = False, coarse_level: int | None = None,
                            class_list: str = "the dataset's class list"):
    """Return (class_order, distances K x K, levels dict) for the dataset's classes.

    levels["coarse"] is the level at depth `coarse_level` (1 = top): the coarse labels of the
    dataset (CIFAR-20 = depth 4 of the CIFAR-100 tree); absent when no coarse level is configured.
    `class_list` names where `classes` were read (the data rule's classes.txt), for error messages.
    """
    hierarchy = load_hierarchy(sources, classes, flat)
    _check_dataset_classes(hierarchy, classes, class_list)
    if "distances" in sources:
        distances = published_distances(sources["distances"], classes)
    else:
        distances = leaf_distances(hierarchy, classes)
    levels = [{"depth": depth + 1, "names": names, "labels": labels.tolist()}
              for depth, (names, labels) in enumerate(level_labels(hierarchy, classes))]
    out = {"class_order": classes, "height": int(distances.max()), "levels": levels}
    if coarse_level is not None:
        if not 1 <= coarse_level < len(levels):
            raise HierarchyError(f"coarse_level {coarse_level} is not an inner level of the hierarchy "
                                 f"(depths 1..{len(levels) - 1}; {len(levels)} = the leaves)")
        out["coarse"] = levels[coarse_level - 1]
    return classes, distances, out


def _check_dataset_classes(hierarchy: Hierarchy, classes: list[str], class_list: str) -> None:
    """Hierarchy.check_classes, saying what to do: the class list is the dataset as last prepared or verified."""
    try:
        hierarchy.check_classes(classes, source=class_list)
    except HierarchyError as err:
        raise HierarchyError(f"{err}. Make the hierarchy's leaves and the dataset's classes the same; if the dataset "
                             f"has changed since {class_list} was written, rebuild it: "
                             f"snakemake --forcerun {class_list}") from err


def coarse_labels(levels: dict) -> tuple[list[str], np.ndarray]:
    """(coarse class names, coarse label of every fine class) from a levels.json."""
    if "coarse" not in levels:
        raise ValueError("levels.json has no coarse level: set datasets.<name>.hierarchy.coarse_level")
    return levels["coarse"]["names"], np.asarray(levels["coarse"]["labels"], dtype=np.int64)


def level_table_of(levels: dict, source: str = "levels.json") -> np.ndarray:
    """int64 [L, K] level x class label table (see hierarchy.level_table) from a levels.json."""
    return level_table([level["labels"] for level in levels["levels"]], source)
