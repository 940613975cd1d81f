"""Spot-level tumour score for spot-based spatial data (ST, Visium): ``tm.gr.tumor_score``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError
from .._keys import OBS, OBSM, UNS
from .._settings import logger
from .._store import store
from .._validation import check_int, check_obs_key, start
from ._neighborhoods import _coordinates, _is_real, _samples

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["MYOEPITHELIAL_GENES", "tumor_score"]

#: basal / myoepithelial genes: the myoepithelial layer that surrounds normal ducts and carcinoma
#: in situ and is lost in invasive carcinoma (Nguyen et al., Nat Commun 9:2028, 2018; Wu et al.,
#: Nat Genet 53:1334, 2021). ACTA2/MYH11/CNN1 are left out: pericytes and myCAFs express them.
MYOEPITHELIAL_GENES = ("KRT5", "KRT14", "KRT17", "TP63", "OXTR", "KRT15")
#: fewest CNV reference spots per section (``tm.tl.infer_cnv``'s ``min_reference_cells``)
MIN_CNV_REFERENCE = 10
#: thresholds of an arm-level copy-number change, those of ``tm.tl.call_malignant`` (|median log
#: fold change| of the arm's genes; Bonferroni-adjusted Mann-Whitney p)
ARM_SHIFT = 0.15
ARM_PVAL = 1e-3
#: with a pooled reference, the same arm against the section's own reference spots (same sign)
OWN_PVAL = 0.05


def _robust_z(v: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(v - median) / (1.4826 MAD) within each sample (0 where a sample's MAD is 0)."""
    out = np.zeros(len(v))
    for s in np.unique(codes):
        m = codes == s
        med = np.median(v[m])
        mad = 1.4826 * np.median(np.abs(v[m] - med))
        if mad > 0:
            out[m] = (v[m] - med) / mad
    return out


def _marker_share(logx, var_names: pd.Index, genes, on_quantile: float = 0.9) -> np.ndarray | None:
    """``tm.tl.annotate``'s scale: mean over expressed genes of min(x / on-level, 1) (None: no gene)."""
    from scipy import sparse

    idx = var_names.get_indexer(list(genes))
    idx = idx[idx >= 0]
    if len(idx) == 0:
        return None
    M = logx[:, idx]
    M = M.toarray() if sparse.issparse(M) else np.asarray(M)
    cols = []
    for j in range(M.shape[1]):
        nz = M[:, j][M[:, j] > 0]
        if len(nz):
            cols.append(np.minimum(M[:, j] / np.quantile(nz, on_quantile), 1.0))
    return np.mean(cols, axis=0) if cols else None


def _neighbour_mean(xy: np.ndarray, codes: np.ndarray, k: int):
    """Row-normalised graph of each spot's ``k`` nearest spots of the same sample (itself excluded)."""
    from scipy import sparse
    from scipy.spatial import cKDTree

    rows, cols = [], []
    for s in np.unique(codes):
        idx = np.flatnonzero(codes == s)
        kk = min(k, len(idx) - 1)
        if kk < 1:
            continue
        _, nb = cKDTree(xy[idx]).query(xy[idx], kk + 1)
        rows.append(np.repeat(idx, kk))
        cols.append(idx[nb[:, 1:]].ravel())
    n = len(xy)
    if not rows:
        return sparse.identity(n, format="csr")
    r, c = np.concatenate(rows), np.concatenate(cols)
    A = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    deg = np.asarray(A.sum(1)).ravel()
    deg[deg == 0] = 1
    return sparse.diags(1.0 / deg) @ A


def _expression_evidence(logx, var_names: pd.Index, codes: np.ndarray, total: np.ndarray | None) -> dict:
    """The expression terms (robust z within each section): epithelial - myoepithelial, cellularity."""
    from ..datasets import markers

    mk = markers()
    epi_genes = mk.loc[(mk["cell_type"] == "Epithelial") & (mk["direction"] == "+"), "gene"].tolist()
    epi = _marker_share(logx, var_names, epi_genes)
    if epi is None:
        raise InvalidInputError(
            "none of the epithelial marker genes (EPCAM, KRT8, KRT18, ...) is in var_names; the score "
            "needs gene symbols (see `tm.pp.gene_positions` / var['gene_symbol'])."
        )
    myo = _marker_share(logx, var_names, MYOEPITHELIAL_GENES)
    out = {"epithelial_minus_myoepithelial": _robust_z(epi - (0.0 if myo is None else myo), codes)}
    if total is not None:
        out["cellularity"] = _robust_z(np.log1p(total), codes)
    return out


def _normal_evidence(logx, var_names: pd.Index, codes: np.ndarray) -> np.ndarray:
    """Immune/stromal evidence per spot: z(immune and stromal marker share) - z(epithelial share).

    Marker shares on ``tm.tl.annotate``'s scale of the shipped major-level markers of the immune
    and stromal compartments and of the epithelial compartment (robust z within each section).
    """
    from ..datasets import markers

    mk = markers()
    mk = mk[(mk["level"] == "major") & (mk["direction"] == "+")]
    normal = _marker_share(
        logx, var_names, mk.loc[mk["compartment"].isin(["immune", "stromal"]), "gene"].unique()
    )
    epi = _marker_share(logx, var_names, mk.loc[mk["compartment"] == "epithelial", "gene"].unique())
    if normal is None:
        return -_robust_z(epi, codes)
    return _robust_z(normal, codes) - (0.0 if epi is None else _robust_z(epi, codes))


def _cnv_reference(score: np.ndarray, codes: np.ndarray, quantile: float, minimum: int = 0) -> np.ndarray:
    """The ``max(minimum, round(quantile * n))`` highest-``score`` spots of each section of ``n`` spots."""
    ref = np.zeros(len(score), dtype=bool)
    for s in np.unique(codes):
        idx = np.flatnonzero(codes == s)
        k = min(len(idx), max(int(minimum), int(round(quantile * len(idx)))))
        ref[idx[np.argsort(-score[idx], kind="stable")[:k]]] = True
    return ref


def _cnv_term(
    adata: AnnData, X, counts: bool, labels: np.ndarray, ref: np.ndarray, *, pooled: bool, n_jobs, seed: int
):
    """``tm.tl.infer_cnv`` of the spots with ``ref`` as the diploid reference (one reference pooled
    over all sections when ``pooled``, else each section's own): ``(AnnData it ran on, profiles)``.
    """
    import anndata as ad
    from scipy import sparse

    from .._keys import VAR
    from ..tl import infer_cnv

    cols = [c for c in (VAR.chromosome, VAR.start, VAR.end, VAR.arm) if c in adata.var.columns]
    tmp = ad.AnnData(
        X=sparse.csr_matrix(X, dtype=np.float32) if counts else X,
        var=adata.var[cols].copy(),
        obs=pd.DataFrame(
            {"sample": pd.Categorical(labels), "ref": pd.Categorical(np.where(ref, "ref", "other"))},
            index=adata.obs_names,
        ),
    )
    infer_cnv(
        tmp, sample_key=None if pooled else "sample", reference_key="ref", reference_cats="ref",
        n_jobs=n_jobs, rng=seed,
    )  # fmt: skip
    return tmp, np.asarray(tmp.obsm[OBSM.cnv], dtype=np.float64)


def _shifts(means: np.ndarray, cnt: np.ndarray, group: int, ref: slice, gene_arm, arm_labels) -> pd.DataFrame:
    """:func:`~tmeatlas.tl._cnv_evidence.arm_shifts` of group ``group`` against the reference groups ``ref``."""
    from ..tl._cnv_evidence import arm_shifts

    m_ref = means[ref].sum(0) / max(cnt[ref].sum(), 1)
    return arm_shifts(means[group] / max(cnt[group], 1), m_ref, gene_arm, arm_labels)


def _arm_test(
    tmp: AnnData, codes: np.ndarray, n_sections: int, top: np.ndarray, ref: np.ndarray, *, pooled: bool
) -> pd.DataFrame:
    """The tumour-free guard: do a section's top spots share arm-level CNV shifts? Returns one row per section.

    The mean expression of each section's ``top`` spots is compared with that of the reference
    spots (all sections' when ``pooled``, else the section's own) gene by gene, and every arm is
    tested with ``tm.tl``'s :func:`~tmeatlas.tl._cnv_evidence.arm_shifts` (median centred log fold
    change of the arm's genes, Mann-Whitney against the other genes), Bonferroni over arms, with
    the thresholds of ``tm.tl.call_malignant`` (:data:`ARM_SHIFT`, :data:`ARM_PVAL`). The top spots
    are chosen by expression, not by their CNV profiles, so all genes may test them.
    """
    from .._keys import UNS as _UNS
    from ..tl._cnv_evidence import gene_arm_codes, group_means
    from ..tl._malignant import _expression

    X, mode, genes = _expression(tmp, _UNS.cnv)
    bins = tmp.uns[_UNS.cnv]["bins"]
    cols, gene_arm = gene_arm_codes(genes, bins)
    arm_labels = np.asarray([a.split(":")[1] for a in pd.unique(bins["segment"].astype(str))])
    grp = np.where(top, codes, np.where(ref, n_sections + codes, -1))
    means, cnt = group_means(X, mode, grp, 2 * n_sections, cols)
    rows = []
    for s in range(n_sections):
        own = slice(n_sections + s, n_sections + s + 1)
        tab = _shifts(
            means, cnt, s, slice(n_sections, 2 * n_sections) if pooled else own, gene_arm, arm_labels
        )
        padj = np.minimum(1.0, tab["pval"].to_numpy() * len(arm_labels))
        sig = (tab["shift"].abs().to_numpy() >= ARM_SHIFT) & (padj <= ARM_PVAL)
        if pooled and cnt[own].sum() >= MIN_CNV_REFERENCE:
            # a pooled reference may hold another section's tumour cells: an arm counts only where the
            # section's own reference spots see a shift of the same sign (p <= 0.05)
            t_own = _shifts(means, cnt, s, own, gene_arm, arm_labels)
            sig &= (np.sign(t_own["shift"].to_numpy()) == np.sign(tab["shift"].to_numpy())) & (
                t_own["pval"].to_numpy() <= OWN_PVAL
            )
        best = int(np.argmin(padj)) if len(padj) else 0
        rows.append({
            "coherent_cnv": bool(sig.any()), "cnv_arms": ",".join(arm_labels[sig]),
            "reason": "arm-level CNV shared by the top spots" if sig.any() else
            f"no arm with |median log fold change| >= {ARM_SHIFT} and adjusted p <= {ARM_PVAL} in the top spots "
            f"(closest: {arm_labels[best] if len(arm_labels) else '-'}, shift {tab['shift'].iloc[best] if len(tab) else 0:.3f}, "
            f"adjusted p {padj[best] if len(padj) else 1:.2g})",
        })  # fmt: skip
    return pd.DataFrame(rows)


def _profile_correlation(C: np.ndarray, E: np.ndarray, codes: np.ndarray, quantile: float) -> np.ndarray:
    """Correlation of each spot's CNV profile with the mean profile of its section's top ``quantile`` of ``E``."""
    from ..tl._cnv_evidence import rowcorr

    out = np.zeros(len(E))
    for s in np.unique(codes):
        m = codes == s
        hi = m & (np.quantile(E[m], 1 - quantile) <= E)
        out[m] = rowcorr(C[m], C[hi].mean(0))
    return out


def _guard(
    S: np.ndarray, codes: np.ndarray, names, ref: np.ndarray, table: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """Put the scores of all sections on one scale: 0 = the median of the section's reference spots.

    A section whose spots show no coherent CNV (``table["coherent_cnv"]`` False) is shifted so that
    its highest spot sits at 0: no spot of it scores above the reference level of a section with
    tumour. Returns ``(scores, tumour_free)``.
    """
    out = S.copy()
    free = np.zeros(len(names), dtype=bool)
    for s, name in enumerate(names):
        m = codes == s
        r = m & ref
        out[m] = S[m] - np.median(S[r] if r.any() else S[m])
        if table is not None and not bool(table.loc[str(name), "coherent_cnv"]):
            free[s] = True
            out[m] = S[m] - S[m].max()
    return out, free


@doc_params("copy")
def tumor_score(
    adata: AnnData,
    *,
    layer: str | None = None,
    sample_key: str | None = None,
    spatial_key: str = OBSM.spatial,
    use_cnv: bool | None = None,
    cnv_reference: str = "pooled",
    reference_quantile: float = 0.1,
    top_quantile: float = 0.25,
    n_neighbors: int = 8,
    n_jobs: int | None = None,
    rng: int = 0,
    key_added: str = UNS.tumor_score,
    copy: bool = False,
) -> AnnData | None:
    r"""Spot-level tumour score for spot-based spatial data (ST, Visium): expression, copy number, neighbours.

    1. *Expression*: :math:`E = z(\text{epithelial} - \text{myoepithelial}) + z(\log n_\text{UMI})`,
       robust z-scores within the section (median, 1.4826 MAD). The epithelial and myoepithelial
       terms are marker shares on ``tm.tl.annotate``'s scale (mean over genes of
       :math:`\min(x_g / q_{0.9,g}, 1)` on log-normalised counts) of the shipped ``Epithelial``
       markers (Wu et al., Nat Genet 53:1334, 2021) and of :data:`MYOEPITHELIAL_GENES` (the
       basal/myoepithelial layer around normal glands and carcinoma in situ, lost in invasive
       carcinoma); :math:`\log n_\text{UMI}` measures cellularity (counts only).
    2. *Copy number* (``use_cnv``): the diploid reference is the ``reference_quantile`` of each
       section's spots with the strongest immune/stromal evidence (:math:`z(\text{immune and
       stromal marker share}) - z(\text{epithelial share})`, smoothed), pooled over all sections
       (``cnv_reference="pooled"``: a tumour-dominated section, whose most stromal spots still
       hold tumour cells, borrows the normal spots of the others) or per section (``"section"``).
       ``tm.tl.infer_cnv`` gives the CNV profiles. The CNV term is each spot's correlation with
       the mean profile of its section's ``top_quantile`` of smoothed :math:`E` (infercnv's
       "correlation to the tumour CNV profile", Tirosh et al., Science 352:189, 2016; the spot
       version of Erickson et al., Nature 608:360, 2022), robust-scaled within the section.
    3. *Tumour-free guard* (the spot version of ``tm.tl.call_malignant``'s): the mean expression of
       those top spots is tested arm by arm against the reference (median centred log fold change
       of the arm's genes, Mann-Whitney against the other genes, Bonferroni over arms; an arm
       counts at :math:`|\text{shift}| \geq` :data:`ARM_SHIFT` and adjusted
       :math:`p \leq` :data:`ARM_PVAL`, the single-cell thresholds; with a pooled reference the
       shift must also be seen, same sign, :math:`p \leq` :data:`OWN_PVAL`, against the section's
       own reference spots, so that tumour cells in another section's reference cannot make a
       normal section look aneuploid). A section with no such arm has no coherent CNV.
    4. *Neighbours*: the sum :math:`S` of the terms is averaged with its ``n_neighbors``
       nearest spots of the same section, :math:`S \leftarrow (S + \overline{S}_\text{nbrs}) / 2`.
    5. *One scale for all sections*: each section's scores are shifted so that its CNV reference
       spots have median 0. A section without a coherent CNV is flagged tumour-free with a warning
       and shifted so that its highest spot scores 0, instead of being re-centred like a section
       with tumour (the ranking of spots within a section is never changed). Without gene positions
       (``tm.pp.gene_positions``), or with a section too small for a reference of
       :data:`MIN_CNV_REFERENCE` spots, the CNV term and the guard are left out (log message).

    Parameters
    ----------
    adata
        Spots x genes AnnData with raw counts (or ``layer``) and coordinates in ``obsm``.
    layer
        Layer with the counts; ``None`` uses ``adata.X``.
    sample_key
        Column of ``adata.obs`` with the section; z-scores, references and neighbours are per section.
    spatial_key
        Key of the spot coordinates in ``adata.obsm``.
    use_cnv
        Add the copy-number term and the tumour-free guard; ``None``: when gene positions are present
        and every section has at least ``MIN_CNV_REFERENCE / top_quantile`` spots (40 by default).
    cnv_reference
        ``"pooled"`` (the reference spots of all sections form one diploid reference) or
        ``"section"`` (each section its own).
    reference_quantile
        Share of each section's spots (strongest immune/stromal evidence) in the CNV reference, at
        least :data:`MIN_CNV_REFERENCE` spots. It
        must stay below the share of non-tumour spots: 0.1 keeps the reference out of the tumour in
        sections up to about 85 % tumour spots (the reference of a section scored alone cannot be
        better than its least tumour-like spots).
    top_quantile
        Share of each section's spots (highest expression evidence) whose mean CNV profile is the
        tumour profile and which the tumour-free guard tests.
    n_neighbors
        Spots averaged with each spot (0: no smoothing).
    n_jobs
        Threads of ``tm.tl.infer_cnv``.
    rng
        Seed of ``tm.tl.infer_cnv`` and of the CNV clustering (recorded in ``params``).
    key_added
        Key of ``adata.uns`` for the parameters and per-section summary; the score goes to
        ``obs["tumor_score"]``.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obs["tumor_score"]`` (higher: more tumour; 0 is the level of the
    section's reference spots, and every spot of a section flagged tumour-free scores <= 0),
    ``obsm["X_tumor_score"]`` (the unsmoothed terms per spot, a labelled table) and
    ``uns[key_added]`` with ``summary`` (per section: spots, CNV reference spots, CNV used,
    ``coherent_cnv``, ``cnv_arms``, ``tumor_free``, ``reason``) and ``params``.
    """
    import warnings

    from scipy import sparse

    from .._core.expression import log_normalise
    from .._rng import resolve_seed
    from .._validation import get_matrix, looks_like_counts

    adata = start(adata, copy)
    _check_tumor_score(use_cnv, cnv_reference, reference_quantile, top_quantile, n_neighbors)
    check_obs_key(adata, sample_key, what="sample_key")
    seed = resolve_seed(rng)
    xy = _coordinates(adata, spatial_key)
    codes, names = _samples(adata, sample_key)
    X = get_matrix(adata, layer)
    X = sparse.csr_matrix(X, dtype=np.float64) if not sparse.issparse(X) else X.tocsr().astype(np.float64)
    counts = looks_like_counts(X)
    total = np.asarray(X.sum(1)).ravel()
    logx = log_normalise(X, True, lib=total) if counts else X  # log1p(CP10k) of counts; other input as given
    var_names = pd.Index(adata.var_names)
    components = _expression_evidence(logx, var_names, codes, total if counts else None)
    A = _neighbour_mean(xy, codes, int(n_neighbors)) if n_neighbors > 0 else None
    N = _normal_evidence(logx, var_names, codes)
    ref = _cnv_reference(
        (N + A @ N) / 2 if A is not None else N, codes, float(reference_quantile), MIN_CNV_REFERENCE
    )

    do_cnv = _decide_cnv(adata, use_cnv, codes, top_quantile)
    table = None
    if do_cnv:
        labels = np.asarray(names).astype(str)[codes]
        pooled = cnv_reference == "pooled"
        tmp, C = _cnv_term(adata, X, counts, labels, ref, pooled=pooled, n_jobs=n_jobs, seed=seed)
        E = np.sum(list(components.values()), axis=0)
        E = (E + A @ E) / 2 if A is not None else E
        top = _cnv_reference(E, codes, float(top_quantile)) & ~ref
        table = _arm_test(tmp, codes, len(names), top, ref, pooled=pooled)
        table.index = np.asarray(names).astype(str)
        corr = _profile_correlation(C, E, codes, float(top_quantile))
        components["cnv_correlation"] = _robust_z(corr, codes)
    S = np.sum(list(components.values()), axis=0)
    if A is not None:
        S = (S + A @ S) / 2
    S, free = _guard(S, codes, names, ref, table)
    summary = _summary(names, codes, ref, do_cnv, table, free)
    if free.any():
        warnings.warn(
            f"tumor_score: no coherent copy-number change in section(s) {', '.join(map(str, np.asarray(names)[free]))}: "
            "flagged tumour-free (uns['tumor_score']['summary']) and scored <= 0 (the ranking within each section "
            "is kept). A section that is mostly tumour has no clean reference of its own: score it together with "
            "other sections (sample_key=) so that their immune/stromal spots are pooled into the reference; a "
            "tumour with few arm-level changes cannot be confirmed at spot level (compare with use_cnv=False).",
            stacklevel=2,
        )
    params = {
        "layer": layer, "sample_key": sample_key, "spatial_key": spatial_key, "use_cnv": bool(do_cnv),
        "cnv_reference": cnv_reference, "reference_quantile": float(reference_quantile),
        "top_quantile": float(top_quantile),
        "n_neighbors": int(n_neighbors), "counts": bool(counts), "myoepithelial_genes": list(MYOEPITHELIAL_GENES),
        "rng": seed,
    }  # fmt: skip
    store(
        adata,
        tool="gr.tumor_score",
        obs={OBS.tumor_score: S},
        obsm={OBSM.tumor_score: pd.DataFrame(components, index=adata.obs_names)},
        uns_key=key_added,
        uns={"summary": summary},
        params=params,
    )
    return adata if copy else None


def _check_tumor_score(use_cnv, cnv_reference, reference_quantile, top_quantile, n_neighbors) -> None:
    """None; raises :class:`~tmeatlas.InvalidParameterError` naming the first invalid parameter of :func:`tumor_score`."""
    if use_cnv is not None and not isinstance(use_cnv, bool):
        raise InvalidParameterError(f"use_cnv must be True, False or None, got {use_cnv!r}.")
    if cnv_reference not in ("pooled", "section"):
        raise InvalidParameterError(f"cnv_reference must be 'pooled' or 'section', got {cnv_reference!r}.")
    for name, q in (("reference_quantile", reference_quantile), ("top_quantile", top_quantile)):
        if not _is_real(q) or not 0 < q <= 0.5:
            raise InvalidParameterError(f"{name} must be in (0, 0.5], got {q!r}.")
    check_int("n_neighbors", n_neighbors, 0)


def _decide_cnv(adata: AnnData, use_cnv: bool | None, codes: np.ndarray, top_quantile) -> bool:
    """Whether the copy-number term is computed: ``use_cnv``, or (``None``) gene positions and large enough sections."""
    from .._keys import VAR

    have_positions = all(c in adata.var.columns for c in (VAR.chromosome, VAR.start, VAR.arm))
    do_cnv = have_positions if use_cnv is None else use_cnv
    if do_cnv and not have_positions:
        raise MissingResultError(
            "use_cnv=True needs gene positions: run `tm.pp.gene_positions(adata)` first."
        )
    if use_cnv is None and not have_positions:
        logger.info("tumor_score: no gene positions, copy-number term left out (run tm.pp.gene_positions)")
    smallest = int(np.bincount(codes).min())
    if do_cnv and use_cnv is None and top_quantile * smallest < MIN_CNV_REFERENCE:
        logger.info(
            "tumor_score: a section has %d spots, too few for a %d-spot CNV reference; copy-number term left out",
            smallest,
            MIN_CNV_REFERENCE,
        )
        do_cnv = False
    return do_cnv


def _summary(
    names: list[str],
    codes: np.ndarray,
    ref: np.ndarray,
    do_cnv: bool,
    table: pd.DataFrame | None,
    free: np.ndarray,
) -> pd.DataFrame:
    """The per-section summary table of :func:`tumor_score` (spots, CNV reference, guard outcome)."""
    summary = pd.DataFrame({
        "sample": names,
        "n_spots": np.bincount(codes, minlength=len(names)),
        "n_cnv_reference": np.bincount(codes[ref], minlength=len(names)) if do_cnv else 0,
        "cnv": bool(do_cnv),
        "coherent_cnv": [bool(table.loc[str(n), "coherent_cnv"]) for n in names] if do_cnv else False,
        "cnv_arms": [str(table.loc[str(n), "cnv_arms"]) for n in names] if do_cnv else "",
        "tumor_free": free,
        "reason": [str(table.loc[str(n), "reason"]) for n in names] if do_cnv else "no CNV term",
    })  # fmt: skip
    summary.index = summary.index.astype(str)
    return summary
