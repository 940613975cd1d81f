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

__all__ = [
    "is_dask",
    "is_streamed",
    "iter_chunks",
    "read_h5ad_lazy",
    "row_block",
    "row_blocks",
    "row_subset_blocks",
    "select_columns",
]


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


def is_streamed(X: Any) -> bool:
    """True when ``X`` is not an in-memory scipy/numpy matrix (Dask array, backed dataset): read it in row blocks."""
    return not (sparse.issparse(X) or isinstance(X, np.ndarray))


def row_blocks(X: Any, chunk_size: int) -> Iterator[tuple[int, int, Any]]:
    """``(start, stop, rows)`` covering all rows of ``X``.

    An in-memory matrix is returned whole, as one block (its kernels already bound their own
    memory); a streamed one (:func:`is_streamed`) comes as blocks of ``chunk_size`` rows, each read
    into memory with :func:`row_block`, so at most one block is held at a time.
    """
    n = X.shape[0]
    if not is_streamed(X):
        yield 0, n, X
        return
    for sl in iter_chunks(n, chunk_size):
        yield sl.start, sl.stop, row_block(X, sl.start, sl.stop)


def row_subset_blocks(
    blocks: Iterator[tuple[int, int, Any]], rows: np.ndarray | None
) -> Iterator[tuple[Any, Any]]:
    """``(sel, block[sel - start])`` for each ``(start, stop, block)`` of ``blocks``, e.g. :func:`row_blocks`.

    ``sel`` are the rows of the sorted ``rows`` that fall in ``[start, stop)`` (possibly none), or
    ``slice(start, stop)`` with the block unchanged when ``rows`` is None (all rows); the blocks
    taken in turn give the rows of ``rows`` in order.
    """
    for s, e, B in blocks:
        if rows is None:
            yield slice(s, e), B
        else:
            sel = rows[np.searchsorted(rows, s) : np.searchsorted(rows, e)]
            yield sel, B[sel - s]


def select_columns(X: Any, cols: np.ndarray, chunk_size: int) -> sparse.csr_matrix:
    """Columns ``cols`` of ``X`` for all cells as one CSR matrix, read one row block at a time.

    The result holds only the selected genes (e.g. a few hundred markers or drug targets), so its
    memory is a small part of the matrix; per-cell library sizes, when needed, must come from
    the whole rows, not from this subset.
    """
    cols = np.asarray(cols, dtype=np.int64)
    parts = []
    for _, _, b in row_blocks(X, chunk_size):
        b = sparse.csr_matrix(b) if not sparse.issparse(b) else b.tocsr()
        parts.append(sparse.csr_matrix(b[:, cols]))
    if not parts:
        return sparse.csr_matrix((0, len(cols)))
    return parts[0] if len(parts) == 1 else sparse.vstack(parts, format="csr")


def read_h5ad_lazy(path, chunk_size: int = 20_000):
    """An ``.h5ad`` with ``X`` and every layer as Dask arrays of ``chunk_size`` rows (read on demand).

    ``obs``, ``var``, ``obsm``, ``obsp``, ``varm`` and ``uns`` are read into memory (they are small
    next to the matrix). The file stays open while the arrays are in use.
    """
    import anndata as ad
    import h5py

    f = h5py.File(path, "r")
    n_vars = int(f["X"].attrs["shape"][1]) if "shape" in f["X"].attrs else int(f["X"].shape[1])

    def lazy(elem):
        return ad.experimental.read_elem_lazy(elem, chunks=(int(chunk_size), n_vars))

    def read(key):
        return ad.io.read_elem(f[key]) if key in f else None

    layers = {k: lazy(f["layers"][k]) for k in f["layers"]} if "layers" in f else None
    return ad.AnnData(
        X=lazy(f["X"]), obs=read("obs"), var=read("var"), obsm=read("obsm"), obsp=read("obsp"),
        varm=read("varm"), uns=read("uns"), layers=layers,
    )  # fmt: skip
