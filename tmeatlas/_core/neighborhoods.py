"""Numba kernels of neighbourhood enrichment: edge counts of cell-group pairs, under label permutations.

Array functions only; :mod:`tmeatlas.gr._neighborhoods` wraps them for AnnData.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["pair_counts", "perm_block"]


@njit(cache=True, nogil=True)
def pair_counts(labels, src, dst, K, out):  # pragma: no cover
    """``out[b, a, c] += #{edges e : labels[b, src[e]] == a and labels[b, dst[e]] == c}`` (numba, no GIL)."""
    for b in range(labels.shape[0]):
        lab = labels[b]
        o = out[b]
        for e in range(src.shape[0]):
            o[lab[src[e]], lab[dst[e]]] += 1


@njit(cache=True, nogil=True)
def _splitmix(state):  # pragma: no cover
    """Next 64-bit output of the SplitMix64 generator (Steele et al., OOPSLA 2014); advances ``state[0]``."""
    state[0] += np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def perm_block(work, sym_ptr, sym_idx, dir_ptr, dir_idx, K, state, out):  # pragma: no cover
    """Pair counts under ``out.shape[0]`` successive Fisher–Yates shuffles of ``work`` (in place).

    Reciprocal edge pairs ``i <-> j`` are stored once (``sym``, ``i < j``) and the others as they
    are (``dir``); counts are ``S + S^T + D``, so a symmetric graph costs half the work. The
    ``B`` labellings are held cell-major (``L[i, b]``): each edge reads two short contiguous rows
    and adds into ``B`` independent histograms, and one random access into the labels serves
    all ``B`` permutations (cache-friendly on large samples).
    """
    n = work.shape[0]
    B = out.shape[0]
    KK = K * K
    L = np.empty((n, B), dtype=work.dtype)
    scale = 1.0 / 9007199254740992.0  # 2**-53
    for b in range(B):
        for i in range(n - 1, 0, -1):
            j = np.int64(np.float64(_splitmix(state) >> np.uint64(11)) * scale * (i + 1))
            t = work[i]
            work[i] = work[j]
            work[j] = t
        for i in range(n):
            L[i, b] = work[i]
    H = np.zeros((B, 2 * KK), dtype=np.int64)
    for i in range(n):
        Li = L[i]
        for p in range(sym_ptr[i], sym_ptr[i + 1]):
            Lj = L[sym_idx[p]]
            for b in range(B):
                H[b, np.int64(Li[b]) * K + np.int64(Lj[b])] += 1
        for p in range(dir_ptr[i], dir_ptr[i + 1]):
            Lj = L[dir_idx[p]]
            for b in range(B):
                H[b, KK + np.int64(Li[b]) * K + np.int64(Lj[b])] += 1
    for b in range(B):
        for a in range(K):
            for c in range(K):
                out[b, a, c] += H[b, a * K + c] + H[b, c * K + a] + H[b, KK + a * K + c]
