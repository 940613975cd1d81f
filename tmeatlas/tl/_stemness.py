"""Stemness / developmental potential per cell: ``tm.tl.stemness``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import InvalidInputError, InvalidParameterError
from .._keys import OBS, UNS
from .._settings import logger, settings
from .._store import store
from .._validation import check_expression_values, check_obs_key, get_matrix, looks_like_counts, start

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["stemness"]


def _log_chunk(Xc, counts: bool) -> sparse.csr_matrix:
    Xc = sparse.csr_matrix(Xc, dtype=np.float64)
    if counts:
        lib = np.asarray(Xc.sum(axis=1)).ravel()
        Xc = sparse.csr_matrix(sparse.diags(np.divide(1e4, lib, out=np.zeros_like(lib), where=lib > 0)) @ Xc)
        Xc.data = np.log1p(Xc.data)
    return Xc


def _gene_count_signature(X, rows: np.ndarray, n_genes: int, chunk: int, counts: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CytoTRACE's gene-count signature over the cells ``rows``.

    Returns ``(gcs, gene_count, top_genes)``: per cell the mean log expression of the ``n_genes``
    genes whose expression correlates best (Pearson, across ``rows``) with the number of genes
    the cell expresses; the gene counts; the column indices of those genes. Two passes over
    the cells, chunked; the matrix is never densified.
    """
    n, p = len(rows), X.shape[1]
    gc = np.zeros(n)
    s1 = np.zeros(p)
    s2 = np.zeros(p)
    sxc = np.zeros(p)
    for s in range(0, n, chunk):
        Xc = _log_chunk(X[rows[s : s + chunk]], counts)
        c = np.diff(Xc.indptr).astype(float)  # detected genes (log1p(0) = 0 keeps zeros implicit)
        gc[s : s + chunk] = c
        s1 += np.asarray(Xc.sum(axis=0)).ravel()
        s2 += np.asarray(Xc.multiply(Xc).sum(axis=0)).ravel()
        sxc += np.asarray(Xc.T @ c).ravel()
    mean = s1 / n
    var = np.maximum(s2 / n - mean**2, 0.0)
    cm, cv = gc.mean(), gc.var()
    cov = sxc / n - mean * cm
    den = np.sqrt(var * cv)
    r = np.divide(cov, den, out=np.full(p, -np.inf), where=den > 0)
    k = int(min(n_genes, np.isfinite(r).sum()))
    top = np.argsort(-r)[:k]
    w = np.zeros(p)
    w[top] = 1.0 / max(k, 1)
    gcs = np.zeros(n)
    for s in range(0, n, chunk):
        gcs[s : s + chunk] = _log_chunk(X[rows[s : s + chunk]], counts) @ w
    return gcs, gc, top


def _coherent_component(X, rows: np.ndarray, cols: np.ndarray, chunk: int, counts: bool) -> np.ndarray:
    """First principal component of the standardised log expression of genes ``cols`` over ``rows``.

    The part of a gene set that co-varies in these cells (PAGODA's pathway component, Fan et al.,
    Nat Methods 13:241, 2016), oriented to agree with the set's mean; the covariance comes from
    one chunked pass (genes x genes), so only the set's columns are ever dense, a chunk at a time.
    """
    k = len(cols)
    s1 = np.zeros(k)
    G = np.zeros((k, k))
    n = len(rows)
    for s in range(0, n, chunk):
        D = _log_chunk(X[rows[s : s + chunk]], counts)[:, cols].toarray()
        s1 += D.sum(axis=0)
        G += D.T @ D
    mean = s1 / n
    cov = G / n - np.outer(mean, mean)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    ok = sd > 0
    if ok.sum() < 2:
        return np.zeros(n)
    corr = cov[np.ix_(ok, ok)] / np.outer(sd[ok], sd[ok])
    vals, vecs = np.linalg.eigh(corr)
    v = vecs[:, -1]
    if v.sum() < 0:  # orient with the set: most genes load positively on "more stem-like"
        v = -v
    # the core: genes whose correlation with the component is beyond chance (|r| > 3 / sqrt(n)),
    # then the component of the core alone, so that non-varying genes add no noise
    r = corr @ v / np.sqrt(max(v @ corr @ v, 1e-12))
    core = r > 3.0 / np.sqrt(n)
    if core.sum() >= 3:
        sub = corr[np.ix_(core, core)]
        vals, vecs = np.linalg.eigh(sub)
        vc = vecs[:, -1]
        vc = -vc if vc.sum() < 0 else vc
        v = np.zeros_like(v)
        v[core] = vc
    out = np.zeros(n)
    for s in range(0, n, chunk):
        D = _log_chunk(X[rows[s : s + chunk]], counts)[:, cols].toarray()[:, ok]
        out[s : s + chunk] = ((D - mean[ok]) / sd[ok]) @ v
    return out


def _percentile(x: np.ndarray) -> np.ndarray:
    """Rank of each value in (0, 1], ties averaged."""
    from scipy.stats import rankdata

    return rankdata(x) / len(x) if len(x) else x


def stemness(
    adata: AnnData,
    *,
    groupby: str | None = None,
    signatures: str | list[str] | dict | None = "stemness",
    gene_count_weight: float = 0.5,
    n_genes: int = 200,
    layer: str | None = None,
    smooth: str | None = "auto",
    min_cells: int = 20,
    chunk_size: int | None = None,
    key_added: str = OBS.stemness,
    copy: bool = False,
) -> AnnData | None:
    r"""Stemness (developmental potential) per cell, in [0, 1], from two independent signals.

    **1. Transcriptional diversity (CytoTRACE).** Less differentiated cells express more genes
    (Gulati et al., Science 367:405, 2020). As in CytoTRACE, the gene counts themselves are not
    used (they follow sequencing depth) but the *gene-count signature*: the mean log-normalised
    expression of the ``n_genes`` genes whose expression correlates best (Pearson, across the
    cells of the group) with the number of genes each cell expresses.

    **2. Published stemness signatures.** The genes of the library's ``stemness`` category (or
    the sets given) rarely move together as a whole: a 166-gene list holds the few genes of a
    tumour's stem-like program among many that do not vary. The score is therefore the sets'
    *coherent component*: the first principal component of the standardised log expression of
    their genes across the group's cells (PAGODA's pathway score, Fan et al., Nat Methods 13:241,
    2016), oriented so that the genes load positively, and recomputed on its core (the genes that
    correlate with it beyond chance, ``r > 3 / sqrt(n)``) so that non-varying genes add no noise.

    Within each group (``groupby``, e.g. sample or compartment: stemness compares cells of one
    lineage, so run it per patient on the malignant cells or give ``groupby``), both signals are
    turned into percentile ranks and combined,

    .. math:: \text{stemness} = w \, \text{rank}(GCS) + (1 - w)\, \text{rank}(\text{signatures}),

    with ``w = gene_count_weight \cdot \max(\rho, 0)`` where ``rho`` is the Spearman correlation of
    the two signals in the group: gene counts also follow cell size, depth and cell cycle, so they
    count only as far as they agree with the independent signature evidence (with no agreement,
    the signatures decide alone); ``rho`` and the weight used are recorded per group. The
    result is ranked again to [0, 1]. With a neighbour graph
    (``obsp["connectivities"]``, ``smooth="auto"``) the combined score is averaged with each
    cell's neighbours first (CytoTRACE smooths by diffusion on a kNN graph).

    Validated (``tests/test_stemness.py``) on simulated cohorts, where stem-like malignant clones
    over-express stemness genes (PROM1, ALDH1A1, SOX2, ...) but the simulator does not model
    transcriptional diversity: that part of the signal is not tested there.

    Parameters
    ----------
    adata
        Annotated data matrix (counts or log-normalised).
    groupby
        Column of ``adata.obs``: ranks are computed within each group (groups with fewer than
        ``min_cells`` cells get NaN). ``None``: all cells together.
    signatures
        Stemness gene sets: a library category or names, a dict, or ``None`` for the gene-count
        signal alone (then ``gene_count_weight`` is 1).
    gene_count_weight
        Weight ``w`` of the gene-count signature in [0, 1]; 0 uses the signatures alone.
    n_genes
        Genes in the gene-count signature (CytoTRACE: 200).
    layer
        Layer to use instead of ``adata.X``.
    smooth
        ``"auto"`` (use ``obsp["connectivities"]`` when present), ``None``, or an ``obsp`` key.
    min_cells
        Fewest cells in a group.
    chunk_size
        Cells per chunk (default ``tm.settings.chunk_size``).
    key_added
        Column of ``adata.obs`` for the score; the two components go to
        ``obs[f"{key_added}_gene_count"]`` and ``obs[f"{key_added}_signatures"]`` (percentile ranks).
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or a copy. Writes the three ``obs`` columns and ``uns["stemness"]`` with ``params``,
    the signatures used and the gene-count signature genes per group.
    """
    adata = start(adata, copy)
    check_obs_key(adata, groupby, what="groupby")
    if not 0.0 <= float(gene_count_weight) <= 1.0:
        raise InvalidParameterError(f"gene_count_weight must be in [0, 1], got {gene_count_weight}.")
    if int(n_genes) < 10:
        raise InvalidParameterError(f"n_genes must be >= 10, got {n_genes}.")
    chunk = int(chunk_size or settings.chunk_size)
    X = get_matrix(adata, layer)
    X = sparse.csr_matrix(X) if not sparse.issparse(X) else X.tocsr()
    check_expression_values(X)
    counts = looks_like_counts(X)
    w = float(gene_count_weight) if signatures is not None else 1.0

    sig_rank = np.full(adata.n_obs, np.nan)
    used: list[str] = []
    sig_cols = np.zeros(0, dtype=np.int64)
    if signatures is not None and w < 1.0:
        from ._signatures import _gene_columns, _resolve

        tab = _resolve(signatures)
        up = tab.loc[tab["direction"] == "up"] if "direction" in tab else tab
        used = list(pd.unique(up["name"]))
        genes = list(pd.unique(up["gene"]))
        cols = _gene_columns(adata.var_names, genes)
        sig_cols = np.unique(cols[cols >= 0])
        if len(sig_cols) < 5:
            raise InvalidInputError(
                f"only {len(sig_cols)} of the {len(genes)} stemness signature genes are in adata.var_names; "
                "check the gene identifiers or pass `signatures=`."
            )
    groups = adata.obs[groupby].astype(str).to_numpy() if groupby else np.full(adata.n_obs, "all", dtype=object)
    gc_rank = np.full(adata.n_obs, np.nan)
    combined = np.full(adata.n_obs, np.nan)
    gcs_genes = []
    weights: list[dict] = []
    for g in pd.unique(groups):
        rows = np.flatnonzero(groups == g)
        if len(rows) < min_cells:
            continue
        if w > 0:
            gcs, _, top = _gene_count_signature(X, rows, int(n_genes), chunk, counts)
            gc_rank[rows] = _percentile(gcs)
            gcs_genes += [{"group": g, "gene": str(adata.var_names[j]), "rank": k} for k, j in enumerate(top)]
        if w < 1.0:
            sig_rank[rows] = _percentile(_coherent_component(X, rows, sig_cols, chunk, counts))
        if 0 < w < 1:
            # the gene-count signal counts as far as it agrees with the stemness programs here
            from scipy.stats import spearmanr

            rho = float(spearmanr(gc_rank[rows], sig_rank[rows])[0])
            w_eff = w * max(rho, 0.0) if np.isfinite(rho) else 0.0
        else:
            rho, w_eff = float("nan"), w
        weights.append({"group": g, "n_cells": len(rows), "rho_gene_count_signatures": rho, "gene_count_weight": w_eff})
        gc_part = w_eff * gc_rank[rows] if w_eff > 0 else 0.0
        sig_part = (1 - w_eff) * sig_rank[rows] if w_eff < 1 else 0.0
        combined[rows] = gc_part + sig_part
    graph = None
    if smooth is not None:
        gkey = "connectivities" if smooth == "auto" else smooth
        if gkey in adata.obsp:
            graph = gkey
            A = sparse.csr_matrix(adata.obsp[gkey], dtype=np.float64)
            src = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
            same = groups[src] == groups[A.indices]
            A = sparse.csr_matrix((A.data * same, A.indices, A.indptr), shape=A.shape)  # within groups only
            deg = np.asarray(A.sum(axis=1)).ravel()
            ok = np.isfinite(combined)
            v = np.where(ok, combined, 0.0)
            nb = np.divide(A @ v, deg, out=v.copy(), where=deg > 0)
            combined = np.where(ok, 0.5 * (combined + nb), np.nan)
        elif smooth != "auto":
            raise InvalidInputError(f"no graph obsp[{smooth!r}]; run `sc.pp.neighbors(adata)` or pass smooth=None.")
    final = np.full(adata.n_obs, np.nan)
    for g in pd.unique(groups):
        rows = np.flatnonzero((groups == g) & np.isfinite(combined))
        if len(rows):
            final[rows] = _percentile(combined[rows])
    logger.info("stemness: %d cells scored in %d groups", int(np.isfinite(final).sum()), len(pd.unique(groups)))
    genes_tab = pd.DataFrame(gcs_genes, columns=["group", "gene", "rank"])
    wtab = pd.DataFrame(weights, columns=["group", "n_cells", "rho_gene_count_signatures", "gene_count_weight"])
    wtab.index = wtab.index.astype(str)
    genes_tab.index = genes_tab.index.astype(str)
    store(
        adata,
        tool="tl.stemness",
        obs={
            key_added: final.astype(np.float32),
            f"{key_added}_gene_count": gc_rank.astype(np.float32),
            f"{key_added}_signatures": sig_rank.astype(np.float32),
        },
        uns_key=UNS.stemness,
        uns={"signatures_used": used, "gene_count_genes": genes_tab, "weights": wtab, "smoothed_over": graph or "none"},
        params={
            "groupby": groupby,
            "signatures": signatures if isinstance(signatures, str | type(None)) else "user",
            "gene_count_weight": w,
            "n_genes": int(n_genes),
            "layer": layer,
            "smooth": smooth,
            "min_cells": int(min_cells),
            "key_added": key_added,
        },
    )
    return adata if copy else None
