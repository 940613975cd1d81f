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

__all__ = ["Z_STEP", "group_stats", "null_histogram"]

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
