"""Model = backbone + head, built from a config dict; optimizer param groups with per-group lr.

Model spec keys:
    backbone          backbone name (see backbones.build_backbone)
    backbone_kwargs   dict, optional (width, depth, drop, pretrained, weights_path)
    head              linear | type1_mlp | type2 | cosine_etf
    hidden_units      type1_mlp hidden width H (official default 600; NC runs use H = K)
    projection_dim    cosine_etf optional Linear(C, projection_dim) before BN
    scale             cosine_etf logit scale
    linear_init       optional override of the linear head init (default | kaiming | xavier)

`frame`: numpy K x K (type2: fixed HAFrame classifier; None = learnable "type-II-xen") or K x d
(cosine_etf: the fixed simplex ETF, required).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .backbones import build_backbone
from .heads import CosineETFHead, FlamingoStyleTypeIHead, LinearHead, TypeIIHead

HEAD_NAMES = ("linear", "type1_mlp", "type2", "cosine_etf")
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
    """Initialise the type-I classifier as the reference code for that backbone did."""
    if backbone_name in ("resnet32", "resnet_cifar"):
        return "kaiming"  # LDAM-DRW _weights_init
    if _is_wrn(backbone_name):
        return "xavier"  # HAFrame custom_wideresnet.WideResNet
    return "default"


def _check_frame(head: str, frame, num_classes: int) -> np.ndarray | None:
    if head in ("linear", "type1_mlp"):
        if frame is not None:
            raise ValueError(f"head {head!r} has a learnable classifier; a frame was given (misconfigured run?)")
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
        wrn = _is_wrn(backbone)  # official WRN: BN1d momentum 0.001 and kaiming fan_out on the 1x1 conv
        return TypeIIHead(in_channels, num_classes, fixed_weight=frame, bn_momentum=0.001 if wrn else 0.1,
                          conv_init="kaiming_fan_out" if wrn else "default")
    if head == "cosine_etf":
        if "scale" not in spec:
            raise ValueError("head 'cosine_etf' needs `scale` (logit scale) in the model spec")
        return CosineETFHead(in_channels, num_classes, frame, scale=spec["scale"],
                             projection_dim=spec.get("projection_dim"))
    raise ValueError(f"unknown head {head!r}; valid heads: {', '.join(HEAD_NAMES)}")


def build_model(spec: dict, num_classes: int, frame=None) -> Classifier:
    """Build backbone + head from a model spec (see module docstring)."""
    head = spec.get("head")
    if head not in HEAD_NAMES:
        raise ValueError(f"unknown head {head!r}; valid heads: {', '.join(HEAD_NAMES)}")
    frame = _check_frame(head, frame, num_classes)
    backbone = build_backbone(spec["backbone"], **spec.get("backbone_kwargs", {}) or {})
    return Classifier(backbone, _build_head(spec, backbone.out_channels, num_classes, frame))


def _group_of(param_name: str, backbone_lr_modules: tuple[str, ...]) -> str:
    if param_name.startswith("backbone."):
        return "backbone"
    submodule = param_name.split(".")[1]  # "head.<submodule>.…"
    if submodule == "classifier":
        return "classifier"
    return "backbone" if submodule in backbone_lr_modules else "head"


def param_groups(model: Classifier, lrs: dict) -> list[dict]:
    """SGD param groups `backbone`, `head`, `classifier`, each with `name`, `lr` = `base_lr` = lrs[name].

    Grouping follows the official `_custom_sgd`: classifier = the final Linear; backbone = trunk plus the
    type-II 1x1 conv (inside the official `features_2`); head = the rest of the head (BN, transformation
    layers, type-I MLP, projection). Frozen parameters are skipped and empty groups are left out. The
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
