"""torch-side data: the in-memory loader, its DataLoader baseline, and ImageFolder datasets (CPU, fast)."""
import numpy as np
import pytest
import torch

from featgeom.data.gpu_loader import (InMemoryLoader, channel_stats, crop_and_flip, epoch_generator,
                                      plain_dataloader)
from featgeom.data.imagefolder import (DeviceNormalise, check_class_order, image_folder_loader, manifest_dataset,
                                      worker_transform)
from featgeom.data.manifest import list_split


def _random_images(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, size=n)


def _epoch(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def _same(batches_a, batches_b):
    return len(batches_a) == len(batches_b) and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(batches_a, batches_b))


def test_len_and_no_drop_unless_asked():
    images, labels = _random_images(50)
    keep = InMemoryLoader(images, labels, 16, augment=True)
    drop = InMemoryLoader(images, labels, 16, augment=True, drop_last=True)
    assert len(keep) == 4 and len(drop) == 3
    assert [len(y) for _, y in keep] == [16, 16, 16, 2]
    assert [len(y) for _, y in drop] == [16, 16, 16]


def test_unshuffled_epoch_returns_every_image_once_in_order():
    images, labels = _random_images(50)
    loader = InMemoryLoader(images, labels, 16, shuffle=False, mean=(0, 0, 0), std=(1 / 255,) * 3)
    x = torch.cat([b for b, _ in loader])
    assert torch.equal(x, torch.from_numpy(images).permute(0, 3, 1, 2).float())
    assert torch.equal(torch.cat([y for _, y in loader]), torch.as_tensor(labels))


def test_shuffle_is_a_permutation_with_aligned_labels():
    # Constant images whose value is the label: crops and flips keep them constant.
    labels = np.arange(40) % 7
    images = np.broadcast_to(labels[:, None, None, None], (40, 32, 32, 3)).astype(np.uint8).copy()
    loader = InMemoryLoader(images, labels, 8, augment=True, mean=(0, 0, 0), std=(1 / 255,) * 3)
    xs, ys = zip(*loader)
    x, y = torch.cat(xs), torch.cat(ys)
    assert torch.equal(x.amin((1, 2, 3)), y.float()) and torch.equal(x.amax((1, 2, 3)), y.float())
    assert sorted(y.tolist()) == sorted(labels.tolist()) and y.tolist() != labels.tolist()


def test_same_seed_and_epoch_same_batches_other_epoch_differs():
    images, labels = _random_images()
    a = InMemoryLoader(images, labels, 16, augment=True, seed=5)
    b = InMemoryLoader(images, labels, 16, augment=True, seed=5)
    c = InMemoryLoader(images, labels, 16, augment=True, seed=6)
    epoch0 = _epoch(a)
    assert _same(epoch0, _epoch(b))
    assert not _same(epoch0, _epoch(c))
    assert not _same(epoch0, _epoch(a))  # iterating advanced `a` to epoch 1


def test_set_epoch_reproduces_an_uninterrupted_run():
    images, labels = _random_images()
    uninterrupted = InMemoryLoader(images, labels, 16, augment=True, seed=1)
    epochs = [_epoch(uninterrupted) for _ in range(3)]
    resumed = InMemoryLoader(images, labels, 16, augment=True, seed=1)
    resumed.set_epoch(2)
    assert _same(_epoch(resumed), epochs[2])
    explicit = InMemoryLoader(images, labels, 16, augment=True, seed=1)
    for e in (0, 1):
        explicit.set_epoch(e)
        assert _same(_epoch(explicit), epochs[e])


def test_epoch_generator_depends_on_seed_and_epoch():
    draw = lambda s, e: torch.rand(4, generator=epoch_generator(s, e))
    assert torch.equal(draw(0, 3), draw(0, 3))
    assert not torch.equal(draw(0, 3), draw(0, 4)) and not torch.equal(draw(0, 3), draw(1, 3))


def test_crop_and_flip_matches_a_per_image_reference():
    g = torch.Generator().manual_seed(0)
    padded = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8, generator=g)
    shifts = torch.randint(0, 9, (6, 2), generator=g)
    flips = torch.tensor([True, False, True, False, False, True])
    out = crop_and_flip(padded, shifts, flips, 32)
    for i in range(6):
        y, x = shifts[i].tolist()
        crop = padded[i, :, y:y + 32, x:x + 32]
        assert torch.equal(out[i], crop.flip(2) if flips[i] else crop)


def test_augmentation_shapes_and_changes_images():
    images, labels = _random_images(64)
    plain = InMemoryLoader(images, labels, 64, shuffle=False)
    aug = InMemoryLoader(images, labels, 64, shuffle=False, augment=True)
    (x_plain, _), (x_aug, _) = next(iter(plain)), next(iter(aug))
    assert x_aug.shape == x_plain.shape == (64, 3, 32, 32) and x_aug.dtype == torch.float32
    changed = (x_aug != x_plain).flatten(1).any(1)
    assert changed.float().mean() > 0.9  # only the (4, 4) unflipped crop, p = 1/128, leaves one unchanged


def test_crop_offsets_are_the_official_0_to_7():
    # HAFrame util/data_loader.py RandomPadandCrop: pad 4, then top, left = np.random.randint(0, 40 - 32), i.e. 0..7.
    images, labels = _random_images(2000)
    _, shifts, _ = InMemoryLoader(images, labels, 64, augment=True)._epoch_plan(0)
    for axis in (0, 1):
        assert torch.unique(shifts[:, axis]).tolist() == list(range(8))


def test_centre_crop_without_flip_is_identity():
    images, _ = _random_images(3)
    padded = torch.from_numpy(np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="reflect")).permute(0, 3, 1, 2)
    out = crop_and_flip(padded, torch.full((3, 2), 4), torch.zeros(3, dtype=torch.bool), 32)
    assert torch.equal(out, torch.from_numpy(images).permute(0, 3, 1, 2))


def test_images_are_normalised_and_channels_last():
    images, labels = _random_images(200)
    mean, std = channel_stats(images)
    loader = InMemoryLoader(images, labels, 200, shuffle=False, mean=mean, std=std, channels_last=True)
    x, _ = next(iter(loader))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std((0, 2, 3)), torch.ones(3), atol=1e-3)


def test_plain_dataloader_matches_in_memory_loader_without_augmentation():
    images, labels = _random_images(20)
    fast = InMemoryLoader(images, labels, 8, shuffle=False)
    plain = plain_dataloader(images, labels, 8, shuffle=False)
    assert len(fast) == len(plain)
    for (xf, yf), (xp, yp) in zip(fast, plain):
        assert torch.allclose(xf, xp, atol=1e-5) and torch.equal(yf, yp)
    x, y = next(iter(plain_dataloader(images, labels, 8, augment=True)))
    assert x.shape == (8, 3, 32, 32) and y.dtype == torch.int64


def test_from_arrays_picks_split_and_label_key():
    from featgeom.data.synthetic import make_synthetic
    arrays, _ = make_synthetic(n_train=2, n_val=1, n_test=1)
    loader = InMemoryLoader.from_arrays(arrays, "val", 100, label_key="labels_coarse", shuffle=False)
    _, y = next(iter(loader))
    assert torch.equal(y, torch.as_tensor(arrays["val_labels_coarse"]))


def test_loader_rejects_bad_input():
    images, labels = _random_images(4)
    with pytest.raises(ValueError, match="uint8 NHWC"):
        InMemoryLoader(images.astype(np.float32), labels, 2)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        InMemoryLoader(images, labels[:3], 2)


# --- ImageFolder ------------------------------------------------------------------------

@pytest.fixture
def image_root(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for cls, ext in (("v-A320", "png"), ("v-B737", "jpg")):
        folder = tmp_path / "train" / cls
        folder.mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, size=(40 + 10 * i, 60, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"img{i}.{ext}")
    return tmp_path


def image_folder_dataset(root, split, train, recipe, size=224, class_order=("v-A320", "v-B737")):
    """The training path's dataset: a manifest of root/<split> with the recipe's published augmentation (uint8;
    DeviceNormalise checks the recipe, as the loaders build it)."""
    per_class = list_split(root, split)
    manifest = {"root": str(root), "classes": list(per_class),
                "files": {split: [[path, cls] for cls, paths in per_class.items() for path in paths]}}
    augment = {"fgvc": "crop_flip"}.get(recipe, "random_resized_crop_flip")
    DeviceNormalise(recipe, "cpu")
    return manifest_dataset(manifest, split, list(class_order), worker_transform(augment, size, train))


@pytest.mark.parametrize("recipe", ["fgvc", "inat", "imagenet"])
@pytest.mark.parametrize("train", [True, False])
def test_image_folder_dataset(image_root, recipe, train):
    dataset = image_folder_dataset(image_root, "train", train=train, recipe=recipe,
                                   class_order=["v-A320", "v-B737"])
    assert dataset.classes == ["v-A320", "v-B737"] and len(dataset) == 6
    x, y = dataset[4]
    assert x.shape == (3, 224, 224) and x.dtype == torch.uint8 and y == 1


def test_image_folder_loader(image_root):
    dataset = image_folder_dataset(image_root, "train", train=True, recipe="fgvc", size=64)
    batches = list(image_folder_loader(dataset, 4, shuffle=True, num_workers=0, pin_memory=False))
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3, 64, 64), (2, 3, 64, 64)]
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == [0, 0, 0, 1, 1, 1]


def test_class_order_mismatch(image_root):
    with pytest.raises(ValueError, match=r"index 1: folder 'v-B737' vs leaf 'v-B747'"):
        image_folder_dataset(image_root, "train", True, "fgvc", class_order=["v-A320", "v-B747"])
    with pytest.raises(ValueError, match="2 classes in dataset, 3 hierarchy leaves"):
        check_class_order(["a", "b"], ["a", "b", "c"])
    with pytest.raises(FileNotFoundError, match="val"):
        image_folder_dataset(image_root, "val", False, "fgvc")
    with pytest.raises(ValueError, match="unknown transform recipe"):
        image_folder_dataset(image_root, "train", False, "cifar")
