"""Iterate over cells in chunks, densifying one chunk at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["dense_rows", "iter_chunks"]


def iter_chunks(n: int, chunk_size: int) -> Iterator[slice]:
    """Slices ``[0, chunk_size)``, ``[chunk_size, 2 chunk_size)``, ... covering ``range(n)``."""
    chunk_size = max(1, int(chunk_size))
    for s in range(0, n, chunk_size):
        yield slice(s, min(n, s + chunk_size))


def dense_rows(X, rows: slice, cols: np.ndarray | None = None, dtype=np.float32) -> np.ndarray:
    """Rows ``rows`` (and columns ``cols``) of a dense, sparse or lazily backed matrix as a dense array."""
    block = X[rows]
    if cols is not None:
        block = block[:, cols]
    if sparse.issparse(block):
        return block.toarray().astype(dtype, copy=False)
    if hasattr(block, "compute"):  # dask
        block = block.compute()
        if sparse.issparse(block):
            return block.toarray().astype(dtype, copy=False)
    return np.asarray(block, dtype=dtype)
