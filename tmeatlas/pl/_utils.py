"""Shared plotting plumbing: palettes and the ``ax`` / ``return_fig`` / ``show`` / ``save`` contract."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import InvalidParameterError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "CB_PALETTE",
    "COMPARTMENT_COLORS",
    "MAJOR_COLORS",
    "categorical_palette",
    "compartment_palette",
    "finish",
    "major_palette",
    "new_axes",
]

#: Colour-blind-safe categorical colours: Okabe & Ito (2008) first, then Paul Tol's "muted"
#: and "light" schemes (Tol 2021, SRON/EPS/TN/09-002), which stay distinguishable under
#: the common colour-vision deficiencies.
CB_PALETTE = [
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000",
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
    "#AA4499", "#77AADD", "#EE8866", "#EEDD88", "#FFAABB", "#99DDFF", "#BBCC33", "#AAAA00",
    "#DDDDDD",
]


def categorical_palette(categories: Sequence[str], adata=None, key: str | None = None) -> dict[str, str]:
    """Colours for ``categories``: ``adata.uns[f"{key}_colors"]`` when present (scanpy style), else :data:`CB_PALETTE`."""
    cats = [str(c) for c in categories]
    if adata is not None and key is not None:
        stored = adata.uns.get(f"{key}_colors")
        if stored is not None and len(stored) >= len(cats):
            return dict(zip(cats, list(stored)))
    return {c: CB_PALETTE[i % len(CB_PALETTE)] for i, c in enumerate(cats)}


def new_axes(ax: Axes | None, *, ncols: int = 1, nrows: int = 1, panel_size: tuple[float, float] = (4.0, 4.0)):
    """Return ``(fig, axes)``: the figure of ``ax`` when given, else a new grid of panels."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is not None:
        if ncols * nrows != 1:
            raise InvalidParameterError("`ax=` can only be given when the plot has a single panel.")
        return ax.figure, np.array([ax])
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows), squeeze=False, layout="constrained"
    )
    return fig, axes.ravel()


def finish(fig: Figure, axes, *, show: bool | None, save: str | Path | None, return_fig: bool, ax_given: bool):
    """Save (vector formats keep text as text), show, and return according to the plot contract.

    Returns the figure when ``return_fig``; ``None`` when the plot was shown; else the axes.
    """
    import matplotlib.pyplot as plt

    if save is not None:
        path = Path(save)
        if path.suffix == "":
            path = path.with_suffix(".pdf")
        path.parent.mkdir(parents=True, exist_ok=True)
        with plt.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}):
            fig.savefig(path, bbox_inches="tight", dpi=200)
    if return_fig:
        return fig
    if show is None:
        show = not ax_given and plt.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo")
    if show:
        plt.show()
        return None
    if not ax_given and save is not None:
        plt.close(fig)
        return None
    return axes


#: fixed colours of the compartments (Okabe-Ito), the same in every plot
COMPARTMENT_COLORS = {
    "malignant": "#D55E00",
    "immune": "#0072B2",
    "stromal": "#009E73",
    "epithelial": "#CC79A7",
    "unassigned": "#BBBBBB",
}
#: fixed colours of the major cell types: Okabe-Ito and Paul Tol's muted scheme, immune types
#: in blues/purples, stroma in greens, malignant vermillion, as in the compartments
MAJOR_COLORS = {
    "Malignant": "#D55E00",
    "T cell": "#0072B2",
    "NK cell": "#56B4E9",
    "B cell": "#332288",
    "Plasma cell": "#AA4499",
    "Myeloid": "#E69F00",
    "Mast cell": "#882255",
    "Fibroblast": "#009E73",
    "Endothelial": "#117733",
    "Pericyte": "#999933",
    "Epithelial": "#CC79A7",
    "Unassigned": "#BBBBBB",
}


def compartment_palette() -> dict[str, str]:
    """Colour of each compartment (fixed across all plots)."""
    return dict(COMPARTMENT_COLORS)


def major_palette() -> dict[str, str]:
    """Colour of each major cell type (fixed across all plots; unknown types get grey)."""
    from collections import defaultdict

    return defaultdict(lambda: "#777777", MAJOR_COLORS)
