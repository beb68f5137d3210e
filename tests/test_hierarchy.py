"""featgeom.hierarchy: loaders, validation errors, LCA distances against the published matrices."""
from pathlib import Path

import numpy as np
import pytest

from featgeom.hierarchy import (
    Hierarchy,
    HierarchyError,
    leaf_distances,
    level_labels,
    load_edges,
    load_paths_csv,
    read_distance_csv,
    write_distance_csv,
    write_paths_csv,
)

DATA = Path(__file__).parent / "data"
RESOURCES = Path(__file__).parents[1] / "featgeom" / "resources" / "hierarchies"

# A small ragged tree:            root
#                      /            |         \
#                     A             B          e
#                   /   \          / \
#                  A1    c        b   d
#                 /  \
#                a    f
SMALL_PATHS_CSV = "level_1,level_2,leaf\nA,A1,a\nA,A1,f\nA,c,\nB,b,\nB,d,\ne,,\n"
SMALL_EDGES = "root A\nroot B\nroot e\nA A1\nA c\nA1 a\nA1 f\nB b\nB d\n"
SMALL_ORDER = ["a", "f", "c", "b", "d", "e"]
# LCA heights: a-f under A1 (height 1); a-c under A (height 2); A-B-e under the root (height 3).
SMALL_D = np.array([
    [0, 1, 2, 3, 3, 3],
    [1, 0, 2, 3, 3, 3],
    [2, 2, 0, 3, 3, 3],
    [3, 3, 3, 0, 1, 3],
    [3, 3, 3, 1, 0, 3],
    [3, 3, 3, 3, 3, 0],
])


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def small(tmp_path):
    return load_paths_csv(write(tmp_path, "hier_small.csv", SMALL_PATHS_CSV))


# ---- loaders ----------------------------------------------------------------------------------------
def test_paths_csv_reads_ragged_rows(small):
    assert small.leaves == ["a", "f", "c", "b", "d", "e"]
    assert small.paths["e"] == ("e",)
    assert small.paths["a"] == ("A", "A1", "a")
    assert small.height == 3
    assert small.node_height("A") == 2 and small.node_height("B") == 1


def test_edge_list_equals_paths_csv(tmp_path, small):
    whitespace = load_edges(write(tmp_path, "hier_small_isa.txt", SMALL_EDGES))
    rows = ["parent,child"] + [",".join(line.split()) for line in SMALL_EDGES.splitlines()]
    as_csv = load_edges(write(tmp_path, "hier_small_edges.csv", "\n".join(rows) + "\n"))
    assert whitespace == small and as_csv == small
    assert whitespace.root_name == "root"


def test_paths_csv_round_trip(tmp_path, small):
    write_paths_csv(tmp_path / "out.csv", small)
    again = load_paths_csv(tmp_path / "out.csv")
    assert again == small and again.leaves == small.leaves


def test_leaf_distances_small_ragged_tree(small):
    np.testing.assert_array_equal(leaf_distances(small, SMALL_ORDER), SMALL_D)
    assert leaf_distances(small, SMALL_ORDER).dtype == np.int64


def test_level_labels(small):
    levels = level_labels(small, SMALL_ORDER)
    assert len(levels) == 3
    names, labels = levels[0]
    assert names == ["A", "B", "e"]
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 2])
    names, labels = levels[1]
    assert names == ["A1", "c", "b", "d", "e"]  # shallow leaves stand for themselves
    np.testing.assert_array_equal(labels, [0, 0, 1, 2, 3, 4])
    names, labels = levels[2]
    assert names == SMALL_ORDER
    np.testing.assert_array_equal(labels, np.arange(6))


# ---- published hierarchies --------------------------------------------------------------------------
@pytest.mark.parametrize("dataset, height", [("cifar100", 5), ("fgvc_aircraft", 3)])
def test_tree_distances_equal_published_matrix(dataset, height):
    hierarchy = load_paths_csv(RESOURCES / f"{dataset}_paths.csv")
    names, published = read_distance_csv(DATA / f"published_{dataset}_leaf_distances.csv")
    assert hierarchy.height == height
    np.testing.assert_array_equal(leaf_distances(hierarchy, names), published)


def test_cifar_class_order_and_levels():
    hierarchy = load_paths_csv(RESOURCES / "cifar100_paths.csv")
    assert hierarchy.leaves == [f"L5-{i}" for i in range(100)]
    sizes = [len(names) for names, _ in level_labels(hierarchy, hierarchy.leaves)]
    assert sizes == [2, 4, 8, 20, 100]


def test_inat_tree_distances_equal_published_matrix():
    hierarchy = load_paths_csv(RESOURCES / "inaturalist19_paths.csv")
    names, published = read_distance_csv(RESOURCES / "inaturalist19_distances.csv.gz")
    assert names == sorted(names) and len(names) == 1010
    np.testing.assert_array_equal(leaf_distances(hierarchy, names), published)


def test_tiered_published_distances_are_not_tree_lca():
    # Documented quirk: MBM's 'ilsvrc' distances are >= the LCA height in the pruned tree.
    hierarchy = load_paths_csv(RESOURCES / "tiered_imagenet_paths.csv")
    names, published = read_distance_csv(RESOURCES / "tiered_imagenet_distances.csv")
    rebuilt = leaf_distances(hierarchy, names)
    assert hierarchy.height == 12 and published.max() == 12
    assert (published >= rebuilt).all() and (published != rebuilt).any()


# ---- distance CSV -----------------------------------------------------------------------------------
def test_distance_csv_round_trip_plain_and_gz(tmp_path):
    for name in ("hier_d.csv", "hier_d.csv.gz"):
        write_distance_csv(tmp_path / name, SMALL_ORDER, SMALL_D)
        names, D = read_distance_csv(tmp_path / name)
        assert names == SMALL_ORDER
        np.testing.assert_array_equal(D, SMALL_D)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("klass,a,b\na,0,1\nb,1,0\n", "'class'"),
    ("class,a,b\na,0,1\n", "not square"),
    ("class,a,b\na,0,1\nc,1,0\n", "row names"),
    ("class,a,b\na,0,1\nb,2,0\n", "not symmetric"),
    ("class,a,b\na,1,1\nb,1,0\n", "diagonal"),
    ("class,a,b\na,0,-1\nb,-1,0\n", "negative"),
    ("class,a,b\na,0,1.5\nb,1.5,0\n", r"distance '1\.5' at line 2, column 3 \(row 'a', column 'b'\) is not an integer"),
    ("class,a,b\na,0,x\nb,x,0\n", r"distance 'x' at line 2, column 3 \(row 'a', column 'b'\) is not an integer"),
    ("class,a,b\na,0,1\nb,nan,0\n", r"distance 'nan' at line 3, column 2 \(row 'b', column 'a'\) is not an integer"),
    ("class,a,b\na,0,1\nb,1,\n", r"distance '' at line 3, column 3 \(row 'b', column 'b'\) is not an integer"),
])
def test_malformed_distance_csv(tmp_path, text, message):
    path = write(tmp_path, "hier_bad_d.csv", text)
    with pytest.raises(HierarchyError, match=message) as err:
        read_distance_csv(path)
    assert "hier_bad_d.csv" in str(err.value)


# ---- validation errors name the culprit --------------------------------------------------------------
@pytest.mark.parametrize("text, culprits", [
    ("root A\nA B\nB C\nC A\n", ["cycle", "'A'", "'B'", "'C'"]),  # A-B-C loop hangs off the root
    ("A B\nB A\n", ["cycle"]),
    ("root A\nA B\nX Y\nY X\n", ["cycle", "'X'", "'Y'"]),
    ("A A\n", ["cycle", "'A'"]),
    ("r1 a\nr2 b\n", ["several roots", "'r1'", "'r2'"]),
    ("root A\nroot B\nA x\nB x\n", ["two or more parents", "'x'"]),
    ("", ["empty"]),
])
def test_edge_list_errors(tmp_path, text, culprits):
    path = write(tmp_path, "hier_bad_edges.txt", text)
    with pytest.raises(HierarchyError) as err:
        load_edges(path)
    message = str(err.value)
    assert "hier_bad_edges.txt" in message
    for culprit in culprits:
        assert culprit in message


@pytest.mark.parametrize("text, culprits", [
    ("level_1,leaf\nA,a\nB,a\n", ["duplicate leaf", "'a'"]),
    ("level_1,level_2,leaf\nA,B,b\nA,B,\n", ["'B'", "internal"]),  # B is a leaf and b's parent
    ("level_1,leaf\nA,x\nB,A\n", ["'A'"]),
    ("level_1,level_2,leaf\nA,B,a\nC,B,b\n", ["two or more parents", "'B'"]),
    ("level_1,level_2,leaf\nA,,a\n", ["empty cell", "line 2"]),
    ("level_1,leaf\n", ["no leaf rows"]),
    ("", ["empty"]),
    ("a,b\nA,a\n", ["header"]),
])
def test_paths_csv_errors(tmp_path, text, culprits):
    path = write(tmp_path, "hier_bad_paths.csv", text)
    with pytest.raises(HierarchyError) as err:
        load_paths_csv(path)
    assert "hier_bad_paths.csv" in str(err.value)
    for culprit in culprits:
        assert culprit in str(err.value)


def test_check_classes_names_the_culprits(small):
    with pytest.raises(HierarchyError, match=r"'zebra'.*not leaves"):
        small.check_classes(SMALL_ORDER + ["zebra"], source="toy dataset")
    with pytest.raises(HierarchyError, match=r"'A1'.*internal node"):
        small.check_classes(["A1"] + SMALL_ORDER)
    with pytest.raises(HierarchyError, match=r"'e'.*match no class of toy dataset"):
        small.check_classes(SMALL_ORDER[:-1], source="toy dataset")
    with pytest.raises(HierarchyError, match="more than once"):
        small.check_classes(SMALL_ORDER + ["a"])
    small.check_classes(list(reversed(SMALL_ORDER)))  # any order is fine


def test_leaf_distances_rejects_unknown_class(small):
    with pytest.raises(HierarchyError, match="'zebra'"):
        leaf_distances(small, SMALL_ORDER[:-1] + ["zebra"])


def test_in_memory_duplicate_leaf():
    with pytest.raises(HierarchyError, match="duplicate leaf 'x'"):
        Hierarchy([("A", "x"), ("B", "x")])
