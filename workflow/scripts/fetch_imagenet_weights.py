"""torchvision's ResNet-50 IMAGENET1K_V1 weights, downloaded once and checked (no torch import)."""
from featgeom.data.weights import fetch_imagenet_resnet50
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    fetch_imagenet_resnet50(snakemake.output.weights)
