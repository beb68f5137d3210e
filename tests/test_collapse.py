"""Neural-collapse metrics: exact values on perfectly collapsed and hand-computed configurations."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from featgeom import collapse


def simplex_etf(K, d, seed=0):
    """K unit rows in R^d with pairwise cosine −1/(K−1), randomly rotated (d ≥ K)."""
    basis, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, K)))
    centred_identity = np.eye(K) - 1.0 / K
    return np.sqrt(K / (K - 1)) * centred_identity @ basis.T


@pytest.fixture
def collapsed():
    """Features equal to their class means exactly; centred means form a simplex ETF; balanced classes."""
    K, d, per_class = 5, 8, 4
    offset = np.full(d, 3.0)  # a non-zero global mean that centring must remove
    means = 2.0 * simplex_etf(K, d) + offset
    labels = np.repeat(np.arange(K), per_class)
    return means[labels], labels, means, offset, K


def test_perfect_collapse_has_zero_nc1(collapsed):
    H, labels, _, _, K = collapsed
    assert collapse.nc1(H, labels, K) == pytest.approx(0.0, abs=1e-12)


def test_exact_etf_is_equinorm_and_equiangular(collapsed):
    H, labels, means, offset, K = collapsed
    centred = collapse.class_means(H, labels, K) - offset
    std, maxangle = collapse.equiangularity(centred)
    assert std == pytest.approx(0.0, abs=1e-12)
    assert maxangle == pytest.approx(0.0, abs=1e-12)
    assert collapse.nc2_equinorm_means(centred) == pytest.approx(0.0, abs=1e-12)


def test_self_duality_zero_when_classifier_proportional_to_means(collapsed):
    _, _, means, offset, _ = collapsed
    centred = means - offset
    assert collapse.nc3_self_duality(7.0 * centred, centred) == pytest.approx(0.0, abs=1e-24)
    assert collapse.nc3_self_duality(-centred, centred) == pytest.approx(4.0)  # ‖−a − a‖² with ‖a‖ = 1


def _official_self_duality(cls_weights, class_features):
    """HAFrame HAFrame/neural_collapse.py:cls_weights_and_feature_collapse, verbatim."""
    cls_weights_normalized = cls_weights / np.linalg.norm(cls_weights, ord='fro')
    class_features_normalized = class_features / np.linalg.norm(class_features, ord='fro')
    diff = np.linalg.norm(cls_weights_normalized - class_features_normalized, ord='fro')
    return diff**2


def test_fixed_frame_self_duality_is_on_raw_means_as_haframes_plot():
    from featgeom import frames
    D = np.array([[0, 1, 2, 2], [1, 0, 2, 2], [2, 2, 0, 1], [2, 2, 1, 0]])
    W = frames.haframe_weights(frames.haframe_similarity(D, 1.0, frames.find_s_min(D, 1.0)), 4, seed=0)
    labels = np.repeat(np.arange(4), 3)
    H = 3.0 * W[labels]  # features collapsed exactly onto the fixed frame
    fixed = collapse.collapse_report(H, labels, W, labels, fixed_frame=True)
    learnable = collapse.collapse_report(H, labels, W, labels)
    assert "nc3_self_duality" not in fixed and "nc3_self_duality_raw" not in learnable
    # HAFrame's plot: cls_rfeat_duality (raw means) for HAFrame, cls_cfeat_duality (centred) for the ETF/CE model.
    centred = 3.0 * W - 3.0 * W.mean(axis=0)
    assert fixed["nc3_self_duality_raw"] == pytest.approx(_official_self_duality(W, 3.0 * W), abs=1e-15)
    assert fixed["nc3_self_duality_raw"] == pytest.approx(0.0, abs=1e-12)
    assert learnable["nc3_self_duality"] == pytest.approx(_official_self_duality(W, centred), rel=1e-12)
    assert learnable["nc3_self_duality"] > 0.01  # the floor centring leaves under perfect collapse onto a HAFrame


def test_ncc_agrees_with_network_on_collapsed_features(collapsed):
    H, labels, means, _, _ = collapsed
    assert collapse.nc4_ncc_mismatch(H, means, predictions=labels) == 0.0


def test_nc4_counts_disagreements():
    means = np.array([[-1.0, 0.0], [1.0, 0.0]])
    H = np.array([[-2.0, 0.0], [0.5, 0.0], [0.9, 1.0], [3.0, 0.0]])
    network = np.array([0, 0, 1, 0])  # samples 1 and 3 are nearer class 1
    assert collapse.nc4_ncc_mismatch(H, means, network) == pytest.approx(0.5)


def test_nc1_hand_value_balanced():
    # Class means (−1, 0), (1, 0), global mean 0 → Σ_B = diag(1, 0) and Σ_B⁺ = diag(1, 0).
    # Residuals ±(−0.5, 1) → Σ_W = [[0.25, −0.5], [−0.5, 1]]; tr(Σ_W Σ_B⁺) = 0.25, /K → 0.125.
    H = np.array([[-1.5, 1.0], [-0.5, -1.0], [0.5, 1.0], [1.5, -1.0]])
    labels = np.array([0, 0, 1, 1])
    assert collapse.nc1(H, labels, 2) == pytest.approx(0.125, rel=1e-12)


def test_nc1_uses_sample_weighted_global_mean():
    # x = {0, 2, 4} in class 0 (mean 2) and {6} in class 1: sample mean 3 → centred means −1, 3 → Σ_B = 5;
    # Σ_W = (4 + 0 + 4 + 0)/4 = 2; NC1 = (2/5)/2 = 0.2. (The unweighted mean of means, 4, would give 0.25.)
    H = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0], [6.0, 0.0]])
    labels = np.array([0, 0, 0, 1])
    _, _, global_mean = collapse.class_statistics(H, labels, 2)
    assert global_mean == pytest.approx([3.0, 0.0])
    assert collapse.nc1(H, labels, 2) == pytest.approx(0.2, rel=1e-12)


def brute_force_nc1(H, labels, K):
    """Textbook definition with d×d matrices (Papyan et al. 2020)."""
    means = np.stack([H[labels == k].mean(axis=0) for k in range(K)])
    residuals = H - means[labels]
    within = residuals.T @ residuals / len(H)
    centred = means - H.mean(axis=0)
    between = centred.T @ centred / K
    return np.trace(within @ np.linalg.pinv(between, rtol=1e-10, hermitian=True)) / K


@pytest.mark.parametrize("K, d", [(6, 10), (12, 5)])  # d > K−1 and d < K−1 (rank-deficient Σ_B either way)
def test_nc1_matches_definition_across_chunks(monkeypatch, K, d):
    monkeypatch.setattr(collapse, "_CHUNK_ROWS", 7)  # force many chunk boundaries
    rng = np.random.default_rng(1)
    labels = np.concatenate([np.arange(K), rng.integers(0, K, 150)])
    H = (rng.normal(size=(K, d)) * 3)[labels] + rng.normal(size=(len(labels), d))
    assert collapse.nc1(H.astype(np.float32), labels, K) == pytest.approx(
        brute_force_nc1(H.astype(np.float32).astype(np.float64), labels, K), rel=1e-9)


def test_angular_collapse_zero_when_cosines_match_target():
    means = np.random.default_rng(2).normal(size=(6, 4))
    unit = means / np.linalg.norm(means, axis=1, keepdims=True)
    mean_gap, std_gap = collapse.angular_collapse(means, unit @ unit.T)
    assert mean_gap == pytest.approx(0.0, abs=1e-12)
    assert std_gap == pytest.approx(0.0, abs=1e-12)


def test_angular_collapse_centred_uses_given_global_mean():
    etf = simplex_etf(4, 6)
    S = np.full((4, 4), -1.0 / 3) + np.eye(4) * (4.0 / 3)
    shifted = etf + 5.0
    assert collapse.angular_collapse(shifted, S, centred=True, global_mean=np.full(6, 5.0))[0] == pytest.approx(
        0.0, abs=1e-12)
    assert collapse.angular_collapse(shifted, S)[0] > 0.1  # raw means of a shifted ETF are not an ETF


def test_cone_radius_2d_known_angles():
    # Class 0 around +x at ±10°, class 1 around +y at ±30°: angles to own mean [10, 10, 30, 30].
    def pair(direction_deg, half_angle_deg, length):
        angles = np.radians([direction_deg - half_angle_deg, direction_deg + half_angle_deg])
        return length * np.stack([np.cos(angles), np.sin(angles)], axis=1)

    H = np.vstack([pair(0, 10, 1.0), pair(90, 30, 4.0)])
    labels = np.array([0, 0, 1, 1])
    mean_deg, p90_deg = collapse.cone_radius(H, labels, collapse.class_means(H, labels, 2))
    assert mean_deg == pytest.approx(20.0)
    assert p90_deg == pytest.approx(30.0)


def test_cone_radius_3d_features_on_a_circle_around_the_mean():
    polar = np.radians(25.0)
    azimuths = np.radians([0.0, 120.0, 240.0])
    H = np.stack([np.sin(polar) * np.cos(azimuths), np.sin(polar) * np.sin(azimuths),
                  np.full(3, np.cos(polar))], axis=1)
    labels = np.zeros(3, dtype=int)
    means = collapse.class_means(H, labels, 1)
    assert means[0, :2] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert collapse.cone_radius(H, labels, means) == pytest.approx((25.0, 25.0))


def test_empty_class_is_an_error():
    with pytest.raises(ValueError, match="without samples"):
        collapse.class_means(np.zeros((3, 2)), np.array([0, 0, 2]), 3)


def test_report_keys_and_plain_floats(collapsed):
    H, labels, means, offset, K = collapsed
    centred = means - offset
    S = np.full((K, K), -1.0 / (K - 1)) + np.eye(K) * (K / (K - 1))
    W = 2 * centred
    report = collapse.collapse_report(H, labels, W, labels, bias=-W @ offset, S=S, angular_centred=True)
    expected = {"nc1", "nc2_equinorm_means", "nc2_equinorm_classifier", "nc2_equiangular_std_means",
                "nc2_maxangle_means", "nc2_equiangular_std_classifier", "nc2_maxangle_classifier",
                "nc3_self_duality", "nc4_ncc_mismatch", "cone_angle_mean_deg", "cone_angle_p90_deg",
                "angular_collapse_mean", "angular_collapse_std", "bias_collapse"}
    assert set(report) == expected
    assert all(type(value) is float for value in report.values())
    json.dumps(report)
    for key in expected - {"cone_angle_mean_deg", "cone_angle_p90_deg"}:
        assert report[key] == pytest.approx(0.0, abs=1e-9), key
    assert report["cone_angle_mean_deg"] == pytest.approx(0.0, abs=1e-5)


def test_report_leaves_float64_features_untouched(collapsed):
    H, labels, means, offset, _ = collapsed
    before = H.copy()
    collapse.collapse_report(H, labels, means - offset, labels)
    np.testing.assert_array_equal(H, before)


def test_report_without_optional_inputs_has_core_keys_only(collapsed):
    H, labels, means, offset, _ = collapsed
    report = collapse.collapse_report(H, labels, means - offset, labels)
    assert "angular_collapse_mean" not in report and "bias_collapse" not in report
    assert len(report) == 11


# ---- Gram form (K×K cosines, chunked float32/float64 passes) against brute-force pairwise definitions ----

def pairwise_cosines(vectors):
    """cos(v_i, v_j) for i < j, one pair at a time, in np.triu_indices order."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.array([unit[i] @ unit[j] for i in range(len(unit)) for j in range(i + 1, len(unit))])


def brute_force_nearest(H, means):
    return np.array([np.argmin([np.sum((h - mu) ** 2) for mu in means]) for h in np.asarray(H, dtype=np.float64)])


def brute_force_angles(H, labels, means):
    H = np.asarray(H, dtype=np.float64)
    out = []
    for h, mu in zip(H, means[labels]):
        norm = np.linalg.norm(h)
        cosine = h @ mu / (norm * np.linalg.norm(mu)) if norm > 0 else 0.0
        out.append(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))
    return np.array(out)


@pytest.fixture
def random_problem():
    """Unbalanced labels, non-centred features, float32 as the trainer passes them; 53 rows, chunks of 7 in tests."""
    rng = np.random.default_rng(5)
    K, d = 6, 9
    labels = np.concatenate([np.arange(K), rng.integers(0, K, 47)])
    H = ((rng.normal(size=(K, d)) * 2 + 1.0)[labels] + rng.normal(size=(len(labels), d))).astype(np.float32)
    return H, labels, K


@pytest.mark.parametrize("K, d", [(7, 5), (5, 9), (2, 3)])
def test_upper_triangle_cosines_match_pairwise(K, d):
    vectors = np.random.default_rng(K).normal(size=(K, d)) * np.arange(1, K + 1)[:, None]
    np.testing.assert_allclose(collapse._upper_triangle_cosines(vectors), pairwise_cosines(vectors),
                               rtol=0, atol=1e-14)


@pytest.mark.parametrize("K, d", [(7, 5), (5, 9)])
def test_equiangularity_matches_pairwise(K, d):
    vectors = np.random.default_rng(K + d).normal(size=(K, d)) + 0.5
    cosines = pairwise_cosines(vectors)
    expected = (cosines.std(), np.mean(np.abs(cosines + 1.0 / (K - 1))))
    assert collapse.equiangularity(vectors) == pytest.approx(expected, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("centred, global_mean", [(False, None), (True, None), (True, np.full(4, 0.3))])
def test_angular_collapse_matches_pairwise(centred, global_mean):
    rng = np.random.default_rng(3)
    means = rng.normal(size=(6, 4)) + 1.0
    S = np.corrcoef(rng.normal(size=(6, 10)))
    shifted = means - (means.mean(axis=0) if global_mean is None else global_mean) if centred else means
    i, j = np.triu_indices(6, k=1)
    difference = pairwise_cosines(shifted) - S[i, j]
    assert collapse.angular_collapse(means, S, centred=centred, global_mean=global_mean) == pytest.approx(
        (np.mean(np.abs(difference)), difference.std()), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("K, d, scatter_form", [(6, 9, True), (12, 5, True), (4, 8, False), (3, 20, False)])
def test_nc1_both_forms_match_definition_across_chunks(monkeypatch, K, d, scatter_form):
    monkeypatch.setattr(collapse, "_CHUNK_ROWS", 7)
    rng = np.random.default_rng(K * d)
    labels = np.concatenate([np.arange(K), rng.integers(0, K, 60)])
    H = ((rng.normal(size=(K, d)) * 3 + 2.0)[labels] + rng.normal(size=(len(labels), d))).astype(np.float32)
    means, _, global_mean = collapse.class_statistics(H, labels, K)
    assert (collapse._nc1_plan(means, means - global_mean, 1e-10).means_projected is None) == scatter_form
    assert collapse.nc1(H, labels, K) == pytest.approx(
        brute_force_nc1(H.astype(np.float64), labels, K), rel=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nearest_class_mean_matches_brute_force_across_chunks(monkeypatch, random_problem, dtype):
    monkeypatch.setattr(collapse, "_CHUNK_ROWS", 7)
    H, labels, K = random_problem
    H = H.astype(dtype)
    means = collapse.class_means(H, labels, K)
    np.testing.assert_array_equal(collapse.nearest_class_mean(H, means), brute_force_nearest(H, means))


def test_near_ties_fall_back_to_float64(monkeypatch):
    """Rows a hair (1e-7 relative) off the bisector of two means: float32 cannot settle them, float64 must."""
    monkeypatch.setattr(collapse, "_CHUNK_ROWS", 7)
    rng = np.random.default_rng(8)
    means = rng.normal(size=(5, 16)) + 3.0
    midpoint = (means[0] + means[1]) / 2
    toward = (means[1] - means[0]) * 1e-7
    H = np.vstack([midpoint + toward, midpoint - toward, rng.normal(size=(10, 16)) + 3.0, means[2:4]])
    tables = collapse._nearest_mean_tables(means)
    _, certain = collapse._nearest_float32(tables, H.astype(np.float32), np.linalg.norm(H, axis=1))
    assert not certain[:2].any() and certain[-2:].all()
    nearest = collapse.nearest_class_mean(H, means)
    assert nearest[:2].tolist() == [1, 0]
    np.testing.assert_array_equal(nearest, brute_force_nearest(H, means))


def test_feature_to_mean_angles_match_brute_force_across_chunks(monkeypatch, random_problem):
    monkeypatch.setattr(collapse, "_CHUNK_ROWS", 7)
    H, labels, K = random_problem
    H = H.copy()
    H[10] = 0.0  # zero-length feature → 90°
    means = collapse.class_means(H, labels, K)
    angles = collapse.feature_to_mean_angles(H, labels, means)
    np.testing.assert_allclose(angles, brute_force_angles(H, labels, means), rtol=1e-12, atol=1e-9)
    assert angles[10] == 90.0


def test_report_matches_brute_force_across_chunks(monkeypatch, random_problem):
    monkeypatch.setattr(collapse, "_CHUNK_ROWS", 7)
    H, labels, K = random_problem
    rng = np.random.default_rng(9)
    W, bias, S = rng.normal(size=(K, H.shape[1])), rng.normal(size=K), np.corrcoef(rng.normal(size=(K, 12)))
    predictions = np.where(rng.random(len(labels)) < 0.7, labels, rng.integers(0, K, len(labels)))
    report = collapse.collapse_report(H, labels, W, predictions, bias=bias, S=S)

    H64 = H.astype(np.float64)
    means = np.stack([H64[labels == k].mean(axis=0) for k in range(K)])
    centred = means - H64.mean(axis=0)
    i, j = np.triu_indices(K, k=1)
    angles = brute_force_angles(H64, labels, means)
    expected = {
        "nc1": brute_force_nc1(H64, labels, K),
        "nc2_equiangular_std_means": pairwise_cosines(centred).std(),
        "nc2_maxangle_means": np.mean(np.abs(pairwise_cosines(centred) + 1.0 / (K - 1))),
        "nc2_equiangular_std_classifier": pairwise_cosines(W).std(),
        "nc2_maxangle_classifier": np.mean(np.abs(pairwise_cosines(W) + 1.0 / (K - 1))),
        "nc4_ncc_mismatch": np.mean(brute_force_nearest(H64, means) != predictions),
        "cone_angle_mean_deg": angles.mean(),
        "cone_angle_p90_deg": np.percentile(angles, 90),
        "angular_collapse_mean": np.mean(np.abs(pairwise_cosines(means) - S[i, j])),
        "angular_collapse_std": (pairwise_cosines(means) - S[i, j]).std(),
        "bias_collapse": np.linalg.norm(W @ H64.mean(axis=0) + bias),
    }
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
    assert report == pytest.approx(collapse.collapse_report(H64, labels, W, predictions, bias=bias, S=S),
                                   rel=1e-12, abs=1e-14)  # float32 input = its float64 copy


@pytest.mark.slow
def test_benchmark_small_runs_and_prints_both_forms():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_collapse.py"
    done = subprocess.run([sys.executable, str(script), "--small"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("(")]
    for case in ("equiangularity", "collapse_report"):
        measured = {row[row.index(form)]: float(row[row.index(form) + 1])
                    for row in rows if row[1] == case for form in ("pairwise", "gram") if form in row}
        assert set(measured) == {"pairwise", "gram"}, done.stdout  # both forms measured, none skipped
