"""The numeric parts of the pipeline's landmark UMAP: which cells to embed, and where to place the others.

Above ``UMAP_MAX`` cells ``tm.run`` embeds landmark cells drawn per Leiden cluster
(:func:`landmark_indices`) and places every other cell at the harmonic interpolation of the
landmark positions over the kNN graph (:func:`harmonic_fill`); ``_pipeline._umap`` runs UMAP.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["harmonic_fill", "landmark_indices"]


def landmark_indices(codes: np.ndarray, n_max: int, rng: int, *, min_per_cluster: int = 50) -> np.ndarray:
    """Sorted indices of about ``n_max`` landmark cells drawn without replacement per cluster
    (``codes``) in proportion to its size, at least ``min_per_cluster`` each (all of a smaller one).
    """
    n = len(codes)
    gen = np.random.default_rng(rng)
    picks = []
    for c in np.unique(codes):
        members = np.flatnonzero(codes == c)
        k = min(len(members), max(min_per_cluster, int(round(n_max * len(members) / n))))
        picks.append(gen.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(picks))


def harmonic_fill(W, Y: np.ndarray, fixed: np.ndarray, groups: np.ndarray, *, tol: float = 1e-4,
                  max_iter: int = 500) -> np.ndarray:  # fmt: skip
    """Rows of ``Y`` not ``fixed``: the harmonic interpolation of the fixed rows over the graph ``W``.

    Jacobi iteration of ``y_i <- sum_j W_ij y_j / sum_j W_ij`` for the free cells, started at the
    mean of the fixed cells of the same group; stops when no coordinate moves more than ``tol``
    times the spread of the fixed positions. A free cell without edges keeps its start.
    """
    Y = np.array(Y, dtype=np.float64)
    free = np.flatnonzero(~fixed)
    if free.size == 0:
        return Y
    for g in np.unique(groups[free]):
        anchor = fixed & (groups == g)
        Y[free[groups[free] == g]] = Y[anchor].mean(axis=0) if anchor.any() else Y[fixed].mean(axis=0)
    P = sparse.csr_matrix(W)[free]
    deg = np.asarray(P.sum(axis=1)).ravel()
    has = deg > 0
    P = (sparse.diags(np.where(has, 1.0 / np.where(has, deg, 1.0), 0.0)) @ P).tocsr()
    scale = tol * float(np.ptp(Y[fixed], axis=0).max() or 1.0)
    for _ in range(max_iter):
        new = P @ Y
        step = np.abs(new[has] - Y[free[has]]).max(initial=0.0)
        Y[free[has]] = new[has]
        if step <= scale:
            break
    return Y
