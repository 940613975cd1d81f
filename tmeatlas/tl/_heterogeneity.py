"""Tumour heterogeneity per sample, genetic, transcriptional, spatial and epigenetic: ``tm.tl.heterogeneity``.

Every index is computed from the malignant cells of a sample and gets a percentile interval
from resampling those cells (:func:`_resampled`). The numeric cores work on integer codes and
count matrices; :func:`heterogeneity` is the AnnData wrapper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, NotApplicableError
from .._keys import OBS, OBSM, UNS
from .._rng import make_rng, resolve_seed, spawn_seeds
from .._settings import logger
from .._store import store
from .._validation import (
    check_expression_values,
    check_int,
    check_obs_key,
    get_matrix,
    start,
    suggest_names,
)

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "DEFAULT_PROGRAMS",
    "INDICES",
    "clone_labels",
    "clone_neighbours",
    "heterogeneity",
    "spatial_coordinates",
]

#: the library's programs that define the malignant cell states (state -> signature names; a state
#: scores as the highest z-score of its signatures): the older library programs joined with the
#: pan-cancer malignant-cell meta-programs of Gavish et al. (Nature 618:598, 2023) that are not
#: tied to a lineage (MP1-3, 5, 6, 9, 12-15, 17-20); why these, in heterogeneity's docstring
DEFAULT_PROGRAMS = {
    "cycling": (
        "TIROSH_G1S",
        "TIROSH_G2M",
        "GAVISH_MP1_CELL_CYCLE_G2M",
        "GAVISH_MP2_CELL_CYCLE_G1S",
        "GAVISH_MP3_CELL_CYCLE_HMG_RICH",
    ),
    "EMT": (
        "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION",
        "GAVISH_MP12_EMT_I",
        "GAVISH_MP13_EMT_II",
        "GAVISH_MP14_EMT_III",
        "GAVISH_MP15_EMT_IV",
    ),
    "hypoxia": ("HALLMARK_HYPOXIA", "GAVISH_MP6_HYPOXIA"),
    "interferon": (
        "HALLMARK_INTERFERON_GAMMA_RESPONSE",
        "GAVISH_MP17_INTERFERON_MHC_II_I",
        "GAVISH_MP18_INTERFERON_MHC_II_II",
    ),
    "stemness": ("STEMNESS_CANCERSEA",),
    "persister": ("PERSISTER_CHANG2022",),
    "stress": ("GAVISH_MP5_STRESS",),
    "unfolded_protein_response": ("GAVISH_MP9_UNFOLDED_PROTEIN_RESPONSE",),
    "epithelial_senescence": ("GAVISH_MP19_EPITHELIAL_SENESCENCE",),
    "MYC": ("GAVISH_MP20_MYC",),
}
BASELINE = "baseline"
#: shrunk z (within the sample) a program needs for a cell to be in its state: half a standard deviation
STATE_Z = 0.5
#: the indices of the table; each has ``<index>_low`` / ``<index>_high`` columns
INDICES = (
    "genetic_diversity",
    "effective_clones",
    "cnv_burden",
    "state_diversity",
    "state_between_clones",
    "clone_mixing",
    "clone_spatial_entropy",
    "epigenetic_diversity",
    "epigenetic_rna_agreement",
)
#: fewest malignant cells (with a clone label, for the clone indices) of a measured sample
MIN_CELLS = 20
#: malignant neighbours of each malignant cell in the spatial indices
N_NEIGHBORS = 10
#: clone labels that mean "no clone"
_NO_CLONE = {"", "nan", "none", "non-malignant", "<na>"}
_GENETIC = ("genetic_diversity", "effective_clones")
_TREE = ("clonal_events", "subclonal_events", "tree_depth", "cnv_burden")
_SPATIAL = ("clone_mixing", "clone_spatial_entropy")
_EPI = ("epigenetic_diversity", "epigenetic_rna_agreement")
_EPI_REASON = "no chromatin-accessibility modality given"
#: a peak name: chromosome, start and end (``chr1:100-200``, ``chr1-100-200``, ``chr1_100_200``)
_PEAK = r"^(?:chr)?[0-9A-Za-z.]+?[:_-][0-9]+[_-][0-9]+$"
_GENE_ACTIVITY_HOW = (
    "compute gene activity scores first (ArchR `getMatrixFromProject(useMatrix = 'GeneScoreMatrix')`, "
    "Signac `GeneActivity`, SnapATAC2 `snap.pp.make_gene_matrix`, muon "
    "`muon.atac.tl.count_fragments_features`) and pass that cells x genes AnnData as chromatin= (or name "
    "a MuData's gene-activity modality with chromatin_mod=)"
)
_BOOT_CELLS = 2_000_000  # bootstrap weights held at once (replicates x cells)


@doc_params("copy")
def heterogeneity(
    adata: AnnData,
    *,
    sample_key: str | None = None,
    clone_key: str = OBS.cnv_clone,
    malignant_key: str | None = None,
    malignant_value: str | None = None,
    programs=None,
    spatial_key: str = OBSM.spatial,
    layer: str | None = None,
    chromatin=None,
    chromatin_mod: str = "atac",
    n_boot: int = 200,
    rng: int = 0,
    n_jobs: int | None = None,
    key_added: str = UNS.heterogeneity,
    copy: bool = False,
) -> AnnData | None:
    r"""How heterogeneous each tumour is: genetic, transcriptional, epigenetic and spatial indices, with intervals.

    All indices use the malignant cells of a sample (``malignant_key``). Samples with fewer than
    20 malignant cells (20 with a clone label for the clone indices) get NaN with the reason in
    ``not_measured``; if no sample can be measured, :class:`~tmeatlas.NotApplicableError`.

    **Estimator.** Every Shannon entropy (natural log) is the Miller-Madow estimate
    :math:`\hat H_{MM} = -\sum_c \hat p_c \ln \hat p_c + (m - 1)/(2n)` (Miller 1955), with
    :math:`m` the observed categories among :math:`n` cells: the plug-in estimate is biased low
    by about :math:`(m-1)/(2n)`, which matters in small samples and in every bootstrap replicate
    (a resample is less even than its source). Miller-Madow is chosen over the coverage-adjusted
    estimator of Chao & Shen (Environ Ecol Stat 10:429, 2003) because that one corrects for
    categories not seen (it is driven by singletons), while clone labels come from a caller with
    a minimum clone size and states from a fixed list, so every category is seen many times and
    the first-order bias is what remains.

    **Genetic** (clone labels ``obs[clone_key]``, e.g. :func:`~tmeatlas.tl.cnv_clones`):
    ``genetic_diversity`` :math:`= \hat H_{MM}` of the clone fractions, ``effective_clones``
    :math:`= \exp(\hat H_{MM})` (Hill number of order 1, Jost, Oikos 113:363, 2006; Chao et al.,
    Annu Rev Ecol Evol Syst 45:297, 2014), ``n_clones`` (clones seen). When
    ``uns["cnv_clones"]`` describes these labels (its ``key_added`` is ``clone_key``), from its
    arm calls: ``clonal_events`` (arm gains/losses shared by every clone of the sample: the trunk),
    ``subclonal_events`` (in some clones only), ``tree_depth`` (deepest split above a clone; 0 for
    one clone) and ``cnv_burden`` (mean over cells of their clone's fraction of arms altered;
    per clone in ``clones``). Clonal/subclonal counts and depth describe the called tree and get
    no interval.

    **Transcriptional**: the malignant cells are scored on ``programs`` (control-gene scores of
    :func:`~tmeatlas.tl.score_signatures`, Tirosh et al., Science 352:189, 2016), averaged over
    each cell's 30 nearest malignant neighbours of its sample and z-scored within the sample,
    shrunk by the reliability of the averages (empirical Bayes, as in
    :func:`~tmeatlas.tl.therapy_survival`: programs that vary no more than cell sampling noise
    score ~0); a state scores as its highest signature z, and a cell's state is its
    highest-scoring state when that z is at least 0.5 (half a standard deviation above the sample's
    average), else ``"baseline"``. ``state_diversity``
    :math:`= \hat H_{MM}(\text{state})`; ``state_between_clones`` :math:`= I(\text{state};
    \text{clone}) / H(\text{state})` on the cells with a clone label, with
    :math:`I = H_{MM}(s) + H_{MM}(c) - H_{MM}(s, c)` clipped to :math:`[0, H(s)]`: the share of
    the state diversity explained by the clones (1 minus it lies within clones; 0 for one
    clone). The composition is in ``clone_state``.

    The default states (:data:`DEFAULT_PROGRAMS`) join the library's programs with the pan-cancer
    meta-programs (MPs) of malignant cells of Gavish et al. (Nature 618:598, 2023: 41 MPs from
    1,163 tumours, shipped as ``GAVISH_MP<k>_<TITLE>``): ``cycling`` = Tirosh G1/S and G2/M and
    MP1-MP3 (G2/M, G1/S, HMG-rich); ``EMT`` = the Hallmark EMT and MP12-MP15 (EMT-I to EMT-IV;
    not MP16, the mesenchymal state of glioma); ``hypoxia`` = the Hallmark hypoxia and MP6;
    ``interferon`` = the Hallmark IFN-gamma response and MP17-MP18 (interferon/MHC-II);
    ``stemness`` (CancerSEA) and ``persister`` (Chang et al. 2022); and, from MPs not tied to a
    lineage, ``stress`` = MP5 (immediate-early and heat-shock genes, which tissue dissociation
    also induces: van den Brink et al., Nat Methods 14:935, 2017), ``unfolded_protein_response``
    = MP9, ``epithelial_senescence`` = MP19 and ``MYC`` = MP20. The UPR state is MP9 alone: the
    authors name MP9 the unfolded protein response and keep apart MP7, which they label "stress
    (in vitro)" (the ATF4 amino-acid response: ASNS, PSAT1, TRIB3, tRNA synthetases), and MP10
    "protein maturation" (ER, lysosomal and secreted genes). The lineage-specific MPs (glioma
    MP16 and MP25-MP29, PDAC MP30 and MP40, alveolar MP31, cilia MP24, skin pigmentation MP32,
    haematopoietic MP33-MP35 and MP37, immunoglobulin MP36) and the unassigned MP41 are not
    default states: they mark a tissue context or contamination by another cell type, not a
    pan-cancer state, and in a cohort of several cancer types they would stand for the tumour
    type. Pass them, or the other MPs (chromatin, proteasome, translation, respiration, secreted,
    glutathione, metal response), by name through ``programs``. On the simulator's planted clone
    programs (``benchmarks/heterogeneity_states.py``, two cohorts, few patients with both high and
    low clones) the joined states rank the high clones' cells within a patient about as well as
    the library programs alone (cycling and EMT slightly better on average; pooled over patients
    EMT ranks worse; neither set recovers the simulated hypoxia or persister states, whose
    shrunk z is ~0); with more states fewer cells stay ``"baseline"`` and
    ``state_diversity`` is higher, so it is not comparable with values computed on the old
    defaults.

    **Spatial** (coordinates in ``obsm[spatial_key]``): among the malignant cells of a sample
    with a clone label, the 10 nearest (k-d tree). ``clone_mixing`` = the mean fraction of a
    cell's neighbours of another clone, divided by its expectation when labels are placed at
    random, :math:`1 - \sum_c n_c (n_c - 1) / (n (n - 1))` (the finite-sample form of
    :math:`1 - \sum_c p_c^2`, Simpson's index): about 1 for intermixed clones, towards 0 for
    segregated ones, NaN for one clone. ``clone_spatial_entropy`` = the mean over cells of the
    Shannon entropy of their neighbours' clone labels (plug-in, nats; at most
    :math:`\ln \min(10, K)`); :func:`tmeatlas.pl.clone_mixing` maps each cell's fraction.

    **Epigenetic** (``chromatin``: gene activity scores of the same cells, the accessibility
    around each gene summed per cell, e.g. the gene scores of ArchR, Granja et al., Nat Genet
    53:403, 2021, or Signac's ``GeneActivity``, Stuart et al., Nat Methods 18:1333, 2021): the
    malignant cells of ``adata`` found in it (by ``obs_names``) are called into the same states
    by the same procedure as above, run on their gene activity instead of their RNA (control
    genes binned over all cells of the modality). This assumes that gene activity tracks the same
    programs: that a program's genes are more accessible in the cells where it is active (true on
    average, more weakly than for RNA; a chromatin state marks a program whose genes are open).
    ``epigenetic_diversity`` :math:`= \hat H_{MM}(\text{chromatin state})` over the sample's
    malignant cells with a chromatin profile (``n_chromatin_profiled``; cells without one do not
    count, also in the resamples; fewer than 20: NaN). ``epigenetic_rna_agreement`` = Cohen's
    :math:`\kappa = (p_o - p_e) / (1 - p_e)` (Cohen, Educ Psychol Meas 20:37, 1960) between the
    RNA and the chromatin state of those cells, :math:`p_o` the share of cells whose two states
    are the same and :math:`p_e = \sum_k p_k^{RNA} p_k^{chromatin}` its value by chance: 1 when
    both call the same states, about 0 when they agree no more than chance (NaN when both call one
    and the same state). Peak matrices cannot be scored on gene programs and are refused. Without
    ``chromatin`` both are NaN ("no chromatin-accessibility modality given").

    **Intervals**: ``<index>_low`` / ``<index>_high`` are the 2.5 and 97.5 % percentiles over
    ``n_boot`` multinomial resamples of the sample's malignant cells (clone labels, RNA and
    chromatin states, per-cell neighbour values and clone burdens travel with their cell; Efron &
    Tibshirani, An Introduction to the Bootstrap, 1993), widened to include the estimate when it sits at the edge
    of the resamples (perfectly even clones can only resample less even). They cover
    cell-sampling error only, not errors of the clone or state calls.

    Parameters
    ----------
    adata
        Annotated data matrix with malignant calls and clone labels.
    sample_key
        Column of ``adata.obs`` with the sample (patient); ``None``: one sample, ``"all"``.
    clone_key
        Column with the clone of each malignant cell (``"non-malignant"``, empty or missing: no
        clone).
    malignant_key
        Column marking malignant cells; ``None``: ``obs["malignant"] == "malignant"``
        (:func:`~tmeatlas.tl.call_malignant`), else ``compartment`` / ``cell_type_major``.
    malignant_value
        Value of ``malignant_key`` for malignant cells (default ``"malignant"``; a Boolean column
        needs none).
    programs
        States to call: ``None`` (:data:`DEFAULT_PROGRAMS`: cycling, EMT, hypoxia, interferon,
        stemness, persister, stress, unfolded_protein_response, epithelial_senescence, MYC; library
        programs and Gavish 2023 meta-programs, see **Transcriptional**), a list of library
        signature names (each its own state) or a dict ``{state: name or [names]}``, e.g.
        ``{"glioma_NPC": ["GAVISH_MP26_NPC_GLIOMA"], ...}`` for a lineage meta-program
        (``tm.datasets.signatures(category="meta_program")`` lists all 41). Signatures with fewer
        than 3 measured genes are left out (listed in ``params``).
    spatial_key
        Key of ``adata.obsm`` with the coordinates; absent: the spatial indices are NaN.
    layer
        Layer with the expression scored (``None``: ``X``; counts or log-normalised).
    chromatin
        Chromatin accessibility of cells of ``adata`` as gene activity scores (cells x genes in
        ``X``, counts or log-normalised; cells matched by ``obs_names``, those of ``adata`` absent
        from it are not measured epigenetically): an AnnData, or a MuData whose modality
        ``chromatin_mod`` holds them. Peaks are refused (compute gene activity first, e.g. ArchR
        ``GeneScoreMatrix``, Signac ``GeneActivity``, SnapATAC2 ``pp.make_gene_matrix``). ``None``:
        the epigenetic indices are NaN.
    chromatin_mod
        Modality of a MuData ``chromatin`` with the gene activity (ignored for an AnnData).
    n_boot
        Bootstrap resamples of the cells for the intervals (0: no intervals, NaN).
    rng
        Seed of the resampling and of the control genes (recorded).
    n_jobs
        Threads of the signature scoring (``None``: ``tm.settings.n_jobs``).
    key_added
        Key of ``adata.uns`` for the result.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``uns[key_added]`` with ``table`` (one row per sample: ``sample``,
    ``n_malignant``, ``n_clone_labelled``, ``n_chromatin_profiled`` (malignant cells with a
    chromatin profile; NaN without ``chromatin``), ``n_clones``, ``clonal_events``,
    ``subclonal_events``, ``tree_depth``, ``n_states``, ``dominant_state``, every index of
    :data:`INDICES` with its ``_low`` / ``_high``, and ``not_measured``: ``"index: reason"`` for
    every NaN index, ``"; "``-joined), ``clone_state`` (long: sample, clone, state, n_cells,
    fraction of the clone's cells), ``clones`` (per clone: sample, n_cells, fraction, cnv_burden,
    n_gains, n_losses) and ``params`` (``chromatin``: the modality, its cells and genes, the cells
    and malignant cells matched, the signatures scored on it). Read it with
    :func:`tmeatlas.get.heterogeneity`. Also writes ``obs["malignant_state"]``: each malignant
    cell's state (NaN for the other cells), so that
    ``tm.tl.therapy_survival(adata, groupby="malignant_state")`` says which states a therapy
    leaves behind.
    """
    from ._cells import malignant_mask

    adata = start(adata, copy)
    n_boot = _check_args(adata, sample_key, clone_key, n_boot, key_added)
    progs = _programs(programs)
    seed = resolve_seed(rng)
    X = get_matrix(adata, layer)
    chrom = _chromatin(adata, chromatin, chromatin_mod, progs)
    mal, mal_rule = malignant_mask(adata, malignant_key, malignant_value)
    if not mal.any():
        raise NotApplicableError(
            f"no malignant cells ({mal_rule} holds for none): heterogeneity is measured on malignant cells. "
            "Run `tm.tl.call_malignant(adata)` or name your column with malignant_key= / malignant_value=."
        )
    samples = (
        adata.obs[sample_key].astype(str).to_numpy() if sample_key else np.full(adata.n_obs, "all", object)
    )
    clones = clone_labels(adata.obs[clone_key], mal)
    states, scored, unscored = _states(adata, X, mal, samples, progs, seed, n_jobs)
    epi = _chromatin_states(chrom, mal, samples, progs, seed, n_jobs)
    xy, why_xy = spatial_coordinates(adata, spatial_key)
    tree = _tree_tables(adata, clone_key)
    rows, comp, per_clone = [], [], []
    seeds = spawn_seeds(seed, max(len(pd.unique(samples)), 1))
    for i, s in enumerate(pd.unique(samples)):
        idx = np.flatnonzero((samples == s) & mal)
        row, c_rows, k_rows = _sample(
            s, idx, clones, (states, epi), xy, why_xy, tree, bool(scored), n_boot, int(seeds[i])
        )
        rows.append(row)
        comp += c_rows
        per_clone += k_rows
    table = _table(rows)
    measured = table[list(INDICES)].notna().any(axis=1)
    if not measured.any():
        raise NotApplicableError(
            "no sample could be measured: "
            + " | ".join(f"{r['sample']}: {r['not_measured']}" for r in rows[:5])
            + f". Heterogeneity needs at least {MIN_CELLS} malignant cells in a sample (with clone labels for "
            "the clone indices, from `tm.tl.cnv_clones`)."
        )
    logger.info("heterogeneity: %d samples, %d measured", len(table), int(measured.sum()))
    store(
        adata,
        tool="tl.heterogeneity",
        obs={OBS.malignant_state: _state_column(states, list(progs))},
        uns_key=key_added,
        uns={
            "table": table,
            "clone_state": _frame(comp, ["sample", "clone", "state", "n_cells", "fraction"]),
            "clones": _frame(
                per_clone, ["clone", "sample", "n_cells", "fraction", "cnv_burden", "n_gains", "n_losses"]
            ),
        },
        params={
            "sample_key": sample_key,
            "clone_key": clone_key,
            "malignant_rule": mal_rule,
            "programs": {k: list(v) for k, v in progs.items()},
            "signatures_scored": scored,
            "signatures_not_scored": unscored,
            "spatial_key": spatial_key,
            "layer": layer,
            "chromatin": epi["params"],
            "n_neighbors": N_NEIGHBORS,
            "min_cells": MIN_CELLS,
            "n_boot": n_boot,
            "rng": seed,
            "entropy_estimator": "Miller-Madow",
            "key_added": key_added,
        },
    )
    return adata if copy else None


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------
def _programs(programs) -> dict[str, tuple[str, ...]]:
    """``{state: (signature names)}`` from the user's ``programs``, checked against the library."""
    from ..datasets._signatures import _library

    if programs is None:
        progs = dict(DEFAULT_PROGRAMS)
    elif isinstance(programs, str):
        progs = {programs: (programs,)}
    elif isinstance(programs, dict):
        progs = {str(k): (v,) if isinstance(v, str) else tuple(v) for k, v in programs.items()}
    elif isinstance(programs, list | tuple):
        progs = {str(p): (str(p),) for p in programs}
    else:
        raise InvalidParameterError(
            f"programs must be None, a list of signature names or a dict {{state: names}}, got {programs!r}."
        )
    names = set(_library()["name"])
    bad = [n for v in progs.values() for n in v if n not in names]
    if bad or not progs or any(len(v) == 0 for v in progs.values()):
        raise InvalidParameterError(
            f"programs must name signatures of the library (tm.datasets.signatures()); unknown: {bad[:5]}. "
            + suggest_names(bad, names)
        )
    if BASELINE in progs:
        raise InvalidParameterError(
            f"{BASELINE!r} is the state of cells with no program above average; rename it."
        )
    return progs


def _state_column(states: np.ndarray, names: list[str]) -> pd.Categorical:
    """``obs["malignant_state"]``: each malignant cell's state (NaN for other cells), so that a state can be a
    subpopulation of :func:`~tmeatlas.tl.therapy_survival` (``groupby="malignant_state"``).
    """
    vals = pd.Series(states, dtype=object).where(pd.notna(states), None)
    return pd.Categorical(vals, categories=[*names, BASELINE])


def _check_args(adata, sample_key, clone_key, n_boot, key_added) -> int:
    """Nothing wrong with the columns and scalars (``n_boot`` returned as ``int``), or a typed error."""
    check_obs_key(adata, sample_key, what="sample_key")
    n_boot = check_int("n_boot", n_boot, 0)
    if not isinstance(key_added, str) or not key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string, got {key_added!r}.")
    if not isinstance(clone_key, str):
        raise InvalidParameterError(
            f"clone_key must be the name of a column of adata.obs, got {clone_key!r}."
        )
    hint = "Run `tm.tl.cnv_clones(adata)` first, or name your clone column with clone_key=."
    check_obs_key(adata, clone_key, what="clone_key", hint=hint)
    return n_boot


def _chromatin_modality(chromatin, mod) -> tuple[AnnData, str | None]:
    """The gene-activity AnnData of ``chromatin`` (itself, or modality ``mod`` of a MuData) and that name.

    A MuData is recognised by its ``.mod`` mapping of AnnData modalities, so mudata is never imported.
    """
    from collections.abc import Mapping

    from anndata import AnnData

    if isinstance(chromatin, AnnData):
        return chromatin, None
    mods = getattr(chromatin, "mod", None)
    if not isinstance(mods, Mapping):
        raise InvalidParameterError(
            "chromatin must be an AnnData of gene activity scores (cells x genes) or a MuData holding one "
            f"(chromatin_mod= names it), got {type(chromatin).__name__}."
        )
    if not isinstance(mod, str) or mod not in mods:
        hint = suggest_names([mod], [str(m) for m in mods])
        raise InvalidParameterError(
            f"chromatin_mod={mod!r} is not a modality of the MuData (modalities: {list(mods)}); name the "
            f"chromatin-accessibility one with chromatin_mod=. {hint}".rstrip()
        )
    if not isinstance(mods[mod], AnnData):
        raise InvalidParameterError(f"modality {mod!r} of the MuData is not an AnnData.")
    return mods[mod], mod


def _chromatin(adata, chromatin, mod, progs) -> dict | None:
    """The chromatin gene activity checked against ``adata`` and the programs: ``None`` when not given, else
    ``{"cells": AnnData, "X": matrix, "pos": row of each cell of adata in it (-1: absent), "params"}``.
    """
    from .._core.chunks import is_streamed
    from ..datasets._signatures import _library
    from ._cells import gene_cols

    if chromatin is None:
        return None
    cells, mod = _chromatin_modality(chromatin, mod)
    if cells.n_obs == 0 or cells.n_vars == 0 or cells.X is None:
        raise InvalidInputError(
            f"the chromatin AnnData is empty ({cells.n_obs} cells x {cells.n_vars} genes, X "
            f"{'missing' if cells.X is None else 'present'}); put the gene activity scores in its X."
        )
    var = pd.Index(cells.var_names.astype(str))
    lib = _library()
    genes = lib.loc[lib["name"].isin({n for v in progs.values() for n in v}), "gene"].astype(str)
    peaks = float(var.str.match(_PEAK).mean()) > 0.5
    if peaks or not gene_cols(var, list(genes)):
        what = "peaks" if peaks else "no gene of the programs"
        raise InvalidInputError(
            f"chromatin= holds {what} (var_names {list(var[:3])}): states are called on gene programs, so "
            f"peak accessibility cannot be scored; {_GENE_ACTIVITY_HOW}."
        )
    for who, names in (("adata", adata.obs_names), ("chromatin", cells.obs_names)):
        if not names.is_unique:
            raise InvalidInputError(
                f"{who} has duplicated cell names ({list(names[names.duplicated()][:3])}): cells are matched "
                "between adata and chromatin= by obs_names; make the names unique in the same way in both."
            )
    pos = cells.obs_names.get_indexer(adata.obs_names)
    if (pos < 0).all():
        raise InvalidInputError(
            f"no cell of adata is in chromatin= (obs_names {list(adata.obs_names[:2])} vs "
            f"{list(cells.obs_names[:2])}): the modalities are matched by cell name; make the barcodes agree "
            "(e.g. the same sample prefix or '-1' suffix) before passing chromatin=."
        )
    X = cells.X
    if not np.issubdtype(np.dtype(X.dtype), np.number) or np.dtype(X.dtype) == np.bool_:
        raise InvalidInputError(f"chromatin.X holds {X.dtype} values; pass numeric gene activity scores.")
    if not is_streamed(X):  # a streamed matrix is checked block by block as it is read
        try:
            check_expression_values(X)
        except InvalidInputError as e:
            raise InvalidInputError(
                f"chromatin.X (gene activity): {e} Gene activity goes in as counts or log-normalised, not scaled."
            ) from None
    params = {"modality": mod if mod is not None else "AnnData", "n_cells": int(cells.n_obs),
              "n_genes": int(cells.n_vars), "n_cells_matched": int((pos >= 0).sum())}  # fmt: skip
    return {"cells": cells, "X": X, "pos": pos, "params": params}


def _chromatin_states(chrom, mal, samples, progs, seed, n_jobs) -> dict:
    """State of each malignant cell of adata on its chromatin gene activity (``None``: no profile), with
    ``_states`` on the chromatin matrix; ``profiled`` marks the cells of adata with a profile, ``why`` says
    why no sample can be measured (``""`` when some can), ``params`` describes the input.
    """
    if chrom is None:
        return {"states": None, "profiled": None, "why": _EPI_REASON, "params": None}
    cells, pos = chrom["cells"], chrom["pos"]
    has = pos >= 0
    mal_c = np.zeros(cells.n_obs, dtype=bool)
    mal_c[pos[has & mal]] = True
    samples_c = np.full(cells.n_obs, "", dtype=object)
    samples_c[pos[has]] = samples[has]
    states = np.full(len(mal), None, dtype=object)
    scored, unscored = [], sorted({n for v in progs.values() for n in v})
    if mal_c.any():
        st, scored, unscored = _states(cells, chrom["X"], mal_c, samples_c, progs, seed, n_jobs)
        states[has] = st[pos[has]]
    why = "" if scored or not mal_c.any() else "no program could be scored on the chromatin gene activity (fewer than 3 of its genes measured)"  # fmt: skip
    params = {**chrom["params"], "n_malignant_matched": int(mal_c.sum()),
              "signatures_scored": scored, "signatures_not_scored": unscored}  # fmt: skip
    return {"states": states, "profiled": has, "why": why, "params": params}


def clone_labels(col: pd.Series, mal: np.ndarray) -> np.ndarray:
    """Clone label of each malignant cell, ``None`` where there is none (and for other cells)."""
    lab = col.astype(object).where(col.notna(), "").astype(str).to_numpy(dtype=object)
    none = np.array([str(v).strip().lower() in _NO_CLONE for v in lab]) | ~mal
    lab[none] = None
    return lab


def _states(cells, X, mal, samples, progs, seed, n_jobs, return_z: bool = False) -> tuple:
    """State of every malignant cell (``None`` elsewhere) and the signatures scored / not scored;
    with ``return_z``, also ``{"states": names, "z": malignant cells x states}`` (the shrunk state z
    of each malignant cell, in row order; for benchmarks).

    ``cells`` is the AnnData whose rows ``X`` holds (cells x genes), and ``mal`` / ``samples`` run over
    its rows: the RNA of ``adata``, or the chromatin gene activity (:func:`_chromatin_states`), one path.

    Scores are averaged over each cell's 30 nearest malignant neighbours of its sample and z-scored
    within the sample, shrunk by the reliability of the averages (as in
    :func:`tmeatlas.tl.therapy_survival`): a program that varies no more than cell sampling noise
    scores ~0 and assigns no cell. A cell is in a state when that z reaches ``STATE_Z``.
    """
    from .._settings import settings
    from ._immunotherapy import _light, _score
    from ._therapy import _lognorm_rows, _smoother, _zscore

    sigs = sorted({n for v in progs.values() for n in v})
    scores = _score(_light(cells, X), sigs, seed, n_jobs)
    scored = [n for n in sigs if n in scores.columns]
    states = np.full(cells.n_obs, None, dtype=object)
    mal_idx = np.flatnonzero(mal)
    codes = pd.factorize(samples[mal_idx])[0]
    E = _lognorm_rows(X, mal_idx, int(settings.chunk_size))
    S = _smoother(E, codes, np.zeros(0, dtype=np.int64), 30, 20, 1000, seed)
    w2 = np.asarray(S.multiply(S).sum(axis=1)).ravel()
    names, cols = [], []
    for state, members in progs.items():
        z = [_zscore(S @ v, codes, raw=v, w2=w2) for v in (scores[n].to_numpy(np.float64)[mal] for n in members
             if n in scored)]  # fmt: skip
        if z:
            names.append(state)
            cols.append(np.max(np.column_stack(z), axis=1))
    if cols:
        Z = np.column_stack(cols)
        best = np.argmax(Z, axis=1)
        top = Z[np.arange(len(Z)), best]
        states[mal] = np.where(top >= STATE_Z, np.asarray(names, dtype=object)[best], BASELINE)
    out = (states, scored if cols else [], [n for n in sigs if n not in scored])
    if return_z:
        out += ({"states": names, "z": np.column_stack(cols) if cols else np.zeros((len(mal_idx), 0))},)
    return out


def spatial_coordinates(adata, spatial_key) -> tuple[np.ndarray | None, str]:
    """Two-dimensional coordinates (first two columns) or ``None`` and why."""
    if spatial_key is None or spatial_key not in adata.obsm:
        return None, f"no coordinates in obsm[{spatial_key!r}]"
    xy = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] < 2:
        return None, f"obsm[{spatial_key!r}] is not a cells x 2 coordinate matrix"
    return xy[:, :2], ""


def _tree_tables(adata, clone_key) -> dict | None:
    """``uns["cnv_clones"]`` arm calls and tree when they describe ``obs[clone_key]``, else ``None``."""
    entry = adata.uns.get(UNS.cnv_clones)
    if not isinstance(entry, dict) or clone_key != OBS.cnv_clone:  # cnv_clones labels obs["cnv_clone"]
        return None
    calls = pd.DataFrame(entry.get("arm_calls", pd.DataFrame()))
    tree = pd.DataFrame(entry.get("tree", pd.DataFrame()))
    if calls.empty or not {"clone", "arm", "call"} <= set(calls.columns):
        return {"calls": None, "tree": tree}
    return {"calls": calls.astype({"clone": str, "arm": str, "call": str}), "tree": tree}


# --------------------------------------------------------------------------------------------
# one sample
# --------------------------------------------------------------------------------------------
def _sample(s, idx, clones, calls, xy, why_xy, tree, have_states, n_boot, seed):
    """The table row of sample ``s`` (malignant cells ``idx``), its clone x state rows and clone rows;
    ``calls`` is the RNA states of the cells and the chromatin states of :func:`_chromatin_states`.
    """
    states, epi = calls
    n = len(idx)
    lab = clones[idx]
    has_clone = np.array([v is not None for v in lab], dtype=bool)
    row = {"sample": s, "n_malignant": n, "n_clone_labelled": int(has_clone.sum())}
    why = {}
    clone_names = sorted({str(v) for v in lab[has_clone]})
    ccode = np.full(n, -1, np.int64)
    if clone_names:
        ccode[has_clone] = pd.Categorical(lab[has_clone].astype(str), categories=clone_names).codes
    row["n_clones"] = len(clone_names)
    few = f"{n} malignant cells (fewer than {MIN_CELLS})"
    genetic = has_clone.sum() >= MIN_CELLS
    if not genetic:
        reason = (
            few
            if n < MIN_CELLS
            else f"{int(has_clone.sum())} malignant cells with a clone label (fewer than {MIN_CELLS})"
        )
        why.update(dict.fromkeys((*_GENETIC, *_TREE, "state_between_clones", *_SPATIAL), reason))
    st = states[idx]
    state_names = sorted({str(v) for v in st if v is not None})
    scode = np.full(n, -1, np.int64)
    if state_names:
        ok = np.array([v is not None for v in st])
        scode[ok] = pd.Categorical(st[ok].astype(str), categories=state_names).codes
    if not have_states:
        why.update(
            dict.fromkeys(
                ("state_diversity", "state_between_clones"),
                "no program could be scored (fewer than 3 of its genes measured)",
            )
        )
    elif n < MIN_CELLS:
        why.update(dict.fromkeys(("state_diversity", "state_between_clones"), few))
    burden, k_rows = _tree_features(s, row, clone_names, ccode, tree, why, genetic)
    frac, ent = clone_neighbours(idx, ccode, xy, why_xy, why, genetic, len(clone_names))
    parts = {"clone": ccode if genetic else None, "state": scode if state_names and n >= MIN_CELLS else None,
             "burden": burden, "frac": frac, "ent": ent}  # fmt: skip
    rna = st if parts["state"] is not None else None
    parts["epi"], parts["rna"], n_epi = _epi_codes(row, idx, epi, rna, why)
    est, lo, hi = _resampled(parts, len(clone_names), len(state_names), n_boot, seed, n_epi)
    if genetic and len(clone_names) == 1:
        why.setdefault("clone_mixing", "one clone")
    if parts["state"] is not None and est.get("state_diversity") == 0 and genetic:
        why.setdefault("state_between_clones", "one state")
    if parts["rna"] is not None and not np.isfinite(est.get("epigenetic_rna_agreement", np.nan)):
        why.setdefault("epigenetic_rna_agreement", "one and the same state in RNA and chromatin")
    for k in INDICES:
        v, low, high = (
            (np.nan,) * 3 if k in why else (est.get(k, np.nan), lo.get(k, np.nan), hi.get(k, np.nan))
        )
        if np.isfinite(v) and np.isfinite(low):  # an estimate at the edge of its resamples stays inside
            low, high = min(low, v), max(high, v)
        elif not np.isfinite(v):
            why.setdefault(k, "not estimable from these cells")
        row[k], row[f"{k}_low"], row[f"{k}_high"] = v, low, high
    for k in ("clonal_events", "subclonal_events", "tree_depth"):
        row.setdefault(k, np.nan)
    if parts["state"] is not None:
        vc = pd.Series(st[scode >= 0].astype(str)).value_counts()
        row["n_states"], row["dominant_state"] = int(len(vc)), str(vc.index[0])
    row["not_measured"] = _reasons(why)
    comp = []
    if parts["state"] is not None and genetic:
        J = np.zeros((len(clone_names), len(state_names)), np.int64)
        both = (ccode >= 0) & (scode >= 0)
        np.add.at(J, (ccode[both], scode[both]), 1)
        for a, cn in enumerate(clone_names):
            tot = J[a].sum()
            comp += [{"sample": s, "clone": cn, "state": sn, "n_cells": int(J[a, b]), "fraction": J[a, b] / max(tot, 1)}
                     for b, sn in enumerate(state_names) if J[a, b] > 0]  # fmt: skip
    return row, comp, k_rows


def _reasons(why: dict[str, str]) -> str:
    """``"a, b: reason; c: other"``: indices grouped by their reason, in order of appearance."""
    by: dict[str, list[str]] = {}
    for k, r in why.items():
        by.setdefault(r, []).append(k)
    return "; ".join(f"{', '.join(ks)}: {r}" for r, ks in by.items())


def _epi_codes(row, idx, epi, rna, why) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """Chromatin state codes of the sample's malignant cells ``idx`` (-1: no profile) and their RNA states
    ``rna`` (``None``: not measured) coded alike, over the union of both sets of names, and its size;
    ``None`` where not measured, with the reason in ``why``. Writes ``n_chromatin_profiled`` into ``row``.
    """
    if epi["profiled"] is not None:
        row["n_chromatin_profiled"] = int(epi["profiled"][idx].sum())
    if epi["why"]:
        why.update(dict.fromkeys(_EPI, epi["why"]))
        return None, None, 0
    e = epi["states"][idx]
    ok = np.array([v is not None for v in e], dtype=bool)
    if ok.sum() < MIN_CELLS:
        reason = f"{int(ok.sum())} malignant cells with a chromatin profile (fewer than {MIN_CELLS})"
        why.update(dict.fromkeys(_EPI, reason))
        return None, None, 0
    rna_names = set() if rna is None else {str(v) for v in rna if v is not None}
    names = sorted({str(v) for v in e[ok]} | rna_names)

    def code(a):
        has = np.array([v is not None for v in a], dtype=bool)
        out = np.full(len(a), -1, np.int64)
        out[has] = pd.Categorical(a[has].astype(str), categories=names).codes
        return out

    if rna is None:
        why["epigenetic_rna_agreement"] = "no RNA states in this sample (see state_diversity)"
    return code(e), None if rna is None else code(rna), len(names)


def _tree_features(s, row, clone_names, ccode, tree, why, genetic) -> tuple[np.ndarray | None, list[dict]]:
    """Clonal / subclonal arm events, tree depth and per-cell clone burden of sample ``s``."""
    if not genetic:
        return None, []
    if tree is None or tree["calls"] is None:
        why.update(dict.fromkeys(_TREE, "no arm calls of tm.tl.cnv_clones for these clone labels"
                                 if tree is None else "tm.tl.cnv_clones made no arm calls (no reference cells)"))  # fmt: skip
        return None, []
    calls = tree["calls"]
    calls = calls[calls["clone"].isin(clone_names)]
    if calls["clone"].nunique() < len(clone_names):
        why.update(dict.fromkeys(_TREE, "arm calls missing for some clones of the sample"))
        return None, []
    ev = calls[calls["call"].isin(["gain", "loss"])]
    per_event = ev.groupby(["arm", "call"])["clone"].nunique()
    row["clonal_events"] = int((per_event == len(clone_names)).sum())
    row["subclonal_events"] = int((per_event < len(clone_names)).sum())
    t = tree["tree"]
    if "clone" in t.columns and "node" in t.columns:
        nodes = t[t["clone"].astype(str).isin(clone_names)]["node"].astype(str)
        depth = [len(v.rsplit(":", 1)[-1]) - 1 for v in nodes]
        row["tree_depth"] = int(max(depth)) if depth else np.nan
    n_arms = calls.groupby("clone")["arm"].nunique()
    gains = ev[ev["call"] == "gain"].groupby("clone").size()
    losses = ev[ev["call"] == "loss"].groupby("clone").size()
    per = np.array([(gains.get(c, 0) + losses.get(c, 0)) / max(n_arms.get(c, 0), 1) for c in clone_names])
    counts = np.bincount(ccode[ccode >= 0], minlength=len(clone_names))
    k_rows = [{"clone": c, "sample": s, "n_cells": int(counts[j]), "fraction": counts[j] / max(counts.sum(), 1),
               "cnv_burden": float(per[j]), "n_gains": int(gains.get(c, 0)), "n_losses": int(losses.get(c, 0))}
              for j, c in enumerate(clone_names)]  # fmt: skip
    return np.where(ccode >= 0, per[np.maximum(ccode, 0)], np.nan), k_rows


def clone_neighbours(
    idx, ccode, xy, why_xy, why, genetic, n_clones
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per malignant cell: fraction of its 10 nearest labelled malignant neighbours of another clone, and
    the entropy of their labels (NaN for cells without a label or coordinates).

    ``idx`` are the rows of a sample's malignant cells, ``ccode`` their clone codes (-1: no label) out of
    ``n_clones``, ``xy`` the coordinates of all cells (``None``: not measured, for the reason
    ``why_xy``). ``(None, None)`` when not measured (``genetic`` false, no coordinates, fewer than 20
    labelled cells with coordinates), with the reason written into ``why`` under the spatial indices.
    Shared with :func:`tmeatlas.pl.clone_mixing`, which draws the per-cell fraction.
    """
    if not genetic:
        return None, None
    if xy is None:
        why.update(dict.fromkeys(_SPATIAL, why_xy))
        return None, None
    from scipy.spatial import cKDTree

    pts = xy[idx]
    use = np.flatnonzero((ccode >= 0) & np.isfinite(pts).all(axis=1))
    if len(use) < max(MIN_CELLS, N_NEIGHBORS + 1):
        why.update(
            dict.fromkeys(
                _SPATIAL, f"{len(use)} labelled malignant cells with coordinates (fewer than {MIN_CELLS})"
            )
        )
        return None, None
    frac, ent = np.full(len(idx), np.nan), np.full(len(idx), np.nan)
    lab = ccode[use]
    _, ind = cKDTree(pts[use]).query(pts[use], k=N_NEIGHBORS + 1)
    own = ind == np.arange(len(use))[:, None]
    own[~own.any(axis=1), -1] = True  # duplicated coordinates: self not among the nearest, drop the last
    nb = lab[ind[~own].reshape(len(use), N_NEIGHBORS)]
    frac[use] = (nb != lab[:, None]).mean(axis=1)
    C = np.zeros((len(use), n_clones))
    np.add.at(C, (np.repeat(np.arange(len(use)), N_NEIGHBORS), nb.ravel()), 1.0)
    ent[use] = _plugin(C)
    return frac, ent


# --------------------------------------------------------------------------------------------
# estimators and the bootstrap
# --------------------------------------------------------------------------------------------
def _plugin(C: np.ndarray) -> np.ndarray:
    """Plug-in Shannon entropy (nats) of each row of counts ``C``; NaN for an empty row."""
    n = C.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = C / n
        t = np.where(C > 0, p * np.log(np.where(C > 0, p, 1.0)), 0.0)
    return np.where(n[:, 0] > 0, 0.0 - t.sum(axis=1), np.nan)


def _mm(C: np.ndarray) -> np.ndarray:
    """Miller-Madow Shannon entropy of each row of counts: plug-in + (observed categories - 1) / (2 n)."""
    n = C.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _plugin(C) + ((C > 0).sum(axis=1) - 1) / (2.0 * n)


def _indices(W, parts, n_clone: int, n_state: int, onehots) -> dict[str, np.ndarray]:
    """Every index for each row of cell weights ``W`` (replicates x cells; ones for the estimate)."""
    out = {}
    Oc, Os, Oj, Oe, Oa = onehots

    def counts(onehot):  # weighted category counts, replicates x categories
        return np.asarray(onehot.T @ W.T).T

    if Oc is not None:
        Cc = counts(Oc)
        out["genetic_diversity"] = _mm(Cc)
        out["effective_clones"] = np.exp(out["genetic_diversity"])
        if parts["burden"] is not None:
            b = np.nan_to_num(parts["burden"])
            out["cnv_burden"] = (W @ b) / np.maximum(Cc.sum(axis=1), 1e-12)
        for key, v in (("frac", "clone_mixing"), ("ent", "clone_spatial_entropy")):
            if parts[key] is None:
                continue
            ok = np.isfinite(parts[key])
            m = (W @ np.where(ok, parts[key], 0.0)) / np.maximum(W @ ok, 1e-12)
            if key == "frac":
                Cs = counts(sparse.csr_matrix(Oc.multiply(ok[:, None])))
                ns = Cs.sum(axis=1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    expect = 1.0 - (Cs * (Cs - 1)).sum(axis=1) / (ns * (ns - 1))
                    m = np.where(expect > 0, m / expect, np.nan)
            out[v] = m
    if Os is not None:
        out["state_diversity"] = _mm(counts(Os))
        if Oj is not None:
            J = counts(Oj).reshape(len(W), n_clone, n_state)
            hs, hc, hj = _mm(J.sum(axis=1)), _mm(J.sum(axis=2)), _mm(J.reshape(len(W), -1))
            with np.errstate(divide="ignore", invalid="ignore"):
                out["state_between_clones"] = np.where(hs > 0, np.clip(hs + hc - hj, 0.0, hs) / hs, np.nan)
    if Oe is not None:  # cells without a chromatin profile have no column: they do not count
        out["epigenetic_diversity"] = _mm(counts(Oe))
        if Oa is not None:
            out["epigenetic_rna_agreement"] = _kappa(counts(Oa).reshape(len(W), Oe.shape[1], Oe.shape[1]))
    return out


def _kappa(A: np.ndarray) -> np.ndarray:
    r"""Cohen's kappa of each agreement table of ``A`` (replicates x RNA state x chromatin state):
    :math:`(p_o - p_e) / (1 - p_e)`; NaN where :math:`p_e = 1` (one and the same state in both).
    """
    n = A.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        po = np.trace(A, axis1=1, axis2=2) / n
        pe = (A.sum(axis=2) * A.sum(axis=1)).sum(axis=1) / n**2
        return np.where(pe < 1.0 - 1e-12, (po - pe) / (1.0 - pe), np.nan)


def _onehot(code: np.ndarray | None, k: int):
    if code is None or k == 0:
        return None
    ok = code >= 0
    return sparse.csr_matrix((np.ones(ok.sum()), (np.flatnonzero(ok), code[ok])), shape=(len(code), k))


def _resampled(parts, n_clone: int, n_state: int, n_boot: int, seed: int, n_epi: int = 0):
    """Estimates and 2.5 / 97.5 % percentiles over ``n_boot`` multinomial resamples of the cells.

    Every per-cell category (clone, RNA state, chromatin state: ``n_epi`` names shared with the RNA
    states coded alike in ``parts["rna"]``) travels with its cell; code -1 is not counted.
    """
    c, s, e, r = parts["clone"], parts["state"], parts.get("epi"), parts.get("rna")
    n = next((len(v) for v in (c, s, e) if v is not None), 0)
    joint = agree = None
    if c is not None and s is not None:
        joint = np.where((c >= 0) & (s >= 0), c * n_state + s, -1)
    if e is not None and r is not None:
        agree = np.where((e >= 0) & (r >= 0), r * n_epi + e, -1)
    onehots = (_onehot(c, n_clone), _onehot(s, n_state), _onehot(joint, n_clone * n_state),
               _onehot(e, n_epi), _onehot(agree, n_epi * n_epi))  # fmt: skip
    if n == 0 or all(o is None for o in onehots):
        return {}, {}, {}
    est = {k: float(v[0]) for k, v in _indices(np.ones((1, n)), parts, n_clone, n_state, onehots).items()}
    if n_boot == 0:
        return est, {}, {}
    gen = make_rng(seed)
    reps: dict[str, list[np.ndarray]] = {}
    step = max(1, _BOOT_CELLS // n)
    for b0 in range(0, n_boot, step):
        W = gen.multinomial(n, np.full(n, 1.0 / n), size=min(step, n_boot - b0)).astype(np.float64)
        for k, v in _indices(W, parts, n_clone, n_state, onehots).items():
            reps.setdefault(k, []).append(v)
    lo, hi = {}, {}
    for k, vs in reps.items():
        v = np.concatenate(vs)
        v = v[np.isfinite(v)]
        if len(v):
            lo[k], hi[k] = (float(q) for q in np.quantile(v, [0.025, 0.975]))
    return est, lo, hi


def _table(rows: list[dict]) -> pd.DataFrame:
    cols = ["sample", "n_malignant", "n_clone_labelled", "n_chromatin_profiled", "n_clones", "clonal_events", "subclonal_events",
            "tree_depth", "n_states", "dominant_state"]  # fmt: skip
    for k in INDICES:
        cols += [k, f"{k}_low", f"{k}_high"]
    cols.append("not_measured")
    df = pd.DataFrame(rows).reindex(columns=cols)
    df["dominant_state"] = df["dominant_state"].fillna("").astype(str)
    df["not_measured"] = df["not_measured"].fillna("").astype(str)
    for c in cols:
        if c not in ("sample", "dominant_state", "not_measured"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(np.float64)
    df.index = df.index.astype(str)
    return df


def _frame(rows: list[dict], cols: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame({c: np.array([], str) for c in cols})
    df.index = df.index.astype(str)
    return df
