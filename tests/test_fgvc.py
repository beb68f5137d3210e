"""FGVC-Aircraft: official archive -> HAFrame's image folders (featgeom.data.fgvc), on the fixture archive."""
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featgeom.data import fgvc
from featgeom.hierarchy import load_paths_csv

# The 100 variant names of FGVC-Aircraft 2013b (data/variants.txt), as published.
OFFICIAL_VARIANTS = [
    "707-320", "727-200", "737-200", "737-300", "737-400", "737-500", "737-600", "737-700", "737-800", "737-900",
    "747-100", "747-200", "747-300", "747-400", "757-200", "757-300", "767-200", "767-300", "767-400", "777-200",
    "777-300", "A300B4", "A310", "A318", "A319", "A320", "A321", "A330-200", "A330-300", "A340-200",
    "A340-300", "A340-500", "A340-600", "A380", "ATR-42", "ATR-72", "An-12", "BAE 146-200", "BAE 146-300", "BAE-125",
    "Beechcraft 1900", "Boeing 717", "C-130", "C-47", "CRJ-200", "CRJ-700", "CRJ-900", "Cessna 172", "Cessna 208",
    "Cessna 525", "Cessna 560", "Challenger 600", "DC-10", "DC-3", "DC-6", "DC-8", "DC-9-30", "DH-82", "DHC-1",
    "DHC-6", "DHC-8-100", "DHC-8-300", "DR-400", "Dornier 328", "E-170", "E-190", "E-195", "EMB-120", "ERJ 135",
    "ERJ 145", "Embraer Legacy 600", "Eurofighter Typhoon", "F-16A/B", "F/A-18", "Falcon 2000", "Falcon 900",
    "Fokker 100", "Fokker 50", "Fokker 70", "Global Express", "Gulfstream IV", "Gulfstream V", "Hawk T1", "Il-76",
    "L-1011", "MD-11", "MD-80", "MD-87", "MD-90", "Metroliner", "Model B200", "PA-28", "SR-20", "Saab 2000",
    "Saab 340", "Spitfire", "Tornado", "Tu-134", "Tu-154", "Yak-42",
]
DATA = "fgvc-aircraft-2013b/data"


def _md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _members(archive) -> dict:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _write_tar(path, files: dict) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return _md5(path)


@pytest.fixture
def archive(dataset_fixtures, tmp_path):
    """A copy of the fixture archive in tmp_path/root."""
    src = dataset_fixtures / "data" / "fgvc_aircraft" / fgvc.FILENAME
    (tmp_path / "root").mkdir()
    return Path(shutil.copy(src, tmp_path / "root" / fgvc.FILENAME))


@pytest.fixture
def fixture_files(dataset_fixtures):
    return _members(dataset_fixtures / "data" / "fgvc_aircraft" / fgvc.FILENAME)


def _broken_archive(tmp_path, files, change) -> tuple[Path, str]:
    files = dict(files)
    change(files)
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    md5 = _write_tar(root / fgvc.FILENAME, files)
    return root, md5


def test_module_does_not_import_torch():
    code = "import sys, featgeom.data.fgvc; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_official_variant_names_map_onto_the_hierarchy_leaves():
    leaves = load_paths_csv(fgvc.HIERARCHY_CSV).leaves
    assert len(OFFICIAL_VARIANTS) == len(set(OFFICIAL_VARIANTS)) == 100
    folders = [fgvc.folder_name(v) for v in OFFICIAL_VARIANTS]
    assert sorted(folders) == leaves                   # exactly the 100 leaves, ImageFolder order = CSV order
    assert fgvc.folder_name("F-16A/B") == "v-F-16A-slash-B" and fgvc.folder_name("F/A-18") == "v-F-slash-A-18"
    assert fgvc.folder_name("BAE 146-200") == "v-BAE 146-200"  # spaces kept, as HAFrame does


def test_fixture_archive_lists_the_official_variants(fixture_files):
    assert fixture_files[f"{DATA}/variants.txt"].decode().splitlines() == OFFICIAL_VARIANTS
    for split in ("train", "val", "test", "trainval"):
        for level in ("variant", "family", "manufacturer"):
            assert f"{DATA}/images_{level}_{split}.txt" in fixture_files


def test_prepare_writes_haframe_folders_with_the_banner_cropped(archive, fixture_files, tmp_path):
    out = tmp_path / "out"
    counts = fgvc.prepare_fgvc_aircraft(archive.parent, out, md5=_md5(archive), workers=2)
    assert counts == {"train": 200, "val": 200, "test": 200}
    leaves = load_paths_csv(fgvc.HIERARCHY_CSV).leaves
    assert sorted(p.name for p in out.iterdir()) == ["test", "train", "val"]   # no staging or extracted leftovers
    assert sorted(p.name for p in archive.parent.iterdir()) == [fgvc.FILENAME]
    for split in ("train", "val", "test"):
        assert sorted(p.name for p in (out / split).iterdir()) == leaves
    for line in fixture_files[f"{DATA}/images_variant_val.txt"].decode().splitlines()[::37]:
        image_id, variant = line.split(" ", 1)
        written = out / "val" / fgvc.folder_name(variant) / f"{image_id}.jpg"
        with Image.open(io.BytesIO(fixture_files[f"{DATA}/images/{image_id}.jpg"])) as src, Image.open(written) as dst:
            assert dst.format == "JPEG"
            assert dst.size == (src.size[0], src.size[1] - 20)
            top = src.crop((0, 0, src.size[0], src.size[1] - 20))
            diff = np.abs(np.asarray(top, dtype=float) - np.asarray(dst, dtype=float))
            assert diff.mean() < 8                     # same picture, re-encoded; the banner is gone


def test_prepare_into_the_archive_folder_and_rerun_replaces_the_splits(archive):
    root = archive.parent
    fgvc.prepare_fgvc_aircraft(root, root, md5=_md5(archive))
    stale = root / "train" / "v-A380" / "stale.jpg"
    stale.write_bytes(b"old")
    assert fgvc.prepare_fgvc_aircraft(root, root, md5=_md5(archive)) == {"train": 200, "val": 200, "test": 200}
    assert not stale.exists()
    assert sorted(p.name for p in root.iterdir()) == [fgvc.FILENAME, "test", "train", "val"]


def test_md5_mismatch_names_the_archive(archive, tmp_path):
    with pytest.raises(ValueError, match=rf"{fgvc.FILENAME}: md5 mismatch, expected {fgvc.MD5}, got"):
        fgvc.prepare_fgvc_aircraft(archive.parent, tmp_path / "out")  # the fixture is not the official archive
    assert not (tmp_path / "out").exists()


def test_missing_archive_names_the_expected_path(tmp_path):
    expected = rf"{tmp_path}/{fgvc.FILENAME}: FGVC-Aircraft archive not found.*set `source.download: true`"
    with pytest.raises(FileNotFoundError, match=expected):
        fgvc.prepare_fgvc_aircraft(tmp_path, tmp_path / "out")


def test_download_fetches_the_torchvision_url(dataset_fixtures, tmp_path, monkeypatch):
    src = dataset_fixtures / "data" / "fgvc_aircraft" / fgvc.FILENAME
    fetched = []
    monkeypatch.setattr(urllib.request, "urlretrieve",
                        lambda url, dest: fetched.append(url) or shutil.copy(src, dest))
    counts = fgvc.prepare_fgvc_aircraft(tmp_path, tmp_path, download=True, md5=_md5(src))
    assert fetched == [fgvc.URL] and counts["test"] == 200
    assert (tmp_path / fgvc.FILENAME).read_bytes() == src.read_bytes()


def test_offline_download_says_where_to_put_the_archive(tmp_path, monkeypatch):
    def offline(url, dest):
        raise OSError("network unreachable")
    monkeypatch.setattr(urllib.request, "urlretrieve", offline)
    with pytest.raises(RuntimeError, match=rf"place it at {tmp_path}/{fgvc.FILENAME}"):
        fgvc.prepare_fgvc_aircraft(tmp_path, tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def test_missing_list_file_is_named(fixture_files, tmp_path):
    root, md5 = _broken_archive(tmp_path, fixture_files, lambda f: f.pop(f"{DATA}/images_variant_val.txt"))
    with pytest.raises(FileNotFoundError, match=r"images_variant_val\.txt: FGVC-Aircraft split list not found"):
        fgvc.prepare_fgvc_aircraft(root, tmp_path / "out", md5=md5)
    assert not any((tmp_path / "out").iterdir())    # nothing half-written, staging removed


def test_missing_image_is_named(fixture_files, tmp_path):
    image_id = fixture_files[f"{DATA}/images_variant_test.txt"].decode().splitlines()[5].split(" ")[0]
    root, md5 = _broken_archive(tmp_path, fixture_files, lambda f: f.pop(f"{DATA}/images/{image_id}.jpg"))
    with pytest.raises(FileNotFoundError, match=rf"{image_id}\.jpg: image listed in .*images_variant_test\.txt"):
        fgvc.prepare_fgvc_aircraft(root, tmp_path / "out", md5=md5)
    assert not any((tmp_path / "out").iterdir())


def test_variant_outside_the_hierarchy_is_named(fixture_files, tmp_path):
    def rename(files):
        lines = files[f"{DATA}/images_variant_train.txt"].decode().splitlines()
        lines[0] = lines[0].split(" ")[0] + " Boeing 797"
        files[f"{DATA}/images_variant_train.txt"] = ("\n".join(lines) + "\n").encode()
    root, md5 = _broken_archive(tmp_path, fixture_files, rename)
    with pytest.raises(ValueError, match=r"images_variant_train\.txt: variant 'Boeing 797' .*'v-Boeing 797'"):
        fgvc.prepare_fgvc_aircraft(root, tmp_path / "out", md5=md5)


def test_split_without_some_variant_is_refused(fixture_files, tmp_path):
    def drop(files):
        lines = files[f"{DATA}/images_variant_val.txt"].decode().splitlines()
        files[f"{DATA}/images_variant_val.txt"] = "".join(f"{ln}\n" for ln in lines if not ln.endswith(" A380"))
        files[f"{DATA}/images_variant_val.txt"] = files[f"{DATA}/images_variant_val.txt"].encode()
    root, md5 = _broken_archive(tmp_path, fixture_files, drop)
    with pytest.raises(ValueError, match=r"images_variant_val\.txt: no image of 1 hierarchy leaves.*v-A380"):
        fgvc.prepare_fgvc_aircraft(root, tmp_path / "out", md5=md5)


def test_malformed_line_and_unreadable_image_are_named(fixture_files, tmp_path):
    def bad_line(files):
        files[f"{DATA}/images_variant_test.txt"] += b"1234567\n"
    root, md5 = _broken_archive(tmp_path, fixture_files, bad_line)
    with pytest.raises(ValueError, match=r"images_variant_test\.txt: line 201 is '1234567'"):
        fgvc.prepare_fgvc_aircraft(root, tmp_path / "out", md5=md5)
    image_id = fixture_files[f"{DATA}/images_variant_train.txt"].decode().split(" ")[0]
    root, md5 = _broken_archive(tmp_path, fixture_files,
                                lambda f: f.__setitem__(f"{DATA}/images/{image_id}.jpg", b"not a jpeg"))
    with pytest.raises(ValueError, match=rf"{image_id}\.jpg: cannot convert the image"):
        fgvc.prepare_fgvc_aircraft(root, tmp_path / "out2", md5=md5)
