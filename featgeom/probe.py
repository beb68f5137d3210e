"""Linear probe on frozen features: StandardScaler + multinomial logistic regression (L-BFGS).

It returns decision scores (higher = more likely), not predictions, so callers compute top-1 and mistake severity with
the shared metrics, exactly as for network logits. sklearn only: this runs in rules that do not train.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from featgeom import metrics


def _check_classes(train_y, test_y, n_classes):
    """Score column k must mean class k, so every class 0..K-1 needs training samples."""
    K = int(max(train_y.max(), test_y.max())) + 1 if n_classes is None else int(n_classes)
    missing = np.setdiff1d(np.arange(K), np.unique(train_y))
    if missing.size:
        raise ValueError(f"linear probe: {missing.size} of {K} classes have no training samples: "
                         f"{missing[:20].tolist()}{' ...' if missing.size > 20 else ''}")
    if train_y.max() >= K or test_y.max() >= K or min(train_y.min(), test_y.min()) < 0:
        raise ValueError(f"linear probe: labels must lie in 0..{K - 1}")
    return K


def _scores_per_class(model, X):
    scores = model.decision_function(X)
    if scores.ndim == 1:
        # Binary sklearn models keep one logit s; [−s/2, s/2] has the same argmax and softmax = sigmoid(s).
        scores = np.stack([-scores / 2, scores / 2], axis=1)
    return scores.astype(np.float32)


def linear_probe(train_X, train_y, test_X, test_y, C=1.0, max_iter=1000, seed=0, n_classes=None):
    """Fit on (train_X, train_y), return (test scores [N_test, K] float32, info dict of plain values).

    C is sklearn's inverse L2 strength. The scaler is fit on the training features only.
    """
    train_y = np.asarray(train_y)
    test_y = np.asarray(test_y)
    K = _check_classes(train_y, test_y, n_classes)
    scaler = StandardScaler()
    scaled_train = scaler.fit_transform(train_X)
    model = LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs", random_state=seed)
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Non-convergence is reported in `info` instead of as a warning buried in a log.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaled_train, train_y)
    fit_seconds = time.perf_counter() - started
    test_scores = _scores_per_class(model, scaler.transform(test_X))
    n_iter = int(np.max(model.n_iter_))
    info = {
        "n_classes": K,
        "C": float(C),
        "max_iter": int(max_iter),
        "n_iter": n_iter,
        "converged": n_iter < max_iter,
        "fit_seconds": float(fit_seconds),
        "train_top1": float(np.mean(model.predict(scaled_train) == train_y)),
        "test_top1": float(np.mean(test_scores.argmax(axis=1) == test_y)),
    }
    return test_scores, info


def fine_probe(features: dict, distances, *, C: float, max_iter: int, seed: int) -> dict:
    """Linear probe on the fine labels of frozen (coarse-pretrained) features: probe.json content. C and max_iter:
    the experiment's `probe` block, whose defaults the config schema holds."""
    scores, info = linear_probe(features["train_features"], features["train_labels_fine"],
                                features["test_features"], features["test_labels_fine"],
                                C=C, max_iter=max_iter, seed=seed, n_classes=distances.shape[0])
    fine = metrics.hierarchy_metrics(scores, features["test_labels_fine"], distances)
    return {"probe_top1": fine["top1"], "probe_mistake_severity": fine["mistake_severity"],
            "probe_hierdist@1": fine["hierdist@1"], "probe_hierdist@5": fine["hierdist@5"],
            "n_test": fine["n_test"], "probe": info}
