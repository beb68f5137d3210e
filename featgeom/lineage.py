"""What made a training run: the content hashes that decide whether one of its checkpoints may be reused.

Every checkpoint of a run (resume point, a pack's kept final checkpoint, best model) and its provenance.json record
`made_of`: the resolved spec and seed, the bytes of every input file (data manifest or arrays, hierarchy levels,
distances, HAFrame's s_min, pretrained weights), the frame, and the training code. A checkpoint is reused only when
all of them are unchanged; otherwise the run trains from scratch and its train.log says what changed.

The training code is the content of the featgeom modules a training job runs (featgeom.runner and its featgeom
imports, recursively), not the git SHA: a README or plot edit changes nothing. No torch here: the table jobs
compare each run's training code with the current one.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from featgeom.io import file_digest, read_json

PACKAGE_DIR = Path(__file__).resolve().parent
TRAINING_ENTRY = "featgeom.runner"
# Imported by training, but editing them changes no result: lineage and provenance record what was done, run_guard
# keeps trainers apart, layout names where files go, and what config contributes (defaults, checks) reaches a run
# through its resolved spec, which is hashed itself.
RECORD_ONLY = {"featgeom.config", "featgeom.layout", "featgeom.lineage", "featgeom.provenance", "featgeom.run_guard"}

INPUT_NAMES = {"data": "the training data", "levels": "the hierarchy (levels.json)",
               "distances": "the hierarchy distances", "s_min": "HAFrame's s_min", "weights": "the pretrained weights",
               "resized": "the resized-image cache (its key: manifest and size)"}
PART_NAMES = {"spec": "the run's config", "frame": "the frame", "code": "the training code"}


def _module_file(module: str) -> Path | None:
    """The file of a featgeom module (a package's __init__.py), None for anything else."""
    parts = module.split(".")
    if parts[0] != "featgeom":
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(module: str, path: Path) -> set[str]:
    """featgeom modules that `module` imports, with the packages they live in (importing runs their __init__)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .backbones import ...
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parents + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]  # `from pkg import submodule`
        else:
            continue
        for name in names:
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    return {name for name in found if _module_file(name) is not None}


def training_code_modules() -> dict[str, Path]:
    """{module: file} of the training code: TRAINING_ENTRY and its featgeom imports, recursively, minus RECORD_ONLY
    (whose own imports still count)."""
    seen, todo = {}, [TRAINING_ENTRY, "featgeom"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen[module] = _module_file(module)
        todo += sorted(_imported_modules(module, seen[module]) - seen.keys())
    return {module: path for module, path in sorted(seen.items()) if module not in RECORD_ONLY}


@lru_cache(maxsize=1)
def training_code_hash() -> str:
    digest = hashlib.sha256()
    for module, path in training_code_modules().items():
        digest.update(module.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


_FILE_HASHES: dict[tuple, str] = {}


def file_hash(path) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime) so that a pack hashes its shared data once."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        _FILE_HASHES[key] = file_digest(path)[:16]
    return _FILE_HASHES[key]


def json_hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def made_of(spec: dict, seed: int, input_files: dict, frame_bytes: bytes | None) -> dict:
    """What a run is made of: {spec, code, frame, input:<key>} content hashes. input_files: {key: path}."""
    parts = {"spec": json_hash({**spec, "seed": seed}), "code": training_code_hash(),
             "frame": None if frame_bytes is None else hashlib.sha256(frame_bytes).hexdigest()[:16]}
    parts.update({f"input:{key}": file_hash(path) for key, path in sorted(input_files.items())})
    return parts


def describe_changes(recorded: dict | None, current: dict) -> str | None:
    """None when `recorded` is `current`; else why a checkpoint made by `recorded` is stale, in words."""
    if recorded is None:
        return "it does not record what made it (an older featgeom wrote it)"
    changed = sorted(key for key in recorded.keys() | current.keys() if recorded.get(key) != current.get(key))
    if not changed:
        return None
    return ", ".join(_part_name(key) for key in changed) + " changed since it was written"


def _part_name(key: str) -> str:
    if key.startswith("input:"):
        name = key.partition(":")[2]
        return INPUT_NAMES.get(name, f"input {name!r}")
    return PART_NAMES.get(key, key)


def runs_of_other_code(provenance_paths) -> list[str]:
    """'<experiment>/<method>/seed<N> (code <hash>)' of each run whose provenance.json records other training code
    than this checkout's, or none (an older featgeom): its numbers may not be what the current code gives."""
    current, others = training_code_hash(), []
    for path in map(Path, provenance_paths):
        code = read_json(path).get("made_of", {}).get("code")
        if code != current:
            run = "/".join(path.parts[-4:-1])
            others.append(f"{run} (code {code or 'not recorded'})")
    return others
