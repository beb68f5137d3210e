"""MBM's per-class split lists (splits_tiered.zip, splits_inat19.zip): read, check and cap, without torch.

A zip holds `<top>/{train,val,test}/<class>.txt`, one image file name per line. iNat19 class files may be
named by the hierarchy's leaf (`nat0400.txt`) or by the iNaturalist category id (`400.txt`); both give
the leaf name `nat0400` (MBM's compute_inaturalist19_hierarchy.py names leaves `nat{id:04d}`).
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath

from featgeom.data.manifest import SPLITS  # the image-folder splits the lists fill
from featgeom.io import file_digest

SPLITS_DIR = Path(__file__).resolve().parent.parent / "resources" / "splits"
TIERED_SPLITS = SPLITS_DIR / "splits_tiered.zip"
TIERED_SPLITS_SHA256 = "826a0ae5796983cf75f41277a48e5e07b34b2b7fca8347d0def117ff83a5a5de"
EXPECTED_LAYOUT = "<top folder>/{train,val,test}/<class>.txt, one image file name per line"
SHOW = 20  # names shown in an error; the rest are counted


class SplitListError(ValueError):
    pass


def tiered_class_name(stem: str) -> str | None:
    return stem if re.fullmatch(r"n\d{8}", stem) else None


def inat19_class_name(stem: str) -> str | None:
    if re.fullmatch(r"nat\d{4}", stem):
        return stem
    return f"nat{int(stem):04d}" if re.fullmatch(r"\d+", stem) else None


def read_split_lists(zip_path, class_name=tiered_class_name, sha256: str | None = None) -> dict:
    """{split: {class: [file name, ...] sorted}} of a split zip; SplitListError naming the zip when its sha256
    (if given) or its layout is not the expected one, or a file name is listed under two classes."""
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise FileNotFoundError(f"split list zip {zip_path} does not exist (expected {EXPECTED_LAYOUT})")
    if sha256 is not None and (found := file_digest(zip_path)) != sha256:
        raise SplitListError(f"{zip_path}: sha256 {found}, expected {sha256} (MBM's file, see "
                             f"featgeom/resources/splits/README.md)")
    with zipfile.ZipFile(zip_path) as archive:
        members = [name for name in archive.namelist() if not name.endswith("/")]
        lists = _per_class_members(zip_path, members, class_name)
        text = {key: archive.read(member).decode() for key, member in lists.items()}
    splits = {split: {} for split in SPLITS}
    for (split, cls), content in sorted(text.items()):
        splits[split][cls] = sorted({line.strip() for line in content.splitlines() if line.strip()})
    _check_layout(zip_path, splits)
    _check_unique_names(zip_path, splits)
    return splits


def _per_class_members(zip_path: Path, members: list, class_name) -> dict:
    """{(split, class): member}; SplitListError showing what was found when members do not fit the layout."""
    found, foreign = {}, []
    for member in members:
        parts = PurePosixPath(member).parts
        cls = class_name(PurePosixPath(member).stem) if len(parts) == 3 and member.endswith(".txt") else None
        if cls is None or parts[1] not in SPLITS:
            foreign.append(member)
            continue
        if (parts[1], cls) in found:
            raise SplitListError(f"{zip_path}: class {cls} of split {parts[1]} is listed twice "
                                 f"({found[parts[1], cls]} and {member})")
        found[parts[1], cls] = member
    if foreign or not found:
        shown = ", ".join(foreign[:5]) if foreign else "no members at all"
        raise SplitListError(f"{zip_path} is not in MBM's split-list layout: expected {EXPECTED_LAYOUT}; "
                             f"found {len(foreign)} other member(s), e.g. {shown}")
    return found


def _check_layout(zip_path: Path, splits: dict) -> None:
    reference = set(splits["train"])
    for split in SPLITS:
        if set(splits[split]) != reference:
            diff = sorted(reference ^ set(splits[split]))
            raise SplitListError(f"{zip_path}: split {split} and split train list different classes, e.g. {diff[:5]}")
        empty = [cls for cls, names in splits[split].items() if not names]
        if empty:
            raise SplitListError(f"{zip_path}: split {split} lists no file for class(es) {empty[:5]}")


def _check_unique_names(zip_path: Path, splits: dict) -> None:
    """One image is one sample: a name under two classes (or in two splits) would train and test on it."""
    where, twice = {}, []
    for split, per_class in splits.items():
        for cls, names in per_class.items():
            for name in names:
                if name in where:
                    twice.append(f"{name} ({where[name]} and {split}/{cls})")
                where.setdefault(name, f"{split}/{cls}")
    if twice:
        raise SplitListError(f"{zip_path}: {len(twice)} file name(s) listed more than once: "
                             + "; ".join(twice[:SHOW]) + (" ..." if len(twice) > SHOW else ""))


def check_classes_in_hierarchy(zip_path, splits: dict, leaves) -> None:
    """SplitListError naming the split classes that are not leaves of the dataset's hierarchy."""
    absent = sorted(set(splits["train"]) - set(leaves))
    if absent:
        raise SplitListError(f"{zip_path}: {len(absent)} split class(es) are not leaves of the hierarchy: "
                             + ", ".join(absent[:SHOW]) + (" ..." if len(absent) > SHOW else ""))


def cap_per_class(splits: dict, max_per_class: int | None) -> dict:
    """The first `max_per_class` names (sorted) of each class in each split, as verify_image_folder keeps the
    first files of each class folder: the prepared folder then holds exactly the files it verifies."""
    return {split: {cls: names[:max_per_class] for cls, names in per_class.items()}
            for split, per_class in splits.items()}
