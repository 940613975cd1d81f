"""Drug repurposing over thousands of compounds in one sparse pass: ``tm.tl.drug_screen``.

Per malignant subpopulation (group within sample), every compound of a drug-target table or of a
collection of drug-sensitivity signatures is scored from the subpopulations' mean expression, tested
against random gene sets matched on expression, and penalised for its activity in the normal
compartment. The method is documented in :func:`drug_screen`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numba
import numpy as np
import pandas as pd
from scipy import sparse

from .._core.drug_screen import Z_STEP, group_stats, null_histogram, score_moments, set_effects, welch
from .._core.expression import TARGET_SUM
from .._core.stats import bh_adjust
from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, NotApplicableError
from .._keys import OBS, UNS
from .._rng import RngLike, make_rng, resolve_seed
from .._settings import logger, settings
from .._store import store
from .._validation import check_int, check_number, check_obs_key, get_matrix, renamed_args, start

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["TABLE_COLUMNS", "drug_screen"]

UNS_DRUG_SCREEN = UNS.drug_screen

#: columns of ``uns[key_added]["table"]``
TABLE_COLUMNS = [
    "therapy", "sample", "group", "n_cells", "fraction_of_sample", "n_genes", "score", "effect", "pval", "padj",
    "pval_random_genes", "padj_random_genes", "toxicity", "rank", "call", "survives", "reasons",
]  # fmt: skip
#: columns of ``uns[key_added]["therapies"]``
THERAPY_COLUMNS = [
    "therapy",
    "kind",
    "n_listed",
    "n_genes",
    "genes",
    "missing",
    "toxicity",
    "scored",
    "reason",
]
#: kinds of drug entry: a target set (judged against the normal compartment) or a sensitivity signature
TARGETS, SIGNATURE = "targets", "signature"
#: default ``min_genes`` per kind (``min_genes=None``)
MIN_GENES = {TARGETS: 1, SIGNATURE: 3}
_N_BINS = 25  # expression bins of the matched null (Tirosh et al. 2016; scanpy's score_genes)
_Z_CLIP = 3.0  # standardised expression is clipped at +-3 (one gene cannot dominate a set)
#: per-cell standardised expression in the signatures' per-cell scores is clipped at +-10 (Seurat's
#: ScaleData scale.max)
_CELL_CLIP = 10.0
_SD_FLOOR_REL = 0.05  # gene SD floor: 5% of the 99th percentile of the gene SDs
_Z_STEP, _Z_MAX = Z_STEP, 12.0  # histogram of the pooled standardised null |z| (|z| >= 12: one bin)
_SIZE_EDGES = (1, 2, 3, 5, 10, 20, 50)  # pooled nulls are kept apart by gene-set size class
_BLOCK_ELEMENTS = 4_000_000  # int32 elements of one block of gene permutations
_N_TOP = 3  # genes named in a reason


# --------------------------------------------------------------------------------------------
# drugs: any accepted input -> one long table (drug, gene, direction, weight, kind)
# --------------------------------------------------------------------------------------------
def _from_table(df: pd.DataFrame) -> pd.DataFrame:
    """A drug-target table (``drug``, ``target``; ``weight``, ``direction`` optional) as long rows.
    Targets joined by ``|`` (the Drug Repurposing Hub's ``target`` column) are split.
    """
    missing = [c for c in ("drug", "target") if c not in df.columns]
    if missing:
        raise InvalidParameterError(
            f"the drug table lacks the column(s) {missing} (it has {list(df.columns)[:12]}). A drug-target table "
            "needs 'drug' and 'target' ('weight', 'direction' optional): rename yours, e.g. DGIdb's "
            "`df.rename(columns={'drug_name': 'drug', 'gene_name': 'target'})`."
        )
    out = pd.DataFrame({"drug": df["drug"], "gene": df["target"]})
    out["weight"] = df["weight"].fillna(1.0) if "weight" in df.columns else 1.0  # missing: the default
    direction = df["direction"].fillna("up") if "direction" in df.columns else pd.Series("up", index=df.index)
    num = pd.to_numeric(direction, errors="coerce")
    out["direction"] = np.where(num.notna(), np.where(num < 0, "down", "up"), direction.astype(str))
    out["gene"] = out["gene"].map(lambda v: v.split("|") if isinstance(v, str) else v)
    out = out.explode("gene")
    out["gene"] = out["gene"].map(lambda v: v.strip() if isinstance(v, str) else v)
    out["kind"] = TARGETS
    return out


def _from_mapping(drugs: dict) -> pd.DataFrame:
    """``{drug: {"up": [...], "down": [...]}}`` (signatures; optional ``"weights": {gene: w}``) or
    ``{drug: [targets]}`` (target sets), read by the signature reader of :func:`score_signatures`.
    """
    from ._signatures import _from_dict

    try:
        df = _from_dict(drugs).rename(columns={"name": "drug"}).drop(columns="category")
    except InvalidParameterError as err:
        raise InvalidParameterError(f"drugs: {err}") from err
    kind = {n: SIGNATURE if isinstance(spec, dict) else TARGETS for n, spec in drugs.items()}
    df["kind"] = df["drug"].map(kind)
    have = set(df["drug"])
    empty = [n for n in drugs if n not in have]  # no gene at all: reported as not scored
    extra = pd.DataFrame({"drug": empty, "gene": None, "direction": "up", "weight": 1.0})
    return pd.concat([df, extra.assign(kind=[kind[n] for n in empty])], ignore_index=True) if empty else df


def _from_gmt(path: Path) -> pd.DataFrame:
    """A GMT file: sets named ``<drug>_UP`` / ``<drug>_DOWN`` (also ``_DN``) are signatures, others target sets."""
    from ._signatures import _read_gmt

    df = _read_gmt(path)
    name = df["name"].astype(str)
    upper = name.str.upper()
    suffix = np.select(
        [upper.str.endswith("_UP"), upper.str.endswith("_DOWN"), upper.str.endswith("_DN")],
        ["up", "down", "down"],
        "",
    )
    cut = np.select([suffix == "", upper.str.endswith("_DOWN")], [0, 5], 3)  # _UP, _DN: 3 characters
    base = [n[: len(n) - c] for n, c in zip(name, cut)]
    out = pd.DataFrame({"drug": base, "gene": df["gene"], "weight": 1.0})
    out["direction"] = np.where(suffix == "", "up", suffix)
    out["kind"] = np.where(suffix == "", TARGETS, SIGNATURE)
    both = out.groupby("drug")["kind"].nunique()
    if (both > 1).any():
        raise InvalidParameterError(
            f"{path.name}: {both[both > 1].index[0]!r} is both a plain target set and an _UP/_DOWN signature; "
            "rename one of them."
        )
    return out


def _resolve_drugs(drugs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(long, info)``: the validated long table (drug, gene, direction, weight, kind; rows with a gene)
    and one row per drug in input order (drug, kind).
    """
    from ._signatures import _looks_like_path, _resolve

    if isinstance(drugs, os.PathLike) or (isinstance(drugs, str) and _looks_like_path(drugs)):
        df = _from_gmt(Path(drugs))
    elif isinstance(drugs, pd.DataFrame):
        df = _from_table(drugs)
    elif isinstance(drugs, dict):
        df = _from_mapping(drugs)
    else:
        raise InvalidParameterError(
            "drugs must be a drug-target table (DataFrame with columns 'drug' and 'target'), a dict of "
            '{drug: {"up": [...], "down": [...]}} sensitivity signatures, or the path of a GMT file '
            f"(sets named <drug>_UP / <drug>_DOWN, or plain target sets); got {type(drugs).__name__}."
        )
    named = df["drug"].map(lambda v: isinstance(v, str) and v.strip() != "")
    odd = df.loc[~named & df["drug"].notna(), "drug"]
    if len(odd):
        raise InvalidParameterError(
            f"drug names must be non-empty text; got {odd.iloc[0]!r} ({len(odd)} such rows)."
        )
    df = df[named]
    if df.empty:
        raise InvalidParameterError(
            "drugs is empty: no row names a drug; pass at least one drug with its genes."
        )
    df["drug"] = df["drug"].str.strip()
    info = df.drop_duplicates("drug")[["drug", "kind"]].reset_index(drop=True)
    has_gene = df["gene"].map(lambda v: isinstance(v, str) and v != "")
    n_empty = int((~has_gene).sum())
    if n_empty:
        logger.info("drug_screen: %d drug rows without a gene name are left out", n_empty)
    df = df[has_gene]
    if df.empty:
        return pd.DataFrame(columns=["drug", "gene", "direction", "weight", "kind"]), info
    tidy = pd.DataFrame({"name": df["drug"], "category": df["kind"], "gene": df["gene"],
                         "direction": df["direction"].astype(str), "weight": df["weight"]})  # fmt: skip
    try:
        tidy = _resolve(tidy)
    except InvalidParameterError as err:
        raise InvalidParameterError(f"drugs: {err}".replace("signature", "drug")) from err
    long = tidy.rename(columns={"name": "drug", "category": "kind"})
    return long[["drug", "gene", "direction", "weight", "kind"]], info


# --------------------------------------------------------------------------------------------
# genes -> columns; the membership matrices
# --------------------------------------------------------------------------------------------
def _membership(long: pd.DataFrame, info: pd.DataFrame, var_names, min_genes, has_normal: bool):
    """Map genes to columns and build, per kind, the drugs x genes matrix of signed weights
    (``w / sum|w|`` within the up and within the down genes of a drug: the score is the weighted mean
    standardised expression of the up genes minus that of the down genes).

    Returns ``info`` completed (n_listed, n_genes, genes, missing, scored, reason, col: the drug's
    row in its kind's matrix or -1), ``{kind: csr matrix}`` and the name of each gene column as the
    drugs spell it (the data's name for genes no drug lists).
    """
    from ._signatures import _gene_columns

    genes = pd.unique(long["gene"])
    col_of = dict(zip(genes, _gene_columns(var_names, genes))) if len(genes) else {}
    long = long.assign(col=long["gene"].map(col_of).fillna(-1).astype(np.int64))
    meas = long[long["col"] >= 0].drop_duplicates(["drug", "col", "direction"])
    listed = long.groupby("drug", sort=False)["gene"].agg(list)
    missing = long[long["col"] < 0].groupby("drug", sort=False)["gene"].agg(list)
    shown = meas.groupby("drug", sort=False)["gene"].agg(list)
    n_meas = meas.groupby("drug", sort=False)["col"].nunique()
    info = info.copy()
    info["n_listed"] = info["drug"].map(listed.map(len)).fillna(0).astype(int)
    info["n_genes"] = info["drug"].map(n_meas).fillna(0).astype(int)
    info["genes"] = info["drug"].map(shown.map(";".join)).fillna("")
    info["missing"] = info["drug"].map(missing.map(";".join)).fillna("")
    need = info["kind"].map(lambda k: MIN_GENES[k] if min_genes is None else int(min_genes))
    reason = np.where(info["n_genes"] < need, [
        f"not scored: {n} of {t} genes measured, fewer than min_genes={m}"
        + (f"; not in the data: {', '.join(miss.split(';')[:5])}" if miss else "")
        for n, t, m, miss in zip(info["n_genes"], info["n_listed"], need, info["missing"])
    ], "")  # fmt: skip
    no_ref = (info["kind"] == TARGETS).to_numpy() & (reason == "") & (not has_normal)
    reason[no_ref] = "not scored: no non-malignant cell to compare the targets with (the normal compartment)"
    info["reason"] = reason
    info["scored"] = reason == ""
    info["col"] = -1
    mats = {}
    for kind in (TARGETS, SIGNATURE):
        sel = info["scored"] & (info["kind"] == kind)
        names = info.loc[sel, "drug"].to_numpy()
        info.loc[sel, "col"] = np.arange(len(names))
        m = meas[meas["drug"].isin(set(names))]
        row = pd.Series(np.arange(len(names)), index=names).reindex(m["drug"]).to_numpy()
        w = m["weight"].to_numpy(float) * np.where(m["direction"].to_numpy() == "down", -1.0, 1.0)
        part = m["drug"] + "\x00" + m["direction"]
        w = w / part.map(pd.Series(np.abs(w), index=part.index).groupby(part).sum()).replace(0, 1).to_numpy()
        M = sparse.csr_matrix((w, (row, m["col"].to_numpy())), shape=(len(names), len(var_names)))
        M.sum_duplicates()
        mats[kind] = M.astype(np.float64)
    names_of = np.asarray(pd.Index(var_names).astype(str), dtype=object)
    names_of[meas["col"].to_numpy()] = meas["gene"].to_numpy()
    return info, mats, names_of


# --------------------------------------------------------------------------------------------
# one pass over the cells: per-group sums of log-normalised expression
# --------------------------------------------------------------------------------------------
def _group_stats(X, codes: np.ndarray, n_codes: int, chunk: int):
    """``(S, Q, N, mode)``: per group (rows) and gene, the sum, sum of squares and number of cells
    expressing, of log-normalised expression (and the input mode), in one chunked pass over the cells (a Dask or backed matrix is read
    block by block; groups < 0 are skipped). Counts are normalised on the fly (log1p CP10k, the
    transform of :func:`tmeatlas.tl.score_signatures` and :func:`tmeatlas.tl.infer_cnv`), without a copy
    of the matrix.
    """
    import warnings

    from ._signatures import _chunks, _input_mode

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mode, scaled = _input_mode(X, "control", chunk)
    if scaled:
        raise InvalidInputError(
            "the expression matrix has negative values (scaled data?); the drug screen compares expression "
            "levels and detection: pass raw counts or log-normalised expression (e.g. `layer='counts'`)."
        )
    return (*group_stats(_chunks(X, chunk), codes, n_codes, X.shape[1], mode, TARGET_SUM), mode)


def _mean_sd(S, Q, n, rows):
    """Gene means and SDs over the cells of the groups ``rows``, SDs floored at 5% of the 99th
    percentile of the positive gene SDs.
    """
    tot = max(1.0, float(n[rows].sum()))
    m = S[rows].sum(axis=0) / tot
    s = np.sqrt(np.maximum(Q[rows].sum(axis=0) / tot - m**2, 0.0))
    pos = s[s > 0]
    floor = max(_SD_FLOOR_REL * float(np.quantile(pos, 0.99)) if len(pos) else 1.0, 1e-12)
    return m, np.maximum(s, floor)


def _standardised(S, Q, N, n: np.ndarray):
    """Group x gene standardised expression for target sets (subpopulation vs the normal compartment,
    in SDs over all analysed cells) and for signatures (subpopulation vs the average malignant cell, in
    SDs over malignant cells), both clipped at +-3; also, per kind, the gene means and SDs that define
    them, the gene means over all analysed cells, each group's detection rates and the normal
    compartment's.
    """
    K = len(n) - 1
    mu = S / np.maximum(n, 1)[:, None]
    m_all, sd_all = _mean_sd(S, Q, n, np.arange(K + 1))
    m_mal, sd_mal = _mean_sd(S, Q, n, np.arange(K))
    Z = {
        TARGETS: np.clip((mu[:K] - mu[K]) / sd_all, -_Z_CLIP, _Z_CLIP),
        SIGNATURE: np.clip((mu[:K] - m_mal) / sd_mal, -_Z_CLIP, _Z_CLIP),
    }
    centres = {TARGETS: (m_all, sd_all), SIGNATURE: (m_mal, sd_mal)}
    det = N / np.maximum(n, 1)[:, None]
    return Z, centres, m_all, det[:K], det[K]


def _differences(X, codes: np.ndarray, S, Q, n: np.ndarray, centres: dict, mats: dict, chunk: int, mode: int):
    """The self-contained test of every drug in every subpopulation, per kind: ``(effect, p)`` (groups x
    drugs; p two-sided from Student's t, NaN for a group of one cell). Target sets: each target's
    standardised difference from the normal compartment (:func:`tmeatlas._core.drug_screen.welch` on the
    gene sums ``S``, ``Q``, clipped at +-3), combined by :func:`~tmeatlas._core.drug_screen.set_effects`.
    Signatures: the per-cell signature score against the other malignant cells (a second pass over the
    cells, :func:`~tmeatlas._core.drug_screen.score_moments`).
    """
    from scipy import stats

    from ._signatures import _chunks

    K = len(n) - 1
    out = {}
    for kind, M in mats.items():
        if not M.shape[0]:
            continue
        if kind == TARGETS:
            d, _, df, se = welch(S[:K], Q[:K], n[:K], S[K : K + 1], Q[K : K + 1], n[K : K + 1])
            effect, t = set_effects(np.clip(d, -_Z_CLIP, _Z_CLIP), se, M)
        else:
            m, sd = centres[kind]
            cc = np.where(codes == K, -1, codes)  # malignant cells only
            Sd, Qd = score_moments(_chunks(X, chunk), cc, K, M, m, sd, _CELL_CLIP, mode, TARGET_SUM)
            rest = (Sd.sum(axis=0) - Sd, Qd.sum(axis=0) - Qd, n[:K].sum() - n[:K])
            effect, t, df, _ = welch(Sd, Qd, n[:K], *rest)
        df = df[:, :1]  # one value per group
        out[kind] = (effect, np.where(df >= 1, 2.0 * stats.t.sf(np.abs(t), np.maximum(df, 1.0)), np.nan))
    return out


# --------------------------------------------------------------------------------------------
# the matched null
# --------------------------------------------------------------------------------------------
def _gene_bins(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expression bin of every gene (0..B-1, scanpy's ``score_genes`` bins of the mean) and genes in each."""
    from ._signatures import _bins

    cut, _ = _bins(means, np.arange(len(means)), _N_BINS)
    cut = np.unique(cut, return_inverse=True)[1]
    return cut, np.bincount(cut)


def _null_moments(Z: np.ndarray, M: sparse.csr_matrix, cut: np.ndarray, size: np.ndarray):
    r"""Exact mean and SD (groups x drugs) of the score of every drug (rows of ``M``) when each of its
    genes is replaced by a random gene of the same expression bin, drawn without replacement:
    per bin :math:`b` with :math:`N_b` genes of mean :math:`m_b` and variance :math:`s_b^2`, and the
    drug's weights :math:`a_i` there, :math:`E = m_b \sum a_i`,
    :math:`V = s_b^2 (\sum a_i^2 - ((\sum a_i)^2 - \sum a_i^2)/(N_b - 1))`, summed over bins.
    """
    G = len(cut)
    Bind = sparse.csr_matrix((np.ones(G), (cut, np.arange(G))), shape=(len(size), G))
    m = (Bind @ Z.T).T / size
    s2 = np.maximum((Bind @ (Z**2).T).T / size - m**2, 0.0)
    A1 = (Bind @ M.T).toarray()
    A2 = (Bind @ M.multiply(M).T).toarray()
    within = np.where(size[:, None] > 1, (A1**2 - A2) / np.maximum(size - 1, 1)[:, None], 0.0)
    mean = m @ A1
    var = np.maximum(s2 @ (A2 - within), 0.0)
    return mean, np.sqrt(var)


def _bin_permutations(cut: np.ndarray, n: int, gen: np.random.Generator) -> np.ndarray:
    """``n`` random permutations of the genes within each expression bin (rows): gene ``g`` -> ``perm[g]``."""
    order = np.argsort(cut, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(cut))])
    perms = np.empty((n, len(cut)), dtype=np.int32)
    for r in range(n):
        for a, b in zip(bounds[:-1], bounds[1:]):
            seg = order[a:b]
            perms[r, seg] = gen.permutation(seg)
    return perms


def _size_class(n_genes: np.ndarray) -> np.ndarray:
    """Set-size class (index into ``_SIZE_EDGES``) of each number of genes."""
    return np.searchsorted(np.asarray(_SIZE_EDGES), n_genes, side="right") - 1


def _pooled_null(Zs: dict, mats: dict, moments: dict, pools: dict, n_pools: int, cut, seed: int, n_perms: int,
                 n_jobs: int):  # fmt: skip
    """Histogram (pools x |z| bins) of the standardised null scores of all drugs of each pool under
    ``n_perms`` random within-bin permutations of the genes (drawn in order from ``seed``).
    """
    from ._signatures import _with_threads

    n_z = int(round(_Z_MAX / _Z_STEP)) + 1
    hist = np.zeros((n_pools + 1) * n_z, dtype=np.int64)
    kinds = [k for k in (TARGETS, SIGNATURE) if mats[k].shape[0]]
    prep = {}
    for k in kinds:
        mean, sd = moments[k]
        inv = np.where(sd > 1e-9, 1.0 / np.maximum(sd, 1e-9), 0.0)
        M = mats[k]
        prep[k] = (M.indptr.astype(np.int64), M.indices.astype(np.int64), M.data.astype(np.float32),
                   np.ascontiguousarray(Zs[k].T, dtype=np.float32), np.ascontiguousarray(mean.T, dtype=np.float32),
                   np.ascontiguousarray(inv.T, dtype=np.float32), np.ascontiguousarray(pools[k] * n_z))  # fmt: skip
    gen = make_rng(seed)
    per_call = max(1, min(n_perms, _BLOCK_ELEMENTS // max(1, len(cut))))
    with _with_threads(n_jobs):
        threads = numba.get_num_threads()
        for r0 in range(0, n_perms, per_call):
            perms = _bin_permutations(cut, min(per_call, n_perms - r0), gen)
            for k in kinds:
                indptr, indices, data, ZT, mean, inv, off = prep[k]
                hist += null_histogram(
                    indptr, indices, data, ZT, perms, mean, inv, off, n_z, len(hist), threads
                )
    return hist.reshape(n_pools + 1, n_z)


def _pvalues(obs_z: np.ndarray, pool: np.ndarray, tail: np.ndarray, n_in_pool: np.ndarray) -> np.ndarray:
    """Two-sided p-value of each observed standardised score from its pool's null (Phipson & Smyth 2010:
    ``(1 + #{null |z| >= |z_obs|}) / (1 + n_null)``; the observed value's histogram bin counts as >=).
    """
    i = np.minimum((np.abs(obs_z) / _Z_STEP).astype(np.int64), tail.shape[1] - 1)
    return (1.0 + tail[pool, i]) / (1.0 + n_in_pool[pool])


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values of one family (:func:`tmeatlas._core.stats.bh_adjust`; NaN
    entries left out and kept NaN).
    """
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    out[ok] = bh_adjust(p[ok])
    return out


def _test(Zs, mats, info, cut, seed, n_perms, n_jobs):
    """Observed scores, exact null moments, the pooled permutation null and p-values: per kind the
    arrays (groups x drugs) ``score``, ``p`` and ``testable`` (the null has spread).
    """
    size = np.bincount(cut).astype(float)
    K = next(iter(Zs.values())).shape[0]
    moments, pools, out = {}, {}, {}
    n_cls = len(_SIZE_EDGES)
    n_pools = K * 2 * n_cls
    for j, kind in enumerate((TARGETS, SIGNATURE)):
        M = mats[kind]
        if not M.shape[0]:
            continue
        mean, sd = _null_moments(Zs[kind], M, cut, size)
        moments[kind] = (mean, sd)
        n_g = info.loc[info["kind"].eq(kind) & info["scored"], "n_genes"].to_numpy()
        cls = _size_class(n_g)
        pool = (np.arange(K)[:, None] * 2 + j) * n_cls + cls[None, :]
        testable = sd > 1e-9
        pools[kind] = np.where(testable, pool, n_pools).T  # drugs x groups; untestable -> spare pool
        score = np.asarray(M @ Zs[kind].T).T  # groups x drugs
        out[kind] = {"score": score, "mean": mean, "sd": sd, "testable": testable}
    hist = _pooled_null(Zs, mats, moments, pools, n_pools, cut, seed, n_perms, n_jobs)
    tail = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]
    n_in_pool = hist.sum(axis=1)
    for kind, r in out.items():
        z = np.where(r["testable"], (r["score"] - r["mean"]) / np.where(r["testable"], r["sd"], 1.0), 0.0)
        r["z"] = z
        p = _pvalues(z, pools[kind].T, tail, n_in_pool)
        r["p"] = np.where(r["testable"], p, 1.0)
    return out


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------
def _gene_texts(names, w, Zg, det, score, kind) -> list[str]:
    """Per group (rows of ``Zg``, groups x the drug's genes, weights ``w``): the (up to 3) genes that
    carry the score in its direction, with their z (and detection rate for targets; up/down for
    signatures).
    """
    C = Zg * w
    sign = np.where(np.nan_to_num(score) >= 0, 1.0, -1.0)[:, None]
    part = np.where(w < 0, "down ", "up ")
    top = np.argsort(-sign * C, axis=1, kind="stable")[:, :_N_TOP]
    keep = np.take_along_axis(sign * C, top, axis=1) > 0
    out = []
    for k in range(C.shape[0]):
        idx = top[k][keep[k]] if keep[k].any() else top[k]  # nothing carries it: name the genes anyway
        if kind == TARGETS:
            out.append(
                ", ".join(f"{names[i]} (z={Zg[k, i]:.1f}, in {100 * det[k, i]:.0f}% of cells)" for i in idx)
            )
        else:
            out.append(", ".join(f"{part[i]}{names[i]} (z={Zg[k, i]:+.1f})" for i in idx))
    return out


def _decision_text(effect, fdr, call, alpha, min_effect) -> str:
    """Why a row is called or not: the self-contained test's FDR and the effect against ``min_effect``."""
    sig = f"FDR {fdr:.2g}" if np.isfinite(fdr) else "not testable (a group of one cell)"
    if call != "undetermined":
        return sig
    why = []
    if not np.isfinite(fdr) or fdr > alpha:
        why.append(f"{sig}, not significant at {alpha:g}")
    if not abs(effect) >= min_effect:
        why.append(f"|d| < min_effect={min_effect:g}")
    return "undetermined: " + " and ".join(why)


def _row_reason(kind, score, effect, fdr, fdr_random, call, tox, genes, alpha, min_effect) -> str:
    """Plain-English reason of one drug x subpopulation row."""
    decision = _decision_text(effect, fdr, call, alpha, min_effect)
    random = f"vs random genes of the same expression: FDR {fdr_random:.2g}"
    if kind == TARGETS:
        where = "above" if score > 0 else ("below" if score < 0 else "level with")
        lead = {"survives": "no target window: ", "responds": "target window: "}.get(call, "")
        head = (f"{lead}targets {genes or '(none)'} {where} the normal compartment (mean z={score:.1f}, "
                f"effect d={effect:+.2f})")  # fmt: skip
        return f"{head}; {decision}; {random}; targets expressed in {100 * tox:.0f}% of normal cells"
    what = "sensitive" if effect > 0 else "resistant"
    head = (f"signature says {what} vs the other malignant cells (score={score:.2f}, effect d={effect:+.2f}; "
            f"genes {genes or '(none)'})")  # fmt: skip
    if not np.isfinite(tox):
        return f"{head}; {decision}; {random}; no non-malignant cell: toxicity not measured"
    return f"{head}; {decision}; {random}; signature active in normal cells: toxicity {tox:.2f}"


def _calls(effect, fdr, alpha, min_effect):
    """``responds`` (targets above the normal compartment / signature says sensitive: effect >=
    ``min_effect`` and FDR <= alpha), ``survives`` (effect <= -``min_effect``, likewise), else
    ``undetermined``.
    """
    sigf = np.isfinite(fdr) & (fdr <= alpha)
    return np.where(sigf & (effect >= min_effect), "responds",
                    np.where(sigf & (effect <= -min_effect), "survives", "undetermined"))  # fmt: skip


def _by_drug(info, res, diffs, K):
    """Drugs x groups arrays of the table: score, competitive p, effect and self-contained p (NaN for
    drugs not scored).
    """
    D = len(info)
    out = {k: np.full((D, K), np.nan) for k in ("score", "p_random", "effect", "p")}
    for kind, r in res.items():
        rows = np.flatnonzero((info["kind"] == kind).to_numpy() & info["scored"].to_numpy())
        cols = info["col"].to_numpy()[rows]
        effect, p = diffs[kind]
        for name, arr in (("score", r["score"]), ("p_random", r["p"]), ("effect", effect), ("p", p)):
            out[name][rows] = arr.T[cols]
    return out


def _bh_per_group(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg within each subpopulation (columns) over its scored drugs."""
    return np.column_stack([_bh(p[:, k]) for k in range(p.shape[1])]) if p.shape[0] else p


def _table(info, res, diffs, Zs, det, subs, mats, names_of, alpha, tox_weight, min_effect):
    """One row per drug x subpopulation (drug-major), with reasons."""
    K, D = len(subs), len(info)
    a = _by_drug(info, res, diffs, K)
    score, effect = a["score"], a["effect"]
    fdr, fdr_random = _bh_per_group(a["p"]), _bh_per_group(a["p_random"])
    tox = info["toxicity"].to_numpy(float)
    calls = _calls(effect, fdr, alpha, min_effect)
    penal = score - tox_weight * np.nan_to_num(tox)[:, None]
    rank = np.full((D, K), np.nan)
    for k in range(K):
        ok = np.flatnonzero(np.isfinite(penal[:, k]))
        rank[ok[np.argsort(-penal[ok, k], kind="stable")], k] = np.arange(1, len(ok) + 1)
    reasons = []
    for d, row in enumerate(info.itertuples()):
        if not row.scored:
            reasons += [row.reason] * K
            continue
        M = mats[row.kind]
        lo, hi = M.indptr[row.col], M.indptr[row.col + 1]
        gcols, w = M.indices[lo:hi], M.data[lo:hi]
        Zg = Zs[row.kind][:, gcols]
        texts = _gene_texts(names_of[gcols], w, Zg, det[:, gcols], score[d], row.kind)
        testable = res[row.kind]["testable"][:, row.col]
        for k in range(K):
            text = _row_reason(row.kind, score[d, k], effect[d, k], fdr[d, k], fdr_random[d, k], calls[d, k],
                               tox[d], texts[k], alpha, min_effect)  # fmt: skip
            if not testable[k]:
                text += "; random genes of the same expression do not vary here"
            reasons.append(text)
    t = pd.DataFrame({
        "therapy": np.repeat(info["drug"].to_numpy(), K), "sample": np.tile(subs["sample"].to_numpy(), D),
        "group": np.tile(subs["group"].to_numpy(), D), "n_cells": np.tile(subs["n_cells"].to_numpy(), D),
        "fraction_of_sample": np.tile(subs["fraction_of_sample"].to_numpy(), D),
        "n_genes": np.repeat(info["n_genes"].to_numpy(), K), "score": score.ravel(), "effect": effect.ravel(),
        "pval": a["p"].ravel(), "padj": fdr.ravel(), "pval_random_genes": a["p_random"].ravel(),
        "padj_random_genes": fdr_random.ravel(), "toxicity": np.repeat(tox, K), "rank": rank.ravel(),
        "call": calls.ravel(),
    })  # fmt: skip
    t["survives"] = t["call"].eq("survives")
    t["reasons"] = reasons
    return t[TABLE_COLUMNS]


# --------------------------------------------------------------------------------------------
# tm.tl.drug_screen
# --------------------------------------------------------------------------------------------
def _check_params(n_perms, max_padj, toxicity_weight, min_genes, key_added) -> None:
    """None; raises :class:`InvalidParameterError` naming the first parameter that is not valid."""
    check_int("n_perms", n_perms, 1)
    if min_genes is not None and (isinstance(min_genes, bool) or not isinstance(min_genes, int | np.integer)
                                  or min_genes < 1):  # fmt: skip
        raise InvalidParameterError(f"min_genes must be None or an integer >= 1, got {min_genes!r}.")
    check_number("max_padj", max_padj, low=0, high=1, low_open=True)
    if (isinstance(toxicity_weight, bool) or not isinstance(toxicity_weight, int | float)
            or not np.isfinite(toxicity_weight) or toxicity_weight < 0):  # fmt: skip
        raise InvalidParameterError(
            f"toxicity_weight must be a non-negative number, got {toxicity_weight!r}."
        )
    if not isinstance(key_added, str) or not key_added or "/" in key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string without '/', got {key_added!r}.")


def _subpopulations(adata, groupby, sample_key, mal, mal_rule):
    """``(subs, codes)``: the subpopulations (sample, group, n_cells, fraction_of_sample; sorted) and each
    cell's code: its subpopulation, ``len(subs)`` for the normal compartment, -1 for malignant cells
    without a group label.
    """
    if not isinstance(groupby, str):
        raise InvalidParameterError(f"groupby must be the name of a column of adata.obs, got {groupby!r}.")
    hint = "Run `tm.tl.cnv_clones(adata)` first." if groupby == OBS.cnv_clone else ""
    check_obs_key(adata, groupby, what="groupby", hint=hint)
    if sample_key is not None:
        check_obs_key(adata, sample_key, what="sample_key")
    gcol = adata.obs[groupby]
    labelled = gcol.notna().to_numpy()
    if not (mal & labelled).any():
        raise NotApplicableError(
            f"groupby {groupby!r} has no malignant cells ({mal_rule}: {int(mal.sum())} cells; none of them has a "
            f"{groupby!r} label). Group by a column that labels malignant cells (e.g. 'cnv_clone' after "
            "`tm.tl.cnv_clones`), or set malignant_key=/malignant_value=."
        )
    samples = (adata.obs[sample_key].astype(str).to_numpy() if sample_key is not None
               else np.full(adata.n_obs, "all", object))  # fmt: skip
    groups = gcol.astype(str).to_numpy()
    keep = mal & labelled
    key = pd.DataFrame({"sample": samples[keep], "group": groups[keep]})
    subs = key.value_counts(sort=False).rename("n_cells").reset_index()
    subs = subs.sort_values(["sample", "group"], kind="stable").reset_index(drop=True)
    n_mal = pd.Series(samples[mal]).value_counts()
    subs["fraction_of_sample"] = subs["n_cells"] / subs["sample"].map(n_mal).to_numpy()
    code_of = pd.Series(np.arange(len(subs)), index=pd.MultiIndex.from_frame(subs[["sample", "group"]]))
    codes = np.full(adata.n_obs, -1, dtype=np.int64)
    codes[keep] = code_of.reindex(pd.MultiIndex.from_frame(key)).to_numpy()
    codes[~mal] = len(subs)
    return subs, codes


@renamed_args(fdr="max_padj")
@doc_params("copy", "layer")
def drug_screen(
    adata: AnnData,
    *,
    drugs,
    groupby: str,
    sample_key: str | None = None,
    layer: str | None = None,
    malignant_key: str | None = None,
    malignant_value: str | None = None,
    min_genes: int | None = None,
    n_perms: int = 1000,
    max_padj: float = 0.05,
    min_effect: float = 0.5,
    toxicity_weight: float = 1.0,
    rng: RngLike = 0,
    n_jobs: int | None = None,
    key_added: str = UNS_DRUG_SCREEN,
    copy: bool = False,
) -> AnnData | None:
    r"""Screen thousands of compounds against every malignant subpopulation in one sparse pass.

    **Input.** ``drugs`` is (a) a drug-target table (columns ``drug``, ``target``; optional
    ``weight`` and ``direction``: ``"up"``/``+1``, the default, for a gene the drug needs high
    — an inhibited oncogene, an antibody's antigen —, ``"down"``/``-1`` for a gene that marks
    resistance, e.g. an efflux pump; targets joined by ``|`` are split) such as exported from
    DGIdb (Freshour et al., NAR 2021), ChEMBL, DrugBank or the Drug Repurposing Hub (Corsello et al.,
    Nat Med 2017); (b) drug-sensitivity signatures ``{drug: {"up": genes high in sensitive cells,
    "down": genes high in resistant cells}}`` (the ``evidence=`` convention of
    :func:`therapy_survival`; e.g. derived from GDSC/CTRP, Iorio et al., Cell 2016; Rees et al.,
    Nat Chem Biol 2016, or CMap/LINCS, Subramanian et al., Cell 2017, as in Beyondcell,
    Fustero-Torre et al., Genome Med 2021); ``{drug: [targets]}`` is a target set; (c) the path
    of a GMT file whose sets named ``<drug>_UP`` / ``<drug>_DOWN`` are signatures and whose
    other sets are target sets. Gene names are matched like :func:`score_signatures` (exact,
    then HGNC symbols, legacy symbols, aliases and Ensembl IDs). Nothing is downloaded.

    **One pass.** Subpopulation :math:`k` = value of ``groupby`` within a sample, malignant
    cells only; the normal compartment :math:`n` = all non-malignant cells. One chunked pass
    over the cells accumulates, per group and gene, the sum and the sum of squares of the
    log-normalised expression (log1p CP10k from counts, else as stored) and the number of
    cells expressing it: means :math:`\mu_{kg}`, :math:`\nu_g` (normal), detection rates.

    **Standardised expression** (clipped at :math:`\pm 3`; SDs floored at 5% of the 99th
    percentile of the gene SDs). Target sets: :math:`z_{kg} = (\mu_{kg} - \nu_g) / \sigma_g`
    with :math:`\sigma_g` the SD over all analysed cells: a target is a candidate where the
    malignant subpopulation expresses it above the normal compartment, the therapeutic window
    of target-directed drugs. Signatures: :math:`z_{kg} = (\mu_{kg} - \bar\mu_g) / s_g` against
    the average malignant cell and its per-cell SD: a sensitivity signature ranks malignant
    cells against each other (the per-cell SD, not the SD of a few subpopulation means, so two
    subpopulations differing by noise do not get :math:`z = \pm 1`).

    **Scores** for all drugs at once: a sparse drugs x genes matrix :math:`W` of signed weights
    (:math:`w / \sum |w|` within the up and within the down genes of a drug) times the
    genes x groups matrix :math:`Z`: :math:`S_{kd} = \sum_{g \in up} w_{gd} z_{kg} - \sum_{g \in
    down} w_{gd} z_{kg}`, the weighted mean z of the targets (or up genes minus down genes).

    **Decision: is the drug's evidence there?** A self-contained test (Goeman & Bühlmann,
    Bioinformatics 2007) with cells as the units; ``effect`` is a standardised difference
    (Cohen's d) and the group's variance is not taken below the reference's in the standard
    error (its value under the null: a small group that by chance has no expressing cell does not
    look certain). *Target sets* (each target is a protein the drug needs): per target, Cohen's
    :math:`d_{kg} = (\mu_{kg} - \nu_g) / \sqrt{(v_{kg} + v_g)/2}` against the normal compartment
    (clipped at :math:`\pm 3`); ``effect`` :math:`E_{kd} = \sum_g w_{gd} d_{kg}` (the weighted
    mean over targets; a resistance marker counts with its sign) and :math:`t_{kd} = E_{kd} /
    \sum_g |w_{gd}| se_{kg}` with Welch's :math:`se_{kg} = \sqrt{\max(v_{kg}, v_g)/n_k + v_g/n_n} /
    s_p`: the denominator bounds the standard error whatever the targets' correlation
    (Cauchy-Schwarz), exact for one target, conservative for several. *Signatures* (a cell
    state read jointly by many genes): a second pass over the malignant cells gives each cell's
    signature score :math:`s_{cd} = \sum_g w_{gd} \, \mathrm{clip}((x_{cg} - m_g)/s_g, \pm 10)`
    (genes standardised over malignant cells; 10 is Seurat's ``ScaleData`` default), compared with
    the other malignant cells: ``effect`` is Cohen's d of :math:`s_{cd}` (gene correlations
    included), :math:`t` Welch's as above. ``pval``: two-sided, Student's t with (smaller group
    - 1) degrees of freedom; ``padj``: Benjamini-Hochberg (J R Stat Soc B 1995) within each
    subpopulation over the scored drugs. With thousands of cells any difference is significant,
    so a call also needs :math:`|E| \ge` ``min_effect`` (default 0.5, a "medium" effect: Cohen,
    Statistical Power Analysis, 1988).

    **Specificity: more than random genes?** A competitive test (``pval_random_genes``,
    ``padj_random_genes``) replaces every gene of the drug by a random gene of the same
    expression bin (25 bins of the mean over analysed cells, as Tirosh et al., Science 2016 draw
    control genes), drawn without replacement. The null's mean :math:`m_{kd}` and SD
    :math:`s_{kd}` of :math:`S_{kd}` are exact (sums over bins of the bin's mean and variance
    times the drug's weights, with the finite-population correction), so :math:`z_{kd} = (S_{kd}
    - m_{kd}) / s_{kd}`. ``n_perms`` random within-bin permutations of the genes (drawn from
    ``rng``) give standardised null scores of every drug; as in GSEA (Subramanian et al., PNAS
    2005) they are pooled over the drugs of the same subpopulation, kind and set size class (1,
    2, 3-4, 5-9, 10-19, 20-49, 50+ genes, whose null shapes differ), which resolves p-values
    far below ``1 / n_perms``: :math:`p = (1 + \#\{|z^{null}| \ge |z_{kd}|\}) / (1 + n^{null})`
    (Phipson & Smyth, Stat Appl Genet Mol Biol 2010), BH within each subpopulation. It says
    whether the drug's genes stand out from the subpopulation's general difference from the
    normal compartment (e.g. a carcinoma's epithelial genes against immune cells); among
    thousands of compounds a single-target drug must beat nearly every gene of its expression
    bins, so it does not decide the call.

    **Toxicity** :math:`\tau_d`: activity in the normal compartment, :math:`\sum_g w_{gd} f_g`
    clipped to [0, 1] with :math:`f_g` the fraction of normal cells expressing gene :math:`g`:
    for a target set, the (weighted) mean fraction of normal cells expressing its targets; for a
    signature, that of its up genes minus that of its down genes. ``rank`` orders the drugs
    within each subpopulation by :math:`S_{kd} - \lambda \tau_d` (:math:`\lambda` =
    ``toxicity_weight``).

    **Calls.** ``responds``: ``padj`` <= ``max_padj`` and ``effect`` >= ``min_effect``
    (targets above the normal compartment: a target window / signature says sensitive);
    ``survives``: ``padj`` <= ``max_padj`` and ``effect`` <= -``min_effect`` (targets below the
    normal compartment / resistant); else ``undetermined`` with the reason (also drugs not
    scored, and groups of one cell). A drug with fewer than ``min_genes`` measured genes is
    reported on every row as not scored, with the reason and the genes not found.
    ``benchmarks/drug_screen.py`` measures the calls of planted single-target drugs against the
    simulator's response truth and the calls on a label-permuted null. The normal compartment is
    the sample's non-malignant cells (immune, stromal), not the tumour's tissue of origin, and the
    screen sees expression alone, not mutations, drug exposure or pharmacology: a call is a
    candidate to examine, not a prediction of clinical response.

    Parameters
    ----------
    adata
        Annotated data matrix (raw counts or log-normalised expression) with malignant calls.
    drugs
        A drug-target table, a dict of signatures (or of target lists), or a GMT path (above).
    groupby
        Column of ``adata.obs`` with the subpopulations (CNV clone, cluster, cell state).
    sample_key
        Column of ``adata.obs`` with the sample; ``None``: one sample.
    {layer}
    malignant_key, malignant_value
        Column and value that mark malignant cells (default: ``obs["malignant"] == "malignant"``,
        else ``obs["compartment"] == "malignant"``, else ``obs["cell_type_major"] == "Malignant"``).
    min_genes
        Fewest measured genes for a drug to be scored; ``None``: 1 for target sets, 3 for signatures.
    n_perms
        Random within-bin gene permutations of the null (each scores every drug).
    max_padj
        Largest Benjamini-Hochberg adjusted p-value (FDR level) of the ``responds`` / ``survives`` calls.
    min_effect
        Smallest absolute ``effect`` (mean Cohen's d of a drug's targets; Cohen's d of a signature's
        per-cell score) of a call.
    toxicity_weight
        :math:`\lambda`, score units lost per unit of toxicity in ``rank``.
    rng
        Seed of the permutations (recorded in ``params``).
    n_jobs
        Threads over blocks of permutations (default ``tm.settings.n_jobs``); results do not depend on it.
    key_added
        Key of ``adata.uns`` for the result (read by :func:`combination_cover` with ``key=``).
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``uns[key_added]`` with ``table`` (:data:`TABLE_COLUMNS`: one row per
    drug (``therapy``), sample and group; ``survives`` is ``call == "survives"``), ``therapies``
    (therapy, kind, n_listed, n_genes, genes, missing, toxicity, scored, reason) and ``params``.
    """
    from ._cells import malignant_mask as _malignant_mask

    adata = start(adata, copy)
    seed = resolve_seed(rng)
    _check_params(n_perms, max_padj, toxicity_weight, min_genes, key_added)
    check_number("min_effect", min_effect, low=0, low_open=True)
    n_threads = settings.resolve_n_jobs(n_jobs)
    X = get_matrix(adata, layer)
    mal, mal_rule = _malignant_mask(adata, malignant_key, malignant_value)
    subs, codes = _subpopulations(adata, groupby, sample_key, mal, mal_rule)
    long, info = _resolve_drugs(drugs)
    has_normal = bool((~mal).any())
    info, mats, names_of = _membership(long, info, adata.var_names, min_genes, has_normal)
    if not info["scored"].any():
        raise NotApplicableError(
            f"none of the {len(info)} drugs can be scored: {info['reason'].iloc[0]}. Check the gene identifiers "
            "(HGNC symbols or Ensembl IDs of the data's species), lower min_genes, or include non-malignant cells "
            "for target tables."
        )
    K = len(subs)
    S, Q, N, mode = _group_stats(X, codes, K + 1, int(settings.chunk_size))
    n = np.bincount(codes[codes >= 0], minlength=K + 1).astype(float)
    Zs, centres, m_all, det, f_norm = _standardised(S, Q, N, n)
    cut, _ = _gene_bins(m_all)
    tox = np.full(len(info), np.nan)
    if has_normal:
        for kind, M in mats.items():
            rows = np.flatnonzero((info["kind"] == kind).to_numpy() & info["scored"].to_numpy())
            tox[rows] = np.clip(M @ f_norm, 0.0, 1.0)[info["col"].to_numpy()[rows]]
    info["toxicity"] = tox
    res = _test(Zs, mats, info, cut, seed, int(n_perms), n_threads)
    diffs = _differences(X, codes, S, Q, n, centres, mats, int(settings.chunk_size), mode)
    table = _table(info, res, diffs, Zs, det, subs, mats, names_of, float(max_padj), float(toxicity_weight),
                   float(min_effect))  # fmt: skip
    therapies = info.rename(columns={"drug": "therapy"})[THERAPY_COLUMNS]
    params = {
        "drugs": f"{len(info)} drugs ({', '.join(f'{v} {k}' for k, v in info['kind'].value_counts().items())})",
        "groupby": groupby, "sample_key": sample_key, "layer": layer, "malignant": mal_rule,
        "min_genes": min_genes, "n_perms": int(n_perms), "max_padj": float(max_padj), "min_effect": float(min_effect), "toxicity_weight": float(toxicity_weight),
        "rng": seed, "n_jobs": n_threads, "key_added": key_added, "n_bins": _N_BINS,
    }  # fmt: skip
    logger.info(
        "drug_screen: %d drugs (%d scored) x %d subpopulations", len(info), int(info["scored"].sum()), K
    )
    store(adata, tool="tl.drug_screen", uns_key=key_added, uns={"table": table, "therapies": therapies},
          params=params)  # fmt: skip
    return adata if copy else None
