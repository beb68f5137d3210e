"""tools/make_fixtures.py: every dataset of config/config.yaml in its real format, byte-reproducible."""
import hashlib
import subprocess
import sys
import tarfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from featgeom.data import archives, cifar, split_lists
from featgeom.hierarchy import load_paths_csv

REPO = Path(__file__).resolve().parent.parent
HIERARCHIES = REPO / "featgeom" / "resources" / "hierarchies"
ARCHIVES = {"cifar100": "data/cifar100/cifar-100-python.tar.gz", "cifar10": "data/cifar10/cifar-10-python.tar.gz",
            "fgvc_aircraft": "data/fgvc_aircraft/fgvc-aircraft-2013b.tar.gz"}
WEIGHTS = {"moco_v2_800ep_pass": "data/pretrained/moco_v2_800ep_pass.pth.tar",
           "resnet50_imagenet1k_v1": "data/pretrained/resnet50-0676ba61.pth"}


def _digest(path, algorithm):
    return hashlib.new(algorithm, Path(path).read_bytes()).hexdigest()


def _tree_digests(root: Path) -> dict:
    return {str(p.relative_to(root)): _digest(p, "sha256") for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_file_written_and_checksums_listed(dataset_fixtures):
    sums = yaml.safe_load((dataset_fixtures / "checksums.yaml").read_text())
    assert sums == {"md5": {name: _digest(dataset_fixtures / path, "md5") for name, path in ARCHIVES.items()},
                    "sha256": {name: _digest(dataset_fixtures / path, "sha256") for name, path in WEIGHTS.items()}}
    for raw in ("ilsvrc2012/ILSVRC2012_img_train.tar", "ilsvrc2012/ILSVRC2012_img_val.tar",
                "inaturalist2019/splits_inat19.zip"):
        assert (dataset_fixtures / "data" / raw).is_file()


def test_second_run_gives_identical_bytes(dataset_fixtures, tmp_path):
    subprocess.run([sys.executable, str(REPO / "tools" / "make_fixtures.py"), str(tmp_path)], check=True,
                   capture_output=True)
    first, second = _tree_digests(dataset_fixtures), _tree_digests(tmp_path)
    assert len(first) > 3000
    assert first == second


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "data" / "inaturalist2019").mkdir(parents=True)
    result = subprocess.run([sys.executable, str(REPO / "tools" / "make_fixtures.py"), str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "not a fixture folder" in result.stderr
    assert list((tmp_path / "data").iterdir()) == [tmp_path / "data" / "inaturalist2019"]


def test_cifar100_fixture_has_the_official_layout_and_superclasses(dataset_fixtures, tmp_path):
    archive = dataset_fixtures / ARCHIVES["cifar100"]
    archives.extract(archive, tmp_path)                                     # never into the shared fixture folder
    arrays = cifar.load_cifar100(tmp_path)
    assert arrays["train_images"].shape == (100 * 2, 32, 32, 3)          # 52 per class - 50 held out as val
    assert arrays["val_images"].shape == (100 * 50, 32, 32, 3)
    assert arrays["test_images"].shape == (100 * 2, 32, 32, 3)
    assert arrays["fine_label_names"][0] == "apple" and arrays["fine_label_names"][-1] == "worm"
    assert arrays["coarse_label_names"][0] == "aquatic_mammals" and len(arrays["coarse_label_names"]) == 20
    fine_to_coarse = defaultdict(set)
    for split in ("train", "val", "test"):
        for f, c in zip(arrays[f"{split}_labels"], arrays[f"{split}_labels_coarse"]):
            fine_to_coarse[int(f)].add(int(c))
    assert all(len(c) == 1 for c in fine_to_coarse.values()) and len(fine_to_coarse) == 100
    coarse = {f: c.pop() for f, c in fine_to_coarse.items()}
    assert np.bincount(list(coarse.values())).tolist() == [5] * 20
    hierarchy = load_paths_csv(HIERARCHIES / "cifar100_paths.csv").paths
    assert {f: f"L4-{c}" for f, c in coarse.items()} == {int(leaf[3:]): p[-2] for leaf, p in hierarchy.items()}


def test_cifar10_fixture_loads(dataset_fixtures, tmp_path):
    archives.extract(dataset_fixtures / ARCHIVES["cifar10"], tmp_path)
    assert sorted(p.name for p in (tmp_path / "cifar-10-batches-py").iterdir()) == \
        ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    arrays = cifar.load_cifar10(tmp_path)
    assert arrays["train_images"].shape[0] == 10 * 2 and arrays["val_images"].shape[0] == 10 * 500
    assert arrays["test_images"].shape[0] == 10 * 2
    assert list(arrays["class_names"]) == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                           "ship", "truck"]


def test_ilsvrc_fixture_holds_the_first_two_listed_images_of_every_tiered_class(dataset_fixtures):
    """The pilot caps at 2 images per class: the fixture holds exactly those of the shipped split lists."""
    splits = split_lists.cap_per_class(split_lists.read_split_lists(split_lists.TIERED_SPLITS), 2)
    root = dataset_fixtures / "data" / "ilsvrc2012"
    with tarfile.open(root / "ILSVRC2012_img_train.tar") as outer:
        inner_names = outer.getnames()
        assert inner_names == [f"{wnid}.tar" for wnid in sorted(splits["train"])]
        with tarfile.open(fileobj=outer.extractfile(inner_names[0])) as inner:
            assert inner.getnames() == splits["train"]["n01440764"]
            with Image.open(inner.extractfile(inner.getmembers()[0])) as img:
                assert img.format == "JPEG" and img.size == (40, 30) and img.mode == "RGB"
    with tarfile.open(root / "ILSVRC2012_img_val.tar") as val:
        listed = sorted(n for s in ("val", "test") for names in splits[s].values() for n in names)
        assert val.getnames() == listed


def test_inat_fixture_is_named_by_its_split_zip(dataset_fixtures):
    root = dataset_fixtures / "data" / "inaturalist2019"
    splits = split_lists.read_split_lists(root / "splits_inat19.zip", split_lists.inat19_class_name)
    leaves = load_paths_csv(HIERARCHIES / "inaturalist19_paths.csv").leaves
    assert sorted(splits["train"]) == leaves
    images = {(f"nat{int(p.parent.name):04d}", p.name) for p in (root / "train_val2019").glob("*/*/*.jpg")}
    assert images == {(cls, n) for per_class in splits.values() for cls, names in per_class.items() for n in names}


def _resnet50_keys():
    torchvision = pytest.importorskip("torchvision")
    return {k: tuple(v.shape) for k, v in torchvision.models.resnet50().state_dict().items()}


def test_moco_fixture_has_the_pass_checkpoint_layout(dataset_fixtures):
    torch = pytest.importorskip("torch")
    checkpoint = torch.load(dataset_fixtures / WEIGHTS["moco_v2_800ep_pass"], map_location="cpu", weights_only=True)
    assert set(checkpoint) == {"epoch", "arch", "state_dict", "optimizer"}
    assert checkpoint["arch"] == "resnet50" and checkpoint["epoch"] == 800
    encoder = {k: s for k, s in _resnet50_keys().items() if not k.startswith("fc.")}
    encoder.update({"fc.0.weight": (2048, 2048), "fc.0.bias": (2048,), "fc.2.weight": (128, 2048), "fc.2.bias": (128,)})
    expected = {"module.queue": (128, 65536), "module.queue_ptr": (1,)}
    for branch in ("encoder_q", "encoder_k"):
        expected.update({f"module.{branch}.{k}": s for k, s in encoder.items()})
    state = checkpoint["state_dict"]
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert state["module.queue_ptr"].dtype == torch.long
    torch.testing.assert_close(state["module.queue"].norm(dim=0), torch.ones(65536))
    assert len(checkpoint["optimizer"]["param_groups"][0]["params"]) == 2 * (len(encoder) - sum(
        k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in encoder))


def test_resnet50_fixture_is_a_torchvision_state_dict(dataset_fixtures):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    state = torch.load(dataset_fixtures / WEIGHTS["resnet50_imagenet1k_v1"], map_location="cpu", weights_only=True)
    torchvision.models.resnet50().load_state_dict(state)  # strict
