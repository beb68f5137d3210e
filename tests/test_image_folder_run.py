"""Image-folder datasets (FGVC / iNat / tiered layout): manifest checks and a training run through the
torchvision DataLoader path, on a fixture of real PNG files."""
import numpy as np
import pytest
from PIL import Image

from featgeom.data.manifest import verify_image_folder
from featgeom.hierarchy import Hierarchy, write_distance_csv, write_paths_csv
from featgeom.hierarchy_stage import build_hierarchy_outputs
from featgeom.io import write_json
from featgeom.runner import run_training

CLASSES = ["a1", "a2", "b1"]  # a1, a2 siblings under "a"; b1 under "b"


def make_folder(root, per_split=(4, 2, 2)):
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val", "test"), per_split):
        for k, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8) // (k + 1)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")


def test_manifest_lists_sorted_classes_and_counts(tmp_path):
    make_folder(tmp_path / "ds")
    manifest = verify_image_folder(tmp_path / "ds")
    assert manifest["classes"] == CLASSES and manifest["counts"] == {"train": 12, "val": 6, "test": 6}


def test_manifest_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        verify_image_folder(tmp_path / "missing")
    make_folder(tmp_path / "ds")
    (tmp_path / "ds" / "test" / "zz").mkdir()
    with pytest.raises(ValueError, match=r"test: class folder\(s\) without images: \['zz'\]"):
        verify_image_folder(tmp_path / "ds")
    (tmp_path / "ds" / "test" / "zz").rmdir()
    for png in (tmp_path / "ds" / "val" / "b1").iterdir():
        png.unlink()
    (tmp_path / "ds" / "val" / "b1").rmdir()
    with pytest.raises(ValueError, match="hold different classes"):
        verify_image_folder(tmp_path / "ds")


def test_training_run_on_an_image_folder(tmp_path):
    make_folder(tmp_path / "ds")
    write_json(tmp_path / "manifest.json", verify_image_folder(tmp_path / "ds"))
    write_paths_csv(tmp_path / "paths.csv", Hierarchy([("a", "a1"), ("a", "a2"), ("b", "b1")]))
    order, distances, levels = build_hierarchy_outputs({"paths": tmp_path / "paths.csv"}, CLASSES)
    write_distance_csv(tmp_path / "d.csv", order, distances)
    write_json(tmp_path / "levels.json", levels)
    spec = {"dataset": "toy", "experiment": "main", "method": "haframe", "kind": "hierarchy", "label_level": "fine",
            "source": {"kind": "image_folder", "recipe": "fgvc"}, "model_type": "II", "device": "cpu",
            "model": {"backbone": "convnet_small", "backbone_kwargs": {"width": 4}, "head": "type2", "frame": "haframe"},
            "loss": {"name": "haframe", "alpha": 0.5}, "frame": {"gamma": 1.0}, "crm_of": None, "longtail": None,
            "train": {"epochs": 2, "batch_size": 4, "eval_batch_size": 8, "num_workers": 0,
                      "augment": "crop_flip", "image_size": 224,
                      "lr": {"backbone": 0.01, "head": 0.1, "classifier": 0.1}}}
    run = tmp_path / "run"
    run.mkdir()
    outputs = {"run_dir": str(run), "test_logits": str(run / "t.npz"), "checkpoint": str(run / "c.pt"),
               "history": str(run / "h.json"), "collapse": str(run / "co.json"), "provenance": str(run / "p.json")}
    run_training(spec, 0, {"data": str(tmp_path / "manifest.json"), "distances": str(tmp_path / "d.csv"),
                           "levels": str(tmp_path / "levels.json")}, outputs)
    scores = np.load(run / "t.npz")
    assert scores["scores"].shape == (6, 3) and list(scores["labels"]) == [0, 0, 1, 1, 2, 2]
