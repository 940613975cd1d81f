"""Plots of tumour heterogeneity: ``tm.pl.heterogeneity`` and ``tm.pl.clone_states``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError
from .._keys import UNS
from .._store import read_result
from .._validation import check_adata, suggest_names
from ._utils import CB_PALETTE, categorical_palette, finish, new_axes

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["INDEX_LABELS", "clone_states", "heterogeneity", "measured_indices"]

#: the indices drawn by default, with their axis labels, in reading order (genetic, transcriptional, spatial)
INDEX_LABELS = {
    "genetic_diversity": "genetic diversity\n(Shannon, clones)",
    "effective_clones": "effective number\nof clones",
    "cnv_burden": "CNV burden\n(share of arms altered)",
    "state_diversity": "state diversity\n(Shannon, states)",
    "state_between_clones": "states explained\nby clones (MI)",
    "clone_mixing": "clone mixing\n(1: random)",
    "clone_spatial_entropy": "spatial entropy\nof clones",
    "epigenetic_diversity": "epigenetic\ndiversity",
}
_NOT_MEASURED = "n/m"


def _table(adata: AnnData, key: str) -> pd.DataFrame:
    """The per-sample table of ``uns[key]`` (:func:`tmeatlas.get.heterogeneity`), with a typed error when absent."""
    from ..get._heterogeneity import heterogeneity as get_table

    return get_table(adata, key=key)


def _pick_samples(table: pd.DataFrame, samples) -> pd.DataFrame:
    """Rows of ``table`` for ``samples`` (all when ``None``), in the order given."""
    if samples is None:
        return table
    wanted = [str(samples)] if isinstance(samples, str) else [str(s) for s in samples]
    known = table["sample"].astype(str).tolist()
    bad = [s for s in wanted if s not in known]
    if bad:
        hint = suggest_names(bad, known)
        raise InvalidParameterError(
            f"unknown samples {bad}{'; ' + hint if hint else ''}; known: {known[:10]}."
        )
    return table.set_index("sample").loc[wanted].reset_index()


def measured_indices(table: pd.DataFrame) -> list[str]:
    """The indices of :data:`INDEX_LABELS` with a value in at least one row of a heterogeneity ``table``."""
    return [
        k
        for k in INDEX_LABELS
        if k in table.columns and pd.to_numeric(table[k], errors="coerce").notna().any()
    ]


def _pick_indices(table: pd.DataFrame, indices) -> list[str]:
    """The indices to draw: those asked for, or every index measured in at least one sample."""
    if indices is None:
        chosen = measured_indices(table)
        if not chosen:
            raise InvalidInputError(
                "no heterogeneity index was measured in any sample; see the `not_measured` column of "
                "`tm.get.heterogeneity(adata)` for why."
            )
        return chosen
    wanted = [indices] if isinstance(indices, str) else list(indices)
    bad = [k for k in wanted if k not in INDEX_LABELS]
    if bad:
        hint = suggest_names(bad, list(INDEX_LABELS))
        raise InvalidParameterError(
            f"unknown indices {bad}{'; ' + hint if hint else ''}; known: {list(INDEX_LABELS)}."
        )
    return wanted


@doc_params("plot")
def heterogeneity(
    adata: AnnData,
    *,
    key: str = UNS.heterogeneity,
    indices: str | Sequence[str] | None = None,
    samples: str | Sequence[str] | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Patients side by side on each heterogeneity index, with their resampling intervals.

    One panel per index of :func:`tmeatlas.tl.heterogeneity` (genetic, transcriptional, spatial),
    one point per sample with its 95 % cell-resampling interval as a bar. A sample where an index
    could not be measured shows ``n/m`` at the bottom of the panel; the reason is in the
    ``not_measured`` column of :func:`tmeatlas.get.heterogeneity`. Formulas and citations:
    :func:`tmeatlas.tl.heterogeneity`.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.tl.heterogeneity`.
    key
        Its ``adata.uns`` key.
    indices
        Indices to draw (names of :data:`INDEX_LABELS`); default: every index measured in at least
        one sample.
    samples
        Samples to draw, in this order (default: all, sorted).
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else the axes.
    """
    check_adata(adata)
    table = _pick_samples(_table(adata, key), samples)
    chosen = _pick_indices(table, indices)
    if ax is not None and len(chosen) != 1:
        raise InvalidParameterError("`ax=` draws one index: pass `indices=` with a single name.")
    n = len(table)
    fig, axes = new_axes(ax, ncols=len(chosen), panel_size=(max(2.4, 0.45 * n + 1.2), 3.2))
    x = np.arange(n)
    for a, k in zip(np.ravel(axes), chosen):
        _index_panel(a, table, k, x)
    return finish(
        fig, list(np.ravel(axes)), show=show, save=save, return_fig=return_fig, ax_given=ax is not None
    )


def _index_panel(a, table: pd.DataFrame, k: str, x: np.ndarray) -> None:
    """Nothing; draws index ``k`` of every sample (point, interval bar, ``n/m`` where missing) on ``a``."""
    v = table[k].to_numpy(dtype=float)
    lo = table.get(f"{k}_low", pd.Series(np.nan, index=table.index)).to_numpy(dtype=float)
    hi = table.get(f"{k}_high", pd.Series(np.nan, index=table.index)).to_numpy(dtype=float)
    ok = np.isfinite(v)
    has_ci = ok & np.isfinite(lo) & np.isfinite(hi)
    a.vlines(x[has_ci], lo[has_ci], hi[has_ci], color=CB_PALETTE[0], linewidth=2.0, alpha=0.6, zorder=2)
    a.scatter(x[ok], v[ok], color=CB_PALETTE[0], s=28, zorder=3)
    for xi in x[~ok]:
        a.text(xi, 0.02, _NOT_MEASURED, transform=a.get_xaxis_transform(), ha="center", va="bottom",
               fontsize="x-small", color="#777777")  # fmt: skip
    a.set_xticks(x, table["sample"].astype(str), rotation=90, fontsize="small")
    a.set_xlim(-0.6, len(x) - 0.4)
    a.set_ylabel(INDEX_LABELS[k], fontsize="small")
    a.grid(axis="y", color="#EEEEEE", linewidth=0.5, zorder=0)
    a.set_axisbelow(True)


@doc_params("plot")
def clone_states(
    adata: AnnData,
    *,
    key: str = UNS.heterogeneity,
    samples: str | Sequence[str] | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """Which transcriptional states each clone's cells are in: one stacked bar per clone.

    Draws ``adata.uns[key]["clone_state"]`` of :func:`tmeatlas.tl.heterogeneity`: for every
    CNV clone (grouped by sample), the fraction of its malignant cells in each state (the
    library's programs, or ``baseline`` when no program stands out). Clones with the same
    composition carry the same states (state heterogeneity lies within clones); clones that
    differ carry states that follow the genetics (``state_between_clones`` of the table).

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.tl.heterogeneity`.
    key
        Its ``adata.uns`` key.
    samples
        Samples whose clones are drawn (default: all).
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else the axes.
    """
    check_adata(adata)
    comp = pd.DataFrame(read_result(adata, key, "heterogeneity").get("clone_state", pd.DataFrame()))
    if comp.empty or not {"sample", "clone", "state", "fraction"} <= set(comp.columns):
        raise InvalidInputError(
            "no clone-by-state composition: it needs CNV clones and program scores of the malignant cells "
            "(see the `not_measured` column of `tm.get.heterogeneity(adata)`)."
        )
    comp = comp.astype({"sample": str, "clone": str, "state": str})
    if samples is not None:
        keep = _pick_samples(pd.DataFrame({"sample": sorted(comp["sample"].unique())}), samples)["sample"]
        comp = comp[comp["sample"].isin(keep)]
    wide = comp.pivot_table(
        index=["sample", "clone"], columns="state", values="fraction", aggfunc="sum"
    ).fillna(0.0)
    states = sorted(wide.columns, key=lambda s: (s == "baseline", s))
    wide = wide[states]
    fig, axes = new_axes(ax, panel_size=(max(3.0, 0.4 * len(wide) + 2.0), 3.4))
    a = axes[0]
    colors = list(categorical_palette(states).values())
    bottom = np.zeros(len(wide))
    for st, col in zip(states, colors):
        a.bar(np.arange(len(wide)), wide[st].to_numpy(), bottom=bottom, color=col, label=st, width=0.8)
        bottom += wide[st].to_numpy()
    a.set_xticks(np.arange(len(wide)), [f"{s} · {c}" for s, c in wide.index], rotation=90, fontsize="small")
    a.set_ylabel("fraction of the clone's cells")
    a.set_ylim(0, 1)
    a.legend(title="state", frameon=False, fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return finish(fig, [a], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)
