"""Plots of tumour heterogeneity: ``tm.pl.heterogeneity``, ``tm.pl.clone_states`` and ``tm.pl.clone_mixing``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, NotApplicableError
from .._keys import OBS, OBSM, UNS
from .._store import read_params, read_result
from .._validation import check_adata, check_obs_key, suggest_names
from ._utils import CB_PALETTE, categorical_palette, finish, new_axes, side_colorbar, side_legend

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["INDEX_LABELS", "clone_mixing", "clone_states", "heterogeneity", "measured_indices"]

#: the indices drawn by default, with their axis labels, in reading order (genetic, transcriptional, spatial, epigenetic)
INDEX_LABELS = {
    "genetic_diversity": "genetic diversity\n(Shannon, clones)",
    "effective_clones": "effective number\nof clones",
    "cnv_burden": "CNV burden\n(share of arms altered)",
    "state_diversity": "state diversity\n(Shannon, states)",
    "state_between_clones": "states explained\nby clones (MI)",
    "clone_mixing": "clone mixing\n(1: random)",
    "clone_spatial_entropy": "spatial entropy\nof clones",
    "epigenetic_diversity": "epigenetic diversity\n(Shannon, chromatin states)",
    "epigenetic_rna_agreement": "chromatin-RNA state\nagreement (kappa)",
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

    One panel per index of :func:`tmeatlas.tl.heterogeneity` (genetic, transcriptional, spatial, epigenetic),
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


@doc_params("plot")
def clone_mixing(
    adata: AnnData,
    *,
    sample: str | None = None,
    key: str = UNS.heterogeneity,
    clone_key: str = OBS.cnv_clone,
    spatial_key: str = OBSM.spatial,
    malignant_key: str | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    r"""Where a sample's CNV clones lie in the tissue, and how much each cell's neighbourhood mixes them.

    Left: the sample's malignant cells with a clone label at their coordinates, coloured by clone
    (the sample's other cells in light grey underneath). Right: each of those cells coloured by
    its local mixing, the fraction of its 10 nearest malignant clone-labelled neighbours (k-d
    tree, Euclidean distance) that belong to another clone: the per-cell quantity whose mean,
    divided by its expectation for labels placed at random (:math:`1 - \sum_c n_c (n_c - 1) /
    (n (n - 1))`), is ``clone_mixing`` of :func:`tmeatlas.tl.heterogeneity` (definition and
    citation there; the random expectation is Simpson's index, Simpson, Nature 163:688, 1949).
    Segregated clones are low everywhere except along their borders; intermixed clones are high
    throughout. The title gives the sample's ``clone_mixing`` and its 95 % cell-resampling
    interval when ``adata.uns[key]`` holds them. Equal aspect, axes in the units of the
    coordinates (y downwards, as in :func:`tmeatlas.pl.spatial`). With ``ax=`` only the
    local-mixing map is drawn, into ``ax``.

    Parameters
    ----------
    adata
        Annotated data matrix with clone labels and coordinates (after :func:`tmeatlas.tl.heterogeneity`
        for the title).
    sample
        The sample to draw (one per figure); ``None`` when the data hold a single sample. The sample
        column is the ``sample_key`` that :func:`tmeatlas.tl.heterogeneity` used (its ``params``),
        else ``obs["sample"]`` when it exists.
    key
        The ``adata.uns`` key of :func:`tmeatlas.tl.heterogeneity` (title values; absent: no values).
    clone_key
        Column of ``adata.obs`` with the clone of each malignant cell (``"non-malignant"``, empty or
        missing: no clone).
    spatial_key
        Key of ``adata.obsm`` with the coordinates (first two columns).
    malignant_key
        Column marking malignant cells (``"malignant"`` or True); ``None``:
        ``obs["malignant"] == "malignant"``, else ``compartment`` / ``cell_type_major``.
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else the axes (clones, local
    mixing; only the latter with ``ax=``).
    """
    check_adata(adata)
    m = _mixing_cells(adata, sample, key, clone_key, spatial_key, malignant_key)
    n_drawn = int(m["background"].sum() + len(m["rows"]))
    size = float(np.clip(30000 / max(n_drawn, 1), 0.5, 30))
    if ax is None:
        fig, axes = new_axes(None, ncols=2, panel_size=(4.6, 4.2))
        _clone_panel(axes[0], m, size)
        a = axes[1]
    else:
        fig, axes = ax.figure, [ax]
        a = ax
    _mixing_background(a, m, size)
    sc = a.scatter(*m["xy"][m["rows"]].T, c=m["frac"], cmap="viridis", vmin=0.0, vmax=1.0, s=size,
                   linewidths=0, rasterized=n_drawn > 5000, zorder=2)  # fmt: skip
    a.set_title(f"local mixing ({m['k']} nearest)", fontsize="medium")
    side_colorbar(fig, sc, a, label=f"share of the {m['k']}\nnearest in\nanother clone", n_rows=6)
    title = _mixing_title(adata, key, m["sample"])
    (a.set_title if ax is not None else fig.suptitle)(title, fontsize="medium")
    return finish(fig, list(axes), show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


def _mixing_background(a, m: dict, size: float) -> None:
    """Nothing; the sample's cells not drawn in colour, light grey, on ``a`` in the map's frame."""
    xy = m["xy"][m["background"]]
    a.scatter(*xy.T, c="#DDDDDD", s=size, linewidths=0, rasterized=len(xy) > 5000, zorder=1)
    a.set_aspect("equal")
    if not a.yaxis_inverted():
        a.invert_yaxis()
    a.set_xlabel(f"x{m['unit']}", fontsize="small")
    a.set_ylabel(f"y{m['unit']}", fontsize="small")
    a.tick_params(labelsize="x-small")


def _clone_panel(a, m: dict, size: float) -> None:
    """Nothing; the sample's labelled malignant cells coloured by clone on ``a``, with a legend."""
    _mixing_background(a, m, size)
    pal = categorical_palette(m["clones"])
    xy = m["xy"][m["rows"]]
    for j, c in enumerate(m["clones"]):
        on = m["code"] == j
        a.scatter(*xy[on].T, color=pal[c], s=size, linewidths=0, label=c, rasterized=len(xy) > 5000, zorder=2)
    a.set_title("clones", fontsize="medium")
    side_legend(a, title="clone", n=len(m["clones"]), markerscale=max(1.0, 20 / size) ** 0.5)


def _mixing_title(adata: AnnData, key: str, sample: str) -> str:
    """``"<sample>: clone mixing 0.42 [0.30, 0.55]"`` from the heterogeneity table, or the sample alone."""
    entry = adata.uns.get(key)
    if not hasattr(entry, "get") or entry.get("table") is None:  # no heterogeneity result: no values
        return str(sample)
    table = _table(adata, key)
    row = table[table["sample"].astype(str) == sample]
    if not len(row) or "clone_mixing" not in row.columns:
        return str(sample)
    v, lo, hi = (
        float(row.iloc[0].get(c, np.nan)) for c in ("clone_mixing", "clone_mixing_low", "clone_mixing_high")
    )
    if not np.isfinite(v):
        return f"{sample}: clone mixing not measured"
    ci = f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
    return f"{sample}: clone mixing {v:.2f}{ci} (1: random)"


def _mixing_sample(adata: AnnData, key: str, sample: str | None) -> tuple[np.ndarray, str]:
    """The sample of every cell (``sample_key`` of ``uns[key]``'s params, else ``obs["sample"]``, else one
    sample ``"all"``, as :func:`tmeatlas.tl.heterogeneity` names it) and the sample chosen.
    """
    params = read_params(adata, key)
    sample_key = params.get("sample_key") if params else (OBS.sample if OBS.sample in adata.obs else None)
    if sample_key is None:
        of = np.full(adata.n_obs, "all", dtype=object)
    else:
        check_obs_key(adata, sample_key, what="sample_key", hint="(the sample column of tm.tl.heterogeneity)")
        of = adata.obs[sample_key].astype(str).to_numpy(dtype=object)
    known = sorted({str(s) for s in of})
    if sample is None:
        if len(known) > 1:
            raise InvalidParameterError(
                f"the data hold {len(known)} samples ({known[:20]}{' ...' if len(known) > 20 else ''}); the map "
                "draws one sample per figure: pass sample= with one of them."
            )
        return of, known[0]
    if str(sample) not in known:
        hint = suggest_names([sample], known)
        raise InvalidParameterError(
            f"unknown sample {sample!r}{'; ' + hint if hint else ''}; known: {known[:20]}."
        )
    return of, str(sample)


def _mixing_cells(adata, sample, key, clone_key, spatial_key, malignant_key) -> dict:
    """The cells of the map: the sample's labelled malignant cells (``rows``, clone ``code`` into ``clones``,
    local mixing ``frac`` from :func:`tmeatlas.tl._heterogeneity.clone_neighbours`), the sample's other
    cells with coordinates (``background``), ``xy``, the chosen ``sample``, ``k`` and the axis ``unit``.
    """
    from ..tl._cells import malignant_mask
    from ..tl._heterogeneity import N_NEIGHBORS, clone_labels, clone_neighbours, spatial_coordinates

    xy, why_xy = spatial_coordinates(adata, spatial_key)
    if xy is None:
        raise InvalidInputError(
            f"{why_xy}: the clone mixing map, like the spatial indices of tm.tl.heterogeneity (clone_mixing, "
            "clone_spatial_entropy), needs coordinates of the cells; put them in adata.obsm (cells x 2) and "
            "name that key with spatial_key=."
        )
    hint = "Run `tm.tl.cnv_clones(adata)` first, or name your clone column with clone_key=."
    check_obs_key(adata, clone_key, what="clone_key", hint=hint)
    mal, rule = malignant_mask(adata, malignant_key, None)
    labels = clone_labels(adata.obs[clone_key], mal)
    if all(v is None for v in labels):
        raise InvalidInputError(f"no malignant cell ({rule}) has a clone label in obs[{clone_key!r}]. {hint}")
    of, s = _mixing_sample(adata, key, sample)
    idx = np.flatnonzero((of == s) & mal)
    lab = labels[idx]
    names = sorted({str(v) for v in lab if v is not None})
    if len(names) < 2:
        what = f"one clone ({names[0]})" if names else "no clone label"
        raise NotApplicableError(
            f"sample {s!r} has {what} among its malignant cells: with fewer than 2 clones nothing mixes, so "
            "there is no mixing map; draw a sample with several clones (`tm.get.heterogeneity(adata)`, "
            "column n_clones)."
        )
    code = np.array([names.index(str(v)) if v is not None else -1 for v in lab], dtype=np.int64)
    why: dict[str, str] = {}
    frac, _ = clone_neighbours(idx, code, xy, why_xy, why, True, len(names))
    if frac is None:
        raise NotApplicableError(
            f"sample {s!r}: {why.get('clone_mixing', 'no local mixing')}; the local mixing needs at least "
            "that many malignant cells with a clone label and coordinates."
        )
    ok = np.isfinite(frac)
    background = (of == s) & np.isfinite(xy).all(axis=1)
    background[idx[ok]] = False
    units = adata.uns.get(UNS.spatial_units) if spatial_key == OBSM.spatial else None  # tm.read's record
    unit = units.get("unit") if isinstance(units, dict) else None
    return {"rows": idx[ok], "code": code[ok], "frac": frac[ok], "clones": names, "xy": xy, "background": background,
            "sample": s, "k": N_NEIGHBORS, "unit": f" ({unit})" if unit else ""}  # fmt: skip
