"""What the therapy tools share: the knowledge-base lookup of therapy names and the expression helpers
(log-normalised rows, kNN averaging over malignant cells, shrunk z-scores).

``tm.tl.therapy_survival`` lives in :mod:`tmeatlas.tl._survival`, ``tm.tl.combination_cover`` in
:mod:`tmeatlas.tl._combination`; the expression helpers also serve :mod:`tmeatlas.tl._heterogeneity`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from .._core.chunks import is_streamed, row_blocks, row_subset_blocks
from .._core.expression import log_normalise, looks_like_counts
from .._errors import InvalidInputError, InvalidParameterError
from .._validation import suggest_names

__all__: list[str] = []

_Z_CLIP = 3.0  # z-scores are clipped at +-this


# --------------------------------------------------------------------------------------------
# knowledge base
# --------------------------------------------------------------------------------------------
def _resolve_therapies(therapies) -> pd.DataFrame:
    """The knowledge-base rows of ``therapies`` (``"all"``, a name, names or a DataFrame of entries), in the
    order asked for; unknown names are an error with close names.
    """
    from ..datasets._therapies import therapies as kb

    if isinstance(therapies, pd.DataFrame):
        table = kb(extra=therapies)
        names = list(pd.unique(therapies.get("name", therapies.index)))
        return table[table["name"].isin(names)].reset_index(drop=True)
    table = kb()
    if isinstance(therapies, str):
        if therapies == "all":
            return table
        therapies = [therapies]
    if not isinstance(therapies, list | tuple | pd.Index | np.ndarray) or not len(therapies):
        raise InvalidParameterError(
            "therapies must be 'all', a therapy name, a list of names of tm.datasets.therapies(), or a DataFrame "
            f"of entries (see tm.datasets.therapies(extra=...)); got {therapies!r}."
        )
    known = list(table["name"])
    lower = {n.lower(): n for n in known}
    lower.update({d.lower(): n for d, n in zip(table["display_name"], table["name"])})
    out, bad = [], []
    for t in therapies:
        if not isinstance(t, str):
            bad.append(repr(t))
        elif t in known:
            out.append(t)
        elif t.lower() in lower:
            out.append(lower[t.lower()])
        else:
            bad.append(t)
    if bad:
        hint = suggest_names(bad, lower, cutoff=0.5)
        raise InvalidParameterError(
            f"unknown therapy name(s) {bad}. "
            + (hint + " " if hint else "")
            + "See tm.datasets.therapies()['name'] for the names, or pass a DataFrame of your own entries."
        )
    return table.set_index("name").loc[list(dict.fromkeys(out))].reset_index()


def _kind(row) -> str:
    """How a therapy is judged: ``"ici"``, ``"target"`` (acts on malignant cells) or ``"tme"``."""
    if row["drug_class"] == "immunotherapy" and row["target_compartment"] != "malignant":
        return "ici"
    if row["target_compartment"] == "malignant":
        return "target"
    return "tme"


# --------------------------------------------------------------------------------------------
# expression helpers
# --------------------------------------------------------------------------------------------
def _lognorm_rows(X, rows: np.ndarray, chunk: int) -> sparse.csr_matrix:
    """Log-normalised expression of ``rows`` (CSR): ``log1p`` CP10k for counts, else as stored."""
    counts = looks_like_counts(X)
    parts = []
    for block in _row_subsets(X, rows, chunk):
        Xc = sparse.csr_matrix(block, dtype=np.float64)
        if Xc.nnz and (not np.isfinite(Xc.data).all() or Xc.data.min() < 0):
            raise InvalidInputError(
                "the expression matrix has negative or non-finite values (scaled data?); pass raw counts or "
                "log-normalised expression (e.g. `layer='counts'`)."
            )
        parts.append(log_normalise(Xc, counts))  # log1p(CP10k) of counts; other input as stored
    return sparse.vstack(parts, format="csr") if parts else sparse.csr_matrix((0, X.shape[1]))


def _row_subsets(X, rows: np.ndarray, chunk: int):
    """Rows ``rows`` of ``X`` in that order, ``chunk`` at a time; a streamed (Dask, backed) matrix is
    read block by block and only the wanted rows are kept.
    """
    if not is_streamed(X):
        for s in range(0, len(rows), chunk):
            yield X[rows[s : s + chunk]]
        return
    rows = np.asarray(rows)
    order = np.argsort(rows, kind="stable")
    blocks = row_subset_blocks(row_blocks(X, chunk), rows[order])
    got = [sparse.csr_matrix(B) for _, B in blocks if B.shape[0]]
    if not got:
        return
    M = sparse.vstack(got, format="csr")
    if not (np.diff(rows) >= 0).all():  # back to the order asked for
        M = M[np.argsort(order, kind="stable")]
    for s in range(0, M.shape[0], chunk):
        yield M[s : s + chunk]


def _smoother(E, sample_codes, exclude_cols, n_neighbors, n_comps, n_top, seed) -> sparse.csr_matrix:
    """Row-stochastic kNN averaging operator over malignant cells (self included), built per sample in
    the principal components of the ``n_top`` most variable genes (cell-cycle genes excluded).
    """
    from sklearn.neighbors import NearestNeighbors
    from sklearn.utils.extmath import randomized_svd

    n = E.shape[0]
    rows, cols = [], []
    keep = np.ones(E.shape[1], bool)
    keep[exclude_cols] = False
    for code in np.unique(sample_codes):
        idx = np.flatnonzero(sample_codes == code)
        k = min(n_neighbors, len(idx))
        if k <= 1 or len(idx) < 3:
            rows.append(idx)
            cols.append(idx)
            continue
        sub = E[idx]
        mean = np.asarray(sub.mean(axis=0)).ravel()
        var = np.asarray(sub.multiply(sub).mean(axis=0)).ravel() - mean**2
        var[~keep] = -1.0
        top = np.argsort(-var, kind="stable")[: min(n_top, int((var > 0).sum()))]
        if len(top) < 2:
            rows.append(idx)
            cols.append(idx)
            continue
        D = sub[:, top].toarray() - mean[top]
        nc = max(1, min(n_comps, len(idx) - 1, len(top) - 1))
        U, S, _ = randomized_svd(D, nc, random_state=int(seed % (2**32)))
        pcs = U * S
        nn = NearestNeighbors(n_neighbors=k).fit(pcs)
        _, ind = nn.kneighbors(pcs)
        rows.append(np.repeat(idx, k))
        cols.append(idx[ind.ravel()])
    r, c = np.concatenate(rows), np.concatenate(cols)
    W = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    W.data[:] = 1.0  # duplicate (self) entries count once
    deg = np.asarray(W.sum(axis=1)).ravel()
    return sparse.csr_matrix(sparse.diags(1.0 / np.maximum(deg, 1)) @ W)


def _zscore(
    v: np.ndarray, codes: np.ndarray | None, raw: np.ndarray | None = None, w2: np.ndarray | None = None
) -> np.ndarray:
    r"""Z-score (clipped at +-3) over all cells, or within each sample when ``codes`` is given.

    With ``raw`` (the per-cell values before averaging) and ``w2`` (each cell's sum of squared
    averaging weights), ``v`` is a neighbour average and the z-score is shrunk by the square root of
    its reliability, :math:`\rho = \max(0, 1 - \sigma^2_{null} / \sigma^2_{obs})`: the null variance
    is what averages of randomly permuted cells would have (:math:`\mathrm{var(raw)} \cdot
    \overline{\sum_j w_{ij}^2}`). Variation no larger than cell sampling noise then scores ~0.
    """
    out = np.zeros(len(v))
    groups = [np.arange(len(v))] if codes is None else [np.flatnonzero(codes == c) for c in np.unique(codes)]
    for idx in groups:
        x = v[idx]
        sd = x.std()
        if not np.isfinite(sd) or sd < 1e-12:
            continue
        z = (x - x.mean()) / sd
        if raw is not None and w2 is not None:
            rho = max(0.0, 1.0 - float(raw[idx].var()) * float(w2[idx].mean()) / sd**2)
            z = z * np.sqrt(rho)
        out[idx] = z
    return np.clip(out, -_Z_CLIP, _Z_CLIP)
