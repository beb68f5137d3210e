"""Heads: spatial feature map [B, C, h, w] -> ModelOutput (logits, penultimate features h, per-level outputs).

Every head is composed of a trunk (fmap -> h: `AvgPoolTrunk`, `MaxPoolMLPTrunk`, `TypeIITrunk`,
`NormalisedTrunk`) and a classifier (h -> logits): one (`LinearClassifier`, `CosineETFClassifier`) in a `Head`,
one per hierarchy level (`FlamingoClassifiers`, `HAFeatureClassifiers`) in a `PerLevelHead`. The penultimate
vector h is what the neural-collapse metrics, probes and t-SNE plots consume, so every head returns it. Every
head also exposes `classifier_weight()` -> (W [K, d], bias or None), detached, for collapse metrics and Mueller
et al. projections.

Submodule names matter: `param_groups` in factory.py puts `classifier` in the classifier group, the trunk's
`BACKBONE_LR_MODULES` (type-II 1x1 conv) in the backbone group as the official code does, and the rest of the
head in the head group. State-dict keys are `head.trunk.…` and `head.classifier.…` (checkpoint format 2).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from featgeom.tensors import as_float_tensor

LINEAR_INITS = ("default", "kaiming")


class ModelOutput(NamedTuple):
    """What a model returns, and all a loss sees of it.

    logits        [B, K] leaf-level logits: what evaluation, CRM and the collapse metrics score.
    features      [B, d] penultimate h.
    level_logits  per-level heads: the logits of every hierarchy level, top level first, the last being `logits`;
                  () for a single classifier.
    level_weights per-level heads: each level's classifier weight [n_level, d_level] (with gradient: HAFeature's
                  geometric-consistency term trains them), top level first; () for a single classifier.
    """
    logits: torch.Tensor
    features: torch.Tensor
    level_logits: tuple[torch.Tensor, ...] = ()
    level_weights: tuple[torch.Tensor, ...] = ()


# ----------------------------------------------------------------------------- trunks: fmap -> h
class AvgPoolTrunk(nn.Module):
    """Type-I trunk of the CIFAR nets: global average pool -> h (C-dim)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_channels

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.pool(fmap).flatten(1)


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

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.pool(fmap).flatten(1))


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

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.transform(self.feature_bn(self.pool(self.channel_reduce(fmap)).flatten(1)))


class NormalisedTrunk(nn.Module):
    """MSC trunk: avg pool -> [Linear(C, projection_dim)] -> BN1d -> L2 normalise -> h (unit length).

    BN before normalisation follows Yang et al. (NeurIPS'22 ETF_Classifier): post-ReLU features are
    non-negative and could not reach an origin-centred ETF otherwise.
    """

    def __init__(self, in_channels: int, projection_dim: int | None = None):
        super().__init__()
        dim = in_channels if projection_dim is None else projection_dim
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.projection = nn.Identity() if projection_dim is None else nn.Linear(in_channels, projection_dim)
        self.bn = nn.BatchNorm1d(dim)
        self.feature_dim = dim

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.bn(self.projection(self.pool(fmap).flatten(1))), dim=1)


# ----------------------------------------------------------------------------- classifiers: h -> logits
class LinearClassifier(nn.Linear):
    """h W^T + b. init 'default' = PyTorch's nn.Linear init (HAFrame's classifiers); 'kaiming' = LDAM-DRW
    `_weights_init`. `freeze_to(W)` makes it a fixed classifier (the HAFrame W, bias zero)."""

    def __init__(self, dim: int, num_classes: int, init: str = "default"):
        super().__init__(dim, num_classes)
        if init == "kaiming":
            nn.init.kaiming_normal_(self.weight)
        elif init != "default":
            raise ValueError(f"unknown linear init {init!r}; valid: {', '.join(LINEAR_INITS)}")

    def freeze_to(self, fixed_weight) -> None:
        """Weight = `fixed_weight` (K x d), bias = 0, both frozen but kept in the state_dict so evaluation reloads
        the saved frame."""
        weight = as_float_tensor(fixed_weight)
        if weight.shape != self.weight.shape:
            raise ValueError(f"fixed classifier weight (the frame): expected shape {tuple(self.weight.shape)}, "
                             f"got {tuple(weight.shape)}")
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(weight.shape[0]), requires_grad=False)

    def weight_and_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight.detach(), self.bias.detach()


class CosineETFClassifier(nn.Module):
    """logits = scale * h E^T with E a fixed simplex ETF (rows normalised to unit length); with the unit h of
    `NormalisedTrunk` these are scaled cosines. E is a buffer (saved, not trained)."""

    def __init__(self, dim: int, num_classes: int, etf, scale: float):
        super().__init__()
        if dim < num_classes - 1:
            raise ValueError(
                f"cosine ETF head: feature dim {dim} < K-1 = {num_classes - 1}, a {num_classes}-class simplex ETF "
                f"does not fit; set projection_dim >= {num_classes - 1} (or use a wider backbone)"
            )
        etf = as_float_tensor(etf)
        if etf.shape != (num_classes, dim):
            raise ValueError(f"cosine ETF head etf: expected shape ({num_classes}, {dim}), got {tuple(etf.shape)}")
        self.register_buffer("etf", F.normalize(etf, dim=1))
        self.scale = float(scale)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.scale * h @ self.etf.T

    def weight_and_bias(self) -> tuple[torch.Tensor, None]:
        return self.etf.detach(), None


class _PerLevelClassifiers(nn.ModuleList):
    """One classifier per hierarchy level, [0] = top level, the last = leaves. Subclasses define
    `logits_at(level, h)`: what the level's classifier sees and how it scores. All are `classifier`s (classifier
    lr group), as the official `_custom_sgd` puts every `classifier_i` at the classifier lr."""

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__(layers)
        if len(self) < 2:
            raise ValueError(f"{type(self).__name__}: per-level heads need >= 2 hierarchy levels, got {len(self)}")

    def forward(self, h: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every level, top level first. The leaves are scored first, then the coarser levels: the order
        the training step's autograd graph had when the loss scored the coarser levels itself, kept so that
        gradients are summed in the same order (bit-identical results)."""
        leaf = self.logits_at(len(self) - 1, h)
        return [self.logits_at(level, h) for level in range(len(self) - 1)] + [leaf]

    def weights(self) -> tuple[torch.Tensor, ...]:
        return tuple(layer.weight for layer in self)


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


class FlamingoClassifiers(_PerLevelClassifiers):
    """Flamingo ("Your Flamingo is My Bird", CVPR 2021) as in HAFrame's `custom_resnet.py:ResNet50_flamingo_l*`,
    `HAFrameResNet50_flamingo_l*` and `custom_wideresnet.py:*flamingo_l5`.

    h is cut into L contiguous chunks (top level first). The level-l Linear sees its own chunk followed by
    the *detached* chunks of all finer levels, so the top head sees all of h but trains only its own chunk,
    and the leaf head sees only the last chunk.
    """

    def __init__(self, dim: int, level_sizes: Sequence[int], spread_remainder: bool = False):
        starts = flamingo_chunk_starts(dim, len(level_sizes), spread_remainder)
        super().__init__([nn.Linear(dim - start, n) for start, n in zip(starts, level_sizes)])
        self.chunk_starts, self.feature_dim = starts, dim

    def logits_at(self, level: int, h: torch.Tensor) -> torch.Tensor:
        start = self.chunk_starts[level]
        if level == len(self) - 1:
            return self[level](h[:, start:])
        finer = self.chunk_starts[level + 1]
        return self[level](torch.cat([h[:, start:finer], h[:, finer:].detach()], dim=1))

    def weight_and_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The leaf classifier as a map of the whole h: zero columns outside the leaf chunk."""
        leaf = self[-1]
        weight = leaf.weight.new_zeros(leaf.out_features, self.feature_dim)
        weight[:, self.chunk_starts[-1]:] = leaf.weight.detach()
        return weight, leaf.bias.detach()


class HAFeatureClassifiers(_PerLevelClassifiers):
    """HAFeature ("Learning Hierarchy Aware Features for Reducing Mistake Severity", ECCV 2022) heads as in
    HAFrame's `custom_resnet.py:*_hafeat_l*_cejsd_wtconst_dissim` (after `07Agarg/HAF`): every level's Linear
    sees all of h, with L2-normalised weight rows plus a bias: logits_l = h W_l^T / |W_l rows| + b_l.
    """

    def __init__(self, dim: int, level_sizes: Sequence[int]):
        super().__init__([nn.Linear(dim, n) for n in level_sizes])

    def logits_at(self, level: int, h: torch.Tensor) -> torch.Tensor:
        layer = self[level]
        return h @ F.normalize(layer.weight, p=2, dim=1).T + layer.bias

    def weight_and_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        leaf = self[-1]
        return F.normalize(leaf.weight.detach(), p=2, dim=1), leaf.bias.detach()


# ----------------------------------------------------------------------------- heads: trunk + classifier(s)
class Head(nn.Module):
    """trunk (fmap -> h) + one classifier (h -> leaf logits)."""

    def __init__(self, trunk: nn.Module, classifier: nn.Module):
        super().__init__()
        self.trunk, self.classifier = trunk, classifier
        # param_groups trains these at the backbone lr
        self.BACKBONE_LR_MODULES = tuple(f"trunk.{name}" for name in getattr(trunk, "BACKBONE_LR_MODULES", ()))

    def forward(self, fmap: torch.Tensor) -> ModelOutput:
        h = self.trunk(fmap)
        return ModelOutput(self.classifier(h), h)

    def classifier_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The leaf classifier as a map of h: (W [K, d], bias or None), detached."""
        return self.classifier.weight_and_bias()


class PerLevelHead(Head):
    """trunk + one classifier per hierarchy level (`FlamingoClassifiers`, `HAFeatureClassifiers`): the leaf logits
    make it an ordinary K-class model for evaluation, CRM and the collapse metrics; the hierarchical losses read
    every level from `level_logits` and `level_weights`."""

    def forward(self, fmap: torch.Tensor) -> ModelOutput:
        h = self.trunk(fmap)
        levels = self.classifier(h)
        return ModelOutput(levels[-1], h, tuple(levels), self.classifier.weights())
