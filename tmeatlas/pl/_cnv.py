"""Plots of copy-number results: ``tm.pl.cnv_heatmap``, ``tm.pl.malignant_calls``, ``tm.pl.clone_tree``."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import InvalidParameterError, MissingResultError
from .._keys import OBS, UNS
from .._rng import make_rng, resolve_seed
from .._validation import check_adata, check_obs_key
from ._utils import categorical_palette, finish, new_axes, side_legend

if TYPE_CHECKING:
    from pathlib import Path

    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["clone_tree", "cnv_heatmap", "malignant_calls"]

CALL_COLORS = {"malignant": "#D55E00", "non-malignant": "#0072B2", "uncertain": "#999999"}


def cnv_heatmap(
    adata: AnnData,
    *,
    groupby: str | None = None,
    cnv_key: str = UNS.cnv,
    max_cells: int = 3000,
    vmax: float | None = None,
    cmap: str = "RdBu_r",
    rng: int = 0,
    figsize: tuple[float, float] = (12, 6),
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Cells x genome heat map of inferred copy number, cells grouped, chromosome boundaries drawn.

    Rows are cells sorted by ``groupby`` (a colour bar on the left names the groups); columns are
    the genomic bins of :func:`~tmeatlas.tl.infer_cnv` in genome order, with a line and a label
    at every chromosome. Red is gain, blue loss (diverging map, symmetric around 0). At most
    ``max_cells`` cells are drawn, sampled evenly across groups with seed ``rng``.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`~tmeatlas.tl.infer_cnv`.
    groupby
        Column of ``adata.obs`` to group cells by; default ``cnv_clone`` if present, else
        ``malignant``, else no grouping.
    cnv_key
        The ``key_added`` of :func:`~tmeatlas.tl.infer_cnv`.
    max_cells
        Most cells drawn.
    vmax
        Colour limit (default: 99th percentile of absolute values).
    cmap
        Diverging colour map.
    rng
        Seed of the cell subsample.
    figsize
        Figure size in inches (new figures only).
    ax
        Axes for the heat map alone (no group bar).
    return_fig
        Return the figure.
    show
        Show the figure.
    save
        Path to save to (``.pdf``/``.svg`` keep text as text).
    """
    import matplotlib.pyplot as plt

    check_adata(adata)
    xkey = f"X_{cnv_key}"
    if xkey not in adata.obsm or cnv_key not in adata.uns:
        raise MissingResultError(f"no CNV profiles in obsm[{xkey!r}]: run `tm.tl.infer_cnv(adata)` first.")
    if groupby is None:
        groupby = next((k for k in (OBS.cnv_clone, OBS.malignant) if k in adata.obs), None)
    check_obs_key(adata, groupby, what="groupby")
    if max_cells < 1:
        raise InvalidParameterError(f"max_cells must be >= 1, got {max_cells}.")
    gen = make_rng(resolve_seed(rng))
    labels = adata.obs[groupby].astype(str).to_numpy() if groupby else np.full(adata.n_obs, "all cells")
    order = (
        list(adata.obs[groupby].cat.categories)
        if groupby and hasattr(adata.obs[groupby], "cat")
        else sorted(set(labels))
    )
    order = [str(o) for o in order if (labels == str(o)).any()]
    per = max(1, max_cells // max(1, len(order)))
    rows = []
    for g in order:
        idx = np.flatnonzero(labels == g)
        rows.append(np.sort(gen.choice(idx, per, replace=False)) if len(idx) > per else idx)
    rows = np.concatenate(rows)
    M = np.asarray(adata.obsm[xkey][rows], dtype=float)
    lim = vmax or float(np.quantile(np.abs(M), 0.99)) or 1.0
    if ax is None:
        fig = plt.figure(figsize=figsize, layout="constrained")
        gs = fig.add_gridspec(1, 3, width_ratios=[0.3, 12, 0.25])
        bar_ax, hm_ax, cb_ax = fig.add_subplot(gs[0]), fig.add_subplot(gs[1]), fig.add_subplot(gs[2])
    else:
        fig, hm_ax, bar_ax, cb_ax = ax.figure, ax, None, None
    im = hm_ax.imshow(
        M, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest", rasterized=True
    )
    bins = adata.uns[cnv_key]["bins"]
    chrom = bins["chromosome"].astype(str).to_numpy()
    starts = np.flatnonzero(np.r_[True, chrom[1:] != chrom[:-1]])
    for s in starts[1:]:
        hm_ax.axvline(s - 0.5, color="black", lw=0.5)
    mids = (starts + np.r_[starts[1:], len(chrom)]) / 2
    hm_ax.set_xticks(mids)
    hm_ax.set_xticklabels([c.removeprefix("chr") for c in chrom[starts]], fontsize="x-small")
    hm_ax.set_yticks([])
    hm_ax.set_xlabel("chromosome")
    if bar_ax is not None:
        pal = categorical_palette(order, adata, groupby)
        lab_rows = labels[rows]
        from matplotlib.colors import ListedColormap

        codes = np.array([order.index(v) for v in lab_rows])[:, None]
        bar_ax.imshow(
            codes,
            aspect="auto",
            cmap=ListedColormap([pal[o] for o in order]),
            vmin=-0.5,
            vmax=len(order) - 0.5,
            interpolation="nearest",
        )
        bar_ax.set_xticks([])
        edges = np.flatnonzero(np.r_[True, lab_rows[1:] != lab_rows[:-1]])
        centres = (edges + np.r_[edges[1:], len(lab_rows)]) / 2
        bar_ax.set_yticks(centres)
        bar_ax.set_yticklabels(lab_rows[edges], fontsize="x-small")
        bar_ax.set_ylabel(groupby or "")
        fig.colorbar(im, cax=cb_ax, label="inferred CNV")
    axes = [a for a in (bar_ax, hm_ax, cb_ax) if a is not None]
    return finish(fig, axes, show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


def malignant_calls(
    adata: AnnData,
    *,
    sample_key: str | None = None,
    ncols: int = 4,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """CNV amplitude against CNV correlation per cell, coloured by the malignant call, per sample.

    Malignant cells sit top right (high amplitude, profile agrees with the sample's tumour
    profile); normal cells bottom left; the reference cells are outlined.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`~tmeatlas.tl.call_malignant`.
    sample_key
        Column of ``adata.obs`` for one panel per sample; ``None``: one panel.
    ncols
        Panels per row.
    ax
        Axes to draw into (single panel).
    return_fig
        Return the figure.
    show
        Show the figure.
    save
        Path to save to.
    """
    check_adata(adata)
    for k in (OBS.cnv_score, OBS.cnv_correlation, OBS.malignant):
        if k not in adata.obs:
            raise MissingResultError(f"no obs[{k!r}]: run `tm.tl.call_malignant(adata)` first.")
    check_obs_key(adata, sample_key, what="sample_key")
    samples = (
        adata.obs[sample_key].astype(str).to_numpy() if sample_key else np.full(adata.n_obs, "all cells")
    )
    order = list(pd.unique(samples))
    nc = max(1, min(ncols, len(order)))
    fig, axes = new_axes(ax, ncols=nc, nrows=int(np.ceil(len(order) / nc)), panel_size=(3.5, 3.2))
    calls = adata.obs[OBS.malignant].astype(str).to_numpy()
    ref = (
        adata.obs[OBS.cnv_reference].to_numpy(bool)
        if OBS.cnv_reference in adata.obs
        else np.zeros(adata.n_obs, bool)
    )
    # log10 on a linear axis: a log axis over one or two decades labels its minor ticks, overprinted
    score = adata.obs[OBS.cnv_score].to_numpy(float)
    x = np.full(len(score), np.nan)
    np.log10(score, out=x, where=score > 0)
    y = adata.obs[OBS.cnv_correlation].to_numpy(float)
    for s, a in zip(order, axes):
        m = samples == s
        for c, col in CALL_COLORS.items():
            mm = m & (calls == c)
            a.scatter(x[mm], y[mm], s=6, c=col, label=c, linewidths=0, rasterized=mm.sum() > 5000)
        mr = m & ref
        a.scatter(
            x[mr], y[mr], s=10, facecolors="none", edgecolors="black", linewidths=0.4, label="reference"
        )
        a.set_xlabel("CNV score (log10 mean square)")
        a.set_ylabel("CNV correlation")
        a.set_title(s)
    for a in axes[len(order) :]:
        a.set_visible(False)
    # outside the last panel of the first row, never over the cells; the figure widens for it
    if ax is None:
        fig.set_figwidth(fig.get_figwidth() + 1.4)
    side_legend(axes[min(nc, len(order)) - 1], title=None, markerscale=1.5)
    return finish(
        fig, list(axes[: len(order)]), show=show, save=save, return_fig=return_fig, ax_given=ax is not None
    )


def clone_tree(
    adata: AnnData,
    *,
    sample: str | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """The CNV clone tree of each sample; each split is labelled with the arms that separate its two sides.

    Leaves are the clones of :func:`~tmeatlas.tl.cnv_clones` (marker area proportional to cells).

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`~tmeatlas.tl.cnv_clones`.
    sample
        Draw only this sample's tree (default: all samples, one panel each).
    ax
        Axes to draw into (needs ``sample`` or a single sample).
    return_fig
        Return the figure.
    show
        Show the figure.
    save
        Path to save to.
    """
    check_adata(adata)
    info = adata.uns.get(UNS.cnv_clones)
    if info is None or "tree" not in info:
        raise MissingResultError("no clone tree: run `tm.tl.cnv_clones(adata)` first.")
    tree = info["tree"]
    samples = list(pd.unique(tree["sample"].astype(str))) if len(tree) else []
    if sample is not None:
        if sample not in samples:
            raise InvalidParameterError(f"sample {sample!r} has no clone tree; samples: {samples}.")
        samples = [sample]
    if not samples:
        raise MissingResultError("the clone tree is empty: no sample has malignant cells.")
    nc = min(3, len(samples))
    fig, axes = new_axes(ax, ncols=nc, nrows=int(np.ceil(len(samples) / nc)), panel_size=(4.5, 3.5))
    for s, a in zip(samples, axes):
        t = tree[tree["sample"].astype(str) == s]
        children: dict[str, list[str]] = {}
        for node, parent in zip(t["node"], t["parent"]):
            children.setdefault(str(parent), []).append(str(node))
        info_of = {str(r.node): r for r in t.itertuples()}
        root = children[""][0]
        xpos, leaves = _layout_tree(root, children)
        depth = {n: n.split(":")[1].__len__() - 1 for n in xpos}
        maxd = max(depth.values()) if depth else 0
        for node, x in xpos.items():
            r = info_of[node]
            kids = children.get(node, [])
            for k in kids:
                a.plot([x, xpos[k]], [-depth[node], -depth[k]], color="#555555", lw=1)
            if kids:  # the arms that separate the two children, written once under their parent
                arms = str(info_of[kids[0]].split_arms).replace("+", "").replace("-", "").replace(",", ", ")
                a.text(
                    x,
                    -depth[node] - 0.45,
                    textwrap.fill(arms, 28),
                    fontsize="x-small",
                    ha="center",
                    va="center",
                    color="#D55E00",
                    bbox={"fc": "white", "ec": "none", "pad": 0.5},
                    zorder=4,
                )
            size = 60 + 400 * r.n_cells / max(1, t["n_cells"].max())
            a.scatter([x], [-depth[node]], s=size, c="#0072B2" if r.clone else "#BBBBBB", zorder=3)
            if r.clone:
                a.text(
                    x,
                    -depth[node] - 0.25,
                    f"{r.clone}\n{r.n_cells} cells",
                    ha="center",
                    va="top",
                    fontsize="small",
                )
        a.set_ylim(-maxd - 1, 0.5)
        a.set_xlim(-0.7, max(len(leaves) - 0.3, 0.7))
        a.axis("off")
        a.set_title(s)
    for a in axes[len(samples) :]:
        a.set_visible(False)
    return finish(
        fig, list(axes[: len(samples)]), show=show, save=save, return_fig=return_fig, ax_given=ax is not None
    )


def _layout_tree(root: str, children: dict[str, list[str]]) -> tuple[dict[str, float], list[str]]:
    """X position of every node (leaves at 0, 1, 2, ...; inner nodes above their children's mean)."""
    xpos: dict[str, float] = {}
    leaves: list[str] = []
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        kids = children.get(node, [])
        if not kids:
            xpos[node] = float(len(leaves))
            leaves.append(node)
        elif done:
            xpos[node] = float(np.mean([xpos[k] for k in kids]))
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in reversed(kids))
    return xpos, leaves
