"""Copy-number inference from expression: ``tm.tl.infer_cnv``."""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._core.chunks import iter_chunks, row_subset_blocks
from .._core.cnv import as_csr, bin_layout, csr_blocks, matrix_gene_sums, smooth_chunk
from .._core.expression import MODE_NAMES, TARGET_SUM, input_mode
from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError, NotApplicableError
from .._keys import OBS, UNS, VAR
from .._resources import NUCLEAR_CHROMOSOMES
from .._rng import make_rng, resolve_seed
from .._settings import logger, settings
from .._store import store
from .._validation import check_obs_key, get_matrix, start
from ._cnv_evidence import arm_matrix, cnv_clusters, gene_arm_codes, lineage_checks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anndata import AnnData

__all__ = ["NORMAL_PROGRAMS", "infer_cnv"]

#: Marker programs of non-malignant lineages used to find reference cells when none are given.
#: Canonical markers of each lineage in pan-cancer single-cell atlases: T/NK (Zheng et al.,
#: Science 2021), B/plasma and myeloid (Cheng et al., Cell 2021), stromal and endothelial
#: (Luo et al., Nat Commun 2022; Lambrechts et al., Nat Med 2018), and the immune/stromal gene
#: sets SCEVAN uses for the same purpose (De Falco et al., Nat Commun 2023).
NORMAL_PROGRAMS: dict[str, list[str]] = {
    "T and NK": ["CD3D", "CD3E", "CD2", "CD247", "TRAC", "CD7", "NKG7", "GZMA", "CCL5", "IL7R"],
    "B and plasma": ["MS4A1", "CD79A", "CD79B", "CD19", "BANK1", "MZB1", "JCHAIN", "IGKC"],
    "myeloid": ["LYZ", "CD68", "CD14", "AIF1", "TYROBP", "FCER1G", "CSF1R", "C1QA", "C1QB", "CD163"],
    "mast": ["TPSAB1", "TPSB2", "CPA3", "MS4A2", "HDC"],
    "fibroblast": ["COL1A1", "COL1A2", "COL3A1", "DCN", "LUM", "PDGFRA", "FBLN1"],
    "endothelial": ["PECAM1", "VWF", "CDH5", "CLDN5", "PLVAP", "EMCN", "RAMP2"],
    "pericyte": ["RGS5", "PDGFRB", "KCNJ8", "NOTCH3", "HIGD1B"],
}
#: lineage membership of cells in a sample with a haematological malignancy (``call_malignant``): as
#: :data:`NORMAL_PROGRAMS`, with B cells and plasma cells read by two programs, since plasma cells
#: lose most B-cell markers (plasma markers: the defining markers of the shipped library, Hao et al.,
#: Cell 2021; immunoglobulin transcripts left out of both: ambient RNA puts them in most droplets) ...
MEMBERSHIP_PROGRAMS: dict[str, list[str]] = {
    **{k: v for k, v in NORMAL_PROGRAMS.items() if k != "B and plasma"},
    "B": ["MS4A1", "CD79A", "CD79B", "CD19", "BANK1"],
    "plasma": ["JCHAIN", "MZB1", "DERL3", "TNFRSF17", "SDC1"],
}
#: ... which map to their lineage (programs not listed are their own lineage)
LINEAGE_OF_PROGRAM = {"B": "B and plasma", "plasma": "B and plasma"}
#: lineages of haematopoietic (PTPRC+) cells: the anchor of the automatic reference in solid tumours
IMMUNE_LINEAGES = ("T and NK", "B and plasma", "myeloid", "mast")
#: Immunoglobulin and T-cell receptor genes (V, D, J and constant segments of IGH 14q32, IGK 2p11,
#: IGL 22q11, TRA/TRD 14q11, TRB 7q34, TRG 7p14; HGNC symbols). Their expression comes from
#: clonally rearranged loci, not from copy number: immunoglobulin transcripts dominate a plasma
#: cell's library, and V(D)J recombination deletes DNA within the loci; PennCNV likewise leaves
#: immunoglobulin regions out of copy-number calls (penncnv.openbioinformatics.org, FAQ).
VDJ_GENES = r"^(IG[HKL][VDJ]|IGH[AGEMD][0-9]*$|IG[KL]C[0-9]*$|TR[ABDG][VDJ]|TR[ABDG]C[0-9]*$)"
#: an arm with fewer usable genes than this is smoothed together with the other arm
MIN_ARM_GENES = 20
#: the first (reference-confirming) pass profiles all candidates and at most this many other cells
REFINE_OTHER_CELLS = 20_000
#: fewest confirmed reference cells the automatic reference keeps (the gene-level arm tests of
#: call_malignant need 5 reference cells); fewer: no reference, every call uncertain
MIN_CONFIRMED = 5


@doc_params("copy", "chunk_size")
def infer_cnv(
    adata: AnnData,
    *,
    layer: str | None = None,
    reference_key: str | None = None,
    reference_cats: Sequence[str] | str | None = None,
    sample_key: str | None = None,
    window: int = 101,
    step: int = 10,
    min_mean: float = 0.05,
    clip: float = 3.0,
    exclude_chromosomes: Sequence[str] = ("chrY",),
    exclude_genes: str | None = None,
    min_reference_cells: int = 10,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    rng: int = 0,
    key_added: str = UNS.cnv,
    copy: bool = False,
) -> AnnData | None:
    r"""Infer copy-number profiles from expression along the genome (inferCNV family).

    For each cell, log-normalised expression :math:`x_g` of the genes placed on the genome is
    compared with a normal reference: :math:`d_g = x_g - \mathrm{hi}_g` if :math:`x_g >
    \mathrm{hi}_g`, :math:`x_g - \mathrm{lo}_g` if :math:`x_g < \mathrm{lo}_g`, else 0, where
    ``[lo, hi]`` spans the mean expression of the reference cell groups (the "bounds" of inferCNV,
    Patel et al., Science 2014; Tirosh et al., Nature 2016), so that genes whose expression
    merely differs between normal cell types do not read as copy-number changes. :math:`d` is
    clipped to ``±clip``, averaged over a running window of ``window`` genes in genome order that
    never crosses a chromosome-arm end (cumulative sums: the cost does not depend on the window),
    sampled every ``step`` genes, and centred on the cell's median.

    **Reference.** With ``reference_key``/``reference_cats`` the given cells are the reference,
    one group per category. Without them, tmeatlas finds confidently non-malignant cells itself:
    cells that detect at least half of the markers of one normal lineage program
    (:data:`NORMAL_PROGRAMS`: T/NK, B/plasma, myeloid, mast, fibroblast, endothelial, pericyte)
    and of no other; a first CNV pass then drops candidates whose CNV amplitude (mean square)
    is an outlier among candidates (> median + 3 MAD) or which sit in a CNV cluster made mostly of
    non-candidates (malignant cells expressing a normal program, doublets), and the profiles are
    recomputed with the refined reference. Immune (PTPRC+) cells are the anchor: the first pass
    uses them alone, and the candidates of every lineage (fibroblast, endothelial, ... and the
    immune lineages themselves) are clustered per sample and tested at gene level against the
    sample's immune cells (arm-level median log fold changes, as in
    :func:`~tmeatlas.tl.call_malignant`, both raw and net of the lineage's own expression program
    estimated across its clusters, one vote per sample); clusters with arm-level shifts are
    malignant cells with a stromal program (or doublets) and leave the reference. Each immune
    lineage's mean counts once in the anchor, and immune cells are tested against the sample's
    *other* immune lineages, clusters and each lineage as a whole: a lineage that carries
    arm-level changes as a whole is a haematological malignancy (the B cells of a lymphoma, the
    plasma cells of a myeloma, the myeloid cells of an AML) and all its cells of that sample leave
    the reference, with a warning (``haematological``; :func:`~tmeatlas.tl.call_malignant` then
    calls them on their copy number, uncertain where a cell has no evidence either way). What the
    checks found is recorded in ``uns["cnv"]["reference"]`` (``verified``, ``lineage_checks``,
    ``immune_lineage_checks``, ``haematological``); without 5 immune cells
    the reference is unverified, with a warning, and :func:`~tmeatlas.tl.call_malignant` marks
    the calls uncertain. Only confirmed candidates form the reference, however few survive: in a
    tumour-dominated sample most candidates can be tumour cells, and a rejected cell never returns
    to the reference (fewer than ``min_reference_cells`` confirmed: used with a warning; fewer than
    5: no reference, profiles relative to all cells, every call uncertain). On the shared real
    tumours cut to 97 % malignant cells (``benchmarks/malignant_real.py``), CopyKAT's breast example
    went from F1 0.47 (every candidate back in the reference) to 0.996. With ``sample_key``
    each sample gets its own reference where it has at least ``min_reference_cells`` reference
    cells of a group (else the pooled group mean), which removes patient and batch effects.

    **Input.** Raw counts (normalised to 10,000 per cell and ``log1p``-transformed), log-normalised
    data (used as is) and linear TPM/CPM (Smart-seq style; ``log1p``-transformed) are detected
    from the values and recorded. Sparse input is processed in chunks of ``chunk_size`` cells
    and never densified whole; each chunk costs ``chunk_size x n_genes`` floats.

    Parameters
    ----------
    adata
        Annotated data matrix with gene positions (run :func:`tmeatlas.pp.gene_positions`).
    layer
        Layer holding expression; ``None`` uses ``adata.X``.
    reference_key
        Column of ``adata.obs`` with the labels that define the reference.
    reference_cats
        Labels of ``reference_key`` that are normal cells (one reference group each).
    sample_key
        Column of ``adata.obs`` naming each cell's sample (patient); references become per-sample.
    window
        Genes in the running window (odd; inferCNV's default is 101).
    step
        Genes per output bin.
    min_mean
        Genes whose mean log-normalised expression over all cells is below this are not used.
    clip
        Absolute bound on the reference-centred expression before smoothing.
    exclude_chromosomes
        Chromosomes left out (chrY by default: its genes follow sex, not copy number).
    exclude_genes
        Regular expression of gene names (``var_names``) left out, or ``"vdj"``: the
        immunoglobulin and T-cell receptor genes (:data:`VDJ_GENES`), whose expression follows
        rearrangement and lineage, not copy number. Consider ``"vdj"`` where B or plasma cells may
        be malignant: on constructed myelomas (``benchmarks/haematological.py --exclude-genes
        vdj``, 6 runs) the myeloma cells called non-malignant fell from at most 28 % to at most
        8 % and the lineage was found haematological in 6 runs instead of 5; but on Qian's ovarian
        tumours cut to 90 % cancer cells (``benchmarks/malignant_real.py --exclude-genes vdj``) it
        turned one sample from uncertain to confidently wrong (F1 0.06), so it is not the default.
        ``None`` keeps every gene.
    min_reference_cells
        Fewest cells a reference group needs in a sample to get a per-sample mean.
    {chunk_size}
    n_jobs
        Threads (default ``tm.settings.n_jobs``; ``-1`` all cores).
    rng
        Seed of the automatic reference's confirmation step (cell sample and k-means; recorded).
    key_added
        Key of ``adata.uns`` for the record; the profiles go to ``obsm[f"X_{key_added}"]``.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obsm["X_cnv"]`` (cells x bins, float32), ``obs["cnv_reference"]``
    (the reference cells used) and ``uns["cnv"]`` with ``bins`` (chromosome, arm, start, end and
    number of genes of each bin), ``chr_pos`` (first bin of each chromosome), the reference
    used and ``params``.
    """
    if window < 1 or window % 2 == 0:
        raise InvalidParameterError(f"window must be a positive odd number of genes, got {window}.")
    if step < 1:
        raise InvalidParameterError(f"step must be >= 1, got {step}.")
    if clip <= 0:
        raise InvalidParameterError(f"clip must be > 0, got {clip}.")
    if (reference_key is None) != (reference_cats is None):
        raise InvalidParameterError(
            "give both reference_key and reference_cats, or neither (automatic reference)."
        )
    gene_pattern = _exclusion_pattern(exclude_genes)
    adata = start(adata, copy)
    for col in (VAR.chromosome, VAR.start, VAR.arm):
        if col not in adata.var.columns:
            raise MissingResultError("no gene positions: run `tm.pp.gene_positions(adata)` first.")
    check_obs_key(adata, sample_key, what="sample_key")
    check_obs_key(adata, reference_key, what="reference_key")
    n_threads = settings.resolve_n_jobs(n_jobs)
    seed = resolve_seed(rng)
    chunk = int(chunk_size or settings.chunk_size)

    X = as_csr(get_matrix(adata, layer))
    mode = input_mode(X)
    res = _compute_cnv(
        adata, X, mode, reference_key=reference_key, reference_cats=reference_cats, sample_key=sample_key,
        window=window, step=step, min_mean=min_mean, clip=clip, exclude_chromosomes=exclude_chromosomes,
        exclude_genes=gene_pattern, min_cells=min_reference_cells, n_threads=n_threads, seed=seed, chunk=chunk,
    )  # fmt: skip
    cnv, layout, ref_codes, ref_names, how = (
        res["cnv"],
        res["layout"],
        res["ref_codes"],
        res["ref_names"],
        res["how"],
    )
    is_ref = ref_codes >= 0
    if how == "all cells (fallback)":
        is_ref = np.zeros(adata.n_obs, bool)  # profiles are relative to all cells; none is a known normal
    ref_counts = pd.Series(np.asarray(ref_names, dtype=object)[ref_codes[ref_codes >= 0]]).value_counts()
    logger.info(
        "infer_cnv: %d bins from %d genes; reference %s (%d cells)",
        cnv.shape[1],
        layout["n_sel"],
        how,
        is_ref.sum(),
    )
    store(
        adata,
        tool="tl.infer_cnv",
        obs={OBS.cnv_reference: is_ref},
        obsm={f"X_{key_added}": cnv},
        uns_key=key_added,
        uns={
            "bins": layout["bins"],
            "genes": layout["genes"],
            "chr_pos": layout["chr_pos"],
            "input_type": MODE_NAMES[mode],
            "n_genes_used": int(layout["n_sel"]),
            "reference": {
                "how": how,
                "groups": {str(k): int(v) for k, v in ref_counts.items()},
                "n_cells": int(is_ref.sum()),
                "n_candidates": res["n_candidates"],
                "n_dropped_by_cnv": res["n_dropped"],
                **_reference_diagnostics(res["checks"], adata, sample_key, ref_names),
            },
        },
        params={
            "layer": layer,
            "reference_key": reference_key,
            "reference_cats": None if reference_cats is None else list(np.atleast_1d(reference_cats)),
            "sample_key": sample_key,
            "window": window,
            "step": step,
            "min_mean": min_mean,
            "clip": clip,
            "exclude_chromosomes": list(exclude_chromosomes),
            "exclude_genes": exclude_genes,
            "min_reference_cells": min_reference_cells,
            "rng": seed,
        },
    )
    return adata if copy else None


def _compute_cnv(
    adata,
    X,
    mode: int,
    *,
    reference_key,
    reference_cats,
    sample_key,
    window: int,
    step: int,
    min_mean: float,
    clip: float,
    exclude_chromosomes,
    exclude_genes,
    min_cells: int,
    n_threads: int,
    seed: int,
    chunk: int,
) -> dict:
    """CNV profiles and the reference they are relative to: ``cnv``, ``layout``, ``ref_codes``,
    ``ref_names``, ``how``, ``n_candidates``, ``n_dropped`` and ``checks``.
    """
    import numba

    old_threads = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        # pass 1: mean expression of every gene -> genes used and their genome order
        sums, _ = matrix_gene_sums(X, np.zeros(X.shape[0], np.int64), 1, mode, TARGET_SUM, chunk)
        gene_mean = sums[0] / X.shape[0]
        layout = _gene_layout(adata, gene_mean, min_mean, exclude_chromosomes, exclude_genes, step, window)

        samples, n_samples = _codes(adata, sample_key)
        if reference_key is not None:
            ref_codes, ref_names = _given_reference(adata, reference_key, reference_cats)
            how = "given"
        else:
            ref_codes, ref_names = _marker_candidates(X, adata.var_names, chunk)
            how = "automatic"
        n_candidates = int((ref_codes >= 0).sum())
        if n_candidates < (min_cells if how == "given" else MIN_CONFIRMED):
            if how == "given":
                raise InvalidInputError(
                    f"only {n_candidates} reference cells; need at least {min_cells} (min_reference_cells)."
                )
            warnings.warn(
                f"only {n_candidates} cells look confidently non-malignant (immune/stromal/endothelial programs); "
                "CNV profiles are relative to the mean of all cells. Pass reference_key/reference_cats if you "
                "know normal cells.",
                stacklevel=3,
            )
            ref_codes = np.zeros(X.shape[0], dtype=np.int64)
            ref_names = ["all cells"]
            how = "all cells (fallback)"
        profiles = functools.partial(
            _profiles,
            X,
            layout,
            samples,
            n_samples,
            len(ref_names),
            mode,
            min_cells,
            window // 2,
            float(clip),
            chunk,
        )
        n_dropped, checks = 0, {}
        if how == "automatic":
            ref_codes, n_dropped, checks = _confirm_reference(
                X, mode, ref_codes, ref_names, samples, layout, profiles, min_cells, seed, chunk
            )
            if not (ref_codes >= 0).any():
                warnings.warn(
                    f"infer_cnv: fewer than {MIN_CONFIRMED} of the {n_candidates} candidate normal cells passed the "
                    "copy-number checks (the others carry the tumour's changes or sit among tumour cells); CNV "
                    "profiles are relative to the mean of all cells and malignant calls will be uncertain. Pass "
                    "reference_key/reference_cats if you know normal cells.",
                    stacklevel=3,
                )
                ref_codes, ref_names, how = (
                    np.zeros(X.shape[0], dtype=np.int64),
                    ["all cells"],
                    "all cells (fallback)",
                )
                checks = {}
        cnv = profiles(ref_codes)
    finally:
        numba.set_num_threads(old_threads)
    return {"cnv": cnv, "layout": layout, "ref_codes": ref_codes, "ref_names": ref_names, "how": how,
            "n_candidates": n_candidates, "n_dropped": n_dropped, "checks": checks}  # fmt: skip


def _given_reference(adata, reference_key: str, reference_cats) -> tuple[np.ndarray, list[str]]:
    """Reference group code of every cell (-1: not in the reference) and the group names, from
    ``reference_key``/``reference_cats`` (checked: the categories exist, not every cell is reference).
    """
    cats = [reference_cats] if isinstance(reference_cats, str) else list(reference_cats)
    labels = adata.obs[reference_key].astype(str)
    missing = [c for c in cats if c not in set(labels)]
    if missing:
        raise InvalidParameterError(
            f"reference_cats {missing} not found in adata.obs[{reference_key!r}] "
            f"(values: {sorted(set(labels))[:20]})."
        )
    lineage = pd.Categorical(labels.where(labels.isin(cats)), categories=cats)
    ref_codes = np.asarray(lineage.codes, dtype=np.int64)
    if (ref_codes >= 0).all():
        raise InvalidInputError(
            f"all {adata.n_obs} cells are in the reference ({reference_key} in {cats}); CNV inference "
            "compares cells with a normal reference: leave the suspected tumour cells out of reference_cats."
        )
    return ref_codes, cats


def _profiles(
    X,
    layout: dict,
    samples: np.ndarray,
    n_samples: int,
    n_groups: int,
    mode: int,
    min_cells: int,
    half_window: int,
    clip: float,
    chunk: int,
    codes: np.ndarray,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Profiles (cells x bins, float32) of all cells, or of the sorted ``rows`` only, against the reference ``codes``."""
    lo, hi, group = _reference_bounds(
        X, codes, n_groups, samples, n_samples, layout, mode, TARGET_SUM, min_cells, chunk
    )
    n_out = X.shape[0] if rows is None else len(rows)
    out = np.empty((n_out, len(layout["bin_center"])), dtype=np.float32)
    at = 0
    for sel, B in row_subset_blocks(csr_blocks(X, chunk), rows):  # rows is sorted
        grp = group[sel]
        for sl in iter_chunks(B.shape[0], chunk):
            out[at + sl.start : at + sl.stop] = smooth_chunk(
                B.indptr,
                B.indices,
                B.data,
                sl.start,
                sl.stop,
                layout["col_pos"],
                layout["n_sel"],
                grp,
                lo,
                hi,
                layout["seg_start"],
                layout["seg_stop"],
                layout["bin_center"],
                layout["bin_seg"],
                half_window,
                clip,
                mode,
                TARGET_SUM,
            )
        at += B.shape[0]
    return out


def _codes(adata: AnnData, key: str | None) -> tuple[np.ndarray, int]:
    """Code of every cell's category of ``obs[key]`` and the number of categories (one when ``key`` is None)."""
    if key is None:
        return np.zeros(adata.n_obs, dtype=np.int64), 1
    cat = pd.Categorical(adata.obs[key].astype(str))
    return np.asarray(cat.codes, dtype=np.int64), len(cat.categories)


def _exclusion_pattern(exclude_genes) -> str | None:
    """The regular expression of the genes ``exclude_genes`` leaves out (``"vdj"``: :data:`VDJ_GENES`),
    validated; ``None`` keeps every gene.
    """
    import re

    if exclude_genes is None:
        return None
    if exclude_genes == "vdj":
        return VDJ_GENES
    try:
        re.compile(exclude_genes)
    except (TypeError, re.error) as err:
        raise InvalidParameterError(
            f"exclude_genes must be a regular expression of gene names or None, got {exclude_genes!r} ({err})."
        ) from None
    return exclude_genes


def _gene_layout(adata, gene_mean, min_mean, exclude, exclude_genes, step, window) -> dict:
    """The genes used in genome order, their arm segments and the bins: the layout of the kernels."""
    var = adata.var
    chrom = var[VAR.chromosome].astype(object)
    ok = chrom.isin([c for c in NUCLEAR_CHROMOSOMES if c not in set(exclude)]).to_numpy()
    if exclude_genes is not None:
        ok &= ~np.asarray(adata.var_names.astype(str).str.match(exclude_genes), dtype=bool)
    ok &= var[VAR.start].notna().to_numpy() & var[VAR.arm].notna().to_numpy()
    n_placed = int(ok.sum())
    ok &= gene_mean >= min_mean
    idx = np.flatnonzero(ok)
    if len(idx) < 2 * step or len(idx) < 50:
        raise NotApplicableError(
            f"only {len(idx)} genes are placed on the genome and expressed (mean >= {min_mean}); of {adata.n_vars} "
            f"genes, {n_placed} have positions. CNV inference needs hundreds of genes across the genome: run "
            "`tm.pp.gene_positions(adata)`, or lower min_mean; targeted panels are too small."
        )
    chrom_order = {c: i for i, c in enumerate(NUCLEAR_CHROMOSOMES)}
    df = pd.DataFrame(
        {
            "col": idx,
            "chromosome": chrom.to_numpy()[idx],
            "arm": var[VAR.arm].astype(str).to_numpy()[idx],
            "start": var[VAR.start].to_numpy()[idx].astype(np.int64),
            "end": var[VAR.end].to_numpy()[idx].astype(np.int64)
            if VAR.end in var
            else var[VAR.start].to_numpy()[idx],
        }
    )
    df["corder"] = df["chromosome"].map(chrom_order)
    df = df.sort_values(["corder", "start"], kind="stable").reset_index(drop=True)
    # arms with few usable genes (acrocentric p arms) join the other arm of their chromosome
    arm_size = df.groupby("arm")["col"].transform("size")
    other = df["arm"].str[:-1] + df["arm"].str[-1].map({"p": "q", "q": "p"})
    seg_key = df["chromosome"].astype(str) + ":" + np.where(arm_size >= MIN_ARM_GENES, df["arm"], other)
    seg_id = pd.factorize(seg_key)[0]
    if len(np.unique(df["chromosome"])) < 2:
        raise NotApplicableError(
            f"all {len(df)} usable genes lie on {df['chromosome'].iloc[0]}; CNV profiles are centred per cell "
            "across the genome and need genes on several chromosomes."
        )
    seg_start, seg_stop, centers, segs, first, last = bin_layout(seg_id, step)
    col_pos = np.full(adata.n_vars, -1, dtype=np.int64)
    col_pos[df["col"].to_numpy()] = np.arange(len(df))
    seg_lab = seg_key.to_numpy()
    bins = pd.DataFrame(
        {
            "chromosome": df["chromosome"].to_numpy()[centers],
            "arm": pd.Series(seg_lab[centers]).str.split(":").str[1].to_numpy(),
            "segment": seg_lab[centers],
            "start": df["start"].to_numpy()[first],
            "end": df["end"].to_numpy()[last],
            "n_genes": (last - first + 1).astype(np.int64),
        }
    )
    bins.index = bins.index.astype(str)
    chr_pos = {
        str(c): int(np.flatnonzero(bins["chromosome"].to_numpy() == c)[0])
        for c in pd.unique(bins["chromosome"])
    }
    genes = pd.DataFrame(
        {
            "gene": adata.var_names[df["col"].to_numpy()].astype(str),
            "col": df["col"].to_numpy().astype(np.int64),
            "chromosome": df["chromosome"].to_numpy().astype(str),
            "arm": df["arm"].to_numpy(),
            "segment": seg_lab,
        }
    )
    genes.index = genes.index.astype(str)
    return {
        "genes": genes,
        "col_pos": col_pos,
        "n_sel": len(df),
        "seg_start": seg_start,
        "seg_stop": seg_stop,
        "bin_center": centers,
        "bin_seg": segs,
        "bins": bins,
        "chr_pos": chr_pos,
    }


def _marker_candidates(
    X, var_names: pd.Index, chunk: int, programs: dict | None = None
) -> tuple[np.ndarray, list[str]]:
    """Lineage code of confidently non-malignant cells (-1: not a candidate) and the lineage names.

    A cell is a candidate of program P's lineage when it detects at least half of P's markers
    present in the data (>= 3 markers present) and fewer than half of every other program's
    markers (``programs``: :data:`NORMAL_PROGRAMS` when None; programs map to lineages by
    :data:`LINEAGE_OF_PROGRAM`).
    """
    programs = NORMAL_PROGRAMS if programs is None else programs
    names = list(programs)
    frac = np.zeros((X.shape[0], len(names)))
    usable = np.zeros(len(names), dtype=bool)
    lineage_cols = {}
    for j, lin in enumerate(names):
        cols = [
            var_names.get_loc(g)
            for g in programs[lin]
            if g in var_names and isinstance(var_names.get_loc(g), int)
        ]
        if len(cols) >= 3:
            usable[j] = True
            lineage_cols[j] = cols
    for s, e, B in csr_blocks(X, chunk):
        for j, cols in lineage_cols.items():
            frac[s:e, j] = np.asarray((B[:, cols] > 0).sum(axis=1)).ravel() / len(cols)
    hit = (frac >= 0.5) & usable
    n_hit = hit.sum(axis=1)
    codes = np.where(n_hit == 1, np.argmax(hit, axis=1), -1).astype(np.int64)
    lineages = list(dict.fromkeys(LINEAGE_OF_PROGRAM.get(n, n) for n in names))
    to_lineage = np.array(
        [lineages.index(LINEAGE_OF_PROGRAM.get(n, n)) for n in names] + [-1], dtype=np.int64
    )
    return to_lineage[codes], lineages


def _reference_bounds(X, codes, n_groups, samples, n_samples, layout, mode, target, min_cells, chunk):
    """Per sample, the low/high envelope of reference-group mean expression over the genes used."""
    n_sel = layout["n_sel"]
    sel_cols = np.flatnonzero(layout["col_pos"] >= 0)
    order = np.argsort(layout["col_pos"][sel_cols])
    cols = sel_cols[order]  # genome order
    combo = np.where(codes >= 0, samples * n_groups + codes, -1).astype(np.int64)
    sums, cnt = matrix_gene_sums(X, combo, n_samples * n_groups, mode, target, chunk)
    sums = sums[:, cols].reshape(n_samples, n_groups, n_sel)
    cnt = cnt.reshape(n_samples, n_groups)
    pooled_cnt = cnt.sum(axis=0)
    pooled = sums.sum(axis=0) / np.maximum(pooled_cnt, 1)[:, None]
    pooled_ok = pooled_cnt >= min(min_cells, max(1, pooled_cnt.max()))
    lo = np.empty((n_samples, n_sel))
    hi = np.empty((n_samples, n_sel))
    for s in range(n_samples):
        means = []
        for g in range(n_groups):
            if cnt[s, g] >= min_cells:
                means.append(sums[s, g] / cnt[s, g])
            elif pooled_ok[g]:
                means.append(pooled[g])
        m = np.vstack(means) if means else pooled[pooled_ok]
        lo[s] = m.min(axis=0)
        hi[s] = m.max(axis=0)
    return lo, hi, samples.astype(np.int64)


def _refine_reference(cnv: np.ndarray, cand: np.ndarray, samples: np.ndarray, seed: int) -> np.ndarray:
    """Reference candidates that the CNV signal confirms.

    Cells are clustered on their first-pass CNV profiles within each sample
    (:func:`~tmeatlas.tl._cnv_evidence.cnv_clusters`). Candidates in clusters made mostly of
    non-candidates are dropped: a normal lineage program in a cluster of other cells marks
    malignant cells expressing it, or doublets. Of the rest, candidates whose CNV amplitude (mean
    square) exceeds the candidates' median + 3 MAD are dropped.
    """
    P = cnv.astype(np.float64)
    clusters = cnv_clusters(P, samples, seed)
    frac = pd.Series(cand).groupby(clusters).mean()
    keep = cand & (pd.Series(clusters).map(frac).to_numpy() >= 0.5)
    amp = np.mean(P**2, axis=1)
    a = amp[keep]
    if a.size >= 5:
        med = np.median(a)
        mad = 1.4826 * np.median(np.abs(a - med)) or a.std() or 1.0
        keep &= amp <= med + 3 * mad
    return keep


def _refine_rows(cand: np.ndarray, samples: np.ndarray, max_other: int, seed: int) -> np.ndarray:
    """All candidates and a sample of at most ``max_other`` other cells, proportional per sample."""
    other = np.flatnonzero(~cand)
    if len(other) <= max_other:
        return np.arange(len(cand))
    gen = make_rng(seed)
    frac = max_other / len(other)
    picked = []
    for s in np.unique(samples[other]):
        o = other[samples[other] == s]
        k = max(1, int(round(frac * len(o))))
        picked.append(gen.choice(o, min(k, len(o)), replace=False))
    return np.sort(np.concatenate([np.flatnonzero(cand), *picked]))


def _confirm_reference(X, mode, ref_codes, ref_names, samples, layout, profiles, min_cells, seed, chunk):
    """Candidates of the automatic reference that the CNV signal confirms: ``(codes, n_dropped, checks)``.

    A first pass profiles the candidates and a sample of the other cells against the immune
    (PTPRC+) candidates alone, the most trustworthy diploid cells of a solid tumour (all
    candidates when there are fewer than ``min_cells`` immune ones: the reference is then
    unverified). :func:`_refine_reference` drops amplitude outliers and candidates in clusters of
    other cells; :func:`~tmeatlas.tl._cnv_evidence.lineage_checks` then tests every cluster of
    every lineage in every sample at gene level against the sample's immune cells, and drops
    clusters with arm-level shifts (malignant cells expressing a fibroblast, endothelial or
    immune program).
    """
    cand = ref_codes >= 0
    immune_codes = [ref_names.index(n) for n in IMMUNE_LINEAGES if n in ref_names]
    immune = np.isin(ref_codes, immune_codes) & cand
    verified = int(immune.sum()) >= MIN_CONFIRMED
    rows = _refine_rows(cand, samples, REFINE_OTHER_CELLS, seed)
    P = profiles(np.where(immune, ref_codes, -1) if verified else ref_codes, rows)
    keep_rows = _refine_reference(P, cand[rows], samples[rows], seed=seed)
    table = None
    if verified:
        cols, gene_arm = gene_arm_codes(layout["genes"], layout["bins"])
        arm_labels = np.asarray([s.split(":")[1] for s in pd.unique(layout["bins"]["segment"].astype(str))])
        lin = np.where(keep_rows, ref_codes[rows], -1)
        A = arm_matrix(P, layout["bins"])[0]  # clusters on arm means: arm-level changes are what is tested
        ok, table = lineage_checks(
            X,
            mode,
            A,
            rows,
            lin,
            immune_codes,
            samples[rows],
            cols,
            gene_arm,
            arm_labels,
            seed,
            chunk=chunk,
        )
        keep_rows &= ok
        haem = _haematological(table, lin, samples[rows], immune_codes)
        for s_code, l_code, _, _ in haem:
            keep_rows &= ~((samples[rows] == s_code) & (lin == l_code))
    keep = np.zeros(X.shape[0], bool)
    keep[rows] = keep_rows
    n_dropped = int((cand & ~keep).sum())
    # the confirmed candidates only: a cell the checks rejected never returns to the reference. Fewer
    # than MIN_CONFIRMED of them leave no reference (the caller falls back to all cells, calls uncertain)
    ref_codes = np.where(keep, ref_codes, -1) if keep.sum() >= MIN_CONFIRMED else np.full_like(ref_codes, -1)
    return (
        ref_codes,
        n_dropped,
        {"verified": verified, "table": table, "candidates": cand, "kept": ref_codes >= 0,
         "haematological": haem if verified else [], "min_cells": min_cells},
    )  # fmt: skip


def _haematological(table: pd.DataFrame, lin: np.ndarray, samples: np.ndarray, immune: list[int]) -> list:
    """Immune lineages that carry copy-number changes in a sample: ``(sample, lineage, n_cells, arms)``.

    In a haematological malignancy the malignant cells are one immune lineage (B cells in most
    lymphomas, plasma cells in myeloma, myeloid cells in AML). :func:`lineage_checks` tests each
    immune lineage of a sample as a whole against the sample's other immune lineages
    (``table.attrs["anchor_lineages"]``); a lineage with arm-level changes is called here, and all
    its cells leave that sample's reference (also its clusters that did not reach significance on
    their own: the same population with weaker evidence).
    """
    whole = table.attrs.get("anchor_lineages") if table is not None else None
    if whole is None or not len(whole):
        return []
    hit = whole[whole["cnv"].astype(bool) & whole["lineage"].isin(immune)]
    return [(s, int(l_code), int(((samples == s) & (lin == l_code)).sum()), arms)
            for s, l_code, arms in zip(hit["sample"], hit["lineage"], hit["cnv_arms"])]  # fmt: skip


def _reference_diagnostics(checks: dict, adata, sample_key, ref_names) -> dict:
    """What the automatic reference's checks found, for ``uns["cnv"]["reference"]`` (warns when unverified)."""
    if not checks:
        return {}
    out = {"verified": bool(checks["verified"])}
    if not checks["verified"]:
        warnings.warn(
            "fewer immune (PTPRC+) cells than min_reference_cells: the automatic reference (stromal/endothelial "
            "cells) could not be checked for copy-number changes against immune cells, and malignant cells "
            "with a stromal program would pass as normal; call_malignant marks the calls uncertain. Pass "
            "reference_key/reference_cats with cells you know are normal.",
            stacklevel=3,
        )
        return out
    n_kept, min_cells = int(checks["kept"].sum()), int(checks.get("min_cells", 0))
    if n_kept < min_cells:
        warnings.warn(
            f"infer_cnv: only {n_kept} candidate normal cells passed the copy-number checks (fewer than "
            f"min_reference_cells={min_cells}); the CNV profiles are relative to them. Check "
            "uns['cnv']['reference'], or pass reference_key/reference_cats with cells you know are normal.",
            stacklevel=3,
        )
    tab = _named(checks["table"], adata, sample_key, ref_names)
    out["lineage_checks"] = tab
    whole = checks["table"].attrs.get("anchor_lineages")
    if whole is not None:  # each immune lineage of a sample against the sample's other immune lineages
        out["immune_lineage_checks"] = _named(whole, adata, sample_key, ref_names)
    out["n_dropped_by_lineage_check"] = (
        int(tab.loc[tab["cnv"].astype(bool), "n_cells"].sum()) if len(tab) else 0
    )
    out["haematological"] = _haematological_table(
        checks.get("haematological", []), adata, sample_key, ref_names
    )
    return out


def _named(table: pd.DataFrame, adata, sample_key, ref_names) -> pd.DataFrame:
    """A lineage-check table with sample and lineage codes replaced by their names (string index)."""
    tab = pd.DataFrame(table).copy()
    tab.attrs = {}
    names = (
        pd.Categorical(adata.obs[sample_key].astype(str)).categories if sample_key is not None else ["all"]
    )
    if len(tab):
        tab["sample"] = np.asarray(names, dtype=object)[tab["sample"].to_numpy().astype(int)]
    tab["lineage"] = (
        np.asarray(ref_names, dtype=object)[tab["lineage"].to_numpy().astype(int)] if len(tab) else []
    )
    tab["sample"] = tab["sample"].astype(str)
    tab.index = tab.index.astype(str)
    return tab


def _haematological_table(haem: list, adata, sample_key, ref_names) -> pd.DataFrame:
    """The immune lineages with clonal copy-number changes (:func:`_haematological`) by name, with a warning."""
    tab = _named(
        pd.DataFrame(haem, columns=["sample", "lineage", "n_cells", "cnv_arms"]), adata, sample_key, ref_names
    )
    if len(tab):
        warnings.warn(
            "immune cells carry clonal copy-number changes: "
            + "; ".join(
                f"{r.lineage} of sample {r.sample} ({r.n_cells} cells; arms {r.cnv_arms})"
                for r in tab.itertuples()
            )
            + ". A haematological malignancy (lymphoma, myeloma, leukaemia) or malignant cells with an immune "
            "program: these cells were left out of the CNV reference (the other immune lineages and stromal "
            "cells remain) and are called on their copy number. See uns['cnv']['reference']['haematological']; "
            "pass reference_key/reference_cats with cells you know are normal if this is wrong.",
            stacklevel=4,
        )
    return tab
