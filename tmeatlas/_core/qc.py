"""Per-cell quality metrics and per-gene statistics of the pipeline, read by row blocks.

Array in, array out: ``tm.run``'s ``qc`` and ``embedding`` steps wrap them. The matrix may be
in memory, backed or a Dask array (read through :func:`~tmeatlas._core.chunks.row_blocks`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from .chunks import row_blocks

__all__ = ["gene_moments", "hvg_seurat", "mad_outliers", "qc_sums"]

#: a median absolute deviation times this estimates the standard deviation of normal data
MAD_SCALE = 1.4826


def qc_sums(X, mt_cols: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: detected genes, total counts and counts of the ``mt_cols`` genes, by row blocks."""
    n = X.shape[0]
    n_genes, total, mt = np.zeros(n, np.int64), np.zeros(n), np.zeros(n)
    for s, e, B in row_blocks(X, chunk):
        B = sparse.csr_matrix(B)
        n_genes[s:e] = np.asarray((B > 0).sum(axis=1)).ravel()
        total[s:e] = np.asarray(B.sum(axis=1), dtype=float).ravel()
        if len(mt_cols):
            mt[s:e] = np.asarray(B[:, mt_cols].sum(axis=1), dtype=float).ravel()
    return n_genes, total, mt


def mad_outliers(samples: np.ndarray, total: np.ndarray, n_genes: np.ndarray, pct_mt: np.ndarray | None, *,
                 n_mads: float = 5, mt_floor: float = 10) -> np.ndarray:  # fmt: skip
    """Per cell, whether it is a QC outlier within its sample (the MAD rule of Germain et al., Genome
    Biol 2020): ``log1p`` total counts or ``log1p`` detected genes more than ``n_mads`` scaled median
    absolute deviations from the sample's median (either side), or (with ``pct_mt``) a mitochondrial
    share more than ``n_mads`` MADs above the median and above ``mt_floor`` percent. A sample whose
    MAD is 0 flags nobody on that metric.
    """
    outlier = np.zeros(len(samples), dtype=bool)
    for s in np.unique(samples):
        m = samples == s
        for v in (np.log1p(total[m]), np.log1p(n_genes[m])):
            med = np.median(v)
            mad = np.median(np.abs(v - med)) * MAD_SCALE
            if mad > 0:
                outlier[np.flatnonzero(m)[np.abs(v - med) > n_mads * mad]] = True
        if pct_mt is not None:
            v = pct_mt[m]
            med = np.median(v)
            mad = np.median(np.abs(v - med)) * MAD_SCALE
            outlier[np.flatnonzero(m)[(v > med + n_mads * mad) & (v > mt_floor)]] = True
    return outlier


def gene_moments(X, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per gene, over a (log-normalised) matrix read by row blocks: the number of cells detecting it,
    and the mean and variance (``ddof=1``) of ``expm1(X)``: the statistics of Seurat's
    dispersion-based selection of variable genes (Satija et al., Nat Biotechnol 2015).
    """
    n, m = X.shape
    det = np.zeros(m, np.int64)
    s1 = np.zeros(m)
    s2 = np.zeros(m)
    for _, _, B in row_blocks(X, chunk):
        B = sparse.csr_matrix(B, dtype=np.float64)
        B.data = np.expm1(B.data)
        det += np.bincount(B.indices[B.data != 0], minlength=m)
        s1 += np.bincount(B.indices, weights=B.data, minlength=m)
        s2 += np.bincount(B.indices, weights=B.data**2, minlength=m)
    mean = s1 / n
    var = (s2 / n - mean**2) * (n / max(n - 1, 1))
    return det, mean, var


def hvg_seurat(mean: np.ndarray, var: np.ndarray, n_top: int, n_bins: int = 20) -> np.ndarray:
    """Highly variable genes as ``sc.pp.highly_variable_genes(flavor="seurat", n_top_genes=n_top)``,
    from per-gene mean and variance of ``expm1(X)``: log dispersion ``log(var / mean)`` normalised
    within 20 equal-width bins of ``log1p(mean)`` (a lone gene in its bin gets 1); the ``n_top``
    largest normalised dispersions.
    """
    mean = np.where(mean == 0, 1e-12, mean)
    disp = var / mean
    disp[disp == 0] = np.nan
    disp = np.log(disp)
    lmean = np.log1p(mean)
    df = pd.DataFrame({"disp": disp, "bin": pd.cut(lmean, bins=n_bins)})
    stats = df.groupby("bin", observed=True)["disp"].agg(avg="mean", dev="std")
    lone = stats["dev"].isnull()
    stats.loc[lone, "dev"] = stats.loc[lone, "avg"]
    stats.loc[lone, "avg"] = 0
    st = stats.loc[df["bin"]]
    norm = (df["disp"].to_numpy() - st["avg"].to_numpy()) / st["dev"].to_numpy()
    x = norm[~np.isnan(norm)]
    n_top = min(n_top, x.size)
    cut = np.sort(x)[::-1][n_top - 1]
    return np.nan_to_num(norm, nan=-np.inf) >= cut
