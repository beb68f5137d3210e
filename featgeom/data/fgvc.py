"""FGVC-Aircraft: the official 2013b archive -> HAFrame's image folders out_dir/{train,val,test}/<variant>/.

Follows HAFrame's `_fgvc_aircraft/fgvc_dataset_preprocessing.py` (ltong1130ztr/HAFrame @ abe73b4,
`construct_fgvc_aircraft_imagefolder` and `annotation_split`):
- the splits are the official train / val / test lists `data/images_variant_{train,val,test}.txt`
  (not trainval), each line `<image id> <variant name>`;
- the class folder is `v-<variant>`, the variant being everything after the first space (inner spaces
  kept, e.g. `v-BAE 146-200`) with every "/" written "-slash-" (`v-F-16A-slash-B`, `v-F-slash-A-18`);
  these are the leaves of `featgeom/resources/hierarchies/fgvc_aircraft_paths.csv`;
- each image is `Image.open(src).crop((0, 0, w, h - 20)).save(dest)`: the 20-px copyright banner at the
  bottom is cut off and the image re-encoded by PIL with its default JPEG settings, as in HAFrame.
Archive URL and layout as torchvision's `datasets/fgvc_aircraft.py` (`fgvc-aircraft-2013b/data/...`).

torch-free (PIL + numpy + stdlib), so a rule that does not train can run it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from featgeom.data.archives import download_url, extract, verify_md5
from featgeom.hierarchy import load_paths_csv

URL = "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz"
FILENAME = "fgvc-aircraft-2013b.tar.gz"
FOLDER = "fgvc-aircraft-2013b"
# md5 of the official archive. torchvision's FGVCAircraft does not check one; this value is the one
# used by google-deepmind/dm_nevis (dm_nevis/datasets_storage/handlers/fgvc_aircraft.py, `checksum=`)
# and mlverse/torchvision (R, fgvc_aircraft dataset, `md5 <-`); the dataset page links an "MD5 Sum".
MD5 = "d4acdd33327262359767eeaa97a4f732"
SPLITS = ("train", "val", "test")
BANNER_PX = 20
HIERARCHY_CSV = Path(__file__).resolve().parent.parent / "resources" / "hierarchies" / "fgvc_aircraft_paths.csv"


def folder_name(variant: str) -> str:
    """HAFrame's class folder for an official variant name: 'F-16A/B' -> 'v-F-16A-slash-B'."""
    return "v-" + variant.replace("/", "-slash-")


def read_split_list(path) -> list[tuple[str, str]]:
    """(image id, variant) per line of an `images_variant_<split>.txt` file, split at the first space."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: FGVC-Aircraft split list not found (is the archive complete?)")
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        image_id, sep, variant = line.partition(" ")
        if not sep or not image_id or not variant:
            raise ValueError(f"{path}: line {line_no} is {line!r}, expected '<image id> <variant name>'")
        rows.append((image_id, variant))
    if not rows:
        raise ValueError(f"{path}: no images listed")
    return rows


def _crop_banner(src: Path, dest: Path) -> None:
    try:
        with Image.open(src) as img:
            width, height = img.size
            if height <= BANNER_PX:
                raise ValueError(f"image is {width}x{height}, too small to crop the {BANNER_PX}-px banner")
            img.crop((0, 0, width, height - BANNER_PX)).save(dest)  # HAFrame: default PIL JPEG settings
    except (OSError, ValueError) as err:
        raise ValueError(f"{src}: cannot convert the image ({err})") from err


def _build_split(data_dir: Path, split: str, dest: Path, leaves: list[str], workers: int) -> int:
    listing = data_dir / f"images_variant_{split}.txt"
    rows = read_split_list(listing)
    known = set(leaves)
    jobs = []
    for image_id, variant in rows:
        label = folder_name(variant)
        if label not in known:
            raise ValueError(f"{listing}: variant {variant!r} (folder {label!r}) of image {image_id} is not a "
                             f"leaf of the hierarchy {HIERARCHY_CSV.name}")
        src = data_dir / "images" / f"{image_id}.jpg"
        if not src.is_file():
            raise FileNotFoundError(f"{src}: image listed in {listing} not found")
        jobs.append((src, dest / label / f"{image_id}.jpg"))
    missing = known - {path.parent.name for _, path in jobs}
    if missing:
        raise ValueError(f"{listing}: no image of {len(missing)} hierarchy leaves, e.g. {sorted(missing)[:3]}; "
                         f"every split must hold all {len(known)} variants")
    for label in known:
        (dest / label).mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # PIL releases the GIL while coding
        futures = [pool.submit(_crop_banner, src, dst) for src, dst in jobs]
        try:
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return len(jobs)


def prepare_fgvc_aircraft(root, out_dir, download: bool = False, md5: str | None = None,
                          workers: int = 1) -> dict:
    """Verify and extract root/fgvc-aircraft-2013b.tar.gz, then write out_dir/{train,val,test}/<variant>/.

    `md5` overrides the official checksum (test fixtures). Everything is built in a temporary folder
    inside `out_dir` (the extracted archive included, which is deleted afterwards); the finished split
    folders then replace any old ones, so an interrupted run never leaves a half-written split behind.
    `out_dir` may equal `root`. Returns {split: number of images written}.
    """
    archive = Path(root) / FILENAME
    if not archive.exists():
        if not download:
            raise FileNotFoundError(f"{archive}: FGVC-Aircraft archive not found; download {URL} "
                                    f"and place it there, "
                                    f"or set `source.download: true` in this dataset's config")
        download_url(URL, archive)
    verify_md5(archive, md5 or MD5)
    leaves = load_paths_csv(HIERARCHY_CSV).leaves
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fgvc-prepare.", dir=out_dir))
    try:
        extract(archive, staging / "archive")
        data_dir = staging / "archive" / FOLDER / "data"
        if not data_dir.is_dir():
            raise ValueError(f"{archive}: no {FOLDER}/data/ folder inside (not the official 2013b archive?)")
        counts = {split: _build_split(data_dir, split, staging / split, leaves, workers) for split in SPLITS}
        for split in SPLITS:  # swap each finished split in; old ones go to staging and are deleted
            target = out_dir / split
            if target.exists() or target.is_symlink():
                os.replace(target, staging / f"old-{split}")
            os.replace(staging / split, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts
