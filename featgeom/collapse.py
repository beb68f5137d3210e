"""Neural-collapse metrics (Papyan, Han & Donoho, PNAS 2020) plus HAFrame's angular collapse and MSC's cone radius.

Conventions (see /work/shared/reference/msc.md §6 and haframe.md §6):
* H [N, d] penultimate features, labels [N] in 0..K-1, W [K, d] classifier rows, predictions [N] network argmax.
* The global mean is the **sample mean** of H (sample-weighted, as tding1/Neural-Collapse). rhubarbwu/neural-collapse
  defaults to the unweighted mean of class means instead; the two differ on long-tail data.
* Standard deviations use ddof=0 (numpy), not torch's unbiased default.
* Everything is accumulated in float64 over row chunks, so N = 50k, d = 2048 never builds a d×d or an N×d
  float64 matrix (collapse_report on 50k × 2048, K = 100: ~4 s on 2 CPU cores).

Numpy/scipy only: these run in rules that do not train.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

_CHUNK_ROWS = 8192  # 8192 × 2048 float64 = 128 MB per chunk at the largest feature size we use


def _row_chunks(H, rows=None):
    """Yield (row slice, float64 copy of those rows): bounded memory, full precision."""
    rows = rows or _CHUNK_ROWS  # read at call time so tests can shrink it to exercise chunk boundaries
    for start in range(0, len(H), rows):
        rows_here = slice(start, min(start + rows, len(H)))
        yield rows_here, np.asarray(H[rows_here], dtype=np.float64)


def _class_sums_and_counts(H, labels, K):
    labels = np.asarray(labels)
    sums = np.zeros((K, H.shape[1]))
    for rows, block in _row_chunks(H):
        chunk_labels = labels[rows]
        # A sparse one-hot [K, n] product sums rows per class far faster than np.add.at.
        one_hot = sp.csr_matrix((np.ones(len(chunk_labels)), (chunk_labels, np.arange(len(chunk_labels)))),
                                shape=(K, len(chunk_labels)))
        sums += one_hot @ block
    counts = np.bincount(labels, minlength=K).astype(np.float64)
    return sums, counts


def class_statistics(H, labels, K):
    """Return (class means [K, d], counts [K], global mean [d]), all float64.

    The global mean is the sample mean of H (= count-weighted mean of the class means). The other common convention,
    the unweighted mean of class means, equals it only when classes are balanced.
    """
    sums, counts = _class_sums_and_counts(H, labels, K)
    if np.any(counts == 0):
        raise ValueError(f"classes without samples: {np.flatnonzero(counts == 0).tolist()}")
    means = sums / counts[:, None]
    global_mean = sums.sum(axis=0) / counts.sum()
    return means, counts, global_mean


def class_means(H, labels, K):
    """Class means [K, d] (float64). See `class_statistics` for the global-mean convention (sample-weighted)."""
    return class_statistics(H, labels, K)[0]


def _between_class_gram_pinv(centred_means, rtol):
    """Pseudo-inverse of G = M̃ M̃ᵀ [K, K].

    Sample-weighted centring makes Σ n_c (μ_c − μ_G) = 0, so G has rank ≤ K−1; its null eigenvalue comes out at
    ~1e-16 of the largest. rtol = 1e-10 on eigenvalues (1e-5 on singular values) drops that null direction while
    keeping any real between-class direction, i.e. the rank-(K−1) pseudo-inverse of Papyan's code.
    """
    gram = centred_means @ centred_means.T
    return np.linalg.pinv(gram, rtol=rtol, hermitian=True)


def nc1(H, labels, K, rtol=1e-10):
    """NC1 = tr(Σ_W Σ_B⁺) / K.

    Σ_W = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ, Σ_B = (1/K) M̃ᵀM̃ with M̃ = [μ_c − μ_G] as K×d rows.
    Since Σ_B⁺ = K · M̃⁺M̃⁺ᵀ and M̃⁺ = M̃ᵀ(M̃M̃ᵀ)⁺, NC1 = (1/N) ‖Z M̃ᵀ G⁺‖²_F with Z the within-class residuals and
    G = M̃M̃ᵀ: only N×K and K×K products, never a d×d matrix. Z M̃ᵀ = H M̃ᵀ − (M M̃ᵀ)[y] avoids forming Z.
    """
    labels = np.asarray(labels)
    means, counts, global_mean = class_statistics(H, labels, K)
    centred_means = means - global_mean
    gram_pinv = _between_class_gram_pinv(centred_means, rtol)
    means_on_centred = means @ centred_means.T  # [K, K]: row c = μ_c · M̃ᵀ
    total = 0.0
    for rows, block in _row_chunks(H):
        residual_on_centred = block @ centred_means.T - means_on_centred[labels[rows]]
        total += np.sum((residual_on_centred @ gram_pinv) ** 2)
    return total / counts.sum()


def equinorm(vectors):
    """std / mean of the row norms (0 when all rows have the same length)."""
    norms = np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1)
    return float(norms.std() / norms.mean())


def nc2_equinorm_means(centred_means):
    return equinorm(centred_means)


def nc2_equinorm_classifier(W):
    return equinorm(W)


def _upper_triangle_cosines(vectors):
    """cos(v_i, v_j) for all i < j, as a flat vector."""
    vectors = np.asarray(vectors, dtype=np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    i, j = np.triu_indices(len(unit), k=1)
    return np.einsum("pd,pd->p", unit[i], unit[j])


def equiangularity(vectors):
    """(std of pairwise cosines over i<j, mean over i<j of |cos + 1/(K−1)|).

    The first is Papyan's equiangularity, the second the "maximal-angle" version; both are 0 for a simplex ETF.
    """
    cosines = _upper_triangle_cosines(vectors)
    K = len(vectors)
    return float(cosines.std()), float(np.mean(np.abs(cosines + 1.0 / (K - 1))))


def nc3_self_duality(W, M):
    """‖W/‖W‖_F − M/‖M‖_F‖²_F (squared, as Papyan's and HAFrame's code), M = K×d rows, usually centred means."""
    W = np.asarray(W, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    return float(np.sum((W / np.linalg.norm(W) - M / np.linalg.norm(M)) ** 2))


def nearest_class_mean(H, means):
    """Index of the nearest (Euclidean) class mean for every row of H; means are used as given (un-centred)."""
    means = np.asarray(means, dtype=np.float64)
    half_sq_norms = 0.5 * np.sum(means**2, axis=1)
    nearest = np.empty(len(H), dtype=np.int64)
    for rows, block in _row_chunks(H):
        # argmin ‖h − μ‖² = argmax (h·μ − ‖μ‖²/2); ‖h‖² is the same for every class.
        nearest[rows] = np.argmax(block @ means.T - half_sq_norms, axis=1)
    return nearest


def nc4_ncc_mismatch(H, means, predictions):
    """Fraction of samples whose nearest-class-centre prediction differs from the network's prediction."""
    return float(np.mean(nearest_class_mean(H, means) != np.asarray(predictions)))


def angular_collapse(means, S, centred=False, global_mean=None):
    """HAFrame's angular collapse: (mean over i<j of |cos(μ_i, μ_j) − S_ij|, std over i<j of cos(μ_i, μ_j) − S_ij).

    The std is of the *signed* difference, as HAFrame's `stats_between_actual_cosine_sim_and_ideal_cosine_sim`
    (haframe.md §6). HAFrame's plot uses raw means for HAFrame models (centred=False, the default) and centred means
    for the ETF/CE model; with centred=True the means are centred on `global_mean`, or, if that is not given, on the
    unweighted mean of the class means.
    """
    means = np.asarray(means, dtype=np.float64)
    if centred:
        means = means - (means.mean(axis=0) if global_mean is None else np.asarray(global_mean))
    i, j = np.triu_indices(len(means), k=1)
    difference = _upper_triangle_cosines(means) - np.asarray(S, dtype=np.float64)[i, j]
    return float(np.mean(np.abs(difference))), float(difference.std())


def feature_to_mean_angles(H, labels, means):
    """Angle in degrees between each feature and its own class mean, both as given (cone apex at the origin).

    A zero-length feature has no direction and is counted as 90°.
    """
    labels = np.asarray(labels)
    unit_means = np.asarray(means, dtype=np.float64)
    unit_means = unit_means / np.linalg.norm(unit_means, axis=1, keepdims=True)
    angles = np.empty(len(H))
    for rows, block in _row_chunks(H):
        norms = np.linalg.norm(block, axis=1)
        dots = np.einsum("nd,nd->n", block, unit_means[labels[rows]])
        cosines = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
        angles[rows] = np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))
    return angles


def cone_radius(H, labels, means):
    """MSC cone radius: (mean, 90th percentile) of the feature-to-own-class-mean angle, in degrees."""
    angles = feature_to_mean_angles(H, labels, means)
    return float(angles.mean()), float(np.percentile(angles, 90))


def bias_collapse(W, bias, global_mean):
    """‖W μ_G + b‖ (tding1/Neural-Collapse): 0 when the bias cancels the global-mean logit."""
    return float(np.linalg.norm(np.asarray(W, dtype=np.float64) @ global_mean + np.asarray(bias)))


def collapse_report(H, labels, W, predictions, bias=None, S=None, angular_centred=False):
    """All collapse metrics as a flat dict of plain floats.

    Feature-side NC2/NC3 use means centred on the sample mean; NC4 and the cone use raw means; angular collapse
    (only when S is given) uses raw means unless angular_centred. `bias_collapse` is added when a bias is given.
    With a fixed ETF/HAFrame classifier the classifier-side NC2 values are ~0 by construction.
    """
    W = np.asarray(W, dtype=np.float64)
    K = W.shape[0]
    means, _, global_mean = class_statistics(H, labels, K)
    centred_means = means - global_mean
    std_means, maxangle_means = equiangularity(centred_means)
    std_classifier, maxangle_classifier = equiangularity(W)
    cone_mean, cone_p90 = cone_radius(H, labels, means)
    report = {
        "nc1": nc1(H, labels, K),
        "nc2_equinorm_means": nc2_equinorm_means(centred_means),
        "nc2_equinorm_classifier": nc2_equinorm_classifier(W),
        "nc2_equiangular_std_means": std_means,
        "nc2_maxangle_means": maxangle_means,
        "nc2_equiangular_std_classifier": std_classifier,
        "nc2_maxangle_classifier": maxangle_classifier,
        "nc3_self_duality": nc3_self_duality(W, centred_means),
        "nc4_ncc_mismatch": nc4_ncc_mismatch(H, means, predictions),
        "cone_angle_mean_deg": cone_mean,
        "cone_angle_p90_deg": cone_p90,
    }
    if S is not None:
        mean_gap, std_gap = angular_collapse(means, S, centred=angular_centred, global_mean=global_mean)
        report.update(angular_collapse_mean=mean_gap, angular_collapse_std=std_gap)
    if bias is not None:
        report["bias_collapse"] = bias_collapse(W, bias, global_mean)
    return {key: float(value) for key, value in report.items()}
