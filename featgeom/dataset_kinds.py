"""The dataset source kinds (`datasets.<name>.source.kind`): what each one is and how the data stage makes it.

The one list of kinds: the schema's `source.kind` enum must name exactly these (tests/test_config.py), and the
workflow and the library ask this registry rather than testing kind names. No torch, no I/O: the Snakefile
imports this at parse time.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetKind:
    in_memory: bool  # arrays.npz held on the training device (else an image-folder manifest read by loader workers)
    prepare_rule: str  # the workflow/rules/data.smk rule that writes results/<dataset>/data/ for this kind
    writes_tree: bool = False  # its preparation also writes the class tree (results/<dataset>/data/paths.csv)
    user_folder: bool = False  # source.root is the user's own image folder, listed at parse time (common.smk)
    coarse_level: int | None = None  # default hierarchy.coarse_level (the dataset's own coarse labels)


DATASET_KINDS = {
    "synthetic": DatasetKind(in_memory=True, prepare_rule="prepare_synthetic", writes_tree=True, coarse_level=1),
    # CIFAR-20 for CIFAR-100: the tree's level 4 = the pickle's coarse_labels
    "cifar100": DatasetKind(in_memory=True, prepare_rule="prepare_cifar", coarse_level=4),
    "cifar10": DatasetKind(in_memory=True, prepare_rule="prepare_cifar"),
    "fgvc_aircraft": DatasetKind(in_memory=False, prepare_rule="prepare_fgvc_aircraft"),
    "image_folder": DatasetKind(in_memory=False, prepare_rule="verify_image_folder", user_folder=True),
    # image folders prepared from raw ILSVRC-2012 / iNaturalist 2019 files and MBM's split lists (data.prepare_raw)
    "tiered_imagenet_raw": DatasetKind(in_memory=False, prepare_rule="prepare_stretched_images"),
    "inaturalist19_raw": DatasetKind(in_memory=False, prepare_rule="prepare_stretched_images"),
}


def dataset_kind(source: dict) -> DatasetKind:
    """The registry entry of a `source` block (its `kind`, which the schema has checked)."""
    return DATASET_KINDS[source["kind"]]


def in_memory_kinds() -> list[str]:
    """The kinds held in memory, in registry order (for error messages)."""
    return [name for name, kind in DATASET_KINDS.items() if kind.in_memory]
