"""Known answers for reading a subset of rows block by block (:mod:`tmeatlas._core.chunks`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from tmeatlas._core.chunks import row_blocks, row_subset_blocks
from tmeatlas.tl._cnv_evidence import linear_normalised
from tmeatlas.tl._therapy import _row_subsets

N, G, CHUNK = 23, 7, 5  # blocks smaller than the number of rows; the last one partial


@pytest.fixture(scope="module")
def dense():
    rng = np.random.default_rng(0)
    return (rng.poisson(0.8, size=(N, G)) * (rng.random((N, G)) < 0.6)).astype(np.float32)


def _holders(dense):
    """The same matrix in memory (CSR, dense) and as a Dask array of CSR row chunks."""
    da = pytest.importorskip("dask.array")
    csr = sparse.csr_matrix(dense)
    return {"csr": csr, "dense": dense, "dask": da.from_array(csr, chunks=(CHUNK, G), asarray=False)}


def _todense(B):
    return B.toarray() if sparse.issparse(B) else np.asarray(B)


ROWS = {
    "sorted": np.array([0, 3, 4, 5, 9, 14, 15, 22]),
    "one_block": np.array([6, 7, 8]),
    "empty": np.array([], dtype=np.int64),
}


@pytest.mark.parametrize("kind", ["csr", "dense", "dask"])
@pytest.mark.parametrize("which", [*ROWS, None])
def test_row_subset_blocks_gives_the_sorted_rows(dense, kind, which):
    X = _holders(dense)[kind]
    rows = None if which is None else ROWS[which]
    got = list(row_subset_blocks(row_blocks(X, CHUNK), rows))
    n_blocks = 1 if kind != "dask" else -(-N // CHUNK)
    assert len(got) == n_blocks  # one entry per block, also for blocks without wanted rows
    want = np.arange(N) if rows is None else rows
    sel = np.concatenate([np.arange(N)[s] for s, _ in got])
    np.testing.assert_array_equal(sel, want)
    np.testing.assert_array_equal(np.vstack([_todense(B) for _, B in got]), dense[want])
    if rows is None and kind != "dask":
        assert got[0][1] is X  # all rows of an in-memory matrix: the matrix itself, not a copy


@pytest.mark.parametrize("kind", ["csr", "dense", "dask"])
@pytest.mark.parametrize(
    "rows",
    [ROWS["sorted"], np.array([22, 0, 9, 3, 15, 4, 14, 5]), np.array([7, 7, 2, 20, 2]), ROWS["empty"]],
    ids=["sorted", "unsorted", "repeats", "empty"],
)
def test_row_subsets_any_order(dense, kind, rows):
    X = _holders(dense)[kind]
    parts = list(_row_subsets(X, rows, 3))
    assert all(p.shape[0] <= 3 for p in parts)
    got = np.vstack([_todense(p) for p in parts]) if parts else np.zeros((0, G))
    np.testing.assert_array_equal(got, dense[rows])


@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("which", ["sorted", "empty", None])
def test_linear_normalised_same_for_every_holder(dense, mode, which):
    rows = None if which is None else ROWS[which]
    cols = np.array([1, 4, 6])
    out = {k: linear_normalised(X, mode, cols, CHUNK, rows).toarray() for k, X in _holders(dense).items()}
    want = dense if rows is None else dense[rows]
    if mode == 0:
        lib = want.sum(axis=1, keepdims=True)
        want = np.divide(1e4 * want, lib, out=np.zeros_like(want, dtype=float), where=lib > 0)
    else:
        want = np.expm1(want.astype(np.float64))
    for k, v in out.items():
        np.testing.assert_allclose(v, want[:, cols], rtol=1e-6, err_msg=k)
