"""Model = backbone + head, built from a config dict through the registries; optimizer param groups.

Model spec keys:
    backbone          backbone name (models.backbones.BACKBONES)
    backbone_kwargs   dict, optional (width, depth, drop, pretrained, weights_path)
    head              HEADS key: linear | type1_mlp | type2 | cosine_etf
    hidden_units      type1_mlp hidden width H (official default 600; NC runs use H = K)
    projection_dim    cosine_etf optional Linear(C, projection_dim) before BN
    scale             cosine_etf logit scale
    linear_init       optional override of the linear head init (default | kaiming)
    level_heads       LEVEL_HEADS key, flamingo | hafeature: one classifier per hierarchy level on the trunk of
                      `head` (a head that can go without a frame); needs `level_table`

`frame`: numpy K x K (type2: fixed HAFrame classifier; None = learnable "type-II-xen") or K x d
(cosine_etf: the fixed simplex ETF, required). `level_table`: int64 [L, K] level x class labels
(featgeom.hierarchy.level_table); its level sizes size the per-level classifiers.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn as nn

from .backbones import build_backbone
from .heads import (AvgPoolTrunk, CosineETFClassifier, FlamingoClassifiers, HAFeatureClassifiers, Head,
                    LinearClassifier, MaxPoolMLPTrunk, ModelOutput, NormalisedTrunk, PerLevelHead, TypeIITrunk)

PARAM_GROUP_NAMES = ("backbone", "head", "classifier")


class Classifier(nn.Module):
    """backbone (image -> fmap) + head (fmap -> ModelOutput)."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return self.head(self.backbone(x))


def _is_wrn(backbone_name: str) -> bool:
    return backbone_name.startswith("wrn")


def _default_linear_init(backbone_name: str) -> str:
    """Initialise the type-I classifier as the reference code for that backbone did.

    HAFrame's type-I WRN classifier (`custom_wideresnet.py:WideResNet.classifier_3`) is a fresh nn.Linear with
    PyTorch's default init; the xavier-normal loop of `wideresnet.py` only reaches the backbone's unused `fc`.
    """
    if backbone_name in ("resnet32", "resnet_cifar"):
        return "kaiming"  # LDAM-DRW _weights_init
    return "default"


def _avg_pool_trunk(spec: dict, in_channels: int, num_classes: int) -> AvgPoolTrunk:
    return AvgPoolTrunk(in_channels)


def _max_pool_mlp_trunk(spec: dict, in_channels: int, num_classes: int) -> MaxPoolMLPTrunk:
    return MaxPoolMLPTrunk(in_channels, hidden=spec.get("hidden_units", 600))


def _normalised_trunk(spec: dict, in_channels: int, num_classes: int) -> NormalisedTrunk:
    return NormalisedTrunk(in_channels, spec.get("projection_dim"))


def _type2_trunk(spec: dict, in_channels: int, num_classes: int) -> TypeIITrunk:
    """Official WRN type-II: BN1d momentum 0.001 and kaiming fan_out on the 1x1 conv; ResNet-50: torch defaults."""
    wrn = _is_wrn(spec["backbone"])
    return TypeIITrunk(in_channels, num_classes, bn_momentum=0.001 if wrn else 0.1,
                       conv_init="kaiming_fan_out" if wrn else "default")


def _cifar_linear_classifier(spec: dict, dim: int, num_classes: int, frame: None) -> LinearClassifier:
    """The `linear` head's classifier, initialised as the backbone's reference code did (`linear_init` overrides)."""
    return LinearClassifier(dim, num_classes, init=spec.get("linear_init", _default_linear_init(spec["backbone"])))


def _default_linear_classifier(spec: dict, dim: int, num_classes: int, frame) -> LinearClassifier:
    """HAFrame's ResNet-50 / type-II classifier: PyTorch's default init; fixed to `frame` when one is given."""
    classifier = LinearClassifier(dim, num_classes)
    if frame is not None:
        classifier.freeze_to(frame)
    return classifier


def _cosine_etf_classifier(spec: dict, dim: int, num_classes: int, frame) -> CosineETFClassifier:
    if "scale" not in spec:
        raise ValueError("head 'cosine_etf' needs `scale` (logit scale) in the model spec")
    return CosineETFClassifier(dim, num_classes, frame, scale=spec["scale"])


class HeadRecipe(NamedTuple):
    """How a head is built: trunk(spec, in_channels, num_classes), then classifier(spec, feature_dim,
    num_classes, frame); `frame` says whether its classifier is fixed: 'never', 'optional' or 'required'."""
    trunk: Callable[[dict, int, int], nn.Module]
    classifier: Callable[[dict, int, int, np.ndarray | None], nn.Module]
    frame: str


# Config `model.head` -> recipe. The schema's `head` enum lists the same names (tests/test_models.py checks it).
HEADS = {
    # type-I, CIFAR nets: global average pool -> learnable Linear(C, K)
    "linear": HeadRecipe(_avg_pool_trunk, _cifar_linear_classifier, "never"),
    # type-I, HAFrame's ResNet-50: max pool -> BN-Linear-BN-ELU MLP -> learnable Linear(hidden, K)
    "type1_mlp": HeadRecipe(_max_pool_mlp_trunk, _default_linear_classifier, "never"),
    # type-II: 1x1 conv to K channels -> residual transforms -> Linear(K, K), fixed to the HAFrame W when given
    "type2": HeadRecipe(_type2_trunk, _default_linear_classifier, "optional"),
    # MSC: normalised features -> scaled cosines to a fixed simplex ETF
    "cosine_etf": HeadRecipe(_normalised_trunk, _cosine_etf_classifier, "required"),
}

def _flamingo_classifiers(spec: dict, dim: int, level_sizes: list[int]) -> FlamingoClassifiers:
    """The official type-I WRN spreads the chunks' remainder (see flamingo_chunk_starts)."""
    return FlamingoClassifiers(dim, level_sizes, spread_remainder=_is_wrn(spec["backbone"]))


def _hafeature_classifiers(spec: dict, dim: int, level_sizes: list[int]) -> HAFeatureClassifiers:
    return HAFeatureClassifiers(dim, level_sizes)


# Config `model.level_heads` -> builder(spec, feature_dim, level_sizes) of the per-level classifiers. The schema's
# `level_heads` enum and featgeom.config.LEVEL_HEAD_LOSSES list the same names (tests/test_models.py checks it).
LEVEL_HEADS = {"flamingo": _flamingo_classifiers, "hafeature": _hafeature_classifiers}


def _check_frame(head: str, frame, level_heads: str | None = None) -> np.ndarray | None:
    """The frame as float32, or None; refused where the classifier is learnable, required where it is fixed.
    Its shape is checked by the classifier it fixes."""
    policy = HEADS[head].frame
    if policy == "never" or level_heads:
        if frame is not None:
            owner = f"level_heads {level_heads!r}" if level_heads else f"head {head!r}"
            raise ValueError(f"{owner} has a learnable classifier; a frame was given (misconfigured run?)")
        return None
    if frame is None and policy == "required":
        raise ValueError(f"head {head!r} needs a frame: the fixed K x d classifier (cosine_etf: the simplex ETF)")
    return None if frame is None else np.asarray(frame, dtype=np.float32)


def _level_sizes(level_table, num_classes: int) -> list[int]:
    if level_table is None:
        raise ValueError("level_heads need the level x class table of the hierarchy (level_table)")
    table = np.asarray(level_table)
    if table.ndim != 2 or table.shape[1] != num_classes:
        raise ValueError(f"level_table: expected shape (levels, {num_classes}), got {table.shape}")
    return [int(row.max()) + 1 for row in table]


def _build_per_level_head(spec: dict, in_channels: int, num_classes: int, level_table) -> PerLevelHead:
    level_heads, recipe = spec["level_heads"], HEADS[spec["head"]]
    if level_heads not in LEVEL_HEADS:
        raise ValueError(f"unknown level_heads {level_heads!r}; valid: {', '.join(LEVEL_HEADS)}")
    if recipe.frame == "required":
        shareable = [name for name, r in HEADS.items() if r.frame != "required"]
        raise ValueError(f"level_heads need the trunk of a head with a learnable classifier ({', '.join(shareable)}), "
                         f"not {spec['head']!r}")
    trunk = recipe.trunk(spec, in_channels, num_classes)
    sizes = _level_sizes(level_table, num_classes)
    return PerLevelHead(trunk, LEVEL_HEADS[level_heads](spec, trunk.feature_dim, sizes))


def build_model(spec: dict, num_classes: int, frame=None, level_table=None) -> Classifier:
    """Build backbone + head from a model spec (see module docstring)."""
    head = spec.get("head")
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; valid heads: {', '.join(HEADS)}")
    frame = _check_frame(head, frame, spec.get("level_heads"))
    backbone = build_backbone(spec["backbone"], **spec.get("backbone_kwargs", {}) or {})
    if spec.get("level_heads"):
        return Classifier(backbone, _build_per_level_head(spec, backbone.out_channels, num_classes, level_table))
    recipe = HEADS[head]
    trunk = recipe.trunk(spec, backbone.out_channels, num_classes)
    return Classifier(backbone, Head(trunk, recipe.classifier(spec, trunk.feature_dim, num_classes, frame)))


def _group_of(param_name: str, backbone_lr_modules: tuple[str, ...]) -> str:
    if param_name.startswith("backbone."):
        return "backbone"
    path = param_name.split(".", 1)[1]  # "head.<path>": "trunk.…" or "classifier.…"
    if path.startswith("classifier."):
        return "classifier"
    return "backbone" if any(path.startswith(module + ".") for module in backbone_lr_modules) else "head"


def param_groups(model: Classifier, lrs: dict) -> list[dict]:
    """SGD param groups `backbone`, `head`, `classifier`, each with `name`, `lr` = `base_lr` = lrs[name].

    Grouping follows the official `_custom_sgd`: classifier = the final Linear (every per-level Linear of
    Flamingo / HAFeature); backbone = trunk plus the type-II 1x1 conv (inside the official `features_2`);
    head = the rest of the head (BN, transformation layers, type-I MLP, projection). Frozen parameters are skipped
    and empty groups are left out. The trainer rescales per epoch: group['lr'] = group['base_lr'] * factor.
    """
    backbone_lr_modules = model.head.BACKBONE_LR_MODULES
    grouped: dict[str, list] = {name: [] for name in PARAM_GROUP_NAMES}
    for name, param in model.named_parameters():
        if param.requires_grad:
            grouped[_group_of(name, backbone_lr_modules)].append(param)
    groups = []
    for name, params in grouped.items():
        if not params:
            continue
        if name not in lrs:
            raise KeyError(f"param_groups: no learning rate for group {name!r}; lrs has {sorted(lrs)}")
        groups.append({"name": name, "params": params, "lr": float(lrs[name]), "base_lr": float(lrs[name])})
    return groups
