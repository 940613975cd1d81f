"""Per-sample spatial graphs, neighbourhood composition and enrichment: ``tm.gr.neighborhoods``, ``tm.gr.enrichment``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from .._core.neighborhoods import pair_counts, perm_block
from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError
from .._keys import OBSM, OBSP, UNS
from .._rng import make_rng, resolve_seed, spawn_seeds
from .._settings import logger, settings
from .._store import store
from .._validation import check_int, check_obs_key, renamed_args, start

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["ENRICHMENT_COLUMNS", "enrichment", "neighborhoods"]

# result keys (to move into tmeatlas/_keys.py)
_CONN = OBSP.spatial_connectivities
_DIST = OBSP.spatial_distances
_X_NHOOD = OBSM.neighborhood
_UNS_NHOOD = UNS.neighborhoods
_UNS_ENRICH = UNS.enrichment
_SPATIAL = OBSM.spatial

#: columns of ``uns[key_added]["zscore"]`` written by :func:`enrichment`, in order
ENRICHMENT_COLUMNS = ["sample", "cluster_a", "cluster_b", "zscore", "count", "perm_mean", "perm_sd"]
#: name of the pooled rows in the enrichment table
POOLED = "pooled"
#: default number of nearest neighbours
DEFAULT_N_NEIGHBORS = 15
#: permutations drawn from one random stream; fixed, so z-scores do not depend on ``n_jobs``
PERMS_PER_STREAM = 50
#: bytes of permuted labels held at once by one thread (bounds memory)
_BATCH_BYTES = 64_000_000


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------
def _is_int(x) -> bool:
    """True for an integer (numpy integers included), False for a bool."""
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def _is_real(x) -> bool:
    """True for a real number (int, float or numpy scalar), False for a bool."""
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _codes(adata: AnnData, key: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes (``-1`` for missing) and category names of ``obs[key]``."""
    col = adata.obs[key]
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in col.cat.categories]
        codes = col.cat.codes.to_numpy().astype(np.int64)
    else:
        cats = sorted({str(v) for v in col.dropna()})
        vals = np.where(col.isna(), None, col.astype(str))
        codes = pd.Categorical(vals, categories=cats).codes.astype(np.int64)
    if len(cats) == 0 or (codes < 0).all():
        raise InvalidInputError(f"obs[{key!r}] has no non-missing values; pass a column of cell groups.")
    return codes, cats


def _proportions(adata: AnnData, key: str) -> tuple[np.ndarray, list[str]]:
    """Per-spot proportions ``obsm[key]`` (n x K, non-negative) and the group names."""
    if not isinstance(key, str) or key not in adata.obsm:
        have = ", ".join(map(repr, adata.obsm.keys())) or "none"
        raise MissingResultError(f"composition_key {key!r} is not in adata.obsm (have: {have}).")
    m = adata.obsm[key]
    cats = (
        [str(c) for c in m.columns]
        if isinstance(m, pd.DataFrame)
        else [f"{key}_{i}" for i in range(m.shape[1])]
    )
    P = np.asarray(m.toarray() if sparse.issparse(m) else m, dtype=np.float64)
    if P.ndim != 2 or not np.isfinite(P).all() or (P < 0).any():
        raise InvalidInputError(f"adata.obsm[{key!r}] must be a finite, non-negative cells x groups matrix.")
    return P, cats


def _samples(adata: AnnData, sample_key: str | None) -> tuple[np.ndarray, list[str]]:
    """Sample code of every cell and the sample names (one sample ``"all"`` without ``sample_key``)."""
    if sample_key is None:
        return np.zeros(adata.n_obs, dtype=np.int64), ["all"]
    col = adata.obs[sample_key]
    if col.isna().any():
        raise InvalidInputError(
            f"obs[{sample_key!r}] has {int(col.isna().sum())} missing values; every cell needs a sample "
            "(fill them, or subset the AnnData to cells with a sample)."
        )
    if isinstance(col.dtype, pd.CategoricalDtype):
        present = pd.unique(col.cat.codes.to_numpy())
        cats = [str(c) for i, c in enumerate(col.cat.categories) if i in set(present.tolist())]
    else:
        cats = sorted({str(v) for v in col})
    codes = pd.Categorical(col.astype(str), categories=cats).codes.astype(np.int64)
    return codes, cats


def _coordinates(adata: AnnData, spatial_key: str) -> np.ndarray:
    """The checked cells x dimensions coordinates ``obsm[spatial_key]`` as float64."""
    if spatial_key not in adata.obsm:
        raise MissingResultError(
            f"obsm[{spatial_key!r}] with the cell coordinates is missing (obsm keys: {sorted(adata.obsm) or 'none'}); "
            "store the x/y coordinates there (e.g. `adata.obsm['spatial'] = adata.obs[['x', 'y']].to_numpy()`) "
            "or pass `spatial_key=`."
        )
    xy = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    if xy.ndim != 2 or xy.shape[0] != adata.n_obs or xy.shape[1] < 1:
        raise InvalidInputError(
            f"obsm[{spatial_key!r}] must be a cells x dimensions array, got shape {xy.shape}."
        )
    if not np.isfinite(xy).all():
        raise InvalidInputError(
            f"obsm[{spatial_key!r}] has NaN or infinite coordinates; drop those cells first."
        )
    return xy


# --------------------------------------------------------------------------------------------
# graphs
# --------------------------------------------------------------------------------------------
def _knn_local(xy: np.ndarray, k: int, n_jobs: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` nearest other cells of every cell: indices and distances, ``(n, k)`` each, nearest first.

    One kd-tree query for ``k + 1`` points; the cell itself is removed (when duplicated
    coordinates push it out of the result, the farthest of the ``k + 1`` is dropped instead).
    """
    from scipy.spatial import cKDTree

    n = xy.shape[0]
    tree = cKDTree(xy)
    dist, idx = tree.query(xy, k=k + 1, workers=n_jobs)
    dist = np.atleast_2d(dist).reshape(n, k + 1)
    idx = np.atleast_2d(idx).reshape(n, k + 1)
    drop = idx == np.arange(n)[:, None]
    no_self = ~drop.any(axis=1)
    drop[no_self, -1] = True
    first = drop.cumsum(axis=1).cumsum(axis=1) == 1  # only the first dropped slot of each row
    keep = ~(drop & first)
    return idx[keep].reshape(n, k).astype(np.int64), dist[keep].reshape(n, k)


def _radius_local(xy: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs of distinct cells closer than ``r`` (both directions): ``(src, dst, dist)``."""
    from scipy.spatial import cKDTree

    tree = cKDTree(xy)
    pairs = tree.query_pairs(r, output_type="ndarray").astype(np.int64)
    if pairs.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0)
    d = np.sqrt(((xy[pairs[:, 0]] - xy[pairs[:, 1]]) ** 2).sum(axis=1))
    src = np.concatenate([pairs[:, 0], pairs[:, 1]])
    dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return src, dst, np.concatenate([d, d])


def _sample_edges(xy: np.ndarray, kind: str, values: list, n_jobs: int):
    """Edges of one sample at each scale: list of ``(src, dst, dist)``, local indices.

    One query at the largest scale; smaller scales are slices (kNN) or distance filters (radius).
    """
    n = xy.shape[0]
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if n < 2:
        return [empty for _ in values]
    out = []
    if kind == "knn":
        kmax = min(max(values), n - 1)
        idx, dist = _knn_local(xy, kmax, n_jobs)
        for k in values:
            kk = min(k, kmax)
            src = np.repeat(np.arange(n, dtype=np.int64), kk)
            out.append((src, idx[:, :kk].ravel(), dist[:, :kk].ravel()))
    else:
        src, dst, dist = _radius_local(xy, float(max(values)))
        for r in values:
            m = dist <= r
            out.append((src[m], dst[m], dist[m]))
    return out


def _csr(n: int, src: np.ndarray, dst: np.ndarray, data: np.ndarray) -> sparse.csr_matrix:
    """CSR from edges, keeping explicit zeros (distance 0 between cells at the same place)."""
    order = np.lexsort((dst, src))
    src, dst, data = src[order], dst[order], data[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    idx_dtype = np.int32 if max(n, len(dst)) < np.iinfo(np.int32).max else np.int64
    return sparse.csr_matrix((data, dst.astype(idx_dtype), indptr.astype(idx_dtype)), shape=(n, n))


def _composition(A: sparse.csr_matrix, codes, K: int, include_self: bool) -> np.ndarray:
    """Fraction of each cell's labelled neighbours in each of ``K`` categories: ``rownorm(A) @ onehot``.

    ``codes`` is either integer labels (``-1`` missing) or a dense ``n x K`` matrix of per-cell
    proportions (spots), which then replaces the one-hot matrix.
    """
    n = A.shape[0]
    if isinstance(codes, np.ndarray) and codes.ndim == 2:
        onehot = sparse.csr_matrix(codes.astype(np.float32))
    else:
        lab = codes >= 0
        onehot = sparse.csr_matrix(
            (np.ones(int(lab.sum()), dtype=np.float32), (np.flatnonzero(lab), codes[lab])), shape=(n, K)
        )
    B = sparse.csr_matrix((np.ones(A.nnz, dtype=np.float32), A.indices, A.indptr), shape=A.shape)
    if include_self:
        B = (B + sparse.identity(n, dtype=np.float32, format="csr")).tocsr()
    counts = np.asarray((B @ onehot).todense(), dtype=np.float32)
    tot = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)


# --------------------------------------------------------------------------------------------
# tm.gr.neighborhoods
# --------------------------------------------------------------------------------------------
@renamed_args(cluster_key="groupby")
@doc_params("copy")
def neighborhoods(
    adata: AnnData,
    *,
    groupby: str | None = None,
    sample_key: str | None = None,
    composition_key: str | None = None,
    spatial_key: str = _SPATIAL,
    radius: float | None = None,
    n_neighbors: int | None = None,
    scales: list | None = None,
    include_self: bool = False,
    n_jobs: int | None = None,
    key_added: str = _UNS_NHOOD,
    copy: bool = False,
) -> AnnData | None:
    r"""Per-sample spatial neighbour graph and the cell-type composition of every cell's neighbourhood.

    A graph is built inside each sample (never between samples, which share no space) from the
    coordinates in ``obsm[spatial_key]``: either the ``n_neighbors`` nearest other cells of
    every cell (kNN, directed: row ``i`` lists ``i``'s neighbours) or all other cells within
    ``radius`` (same units as the coordinates, usually microns; symmetric), found with one
    kd-tree query per sample (:class:`scipy.spatial.cKDTree`). The composition of cell
    :math:`i`'s neighbourhood :math:`N(i)` is

    .. math:: c_{ik} = \frac{\#\{j \in N(i) : \ell_j = k\}}{\#\{j \in N(i) : \ell_j \neq \mathrm{NA}\}}

    computed as the sparse product of the row-normalised adjacency with the one-hot labels
    (``rownorm(A) @ onehot``), the cellular-neighbourhood features of Goltsev et al. (Cell
    174:968, 2018) and Schürch et al. (Cell 182:1341, 2020). Cells without (labelled)
    neighbours get zeros. With ``scales`` the composition is computed at several radii (or
    neighbour counts), one query at the largest.

    Parameters
    ----------
    adata
        Annotated data matrix with coordinates in ``obsm[spatial_key]``.
    groupby
        Column of ``adata.obs`` with the cell groups whose fractions are computed
        (e.g. ``"cell_type_major"``); cells with a missing label are neighbours of no category.
    composition_key
        Instead of ``groupby``, for spot data (Visium, ST): key of ``adata.obsm`` with
        per-spot cell-type proportions or compartment scores (non-negative, a DataFrame whose
        columns name the groups, or an array); each spot's neighbourhood composition is the
        mean of its neighbours' rows, renormalised to sum to 1.
    sample_key
        Column of ``adata.obs`` with the sample (section); graphs are built per sample.
        ``None``: all cells are one sample.
    spatial_key
        Key of the coordinates in ``adata.obsm``.
    radius
        Radius of the neighbourhood (coordinate units, microns for most platforms); selects the
        radius graph. Give either ``radius`` or ``n_neighbors``, not both.
    n_neighbors
        Number of nearest neighbours; selects the kNN graph (default, with 15, when neither is given).
    scales
        Several radii (radius graph) or neighbour counts (kNN graph) at which the composition is
        computed; the columns are then ``"<category>@<scale>"``. The stored graph is the one at
        ``radius`` / ``n_neighbors`` (default: the first scale). ``None``: one scale, columns
        ``"<category>"``.
    include_self
        Count the cell itself in its own neighbourhood composition (the stored graph never has
        self-loops).
    n_jobs
        Threads of the kd-tree queries (default ``tm.settings.n_jobs``; ``-1`` all cores).
    key_added
        Key of ``adata.uns`` for the parameters and the per-sample graph summary.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obsp["spatial_connectivities"]`` (binary CSR),
    ``obsp["spatial_distances"]`` (CSR of the edge lengths), ``obsm["X_neighborhood"]`` (a
    DataFrame, cells x categories (x scales), fractions) and ``uns[key_added]`` with
    ``samples`` (per sample: ``n_cells``, ``n_edges``, ``mean_degree``, ``n_isolated``),
    ``columns``, ``categories``, ``scales`` and ``params``.
    """
    adata = start(adata, copy)
    kind, main, scales = _check_neighborhoods(
        adata, groupby, composition_key, sample_key, include_self, key_added, radius, n_neighbors, scales
    )
    threads = settings.resolve_n_jobs(n_jobs)
    xy = _coordinates(adata, spatial_key)
    codes, cats = _codes(adata, groupby) if groupby is not None else _proportions(adata, composition_key)
    scodes, samples = _samples(adata, sample_key)

    values = list(dict.fromkeys([main, *(scales or [])]))
    mats, summary = _compute_graphs(xy, scodes, samples, kind, values, main, threads)
    D = mats[0]
    A = sparse.csr_matrix((np.ones(D.nnz, dtype=np.float32), D.indices, D.indptr), shape=D.shape)
    comp, columns = _compute_compositions(mats, values, codes, cats, kind, scales, include_self)
    X_nh = pd.DataFrame(comp, index=adata.obs_names.copy(), columns=columns)

    params = {
        "groupby": groupby if groupby is not None else composition_key,
        "composition_key": composition_key, "sample_key": sample_key, "spatial_key": spatial_key, "radius": radius,
        "n_neighbors": main if kind == "knn" else None, "graph": kind, "scales": scales,
        "include_self": include_self,
    }  # fmt: skip
    uns = {
        "samples": pd.DataFrame(summary),
        "columns": columns,
        "categories": cats,
        "scales": scales if scales is not None else [main],
        "connectivity_key": _CONN,
        "distances_key": _DIST,
        "neighborhood_key": _X_NHOOD,
    }
    store(
        adata,
        tool="gr.neighborhoods",
        obsm={_X_NHOOD: X_nh},
        obsp={_CONN: A, _DIST: D},
        uns_key=key_added,
        uns=uns,
        params=params,
    )
    return adata if copy else None


def _check_neighborhoods(
    adata: AnnData,
    groupby,
    composition_key,
    sample_key,
    include_self,
    key_added,
    radius,
    n_neighbors,
    scales,
) -> tuple[str, int | float, list | None]:
    """The graph kind (``"knn"`` / ``"radius"``), the stored graph's scale and the checked ``scales``."""
    if (groupby is None) == (composition_key is None):
        raise InvalidParameterError(
            "give either `groupby=` (a column of cell labels) or `composition_key=` (per-spot proportions "
            "in adata.obsm), exactly one."
        )
    if groupby is not None and not isinstance(groupby, str):
        raise InvalidParameterError(f"groupby must be the name of a column of adata.obs, got {groupby!r}.")
    check_obs_key(adata, groupby, what="groupby")
    check_obs_key(adata, sample_key, what="sample_key")
    if not isinstance(include_self, bool):
        raise InvalidParameterError(f"include_self must be True or False, got {include_self!r}.")
    if not isinstance(key_added, str) or not key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string, got {key_added!r}.")
    if radius is not None and n_neighbors is not None:
        raise InvalidParameterError(
            "give either `radius=` (radius graph) or `n_neighbors=` (kNN graph), not both."
        )
    kind = "radius" if radius is not None else "knn"
    if radius is not None and (not _is_real(radius) or not np.isfinite(radius) or radius <= 0):
        raise InvalidParameterError(f"radius must be a positive number (coordinate units), got {radius!r}.")
    if n_neighbors is not None:
        check_int("n_neighbors", n_neighbors, 1)
    if scales is not None:
        scales = _check_scales(scales, kind)
    if kind == "knn":
        main = int(n_neighbors) if n_neighbors is not None else (scales[0] if scales else DEFAULT_N_NEIGHBORS)
    else:
        main = float(radius)
    return kind, main, scales


def _check_scales(scales, kind: str) -> list:
    """``scales`` as a list of neighbour counts (kNN) or radii, checked to be valid and distinct."""
    if isinstance(scales, str) or not hasattr(scales, "__iter__"):
        raise InvalidParameterError(f"scales must be a list of radii or neighbour counts, got {scales!r}.")
    scales = list(scales)
    if not scales:
        raise InvalidParameterError("scales is empty; pass None for one scale.")
    for s in scales:
        if kind == "knn" and (not _is_int(s) or s < 1):
            raise InvalidParameterError(
                f"with the kNN graph, scales are neighbour counts (integers >= 1); got {s!r}. "
                "Pass `radius=` to use radii."
            )
        if kind == "radius" and (not _is_real(s) or not np.isfinite(s) or s <= 0):
            raise InvalidParameterError(f"with the radius graph, scales are positive radii; got {s!r}.")
    if len(set(scales)) != len(scales):
        raise InvalidParameterError(f"scales must be distinct, got {scales}.")
    return [int(s) if kind == "knn" else float(s) for s in scales]


def _compute_graphs(
    xy: np.ndarray, scodes: np.ndarray, samples: list[str], kind: str, values: list, main, threads: int
) -> tuple[list[sparse.csr_matrix], list[dict]]:
    """Distance graphs (CSR, global indices) at each of ``values``, built per sample, and the per-sample summary."""
    n = len(xy)
    per_scale: list[list[tuple]] = [[] for _ in values]
    summary = []
    order = np.argsort(scodes, kind="stable")
    bounds = np.searchsorted(scodes[order], np.arange(len(samples) + 1))
    for si, s in enumerate(samples):
        idx = order[bounds[si] : bounds[si + 1]]
        edges = _sample_edges(xy[idx], kind, values, threads)
        for v, (src, dst, d) in enumerate(edges):
            per_scale[v].append((idx[src], idx[dst], d))
        src0 = edges[0][0]
        deg = np.bincount(src0, minlength=len(idx))
        summary.append({
            "sample": s, "n_cells": len(idx), "n_edges": int(len(src0)),
            "mean_degree": float(deg.mean()) if len(idx) else 0.0, "n_isolated": int((deg == 0).sum()),
        })  # fmt: skip
        if kind == "knn" and len(idx) - 1 < main:
            logger.warning(
                "neighborhoods: sample %r has %d cells, fewer than n_neighbors + 1 = %d; its cells get %d neighbours.",
                s,
                len(idx),
                main + 1,
                max(len(idx) - 1, 0),
            )

    mats = []
    for v in range(len(values)):
        src = np.concatenate([e[0] for e in per_scale[v]])
        dst = np.concatenate([e[1] for e in per_scale[v]])
        dist = np.concatenate([e[2] for e in per_scale[v]])
        mats.append(_csr(n, src, dst, dist))
        per_scale[v] = []  # free
    return mats, summary


def _compute_compositions(
    mats: list, values: list, codes, cats: list[str], kind: str, scales: list | None, include_self: bool
) -> tuple[np.ndarray, list[str]]:
    """Neighbourhood compositions (cells x categories, one block per scale) and their column names."""
    K = len(cats)
    if scales is None:
        return _composition(mats[0], codes, K, include_self), list(cats)
    blocks, columns = [], []
    for s in scales:
        comp_s = _composition(mats[values.index(s)], codes, K, include_self)
        blocks.append(comp_s)
        columns += [f"{c}@{s:g}" if kind == "radius" else f"{c}@{s}" for c in cats]
    return np.hstack(blocks), columns


# --------------------------------------------------------------------------------------------
# enrichment: counting (numba kernels in tmeatlas._core.neighborhoods)
# --------------------------------------------------------------------------------------------
def _count(labels: np.ndarray, src: np.ndarray, dst: np.ndarray, K: int) -> np.ndarray:
    """Edge counts of every ordered pair of groups under each row of ``labels``: ``(B, K, K)``."""
    out = np.zeros((labels.shape[0], K, K), dtype=np.int64)
    pair_counts(labels, src, dst, K, out)
    return out


def _split_edges(src: np.ndarray, dst: np.ndarray, n: int):
    """CSR (``indptr``, ``indices``) of the reciprocal pairs once (``src < dst``) and of the other edges.

    ``src``/``dst`` are distinct directed edges; a self-loop goes with the others (counted once).
    """
    fwd = src * n + dst
    recip = np.isin(fwd, dst * n + src, assume_unique=True)
    sym = recip & (src < dst)
    other = ~recip | (src == dst)
    out = []
    for m in (sym, other):
        s, d = src[m], dst[m]
        order = np.argsort(s, kind="stable")
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(s, minlength=n), out=ptr[1:])
        out += [ptr, np.ascontiguousarray(d[order], dtype=np.int64)]
    return tuple(out)


def _perm_counts(codes: np.ndarray, graph: tuple, K: int, seed: int, n: int) -> np.ndarray:
    """Pair counts under ``n`` within-sample label permutations drawn from stream ``seed``: ``(n, K, K)``.

    The stream's numpy generator (:func:`tmeatlas._rng.make_rng`) seeds a SplitMix64 state that
    drives the shuffles inside numba; batches only bound memory and do not change the draws.
    """
    gen = make_rng(int(seed))
    state = np.array([gen.integers(0, 2**63 - 1, dtype=np.int64)], dtype=np.uint64)
    work = codes.astype(np.uint8 if K <= 255 else np.int32)
    per = work.itemsize * max(len(codes), 1)
    batch = int(max(1, min(n, _BATCH_BYTES // per)))
    out = np.zeros((n, K, K), dtype=np.int64)
    done = 0
    while done < n:
        b = min(batch, n - done)
        perm_block(work, *graph, K, state, out[done : done + b])
        done += b
    return out


def _zscore(obs: np.ndarray, perms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z, mean, sd)`` of the observed counts against the permuted ones (z NaN where sd is 0)."""
    mean = perms.mean(axis=0)
    sd = perms.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(sd > 0, (obs - mean) / np.where(sd > 0, sd, 1.0), np.nan)
    return z, mean, sd


# --------------------------------------------------------------------------------------------
# tm.gr.enrichment
# --------------------------------------------------------------------------------------------
@renamed_args(cluster_key="groupby")
@doc_params("copy")
def enrichment(
    adata: AnnData,
    *,
    groupby: str,
    sample_key: str | None = None,
    connectivity_key: str = _CONN,
    n_perms: int = 1000,
    rng: int = 0,
    n_jobs: int | None = None,
    key_added: str = _UNS_ENRICH,
    copy: bool = False,
) -> AnnData | None:
    r"""Neighbourhood enrichment of cell-group pairs: edge counts against label permutations, per sample and pooled.

    For every ordered pair of groups :math:`(a, b)` of ``obs[groupby]`` the number of edges
    of the spatial graph ``obsp[connectivity_key]`` from a cell of :math:`a` to a cell of
    :math:`b` (stored non-zero entries of row-:math:`a` cells in columns of :math:`b`) is
    compared with its distribution when the labels are shuffled among the cells of the sample
    on the fixed graph (``n_perms`` times):

    .. math:: z_{ab} = \frac{N_{ab} - \operatorname{mean}_\pi N^{\pi}_{ab}}{\operatorname{sd}_\pi N^{\pi}_{ab}}

    (population standard deviation), the definition of ``squidpy.gr.nhood_enrichment`` (Palla
    et al., Nat Methods 19:171, 2022; after histoCAT, Schapiro et al., Nat Methods 14:873,
    2017). :math:`z > 0`: the groups are neighbours more often than by chance. It is computed
    in each sample (labels shuffled within it) and pooled: the counts summed over samples and,
    for each permutation index, the permuted counts summed over samples (the same as squidpy
    with ``library_key``). Edges between samples are ignored. Each block of
    :data:`PERMS_PER_STREAM` permutations of a sample draws from its own stream
    (:func:`tmeatlas._rng.spawn_seeds`), so results do not depend on ``n_jobs``; the counting is
    a numba loop over the edges. ``z`` is NaN where the permuted counts do not vary.

    Parameters
    ----------
    adata
        Annotated data matrix with a spatial graph, e.g. from :func:`tmeatlas.gr.neighborhoods`.
    groupby
        Column of ``adata.obs`` with the cell groups; cells with a missing label are left out
        (with their edges).
    sample_key
        Column of ``adata.obs`` with the sample; labels are permuted within samples.
        ``None``: all cells are one sample and only the pooled rows are written.
    connectivity_key
        Key of the spatial graph in ``adata.obsp`` (square, cells x cells).
    n_perms
        Number of label permutations.
    rng
        Seed of the permutations (an int; a Generator or ``None`` draws one, recorded in ``params``).
    n_jobs
        Threads over permutation blocks (default ``tm.settings.n_jobs``; ``-1`` all cores);
        results do not depend on it.
    key_added
        Key of ``adata.uns`` for the results.
    {copy}

    Returns
    -------
    ``None`` or a copy. ``uns[key_added]`` holds ``zscore``, a tidy DataFrame with one row per
    sample (and ``"pooled"``) and ordered group pair: the columns of :data:`ENRICHMENT_COLUMNS`
    (``count`` the observed edges, ``perm_mean`` / ``perm_sd`` their permutation mean and
    standard deviation); ``categories``, ``samples`` and ``params``.
    """
    adata = start(adata, copy)
    _check_enrichment(adata, groupby, sample_key, connectivity_key, n_perms, key_added)
    seed = resolve_seed(rng)
    threads = settings.resolve_n_jobs(n_jobs)
    A = adata.obsp[connectivity_key]
    if not sparse.issparse(A):
        A = sparse.csr_matrix(np.asarray(A))
    A = sparse.csr_matrix(A, copy=True)
    A.sum_duplicates()
    if A.shape != (adata.n_obs, adata.n_obs):
        raise InvalidInputError(
            f"obsp[{connectivity_key!r}] has shape {A.shape}, expected {(adata.n_obs,) * 2}."
        )
    codes, cats = _codes(adata, groupby)
    scodes, samples = _samples(adata, sample_key)
    K = len(cats)
    src, dst = _labelled_edges(A, codes, scodes, connectivity_key, sample_key)

    sample_seeds = spawn_seeds(seed, len(samples))
    pooled_obs = np.zeros((K, K), dtype=np.int64)
    pooled_perm = np.zeros((n_perms, K, K), dtype=np.int64)
    edge_sample = scodes[src]
    e_order = np.argsort(edge_sample, kind="stable")
    e_bounds = np.searchsorted(edge_sample[e_order], np.arange(len(samples) + 1))
    rows = []
    summary = []
    pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
    try:
        for si, s in enumerate(samples):
            cells = np.flatnonzero((scodes == si) & (codes >= 0))
            local = np.full(adata.n_obs, -1, dtype=np.int64)
            local[cells] = np.arange(len(cells))
            es = e_order[e_bounds[si] : e_bounds[si + 1]]
            s_src = np.ascontiguousarray(local[src[es]])
            s_dst = np.ascontiguousarray(local[dst[es]])
            c = np.ascontiguousarray(codes[cells])
            obs, perms = _sample_counts(c, s_src, s_dst, K, n_perms, int(sample_seeds[si]), pool)
            pooled_obs += obs
            pooled_perm += perms
            summary.append({"sample": s, "n_cells": len(cells), "n_edges": int(len(s_src))})
            if sample_key is not None:
                z, m, sd = _zscore(obs, perms)
                rows.append(_table(s, cats, z, obs, m, sd))
    finally:
        if pool is not None:
            pool.shutdown()
    z, m, sd = _zscore(pooled_obs, pooled_perm)
    rows.append(_table(POOLED, cats, z, pooled_obs, m, sd))
    table = pd.concat(rows, ignore_index=True)
    table.index = table.index.astype(str)

    params = {
        "groupby": groupby, "sample_key": sample_key, "connectivity_key": connectivity_key,
        "n_perms": int(n_perms), "rng": seed, "perms_per_stream": PERMS_PER_STREAM,
    }  # fmt: skip
    store(
        adata,
        tool="gr.enrichment",
        uns_key=key_added,
        uns={"zscore": table, "categories": cats, "samples": pd.DataFrame(summary)},
        params=params,
    )
    return adata if copy else None


def _check_enrichment(adata: AnnData, groupby, sample_key, connectivity_key, n_perms, key_added) -> None:
    """None; raises a typed error naming the first invalid parameter of :func:`enrichment`."""
    if not isinstance(groupby, str):
        raise InvalidParameterError(f"groupby must be the name of a column of adata.obs, got {groupby!r}.")
    check_obs_key(adata, groupby, what="groupby")
    check_obs_key(adata, sample_key, what="sample_key")
    check_int("n_perms", n_perms, 2)
    if not isinstance(key_added, str) or not key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string, got {key_added!r}.")
    if not isinstance(connectivity_key, str) or connectivity_key not in adata.obsp:
        raise MissingResultError(
            f"obsp[{connectivity_key!r}] with the spatial graph is missing (obsp keys: {sorted(adata.obsp) or 'none'}); "
            f"run `tm.gr.neighborhoods(adata, groupby={groupby!r}, sample_key=...)` first, or pass "
            "`connectivity_key=`."
        )


def _labelled_edges(
    A: sparse.csr_matrix, codes: np.ndarray, scodes: np.ndarray, connectivity_key: str, sample_key: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(src, dst)`` of the graph's edges (stored non-zero entries) within a sample, between labelled cells."""
    nz = A.data != 0
    src = np.repeat(np.arange(A.shape[0], dtype=np.int64), np.diff(A.indptr))[nz]
    dst = A.indices.astype(np.int64)[nz]
    cross = scodes[src] != scodes[dst]
    if cross.any():
        logger.warning(
            "enrichment: %d edges of obsp[%r] join different samples and are ignored; build the graph per "
            "sample with `tm.gr.neighborhoods(..., sample_key=%r)`.",
            int(cross.sum()),
            connectivity_key,
            sample_key,
        )
    keep = ~cross & (codes[src] >= 0) & (codes[dst] >= 0)
    return src[keep], dst[keep]


def _sample_counts(
    c: np.ndarray, s_src: np.ndarray, s_dst: np.ndarray, K: int, n_perms: int, sample_seed: int, pool
) -> tuple[np.ndarray, np.ndarray]:
    """Observed ``(K, K)`` and permuted ``(n_perms, K, K)`` pair counts of one sample (local edges, labels ``c``)."""
    obs = _count(c[None, :], s_src, s_dst, K)[0]
    graph = _split_edges(s_src, s_dst, len(c))
    n_streams = -(-n_perms // PERMS_PER_STREAM)
    seeds = spawn_seeds(sample_seed, n_streams)
    sizes = [min(PERMS_PER_STREAM, n_perms - t * PERMS_PER_STREAM) for t in range(n_streams)]
    args = [(c, graph, K, int(seeds[t]), sizes[t]) for t in range(n_streams)]
    if pool is not None and len(s_src):
        parts = list(pool.map(lambda a: _perm_counts(*a), args))
    elif len(s_src):
        parts = [_perm_counts(*a) for a in args]
    else:
        parts = [np.zeros((sz, K, K), dtype=np.int64) for sz in sizes]
    return obs, np.concatenate(parts, axis=0)


def _table(sample: str, cats: list[str], z, obs, mean, sd) -> pd.DataFrame:
    """The tidy enrichment rows of one sample (:data:`ENRICHMENT_COLUMNS`), one per ordered group pair."""
    K = len(cats)
    a = np.repeat(np.arange(K), K)
    b = np.tile(np.arange(K), K)
    return pd.DataFrame(
        {
            "sample": sample,
            "cluster_a": np.asarray(cats, dtype=object)[a],
            "cluster_b": np.asarray(cats, dtype=object)[b],
            "zscore": z.ravel().astype(np.float64),
            "count": obs.ravel().astype(np.int64),
            "perm_mean": mean.ravel().astype(np.float64),
            "perm_sd": sd.ravel().astype(np.float64),
        }
    )[ENRICHMENT_COLUMNS]
