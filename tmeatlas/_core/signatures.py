"""Numeric cores of gene-signature scores (:func:`tmeatlas.tl.score_signatures`).

Array functions only (CSR arrays in, arrays out); :mod:`tmeatlas.tl._signatures` wraps them for
AnnData. Expression is read as :mod:`tmeatlas._core.cnv` reads it: ``mode`` is an input scale of
:mod:`tmeatlas._core.expression` (counts, log, linear) and rows are log-normalised on the fly.
"""

from __future__ import annotations

import numba
import numpy as np

from .cnv import _row_norm_log, _transform

__all__ = ["gene_sums", "project", "rank_sums", "scan_values", "ucell"]

#: distinct values per cell ranked through a small table (else a partial sort)
_UNIQUE_CAP = 256


@numba.njit(cache=True)
def scan_values(data):
    """``(all finite, min, max)`` of an array, in one pass without temporaries."""
    lo = np.inf
    hi = -np.inf
    for v in data.ravel():
        if not np.isfinite(v):
            return False, lo, hi
        lo = min(lo, v)
        hi = max(hi, v)
    return True, lo, hi


@numba.njit(parallel=True, cache=True)
def gene_sums(indptr, indices, data, r0: int, r1: int, n_genes: int, mode: int, target: float, block: int):
    """Sum over rows ``r0:r1`` of (log-)normalised expression per gene. Rows are split in fixed
    blocks with private accumulators added in order, so the sums do not depend on the threads.
    """
    n = r1 - r0
    nb = (n + block - 1) // block
    acc = np.zeros((nb, n_genes))
    for b in numba.prange(nb):
        for i in range(r0 + b * block, min(r1, r0 + (b + 1) * block)):
            scale = _row_norm_log(data, indptr[i], indptr[i + 1], mode, target)
            for k in range(indptr[i], indptr[i + 1]):
                acc[b, indices[k]] += _transform(data[k], scale, mode)
    out = np.zeros(n_genes)
    for b in range(nb):
        out += acc[b]
    return out


@numba.njit(parallel=True, cache=True)
def project(
    indptr, indices, data, r0: int, r1: int, mode: int, target: float, w_indptr, w_indices, w_data, n_out: int
):
    """``E[r0:r1] @ W`` for the (log-)normalised expression ``E`` of a CSR matrix and a CSR
    weight matrix ``W`` (genes x outputs); genes without weights are skipped.
    """
    n = r1 - r0
    out = np.zeros((n, n_out))
    for ii in numba.prange(n):
        i = r0 + ii
        row = np.zeros(n_out)
        scale = _row_norm_log(data, indptr[i], indptr[i + 1], mode, target)
        for k in range(indptr[i], indptr[i + 1]):
            g = indices[k]
            a = w_indptr[g]
            b = w_indptr[g + 1]
            if a == b:
                continue
            x = _transform(data[k], scale, mode)
            for q in range(a, b):
                row[w_indices[q]] += x * w_data[q]
        out[ii] = row
    return out


@numba.njit(cache=True)
def _kth_smallest(a, k: int):
    """The ``k``-th smallest value (0-based) of ``a`` by quickselect (Hoare partition); ``a`` is reordered."""
    lo = 0
    hi = a.shape[0] - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                tmp = a[i]
                a[i] = a[j]
                a[j] = tmp
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return a[k]
    return a[k]


@numba.njit(cache=True, inline="always")
def _lower_bound(a, n: int, v) -> int:
    """First index ``i < n`` of the sorted ``a[:n]`` with ``a[i] >= v`` (``n`` when none): a binary search."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True)
def _unique_counts(vals, cap: int):
    """Sorted distinct values of ``vals`` and their counts, by insertion into a small table
    (log-normalised counts take few distinct values per cell); ``u = -1`` past ``cap`` values.
    """
    uv = np.empty(cap)
    uc = np.zeros(cap, np.int64)
    u = 0
    for j in range(vals.shape[0]):
        v = vals[j]
        lo = _lower_bound(uv, u, v)
        if lo < u and uv[lo] == v:
            uc[lo] += 1
            continue
        if u == cap:
            return uv, uc, -1
        for q in range(u, lo, -1):
            uv[q] = uv[q - 1]
            uc[q] = uc[q - 1]
        uv[lo] = v
        uc[lo] = 1
        u += 1
    return uv, uc, u


@numba.njit(cache=True)
def _rank_row(indptr, indices, data, i: int, n_genes: int, max_rank: int, m_indptr, m_indices, acc) -> float:
    """UCell ranks of row ``i`` (see :func:`rank_sums`): adds ``capped rank - z`` of its genes to
    ``acc`` (one entry per part) and returns ``z``, the capped rank of a zero.
    """
    a = indptr[i]
    b = indptr[i + 1]
    npos = 0
    for k in range(a, b):
        if data[k] > 0:
            npos += 1
    z = npos + (n_genes - npos + 1) / 2.0
    if z > max_rank:
        z = float(max_rank)
    if npos == 0:
        return z
    vals = np.empty(npos)
    j = 0
    for k in range(a, b):
        if data[k] > 0:
            vals[j] = data[k]
            j += 1
    t = 0.0  # values below t rank beyond max_rank
    uv, uc, u = _unique_counts(vals, _UNIQUE_CAP)
    if u < 0:  # many distinct values: partial sort of the max_rank largest
        m = npos
        if npos > max_rank:  # keep the values >= the max_rank-th largest (with all its ties)
            t = _kth_smallest(vals, npos - max_rank)
            m = 0
            for j in range(npos):
                if vals[j] >= t:
                    vals[m] = vals[j]
                    m += 1
        srt = np.sort(vals[:m])
        uv = np.empty(m)
        uc = np.zeros(m, np.int64)
        u = 0
        for j in range(m):
            if u == 0 or srt[j] != uv[u - 1]:
                uv[u] = srt[j]
                u += 1
            uc[u - 1] += 1
    # average rank of each distinct value: (number of larger values) + (ties + 1) / 2
    avg = np.empty(u)
    above = 0
    for q in range(u - 1, -1, -1):
        avg[q] = above + (uc[q] + 1) / 2.0
        above += uc[q]
    for k in range(a, b):
        g = indices[k]
        e0 = m_indptr[g]
        e1 = m_indptr[g + 1]
        v = data[k]
        if e0 == e1 or v <= 0 or v < t:
            continue
        r = avg[_lower_bound(uv, u, v)]
        if r >= max_rank:
            continue  # at the cap, as the zeros are
        d = r - z
        for e in range(e0, e1):
            acc[m_indices[e]] += d
    return z


@numba.njit(parallel=True, cache=True)
def rank_sums(
    indptr, indices, data, r0: int, r1: int, n_genes: int, max_rank: int, m_indptr, m_indices, n_parts: int
):
    """UCell rank sums of rows ``r0:r1`` of a non-negative CSR matrix.

    Per cell, genes are ranked by decreasing expression (rank 1 = highest, ties share their
    average rank; the ``n_genes - nnz`` zeros tie at ``nnz + (n_genes - nnz + 1) / 2``) and ranks
    are capped at ``max_rank``. Only the ``max_rank`` largest values are sorted (a partition
    finds the threshold). Returns ``z`` (the capped rank of a zero, per cell) and ``acc[c, p] =
    sum over the genes of part p of (capped rank - z)``, so that the rank sum of a part with
    ``n_p`` genes is ``n_p z + acc``. ``m_indptr``/``m_indices``: CSR gene -> parts membership.
    """
    n = r1 - r0
    acc = np.zeros((n, n_parts))
    zrank = np.empty(n)
    for ii in numba.prange(n):
        zrank[ii] = _rank_row(indptr, indices, data, r0 + ii, n_genes, max_rank, m_indptr, m_indices, acc[ii])
    return zrank, acc


def ucell(zrank: np.ndarray, acc: np.ndarray, n_part: np.ndarray, max_rank: int) -> np.ndarray:
    """UCell score of each part from the rank sums (see :func:`rank_sums`)."""
    n = n_part.astype(float)
    lfac = n * (n + 1) / 2
    denom = n * max_rank - lfac
    rank_sum = zrank[:, None] * n[None, :] + acc
    with np.errstate(divide="ignore", invalid="ignore"):
        u = 1.0 - (rank_sum - lfac[None, :]) / denom[None, :]
    return np.where((n > 0) & (denom > 0), u, 0.0)
