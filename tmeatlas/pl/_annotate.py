"""Plots of the cell-type annotation: ``tm.pl.compartments``, ``tm.pl.marker_dotplot``, ``tm.pl.composition``."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError
from .._keys import OBS, OBSM
from .._validation import check_adata, check_int, check_obs_key, check_one_of, get_matrix, looks_like_counts
from ._utils import (
    categorical_palette,
    compartment_palette,
    finish,
    major_palette,
    new_axes,
    side_colorbar,
    side_legend,
    size_legend,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["compartments", "composition", "marker_dotplot"]

#: the obs columns written by ``tm.tl.annotate``
_ANNOTATE_KEYS = (OBS.compartment, OBS.cell_type_major, OBS.cell_type, OBS.cell_type_confidence)
#: colour of cells without a value
_NA_COLOR = "#E0E0E0"
_MISSING = "\x00missing"
#: dot area (points²) in :func:`marker_dotplot` of a gene that every cell of the group expresses
DOT_AREA = 200.0
#: embeddings tried, in order, when ``basis=None``
_BASES = ("X_umap", OBSM.spatial, "X_pca")


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------
def _check_key(adata: AnnData, key: str, what: str) -> None:
    """Raise unless ``key`` is an obs column; name ``tm.tl.annotate`` for its own columns."""
    if not isinstance(key, str):
        raise InvalidParameterError(f"{what} must be the name of a column of adata.obs, got {key!r}.")
    if key in adata.obs.columns:
        return
    if key in _ANNOTATE_KEYS:
        raise MissingResultError(f"no cell-type labels in obs[{key!r}]: run `tm.tl.annotate(adata)` first.")
    check_obs_key(adata, key, what=what)


def _categories(adata: AnnData, key: str) -> list[str] | None:
    """All categories of ``obs[key]`` as strings (scanpy's order), or ``None`` for a numeric column."""
    col = adata.obs[key]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [str(c) for c in col.cat.categories]
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        return sorted({str(v) for v in col.dropna()})
    return None


def _colors(adata: AnnData, key: str, cats: list[str]) -> dict[str, str]:
    """Colour of each category of ``obs[key]``; stores the palette scanpy-style when none is stored.

    ``compartment`` and ``cell_type_major`` get the fixed palettes of ``tm.pl``; other columns the
    colours in ``adata.uns[f"{key}_colors"]`` when there are enough of them, else
    :data:`~tmeatlas.pl.CB_PALETTE`, which is then written to ``adata.uns[f"{key}_colors"]``
    (one colour per category, in category order) so later plots and scanpy use the same colours.
    """
    if key == OBS.compartment:
        fixed = compartment_palette()
        pal = {c: fixed.get(c, "#777777") for c in cats}
    elif key == OBS.cell_type_major:
        fixed = major_palette()
        pal = {c: fixed[c] for c in cats}
    else:
        pal = categorical_palette(cats, adata, key)
    stored = adata.uns.get(f"{key}_colors")
    if stored is None or len(stored) < len(cats):
        adata.uns[f"{key}_colors"] = [pal[c] for c in cats]
    return pal


def _present(adata: AnnData, key: str, cats: list[str]) -> list[str]:
    """The categories of ``obs[key]`` that have cells, in category order."""
    have = set(adata.obs[key].dropna().astype(str))
    return [c for c in cats if c in have]


def _legend_handles(pal: dict[str, str], cats: Sequence[str]):
    from matplotlib.lines import Line2D

    return [Line2D([], [], marker="o", linestyle="", markersize=6, color=pal[c], label=c) for c in cats]


def _basis(adata: AnnData, basis: str | None) -> str:
    if basis is None:
        for b in _BASES:
            if b in adata.obsm:
                return b
        raise MissingResultError(
            "no embedding to draw the cells on: none of obsm['X_umap'], obsm['spatial'], obsm['X_pca'] exists. "
            "Run `sc.pp.pca(adata)`, `sc.pp.neighbors(adata)` and `sc.tl.umap(adata)` first, or pass `basis=` "
            "naming an embedding in adata.obsm."
        )
    for b in (basis, f"X_{basis}"):
        if b in adata.obsm:
            return b
    raise MissingResultError(
        f"no embedding obsm[{basis!r}]; available: {sorted(adata.obsm) or 'none'}. "
        "Run `sc.tl.umap(adata)` (or `sc.pp.pca`) first, or pass another `basis=`."
    )


def _basis_label(basis: str) -> str:
    return {"X_umap": "UMAP", "X_pca": "PC", "X_tsne": "tSNE", OBSM.spatial: "spatial "}.get(
        basis, basis.removeprefix("X_")
    )


# --------------------------------------------------------------------------------------------
# tm.pl.compartments
# --------------------------------------------------------------------------------------------
def compartments(
    adata: AnnData,
    *,
    color: str | Sequence[str] = (OBS.compartment, OBS.cell_type_major),
    basis: str | None = None,
    sample_key: str | None = None,
    size: float | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Cells on an embedding coloured by their compartment and major cell type (one panel per key).

    Shows the labels of :func:`~tmeatlas.tl.annotate` (or any other ``obs`` column) on a 2-D
    embedding: ``obsm["X_umap"]`` when present, else ``obsm["spatial"]`` (tissue coordinates,
    drawn with equal aspect and y pointing down), else ``obsm["X_pca"]``. Categorical columns use
    fixed colour-blind-safe colours: ``compartment`` and ``cell_type_major`` the palettes of
    ``tm.pl`` (identical in every plot and dataset), other columns the colours stored
    scanpy-style in ``adata.uns[f"{key}_colors"]``, else :data:`~tmeatlas.pl.CB_PALETTE`, which
    is then stored there for later plots and scanpy. Rare categories are drawn on top of common
    ones, so that small populations stay visible. Numeric columns (e.g.
    ``cell_type_confidence``) use the perceptually uniform ``viridis`` map with a colour bar.
    Points are rasterised, text and axes stay vector in PDF/SVG output.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`~tmeatlas.tl.annotate` and with an embedding.
    color
        Column(s) of ``adata.obs`` to colour by, one panel each.
    basis
        Key of the embedding in ``adata.obsm`` (``"umap"`` means ``"X_umap"``); default: the
        first of ``X_umap``, ``spatial``, ``X_pca`` present.
    sample_key
        Column of ``adata.obs`` with the sample: one row of panels per sample (needed for
        ``spatial`` coordinates of several sections); ``None``: all cells in one row.
    size
        Marker area in points²; default ``120000 / n_cells`` clipped to [0.5, 30] per panel.
    ax
        Axes to draw into (only with a single panel: one ``color`` key and one sample).
    return_fig
        Return the figure.
    show
        Show the figure (default: when not returning it and not drawing into ``ax``).
    save
        Path to save the figure to; the suffix picks the format (``.pdf``/``.svg`` keep text as text).

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else the list of axes (one per
    panel, sample-major). May add ``adata.uns[f"{key}_colors"]`` for categorical keys.
    """
    from matplotlib.colors import to_rgba_array

    check_adata(adata)
    keys = [color] if isinstance(color, str) else list(color)
    if not keys:
        raise InvalidParameterError("color must name at least one column of adata.obs.")
    for k in keys:
        _check_key(adata, k, "color")
    b = _basis(adata, basis)
    coords = np.asarray(adata.obsm[b], dtype=float)
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise InvalidInputError(f"obsm[{b!r}] needs at least 2 columns to draw, got shape {coords.shape}.")
    coords = coords[:, :2]
    if sample_key is None:
        samples: list[str | None] = [None]
        sample_of = np.zeros(adata.n_obs, dtype=object)
    else:
        _check_key(adata, sample_key, "sample_key")
        sample_of = adata.obs[sample_key].astype(str).to_numpy()
        cats = _categories(adata, sample_key) or sorted(set(sample_of))
        samples = _present(adata, sample_key, cats)
    if size is not None and not float(size) > 0:
        raise InvalidParameterError(f"size must be > 0, got {size}.")
    nk = len(keys)
    fig, axes = new_axes(ax, ncols=nk, nrows=len(samples), panel_size=(4.2, 3.8))
    name = _basis_label(b)
    for j, key in enumerate(keys):
        cats = _categories(adata, key)
        col = adata.obs[key]
        na = col.isna().to_numpy()
        if cats is not None:
            pal = _colors(adata, key, cats)
            labs = col.astype(str).to_numpy(dtype=object)
            labs[na] = _MISSING
            codes = pd.Categorical(labs, categories=[*cats, _MISSING]).codes
            # drawing order: missing values at the bottom, then common before rare categories
            rank = -np.bincount(codes, minlength=len(cats) + 1).astype(float)
            rank[-1] = -np.inf
            order = np.argsort(rank[codes], kind="stable")
            colors = to_rgba_array([pal[c] for c in cats] + [_NA_COLOR])[codes]
        else:
            vals = col.to_numpy(dtype=float)
            fin = np.isfinite(vals)
            vmin, vmax = (float(vals[fin].min()), float(vals[fin].max())) if fin.any() else (0.0, 1.0)
            order = np.argsort(fin, kind="stable")  # missing values first (below)
        sc = None
        for i, s in enumerate(samples):
            a = axes[i * nk + j]
            m = np.ones(adata.n_obs, dtype=bool) if s is None else sample_of == s
            idx = order[m[order]]
            ms = size if size is not None else float(np.clip(120000 / max(len(idx), 1), 0.5, 30))
            x, y = coords[idx, 0], coords[idx, 1]
            if cats is not None:
                a.scatter(x, y, s=ms, c=colors[idx], linewidths=0, rasterized=True)
            else:
                f = fin[idx]
                a.scatter(x[~f], y[~f], s=ms, c=_NA_COLOR, linewidths=0, rasterized=True)
                sc = a.scatter(
                    x[f],
                    y[f],
                    s=ms,
                    c=vals[idx][f],
                    cmap="viridis",
                    vmin=vmin,
                    vmax=vmax,
                    linewidths=0,
                    rasterized=True,
                )
            if b == OBSM.spatial:
                a.set_aspect("equal")
                a.invert_yaxis()
            a.set_xticks([])
            a.set_yticks([])
            a.set_xlabel(f"{name}1")
            a.set_ylabel(f"{name}2")
            a.set_title(key if s is None else f"{s}: {key}")
        top = axes[j]
        if cats is not None:
            shown = _present(adata, key, cats) + (["missing"] if na.any() else [])
            handles = _legend_handles({**pal, "missing": _NA_COLOR}, shown)
            side_legend(top, title=key, n=len(shown), handles=handles)
        elif sc is not None:
            fig.colorbar(sc, ax=[axes[i * nk + j] for i in range(len(samples))], shrink=0.6, label=key)
    return finish(fig, list(axes), show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


# --------------------------------------------------------------------------------------------
# tm.pl.marker_dotplot
# --------------------------------------------------------------------------------------------
def _gene_lookup(var_names: pd.Index):
    """Column of a gene: exact name first, else case-insensitive (first occurrence)."""
    names = var_names.astype(str)
    exact = pd.Series(np.arange(len(names)), index=names)
    exact = exact[~exact.index.duplicated()]
    upper = pd.Series(np.arange(len(names)), index=names.str.upper())
    upper = upper[~upper.index.duplicated()]

    def find(g: str) -> int | None:
        if g in exact.index:
            return int(exact[g])
        gu = str(g).upper()
        return int(upper[gu]) if gu in upper.index else None

    return find


def _marker_blocks(adata: AnnData, markers, groups: list[str], n_markers: int, groupby: str):
    """``[(label or None, [columns])]``: the genes to draw, in blocks with the type they mark."""
    find = _gene_lookup(adata.var_names)
    if markers is None:
        from ..datasets import markers as library

        lib = library()
        pos = lib[lib["direction"] == "+"]
        prefer = "major" if groupby == OBS.cell_type_major else "fine"
        blocks, used, matched = [], set(), 0
        for g in groups:
            rows = pos[pos["cell_type"] == g]
            if rows.empty:
                rows = pos[pos["cell_type_major"] == g]
            if rows.empty:
                continue
            matched += 1
            rows = rows.sort_values("level", key=lambda s: s != prefer, kind="stable")
            cols = []
            for gene in pd.unique(rows["gene"]):
                j = find(gene)
                if j is not None and j not in used:
                    cols.append(j)
                    used.add(j)
                if len(cols) == n_markers:
                    break
            if cols:
                blocks.append((g, cols))
        if not matched:
            raise InvalidInputError(
                f"no category of obs[{groupby!r}] is a cell type of the marker library "
                f"(categories: {groups[:8]}); run `tm.tl.annotate(adata)` and use groupby='cell_type', "
                "or pass `markers=` as a dict {group: [genes]} or a list of genes."
            )
        if not blocks:
            raise InvalidInputError(
                f"none of the library's marker genes of the groups in obs[{groupby!r}] is in adata.var_names; "
                "check that var_names are gene symbols, or pass `markers=`."
            )
        return blocks
    if isinstance(markers, str):
        markers = [markers]
    if isinstance(markers, dict):
        items = [(str(k), [v] if isinstance(v, str) else list(v)) for k, v in markers.items()]
    elif isinstance(markers, list | tuple | pd.Index | np.ndarray):
        items = [(None, [str(g) for g in markers])]
    else:
        raise InvalidParameterError(
            f"markers must be None, a dict {{group: [genes]}} or a list of genes, got {type(markers).__name__}."
        )
    blocks, missing = [], []
    for label, genes in items:
        cols = []
        for gene in genes:
            j = find(gene)
            if j is None:
                missing.append(gene)
            else:
                cols.append(j)
        if cols:
            blocks.append((label, cols))
    if not blocks:
        raise InvalidInputError(
            f"none of the marker genes is in adata.var_names (e.g. {missing[:5]}); check the gene names."
        )
    if missing:
        warnings.warn(
            f"{len(missing)} marker genes not measured, left out: {missing[:10]}", UserWarning, stacklevel=3
        )
    return blocks


def _expression(X, cols: np.ndarray) -> tuple[sparse.csr_matrix, bool]:
    """Expression of columns ``cols`` as a sparse matrix, ``log1p`` of counts per 10,000 for counts.

    Only the selected columns are copied; library sizes are sparse row sums of the whole matrix.
    """
    counts = looks_like_counts(X)
    if sparse.issparse(X):
        sub = sparse.csr_matrix(X[:, cols], dtype=np.float64)
    else:
        sub = sparse.csr_matrix(np.asarray(X[:, cols], dtype=np.float64))
    if sub.nnz and not np.isfinite(sub.data).all():
        raise InvalidInputError("the expression of the marker genes contains NaN or infinite values.")
    if sub.nnz and sub.data.min() < 0:
        raise InvalidInputError(
            "the expression matrix has negative values (scaled data?); a dot plot needs counts or "
            "log-normalised expression: pass `layer=` naming such a layer."
        )
    if counts:
        lib = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
        scale = np.divide(1e4, lib, out=np.zeros_like(lib), where=lib > 0)
        sub = sparse.csr_matrix(sparse.diags(scale) @ sub)
        sub.data = np.log1p(sub.data)
    sub.eliminate_zeros()
    return sub, counts


@doc_params("plot")
def marker_dotplot(
    adata: AnnData,
    *,
    groupby: str = OBS.cell_type,
    markers: dict[str, Sequence[str]] | Sequence[str] | None = None,
    n_markers: int = 3,
    layer: str | None = None,
    standard_scale: str | None = "var",
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Dot plot of marker genes per cell type: dot area = fraction expressing, colour = mean expression.

    Rows are the groups of ``obs[groupby]`` (category order), columns marker genes, in blocks
    bracketed and labelled with the cell type they mark. For group ``k`` and gene ``g`` the
    dot's area is proportional to the fraction of the group's cells with ``x_gc > 0`` (a
    fraction of 1 has area :data:`DOT_AREA` points²), and its colour is the mean expression
    ``mean_c x_gc``, where ``x`` is ``log1p`` of counts per 10,000 when the matrix holds counts
    and the matrix as is otherwise (log-normalised data). With ``standard_scale="var"`` each
    gene's means are rescaled to [0, 1] across groups, ``(m - min) / (max - min)`` (``"group"``:
    each group's across genes). Means and fractions are a sparse group-indicator product
    ``G X[:, genes]``; only the selected gene columns are read.

    By default (``markers=None``) each group that is a cell type of the marker library
    (:func:`tmeatlas.datasets.markers`; matched on the library's ``cell_type``, else its
    ``cell_type_major``) gets its first ``n_markers`` positive markers that are measured in the
    data (gene names matched exactly, else case-insensitively), in the order of the groups; a
    gene already shown for an earlier group is skipped in favour of the next marker.

    Parameters
    ----------
    adata
        Annotated data matrix, usually after :func:`~tmeatlas.tl.annotate`.
    groupby
        Column of ``adata.obs`` with the groups (rows).
    markers
        ``None`` (the library's markers of each group), a dict ``{label: [genes]}`` (one
        bracketed block per label) or a list of genes (no brackets).
    n_markers
        Markers per group when ``markers=None``.
    layer
        Layer to use instead of ``adata.X`` (counts or log-normalised expression).
    standard_scale
        ``"var"``: scale each gene to [0, 1]; ``"group"``: scale each group; ``None``: the means as is.
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else ``[axes, colour-bar axes]``.
    """
    check_adata(adata)
    _check_key(adata, groupby, "groupby")
    check_one_of("standard_scale", standard_scale, ["var", "group", None])
    check_int("n_markers", n_markers, 1)
    X = get_matrix(adata, layer)
    cats = _categories(adata, groupby)
    col = adata.obs[groupby]
    labels = np.where(col.isna().to_numpy(), None, col.astype(str).to_numpy())
    if cats is None:  # numeric groups: in numeric order
        cats = [str(v) for v in np.unique(col.dropna().to_numpy())]
    groups = _present(adata, groupby, cats)
    if not groups:
        raise InvalidInputError(f"obs[{groupby!r}] has no non-missing values.")
    blocks = _marker_blocks(adata, markers, groups, int(n_markers), groupby)
    cols = np.concatenate([np.asarray(c, dtype=np.int64) for _, c in blocks])
    uniq, inv = np.unique(cols, return_inverse=True)
    E, counts = _expression(X, uniq)

    mean, frac = _dot_stats(E, labels, groups, inv, standard_scale)
    genes = adata.var_names.astype(str).to_numpy()[cols]

    n_g, n_c = len(groups), len(cols)
    label_len = max((len(str(lab)) for lab, _ in blocks if lab is not None), default=0)
    fig, axes = new_axes(
        ax, panel_size=(max(3.5, 0.32 * n_c + 2.6), max(3.0, 0.32 * n_g + 1.2 + 0.07 * label_len))
    )
    a = axes[0]
    xx, yy = np.meshgrid(np.arange(n_c), np.arange(n_g))
    sc = a.scatter(
        xx.ravel(),
        yy.ravel(),
        s=frac.ravel() * DOT_AREA,
        c=mean.ravel(),
        cmap="viridis",
        vmin=0.0 if standard_scale else None,
        vmax=1.0 if standard_scale else None,
        linewidths=0,
        zorder=3,
    )
    a.set_xticks(np.arange(n_c), genes, rotation=90, fontsize="small")
    a.set_yticks(np.arange(n_g), groups, fontsize="small")
    a.set_xlim(-0.6, n_c - 0.4)
    a.set_ylim(n_g - 0.4, -0.6)
    a.grid(color="#EEEEEE", linewidth=0.5, zorder=0)
    a.set_axisbelow(True)
    a.set_ylabel(groupby)
    _block_brackets(a, blocks)
    what = "log1p(CP10k)" if counts else "expression"
    scale = {"var": "\n(scaled per gene)", "group": "\n(scaled per group)", None: ""}[standard_scale]
    cb = side_colorbar(fig, sc, a, label=f"mean {what}{scale}", n_rows=n_g)
    _dot_legend(cb)
    return finish(fig, [a, cb.ax], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


def _dot_stats(E, labels, groups, inv, standard_scale):
    """``(mean, frac)``: each group's mean expression and fraction of expressing cells per plotted gene."""
    codes = pd.Categorical(labels, categories=groups).codes
    ok = codes >= 0
    G = sparse.csr_matrix(
        (np.ones(int(ok.sum())), (codes[ok], np.flatnonzero(ok))), shape=(len(groups), len(labels))
    )
    n = np.asarray(G.sum(axis=1)).ravel()
    mean = np.asarray((G @ E).todense()) / n[:, None]
    nz = E.copy()
    nz.data = np.ones_like(nz.data)
    frac = np.asarray((G @ nz).todense()) / n[:, None]
    mean, frac = mean[:, inv], frac[:, inv]
    if standard_scale == "var":
        lo, hi = mean.min(axis=0, keepdims=True), mean.max(axis=0, keepdims=True)
        mean = np.divide(mean - lo, hi - lo, out=np.zeros_like(mean), where=hi > lo)
    elif standard_scale == "group":
        lo, hi = mean.min(axis=1, keepdims=True), mean.max(axis=1, keepdims=True)
        mean = np.divide(mean - lo, hi - lo, out=np.zeros_like(mean), where=hi > lo)
    return mean, frac


def _block_brackets(a, blocks) -> None:
    """Nothing; draws above ``a`` a bracket with the cell type that each block of genes marks."""
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(a.transData, a.transAxes)
    rotate = any(lab is not None and len(str(lab)) > 2.2 * len(c) + 1 for lab, c in blocks)
    start = 0
    for lab, c in blocks:
        end = start + len(c) - 1
        if lab is not None:
            x0, x1 = start - 0.35, end + 0.35
            a.plot(
                [x0, x0, x1, x1],
                [1.01, 1.025, 1.025, 1.01],
                transform=trans,
                clip_on=False,
                color="black",
                linewidth=0.8,
            )
            a.text(
                (x0 + x1) / 2,
                1.035,
                str(lab),
                transform=trans,
                ha="left" if rotate else "center",
                va="bottom",
                rotation=60 if rotate else 0,
                rotation_mode="anchor",
                fontsize="small",
            )
        start = end + 1


def _dot_legend(cb) -> None:
    """Nothing; adds the dot-size legend (share of cells expressing) under the colour bar ``cb``."""
    fr = [0.25, 0.5, 0.75, 1.0]
    size_legend(cb, [np.sqrt(f * DOT_AREA) for f in fr], [f"{f:.0%}" for f in fr], title="cells\nexpressing")


# --------------------------------------------------------------------------------------------
# tm.pl.composition
# --------------------------------------------------------------------------------------------
@doc_params("plot")
def composition(
    adata: AnnData,
    *,
    sample_key: str,
    groupby: str = OBS.cell_type_major,
    normalize: bool = True,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Cell-type composition of each sample as stacked horizontal bars.

    One bar per sample (category order of ``obs[sample_key]``, top to bottom, labelled with its
    number of cells); the bar is split into the fractions ``n_sk / n_s`` of the groups of
    ``obs[groupby]`` in the sample (``normalize=False``: the cell counts ``n_sk``). Colours are
    the fixed palettes of ``tm.pl`` for ``compartment`` and ``cell_type_major``, else the ones
    stored in ``adata.uns[f"{groupby}_colors"]`` (or :data:`~tmeatlas.pl.CB_PALETTE`, then
    stored there). Cells with a missing sample or group are left out.

    Parameters
    ----------
    adata
        Annotated data matrix, usually after :func:`~tmeatlas.tl.annotate`.
    sample_key
        Column of ``adata.obs`` with the sample of each cell (one bar each).
    groupby
        Column of ``adata.obs`` with the groups stacked in each bar.
    normalize
        Fractions of the sample's cells (``True``) or cell counts (``False``).
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else ``[axes]``.
    """
    check_adata(adata)
    if sample_key is None:
        raise InvalidParameterError(
            "sample_key must name the column of adata.obs with the sample of each cell."
        )
    _check_key(adata, sample_key, "sample_key")
    _check_key(adata, groupby, "groupby")
    if not isinstance(normalize, bool | np.bool_):
        raise InvalidParameterError(f"normalize must be True or False, got {normalize!r}.")
    gcats = _categories(adata, groupby)
    if gcats is None:
        raise InvalidInputError(f"obs[{groupby!r}] is numeric; composition needs categorical groups.")
    scats = _categories(adata, sample_key) or sorted({str(v) for v in adata.obs[sample_key].dropna()})
    pal = _colors(adata, groupby, gcats)
    keep = (adata.obs[sample_key].notna() & adata.obs[groupby].notna()).to_numpy()
    s = adata.obs[sample_key][keep].astype(str).to_numpy()
    g = adata.obs[groupby][keep].astype(str).to_numpy()
    if not keep.any():
        raise InvalidInputError(
            f"no cell has both a sample (obs[{sample_key!r}]) and a group (obs[{groupby!r}])."
        )
    tab = pd.crosstab(pd.Categorical(s, categories=scats), pd.Categorical(g, categories=gcats), dropna=False)
    tab = tab.reindex(index=scats, columns=gcats, fill_value=0)
    tab = tab.loc[tab.sum(axis=1) > 0, tab.sum(axis=0) > 0]
    n_cells = tab.sum(axis=1)
    vals = tab.div(n_cells, axis=0) if normalize else tab
    samples, groups = [str(v) for v in tab.index], [str(v) for v in tab.columns]

    legend_rows = len(groups) if len(groups) <= 16 else (len(groups) + 1) // 2
    fig, axes = new_axes(ax, panel_size=(6.5, max(0.35 * len(samples) + 1.2, 0.24 * legend_rows + 0.9)))
    a = axes[0]
    y = np.arange(len(samples))
    left = np.zeros(len(samples))
    for grp in groups:
        w = vals[grp].to_numpy(dtype=float)
        a.barh(y, w, left=left, height=0.8, color=pal[grp], label=grp, edgecolor="white", linewidth=0.3)
        left += w
    a.set_yticks(y, [f"{smp} (n={int(k)})" for smp, k in zip(samples, n_cells)])
    a.set_ylim(len(samples) - 0.5, -0.5)
    if normalize:
        a.set_xlim(0, 1)
    a.set_xlabel("fraction of cells" if normalize else "number of cells")
    a.set_ylabel(sample_key)
    a.spines[["top", "right"]].set_visible(False)
    side_legend(a, title=groupby, n=len(groups))
    return finish(fig, [a], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)
