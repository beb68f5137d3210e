"""Official archives: download (atomic), md5 check, and safe extraction of tar files.

Shared by every dataset that fetches an official archive (CIFAR, FGVC-Aircraft) and by the pretrained weights.
stdlib only (no numpy, no torch).
"""
from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from featgeom.io import atomic_path, file_digest


def download_url(url: str, path) -> Path:
    """Download `url` to `path` (atomically: a killed download leaves no partial file) unless it exists."""
    path = Path(path)
    if path.exists():
        return path
    try:
        with atomic_path(path) as tmp:
            urllib.request.urlretrieve(url, tmp)
    except (urllib.error.URLError, OSError) as err:
        raise RuntimeError(f"could not download {url} ({err}). If this machine is offline, "
                           f"download the archive elsewhere and place it at {path}") from err
    return path


def verify_md5(path, md5: str) -> None:
    """Raise ValueError naming the file, the expected and the actual md5 if they differ."""
    got = file_digest(path, "md5")
    if got != md5:
        raise ValueError(f"{path}: md5 mismatch, expected {md5}, got {got} (corrupt or wrong archive)")


def extract(archive, root) -> None:
    """Extract a tar archive under `root`, refusing members that could escape it.

    Extracts into a temporary folder first and then moves the top-level entries into place, so a
    killed extraction never leaves a half-filled dataset folder behind.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract.", dir=root))
    try:
        _extract_checked(archive, staging)
        for entry in staging.iterdir():
            target = root / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_checked(archive, staging: Path) -> None:
    """Extract every (checked) member into `staging`; a truncated or non-tar file is named, not a bare EOFError.

    A matching md5 does not prove the archive whole: an `md5:` override may have been computed on a broken copy.
    """
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            # The 'data' filter (Python >= 3.11.4) re-checks every member; our own check runs regardless.
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(staging, members=members, **safe)
    except (EOFError, tarfile.ReadError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(f"{archive}: truncated or corrupt archive ({type(err).__name__}: {err}); "
                         f"download it again") from err


def _check_member(member: tarfile.TarInfo, archive) -> None:
    name = member.name
    if name.startswith(("/", "\\")) or os.path.isabs(name) or ".." in Path(name).parts:
        raise ValueError(f"{archive}: unsafe member path {name!r} (absolute or contains '..')")
    if not (member.isfile() or member.isdir()):
        raise ValueError(f"{archive}: unsupported member {name!r} (links and devices are refused)")
