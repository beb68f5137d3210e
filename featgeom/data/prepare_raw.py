"""tieredImageNet-H and iNat19 as the papers prepared them: the images MBM's split lists name, taken from the raw
ILSVRC-2012 / iNaturalist 2019 files (folders or tarballs, read in place) and stretched to S x S, like
ImageMagick's `convert <in> -resize SxS! <out>` (fiveai/making-better-mistakes README). No torch.

Output: <folder>/{train,val,test}/<class>/<source file name>, each file written atomically, so a killed job
resumes where it stopped (finished files are kept, a half-written one never has its final name). The folder is
named by the caller after the stretch size, and its STRETCH_MARKER records the size and settings: images of two
sizes or settings are never mixed.
"""
from __future__ import annotations

import io
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import BoundedSemaphore

from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from featgeom.data.manifest import strict_decoding, to_rgb
from featgeom.data.split_lists import (SHOW, SPLITS, TIERED_SPLITS, TIERED_SPLITS_SHA256, cap_per_class,
                                       check_classes_in_hierarchy, inat19_class_name, read_split_lists,
                                       tiered_class_name)
from featgeom.io import atomic_path, file_digest, read_json, write_json, write_text

STRETCH_MARKER = "stretch.json"
MISSING_SHOWN = 200  # missing images named in the error itself
FALLBACK_QUALITY = 92  # ImageMagick's JPEG quality when it cannot estimate the input's
# ImageMagick's resize filter: Mitchell when the image is enlarged (x_factor * y_factor > 1) or has a palette or
# alpha, else Lanczos (3 lobes). PIL has Lanczos-3; its bicubic (Keys, a = -0.5) is the nearest cubic to Mitchell.
SETTINGS = {"shrink_filter": "PIL LANCZOS", "enlarge_filter": "PIL BICUBIC",
            "jpeg": f"source quantization tables and chroma subsampling, else quality {FALLBACK_QUALITY}"}
PALETTE_OR_ALPHA = ("P", "PA", "LA", "RGBA", "La", "RGBa")
ILSVRC_TRAIN_TAR, ILSVRC_VAL_TAR = "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"
INAT_FOLDER = "train_val2019"
INAT_TARS = ("train_val2019.tar.gz", "train_val2019.tar")


@dataclass(frozen=True)
class FileOrigin:
    path: Path

    def __str__(self):
        return str(self.path)


@dataclass(frozen=True)
class TarOrigin:
    """A member of a tar (`inner` is None) or of a tar inside a tar (ILSVRC-2012 train: one tar per class)."""
    tar: Path
    inner: str | None
    member: tarfile.TarInfo

    def __str__(self):
        return ":".join(str(part) for part in (self.tar, self.inner, self.member.name) if part is not None)


# --- stretching one image -------------------------------------------------------------------------------------

def stretch_filter(width: int, height: int, mode: str, size: int):
    """ImageMagick's default choice (see PALETTE_OR_ALPHA): Lanczos unless enlarging or palette/alpha."""
    enlarging = width * height < size * size
    return Image.Resampling.BICUBIC if enlarging or mode in PALETTE_OR_ALPHA else Image.Resampling.LANCZOS


def jpeg_settings(image: Image.Image) -> dict:
    """Save options standing in for ImageMagick's "estimated quality of the input": the input's own quantization
    tables (for inputs made with the standard IJG tables these are the tables of that quality) and chroma
    subsampling; FALLBACK_QUALITY for anything else (PNG, grayscale or CMYK JPEG)."""
    tables = getattr(image, "quantization", None) or {}
    if image.format != "JPEG" or image.mode != "RGB" or len(tables) < 2:
        return {"quality": FALLBACK_QUALITY}
    settings = {"qtables": [list(tables[0]), list(tables[1])]}
    sampling = JpegImagePlugin.get_sampling(image)
    return {**settings, "subsampling": sampling} if sampling >= 0 else settings


def write_stretched(data: bytes, size: int, out: Path) -> None:
    """Decode `data` to RGB as training reads images (manifest.to_rgb: grayscale, CMYK, palette by PIL's
    convert('RGB'); 16-bit by its top 8 bits), stretch to size x size ignoring the aspect ratio, and write it to
    `out` as JPEG, atomically."""
    with Image.open(io.BytesIO(data)) as image:
        settings, resample = jpeg_settings(image), stretch_filter(*image.size, image.mode, size)
        rgb = to_rgb(image)
    with atomic_path(out) as tmp:  # its temp name ends in .tmp: never listed as an image
        rgb.resize((size, size), resample).save(tmp, format="JPEG", **settings)


# --- the raw sources -------------------------------------------------------------------------------------------

def _tar_members(tar: tarfile.TarFile) -> dict:
    return {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}


class TieredImageNetSource:
    """ILSVRC-2012 under `root`: train/<wnid>/<wnid>_<n>.JPEG or ILSVRC2012_img_train.tar (a tar of <wnid>.tar),
    and val/ILSVRC2012_val_*.JPEG (flat or in val/<wnid>/) or ILSVRC2012_img_val.tar (flat)."""

    def __init__(self, root):
        self.root = Path(root)

    def origins(self, wanted) -> dict:
        """{(class, name): origin} of the wanted (class, name) pairs found; absent pairs are missing."""
        val = [(cls, name) for cls, name in wanted if name.startswith("ILSVRC2012_val_")]
        train = [(cls, name) for cls, name in wanted if not name.startswith("ILSVRC2012_val_")]
        return {**self._train(train), **self._val(val)}

    def _container(self, folder: str, tar_name: str, needed: bool):
        if not needed or (self.root / folder).is_dir():
            return None
        if (self.root / tar_name).is_file():
            return self.root / tar_name
        raise FileNotFoundError(f"{self.root} holds neither {folder}/ nor {tar_name} (ILSVRC-2012, README 'Datasets')")

    def _train(self, wanted) -> dict:
        tar_path = self._container("train", ILSVRC_TRAIN_TAR, bool(wanted))
        if tar_path is None:
            return _existing({key: self.root / "train" / key[1].split("_")[0] / key[1] for key in wanted})
        found, wnids = {}, {name.split("_")[0] for _, name in wanted}
        with tarfile.open(tar_path) as outer:
            inner_tars = {Path(m.name).stem: m for m in outer.getmembers() if m.isfile()}
            members = {}
            for wnid in sorted(wnids & set(inner_tars)):
                with tarfile.open(fileobj=outer.extractfile(inner_tars[wnid])) as inner:
                    members.update({name: (inner_tars[wnid].name, m) for name, m in _tar_members(inner).items()})
        for cls, name in wanted:
            if name in members:
                found[cls, name] = TarOrigin(tar_path, members[name][0], members[name][1])
        return found

    def _val(self, wanted) -> dict:
        tar_path = self._container("val", ILSVRC_VAL_TAR, bool(wanted))
        if tar_path is None:
            flat = _existing({key: self.root / "val" / key[1] for key in wanted})
            return {**_existing({key: self.root / "val" / key[0] / key[1] for key in wanted}), **flat}
        with tarfile.open(tar_path) as tar:
            members = _tar_members(tar)
        return {key: TarOrigin(tar_path, None, members[key[1]]) for key in wanted if key[1] in members}


class INaturalist19Source:
    """iNaturalist 2019 under `root`: train_val2019/<supercategory>/<category id>/<name>.jpg, or its tarball
    (train_val2019.tar.gz, read twice: once to list it, once in order to read the wanted images)."""

    def __init__(self, root):
        self.root = Path(root)

    def origins(self, wanted) -> dict:
        wanted = set(wanted)
        if (self.root / INAT_FOLDER).is_dir():
            return _existing({key: path for key, path in self._folder_index().items() if key in wanted})
        tar_path = next((self.root / n for n in INAT_TARS if (self.root / n).is_file()), None)
        if tar_path is None:
            raise FileNotFoundError(f"{self.root} holds neither {INAT_FOLDER}/ nor {' / '.join(INAT_TARS)} "
                                    "(iNaturalist 2019, README 'Datasets')")
        with tarfile.open(tar_path) as tar:
            members = {key: m for m in tar.getmembers() if m.isfile() and (key := _inat_key(m.name)) in wanted}
        return {key: TarOrigin(tar_path, None, member) for key, member in members.items()}

    def _folder_index(self) -> dict:
        index = {}
        for super_dir in sorted((self.root / INAT_FOLDER).iterdir()):
            for category in sorted(super_dir.iterdir()) if super_dir.is_dir() else ():
                if category.is_dir() and category.name.isdigit():
                    leaf = f"nat{int(category.name):04d}"
                    index.update({(leaf, path.name): path for path in category.iterdir()})
        return index


def _inat_key(member_name: str):
    parts = Path(member_name).parts
    if len(parts) >= 4 and parts[-4] == INAT_FOLDER and parts[-2].isdigit():
        return f"nat{int(parts[-2]):04d}", parts[-1]
    return None


def _existing(paths: dict) -> dict:
    return {key: FileOrigin(path) for key, path in paths.items() if path.is_file()}


# --- preparing a folder ----------------------------------------------------------------------------------------

def prepare_stretched(source, splits: dict, folder, size: int, splits_sha256: str, workers: int | None = None) -> dict:
    """Write the images `splits` lists ({split: {class: [name]}}, already capped) from `source` into `folder`,
    stretched to size x size; {"written": n, "kept": n already there}. Raises, before writing anything, on
    missing source images (all named, with their count) or a folder prepared with other settings or split lists
    (`splits_sha256`: the split zip's); after the others are written, on undecodable sources (all named)."""
    folder = Path(folder)
    settings = {"stretch": size, **SETTINGS, "splits_sha256": splits_sha256}
    _check_marker(folder, settings)  # before trusting any image already there
    wanted = [(split, cls, name) for split in SPLITS for cls, names in splits[split].items() for name in names]
    todo = [(split, cls, name) for split, cls, name in wanted if not (folder / split / cls / name).is_file()]
    # only the images still to write need their source: a finished folder needs no tarball lookup again
    origins = source.origins(sorted({(cls, name) for _, cls, name in todo})) if todo else {}
    _check_found(source, todo, origins, folder)
    if not (folder / STRETCH_MARKER).is_file():
        write_json(folder / STRETCH_MARKER, settings)
    for leftover in folder.glob("*/*/.*.tmp"):  # atomic_path's temp files of a killed job
        leftover.unlink()
    todo = [(folder / split / cls / name, origins[cls, name]) for split, cls, name in todo]
    problems = _stretch_all(todo, size, workers or os.cpu_count())
    if problems:
        lines = [f"  {origin}: {why}" for origin, why in problems[:SHOW]]
        more = [f"  ... and {len(problems) - SHOW} more"] if len(problems) > SHOW else []
        raise ValueError(f"{len(problems)} of {len(todo)} source images cannot be decoded; replace them and run "
                         "again (the others are kept):\n" + "\n".join(lines + more))
    return {"written": len(todo), "kept": len(wanted) - len(todo)}


def _check_found(source, wanted: list, origins: dict, folder: Path) -> None:
    """All missing images among `wanted` (those not yet prepared) in one error; past MISSING_SHOWN of them, the
    whole list goes to a file beside `folder` (a wrong root would otherwise print half a million lines)."""
    missing = sorted(f"{split}/{cls}/{name}" for split, cls, name in wanted if (cls, name) not in origins)
    if not missing:
        return
    shown, rest = missing[:MISSING_SHOWN], ""
    if len(missing) > MISSING_SHOWN:
        listing = folder.parent / f"{folder.name}.missing.txt"
        write_text(listing, "\n".join(missing) + "\n")
        rest = f"\n  ... and {len(missing) - MISSING_SHOWN} more: all are listed in {listing}"
    lines = "\n".join(f"  {m}" for m in shown)
    raise FileNotFoundError(f"{source.root}: {len(missing)} of the {len(wanted)} images to prepare (named by the "
                            f"split lists) are missing (split/class/file):\n{lines}{rest}")


def _check_marker(folder: Path, expected: dict) -> None:
    """Refuse a folder whose images were made with another size, settings or split lists, or by something else
    (class folders but no marker: the marker is written before the first image)."""
    marker = folder / STRETCH_MARKER
    if marker.is_file() and read_json(marker) != expected:
        raise ValueError(f"{folder} holds images prepared with {read_json(marker)}, not {expected}: "
                         "remove the folder (or point the dataset elsewhere) to prepare it again")
    if not marker.is_file() and any((folder / split).exists() for split in SPLITS):
        raise ValueError(f"{folder} holds {'/'.join(SPLITS)} folders but no {STRETCH_MARKER}: not prepared by "
                         "featgeom; remove it (or point the dataset elsewhere) to prepare it again")


def _stretch_all(todo: list, size: int, workers: int) -> list:
    """[(origin, why)] of the sources that do not decode. Tar members are read here in archive order (a tarball,
    gzipped too, is then read once, front to back); files are read by the worker threads. Pillow releases the GIL
    while decoding, resizing and encoding."""
    in_flight = BoundedSemaphore(4 * workers)  # bounds the bytes read ahead of the workers

    def work(out, origin, data):
        try:
            write_stretched(data if data is not None else origin.path.read_bytes(), size, out)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            return origin, f"{type(err).__name__}: {err}"
        finally:
            in_flight.release()
        return None

    with strict_decoding(), ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []
        for out, origin, data in _read_in_order(todo):
            in_flight.acquire()
            futures.append(pool.submit(work, out, origin, data))
        return [problem for future in futures if (problem := future.result()) is not None]


def _read_in_order(todo: list):
    """(out, origin, bytes or None) of each job: files first (read later by a worker), then each tar's members
    by offset, each tar opened once."""
    by_tar = {}
    for out, origin in todo:
        if isinstance(origin, FileOrigin):
            yield out, origin, None
        else:
            by_tar.setdefault(origin.tar, {}).setdefault(origin.inner, []).append((out, origin))
    for tar_path in sorted(by_tar):
        with tarfile.open(tar_path) as outer:
            for inner_name in sorted(by_tar[tar_path], key=lambda name: name or ""):
                jobs = sorted(by_tar[tar_path][inner_name], key=lambda job: job[1].member.offset)
                tar = tarfile.open(fileobj=outer.extractfile(inner_name)) if inner_name else outer
                for out, origin in jobs:
                    yield out, origin, tar.extractfile(origin.member).read()


# --- a configured dataset --------------------------------------------------------------------------------------

RAW_KINDS = {"tiered_imagenet_raw": (TieredImageNetSource, tiered_class_name),
             "inaturalist19_raw": (INaturalist19Source, inat19_class_name)}


def split_zip(source: dict) -> tuple[Path, str | None]:
    """The split zip of a raw source and the sha256 it must have: tiered's shipped file unless `splits` is set
    (then the user's file, unchecked); iNat19's `splits` (required: MBM's is on git-lfs and not shipped)."""
    if "splits" in source:
        return Path(source["splits"]), None
    if source["kind"] == "tiered_imagenet_raw":
        return TIERED_SPLITS, TIERED_SPLITS_SHA256
    raise ValueError(f"source kind {source['kind']!r} needs `splits`: the path of MBM's splits_inat19.zip")


def prepare_raw_dataset(source: dict, folder, leaves, max_per_class: int | None = None,
                        workers: int | None = None) -> dict:
    """Read and check the split lists (layout, classes in the hierarchy's `leaves`, no name twice), keep the first
    `max_per_class` names of each class (the pilot's cap: only those need exist), and prepare `folder`.
    leaves None: no hierarchy to check against (a flat one)."""
    source_type, class_name = RAW_KINDS[source["kind"]]
    zip_path, sha256 = split_zip(source)
    splits = read_split_lists(zip_path, class_name, sha256)
    if leaves is not None:
        check_classes_in_hierarchy(zip_path, splits, leaves)
    counts = prepare_stretched(source_type(source["root"]), cap_per_class(splits, max_per_class), folder,
                               source["stretch"], sha256 or file_digest(zip_path), workers)
    return {**counts, "splits": str(zip_path)}
