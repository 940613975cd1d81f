"""Plots of predicted therapy survival and of covering therapy combinations.

``tm.pl.therapy_survival``, ``tm.pl.survival_reasons`` and ``tm.pl.combination_cover`` draw the
results of ``tm.tl.therapy_survival`` and ``tm.tl.combination_cover``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidParameterError, MissingResultError
from .._keys import UNS
from .._store import plain, read_params
from .._validation import check_adata, check_int, suggest_names
from ._utils import CB_PALETTE, finish, new_axes

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

__all__ = ["combination_cover", "survival_reasons", "therapy_survival"]

#: default keys (``tmeatlas/_keys.py``)
UNS_THERAPY_SURVIVAL = UNS.therapy_survival
UNS_COMBINATION_COVER = UNS.combination_cover
#: separator of sample and group in subpopulation labels
SEP = " · "
#: most therapies drawn as columns by :func:`therapy_survival`; with more, therapies are the rows
MAX_THERAPY_COLUMNS = 25
#: bar colours of :func:`survival_reasons` (Okabe-Ito vermillion / blue: safe for colour-vision deficiencies)
FLAGGED_COLOR = "#D55E00"
NOT_FLAGGED_COLOR = "#0072B2"
#: fill of a subpopulation that a combination leaves uncovered in :func:`combination_cover`
UNCOVERED_COLOR = "#EEEEEE"
#: characters per line of the wrapped reasons in :func:`survival_reasons`
WRAP_WIDTH = 80
#: the tool's default flag threshold, used when the result does not record one
_DEFAULT_THRESHOLD = 0.5

_RUN_SURVIVAL = "run `tm.tl.therapy_survival(adata, therapies=..., groupby=..., sample_key=...)` first."
_RUN_COVER = (
    "run `tm.tl.therapy_survival(adata, therapies=...)` and then `tm.tl.combination_cover(adata)` first."
)


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------
def _check_key(key: Any) -> None:
    """Nothing; an error unless ``key`` is a non-empty string."""
    if not isinstance(key, str) or not key:
        raise InvalidParameterError(f"key must be a non-empty string (a key of adata.uns), got {key!r}.")


def _check_bool(name: str, value: Any) -> None:
    """Nothing; an error unless ``value`` is a bool."""
    if not isinstance(value, bool | np.bool_):
        raise InvalidParameterError(f"{name} must be True or False, got {value!r}.")


def _as_bool(col: pd.Series) -> pd.Series:
    """Booleans stored by the tools (bools, or their strings after some round trips)."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype(bool)
    return col.astype(str).isin(["True", "true", "1"])


def _survival(adata: AnnData, key: str) -> tuple[pd.DataFrame, list[str], float]:
    """The survival table (typed), the therapies in the tool's order and the flag threshold."""
    check_adata(adata)
    _check_key(key)
    res = adata.uns.get(key)
    if not isinstance(res, Mapping) or "table" not in res:
        raise MissingResultError(f"no therapy survival result in adata.uns[{key!r}]; {_RUN_SURVIVAL}")
    table = pd.DataFrame(res["table"]).copy()
    missing = [
        c for c in ("therapy", "sample", "group", "surviving_fraction", "survives") if c not in table.columns
    ]
    if missing:
        raise MissingResultError(
            f"adata.uns[{key!r}]['table'] lacks the columns {missing}; rerun `tm.tl.therapy_survival`."
        )
    for c in ("therapy", "sample", "group"):
        table[c] = table[c].astype(str)
    for c in ("n_cells", "fraction_of_sample", "surviving_fraction", "ci_low", "ci_high"):
        if c in table.columns:
            table[c] = pd.to_numeric(table[c], errors="coerce").astype(float)
    if "ci_low" not in table.columns:
        table["ci_low"] = table["surviving_fraction"]
    if "ci_high" not in table.columns:
        table["ci_high"] = table["surviving_fraction"]
    table["survives"] = _as_bool(table["survives"])
    table["reasons"] = table["reasons"].fillna("").astype(str) if "reasons" in table.columns else ""
    order = list(pd.unique(table["therapy"]))
    params = read_params(adata, key)
    threshold = _DEFAULT_THRESHOLD
    listed = params.get("therapies")
    if listed is not None and not isinstance(listed, str):
        listed = [str(t) for t in np.asarray(listed).ravel()]
        order = [t for t in listed if t in set(order)] + [t for t in order if t not in set(listed)]
    thr = params.get("threshold")
    if isinstance(thr, int | float) and np.isfinite(thr):
        threshold = float(thr)
    return table.reset_index(drop=True), order, threshold


def _resolve_therapy(name: Any, known: Sequence[str], what: str = "therapy") -> str:
    """``name`` as spelled in the result (exact, then case-insensitive), else an error with close names."""
    if not isinstance(name, str):
        raise InvalidParameterError(f"{what} must be a therapy name (a string), got {name!r}.")
    if name in known:
        return name
    lower = {k.lower(): k for k in known}
    if name.lower() in lower:
        return lower[name.lower()]
    hint = suggest_names([name], known, cutoff=0.5)
    hint = f" ({hint})" if hint else ""
    raise InvalidParameterError(
        f"unknown {what} {name!r}{hint}: it was not scored by `tm.tl.therapy_survival`; scored: {list(known)}."
    )


def _as_list(name: str, value: Any) -> list[str]:
    """``value`` (a string or an iterable of values) as a non-empty list of strings."""
    if isinstance(value, str):
        return [value]
    try:
        out = [str(v) for v in value]
    except TypeError:
        raise InvalidParameterError(f"{name} must be a string or a list of strings, got {value!r}.") from None
    if not out:
        raise InvalidParameterError(f"{name} must name at least one value, got {value!r}.")
    return out


def _select(table: pd.DataFrame, column: str, wanted: Any, name: str) -> pd.DataFrame:
    """Rows of ``table`` whose ``column`` is in ``wanted`` (``None``: all); unknown values are an error."""
    if wanted is None:
        return table
    wanted = _as_list(name, wanted)
    have = list(pd.unique(table[column]))
    bad = [w for w in wanted if w not in have]
    if bad:
        hint = suggest_names(bad, have)
        raise InvalidParameterError(
            f"unknown {name} {bad}; the survival table has {name} {have}." + (f" {hint}" if hint else "")
        )
    return table[table[column].isin(wanted)]


def _one_sample(table: pd.DataFrame) -> bool:
    """True when the tool ran without ``sample_key`` (every row in the pseudo-sample ``"all"``)."""
    return set(table["sample"]) == {"all"}


def _label(sample: str, group: str, single: bool) -> str:
    """The label of a subpopulation: its group alone when there is one sample, else sample · group."""
    return str(group) if single else f"{sample}{SEP}{group}"


def _split_reasons(text: str) -> list[str]:
    """Split a ``"; "``-joined reasons string, not inside parentheses (the benefit components use ``;``)."""
    out, depth, cur = [], 0, []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == ";" and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur).strip())
    return [r for r in out if r]


def _luminance(rgba) -> float:
    """Relative luminance (WCAG) of an RGB(A) colour, to pick black or white text on it."""
    c = np.asarray(rgba[:3], dtype=float)
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def _flag_note(threshold: float) -> str:
    """The legend note that explains the flags."""
    return f"survives: 95% interval > {threshold:g}, evidence decides; ?: no evidence"


# --------------------------------------------------------------------------------------------
# tm.pl.therapy_survival
# --------------------------------------------------------------------------------------------
@doc_params("plot")
def therapy_survival(
    adata: AnnData,
    *,
    key: str = UNS_THERAPY_SURVIVAL,
    samples: str | Sequence[str] | None = None,
    therapies: str | Sequence[str] | None = None,
    annotate: bool = True,
    cmap: str | Colormap = "cividis",
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    r"""Heat map of the predicted surviving fraction of each malignant subpopulation under each therapy.

    Rows are the subpopulations of :func:`tmeatlas.tl.therapy_survival` (``"sample · group"``;
    the group alone when it ran without samples), in the tool's order; columns the therapies.
    With more than :data:`MAX_THERAPY_COLUMNS` therapies the map is turned: therapies are the rows
    and subpopulations the columns (one column per therapy would make a figure too wide to read
    at a page's width; the whole knowledge base is 83 therapies).
    The colour is the subpopulation's surviving fraction, the mean over its malignant cells of
    the per-cell survival probability :math:`s_{id} = \sigma(\ell_{id})` of the tool's
    additive logistic evidence model, on a fixed [0, 1] scale (``cividis`` by default: a
    perceptually uniform map readable with colour-vision deficiencies, Nuñez et al., PLoS ONE
    13:e0199239, 2018). Cells called ``survives`` (interval above the tool's ``threshold`` with
    deciding evidence) get a bold black outline with a white halo, noted in the legend; with
    ``annotate`` each cell shows its value (bold when flagged), and a grey "?" where no evidence
    was measured (call undetermined, no fraction). Cells are vector
    patches, so PDF/SVG output stays sharp. Why a subpopulation survives:
    :func:`survival_reasons`.

    Parameters
    ----------
    adata
        Annotated data matrix with the result of :func:`tmeatlas.tl.therapy_survival`.
    key
        Key of ``adata.uns`` with that result.
    samples
        Sample or samples to show (rows of other samples are dropped); ``None``: all.
    therapies
        Therapy or therapies to show, in this order; ``None``: all scored, in the tool's order.
        Names are matched exactly, then ignoring case; unknown names are an error listing
        close ones.
    annotate
        Write the surviving fraction in each cell.
    cmap
        Colour map (name or :class:`~matplotlib.colors.Colormap`) of the surviving fraction.
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else ``[axes, colour-bar axes]``.
    """
    import matplotlib as mpl
    import matplotlib.patheffects as pe
    from matplotlib.patches import Patch, Rectangle

    table, order, threshold = _survival(adata, key)
    _check_bool("annotate", annotate)
    try:
        cm = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
    except (KeyError, ValueError):
        raise InvalidParameterError(
            f"unknown colour map {cmap!r}; use a matplotlib name such as 'cividis' or 'viridis'."
        ) from None
    if not isinstance(cm, mpl.colors.Colormap):
        raise InvalidParameterError(f"cmap must be a colour-map name or a Colormap, got {cmap!r}.")
    if therapies is not None:
        order = list(dict.fromkeys(_resolve_therapy(t, order) for t in _as_list("therapies", therapies)))
    table = _select(table, "sample", samples, "samples")
    table = table[table["therapy"].isin(order)]
    single = _one_sample(table)
    subs = table[["sample", "group"]].drop_duplicates().reset_index(drop=True)
    labels = [_label(s, g, single) for s, g in zip(subs["sample"], subs["group"])]
    row_of = {(s, g): i for i, (s, g) in enumerate(zip(subs["sample"], subs["group"]))}
    col_of = {t: j for j, t in enumerate(order)}
    n_r, n_c = len(subs), len(order)
    vals = np.full((n_r, n_c), np.nan)
    flag = np.zeros((n_r, n_c), bool)
    scored = np.zeros((n_r, n_c), bool)
    for r in table.itertuples(index=False):
        i, j = row_of[(r.sample, r.group)], col_of[r.therapy]
        vals[i, j] = r.surviving_fraction
        flag[i, j] = bool(r.survives)
        scored[i, j] = True

    turned = n_c > MAX_THERAPY_COLUMNS  # therapies as rows: a page's width holds few columns
    row_names, col_names = (order, labels) if turned else (labels, order)
    if turned:
        vals, flag, scored, n_r, n_c = vals.T, flag.T, scored.T, n_c, n_r
    # turned: room for the long therapy names and the legend above the few columns
    width = max(6.5, 0.6 * n_c + 4.5) if turned else max(3.6, 0.55 * n_c + 3.0)
    fig, axes = new_axes(ax, panel_size=(width, max(2.6, 0.34 * n_r + 2.2)))
    a = axes[0]
    mesh = a.pcolormesh(
        np.arange(n_c + 1) - 0.5, np.arange(n_r + 1) - 0.5, np.ma.masked_invalid(vals), cmap=cm, vmin=0.0,
        vmax=1.0, edgecolors="white", linewidth=0.6,
    )  # fmt: skip
    mesh.set_gid("surviving_fraction")
    halo = [pe.withStroke(linewidth=3.5, foreground="white")]
    for i, j in zip(*np.nonzero(flag)):
        box = Rectangle(
            (j - 0.38, i - 0.38), 0.76, 0.76, fill=False, edgecolor="black", linewidth=2.0, zorder=3
        )
        box.set_path_effects(halo)
        box.set_gid("survives")
        a.add_patch(box)
    if annotate:  # inside their cells: left out of the layout, which then measures hundreds fewer texts
        fs = "small" if n_c <= 12 else "x-small"
        for i, j in zip(*np.nonzero(np.isfinite(vals))):
            color = "black" if _luminance(cm(float(vals[i, j]))) > 0.35 else "white"
            a.text(j, i, f"{vals[i, j]:.2f}", ha="center", va="center", color=color, fontsize=fs,
                   fontweight="bold" if flag[i, j] else "normal", zorder=4, in_layout=False)  # fmt: skip
        for i, j in zip(*np.nonzero(scored & ~np.isfinite(vals))):  # no evidence measured: undetermined
            a.text(j, i, "?", ha="center", va="center", color="0.35", fontsize=fs, zorder=4, in_layout=False)
    a.set_xlim(-0.5, n_c - 0.5)
    a.set_ylim(n_r - 0.5, -0.5)
    a.set_xticks(np.arange(n_c), col_names, rotation=45, ha="right", rotation_mode="anchor", fontsize="small")
    a.set_yticks(np.arange(n_r), row_names, fontsize="small")
    a.tick_params(length=0)
    for s in a.spines.values():
        s.set_visible(False)
    sub_title = "group" if single else f"subpopulation (sample{SEP}group)"
    a.set_xlabel(sub_title if turned else "therapy")
    a.set_ylabel("therapy" if turned else sub_title)
    cb = fig.colorbar(
        mesh, ax=a, shrink=0.6, aspect=12, anchor=(0.0, 1.0), label="predicted\nsurviving fraction"
    )
    handle = Patch(facecolor="none", edgecolor="black", linewidth=2.0, label=_flag_note(threshold))
    a.legend(handles=[handle], loc="lower left", bbox_to_anchor=(0.0, 1.01), frameon=False, fontsize="small",
             borderaxespad=0.0, handlelength=1.2)  # fmt: skip
    if not len(labels):
        a.text(
            0.5, 0.5, "no subpopulations", transform=a.transAxes, ha="center", va="center", color="#777777"
        )
    return finish(fig, [a, cb.ax], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


# --------------------------------------------------------------------------------------------
# tm.pl.survival_reasons
# --------------------------------------------------------------------------------------------
@doc_params("plot")
def survival_reasons(
    adata: AnnData,
    *,
    therapy: str,
    sample: str | Sequence[str] | None = None,
    group: str | Sequence[str] | None = None,
    key: str = UNS_THERAPY_SURVIVAL,
    max_reasons: int = 5,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    """For one therapy, each subpopulation's surviving fraction with its interval and the reasons.

    One horizontal bar per malignant subpopulation (``"sample · group"``, with its number of
    cells) of :func:`tmeatlas.tl.therapy_survival`: the bar is the predicted surviving
    fraction (mean per-cell survival probability), the error bar the 2.5-97.5% percentile
    bootstrap interval over the subpopulation's cells (``ci_low``, ``ci_high``; it reflects
    cell sampling, not the uncertainty of the model's fixed weights), the dashed line the
    tool's ``threshold``. Subpopulations flagged ``survives`` (``ci_low > threshold``) are
    drawn in vermillion with bold labels, the others in blue (Okabe-Ito colours, safe under
    colour-vision deficiencies). Next to each bar are its top ``max_reasons`` reasons: the
    evidence terms ranked by the size of their mean contribution to the logit, in words,
    then the caveats (e.g. a required mutation that expression cannot show), wrapped.

    Parameters
    ----------
    adata
        Annotated data matrix with the result of :func:`tmeatlas.tl.therapy_survival`.
    therapy
        The therapy (a name scored by the tool; matched exactly, then ignoring case; unknown
        names are an error listing close ones).
    sample
        Sample or samples to show; ``None``: all.
    group
        Group or groups (values of the tool's ``groupby`` column) to show; ``None``: all.
    key
        Key of ``adata.uns`` with the result.
    max_reasons
        Most reasons printed per subpopulation (the rest are counted).
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else the axes (in a list).
    """
    from matplotlib.patches import Patch

    table, order, threshold = _survival(adata, key)
    therapy = _resolve_therapy(therapy, order)
    max_reasons = check_int("max_reasons", max_reasons, 1)
    table = table[table["therapy"] == therapy]
    keep = _select(table, "sample", sample, "sample").index.intersection(
        _select(table, "group", group, "group").index
    )
    table = table.loc[keep]
    if table.empty:
        raise InvalidParameterError(
            f"no subpopulation of sample {sample!r} has group {group!r} in the survival table of {therapy!r}."
        )
    table = table.reset_index(drop=True)
    single = _one_sample(table)
    texts = []
    for why in table["reasons"]:
        parts = _split_reasons(why)
        shown = parts[:max_reasons]
        lines = []
        for k, p in enumerate(shown, 1):
            lines += textwrap.wrap(f"{k}. {p}", width=WRAP_WIDTH, subsequent_indent="    ") or [""]
        if len(parts) > len(shown):
            lines.append(f"(+{len(parts) - len(shown)} more)")
        texts.append(
            "\n".join(lines)
            if lines
            else "no single evidence term stands out (each adds < 0.25 to the logit)"
        )
    n_lines = np.array([t.count("\n") + 1 for t in texts])
    # rows in inches: tall enough for their wrapped text
    heights = np.maximum(0.42, 0.15 * n_lines + 0.16)
    tops = np.concatenate([[0.0], np.cumsum(heights)])
    y = tops[:-1] + heights / 2
    width = max(len(line) for t in texts for line in t.split("\n"))
    fig, axes = new_axes(ax, panel_size=(4.6 + 0.052 * width, float(tops[-1]) + 1.6))
    a = axes[0]
    frac = table["surviving_fraction"].to_numpy(float)
    lo = np.clip(frac - table["ci_low"].to_numpy(float), 0, None)
    hi = np.clip(table["ci_high"].to_numpy(float) - frac, 0, None)
    flagged = table["survives"].to_numpy(bool)
    colors = np.where(flagged, FLAGGED_COLOR, NOT_FLAGGED_COLOR)
    bars = a.barh(y, frac, height=0.3, color=colors, edgecolor="none", zorder=2)
    for b, f in zip(bars, flagged):
        b.set_gid("survives" if f else "killed")
    a.errorbar(frac, y, xerr=np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)]), fmt="none", ecolor="black",
               elinewidth=1.0, capsize=3, zorder=3)  # fmt: skip
    a.axvline(threshold, color="#555555", linestyle="--", linewidth=0.9, zorder=1)
    for yy, t in zip(y, texts):
        a.text(1.03, yy, t, transform=a.get_yaxis_transform(), ha="left", va="center", fontsize="x-small",
               color="black", clip_on=False, gid="reasons")  # fmt: skip
    labels = [
        f"{_label(s, g, single)} (n={int(n)})" if np.isfinite(n) else _label(s, g, single)
        for s, g, n in zip(
            table["sample"], table["group"], table.get("n_cells", pd.Series(np.nan, table.index))
        )
    ]
    a.set_yticks(y, labels, fontsize="small")
    for tick, f in zip(a.get_yticklabels(), flagged):
        if f:
            tick.set_fontweight("bold")
    a.set_ylim(tops[-1], 0.0)
    a.set_xlim(0.0, 1.02)
    a.set_xlabel("predicted surviving fraction (95% bootstrap interval)")
    a.grid(axis="x", color="#EEEEEE", linewidth=0.5, zorder=0)
    a.set_axisbelow(True)
    a.spines[["top", "right"]].set_visible(False)
    handles = [
        Patch(facecolor=FLAGGED_COLOR, label=_flag_note(threshold)),
        Patch(facecolor=NOT_FLAGGED_COLOR, label="not flagged"),
    ]
    leg = a.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncols=2, frameon=False,
                   fontsize="small", borderaxespad=0.0, handlelength=1.2)  # fmt: skip
    # the title above the legend (a title beside it reaches over it when the axes are narrow)
    height = leg.get_window_extent().height * 72 / fig.dpi  # points
    a.set_title(f"{therapy}: who survives and why", fontsize="medium", loc="left", pad=height + 6)
    return finish(fig, [a], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


# --------------------------------------------------------------------------------------------
# tm.pl.combination_cover
# --------------------------------------------------------------------------------------------
@doc_params("plot")
def combination_cover(
    adata: AnnData,
    *,
    key: str = UNS_COMBINATION_COVER,
    n_solutions: int = 3,
    ax: Axes | None = None,
    return_fig: bool = False,
    show: bool | None = None,
    save: str | Path | None = None,
) -> Figure | list[Axes] | None:
    r"""The best therapy combinations against the malignant subpopulations: which drug kills which.

    Rows are the ``n_solutions`` best combinations of :func:`tmeatlas.tl.combination_cover`
    (rank, therapies, number of drugs and the objective :math:`\sum_d x_d + \lambda \sum_d
    \tau_d x_d` of its set-cover integer program, with :math:`\tau_d` the therapy's toxicity);
    columns the malignant subpopulations it considered (``"sample · group"`` with the
    fraction of the sample's malignant cells; those below ``min_fraction`` were left out by
    the tool). A cell is coloured by the therapy of the combination that kills the
    subpopulation (is not predicted to leave it surviving); when several do, the cell is
    split into one stripe per therapy. Colours are fixed per candidate therapy across rows
    (:data:`~tmeatlas.pl.CB_PALETTE`, colour-blind safe). A subpopulation that the combination
    leaves uncovered (it survives every therapy in it) is light grey with a cross; the title
    counts the subpopulations that survive every candidate therapy (``uncoverable``).

    Parameters
    ----------
    adata
        Annotated data matrix with the result of :func:`tmeatlas.tl.combination_cover`.
    key
        Key of ``adata.uns`` with that result.
    n_solutions
        Number of combinations to show, best first (at most those found).
    {plot}

    Returns
    -------
    The figure when ``return_fig``; ``None`` when shown or saved; else the axes (in a list).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    check_adata(adata)
    _check_key(key)
    n_solutions = check_int("n_solutions", n_solutions, 1)
    res = adata.uns.get(key)
    if not isinstance(res, Mapping) or "solutions" not in res or "coverage" not in res:
        raise MissingResultError(f"no combination cover in adata.uns[{key!r}]; {_RUN_COVER}")
    sol = pd.DataFrame(res["solutions"]).copy()
    cov = pd.DataFrame(res["coverage"]).copy()
    unc = pd.DataFrame(res.get("uncoverable", pd.DataFrame(columns=["sample", "group"])))
    params = read_params(adata, key)
    max_drugs = params.get("max_drugs")

    fig, axes = new_axes(ax, panel_size=(6.0, 3.0))  # resized below when drawing a grid
    a = axes[0]
    if sol.empty:
        a.text(0.5, 0.5, f"no combination of at most {max_drugs} therapies covers every coverable subpopulation",
               ha="center", va="center", transform=a.transAxes, wrap=True, color="#555555")  # fmt: skip
        a.set_axis_off()
        return finish(fig, [a], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)
    sol["rank"] = pd.to_numeric(sol["rank"]).astype(int)
    sol = sol.sort_values("rank", kind="stable").head(n_solutions).reset_index(drop=True)
    cov["rank"] = pd.to_numeric(cov["rank"]).astype(int)
    for c in ("sample", "group"):
        cov[c] = cov[c].astype(str)
    cov["covered"] = _as_bool(cov["covered"])
    cov["killed_by"] = cov["killed_by"].fillna("").astype(str)
    cov["fraction_of_sample"] = pd.to_numeric(cov["fraction_of_sample"], errors="coerce")
    subs = cov[["sample", "group", "fraction_of_sample"]].drop_duplicates(["sample", "group"])
    subs = subs.sort_values(["sample", "group"], kind="stable").reset_index(drop=True)
    single = set(subs["sample"]) == {"all"}
    col_of = {(s, g): j for j, (s, g) in enumerate(zip(subs["sample"], subs["group"]))}
    combos = [[t for t in str(x).split(" + ") if t] for x in sol["therapies"]]
    candidates = params.get("therapies")
    names = (
        []
        if candidates is None or isinstance(candidates, str)
        else [str(t) for t in np.asarray(candidates).ravel()]
    )
    names += [t for c in combos for t in c if t not in names]
    palette = {t: CB_PALETTE[i % len(CB_PALETTE)] for i, t in enumerate(names)}

    n_r, n_c = len(sol), len(subs)
    if ax is None:
        fig.set_size_inches(max(5.0, 0.5 * n_c + 4.5), max(2.4, 0.5 * n_r + 2.4))
    for i, r in enumerate(sol.itertuples(index=False)):
        rows = cov[cov["rank"] == r.rank]
        for x in rows.itertuples(index=False):
            j = col_of[(x.sample, x.group)]
            killers = [t for t in x.killed_by.split(" + ") if t]
            if not x.covered or not killers:
                cell = Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, facecolor=UNCOVERED_COLOR, edgecolor="none")
                cell.set_gid("uncovered")
                a.add_patch(cell)
                a.plot([j], [i], marker="x", markersize=9, markeredgewidth=2.0, color="black", linestyle="",
                       gid="uncovered_marker")  # fmt: skip
                continue
            w = 0.9 / len(killers)
            for k, t in enumerate(killers):
                seg = Rectangle((j - 0.45 + k * w, i - 0.45), w, 0.9, facecolor=palette.get(t, "#777777"),
                                edgecolor="white", linewidth=0.5)  # fmt: skip
                seg.set_gid(f"killed_by:{t}")
                a.add_patch(seg)
    row_labels = []
    for r, combo in zip(sol.itertuples(index=False), combos):
        obj = plain(getattr(r, "objective", np.nan))
        n_d = plain(getattr(r, "n_drugs", len(combo)))
        lab = "\n".join(textwrap.wrap(" + ".join(combo) or "(none)", width=40))
        row_labels.append(f"#{int(r.rank)}  {lab}\n{int(n_d)} drug{'s' if int(n_d) != 1 else ''}, "
                          f"objective {float(obj):.2f}")  # fmt: skip
    col_labels = [
        f"{_label(s, g, single)} ({f:.0%})" if np.isfinite(f) else _label(s, g, single)
        for s, g, f in zip(subs["sample"], subs["group"], subs["fraction_of_sample"].astype(float))
    ]
    a.set_xlim(-0.5, n_c - 0.5)
    a.set_ylim(n_r - 0.5, -0.5)
    a.set_xticks(
        np.arange(n_c), col_labels, rotation=45, ha="right", rotation_mode="anchor", fontsize="small"
    )
    a.set_yticks(np.arange(n_r), row_labels, fontsize="small")
    a.tick_params(length=0)
    for s in a.spines.values():
        s.set_visible(False)
    a.set_xlabel(f"malignant subpopulation (sample{SEP}group, % of sample)" if not single else "group")
    shown = [t for t in names if any(t in c for c in combos)]
    handles = [Patch(facecolor=palette[t], label=t) for t in shown]
    if not cov[cov["rank"].isin(sol["rank"])]["covered"].all():
        handles.append(Line2D([], [], marker="x", color="black", markeredgewidth=2.0, linestyle="",
                              markerfacecolor=UNCOVERED_COLOR, label="not covered"))  # fmt: skip
    a.legend(handles=handles, title="killed by", loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
             fontsize="small", title_fontsize="small", borderaxespad=0.0)  # fmt: skip
    title = "best combinations"
    if len(unc):
        title += f"  ({len(unc)} subpopulation{'s' if len(unc) != 1 else ''} survive every candidate)"
    a.set_title(title, fontsize="medium", loc="left")
    return finish(fig, [a], show=show, save=save, return_fig=return_fig, ax_given=ax is not None)
