"""Image-folder datasets (FGVC / iNat / tiered layout): manifest checks, verification rerun by changes to the
folder, and a training run through the torchvision DataLoader path, on a fixture of real PNG files."""
import json
import os

import numpy as np
import pytest
import yaml
from PIL import Image
from test_workflow import snakemake

from featgeom.config import resolve_run
from featgeom.config_files import checked_config
from featgeom.data.manifest import verify_image_folder
from featgeom.hierarchy import Hierarchy, HierarchyError, write_distance_csv, write_paths_csv
from featgeom.hierarchy_stage import build_hierarchy_outputs
from featgeom.io import write_json
from featgeom.runner import run_training

CLASSES = ["a1", "a2", "b1"]  # a1, a2 siblings under "a"; b1 under "b"
SCHEMA = os.path.join(os.path.dirname(__file__), "..", "workflow", "schemas", "config.schema.yaml")


def make_folder(root, per_split=(4, 2, 2), classes=CLASSES):
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val", "test"), per_split):
        for k, name in enumerate(classes):
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
    method = {"model_type": "II", "loss": {"name": "haframe", "alpha": 0.5}, "frame": {"gamma": 1.0},
              "model": {"backbone": "convnet_small", "backbone_kwargs": {"width": 4}, "head": "type2", "frame": "haframe"}}
    train = {"epochs": 2, "batch_size": 4, "eval_batch_size": 8, "num_workers": 0,
             "lr": {"backbone": 0.01, "head": 0.1, "classifier": 0.1}}
    config = {"device": "cpu", "datasets": {"toy": {
        "source": {"kind": "image_folder", "root": str(tmp_path / "ds"), "recipe": "fgvc"},
        "hierarchy": {"paths": str(tmp_path / "paths.csv")},
        "experiments": {"main": {"kind": "hierarchy", "seeds": 1, "train": train, "methods": {"haframe": method}}}}}}
    spec = resolve_run(checked_config(config, SCHEMA), "toy", "main", "haframe")
    assert (spec["train"]["augment"], spec["train"]["image_size"]) == ("crop_flip", 224)  # the fgvc recipe's
    run = tmp_path / "run"
    run.mkdir()
    outputs = {"run_dir": str(run), "test_logits": str(run / "t.npz"), "checkpoint": str(run / "c.pt"),
               "history": str(run / "h.json"), "collapse": str(run / "co.json"), "provenance": str(run / "p.json")}
    run_training(spec, 0, {"data": str(tmp_path / "manifest.json"), "distances": str(tmp_path / "d.csv"),
                           "levels": str(tmp_path / "levels.json")}, outputs)
    scores = np.load(run / "t.npz")
    assert scores["scores"].shape == (6, 3) and list(scores["labels"]) == [0, 0, 1, 1, 2, 2]


def image_folder_project(tmp_path):
    """A workflow directory with one image-folder dataset `toy` (its folder and hierarchy outside it)."""
    make_folder(tmp_path / "ds")
    write_paths_csv(tmp_path / "paths.csv", Hierarchy([("a", "a1"), ("a", "a2"), ("b", "b1")]))
    train = {"epochs": 1, "batch_size": 4, "lr": {"backbone": 0.01, "head": 0.1, "classifier": 0.1}}
    method = {"model_type": "I", "model": {"backbone": "convnet_small", "head": "linear"}, "loss": {"name": "ce"}}
    config = {"device": "cpu", "datasets": {"toy": {
        "source": {"kind": "image_folder", "root": str(tmp_path / "ds"), "recipe": "fgvc"},
        "hierarchy": {"paths": str(tmp_path / "paths.csv")},
        "experiments": {"main": {"kind": "hierarchy", "seeds": 1, "train": train, "methods": {"ce_t1": method}}}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "work").mkdir()
    return lambda *args: snakemake("--cores", "1", "--configfile", str(tmp_path / "config.yaml"),
                                   "--directory", str(tmp_path / "work"), *args, "results/toy/hierarchy/class_order.txt")


@pytest.mark.slow
def test_a_changed_image_folder_is_verified_again(tmp_path):
    run = image_folder_project(tmp_path)
    run()
    assert "Nothing to be done" in run("-n").stdout
    image = tmp_path / "ds" / "train" / "a1" / "0.png"
    changes = [lambda: (tmp_path / "ds" / "val" / "a2" / "new.png").write_bytes(image.read_bytes()),  # added
               lambda: os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9)),  # touched
               lambda: (tmp_path / "ds" / "val" / "a2" / "new.png").unlink()]  # removed
    manifest = tmp_path / "work" / "results" / "toy" / "data" / "image_folder.json"
    verified = [json.loads(manifest.read_text())["listing_sha256"]]
    for change in changes:
        change()
        assert "rule verify_image_folder:" in run("-n").stdout
        run()
        verified.append(json.loads(manifest.read_text())["listing_sha256"])
    assert "Nothing to be done" in run("-n").stdout
    # the manifest, which a run's lineage hashes, names what it verified: a touched image changes it too
    assert len(set(verified)) == len(verified)


@pytest.mark.slow
def test_a_class_folder_added_later_reaches_the_hierarchy(tmp_path):
    run = image_folder_project(tmp_path)
    run()
    make_folder(tmp_path / "ds", classes=["ten"])
    write_paths_csv(tmp_path / "paths.csv", Hierarchy([("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "ten")]))
    run()  # before: the hierarchy reran on the old class list: "leaf/leaves 'ten' match no class"
    class_order = tmp_path / "work" / "results" / "toy" / "hierarchy" / "class_order.txt"
    assert class_order.read_text().split() == [*CLASSES, "ten"]


@pytest.mark.slow
def test_a_stale_class_list_says_how_to_rebuild_it(tmp_path):
    write_paths_csv(tmp_path / "paths.csv", Hierarchy([("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "ten")]))
    with pytest.raises(HierarchyError) as error:
        build_hierarchy_outputs({"paths": tmp_path / "paths.csv"}, CLASSES, class_list="results/toy/data/classes.txt")
    message = str(error.value)
    assert "leaf/leaves 'ten' match no class of results/toy/data/classes.txt" in message
    assert "snakemake --forcerun results/toy/data/classes.txt" in message


@pytest.mark.slow
def test_a_crop_flip_run_reads_its_images_resized_once_and_says_how_many_workers_ran(tmp_path):
    """FGVC's recipe (crop_flip): rule resize_images makes the cache the run reads, and remakes it when an image
    changes; the job booked num_workers (default 4) + 1 cores, got 1 (--cores 1), and its log says what ran."""
    run = image_folder_project(tmp_path)
    target = "results/toy/main/ce_t1/seed0/provenance.json"
    run_dir = tmp_path / "work" / "results" / "toy" / "main" / "ce_t1" / "seed0"
    run(target)
    applied = json.loads((run_dir / "provenance.json").read_text())["applied"]["transforms"]
    assert all("the resized-image cache" in applied[name] for name in ("train", "eval")), applied
    assert "RandomCrop" in applied["train"] and "Normalize" in applied["train"]
    assert (tmp_path / "work" / "results" / "toy" / "data" / "resized_224.npy").is_file()
    assert "loader: 0 of the 4 workers of train.num_workers: this job got 1 cores, not the 5 it booked" in \
        (run_dir / "train.log").read_text()
    image = tmp_path / "ds" / "train" / "a1" / "0.png"
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    assert "rule resize_images:" in run("-n", target).stdout
