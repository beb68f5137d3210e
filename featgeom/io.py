"""Atomic file writes: write to a temp file in the same folder, fsync, then rename.

A killed job therefore never leaves a half-written result that Snakemake (or a resumed
run) would mistake for a finished one.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path next to `path`; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (`algorithm`: a hashlib name; md5 for the official archives), read in 1 MiB
    blocks: the one file-hashing loop of featgeom."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path, obj) -> None:
    """Strict JSON: NaN (e.g. the severity of a run without mistakes) is written as null."""
    write_text(path, _json_text(obj))


def update_json(path, obj) -> bool:
    """write_json unless `path` already holds exactly that: its mtime (what Snakemake compares) then changes
    only when its content does. Returns whether it wrote."""
    text = _json_text(obj)
    if Path(path).is_file() and Path(path).read_text() == text:
        return False
    write_text(path, text)
    return True


def _json_text(obj) -> str:
    return json.dumps(_nan_to_none(obj), indent=2, sort_keys=True, default=_json_default, allow_nan=False) + "\n"


def _nan_to_none(obj):
    if isinstance(obj, (float, np.floating)):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def read_json(path):
    with open(path) as fh:
        return json.load(fh)


def write_npz(path, **arrays) -> None:
    # np.savez appends ".npz" to names that lack it, so keep the suffix on the temp file.
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
