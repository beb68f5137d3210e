"""One-off converter: published HAFrame hierarchy pickles -> plain-text files in featgeom/resources/hierarchies/.

Run once, offline, on the trusted copies in /work/shared/data/hierarchies (see that folder's README):

    .venv/bin/python tools/convert_published_hierarchies.py [--shared DIR] [--out DIR] [--tests-data DIR]

This is the ONLY place that unpickles. It uses a restricted unpickler: `nltk.tree.Tree` is mapped to a
tiny list subclass (so nltk is not needed) and every other global is refused. Runtime code reads the
CSV files written here.

For each dataset it writes `<ds>_paths.csv` (one row per leaf, in the dataset's class order) and
`<ds>_distances.csv[.gz]` (the published leaf distance matrix, from the distance pickle), after checking:
  * the pickle's leaf-leaf distances equal shared/derived/<ds>_leaf_distances.csv;
  * the LCA heights rebuilt from the tree (featgeom.hierarchy.leaf_distances) against the pickle
    (equal for CIFAR-100, FGVC, iNat19; tiered differs, which is why its pickle matrix is kept);
  * for iNat19/tiered, the `*_isa.txt` edge list gives the same tree as the pickle.
It also copies the CIFAR-100 and FGVC published matrices to tests/data/published_* and writes README.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from featgeom.hierarchy import (  # noqa: E402
    Hierarchy,
    leaf_distances,
    load_edges,
    load_paths_csv,
    read_distance_csv,
    write_distance_csv,
    write_paths_csv,
)
from featgeom.io import write_text  # noqa: E402

HAFRAME_COMMIT = "abe73b43dd0122a727ca87029e325ba854b18c16"
GZIP_ABOVE_BYTES = 1_000_000

# dataset -> (tree pickle, distance pickle, isa edge list or None, path in ltong1130ztr/HAFrame for each)
DATASETS = {
    "cifar100": dict(
        tree="cifar100/cifar_100_tree.pkl",
        dist="cifar100/cifar_100_ilsvrc_distances.pkl.xz",
        isa=None,
        upstream={"tree": "data/cifar-l5/original/cifar_100_tree.pkl",
                  "dist": "data/cifar-l5/original/cifar_100_ilsvrc_distances.pkl.xz"},
    ),
    "fgvc_aircraft": dict(
        tree="fgvc_aircraft/fgvc_aircraft_tree.pkl",
        dist="fgvc_aircraft/fgvc_aircraft_original_distances.pkl.xz",
        isa=None,
        upstream={"tree": "data/fgvc_aircraft_tree.pkl", "dist": "data/fgvc_aircraft_original_distances.pkl.xz"},
    ),
    "inaturalist19": dict(
        tree="inaturalist19/inaturalist19_tree.pkl",
        dist="inaturalist19/inaturalist19_ilsvrc_distances.pkl.xz",
        isa="inaturalist19/inaturalist19_isa.txt",
        upstream={"tree": "data/inaturalist19_tree.pkl", "dist": "data/inaturalist19_ilsvrc_distances.pkl.xz",
                  "isa": "data/inaturalist19_isa.txt"},
    ),
    "tiered_imagenet": dict(
        tree="tiered_imagenet/tiered_imagenet_tree.pkl",
        dist="tiered_imagenet/tiered_imagenet_ilsvrc_distances.pkl.xz",
        isa="tiered_imagenet/tiered_imagenet_isa.txt",
        upstream={"tree": "data/tiered_imagenet_tree.pkl", "dist": "data/tiered_imagenet_ilsvrc_distances.pkl.xz",
                  "isa": "data/tiered_imagenet_isa.txt"},
    ),
}


# ---- restricted unpickling --------------------------------------------------------------------------
class ShimTree(list):
    """Stands in for nltk.Tree: a list of children (ShimTree or str leaves) with a `_label`."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("nltk.tree", "Tree"):
            return ShimTree
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def unpickle(path: Path):
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rb") as fh:
        return _RestrictedUnpickler(fh).load()


def tree_paths(tree: ShimTree) -> list[tuple[str, ...]]:
    """Root-excluded paths to every leaf. A leaf is a str child or a ShimTree without children."""
    paths = []

    def walk(node, prefix):
        for child in node:
            if isinstance(child, ShimTree) and len(child):
                walk(child, prefix + (child._label,))
            else:
                paths.append(prefix + (child._label if isinstance(child, ShimTree) else child,))

    walk(tree, ())
    return paths


# ---- checks -------------------------------------------------------------------------------------------
def class_order(dataset: str, leaves) -> list[str]:
    # HAFrame's order: torchvision fine-label index order for CIFAR, ImageFolder sorted() names otherwise.
    if dataset == "cifar100":
        order = [f"L5-{i}" for i in range(100)]
        assert sorted(order) == sorted(leaves), "CIFAR-100 leaves are not L5-0..L5-99"
        return order
    return sorted(leaves)


def pickle_matrix(dist: dict, order) -> np.ndarray:
    def lookup(a, b):
        if a == b:
            return 0  # DistanceDict returns 0 on the diagonal
        return dist[(a, b)] if (a, b) in dist else dist[(b, a)]

    return np.array([[lookup(a, b) for b in order] for a in order], dtype=np.int64)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert(dataset: str, spec: dict, shared: Path, out: Path) -> dict:
    tree_file, dist_file = shared / spec["tree"], shared / spec["dist"]
    tree = unpickle(tree_file)
    order = class_order(dataset, [p[-1] for p in tree_paths(tree)])
    by_leaf = {p[-1]: p for p in tree_paths(tree)}
    hierarchy = Hierarchy([by_leaf[c] for c in order], source=str(tree_file), root_name=tree._label)

    published = pickle_matrix(unpickle(dist_file), order)
    derived_names, derived = read_distance_csv(shared / "derived" / f"{dataset}_leaf_distances.csv")
    assert derived_names == order, f"{dataset}: derived CSV class order differs from {order[:3]}..."
    assert np.array_equal(derived, published), f"{dataset}: derived CSV != distance pickle"

    rebuilt = leaf_distances(hierarchy, order)
    off_diag = ~np.eye(len(order), dtype=bool)
    equal_fraction = float((rebuilt == published)[off_diag].mean())
    report = dict(
        num_classes=len(order), height=hierarchy.height, root=tree._label,
        tree_lca_equals_published_fraction=round(equal_fraction, 6),
        published_minus_tree_max=int((published - rebuilt).max()),
        published_minus_tree_min=int((published - rebuilt).min()),
        published_max=int(published.max()),
    )
    if spec["isa"]:
        report["isa_edges_match_tree"] = load_edges(shared / spec["isa"]) == hierarchy

    paths_out = out / f"{dataset}_paths.csv"
    write_paths_csv(paths_out, hierarchy)
    assert load_paths_csv(paths_out) == hierarchy and load_paths_csv(paths_out).leaves == order
    dist_out = out / f"{dataset}_distances.csv"
    write_distance_csv(dist_out, order, published)
    if dist_out.stat().st_size > GZIP_ABOVE_BYTES:
        dist_out.unlink()
        dist_out = out / f"{dataset}_distances.csv.gz"
        write_distance_csv(dist_out, order, published)
    names_back, matrix_back = read_distance_csv(dist_out)
    assert names_back == order and np.array_equal(matrix_back, published)

    report["files"] = {
        "paths": paths_out.name, "distances": dist_out.name,
        "sha256": {paths_out.name: sha256(paths_out), dist_out.name: sha256(dist_out)},
    }
    report["sources"] = {
        kind: {"local": spec[kind], "upstream": f"ltong1130ztr/HAFrame@{HAFRAME_COMMIT}:{spec['upstream'][kind]}",
               "sha256": sha256(shared / spec[kind])}
        for kind in ("tree", "dist", "isa") if spec[kind]
    }
    return report


# ---- README -----------------------------------------------------------------------------------------------
def readme_text(reports: dict) -> str:
    lines = [
        "# Published class hierarchies (converted)",
        "",
        "Plain-text conversions of the hierarchy files shipped with the official HAFrame code",
        f"(`ltong1130ztr/HAFrame` @ `{HAFRAME_COMMIT}`; the iNat19 and tiered files are the same blobs as",
        "`fiveai/making-better-mistakes` @ `f0bb7d0a7c4a9c7c9517045a4be4446e9baf824f`, `data/`).",
        "Made once by `tools/convert_published_hierarchies.py` from the byte-identical copies in",
        "`/work/shared/data/hierarchies/`; runtime code reads only these CSVs (no pickles).",
        "",
        "## Files",
        "- `<ds>_paths.csv`: header `level_1,...,level_{H-1},leaf`; one row per leaf, in the dataset class order",
        "  HAFrame uses (CIFAR-100: torchvision fine-label index order `L5-0..L5-99`; the others: Python `sorted()`",
        "  names, as `ImageFolder` sorts folders). Ragged rows (tiered) end in empty cells; the last non-empty",
        "  cell is the leaf. The root node is dropped (its name is listed below). Read with",
        "  `featgeom.hierarchy.load_paths_csv`.",
        "- `<ds>_distances.csv[.gz]`: the **published** K x K leaf distance matrix from the distance pickle,",
        "  header `class,<names>`, first column names, same class order. Read with `read_distance_csv`.",
        "  Files over 1 MB are gzipped (gzip mtime 0, so the bytes are reproducible).",
        "",
        "## Distance semantics",
        "Leaf distance = height of the lowest common ancestor counted from the leaves (0 to itself, 1 for",
        "siblings; nltk `lca.height() - 1`). For CIFAR-100, FGVC-Aircraft and iNat19 the published matrix equals",
        "the LCA height rebuilt from the tree (`featgeom.hierarchy.leaf_distances`) for every pair. For",
        "tieredImageNet-H it does **not**: the published values are MBM's 'ilsvrc' distances from an unreleased",
        "library and are >= the LCA height in the pruned tree. Use `tiered_imagenet_distances.csv`, never the",
        "tree, for tiered distances.",
        "",
        "## Per dataset",
        "| dataset | K | height | root | tree LCA == published (off-diagonal pairs) | published - tree (min..max) | isa.txt == tree |",
        "|---|---:|---:|---|---:|---|---|",
    ]
    for ds, r in reports.items():
        lines.append(
            f"| {ds} | {r['num_classes']} | {r['height']} | `{r['root']}` | {100 * r['tree_lca_equals_published_fraction']:.1f}% "
            f"| {r['published_minus_tree_min']}..{r['published_minus_tree_max']} | {r.get('isa_edges_match_tree', 'n/a')} |"
        )
    lines += ["", "## Provenance (sha256 of the original files)", "| dataset | kind | upstream path | sha256 |",
              "|---|---|---|---|"]
    for ds, r in reports.items():
        for kind, src in r["sources"].items():
            lines.append(f"| {ds} | {kind} | `{src['upstream']}` | `{src['sha256']}` |")
    lines += ["", "## sha256 of the converted files", "```"]
    for r in reports.values():
        lines += [f"{digest}  {name}" for name, digest in r["files"]["sha256"].items()]
    lines += ["```", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("/work/shared/data/hierarchies"))
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "featgeom/resources/hierarchies")
    parser.add_argument("--tests-data", type=Path, default=REPO_ROOT / "tests/data")
    args = parser.parse_args(argv)
    reports = {ds: convert(ds, spec, args.shared, args.out) for ds, spec in DATASETS.items()}
    write_text(args.out / "README.md", readme_text(reports))
    for ds in ("cifar100", "fgvc_aircraft"):
        shutil.copyfile(args.shared / "derived" / f"{ds}_leaf_distances.csv",
                        args.tests_data / f"published_{ds}_leaf_distances.csv")
    print(json.dumps({ds: {k: v for k, v in r.items() if k not in ("sources", "files")} for ds, r in reports.items()},
                     indent=1))


if __name__ == "__main__":
    main()
