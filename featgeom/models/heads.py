"""Heads: spatial feature map [B, C, h, w] -> (logits [B, K], penultimate features h [B, d]).

The penultimate vector h is what the neural-collapse metrics, probes and t-SNE plots consume, so
every head returns it explicitly. Every head also exposes `classifier_weight()` -> (W [K, d], bias
or None), detached, for collapse metrics and Mueller et al. projections.

Submodule names matter: `param_groups` in factory.py puts `classifier` in the classifier group,
`channel_reduce` (type-II 1x1 conv) in the backbone group as the official code does, and the rest
of the head in the head group.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LINEAR_INITS = ("default", "kaiming", "xavier")


def _as_float_tensor(array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array), dtype=torch.float32).clone()


def _init_linear(layer: nn.Linear, init: str) -> None:
    """'kaiming' = LDAM-DRW `_weights_init`; 'xavier' = HAFrame type-I WRN fc (xavier-normal, bias 0)."""
    if init == "kaiming":
        nn.init.kaiming_normal_(layer.weight)
    elif init == "xavier":
        nn.init.xavier_normal_(layer.weight)
        nn.init.zeros_(layer.bias)
    elif init != "default":
        raise ValueError(f"unknown linear init {init!r}; valid: {', '.join(LINEAR_INITS)}")


class _LinearClassifierMixin:
    classifier: nn.Linear

    def classifier_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        bias = self.classifier.bias
        return self.classifier.weight.detach(), None if bias is None else bias.detach()


class LinearHead(_LinearClassifierMixin, nn.Module):
    """Type-I head for CIFAR nets: global average pool -> h (C-dim) -> learnable Linear(C, K)."""

    def __init__(self, in_channels: int, num_classes: int, init: str = "default"):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes)
        _init_linear(self.classifier, init)
        self.feature_dim = in_channels

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.pool(fmap).flatten(1)
        return self.classifier(h), h


class FlamingoStyleTypeIHead(_LinearClassifierMixin, nn.Module):
    """Type-I ResNet-50 head of HAFrame (`custom_resnet.py:ResNet50`, from PRIS-CV Fine-Grained-or-Not).

    Official MaxPool2d(7, 7) on the 7x7 layer4 map is a global max pool; AdaptiveMaxPool2d(1) is the
    same at 224 px and stays valid at other input sizes.
    """

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 600):
        super().__init__()
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.mlp = nn.Sequential(
            nn.BatchNorm1d(in_channels), nn.Linear(in_channels, hidden), nn.BatchNorm1d(hidden), nn.ELU(inplace=True)
        )
        self.classifier = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.mlp(self.pool(fmap).flatten(1))
        return self.classifier(h), h


class PointResidualLayer(nn.Module):
    """y = x + PReLU(BN(Linear(PReLU(BN(Linear(x)))))): HAFrame `PointResidualTransformationLayer`, in==out."""

    def __init__(self, dim: int):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.PReLU(dim),
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.PReLU(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class TypeIIHead(_LinearClassifierMixin, nn.Module):
    """HAFrame type-II head: 1x1 conv C->K, avg pool, BN1d, 2 residual PReLU layers -> h (K-dim), Linear(K, K).

    With `fixed_weight` (K x K, e.g. the HAFrame W) the classifier weight is that matrix and the bias is
    zero, both frozen but kept in the state_dict so evaluation reloads the saved frame. logits = h W^T.
    `bn_momentum` is for the first BN1d only (0.001 in the official WRN, torch default for ResNet-50);
    `conv_init='kaiming_fan_out'` reproduces the official WRN init loop, which also hits the 1x1 conv.
    """

    # The official code puts the 1x1 conv inside `features_2`, i.e. it trains at the backbone lr
    BACKBONE_LR_MODULES = ("channel_reduce",)

    def __init__(self, in_channels: int, num_classes: int, fixed_weight=None,
                 bn_momentum: float = 0.1, conv_init: str = "default"):
        super().__init__()
        k = num_classes
        self.channel_reduce = nn.Conv2d(in_channels, k, kernel_size=1, bias=False)
        if conv_init == "kaiming_fan_out":
            nn.init.kaiming_normal_(self.channel_reduce.weight, mode="fan_out", nonlinearity="relu")
        elif conv_init != "default":
            raise ValueError(f"unknown conv_init {conv_init!r}; valid: default, kaiming_fan_out")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_bn = nn.BatchNorm1d(k, momentum=bn_momentum)
        self.transform = nn.Sequential(PointResidualLayer(k), PointResidualLayer(k))
        self.classifier = nn.Linear(k, k)
        self.feature_dim = k
        if fixed_weight is not None:
            self._freeze_classifier(fixed_weight)

    def _freeze_classifier(self, fixed_weight) -> None:
        weight = _as_float_tensor(fixed_weight)
        k = self.feature_dim
        if weight.shape != (k, k):
            raise ValueError(f"TypeIIHead fixed_weight: expected shape ({k}, {k}), got {tuple(weight.shape)}")
        self.classifier.weight = nn.Parameter(weight, requires_grad=False)
        self.classifier.bias = nn.Parameter(torch.zeros(k), requires_grad=False)

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.pool(self.channel_reduce(fmap)).flatten(1)
        h = self.transform(self.feature_bn(z))
        return self.classifier(h), h


class CosineETFHead(nn.Module):
    """MSC head: avg pool -> [Linear(C, projection_dim)] -> BN1d -> L2 normalise -> h (unit);
    logits = scale * h E^T with E a fixed simplex ETF (rows normalised to unit length).

    BN before normalisation follows Yang et al. (NeurIPS'22 ETF_Classifier): post-ReLU features are
    non-negative and could not reach an origin-centred ETF otherwise. E is a buffer (saved, not trained).
    """

    def __init__(self, in_channels: int, num_classes: int, etf, scale: float, projection_dim: int | None = None):
        super().__init__()
        dim = in_channels if projection_dim is None else projection_dim
        if dim < num_classes - 1:
            raise ValueError(
                f"CosineETFHead: feature dim {dim} < K-1 = {num_classes - 1}, a {num_classes}-class simplex ETF "
                f"does not fit; set projection_dim >= {num_classes - 1} (or use a wider backbone)"
            )
        etf = _as_float_tensor(etf)
        if etf.shape != (num_classes, dim):
            raise ValueError(f"CosineETFHead etf: expected shape ({num_classes}, {dim}), got {tuple(etf.shape)}")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.projection = nn.Identity() if projection_dim is None else nn.Linear(in_channels, projection_dim)
        self.bn = nn.BatchNorm1d(dim)
        self.register_buffer("etf", F.normalize(etf, dim=1))
        self.scale = float(scale)
        self.feature_dim = dim

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.bn(self.projection(self.pool(fmap).flatten(1)))
        h = F.normalize(z, dim=1)
        return self.scale * h @ self.etf.T, h

    def classifier_weight(self) -> tuple[torch.Tensor, None]:
        return self.etf.detach(), None
