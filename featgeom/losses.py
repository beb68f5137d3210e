"""Training losses. Every loss is called as `loss(output, labels)` -> scalar (batch mean), `output` being the
model's ModelOutput (featgeom.models.heads): leaf logits, features and, for per-level heads, every level's logits
and classifier weights. Losses see nothing else of the model.

- CrossEntropyLoss: plain CE (optional label smoothing, for the Mueller et al. comparison).
- HAFrameLoss: HAFrame `MixedLoss_CEandGeneralSCSL` with a fixed alpha.
- HingeCrossEntropy: the MSC "hinge CE" (formula not published; two readings, see the class).
- FlamingoLoss, HAFeatureLoss: the hierarchical baselines (featgeom/hierarchical_losses.py).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from featgeom.hierarchical_losses import FlamingoLoss, HAFeatureLoss
from featgeom.tensors import as_float_tensor

if TYPE_CHECKING:
    from featgeom.models.heads import ModelOutput

HINGE_MODES = ("hinge", "cone")


class CrossEntropyLoss(nn.Module):
    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, output: ModelOutput, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.logits, labels, label_smoothing=self.label_smoothing)


class HAFrameLoss(nn.Module):
    """(1 - alpha) CE(logits, y) + alpha (1/B) sum_b sum_i (cos(w_i, h_b) - S[i, y_b])^2.

    W (K x d) is the fixed HAFrame classifier, S (K x K) the hierarchy similarity the frame was solved
    from (W W^T = S). The official code also allows alpha > 1 with beta = 1; no script uses it, so
    alpha is restricted to [0, 1] here.
    """

    def __init__(self, frame_weight, similarity, alpha: float):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"HAFrameLoss alpha must be in [0, 1] (loss = (1-alpha) CE + alpha cos-loss), got {alpha}")
        weight, sim = as_float_tensor(frame_weight), as_float_tensor(similarity)
        k = weight.shape[0]
        if sim.shape != (k, k):
            raise ValueError(
                f"HAFrameLoss similarity: expected shape ({k}, {k}) to match the frame, got {tuple(sim.shape)}"
            )
        self.register_buffer("frame_weight", weight)
        self.register_buffer("similarity", sim)
        self.alpha = float(alpha)

    def cosine_term(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # The official GeneralSquareCosineSimilarityLoss calls F.cosine_similarity on broadcast [B, K, d]
        # tensors (1 GB per step at iNat's B=256, K=d=1010); its documented formula
        # x.y / max(|x| |y|, 1e-8) is computed here as one [B, K] product instead.
        features = features.float()
        norms = features.norm(dim=1, keepdim=True) * self.frame_weight.norm(dim=1)
        cos = features @ self.frame_weight.T / norms.clamp_min(1e-8)  # [B, K]
        target = self.similarity[labels]  # row y_b of the symmetric S = S[:, y_b]
        return (cos - target).square().sum() / features.shape[0]

    def forward(self, output: ModelOutput, labels: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(output.logits, labels)
        if self.alpha == 0.0:  # ablation row 3; skip the unused term
            return ce
        return (1.0 - self.alpha) * ce + self.alpha * self.cosine_term(output.features, labels.long())


class HingeCrossEntropy(nn.Module):
    """Per-sample CE that stops pulling once a sample is "inside its class cone"; mean over the batch.

    mode='hinge' (reading H1, clipped CE): l_i = max(CE_i, tau). Below tau (p_y > e^-tau) the loss is
        the constant tau with zero gradient; tau = 0 is plain CE. With cosine logits this zero-loss set is
        (approximately) a cone around w_y.
    mode='cone' (reading H2, explicit cone): l_i = CE_i if cos(h_i, w_y) < cone_cos, else CE_i with its
        gradient stopped (value kept, so the logged loss stays continuous). cos(h, w_y) is read as
        logits[y] / scale, which is exact for the cosine_etf head (unit h and unit ETF rows).
    """

    def __init__(self, tau: float = 0.0, scale: float | None = None, cone_cos: float | None = None,
                 mode: str = "hinge"):
        super().__init__()
        if mode not in HINGE_MODES:
            raise ValueError(f"HingeCrossEntropy mode must be one of {HINGE_MODES}, got {mode!r}")
        if mode == "hinge" and tau < 0:
            raise ValueError(f"HingeCrossEntropy tau must be >= 0, got {tau}")
        if mode == "cone" and (scale is None or cone_cos is None):
            raise ValueError("HingeCrossEntropy mode='cone' needs `scale` (cosine-head logit scale) and `cone_cos`")
        if mode == "cone" and not -1.0 <= cone_cos <= 1.0:
            raise ValueError(f"HingeCrossEntropy cone_cos must be in [-1, 1], got {cone_cos}")
        self.tau, self.scale, self.cone_cos, self.mode = float(tau), scale, cone_cos, mode

    def inside(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Boolean [B]: samples whose gradient is switched off."""
        if self.mode == "hinge":
            return F.cross_entropy(logits.detach(), labels, reduction="none") < self.tau
        cos_to_own_axis = logits.detach().gather(1, labels[:, None]).squeeze(1) / self.scale
        return cos_to_own_axis >= self.cone_cos

    def forward(self, output: ModelOutput, labels: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(output.logits, labels, reduction="none")
        if self.mode == "hinge":
            return ce.clamp(min=self.tau).mean()
        return torch.where(self.inside(output.logits, labels), ce.detach(), ce).mean()


def build_loss(spec: dict, frame=None, similarity=None, scale: float | None = None, level_table=None) -> nn.Module:
    """Loss from a config dict: `spec["name"]` picks the builder in LOSS_BUILDERS.

    Options per name (featgeom.config.LOSS_OPTIONS refuses the others): ce: label_smoothing; haframe: alpha
    (needs frame and similarity); hinge_ce: tau, mode (hinge | cone), cone_angle_deg (cone, with the model's
    cosine-head `scale`); flamingo / hafeature: the [L, K] `level_table` (the model needs the per-level head of
    the same name, model.level_heads); hafeature: dissimilar_from.
    """
    name = spec.get("name")
    if name not in LOSS_BUILDERS:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSS_BUILDERS)}")
    return LOSS_BUILDERS[name](spec, frame=frame, similarity=similarity, scale=scale, level_table=level_table)


# The loss options' defaults are the schema's (workflow/schemas/config.schema.yaml), written into every resolved spec.
def _ce_loss(spec: dict, **_context) -> CrossEntropyLoss:
    return CrossEntropyLoss(label_smoothing=spec["label_smoothing"])


def _haframe_loss(spec: dict, frame=None, similarity=None, **_context) -> HAFrameLoss:
    if frame is None or similarity is None:
        raise ValueError("loss 'haframe' needs both the frame W and the similarity matrix S")
    if "alpha" not in spec:
        raise ValueError("loss 'haframe' needs `alpha` in the loss spec")
    return HAFrameLoss(frame, similarity, alpha=spec["alpha"])


def _hinge_loss(spec: dict, scale: float | None = None, **_context) -> HingeCrossEntropy:
    cone_cos = math.cos(math.radians(spec["cone_angle_deg"])) if "cone_angle_deg" in spec else None
    floor = {"tau": spec["tau"]} if spec["mode"] == "hinge" else {}  # tau: the CE floor of mode hinge only
    return HingeCrossEntropy(scale=scale, cone_cos=cone_cos, mode=spec["mode"], **floor)


def _level_table(name: str, level_table):
    if level_table is None:
        raise ValueError(f"loss {name!r} needs the hierarchy's level x class table (level_table)")
    return level_table


def _flamingo_loss(spec: dict, level_table=None, **_context) -> FlamingoLoss:
    return FlamingoLoss(_level_table("flamingo", level_table))


def _hafeature_loss(spec: dict, level_table=None, **_context) -> HAFeatureLoss:
    if "dissimilar_from" not in spec:
        raise ValueError("loss 'hafeature' needs `dissimilar_from` (first level, 1 = top, of the margin term)")
    return HAFeatureLoss(_level_table("hafeature", level_table), dissimilar_from=spec["dissimilar_from"])


# name -> builder(spec, frame=, similarity=, scale=, level_table=); keys = config.LOSS_OPTIONS keys
LOSS_BUILDERS = {"ce": _ce_loss, "haframe": _haframe_loss, "hinge_ce": _hinge_loss,
                 "flamingo": _flamingo_loss, "hafeature": _hafeature_loss}
