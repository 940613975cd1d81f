"""Plot of simulated therapy schedules: ``tm.pl.therapy_simulation`` draws ``tm.tl.simulate_therapy``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import InvalidInputError, InvalidParameterError, MissingResultError
from .._keys import UNS
from .._validation import check_adata
from ._utils import categorical_palette, finish, new_axes

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["therapy_simulation"]

# key name (to move into tmeatlas/_keys.py: ``UNS.therapy_simulation``)
UNS_THERAPY_SIMULATION = UNS.therapy_simulation

#: line style of each schedule, the same in every panel
SCHEDULE_STYLES = {"continuous": "-", "adaptive": "--"}
_TOTAL_COLOR = "#000000"


def therapy_simulation(
    adata: AnnData,
    *,
    key: str = UNS_THERAPY_SIMULATION,
    sample: str | Sequence[str] | None = None,
    log: bool = False,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    r"""Subpopulation sizes and total tumour burden over time under each simulated dosing schedule.

    Draws ``adata.uns[key]`` of :func:`tmeatlas.tl.simulate_therapy`, one panel per sample: a
    line per subpopulation and schedule (colour: subpopulation, from the colour-blind-safe
    :data:`tmeatlas.pl.CB_PALETTE`; line style: schedule, continuous solid, adaptive dashed) and
    the total burden :math:`B(t) = \sum_i N_i(t)` of each schedule (thick black, same style).
    Sizes are relative to the initial burden. The progression threshold (e.g. 1.2, RECIST-like
    20 % growth) is a dotted grey line, the time to progression of each schedule a cross on its
    total, and the treatment intervals of each schedule a bar along the top of the panel (the
    on-off cycles of adaptive therapy, Zhang et al., Nat Commun 8:1816, 2017). The lines show
    a model, not data: see :func:`tmeatlas.tl.simulate_therapy` for its assumptions.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.tl.simulate_therapy`.
    key
        Key of ``adata.uns`` with the simulation.
    sample
        Sample or samples to draw, one panel each (default: all simulated samples).
    log
        Logarithmic size axis (shows the small resistant subpopulations and their competitive
        release).
    ax
        Axes to draw into (only for a single sample).
    return_fig
        Return the figure.
    show
        Show the figure (default: when not returning it and not drawing into ``ax``).
    save
        Path to save the figure to; the suffix picks the format (``.pdf``/``.svg`` keep text as text).

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else the list of axes.
    """
    check_adata(adata)
    if not isinstance(log, bool):
        raise InvalidParameterError(f"log must be True or False, got {log!r}.")
    entry = adata.uns.get(key) if isinstance(key, str) else None
    if not isinstance(entry, Mapping) or not isinstance(entry.get("trajectory"), pd.DataFrame):
        raise MissingResultError(
            f"no therapy simulation in adata.uns[{key!r}]; run `tm.tl.simulate_therapy(adata, therapy=...)` first."
        )
    traj = entry["trajectory"].copy()
    need = ["sample", "schedule", "time", "group", "size", "burden"]
    lacking = [c for c in need if c not in traj.columns]
    if lacking or traj.empty:
        raise InvalidInputError(
            f"adata.uns[{key!r}]['trajectory'] lacks columns {lacking} or rows; rerun `tm.tl.simulate_therapy`."
        )
    for c in ("sample", "schedule", "group"):
        traj[c] = traj[c].astype(str)
    summary = entry.get("summary")
    ok = isinstance(summary, pd.DataFrame) and {"sample", "schedule", "time_to_progression"} <= set(
        summary.columns
    )
    summary = summary.copy() if ok else pd.DataFrame(columns=["sample", "schedule", "time_to_progression"])
    for c in ("sample", "schedule"):
        summary[c] = summary[c].astype(str)
    summary["time_to_progression"] = pd.to_numeric(summary["time_to_progression"], errors="coerce")
    treatment = entry.get("treatment")
    treatment = treatment.copy() if isinstance(treatment, pd.DataFrame) else pd.DataFrame()
    params = entry.get("params", {})
    threshold = params.get("progression_threshold") if isinstance(params, Mapping) else None
    therapy = str(params.get("therapy", "")) if isinstance(params, Mapping) else ""

    available = list(pd.unique(traj["sample"]))
    if sample is None:
        samples = available
    else:
        samples = [sample] if isinstance(sample, str) else [str(s) for s in sample]
        missing = [s for s in samples if s not in available]
        if missing or not samples:
            raise InvalidParameterError(
                f"sample(s) {missing or samples} not simulated; available: {available}."
            )
    groups = list(pd.unique(traj["group"]))
    colors = categorical_palette(groups)
    ncols = min(3, len(samples))
    nrows = int(np.ceil(len(samples) / ncols))
    fig, axes = new_axes(ax, ncols=ncols, nrows=nrows, panel_size=(5.0, 3.6))
    for a in axes[len(samples) :]:
        a.set_visible(False)
    for a, s in zip(axes, samples):
        ts = traj[traj["sample"] == s]
        scheds = list(pd.unique(ts["schedule"]))
        for sched in scheds:
            style = SCHEDULE_STYLES.get(sched, ":")
            tt = ts[ts["schedule"] == sched]
            for g in pd.unique(tt["group"]):
                tg = tt[tt["group"] == g].sort_values("time", kind="stable")
                a.plot(tg["time"], tg["size"], linestyle=style, color=colors[g], lw=1.3,
                       label=f"{g} ({sched})", gid=f"{sched}|{g}")  # fmt: skip
            tot = tt.drop_duplicates("time").sort_values("time", kind="stable")
            a.plot(tot["time"], tot["burden"], linestyle=style, color=_TOTAL_COLOR, lw=2.2,
                   label=f"total ({sched})", gid=f"{sched}|total")  # fmt: skip
            ttp = summary.loc[
                (summary["sample"] == s) & (summary["schedule"] == sched), "time_to_progression"
            ]
            if len(ttp) and np.isfinite(ttp.iloc[0]):
                t_p = float(ttp.iloc[0])
                b_p = float(np.interp(t_p, tot["time"], tot["burden"]))
                a.plot([t_p], [b_p], marker="x", ms=9, mew=2, color=_TOTAL_COLOR, linestyle="none",
                       label="_progression", gid=f"{sched}|progression")  # fmt: skip
        if threshold is not None and np.isfinite(float(threshold)):
            a.axhline(float(threshold), color="#888888", linestyle=":", lw=1.0,
                      label=f"progression ({float(threshold):g}x)", gid="threshold")  # fmt: skip
        if len(treatment) and {"sample", "schedule", "start", "end", "dose"} <= set(treatment.columns):
            tr = treatment[(treatment["sample"].astype(str) == s) & (pd.to_numeric(treatment["dose"]) > 0)]
            trans = a.get_xaxis_transform()
            for j, sched in enumerate(scheds):
                iv = tr[tr["schedule"].astype(str) == sched]
                if len(iv):
                    spans = [(float(x0), float(x1) - float(x0)) for x0, x1 in zip(iv["start"], iv["end"])]
                    y0 = 0.975 - 0.035 * (j + 1)
                    a.broken_barh(
                        spans, (y0, 0.025), transform=trans, color="#777777", gid=f"{sched}|treatment"
                    )
                    a.text(
                        1.01, y0 + 0.0125, f"{sched} dosing", transform=a.transAxes, fontsize=6, va="center"
                    )
        size = ts["size"].to_numpy(float)
        top = max(float(ts["burden"].max()), float(threshold) if threshold is not None else 0.0)
        if log:  # headroom above the lines for the dosing bars
            a.set_yscale("log")
            low = max(1e-4, float(np.min(size, initial=1.0, where=size > 0)) / 2)
            a.set_ylim(low, top * (top / low) ** 0.3)
        else:
            a.set_ylim(0, top * 1.3)
        a.set_xlabel("time (days)")
        a.set_ylabel("size (x initial burden)")
        a.set_title(f"{therapy}: {s}" if therapy else str(s), fontsize=10)
        a.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.08, 0.5))
    return finish(
        fig, list(axes[: len(samples)]), show=show, save=save, return_fig=return_fig, ax_given=ax is not None
    )
