"""Flat and hierarchical test metrics, as computed by the HAFrame / MBM / CRM evaluation code.

Conventions (HAFrame `MBM/scripts/start_testing.py`, `crm_eval.py`): `scores` [N, K] higher = better (logits,
softmax, or -risk for CRM); `labels` [N] int class indices; `D` [K, K] leaf distances in the same class order.
Ties between equal scores are broken by the lower class index (stable sort). numpy only.
"""
from __future__ import annotations

import numpy as np

HIERARCHY_KS = (1, 5, 20)


def _as_inputs(scores, labels, D=None):
    scores = np.asarray(scores)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"scores must be [N, K] and labels [N]; got {scores.shape} and {labels.shape}")
    k = scores.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in 0..{k - 1}; found {labels.min()}..{labels.max()}")
    if D is not None:
        D = np.asarray(D)
        if D.shape != (k, k):
            raise ValueError(f"distance matrix is {D.shape}, scores have {k} classes")
    return scores, labels, D


def ranked_classes(scores, k: int) -> np.ndarray:
    """int64 [N, k]: the k best classes of each row, best first (ties: lower index first)."""
    scores = np.asarray(scores)
    k = min(int(k), scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int64)


def top1_accuracy(scores, labels) -> float:
    """Percent of samples whose best-scored class is the label."""
    scores, labels, _ = _as_inputs(scores, labels)
    return float(100.0 * np.mean(ranked_classes(scores, 1)[:, 0] == labels))


def mistake_severity(scores, labels, D) -> float:
    """Mean D[y, top-1 prediction] over misclassified samples; NaN if there is none.

    MBM selects mistakes by distance != 0, which is the same as prediction != label for a valid D.
    """
    scores, labels, D = _as_inputs(scores, labels, D)
    predicted = ranked_classes(scores, 1)[:, 0]
    wrong = predicted != labels
    return float(D[labels[wrong], predicted[wrong]].mean()) if wrong.any() else float("nan")


def hierdist_at_k(scores, labels, D, k: int) -> float:
    """Mean over samples of the mean D[y, c] over the k best classes c (the correct class counts 0)."""
    scores, labels, D = _as_inputs(scores, labels, D)
    top = ranked_classes(scores, k)
    return float(D[labels[:, None], top].mean())


def crm_scores(logits, D) -> np.ndarray:
    """Conditional risk minimisation (Karthik et al. 2021): -(softmax(logits) @ D), so higher = better, float64.

    As HAFrame's `MBM/scripts/crm_eval.py`: the softmax is taken in the logits' own precision (scipy's softmax keeps
    the saved float32 logits float32), the risk `np.dot(p, C)` with the integer distance matrix C in float64. The
    result must stay float64 wherever it goes: rounded to float32, risks closer than float32's resolution tie, and
    ties go to the lower class index.
    """
    logits = np.asarray(logits)
    if not np.issubdtype(logits.dtype, np.floating):
        logits = logits.astype(np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))  # stable softmax, as scipy.special.softmax
    p = exp / exp.sum(axis=1, keepdims=True)
    return -(p.astype(np.float64) @ np.asarray(D, dtype=np.float64))


def hierarchy_metrics(scores, labels, D, ks=HIERARCHY_KS) -> dict:
    """{'top1', 'mistake_severity', 'hierdist@k' for k in ks, 'n_test'}.

    A k larger than the number of classes K is computed at K and reported under the k actually used
    (HierDist@20 of a 12-class dataset is 'hierdist@12'), so no column claims what was not computed.
    """
    scores, labels, D = _as_inputs(scores, labels, D)
    result = {"top1": top1_accuracy(scores, labels), "mistake_severity": mistake_severity(scores, labels, D)}
    for k in sorted({min(k, D.shape[0]) for k in ks}):
        result[f"hierdist@{k}"] = hierdist_at_k(scores, labels, D, k)
    result["n_test"] = int(labels.size)
    return result


def shot_accuracies(predictions, labels, train_counts, many_above: int = 100, few_below: int = 20) -> dict:
    """Top-1 plus per-class accuracy averaged within long-tail shot groups (percent).

    many: train count > many_above; few: count < few_below; medium: the rest (20..100 inclusive by
    default). Classes absent from the test set are left out of their group's mean; a group without
    any tested class gives NaN. `n_many/n_medium/n_few` count the classes of each group.
    """
    predictions = np.asarray(predictions, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    train_counts = np.asarray(train_counts)
    k = train_counts.size
    if predictions.shape != labels.shape or (labels.size and (labels.min() < 0 or labels.max() >= k)):
        raise ValueError(
            f"predictions {predictions.shape} and labels {labels.shape} must match, labels in 0..{k - 1} "
            f"({k} classes in train_counts)"
        )
    tested = np.bincount(labels, minlength=k)
    correct = np.bincount(labels[predictions == labels], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = 100.0 * correct / tested
    groups = {
        "many": train_counts > many_above,
        "medium": (train_counts >= few_below) & (train_counts <= many_above),
        "few": train_counts < few_below,
    }
    result = {"top1": float(100.0 * np.mean(predictions == labels))}
    for name, members in groups.items():
        values = per_class[members & (tested > 0)]
        result[f"{name}_shot_top1"] = float(values.mean()) if values.size else float("nan")
    for name, members in groups.items():
        result[f"n_{name}"] = int(members.sum())
    return result
