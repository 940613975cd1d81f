"""Per-sample spatial maps: ``tm.pl.spatial``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import InvalidParameterError, MissingResultError
from .._keys import OBS, OBSM
from .._validation import check_adata, check_obs_key, renamed_args
from ._utils import categorical_palette, finish, new_axes, side_legend

if TYPE_CHECKING:
    from pathlib import Path

    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["spatial"]


@renamed_args(basis="spatial_key")
def spatial(
    adata: AnnData,
    *,
    color: str,
    sample_key: str | None = OBS.sample,
    samples: list[str] | None = None,
    spatial_key: str = OBSM.spatial,
    layer: str | None = None,
    size: float | None = None,
    scale_bar: float | None = None,
    ncols: int = 4,
    cmap: str = "viridis",
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Maps of cells (or spots) in tissue coordinates, one panel per sample.

    Coordinates are read from ``adata.obsm[spatial_key]`` and taken to be microns; each panel gets a
    scale bar whose length is a round number of microns (about a fifth of the panel width)
    unless ``scale_bar`` gives it. Categorical colours are the ones stored scanpy-style in
    ``adata.uns[f"{color}_colors"]`` when present, else a colour-blind-safe palette.

    Parameters
    ----------
    adata
        Annotated data matrix with coordinates in ``obsm[spatial_key]``.
    color
        A column of ``adata.obs`` or a gene name (expression from ``layer``).
    sample_key
        Column of ``adata.obs`` naming the sample of each cell; ``None``: one panel.
    samples
        Samples to draw (default: all, in category order).
    spatial_key
        Key of the coordinates in ``adata.obsm``.
    layer
        Layer for gene expression (``None``: ``adata.X``).
    size
        Marker size in points²; default scales with the number of cells per panel.
    scale_bar
        Scale-bar length in microns; ``0`` hides it.
    ncols
        Panels per row.
    cmap
        Colour map for continuous values.
    ax
        Axes to draw into (only with a single sample).
    return_fig
        Return the figure.
    show
        Show the figure (default: when not returning it and not drawing into ``ax``).
    save
        Path to save the figure to; the suffix picks the format (``.pdf``/``.svg`` are vector).
    """
    check_adata(adata)
    if spatial_key not in adata.obsm:
        raise MissingResultError(
            f"no coordinates in adata.obsm[{spatial_key!r}]; spatial plots need cell or spot coordinates (microns)."
        )
    coords = np.asarray(adata.obsm[spatial_key])[:, :2]
    values, categorical = _values(adata, color, layer)
    if sample_key is None:
        groups = pd.Series(np.zeros(adata.n_obs, dtype=int).astype(str), index=adata.obs_names)
        order = ["0"]
    else:
        check_obs_key(adata, sample_key, what="sample_key")
        groups = adata.obs[sample_key].astype(str)
        order = (
            list(adata.obs[sample_key].cat.categories)
            if hasattr(adata.obs[sample_key], "cat")
            else sorted(groups.unique())
        )
        order = [str(o) for o in order]
    if samples is not None:
        missing = [s for s in samples if s not in set(order)]
        if missing:
            raise InvalidParameterError(
                f"samples {missing} not found in adata.obs[{sample_key!r}]; available: {order}."
            )
        order = [str(s) for s in samples]
    if ncols < 1:
        raise InvalidParameterError(f"ncols must be >= 1, got {ncols}.")
    n = len(order)
    nc = min(ncols, n)
    fig, axes = new_axes(ax, ncols=nc, nrows=int(np.ceil(n / nc)))
    if categorical:
        cats = list(values.cat.categories)
        pal = categorical_palette(cats, adata, color)
    else:
        vmin, vmax = np.nanpercentile(values, [1, 99]) if np.isfinite(values).any() else (0, 1)
    gmask = groups.to_numpy()
    for i, (sample, a) in enumerate(zip(order, axes)):
        m = gmask == sample
        xy = coords[m]
        s = size if size is not None else float(np.clip(30000 / max(m.sum(), 1), 0.5, 30))
        if categorical:
            v = values[m]
            for c in cats:
                mm = (v == c).to_numpy()
                if mm.any():
                    a.scatter(
                        xy[mm, 0], xy[mm, 1], s=s, c=pal[c], label=c, linewidths=0, rasterized=m.sum() > 5000
                    )
        else:
            sc = a.scatter(
                xy[:, 0],
                xy[:, 1],
                s=s,
                c=values[m],
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                linewidths=0,
                rasterized=m.sum() > 5000,
            )
        a.set_aspect("equal")
        a.invert_yaxis()
        a.set_xticks([])
        a.set_yticks([])
        a.set_title(sample if sample_key is not None else color)
        if scale_bar != 0 and len(xy):
            _scale_bar(a, xy, scale_bar)
        if categorical and i == n - 1:
            side_legend(a, title=color, markerscale=max(1.0, 20 / s) ** 0.5)
    for a in axes[n:]:
        a.set_visible(False)
    if not categorical:
        fig.colorbar(sc, ax=list(axes[:n]), shrink=0.6, label=color)
    return finish(fig, list(axes[:n]), show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


def _values(adata: AnnData, color: str, layer: str | None):
    if color in adata.obs.columns:
        v = adata.obs[color]
        if isinstance(v.dtype, pd.CategoricalDtype) or v.dtype == object or v.dtype == bool:
            return v.astype(str).astype("category") if not isinstance(
                v.dtype, pd.CategoricalDtype
            ) else v, True
        return v.to_numpy(dtype=float), False
    if color in adata.var_names:
        from scipy import sparse

        X = adata.layers[layer] if layer is not None else adata.X
        col = X[:, adata.var_names.get_loc(color)]
        col = col.toarray().ravel() if sparse.issparse(col) else np.asarray(col).ravel()
        return col.astype(float), False
    raise MissingResultError(f"{color!r} is neither a column of adata.obs nor a gene in adata.var_names.")


def _scale_bar(a, xy: np.ndarray, length: float | None) -> None:
    width = float(np.ptp(xy[:, 0])) or 1.0
    if length is None:
        target = width / 5
        mag = 10 ** np.floor(np.log10(target))
        length = float(max((m * mag for m in (1, 2, 5) if m * mag <= target), default=mag))
    x0 = float(xy[:, 0].min())
    y0 = float(xy[:, 1].max()) + 0.04 * (float(np.ptp(xy[:, 1])) or 1.0)
    a.plot([x0, x0 + length], [y0, y0], color="black", lw=2, solid_capstyle="butt")
    label = f"{length / 1000:g} mm" if length >= 1000 else f"{length:g} µm"
    a.text(x0 + length / 2, y0, label, ha="center", va="top", fontsize="small")
