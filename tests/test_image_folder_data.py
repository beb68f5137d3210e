"""Image-folder data: the verify step decodes every image and lists the files it checked; datasets,
transforms and the transforms description that training builds from that manifest (tiny PNGs, CPU)."""
import re

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile
from torchvision import datasets as tv_datasets
from torchvision import transforms as T

from featgeom.data.arrays import save_arrays
from featgeom.data.imagefolder import (AUGMENTS, ImageLoadError, ManifestDataset, image_folder_loader, load_rgb,
                                       manifest_dataset, reference_transform, worker_transform)
from featgeom.data.loaders import build_loaders
from featgeom.data.manifest import verify_image_folder
from featgeom.data.synthetic import make_synthetic
from featgeom.hierarchy import Hierarchy
from featgeom.hierarchy_stage import build_hierarchy_outputs

CLASSES = ["a1", "a2", "b1"]


def make_folder(root, per_split=(3, 2, 2), size=12):
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val", "test"), per_split):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
                    root / split / name / f"{i}.png")
    return root


def truncated_jpeg(path):
    pixels = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


# --- verify_image_folder -----------------------------------------------------------------

def test_verify_names_every_bad_file(tmp_path):
    root = make_folder(tmp_path / "ds")
    truncated = truncated_jpeg(root / "train" / "a2" / "cut.jpg")
    garbage = root / "test" / "b1" / "junk.png"
    garbage.write_bytes(b"this is not an image")
    with pytest.raises(ValueError) as err:
        verify_image_folder(root, workers=2)
    message = str(err.value)
    assert "2 of 23 images cannot be decoded" in message
    assert f"{truncated}: truncated" in message and f"{garbage}: not an image" in message


def test_verify_catches_truncation_even_if_pil_was_relaxed(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "ds")
    truncated_jpeg(root / "val" / "a1" / "cut.jpg")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ValueError, match=r"cut\.jpg: truncated"):
        verify_image_folder(root)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored


def test_verify_lists_the_first_20_bad_files_and_counts_the_rest(tmp_path):
    root = make_folder(tmp_path / "ds")
    for i in range(23):
        (root / "train" / "b1" / f"bad{i:02d}.jpg").write_bytes(b"garbage")
    with pytest.raises(ValueError) as err:
        verify_image_folder(root)
    message = str(err.value)
    assert "bad19.jpg: not an image" in message and "bad20.jpg" not in message
    assert "... and 3 more" in message


def test_manifest_lists_files_in_image_folder_order(tmp_path):
    root = make_folder(tmp_path / "ds")
    (root / "train" / "a1" / "sub").mkdir()
    for name in ("z.png", "0.png"):  # nested folders: ImageFolder walks them after the class's own files
        Image.new("RGB", (8, 8)).save(root / "train" / "a1" / "sub" / name)
    manifest = verify_image_folder(root)
    assert manifest["classes"] == CLASSES and manifest["max_per_class"] is None
    assert manifest["counts"] == {"train": 11, "val": 6, "test": 6}
    for split in ("train", "val", "test"):
        reference = tv_datasets.ImageFolder(str(root / split))
        expected = [[f"{split}/{path[len(str(root / split)) + 1:]}", reference.classes[target]]
                    for path, target in reference.samples]
        assert manifest["files"][split] == expected


def test_hidden_folders_and_files_are_no_classes_or_images(tmp_path):
    root = make_folder(tmp_path / "ds")
    for hidden in (root / "val" / ".ipynb_checkpoints", root / "train" / "a1" / ".thumbs"):
        hidden.mkdir()
        Image.new("RGB", (8, 8)).save(hidden / "0.png")
    Image.new("RGB", (8, 8)).save(root / "test" / "b1" / "._0.png")
    manifest = verify_image_folder(root)
    assert manifest["classes"] == CLASSES and manifest["counts"] == {"train": 9, "val": 6, "test": 6}
    assert not any("/." in path for rows in manifest["files"].values() for path, _ in rows)


def test_max_per_class_keeps_the_first_files_sorted_by_path(tmp_path):
    root = make_folder(tmp_path / "ds", per_split=(4, 3, 1))
    (root / "train" / "a1" / "3.png").unlink()
    truncated_jpeg(root / "train" / "a1" / "9.jpg")  # beyond the cap: not used, so not checked
    manifest = verify_image_folder(root, max_per_class=2)
    assert manifest["max_per_class"] == 2 and manifest["counts"] == {"train": 6, "val": 6, "test": 3}
    assert manifest["files"]["train"][:2] == [["train/a1/0.png", "a1"], ["train/a1/1.png", "a1"]]
    assert manifest["files"]["test"] == [["test/a1/0.png", "a1"], ["test/a2/0.png", "a2"], ["test/b1/0.png", "b1"]]
    with pytest.raises(ValueError, match="positive integer"):
        verify_image_folder(root, max_per_class=0)


def test_verify_does_not_import_torch(tmp_path):
    import subprocess
    import sys
    make_folder(tmp_path / "ds")
    code = ("import sys; from featgeom.data.manifest import verify_image_folder; "
            f"verify_image_folder({str(tmp_path / 'ds')!r}, workers=2); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def sixteen_bit_gradient(path):
    """A real 16-bit grayscale PNG (PIL mode I;16): columns from 0 to 65535."""
    Image.fromarray(np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (4, 1))).save(path)
    return path


def test_a_16_bit_image_is_scaled_to_8_bits_where_it_is_verified_and_loaded(tmp_path):
    root = make_folder(tmp_path / "ds")
    gradient = sixteen_bit_gradient(root / "train" / "a1" / "deep.png")
    with Image.open(gradient) as image:
        assert image.mode == "I;16"
    verify_image_folder(root)  # accepted
    pixels = np.asarray(load_rgb(gradient))
    expected = (np.linspace(0, 65535, 64).astype(np.uint16) >> 8).astype(np.uint8)
    assert (pixels == expected[None, :, None]).all()  # every channel, every row: the gradient's top 8 bits
    assert pixels.min() == 0 and pixels.max() == 255 and (np.diff(pixels[0, :, 0].astype(int)) >= 0).all()


def test_an_image_without_a_known_bit_depth_is_refused_by_name(tmp_path):
    root = make_folder(tmp_path / "ds")
    floats = root / "val" / "b1" / "float.tif"
    Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)).save(floats)
    with pytest.raises(ValueError, match=re.escape(f"{floats}: cannot be decoded (ValueError: mode 'F'")):
        verify_image_folder(root)
    with pytest.raises(ImageLoadError, match=re.escape(f"{floats}: cannot load image (ValueError: mode 'F'")):
        load_rgb(floats)


# --- transforms ---------------------------------------------------------------------------

@pytest.mark.parametrize("augment", AUGMENTS)
@pytest.mark.parametrize("size", [16, 24])
def test_transform_output_size(augment, size):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 20, 3), dtype=np.uint8))
    for train in (True, False):
        x = reference_transform("fgvc", augment, size, train)(image)
        assert x.shape == (3, size, size) and x.dtype == torch.float32
        x = worker_transform(augment, size, train)(image)
        assert x.shape == (3, size, size) and x.dtype == torch.uint8


def test_transform_steps():
    kinds = lambda augment, train: [type(s) for s in reference_transform("inat", augment, 32, train).transforms]
    assert kinds("crop_flip", True)[:3] == [T.Resize, T.RandomCrop, T.RandomHorizontalFlip]
    assert kinds("random_resized_crop_flip", True)[:2] == [T.RandomResizedCrop, T.RandomHorizontalFlip]
    assert repr(reference_transform("inat", "none", 32, True)) == \
        repr(reference_transform("inat", "crop_flip", 32, False))
    assert kinds("crop_flip", False) == [T.Resize, T.ToTensor, T.Normalize]
    assert [type(s) for s in worker_transform("crop_flip", 32, True).transforms][-1] == T.PILToTensor
    # the cached Resize((32, 32)) replaces the first step; a random resized crop has no deterministic one
    assert [type(s) for s in worker_transform("crop_flip", 32, True, resized=True).transforms] == \
        [T.RandomCrop, T.RandomHorizontalFlip]
    assert worker_transform("none", 32, False, resized=True).transforms == []
    with pytest.raises(ValueError, match="does not start with a deterministic resize"):
        worker_transform("random_resized_crop_flip", 32, True, resized=True)
    with pytest.raises(ValueError, match="expected one of .*'crop_flip', 'random_resized_crop_flip', 'none'"):
        reference_transform("inat", "recipe", 32, True)
    with pytest.raises(ValueError, match="unknown transform recipe"):
        reference_transform("cifar", "none", 32, True)


# --- datasets from the manifest -------------------------------------------------------------

def test_manifest_dataset_uses_the_hierarchy_order(tmp_path):
    manifest = verify_image_folder(make_folder(tmp_path / "ds"))
    dataset = manifest_dataset(manifest, "val", CLASSES, worker_transform("none", 8, False))
    assert dataset.targets == [0, 0, 1, 1, 2, 2] and dataset[5][0].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="index 0: folder 'a1' vs leaf 'a2'"):
        manifest_dataset(manifest, "val", ["a2", "a1", "b1"], None)
    with pytest.raises(ValueError, match="no file list"):
        manifest_dataset({k: v for k, v in manifest.items() if k != "files"}, "val", CLASSES, None)


# Worker 1 re-raises in the main process (and torch then waits ~5 s for the failed worker): one file.
@pytest.mark.parametrize("name, workers", [("cut.jpg", 0), ("junk.png", 0), ("junk.png", 1)])
def test_a_bad_image_names_its_file(tmp_path, name, workers):
    make_folder(tmp_path / "ds")
    truncated_jpeg(tmp_path / "ds" / "cut.jpg")
    (tmp_path / "ds" / "junk.png").write_bytes(b"garbage")
    dataset = ManifestDataset(tmp_path / "ds", [["train/a1/0.png", "a1"], [name, "a2"]], CLASSES,
                              worker_transform("none", 8, False))
    with pytest.raises(ImageLoadError, match=re.escape(f"{tmp_path / 'ds' / name}: cannot load image")):
        list(image_folder_loader(dataset, 2, shuffle=False, num_workers=workers, pin_memory=False))


# --- what build_loaders reports as applied ---------------------------------------------------

def _levels(tmp_path, rows):
    from featgeom.hierarchy import write_paths_csv
    write_paths_csv(tmp_path / "paths.csv", Hierarchy(rows))
    _, _, levels = build_hierarchy_outputs({"paths": tmp_path / "paths.csv"}, [row[-1] for row in rows])
    return levels


def _spec(kind, **train):
    return {"source": {"kind": kind, "recipe": "fgvc"}, "label_level": "fine",
            "train": {"batch_size": 2, "eval_batch_size": 2, "num_workers": 0, **train}}


def test_image_folder_transforms_are_described(tmp_path):
    from featgeom.io import write_json
    write_json(tmp_path / "m.json", verify_image_folder(make_folder(tmp_path / "ds")))
    levels = _levels(tmp_path, [("a", "a1"), ("a", "a2"), ("b", "b1")])
    loaders, _ = build_loaders(_spec("image_folder", augment="random_resized_crop_flip", image_size=16),
                               tmp_path / "m.json", levels, 0, torch.device("cpu"), 1)
    assert "RandomResizedCrop(size=(16, 16)" in loaders["transforms"]["train"]
    assert "PILToTensor()" in loaders["transforms"]["train"] and "the decoded file" in loaders["transforms"]["train"]
    assert "Resize(size=(16, 16)" in loaders["transforms"]["eval"] and "Normalize" in loaders["transforms"]["eval"]
    images, _ = next(iter(loaders["train"]))
    assert images.shape == (2, 3, 16, 16) and images.dtype == torch.float32


def test_in_memory_transforms_are_described(tmp_path):
    arrays, rows = make_synthetic(seed=0, branching=(2, 2), n_train=2, n_val=1, n_test=1)
    save_arrays(tmp_path / "a.npz", arrays)
    levels = _levels(tmp_path, rows)
    loaders, _ = build_loaders(_spec("synthetic", augment="crop_flip"), tmp_path / "a.npz", levels, 0, "cpu", 1)
    assert "reflect-pad 4 then random 32x32 crop (offsets 0..7)" in loaders["transforms"]["train"]
    assert "statistics of this dataset's own training split" in loaders["transforms"]["eval"]
    assert "no augmentation" in loaders["transforms"]["eval"]
    loaders, _ = build_loaders(_spec("synthetic", augment="none"), tmp_path / "a.npz", levels, 0, "cpu", 1)
    assert loaders["transforms"]["train"] == loaders["transforms"]["eval"]
    with pytest.raises(ValueError, match="random_resized_crop_flip is not supported for in-memory"):
        build_loaders(_spec("synthetic", augment="random_resized_crop_flip"), tmp_path / "a.npz", levels, 0, "cpu", 1)
