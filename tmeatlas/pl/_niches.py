"""Plots of spatial niches, the tumour interface and immune phenotypes.

``tm.pl.spatial_niches``, ``tm.pl.niche_composition``, ``tm.pl.interface_profile`` and
``tm.pl.immune_phenotypes`` draw the results of ``tm.gr.niches``, ``tm.gr.interface`` and
``tm.gr.immune_phenotype``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError
from .._keys import OBS, OBSM, UNS
from .._store import read_params
from .._validation import check_adata, check_int, check_obs_key, check_one_of
from ._spatial import _scale_bar
from ._utils import COMPARTMENT_COLORS, MAJOR_COLORS, categorical_palette, finish, new_axes, side_legend

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

__all__ = ["immune_phenotypes", "interface_profile", "niche_composition", "spatial_niches"]

#: fixed colours of the immune phenotypes (Okabe-Ito), the same in every plot
PHENOTYPE_COLORS = {
    "inflamed": "#D55E00",
    "excluded": "#E69F00",
    "desert": "#56B4E9",
    "no tumour": "#BBBBBB",
}
#: colours of the three tumour regions in :func:`immune_phenotypes` (Paul Tol's muted scheme)
REGION_COLORS = {"core": "#332288", "margin": "#AA4499", "stroma": "#44AA99"}
#: columns of ``uns["immune_phenotype"]["table"]`` with the CD8 density in each region
_DENSITY_COLUMNS = {"core": "density_core", "margin": "density_margin", "stroma": "density_stroma"}
#: default edges (µm) of the distance bins of :func:`interface_profile`
DEFAULT_BINS = np.arange(-300.0, 300.0 + 1e-9, 25.0)
#: bins of :func:`interface_profile` with fewer cells than this are not drawn
MIN_BIN_CELLS = 10
#: colour of cells without a niche
_NA_COLOR = "#E0E0E0"
_NA_LABEL = "no niche"

_RUN = {
    UNS.niches: "no niches: run `tm.gr.niches(adata)` first.",
    UNS.interface: "no tumour interface: run `tm.gr.interface(adata)` first.",
    UNS.immune_phenotype: "no immune phenotypes: run `tm.gr.immune_phenotype(adata)` first.",
}


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------
def _result(adata: AnnData, uns_key: str) -> Mapping:
    """``adata.uns[uns_key]``, or a :class:`MissingResultError` naming the tool to run."""
    entry = adata.uns.get(uns_key)
    if not isinstance(entry, Mapping):
        raise MissingResultError(_RUN[uns_key])
    return entry


def _categories(col: pd.Series) -> list[str]:
    """Categories of an ``obs`` column as strings: category order, else sorted values."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [str(c) for c in col.cat.categories]
    return sorted({str(v) for v in col.dropna()})


def _sample_order(adata: AnnData, sample_key: str, samples: Sequence[str] | None) -> list[str]:
    """Samples of ``obs[sample_key]`` that have cells (category order), or ``samples`` after a check."""
    col = adata.obs[sample_key]
    have = set(col.dropna().astype(str))
    order = [s for s in _categories(col) if s in have]
    if samples is None:
        return order
    samples = [samples] if isinstance(samples, str) else [str(s) for s in samples]
    missing = [s for s in samples if s not in have]
    if missing or not samples:
        raise InvalidParameterError(
            f"samples {missing or samples} not found in adata.obs[{sample_key!r}]; available: {order}."
        )
    return samples


def _group_colors(adata: AnnData, key: str | None, groups: Sequence[str]) -> dict[str, str]:
    """Colours of cell groups: the fixed palettes for compartments and major types, else ``uns[f"{key}_colors"]`` / CB palette."""
    groups = [str(g) for g in groups]
    if key == OBS.compartment or (groups and all(g in COMPARTMENT_COLORS for g in groups)):
        return {g: COMPARTMENT_COLORS.get(g, "#777777") for g in groups}
    if key == OBS.cell_type_major or (groups and all(g in MAJOR_COLORS for g in groups)):
        return {g: MAJOR_COLORS.get(g, "#777777") for g in groups}
    if key is not None and key in adata.obs.columns:  # stored colours follow the column's categories
        cats = _categories(adata.obs[key])
        if set(groups) <= set(cats):
            pal = categorical_palette(cats, adata, key)
            return {g: pal[g] for g in groups}
    return categorical_palette(groups, adata, key)


def _legend_handles(pal: Mapping[str, str], labels: Sequence[str], marker: str = "o"):
    """Legend handles (markers coloured by ``pal``) for ``labels``."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], marker=marker, linestyle="", markersize=7, color=pal[c], label=c) for c in labels]


def _check_bool(name: str, value: Any) -> None:
    """Nothing; an error unless ``value`` is a bool."""
    if not isinstance(value, bool | np.bool_):
        raise InvalidParameterError(f"{name} must be True or False, got {value!r}.")


# --------------------------------------------------------------------------------------------
# tm.pl.spatial_niches
# --------------------------------------------------------------------------------------------
def spatial_niches(
    adata: AnnData,
    *,
    key: str = OBS.niche,
    sample_key: str | None = None,
    samples: Sequence[str] | None = None,
    spatial_key: str | None = None,
    size: float | None = None,
    scale_bar: float | None = None,
    ncols: int = 4,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Maps of the tissue coloured by spatial niche, one panel per sample, with one shared legend.

    Draws the niche labels of :func:`tmeatlas.gr.niches` (cellular neighbourhoods clustered on
    the cell-type composition of each cell's spatial neighbourhood, after Schürch et al., Cell
    182:1341, 2020) in tissue coordinates. Coordinates are ``adata.obsm[spatial_key]`` in
    microns; each panel has equal aspect, y pointing down, no ticks, and a scale bar whose
    length is a round number of microns (about a fifth of the panel width) unless
    ``scale_bar`` gives it. Niche colours are the ones stored scanpy-style in
    ``adata.uns[f"{key}_colors"]`` when there is one per category, else the colour-blind-safe
    :data:`~tmeatlas.pl.CB_PALETTE`; cells without a niche are light grey and drawn below the
    others. Points are rasterised, text and axes stay vector in PDF/SVG output.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.gr.niches`, with coordinates in ``obsm``.
    key
        Column of ``adata.obs`` with the niche of each cell (any categorical column works).
    sample_key
        Column of ``adata.obs`` with the sample of each cell (one panel each); default: the
        ``sample_key`` that :func:`tmeatlas.gr.niches` used (``uns["niches"]["params"]``), else
        ``"sample"`` when that column exists, else all cells in one panel.
    samples
        Samples to draw, in this order (default: all, in category order).
    spatial_key
        Key of the coordinates (microns) in ``adata.obsm``; default: the one
        :func:`tmeatlas.gr.niches` used, else ``"spatial"``.
    size
        Marker area in points²; default ``30000 / n_cells`` of the panel, clipped to [0.5, 30].
    scale_bar
        Scale-bar length in microns; ``None``: automatic; ``0``: no scale bar.
    ncols
        Panels per row.
    ax
        Axes to draw into (only with a single sample).
    return_fig
        Return the figure.
    show
        Show the figure (default: when not returning it and not drawing into ``ax``).
    save
        Path to save the figure to; the suffix picks the format (``.pdf``/``.svg`` keep text as text).

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else the list of axes (one per sample).
    """
    from matplotlib.colors import to_rgba_array

    check_adata(adata)
    if not isinstance(key, str):
        raise InvalidParameterError(f"key must be the name of a column of adata.obs, got {key!r}.")
    if key not in adata.obs.columns:
        if key == OBS.niche:
            raise MissingResultError(_RUN[UNS.niches])
        check_obs_key(adata, key, what="key")
    col = adata.obs[key]
    if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
        raise InvalidInputError(f"obs[{key!r}] is numeric; spatial_niches colours by categorical labels.")
    if spatial_key is None:
        spatial_key = read_params(adata, UNS.niches).get("spatial_key")
    if spatial_key is None:
        spatial_key = OBSM.spatial
    if spatial_key not in adata.obsm:
        raise MissingResultError(
            f"no coordinates in adata.obsm[{spatial_key!r}]; spatial maps need cell or spot coordinates "
            "(microns). Pass `spatial_key=` naming them."
        )
    coords = np.asarray(adata.obsm[spatial_key], dtype=float)
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise InvalidInputError(f"obsm[{spatial_key!r}] needs at least 2 columns, got shape {coords.shape}.")
    coords = coords[:, :2]
    if sample_key is None:
        sample_key = read_params(adata, UNS.niches).get("sample_key")
        if sample_key is None and OBS.sample in adata.obs.columns:
            sample_key = OBS.sample
    if sample_key is None:
        if samples is not None:
            raise InvalidParameterError(
                "samples= needs sample_key= naming the column of adata.obs with the sample."
            )
        order: list[str | None] = [None]
        sample_of = np.zeros(adata.n_obs, dtype=object)
    else:
        check_obs_key(adata, sample_key, what="sample_key")
        order = list(_sample_order(adata, sample_key, samples))
        sample_of = adata.obs[sample_key].astype(str).to_numpy(dtype=object)
    if size is not None and not (isinstance(size, int | float | np.number) and float(size) > 0):
        raise InvalidParameterError(f"size must be a number > 0, got {size!r}.")
    if scale_bar is not None and not (
        isinstance(scale_bar, int | float | np.number) and float(scale_bar) >= 0
    ):
        raise InvalidParameterError(
            f"scale_bar must be a length in microns >= 0 (0 hides it), got {scale_bar!r}."
        )
    check_int("ncols", ncols, 1)

    cats = _categories(col)
    pal = categorical_palette(cats, adata, key)
    na = col.isna().to_numpy()
    labels = col.astype(str).to_numpy(dtype=object)
    codes = pd.Categorical(np.where(na, None, labels), categories=cats).codes  # -1: no niche
    colors = to_rgba_array([pal[c] for c in cats] + [_NA_COLOR])[codes]  # code -1 picks the grey

    n = len(order)
    nc = min(int(ncols), n)
    fig, axes = new_axes(ax, ncols=nc, nrows=int(np.ceil(n / nc)), panel_size=(4.0, 4.0))
    shown: set[int] = set()
    for sample, a in zip(order, axes):
        m = np.ones(adata.n_obs, dtype=bool) if sample is None else sample_of == sample
        idx = np.flatnonzero(m)
        idx = idx[np.argsort(codes[idx] >= 0, kind="stable")]  # cells without a niche below
        xy = coords[idx]
        shown.update(np.unique(codes[idx]).tolist())
        s = float(size) if size is not None else float(np.clip(30000 / max(len(idx), 1), 0.5, 30))
        a.scatter(xy[:, 0], xy[:, 1], s=s, c=colors[idx], linewidths=0, rasterized=True)
        a.set_aspect("equal")
        a.invert_yaxis()
        a.set_xticks([])
        a.set_yticks([])
        a.set_title(key if sample is None else str(sample))
        if scale_bar != 0 and len(xy):
            _scale_bar(a, xy, None if scale_bar is None else float(scale_bar))
    for a in axes[n:]:
        a.set_visible(False)
    legend = [c for i, c in enumerate(cats) if i in shown] + ([_NA_LABEL] if -1 in shown else [])
    handles = _legend_handles({**pal, _NA_LABEL: _NA_COLOR}, legend, marker="o")
    kw = {"frameon": False, "fontsize": "small", "title": key, "ncols": 1 if len(legend) <= 16 else 2}
    if ax is not None:
        side_legend(ax, title=key, n=len(legend), handles=handles)
    else:
        fig.legend(handles=handles, loc="outside right upper", **kw)
    return finish(fig, list(axes[:n]), show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


# --------------------------------------------------------------------------------------------
# tm.pl.niche_composition
# --------------------------------------------------------------------------------------------
def _composition(adata: AnnData, key: str) -> pd.DataFrame:
    """``uns["niches"]["composition"]`` as a float frame, rows in the category order of ``obs[key]``."""
    entry = _result(adata, UNS.niches)
    comp = entry.get("composition")
    if not isinstance(comp, pd.DataFrame) or comp.empty:
        raise MissingResultError(
            "uns['niches'] has no 'composition' table: rerun `tm.gr.niches(adata)` with this version of tmeatlas."
        )
    try:
        comp = comp.astype(float)
    except (TypeError, ValueError) as err:
        raise InvalidInputError("uns['niches']['composition'] must hold numeric fractions.") from err
    comp.index = comp.index.astype(str)
    comp.columns = comp.columns.astype(str)
    if key in adata.obs.columns:
        cats = _categories(adata.obs[key])
        rows = [c for c in cats if c in comp.index] + [r for r in comp.index if r not in set(cats)]
        comp = comp.loc[rows]
    return comp.fillna(0.0)


@doc_params("plot")
def niche_composition(
    adata: AnnData,
    *,
    key: str = OBS.niche,
    kind: str = "heatmap",
    annotate: bool = False,
    cmap: str | Colormap = "viridis",
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Cell-group composition of each niche, as a heatmap or stacked horizontal bars.

    Draws ``adata.uns["niches"]["composition"]`` written by :func:`tmeatlas.gr.niches`: for niche
    ``k`` and cell group ``g`` (e.g. major cell type) the mean, over the cells ``i`` of the niche,
    of the fraction of ``g`` among the neighbours of ``i``, ``c_kg = mean_{i in k} f_ig`` (rows sum
    to about 1) — the cellular-neighbourhood profile of Schürch et al. (Cell 182:1341, 2020).
    Rows are niches in the category order of ``obs[key]``.

    ``kind="heatmap"``: niches x groups, perceptually uniform colour map (``viridis``) from 0 to
    the largest fraction; each row is marked by its niche colour (``uns[f"{key}_colors"]`` when
    stored, else :data:`~tmeatlas.pl.CB_PALETTE`), as in :func:`spatial_niches`. ``kind="bar"``: one stacked bar per niche split into the groups'
    fractions; groups coloured with the fixed palettes of ``tm.pl`` when they are major cell
    types or compartments, else with ``uns[f"{groupby}_colors"]`` / the CB palette.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.gr.niches`.
    key
        Column of ``adata.obs`` with the niches; orders and colours the rows (the composition is
        drawn in its own row order when the column is absent).
    kind
        ``"heatmap"`` or ``"bar"``.
    annotate
        Write each fraction into its heatmap cell (``kind="heatmap"`` only).
    cmap
        Colour map of the heatmap (a name or a matplotlib colour map).
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else ``[axes]`` (bar) or
    ``[axes, colour-bar axes]`` (heatmap).
    """
    import matplotlib as mpl
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import blended_transform_factory

    check_adata(adata)
    check_one_of("kind", kind, ["heatmap", "bar"])
    _check_bool("annotate", annotate)
    if not isinstance(key, str):
        raise InvalidParameterError(f"key must be the name of a column of adata.obs, got {key!r}.")
    if not isinstance(cmap, mpl.colors.Colormap) and cmap not in mpl.colormaps:
        raise InvalidParameterError(
            f"cmap {cmap!r} is not a matplotlib colour map; e.g. 'viridis', 'cividis'."
        )
    comp = _composition(adata, key)
    niches, groups = list(comp.index), list(comp.columns)
    niche_cats = _categories(adata.obs[key]) if key in adata.obs.columns else niches
    npal = categorical_palette(niche_cats + [r for r in niches if r not in set(niche_cats)], adata, key)
    params = read_params(adata, UNS.niches)
    groupby = params.get("groupby", params.get("cluster_key"))  # cluster_key: atlases written before 0.1
    group_title = str(groupby) if groupby is not None else "cell group"
    vals = comp.to_numpy(dtype=float)
    n_k, n_g = vals.shape

    if kind == "heatmap":
        fig, axes = new_axes(ax, panel_size=(max(3.5, 0.42 * n_g + 3.2), max(2.5, 0.4 * n_k + 1.8)))
        a = axes[0]
        vmax = float(vals.max()) if vals.size and vals.max() > 0 else 1.0
        im = a.imshow(vals, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
        a.set_xticks(np.arange(n_g), groups, rotation=90, fontsize="small")
        a.set_yticks(np.arange(n_k), niches, fontsize="small")
        a.tick_params(axis="y", pad=14)
        a.set_xlabel(group_title)
        trans = blended_transform_factory(a.transAxes, a.transData)
        for i, niche in enumerate(niches):  # niche colour key left of the rows
            a.add_patch(
                Rectangle(
                    (-0.045, i - 0.4),
                    0.03,
                    0.8,
                    transform=trans,
                    clip_on=False,
                    facecolor=npal[niche],
                    edgecolor="none",
                )
            )
        if annotate:
            rgba = im.get_cmap()(np.clip(vals / vmax, 0, 1))
            light = (0.299 * rgba[..., 0] + 0.587 * rgba[..., 1] + 0.114 * rgba[..., 2]) > 0.5
            for i in range(n_k):
                for j in range(n_g):
                    a.text(
                        j,
                        i,
                        f"{vals[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize="x-small",
                        color="black" if light[i, j] else "white",
                        in_layout=False,  # inside its cell: the layout need not measure it
                    )
        cb = fig.colorbar(im, ax=a, shrink=0.7, label="mean fraction of\nneighbourhood")
        out = [a, cb.ax]
    else:
        gpal = _group_colors(adata, groupby, groups)
        legend_rows = n_g if n_g <= 16 else (n_g + 1) // 2
        fig, axes = new_axes(ax, panel_size=(6.5, max(0.38 * n_k + 1.2, 0.24 * legend_rows + 0.9)))
        a = axes[0]
        y = np.arange(n_k)
        left = np.zeros(n_k)
        for j, g in enumerate(groups):
            a.barh(
                y, vals[:, j], left=left, height=0.8, color=gpal[g], label=g, edgecolor="white", linewidth=0.3
            )
            left += vals[:, j]
        a.set_yticks(y, niches)
        a.set_ylim(n_k - 0.5, -0.5)
        a.set_xlim(0, max(1.0, float(left.max()) if n_k else 1.0))
        a.set_xlabel("mean fraction of neighbourhood")
        a.set_ylabel(key)
        a.spines[["top", "right"]].set_visible(False)
        side_legend(a, title=group_title, n=n_g)
        out = [a]
    return finish(fig, out, show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


# --------------------------------------------------------------------------------------------
# tm.pl.interface_profile
# --------------------------------------------------------------------------------------------
def _bin_edges(bins, d: np.ndarray) -> np.ndarray:
    """Distance bin edges in microns: the defaults, ``bins`` equal bins over ``d``, or the edges given."""
    if bins is None:
        return DEFAULT_BINS.copy()
    if isinstance(bins, bool | np.bool_):
        raise InvalidParameterError(
            f"bins must be an integer or increasing bin edges in microns, got {bins!r}."
        )
    if isinstance(bins, int | np.integer):
        if bins < 1:
            raise InvalidParameterError(f"bins must be >= 1 when an integer, got {bins}.")
        lo, hi = float(d.min()), float(d.max())
        return np.linspace(lo, hi if hi > lo else lo + 1.0, int(bins) + 1)
    try:
        edges = np.asarray(bins, dtype=float)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(f"bins must be increasing bin edges in microns, got {bins!r}.") from err
    if edges.ndim != 1 or edges.size < 2 or not np.isfinite(edges).all() or np.any(np.diff(edges) <= 0):
        raise InvalidParameterError(
            f"bins must be at least 2 finite, strictly increasing bin edges in microns, got {bins!r}."
        )
    return edges


def _binned_fractions(b: np.ndarray, g: np.ndarray, n_bins: int, n_groups: int) -> np.ndarray:
    """Fraction of each group (columns) in each bin (rows); NaN in bins with < MIN_BIN_CELLS cells."""
    counts = (
        np.bincount(b * n_groups + g, minlength=n_bins * n_groups).reshape(n_bins, n_groups).astype(float)
    )
    total = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, total, out=np.full_like(counts, np.nan), where=total > 0)
    frac[total[:, 0] < MIN_BIN_CELLS] = np.nan
    return frac


def _check_interface_args(adata: AnnData, groupby: Any, per_sample: Any) -> None:
    """Nothing; an error unless ``adata`` has the interface distances and a ``groupby`` column and
    ``per_sample`` is a bool.
    """
    check_adata(adata)
    if OBS.tumor_distance not in adata.obs.columns:
        raise MissingResultError(_RUN[UNS.interface])
    if not isinstance(groupby, str):
        raise InvalidParameterError(f"groupby must be the name of a column of adata.obs, got {groupby!r}.")
    if groupby not in adata.obs.columns:
        if groupby in (OBS.cell_type_major, OBS.cell_type, OBS.compartment):
            raise MissingResultError(
                f"no cell-type labels in obs[{groupby!r}]: run `tm.tl.annotate(adata)` first."
            )
        check_obs_key(adata, groupby, what="groupby")
    _check_bool("per_sample", per_sample)


def _interface_groups(adata: AnnData, groupby: str, groups: Any):
    """``(distance, usable, categories, codes, groups to draw)``: the signed distances, which cells have a
    finite one and a label, the label categories, each cell's category code (-1: unusable) and the groups
    asked for (default: all present).
    """
    d = pd.to_numeric(adata.obs[OBS.tumor_distance], errors="coerce").to_numpy(dtype=float)
    lab = adata.obs[groupby]
    ok = np.isfinite(d) & lab.notna().to_numpy()
    if not ok.any():
        raise InvalidInputError(
            "no cell has both a finite obs['tumor_distance'] and a label in "
            f"obs[{groupby!r}] (no sample with tumour?)."
        )
    cats = _categories(lab)
    codes = pd.Categorical(np.where(ok, lab.astype(str).to_numpy(dtype=object), None), categories=cats).codes
    present = [c for i, c in enumerate(cats) if np.any(codes[ok] == i)]
    if groups is None:
        draw = present
    else:
        draw = [groups] if isinstance(groups, str) else [str(g) for g in groups]
        unknown = [g for g in draw if g not in set(cats)]
        if unknown or not draw:
            raise InvalidParameterError(
                f"groups {unknown or draw} not in obs[{groupby!r}]; available: {present}."
            )
    return d, ok, cats, codes, draw


def _interface_sample_key(adata: AnnData, sample_key: str | None, per_sample: bool) -> str | None:
    """The checked sample column: ``sample_key``, else (for ``per_sample``) the one the interface used."""
    if per_sample:
        if sample_key is None:
            sample_key = read_params(adata, UNS.interface).get("sample_key")
        if sample_key is None:
            raise InvalidParameterError(
                "per_sample=True needs sample_key= naming the column with the sample."
            )
        check_obs_key(adata, sample_key, what="sample_key")
    elif sample_key is not None:
        check_obs_key(adata, sample_key, what="sample_key")
    return sample_key


def _margin_band(a: Axes, adata: AnnData, d: np.ndarray) -> None:
    """Nothing; draws the margin of ``uns["interface"]["params"]["margin_width"]`` as a grey band on ``a``
    (on both sides of the boundary when the margin cells lie on both).
    """
    margin = read_params(adata, UNS.interface).get("margin_width")
    try:
        margin = float(margin) if margin is not None else None
    except (TypeError, ValueError):
        margin = None
    if margin is not None and np.isfinite(margin) and margin > 0:
        lo = 0.0
        if OBS.tumor_region in adata.obs.columns:
            in_margin = (adata.obs[OBS.tumor_region].astype(str) == "margin").to_numpy() & np.isfinite(d)
            if in_margin.any() and np.nanmin(d[in_margin]) < -1e-9 and np.nanmax(d[in_margin]) > 1e-9:
                lo = -margin
        a.axvspan(lo, margin, color="#DDDDDD", alpha=0.6, linewidth=0, zorder=0, label="margin")


@doc_params("plot")
def interface_profile(
    adata: AnnData,
    *,
    groupby: str = OBS.cell_type_major,
    groups: Sequence[str] | None = None,
    sample_key: str | None = None,
    bins: Sequence[float] | int | None = None,
    per_sample: bool = False,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Cell-group fractions against the signed distance to the tumour boundary.

    Uses ``obs["tumor_distance"]`` of :func:`tmeatlas.gr.interface` (microns; negative inside the
    tumour). Cells with a finite distance are binned by distance; for group ``g`` and bin ``b``
    the plot shows ``n_gb / n_b``, the fraction of the bin's cells that belong to ``g`` (cells
    without a label in ``obs[groupby]`` are left out), at the bin centre, one line per group,
    pooled over samples. **Bins with fewer than 10 cells** (:data:`MIN_BIN_CELLS`) are not drawn
    (gaps in the line), and cells outside the bin edges are ignored. A dashed vertical line
    marks the boundary (0 µm) and a grey band the margin, ``[0, margin_width]`` with the
    ``margin_width`` of ``uns["interface"]["params"]`` (``[-margin_width, margin_width]`` when the
    margin cells of ``obs["tumor_region"]`` lie on both sides of the boundary); samples without
    tumour (distance NaN) do not contribute. Such infiltration profiles across the
    tumour-stroma boundary follow Keren et al. (Cell 174:1373, 2018). Group colours are the
    fixed palettes of ``tm.pl`` for major cell types and compartments, else
    ``uns[f"{groupby}_colors"]`` / :data:`~tmeatlas.pl.CB_PALETTE`.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.gr.interface`.
    groupby
        Column of ``adata.obs`` with the cell groups.
    groups
        Groups to draw (default: all with cells at a finite distance).
    sample_key
        Column of ``adata.obs`` with the sample, for ``per_sample``; default: the ``sample_key``
        :func:`tmeatlas.gr.interface` used.
    bins
        Bin edges in microns (strictly increasing), or a number of equal-width bins spanning the
        distances; default: every 25 µm from -300 to 300 µm.
    per_sample
        Also draw each sample's profile as a thin line (same bin rule, per sample).
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else ``[axes]``.
    """
    _check_interface_args(adata, groupby, per_sample)
    d, ok, cats, codes, draw = _interface_groups(adata, groupby, groups)
    edges = _bin_edges(bins, d[ok])
    nb = len(edges) - 1
    centres = (edges[:-1] + edges[1:]) / 2
    b = np.searchsorted(edges, d, side="right") - 1
    b[d == edges[-1]] = nb - 1  # the last bin includes its right edge
    inb = ok & (b >= 0) & (b < nb)
    sample_key = _interface_sample_key(adata, sample_key, per_sample)

    pal = _group_colors(adata, groupby, cats)
    frac = _binned_fractions(b[inb], codes[inb], nb, len(cats))
    fig, axes = new_axes(ax, panel_size=(5.5, 3.8))
    a = axes[0]
    _margin_band(a, adata, d)
    a.axvline(0.0, color="black", linestyle="--", linewidth=0.8, zorder=1)
    if per_sample:
        smp = adata.obs[sample_key].astype(str).to_numpy(dtype=object)
        for s in _sample_order(adata, sample_key, None):
            m = inb & (smp == s)
            if not m.any():
                continue
            fs = _binned_fractions(b[m], codes[m], nb, len(cats))
            for g in draw:
                a.plot(
                    centres,
                    fs[:, cats.index(g)],
                    color=pal[g],
                    linewidth=0.6,
                    alpha=0.4,
                    zorder=2,
                    label="_nolegend_",
                )
    for g in draw:
        a.plot(
            centres,
            frac[:, cats.index(g)],
            color=pal[g],
            linewidth=1.8,
            marker="o",
            markersize=3,
            label=g,
            zorder=3,
        )
    a.set_xlim(edges[0], edges[-1])
    a.set_ylim(bottom=0)
    a.set_xlabel("distance to tumour boundary (µm)")
    a.set_ylabel("fraction of cells")
    a.text(0.01, 1.01, "← tumour", transform=a.transAxes, ha="left", va="bottom", fontsize="small")
    a.text(0.99, 1.01, "stroma →", transform=a.transAxes, ha="right", va="bottom", fontsize="small")
    a.spines[["top", "right"]].set_visible(False)
    side_legend(a, title=groupby, n=len(draw))
    return finish(fig, [a], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


# --------------------------------------------------------------------------------------------
# tm.pl.immune_phenotypes
# --------------------------------------------------------------------------------------------
@doc_params("plot")
def immune_phenotypes(
    adata: AnnData,
    *,
    samples: Sequence[str] | None = None,
    log: bool = False,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """CD8 T-cell density in the tumour core, margin and stroma of each sample, with its immune phenotype.

    Draws ``adata.uns["immune_phenotype"]["table"]`` of :func:`tmeatlas.gr.immune_phenotype`: per
    sample, three bars with the CD8 T-cell densities (cells per mm²) in the core, the invasive
    margin and the stroma. The sample's phenotype — inflamed (CD8 T cells in the tumour core),
    excluded (held at the margin / in the stroma) or desert (few anywhere), after Chen &
    Mellman (Nature 541:321, 2017) and Hegde et al. (Clin Cancer Res 22:1865, 2016) — colours
    the box behind its label, with fixed colours: inflamed vermillion, excluded orange, desert
    sky blue, no tumour grey. A call whose probability under the counting error of the densities
    (``confidence``) is below :data:`tmeatlas.gr._interface.LOW_CONFIDENCE` shows it under the
    sample's name. Densities that are missing (e.g. no core in a sample without tumour) leave an
    empty bar.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.gr.immune_phenotype`.
    samples
        Samples to draw, in this order (default: all rows of the table, in order).
    log
        Logarithmic density axis (zero densities sit at the bottom of the axis).
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else ``[axes]``.
    """
    from matplotlib.patches import Patch

    check_adata(adata)
    entry = _result(adata, UNS.immune_phenotype)
    table = entry.get("table")
    if not isinstance(table, pd.DataFrame):
        raise MissingResultError(
            "uns['immune_phenotype'] has no 'table': rerun `tm.gr.immune_phenotype(adata)` with this version of tmeatlas."
        )
    need = ["sample", "phenotype", *_DENSITY_COLUMNS.values()]
    lacking = [c for c in need if c not in table.columns]
    if lacking:
        raise InvalidInputError(
            f"uns['immune_phenotype']['table'] lacks columns {lacking}; rerun `tm.gr.immune_phenotype(adata)`."
        )
    _check_bool("log", log)
    if table.empty:
        raise InvalidInputError("uns['immune_phenotype']['table'] has no samples.")
    table = table.assign(sample=table["sample"].astype(str)).drop_duplicates("sample").set_index("sample")
    order = list(table.index)
    if samples is not None:
        samples = [samples] if isinstance(samples, str) else [str(s) for s in samples]
        missing = [s for s in samples if s not in set(order)]
        if missing or not samples:
            raise InvalidParameterError(
                f"samples {missing or samples} not in uns['immune_phenotype']['table']; available: {order}."
            )
        order = samples
    tab = table.loc[order]
    dens = np.column_stack(
        [pd.to_numeric(tab[c], errors="coerce").to_numpy(dtype=float) for c in _DENSITY_COLUMNS.values()]
    )
    pheno = [str(p) for p in tab["phenotype"].fillna("no tumour")]

    n = len(order)
    fig, axes = new_axes(ax, panel_size=(max(4.0, 0.75 * n + 2.8), 3.8))
    a = axes[0]
    x = np.arange(n)
    w = 0.8 / 3
    floor, heights = 0.0, dens
    if log:  # bars start at half the smallest positive density; zeros have no height
        pos = dens[np.isfinite(dens) & (dens > 0)]
        floor = float(pos.min()) / 2 if pos.size else 0.1
        heights = np.where(np.isfinite(dens), np.maximum(dens, floor), np.nan) - floor
    for j, region in enumerate(_DENSITY_COLUMNS):
        a.bar(
            x + (j - 1) * w,
            heights[:, j],
            width=w,
            bottom=floor,
            color=REGION_COLORS[region],
            label=region,
            edgecolor="white",
            linewidth=0.3,
        )
    if log:
        a.set_yscale("log")
        a.set_ylim(bottom=floor)
    from ..gr._interface import LOW_CONFIDENCE

    conf = pd.to_numeric(tab["confidence"], errors="coerce").to_numpy(float) if "confidence" in tab else None
    ticks = [
        f"{s}\np = {c:.2f}" if conf is not None and np.isfinite(c) and c < LOW_CONFIDENCE else str(s)
        for s, c in zip(order, conf if conf is not None else [np.nan] * n)
    ]
    a.set_xticks(x, ticks, rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
    for lab, p in zip(a.get_xticklabels(), pheno):
        lab.set_bbox(
            {
                "facecolor": PHENOTYPE_COLORS.get(p, "#777777"),
                "edgecolor": "none",
                "alpha": 0.7,
                "boxstyle": "round,pad=0.25",
            }
        )
    a.set_xlim(-0.6, n - 0.4)
    a.set_ylabel("CD8 T cells per mm²")
    sample_key = read_params(adata, UNS.immune_phenotype).get("sample_key")
    a.set_xlabel(str(sample_key) if sample_key is not None else "sample")
    a.spines[["top", "right"]].set_visible(False)
    regions = side_legend(a, title="CD8 density in")
    a.add_artist(regions)  # kept when the second legend replaces it as the axes' legend
    regions.set_clip_on(False)  # add_artist clips it to the axes, which left it out of the layout (cut off)
    seen = [p for p in PHENOTYPE_COLORS if p in set(pheno)] + sorted(
        {p for p in pheno if p not in PHENOTYPE_COLORS}
    )
    handles = [
        Patch(facecolor=PHENOTYPE_COLORS.get(p, "#777777"), edgecolor="none", alpha=0.7, label=p)
        for p in seen
    ]
    a.legend(
        handles=handles,
        bbox_to_anchor=(1.02, 0.45),
        loc="upper left",
        frameon=False,
        fontsize="small",
        title="phenotype",
    )
    return finish(fig, [a], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)
