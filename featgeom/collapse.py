"""Neural-collapse metrics (Papyan, Han & Donoho, PNAS 2020) plus HAFrame's angular collapse and MSC's cone radius.

Conventions (Papyan et al.; HAFrame `HAFrame/neural_collapse.py`; README "Neural-collapse conventions"):
* H [N, d] penultimate features, labels [N] in 0..K-1, W [K, d] classifier rows, predictions [N] network argmax.
* The global mean is the **sample mean** of H (sample-weighted, as tding1/Neural-Collapse). rhubarbwu/neural-collapse
  defaults to the unweighted mean of class means instead; the two differ on long-tail data.
* Standard deviations use ddof=0 (numpy), not torch's unbiased default.

Memory and time (iNaturalist19 size: N = 187k, d = K = 1010):
* H may be float32 (the trainer passes it so); rows are converted to float64 one chunk at a time, so no N×d float64
  copy exists. Per-class-pair quantities come from the K×K cosine Gram matrix U Uᵀ, never from [pairs, d] arrays.
* The features are read twice: class sums, then one pass (`collapse_report`) that feeds NC1, NC4 and the cone. Its
  two big products are NC1's within-class scatter in the smaller of the d- and K-spaces (d×d here, a BLAS syrk:
  N·d²/2 multiply-adds in float64) and NC4's nearest-mean scores, computed in float32 and certified per row by a
  rounding-error bound (rows the bound cannot settle are redone in float64), so NC4 equals the float64 argmax.
  Every result equals the former pairwise / float64 code to ~1e-12 relative. Benchmark: benchmarks/bench_collapse.py.

Numpy/scipy only: these run in rules that do not train.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

_CHUNK_ROWS = 8192  # 8192 × 2048 float64 = 128 MB per chunk at the largest feature size we use
_FLOAT32_UNIT_ROUNDOFF = 2.0**-24


def _row_chunks(H, rows=None):
    """Yield (row slice, float64 copy of those rows): bounded memory, full precision."""
    rows = rows or _CHUNK_ROWS  # read at call time so tests can shrink it to exercise chunk boundaries
    for start in range(0, len(H), rows):
        rows_here = slice(start, min(start + rows, len(H)))
        # np.array copies even float64 rows: the NC1 kernel overwrites the chunk, which must not be the caller's H.
        yield rows_here, np.array(H[rows_here], dtype=np.float64)


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


def _nc1_pseudo_inverse(centred_means, rtol):
    """M̃⁺ = M̃ᵀ G⁺ [d, K] (G = M̃ M̃ᵀ), so that NC1 = (1/N) Σ_i ‖M̃⁺ᵀ z_i‖² with z_i = h_i − μ_{y_i}."""
    return centred_means.T @ _between_class_gram_pinv(centred_means, rtol)


class _Nc1Plan(NamedTuple):
    """How the NC1 pass accumulates Σ_i ‖Pᵀ z_i‖² (P = M̃⁺ [d, K]), in whichever space costs fewer flops.

    scatter form (d < 2K): accumulate S = Σ_i z_i z_iᵀ [d, d] (syrk, N·d²/2) and finish with tr(Pᵀ S P).
    projection form (d ≥ 2K): sum ‖Pᵀ z_i‖² directly (N·d·K), Pᵀ z_i = Pᵀ h_i − (Pᵀ μ)_{y_i}, never forming Z.
    """
    pseudo_inverse: np.ndarray  # P [d, K]
    means: np.ndarray  # raw class means [K, d]
    means_projected: np.ndarray | None  # M P [K, K] in the projection form, None in the scatter form


def _nc1_plan(means, centred_means, rtol):
    pseudo_inverse = _nc1_pseudo_inverse(centred_means, rtol)
    d, K = pseudo_inverse.shape
    return _Nc1Plan(pseudo_inverse, means, None if d < 2 * K else means @ pseudo_inverse)


def _nc1_chunk(plan, block, chunk_labels):
    """This chunk's share: S_chunk [d, d] (scatter form) or its Σ ‖Pᵀ z_i‖² (projection form). Overwrites block."""
    if plan.means_projected is None:
        residual = np.subtract(block, plan.means[chunk_labels], out=block)
        return residual.T @ residual  # numpy runs `a.T @ a` as a symmetric rank-k update
    return float(np.sum((block @ plan.pseudo_inverse - plan.means_projected[chunk_labels]) ** 2))


def _nc1_finish(plan, accumulated, n_samples):
    if plan.means_projected is None:
        return float(np.sum(plan.pseudo_inverse * (accumulated @ plan.pseudo_inverse))) / n_samples
    return float(accumulated) / n_samples


def nc1(H, labels, K, rtol=1e-10):
    """NC1 = tr(Σ_W Σ_B⁺) / K.

    Σ_W = (1/N) Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ, Σ_B = (1/K) M̃ᵀM̃ with M̃ = [μ_c − μ_G] as K×d rows.
    Since Σ_B⁺ = K · M̃⁺M̃⁺ᵀ and M̃⁺ = M̃ᵀ(M̃M̃ᵀ)⁺, NC1 = (1/N) Σ_i ‖M̃⁺ᵀ z_i‖² with z_i the within-class residuals:
    only K×K pseudo-inverses; the residuals enter through a scatter matrix no larger than 2K×2K or through N×K
    projections (see `_Nc1Plan`), never an N×d float64 array or the d×d Σ_B.
    """
    labels = np.asarray(labels)
    means, counts, global_mean = class_statistics(H, labels, K)
    plan = _nc1_plan(means, means - global_mean, rtol)
    accumulated = 0.0
    for rows, block in _row_chunks(H):
        accumulated = accumulated + _nc1_chunk(plan, block, labels[rows])
    return _nc1_finish(plan, accumulated, counts.sum())


def equinorm(vectors):
    """std / mean of the row norms (0 when all rows have the same length)."""
    norms = np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1)
    return float(norms.std() / norms.mean())


def nc2_equinorm_means(centred_means):
    return equinorm(centred_means)


def nc2_equinorm_classifier(W):
    return equinorm(W)


def _unit_rows(vectors):
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _upper_triangle(square):
    """Entries i < j of a K×K matrix as a flat vector, row by row (the order of np.triu_indices)."""
    return square[np.triu_indices(len(square), k=1)]


def _upper_triangle_cosines(vectors):
    """cos(v_i, v_j) for all i < j, as a flat vector: the upper triangle of the K×K Gram U Uᵀ of the unit rows.

    K×K memory (8 MB at K = 1010) instead of two [K(K−1)/2, d] gathers (8 GB at K = d = 1010).
    """
    unit = _unit_rows(vectors)
    return _upper_triangle(unit @ unit.T)


def equiangularity(vectors):
    """(std of pairwise cosines over i<j, mean over i<j of |cos + 1/(K−1)|).

    The first is Papyan's equiangularity, the second the "maximal-angle" version; both are 0 for a simplex ETF.
    """
    cosines = _upper_triangle_cosines(vectors)
    K = len(vectors)
    return float(cosines.std()), float(np.mean(np.abs(cosines + 1.0 / (K - 1))))


def nc3_self_duality(W, M):
    """‖W/‖W‖_F − M/‖M‖_F‖²_F (squared, as Papyan's and HAFrame's code), M = K×d rows: centred means (Papyan),
    or raw means for a fixed frame (HAFrame's `cls_rfeat_duality`)."""
    W = np.asarray(W, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    return float(np.sum((W / np.linalg.norm(W) - M / np.linalg.norm(M)) ** 2))


class _NearestMeanTables(NamedTuple):
    """Class means prepared for nearest-mean scores h·μ_c − ‖μ_c‖²/2, in float64 and float32."""
    means: np.ndarray
    half_sq_norms: np.ndarray
    means32: np.ndarray
    half_sq_norms32: np.ndarray
    largest_norm: float


def _nearest_mean_tables(means):
    means = np.asarray(means, dtype=np.float64)
    half_sq_norms = 0.5 * np.sum(means**2, axis=1)
    largest_norm = float(np.sqrt(2.0 * half_sq_norms.max()))
    return _NearestMeanTables(means, half_sq_norms, means.astype(np.float32), half_sq_norms.astype(np.float32),
                              largest_norm)


def _float32_score_error(row_norms, d, largest_norm):
    """Upper bound, per row, on |float32 score − exact score| for the scores h·μ_c − ‖μ_c‖²/2 of `_nearest_float32`.

    Rounding h and μ to float32 (unit roundoff u = 2⁻²⁴) moves h·μ by ≤ 2.01·u‖h‖‖μ‖; a float32 dot product of
    length d adds ≤ γ_d Σ|h||μ| ≤ 1.01·d·u‖h‖‖μ‖ (Higham, Accuracy and Stability, §3.1; d·u < 0.01); rounding ‖μ‖²/2
    and the subtraction add ≤ 1.01·u(‖h‖‖μ‖ + ‖μ‖²). 2(d + 4)·u(‖h‖ + m)·m, m = the largest ‖μ_c‖, covers all of it.
    """
    return 2.0 * (d + 4) * _FLOAT32_UNIT_ROUNDOFF * (row_norms + largest_norm) * largest_norm


def _nearest_float32(tables, block32, row_norms):
    """(argmax of the float32 scores, rows where that argmax is certain).

    A row is certain when its float32 top-two margin exceeds 3× the error bound: the exact margin then exceeds the
    bound, far above float64 rounding, so the float64 argmax (the definition) picks the same class.
    """
    scores = block32 @ tables.means32.T
    scores -= tables.half_sq_norms32
    best = np.argmax(scores, axis=1)
    rows = np.arange(len(best))
    top = scores[rows, best].astype(np.float64)
    scores[rows, best] = -np.inf
    runner_up = scores.max(axis=1)  # −inf when K = 1: always certain
    bound = _float32_score_error(row_norms, block32.shape[1], tables.largest_norm)
    certain = top - runner_up > 3.0 * bound
    return best, certain


def _nearest_float64(tables, block):
    # argmin ‖h − μ‖² = argmax (h·μ − ‖μ‖²/2); ‖h‖² is the same for every class.
    return np.argmax(block @ tables.means.T - tables.half_sq_norms, axis=1)


def _nearest_chunk(tables, block, block32, row_norms):
    """Nearest class mean of every row: float32 scores where the error bound settles it, float64 elsewhere."""
    if block.shape[1] * _FLOAT32_UNIT_ROUNDOFF >= 0.01:  # outside the bound's validity (d ≥ 167k): float64 only
        return _nearest_float64(tables, block)
    best, certain = _nearest_float32(tables, block32, row_norms)
    if not certain.all():
        unsure = np.flatnonzero(~certain)
        best[unsure] = _nearest_float64(tables, block[unsure])
    return best


def _row_norms(block):
    """‖h‖ per row, exactly as the cone angles have always used them (arccos near 0° amplifies any change)."""
    return np.linalg.norm(block, axis=1)


def _float32_rows(H, rows):
    """Rows of H as float32: a view when H is float32 (as the trainer passes it), else a chunk-sized copy."""
    return np.asarray(H[rows], dtype=np.float32)


def nearest_class_mean(H, means):
    """Index of the nearest (Euclidean) class mean for every row of H; means are used as given (un-centred).

    Identical to argmax_c (h·μ_c − ‖μ_c‖²/2) in float64; computed in float32 with a per-row certificate (see
    `_nearest_float32`), which halves the dominant N×d×K product.
    """
    tables = _nearest_mean_tables(means)
    nearest = np.empty(len(H), dtype=np.int64)
    for rows, block in _row_chunks(H):
        nearest[rows] = _nearest_chunk(tables, block, _float32_rows(H, rows), _row_norms(block))
    return nearest


def nc4_ncc_mismatch(H, means, predictions):
    """Fraction of samples whose nearest-class-centre prediction differs from the network's prediction."""
    return float(np.mean(nearest_class_mean(H, means) != np.asarray(predictions)))


def angular_collapse(means, S, centred=False, global_mean=None):
    """HAFrame's angular collapse: (mean over i<j of |cos(μ_i, μ_j) − S_ij|, std over i<j of cos(μ_i, μ_j) − S_ij).

    The std is of the *signed* difference, as HAFrame's `stats_between_actual_cosine_sim_and_ideal_cosine_sim`
    (haframe.md §6). HAFrame's plot uses raw means for HAFrame models (centred=False, the default) and centred means
    for the ETF/CE model; with centred=True the means are centred on `global_mean`, or, if that is not given, on the
    unweighted mean of the class means. Cosines come from the K×K Gram of the unit means (`_upper_triangle_cosines`).
    """
    means = np.asarray(means, dtype=np.float64)
    if centred:
        means = means - (means.mean(axis=0) if global_mean is None else np.asarray(global_mean))
    difference = _upper_triangle_cosines(means) - _upper_triangle(np.asarray(S, dtype=np.float64))
    return float(np.mean(np.abs(difference))), float(difference.std())


def _angles_chunk(block, row_norms, unit_means_of_rows):
    """Degrees between each row and its class mean's unit vector; a zero-length row counts as 90°."""
    dots = np.einsum("nd,nd->n", block, unit_means_of_rows)
    cosines = np.divide(dots, row_norms, out=np.zeros_like(dots), where=row_norms > 0)
    return np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))


def feature_to_mean_angles(H, labels, means):
    """Angle in degrees between each feature and its own class mean, both as given (cone apex at the origin).

    A zero-length feature has no direction and is counted as 90°.
    """
    labels = np.asarray(labels)
    unit_means = _unit_rows(means)
    angles = np.empty(len(H))
    for rows, block in _row_chunks(H):
        angles[rows] = _angles_chunk(block, _row_norms(block), unit_means[labels[rows]])
    return angles


def _cone_from_angles(angles):
    return float(angles.mean()), float(np.percentile(angles, 90))


def cone_radius(H, labels, means):
    """MSC cone radius: (mean, 90th percentile) of the feature-to-own-class-mean angle, in degrees."""
    return _cone_from_angles(feature_to_mean_angles(H, labels, means))


def bias_collapse(W, bias, global_mean):
    """‖W μ_G + b‖ (tding1/Neural-Collapse): 0 when the bias cancels the global-mean logit."""
    return float(np.linalg.norm(np.asarray(W, dtype=np.float64) @ global_mean + np.asarray(bias)))


def _feature_pass(H, labels, means, centred_means, rtol=1e-10):
    """One chunked pass over H for everything per-sample: (NC1, nearest class mean [N], angle to own mean [N]).

    The same kernels as `nc1`, `nearest_class_mean` and `feature_to_mean_angles`, sharing each chunk's float64
    copy and row norms; the NC1 kernel runs last because its scatter form overwrites the chunk with residuals.
    """
    plan = _nc1_plan(means, centred_means, rtol)
    tables = _nearest_mean_tables(means)
    unit_means = _unit_rows(means)
    nc1_accumulated, nearest, angles = 0.0, np.empty(len(H), dtype=np.int64), np.empty(len(H))
    for rows, block in _row_chunks(H):
        chunk_labels = labels[rows]
        row_norms = _row_norms(block)
        angles[rows] = _angles_chunk(block, row_norms, unit_means[chunk_labels])
        nearest[rows] = _nearest_chunk(tables, block, _float32_rows(H, rows), row_norms)
        nc1_accumulated = nc1_accumulated + _nc1_chunk(plan, block, chunk_labels)
    return _nc1_finish(plan, nc1_accumulated, len(H)), nearest, angles


def _self_duality(W, means, centred_means, fixed_frame: bool) -> dict:
    """NC3 under the key that names its means. A fixed frame (HAFrame, a fixed ETF) prescribes where the features
    go, so its self-duality is taken on raw means as in HAFrame's plot (`cls_rfeat_duality`): 0 when the features
    collapse onto the frame, where centring would leave a floor. A learnable classifier keeps Papyan's centred
    form (the plot's `cls_cfeat_duality` for the ETF/CE curve)."""
    if fixed_frame:
        return {"nc3_self_duality_raw": nc3_self_duality(W, means)}
    return {"nc3_self_duality": nc3_self_duality(W, centred_means)}


def collapse_report(H, labels, W, predictions, bias=None, S=None, angular_centred=False, fixed_frame=False):
    """All collapse metrics as a flat dict of plain floats.

    Feature-side NC2 uses means centred on the sample mean; NC3 is `nc3_self_duality` on centred means, or with a
    fixed frame `nc3_self_duality_raw` on raw means (`_self_duality`); NC4 and the cone use raw means; angular
    collapse (only when S is given) uses raw means unless angular_centred. `bias_collapse` is added when a bias is
    given.
    With a fixed ETF/HAFrame classifier the classifier-side NC2 values are ~0 by construction.
    H may be float32 (no float64 copy of it is made; see the module docstring); H is read twice.
    """
    labels = np.asarray(labels)
    W = np.asarray(W, dtype=np.float64)
    K = W.shape[0]
    means, _, global_mean = class_statistics(H, labels, K)
    centred_means = means - global_mean
    nc1_value, nearest, angles = _feature_pass(H, labels, means, centred_means)
    std_means, maxangle_means = equiangularity(centred_means)
    std_classifier, maxangle_classifier = equiangularity(W)
    cone_mean, cone_p90 = _cone_from_angles(angles)
    report = {
        "nc1": nc1_value,
        "nc2_equinorm_means": nc2_equinorm_means(centred_means),
        "nc2_equinorm_classifier": nc2_equinorm_classifier(W),
        "nc2_equiangular_std_means": std_means,
        "nc2_maxangle_means": maxangle_means,
        "nc2_equiangular_std_classifier": std_classifier,
        "nc2_maxangle_classifier": maxangle_classifier,
        **_self_duality(W, means, centred_means, fixed_frame),
        "nc4_ncc_mismatch": float(np.mean(nearest != np.asarray(predictions))),
        "cone_angle_mean_deg": cone_mean,
        "cone_angle_p90_deg": cone_p90,
    }
    if S is not None:
        mean_gap, std_gap = angular_collapse(means, S, centred=angular_centred, global_mean=global_mean)
        report.update(angular_collapse_mean=mean_gap, angular_collapse_std=std_gap)
    if bias is not None:
        report["bias_collapse"] = bias_collapse(W, bias, global_mean)
    return {key: float(value) for key, value in report.items()}
