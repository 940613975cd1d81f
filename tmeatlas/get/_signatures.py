"""Tidy tables of signature scores and checkpoint interactions.

``tm.get.signature_summary`` (pseudobulk per sample and group), ``tm.get.signature_test``
(tests between groups with patients as replicates) and ``tm.get.checkpoint_interactions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._core.stats import bh_adjust, signed_rank_test
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError
from .._keys import OBSM, SIGNATURE_PREFIX, UNS
from .._validation import check_adata, check_int, check_obs_key, check_one_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anndata import AnnData

__all__ = ["checkpoint_interactions", "signature_summary", "signature_test"]

_SCORE_HINT = "run `tm.tl.score_signatures(adata)` first (it writes obs['sig_<name>'])"


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------
def signature_scores(adata: AnnData, signatures: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Per-cell signature scores as a DataFrame (cells x signatures), columns named without ``sig_``.

    ``signatures=None`` takes every numeric ``obs`` column starting with ``"sig_"`` (else the
    columns of ``obsm["X_signatures"]`` when it is a DataFrame). A given name is looked up as
    ``obs[name]``, then ``obs["sig_" + name]``, then a column of ``obsm["X_signatures"]``.
    """
    obs = adata.obs
    table = adata.obsm.get(OBSM.signatures) if OBSM.signatures in adata.obsm else None
    table = table if isinstance(table, pd.DataFrame) else None
    if signatures is None:
        cols = [
            c
            for c in obs.columns
            if str(c).startswith(SIGNATURE_PREFIX)
            and pd.api.types.is_numeric_dtype(obs[c])
            and not pd.api.types.is_bool_dtype(obs[c])
        ]
        if cols:
            out = obs[cols].astype(np.float64).copy()
            out.columns = [str(c)[len(SIGNATURE_PREFIX) :] for c in cols]
            return out
        if table is not None and table.shape[1] > 0:
            return table.astype(np.float64).set_axis(adata.obs_names, axis=0)
        raise MissingResultError(
            f"no signature scores: no column of adata.obs starts with 'sig_'; {_SCORE_HINT}."
        )
    names = [signatures] if isinstance(signatures, str) else list(signatures)
    if not names:
        raise InvalidParameterError("signatures must name at least one signature (or be None for all).")
    out = {}
    for name in names:
        name = str(name)
        label = name[len(SIGNATURE_PREFIX) :] if name.startswith(SIGNATURE_PREFIX) else name
        if (
            name in obs.columns
            and pd.api.types.is_numeric_dtype(obs[name])
            and not pd.api.types.is_bool_dtype(obs[name])
        ):
            out[label] = obs[name].to_numpy(dtype=np.float64)
        elif SIGNATURE_PREFIX + name in obs.columns:
            out[label] = obs[SIGNATURE_PREFIX + name].to_numpy(dtype=np.float64)
        elif table is not None and name in table.columns:
            out[label] = table[name].to_numpy(dtype=np.float64)
        else:
            have = [str(c) for c in obs.columns if str(c).startswith(SIGNATURE_PREFIX)]
            raise MissingResultError(
                f"no signature score {name!r}: neither obs[{name!r}] nor obs[{SIGNATURE_PREFIX + name!r}] exists "
                f"(scores present: {have[:10] or 'none'}); {_SCORE_HINT}, or name a numeric obs column."
            )
    return pd.DataFrame(out, index=adata.obs_names)


def _labels(adata: AnnData, key: str, what: str) -> tuple[np.ndarray, list[str]]:
    """String labels of ``obs[key]`` (``None`` where missing) and the categories in order."""
    if not isinstance(key, str):
        raise InvalidParameterError(f"{what} must be the name of a column of adata.obs, got {key!r}.")
    hint = (
        "Run `tm.tl.annotate(adata)` first." if key in ("cell_type_major", "cell_type", "compartment") else ""
    )
    check_obs_key(adata, key, what=what, hint=hint)
    col = adata.obs[key]
    labels = np.where(col.isna().to_numpy(), None, col.astype(str).to_numpy()).astype(object)
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in col.cat.categories]
    else:
        cats = sorted({str(v) for v in col.dropna()})
    present = set(labels[labels != None])  # noqa: E711
    return labels, [c for c in cats if c in present]


def _check_min_cells(min_cells) -> int:
    """``min_cells`` as an int; raises :class:`InvalidParameterError` unless it is an integer >= 1."""
    check_int("min_cells", min_cells, 1)
    return int(min_cells)


def _select_groups(cats: list[str], groups, groupby: str) -> list[str]:
    """The groups to test: ``groups`` checked against ``cats`` (all of ``cats`` when ``None``)."""
    if groups is None:
        return cats
    groups = [groups] if isinstance(groups, str) else [str(g) for g in groups]
    unknown = [g for g in groups if g not in cats]
    if unknown:
        raise InvalidParameterError(
            f"groups {unknown} are not values of obs[{groupby!r}] (values: {cats[:12]})."
        )
    if len(set(groups)) < len(groups):
        raise InvalidParameterError(f"groups has repeated values: {groups}.")
    return groups


def _cell_table(adata, groupby, sample_key, signatures, groups):
    """Long per-cell frame (sample, group, scores...) restricted to ``groups``; and the ordered groups/samples."""
    check_adata(adata)
    if sample_key is None:
        raise InvalidParameterError(
            "sample_key must name the column of adata.obs with the sample (patient) of each cell: samples, not "
            "cells, are the replicates of the test."
        )
    g, gcats = _labels(adata, groupby, "groupby")
    s, scats = _labels(adata, sample_key, "sample_key")
    groups = _select_groups(gcats, groups, groupby)
    scores = signature_scores(adata, signatures)
    keep = np.isin(g, groups) & (s != None)  # noqa: E711
    if not keep.any():
        raise InvalidInputError(
            f"no cell has both a sample (obs[{sample_key!r}]) and one of the groups {groups[:8]}."
        )
    frame = scores.loc[keep].copy()
    frame.insert(0, "_group", g[keep])
    frame.insert(0, "_sample", s[keep])
    return frame, list(scores.columns), groups, [c for c in scats if c in set(s[keep])]


# --------------------------------------------------------------------------------------------
# tm.get.signature_summary
# --------------------------------------------------------------------------------------------
def signature_summary(
    adata: AnnData,
    *,
    groupby: str,
    sample_key: str,
    signatures: str | Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    min_cells: int = 10,
) -> pd.DataFrame:
    """Pseudobulk signature scores: one row per sample, group and signature.

    For every sample ``s`` (patient), group ``k`` of ``obs[groupby]`` and signature, the
    number of cells and the mean and median of the per-cell scores over the cells of ``k`` in
    ``s``. The mean is the pseudobulk value that :func:`signature_test` compares across
    samples. (sample, group) combinations with fewer than ``min_cells`` cells are left out:
    their mean is too noisy to stand for the sample.

    Parameters
    ----------
    adata
        Annotated data matrix with signature scores (``obs["sig_<name>"]`` from
        ``tm.tl.score_signatures``, or any numeric ``obs`` column named in ``signatures``).
    groupby
        Column of ``adata.obs`` with the groups (e.g. ``"cell_type_major"``).
    sample_key
        Column of ``adata.obs`` with the sample (patient) of each cell.
    signatures
        Signature names (``"HYPOXIA"`` or ``"sig_HYPOXIA"``, or other numeric ``obs`` columns);
        ``None``: every ``obs`` column starting with ``"sig_"``.
    groups
        Groups to keep, in this order; ``None``: all, in category order.
    min_cells
        Fewest cells of a group in a sample for a pseudobulk value.

    Returns
    -------
    DataFrame with columns ``sample``, ``group``, ``signature``, ``n_cells``, ``mean``,
    ``median``, ordered by signature, group and sample (``group`` and ``sample`` categorical).
    """
    min_cells = _check_min_cells(min_cells)
    frame, names, groups, samples = _cell_table(adata, groupby, sample_key, signatures, groups)
    grouped = frame.groupby(["_sample", "_group"], sort=False)
    n = grouped.size().rename("n_cells")
    mean = grouped[names].mean()
    median = grouped[names].median()
    long = (
        mean.stack(future_stack=True)
        .rename("mean")
        .to_frame()
        .join(median.stack(future_stack=True).rename("median"))
        .reset_index()
        .rename(columns={"_sample": "sample", "_group": "group", "level_2": "signature"})
    )
    long.columns = ["sample", "group", "signature", "mean", "median"]
    long = long.merge(
        n.reset_index().rename(columns={"_sample": "sample", "_group": "group"}), on=["sample", "group"]
    )
    long = long[long["n_cells"] >= min_cells]
    long["sample"] = pd.Categorical(long["sample"], categories=samples)
    long["group"] = pd.Categorical(long["group"], categories=groups)
    long["signature"] = pd.Categorical(long["signature"], categories=names)
    long = long.sort_values(["signature", "group", "sample"]).reset_index(drop=True)
    long["signature"] = long["signature"].astype(str)
    long["n_cells"] = long["n_cells"].astype(np.int64)
    return long[["sample", "group", "signature", "n_cells", "mean", "median"]]


# --------------------------------------------------------------------------------------------
# tm.get.signature_test
# --------------------------------------------------------------------------------------------
def _rest_means(frame: pd.DataFrame, names: list[str], group: str, min_cells: int) -> pd.DataFrame:
    """Per sample, the mean score of its cells outside ``group`` (samples with >= ``min_cells`` such cells)."""
    rest = frame[frame["_group"] != group]
    n = rest.groupby("_sample").size()
    means = rest.groupby("_sample")[names].mean()
    return means[n.reindex(means.index) >= min_cells]


def _paired(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of ``x - y`` (exact for small n); NaN with < 2 pairs."""
    d = x - y
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return np.nan, np.nan
    if np.all(d == 0):
        return 0.0, 1.0
    return signed_rank_test(d)


def _unpaired(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sided Mann–Whitney U test; NaN with fewer than one value per side or constant values."""
    from scipy.stats import mannwhitneyu

    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) < 1 or len(y) < 1 or len(x) + len(y) < 3:
        return np.nan, np.nan
    res = mannwhitneyu(x, y, alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def _omnibus(wide: np.ndarray, paired: bool) -> tuple[float, float, int]:
    """Friedman test over complete samples (paired) or Kruskal–Wallis over all values of ``wide``
    (samples x groups, NaN where absent); (stat, p, n).
    """
    from scipy.stats import friedmanchisquare, kruskal

    if paired:
        full = wide[~np.isnan(wide).any(axis=1)]
        if len(full) < 2:
            return np.nan, np.nan, len(full)
        if np.all(np.ptp(full, axis=1) == 0):
            return 0.0, 1.0, len(full)
        res = friedmanchisquare(*full.T)
        return float(res.statistic), float(res.pvalue), len(full)
    vals = [c[~np.isnan(c)] for c in wide.T]
    vals = [v for v in vals if len(v)]
    n = int(sum(len(v) for v in vals))
    if len(vals) < 2 or n <= len(vals):
        return np.nan, np.nan, n
    allv = np.concatenate(vals)
    if np.all(allv == allv[0]):
        return 0.0, 1.0, n
    res = kruskal(*vals)
    return float(res.statistic), float(res.pvalue), n


def _pseudobulk_arrays(means: pd.DataFrame, rest: dict[str, pd.DataFrame], samples: list, groups: list[str],
                       names: list[str]) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:  # fmt: skip
    """``means`` (sample, group) x signature as an array samples x groups x signatures (NaN where
    absent), and per group its reference (the other group, or the sample's rest) as ``(values,
    present)``: values samples x signatures, and which samples have a reference value (the other
    group: a non-missing mean; the rest: enough cells).
    """
    s_ix = pd.Index(samples)
    wide = np.full((len(samples), len(groups), len(names)), np.nan)
    rows = s_ix.get_indexer(means.index.get_level_values(0))
    cols = pd.Index(groups).get_indexer(means.index.get_level_values(1))
    keep = (rows >= 0) & (cols >= 0)
    wide[rows[keep], cols[keep]] = means[names].to_numpy(dtype=float)[keep]
    ref = {}
    for k, grp in enumerate(groups):
        if len(groups) == 2:
            y = wide[:, 1 - k]
            ref[grp] = (y, ~np.isnan(y))
        else:
            r = rest[grp].reindex(columns=names)
            present = np.broadcast_to(s_ix.isin(r.index)[:, None], (len(samples), len(names)))
            ref[grp] = (r.reindex(s_ix).to_numpy(dtype=float), present)
    return wide, ref


def _comparison(x: np.ndarray, y: np.ndarray, y_present: np.ndarray, paired: bool) -> tuple:
    """``(n, mean_group, mean_reference, effect, statistic, pval)`` of one signature's group values
    ``x`` against reference values ``y`` (per sample, NaN where absent).
    """
    has_x = ~np.isnan(x)
    if paired:
        both = has_x & y_present
        xv, yv = x[both], y[both]
        stat, p = _paired(xv, yv)
        n = int(both.sum())
        if not n:
            return n, np.nan, np.nan, np.nan, stat, p
        return n, float(np.mean(xv)), float(np.mean(yv)), float(np.mean(xv - yv)), stat, p
    xv, yv = x[has_x], y[y_present & ~has_x]  # a sample in the group is not its own reference
    stat, p = _unpaired(xv, yv)
    mx = float(np.mean(xv)) if len(xv) else np.nan
    my = float(np.mean(yv)) if len(yv) else np.nan
    return len(xv) + len(yv), mx, my, mx - my, stat, p


def signature_test(
    adata: AnnData,
    *,
    groupby: str,
    sample_key: str,
    signatures: str | Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    min_cells: int = 10,
    test: str = "auto",
) -> pd.DataFrame:
    """Test signature scores between groups with samples (patients), not cells, as replicates.

    Cells of one patient are not independent replicates: testing cells inflates the number of
    replicates and gives tiny p-values for differences carried by one or two patients
    (pseudoreplication; Squair et al., Nat Commun 12:5692, 2021; Zimmerman et al., Nat Commun
    12:738, 2021). The scores are therefore first averaged per sample and group (the
    pseudobulk of :func:`signature_summary`, combinations with at least ``min_cells`` cells)
    and the tests compare these means across samples:

    * **paired** (groups observed within the same samples, e.g. cell types of each patient):
      each group against the rest — the mean of the sample's other cells (of the ``groups``
      kept), likewise pseudobulked — by a two-sided Wilcoxon signed-rank test over the samples
      having both (exact for small n: with 4 samples the smallest possible p is 0.125, with 6 it
      is 0.031); with more than two groups also one omnibus Friedman test over the samples that
      have every group. With two groups the "rest" is the other group.
    * **unpaired** (each sample in one group, e.g. responders vs non-responders): each group's
      sample means against those of the other samples by a two-sided Mann–Whitney U test, and a
      Kruskal–Wallis omnibus test with more than two groups.

    ``effect`` is the mean over samples of group minus reference (paired: of the per-sample
    differences; unpaired: difference of the two means), in score units. ``padj`` is the
    Benjamini–Hochberg adjustment across signatures within each comparison (row kind).

    Parameters
    ----------
    adata
        Annotated data matrix with signature scores (``obs["sig_<name>"]``).
    groupby
        Column of ``adata.obs`` with the groups.
    sample_key
        Column of ``adata.obs`` with the sample (patient), the unit of replication.
    signatures
        Signature names (``"HYPOXIA"`` or ``"sig_HYPOXIA"``, or other numeric ``obs`` columns);
        ``None``: every ``obs`` column starting with ``"sig_"``.
    groups
        Groups to compare, in this order (cells of other groups are left out); ``None``: all.
    min_cells
        Fewest cells behind a pseudobulk value (a group, or the rest, in a sample).
    test
        ``"paired"``, ``"unpaired"`` or ``"auto"``: unpaired when no sample has cells of two of
        the groups (groups are sample-level conditions), else paired.

    Returns
    -------
    DataFrame, one row per signature and comparison: ``signature``, ``group``, ``reference``
    (``"rest"``, the other group when there are two, or ``""`` for the omnibus row whose
    ``group`` is ``"all"``), ``test`` (``"wilcoxon"``, ``"mannwhitneyu"``, ``"friedman"``,
    ``"kruskal"``), ``n_samples``, ``mean_group``, ``mean_reference`` (means over samples of
    the pseudobulk values), ``effect``, ``statistic``, ``pval``, ``padj`` and, when
    ``uns["signatures"]["summary"]`` names it, the signature's ``category``.
    """
    min_cells = _check_min_cells(min_cells)
    check_one_of("test", test, ["auto", "paired", "unpaired"])
    frame, names, groups, samples = _cell_table(adata, groupby, sample_key, signatures, groups)
    if len(groups) < 2:
        raise InvalidInputError(
            f"signature_test needs at least two groups of obs[{groupby!r}]; got {groups}."
        )
    counts = frame.groupby(["_sample", "_group"]).size()
    means = frame.groupby(["_sample", "_group"])[names].mean()[counts >= min_cells]
    if test == "auto":
        per_sample = pd.Series(means.index.get_level_values(0)).value_counts()
        test = "paired" if (per_sample >= 2).any() else "unpaired"
    paired = test == "paired"
    rows = []
    # "rest" means (all other groups pooled per sample) depend on the group, not the signature
    rest = {grp: _rest_means(frame, names, grp, min_cells) for grp in groups} if len(groups) > 2 else {}
    wide, ref = _pseudobulk_arrays(means, rest, samples, groups, names)
    fields = ["n_samples", "mean_group", "mean_reference", "effect", "statistic", "pval"]
    for j, name in enumerate(names):
        if len(groups) > 2:
            stat, p, n = _omnibus(wide[:, :, j], paired)
            rows.append({"signature": name, "group": "all", "reference": "", "_k": "omnibus",
                         "test": "friedman" if paired else "kruskal",
                         **dict(zip(fields, (n, np.nan, np.nan, np.nan, stat, p)))})  # fmt: skip
        for k, grp in enumerate(groups):
            y, present = ref[grp]
            res = _comparison(wide[:, k, j], y[:, j], present[:, j], paired)
            reference = groups[1 - k] if len(groups) == 2 else "rest"
            rows.append({"signature": name, "group": grp, "reference": reference,
                         "test": "wilcoxon" if paired else "mannwhitneyu", **dict(zip(fields, res)), "_k": grp})  # fmt: skip
    out = pd.DataFrame(rows)
    out["padj"] = np.nan
    for _, idx in out.groupby("_k", sort=False).groups.items():
        p = out.loc[idx, "pval"].to_numpy(dtype=float)
        ok = np.isfinite(p)
        if ok.any():
            adj = np.full(len(p), np.nan)
            adj[ok] = bh_adjust(p[ok])
            out.loc[idx, "padj"] = adj
    out = out.drop(columns="_k")
    out["n_samples"] = out["n_samples"].astype(np.int64)
    category = _categories_of(adata)
    if category is not None:
        out["category"] = out["signature"].map(category)
    out.attrs["n_samples_total"] = len(samples)
    out.attrs["test"] = test
    return out.reset_index(drop=True)


def _categories_of(adata: AnnData) -> pd.Series | None:
    """``signature -> category`` from ``uns["signatures"]["summary"]`` when present."""
    entry = adata.uns.get(UNS.signatures)
    summ = entry.get("summary") if isinstance(entry, dict) else None
    if isinstance(summ, pd.DataFrame) and {"signature", "category"} <= set(summ.columns):
        return summ.drop_duplicates("signature").set_index("signature")["category"].astype(str)
    return None


# --------------------------------------------------------------------------------------------
# tm.get.checkpoint_interactions
# --------------------------------------------------------------------------------------------
def checkpoint_interactions(
    adata: AnnData,
    *,
    key: str = UNS.checkpoint_interactions,
    sample: str | Sequence[str] | None = None,
    max_padj: float | None = None,
) -> pd.DataFrame:
    """The checkpoint receptor–ligand interactions of :func:`tmeatlas.tl.checkpoint_interactions` as a tidy table.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.tl.checkpoint_interactions`.
    key
        Key of ``adata.uns`` the results were written to (its ``key_added``).
    sample
        Sample(s) to keep; ``None``: all.
    max_padj
        Keep rows with Benjamini–Hochberg adjusted p-value at most this; ``None``: all tested rows.

    Returns
    -------
    DataFrame with one row per sample, pair, sender and receiver tested (columns ``sample``,
    ``pair``, ``sender``, ``receiver``, ``ligand``, ``receptor``, ``n_sender``, ``n_receiver``,
    ``n_edges``, ``ligand_fraction``, ``receptor_fraction``, ``ligand_mean``, ``receptor_mean``,
    ``strength``, ``pval``, ``padj``, ``spatial``), in the stored order; ``attrs["mode"]`` says
    whether the spatial graph was used.
    """
    from ..tl._checkpoints import interaction_table

    check_adata(adata)
    df = interaction_table(adata, key)
    if sample is not None:
        want = [sample] if isinstance(sample, str) else [str(s) for s in sample]
        analysed = adata.uns[key].get("samples")
        have = set(df["sample"].astype(str)) | (
            {str(s) for s in np.atleast_1d(analysed)} if analysed is not None else set()
        )
        unknown = [s for s in want if s not in have]
        if unknown:
            raise InvalidParameterError(f"sample {unknown} was not analysed; samples: {sorted(have)[:12]}.")
        df = df[df["sample"].astype(str).isin(want)]
    if max_padj is not None:
        if not 0.0 <= float(max_padj) <= 1.0:
            raise InvalidParameterError(f"max_padj must be in [0, 1] or None, got {max_padj!r}.")
        df = df[df["padj"] <= float(max_padj)]
    df = df.reset_index(drop=True)
    df.attrs["mode"] = str(adata.uns[key].get("mode", ""))
    return df
