"""Numeric core of the drug screen: per-group expression moments and the pooled permutation null.

Array functions only; :mod:`tmeatlas.tl._drug_screen` wraps them for AnnData.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np

from .cnv import _row_norm_log, _transform

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Z_STEP", "group_stats", "null_histogram", "score_moments", "set_effects", "welch"]

#: bin width of the histogram of the standardised null scores |z|
Z_STEP = 0.01


@numba.njit(cache=True)
def _accumulate(indptr, indices, data, r0, r1, codes, mode, target, S, Q, N):  # pragma: no cover - numba
    """Per group ``codes[i - r0]`` of rows ``r0:r1``: sum, sum of squares and number of cells expressing
    each gene, of log1p(CP10k) expression (``mode`` 0: counts), log1p (2: linear) or as stored (1).
    """
    for i in range(r0, r1):
        c = codes[i - r0]
        if c < 0:
            continue
        scale = _row_norm_log(data, indptr[i], indptr[i + 1], mode, target)
        for p in range(indptr[i], indptr[i + 1]):
            v = _transform(data[p], scale, mode)
            if v != 0.0:
                j = indices[p]
                S[c, j] += v
                Q[c, j] += v * v
                N[c, j] += 1.0


def group_stats(
    chunks: Iterable[tuple], codes: np.ndarray, n_codes: int, n_genes: int, mode: int, target: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(S, Q, N)`` (groups x genes): the sum, sum of squares and number of cells expressing, of each
    gene's log-normalised expression per group.

    ``chunks`` yields CSR row blocks as ``(indptr, indices, data, r0, r1, offset)`` (rows ``r0:r1``
    of the arrays are the cells ``offset + 0 .. offset + r1 - r0``); ``codes`` gives each cell's
    group (< 0: skipped). ``mode`` is a :func:`tmeatlas._core.expression.input_mode` value: counts
    become ``log1p(target * x / library size)``, linear values ``log1p(x)``, log values are kept.
    """
    S = np.zeros((n_codes, n_genes))
    Q = np.zeros((n_codes, n_genes))
    N = np.zeros((n_codes, n_genes))
    for indptr, indices, data, r0, r1, off in chunks:
        _accumulate(indptr, indices, data, r0, r1, codes[off : off + r1 - r0], mode, target, S, Q, N)
    return S, Q, N


@numba.njit(cache=True)
def _score_accumulate(indptr, indices, data, r0, r1, codes, mode, target, g_ptr, g_drug, g_w, mean, inv_sd, clip,
                      A1, A2, acc, seen, touched):  # fmt: skip  # pragma: no cover - numba
    """Per group ``codes[i - r0]`` of rows ``r0:r1``: sums of each drug's per-cell score minus its
    score in a cell that expresses nothing (``A1``) and of its square (``A2``); see :func:`score_moments`.
    """
    for i in range(r0, r1):
        c = codes[i - r0]
        if c < 0:
            continue
        scale = _row_norm_log(data, indptr[i], indptr[i + 1], mode, target)
        nt = 0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            lo, hi = g_ptr[j], g_ptr[j + 1]
            if lo == hi:
                continue
            v = _transform(data[p], scale, mode)
            if v == 0.0:
                continue
            z = min(max((v - mean[j]) * inv_sd[j], -clip), clip)
            z0 = min(max(-mean[j] * inv_sd[j], -clip), clip)
            for q in range(lo, hi):
                d = g_drug[q]
                if not seen[d]:
                    seen[d] = True
                    touched[nt] = d
                    nt += 1
                acc[d] += g_w[q] * (z - z0)
        for t in range(nt):
            d = touched[t]
            A1[c, d] += acc[d]
            A2[c, d] += acc[d] * acc[d]
            acc[d] = 0.0
            seen[d] = False


def score_moments(chunks, codes, n_codes: int, M, mean, sd, clip: float, mode: int, target: float):
    r"""``(S, Q)`` (groups x drugs): per group, the sum and the sum of squares of every drug's per-cell
    score :math:`s_{cd} = \sum_g w_{gd} \, \mathrm{clip}((x_{cg} - m_g) / s_g, \pm c)` (rows of the
    drugs x genes matrix ``M`` hold the weights :math:`w`; :math:`x` is log-normalised as in
    :func:`group_stats`), in one pass over the cells that touches only expressed genes: a cell's score
    is that of a cell expressing nothing, :math:`b_d`, plus the changes of its expressed genes.

    ``chunks`` and ``codes`` as in :func:`group_stats`; the pass is serial so sums do not depend on threads.
    """
    from scipy import sparse

    Mt = sparse.csr_matrix(M.T)
    inv = 1.0 / np.asarray(sd, float)
    z0 = np.clip(-np.asarray(mean, float) * inv, -clip, clip)
    base = np.asarray(M @ z0).ravel()
    D = M.shape[0]
    A1 = np.zeros((n_codes, D))
    A2 = np.zeros((n_codes, D))
    acc, seen, touched = np.zeros(D), np.zeros(D, dtype=np.bool_), np.zeros(D, dtype=np.int64)
    n = np.zeros(n_codes)
    mean = np.asarray(mean, float)
    for indptr, indices, data, r0, r1, off in chunks:
        cc = codes[off : off + r1 - r0]
        n += np.bincount(cc[cc >= 0], minlength=n_codes)
        _score_accumulate(indptr, indices, data, r0, r1, cc, mode, target, Mt.indptr, Mt.indices, Mt.data, mean,
                          inv, float(clip), A1, A2, acc, seen, touched)  # fmt: skip
    S = n[:, None] * base[None, :] + A1
    Q = n[:, None] * base[None, :] ** 2 + 2.0 * base[None, :] * A1 + A2
    return S, Q


def welch(S, Q, n, ref_S, ref_Q, ref_n):
    r"""``(effect, t, df, se)`` (groups x columns) comparing each group with a reference from sums ``S``,
    sums of squares ``Q`` and sizes ``n`` (the reference's broadcast: one row, or one per group):
    ``effect`` is Cohen's d, :math:`(\mu - \nu) / \sqrt{(v + v_r) / 2}`; ``t`` is Welch's,
    :math:`(\mu - \nu) / \sqrt{\max(v, v_r) / n + v_r / n_r}`, with the group's variance not taken
    below the reference's (its variance under the null that the group's cells are the reference's:
    a small group that by chance has no expressing cell would otherwise have variance 0 and any
    difference would look certain); ``df`` = the smaller size - 1; ``se`` = the standard error on the
    effect's scale (``effect / t``). Columns without variance in either group get effect and t 0.
    """
    n = np.maximum(np.asarray(n, float), 1.0)[:, None]
    ref_n = np.maximum(np.asarray(ref_n, float), 1.0).reshape(-1, 1)
    mu, nu = S / n, ref_S / ref_n
    v = np.maximum(Q / n - mu**2, 0.0)
    vr = np.maximum(ref_Q / ref_n - nu**2, 0.0)
    diff = mu - nu
    sp = np.sqrt((v + vr) / 2.0)
    se = np.sqrt(np.maximum(v, vr) / n + vr / ref_n)
    scale = np.maximum(np.abs(mu), np.abs(nu)) + 1.0
    ok = sp > 1e-9 * scale
    effect = np.where(ok, diff / np.where(ok, sp, 1.0), 0.0)
    t = np.where(ok, diff / np.where(ok, se, 1.0), 0.0)
    df = np.broadcast_to(np.minimum(n, ref_n) - 1.0, effect.shape)
    return effect, t, df, np.where(ok, se / np.where(ok, sp, 1.0), 0.0)


def set_effects(d, se, M):
    r"""``(effect, t)`` (groups x drugs) of gene sets (rows of ``M``: signed weights summing to 1 in
    absolute value within the up and within the down genes of a set) from per-gene standardised
    differences ``d`` and their standard errors ``se`` (groups x genes, :func:`welch`): ``effect`` is the
    set's mean signed difference :math:`\sum_g w_g d_g / P` (:math:`P` = number of directions it has,
    1 or 2); ``t`` divides :math:`\sum_g w_g d_g` by :math:`\sum_g |w_g| \, se_g`, which bounds its
    standard error whatever the genes' correlation (Cauchy-Schwarz): exact for one gene, conservative
    for sets.
    """
    up = np.asarray((M > 0).sum(axis=1)).ravel() > 0
    down = np.asarray((M < 0).sum(axis=1)).ravel() > 0
    parts = np.maximum(up.astype(float) + down, 1.0)
    num = np.asarray(M @ d.T).T
    bound = np.asarray(abs(M) @ se.T).T
    t = np.where(bound > 0, num / np.where(bound > 0, bound, 1.0), 0.0)
    return num / parts[None, :], t


@numba.njit(parallel=True, cache=True)
def null_histogram(
    indptr, indices, data, ZT, perms, mean, inv, off, n_z, n_hist, n_threads
):  # pragma: no cover
    """Histogram of the standardised null scores :math:`|S^{null} - m| / s` of every drug (CSR rows of
    signed weights over genes) in every group (columns of ``ZT``, genes x groups) under each gene
    permutation (rows of ``perms``), binned by :data:`Z_STEP` into the pool offset ``off`` (drugs x
    groups). Integer counts: the result does not depend on the threads.
    """
    R = perms.shape[0]
    D = indptr.shape[0] - 1
    K = ZT.shape[1]
    hist = np.zeros((n_threads, n_hist), dtype=np.int64)
    per = (R + n_threads - 1) // n_threads
    step_inv = 1.0 / Z_STEP
    for t in numba.prange(n_threads):
        acc = np.empty(K, dtype=np.float32)
        for r in range(t * per, min(R, (t + 1) * per)):
            for d in range(D):
                acc[:] = 0.0
                for q in range(indptr[d], indptr[d + 1]):
                    w = data[q]
                    g = perms[r, indices[q]]
                    for k in range(K):
                        acc[k] += w * ZT[g, k]
                for k in range(K):
                    b = int(abs(acc[k] - mean[d, k]) * inv[d, k] * step_inv)
                    hist[t, off[d, k] + min(b, n_z - 1)] += 1
    out = np.zeros(n_hist, dtype=np.int64)
    for t in range(n_threads):
        out += hist[t]
    return out
