"""Gene-signature scores per cell: ``tm.tl.score_signatures``.

Three scores, all computed for every signature in one pass over the cells:

* ``"control"``: the Tirosh et al. (2016) score that Seurat's ``AddModuleScore`` and scanpy's
  ``sc.tl.score_genes`` compute, with scanpy's expression bins and control-gene draws, as one
  sparse product ``X @ W`` (genes x signatures weight matrix).
* ``"rank"``: UCell (Andreatta & Carmona 2021), a Mann-Whitney U statistic of the signature's
  genes in each cell's expression ranking, from a per-cell partial sort of the non-zero values.
* ``"mean"``: the (weighted) mean expression of the signature's genes.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numba
import numpy as np
import pandas as pd
from scipy import sparse

from .._core.chunks import row_block
from .._core.expression import COUNTS, LINEAR, LINEAR_MAX, LOG, TARGET_SUM, looks_like_counts
from .._core.signatures import gene_sums, project, rank_sums, scan_values, ucell
from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, NotApplicableError
from .._keys import OBSM, SIGNATURE_PREFIX, UNS
from .._rng import RngLike, resolve_seed
from .._settings import logger, settings
from .._store import store
from .._validation import check_int, check_one_of, get_matrix, start

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["METHODS", "score_signatures"]

#: the scoring methods of :func:`score_signatures`
METHODS = ("control", "rank", "mean")
#: ``category`` of signatures given as a dict, GMT file or table without one
USER_CATEGORY = "user"
_TARGET_SUM = TARGET_SUM  # counts per cell before log1p (tl._drug_screen reads it here)
# what uns[key]["input"] records for each input scale of tmeatlas._core.expression
_INPUT = {
    COUNTS: "counts: log1p(counts per 10,000) computed on the fly",
    LOG: "log-normalised: used as given",
    LINEAR: "linear (non-integer, max > 50, e.g. TPM): log1p applied on the fly",
}
#: what is recorded for input with negative values (scaled or batch-corrected): used as given
SCALED_INPUT = "scaled or centred (negative values): used as given; scores compare centred genes"
#: what is recorded for the rank method
_RANK_INPUT = "ranks within each cell (no normalisation needed)"
_SUM_BLOCK = 1024  # rows per private accumulator of the gene sums (fixed: results do not depend on threads)


# --------------------------------------------------------------------------------------------
# signatures: resolve any accepted input into one tidy table
# --------------------------------------------------------------------------------------------
def _read_gmt(path: Path) -> pd.DataFrame:
    """A GMT file (``name <tab> description <tab> gene <tab> gene ...``) as a tidy table."""
    import gzip

    if not path.is_file():
        raise InvalidParameterError(f"GMT file {str(path)!r} not found.")
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) < 3:
                raise InvalidParameterError(
                    f"{path.name}, line {lineno}: a GMT line needs a name, a description and at least one "
                    "gene, separated by tabs."
                )
            genes = [g.strip() for g in parts[2:] if g.strip()]
            rows += [(parts[0].strip(), g) for g in genes]
    if not rows:
        raise InvalidParameterError(f"GMT file {str(path)!r} holds no gene set.")
    df = pd.DataFrame(rows, columns=["name", "gene"])
    df["direction"] = "up"
    df["weight"] = 1.0
    df["category"] = USER_CATEGORY
    return df


def _from_dict(sigs: dict) -> pd.DataFrame:
    """A dict ``{name: [genes]}`` or ``{name: {"up", "down", "weights"}}`` as a tidy table."""
    rows = []
    for name, spec in sigs.items():
        if isinstance(spec, dict):
            extra = set(spec) - {"up", "down", "weights"}
            if extra:
                raise InvalidParameterError(
                    f"signature {name!r}: a dict signature takes the keys 'up', 'down' and 'weights', got {sorted(extra)}."
                )
            up, down, weights = spec.get("up", []), spec.get("down", []), dict(spec.get("weights", {}) or {})
        else:
            up, down, weights = spec, [], {}
        for part, what in ((up, "up"), (down, "down")):
            if isinstance(part, str) or not hasattr(part, "__iter__"):
                raise InvalidParameterError(
                    f"signature {name!r}: {what} genes must be a list of gene names, not {type(part).__name__}."
                )
        up, down = list(up), list(down)
        unknown = set(weights) - set(up) - set(down)
        if unknown:
            raise InvalidParameterError(
                f"signature {name!r}: weights given for genes not in its up/down lists: {sorted(unknown)[:10]}."
            )
        rows += [(name, g, "up", weights.get(g, 1.0)) for g in up]
        rows += [(name, g, "down", weights.get(g, 1.0)) for g in down]
    df = pd.DataFrame(rows, columns=["name", "gene", "direction", "weight"])
    df["category"] = USER_CATEGORY
    return df


def _from_library(items: list[str]) -> pd.DataFrame:
    """The rows of the shipped library for the given signature names and categories."""
    from ..datasets._signatures import _library, _unknown

    lib = _library()
    cats = set(lib["category"])
    names = set(lib["name"])
    bad = [i for i in items if i not in cats and i not in names]
    if bad:
        raise _unknown("signature name or category", bad, sorted(cats) + list(dict.fromkeys(lib["name"])))
    keep_names = [i for i in items if i in names]
    keep_cats = [i for i in items if i in cats and i not in names]
    return lib[lib["name"].isin(keep_names) | lib["category"].isin(keep_cats)]


def _looks_like_path(value) -> bool:
    """A path object, or a string ending in ``.gmt`` (``.gmt.gz``, ``.gmt.txt``) or holding a path
    separator; any other string names a signature or category of the library.
    """
    if isinstance(value, os.PathLike):
        return True
    return value.lower().endswith((".gmt", ".gmt.gz", ".gmt.txt")) or "/" in value or os.sep in value


def _resolve(signatures) -> pd.DataFrame:
    """Any accepted ``signatures=`` as one tidy table: name, category, gene, direction, weight.

    Accepted: ``None`` (the whole shipped library), a category or signature name of the library,
    a list of them, a path to a GMT file, a dict ``{name: [genes]}`` or ``{name: {"up": [...],
    "down": [...], "weights": {gene: w}}}``, or a table with columns ``name`` and ``gene``
    (``direction``, ``weight`` and ``category`` optional) such as :func:`tmeatlas.datasets.signatures`.
    Signatures keep their first-appearance order; a gene listed twice in the same direction is kept
    once; a gene listed both up and down in one signature is an error.
    """
    if signatures is None:
        from ..datasets._signatures import _library

        df = _library()
    elif isinstance(signatures, os.PathLike) or (
        isinstance(signatures, str) and _looks_like_path(signatures)
    ):
        df = _read_gmt(Path(signatures))
    elif isinstance(signatures, str):
        df = _from_library([signatures])
    elif isinstance(signatures, dict):
        df = _from_dict(signatures)
    elif isinstance(signatures, pd.DataFrame):
        if not {"name", "gene"} <= set(signatures.columns):
            raise InvalidParameterError(
                "a signature table needs the columns 'name' and 'gene' ('direction', 'weight', 'category' "
                f"optional); got {list(signatures.columns)}."
            )
        df = signatures.copy()
        if "direction" not in df:
            df["direction"] = "up"
        if "weight" not in df:
            df["weight"] = 1.0
        if "category" not in df:
            df["category"] = USER_CATEGORY
    elif isinstance(signatures, list | tuple | pd.Index | np.ndarray) and all(
        isinstance(s, str) for s in signatures
    ):
        df = _from_library(list(signatures))
    else:
        raise InvalidParameterError(
            "signatures must be None (the shipped library), a category or signature name, a list of names, "
            "a GMT file path, a dict {name: [genes]} or a table with columns name and gene; got "
            f"{type(signatures).__name__}."
        )
    df = df[["name", "category", "gene", "direction", "weight"]].copy()
    if df.empty:
        raise InvalidParameterError("no signature to score: the signature list is empty.")
    for col in ("name", "gene", "category", "direction"):
        if not df[col].map(lambda v: isinstance(v, str) and v != "").all():
            raise InvalidParameterError(f"every signature {col} must be a non-empty string.")
    df["direction"] = df["direction"].str.lower().replace({"+": "up", "-": "down", "dn": "down"})
    if not df["direction"].isin(["up", "down"]).all():
        bad = sorted(set(df["direction"]) - {"up", "down"})
        raise InvalidParameterError(f"signature direction must be 'up' or 'down', got {bad}.")
    slash = [n for n in pd.unique(df["name"]) if "/" in n]
    if slash:
        raise InvalidParameterError(
            f"signature names cannot contain '/' (not storable in h5ad): {slash[:5]}."
        )
    w = pd.to_numeric(df["weight"], errors="coerce")
    if not np.isfinite(w.to_numpy(dtype=float)).all():
        raise InvalidParameterError("signature weights must be finite numbers.")
    df["weight"] = w.astype(float)
    df = df.drop_duplicates(["name", "gene", "direction"])
    both = df.groupby(["name", "gene"]).size()
    both = both[both > 1]
    if len(both):
        n, g = both.index[0]
        raise InvalidParameterError(
            f"gene {g!r} is listed both up and down in signature {n!r} ({len(both)} such genes); keep one direction."
        )
    # one category per signature (its first)
    df["category"] = df["name"].map(df.groupby("name", sort=False)["category"].first())
    order = {n: i for i, n in enumerate(pd.unique(df["name"]))}
    df = df.sort_values("name", key=lambda s: s.map(order), kind="stable")
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# genes: signature genes -> columns of the data
# --------------------------------------------------------------------------------------------
def _human_symbols(ids: pd.Index) -> np.ndarray | None:
    """Current HGNC symbol of each identifier (its own name where unknown); ``None`` if not human.

    The mapping of the same identifiers is reused (a run scores signatures several times on the same
    genes); the returned array is a copy.
    """
    out = _human_symbols_of(tuple(pd.Index(ids).astype(str)))
    return None if out is None else out.copy()


@lru_cache(maxsize=16)
def _human_symbols_of(names: tuple[str, ...]) -> np.ndarray | None:
    """:func:`_human_symbols` of a tuple of names (cached)."""
    from .._resources import gene_names, gene_table
    from ..pp._gene_positions import _detect_id_type, _match

    ids = pd.Index(names, dtype=object)
    kind = _detect_id_type(ids)
    if kind in ("symbol_mouse_like", "ensembl_nonhuman"):
        return None
    sym, _ = _match(ids, kind, gene_table(), gene_names(), case_insensitive=True)
    out = sym.fillna("").to_numpy().astype(object)
    miss = out == ""
    out[miss] = ids[miss]
    return out


def _gene_columns(var_names: pd.Index, genes) -> np.ndarray:
    """Column of ``adata`` for each gene name (-1: absent). Exact name first; otherwise both sides
    are mapped to current HGNC symbols (Ensembl IDs, legacy symbols, aliases, case) and matched.
    """
    var = pd.Index(pd.Index(var_names).astype(str))
    genes = pd.Index(pd.Index(genes).astype(str))
    first = pd.Series(np.arange(len(var)), index=var)
    first = first[~first.index.duplicated()]
    cols = first.reindex(genes).fillna(-1).to_numpy().astype(np.int64)
    todo = np.flatnonzero(cols < 0)
    if len(todo) == 0:
        return cols
    var_sym = _human_symbols(var)
    if var_sym is None:  # non-human identifiers: exact names only
        return cols
    by_sym = pd.Series(np.arange(len(var)), index=var_sym)
    by_sym = by_sym[~by_sym.index.duplicated()]
    gene_sym = _human_symbols(genes[todo])
    if gene_sym is None:
        gene_sym = genes[todo].to_numpy()
    cols[todo] = by_sym.reindex(gene_sym).fillna(-1).to_numpy().astype(np.int64)
    return cols


# --------------------------------------------------------------------------------------------
# reading the matrix (numeric kernels: tmeatlas._core.signatures)
# --------------------------------------------------------------------------------------------
def _chunks(X, chunk: int):
    """``(indptr, indices, data, r0, r1, offset)`` over row chunks of any matrix, as CSR arrays;
    a canonical CSR matrix is passed without copies.
    """
    n = X.shape[0]
    whole = sparse.issparse(X) and X.format == "csr" and X.has_canonical_format
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        if whole:
            data = X.data
            if data.dtype not in (np.float32, np.float64):
                Xc = X[s:e].astype(np.float64)
                yield Xc.indptr, Xc.indices, Xc.data, 0, e - s, s
            else:
                yield X.indptr, X.indices, data, s, e, s
            continue
        Xc = sparse.csr_matrix(row_block(X, s, e))  # dense, backed or Dask rows, one chunk in memory
        Xc.sum_duplicates()
        if Xc.dtype not in (np.float32, np.float64):
            Xc = Xc.astype(np.float64)
        yield Xc.indptr, Xc.indices, Xc.data, 0, e - s, s


def _input_mode(X, method: str, chunk: int) -> tuple[int, bool]:
    """Check the matrix (finite; non-negative for ranks) and detect counts / linear / log scale; also
    whether it holds negative values (scaled).
    """
    finite, lo, hi = True, np.inf, -np.inf
    if sparse.issparse(X):
        finite, lo, hi = scan_values(np.asarray(X.data))
        if X.nnz < np.prod(X.shape):
            lo, hi = min(lo, 0.0), max(hi, 0.0)
    else:
        for s in range(0, X.shape[0], chunk):
            block = row_block(X, s, s + chunk)
            if sparse.issparse(block):
                f, a, b = scan_values(np.asarray(block.data, dtype=np.float64))
                if block.nnz < np.prod(block.shape):
                    a, b = min(a, 0.0), max(b, 0.0)
            else:
                f, a, b = scan_values(np.ascontiguousarray(block, dtype=np.float64))
            finite, lo, hi = finite and f, min(lo, a), max(hi, b)
            if not finite:
                break
    if not finite:
        raise InvalidInputError(
            "the expression matrix contains NaN or infinite values; remove or impute them first."
        )
    if lo < 0:
        if method == "rank":
            raise InvalidInputError(
                "the expression matrix has negative values (scaled data?); the rank method needs non-negative "
                "expression: pass counts or log-normalised data (e.g. `layer='counts'`)."
            )
        warnings.warn(
            "the expression matrix has negative values (scaled or batch-corrected data): it is used as given, so "
            "scores compare centred genes, not expression levels; pass the counts or log-normalised layer "
            "(`layer=`) for scores comparable across datasets.",
            UserWarning,
            stacklevel=3,
        )
        return LOG, True
    if looks_like_counts(X):
        return COUNTS, False
    return (LINEAR if hi > LINEAR_MAX else LOG), False


@contextmanager
def _with_threads(n_threads: int):
    """Set numba's thread count for the block, then restore it."""
    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(old)


def _gene_means(X, mode: int, chunk: int) -> np.ndarray:
    """Mean (log-)normalised expression of every gene over all cells, in one chunked pass."""
    total = np.zeros(X.shape[1])
    for indptr, indices, data, r0, r1, _ in _chunks(X, chunk):
        total += gene_sums(indptr, indices, data, r0, r1, X.shape[1], mode, _TARGET_SUM, _SUM_BLOCK)
    return total / X.shape[0]


def _legacy_state(seed: int) -> np.random.RandomState:
    """The generator of scanpy's draws (``np.random.seed(random_state)``); 64-bit seeds via SeedSequence."""
    if seed < 2**32:
        return np.random.RandomState(seed)
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence(seed)))


def _control_genes(part: np.ndarray, cut: np.ndarray, members: dict, ctrl_size: int, seed: int) -> np.ndarray:
    """Control columns of one gene set, drawn exactly as ``sc.tl.score_genes(random_state=seed)``:
    for each expression bin of the set's genes (ascending), ``ctrl_size`` genes of the bin's pool
    genes (all of them if the bin is smaller), the set's own genes then removed.
    """
    rs = _legacy_state(seed)
    out = []
    for b in np.unique(cut[part]):
        r = members.get(b, np.empty(0, np.int64))
        if ctrl_size < len(r):
            r = r[rs.choice(len(r), ctrl_size, replace=False)]
        out.append(np.setdiff1d(r, part))
    return np.unique(np.concatenate(out)) if out else np.empty(0, np.int64)


def _score_matrix(X, W: sparse.csr_matrix, mode: int, chunk: int) -> np.ndarray:
    """Cells x signatures ``E @ W`` of the (log-)normalised expression, chunked over cells."""
    out = np.empty((X.shape[0], W.shape[1]))
    W = sparse.csr_matrix(W)
    W.sum_duplicates()
    for indptr, indices, data, r0, r1, off in _chunks(X, chunk):
        out[off : off + r1 - r0] = project(
            indptr,
            indices,
            data,
            r0,
            r1,
            mode,
            _TARGET_SUM,
            W.indptr,
            W.indices,
            W.data.astype(np.float64),
            W.shape[1],
        )
    return out


# --------------------------------------------------------------------------------------------
# public tool
# --------------------------------------------------------------------------------------------
@doc_params("copy", "layer", "chunk_size")
def score_signatures(
    adata: AnnData,
    *,
    signatures=None,
    method: str = "control",
    layer: str | None = None,
    min_genes: int = 3,
    ctrl_size: int = 50,
    n_bins: int = 25,
    max_rank: int = 1500,
    gene_pool=None,
    key_added: str = UNS.signatures,
    prefix: str = SIGNATURE_PREFIX,
    rng: RngLike = 0,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    copy: bool = False,
) -> AnnData | None:
    r"""Score gene signatures in every cell: one column per signature, all signatures in one pass.

    **Genes.** Signature genes are matched to ``var_names`` by exact name, otherwise through
    current HGNC symbols on both sides (Ensembl IDs, legacy symbols and aliases of the shipped
    GRCh38 gene table, case). Missing genes are listed in ``uns[key_added]["genes"]``; a
    signature with fewer than ``min_genes`` genes present (all of its genes, for a signature
    shorter than that, e.g. the two-gene cytolytic score) is not scored (one warning lists them
    all; ``summary`` records it), never scored on a handful of genes silently.

    **Expression.** Log-normalised input is used as given; raw counts are turned into
    :math:`\log(1 + 10^4 x / \text{library size})` on the fly and non-integer data with values
    above 50 (TPM-like) into :math:`\log(1 + x)`; ``uns[key_added]["input"]`` says which.
    The rank method needs no normalisation (ranks within a cell do not change).

    **method="control"** (default): the score of Tirosh et al. (Science 352:189, 2016) as
    implemented by Seurat's ``AddModuleScore`` (Satija et al., Nat Biotechnol 33:495, 2015) and
    scanpy's ``sc.tl.score_genes``:
    :math:`s_c = \frac{1}{|G|}\sum_{g \in G} x_{gc} - \frac{1}{|C|}\sum_{g \in C} x_{gc}`.
    Genes of the pool are ranked by their mean expression over all cells and cut into bins of
    ``round(n_pool / (n_bins - 1))`` genes (scanpy's ``rank(method="min") // n_items``); for each
    bin that holds a signature gene, ``ctrl_size`` control genes ``C`` are drawn from it (the
    signature's own genes then removed). Draws follow scanpy's exactly (a legacy
    ``RandomState(rng)`` reseeded for every signature), so the scores equal a loop of
    ``sc.tl.score_genes(adata, genes, ctrl_size=..., n_bins=..., random_state=rng)`` calls on
    the same log-normalised matrix. All signatures are computed at once as ``E @ W`` with a
    sparse genes x signatures matrix ``W`` (:math:`w_g / \sum|w|` for signature genes,
    :math:`-1/|C|` for controls), chunked over cells. Down genes (``direction="down"``) form a
    second set with its own controls: :math:`s = s_{up} - s_{down}`. Gene weights give a weighted
    mean :math:`\sum_g w_g x_{gc} / \sum_g |w_g|`.

    **method="rank"**: UCell (Andreatta & Carmona, Comput Struct Biotechnol J 19:3796, 2021),
    following the current UCell code (>= 2.7.6). In each cell genes are ranked by decreasing
    expression, ties taking their average rank (``data.table::frankv(ties.method="average")``;
    all zeros tie at the bottom), and ranks are capped at ``max_rank`` (at most the number of
    genes). For the ``n`` present genes of a signature with capped ranks ``r_g``,

    .. math:: U = 1 - \frac{\sum_g r_g - n(n+1)/2}{n \cdot \text{max\_rank} - n(n+1)/2} \in [0, 1].

    (The 2021 paper set ranks above the cap to ``max_rank + 1`` and divided by
    ``n max_rank``; UCell 2.7.6 changed to the formula above, which spans [0, 1].) Only the
    ``max_rank`` largest values of each cell are sorted (per-cell partition of the sparse row).
    Signatures with down genes score ``max(U_up - U_down, 0)`` (UCell's ``w_neg = 1``; a
    signature with only down genes therefore scores 0). Missing genes are skipped (UCell's
    ``missing_genes="skip"``). Gene weights are ignored (UCell is unweighted).

    **method="mean"**: the weighted mean expression of the up genes minus that of the down genes.

    Parameters
    ----------
    adata
        Annotated data matrix (log-normalised expression or raw counts). The matrix may be
        sparse, dense, backed, or a Dask array (e.g. ``anndata.experimental.read_elem_lazy``):
        it is read one chunk of cells at a time, on the active ``dask.distributed`` client
        when there is one, and the scores equal the in-memory ones.
    signatures
        ``None``: every signature of the shipped library (:func:`tmeatlas.datasets.signatures`);
        a category (``"hallmark"``, ``"exhaustion"``, ...) or signature name of the library, or a
        list of them; a dict ``{name: [genes]}`` or ``{name: {"up": [...], "down": [...],
        "weights": {gene: w}}}``; a path to a GMT file; or a table with columns ``name`` and
        ``gene`` (``direction``, ``weight``, ``category`` optional) like the library's. A string
        is read as a GMT path when it ends in ``.gmt`` or contains a ``/`` (or pass a
        :class:`pathlib.Path`).
    method
        ``"control"`` (Tirosh / Seurat / scanpy), ``"rank"`` (UCell) or ``"mean"``.
    {layer}
    min_genes
        Fewest genes of a signature (up and down together) present in the data for it to be
        scored; a signature with fewer genes than this needs all of them.
    ctrl_size
        Control genes drawn per expression bin (control method).
    n_bins
        Number of expression bins (control method).
    max_rank
        Rank cap of the rank method (UCell's ``maxRank``); a signature may not have more present
        genes than this.
    gene_pool
        Genes control genes are drawn from (and binned among); default all genes.
    key_added
        Key of ``adata.uns`` for the summary; the scores matrix goes to ``obsm["X_<key_added>"]``
        (``obsm["X_signatures"]`` by default).
    prefix
        Prefix of the per-signature columns of ``adata.obs`` (``"sig_<name>"`` by default).
    rng
        Seed of the control-gene draws (recorded in ``params``); the other methods are deterministic.
    {chunk_size}
    n_jobs
        Threads (default ``tm.settings.n_jobs``; ``-1`` all cores). Results do not depend on it.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obs[prefix + name]`` (float32) for every scored signature,
    ``obsm["X_<key_added>"]`` (a cells x signatures table) and ``uns[key_added]`` with
    ``params``, ``method``, ``input`` (how expression was read), ``summary`` (signature,
    category, n_genes, n_present, fraction_present, scored, n_control) and ``genes`` (signature,
    gene, direction, weight, present, var_name: the column each gene matched).
    """
    adata = start(adata, copy)
    _check_params(method, min_genes, ctrl_size, n_bins, max_rank, key_added, prefix, chunk_size)
    seed = resolve_seed(rng)
    n_threads = settings.resolve_n_jobs(n_jobs)
    chunk = int(chunk_size or settings.chunk_size)
    table = _resolve(signatures)
    X = get_matrix(adata, layer)
    mode, scaled = _input_mode(X, method, chunk)
    rank_cap = int(min(max_rank, adata.n_vars))
    names, parts, summary, genes_report = _match_genes(table, adata.var_names, min_genes)
    scored = summary.loc[summary["scored"], "signature"].tolist()
    if method == "rank":
        _check_rank_cap(scored, parts, rank_cap)
    with _with_threads(n_threads):
        S, scored, no_ctrl = _compute_scores(
            X,
            adata.var_names,
            scored,
            parts,
            summary,
            method=method,
            mode=mode,
            rank_cap=rank_cap,
            chunk=chunk,
            gene_pool=gene_pool,
            n_bins=n_bins,
            ctrl_size=ctrl_size,
            seed=seed,
        )
    _check_scored(summary, names, scored, no_ctrl, min_genes=min_genes, key_added=key_added)
    params = {
        "signatures": _describe(signatures),
        "method": method,
        "layer": layer,
        "min_genes": int(min_genes),
        "ctrl_size": int(ctrl_size),
        "n_bins": int(n_bins),
        "max_rank": rank_cap,
        "gene_pool": "all genes" if gene_pool is None else f"{len(pd.unique(pd.Index(gene_pool)))} genes",
        "key_added": key_added,
        "prefix": prefix,
        "rng": seed,
        "chunk_size": chunk,
        "n_jobs": n_threads,
    }
    logger.info("score_signatures: %d of %d signatures scored (%s)", len(scored), len(names), method)
    source = (SCALED_INPUT if scaled else _INPUT[mode]) if method != "rank" else _RANK_INPUT
    _store_scores(
        adata,
        S,
        scored,
        summary,
        genes_report,
        source=source,
        key_added=key_added,
        prefix=prefix,
        params=params,
    )
    return adata if copy else None


def _check_params(method, min_genes, ctrl_size, n_bins, max_rank, key_added, prefix, chunk_size) -> None:
    """Nothing; raises on a parameter of :func:`score_signatures` out of its range."""
    check_one_of("method", method, METHODS)
    for name, val, lo in (("min_genes", min_genes, 1), ("ctrl_size", ctrl_size, 1), ("n_bins", n_bins, 2),
                          ("max_rank", max_rank, 1)):  # fmt: skip
        check_int(name, val, lo)
    if not isinstance(key_added, str) or not key_added or "/" in key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string without '/', got {key_added!r}.")
    if not isinstance(prefix, str) or "/" in prefix:
        raise InvalidParameterError(f"prefix must be a string without '/', got {prefix!r}.")
    if chunk_size is not None and (not isinstance(chunk_size, int | np.integer) or chunk_size < 1):
        raise InvalidParameterError(f"chunk_size must be a positive integer, got {chunk_size!r}.")


def _match_genes(table: pd.DataFrame, var_names: pd.Index, min_genes: int):
    """``(names, parts, summary, genes_report)``: the signature names in order, the present columns
    and weights of each signature's up and down genes (``parts[name][direction]``), the per-signature
    summary table (``scored``: enough genes present) and the per-gene report.
    """
    uniq = pd.unique(table["gene"])
    col_of = dict(zip(uniq, _gene_columns(var_names, uniq), strict=True))
    table["col"] = table["gene"].map(col_of).astype(np.int64)
    var = np.asarray(var_names.astype(str))
    genes_report = pd.DataFrame({
        "signature": table["name"].to_numpy(),
        "gene": table["gene"].to_numpy(),
        "direction": table["direction"].to_numpy(),
        "weight": table["weight"].to_numpy(),
        "present": (table["col"] >= 0).to_numpy(),
        "var_name": np.where(table["col"] >= 0, var[table["col"].clip(lower=0)], ""),
    })  # fmt: skip
    names = list(pd.unique(table["name"]))
    parts: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    rows = []
    for nm, sub in table.groupby("name", sort=False):
        hit = sub[sub["col"] >= 0].drop_duplicates(["col", "direction"])
        hit = hit[~hit.duplicated("col", keep=False) | (hit["direction"] == "up")]  # one direction per column
        parts[nm] = {d: (hit.loc[hit["direction"] == d, "col"].to_numpy(np.int64),
                         hit.loc[hit["direction"] == d, "weight"].to_numpy(float)) for d in ("up", "down")}  # fmt: skip
        n_listed, n_present = len(sub), len(hit)
        rows.append({"signature": nm, "category": sub["category"].iloc[0], "n_genes": n_listed,
                     "n_present": n_present, "fraction_present": n_present / n_listed,
                     "scored": n_present >= min(min_genes, n_listed), "n_control": 0})  # fmt: skip
    summary = pd.DataFrame(rows).set_index("signature").reindex(names).reset_index()
    return names, parts, summary, genes_report


def _check_rank_cap(scored: list[str], parts: dict, rank_cap: int) -> None:
    """Nothing; raises when a signature to score has more genes present than the rank cap."""
    big = [nm for nm in scored if max(len(parts[nm]["up"][0]), len(parts[nm]["down"][0])) > rank_cap]
    if big:
        raise InvalidParameterError(
            f"signatures {big[:5]} have more genes present than max_rank={rank_cap}; increase max_rank "
            "(at most the number of genes) or score shorter signatures."
        )


def _compute_scores(
    X,
    var_names: pd.Index,
    scored: list[str],
    parts: dict,
    summary: pd.DataFrame,
    *,
    method: str,
    mode: int,
    rank_cap: int,
    chunk: int,
    gene_pool,
    n_bins: int,
    ctrl_size: int,
    seed: int,
):
    """``(S, scored, no_ctrl)``: the cells x signatures scores (``None`` when none is scored), the
    signatures scored and those left without control genes; records ``n_control`` in ``summary``.
    """
    n_genes = len(var_names)
    if scored and method == "rank":
        return _rank_scores(X, scored, parts, n_genes, rank_cap, chunk), scored, []
    if not scored:
        return None, scored, []
    ctrl = None
    if method == "control":
        means = _gene_means(X, mode, chunk)
        ctrl = (*_bins(means, _pool_columns(var_names, gene_pool), n_bins), int(ctrl_size), seed)
    W, n_ctrl = _weight_matrix(scored, parts, n_genes, ctrl)
    no_ctrl = [nm for nm in scored if n_ctrl[nm] < 0]
    scored = [nm for nm in scored if n_ctrl[nm] >= 0]
    summary["n_control"] = summary["signature"].map(n_ctrl).fillna(0).clip(lower=0).astype(int)
    return (_score_matrix(X, W, mode, chunk) if scored else None), scored, no_ctrl


def _check_scored(
    summary: pd.DataFrame,
    names: list[str],
    scored: list[str],
    no_ctrl: list[str],
    *,
    min_genes: int,
    key_added: str,
) -> None:
    """Nothing; marks the signatures without controls unscored, warns once about every signature not
    scored and raises when none is.
    """
    if no_ctrl:
        summary.loc[summary["signature"].isin(no_ctrl), "scored"] = False
    skipped = summary.loc[~summary["scored"], "signature"].tolist()
    if skipped:
        listing = ", ".join(skipped[:30]) + (f" and {len(skipped) - 30} more" if len(skipped) > 30 else "")
        msg = (
            f"{len(skipped)} of {len(names)} signatures not scored (fewer than min_genes={min_genes} of their "
            f"genes in adata.var_names{', or no control genes' if no_ctrl else ''}): {listing}. "
            f"See adata.uns[{key_added!r}]['summary'] and ['genes']."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)  # the caller of score_signatures
    if not scored:
        raise NotApplicableError(
            f"no signature has at least min_genes={min_genes} genes in adata.var_names (best: "
            f"{int(summary['n_present'].max())} genes). Check that var_names are gene symbols or Ensembl IDs of "
            "the signatures' species, or lower min_genes."
        )


def _store_scores(
    adata: AnnData,
    S: np.ndarray,
    scored: list[str],
    summary: pd.DataFrame,
    genes_report: pd.DataFrame,
    *,
    source: str,
    key_added: str,
    prefix: str,
    params: dict,
) -> None:
    """Nothing; stores the scores (``obs`` columns, ``obsm`` table) and the summary through ``store``."""
    S = S.astype(np.float32)
    obs = {f"{prefix}{nm}": S[:, j] for j, nm in enumerate(scored)}
    obsm_key = OBSM.signatures if key_added == UNS.signatures else f"X_{key_added}"
    frame = pd.DataFrame(S, index=adata.obs_names.copy(), columns=list(scored))
    store(
        adata,
        tool="tl.score_signatures",
        obs=obs,
        obsm={obsm_key: frame},
        uns_key=key_added,
        uns={
            "method": params["method"],
            "input": source,
            "summary": summary,
            "genes": genes_report,
            "obs_columns": list(obs),
            "obsm_key": obsm_key,
        },
        params=params,
    )


def _describe(signatures) -> str:
    """A short description of ``signatures=`` for ``params``."""
    if signatures is None:
        return "shipped library (all)"
    if isinstance(signatures, str | os.PathLike):
        return str(signatures)
    if isinstance(signatures, dict):
        return f"dict of {len(signatures)} signatures"
    if isinstance(signatures, pd.DataFrame):
        return f"table of {signatures['name'].nunique() if 'name' in signatures else 0} signatures"
    return ", ".join(map(str, signatures))[:2000]


def _pool_columns(var_names: pd.Index, gene_pool) -> np.ndarray:
    """Columns of the control-gene pool (all genes for ``None``)."""
    if gene_pool is None:
        return np.arange(len(var_names))
    if isinstance(gene_pool, str):
        raise InvalidParameterError("gene_pool must be a list of genes, not a string.")
    genes = pd.unique(pd.Index(list(gene_pool)).astype(str))
    cols = _gene_columns(var_names, genes)
    cols = pd.unique(cols[cols >= 0])
    if len(cols) == 0:
        raise InvalidParameterError("none of the gene_pool genes is in adata.var_names.")
    return np.asarray(cols, dtype=np.int64)


def _bins(means: np.ndarray, pool: np.ndarray, n_bins: int) -> tuple[np.ndarray, dict]:
    """Expression bin of every gene (scanpy: ``rank(method="min") // round(n_pool / (n_bins - 1))``
    among the pool genes' means) and the pool columns of each bin, in pool order.
    """
    pm = means[pool]
    n_items = max(1, int(np.round(len(pm) / (n_bins - 1))))
    srt = np.sort(pm)
    cut = (np.searchsorted(srt, means, side="left") + 1) // n_items  # min-rank among the pool
    pool_cut = cut[pool]
    order = np.argsort(pool_cut, kind="stable")
    bounds = np.flatnonzero(np.diff(pool_cut[order])) + 1
    members = {int(pool_cut[grp[0]]): pool[grp] for grp in np.split(order, bounds) if len(grp)}
    return cut, members


def _weight_matrix(scored: list[str], parts: dict, n_genes: int, ctrl) -> tuple[sparse.csr_matrix, dict]:
    """Genes x signatures weights of the control and mean scores: ``w_g / sum|w|`` for up genes,
    minus that for down genes, and (control method, ``ctrl = (cut, members, ctrl_size, seed)``)
    ``-1 / |C|`` for the controls of the up genes, ``+1 / |C|`` for those of the down genes.
    Returns the matrix (one column per signature with controls) and the number of control genes
    of each signature (-1: a part without control genes; that signature gets no column).
    """
    rows, cols, vals, n_ctrl = [], [], [], {}
    j = 0
    for nm in scored:
        entries, total = [], 0
        for d, sign in (("up", 1.0), ("down", -1.0)):
            genes, w = parts[nm][d]
            if len(genes) == 0:
                continue
            entries.append((genes, sign * w / (np.abs(w).sum() or 1.0)))
            if ctrl is not None:
                c = _control_genes(genes, *ctrl)
                if len(c) == 0:
                    total = -1
                    break
                entries.append((c, np.full(len(c), -sign / len(c))))
                total += len(c)
        n_ctrl[nm] = total
        if total < 0:
            continue
        for g, v in entries:
            rows.append(g)
            cols.append(np.full(len(g), j))
            vals.append(v)
        j += 1
    if j == 0:
        return sparse.csr_matrix((n_genes, 0)), n_ctrl
    W = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_genes, j)
    )
    W.sum_duplicates()
    return W, n_ctrl


def _rank_scores(X, scored: list[str], parts: dict, n_genes: int, max_rank: int, chunk: int) -> np.ndarray:
    """Cells x signatures UCell scores, ``max(U_up - U_down, 0)``, chunked over cells."""
    k = len(scored)
    rows, cols, n_part = [], [], np.zeros(2 * k, np.int64)
    for j, nm in enumerate(scored):
        for d, off in (("up", 0), ("down", k)):
            c = parts[nm][d][0]
            rows.append(c)
            cols.append(np.full(len(c), j + off))
            n_part[j + off] = len(c)
    M = sparse.csr_matrix((np.ones(int(n_part.sum())), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n_genes, 2 * k))  # fmt: skip
    out = np.empty((X.shape[0], k))
    for indptr, indices, data, r0, r1, off in _chunks(X, chunk):
        z, acc = rank_sums(indptr, indices, data, r0, r1, n_genes, max_rank, M.indptr, M.indices, 2 * k)
        U = ucell(z, acc, n_part, max_rank)
        out[off : off + r1 - r0] = np.maximum(U[:, :k] - U[:, k:], 0.0)
    return out
