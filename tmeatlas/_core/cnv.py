"""Numeric core of copy-number inference from expression (inferCNV family).

Array functions only; :mod:`tmeatlas.tl._cnv` wraps them for AnnData. The matrix readers
(:func:`as_csr`, :func:`csr_blocks`, :func:`matrix_gene_sums`) are shared by the CNV tools of
:mod:`tmeatlas.tl` (``_cnv``, ``_cnv_evidence``, ``_malignant``).
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import sparse

from .._errors import InvalidInputError
from .chunks import is_streamed, row_blocks

__all__ = [
    "arm_sums",
    "as_csr",
    "bin_layout",
    "checked_csr",
    "csr_blocks",
    "gene_sums",
    "matrix_gene_sums",
    "smooth_chunk",
]


@numba.njit(cache=True)
def _row_norm_log(data: np.ndarray, start: int, stop: int, mode: int, target: float) -> float:
    """Scale factor of a row: target / library size for counts (mode 0), else unused."""
    if mode != 0:
        return 1.0
    tot = 0.0
    for k in range(start, stop):
        tot += data[k]
    return target / tot if tot > 0 else 0.0


@numba.njit(cache=True, inline="always")
def _transform(v: float, scale: float, mode: int) -> float:
    # mode 0: counts -> log1p(CP10k); 1: already log scale; 2: linear (TPM/CPM) -> log1p
    if mode == 0:
        return np.log1p(v * scale)
    if mode == 2:
        return np.log1p(v)
    return v


@numba.njit(cache=True, inline="always")
def _linear(v: float, scale: float, mode: int) -> float:
    # normalised expression on the linear scale: CP10k for counts, expm1 of log data
    if mode == 0:
        return v * scale
    if mode == 1:
        return np.expm1(v)
    return v


@numba.njit(parallel=True, cache=True)
def gene_sums(
    indptr,
    indices,
    data,
    n_genes: int,
    group: np.ndarray,
    n_groups: int,
    mode: int,
    target: float,
    nthreads: int,
    linear: bool = False,
):
    """Per group, the sum of log-normalised (or, with ``linear``, linear normalised) expression
    of every gene, and the number of cells.

    One pass over a CSR matrix, split in ``nthreads`` contiguous blocks of rows with private
    accumulators; ``group[i] < 0`` excludes cell ``i``.
    """
    n = indptr.shape[0] - 1
    acc = np.zeros((nthreads, n_groups, n_genes))
    cnt = np.zeros((nthreads, n_groups))
    chunk = (n + nthreads - 1) // nthreads
    for t in numba.prange(nthreads):
        for i in range(t * chunk, min(n, (t + 1) * chunk)):
            g = group[i]
            if g < 0:
                continue
            cnt[t, g] += 1
            scale = _row_norm_log(data, indptr[i], indptr[i + 1], mode, target)
            if linear:
                for k in range(indptr[i], indptr[i + 1]):
                    acc[t, g, indices[k]] += _linear(data[k], scale, mode)
            else:
                for k in range(indptr[i], indptr[i + 1]):
                    acc[t, g, indices[k]] += _transform(data[k], scale, mode)
    return acc.sum(axis=0), cnt.sum(axis=0)


@numba.njit(parallel=True, cache=True)
def arm_sums(indptr, indices, data, gene_arms: np.ndarray, n_arms: int, mode: int, target: float):
    """Per cell, the sum of log-normalised expression over the genes of each arm, for several
    gene-to-arm assignments at once: ``out[k, i, a]`` sums cell ``i``'s genes ``g`` with
    ``gene_arms[k, g] == a`` (``-1``: gene not used). One pass over a CSR matrix, no copy of it.
    """
    n = indptr.shape[0] - 1
    n_specs = gene_arms.shape[0]
    out = np.zeros((n_specs, n, n_arms))
    for i in numba.prange(n):
        scale = _row_norm_log(data, indptr[i], indptr[i + 1], mode, target)
        for k in range(indptr[i], indptr[i + 1]):
            v = _transform(data[k], scale, mode)
            if v == 0.0:
                continue
            g = indices[k]
            for s in range(n_specs):
                a = gene_arms[s, g]
                if a >= 0:
                    out[s, i, a] += v
    return out


@numba.njit(parallel=True, cache=True)
def smooth_chunk(
    indptr,
    indices,
    data,
    row0: int,
    row1: int,
    col_pos: np.ndarray,
    n_sel: int,
    ref_group: np.ndarray,
    ref_lo: np.ndarray,
    ref_hi: np.ndarray,
    seg_start: np.ndarray,
    seg_stop: np.ndarray,
    bin_center: np.ndarray,
    bin_seg: np.ndarray,
    half_window: int,
    clip: float,
    mode: int,
    target: float,
):
    """CNV profiles of cells ``row0:row1`` of a CSR matrix.

    For each cell: log-normalise; keep the selected genes in genome order (``col_pos``: column ->
    position, -1 drops it); subtract the reference envelope (0 inside ``[ref_lo, ref_hi]`` of the
    cell's reference group, the distance to the nearer bound outside, as inferCNV's bounds);
    clip to ``[-clip, clip]``; average over a window of ``2 * half_window + 1`` genes truncated at
    segment (chromosome-arm) ends, with cumulative sums so that the cost does not depend on the
    window; evaluate at the bin centres; subtract the cell's median over bins.
    """
    n = row1 - row0
    n_bins = bin_center.shape[0]
    out = np.empty((n, n_bins), dtype=np.float32)
    for ii in numba.prange(n):
        i = row0 + ii
        x = np.zeros(n_sel)
        scale = _row_norm_log(data, indptr[i], indptr[i + 1], mode, target)
        for k in range(indptr[i], indptr[i + 1]):
            p = col_pos[indices[k]]
            if p >= 0:
                x[p] = _transform(data[k], scale, mode)
        g = ref_group[i]
        csum = np.empty(n_sel + 1)
        csum[0] = 0.0
        for p in range(n_sel):
            v = x[p]
            lo = ref_lo[g, p]
            hi = ref_hi[g, p]
            if v > hi:
                v = v - hi
            elif v < lo:
                v = v - lo
            else:
                v = 0.0
            if v > clip:
                v = clip
            elif v < -clip:
                v = -clip
            csum[p + 1] = csum[p] + v
        row = np.empty(n_bins)
        for b in range(n_bins):
            c = bin_center[b]
            s = seg_start[bin_seg[b]]
            e = seg_stop[bin_seg[b]]
            lo_i = max(s, c - half_window)
            hi_i = min(e, c + half_window + 1)
            row[b] = (csum[hi_i] - csum[lo_i]) / (hi_i - lo_i)
        med = np.median(row)
        for b in range(n_bins):
            out[ii, b] = row[b] - med
    return out


def bin_layout(seg_id: np.ndarray, step: int):
    """Segments and bins along genome-ordered genes.

    ``seg_id`` is the (non-decreasing) segment index of each selected gene. Returns segment
    starts and stops (gene positions), and for each bin its centre gene, its segment and its
    first and last gene (inclusive). Bins are ``step`` genes wide and never straddle two
    segments; a segment shorter than ``step`` is one bin.
    """
    change = np.flatnonzero(np.diff(seg_id)) + 1
    starts = np.r_[0, change].astype(np.int64)
    stops = np.r_[change, len(seg_id)].astype(np.int64)
    centers, segs, first, last = [], [], [], []
    for k, (s, e) in enumerate(zip(starts, stops)):
        n = e - s
        nb = max(1, int(round(n / step)))
        edges = np.linspace(s, e, nb + 1)
        c = np.floor((edges[:-1] + edges[1:]) / 2).astype(np.int64)
        centers.append(np.minimum(c, e - 1))
        segs.append(np.full(nb, k, dtype=np.int64))
        first.append(np.ceil(edges[:-1]).astype(np.int64))
        last.append(np.maximum(np.ceil(edges[1:]).astype(np.int64) - 1, np.ceil(edges[:-1]).astype(np.int64)))
    cat = np.concatenate
    return starts, stops, cat(centers), cat(segs), cat(first), cat(last)


def as_csr(X):
    """An in-memory matrix as checked CSR; a streamed one (Dask, backed) unchanged: its blocks are
    checked as they are read (:func:`csr_blocks`).
    """
    if is_streamed(X):
        return X
    return checked_csr(X)


def checked_csr(X) -> sparse.csr_matrix:
    """``X`` as a float CSR matrix, after checking that its values are finite and non-negative."""
    if sparse.issparse(X):
        X = X.tocsr() if X.format != "csr" else X
    else:
        X = sparse.csr_matrix(np.asarray(X))
    if X.data.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32)
    if not np.isfinite(X.data).all():
        raise InvalidInputError(
            "the expression matrix contains NaN or infinite values; CNV inference needs finite expression "
            "(fill or drop them first)."
        )
    if (X.data < 0).any():
        raise InvalidInputError(
            "the expression matrix has negative values (scaled/centred data?); pass raw counts or "
            "log-normalised expression, e.g. `layer='counts'`."
        )
    return X  # the kernels do not need sorted indices: adata.X is never reordered in place


def csr_blocks(X, chunk: int):
    """``(start, stop, CSR rows)``: the whole in-memory matrix, or checked row blocks of a streamed one."""
    for s, e, B in row_blocks(X, chunk):
        yield s, e, (checked_csr(B) if is_streamed(X) else B)


def matrix_gene_sums(
    X, group: np.ndarray, n_groups: int, mode: int, target: float, chunk: int, linear: bool = False
):
    """:func:`gene_sums` over the whole matrix, accumulated over row blocks: ``(sums, counts)``."""
    sums = np.zeros((n_groups, X.shape[1]))
    cnt = np.zeros(n_groups)
    for s, e, B in csr_blocks(X, chunk):
        su, cn = gene_sums(
            B.indptr,
            B.indices,
            B.data,
            X.shape[1],
            np.ascontiguousarray(group[s:e], dtype=np.int64),
            n_groups,
            mode,
            target,
            numba.get_num_threads(),
            linear,
        )
        sums += su
        cnt += cn
    return sums, cnt
