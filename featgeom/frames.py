"""Fixed classifier frames: the hierarchy-aware frame (HAFrame) and the simplex ETF.

HAFrame follows the official code (ltong1130ztr/HAFrame:HAFrame/solve_HAF.py) step by step:
  S = (1 - s_min) exp(-gamma D / max D) + s_min,
  s_min = the most negative point of a 100-point grid on [-1/(K-1), -1] for which S is PSD,
  W = (Q diag(sqrt(w)) V^T)^T with S = V diag(w) V^T and Q a random orthonormal num_features x K.
The same seed need not give the official W: on CIFAR-100 the official script draws from numpy's global RNG
(train_val_split's two np.random.shuffle) before it solves the frame, and S has repeated eigenvalues, whose
eigenvectors eigh may return in another basis (found on tiered). Every such W is a valid frame (W W^T = S).
numpy only.
"""
from __future__ import annotations

import numpy as np

# Eigenvalues this small are treated as exact zeros, as in the official solver.
EIGENVALUE_TOLERANCE = 1e-6


def _check_distance_matrix(D) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1] or D.shape[0] < 2:
        raise ValueError(f"HAFrame needs a square K x K distance matrix with K >= 2, got shape {D.shape}")
    if D.max() <= 0:
        raise ValueError("HAFrame needs a distance matrix with a positive maximum (all classes are at distance 0)")
    return D


def haframe_similarity(D, gamma: float, s_min: float) -> np.ndarray:
    """Target cosine similarities: (1 - s_min) exp(-gamma D / D.max()) + s_min (diagonal 1 since D_ii = 0)."""
    D = _check_distance_matrix(D)
    if s_min < -1:
        raise ValueError(f"s_min must be >= -1, got {s_min}")
    S = (1.0 - s_min) * np.exp(-gamma * D / D.max()) + s_min
    np.fill_diagonal(S, 1.0)  # already 1 for a valid D; makes it exact for any zero-diagonal input
    return S


def _clipped_eigvals(S) -> np.ndarray:
    w = np.linalg.eigvalsh(S)
    w[np.abs(w) < EIGENVALUE_TOLERANCE] = 0.0
    return w


def find_s_min(D, gamma: float, num_grid: int = 100) -> float:
    """Most negative grid value s in linspace(-1/(K-1), -1, num_grid) whose S(D, gamma, s) is PSD.

    Every grid point is tried, as in the official solver. Unlike it (which silently returns inf),
    raise if no grid point gives a PSD matrix.
    """
    D = _check_distance_matrix(D)
    k = D.shape[0]
    grid = np.linspace(-1.0 / (k - 1), -1.0, num_grid)
    psd = [s for s in grid if _clipped_eigvals(haframe_similarity(D, gamma, s)).min() >= 0]
    if not psd:
        raise ValueError(
            f"no s_min in [-1/(K-1), -1] (K={k}, gamma={gamma}, {num_grid} points) makes the HAFrame "
            "similarity matrix positive semi-definite; check the distance matrix or try another gamma"
        )
    return float(min(psd))


def haframe_weights(S, num_features: int, seed: int) -> np.ndarray:
    """Unit-norm class vectors W [K, num_features] (float64) with W W^T = S.

    Q comes from reduced QR of sqrt(2/K) * randn(num_features, K) drawn from RandomState(seed), as the official
    np.random.seed(seed); ...; np.random.randn(...) where nothing drew from numpy in between (not on CIFAR-100).
    """
    S = np.asarray(S, dtype=np.float64)
    k = S.shape[0]
    if num_features < k:
        raise ValueError(
            f"HAFrame needs num_features >= K: got {num_features} features for {k} classes "
            "(the official code uses num_features = K)"
        )
    w, v = np.linalg.eigh(S)
    w[np.abs(w) < EIGENVALUE_TOLERANCE] = 0.0
    if w.min() < 0:
        raise ValueError(f"the similarity matrix is not positive semi-definite (min eigenvalue {w.min():.3g})")
    tp = np.sqrt(2.0 / k) * np.random.RandomState(seed).randn(num_features, k)
    q, _ = np.linalg.qr(tp)  # reduced: num_features x K, orthonormal columns
    return (q @ np.diag(np.sqrt(w)) @ v.T).T


def simplex_etf(num_classes: int, dim: int, seed: int) -> np.ndarray:
    """K unit vectors in R^dim with pairwise cosine -1/(K-1) (the simplex equiangular tight frame).

    The ETF spans a (K-1)-dim subspace: the rows of an orthonormal basis of {x in R^K: sum x = 0},
    scaled, embedded into R^dim by a seeded random orthonormal (K-1) x dim map.
    """
    k = num_classes
    if k < 2:
        raise ValueError(f"a simplex ETF needs at least 2 classes, got {k}")
    if dim < k - 1:
        raise ValueError(
            f"a {k}-class simplex ETF needs at least {k - 1} feature dimensions, got {dim} "
            f"(e.g. ResNet-32's 64-d features cannot hold a 100-class ETF): widen the network or add a "
            "projection (model.projection_dim)"
        )
    # Centred identity I - 11^T/K has rank K-1; its eigenvectors with eigenvalue 1 span 1-perp.
    centred = np.eye(k) - np.full((k, k), 1.0 / k)
    _, vecs = np.linalg.eigh(centred)
    basis = vecs[:, 1:]  # K x (K-1); eigenvalue 0 (the ones vector) sorts first
    coords = basis * np.sqrt(k / (k - 1.0))  # rows now have unit norm
    embed, _ = np.linalg.qr(np.random.RandomState(seed).randn(dim, k - 1))  # dim x (K-1), orthonormal columns
    return coords @ embed.T
