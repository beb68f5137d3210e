"""featgeom.data.split_lists and prepare_raw: MBM's split lists, and the stretched copies made from raw
ILSVRC-2012 / iNaturalist 2019 files (folders and tarballs), with every bad input named."""
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featgeom.data import prepare_raw, split_lists
from featgeom.data.manifest import verify_image_folder
from featgeom.hierarchy import load_paths_csv

HIERARCHIES = Path(__file__).resolve().parent.parent / "featgeom" / "resources" / "hierarchies"
WNIDS = ("n01440764", "n01443537")  # the first two leaves of tieredImageNet-H
SIZE = 16


def _jpeg(seed, size=(40, 30), mode="RGB", quality=90) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _split_zip(path, lists: dict, top="splits_tieredImageNet-H") -> Path:
    """lists: {split: {class file stem: [names]}} in MBM's layout."""
    with zipfile.ZipFile(path, "w") as archive:
        for split, per_class in lists.items():
            for stem, names in per_class.items():
                archive.writestr(f"{top}/{split}/{stem}.txt", "".join(f"{n}\n" for n in names))
    return path


def _tiered_lists():
    val = iter(f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 100))
    return {"train": {w: [f"{w}_{k}.JPEG" for k in (10, 2, 3)] for w in WNIDS},
            "val": {w: [next(val), next(val)] for w in WNIDS}, "test": {w: [next(val), next(val)] for w in WNIDS}}


def _tiered_images(lists) -> dict:
    """{(folder, name): bytes} of every listed image: train under its wnid, val flat."""
    images, seed = {}, 0
    for split, per_class in lists.items():
        for wnid, names in per_class.items():
            for name in names:
                seed += 1
                images[("train/" + wnid if split == "train" else "val"), name] = _jpeg(seed)
    return images


def _write_folders(root: Path, images: dict) -> Path:
    for (folder, name), data in images.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_bytes(data)
    return root


def _tar_bytes(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write_tars(root: Path, images: dict) -> Path:
    root.mkdir(parents=True)
    per_wnid = {}
    for (folder, name), data in images.items():
        if folder != "val":
            per_wnid.setdefault(folder.split("/")[1], {})[name] = data
    inner = {f"{wnid}.tar": _tar_bytes(files) for wnid, files in per_wnid.items()}
    (root / prepare_raw.ILSVRC_TRAIN_TAR).write_bytes(_tar_bytes(inner))
    val = {name: data for (folder, name), data in images.items() if folder == "val"}
    (root / prepare_raw.ILSVRC_VAL_TAR).write_bytes(_tar_bytes(val))
    return root


@pytest.fixture
def tiered(tmp_path):
    lists = _tiered_lists()
    return lists, _split_zip(tmp_path / "splits.zip", lists), _tiered_images(lists)


def _prepare(root, zip_path, out, stretch=SIZE, cap=None, kind="tiered_imagenet_raw", leaves=WNIDS):
    source = {"kind": kind, "root": str(root), "splits": str(zip_path), "stretch": stretch}
    return prepare_raw.prepare_raw_dataset(source, out, leaves, max_per_class=cap, workers=2)


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- split lists -------------------------------------------------------------------------------------------------

def test_shipped_tiered_lists_match_mbm_and_the_hierarchy():
    splits = split_lists.read_split_lists(split_lists.TIERED_SPLITS, sha256=split_lists.TIERED_SPLITS_SHA256)
    leaves = load_paths_csv(HIERARCHIES / "tiered_imagenet_paths.csv").leaves
    assert sorted(splits["train"]) == sorted(leaves) and len(leaves) == 608
    assert {split: {len(n) for n in per_class.values()} for split, per_class in splits.items()} == \
        {"train": {700}, "val": {25}, "test": {25}}
    assert splits["train"]["n01440764"][0].startswith("n01440764_")
    assert all(n.startswith("ILSVRC2012_val_") for s in ("val", "test") for ns in splits[s].values() for n in ns)


def test_wrong_sha256_is_named(tiered):
    _, zip_path, _ = tiered
    with pytest.raises(split_lists.SplitListError, match=f"{zip_path}: sha256 .*expected 826a0ae5"):
        split_lists.read_split_lists(zip_path, sha256=split_lists.TIERED_SPLITS_SHA256)


def test_other_layout_says_expected_and_found(tmp_path):
    path = tmp_path / "flat.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("train.txt", "a.jpg 3\n")
    with pytest.raises(split_lists.SplitListError, match=r"expected <top folder>/\{train,val,test\}/<class>.txt.*"
                                                         r"found 1 other member\(s\), e\.g\. train\.txt"):
        split_lists.read_split_lists(path)


def test_name_under_two_classes_is_named(tmp_path):
    lists = _tiered_lists()
    lists["train"][WNIDS[1]].append(lists["train"][WNIDS[0]][0])
    path = _split_zip(tmp_path / "dup.zip", lists)
    with pytest.raises(split_lists.SplitListError, match=f"n01440764_10.JPEG \\(train/{WNIDS[0]} and "
                                                         f"train/{WNIDS[1]}\\)"):
        split_lists.read_split_lists(path)


def test_class_absent_from_hierarchy_is_named(tiered, tmp_path):
    _, zip_path, images = tiered
    root = _write_folders(tmp_path / "raw", images)
    with pytest.raises(split_lists.SplitListError, match=f"{zip_path}: 1 split class.*: {WNIDS[1]}"):
        _prepare(root, zip_path, tmp_path / "out", leaves=WNIDS[:1])
    assert not (tmp_path / "out").exists()


def test_inat_class_files_by_leaf_or_category_id(tmp_path):
    lists = {split: {"400": [f"{split}a.jpg"], "nat0007": [f"{split}b.jpg"]} for split in split_lists.SPLITS}
    splits = split_lists.read_split_lists(_split_zip(tmp_path / "i.zip", lists, "splits_inat19"),
                                          split_lists.inat19_class_name)
    assert splits["val"] == {"nat0007": ["valb.jpg"], "nat0400": ["vala.jpg"]}


# --- preparation ------------------------------------------------------------------------------------------------

def test_folders_and_tarballs_give_the_same_stretched_folder(tiered, tmp_path):
    lists, zip_path, images = tiered
    from_folders = tmp_path / "a" / "stretch16"
    from_tars = tmp_path / "b" / "stretch16"
    assert _prepare(_write_folders(tmp_path / "raw", images), zip_path, from_folders)["written"] == 14
    assert _prepare(_write_tars(tmp_path / "tars", images), zip_path, from_tars)["written"] == 14
    assert _tree(from_folders) == _tree(from_tars)
    manifest = verify_image_folder(from_folders)
    assert manifest["classes"] == list(WNIDS) and manifest["counts"] == {"train": 6, "val": 4, "test": 4}
    with Image.open(from_folders / "train" / WNIDS[0] / "n01440764_10.JPEG") as image:
        assert (image.size, image.mode, image.format) == ((SIZE, SIZE), "RGB", "JPEG")


def test_val_images_in_class_folders_are_found(tiered, tmp_path):
    lists, zip_path, images = tiered
    by_class = {(folder if folder != "val" else f"val/{wnid}", name): data for (folder, name), data in images.items()
                for split, per_class in lists.items() for wnid, names in per_class.items() if name in names}
    assert _prepare(_write_folders(tmp_path / "raw", by_class), zip_path, tmp_path / "out")["written"] == 14


def test_stretch_matches_pil_lanczos_and_keeps_the_jpeg_tables(tmp_path):
    data = _jpeg(1, size=(40, 30), quality=90)
    out = tmp_path / "x.jpg"
    prepare_raw.write_stretched(data, SIZE, out)
    with Image.open(io.BytesIO(data)) as source, Image.open(out) as stretched:
        reference = io.BytesIO()
        source.convert("RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS).save(
            reference, format="JPEG", qtables=[list(source.quantization[0]), list(source.quantization[1])],
            subsampling=2)
        assert out.read_bytes() == reference.getvalue()
        assert stretched.quantization == source.quantization


def test_filter_is_lanczos_when_shrinking_and_bicubic_when_enlarging():
    assert prepare_raw.stretch_filter(500, 375, "RGB", 224) == Image.Resampling.LANCZOS
    assert prepare_raw.stretch_filter(300, 100, "RGB", 224) == Image.Resampling.BICUBIC  # area grows
    assert prepare_raw.stretch_filter(500, 375, "P", 224) == Image.Resampling.BICUBIC


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_grayscale_and_cmyk_become_rgb(tmp_path, mode):
    out = tmp_path / "x.jpg"
    prepare_raw.write_stretched(_jpeg(2, mode=mode), SIZE, out)
    with Image.open(out) as image:
        assert (image.mode, image.size) == ("RGB", (SIZE, SIZE))


def test_missing_images_all_named_with_count_before_writing(tiered, tmp_path):
    _, zip_path, images = tiered
    del images["train/n01440764", "n01440764_2.JPEG"], images["val", "ILSVRC2012_val_00000003.JPEG"]
    root = _write_folders(tmp_path / "raw", images)
    expected = r"2 of the 14 images to prepare \(named by the split lists\) are missing"
    with pytest.raises(FileNotFoundError, match=expected) as err:
        _prepare(root, zip_path, tmp_path / "out")
    assert "train/n01440764/n01440764_2.JPEG" in str(err.value)
    assert f"test/{WNIDS[0]}/ILSVRC2012_val_00000003.JPEG" not in str(err.value)  # val 3 is a val image of wnid 1
    assert "val/n01443537/ILSVRC2012_val_00000003.JPEG" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_many_missing_images_are_all_listed_in_a_file(tiered, tmp_path, monkeypatch):
    _, zip_path, _ = tiered
    (tmp_path / "raw" / "train").mkdir(parents=True), (tmp_path / "raw" / "val").mkdir()
    monkeypatch.setattr(prepare_raw, "MISSING_SHOWN", 3)
    expected = r"(?s)14 of the 14 .*\.\.\. and 11 more: all are listed in .*out.missing.txt"
    with pytest.raises(FileNotFoundError, match=expected):
        _prepare(tmp_path / "raw", zip_path, tmp_path / "out")
    assert len((tmp_path / "out.missing.txt").read_text().splitlines()) == 14 and not (tmp_path / "out").exists()


def test_cap_needs_only_the_capped_images(tiered, tmp_path):
    _, zip_path, images = tiered
    kept = {key: data for key, data in images.items() if key[1] not in ("n01440764_3.JPEG", "n01443537_3.JPEG")}
    out = tmp_path / "out"
    # sorted names: n01440764_10, _2, _3: a cap of 2 needs the first two only
    assert _prepare(_write_folders(tmp_path / "raw", kept), zip_path, out, cap=2)["written"] == 12
    assert sorted(p.name for p in (out / "train" / WNIDS[0]).iterdir()) == ["n01440764_10.JPEG", "n01440764_2.JPEG"]


def test_corrupt_source_is_named_others_kept_and_rerun_resumes(tiered, tmp_path):
    _, zip_path, images = tiered
    good = images["train/n01440764", "n01440764_2.JPEG"]
    images["train/n01440764", "n01440764_2.JPEG"] = good[: len(good) // 2]
    root = _write_tars(tmp_path / "tars", images)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"(?s)1 of 14 source images cannot be decoded.*"
                                         r"ILSVRC2012_img_train.tar:n01440764.tar:n01440764_2.JPEG"):
        _prepare(root, zip_path, out)
    assert len(list(out.rglob("*.JPEG"))) == 13
    images["train/n01440764", "n01440764_2.JPEG"] = good
    (root / prepare_raw.ILSVRC_TRAIN_TAR).unlink(), (root / prepare_raw.ILSVRC_VAL_TAR).unlink()
    root.rmdir()
    assert _prepare(_write_tars(root, images), zip_path, out) == {"written": 1, "kept": 13, "splits": str(zip_path)}


def test_interrupted_preparation_resumes_without_redoing_finished_files(tiered, tmp_path):
    _, zip_path, images = tiered
    root = _write_folders(tmp_path / "raw", images)
    out = tmp_path / "out"
    _prepare(root, zip_path, out)
    reference = _tree(out)
    finished = out / "train" / WNIDS[0] / "n01440764_10.JPEG"
    stamp = finished.stat().st_mtime_ns
    # a kill: some files not yet written, one caught half-way (atomic_path's temp name, never the final one)
    for path in [out / "val" / WNIDS[1] / "ILSVRC2012_val_00000003.JPEG", out / "test" / WNIDS[0] / next(
            p.name for p in (out / "test" / WNIDS[0]).iterdir())]:
        path.unlink()
    leftover = out / "train" / WNIDS[1] / ".n01443537_2.JPEG.abc123.tmp"
    leftover.write_bytes(b"\xff\xd8 half")
    assert _prepare(root, zip_path, out)["written"] == 2
    assert finished.stat().st_mtime_ns == stamp
    assert not leftover.exists() and _tree(out) == reference
    assert verify_image_folder(out)["counts"] == {"train": 6, "val": 4, "test": 4}


def test_changed_stretch_size_refuses_the_old_folder(tiered, tmp_path):
    _, zip_path, images = tiered
    root = _write_folders(tmp_path / "raw", images)
    _prepare(root, zip_path, tmp_path / "stretch16")
    with pytest.raises(ValueError, match=r"stretch16 holds images prepared with \{.*'stretch': 16.*not.*'stretch': 8"):
        _prepare(root, zip_path, tmp_path / "stretch16", stretch=8)
    _prepare(root, zip_path, tmp_path / "stretch8", stretch=8)
    with Image.open(next((tmp_path / "stretch8" / "train").rglob("*.JPEG"))) as image:
        assert image.size == (8, 8)


def test_changed_split_lists_refuse_the_old_folder(tiered, tmp_path):
    lists, zip_path, images = tiered
    root = _write_folders(tmp_path / "raw", images)
    _prepare(root, zip_path, tmp_path / "out")
    lists["train"][WNIDS[0]] = lists["train"][WNIDS[0]][:2]
    with pytest.raises(ValueError, match="splits_sha256"):
        _prepare(root, _split_zip(tmp_path / "other.zip", lists), tmp_path / "out")


def _inat_tree() -> tuple:
    """{member path: bytes} of a train_val2019 layout with two categories, and its split lists."""
    files, lists = {}, {split: {} for split in split_lists.SPLITS}
    for k, (category, supercategory) in enumerate(((7, "Plants"), (400, "Birds"))):
        for split in split_lists.SPLITS:
            name = f"{k}{split}0123abcdef.jpg"
            files[f"train_val2019/{supercategory}/{category}/{name}"] = _jpeg(10 * k + len(split), size=(60, 40))
            lists[split][f"nat{category:04d}"] = [name]
    return files, lists


@pytest.mark.parametrize("packed", [False, True])
def test_inat19_from_folder_or_tarball(tmp_path, packed):
    files, lists = _inat_tree()
    root = tmp_path / "raw"
    root.mkdir()
    if packed:
        with tarfile.open(root / "train_val2019.tar.gz", "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        _write_folders(root, {(str(Path(n).parent), Path(n).name): d for n, d in files.items()})
    zip_path = _split_zip(tmp_path / "inat.zip", lists, "splits_inat19")
    out = tmp_path / "out"
    assert _prepare(root, zip_path, out, kind="inaturalist19_raw", leaves=["nat0007", "nat0400"])["written"] == 6
    assert verify_image_folder(out)["classes"] == ["nat0007", "nat0400"]


def test_inat19_needs_the_user_split_zip():
    with pytest.raises(ValueError, match="needs `splits`: the path of MBM's splits_inat19.zip"):
        prepare_raw.split_zip({"kind": "inaturalist19_raw", "root": "x"})


def test_raw_root_without_ilsvrc_files_is_named(tiered, tmp_path):
    _, zip_path, _ = tiered
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty holds neither train/ nor ILSVRC2012_img_train.tar"):
        _prepare(tmp_path / "empty", zip_path, tmp_path / "out")


def test_finished_folder_needs_no_source_and_a_foreign_folder_is_refused(tiered, tmp_path):
    _, zip_path, images = tiered
    root = _write_tars(tmp_path / "tars", images)
    out = tmp_path / "out"
    _prepare(root, zip_path, out)
    for tar in root.iterdir():
        tar.unlink()
    assert _prepare(root, zip_path, out)["kept"] == 14  # the raw files are gone: nothing left to read
    (out / prepare_raw.STRETCH_MARKER).unlink()
    with pytest.raises(ValueError, match=r"out holds train/val/test folders but no stretch.json"):
        _prepare(root, zip_path, out)
