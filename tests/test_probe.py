"""Linear probe: shapes, accuracy on separable data, and clear errors for classes missing from training."""
import numpy as np
import pytest

from featgeom.probe import linear_probe


def blobs(n_per_class, K, d, seed, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).normal(size=(K, d)) * 3  # same centres for train and test
    labels = np.repeat(np.arange(K), n_per_class)
    return (centres[labels] + spread * rng.normal(size=(len(labels), d))).astype(np.float32), labels


def test_probe_separates_blobs_and_returns_scores_per_class():
    train_X, train_y = blobs(60, K=5, d=12, seed=0)
    test_X, test_y = blobs(30, K=5, d=12, seed=1)
    scores, info = linear_probe(train_X, train_y, test_X, test_y)
    assert scores.shape == (len(test_y), 5) and scores.dtype == np.float32
    assert np.mean(scores.argmax(axis=1) == test_y) > 0.95
    assert info["test_top1"] > 0.95 and info["n_classes"] == 5 and info["converged"]


def test_binary_probe_still_gives_two_columns():
    train_X, train_y = blobs(40, K=2, d=6, seed=2)
    test_X, test_y = blobs(20, K=2, d=6, seed=3)
    scores, _ = linear_probe(train_X, train_y, test_X, test_y)
    assert scores.shape == (40, 2)
    assert np.mean(scores.argmax(axis=1) == test_y) > 0.95


def test_class_missing_from_training_is_an_error():
    train_X, train_y = blobs(20, K=3, d=4, seed=4)
    keep = train_y != 1
    with pytest.raises(ValueError, match="no training samples: \\[1\\]"):
        linear_probe(train_X[keep], train_y[keep], train_X, train_y)


def test_declared_class_count_larger_than_training_classes_is_an_error():
    train_X, train_y = blobs(20, K=3, d=4, seed=5)
    with pytest.raises(ValueError, match="2 of 5 classes"):
        linear_probe(train_X, train_y, train_X, train_y, n_classes=5)
