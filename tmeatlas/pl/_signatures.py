"""Plots of signature scores and checkpoint interactions.

``tm.pl.signatures``, ``tm.pl.signature_by_sample`` and ``tm.pl.checkpoint_interactions``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError
from .._keys import UNS
from .._validation import check_adata, check_one_of
from ._utils import categorical_palette, finish, new_axes, side_colorbar, side_legend, size_legend

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["checkpoint_interactions", "signature_by_sample", "signatures"]

#: dot area (points²) of a full dot (fraction 1) in :func:`signatures`
DOT_AREA = 200.0
#: dot area (points²) per unit of -log10 p in :func:`checkpoint_interactions`
P_AREA = 60.0


def _scale(m: np.ndarray, how: str | None) -> np.ndarray:
    if how == "var":
        lo, hi = np.nanmin(m, axis=0, keepdims=True), np.nanmax(m, axis=0, keepdims=True)
    elif how == "group":
        lo, hi = np.nanmin(m, axis=1, keepdims=True), np.nanmax(m, axis=1, keepdims=True)
    else:
        return m
    return np.divide(m - lo, hi - lo, out=np.zeros_like(m), where=hi > lo)


# --------------------------------------------------------------------------------------------
# tm.pl.signatures
# --------------------------------------------------------------------------------------------
@doc_params("plot")
def signatures(
    adata: AnnData,
    *,
    groupby: str,
    signatures: str | Sequence[str] | None = None,
    kind: str = "dotplot",
    standard_scale: str | None = "var",
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Mean signature score per group, as a dot plot or a heatmap.

    Rows are the groups of ``obs[groupby]`` (category order), columns the signatures. The colour
    (``viridis``) is the mean per-cell score of the group; with ``standard_scale="var"`` each
    signature's group means are rescaled to [0, 1], ``(m - min) / (max - min)`` (scores of
    different signatures are on different scales), with ``"group"`` each group's across
    signatures. In the dot plot the dot's area is the fraction of the group's cells whose score
    is above the signature's median over all cells: 0.5 when the group is like the data as a
    whole, near 1 when the signature is high in most of its cells, near 0 when low. (Scores
    are centred differently by different scoring methods, so "score > 0" would not compare
    across signatures; the median split does.) These are cell-level summaries for display:
    test differences with :func:`tmeatlas.get.signature_test` (patients as replicates).

    Parameters
    ----------
    adata
        Annotated data matrix with signature scores (``obs["sig_<name>"]``).
    groupby
        Column of ``adata.obs`` with the groups (rows).
    signatures
        Signature names (``"HYPOXIA"`` or ``"sig_HYPOXIA"``, or other numeric ``obs`` columns);
        ``None``: every ``obs`` column starting with ``"sig_"``.
    kind
        ``"dotplot"`` or ``"heatmap"``.
    standard_scale
        ``"var"``: scale each signature to [0, 1]; ``"group"``: scale each group; ``None``: raw means.
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else ``[axes, colour-bar axes]``.
    """
    from ..get._signatures import _labels, signature_scores

    check_adata(adata)
    check_one_of("kind", kind, ["dotplot", "heatmap"])
    check_one_of("standard_scale", standard_scale, ["var", "group", None])
    labels, groups = _labels(adata, groupby, "groupby")
    if not groups:
        raise InvalidInputError(f"obs[{groupby!r}] has no non-missing values.")
    scores = signature_scores(adata, signatures)
    names = list(scores.columns)
    vals = scores.to_numpy(dtype=np.float64)
    with warnings.catch_warnings():  # all-NaN signatures (not scored) stay NaN, drawn empty
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(vals, axis=0)
    codes = pd.Categorical(labels, categories=groups).codes
    mean = np.full((len(groups), len(names)), np.nan)
    frac = np.zeros_like(mean)
    for k in range(len(groups)):
        v = vals[codes == k]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean[k] = np.nanmean(v, axis=0) if len(v) else np.nan
            fin = np.isfinite(v)
            frac[k] = ((v > med) & fin).sum(axis=0) / np.maximum(fin.sum(axis=0), 1)
    color = _scale(mean, standard_scale)
    n_g, n_s = len(groups), len(names)
    fig, axes = new_axes(ax, panel_size=(max(3.5, 0.32 * n_s + 2.8), max(2.8, 0.32 * n_g + 1.6)))
    a = axes[0]
    vmin, vmax = (0.0, 1.0) if standard_scale else (None, None)
    if kind == "heatmap":
        im = a.imshow(
            np.ma.masked_invalid(color),
            cmap="viridis",
            vmin=vmin,
            vmax=vmax,
            aspect="auto",
            interpolation="nearest",
        )
    else:
        xx, yy = np.meshgrid(np.arange(n_s), np.arange(n_g))
        im = a.scatter(
            xx.ravel(),
            yy.ravel(),
            s=frac.ravel() * DOT_AREA,
            c=color.ravel(),
            cmap="viridis",
            vmin=vmin,
            vmax=vmax,
            linewidths=0,
            zorder=3,
        )
        a.set_xlim(-0.6, n_s - 0.4)
        a.set_ylim(n_g - 0.4, -0.6)
        a.grid(color="#EEEEEE", linewidth=0.5, zorder=0)
        a.set_axisbelow(True)
    a.set_xticks(np.arange(n_s), names, rotation=90, fontsize="small")
    a.set_yticks(np.arange(n_g), groups, fontsize="small")
    a.set_ylabel(groupby)
    scale = {"var": "\n(scaled per signature)", "group": "\n(scaled per group)", None: ""}[standard_scale]
    cb = side_colorbar(fig, im, a, label=f"mean score{scale}", n_rows=n_g)
    if kind == "dotplot":
        fr = (0.25, 0.5, 0.75, 1.0)
        size_legend(
            cb, [np.sqrt(f * DOT_AREA) for f in fr], [f"{f:.0%}" for f in fr], title="cells above\nmedian"
        )
    return finish(fig, [a, cb.ax], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


# --------------------------------------------------------------------------------------------
# tm.pl.signature_by_sample
# --------------------------------------------------------------------------------------------
def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return "p = n/a"
    return f"p = {p:.2g}" if p >= 1e-3 else f"p = {p:.1e}"


@doc_params("plot")
def signature_by_sample(
    adata: AnnData,
    *,
    signature: str,
    groupby: str,
    sample_key: str,
    groups: Sequence[str] | None = None,
    min_cells: int = 10,
    test: str = "auto",
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """One signature's pseudobulk score per sample and group, with the patient-level test.

    Each point is the mean score of a group's cells in one sample (the pseudobulk of
    :func:`tmeatlas.get.signature_summary`, combinations with at least ``min_cells`` cells),
    coloured by sample; grey lines join a sample's groups, so that a shift present in every
    patient is told apart from one patient's outlier. A box per group (median and quartiles
    of the sample means, whiskers to 1.5 IQR) sits behind the points. The title gives the
    test of :func:`tmeatlas.get.signature_test` with samples as replicates: for two groups its
    Wilcoxon signed-rank (paired) or Mann–Whitney (unpaired) p-value, for more groups the
    Friedman (paired) or Kruskal–Wallis (unpaired) omnibus p-value.

    Parameters
    ----------
    adata
        Annotated data matrix with signature scores (``obs["sig_<name>"]``).
    signature
        The signature (``"HYPOXIA"`` or ``"sig_HYPOXIA"``, or another numeric ``obs`` column).
    groupby
        Column of ``adata.obs`` with the groups (x axis).
    sample_key
        Column of ``adata.obs`` with the sample (patient) of each cell.
    groups
        Groups to show and test, in this order; ``None``: all.
    min_cells
        Fewest cells behind a pseudobulk point.
    test
        ``"auto"``, ``"paired"`` or ``"unpaired"``, as in :func:`tmeatlas.get.signature_test`.
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else ``[axes]``.
    """
    from ..get._signatures import signature_summary, signature_test

    check_adata(adata)
    if not isinstance(signature, str):
        raise InvalidParameterError(f"signature must be one signature name, got {signature!r}.")
    pb = signature_summary(
        adata,
        groupby=groupby,
        sample_key=sample_key,
        signatures=[signature],
        groups=groups,
        min_cells=min_cells,
    )
    if pb.empty:
        raise InvalidInputError(
            f"no (sample, group) has at least min_cells={min_cells} cells; lower `min_cells`."
        )
    groups_shown = [str(g) for g in pb["group"].cat.categories]
    samples = [str(s) for s in pb["sample"].cat.categories]
    res = (
        signature_test(
            adata,
            groupby=groupby,
            sample_key=sample_key,
            signatures=[signature],
            groups=groups_shown,
            min_cells=min_cells,
            test=test,
        )
        if len(groups_shown) >= 2
        else None
    )
    wide = pb.pivot_table(index="sample", columns="group", values="mean", observed=False).reindex(
        index=samples, columns=groups_shown
    )
    pal = categorical_palette(samples, adata, sample_key)
    fig, axes = new_axes(ax, panel_size=(max(3.0, 0.9 * len(groups_shown) + 2.2), 3.6))
    a = axes[0]
    x = np.arange(len(groups_shown))
    box = [wide[g].dropna().to_numpy() for g in groups_shown]
    keep = [i for i, b in enumerate(box) if len(b)]
    a.boxplot(
        [box[i] for i in keep],
        positions=x[keep],
        widths=0.5,
        showfliers=False,
        patch_artist=True,
        boxprops={"facecolor": "#EEEEEE", "edgecolor": "#888888"},
        medianprops={"color": "#444444"},
        whiskerprops={"color": "#888888"},
        capprops={"color": "#888888"},
        zorder=1,
    )
    for s in samples:
        y = wide.loc[s].to_numpy(dtype=float)
        ok = np.isfinite(y)
        if ok.sum() >= 2:
            a.plot(x[ok], y[ok], color="#999999", linewidth=0.8, zorder=2)
        a.scatter(x[ok], y[ok], s=28, color=pal[s], edgecolors="white", linewidths=0.5, zorder=3, label=s)
    a.set_xticks(
        x,
        groups_shown,
        rotation=45 if max(map(len, groups_shown)) > 6 else 0,
        ha="right" if max(map(len, groups_shown)) > 6 else "center",
    )
    a.set_xlim(-0.6, len(groups_shown) - 0.4)
    a.set_xlabel(groupby)
    name = pb["signature"].iloc[0]
    a.set_ylabel(f"{name}\n(mean score per sample)")
    title = name
    if res is not None and len(res):
        row = res.iloc[0]  # two groups: the first group against the other; more: the omnibus row
        title += f"\n{row['test']} over {int(row['n_samples'])} samples, {_format_p(float(row['pval']))}"
    a.set_title(title, fontsize="medium")
    a.spines[["top", "right"]].set_visible(False)
    if len(samples) <= 20:
        side_legend(a, title=sample_key)
    return finish(fig, [a], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


# --------------------------------------------------------------------------------------------
# tm.pl.checkpoint_interactions
# --------------------------------------------------------------------------------------------
@doc_params("plot")
def checkpoint_interactions(
    adata: AnnData,
    *,
    key: str = UNS.checkpoint_interactions,
    sample: str | Sequence[str] | None = None,
    pairs: str | Sequence[str] | None = None,
    max_padj: float | None = 0.05,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Dot plot of the checkpoint interactions of :func:`tmeatlas.tl.checkpoint_interactions`.

    Rows are sender → receiver group pairs (prefixed with the sample when several samples
    are shown), columns receptor–ligand pairs (in the order of the pair table). The dot's
    area is ``-log10`` of the Benjamini–Hochberg adjusted permutation p-value (``padj``; at
    most ``log10(n_perms + 1)``), its colour (``viridis``) the interaction strength, the mean
    of the ligand and receptor means. Only rows with ``padj <= max_padj`` are drawn; when none
    passes, the axes say so.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.tl.checkpoint_interactions`.
    key
        Key of ``adata.uns`` the results were written to.
    sample
        Sample(s) to show; ``None``: all.
    pairs
        Receptor–ligand pair names to show (e.g. ``["PD-1/PD-L1"]``); ``None``: all.
    max_padj
        Largest adjusted p-value drawn; ``None``: every tested row.
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else ``[axes]`` (plus the
    colour-bar axes when dots were drawn).
    """
    from ..get._signatures import checkpoint_interactions as get_table

    check_adata(adata)
    df = get_table(adata, key=key, sample=sample, max_padj=max_padj)
    order_pairs = list(pd.unique(get_table(adata, key=key)["pair"]))
    entry = adata.uns[key]
    if isinstance(entry.get("pairs"), pd.DataFrame):
        order_pairs = [str(p) for p in entry["pairs"]["pair"]] or order_pairs
    if pairs is not None:
        want = [pairs] if isinstance(pairs, str) else [str(p) for p in pairs]
        unknown = [p for p in want if p not in order_pairs]
        if unknown:
            raise InvalidParameterError(f"pairs {unknown} are not in the results; pairs: {order_pairs[:12]}.")
        df = df[df["pair"].isin(want)]
        order_pairs = want
    n_perms = int(np.asarray(entry.get("params", {}).get("n_perms", 1000)))
    multi = df["sample"].nunique() > 1
    df = df.assign(
        row=(df["sample"].astype(str) + " | " if multi else "")
        + df["sender"].astype(str)
        + " → "
        + df["receiver"].astype(str)
    )
    rows = list(pd.unique(df["row"]))
    cols = [p for p in order_pairs if p in set(df["pair"])]
    fig, axes = new_axes(ax, panel_size=(max(3.8, 0.42 * len(cols) + 3.2), max(2.6, 0.28 * len(rows) + 1.6)))
    a = axes[0]
    if df.empty:
        what = "tested" if max_padj is None else f"with padj ≤ {max_padj:g}"
        a.text(0.5, 0.5, f"no checkpoint interaction {what}", ha="center", va="center", transform=a.transAxes)
        a.set_xticks([])
        a.set_yticks([])
        a.set_title("checkpoint interactions")
        return finish(fig, [a], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)
    xi = df["pair"].map({p: i for i, p in enumerate(cols)}).to_numpy()
    yi = df["row"].map({r: i for i, r in enumerate(rows)}).to_numpy()
    nlp = -np.log10(np.clip(df["padj"].to_numpy(dtype=float), 1e-300, 1.0))
    sc = a.scatter(
        xi,
        yi,
        s=np.maximum(nlp, 0.05) * P_AREA,
        c=df["strength"].to_numpy(dtype=float),
        cmap="viridis",
        linewidths=0,
        zorder=3,
    )
    a.set_xticks(np.arange(len(cols)), cols, rotation=90, fontsize="small")
    a.set_yticks(np.arange(len(rows)), rows, fontsize="small")
    a.set_xlim(-0.6, len(cols) - 0.4)
    a.set_ylim(len(rows) - 0.4, -0.6)
    a.grid(color="#EEEEEE", linewidth=0.5, zorder=0)
    a.set_axisbelow(True)
    mode = str(entry.get("mode", ""))
    title = "checkpoint interactions" + (" (spatial neighbours)" if mode == "spatial" else "")
    # over the whole figure when it is ours: over the axes alone it is wider than a few columns and
    # reaches the colour bar's title
    (a.set_title if ax is not None else fig.suptitle)(title, fontsize="medium")
    cb = side_colorbar(fig, sc, a, label="strength\n(mean of ligand and\nreceptor means)", n_rows=len(rows))
    top = np.log10(n_perms + 1)
    ticks = [v for v in (1.0, 2.0, 3.0, 4.0) if v <= top + 1e-9] or [round(top, 1)]
    size_legend(cb, [np.sqrt(v * P_AREA) for v in ticks], [f"{10**-v:g}" for v in ticks], title="padj",
                labelspacing=1.2)  # fmt: skip
    return finish(fig, [a, cb.ax], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)
