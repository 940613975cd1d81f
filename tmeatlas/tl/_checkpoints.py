"""Immune-checkpoint receptor–ligand interactions between cell groups: ``tm.tl.checkpoint_interactions``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from .._core.checkpoints import slot_sums
from .._core.chunks import is_streamed, row_block
from .._core.expression import log_normalise
from .._core.stats import bh_adjust
from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError, NotApplicableError
from .._keys import OBSM, UNS
from .._rng import make_rng, resolve_seed, spawn_seeds
from .._settings import logger, settings
from .._store import store
from .._validation import (
    check_expression_values,
    check_int,
    check_obs_key,
    get_matrix,
    looks_like_counts,
    start,
)

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "TABLE_COLUMNS",
    "checkpoint_interactions",
    "checkpoint_pairs",
    "interaction_table",
    "pair_expression",
]

#: columns of ``uns[key_added]["table"]``, in order
TABLE_COLUMNS = [
    "sample", "pair", "sender", "receiver", "ligand", "receptor", "n_sender", "n_receiver", "n_edges",
    "ligand_fraction", "receptor_fraction", "ligand_mean", "receptor_mean", "strength", "pval", "padj",
    "spatial",
]  # fmt: skip
#: permutations drawn from one random stream; fixed, so p-values do not depend on ``n_jobs``
PERMS_PER_STREAM = 100
#: numbers (slot sums and permuted labels) held at once in a batch of permutations (bounds memory)
_BATCH_SIZE = 4_000_000
#: relative tolerance of ">= observed" in the permutation count (float summation order)
_TIE_TOL = 1e-9
_PAIRS_FILE = "checkpoint_pairs.tsv"


# --------------------------------------------------------------------------------------------
# pairs
# --------------------------------------------------------------------------------------------
def checkpoint_pairs(pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The receptor–ligand pairs as a table: the shipped ``checkpoint_pairs.tsv`` or ``pairs`` checked.

    Returns a copy with the columns ``pair``, ``receptor``, ``ligand`` (``+``-joined subunits of a
    complex, whitespace removed) and any further columns of the input.
    """
    if pairs is None:
        from .._resources import data_path

        path = data_path(_PAIRS_FILE)
        if not path.is_file():
            raise InvalidParameterError(
                f"the shipped pair table tmeatlas/_data/{_PAIRS_FILE} is missing from this installation; "
                "reinstall tmeatlas, or pass `pairs=` as a DataFrame with columns pair, receptor, ligand "
                "(e.g. pd.DataFrame({'pair': ['PD-1/PD-L1'], 'receptor': ['PDCD1'], 'ligand': ['CD274']}))."
            )
        with path.open("rb") as fh:
            df = pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)
    elif isinstance(pairs, pd.DataFrame):
        df = pairs.copy()
    else:
        raise InvalidParameterError(
            f"pairs must be None (the shipped table) or a DataFrame with columns pair, receptor, ligand; "
            f"got {type(pairs).__name__}."
        )
    need = ["pair", "receptor", "ligand"]
    if not set(need) <= set(df.columns):
        raise InvalidParameterError(f"pairs needs the columns {need}; got {list(df.columns)}.")
    if df.empty:
        raise InvalidParameterError("pairs is empty.")
    for c in need:
        df[c] = df[c].astype(str).str.replace(r"\s+", "", regex=True)
    bad = df[(df["receptor"].str.strip("+") == "") | (df["ligand"].str.strip("+") == "") | (df["pair"] == "")]
    if len(bad):
        raise InvalidParameterError(
            f"pairs has rows without a pair name, receptor or ligand: {bad[need].to_dict('records')[:3]}."
        )
    dup = df["pair"][df["pair"].duplicated()]
    if len(dup):
        raise InvalidParameterError(f"pair names must be unique; repeated: {sorted(set(dup))[:5]}.")
    return df.reset_index(drop=True)


def _subunits(s: str) -> list[str]:
    """The subunits (genes) of a ``+``-joined complex."""
    return [g for g in s.split("+") if g]


def _gene_columns(var_names: pd.Index, genes: list[str]) -> dict[str, int]:
    """Column of each gene found in the data (the matching of :func:`tmeatlas.tl.score_signatures`:
    exact name, else current HGNC symbols via Ensembl IDs, legacy symbols, aliases and case).
    """
    from ._annotate_protein import MAX_PROTEIN_FEATURES, panel_genes
    from ._signatures import _gene_columns as columns

    cols = columns(var_names, genes)
    found = {g: int(c) for g, c in zip(genes, cols) if c >= 0}
    if len(var_names) <= MAX_PROTEIN_FEATURES:  # a panel: antibody channels ('PD-L1', 'TIM-3')
        protein = panel_genes(var_names)
        found.update({g: protein[g] for g in genes if g not in found and g in protein})
    return found


# --------------------------------------------------------------------------------------------
# expression of the pair genes
# --------------------------------------------------------------------------------------------
def pair_expression(X, cols: np.ndarray, chunk: int) -> tuple[sparse.csr_matrix, str]:
    """Expression of genes ``cols`` (cells x genes, CSR): ``log1p`` CP10k for counts, else as stored.

    Library sizes are row sums of the whole matrix, computed chunk by chunk; only the pair
    genes' columns are kept (:func:`tmeatlas._core.expression.log_normalise` with the full-row
    library sizes). Returns the matrix and ``"log1p_cp10k"`` or ``"as_is"``.
    """
    if sparse.issparse(X):
        check_expression_values(X)
    counts = looks_like_counts(X)
    parts = []
    for s in range(0, X.shape[0], chunk):
        Xc = _checked_block(X, s, min(X.shape[0], s + chunk))
        lib = np.asarray(Xc.sum(axis=1)).ravel() if counts else None
        parts.append(log_normalise(Xc[:, cols], counts, lib=lib))
    E = sparse.vstack(parts, format="csr")
    E.sort_indices()
    return E, ("log1p_cp10k" if counts else "as_is")


def _expression(X, var_names, cols: np.ndarray, sample_of: np.ndarray) -> tuple[sparse.csr_matrix, str]:
    """The pair genes' expression: :func:`pair_expression`, or for the intensities of a protein panel
    (never zero) robust SDs above each channel's background per sample where positive, else 0
    (``"protein_z"``; :func:`tmeatlas.tl._annotate_protein.protein_expression`).
    """
    from ._annotate_protein import looks_like_protein, protein_expression

    if looks_like_protein(X, var_names):
        samples = pd.Series(sample_of, dtype=object).fillna("").astype(str).to_numpy()
        return protein_expression(X, cols, samples), "protein_z"
    return pair_expression(X, cols, settings.chunk_size)


def _checked_block(X, start: int, stop: int) -> sparse.csr_matrix:
    """Rows ``start:stop`` of ``X`` (in memory, backed or Dask) as float64 CSR, values checked where not yet."""
    block = row_block(X, start, stop)
    if sparse.issparse(block):
        if is_streamed(X):  # blocks of a Dask / backed matrix: checked as they are read
            check_expression_values(block)
        return sparse.csr_matrix(block, dtype=np.float64)
    arr = np.asarray(block, dtype=np.float64)
    check_expression_values(arr)  # dense input: checked chunk by chunk
    return sparse.csr_matrix(arr)


# --------------------------------------------------------------------------------------------
# the per-sample statistics
# --------------------------------------------------------------------------------------------
class _Sample:
    """Everything one sample needs: its cells' codes, expression and (spatial mode) edges.

    ``slots`` index the populations whose means are taken: groups (expression mode, ``K``
    slots) or ordered group pairs ``S*K + R`` (spatial mode, ``K*K`` slots: the sender ends
    and the receiver ends of the ``S -> R`` edges).
    """

    def __init__(self, codes, E, K, src=None, dst=None):
        self.codes = np.ascontiguousarray(codes, dtype=np.int64)
        self.K = K
        self.n = len(codes)
        self.spatial = src is not None
        self.E = sparse.csr_matrix(E, dtype=np.float64)
        self.E.sort_indices()
        empty = np.zeros(0, dtype=np.int64)
        self.src = empty if src is None else np.ascontiguousarray(src, dtype=np.int64)
        self.dst = empty if dst is None else np.ascontiguousarray(dst, dtype=np.int64)
        self.n_slots = K * K if self.spatial else K
        self.n_items = len(self.src) if self.spatial else self.n

    def sums(self, codes_b: np.ndarray, binary: bool = False):
        """Sums over each slot of the sender and receiver ends, and slot sizes, for ``B`` labellings.

        ``codes_b`` is ``(B, n)``; returns ``(send (B, slots, genes), recv (same), size (B, slots))``.
        """
        E = self.E
        return slot_sums(np.ascontiguousarray(codes_b, dtype=np.int64), self.src, self.dst, self.K,
                         E.indptr.astype(np.int64), E.indices.astype(np.int64), E.data, E.shape[1],
                         spatial=self.spatial, binary=binary)  # fmt: skip


def _complex(vals: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Minimum over the subunits of each pair: ``vals (..., genes)`` -> ``(..., pairs)``; ``idx`` padded with -1."""
    g = vals[..., np.where(idx >= 0, idx, 0)]
    return np.where(idx >= 0, g, np.inf).min(axis=-1)


def _means(smp: _Sample, codes_b: np.ndarray, lig: np.ndarray, rec: np.ndarray, binary: bool = False):
    """``(ligand means (B, slots, pairs), receptor means (same), slot sizes (B, slots))`` for ``B`` labellings."""
    send, recv, size = smp.sums(codes_b, binary=binary)
    with np.errstate(invalid="ignore", divide="ignore"):
        send = send / size[..., None]
        recv = recv / size[..., None]
    return _complex(send, lig), _complex(recv, rec), size


def _strength(Lm, Rm, size, combos) -> np.ndarray:
    """Strength of each tested combination for ``B`` labellings: ``(B, n_combos)``; -inf where undefined."""
    p, s_slot, r_slot = combos
    st = 0.5 * (Lm[:, s_slot, p] + Rm[:, r_slot, p])
    ok = (size[:, s_slot] > 0) & (size[:, r_slot] > 0)
    return np.where(ok & np.isfinite(st), st, -np.inf)


def _null_counts(smp: _Sample, combos, obs: np.ndarray, lig, rec, seed: int, n: int) -> np.ndarray:
    """Number of the ``n`` label permutations of stream ``seed`` with strength >= observed."""
    gen = make_rng(int(seed))
    batch = int(max(1, min(n, _BATCH_SIZE // max(smp.n_slots * smp.E.shape[1] + smp.n, 1))))
    thr = obs - _TIE_TOL * np.maximum(np.abs(obs), 1e-12)
    count = np.zeros(len(obs), dtype=np.int64)
    done = 0
    while done < n:
        b = min(batch, n - done)
        codes_b = np.stack([smp.codes[gen.permutation(smp.n)] for _ in range(b)])
        Lm, Rm, size = _means(smp, codes_b, lig, rec)
        count += (_strength(Lm, Rm, size, combos) >= thr).sum(axis=0)
        done += b
    return count


# --------------------------------------------------------------------------------------------
# tm.tl.checkpoint_interactions
# --------------------------------------------------------------------------------------------
@doc_params("copy", "layer")
def checkpoint_interactions(
    adata: AnnData,
    *,
    groupby: str,
    sample_key: str | None = None,
    pairs: pd.DataFrame | None = None,
    layer: str | None = None,
    spatial_key: str = OBSM.spatial,
    connectivity_key: str | None = "spatial_connectivities",
    n_perms: int = 1000,
    min_cells: int = 10,
    min_fraction: float = 0.1,
    rng: int = 0,
    n_jobs: int | None = None,
    key_added: str = UNS.checkpoint_interactions,
    copy: bool = False,
) -> AnnData | None:
    r"""Immune-checkpoint receptor–ligand interactions between cell groups, per sample, with permutation p-values.

    For every receptor–ligand pair (default: the shipped ``checkpoint_pairs.tsv``, e.g.
    PD-1/PD-L1 = ``PDCD1`` / ``CD274``), every ordered pair of groups of ``obs[groupby]``
    (sender expressing the ligand, receiver expressing the receptor; a group may be both) and
    every sample, the interaction is scored as in CellPhoneDB v2 (Efremova et al., Nat Protoc
    15:1484, 2020) and ``squidpy.gr.ligrec`` (Palla et al., Nat Methods 19:171, 2022):

    .. math:: \mathrm{strength}_{S \to R} = \tfrac12\,(\bar x^{\,\mathrm{lig}}_S + \bar x^{\,\mathrm{rec}}_R)

    the mean of the ligand's mean expression in the sender cells and the receptor's mean
    expression in the receiver cells. Expression is ``log1p`` of counts per 10,000 when the
    matrix holds counts (:func:`tmeatlas._validation.looks_like_counts`), else the stored values
    (log-normalised data). A ``+``-joined complex takes, in each population, the minimum over
    its subunits of their means (and of their fractions of expressing cells), CellPhoneDB's rule.
    A combination is tested only when both groups have at least ``min_cells`` cells in the
    sample and at least ``min_fraction`` of the sender (receiver) cells express the ligand
    (receptor), and always more than none: CellPhoneDB's expression threshold.

    **Null distribution.** The group labels are shuffled among the sample's cells ``n_perms``
    times and the strength recomputed; ``pval = (1 + #{perm >= observed}) / (1 + n_perms)``
    (Phipson & Smyth, Stat Appl Genet Mol Biol 9:39, 2010: never 0, at least
    ``1 / (n_perms + 1)``). ``padj`` is the Benjamini–Hochberg adjustment over the tested rows of
    each sample. Under each permutation the group means are sums of the sparse rows of the
    pair genes over the sample's cells (or edges), a batch of permutations at once (numba);
    the full matrix is never densified. Each sample draws its permutations from its own random
    streams (one per :data:`PERMS_PER_STREAM` permutations, seeds from
    :func:`tmeatlas._rng.spawn_seeds`), so the p-values depend on ``rng`` but not on ``n_jobs``.

    **Spatial mode.** When ``obsp[connectivity_key]`` exists (a spatial neighbour graph, e.g.
    from ``squidpy.gr.spatial_neighbors``), only cells in contact count: for groups ``S`` and
    ``R`` the statistics are taken over the edges ``i -> j`` of the graph (non-zero entries,
    self-loops and edges between samples dropped) with ``i`` in ``S`` and ``j`` in ``R``:
    ``ligand_mean`` is the mean over these edges of the sender cell's ligand expression,
    ``receptor_mean`` that of the receiver cell's receptor expression (so a cell counts once
    per contact), the fractions likewise, and ``strength`` their average. Group pairs that are
    never neighbours (``n_edges = 0``) are not tested. The permutation shuffles labels within
    the sample on the fixed graph, asking whether the contacts between ``S`` and ``R`` carry
    more ligand and receptor than contacts between random cells (the contact-aware variant of
    the CellPhoneDB test; cf. CellPhoneDB v3 and Garcia-Alonso et al., Nat Genet 54:1561,
    2022). Without the graph the statistics are over all cells of the groups.
    ``uns[key_added]["mode"]`` records which was used.

    Parameters
    ----------
    adata
        Annotated data matrix (raw counts or log-normalised expression, gene symbols or
        Ensembl IDs as ``var_names``), sparse or dense; only the pair genes are read densely.
    groupby
        Column of ``adata.obs`` with the groups (senders and receivers), e.g.
        ``"cell_type_major"`` from :func:`~tmeatlas.tl.annotate`.
    sample_key
        Column of ``adata.obs`` with the sample (patient); each sample is tested on its own.
        ``None``: all cells are one sample, ``"all"``.
    pairs
        ``None``: the shipped ``tmeatlas/_data/checkpoint_pairs.tsv``; or a DataFrame with
        columns ``pair``, ``receptor``, ``ligand`` (``+``-joined genes for complexes).
        Pairs with a gene that is not measured are skipped (listed in ``uns[key_added]["pairs"]``).
    {layer}
    spatial_key
        Key of the coordinates in ``adata.obsm``; when they exist but the graph does not, the
        log says how to build the graph (``sq.gr.spatial_neighbors(adata, spatial_key=...)``).
    connectivity_key
        Key of the spatial neighbour graph in ``adata.obsp``; ``None`` forces the non-spatial mode.
    n_perms
        Number of label permutations per sample.
    min_cells
        Fewest cells of a group in a sample for it to be a sender or receiver.
    min_fraction
        Fewest fraction of a group's cells (spatial mode: of the edges' ends) expressing the
        ligand (receptor) for the combination to be tested; 0 still requires one cell.
    rng
        Seed of the permutations (an int; a Generator or ``None`` draws one, recorded in ``params``).
    n_jobs
        Threads over (sample, stream) tasks (default ``tm.settings.n_jobs``; ``-1`` all cores);
        results do not depend on it.
    key_added
        Key of ``adata.uns`` for the results.
    {copy}

    Returns
    -------
    ``None`` or a copy. ``uns[key_added]`` holds ``table`` (one row per sample, pair, sender and
    receiver tested: the columns of :data:`TABLE_COLUMNS`; ``n_edges`` is the number of
    sender-to-receiver contacts in spatial mode and ``-1`` otherwise; ``spatial`` says which
    mode), ``pairs`` (the pair table with ``measured`` and the ``missing`` genes), ``mode``
    (``"spatial"`` or ``"expression"``), ``expression`` (``"log1p_cp10k"``, ``"as_is"``, or
    ``"protein_z"`` for a multiplexed protein panel: each channel in robust SDs above its background
    per sample where the cell is positive, 0 elsewhere; channels named by their antibodies, 'PD-L1',
    'PD-1', 'TIM-3', resolve to the genes),
    ``samples`` (those analysed) and ``params``. Read it with :func:`tmeatlas.get.checkpoint_interactions`.
    """
    adata = start(adata, copy)
    _check_params(adata, groupby, sample_key, n_perms, min_cells, min_fraction, key_added)
    seed = resolve_seed(rng)
    threads = settings.resolve_n_jobs(n_jobs)
    table = checkpoint_pairs(pairs)
    used, cols, lig, rec = _pair_genes(table, adata.var_names)
    groups, codes_all = _group_codes(adata, groupby)
    sample_of, samples = _sample_labels(adata, sample_key)
    E, expression = _expression(get_matrix(adata, layer), adata.var_names, cols, sample_of)
    A = _connectivity(adata, spatial_key, connectivity_key)
    mode = "spatial" if A is not None else "expression"
    frac_min = float(min_fraction)
    design = _Design(E=E, A=A, codes=codes_all, groups=groups, used=used, lig=lig, rec=rec)
    rows, work = _observed(design, sample_of, samples, min_cells=min_cells, frac_min=frac_min,
                           n_perms=int(n_perms), seed=seed)  # fmt: skip
    counts = _permutation_counts(work, [len(r) for r in rows], lig, rec, threads)
    out = _result_table(rows, counts, n_perms, samples, spatial=A is not None)
    if not rows:
        logger.warning(
            "checkpoint_interactions: no sender/receiver combination passed the filters (min_cells=%d, "
            "min_fraction=%g%s); the table is empty.",
            min_cells,
            frac_min,
            ", neighbouring groups" if A is not None else "",
        )
    logger.info(
        "checkpoint_interactions: %s mode, %d rows tested over %d samples", mode, len(out), len(samples)
    )
    store(
        adata,
        tool="tl.checkpoint_interactions",
        uns_key=key_added,
        uns={"table": out, "pairs": table, "mode": mode, "expression": expression, "samples": list(samples)},
        params={
            "groupby": groupby,
            "sample_key": sample_key,
            "pairs": "shipped" if pairs is None else "user",
            "layer": layer,
            "spatial_key": spatial_key,
            "connectivity_key": connectivity_key,
            "n_perms": int(n_perms),
            "min_cells": int(min_cells),
            "min_fraction": frac_min,
            "rng": seed,
            "n_jobs": threads,
            "strength": "mean of the ligand and receptor means (CellPhoneDB v2)",
        },
    )
    return adata if copy else None


# --------------------------------------------------------------------------------------------
# the steps of checkpoint_interactions
# --------------------------------------------------------------------------------------------
class _Design(NamedTuple):
    """What every sample's test reads: pair-gene expression, graph, group codes and the pairs."""

    E: sparse.csr_matrix  # cells x pair genes
    A: sparse.csr_matrix | None  # the cell graph (spatial mode) or None
    codes: np.ndarray  # each cell's group (-1: no label)
    groups: list[str]
    used: pd.DataFrame  # the measured pairs
    lig: np.ndarray  # pairs x subunits: gene indices of the ligand (padded with -1)
    rec: np.ndarray  # same for the receptor


def _check_params(adata, groupby, sample_key, n_perms, min_cells, min_fraction, key_added) -> None:
    """None; raises a typed error naming the first parameter that is not valid."""
    if not isinstance(groupby, str):
        raise InvalidParameterError(f"groupby must be the name of a column of adata.obs, got {groupby!r}.")
    hint = (
        "Run `tm.tl.annotate(adata)` first."
        if groupby in ("cell_type_major", "cell_type", "compartment")
        else ""
    )
    check_obs_key(adata, groupby, what="groupby", hint=hint)
    check_obs_key(adata, sample_key, what="sample_key")
    check_int("n_perms", n_perms, 1)
    check_int("min_cells", min_cells, 1)
    if (
        not isinstance(min_fraction, int | float | np.integer | np.floating)
        or isinstance(min_fraction, bool)
        or not 0.0 <= float(min_fraction) <= 1.0
    ):
        raise InvalidParameterError(f"min_fraction must be in [0, 1], got {min_fraction!r}.")
    if not isinstance(key_added, str) or not key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string, got {key_added!r}.")


def _pair_genes(table: pd.DataFrame, var_names: pd.Index):
    """``(used, cols, lig, rec)``: the measured pairs, the data columns of their genes and each pair's
    ligand and receptor subunits as indices into those genes (padded with -1).

    Adds the columns ``measured`` and ``missing`` to ``table``; raises :class:`NotApplicableError`
    when no pair is measured.
    """
    lig_sub = [_subunits(s) for s in table["ligand"]]
    rec_sub = [_subunits(s) for s in table["receptor"]]
    all_genes = list(dict.fromkeys(g for subs in (*lig_sub, *rec_sub) for g in subs))
    found = _gene_columns(var_names, all_genes)
    missing = [[g for g in lig + rec if g not in found] for lig, rec in zip(lig_sub, rec_sub)]
    table["measured"] = [not m for m in missing]
    table["missing"] = [",".join(dict.fromkeys(m)) for m in missing]
    if not table["measured"].any():
        raise NotApplicableError(
            f"no receptor–ligand pair has all its genes in adata.var_names (looked for {all_genes[:10]}"
            f"{'...' if len(all_genes) > 10 else ''}); check that var_names are human gene symbols or "
            "Ensembl IDs, or pass `pairs=` naming genes of the data."
        )
    if (~table["measured"]).any():
        logger.warning(
            "checkpoint_interactions: %d of %d pairs skipped, genes not measured: %s",
            int((~table["measured"]).sum()),
            len(table),
            ", ".join(sorted({g for m in missing for g in m}))[:300],
        )
    used = table[table["measured"]].reset_index(drop=True)
    genes = list(
        dict.fromkeys(
            g for i in used.index for g in _subunits(used.at[i, "ligand"]) + _subunits(used.at[i, "receptor"])
        )
    )
    gidx = {g: j for j, g in enumerate(genes)}
    width = max(
        max(len(_subunits(s)) for s in used["ligand"]), max(len(_subunits(s)) for s in used["receptor"])
    )
    lig, rec = _padded(used["ligand"], gidx, width), _padded(used["receptor"], gidx, width)
    return used, np.array([found[g] for g in genes], dtype=np.int64), lig, rec


def _padded(values, gidx: dict[str, int], width: int) -> np.ndarray:
    """Indices (``gidx``) of the subunits of each ``+``-joined entry, one row per entry, padded with -1."""
    out = np.full((len(values), width), -1, dtype=np.int64)
    for i, s in enumerate(values):
        sub = _subunits(s)
        out[i, : len(sub)] = [gidx[g] for g in sub]
    return out


def _group_codes(adata: AnnData, groupby: str) -> tuple[list[str], np.ndarray]:
    """``(groups, codes)``: the groups of ``obs[groupby]`` in order and each cell's code (-1: missing)."""
    gcol = adata.obs[groupby]
    if isinstance(gcol.dtype, pd.CategoricalDtype):
        groups = [str(c) for c in gcol.cat.categories]
    else:
        groups = sorted({str(v) for v in gcol.dropna()})
    if not groups:
        raise InvalidInputError(f"obs[{groupby!r}] has no non-missing values.")
    codes = pd.Categorical(np.where(gcol.isna(), None, gcol.astype(str)), categories=groups).codes.astype(
        np.int64
    )
    return groups, codes


def _sample_labels(adata: AnnData, sample_key: str | None) -> tuple[np.ndarray, list[str]]:
    """``(sample_of, samples)``: each cell's sample (None: missing) and the samples, in order."""
    if sample_key is None:
        return np.full(adata.n_obs, "all", dtype=object), ["all"]
    scol = adata.obs[sample_key]
    sample_of = np.where(scol.isna(), None, scol.astype(str)).astype(object)
    samples = (
        [str(c) for c in scol.cat.categories if (scol == c).any()]
        if isinstance(scol.dtype, pd.CategoricalDtype)
        else sorted({str(v) for v in scol.dropna()})
    )
    return sample_of, samples


def _connectivity(adata: AnnData, spatial_key: str, connectivity_key: str | None) -> sparse.csr_matrix | None:
    """The cell graph ``obsp[connectivity_key]`` as CSR (spatial mode), or None (expression mode)."""
    if connectivity_key is not None and connectivity_key in adata.obsp:
        A = sparse.csr_matrix(adata.obsp[connectivity_key])
        if A.shape != (adata.n_obs, adata.n_obs):
            raise InvalidInputError(
                f"obsp[{connectivity_key!r}] has shape {A.shape}, expected {(adata.n_obs,) * 2}."
            )
        return A
    if connectivity_key is not None and spatial_key in adata.obsm:
        logger.info(
            "checkpoint_interactions: obsm[%r] has coordinates but obsp[%r] does not exist; testing all cells "
            "of each group. For contact-based tests run `squidpy.gr.spatial_neighbors(adata, spatial_key=%r, "
            "library_key=<sample column>)` first.",
            spatial_key,
            connectivity_key,
            spatial_key,
        )
    return None


def _observed(
    design: _Design, sample_of, samples, *, min_cells: int, frac_min: float, n_perms: int, seed: int
):
    """``(rows, work)``: per tested sample, its table of observed statistics, and the permutation tasks
    ``(row index, sample, combos, observed strength, stream seed, permutations)``.
    """
    sample_seeds = spawn_seeds(seed, len(samples))
    work, rows = [], []
    for si, s in enumerate(samples):
        idx = np.flatnonzero((sample_of == s) & (design.codes >= 0))
        tested = _observed_sample(design, s, idx, min_cells, frac_min) if idx.size else None
        if tested is None:
            continue
        smp, combos, obs, frame = tested
        n_streams = -(-n_perms // PERMS_PER_STREAM)
        stream_seeds = spawn_seeds(int(sample_seeds[si]), n_streams)
        for t in range(n_streams):
            nb = min(PERMS_PER_STREAM, n_perms - t * PERMS_PER_STREAM)
            work.append((len(rows), smp, combos, obs, int(stream_seeds[t]), nb))
        rows.append(frame)
    return rows, work


def _observed_sample(design: _Design, sample: str, idx: np.ndarray, min_cells: int, frac_min: float):
    """``(smp, combos, obs, frame)`` of one sample's cells ``idx``: the :class:`_Sample`, the tested
    (pair, sender slot, receiver slot) combinations, their strengths and their rows of the table;
    None when no combination passes the filters.
    """
    K, A = len(design.groups), design.A
    codes = design.codes[idx]
    n_k = np.bincount(codes, minlength=K)
    big = n_k >= min_cells
    if big.sum() == 0:
        return None
    Es = design.E[idx]
    if A is not None:
        As = sparse.coo_matrix(A[idx][:, idx])
        keep = (As.data != 0) & (As.row != As.col)
        smp = _Sample(codes, Es, K, As.row[keep].astype(np.int64), As.col[keep].astype(np.int64))
    else:
        smp = _Sample(codes, Es, K)
    Lm, Rm, size = _means(smp, codes[None, :], design.lig, design.rec)
    Lf, Rf, _ = _means(smp, codes[None, :], design.lig, design.rec, binary=True)
    Lm, Rm, size, Lf, Rf = Lm[0], Rm[0], size[0], Lf[0], Rf[0]
    snd, rcv = np.meshgrid(np.flatnonzero(big), np.flatnonzero(big), indexing="ij")
    snd, rcv = snd.ravel(), rcv.ravel()
    if A is not None:
        s_slot = r_slot = snd * K + rcv
    else:
        s_slot, r_slot = snd, rcv
    P = len(design.used)
    p_i = np.repeat(np.arange(P), len(snd))
    snd_i, rcv_i = np.tile(snd, P), np.tile(rcv, P)
    s_i, r_i = np.tile(s_slot, P), np.tile(r_slot, P)
    lf, rf = Lf[s_i, p_i], Rf[r_i, p_i]
    ok = (size[s_i] > 0) & (size[r_i] > 0) & (lf > 0) & (rf > 0) & (lf >= frac_min) & (rf >= frac_min)
    if not ok.any():
        return None
    combos = (p_i[ok], s_i[ok], r_i[ok])
    obs = _strength(Lm[None], Rm[None], size[None], combos)[0]
    used, groups = design.used, np.asarray(design.groups, dtype=object)
    frame = pd.DataFrame(
        {
            "sample": sample,
            "pair": used["pair"].to_numpy()[p_i[ok]],
            "sender": groups[snd_i[ok]],
            "receiver": groups[rcv_i[ok]],
            "ligand": used["ligand"].to_numpy()[p_i[ok]],
            "receptor": used["receptor"].to_numpy()[p_i[ok]],
            "n_sender": n_k[snd_i[ok]].astype(np.int64),
            "n_receiver": n_k[rcv_i[ok]].astype(np.int64),
            "n_edges": size[s_i[ok]].astype(np.int64)
            if A is not None
            else np.full(int(ok.sum()), -1, np.int64),
            "ligand_fraction": lf[ok],
            "receptor_fraction": rf[ok],
            "ligand_mean": Lm[s_i[ok], p_i[ok]],
            "receptor_mean": Rm[r_i[ok], p_i[ok]],
            "strength": obs,
            "_order": p_i[ok] * K * K + snd_i[ok] * K + rcv_i[ok],
        }
    )
    return smp, combos, obs, frame


def _permutation_counts(work: list, n_rows: list[int], lig, rec, threads: int) -> list[np.ndarray]:
    """Per sample's rows, the number of permutations (over all its streams) with strength >= observed."""
    counts = [np.zeros(n, dtype=np.int64) for n in n_rows]

    def run(task):
        k, smp, combos, obs, sd, nb = task
        return k, _null_counts(smp, combos, obs, lig, rec, sd, nb)

    if threads > 1 and len(work) > 1:
        with ThreadPoolExecutor(max_workers=threads) as ex:
            results = list(ex.map(run, work))
    else:
        results = [run(t) for t in work]
    for k, c in results:
        counts[k] += c
    return counts


def _result_table(rows: list[pd.DataFrame], counts: list[np.ndarray], n_perms: int, samples: list[str], *,
                  spatial: bool) -> pd.DataFrame:  # fmt: skip
    """The table of :data:`TABLE_COLUMNS`: the samples' rows with p-values and BH-adjusted p-values
    (per sample), in sample, pair, sender, receiver order; an empty table when nothing was tested.
    """
    for r, c in zip(rows, counts):
        r["pval"] = (1.0 + c) / (1.0 + n_perms)
        r["padj"] = bh_adjust(r["pval"].to_numpy())
        r["spatial"] = spatial
    if rows:
        out = pd.concat(rows, ignore_index=True)
        out = out.sort_values(
            ["sample", "_order"],
            kind="stable",
            key=lambda c: c.map(samples.index) if c.name == "sample" else c,
        )
        out = out.drop(columns="_order").reset_index(drop=True)[TABLE_COLUMNS]
    else:
        out = _empty_table()
    out.index = out.index.astype(str)
    return out


def _empty_table() -> pd.DataFrame:
    """An empty table with the columns of :data:`TABLE_COLUMNS` and their dtypes."""
    dtypes = {
        "sample": object, "pair": object, "sender": object, "receiver": object, "ligand": object, "receptor": object,
        "n_sender": np.int64, "n_receiver": np.int64, "n_edges": np.int64, "ligand_fraction": np.float64,
        "receptor_fraction": np.float64, "ligand_mean": np.float64, "receptor_mean": np.float64,
        "strength": np.float64, "pval": np.float64, "padj": np.float64, "spatial": bool,
    }  # fmt: skip
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in TABLE_COLUMNS})


# --------------------------------------------------------------------------------------------
# reading the stored table
# --------------------------------------------------------------------------------------------
def interaction_table(adata: AnnData, key: str) -> pd.DataFrame:
    """The stored table of :func:`checkpoint_interactions` under ``uns[key]`` (a copy).

    Categorical text columns come back as text and ``spatial`` as bool (after an h5ad round
    trip); raises :class:`MissingResultError` when ``uns[key]`` holds no table.
    """
    entry = adata.uns.get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("table"), pd.DataFrame):
        raise MissingResultError(
            f"no checkpoint interactions in adata.uns[{key!r}]: run "
            "`tm.tl.checkpoint_interactions(adata, groupby=..., sample_key=...)` first."
        )
    df = entry["table"].copy()
    for c in ("sample", "pair", "sender", "receiver", "ligand", "receptor"):
        if c in df and isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(str).astype(object)
    if "spatial" in df:
        df["spatial"] = df["spatial"].astype(bool)
    return df.reset_index(drop=True)
