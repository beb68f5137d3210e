"""Model = backbone + head, built from a config dict; optimizer param groups with per-group lr.

Model spec keys:
    backbone          backbone name (see backbones.build_backbone)
    backbone_kwargs   dict, optional (width, depth, drop, pretrained, weights_path)
    head              linear | type1_mlp | type2 | cosine_etf
    hidden_units      type1_mlp hidden width H (official default 600; NC runs use H = K)
    projection_dim    cosine_etf optional Linear(C, projection_dim) before BN
    scale             cosine_etf logit scale
    linear_init       optional override of the linear head init (default | kaiming)
    level_heads       flamingo | hafeature: one classifier per hierarchy level on the trunk of `head`
                      (linear, type1_mlp or type2); needs `level_table`

`frame`: numpy K x K (type2: fixed HAFrame classifier; None = learnable "type-II-xen") or K x d
(cosine_etf: the fixed simplex ETF, required). `level_table`: int64 [L, K] level x class labels
(featgeom.hierarchy.level_table); its level sizes size the per-level classifiers.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .backbones import build_backbone
from .heads import (AvgPoolTrunk, CosineETFHead, FlamingoHead, FlamingoStyleTypeIHead, HAFeatureHead, LinearHead,
                    MaxPoolMLPTrunk, TypeIIHead, TypeIITrunk)

HEAD_NAMES = ("linear", "type1_mlp", "type2", "cosine_etf")
LEVEL_HEADS = ("flamingo", "hafeature")
PARAM_GROUP_NAMES = ("backbone", "head", "classifier")


class Classifier(nn.Module):
    """backbone (image -> fmap) + head (fmap -> logits, penultimate features)."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


def _type2_options(backbone: str) -> dict:
    """Official WRN type-II: BN1d momentum 0.001 and kaiming fan_out on the 1x1 conv; ResNet-50: torch defaults."""
    wrn = _is_wrn(backbone)
    return {"bn_momentum": 0.001 if wrn else 0.1, "conv_init": "kaiming_fan_out" if wrn else "default"}


def _check_frame(head: str, frame, num_classes: int, level_heads: str | None = None) -> np.ndarray | None:
    if head in ("linear", "type1_mlp") or level_heads:
        if frame is not None:
            owner = f"level_heads {level_heads!r}" if level_heads else f"head {head!r}"
            raise ValueError(f"{owner} has a learnable classifier; a frame was given (misconfigured run?)")
        return None
    if frame is None:
        if head == "cosine_etf":
            raise ValueError("head 'cosine_etf' needs a frame: the fixed K x d simplex ETF")
        return None  # type2 without a frame = learnable classifier (type-II CE)
    frame = np.asarray(frame, dtype=np.float32)
    if frame.ndim != 2 or frame.shape[0] != num_classes or (head == "type2" and frame.shape[1] != num_classes):
        expected = f"({num_classes}, {num_classes})" if head == "type2" else f"({num_classes}, d)"
        raise ValueError(f"head {head!r}: frame shape expected {expected}, got {frame.shape}")
    return frame


def _build_head(spec: dict, in_channels: int, num_classes: int, frame) -> nn.Module:
    head, backbone = spec["head"], spec["backbone"]
    if head == "linear":
        return LinearHead(in_channels, num_classes, init=spec.get("linear_init", _default_linear_init(backbone)))
    if head == "type1_mlp":
        return FlamingoStyleTypeIHead(in_channels, num_classes, hidden=spec.get("hidden_units", 600))
    if head == "type2":
        return TypeIIHead(in_channels, num_classes, fixed_weight=frame, **_type2_options(backbone))
    if head == "cosine_etf":
        if "scale" not in spec:
            raise ValueError("head 'cosine_etf' needs `scale` (logit scale) in the model spec")
        return CosineETFHead(in_channels, num_classes, frame, scale=spec["scale"],
                             projection_dim=spec.get("projection_dim"))
    raise ValueError(f"unknown head {head!r}; valid heads: {', '.join(HEAD_NAMES)}")


def _build_trunk(spec: dict, in_channels: int, num_classes: int) -> nn.Module:
    head = spec["head"]
    if head == "linear":
        return AvgPoolTrunk(in_channels)
    if head == "type1_mlp":
        return MaxPoolMLPTrunk(in_channels, hidden=spec.get("hidden_units", 600))
    if head == "type2":
        return TypeIITrunk(in_channels, num_classes, **_type2_options(spec["backbone"]))
    raise ValueError(f"level_heads need the trunk of head linear, type1_mlp or type2, not {head!r}")


def _level_sizes(level_table, num_classes: int) -> list[int]:
    if level_table is None:
        raise ValueError("level_heads need the level x class table of the hierarchy (level_table)")
    table = np.asarray(level_table)
    if table.ndim != 2 or table.shape[1] != num_classes:
        raise ValueError(f"level_table: expected shape (levels, {num_classes}), got {table.shape}")
    return [int(row.max()) + 1 for row in table]


def _build_level_heads(spec: dict, in_channels: int, num_classes: int, level_table) -> nn.Module:
    trunk = _build_trunk(spec, in_channels, num_classes)
    sizes = _level_sizes(level_table, num_classes)
    if spec["level_heads"] == "flamingo":
        return FlamingoHead(trunk, sizes, spread_remainder=_is_wrn(spec["backbone"]))
    if spec["level_heads"] == "hafeature":
        return HAFeatureHead(trunk, sizes)
    raise ValueError(f"unknown level_heads {spec['level_heads']!r}; valid: {', '.join(LEVEL_HEADS)}")


def build_model(spec: dict, num_classes: int, frame=None, level_table=None) -> Classifier:
    """Build backbone + head from a model spec (see module docstring)."""
    head = spec.get("head")
    if head not in HEAD_NAMES:
        raise ValueError(f"unknown head {head!r}; valid heads: {', '.join(HEAD_NAMES)}")
    frame = _check_frame(head, frame, num_classes, spec.get("level_heads"))
    backbone = build_backbone(spec["backbone"], **spec.get("backbone_kwargs", {}) or {})
    if spec.get("level_heads"):
        return Classifier(backbone, _build_level_heads(spec, backbone.out_channels, num_classes, level_table))
    return Classifier(backbone, _build_head(spec, backbone.out_channels, num_classes, frame))


def _group_of(param_name: str, backbone_lr_modules: tuple[str, ...]) -> str:
    if param_name.startswith("backbone."):
        return "backbone"
    path = param_name.split(".", 1)[1]  # "head.<path>"; the per-level heads nest their trunk as "trunk.…"
    if path.startswith("classifier."):
        return "classifier"
    return "backbone" if any(path.startswith(module + ".") for module in backbone_lr_modules) else "head"


def param_groups(model: Classifier, lrs: dict) -> list[dict]:
    """SGD param groups `backbone`, `head`, `classifier`, each with `name`, `lr` = `base_lr` = lrs[name].

    Grouping follows the official `_custom_sgd`: classifier = the final Linear (every per-level Linear of
    Flamingo / HAFeature); backbone = trunk plus the type-II 1x1 conv (inside the official `features_2`);
    head = the rest of the head (BN, transformation layers, type-I MLP, projection). Frozen parameters are skipped and empty groups are left out. The
    trainer rescales per epoch: group['lr'] = group['base_lr'] * factor.
    """
    backbone_lr_modules = tuple(getattr(model.head, "BACKBONE_LR_MODULES", ()))
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
