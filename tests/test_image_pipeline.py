"""The fast image-folder path computes what the published float path computes, bit for bit on CPU: uint8 workers +
DeviceNormalise, the Resize skipped at the target size, and the resized-image cache (featgeom.data.resized)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from featgeom.data.imagefolder import (NORMALISATION, DeviceNormalise, ManifestDataset, image_folder_loader,
                                       reference_transform, worker_transform)
from featgeom.data.loaders import build_loaders
from featgeom.data.manifest import read_rgb, verify_image_folder
from featgeom.data.resized import open_resized, resize_once, write_resized
from featgeom.io import write_json

CLASSES = ["a1", "a2", "b1"]
SIZE = 16
# JPEGs larger than, smaller than, and exactly the target size (the stretched copies); one grayscale
SHAPES = [(30, 41), (SIZE, SIZE), (12, 9), (48, 36)]
AUGMENTS = ["crop_flip", "random_resized_crop_flip", "none"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline") / "ds"
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for k, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i, (h, w) in enumerate(SHAPES):
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                image = Image.fromarray(pixels).convert("L") if i == 2 else Image.fromarray(pixels)
                image.save(root / split / name / f"{i}.jpg", quality=90)
    manifest = root.parent / "manifest.json"
    write_json(manifest, verify_image_folder(root))
    return manifest


@pytest.fixture(scope="module")
def cache(folder):
    key = folder.parent / f"resized_{SIZE}.json"
    write_resized(folder, SIZE, folder.parent / f"resized_{SIZE}.npy", key, workers=2)
    return key


def levels():
    return {"class_order": CLASSES}


def spec(recipe, augment):
    return {"source": {"kind": "image_folder", "recipe": recipe}, "label_level": "fine",
            "train": {"batch_size": 5, "eval_batch_size": 7, "num_workers": 0, "augment": augment,
                      "image_size": SIZE}}


def reference_batches(manifest_path, split, recipe, augment, training, epoch):
    """Today's float path: torchvision's published composition on every decoded file, same sampler and seeds."""
    manifest = json.loads(manifest_path.read_text())
    dataset = ManifestDataset(manifest["root"], manifest["files"][split], CLASSES,
                              reference_transform(recipe, augment, SIZE, training), seed=3)
    loader = image_folder_loader(dataset, 5 if training else 7, shuffle=training, num_workers=0, pin_memory=False,
                                 drop_last=training, seed=3)
    loader.sampler.set_epoch(epoch)
    return list(loader)


def assert_same_batches(fast_loader, reference, epoch):
    fast_loader.set_epoch(epoch)
    fast = list(fast_loader)
    assert len(fast) == len(reference) > 0
    for (x, y), (x_ref, y_ref) in zip(fast, reference):
        assert x.dtype == torch.float32 and torch.equal(x, x_ref) and torch.equal(y, y_ref)


@pytest.mark.parametrize("recipe", sorted(NORMALISATION))
@pytest.mark.parametrize("augment", AUGMENTS)
@pytest.mark.parametrize("cached", [False, True])
def test_fast_path_equals_the_float_path_bit_for_bit(folder, cache, recipe, augment, cached):
    """Every recipe's train and eval batches of epoch 2, decoded or from the cache, equal the published path's."""
    loaders, _ = build_loaders(spec(recipe, augment), folder, levels(), 3, torch.device("cpu"), 1,
                               cache if cached else None)
    for name, split, training in (("train", "train", True), ("val", "val", False), ("train_eval", "train", False)):
        assert_same_batches(loaders[name], reference_batches(folder, split, recipe, augment, training, 2), 2)
    expected = "resized-image cache" if cached else "decoded file"
    assert expected in loaders["transforms"]["eval"]
    assert ("resized-image cache" in loaders["transforms"]["train"]) == (cached and augment == "crop_flip")


def test_the_cache_is_torchvisions_resize_and_identity_at_the_target_size(folder, cache):
    manifest = json.loads(folder.read_text())
    images, spans = open_resized(cache, folder, SIZE)
    array = np.load(images)
    offset = spans["val"][0]
    for index, (rel, _) in enumerate(manifest["files"]["val"]):
        path = f"{manifest['root']}/{rel}"
        expected = np.asarray(T.Resize((SIZE, SIZE))(read_rgb(path)))
        assert np.array_equal(resize_once(path, SIZE), expected) and np.array_equal(array[offset + index], expected)
        if read_rgb(path).size == (SIZE, SIZE):  # skipped, not resampled: the decoded pixels themselves
            assert np.array_equal(expected, np.asarray(read_rgb(path)))


def test_device_normalise_is_to_tensor_then_normalize():
    pixels = torch.arange(256, dtype=torch.uint8).repeat(3, 4, 1)  # every value in every channel
    for recipe, (mean, std) in NORMALISATION.items():
        expected = T.Normalize(mean, std)(T.ToTensor()(Image.fromarray(pixels.permute(1, 2, 0).numpy())))
        assert torch.equal(DeviceNormalise(recipe, "cpu")(pixels[None])[0], expected)
    with pytest.raises(TypeError, match="expects uint8"):
        DeviceNormalise("inat", "cpu")(pixels[None].float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_normalise_on_cuda_equals_the_cpu():
    """Where a GPU trains, its normalisation gives the CPU's (float path's) bits: every value, every recipe."""
    pixels = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pixels[0, :, :4, :] = torch.arange(256, dtype=torch.uint8).view(4, 64)  # every value, in every channel
    for recipe in NORMALISATION:
        on_cpu = DeviceNormalise(recipe, "cpu")(pixels)
        assert torch.equal(DeviceNormalise(recipe, "cuda")(pixels.cuda()).cpu(), on_cpu)


def test_a_cache_of_another_manifest_or_size_is_refused(folder, cache, tmp_path):
    with pytest.raises(ValueError, match=f"resized to {SIZE} px, this run needs 8 px"):
        open_resized(cache, folder, 8)
    other = tmp_path / "manifest.json"
    other.write_text(folder.read_text().replace('"max_per_class"', '"listing_sha256": "x", "max_per_class"'))
    with pytest.raises(ValueError, match="made from another version of .*manifest.json"):
        open_resized(cache, other, SIZE)
    key = json.loads(cache.read_text())
    (tmp_path / "cut.npy").write_bytes((folder.parent / key["images"]).read_bytes()[:1000])
    write_json(tmp_path / "cut.json", {**key, "images": "cut.npy"})
    with pytest.raises(ValueError, match="cut.npy: holds no readable array"):
        open_resized(tmp_path / "cut.json", folder, SIZE)


def test_a_bad_image_names_its_file_when_the_cache_is_written(folder, tmp_path):
    manifest = json.loads(folder.read_text())
    bad = tmp_path / "ds" / "train" / "a1" / "0.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a jpeg")
    write_json(tmp_path / "m.json", {**manifest, "root": str(tmp_path / "ds"),
                                     "files": {"train": [["train/a1/0.jpg", "a1"]], "val": [], "test": []}})
    with pytest.raises(ValueError, match=f"{bad}: cannot load image"):
        write_resized(tmp_path / "m.json", SIZE, tmp_path / "r.npy", tmp_path / "r.json")
    assert not (tmp_path / "r.npy").exists() and not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_pipeline_benchmark_quick_prints_its_speedups_and_cores(tmp_path):
    """benchmarks/bench_image_pipeline.py --quick at tiny settings: its output format, not its timings."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_image_pipeline.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--images", "3", "--rounds", "1", "--workers", "1",
                           "--batches", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-6:]
    cases = ["imagenet", "inat", "fgvc"]
    speedups = [re.fullmatch(rf"speedup {case}: (\d+\.\d+)x", line) for case, line in zip(cases, last[:3])]
    assert all(speedups) and min(float(m.group(1)) for m in speedups) > 0, done.stdout
    cores = rf"cores per H100 at ResNet-50 bf16 \(2700 img/s\) ({'|'.join(cases)}): \d+\.\d \(.* workers \+ 1 main\)"
    assert [re.fullmatch(cores, line).group(1) for line in last[3:]] == cases, done.stdout
    assert "DataLoader, new train path, 1 workers" in done.stdout
