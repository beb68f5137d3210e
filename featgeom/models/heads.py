"""Heads: spatial feature map [B, C, h, w] -> (logits [B, K], penultimate features h [B, d]).

The penultimate vector h is what the neural-collapse metrics, probes and t-SNE plots consume, so
every head returns it explicitly. Every head also exposes `classifier_weight()` -> (W [K, d], bias
or None), detached, for collapse metrics and Mueller et al. projections.

Submodule names matter: `param_groups` in factory.py puts `classifier` in the classifier group,
`channel_reduce` (type-II 1x1 conv) in the backbone group as the official code does, and the rest
of the head in the head group.

Each head is a trunk (fmap -> h: `AvgPoolTrunk`, `MaxPoolMLPTrunk`, `TypeIITrunk`) plus a classifier.
The single-classifier heads subclass their trunk, so their parameter names stay flat
(`head.channel_reduce...`); the per-level heads of the hierarchical baselines (Flamingo, HAFeature)
hold the trunk as `head.trunk` and one classifier per level in `head.classifier`.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from featgeom.tensors import as_float_tensor

LINEAR_INITS = ("default", "kaiming")


def _init_linear(layer: nn.Linear, init: str) -> None:
    """'default' = PyTorch's nn.Linear init (HAFrame's type-I classifiers); 'kaiming' = LDAM-DRW `_weights_init`."""
    if init == "kaiming":
        nn.init.kaiming_normal_(layer.weight)
    elif init != "default":
        raise ValueError(f"unknown linear init {init!r}; valid: {', '.join(LINEAR_INITS)}")


class _LinearClassifierMixin:
    classifier: nn.Linear

    def classifier_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        bias = self.classifier.bias
        return self.classifier.weight.detach(), None if bias is None else bias.detach()


class AvgPoolTrunk(nn.Module):
    """Type-I trunk of the CIFAR nets: global average pool -> h (C-dim)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_channels

    def features(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.pool(fmap).flatten(1)

    forward = features


class MaxPoolMLPTrunk(nn.Module):
    """Type-I ResNet-50 trunk of HAFrame (`custom_resnet.py:ResNet50`, from PRIS-CV Fine-Grained-or-Not):
    global max pool -> BN1d -> Linear(C, hidden) -> BN1d -> ELU = h (hidden-dim).

    Official MaxPool2d(7, 7) on the 7x7 layer4 map is a global max pool; AdaptiveMaxPool2d(1) is the
    same at 224 px and stays valid at other input sizes.
    """

    def __init__(self, in_channels: int, hidden: int = 600):
        super().__init__()
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.mlp = nn.Sequential(
            nn.BatchNorm1d(in_channels), nn.Linear(in_channels, hidden), nn.BatchNorm1d(hidden), nn.ELU(inplace=True)
        )
        self.feature_dim = hidden

    def features(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.pool(fmap).flatten(1))

    forward = features


class LinearHead(_LinearClassifierMixin, AvgPoolTrunk):
    """Type-I head for CIFAR nets: global average pool -> h (C-dim) -> learnable Linear(C, K)."""

    def __init__(self, in_channels: int, num_classes: int, init: str = "default"):
        super().__init__(in_channels)
        self.classifier = nn.Linear(in_channels, num_classes)
        _init_linear(self.classifier, init)

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(fmap)
        return self.classifier(h), h


class FlamingoStyleTypeIHead(_LinearClassifierMixin, MaxPoolMLPTrunk):
    """Type-I ResNet-50 head of HAFrame: `MaxPoolMLPTrunk` -> learnable Linear(hidden, K)."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 600):
        super().__init__(in_channels, hidden)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(fmap)
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


class TypeIITrunk(nn.Module):
    """HAFrame type-II trunk: 1x1 conv C->K, avg pool, BN1d, 2 residual PReLU layers -> h (K-dim).

    `bn_momentum` is for the first BN1d only (0.001 in the official WRN, torch default for ResNet-50);
    `conv_init='kaiming_fan_out'` reproduces the official WRN init loop, which also hits the 1x1 conv.
    """

    # The official code puts the 1x1 conv inside `features_2`, i.e. it trains at the backbone lr
    BACKBONE_LR_MODULES = ("channel_reduce",)

    def __init__(self, in_channels: int, dim: int, bn_momentum: float = 0.1, conv_init: str = "default"):
        super().__init__()
        self.channel_reduce = nn.Conv2d(in_channels, dim, kernel_size=1, bias=False)
        if conv_init == "kaiming_fan_out":
            nn.init.kaiming_normal_(self.channel_reduce.weight, mode="fan_out", nonlinearity="relu")
        elif conv_init != "default":
            raise ValueError(f"unknown conv_init {conv_init!r}; valid: default, kaiming_fan_out")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_bn = nn.BatchNorm1d(dim, momentum=bn_momentum)
        self.transform = nn.Sequential(PointResidualLayer(dim), PointResidualLayer(dim))
        self.feature_dim = dim

    def features(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.transform(self.feature_bn(self.pool(self.channel_reduce(fmap)).flatten(1)))

    forward = features


class TypeIIHead(_LinearClassifierMixin, TypeIITrunk):
    """HAFrame type-II head: `TypeIITrunk` (h, K-dim) -> Linear(K, K).

    With `fixed_weight` (K x K, e.g. the HAFrame W) the classifier weight is that matrix and the bias is
    zero, both frozen but kept in the state_dict so evaluation reloads the saved frame. logits = h W^T.
    """

    def __init__(self, in_channels: int, num_classes: int, fixed_weight=None,
                 bn_momentum: float = 0.1, conv_init: str = "default"):
        super().__init__(in_channels, num_classes, bn_momentum=bn_momentum, conv_init=conv_init)
        self.classifier = nn.Linear(num_classes, num_classes)
        if fixed_weight is not None:
            self._freeze_classifier(fixed_weight)

    def _freeze_classifier(self, fixed_weight) -> None:
        weight = as_float_tensor(fixed_weight)
        k = self.feature_dim
        if weight.shape != (k, k):
            raise ValueError(f"TypeIIHead fixed_weight: expected shape ({k}, {k}), got {tuple(weight.shape)}")
        self.classifier.weight = nn.Parameter(weight, requires_grad=False)
        self.classifier.bias = nn.Parameter(torch.zeros(k), requires_grad=False)

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(fmap)
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
        etf = as_float_tensor(etf)
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


class _PerLevelHead(nn.Module):
    """A trunk (fmap -> h) and one classifier per hierarchy level, `classifier[0]` = top level, the last = leaves.

    forward returns (finest-level logits, h) like every head, so evaluation, CRM and the collapse metrics
    see an ordinary K-class model; the hierarchical losses ask `coarse_logits(h)` for the other levels.
    The per-level classifiers are all `classifier` (classifier lr group), as the official `_custom_sgd`
    puts every `classifier_i` at the classifier lr. Subclasses define `logits_at(level, h)`: what the
    level's classifier sees and how it scores.
    """

    def __init__(self, trunk: nn.Module, level_sizes: Sequence[int]):
        super().__init__()
        if len(level_sizes) < 2:
            raise ValueError(f"{type(self).__name__}: per-level heads need >= 2 hierarchy levels, got {list(level_sizes)}")
        self.trunk = trunk
        self.feature_dim = trunk.feature_dim
        self.level_sizes = tuple(int(n) for n in level_sizes)
        self.BACKBONE_LR_MODULES = tuple(f"trunk.{name}" for name in getattr(trunk, "BACKBONE_LR_MODULES", ()))

    def coarse_logits(self, h: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every level above the leaves, top level first."""
        return [self.logits_at(level, h) for level in range(len(self.level_sizes) - 1)]

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(fmap)
        return self.logits_at(len(self.level_sizes) - 1, h), h


def flamingo_chunk_starts(dim: int, num_levels: int, spread_remainder: bool) -> list[int]:
    """First feature index of each level's chunk, top level first; the leaf chunk runs to `dim`.

    spread_remainder=False (official ResNet-50 and type-II heads, `custom_resnet.py:ResNet50_flamingo_l*`):
    every chunk is dim // L wide and the leaf chunk takes the remainder (600 / 7 -> 85 x 6 + 90).
    spread_remainder=True (official type-I WRN, `custom_wideresnet.py:WideResNet_flamingo_l5`, hand-written
    [0:102, 102:204, 204:306, 306:409, 409:512]): widths differ by at most one, the wider chunks finest.
    """
    if dim < num_levels:
        raise ValueError(f"Flamingo head: feature dim {dim} < {num_levels} levels; each level needs its own chunk")
    base, extra = divmod(dim, num_levels)
    if spread_remainder:
        widths = [base] * (num_levels - extra) + [base + 1] * extra
    else:
        widths = [base] * (num_levels - 1) + [base + extra]
    return [sum(widths[:level]) for level in range(num_levels)]


class FlamingoHead(_PerLevelHead):
    """Flamingo ("Your Flamingo is My Bird", CVPR 2021) as in HAFrame's `custom_resnet.py:ResNet50_flamingo_l*`,
    `HAFrameResNet50_flamingo_l*` and `custom_wideresnet.py:*flamingo_l5`.

    h is cut into L contiguous chunks (top level first). The level-l Linear sees its own chunk followed by
    the *detached* chunks of all finer levels, so the top head sees all of h but trains only its own chunk,
    and the leaf head sees only the last chunk.
    """

    def __init__(self, trunk: nn.Module, level_sizes: Sequence[int], spread_remainder: bool = False):
        super().__init__(trunk, level_sizes)
        self.chunk_starts = flamingo_chunk_starts(self.feature_dim, len(self.level_sizes), spread_remainder)
        self.classifier = nn.ModuleList(nn.Linear(self.feature_dim - start, n)
                                        for start, n in zip(self.chunk_starts, self.level_sizes))

    def logits_at(self, level: int, h: torch.Tensor) -> torch.Tensor:
        start = self.chunk_starts[level]
        if level == len(self.level_sizes) - 1:
            return self.classifier[level](h[:, start:])
        finer = self.chunk_starts[level + 1]
        return self.classifier[level](torch.cat([h[:, start:finer], h[:, finer:].detach()], dim=1))

    def classifier_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The leaf classifier as a map of the whole h: zero columns outside the leaf chunk."""
        leaf = self.classifier[-1]
        weight = leaf.weight.new_zeros(leaf.out_features, self.feature_dim)
        weight[:, self.chunk_starts[-1]:] = leaf.weight.detach()
        return weight, leaf.bias.detach()


class HAFeatureHead(_PerLevelHead):
    """HAFeature ("Learning Hierarchy Aware Features for Reducing Mistake Severity", ECCV 2022) heads as in
    HAFrame's `custom_resnet.py:*_hafeat_l*_cejsd_wtconst_dissim` (after `07Agarg/HAF`): every level's Linear
    sees all of h, with L2-normalised weight rows plus a bias: logits_l = h W_l^T / |W_l rows| + b_l.
    """

    def __init__(self, trunk: nn.Module, level_sizes: Sequence[int]):
        super().__init__(trunk, level_sizes)
        self.classifier = nn.ModuleList(nn.Linear(self.feature_dim, n) for n in self.level_sizes)

    def unit_weights(self) -> list[torch.Tensor]:
        """L2-normalised weight rows of every level, top level first (with gradient)."""
        return [F.normalize(layer.weight, p=2, dim=1) for layer in self.classifier]

    def logits_at(self, level: int, h: torch.Tensor) -> torch.Tensor:
        layer = self.classifier[level]
        return h @ F.normalize(layer.weight, p=2, dim=1).T + layer.bias

    def classifier_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        leaf = self.classifier[-1]
        return F.normalize(leaf.weight.detach(), p=2, dim=1), leaf.bias.detach()
