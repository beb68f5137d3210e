#!/usr/bin/env python3
"""Write a tiny fixture of every dataset config/config.yaml uses, each in its real on-disk format.

    python tools/make_fixtures.py DIR [--seed 0] [--train-per-class 52] ...

writes under DIR/data/:
  cifar100/cifar-100-python.tar.gz         official pickle layout, official names and fine->coarse map
  cifar10/cifar-10-python.tar.gz           official pickle layout (5 train batches, test batch, meta)
  fgvc_aircraft/fgvc-aircraft-2013b.tar.gz official 2013b layout, the 100 variants, 20-px bottom banner
  ilsvrc2012/ILSVRC2012_img_{train,val}.tar official tarball layouts (train: a tar of <wnid>.tar), holding
                                           the first images of each class of the shipped tieredImageNet-H lists
  inaturalist2019/train_val2019/<super>/<id>/<hash>.jpg  every leaf of the published hierarchy, and
  inaturalist2019/splits_inat19.zip        MBM's split-list layout, naming those images
  pretrained/moco_v2_800ep_pass.pth.tar    PASS MoCo-v2 checkpoint layout, random weights
  pretrained/resnet50-0676ba61.pth         torchvision resnet50 state dict, random weights
and DIR/checksums.yaml (md5 of the three archives, sha256 of the two weight files, also printed).

Images are noise with a class-dependent colour tint (a model can learn a little). Everything is
deterministic: seeded RNGs, tar/gzip with mtime 0, sorted members, fixed owner. Same bytes every run.
torch is imported only for the two weight files.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import pickle
import shutil
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from featgeom.data.split_lists import TIERED_SPLITS, TIERED_SPLITS_SHA256, cap_per_class, read_split_lists  # noqa: E402
from featgeom.hierarchy import load_paths_csv  # noqa: E402
from featgeom.io import file_digest  # noqa: E402

HIERARCHIES = REPO / "featgeom" / "resources" / "hierarchies"
HEADER = "# featgeom dataset fixture checksums (tools/make_fixtures.py)"
SPLITS = ("train", "val", "test")
RAW_WIDTH, RAW_HEIGHT = 40, 30  # raw ILSVRC / iNat fixture images: small, not square

CIFAR100_FINE = [  # official `fine_label_names`, in label order
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]
CIFAR100_COARSE = [  # official `coarse_label_names`, in label order
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
]
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# --- shared helpers -----------------------------------------------------------------------

def write_tar_gz(path: Path, files: dict[str, bytes]) -> None:
    """Deterministic .tar.gz: sorted members (parent folders included), mtime 0, owner root:root."""
    names = set(files)
    for name in files:
        names.update(str(parent) for parent in Path(name).parents if str(parent) != ".")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(names, key=lambda n: Path(n).parts):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            if name in files:
                info.size, info.mode = len(files[name]), 0o644
                tar.addfile(info, io.BytesIO(files[name]))
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)


def tinted_images(rng, labels, n_classes: int, height: int, width: int) -> np.ndarray:
    """uint8 NHWC: a per-class colour plus blocky noise (4x4 blocks, so archives stay small)."""
    tints = np.random.default_rng(1234 + n_classes).integers(40, 216, size=(n_classes, 3))
    noise = rng.integers(-40, 41, size=(len(labels), -(-height // 4), -(-width // 4), 3))
    noise = noise.repeat(4, axis=1).repeat(4, axis=2)[:, :height, :width]
    return np.clip(tints[np.asarray(labels)][:, None, None, :] + noise, 0, 255).astype(np.uint8)


def jpeg_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def cifar_rows(images: np.ndarray) -> np.ndarray:
    """NHWC -> the official rows: uint8 [N, 3072], each row the R, G, B planes (CHW row-major)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1))


def pickled(obj) -> bytes:
    return pickle.dumps(obj, protocol=2)


# --- one function per dataset -------------------------------------------------------------

def make_cifar100(data: Path, seed: int, train_per_class: int, test_per_class: int) -> Path:
    paths = load_paths_csv(HIERARCHIES / "cifar100_paths.csv").paths  # leaf L5-<fine> sits under L4-<coarse>
    coarse_of = {int(leaf[len("L5-"):]): int(path[-2][len("L4-"):]) for leaf, path in paths.items()}
    rng = np.random.default_rng(seed)
    files = {"cifar-100-python/meta": pickled({b"fine_label_names": [n.encode() for n in CIFAR100_FINE],
                                               b"coarse_label_names": [n.encode() for n in CIFAR100_COARSE]})}
    for split, per_class, batch_label in (("train", train_per_class, b"training batch 1 of 1"),
                                          ("test", test_per_class, b"testing batch 1 of 1")):
        fine = rng.permutation(np.repeat(np.arange(100), per_class))
        files[f"cifar-100-python/{split}"] = pickled({
            b"filenames": [f"{CIFAR100_FINE[f]}_s_{i:06d}.png".encode() for i, f in enumerate(fine)],
            b"batch_label": batch_label,
            b"fine_labels": [int(f) for f in fine],
            b"coarse_labels": [coarse_of[int(f)] for f in fine],
            b"data": cifar_rows(tinted_images(rng, fine, 100, 32, 32)),
        })
    path = data / "cifar100" / "cifar-100-python.tar.gz"
    write_tar_gz(path, files)
    return path


def make_cifar10(data: Path, seed: int, train_per_class: int, test_per_class: int) -> Path:
    rng = np.random.default_rng(seed + 10)
    files = {"cifar-10-batches-py/batches.meta": pickled({
        b"num_cases_per_batch": train_per_class * 2, b"label_names": [n.encode() for n in CIFAR10],
        b"num_vis": 3072})}
    train = rng.permutation(np.repeat(np.arange(10), train_per_class))
    batches = [(f"data_batch_{i + 1}", f"training batch {i + 1} of 5", part)
               for i, part in enumerate(np.array_split(train, 5))]
    batches.append(("test_batch", "testing batch 1 of 1", rng.permutation(np.repeat(np.arange(10), test_per_class))))
    for name, batch_label, labels in batches:
        files[f"cifar-10-batches-py/{name}"] = pickled({
            b"batch_label": batch_label.encode(),
            b"labels": [int(c) for c in labels],
            b"data": cifar_rows(tinted_images(rng, labels, 10, 32, 32)),
            b"filenames": [f"{CIFAR10[c]}_s_{name}_{i:05d}.png".encode() for i, c in enumerate(labels)],
        })
    path = data / "cifar10" / "cifar-10-python.tar.gz"
    write_tar_gz(path, files)
    return path


def make_fgvc_aircraft(data: Path, seed: int, per_variant: int, height: int = 48, width: int = 64) -> Path:
    """Inverts HAFrame's naming (strip 'v-'/'f-'/'m-', '-slash-' -> '/') to get the official names."""
    official = lambda node: node[2:].replace("-slash-", "/")  # noqa: E731
    paths = load_paths_csv(HIERARCHIES / "fgvc_aircraft_paths.csv").paths
    variants = {official(leaf): (official(p[1]), official(p[0])) for leaf, p in paths.items()}
    rng = np.random.default_rng(seed + 20)
    root = "fgvc-aircraft-2013b/data"
    files = {f"{root}/variants.txt": "".join(f"{v}\n" for v in sorted(variants)).encode(),
             f"{root}/families.txt": "".join(f"{f}\n" for f in sorted({f for f, _ in variants.values()})).encode(),
             f"{root}/manufacturers.txt": "".join(f"{m}\n" for m in sorted({m for _, m in variants.values()})).encode()}
    image_id = 1000000
    lists = {}
    for split in SPLITS:
        lists[split] = []
        for label, variant in enumerate(sorted(variants)):
            for _ in range(per_variant):
                image = np.full((height + 20, width, 3), 235, dtype=np.uint8)  # the banner: light grey ...
                image[height + 6:height + 14, 4:width // 2] = 20                # ... with a dark "caption"
                image[:height] = tinted_images(rng, [label], len(variants), height, width)[0]
                files[f"{root}/images/{image_id:07d}.jpg"] = jpeg_bytes(image)
                lists[split].append((f"{image_id:07d}", variant))
                image_id += 1
    lists["trainval"] = sorted(lists["train"] + lists["val"])
    for split, rows in lists.items():
        for level, column in (("variant", lambda v: v), ("family", lambda v: variants[v][0]),
                              ("manufacturer", lambda v: variants[v][1])):
            files[f"{root}/images_{level}_{split}.txt"] = "".join(f"{i} {column(v)}\n" for i, v in rows).encode()
    path = data / "fgvc_aircraft" / "fgvc-aircraft-2013b.tar.gz"
    write_tar_gz(path, files)
    return path


def tar_bytes(files: dict[str, bytes]) -> bytes:
    """Deterministic flat .tar (the ILSVRC-2012 tarballs hold no folders): sorted, mtime 0, owner root:root."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            info.size, info.mode = len(files[name]), 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def write_zip(path: Path, files: dict[str, str]) -> None:
    """Deterministic zip: sorted members, all dated 1980-01-01."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), files[name])


def raw_images(rng, n_classes: int, labels: list, width: int = RAW_WIDTH, height: int = RAW_HEIGHT) -> list:
    """JPEG bytes of tinted noise, one per label: landscape, as most raw photos, so stretching changes them."""
    return [jpeg_bytes(image) for image in tinted_images(rng, labels, n_classes, height, width)]


def make_ilsvrc2012(data: Path, seed: int, per_class: int) -> Path:
    """ILSVRC2012_img_train.tar (a tar of <wnid>.tar) and ILSVRC2012_img_val.tar (flat) holding the first
    `per_class` names of each class in each split of the shipped tieredImageNet-H lists (the pilot's cap)."""
    splits = cap_per_class(read_split_lists(TIERED_SPLITS, sha256=TIERED_SPLITS_SHA256), per_class)
    wnids = sorted(splits["train"])
    rng = np.random.default_rng(seed + 40)
    train, val = {}, {}
    for label, wnid in enumerate(wnids):
        names = splits["train"][wnid]
        train[f"{wnid}.tar"] = tar_bytes(dict(zip(names, raw_images(rng, len(wnids), [label] * len(names)))))
        names = splits["val"][wnid] + splits["test"][wnid]
        val.update(zip(names, raw_images(rng, len(wnids), [label] * len(names))))
    root = data / "ilsvrc2012"
    root.mkdir(parents=True, exist_ok=True)
    (root / "ILSVRC2012_img_train.tar").write_bytes(tar_bytes(train))
    (root / "ILSVRC2012_img_val.tar").write_bytes(tar_bytes(val))
    return root


def make_inaturalist2019(data: Path, seed: int, per_class: int) -> Path:
    """train_val2019/<supercategory>/<category id>/<32 hex>.jpg for every leaf nat<id> of the shipped hierarchy,
    and splits_inat19.zip in MBM's layout (splits_inat19/{train,val,test}/nat<id>.txt) listing them."""
    paths = load_paths_csv(HIERARCHIES / "inaturalist19_paths.csv").paths
    leaves = sorted(paths)
    rng = np.random.default_rng(seed + 50)
    root = data / "inaturalist2019"
    lists = {}
    for label, leaf in enumerate(leaves):
        folder = root / "train_val2019" / paths[leaf][0].removeprefix("node_") / str(int(leaf[len("nat"):]))
        folder.mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            names = [hashlib.md5(f"{leaf}/{split}/{k}".encode()).hexdigest() + ".jpg" for k in range(per_class)]
            for name, image in zip(names, raw_images(rng, len(leaves), [label] * per_class)):
                (folder / name).write_bytes(image)
            lists[f"splits_inat19/{split}/{leaf}.txt"] = "".join(f"{name}\n" for name in sorted(names))
    write_zip(root / "splits_inat19.zip", lists)
    return root


def _resnet50(seed: int, num_classes: int = 1000):
    import torch
    import torchvision
    torch.manual_seed(seed)
    return torchvision.models.resnet50(weights=None, num_classes=num_classes)


def make_moco_pass(data: Path, seed: int) -> Path:
    """{'epoch', 'arch', 'state_dict', 'optimizer'} as facebookresearch/moco main_moco.py saves MoCo-v2
    (--mlp) under DistributedDataParallel. encoder_k holds the same tensors as encoder_q (MoCo starts it as
    a copy), so torch.save stores them once; the optimizer state is that of a fresh SGD (no momentum yet)."""
    import torch
    encoder = _resnet50(seed, num_classes=128)                        # builder.py: base_encoder(num_classes=dim)
    dim_mlp = encoder.fc.weight.shape[1]
    encoder.fc = torch.nn.Sequential(torch.nn.Linear(dim_mlp, dim_mlp), torch.nn.ReLU(), encoder.fc)
    weights = encoder.state_dict()
    queue = torch.nn.functional.normalize(torch.randn(128, 65536), dim=0)
    state = {"module.queue": queue, "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    state.update({f"module.encoder_q.{k}": v for k, v in weights.items()})
    state.update({f"module.encoder_k.{k}": v for k, v in weights.items()})
    n_params = 2 * len(list(encoder.parameters()))                    # model.parameters(): encoder_q, encoder_k
    params = [torch.nn.Parameter(torch.empty(0)) for _ in range(n_params)]  # the state dict keeps indices only
    optimizer = torch.optim.SGD(params, lr=0.03, momentum=0.9, weight_decay=1e-4).state_dict()
    path = data / "pretrained" / "moco_v2_800ep_pass.pth.tar"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 800, "arch": "resnet50", "state_dict": state, "optimizer": optimizer}, path)
    return path


def make_resnet50_imagenet(data: Path, seed: int) -> Path:
    """A torchvision resnet50 state dict (random weights) standing in for IMAGENET1K_V1."""
    import torch
    path = data / "pretrained" / "resnet50-0676ba61.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_resnet50(seed + 1).state_dict(), path)
    return path


# --- driver -------------------------------------------------------------------------------

def _clear(out: Path, targets) -> None:
    """Refuse to overwrite anything but an earlier fixture (recognised by its checksums.yaml)."""
    existing = [t for t in targets if t.exists()]
    if not existing:
        return
    marker = out / "checksums.yaml"
    if not (marker.is_file() and marker.read_text().startswith(HEADER)):
        raise SystemExit(f"{existing[0]} already exists and {out} is not a fixture folder written by this "
                         f"tool (no {marker.name}); choose an empty folder")
    for target in existing:
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def make_fixtures(out, seed: int = 0, train_per_class: int = 52, test_per_class: int = 2,
                  cifar10_train_per_class: int = 502, fgvc_per_variant: int = 2, tiered_per_class: int = 2,
                  inat_per_class: int = 1) -> str:
    """Write every fixture under out/data/ and out/checksums.yaml; return the checksums YAML text."""
    out = Path(out)
    data = out / "data"
    _clear(out, [data / "cifar100" / "cifar-100-python.tar.gz", data / "cifar10" / "cifar-10-python.tar.gz",
                 data / "fgvc_aircraft" / "fgvc-aircraft-2013b.tar.gz", data / "inaturalist2019",
                 data / "ilsvrc2012", data / "pretrained" / "moco_v2_800ep_pass.pth.tar",
                 data / "pretrained" / "resnet50-0676ba61.pth"])
    md5 = {"cifar100": make_cifar100(data, seed, train_per_class, test_per_class),
           "cifar10": make_cifar10(data, seed, cifar10_train_per_class, test_per_class),
           "fgvc_aircraft": make_fgvc_aircraft(data, seed, fgvc_per_variant)}
    make_ilsvrc2012(data, seed, tiered_per_class)
    make_inaturalist2019(data, seed, inat_per_class)
    sha256 = {"moco_v2_800ep_pass": make_moco_pass(data, seed),
              "resnet50_imagenet1k_v1": make_resnet50_imagenet(data, seed)}
    lines = [HEADER, "md5:"]
    lines += [f"  {name}: {file_digest(path, 'md5')}  # {path.relative_to(out)}" for name, path in md5.items()]
    lines.append("sha256:")
    lines += [f"  {name}: {file_digest(path, 'sha256')}  # {path.relative_to(out)}" for name, path in sha256.items()]
    text = "\n".join(lines) + "\n"
    (out / "checksums.yaml").write_text(text)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="output folder; the fixtures go to DIR/data/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-per-class", type=int, default=52,
                        help="CIFAR-100 train images per class (featgeom holds out the last 50 as val)")
    parser.add_argument("--test-per-class", type=int, default=2, help="CIFAR-100 and CIFAR-10 test images per class")
    parser.add_argument("--cifar10-train-per-class", type=int, default=502,
                        help="CIFAR-10 train images per class (featgeom holds out the last 500 as val)")
    parser.add_argument("--fgvc-per-variant", type=int, default=2, help="FGVC images per variant per split")
    parser.add_argument("--tiered-per-class", type=int, default=2,
                        help="ILSVRC-2012 images per tieredImageNet-H class per split: the first of the shipped "
                             "lists, as many as the pilot's images_per_class (only those need exist)")
    parser.add_argument("--inat-per-class", type=int, default=1,
                        help="iNat 2019 images per class per split (the fixture's split zip lists exactly these)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    text = make_fixtures(args.dir, args.seed, args.train_per_class, args.test_per_class,
                         args.cifar10_train_per_class, args.fgvc_per_variant, args.tiered_per_class,
                         args.inat_per_class)
    print(text, end="")
    print(f"# written to {args.dir / 'data'} in {time.perf_counter() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
