"""The numeric parts of the pipeline's embedding: the kNN graph, the UMAP layout and its landmarks.

Up to ``EXACT_KNN_MAX`` cells ``tm.run`` builds the exact kNN graph (:func:`exact_knn`,
:func:`knn_distances`) and UMAP's fuzzy graph (:func:`fuzzy_graph`) itself, and lays UMAP out
with :func:`umap_layout` (:func:`ab_params`), the same algorithms as scanpy's ``pp.neighbors``
and ``tl.umap`` through umap-learn, without its import cost. Above ``UMAP_MAX`` cells it embeds
landmark cells drawn per Leiden cluster (:func:`landmark_indices`) and places every other cell
at the harmonic interpolation of the landmark positions over the kNN graph (:func:`harmonic_fill`).
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import sparse

__all__ = [
    "ab_params",
    "exact_knn",
    "fuzzy_graph",
    "harmonic_fill",
    "knn_distances",
    "landmark_indices",
    "umap_layout",
]


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


# ---------------------------------------------------------------------------------------------
# the kNN graph and the UMAP layout (McInnes, Healy & Melville 2018, arXiv:1802.03426)
# ---------------------------------------------------------------------------------------------
#
# The same fuzzy simplicial set as umap-learn's ``fuzzy_simplicial_set`` (which scanpy's
# ``pp.neighbors`` calls) and the same stochastic layout as its ``simplicial_set_embedding``,
# written here with cached numba kernels: importing umap-learn compiles pynndescent's kernels
# eagerly at every fresh start, the largest fixed cost of a small run (benchmarks/latency.py).

#: binary-search tolerance and floor of the kernel width (umap-learn's values)
_SMOOTH_K_TOL = 1e-5
_MIN_K_DIST_SCALE = 1e-3


def exact_knn(X: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, distances)`` of each row's ``n_neighbors`` nearest rows (Euclidean, exact,
    brute force as scanpy's ``transformer="sklearn"``), the row itself first at distance 0.
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X)
    dist, ind = NearestNeighbors(n_neighbors=n_neighbors, algorithm="brute").fit(X).kneighbors(X)
    own = np.arange(X.shape[0])
    wrong = ind[:, 0] != own  # duplicated rows: another cell may come first
    for i in np.flatnonzero(wrong):
        row = ind[i]
        at = np.flatnonzero(row == i)
        j = int(at[0]) if at.size else n_neighbors - 1
        ind[i, 1 : j + 1], dist[i, 1 : j + 1] = row[:j].copy(), dist[i, :j].copy()
        ind[i, 0] = i
    dist[:, 0] = 0.0
    return ind.astype(np.int64), dist.astype(np.float32)


def knn_distances(indices: np.ndarray, distances: np.ndarray) -> sparse.csr_matrix:
    """The kNN distance matrix without the self column (scanpy's ``obsp["distances"]``)."""
    n, k = indices.shape
    indptr = np.arange(0, n * (k - 1) + 1, k - 1)
    return sparse.csr_matrix(
        (distances[:, 1:].ravel().copy(), indices[:, 1:].ravel().copy(), indptr), shape=(n, n)
    )


def fuzzy_graph(indices: np.ndarray, distances: np.ndarray) -> sparse.csr_matrix:
    """UMAP's symmetric fuzzy graph ``W + W^T - W o W^T`` of a kNN table (self column first).

    ``W_ij = exp(-(d_ij - rho_i) / sigma_i)``, with ``rho_i`` the distance to the nearest other
    cell and ``sigma_i`` found by bisection so that a row sums to ``log2(k)``.
    """
    dist = np.ascontiguousarray(distances, dtype=np.float32)
    sigmas, rhos = _smooth_knn_dist(dist, float(indices.shape[1]))
    vals = _memberships(np.ascontiguousarray(indices), dist, sigmas, rhos)
    n = indices.shape[0]
    rows = np.repeat(np.arange(n), indices.shape[1])
    W = sparse.coo_matrix((vals.ravel(), (rows, indices.ravel())), shape=(n, n))
    W.eliminate_zeros()
    Wt = W.transpose()
    G = (W + Wt - W.multiply(Wt)).tocsr()
    G.eliminate_zeros()
    return G.astype(np.float32)


def ab_params(spread: float = 1.0, min_dist: float = 0.5) -> tuple[float, float]:
    """``(a, b)`` of the low-dimensional similarity ``1 / (1 + a d^(2b))`` fitted to the curve
    that is 1 below ``min_dist`` and ``exp(-(d - min_dist) / spread)`` above (umap-learn's fit).
    """
    from scipy.optimize import curve_fit

    x = np.linspace(0, spread * 3, 300)
    y = np.where(x < min_dist, 1.0, np.exp(-(x - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), x, y)
    return float(a), float(b)


def umap_layout(graph, init: np.ndarray, *, a: float, b: float, seed: int, n_epochs: int | None = None,
                negative_sample_rate: int = 5, gamma: float = 1.0, alpha: float = 1.0) -> np.ndarray:  # fmt: skip
    """The UMAP layout of a fuzzy ``graph`` from the starting coordinates ``init`` (``n x dim``).

    umap-learn's optimiser: ``n_epochs`` (500 up to 10,000 cells, else 200) of stochastic gradient
    descent on the fuzzy cross-entropy; each edge is sampled in proportion to its weight (edges under
    ``max / n_epochs`` dropped), pulls both ends together and pushes its head away from
    ``negative_sample_rate`` random cells; the step size falls linearly from ``alpha`` to 0. The
    start is ``init`` scaled to ``[0, 10]`` per axis with noise of s.d. 1e-4. One thread, seeded by
    ``seed``: the same inputs give the same layout.
    """
    G = sparse.coo_matrix(graph)
    G.sum_duplicates()
    n = G.shape[0]
    if n_epochs is None:
        n_epochs = 500 if n <= 10_000 else 200
    keep = G.data >= G.data.max() / float(n_epochs) if G.nnz else np.zeros(0, bool)
    head, tail, w = G.row[keep].astype(np.int64), G.col[keep].astype(np.int64), G.data[keep]
    gen = np.random.default_rng(seed)
    Y = np.asarray(init, dtype=np.float64)
    Y = 10.0 * Y / max(float(np.abs(Y).max()), 1e-12)
    Y = Y + gen.normal(scale=1e-4, size=Y.shape)
    span = Y.max(axis=0) - Y.min(axis=0)
    Y = np.ascontiguousarray(10.0 * (Y - Y.min(axis=0)) / np.where(span > 0, span, 1.0), dtype=np.float32)
    if head.size == 0:
        return Y
    per_sample = np.full(w.shape, -1.0)
    n_samples = n_epochs * (w / w.max())
    per_sample[n_samples > 0] = n_epochs / n_samples[n_samples > 0]
    state = gen.integers(1, 2**31 - 1, size=3).astype(np.int64) + 128  # Tausworthe seeds above 127
    _optimise(Y, head, tail, per_sample, float(a), float(b), float(gamma), float(alpha),
              float(negative_sample_rate), int(n_epochs), state)  # fmt: skip
    return Y


@numba.njit(cache=True, locals={"psum": numba.float32, "lo": numba.float32, "mid": numba.float32,
                                "hi": numba.float32})  # fmt: skip
def _smooth_knn_dist(distances, k):  # pragma: no cover - numba
    """Per row, the kernel width ``sigma`` (bisection to ``log2(k)``) and ``rho`` (umap-learn's)."""
    n, m = distances.shape
    target = np.log2(k)
    rho = np.zeros(n, dtype=np.float32)
    sigma = np.zeros(n, dtype=np.float32)
    mean_all = np.mean(distances)
    big = np.float32(np.finfo(np.float32).max)
    for i in range(n):
        lo, hi, mid = 0.0, big, 1.0
        row = distances[i]
        nonzero = row[row > 0.0]
        if nonzero.shape[0] >= 1:
            rho[i] = nonzero[0]
        for _ in range(64):
            psum = 0.0
            for j in range(1, m):
                d = row[j] - rho[i]
                psum += np.exp(-(d / mid)) if d > 0 else 1.0
            if np.fabs(psum - target) < _SMOOTH_K_TOL:
                break
            if psum > target:
                hi = mid
                mid = (lo + hi) / 2.0
            else:
                lo = mid
                mid = mid * 2 if hi >= big else (lo + hi) / 2.0
        sigma[i] = mid
        floor = _MIN_K_DIST_SCALE * (np.mean(row) if rho[i] > 0.0 else mean_all)
        if sigma[i] < floor:
            sigma[i] = floor
    return sigma, rho


@numba.njit(cache=True)
def _memberships(indices, distances, sigmas, rhos):  # pragma: no cover - numba
    """``W_ij`` of each kNN entry: 0 for the cell itself, 1 up to ``rho_i``, then the kernel."""
    n, k = indices.shape
    vals = np.zeros((n, k), dtype=np.float32)
    for i in range(n):
        for j in range(k):
            if indices[i, j] == i:
                continue
            d = distances[i, j] - rhos[i]
            vals[i, j] = 1.0 if (d <= 0.0 or sigmas[i] == 0.0) else np.exp(-(d / sigmas[i]))
    return vals


@numba.njit(cache=True, inline="always")
def _tausworthe(state):  # pragma: no cover - numba
    """The next value of a combined Tausworthe generator (L'Ecuyer 1996), as umap-learn draws."""
    state[0] = (((state[0] & 4294967294) << 12) & 0xFFFFFFFF) ^ (
        (((state[0] << 13) & 0xFFFFFFFF) ^ state[0]) >> 19
    )
    state[1] = (((state[1] & 4294967288) << 4) & 0xFFFFFFFF) ^ (
        (((state[1] << 2) & 0xFFFFFFFF) ^ state[1]) >> 25
    )
    state[2] = (((state[2] & 4294967280) << 17) & 0xFFFFFFFF) ^ (
        (((state[2] << 3) & 0xFFFFFFFF) ^ state[2]) >> 11
    )
    return state[0] ^ state[1] ^ state[2]  # fmt: skip


@numba.njit(cache=True, inline="always")
def _clip4(v):  # pragma: no cover - numba
    """``v`` clipped to [-4, 4] (umap-learn's gradient clip)."""
    return 4.0 if v > 4.0 else (-4.0 if v < -4.0 else v)


@numba.njit(cache=True, fastmath=True, nogil=True)  # nogil: the run lays out while later steps work
def _optimise(
    Y, head, tail, per_sample, a, b, gamma, alpha0, neg_rate, n_epochs, state
):  # pragma: no cover - numba
    """UMAP's epochs of edge sampling, attraction (both ends) and negative sampling, in place."""
    n, dim = Y.shape
    per_neg = per_sample / neg_rate
    next_neg = per_neg.copy()
    next_sample = per_sample.copy()
    for epoch in range(n_epochs):
        alpha = alpha0 * (1.0 - epoch / n_epochs)
        for e in range(per_sample.shape[0]):
            if per_sample[e] <= 0 or next_sample[e] > epoch:
                continue
            j, k = head[e], tail[e]
            d2 = 0.0
            for d in range(dim):
                diff = Y[j, d] - Y[k, d]
                d2 += diff * diff
            coeff = 0.0
            if d2 > 0.0:
                pb = d2**b  # d2^(b-1) = pb / d2: one power per edge
                coeff = -2.0 * a * b * (pb / d2) / (a * pb + 1.0)
            for d in range(dim):
                g = _clip4(coeff * (Y[j, d] - Y[k, d])) * alpha
                Y[j, d] += g
                Y[k, d] -= g
            next_sample[e] += per_sample[e]
            n_neg = int((epoch - next_neg[e]) / per_neg[e])
            for _ in range(n_neg):
                k = _tausworthe(state) % n
                if k == j:
                    continue
                d2 = 0.0
                for d in range(dim):
                    diff = Y[j, d] - Y[k, d]
                    d2 += diff * diff
                coeff = 2.0 * gamma * b / ((0.001 + d2) * (a * d2**b + 1.0)) if d2 > 0.0 else 0.0
                if coeff > 0.0:
                    for d in range(dim):
                        Y[j, d] += _clip4(coeff * (Y[j, d] - Y[k, d])) * alpha
            next_neg[e] += n_neg * per_neg[e]
