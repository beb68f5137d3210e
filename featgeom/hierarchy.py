"""Class hierarchies (trees over the dataset classes) and the leaf-to-leaf distances built from them.

A `Hierarchy` stores, for each leaf, its path from the top level down to the leaf (node names, the
implicit root excluded). Depths may differ between leaves (tieredImageNet-H is ragged).

Distance semantics (as in HAFrame / MBM / CRM: MBM `better_mistakes/trees.py`): the distance
between two leaves is the height of their lowest common ancestor (LCA) counted from the leaves:
0 to itself, 1 for siblings, and in general the longest downward path from the LCA to any leaf below
it (nltk `lca.height() - 1`). For balanced trees this is H - depth(LCA).

Plain text formats only (CSV, whitespace edge lists); never pickles.
"""
from __future__ import annotations

import csv
import gzip
import io
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from featgeom.io import atomic_path, write_text

# Name of the implicit root in messages; never a real node.
_IMPLICIT_ROOT = "<root>"
_MAX_NAMED = 5  # how many culprits an error message lists before "..."


class HierarchyError(ValueError):
    """A hierarchy or distance file is malformed; the message names the file and the culprit(s)."""


def _names(items) -> str:
    items = sorted(str(x) for x in items)
    shown = ", ".join(repr(x) for x in items[:_MAX_NAMED])
    more = f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else ""
    return shown + more


class Hierarchy:
    """A tree given by one path (top level -> leaf) per leaf.

    `paths`: iterable of tuples of node names; the last name of each is the leaf. Node names must be
    unique across the whole tree (each node has exactly one parent). `source` names the file the
    paths came from, for error messages. `root_name` is the name of the (dropped) root, if known.
    """

    def __init__(self, paths, source: str = "<in memory>", root_name: str | None = None):
        self.source = str(source)
        self.root_name = root_name
        self._paths = {}
        for path in paths:
            path = tuple(str(p) for p in path)
            if not path:
                raise HierarchyError(f"{self.source}: empty path (a row without any node)")
            if path[-1] in self._paths:
                raise HierarchyError(f"{self.source}: duplicate leaf {path[-1]!r} (it has two paths)")
            self._paths[path[-1]] = path
        if not self._paths:
            raise HierarchyError(f"{self.source}: the hierarchy has no leaves (empty file?)")
        self._validate_tree()
        self._build_node_index()

    # ---- validation -------------------------------------------------------------------------
    def _validate_tree(self) -> None:
        parents = defaultdict(set)
        for path in self._paths.values():
            if len(set(path)) != len(path):
                repeated = {p for p in path if path.count(p) > 1}
                raise HierarchyError(
                    f"{self.source}: cycle: node(s) {_names(repeated)} appear twice on the path of leaf {path[-1]!r}"
                )
            for parent, child in zip((_IMPLICIT_ROOT,) + path[:-1], path):
                parents[child].add(parent)
        multi = {c: ps for c, ps in parents.items() if len(ps) > 1}
        if multi:
            child = sorted(multi)[0]
            raise HierarchyError(
                f"{self.source}: node(s) {_names(multi)} have two or more parents "
                f"(e.g. {child!r} under {_names(multi[child])})"
            )
        internal = {p for path in self._paths.values() for p in path[:-1]}
        leaf_and_internal = internal & self._paths.keys()
        if leaf_and_internal:
            raise HierarchyError(
                f"{self.source}: leaf(s) {_names(leaf_and_internal)} are also internal nodes (they have children)"
            )

    def _build_node_index(self) -> None:
        # Integer ids for all nodes; id 0 is the implicit root. Heights of every node are
        # precomputed so that leaf_distances is a pure array lookup.
        names = [_IMPLICIT_ROOT]
        node_id = {}
        for path in self._paths.values():
            for name in path:
                if name not in node_id:
                    node_id[name] = len(names)
                    names.append(name)
        self._node_id = node_id
        self._node_names = names
        height = np.zeros(len(names), dtype=np.int64)
        ids, rest = [], []
        for path in self._paths.values():
            ids.extend(node_id[n] for n in path)
            rest.extend(range(len(path) - 1, -1, -1))  # edges from the node down to this leaf
        np.maximum.at(height, np.asarray(ids, dtype=np.int64), np.asarray(rest, dtype=np.int64))
        height[0] = max(len(p) for p in self._paths.values())
        self._node_height = height

    # ---- accessors --------------------------------------------------------------------------
    @property
    def leaves(self) -> list[str]:
        """Leaf names, in the order they were given (file row order)."""
        return list(self._paths)

    @property
    def paths(self) -> dict[str, tuple[str, ...]]:
        """{leaf: (level_1 node, ..., leaf)}."""
        return dict(self._paths)

    @property
    def height(self) -> int:
        """Height of the root = longest leaf depth (root excluded) = the largest leaf distance."""
        return int(self._node_height[0])

    @property
    def internal_nodes(self) -> set[str]:
        return {p for path in self._paths.values() for p in path[:-1]}

    def node_height(self, name: str) -> int:
        """Longest downward path (in edges) from `name` to a leaf below it; 0 for leaves."""
        if name not in self._node_id:
            raise HierarchyError(f"{self.source}: no node named {name!r}")
        return int(self._node_height[self._node_id[name]])

    def edges(self) -> list[tuple[str, str]]:
        """(parent, child) pairs, the root written as `root_name` (or 'root'), each edge once."""
        root = self.root_name or "root"
        seen = {}
        for path in self._paths.values():
            for parent, child in zip((root,) + path[:-1], path):
                seen.setdefault(child, parent)
        return [(parent, child) for child, parent in seen.items()]

    def __eq__(self, other) -> bool:
        # Same tree = same path for every leaf; leaf order and root name do not matter.
        return isinstance(other, Hierarchy) and self._paths == other._paths

    def __repr__(self) -> str:
        return f"Hierarchy({len(self._paths)} leaves, height {self.height}, from {self.source})"

    # ---- class checks -----------------------------------------------------------------------
    def check_classes(self, class_names, source: str = "the dataset") -> None:
        """Raise HierarchyError unless `class_names` are exactly the leaves (any order, no repeats)."""
        class_names = [str(c) for c in class_names]
        repeated = {c for c, n in Counter(class_names).items() if n > 1}
        if repeated:
            raise HierarchyError(f"{source}: class name(s) {_names(repeated)} listed more than once")
        not_leaves = set(class_names) - self._paths.keys()
        if not_leaves:
            internal = not_leaves & self.internal_nodes
            detail = f" ({_names(internal)} are internal nodes of the hierarchy, not leaves)" if internal else ""
            raise HierarchyError(
                f"{source}: class(es) {_names(not_leaves)} are not leaves of the hierarchy {self.source}{detail}"
            )
        orphans = self._paths.keys() - set(class_names)
        if orphans:
            raise HierarchyError(f"{self.source}: leaf/leaves {_names(orphans)} match no class of {source}")

    # ---- arrays -----------------------------------------------------------------------------
    def ancestor_ids(self, class_order) -> np.ndarray:
        """int64 [K, height]: node id of each class's ancestor at depth 1..height; -1 below a shallow leaf."""
        anc = np.full((len(class_order), self.height), -1, dtype=np.int64)
        for row, leaf in enumerate(class_order):
            path = self._paths[leaf]
            anc[row, : len(path)] = [self._node_id[n] for n in path]
        return anc


# ---- distances and level labels ------------------------------------------------------------------
def leaf_distances(hierarchy: Hierarchy, class_order) -> np.ndarray:
    """int64 [K, K] LCA heights between the classes, in `class_order` (see the module docstring).

    Vectorised: for each depth the ancestors of all pairs are compared by broadcasting. Because every
    node has one parent, sharing the ancestor at depth d implies sharing all shallower ones, so the
    LCA depth is the number of depths with a common ancestor.
    """
    class_order = [str(c) for c in class_order]
    hierarchy.check_classes(class_order, source="class_order")
    anc = hierarchy.ancestor_ids(class_order)
    k = len(class_order)
    lca_depth = np.zeros((k, k), dtype=np.int64)
    for d in range(anc.shape[1]):
        col = anc[:, d]
        lca_depth += (col[:, None] == col[None, :]) & (col[:, None] >= 0)
    rows = np.broadcast_to(np.arange(k)[:, None], (k, k))
    lca_node = np.where(lca_depth > 0, anc[rows, np.maximum(lca_depth - 1, 0)], 0)  # 0 = implicit root
    return hierarchy._node_height[lca_node].astype(np.int64)


def level_labels(hierarchy: Hierarchy, class_order) -> list[tuple[list[str], np.ndarray]]:
    """Per level 1..height (top -> leaves): (node names at that level, int64 label of each class).

    A leaf shallower than a level stands for itself at the deeper levels, so the last level is the
    leaves themselves. Node names are numbered in order of first appearance along `class_order`,
    which makes the leaf level's labels equal to arange(K).
    """
    class_order = [str(c) for c in class_order]
    hierarchy.check_classes(class_order, source="class_order")
    paths = hierarchy.paths
    levels = []
    for depth in range(1, hierarchy.height + 1):
        names_per_class = np.array([paths[c][min(depth, len(paths[c])) - 1] for c in class_order], dtype=object)
        unique, first_index, inverse = np.unique(names_per_class, return_index=True, return_inverse=True)
        order = np.argsort(first_index, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        levels.append(([str(n) for n in unique[order]], rank[inverse.reshape(-1)].astype(np.int64)))
    return levels


def level_table(labels_per_level, source: str = "levels") -> np.ndarray:
    """int64 [L, K]: row l = the level-(l+1) label of every class, top level first, leaves last.

    The per-level heads of Flamingo and HAFeature need it: row l of `table[:, y]` is the target of the
    level-l head. The rows are `level_labels` output (levels.json): a leaf shallower than a level
    stands for itself there, which gives the official level sizes (tiered [2, 5, ..., 607, 608]).
    Raises HierarchyError naming `source` and the level when the rows do not form such a table.
    """
    rows = [np.asarray(labels, dtype=np.int64) for labels in labels_per_level]
    if len(rows) < 2:
        raise HierarchyError(f"{source}: {len(rows)} level(s); per-level heads need at least 2 (a flat "
                             "hierarchy has no coarser level)")
    k = len(rows[-1])
    for depth, row in enumerate(rows, start=1):
        _check_level_row(source, depth, row, k)
    if not np.array_equal(rows[-1], np.arange(k)):
        raise HierarchyError(f"{source}: the last level must label every class by itself (0..{k - 1} in class order)")
    table = np.stack(rows)
    for depth in range(1, len(rows)):
        parent_of_child(table, depth - 1, source)  # raises unless level depth+1 refines level depth
    return table


def _check_level_row(source, depth, row, k) -> None:
    if row.shape != (k,):
        raise HierarchyError(f"{source}: level {depth} labels {row.shape[0] if row.ndim else 0} classes, "
                             f"the leaf level {k}")
    if row.min() < 0 or set(np.unique(row).tolist()) != set(range(int(row.max()) + 1)):
        raise HierarchyError(f"{source}: level {depth} labels are not 0..n-1 without gaps")


def parent_of_child(table: np.ndarray, level: int, source: str = "levels") -> np.ndarray:
    """int64 [n_(level+1)]: the row-`level` parent of every node of row level+1 (0-based rows)."""
    parents, children = table[level], table[level + 1]
    parent = np.full(int(children.max()) + 1, -1, dtype=np.int64)
    parent[children] = parents
    two_parents = children[parent[children] != parents]
    if two_parents.size:
        raise HierarchyError(f"{source}: node(s) {_names(np.unique(two_parents))} of level {level + 2} sit under "
                             f"two different nodes of level {level + 1}; the levels do not form a tree")
    return parent


# ---- reading hierarchies ---------------------------------------------------------------------------
def _read_text(path) -> str:
    path = Path(path)
    if not path.exists():
        raise HierarchyError(f"{path}: file not found")
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            return fh.read()
    return path.read_text(encoding="utf-8")


def load_paths_csv(path) -> Hierarchy:
    """Paths CSV: header level_1,...,level_{H-1},leaf; one row per leaf; ragged rows end in empty cells."""
    rows = [r for r in csv.reader(io.StringIO(_read_text(path)))]
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise HierarchyError(f"{path}: empty file (expected a header level_1,...,leaf and one row per leaf)")
    header = [h.strip() for h in rows[0]]
    expected = [f"level_{i}" for i in range(1, len(header))] + ["leaf"]
    if header != expected:
        raise HierarchyError(f"{path}: header must be {','.join(expected)}, found {','.join(header)}")
    paths = []
    for line_no, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row]
        if len(cells) > len(header):
            raise HierarchyError(f"{path}: line {line_no} has {len(cells)} cells, the header has {len(header)}")
        while cells and not cells[-1]:
            cells.pop()
        if not all(cells):
            raise HierarchyError(f"{path}: line {line_no} has an empty cell before its leaf {cells[-1]!r}")
        paths.append(tuple(cells))
    if not paths:
        raise HierarchyError(f"{path}: no leaf rows below the header")
    return Hierarchy(paths, source=str(path))


def _parse_edges(path) -> list[tuple[str, str]]:
    lines = [ln for ln in _read_text(path).splitlines() if ln.strip()]
    if not lines:
        raise HierarchyError(f"{path}: empty file (expected parent/child edges)")
    if "," in lines[0]:  # CSV with a parent,child header
        rows = list(csv.reader(lines))
        if [c.strip() for c in rows[0]] != ["parent", "child"]:
            raise HierarchyError(f"{path}: a CSV edge list needs the header 'parent,child', found {lines[0]!r}")
        body, first_line = rows[1:], 2
    else:  # MBM *_isa.txt: 'parent child' per line
        body, first_line = [ln.split() for ln in lines], 1
    edges = []
    for line_no, cells in enumerate(body, start=first_line):
        cells = [c.strip() for c in cells]
        if len(cells) != 2 or not all(cells):
            raise HierarchyError(f"{path}: line {line_no} is not a 'parent child' pair: {cells}")
        edges.append((cells[0], cells[1]))
    if not edges:
        raise HierarchyError(f"{path}: no edges below the header")
    return list(dict.fromkeys(edges))  # an edge listed twice is harmless: keep it once


def _single_parents(path, edges) -> dict[str, str]:
    parents = defaultdict(set)
    for parent, child in edges:
        if parent == child:
            raise HierarchyError(f"{path}: cycle: node {child!r} is its own parent")
        parents[child].add(parent)
    multi = {c for c, ps in parents.items() if len(ps) > 1}
    if multi:
        child = sorted(multi)[0]
        raise HierarchyError(
            f"{path}: node(s) {_names(multi)} have two or more parents (e.g. {child!r} under {_names(parents[child])})"
        )
    return {c: next(iter(ps)) for c, ps in parents.items()}


def _check_acyclic(path, edges) -> None:
    # Kahn's algorithm: nodes never freed are on a cycle or below one.
    indegree = Counter(child for _, child in edges)
    children = defaultdict(list)
    for parent, child in edges:
        children[parent].append(child)
    nodes = {n for e in edges for n in e}
    ready = [n for n in nodes if indegree[n] == 0]
    while ready:
        for child in children[ready.pop()]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    stuck = {n for n in nodes if indegree[n] > 0}
    if stuck:
        raise HierarchyError(f"{path}: cycle through (or below) node(s) {_names(stuck)}")


def load_edges(path) -> Hierarchy:
    """Parent->child edge list: CSV with header 'parent,child', or whitespace 'parent child' lines.

    Exactly one root (a node that is nobody's child) is required; it is dropped from the paths.
    """
    edges = _parse_edges(path)
    _check_acyclic(path, edges)
    parent_of = _single_parents(path, edges)
    nodes = list(dict.fromkeys(n for e in edges for n in e))
    # Acyclic with one parent per node: a forest, so one root <=> one tree reaching every node.
    roots = [n for n in nodes if n not in parent_of]
    if len(roots) > 1:
        raise HierarchyError(f"{path}: several roots {_names(roots)} (nodes without a parent); a tree needs one")
    root = roots[0]
    has_children = {parent for parent, _ in edges}
    paths = []
    for leaf in (n for n in nodes if n not in has_children):
        chain = [leaf]
        while parent_of[chain[-1]] != root:
            chain.append(parent_of[chain[-1]])
        paths.append(tuple(reversed(chain)))
    return Hierarchy(paths, source=str(path), root_name=root)


# ---- writing hierarchies ---------------------------------------------------------------------------
def _csv_text(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _write_maybe_gz(path, text: str) -> None:
    path = Path(path)
    if path.suffix != ".gz":
        write_text(path, text)
        return
    with atomic_path(path) as tmp:
        # mtime=0 keeps the bytes (and so the sha256) identical between runs.
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            gz.write(text.encode("utf-8"))


def write_paths_csv(path, hierarchy: Hierarchy) -> None:
    """Write the paths CSV read by load_paths_csv (rows in hierarchy.leaves order)."""
    width = hierarchy.height
    header = [f"level_{i}" for i in range(1, width)] + ["leaf"]
    rows = [header] + [list(p) + [""] * (width - len(p)) for p in hierarchy.paths.values()]
    _write_maybe_gz(path, _csv_text(rows))


# ---- distance matrices -----------------------------------------------------------------------------
def write_distance_csv(path, names, D) -> None:
    """Header 'class,<names...>', then one row per class: name, distances. '.gz' paths are gzipped."""
    names = [str(n) for n in names]
    D = np.asarray(D)
    if D.shape != (len(names), len(names)):
        raise HierarchyError(f"{path}: matrix shape {D.shape} does not match {len(names)} names")
    rows = [["class"] + names] + [[n] + [str(int(v)) for v in row] for n, row in zip(names, D)]
    _write_maybe_gz(path, _csv_text(rows))


def read_distance_csv(path) -> tuple[list[str], np.ndarray]:
    """Read and validate a leaf distance matrix written by write_distance_csv (.csv or .csv.gz)."""
    rows = [r for r in csv.reader(io.StringIO(_read_text(path))) if r]
    if len(rows) < 2:
        raise HierarchyError(f"{path}: empty distance file (expected a header 'class,<names>' and one row per class)")
    header, body = rows[0], rows[1:]
    if header[0] != "class":
        raise HierarchyError(f"{path}: the header must start with 'class', found {header[0]!r}")
    names = header[1:]
    bad_len = [i + 2 for i, r in enumerate(body) if len(r) != len(names) + 1]
    if len(body) != len(names) or bad_len:
        raise HierarchyError(
            f"{path}: not square: {len(names)} names in the header, {len(body)} rows"
            + (f"; lines {bad_len[:_MAX_NAMED]} have the wrong number of cells" if bad_len else "")
        )
    row_names = [r[0] for r in body]
    if row_names != names:
        diff = [f"{r!r}!={c!r}" for r, c in zip(row_names, names) if r != c]
        raise HierarchyError(f"{path}: row names differ from header names: {', '.join(diff[:_MAX_NAMED])}")
    D = _parse_int_matrix(path, names, [r[1:] for r in body])
    _check_distance_matrix(path, names, D)
    return names, D


def _parse_int_matrix(path, names, cells) -> np.ndarray:
    """The integer matrix of `cells`; the first cell that is no finite integer is named by line, column and classes."""
    values = np.array([[_float_or_nan(c) for c in row] for row in cells], dtype=np.float64).reshape(len(names), -1)
    not_int = ~np.isfinite(values) | (values != np.round(values))
    if not_int.any():
        i, j = np.argwhere(not_int)[0]
        raise HierarchyError(f"{path}: distance '{cells[i][j]}' at line {i + 2}, column {j + 2} (row {names[i]!r}, "
                             f"column {names[j]!r}) is not an integer")
    return values.astype(np.int64)


def _float_or_nan(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return float("nan")


def _check_distance_matrix(path, names, D) -> None:
    def where(mask):
        return ", ".join(f"({names[i]!r}, {names[j]!r})" for i, j in np.argwhere(mask)[:_MAX_NAMED])

    if (D < 0).any():
        raise HierarchyError(f"{path}: negative distance(s) at {where(D < 0)}")
    if (np.diag(D) != 0).any():
        raise HierarchyError(f"{path}: non-zero diagonal at {where(np.diag(np.diag(D) != 0))}")
    if (D != D.T).any():
        raise HierarchyError(f"{path}: not symmetric at {where(np.triu(D != D.T))}")
