"""Immune-checkpoint receptor–ligand interactions between cell groups: ``tm.tl.checkpoint_interactions``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numba import njit
from scipy import sparse

from .._core.chunks import is_streamed, row_block
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError, NotApplicableError
from .._keys import OBSM, UNS
from .._rng import make_rng, resolve_seed, spawn_seeds
from .._settings import logger, settings
from .._store import store
from .._validation import check_expression_values, check_obs_key, get_matrix, looks_like_counts, start

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["TABLE_COLUMNS", "checkpoint_interactions", "checkpoint_pairs"]

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
        raise InvalidParameterError(f"pairs has rows without a pair name, receptor or ligand: {bad[need].to_dict('records')[:3]}.")
    dup = df["pair"][df["pair"].duplicated()]
    if len(dup):
        raise InvalidParameterError(f"pair names must be unique; repeated: {sorted(set(dup))[:5]}.")
    return df.reset_index(drop=True)


def _subunits(s: str) -> list[str]:
    return [g for g in s.split("+") if g]


def _gene_columns(var_names: pd.Index, genes: list[str]) -> dict[str, int]:
    """Column of each gene found in the data (the matching of :func:`tmeatlas.tl.score_signatures`:
    exact name, else current HGNC symbols via Ensembl IDs, legacy symbols, aliases and case)."""
    from ._signatures import _gene_columns as columns

    cols = columns(var_names, genes)
    return {g: int(c) for g, c in zip(genes, cols) if c >= 0}


# --------------------------------------------------------------------------------------------
# expression of the pair genes
# --------------------------------------------------------------------------------------------
def _pair_expression(X, cols: np.ndarray, chunk: int) -> tuple[sparse.csr_matrix, str]:
    """Expression of genes ``cols`` (cells x genes, CSR): ``log1p`` CP10k for counts, else as stored.

    Library sizes are row sums of the whole matrix, computed chunk by chunk; only the pair
    genes' columns are kept.
    """
    if sparse.issparse(X):
        check_expression_values(X)
    counts = looks_like_counts(X)
    parts = []
    for s in range(0, X.shape[0], chunk):
        block = row_block(X, s, min(X.shape[0], s + chunk))  # in memory, backed or Dask rows
        if sparse.issparse(block):
            if is_streamed(X):  # blocks of a Dask / backed matrix: checked as they are read
                check_expression_values(block)
            Xc = sparse.csr_matrix(block, dtype=np.float64)
        else:
            arr = np.asarray(block, dtype=np.float64)
            check_expression_values(arr)  # dense input: checked chunk by chunk
            Xc = sparse.csr_matrix(arr)
        Xm = sparse.csr_matrix(Xc[:, cols])
        if counts:
            lib = np.asarray(Xc.sum(axis=1)).ravel()
            scale = np.divide(1e4, lib, out=np.zeros_like(lib), where=lib > 0)
            Xm = sparse.csr_matrix(sparse.diags(scale) @ Xm)
            Xm.data = np.log1p(Xm.data)
        Xm.eliminate_zeros()
        parts.append(Xm)
    E = sparse.vstack(parts, format="csr")
    E.sort_indices()
    return E, ("log1p_cp10k" if counts else "as_is")


# --------------------------------------------------------------------------------------------
# the per-sample statistics
# --------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _slot_sums(codes_b, src, dst, K, spatial, indptr, indices, data, binary, send, recv, size):  # pragma: no cover
    """Add each item's expression into its slot, for every labelling ``b`` (numba; releases the GIL).

    Expression mode: item = cell, slot = its group, sums in ``send``. Spatial mode: item = edge
    ``src -> dst``, slot = ``K * group(src) + group(dst)``; the sender cell's row goes to
    ``send``, the receiver cell's to ``recv``. ``size`` counts the items of each slot.
    """
    for b in range(codes_b.shape[0]):
        lab = codes_b[b]
        if spatial:
            for e in range(src.shape[0]):
                i = src[e]
                j = dst[e]
                s = lab[i] * K + lab[j]
                size[b, s] += 1.0
                for p in range(indptr[i], indptr[i + 1]):
                    send[b, s, indices[p]] += 1.0 if binary else data[p]
                for p in range(indptr[j], indptr[j + 1]):
                    recv[b, s, indices[p]] += 1.0 if binary else data[p]
        else:
            for i in range(lab.shape[0]):
                s = lab[i]
                size[b, s] += 1.0
                for p in range(indptr[i], indptr[i + 1]):
                    send[b, s, indices[p]] += 1.0 if binary else data[p]


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
        B, S, g = codes_b.shape[0], self.n_slots, self.E.shape[1]
        send = np.zeros((B, S, g))
        recv = np.zeros((B, S, g)) if self.spatial else send
        size = np.zeros((B, S))
        E = self.E
        _slot_sums(np.ascontiguousarray(codes_b, dtype=np.int64), self.src, self.dst, self.K, self.spatial,
                   E.indptr.astype(np.int64), E.indices.astype(np.int64), E.data, binary, send, recv, size)
        return send, recv, size


def _complex(vals: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Minimum over the subunits of each pair: ``vals (..., genes)`` -> ``(..., pairs)``; ``idx`` padded with -1."""
    g = vals[..., np.where(idx >= 0, idx, 0)]
    return np.where(idx >= 0, g, np.inf).min(axis=-1)


def _means(smp: _Sample, codes_b: np.ndarray, lig: np.ndarray, rec: np.ndarray, binary: bool = False):
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


def _bh(p: np.ndarray) -> np.ndarray:
    from scipy.stats import false_discovery_control

    if len(p) == 0:
        return p.astype(np.float64)
    return false_discovery_control(np.asarray(p, dtype=np.float64), method="bh")


# --------------------------------------------------------------------------------------------
# tm.tl.checkpoint_interactions
# --------------------------------------------------------------------------------------------
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
    layer
        Layer to use instead of ``adata.X``.
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
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or a copy. ``uns[key_added]`` holds ``table`` (one row per sample, pair, sender and
    receiver tested: the columns of :data:`TABLE_COLUMNS`; ``n_edges`` is the number of
    sender-to-receiver contacts in spatial mode and ``-1`` otherwise; ``spatial`` says which
    mode), ``pairs`` (the pair table with ``measured`` and the ``missing`` genes), ``mode``
    (``"spatial"`` or ``"expression"``), ``expression`` (``"log1p_cp10k"`` or ``"as_is"``),
    ``samples`` (those analysed) and ``params``. Read it with :func:`tmeatlas.get.checkpoint_interactions`.
    """
    adata = start(adata, copy)
    if not isinstance(groupby, str):
        raise InvalidParameterError(f"groupby must be the name of a column of adata.obs, got {groupby!r}.")
    hint = "Run `tm.tl.annotate(adata)` first." if groupby in ("cell_type_major", "cell_type", "compartment") else ""
    check_obs_key(adata, groupby, what="groupby", hint=hint)
    check_obs_key(adata, sample_key, what="sample_key")
    if not isinstance(n_perms, int | np.integer) or isinstance(n_perms, bool) or n_perms < 1:
        raise InvalidParameterError(f"n_perms must be an integer >= 1, got {n_perms!r}.")
    if not isinstance(min_cells, int | np.integer) or isinstance(min_cells, bool) or min_cells < 1:
        raise InvalidParameterError(f"min_cells must be an integer >= 1, got {min_cells!r}.")
    if (not isinstance(min_fraction, int | float | np.integer | np.floating) or isinstance(min_fraction, bool)
            or not 0.0 <= float(min_fraction) <= 1.0):
        raise InvalidParameterError(f"min_fraction must be in [0, 1], got {min_fraction!r}.")
    if not isinstance(key_added, str) or not key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string, got {key_added!r}.")
    seed = resolve_seed(rng)
    threads = settings.resolve_n_jobs(n_jobs)
    table = checkpoint_pairs(pairs)

    # --- genes of the pairs ----------------------------------------------------------------
    lig_sub = [_subunits(s) for s in table["ligand"]]
    rec_sub = [_subunits(s) for s in table["receptor"]]
    all_genes = list(dict.fromkeys(g for subs in (*lig_sub, *rec_sub) for g in subs))
    found = _gene_columns(adata.var_names, all_genes)
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
            int((~table["measured"]).sum()), len(table), ", ".join(sorted({g for m in missing for g in m}))[:300],
        )
    used = table[table["measured"]].reset_index(drop=True)
    genes = list(dict.fromkeys(g for i in used.index for g in _subunits(used.at[i, "ligand"]) + _subunits(used.at[i, "receptor"])))
    gidx = {g: j for j, g in enumerate(genes)}
    width = max(max(len(_subunits(s)) for s in used["ligand"]), max(len(_subunits(s)) for s in used["receptor"]))

    def padded(col):
        out = np.full((len(used), width), -1, dtype=np.int64)
        for i, s in enumerate(used[col]):
            sub = _subunits(s)
            out[i, : len(sub)] = [gidx[g] for g in sub]
        return out

    lig, rec = padded("ligand"), padded("receptor")
    E, expression = _pair_expression(
        get_matrix(adata, layer), np.array([found[g] for g in genes], dtype=np.int64), settings.chunk_size
    )

    # --- groups, samples, graph ------------------------------------------------------------
    gcol = adata.obs[groupby]
    if isinstance(gcol.dtype, pd.CategoricalDtype):
        groups = [str(c) for c in gcol.cat.categories]
    else:
        groups = sorted({str(v) for v in gcol.dropna()})
    if not groups:
        raise InvalidInputError(f"obs[{groupby!r}] has no non-missing values.")
    codes_all = pd.Categorical(np.where(gcol.isna(), None, gcol.astype(str)), categories=groups).codes.astype(np.int64)
    K = len(groups)
    if sample_key is None:
        sample_of = np.full(adata.n_obs, "all", dtype=object)
        samples = ["all"]
    else:
        scol = adata.obs[sample_key]
        sample_of = np.where(scol.isna(), None, scol.astype(str)).astype(object)
        samples = (
            [str(c) for c in scol.cat.categories if (scol == c).any()]
            if isinstance(scol.dtype, pd.CategoricalDtype)
            else sorted({str(v) for v in scol.dropna()})
        )
    A = None
    if connectivity_key is not None and connectivity_key in adata.obsp:
        A = sparse.csr_matrix(adata.obsp[connectivity_key])
        if A.shape != (adata.n_obs, adata.n_obs):
            raise InvalidInputError(f"obsp[{connectivity_key!r}] has shape {A.shape}, expected {(adata.n_obs,) * 2}.")
    elif connectivity_key is not None and spatial_key in adata.obsm:
        logger.info(
            "checkpoint_interactions: obsm[%r] has coordinates but obsp[%r] does not exist; testing all cells "
            "of each group. For contact-based tests run `squidpy.gr.spatial_neighbors(adata, spatial_key=%r, "
            "library_key=<sample column>)` first.", spatial_key, connectivity_key, spatial_key,
        )
    mode = "spatial" if A is not None else "expression"

    # --- observed statistics per sample ----------------------------------------------------
    frac_min = float(min_fraction)
    sample_seeds = spawn_seeds(seed, len(samples))
    work, rows = [], []
    for si, s in enumerate(samples):
        idx = np.flatnonzero((sample_of == s) & (codes_all >= 0))
        if idx.size == 0:
            continue
        codes = codes_all[idx]
        n_k = np.bincount(codes, minlength=K)
        big = n_k >= min_cells
        if big.sum() == 0:
            continue
        Es = E[idx]
        if A is not None:
            As = sparse.coo_matrix(A[idx][:, idx])
            keep = (As.data != 0) & (As.row != As.col)
            smp = _Sample(codes, Es, K, As.row[keep].astype(np.int64), As.col[keep].astype(np.int64))
        else:
            smp = _Sample(codes, Es, K)
        Lm, Rm, size = _means(smp, codes[None, :], lig, rec)
        Lf, Rf, _ = _means(smp, codes[None, :], lig, rec, binary=True)
        Lm, Rm, size, Lf, Rf = Lm[0], Rm[0], size[0], Lf[0], Rf[0]
        snd, rcv = np.meshgrid(np.flatnonzero(big), np.flatnonzero(big), indexing="ij")
        snd, rcv = snd.ravel(), rcv.ravel()
        if A is not None:
            s_slot = r_slot = snd * K + rcv
        else:
            s_slot, r_slot = snd, rcv
        P = len(used)
        p_i = np.repeat(np.arange(P), len(snd))
        snd_i, rcv_i = np.tile(snd, P), np.tile(rcv, P)
        s_i, r_i = np.tile(s_slot, P), np.tile(r_slot, P)
        lf, rf = Lf[s_i, p_i], Rf[r_i, p_i]
        ok = (size[s_i] > 0) & (size[r_i] > 0) & (lf > 0) & (rf > 0) & (lf >= frac_min) & (rf >= frac_min)
        if not ok.any():
            continue
        combos = (p_i[ok], s_i[ok], r_i[ok])
        obs = _strength(Lm[None], Rm[None], size[None], combos)[0]
        n_streams = -(-n_perms // PERMS_PER_STREAM)
        stream_seeds = spawn_seeds(int(sample_seeds[si]), n_streams)
        for t in range(n_streams):
            nb = min(PERMS_PER_STREAM, n_perms - t * PERMS_PER_STREAM)
            work.append((len(rows), smp, combos, obs, int(stream_seeds[t]), nb))
        rows.append(
            pd.DataFrame(
                {
                    "sample": s,
                    "pair": used["pair"].to_numpy()[p_i[ok]],
                    "sender": np.asarray(groups, dtype=object)[snd_i[ok]],
                    "receiver": np.asarray(groups, dtype=object)[rcv_i[ok]],
                    "ligand": used["ligand"].to_numpy()[p_i[ok]],
                    "receptor": used["receptor"].to_numpy()[p_i[ok]],
                    "n_sender": n_k[snd_i[ok]].astype(np.int64),
                    "n_receiver": n_k[rcv_i[ok]].astype(np.int64),
                    "n_edges": size[s_i[ok]].astype(np.int64) if A is not None else np.full(int(ok.sum()), -1, np.int64),
                    "ligand_fraction": lf[ok],
                    "receptor_fraction": rf[ok],
                    "ligand_mean": Lm[s_i[ok], p_i[ok]],
                    "receptor_mean": Rm[r_i[ok], p_i[ok]],
                    "strength": obs,
                    "_order": p_i[ok] * K * K + snd_i[ok] * K + rcv_i[ok],
                }
            )
        )

    # --- permutations ----------------------------------------------------------------------
    counts = [np.zeros(len(r), dtype=np.int64) for r in rows]

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

    for r, c in zip(rows, counts):
        r["pval"] = (1.0 + c) / (1.0 + n_perms)
        r["padj"] = _bh(r["pval"].to_numpy())
        r["spatial"] = A is not None
    if rows:
        out = pd.concat(rows, ignore_index=True)
        out = out.sort_values(["sample", "_order"], kind="stable", key=lambda c: c.map(samples.index) if c.name == "sample" else c)
        out = out.drop(columns="_order").reset_index(drop=True)[TABLE_COLUMNS]
    else:
        logger.warning(
            "checkpoint_interactions: no sender/receiver combination passed the filters (min_cells=%d, "
            "min_fraction=%g%s); the table is empty.", min_cells, frac_min, ", neighbouring groups" if A is not None else "",
        )
        out = _empty_table()
    out.index = out.index.astype(str)
    logger.info("checkpoint_interactions: %s mode, %d rows tested over %d samples", mode, len(out), len(samples))
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


def _empty_table() -> pd.DataFrame:
    dtypes = {
        "sample": object, "pair": object, "sender": object, "receiver": object, "ligand": object, "receptor": object,
        "n_sender": np.int64, "n_receiver": np.int64, "n_edges": np.int64, "ligand_fraction": np.float64,
        "receptor_fraction": np.float64, "ligand_mean": np.float64, "receptor_mean": np.float64,
        "strength": np.float64, "pval": np.float64, "padj": np.float64, "spatial": bool,
    }  # fmt: skip
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in TABLE_COLUMNS})


def _table(adata: AnnData, key: str) -> pd.DataFrame:
    """The stored table of :func:`checkpoint_interactions` under ``uns[key]`` (a copy)."""
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
