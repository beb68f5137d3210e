"""numpy-side data: arrays format, synthetic hierarchy, CIFAR archives (real format, tiny), long tail."""
import io
import pickle
import subprocess
import sys
import tarfile
import urllib.error

import numpy as np
import pytest

from featgeom.data import archives, cifar
from featgeom.data.arrays import class_counts, fine_to_coarse, load_arrays, save_arrays, validate_arrays
from featgeom.data.longtail import longtail_counts, longtail_indices, make_longtail
from featgeom.data.synthetic import leaf_paths, make_synthetic


def test_numpy_modules_do_not_import_torch():
    code = ("import sys, featgeom.data, featgeom.data.arrays, featgeom.data.synthetic, featgeom.data.archives, "
            "featgeom.data.cifar, featgeom.data.longtail; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- arrays -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(seed=0)


def test_arrays_roundtrip(tmp_path, synthetic):
    arrays, _ = synthetic
    save_arrays(tmp_path / "a.npz", arrays)
    loaded = load_arrays(tmp_path / "a.npz")
    assert sorted(loaded) == sorted(arrays)
    for key in arrays:
        np.testing.assert_array_equal(loaded[key], arrays[key])


@pytest.mark.parametrize("break_it, key", [
    (lambda a: a.pop("val_labels"), "val_labels"),
    (lambda a: a.__setitem__("train_labels", a["train_labels"].astype(np.int32)), "train_labels"),
    (lambda a: a.__setitem__("test_images", a["test_images"][..., :1]), "test_images"),
    (lambda a: a.__setitem__("train_images", a["train_images"].astype(np.float32)), "train_images"),
    (lambda a: a.__setitem__("val_labels", a["val_labels"] + 36), "val_labels"),
    (lambda a: a.__setitem__("test_labels_coarse", a["test_labels_coarse"] - 1), "test_labels_coarse"),
    (lambda a: a.pop("train_labels_coarse"), "train_labels_coarse"),
    (lambda a: a.__setitem__("class_names", a["class_names"][:-1]), "labels"),
])
def test_load_arrays_rejects_broken_files(tmp_path, synthetic, break_it, key):
    arrays = dict(synthetic[0])
    break_it(arrays)
    path = tmp_path / "broken.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=key) as err:
        load_arrays(path)
    assert str(path) in str(err.value)


def test_load_arrays_rejects_empty_split(tmp_path, synthetic):
    arrays = dict(synthetic[0])
    arrays["val_images"], arrays["val_labels"] = arrays["val_images"][:0], arrays["val_labels"][:0]
    arrays["val_labels_coarse"] = arrays["val_labels_coarse"][:0]
    with pytest.raises(ValueError, match="val_images.*empty"):
        save_arrays(tmp_path / "x.npz", arrays)
    assert not (tmp_path / "x.npz").exists()


def test_coarse_must_be_a_function_of_fine(synthetic):
    arrays = dict(synthetic[0])
    coarse = arrays["test_labels_coarse"].copy()
    coarse[0] = (coarse[0] + 1) % 4
    arrays["test_labels_coarse"] = coarse
    with pytest.raises(ValueError, match="more than one coarse class"):
        validate_arrays(arrays, "x.npz")


def test_class_counts():
    np.testing.assert_array_equal(class_counts([0, 2, 2], 4), [1, 0, 2, 0])
    with pytest.raises(ValueError):
        class_counts([0, 4], 4)


# --- synthetic --------------------------------------------------------------------------

def test_synthetic_is_deterministic():
    a, rows_a = make_synthetic(seed=3, n_train=5, n_val=2, n_test=2)
    b, rows_b = make_synthetic(seed=3, n_train=5, n_val=2, n_test=2)
    c, _ = make_synthetic(seed=4, n_train=5, n_val=2, n_test=2)
    assert rows_a == rows_b
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()
    assert a["train_images"].tobytes() != c["train_images"].tobytes()


def test_synthetic_shapes_counts_and_labels(synthetic):
    arrays, rows = synthetic
    assert arrays["class_names"].shape == (36,) and arrays["coarse_names"].shape == (4,)
    for split, n in (("train", 60), ("val", 10), ("test", 20)):
        assert arrays[f"{split}_images"].shape == (36 * n, 32, 32, 3)
        assert arrays[f"{split}_images"].dtype == np.uint8
        np.testing.assert_array_equal(class_counts(arrays[f"{split}_labels"], 36), n)
        np.testing.assert_array_equal(arrays[f"{split}_labels_coarse"], arrays[f"{split}_labels"] // 9)
    validate_arrays(arrays)
    assert len(set(arrays["class_names"])) == 36


def test_synthetic_hierarchy_rows(synthetic):
    arrays, rows = synthetic
    assert rows[0] == ["c0", "c0_m0", "c0_m0_f0"] and rows[5] == ["c0", "c0_m1", "c0_m1_f2"]
    assert [row[-1] for row in rows] == arrays["class_names"].tolist()
    coarse_of_leaf = fine_to_coarse(arrays)
    assert [arrays["coarse_names"][c] for c in coarse_of_leaf] == [row[0] for row in rows]
    assert all(row[i + 1].startswith(row[i] + "_") for row in rows for i in range(len(row) - 1))


def test_synthetic_other_depths():
    assert leaf_paths((2,)) == [["c0"], ["c1"]]
    assert leaf_paths((2, 2))[3] == ["c1", "c1_f1"]
    assert leaf_paths((2, 1, 1, 2))[1] == ["c0", "c0_m0", "c0_m0_n0", "c0_m0_n0_f1"]
    arrays, rows = make_synthetic(branching=(3,), n_train=2, n_val=1, n_test=1)
    np.testing.assert_array_equal(arrays["train_labels"], arrays["train_labels_coarse"])
    with pytest.raises(ValueError, match="branching"):
        make_synthetic(branching=(2, 0))


def test_synthetic_coarse_classes_differ_more_than_fine(synthetic):
    # Class-mean images: siblings under one coarse class are closer than leaves in other coarse classes.
    arrays, _ = synthetic
    means = np.stack([arrays["train_images"][arrays["train_labels"] == k].mean(0).ravel() for k in range(36)])
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    same = arrays["coarse_names"][fine_to_coarse(arrays)]
    same_coarse = same[:, None] == same[None]
    off_diagonal = ~np.eye(36, dtype=bool)
    assert dist[same_coarse & off_diagonal].mean() < 0.7 * dist[~same_coarse].mean()


# --- CIFAR in the real python-version format --------------------------------------------

def _pickle_bytes(obj) -> bytes:
    return pickle.dumps(obj, protocol=2)


def _fake_rows(n, seed):
    # Pixel 0 / 1 of each image encode its index, so the tests can see which images went where;
    # the rest is a compressible ramp (random bytes would make gzip the slowest part of the tests).
    data = np.tile(((np.arange(3072) * (seed + 1)) % 256).astype(np.uint8), (n, 1))
    data[:, 0], data[:, 1] = np.arange(n) % 256, np.arange(n) // 256
    return data


def _write_tar(path, files: dict):
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def _cifar100_files(n_per_class=52, drop_key=None):
    rng = np.random.default_rng(0)
    fine = rng.permutation(np.repeat(np.arange(100), n_per_class))
    test_fine = np.tile(np.arange(100), 2)
    train = {b"data": _fake_rows(len(fine), 1), b"fine_labels": fine.tolist(),
             b"coarse_labels": (fine % 20).tolist()}
    test = {b"data": _fake_rows(200, 2), b"fine_labels": test_fine.tolist(),
            b"coarse_labels": (test_fine % 20).tolist()}
    if drop_key:
        train.pop(drop_key)
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    files = {f"cifar-100-python/{k}": _pickle_bytes(v) for k, v in
             (("train", train), ("test", test), ("meta", meta))}
    return files, fine


def _md5(path):
    import hashlib
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_prepare_cifar100_splits_and_labels(tmp_path):
    files, fine = _cifar100_files()
    archive = tmp_path / "cifar-100-python.tar.gz"
    _write_tar(archive, files)
    arrays = cifar.prepare_cifar("cifar100", tmp_path, md5=_md5(archive))
    save_arrays(tmp_path / "c100.npz", arrays)
    loaded = load_arrays(tmp_path / "c100.npz")
    assert loaded["train_images"].shape == (200, 32, 32, 3) and loaded["val_images"].shape == (5000, 32, 32, 3)
    assert loaded["test_images"].shape == (200, 32, 32, 3)
    expected_val = np.sort(np.concatenate([np.nonzero(fine == c)[0][-50:] for c in range(100)]))
    seen_index = lambda images: images[:, 0, 0, 0].astype(int) + 256 * images[:, 0, 1, 0].astype(int)
    np.testing.assert_array_equal(seen_index(loaded["val_images"]), expected_val)
    np.testing.assert_array_equal(loaded["val_labels"], fine[expected_val])
    np.testing.assert_array_equal(class_counts(loaded["train_labels"], 100), 2)
    np.testing.assert_array_equal(loaded["train_labels_coarse"], loaded["train_labels"] % 20)
    assert loaded["class_names"][7] == "L5-7" and loaded["coarse_names"][19] == "L4-19"
    assert loaded["fine_label_names"][3] == "fine3"
    assert arrays["train_images"].tobytes() == loaded["train_images"].tobytes()


def test_cifar_rows_become_nhwc(tmp_path):
    files, _ = _cifar100_files()
    test = pickle.loads(files["cifar-100-python/test"])
    test[b"data"][5].reshape(3, 32, 32)[1, 2, 3] = 77  # channel 1, row 2, column 3
    files["cifar-100-python/test"] = _pickle_bytes(test)
    _write_tar(tmp_path / "a.tar.gz", files)
    archives.extract(tmp_path / "a.tar.gz", tmp_path)
    assert cifar.load_cifar100(tmp_path)["test_images"][5, 2, 3, 1] == 77


def test_prepare_cifar10(tmp_path):
    per_batch = 10 * 3  # 3 images per class per batch -> 15 per class, 2 for val
    files = {"cifar-10-batches-py/batches.meta": _pickle_bytes({b"label_names": [b"cat%d" % i for i in range(10)]})}
    for i in range(1, 6):
        files[f"cifar-10-batches-py/data_batch_{i}"] = _pickle_bytes(
            {b"data": _fake_rows(per_batch, i), b"labels": np.tile(np.arange(10), 3).tolist()})
    files["cifar-10-batches-py/test_batch"] = _pickle_bytes({b"data": _fake_rows(20, 9),
                                                            b"labels": list(range(10)) * 2})
    archive = tmp_path / "cifar-10-python.tar.gz"
    _write_tar(archive, files)
    arrays = cifar.prepare_cifar("cifar10", tmp_path, md5=_md5(archive), val_per_class=2)
    assert len(arrays["train_labels"]) == 130 and len(arrays["val_labels"]) == 20
    assert "train_labels_coarse" not in arrays and arrays["class_names"][0] == "cat0"


def test_md5_mismatch_names_file_and_both_sums(tmp_path):
    files, _ = _cifar100_files(n_per_class=51)
    archive = tmp_path / "cifar-100-python.tar.gz"
    _write_tar(archive, files)
    with pytest.raises(ValueError, match=r"cifar-100-python\.tar\.gz.*eb9058c3a382ffc7106e4002c42a8d85.*got"):
        cifar.prepare_cifar("cifar100", tmp_path)
    assert not (tmp_path / "out.npz").exists()


def test_missing_archive_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"place it there, or set `source.download: true`"):
        cifar.prepare_cifar("cifar100", tmp_path)


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_archive_with_matching_md5_names_the_archive(tmp_path, keep):
    files, _ = _cifar100_files(n_per_class=51)
    archive = tmp_path / "cifar-100-python.tar.gz"
    _write_tar(archive, files)
    whole = archive.read_bytes()
    archive.write_bytes(whole[:int(len(whole) * keep)])
    with pytest.raises(ValueError, match=r"cifar-100-python\.tar\.gz: truncated or corrupt archive"):
        cifar.prepare_cifar("cifar100", tmp_path, md5=_md5(archive))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-100-python.tar.gz"]


def test_offline_download_says_where_to_put_the_archive(tmp_path, monkeypatch):
    def offline(url, filename):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(archives.urllib.request, "urlretrieve", offline)
    with pytest.raises(RuntimeError, match="place it at .*cifar-10-python.tar.gz"):
        cifar.download_cifar("cifar10", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_extract_twice_replaces_the_folder(tmp_path):
    _write_tar(tmp_path / "a.tar.gz", {"cifar-100-python/meta": b"new"})
    (tmp_path / "cifar-100-python").mkdir()
    (tmp_path / "cifar-100-python" / "stale").write_bytes(b"old")
    archives.extract(tmp_path / "a.tar.gz", tmp_path)
    archives.extract(tmp_path / "a.tar.gz", tmp_path)
    assert sorted(p.name for p in (tmp_path / "cifar-100-python").iterdir()) == ["meta"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "cifar-100-python"]


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "cifar-100-python/../../evil.txt"])
def test_unsafe_tar_member_rejected(tmp_path, member):
    _write_tar(tmp_path / "bad.tar.gz", {"cifar-100-python/meta": b"x", member: b"evil"})
    with pytest.raises(ValueError, match="unsafe member"):
        archives.extract(tmp_path / "bad.tar.gz", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_tar_links_rejected(tmp_path):
    with tarfile.open(tmp_path / "link.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("cifar-100-python/train")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ValueError, match="links"):
        archives.extract(tmp_path / "link.tar.gz", tmp_path / "out")


def test_missing_pickle_key_names_file(tmp_path):
    files, _ = _cifar100_files(n_per_class=51, drop_key=b"coarse_labels")
    _write_tar(tmp_path / "a.tar.gz", files)
    archives.extract(tmp_path / "a.tar.gz", tmp_path)
    with pytest.raises(ValueError, match=r"cifar-100-python/train: missing key b'coarse_labels'"):
        cifar.load_cifar100(tmp_path)


def test_bad_data_shape_names_file(tmp_path):
    files, _ = _cifar100_files(n_per_class=51)
    test = pickle.loads(files["cifar-100-python/test"])
    test[b"data"] = test[b"data"][:, :100]
    files["cifar-100-python/test"] = _pickle_bytes(test)
    _write_tar(tmp_path / "a.tar.gz", files)
    archives.extract(tmp_path / "a.tar.gz", tmp_path)
    with pytest.raises(ValueError, match=r"cifar-100-python/test: key b'data'"):
        cifar.load_cifar100(tmp_path)


# --- long tail --------------------------------------------------------------------------

@pytest.mark.parametrize("n_max, k, rho, total, n_min", [
    (500, 100, 100, 10847, 5), (500, 100, 50, 12608, 10), (500, 100, 10, 19573, 50),
    (5000, 10, 100, 12406, 50), (5000, 10, 50, 13996, 100), (5000, 10, 10, 20431, 500)])
def test_longtail_counts(n_max, k, rho, total, n_min):
    counts = longtail_counts(n_max, k, rho)
    assert counts.sum() == total and counts[0] == n_max and counts[-1] == n_min
    assert np.all(np.diff(counts) <= 0)


def test_longtail_indices_match_ldam_drw():
    labels = np.random.default_rng(1).permutation(np.repeat(np.arange(10), 50))
    counts = longtail_counts(50, 10, 10)
    keep = longtail_indices(labels, counts, seed=0)
    np.testing.assert_array_equal(class_counts(labels[keep], 10), counts)
    assert np.all(np.diff(keep) > 0)
    np.random.seed(0)  # kaidic/LDAM-DRW:imbalance_cifar.py gen_imbalanced_data
    reference = []
    for c, n in enumerate(counts):
        idx = np.where(labels == c)[0]
        np.random.shuffle(idx)
        reference.append(idx[:n])
    np.testing.assert_array_equal(keep, np.sort(np.concatenate(reference)))
    assert not np.array_equal(keep, longtail_indices(labels, counts, seed=1))


def test_longtail_indices_refuse_too_many():
    with pytest.raises(ValueError, match="class 1 has 2 images"):
        longtail_indices(np.array([0, 0, 0, 1, 1]), [3, 3])


def test_make_longtail_only_touches_train(synthetic):
    arrays, _ = synthetic
    lt = make_longtail(arrays, rho=10, seed=0)
    np.testing.assert_array_equal(class_counts(lt["train_labels"], 36), longtail_counts(60, 36, 10))
    np.testing.assert_array_equal(lt["train_labels_coarse"], lt["train_labels"] // 9)
    for key in ("val_images", "test_images", "test_labels", "class_names"):
        assert lt[key] is arrays[key]


def test_cifar100_lt_from_the_pooled_official_train_set_has_10847_images():
    # CIFAR-100-shaped arrays as prepare_cifar writes them: 450 train + 50 val per class (tiny images).
    from featgeom.data.longtail import make_longtail, pool_train_and_val

    def split(per_class):
        labels = np.repeat(np.arange(100, dtype=np.int64), per_class)
        return np.zeros((labels.size, 2, 2, 3), np.uint8), labels

    arrays = {"class_names": np.array([f"L5-{i}" for i in range(100)])}
    for name, per_class in (("train", 450), ("val", 50), ("test", 2)):
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = split(per_class)
    longtail = make_longtail(pool_train_and_val(arrays), rho=100, seed=0)
    assert len(longtail["train_labels"]) == 10_847
    assert len(longtail["val_labels"]) == 5_000 and len(longtail["test_labels"]) == 200  # unchanged
    assert len(make_longtail(arrays, rho=100, seed=0)["train_labels"]) < 10_847  # 45k split alone: n_max = 450


def test_coarse_level_must_group_classes_as_the_datasets_coarse_labels():
    from featgeom.data.loaders import check_coarse_labels

    fine = np.arange(10)
    level = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])  # the hierarchy numbers nodes by first appearance
    check_coarse_labels({"train_labels": fine, "train_labels_coarse": (level + 3) % 5}, level)  # same grouping
    with pytest.raises(ValueError, match="groups the classes differently .*train_labels_coarse"):
        check_coarse_labels({"train_labels": fine, "train_labels_coarse": fine // 5}, level)
