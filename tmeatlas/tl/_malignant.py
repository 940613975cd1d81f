"""Per-cell malignant calls from inferred copy number: ``tm.tl.call_malignant``."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._core.cnv import as_csr
from .._core.expression import input_mode
from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError
from .._keys import OBS, UNS
from .._rng import resolve_seed
from .._settings import logger
from .._store import store
from .._validation import check_obs_key, get_matrix, start
from ._cnv_evidence import arm_features, arm_matrix, arm_shifts, cnv_clusters, group_means, rowcorr

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["call_malignant"]

MALIGNANT, NON_MALIGNANT, UNCERTAIN = "malignant", "non-malignant", "uncertain"
#: fewest genes that copy-number calls are made from: with fewer (targeted panels), every cell is
#: uncertain. ``benchmarks/cnv_panel.py --no-floor`` (random panels of the three shared labelled sets,
#: three draws per size): from up to 2,000 genes no draw found the malignant cells (F1 0 in 36 of 36;
#: 3 of them confidently called every cell non-malignant); from 3,000-4,500 genes F1 ranged from 0 to
#: 0.996 with the draw, from 6,000 genes 0.35-1.0; whole transcriptomes (9,400-9,600 genes) 0.986-1.0.
MIN_CNV_GENES = 3000
#: below this many genes, calls are made but a warning says they were unstable in that benchmark
STABLE_CNV_GENES = 6000
#: a sample whose two mixture components are closer than this (Ashman's D on the Fisher-z CNV
#: correlation; D > 2 is the usual criterion of a clean separation) gets uncertain calls
MIN_SEPARATION = 2.0
#: a sample where more than this fraction of the reference cells carries the tumour's CNV
#: profile (correlation > 0.5) has a suspect reference: its calls are uncertain
MAX_REFERENCE_TUMOUR_LIKE = 0.1
#: a sample where fewer than this fraction of the cells of its CNV clusters (clusters whose arm
#: shifts were significant as a whole) get a malignant probability above 0.5 has cell calls that
#: contradict its cluster tests (the mixture's normal component took tumour cells): uncertain
MIN_CLUSTER_AGREEMENT = 0.5


@doc_params("copy")
def call_malignant(
    adata: AnnData,
    *,
    sample_key: str | None = None,
    cnv_key: str = UNS.cnv,
    min_arm_shift: float = 0.15,
    max_pval: float = 1e-3,
    min_cells: int = 20,
    thresholds: tuple[float, float] = (0.25, 0.75),
    rng: int = 0,
    key_added: str = UNS.malignant,
    copy: bool = False,
) -> AnnData | None:
    r"""Call malignant cells from their inferred copy-number profiles, per sample.

    Needs :func:`tmeatlas.tl.infer_cnv`. Within each sample (``sample_key``; all cells when
    ``None``):

    1. ``cnv_score``: the CNV amplitude of a cell, the mean square of its profile over bins
       (the "CNV signal" of Tirosh et al., Nature 2016; Puram et al., Cell 2017).
    2. Consensus: the sample's cells are clustered on their CNV profiles (k-means on arm means of
       half the genes) and every cluster is tested, arm by arm, at gene level against the
       reference cells on the other half (median centred log fold change of the arm's genes,
       Mann-Whitney test; see :mod:`tmeatlas.tl._cnv_evidence`). Arms with ``|shift| >=
       min_arm_shift`` and Bonferroni-corrected ``p <= max_pval`` (over the sample's clusters
       and arms) are CNV arms; clusters with one are malignant clusters. Each cell's
       ``cnv_correlation`` is the Pearson correlation of its profile with the nearest malignant
       cluster's profile written as arm-level segments (its shifts on CNV arms, 0 elsewhere).
       At low depth a cluster shows only its largest arms, so the cells the mixture (step 4)
       calls malignant are retested together (Bonferroni over arms; whether the sample has a
       tumour is already decided), the arms they share join every cluster's segments, and the
       correlation and mixture are recomputed, kept when the two components separate better
       (Ashman's D; up to three rounds; ``benchmarks/malignant_real.py``, ``shallow_1500``: F1
       0.83-0.88 before, 0.88-0.94 after).
    3. **Guard against false tumour calls.** A sample without any CNV arm (or whose consensus
       has fewer than ``max(5, 1%)`` cells) has no coherent, recurrent CNV profile: every cell is
       non-malignant (probability 0) and the reason is recorded. Arm medians are insensitive to
       the expression programs of normal cell types absent from the reference; a one-copy change
       moves them by about 0.4-0.7 (ln units), ``min_arm_shift=0.15`` by less than half of that.
    4. ``malignant_prob``: the posterior of a two-component Gaussian mixture fitted by EM to the
       cells' (Fisher-z of ``cnv_correlation``, CNV dosage), where the dosage is the projection
       of a cell's arm means on the consensus arm shifts (1: carries them, 0: does not); the
       sample's reference cells are fixed to the normal component, whose mean is theirs (its
       spread is fitted: a free mean drifts into a skewed tumour majority). Calls: ``malignant`` above
       ``thresholds[1]``, ``non-malignant`` below ``thresholds[0]``, ``uncertain`` between.

    The arm tests and the mixture use the sample's own reference cells when it has at least
    ``min_cells`` of them, else all reference cells (as :func:`~tmeatlas.tl.infer_cnv` does for its
    per-sample means: a handful of sparse cells is too noisy a yardstick); Bonferroni counts the
    sample's own clusters and arms. A sample's calls are **uncertain**, with a warning and the
    reason in ``uns["malignant"]["samples"]``, when the evidence cannot decide: its reference is
    suspect (unverified, or more than 10 % of it carries the tumour's profile); its two mixture
    components overlap (Ashman's D < 2); fewer than half of the cells of its CNV clusters are
    called malignant (``cluster_agreement``: the mixture's normal component took tumour cells, as
    in tumour-dominated samples); or it shows no CNV cluster against fewer than ``min_cells``
    reference cells (too little power to call a sample tumour-free). On the shared real tumours
    cut to 80-97 % malignant cells (``benchmarks/malignant_real.py``, 18 runs) no sample is
    called confidently wrong (before these rules: 10), and Qian's ovarian samples reach F1 0.99,
    0.94 and 0.93 at 80, 90 and 97 % (before: 0.84, 0.74, 0.42).

    Samples with fewer than ``min_cells`` cells are analysed pooled together (a documented
    fallback); if the pool is still too small its cells are ``uncertain`` (probability NaN),
    with a warning. Without any reference cell (``infer_cnv`` found no normal lineage and
    warned), nothing anchors which side of a CNV difference is normal — against a mean
    dominated by tumour cells, normal cells look like the mirror image of the tumour — so every
    cell is ``uncertain`` (probability NaN) with a warning: pass reference cells to ``infer_cnv``.

    Haematological malignancies: where ``infer_cnv`` found an immune lineage of a sample carrying
    copy-number changes as a whole (``uns["cnv"]["reference"]["haematological"]``), that lineage's
    cells are called like any other on their CNV, but those the evidence would call non-malignant
    are ``uncertain`` (the lineage is mostly malignant; low-depth lymphocytes often carry too little
    signal to show a cell is normal); cells with another lineage's markers that the evidence would
    call malignant are ``uncertain`` too (the malignant cells are of the immune lineage: doublets,
    or normal cells whose regional expression resembles a CNV); and a sample where no CNV cluster
    reaches significance is not trusted. ``benchmarks/haematological.py`` measures it on a constructed lymphoma.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.tl.infer_cnv` (same cells and genes).
    sample_key
        Column of ``adata.obs`` with the sample (patient) of each cell.
    cnv_key
        The ``key_added`` of :func:`~tmeatlas.tl.infer_cnv`.
    min_arm_shift
        Smallest arm-level median log fold change (natural log) that counts as a CNV.
    max_pval
        Largest Bonferroni-corrected p-value of an arm that counts.
    min_cells
        Samples with fewer cells are pooled.
    thresholds
        Probabilities below the first are non-malignant, above the second malignant.
    rng
        Seed of the k-means clustering of CNV profiles (recorded).
    key_added
        Key of ``adata.uns`` for the per-sample summary; the calls go to ``obs["malignant"]``.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obs["cnv_score"]``, ``obs["cnv_correlation"]``,
    ``obs["malignant_prob"]``, ``obs["malignant"]`` (categorical: malignant / non-malignant /
    uncertain) and ``uns["malignant"]``: ``samples`` (per sample: cells, CNV arms, reference
    cells the tests used, guard statistics, whether the calls are trusted and why, malignant
    fraction) and ``arm_shifts`` (tidy: sample, CNV cluster, arm, shift, p-value; cluster -1 is the
    kept retest of the cells called malignant, pooled).
    """
    lo_t, hi_t = thresholds
    if not 0 <= lo_t <= hi_t <= 1:
        raise InvalidParameterError(f"thresholds must satisfy 0 <= low <= high <= 1, got {thresholds}.")
    if min_cells < 5:
        raise InvalidParameterError(f"min_cells must be >= 5, got {min_cells}.")
    adata = start(adata, copy)
    check_obs_key(adata, sample_key, what="sample_key")
    groups = _groups(adata, sample_key, min_cells)
    res = cnv_evidence(
        adata,
        groups,
        cnv_key=cnv_key,
        min_arm_shift=min_arm_shift,
        max_pval=max_pval,
        min_cells=min_cells,
        seed=resolve_seed(rng),
    )
    prob = res["prob"]
    n_genes = int(adata.uns[cnv_key].get("n_genes_used", MIN_CNV_GENES))
    if n_genes < MIN_CNV_GENES:
        warnings.warn(
            f"infer_cnv used {n_genes:,} genes, fewer than the {MIN_CNV_GENES:,} that copy-number calls need "
            "(targeted panels are smaller; benchmarks/cnv_panel.py): every cell is marked uncertain. Label tumour "
            "cells another way (cell types, a pathologist's regions).",
            stacklevel=2,
        )
        prob = np.full(adata.n_obs, np.nan)
        res["table"]["reason"] = f"too few genes for copy-number calls ({n_genes:,} < {MIN_CNV_GENES:,})"
    elif n_genes < STABLE_CNV_GENES:
        warnings.warn(
            f"infer_cnv used {n_genes:,} genes: copy-number calls from fewer than {STABLE_CNV_GENES:,} genes were "
            "unstable on random gene panels of real tumours (F1 0-1 by panel; benchmarks/cnv_panel.py). Check "
            "the calls against markers or histology.",
            stacklevel=2,
        )
    calls = np.where(prob > hi_t, MALIGNANT, np.where(prob < lo_t, NON_MALIGNANT, UNCERTAIN))
    calls[np.isnan(prob)] = UNCERTAIN
    calls[_guard_samples(res["table"], groups, adata.uns[cnv_key].get("reference", {}), min_cells)] = (
        UNCERTAIN
    )
    calls[_haematological_cells(adata, cnv_key, groups, calls)] = UNCERTAIN
    empty = _empty_cells(adata, cnv_key)
    if empty.any():  # no count in any CNV gene: no evidence either way
        logger.warning(
            "call_malignant: %d cells have no count in the %d genes of the CNV inference; they are uncertain.",
            int(empty.sum()), len(adata.uns[cnv_key]["genes"]),
        )  # fmt: skip
        calls[empty] = UNCERTAIN
        prob = np.where(empty, np.nan, prob)
    calls = pd.Categorical(calls, categories=[MALIGNANT, NON_MALIGNANT, UNCERTAIN])
    table = res["table"]
    frac = pd.Series(np.asarray(calls == MALIGNANT)).groupby(groups).mean()
    table["malignant_fraction"] = table["sample"].map(frac).astype(float)
    logger.info(
        "call_malignant: %d malignant, %d uncertain of %d cells",
        (calls == MALIGNANT).sum(),
        (calls == UNCERTAIN).sum(),
        adata.n_obs,
    )
    store(
        adata,
        tool="tl.call_malignant",
        obs={
            OBS.cnv_score: res["score"].astype(np.float32),
            OBS.cnv_correlation: res["corr"].astype(np.float32),
            OBS.malignant_prob: prob.astype(np.float32),
            OBS.malignant: calls,
        },
        uns_key=key_added,
        uns={"samples": table, "arm_shifts": res["arms"]},
        params={
            "sample_key": sample_key,
            "cnv_key": cnv_key,
            "min_arm_shift": min_arm_shift,
            "max_pval": max_pval,
            "min_cells": min_cells,
            "thresholds": list(thresholds),
            "rng": resolve_seed(rng),
        },
    )
    return adata if copy else None


def _guard_samples(table: pd.DataFrame, groups: np.ndarray, reference: dict, min_cells: int) -> np.ndarray:
    """Cells whose calls cannot be trusted (marked uncertain, with a warning and the reason in ``table``).

    A sample is not trusted when its reference is suspect (the automatic reference could not be
    checked against immune cells, or more than :data:`MAX_REFERENCE_TUMOUR_LIKE` of its reference
    cells carry the tumour's CNV profile), when its CNV evidence does not separate two groups
    of cells (separation < :data:`MIN_SEPARATION`), when it shows no CNV cluster but was tested against
    fewer than ``min_cells`` reference cells (too little power to call the sample tumour-free), or when :func:`~tmeatlas.tl.infer_cnv` found an
    immune lineage with copy-number changes in it (a haematological malignancy) but no CNV cluster
    calls cells malignant: a confident call there could be wrong either way.
    """
    for col in ("separation", "reference_tumour_like"):
        if col not in table:
            table[col] = np.nan
    table["trusted"] = True
    unverified = reference.get("verified", True) is False
    sep = table["separation"].astype(float)
    like = table["reference_tumour_like"].astype(float)
    bad_sep = table["coherent_cnv"].astype(bool) & (sep < MIN_SEPARATION)
    bad_ref = like > MAX_REFERENCE_TUMOUR_LIKE
    why = pd.Series("", index=table.index, dtype=object)
    why[bad_sep] = f"CNV evidence does not separate the cells (separation {MIN_SEPARATION:g} needed)"
    if "cluster_agreement" in table:
        agree = table["cluster_agreement"].astype(float)
        why[table["coherent_cnv"].astype(bool) & (agree < MIN_CLUSTER_AGREEMENT)] = (
            f"fewer than {MIN_CLUSTER_AGREEMENT:.0%} of the cells of the CNV clusters are called malignant: the cell "
            "calls contradict the cluster tests"
        )
    # "no copy-number change" shown against a handful of reference cells is no evidence
    if "n_reference" in table:
        n_ref = table["n_reference"].fillna(0).astype(int)
        weak = ~table["coherent_cnv"].astype(bool) & (n_ref < min_cells) & (table["n_cells"] >= min_cells)
        why[weak] = (
            "no CNV cluster reaches significance, but against only "
            + n_ref[weak].astype(str)
            + f" reference cells (fewer than min_cells={min_cells}): too few to show that the sample has none"
        )
    why[bad_ref] = "suspect reference: reference cells carry the tumour's CNV profile"
    haem = reference.get("haematological")
    if isinstance(haem, pd.DataFrame) and len(haem):
        # infer_cnv found an immune lineage with copy-number changes here: "no malignant cell" would contradict it
        contra = table["sample"].astype(str).isin(set(haem["sample"].astype(str))) & ~table[
            "coherent_cnv"
        ].astype(bool)
        why[contra] = (
            "an immune lineage carries copy-number changes (uns['cnv']['reference']['haematological']) but no "
            "CNV cluster reaches significance to call its cells"
        )
    if unverified:
        why[:] = "suspect reference: not checked against immune cells"
    bad = why != ""
    if not bad.any():
        return np.zeros(len(groups), bool)
    table.loc[bad, "trusted"] = False
    table.loc[bad, "reason"] = why[bad] + " (" + table.loc[bad, "reason"].astype(str) + ")"
    names = table.loc[bad, "sample"].astype(str).tolist()
    warnings.warn(
        f"malignant calls of {len(names)} sample(s) ({', '.join(names[:10])}) are marked uncertain: "
        + "; ".join(sorted(set(why[bad])))
        + ". See uns['malignant']['samples'] (separation, "
        "reference_tumour_like) and uns['cnv']['reference']; pass reference_key/reference_cats to "
        "`tm.tl.infer_cnv` with cells you know are normal (e.g. immune cells).",
        stacklevel=3,
    )
    return np.isin(groups.astype(str), names)


def _haematological_cells(adata: AnnData, cnv_key: str, groups: np.ndarray, calls: np.ndarray) -> np.ndarray:
    """Cells of a sample with a haematological malignancy whose call the lineage contradicts.

    :func:`~tmeatlas.tl.infer_cnv` found an immune lineage of the sample carrying arm-level changes
    as a whole (``uns[cnv_key]["reference"]["haematological"]``): most of its cells are malignant, so
    a cell of it without per-cell CNV evidence (low-depth lymphocytes often have too little) is not
    shown to be normal; and the malignant cells are of that lineage, so a cell with the markers of
    another lineage that the CNV evidence calls malignant is a doublet, a normal lineage whose
    regional expression resembles the tumour's profile, or a second malignancy, which the data do
    not tell apart. Both become uncertain, with a warning. Lineage membership is the reference
    candidates' marker rule (:func:`tmeatlas.tl._cnv._marker_candidates`: markers of one lineage
    only) with B and plasma cells read apart (:data:`tmeatlas.tl._cnv.MEMBERSHIP_PROGRAMS`); cells
    of no lineage keep their call.
    """
    from .._settings import settings
    from ._cnv import MEMBERSHIP_PROGRAMS, _marker_candidates

    haem = adata.uns[cnv_key].get("reference", {}).get("haematological")
    out = np.zeros(adata.n_obs, dtype=bool)
    if not isinstance(haem, pd.DataFrame) or not len(haem):
        return out
    X = as_csr(get_matrix(adata, _cnv_layer(adata, cnv_key)))
    codes, names = _marker_candidates(X, adata.var_names, int(settings.chunk_size), MEMBERSHIP_PROGRAMS)
    lineage = np.asarray(names, dtype=object)
    samples = groups.astype(str)
    n_unshown = n_other = 0
    for s, rows in haem.groupby(haem["sample"].astype(str), sort=False):
        own = np.isin(codes, np.flatnonzero(np.isin(lineage, rows["lineage"].astype(str).to_numpy())))
        here = samples == s
        unshown = here & own & (calls == NON_MALIGNANT)
        other = here & (codes >= 0) & ~own & (calls == MALIGNANT)
        n_unshown, n_other = n_unshown + int(unshown.sum()), n_other + int(other.sum())
        out |= unshown | other
    if out.any():
        warnings.warn(
            f"Immune lineages with copy-number changes ({', '.join(sorted(set(haem['lineage'].astype(str) + ' in ' + haem['sample'].astype(str))))}): "
            f"{n_unshown} of their cells had no per-cell CNV evidence either way, and {n_other} cells with another "
            "lineage's markers had CNV evidence of the malignant lineage (doublets, normal cells whose regional "
            "expression resembles a CNV, or a second tumour); both are marked uncertain.",
            stacklevel=3,
        )
    return out


def _cnv_layer(adata: AnnData, cnv_key: str):
    """The layer that infer_cnv read (``None``: ``X``)."""
    layer = adata.uns[cnv_key].get("params", {}).get("layer", "None")
    return None if layer in ("None", None) else layer


def _groups(adata: AnnData, sample_key: str | None, min_cells: int) -> np.ndarray:
    samples = (
        adata.obs[sample_key].astype(str).to_numpy()
        if sample_key
        else np.full(adata.n_obs, "all", dtype=object)
    )
    uniq, counts = np.unique(samples, return_counts=True)
    small = uniq[counts < min_cells]
    return np.where(np.isin(samples, small), "pooled small samples", samples).astype(object)


def _empty_cells(adata: AnnData, cnv_key: str) -> np.ndarray:
    """Cells with no count in any gene that ``infer_cnv`` used (read by row blocks)."""
    from scipy import sparse

    from .._core.chunks import iter_chunks, row_blocks
    from .._settings import settings

    info = adata.uns[cnv_key]
    X = get_matrix(adata, _cnv_layer(adata, cnv_key))
    cols = info["genes"]["col"].to_numpy().astype(np.int64)
    used = np.zeros(adata.n_vars, dtype=bool)
    used[cols] = True
    chunk = int(settings.chunk_size)
    out = np.zeros(adata.n_obs, dtype=bool)
    for s, _, B in row_blocks(X, chunk):
        B = B if sparse.issparse(B) and B.format == "csr" else sparse.csr_matrix(B)
        for sl in iter_chunks(B.shape[0], chunk):  # stored nonzero values in used genes, per row
            lo, hi = B.indptr[sl.start], B.indptr[sl.stop]
            hits = np.concatenate([[0], np.cumsum(used[B.indices[lo:hi]] & (B.data[lo:hi] != 0))])
            ends = B.indptr[sl.start : sl.stop + 1] - lo
            out[s + sl.start : s + sl.stop] = hits[ends[1:]] == hits[ends[:-1]]
    return out


def _expression(adata: AnnData, cnv_key: str):
    """The matrix, input mode and gene table that infer_cnv used."""
    info = adata.uns[cnv_key]
    X = as_csr(get_matrix(adata, _cnv_layer(adata, cnv_key)))
    genes = info["genes"]
    cols = genes["col"].to_numpy().astype(np.int64)
    if (
        cols.max() >= adata.n_vars
        or not (adata.var_names[cols].astype(str) == genes["gene"].astype(str).to_numpy()).all()
    ):
        raise InvalidInputError(
            f"the genes of adata differ from those infer_cnv used (uns[{cnv_key!r}]['genes']); rerun "
            "`tm.tl.infer_cnv` on this AnnData."
        )
    return X, input_mode(X), genes


def cnv_evidence(
    adata: AnnData,
    groups: np.ndarray,
    *,
    cnv_key: str = UNS.cnv,
    reference: np.ndarray | None = None,
    min_arm_shift: float = 0.15,
    max_pval: float = 1e-3,
    min_cells: int = 20,
    seed: int = 0,
) -> dict:
    """CNV clusters, per-cell correlation and malignant probability for each group (sample) of cells.

    Cells of each group are clustered (k-means, about one cluster per 50 cells, 2 to 30) on
    reference-centred arm means of every other gene in genome order; every cluster of >= 10 cells
    is tested at gene level against the group's reference cells on the remaining genes (arm
    shifts, Bonferroni over arms and clusters). Splitting the genes keeps the test honest: a
    cluster that k-means formed from chance co-deviations of some cells does not carry them in
    genes it never saw. Clusters with a CNV arm are malignant clusters; their segmented profiles are the
    sample's tumour CNV profiles.
    """
    xkey = f"X_{cnv_key}"
    if xkey not in adata.obsm or cnv_key not in adata.uns or "bins" not in adata.uns[cnv_key]:
        raise MissingResultError(f"no CNV profiles in obsm[{xkey!r}]: run `tm.tl.infer_cnv(adata)` first.")
    P = np.asarray(adata.obsm[xkey], dtype=np.float32)
    if P.shape[0] != adata.n_obs:
        raise InvalidInputError(f"obsm[{xkey!r}] does not match the cells; rerun `tm.tl.infer_cnv`.")
    bins = adata.uns[cnv_key]["bins"]
    A, arm_of_bin, arm_labels = arm_matrix(P, bins)
    X, mode, genes = _expression(adata, cnv_key)
    seg_codes = {s: j for j, s in enumerate(pd.unique(bins["segment"].astype(str)))}
    gene_arm = genes["segment"].astype(str).map(seg_codes).fillna(-1).to_numpy().astype(np.int64)
    cols = genes["col"].to_numpy().astype(np.int64)
    if reference is None:
        reference = (
            adata.obs[OBS.cnv_reference].to_numpy(bool)
            if OBS.cnv_reference in adata.obs
            else np.zeros(adata.n_obs, bool)
        )
    ref = np.asarray(reference, bool)

    n = adata.n_obs
    if not ref.any():
        warnings.warn(
            "no reference (normal) cells: infer_cnv found none, so the side of a copy-number difference that is "
            "normal is unknown; all cells are marked uncertain. Pass reference_key/reference_cats to "
            "`tm.tl.infer_cnv`.",
            stacklevel=3,
        )
        return _no_reference_evidence(P, groups)
    score = np.einsum("ij,ij->i", P, P, dtype=np.float64) / P.shape[1]
    names = list(pd.unique(groups))
    gidx = {g: np.flatnonzero(groups == g) for g in names}
    active = [g for g in names if len(gidx[g]) >= min_cells]
    for g in names:
        if g not in active:
            warnings.warn(
                f"{len(gidx[g])} cells in {g!r}: too few (< {min_cells}) to call malignant cells; marked uncertain.",
                stacklevel=3,
            )
    # 1. CNV clusters per group, on arm means of the even genes (genome order); the odd genes test them
    half = np.arange(len(cols)) % 2 == 0
    cluster = np.full(n, -1, dtype=np.int64)
    act = np.isin(groups, active)
    if act.any():
        F = arm_features(X, mode, cols, np.where(half, gene_arm, -1), len(arm_labels), ref, groups)
        cluster[act] = cnv_clusters(F[act], groups[act], seed)
    # 2.-3. gene-level arm tests of every cluster on the odd genes
    test_arm = np.where(half, -1, gene_arm)
    tabs, sig_of, cluster_group, n_ref, m_refs = _test_clusters(
        X, mode, cols, test_arm, arm_labels, cluster, groups, ref, active, gidx, min_arm_shift, max_pval, min_cells,
    )  # fmt: skip
    # 4. per group: malignant clusters, per-cell correlation, dosage and probability
    corr = np.zeros(n)
    prob = np.full(n, np.nan)
    rows = []
    for g in names:
        idx = gidx[g]
        if g not in active:
            rows.append(
                {
                    "sample": g,
                    "n_cells": len(idx),
                    "coherent_cnv": False,
                    "cnv_arms": "",
                    "n_malignant_clusters": 0,
                    "max_abs_arm_shift": 0.0,
                    "reason": f"fewer than {min_cells} cells",
                }
            )
            continue
        mine = [c for c in range(len(cluster_group)) if cluster_group[c] == g and c in sig_of]

        def retest(cells, g=g):  # arms of the cells a first round calls malignant, on the test genes
            m, k = group_means(X[cells], mode, np.zeros(len(cells), np.int64), 1, cols)
            # one family (the arms): whether the sample has a tumour is decided; this asks which arms it carries
            return _arm_test(m[0] / k[0], m_refs[g], test_arm, arm_labels, 1, min_arm_shift, max_pval)

        row = _call_group(g, idx, mine, sig_of, cluster, groups, ref, P, A, arm_of_bin, arm_labels, corr, prob,
                          min_arm_shift, max_pval, min_cells, retest)  # fmt: skip
        if row.get("pooled_arms") is not None:  # the kept retest of the cells called malignant
            tabs.append(row["pooled_arms"].assign(sample=g, cnv_cluster=-1))
        rows.append({k: v for k, v in row.items() if k != "pooled_arms"} | {"n_reference": n_ref.get(g, 0)})
    cols_out = ["sample", "cnv_cluster", "n_cells", "arm", "shift", "n_genes", "pval", "padj", "cnv"]
    arms = pd.concat(tabs, ignore_index=True)[cols_out] if tabs else pd.DataFrame(columns=cols_out)
    arms.index = arms.index.astype(str)
    table = pd.DataFrame(rows)
    table.index = table.index.astype(str)
    return {"score": score, "corr": corr, "prob": prob, "table": table, "arms": arms, "cluster": cluster}


def _no_reference_evidence(P: np.ndarray, groups: np.ndarray) -> dict:
    """The result of :func:`cnv_evidence` without reference cells: amplitudes only, every cell uncertain."""
    n = P.shape[0]
    score = np.einsum("ij,ij->i", P, P, dtype=np.float64) / P.shape[1]
    table = pd.DataFrame(
        [{"sample": g, "n_cells": int((groups == g).sum()), "coherent_cnv": False, "cnv_arms": "",
          "n_malignant_clusters": 0, "max_abs_arm_shift": 0.0, "reason": "no reference cells"} for g in pd.unique(groups)]
    )  # fmt: skip
    table.index = table.index.astype(str)
    arms = pd.DataFrame(
        columns=["sample", "cnv_cluster", "n_cells", "arm", "shift", "n_genes", "pval", "padj", "cnv"]
    )
    return {"score": score, "corr": np.zeros(n), "prob": np.full(n, np.nan), "table": table, "arms": arms,
            "cluster": np.full(n, -1)}  # fmt: skip


def _test_clusters(
    X,
    mode,
    cols,
    test_arm,
    arm_labels,
    cluster,
    groups,
    ref,
    active,
    gidx,
    min_arm_shift,
    max_pval,
    min_cells,
):
    """Gene-level arm tests of every CNV cluster of >= 10 cells against its group's reference cells
    (all reference cells when the group has fewer than ``min_cells``): ``(tables, {cluster:
    (significant arms, shifts)}, group of each cluster, {group: reference cells the tests used})``.
    """
    n = len(groups)
    cluster_group = [str(groups[np.flatnonzero(cluster == c)[0]]) for c in range(cluster.max() + 1)]
    n_cl = len(cluster_group)
    # one pass: mean expression of every cluster, every group's reference and all reference cells
    gi = {g: i for i, g in enumerate(active)}
    codes = cluster.copy()
    ref_codes = np.full(n, -1, dtype=np.int64)
    for g in active:
        idx = gidx[g]
        ref_codes[idx[ref[idx]]] = n_cl + gi[g]
    means, cnt = group_means(X, mode, codes, n_cl, cols)
    rmeans, rcnt = group_means(
        X, mode, np.where(ref_codes >= 0, ref_codes - n_cl, -1), max(1, len(active)), cols
    )
    pooled = rmeans.sum(axis=0) / max(rcnt.sum(), 1) if rcnt.sum() >= 5 else None
    # a group's own reference when it has min_cells of them (as infer_cnv's per-sample reference), else
    # all reference cells: the mean of a handful of sparse cells is too noisy for gene-level tests
    own = rcnt >= min_cells
    n_ref = {
        g: int(rcnt[gi[g]]) if own[gi[g]] else (int(rcnt.sum()) if pooled is not None else 0) for g in active
    }
    # Bonferroni within each sample (its tested clusters x arms): a sample's call is its own decision
    n_tested = pd.Series([g for c, g in enumerate(cluster_group) if cnt[c] >= 10]).value_counts()

    def ref_mean(g):
        i = gi[g]
        if own[i]:
            return rmeans[i] / rcnt[i]
        if pooled is not None:
            return pooled
        # no reference anywhere: all cells of the group
        return means[[cc for cc in range(n_cl) if cluster_group[cc] == g]].sum(axis=0) / len(gidx[g])

    def test(m, g, n_families):
        return _arm_test(m, ref_mean(g), test_arm, arm_labels, n_families, min_arm_shift, max_pval)

    tabs, sig_of = [], {}
    for c in range(n_cl):
        g = cluster_group[c]
        if cnt[c] < 10:
            continue
        tab = test(means[c] / cnt[c], g, int(n_tested[g]))
        tabs.append(tab.assign(sample=g, cnv_cluster=int(c), n_cells=int(cnt[c])))
        sig_of[c] = (tab["cnv"].to_numpy(), tab["shift"].to_numpy())
    m_refs = {g: ref_mean(g) for g in active}
    return tabs, sig_of, cluster_group, n_ref, m_refs


def _arm_test(m_group, m_ref, test_arm, arm_labels, n_families, min_arm_shift, max_pval) -> pd.DataFrame:
    """:func:`~tmeatlas.tl._cnv_evidence.arm_shifts` of a group's gene means with Bonferroni over
    ``n_families`` x arms (``padj``) and the arms that count as CNVs (``cnv``).
    """
    tab = arm_shifts(m_group, m_ref, test_arm, arm_labels)
    tab["padj"] = np.minimum(1.0, tab["pval"] * len(arm_labels) * n_families)
    tab["cnv"] = ((tab["shift"].abs() >= min_arm_shift) & (tab["padj"] <= max_pval)).to_numpy()
    return tab


def _call_group(
    g,
    idx,
    tested,
    sig_of,
    cluster,
    groups,
    ref,
    P,
    A,
    arm_of_bin,
    arm_labels,
    corr,
    prob,
    min_arm_shift,
    max_pval,
    min_cells,
    retest,
) -> dict:
    """The summary row of group ``g`` (cells ``idx``, tested clusters ``tested``); writes the cells'
    correlation and malignant probability into ``corr`` and ``prob``. ``retest(cells)``: the arm
    test table of the mean of ``cells`` against the group's reference.
    """
    mal = [c for c in tested if sig_of[c][0].any()]
    shifts = [np.abs(sig_of[c][1]).max() for c in tested]
    max_shift = float(max(shifts)) if shifts else 0.0
    in_mal = np.isin(cluster[idx], mal)
    if not mal or in_mal.sum() < max(5, int(np.ceil(0.01 * len(idx)))):
        prob[idx] = 0.0
        corr[idx] = 0.0
        return {"sample": g, "n_cells": len(idx), "coherent_cnv": False, "cnv_arms": "", "n_malignant_clusters": 0,
                "max_abs_arm_shift": max_shift,
                "reason": f"no CNV cluster with an arm |median log fold change| >= {min_arm_shift} and adjusted "
                          f"p <= {max_pval} (largest |shift| {max_shift:.3f})"}  # fmt: skip
    sigs = [sig_of[c][0] for c in mal]
    # the normal component is anchored by reference cells: the sample's own when it has min_cells of
    # them (as the arm tests), else all of them
    r = ref[idx]
    extra = np.flatnonzero(ref & (groups != g)) if r.sum() < min_cells else np.zeros(0, dtype=np.int64)
    both = np.concatenate([idx, extra])
    rb = ref[both]
    base = A[both][rb].mean(axis=0) if rb.sum() >= 5 else A[idx][~in_mal].mean(axis=0)
    init = np.concatenate([in_mal, np.zeros(len(extra), bool)]) & ~rb
    shifts_of = [sig_of[c][1] for c in mal]
    cb, feats, post = _posterior(P[both], A[both] - base, sigs, shifts_of, arm_of_bin, init, rb)
    # Further rounds. A CNV cluster is 1-2 % of a sample: at low depth only its largest arms reach
    # significance, and a consensus built from them misses most of the tumour's profile. The cells
    # the last round calls malignant, pooled, show the arms they share (tested on the genes the
    # clustering did not see); each cluster keeps its own shift there (a subclone without an arm
    # shows about 0). A round is kept only when it separates the two components better (Ashman's
    # D, label-free): a true arm with weak per-cell signal can blur the correlation (constructed
    # lymphoma) as well as sharpen it. benchmarks/malignant_real.py, shallow_1500.
    sep = _separability(feats[:, 0], post, cb, rb)["separation"]
    kept = None
    for _ in range(3):
        pool = idx[(post[: len(idx)] > 0.5) & ~r]
        if len(pool) < 10:
            break
        tab = retest(pool)
        shared = tab["cnv"].to_numpy()
        if not any((shared & ~s).any() for s in sigs):
            break
        new = [s | shared for s in sigs]
        cb1, feats1, post1 = _posterior(P[both], A[both] - base, new, shifts_of, arm_of_bin, post > 0.5, rb)
        sep1 = _separability(feats1[:, 0], post1, cb1, rb)["separation"]
        if not sep1 > sep:
            break
        sigs, cb, feats, post, sep = new, cb1, feats1, post1, sep1
        kept = tab.assign(n_cells=len(pool))
    corr[idx] = cb[: len(idx)]
    prob[idx] = post[: len(idx)]
    agreement = float((post[: len(idx)][in_mal] > 0.5).mean())
    arms_any = np.any(sigs, axis=0)
    return {"sample": g, "n_cells": len(idx), "coherent_cnv": True, "cnv_arms": ",".join(arm_labels[arms_any]),
            "n_malignant_clusters": len(mal), "max_abs_arm_shift": max_shift, "reason": "coherent CNV profile",
            "cluster_agreement": agreement, **_separability(feats[:, 0], post, cb, rb), "pooled_arms": kept}  # fmt: skip


def _posterior(P, dA, sigs, shifts_of, arm_of_bin, init, fixed_neg):
    """Each cell's best correlation with the clusters' segmented profiles (significant arms at their
    shifts), its (Fisher-z correlation, dosage) features and the mixture posterior. ``dA``: the
    cells' arm means minus the reference's.
    """
    segs = np.vstack([np.where(s, sh, 0.0) for s, sh in zip(sigs, shifts_of, strict=True)])  # clusters x arms
    C = rowcorr(P, segs[:, arm_of_bin].T)
    best = np.argmax(C, axis=1)
    cb = C[np.arange(len(P)), best]
    W = segs[best]
    dosage = np.einsum("ij,ij->i", dA, W) / np.einsum("ij,ij->i", W, W)
    feats = np.column_stack([np.arctanh(np.clip(cb, -0.999, 0.999)), dosage])
    return cb, feats, _mixture_posterior(feats, init_pos=init, fixed_neg=fixed_neg)


def _separability(z: np.ndarray, post: np.ndarray, corr: np.ndarray, ref: np.ndarray) -> dict:
    """How well the CNV evidence of a sample separates two groups of cells.

    ``separation``: Ashman's D of the two mixture components on the Fisher-z correlation,
    ``sqrt(2) |m1 - m0| / sqrt(s1^2 + s0^2)`` with posterior weights (D > 2: clean separation;
    Ashman et al., J Bioinform Comput Biol 1994). ``reference_tumour_like``: fraction of the
    reference cells the sample's calls rest on (its own, or all when it has fewer than
    ``min_cells``) whose profile correlates > 0.5 with the tumour consensus (the threshold of the
    consensus rounds): normal cells do not carry the tumour's profile.
    """
    w1, w0 = post.sum(), (1 - post).sum()
    if w1 < 2 or w0 < 2:
        d = np.nan
    else:
        m1, m0 = post @ z / w1, (1 - post) @ z / w0
        v1, v0 = post @ (z - m1) ** 2 / w1, (1 - post) @ (z - m0) ** 2 / w0
        d = float(np.sqrt(2) * abs(m1 - m0) / np.sqrt(max(v1 + v0, 1e-12)))
    like = float((corr[ref] > 0.5).mean()) if ref.sum() >= 5 else np.nan
    return {"separation": d, "reference_tumour_like": like}


def _mixture_posterior(
    F: np.ndarray, *, init_pos: np.ndarray, fixed_neg: np.ndarray, n_iter: int = 100
) -> np.ndarray:
    """Posterior of the positive component of a two-component full-covariance Gaussian mixture (EM).

    Initialised from ``init_pos``; cells in ``fixed_neg`` keep responsibility 0 (known normal), and
    with at least 5 of them the normal component's mean is theirs: its spread is still fitted to
    every cell it holds (normal cells outside the reference vary more), but its centre cannot drift
    into a tumour majority whose skewed distribution two free Gaussians would split
    (``benchmarks/malignant_real.py``, Qian cut to 90 / 97 % cancer cells: F1 0.88 / 0.87 with a
    free mean, 0.94 / 0.93 anchored).
    """
    from scipy.stats import multivariate_normal

    resp = init_pos.astype(float)
    resp[fixed_neg] = 0.0
    anchor = F[fixed_neg].mean(axis=0) if fixed_neg.sum() >= 5 else None
    eps = 1e-4 * np.eye(F.shape[1])
    for _ in range(n_iter):
        w1 = resp.sum()
        w0 = len(resp) - w1
        if w1 < 2 or w0 < 2:
            return resp
        mu1 = resp @ F / w1
        mu0 = anchor if anchor is not None else (1 - resp) @ F / w0
        c1 = ((F - mu1).T * resp) @ (F - mu1) / w1 + eps
        c0 = ((F - mu0).T * (1 - resp)) @ (F - mu0) / w0 + eps
        pi1 = w1 / len(resp)
        l1 = np.log(pi1) + multivariate_normal(mu1, c1, allow_singular=True).logpdf(F)
        l0 = np.log(1 - pi1) + multivariate_normal(mu0, c0, allow_singular=True).logpdf(F)
        new = 1.0 / (1.0 + np.exp(np.clip(l0 - l1, -700, 700)))
        new[fixed_neg] = 0.0
        if np.max(np.abs(new - resp)) < 1e-6:
            return new
        resp = new
    return resp
