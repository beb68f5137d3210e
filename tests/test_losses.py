"""Losses against hand-computed values and gradient masks (CPU)."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from featgeom.config import LOSS_OPTIONS
from featgeom.losses import LOSS_BUILDERS, CrossEntropyLoss, HAFrameLoss, HingeCrossEntropy, build_loss
from featgeom.models import ModelOutput


def numpy_ce(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def tiny_haframe_problem():
    """K=3, B=2: W with unit rows, S = W W^T, features h, logits = h W^T."""
    w = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]])
    s = w @ w.T
    h = np.array([[2.0, 1.0, -1.0], [0.5, -0.3, 1.5]])
    y = np.array([1, 2])
    return w, s, h, h @ w.T, y


def test_haframe_loss_matches_explicit_numpy():
    w, s, h, logits, y = tiny_haframe_problem()
    alpha = 0.4
    cos = np.array([[hb @ wi / (np.linalg.norm(hb) * np.linalg.norm(wi)) for wi in w] for hb in h])
    cos_term = sum(((cos[b] - s[:, y[b]]) ** 2).sum() for b in range(2)) / 2
    expected = (1 - alpha) * numpy_ce(logits, y).mean() + alpha * cos_term

    output = ModelOutput(torch.tensor(logits, dtype=torch.float32), torch.tensor(h, dtype=torch.float32))
    loss = HAFrameLoss(w, s, alpha)(output, torch.tensor(y))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_haframe_alpha_zero_is_cross_entropy():
    w, s, h, logits, y = tiny_haframe_problem()
    args = ModelOutput(torch.tensor(logits, dtype=torch.float32), torch.tensor(h, dtype=torch.float32)), torch.tensor(y)
    assert HAFrameLoss(w, s, 0.0)(*args).item() == pytest.approx(CrossEntropyLoss()(*args).item(), rel=1e-6)


def test_haframe_alpha_out_of_range():
    w, s, *_ = tiny_haframe_problem()
    with pytest.raises(ValueError, match="alpha"):
        HAFrameLoss(w, s, 1.5)


def _ce_and_grads(loss_fn, logits, features, labels):
    logits = logits.clone().requires_grad_(True)
    loss = loss_fn(ModelOutput(logits, features), labels)
    loss.backward()
    return loss, logits.grad


def test_hinge_equals_ce_outside_and_has_zero_grad_inside():
    torch.manual_seed(0)
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 6.0], [1.0, 1.0, 0.0]])
    labels = torch.tensor([0, 1, 2, 0])
    ce = F.cross_entropy(logits, labels, reduction="none")
    tau = 0.2
    inside = ce < tau
    assert inside.tolist() == [True, False, True, False]  # the example covers both cases

    loss, grad = _ce_and_grads(HingeCrossEntropy(tau=tau), logits, None, labels)
    _, ce_grad = _ce_and_grads(CrossEntropyLoss(), logits, None, labels)
    assert loss.item() == pytest.approx(torch.where(inside, torch.tensor(tau), ce).mean().item(), rel=1e-6)
    assert torch.all(grad[inside] == 0)
    assert torch.allclose(grad[~inside], ce_grad[~inside])  # both use the same 1/B mean


def test_hinge_tau_zero_is_plain_ce():
    logits, labels = torch.randn(8, 4), torch.randint(0, 4, (8,))
    assert HingeCrossEntropy(tau=0.0)(ModelOutput(logits, None), labels).item() == pytest.approx(
        F.cross_entropy(logits, labels).item(), rel=1e-6)


def test_cone_mode_zero_grad_inside_and_ce_outside():
    torch.manual_seed(0)
    scale, cone_cos = 10.0, math.cos(math.radians(30))
    etf = torch.tensor([[1.0, 0.0], [-0.5, math.sqrt(3) / 2], [-0.5, -math.sqrt(3) / 2]])
    angles = torch.tensor([0.1, 1.0, 1.0, 2.0])  # angle to own axis: 0.1 rad inside; others outside
    labels = torch.tensor([0, 0, 1, 2])
    features = torch.stack([torch.cos(angles), torch.sin(angles)], 1).requires_grad_(True)
    logits = scale * features @ etf.T
    loss_fn = HingeCrossEntropy(scale=scale, cone_cos=cone_cos, mode="cone")
    inside = loss_fn.inside(logits, labels)
    assert inside.tolist() == [True, False, False, False]

    loss = loss_fn(ModelOutput(logits, features), labels)
    loss.backward()
    assert loss.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)  # value kept
    assert torch.all(features.grad[0] == 0) and torch.all(features.grad[1:].abs().sum(1) > 0)


def test_cone_mode_needs_scale():
    with pytest.raises(ValueError, match="scale"):
        HingeCrossEntropy(cone_cos=0.9, mode="cone")


def test_build_loss_names_and_cone_angle():
    w, s, *_ = tiny_haframe_problem()
    assert isinstance(build_loss({"name": "ce", "label_smoothing": 0.0}), CrossEntropyLoss)
    assert build_loss({"name": "haframe", "alpha": 0.5}, frame=w, similarity=s).alpha == 0.5
    cone = build_loss({"name": "hinge_ce", "mode": "cone", "cone_angle_deg": 60}, scale=16.0)
    assert cone.cone_cos == pytest.approx(0.5) and cone.scale == 16.0
    with pytest.raises(ValueError, match="hinge_ce"):
        build_loss({"name": "focal"})
    with pytest.raises(ValueError, match="similarity"):
        build_loss({"name": "haframe", "alpha": 0.5}, frame=w)


def test_loss_names_and_options_agree_with_the_schema():
    schema = yaml.safe_load((Path(__file__).resolve().parent.parent / "workflow/schemas/config.schema.yaml").read_text())
    loss_schema = schema["$defs"]["method"]["properties"]["loss"]
    assert set(LOSS_BUILDERS) == set(LOSS_OPTIONS) == set(loss_schema["properties"]["name"]["enum"])
    options = {option for names in LOSS_OPTIONS.values() for option in names}
    assert set(loss_schema["properties"]) == {"name"} | options


def test_haframe_cosine_term_equals_the_official_broadcast_form():
    # The official loss calls F.cosine_similarity on [B, K, d] broadcasts; ours is one [B, K] product.
    torch.manual_seed(0)
    weight = F.normalize(torch.randn(50, 50), dim=1)
    similarity = weight @ weight.T
    features, labels = torch.randn(16, 50), torch.randint(0, 50, (16,))
    official = F.cosine_similarity(features.unsqueeze(1), weight.unsqueeze(0), dim=2)
    expected = (official - similarity[labels]).square().sum() / 16
    got = HAFrameLoss(weight.numpy(), similarity.numpy(), alpha=0.4).cosine_term(features, labels)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
