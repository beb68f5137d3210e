"""featgeom.frames: HAFrame s_min / weights as in the official solver, and the simplex ETF."""
from pathlib import Path

import numpy as np
import pytest

from featgeom.frames import find_s_min, haframe_similarity, haframe_weights, simplex_etf
from featgeom.hierarchy import read_distance_csv

DATA = Path(__file__).parent / "data"


def published_D(dataset):
    return read_distance_csv(DATA / f"published_{dataset}_leaf_distances.csv")[1]


@pytest.mark.parametrize("dataset, gamma, expected", [("cifar100", 2.0, -0.300071), ("fgvc_aircraft", 1.0, -0.610040)])
def test_s_min_matches_official_grid_search(dataset, gamma, expected):
    assert find_s_min(published_D(dataset), gamma) == pytest.approx(expected, abs=1e-6)


def test_s_min_is_the_last_psd_grid_point():
    D = published_D("cifar100")
    k = D.shape[0]
    grid = np.linspace(-1 / (k - 1), -1, 100)
    s_min = find_s_min(D, 2.0)
    next_point = grid[np.argmin(np.abs(grid - s_min)) + 1]
    assert np.linalg.eigvalsh(haframe_similarity(D, 2.0, s_min)).min() >= -1e-6
    assert np.linalg.eigvalsh(haframe_similarity(D, 2.0, next_point)).min() < 0


def test_similarity_formula():
    D = np.array([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
    S = haframe_similarity(D, gamma=2.0, s_min=-0.5)
    assert S[0, 1] == pytest.approx(1.5 * np.exp(-1.0) - 0.5)
    assert S[0, 2] == pytest.approx(1.5 * np.exp(-2.0) - 0.5)
    np.testing.assert_array_equal(np.diag(S), 1.0)


@pytest.mark.parametrize("dataset, gamma", [("cifar100", 2.0), ("fgvc_aircraft", 1.0)])
def test_weights_factorise_similarity(dataset, gamma):
    D = published_D(dataset)
    S = haframe_similarity(D, gamma, find_s_min(D, gamma))
    W = haframe_weights(S, num_features=D.shape[0], seed=0)
    assert W.shape == (100, 100) and W.dtype == np.float64
    np.testing.assert_allclose(W @ W.T, S, atol=1e-10, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 1.0, atol=1e-10)


def test_weights_seeded_like_global_numpy_rng():
    # The official code draws from np.random after np.random.seed(seed); RandomState(seed) is the same stream.
    D = published_D("fgvc_aircraft")
    S = haframe_similarity(D, 1.0, find_s_min(D, 1.0))
    np.random.seed(3)
    tp = np.sqrt(2.0 / 100) * np.random.randn(120, 100)
    q, _ = np.linalg.qr(tp)
    w, v = np.linalg.eigh(S)
    w[np.abs(w) < 1e-6] = 0
    official = (q @ np.sqrt(np.diag(w)) @ v.T).T
    np.testing.assert_array_equal(haframe_weights(S, 120, seed=3), official)
    assert not np.allclose(haframe_weights(S, 120, seed=3), haframe_weights(S, 120, seed=4))


def test_weights_need_num_features_at_least_k():
    S = np.eye(5)
    with pytest.raises(ValueError, match="num_features >= K"):
        haframe_weights(S, num_features=4, seed=0)


def test_weights_reject_non_psd_similarity():
    S = np.full((3, 3), -0.9)
    np.fill_diagonal(S, 1.0)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        haframe_weights(S, num_features=3, seed=0)


def test_no_psd_grid_point_raises():
    # Classes 0-1 and 1-2 are near-identical but 0-2 are far apart: the implied cosines
    # (0.93, 0.93, -0.49 at s = -1/2) admit no Gram matrix, and a more negative s only makes it worse.
    D = np.array([[0, 1, 100], [1, 0, 1], [100, 1, 0]])
    with pytest.raises(ValueError, match="positive semi-definite"):
        find_s_min(D, gamma=5.0)


def test_all_grid_points_psd_gives_minus_one():
    # K=4 equidistant classes: every off-diagonal cosine is (1 - s) e^-1 + s >= 2/e - 1 > -1/3,
    # so S is PSD on the whole grid and the most negative point, -1, is returned.
    D = 1 - np.eye(4, dtype=np.int64)
    assert find_s_min(D, gamma=1.0) == -1.0


@pytest.mark.parametrize("k, dim", [(10, 9), (10, 10), (10, 64), (100, 99), (2, 1)])
def test_simplex_etf_geometry(k, dim):
    E = simplex_etf(k, dim, seed=0)
    assert E.shape == (k, dim)
    G = E @ E.T
    np.testing.assert_allclose(np.diag(G), 1.0, atol=1e-12)
    np.testing.assert_allclose(G[~np.eye(k, dtype=bool)], -1.0 / (k - 1), atol=1e-12)
    np.testing.assert_allclose(E.sum(axis=0), 0.0, atol=1e-10)


def test_simplex_etf_seed_rotates():
    assert not np.allclose(simplex_etf(10, 20, seed=0), simplex_etf(10, 20, seed=1))
    np.testing.assert_array_equal(simplex_etf(10, 20, seed=0), simplex_etf(10, 20, seed=0))


def test_simplex_etf_too_few_dimensions():
    with pytest.raises(ValueError, match=r"100-class.*99.*got 64.*projection"):
        simplex_etf(100, 64, seed=0)
