"""The expression scale of a matrix and its log-normalised rows: one definition for every tool.

Tools accept raw counts, log-normalised expression or linear normalised values (TPM, CPM); they
detect which from the stored values and compare cells on ``log1p`` of counts per 10,000
(``log1p(CP10k)``, scanpy's ``normalize_total`` + ``log1p``), ``log1p`` of linear values, or the
log values as given.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .chunks import is_streamed, row_block

__all__ = [
    "COUNTS",
    "LINEAR",
    "LOG",
    "MODE_NAMES",
    "input_mode",
    "library_scale",
    "log_normalise",
    "looks_like_counts",
]

#: input scales, as the numba kernels of :mod:`tmeatlas._core.cnv` encode them
COUNTS, LOG, LINEAR = 0, 1, 2
MODE_NAMES = {COUNTS: "counts", LOG: "log", LINEAR: "linear"}
#: rows read to decide the scale of a matrix
MODE_SAMPLE_ROWS = 20_000
#: non-integer values above this are linear normalised expression (TPM/CPM), not log scale
LINEAR_MAX = 50.0
#: counts are normalised to this many per cell before ``log1p``
TARGET_SUM = 1e4


def looks_like_counts(X, *, n_check: int = 2000) -> bool:
    """True when the stored values are non-negative integers (raw counts), checked on a sample."""
    if sparse.issparse(X):
        data = X.data[: n_check * 50] if X.nnz else np.zeros(1)
    else:  # dense, backed or Dask: look at the first rows only
        block = row_block(X, 0, min(X.shape[0], n_check))
        data = block.data if sparse.issparse(block) else block.ravel()
    data = np.asarray(data, dtype=np.float64)
    if data.size == 0:
        return True
    return bool(np.all(data >= 0) and np.all(np.abs(data - np.round(data)) < 1e-6))


def input_mode(X) -> int:
    """:data:`COUNTS` for raw counts, :data:`LINEAR` for non-integer values above ``LINEAR_MAX``
    (TPM/CPM), else :data:`LOG`; decided from the first ``MODE_SAMPLE_ROWS`` rows.
    """
    if looks_like_counts(X):
        return COUNTS
    B = X[:MODE_SAMPLE_ROWS] if not is_streamed(X) else row_block(X, 0, min(X.shape[0], MODE_SAMPLE_ROWS))
    data = B.data if sparse.issparse(B) else np.asarray(B)
    return LINEAR if data.size and float(np.max(data)) > LINEAR_MAX else LOG


def library_scale(lib, target: float = TARGET_SUM) -> np.ndarray:
    """``target / lib`` per cell, 0 where the library is empty."""
    lib = np.asarray(lib, dtype=np.float64).ravel()
    return np.divide(target, lib, out=np.zeros_like(lib), where=lib > 0)


def log_normalise(Xc, mode: int | bool, *, lib=None, target: float = TARGET_SUM) -> sparse.csr_matrix:
    """Log-normalised expression of a block of rows, as a new float64 CSR matrix.

    ``mode`` is an :func:`input_mode` value, or a bool (``True``: counts, ``False``: log scale).
    Counts become ``log1p(target * x / lib)``, ``lib`` being the cells' library sizes (default: the
    block's row sums, so pass them when the block holds a subset of the genes); linear values
    become ``log1p(x)``; log values are kept. Explicit zeros are dropped; ``Xc`` is not changed.
    """
    if isinstance(mode, bool | np.bool_):
        mode = COUNTS if mode else LOG
    out = sparse.csr_matrix(Xc, dtype=np.float64, copy=True)
    if mode == COUNTS:
        scale = library_scale(np.asarray(out.sum(axis=1)).ravel() if lib is None else lib, target)
        out.data *= np.repeat(scale, np.diff(out.indptr))
        np.log1p(out.data, out=out.data)
    elif mode == LINEAR:
        np.log1p(out.data, out=out.data)
    out.eliminate_zeros()
    return out
