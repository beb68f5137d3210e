"""Run-level evaluation (numpy only: scoring a run must not pay scikit-learn's import): metrics.json of a run,
CRM re-ranking, and reading the frozen features of the MSC probe (featgeom.probe fits it)."""
from __future__ import annotations

import numpy as np

from featgeom import metrics


def load_scores(path) -> tuple[np.ndarray, np.ndarray]:
    """scores [N,K] (float32 logits; CRM: float64 negated risks) and labels [N] int64 from a test_logits.npz,
    validated. The scores keep the dtype they were saved in."""
    with np.load(path) as data:
        missing = {"scores", "labels"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: missing array(s) {sorted(missing)}")
        scores, labels = data["scores"], data["labels"]
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"{path}: scores {scores.shape} and labels {labels.shape} do not match")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"{path}: labels outside 0..{scores.shape[1] - 1}")
    return scores, labels


def run_metrics(scores, labels, distances, label_level="fine", train_counts=None, longtail=None) -> dict:
    """metrics.json content. Fine-level runs get the hierarchy metrics on the full test set;
    coarse-level runs (MSC pretraining) get top-1; long-tail runs add many/medium/few-shot top-1."""
    if label_level == "coarse":
        result = {"top1": metrics.top1_accuracy(scores, labels), "n_test": int(labels.size)}
    else:
        if distances.shape[0] != scores.shape[1]:
            raise ValueError(f"scores have {scores.shape[1]} classes but the distance matrix {distances.shape[0]}")
        result = metrics.hierarchy_metrics(scores, labels, distances)
    if train_counts is not None:
        shots = metrics.shot_accuracies(scores.argmax(1), labels, train_counts,
                                        many_above=longtail["many_above"], few_below=longtail["few_below"])
        result.update({k: v for k, v in shots.items() if k != "top1"})
    return result


def crm_test_scores(logits, distances) -> np.ndarray:
    """CRM scores (negated expected LCA distance) of a CE run's test logits, float64 (see metrics.crm_scores)."""
    if distances.shape[0] != logits.shape[1]:
        raise ValueError(f"logits have {logits.shape[1]} classes but the distance matrix {distances.shape[0]}")
    return metrics.crm_scores(logits, distances)


def load_features(path) -> dict:
    needed = ("train_features", "train_labels_fine", "train_labels_coarse",
              "test_features", "test_labels_fine", "test_labels_coarse")
    with np.load(path) as data:
        missing = sorted(set(needed) - set(data.files))
        if missing:
            raise ValueError(f"{path}: missing array(s) {missing}")
        return {k: data[k] for k in data.files}
