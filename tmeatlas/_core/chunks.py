"""Iterate over cells in chunks, whatever holds the matrix.

A matrix may be a scipy sparse matrix, a numpy array, a backed (h5py) dataset, or a Dask array
(e.g. from :func:`anndata.experimental.read_elem_lazy` over an ``.h5ad`` or ``.zarr``), whose
blocks are computed one row chunk at a time, on the default Dask scheduler or the active
``dask.distributed`` client, so that the whole matrix is never in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["is_dask", "iter_chunks", "row_block"]


def iter_chunks(n: int, chunk_size: int) -> Iterator[slice]:
    """Slices ``[0, chunk_size)``, ``[chunk_size, 2 chunk_size)``, ... covering ``range(n)``."""
    chunk_size = max(1, int(chunk_size))
    for s in range(0, n, chunk_size):
        yield slice(s, min(n, s + chunk_size))


def is_dask(X: Any) -> bool:
    """True for a Dask array (checked without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "compute")


def row_block(X: Any, start: int, stop: int) -> sparse.csr_matrix | np.ndarray:
    """Rows ``[start, stop)`` of ``X`` in memory: a CSR matrix when ``X`` is sparse, else an array."""
    block = X[start:stop]
    if is_dask(block):
        block = block.compute()
    if sparse.issparse(block):
        return sparse.csr_matrix(block)
    return np.asarray(block)
