"""Backbones, heads and the model factory (torch)."""
from .backbones import BACKBONES, ConvNetSmall, ResNetCifar, WideResNet, build_backbone, resnet50
from .factory import HEADS, LEVEL_HEADS, Classifier, build_model, param_groups
from .heads import (AvgPoolTrunk, CosineETFClassifier, FlamingoClassifiers, HAFeatureClassifiers, Head,
                    LinearClassifier, MaxPoolMLPTrunk, ModelOutput, NormalisedTrunk, PerLevelHead, TypeIITrunk)

__all__ = [
    "BACKBONES", "ConvNetSmall", "ResNetCifar", "WideResNet", "resnet50", "build_backbone",
    "AvgPoolTrunk", "MaxPoolMLPTrunk", "TypeIITrunk", "NormalisedTrunk",
    "LinearClassifier", "CosineETFClassifier", "FlamingoClassifiers", "HAFeatureClassifiers",
    "Head", "PerLevelHead", "ModelOutput",
    "HEADS", "LEVEL_HEADS", "Classifier", "build_model", "param_groups",
]
