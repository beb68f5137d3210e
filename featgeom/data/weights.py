"""Pretrained backbone weights fetched once, on the node that runs Snakemake (compute nodes are
often offline), with torchvision's own integrity check. No torch import."""
from __future__ import annotations

from pathlib import Path

from featgeom.data.archives import download_url
from featgeom.io import file_digest

# torchvision.models.ResNet50_Weights.IMAGENET1K_V1; torchvision names the file after the first
# 8 hex digits of its sha256 and checks them after downloading (torch.hub check_hash).
IMAGENET_RESNET50 = {"url": "https://download.pytorch.org/models/resnet50-0676ba61.pth", "sha256_prefix": "0676ba61"}


def fetch_imagenet_resnet50(path) -> Path:
    """Download torchvision's ResNet-50 IMAGENET1K_V1 weights to `path` and check their sha256 prefix."""
    path = download_url(IMAGENET_RESNET50["url"], path)
    got = file_digest(path)
    if not got.startswith(IMAGENET_RESNET50["sha256_prefix"]):
        path.unlink()
        raise ValueError(f"{path}: sha256 {got} does not start with torchvision's {IMAGENET_RESNET50['sha256_prefix']} "
                         "(corrupt download, removed); run again")
    return path
