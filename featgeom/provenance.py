"""What made a result: resolved config, git SHA, package versions, device.

Kept in provenance.json next to the results, never inside them, so reruns stay
byte-comparable.
"""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from featgeom.io import write_json

PACKAGES = ("featgeom", "torch", "torchvision", "numpy", "scipy", "pandas", "scikit-learn",
            "matplotlib", "openTSNE", "snakemake")


NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the NVIDIA driver sees


def has_nvidia_gpu() -> bool:
    """Whether this machine has an NVIDIA GPU, without importing torch (Snakefile parse time)."""
    return NVIDIA_GPUS.is_dir() and any(NVIDIA_GPUS.iterdir())


def git_sha(repo_dir=None) -> str:
    """The commit of the workflow, with '-dirty' when tracked files differ from it."""
    repo_dir = repo_dir or Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_dir,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_provenance(path, config: dict, device: str = "none", extra: dict | None = None) -> None:
    write_json(path, {
        "config": config,
        "git_sha": git_sha(),
        "packages": package_versions(),
        "device": device,
        "host_platform": platform.platform(),
        **(extra or {}),
    })
