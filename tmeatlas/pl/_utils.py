"""Shared plotting plumbing: palettes and the ``ax`` / ``return_fig`` / ``show`` / ``save`` contract.

The palettes live in :mod:`tmeatlas._palettes` (the tools store colours too) and are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import InvalidParameterError
from .._palettes import (
    CB_PALETTE,
    COMPARTMENT_COLORS,
    MAJOR_COLORS,
    categorical_palette,
    compartment_palette,
    major_palette,
)

if TYPE_CHECKING:
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
    "side_colorbar",
    "side_legend",
    "size_legend",
]


def new_axes(
    ax: Axes | None, *, ncols: int = 1, nrows: int = 1, panel_size: tuple[float, float] = (4.0, 4.0)
):
    """Return ``(fig, axes)``: the figure of ``ax`` when given, else a new grid of panels."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is not None:
        if ncols * nrows != 1:
            raise InvalidParameterError("`ax=` can only be given when the plot has a single panel.")
        return ax.figure, np.array([ax])
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        squeeze=False,
        layout="constrained",
    )
    return fig, axes.ravel()


def finish(
    fig: Figure, axes, *, show: bool | None, save: str | Path | None, return_fig: bool, ax_given: bool
):
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


def side_legend(ax: Axes, *, title: str | None, n: int = 0, **kwargs):
    """The legend of ``ax`` outside its right edge, top-aligned, frameless; two columns above 16 entries (``n``)."""
    return ax.legend(
        bbox_to_anchor=(1.02, 1),
        loc="upper left",
        frameon=False,
        fontsize="small",
        title=title,
        ncols=1 if n <= 16 else 2,
        **kwargs,
    )


def side_colorbar(fig: Figure, mappable, ax: Axes, *, label: str, n_rows: int):
    """The colour bar of ``mappable`` right of ``ax``, top-aligned, titled ``label``; a dot plot's key.

    The title stands above the bar, horizontal and left-aligned with it: along a short bar a label
    is longer than the bar and reaches over the legend under it (:func:`size_legend`) or the title
    above. The bar spans 45% of the axes' height, more when ``n_rows`` (the plot's rows) are few:
    the axes are then short, and so many ticks on a short bar would overprint.
    """
    import matplotlib as mpl

    shrink = min(1.0, max(0.45, 3.6 / max(n_rows, 1)))
    cb = fig.colorbar(mappable, ax=ax, shrink=shrink, aspect=10, anchor=(0.0, 1.0))
    # clear of the top tick label, which is centred on the bar's end
    tick = mpl.font_manager.FontProperties(size=mpl.rcParams["ytick.labelsize"]).get_size_in_points()
    cb.ax.set_title(label, loc="left", fontsize="small", pad=2 + 0.75 * tick)
    return cb


def size_legend(cb, sizes, labels, *, title: str, labelspacing: float = 1.0) -> None:
    """Nothing; a legend of grey dots of marker ``sizes`` (points) with ``labels`` under the colour bar ``cb``."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", linestyle="", color="#666666", markersize=float(m), label=lab)
        for m, lab in zip(sizes, labels)
    ]
    cb.ax.legend(
        handles=handles,
        title=title,
        loc="upper left",
        bbox_to_anchor=(-0.5, -0.12),
        frameon=False,
        fontsize="small",
        title_fontsize="small",
        labelspacing=labelspacing,
        borderaxespad=0,
    )
