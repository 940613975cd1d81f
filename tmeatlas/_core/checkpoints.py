"""Numeric core of the checkpoint receptor–ligand statistics: per-slot expression sums.

Array functions only; :mod:`tmeatlas.tl._checkpoints` wraps them for AnnData.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["slot_sums"]


@njit(cache=True, nogil=True)
def _slot_sums_into(
    codes_b, src, dst, K, spatial, indptr, indices, data, binary, send, recv, size
):  # pragma: no cover
    """Add each item's expression into its slot, for every labelling ``b`` (numba; releases the GIL).

    Expression mode: item = cell, slot = its group, sums in ``send``. Spatial mode: item = edge
    ``src -> dst``, slot = ``K * group(src) + group(dst)``; the sender cell's row goes to
    ``send``, the receiver cell's to ``recv``. ``size`` counts the items of each slot.
    """
    for b in range(codes_b.shape[0]):
        lab = codes_b[b]
        if spatial:
            for e in range(src.shape[0]):
                i = src[e]
                j = dst[e]
                s = lab[i] * K + lab[j]
                size[b, s] += 1.0
                for p in range(indptr[i], indptr[i + 1]):
                    send[b, s, indices[p]] += 1.0 if binary else data[p]
                for p in range(indptr[j], indptr[j + 1]):
                    recv[b, s, indices[p]] += 1.0 if binary else data[p]
        else:
            for i in range(lab.shape[0]):
                s = lab[i]
                size[b, s] += 1.0
                for p in range(indptr[i], indptr[i + 1]):
                    send[b, s, indices[p]] += 1.0 if binary else data[p]


def slot_sums(
    codes_b: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    K: int,
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    n_genes: int,
    *,
    spatial: bool,
    binary: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(send, recv, size)``: per labelling and slot, the sums of the sender and receiver ends' expression.

    ``codes_b`` (``B`` labellings x cells, int64) gives each cell's group (0..K-1); the expression
    is a CSR matrix (cells x ``n_genes``) as ``indptr``, ``indices`` (int64) and ``data`` (float64).
    Expression mode (``spatial=False``): a slot is a group, the items are the cells, and ``recv``
    is ``send``. Spatial mode: a slot is an ordered group pair ``K * S + R``, the items are the
    edges ``src -> dst`` (int64). ``binary`` counts expressing cells instead of summing values.
    Shapes: ``send``, ``recv`` ``(B, slots, n_genes)``; ``size`` (items per slot) ``(B, slots)``.
    """
    B, n_slots = codes_b.shape[0], K * K if spatial else K
    send = np.zeros((B, n_slots, n_genes))
    recv = np.zeros((B, n_slots, n_genes)) if spatial else send
    size = np.zeros((B, n_slots))
    _slot_sums_into(codes_b, src, dst, K, spatial, indptr, indices, data, binary, send, recv, size)
    return send, recv, size
