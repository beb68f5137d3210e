"""Losses of the hierarchical baselines in HAFrame's Tables 3/4: Flamingo and HAFeature.

Both keep the loss contract `loss(output, labels)` with the model's ModelOutput (models/heads.py): the
per-level heads (`FlamingoClassifiers`, `HAFeatureClassifiers`) put every level's logits in `level_logits`
and HAFeature's classifier weights in `level_weights`, inside the model's forward, so a compiled or
graph-captured step covers them.
Level targets come from the [L, K] level x class table (featgeom.hierarchy.level_table): row l of
`table[:, y]` is the level-l label, top level first.

Everything runs as tensor ops without host syncs or data-dependent shapes, so the step can be
captured (CUDA graphs, torch.compile); the dissimilar-pair shuffle draws from torch's global RNG,
which the trainer checkpoints, so a resumed CPU run stays bit-identical.

Official sources (ltong1130ztr/HAFrame): `util/arch/custom_resnet.py`, `util/arch/custom_wideresnet.py`,
`util/loss_function/jsd.py`, `MBM/better_mistakes/util/dissimilar_pairs.py`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from featgeom.hierarchy import parent_of_child

if TYPE_CHECKING:
    from featgeom.models.heads import ModelOutput

# `create_dissimilar_pairs`: at most 256 pairs per level; `JSDDissimilarLoss(margin=3.0)`.
PAIR_LIMIT = 256
DISSIMILAR_MARGIN = 3.0
_MIXTURE_FLOOR = 1e-7  # jsd.py clamps the mixture to [1e-7, 1] before the log


def log_mixture(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return (0.5 * (p + q)).clamp(_MIXTURE_FLOOR, 1.0).log()


def kl_to_mixture(p: torch.Tensor, log_mix: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(p || M) in nats, [B]; 0 log 0 = 0 as in F.kl_div."""
    return F.kl_div(log_mix, p, reduction="none").sum(dim=1)


def jensen_shannon(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """`JSDSimilarLoss`: 0.5 (KL(p||M) + KL(q||M)) with M = (p+q)/2, averaged over the batch ('batchmean')."""
    log_mix = log_mixture(p, q)
    return 0.5 * (kl_to_mixture(p, log_mix).mean() + kl_to_mixture(q, log_mix).mean())


def children_sum(child_probs: torch.Tensor, parent_onehot: torch.Tensor) -> torch.Tensor:
    """[B, n_child] @ [n_child, n_parent] -> [B, n_parent]: the official `p_hat[:, parent] =
    sum(fine_softmax[:, children])`, the soft labels the finer classifier gives the coarser level."""
    return child_probs @ parent_onehot


def geometric_consistency(parent_unit: torch.Tensor, child_unit: torch.Tensor,
                          parent_onehot: torch.Tensor) -> torch.Tensor:
    """Mean over parents of cos(w_parent, normalise(sum of its children's unit weights)); the loss subtracts it."""
    summed_children = F.normalize(parent_onehot.T @ child_unit, p=2, dim=1)  # [n_parent, d]
    return F.cosine_similarity(parent_unit, summed_children, dim=1, eps=1e-8).mean()


def dissimilar_pair_counts(shuffled_labels: torch.Tensor, limit: int = PAIR_LIMIT) -> torch.Tensor:
    """How often each consecutive pair (j, j+1) of the shuffled batch fills a row of the official pair table.

    `create_dissimilar_pairs` writes the consecutive pairs with different labels, in order, into a
    [limit, 2, C] table, and its outer loop repeats that pass up to B times until the table is full:
    the pair of rank r among n such pairs lands in passes k with k n + r < limit, k < B.
    """
    batch = shuffled_labels.shape[0]
    different = shuffled_labels[1:] != shuffled_labels[:-1]
    rank = different.long().cumsum(0) - 1
    pairs = different.long().sum().clamp_min(1)
    passes = -torch.div(rank - limit, pairs, rounding_mode="floor")  # ceil((limit - rank) / pairs)
    return torch.where(different, passes.clamp(0, batch), 0).to(torch.float32)


def margin_dissimilarity(probs: torch.Tensor, labels: torch.Tensor, order: torch.Tensor,
                         margin: float = DISSIMILAR_MARGIN, limit: int = PAIR_LIMIT) -> torch.Tensor:
    """`JSDDissimilarLoss` on the official pair table of one level.

    Per row: 0.5 (max(0, margin - KL(p||M)) + max(0, margin - KL(q||M))), averaged over all `limit` rows.
    Rows the batch cannot fill stay zero vectors in the official code and score exactly `margin`.
    `order` is the shuffle (a permutation of the batch).
    """
    probs, labels = probs[order], labels[order]
    counts = dissimilar_pair_counts(labels, limit)
    left, right = probs[:-1], probs[1:]
    log_mix = log_mixture(left, right)
    per_pair = 0.5 * (F.relu(margin - kl_to_mixture(left, log_mix)) + F.relu(margin - kl_to_mixture(right, log_mix)))
    empty_rows = limit - counts.sum()
    return ((counts * per_pair).sum() + empty_rows * margin) / limit


class _LevelTargets(nn.Module):
    """Holds the [L, K] level table and checks that the model's per-level logits match its levels."""

    def __init__(self, level_table, loss_name: str):
        super().__init__()
        table = torch.as_tensor(np.asarray(level_table), dtype=torch.int64)
        self.register_buffer("level_table", table)
        self.level_sizes = [int(row.max()) + 1 for row in table]
        self.num_levels = len(self.level_sizes)
        self.loss_name = loss_name

    def level_logits(self, output: ModelOutput) -> list[torch.Tensor]:
        """Every level's logits, top level first; refused (shapes only: no host sync) unless they are the
        hierarchy's levels."""
        sizes = [int(z.shape[1]) for z in output.level_logits]
        if sizes != self.level_sizes:
            raise ValueError(f"loss {self.loss_name!r}: the model's per-level classifiers have {sizes} classes, the "
                             f"hierarchy's levels {self.level_sizes} (model.level_heads: {self.loss_name})")
        return list(output.level_logits)

    def level_targets(self, labels: torch.Tensor) -> torch.Tensor:
        """[L, B] label of every sample at every level, top level first."""
        return self.level_table[:, labels]


class FlamingoLoss(_LevelTargets):
    """Unweighted sum over levels of the batch-mean CE of each level's head (`ResNet50_flamingo_l*`: ce_loss =
    ce_l1 + ... + ce_lL). The detach of the finer chunks lives in `FlamingoClassifiers.logits_at`."""

    def __init__(self, level_table):
        super().__init__(level_table, "flamingo")

    def forward(self, output: ModelOutput, labels: torch.Tensor) -> torch.Tensor:
        per_level = self.level_logits(output)
        targets = self.level_targets(labels)
        return sum(F.cross_entropy(level_logits, targets[level]) for level, level_logits in enumerate(per_level))


class HAFeatureLoss(_LevelTargets):
    """`*_hafeat_l*_cejsd_wtconst_dissim`: loss = CE(leaf logits) + sum over adjacent levels of
    JSD(children-summed finer softmax, coarser softmax) - sum over adjacent levels of the geometric
    consistency + sum of the margin dissimilarity over levels `dissimilar_from`..L-1 (1 = top level).

    The official variants differ in those levels: CIFAR WRN (l5) 1..4, FGVC (l3) 2, iNat19 (l7) 2..6,
    tiered (l12) 5..11 ("added in sec expt."); the config gives `dissimilar_from` per dataset.
    """

    def __init__(self, level_table, dissimilar_from: int, margin: float = DISSIMILAR_MARGIN, limit: int = PAIR_LIMIT):
        super().__init__(level_table, "hafeature")
        if not 1 <= dissimilar_from <= self.num_levels - 1:
            raise ValueError(f"loss 'hafeature' dissimilar_from = {dissimilar_from}: must be a level above the leaves "
                             f"(1..{self.num_levels - 1} for this {self.num_levels}-level hierarchy)")
        for level in range(self.num_levels - 1):
            self.register_buffer(f"parent_onehot_{level}", self._parent_onehot(level))
        self.dissimilar_levels = list(range(dissimilar_from - 1, self.num_levels - 1))  # 0-based rows
        self.margin, self.limit = float(margin), int(limit)

    def _parent_onehot(self, level: int) -> torch.Tensor:
        """[n_(level+1), n_level] float: 1 where the row's node sits under the column's node."""
        parent = torch.as_tensor(parent_of_child(self.level_table.numpy(), level))
        return F.one_hot(parent, int(self.level_table[level].max()) + 1).to(torch.float32)

    def parent_onehot(self, level: int) -> torch.Tensor:
        return getattr(self, f"parent_onehot_{level}")

    def forward(self, output: ModelOutput, labels: torch.Tensor) -> torch.Tensor:
        probs = [F.softmax(z, dim=1) for z in self.level_logits(output)]
        weights = [F.normalize(w, p=2, dim=1) for w in output.level_weights]  # unit rows, as the logits use them
        pairs = range(self.num_levels - 1)
        jsd = sum(jensen_shannon(children_sum(probs[l + 1], self.parent_onehot(l)), probs[l]) for l in pairs)
        geometric = sum(geometric_consistency(weights[l], weights[l + 1], self.parent_onehot(l)) for l in pairs)
        return F.cross_entropy(output.logits, labels) + jsd - geometric + self.dissimilarity(probs, labels)

    def dissimilarity(self, probs: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        # One shuffle per level, as the official calls random.shuffle inside every create_dissimilar_pairs.
        targets = self.level_targets(labels)
        orders = torch.rand(len(self.dissimilar_levels), labels.shape[0], device=labels.device).argsort(dim=1)
        return sum(margin_dissimilarity(probs[level], targets[level], order, self.margin, self.limit)
                   for level, order in zip(self.dissimilar_levels, orders))
