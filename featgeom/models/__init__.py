"""Backbones, heads and the model factory (torch)."""
from .backbones import ConvNetSmall, ResNetCifar, WideResNet, build_backbone, resnet50
from .factory import Classifier, build_model, param_groups
from .heads import CosineETFHead, FlamingoHead, FlamingoStyleTypeIHead, HAFeatureHead, LinearHead, TypeIIHead

__all__ = [
    "ConvNetSmall", "ResNetCifar", "WideResNet", "resnet50", "build_backbone",
    "LinearHead", "FlamingoStyleTypeIHead", "TypeIIHead", "CosineETFHead", "FlamingoHead", "HAFeatureHead",
    "Classifier", "build_model", "param_groups",
]
