"""featgeom.metrics against values computed by hand on tiny examples."""
import math

import numpy as np
import pytest

from featgeom.metrics import (
    crm_scores,
    hierarchy_metrics,
    hierdist_at_k,
    mistake_severity,
    ranked_classes,
    shot_accuracies,
    top1_accuracy,
)

# Classes 0 and 1 are siblings (distance 1); class 2 is in the other half of the tree (distance 2).
D = np.array([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
SCORES = np.array([
    [3.0, 2.0, 1.0],  # y=0, ranking 0,1,2: correct
    [1.0, 3.0, 2.0],  # y=0, ranking 1,2,0: mistake at distance 1
    [0.0, 1.0, 5.0],  # y=1, ranking 2,1,0: mistake at distance 2
    [2.0, 2.0, 1.0],  # y=2, tie -> ranking 0,1,2: mistake at distance 2
])
LABELS = np.array([0, 0, 1, 2])


def test_ranked_classes_best_first_ties_by_index():
    np.testing.assert_array_equal(ranked_classes(SCORES, 3), [[0, 1, 2], [1, 2, 0], [2, 1, 0], [0, 1, 2]])
    np.testing.assert_array_equal(ranked_classes(SCORES, 1), [[0], [1], [2], [0]])
    assert ranked_classes(SCORES, 10).shape == (4, 3)


def test_top1_and_mistake_severity():
    assert top1_accuracy(SCORES, LABELS) == pytest.approx(25.0)
    assert mistake_severity(SCORES, LABELS, D) == pytest.approx((1 + 2 + 2) / 3)
    assert math.isnan(mistake_severity(SCORES[:1], LABELS[:1], D))


def test_hierdist_at_k():
    assert hierdist_at_k(SCORES, LABELS, D, 1) == pytest.approx((0 + 1 + 2 + 2) / 4)
    # per sample: (0+1)/2, (1+2)/2, (2+0)/2, (2+2)/2
    assert hierdist_at_k(SCORES, LABELS, D, 2) == pytest.approx((0.5 + 1.5 + 1.0 + 2.0) / 4)
    # all classes: the row means of D[y]
    assert hierdist_at_k(SCORES, LABELS, D, 3) == pytest.approx((1 + 1 + 1 + 4 / 3) / 4)


def test_hierarchy_metrics_name_the_k_actually_computed():
    # K = 3 classes: HierDist@5 and @20 are both HierDist@3, reported once under the k used.
    result = hierarchy_metrics(SCORES, LABELS, D)
    assert list(result) == ["top1", "mistake_severity", "hierdist@1", "hierdist@3", "n_test"]
    assert result["n_test"] == 4
    assert result["hierdist@3"] == pytest.approx(13 / 12)
    assert list(hierarchy_metrics(SCORES, LABELS, D, ks=(1, 2))) == ["top1", "mistake_severity", "hierdist@1",
                                                                      "hierdist@2", "n_test"]


def test_crm_prefers_the_safer_class():
    # argmax p = class 2, but classes 0 and 1 together hold 60% of the mass:
    # risk = p @ D = [0.28 + 0.80, 0.32 + 0.80, 0.64 + 0.56] = [1.08, 1.12, 1.20].
    p = np.array([[0.32, 0.28, 0.40]])
    scores = crm_scores(np.log(p), D)
    np.testing.assert_allclose(scores, -np.array([[1.08, 1.12, 1.20]]), atol=1e-12)
    assert ranked_classes(p, 1)[0, 0] == 2 and ranked_classes(scores, 1)[0, 0] == 0


def test_crm_is_shift_invariant_and_stable():
    logits = np.array([[1.0, 2.0, 0.5], [1000.0, 999.0, -1000.0]])
    np.testing.assert_allclose(crm_scores(logits, D), crm_scores(logits - 7.0, D), atol=1e-12)
    assert np.isfinite(crm_scores(logits, D)).all()
    assert crm_scores(logits.astype(np.float32), D).dtype == np.float64


def _official_crm(logits, D):
    """HAFrame MBM/scripts/crm_eval.py, main() + apply_crm_to_softmax, with the distance dict as a matrix."""
    from scipy.special import softmax
    sm = softmax(logits, axis=1)
    C = [[int(D[i][j]) for j in range(len(D))] for i in range(len(D))]
    return -1 * np.dot(sm, C)


def test_crm_scores_are_the_official_float64_risks():
    # Saved logits are float32; the official softmax stays float32 and the risk is float64, bit for bit ours.
    rng = np.random.default_rng(0)
    D6 = rng.integers(0, 4, (6, 6))
    logits = (8 * rng.standard_normal((50, 6))).astype(np.float32)
    official = _official_crm(logits, D6)
    assert official.dtype == np.float64
    np.testing.assert_array_equal(crm_scores(logits, D6), official)


# float32 logits whose two best CRM risks differ by 3e-8: float32 rounds them to one value, and the tie then goes
# to class 0; in float64 (the official ranking) class 1 has the lower risk.
NEAR_TIE_LOGITS = np.array([[0.0, 2.0**-23, -0.5]], dtype=np.float32)


def test_crm_ranks_risks_closer_than_float32_resolution():
    scores = crm_scores(NEAR_TIE_LOGITS, D)
    assert np.array_equal(ranked_classes(scores, 3), [[1, 0, 2]])
    assert np.array_equal(ranked_classes(_official_crm(NEAR_TIE_LOGITS, D), 3), [[1, 0, 2]])
    assert np.array_equal(ranked_classes(scores.astype(np.float32), 3), [[0, 1, 2]])  # what a float32 copy gives


def test_metric_input_errors():
    with pytest.raises(ValueError, match="labels must lie"):
        top1_accuracy(SCORES, np.array([0, 0, 1, 3]))
    with pytest.raises(ValueError, match="distance matrix"):
        hierarchy_metrics(SCORES, LABELS, np.zeros((4, 4)))


def test_shot_accuracies_groups():
    train_counts = np.array([150, 100, 50, 20, 19, 5])  # many: 0; medium (20..100): 1, 2, 3; few: 4, 5
    labels = np.array([0, 0, 1, 1, 2, 3, 4, 4, 5])
    predictions = np.array([0, 1, 1, 0, 2, 3, 4, 4, 0])
    # per-class accuracy: 50, 50, 100, 100, 100, 0
    result = shot_accuracies(predictions, labels, train_counts)
    assert result["top1"] == pytest.approx(100 * 6 / 9)
    assert result["many_shot_top1"] == pytest.approx(50.0)
    assert result["medium_shot_top1"] == pytest.approx((50 + 100 + 100) / 3)
    assert result["few_shot_top1"] == pytest.approx(50.0)
    assert (result["n_many"], result["n_medium"], result["n_few"]) == (1, 3, 2)


def test_shot_accuracies_empty_group_is_nan():
    result = shot_accuracies(np.array([0, 1]), np.array([0, 1]), np.array([200, 50]))
    assert math.isnan(result["few_shot_top1"]) and result["n_few"] == 0
    assert result["many_shot_top1"] == 100.0 and result["medium_shot_top1"] == 100.0
