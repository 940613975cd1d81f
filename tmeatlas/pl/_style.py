"""Figure presets: ``tm.pl.set_style("paper")`` for journal figures, ``"notebook"`` for screens.

Sizes follow the Nature Research figure guide (research-figure-guide.nature.com, "Building and
exporting figure panels" and "Preparing figures - our specifications"): printed figures are
89 mm (single column) or 183 mm (double column) wide and at most 170 mm high, all text is
5-7 pt in a standard sans-serif font (Arial or Helvetica), fonts are embedded as TrueType
(Type 42) and stay editable, raster images are at least 300 dpi, and palettes are accessible
to colour-blind readers (Wong 2011, Nat. Methods 8:441 - the Okabe-Ito colours). Cell Press
columns are 85 mm (single), 114 mm (1.5) and 174 mm (double); check the journal's current guide.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

from .._errors import InvalidParameterError
from .._settings import logger

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

__all__ = ["DOUBLE_COLUMN_MM", "SINGLE_COLUMN_MM", "STYLES", "mm_to_inches", "set_style"]

#: Nature single-column figure width (mm)
SINGLE_COLUMN_MM = 89.0
#: Nature double-column figure width (mm)
DOUBLE_COLUMN_MM = 183.0
#: the style names :func:`set_style` accepts
STYLES = ("paper", "notebook", "default")

#: sans-serif fonts tried in order: Arial/Helvetica (Nature's advice), then metric-compatible
#: free clones (Liberation Sans, Nimbus Sans, TeX Gyre Heros), then matplotlib's own DejaVu Sans
_SANS = ["Arial", "Helvetica", "Liberation Sans", "Nimbus Sans", "TeX Gyre Heros", "DejaVu Sans"]
_GENERIC_FAMILIES = ("serif", "sans-serif", "monospace", "cursive", "fantasy")

#: rcParams that are not style (backend, interactivity, ...): never touched by ``"default"``;
#: the same list as matplotlib's own ``rcdefaults`` skips
_NOT_STYLE = {
    "backend", "backend_fallback", "interactive", "toolbar", "timezone", "date.epoch",
    "figure.max_open_warning", "figure.raise_window", "savefig.directory", "tk.window_focus",
    "docstring.hardcopy",
}  # fmt: skip

# per-style sizes, in points unless said otherwise; "small" text (ticks, legend) and the figure
# title are scaled from the base font size so that ``font_size=`` moves them together
_PRESETS: dict[str, dict[str, float]] = {
    "paper": {
        "font": 7.0,  # Nature: 5-7 pt
        "small": 6.0 / 7.0,
        "title": 1.0,
        "suptitle": 1.0,
        "axes_lw": 0.6,  # Nature asks for strokes of roughly 0.25-1 pt
        "line_lw": 1.0,
        "patch_lw": 0.5,
        "grid_lw": 0.4,
        "marker": 3.0,
        "tick_major": 2.5,
        "tick_minor": 1.5,
        "tick_major_w": 0.6,
        "tick_minor_w": 0.4,
        "tick_pad": 2.0,
        "labelpad": 2.0,
        "titlepad": 4.0,
        "pad_inches": 0.02,
        "dpi": 300.0,  # Nature: images at least 300 dpi
        "width_in": SINGLE_COLUMN_MM / 25.4,
        "aspect": 0.75,
    },
    "notebook": {
        "font": 11.0,
        "small": 10.0 / 11.0,
        "title": 12.0 / 11.0,
        "suptitle": 13.0 / 11.0,
        "axes_lw": 1.0,
        "line_lw": 1.75,
        "patch_lw": 1.0,
        "grid_lw": 0.8,
        "marker": 6.0,
        "tick_major": 4.0,
        "tick_minor": 2.5,
        "tick_major_w": 1.0,
        "tick_minor_w": 0.8,
        "tick_pad": 3.5,
        "labelpad": 4.0,
        "titlepad": 6.0,
        "pad_inches": 0.1,
        "dpi": 150.0,
        "width_in": 6.4,  # matplotlib's default figure size
        "aspect": 0.75,
    },
}


def mm_to_inches(mm: float) -> float:
    """Millimetres to inches (matplotlib sizes figures in inches): ``mm / 25.4``."""
    return float(mm) / 25.4


def _check_positive(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidParameterError(f"`{name}` must be a positive number, got {value!r}.")
    return float(value)


def _defaults() -> dict[str, Any]:
    """Matplotlib's built-in defaults (``rcParamsDefault``) without the non-style settings."""
    import warnings

    import matplotlib as mpl

    with warnings.catch_warnings():  # deprecated rcParams, if any, warn on access
        warnings.simplefilter("ignore")
        return {
            k: v
            for k, v in mpl.rcParamsDefault.items()
            if k not in _NOT_STYLE and not k.startswith("webagg.")
        }


def _preset(style: str, font_size: float | None, dpi: float | None) -> dict[str, Any]:
    from cycler import cycler

    from ._utils import CB_PALETTE

    p = _PRESETS[style]
    base = font_size if font_size is not None else p["font"]
    small = round(base * p["small"], 2)
    w = p["width_in"]
    return {
        # text
        "font.family": ["sans-serif"],
        "font.sans-serif": list(_SANS),
        "font.size": base,
        "axes.titlesize": round(base * p["title"], 2),
        "axes.labelsize": base,
        "xtick.labelsize": small,
        "ytick.labelsize": small,
        "legend.fontsize": small,
        "legend.title_fontsize": base,
        "figure.titlesize": round(base * p["suptitle"], 2),
        "mathtext.default": "regular",  # math text in the same font as the rest
        # lines and ticks
        "axes.linewidth": p["axes_lw"],
        "lines.linewidth": p["line_lw"],
        "lines.markersize": p["marker"],
        "patch.linewidth": p["patch_lw"],
        "grid.linewidth": p["grid_lw"],
        "xtick.major.size": p["tick_major"],
        "ytick.major.size": p["tick_major"],
        "xtick.minor.size": p["tick_minor"],
        "ytick.minor.size": p["tick_minor"],
        "xtick.major.width": p["tick_major_w"],
        "ytick.major.width": p["tick_major_w"],
        "xtick.minor.width": p["tick_minor_w"],
        "ytick.minor.width": p["tick_minor_w"],
        "xtick.major.pad": p["tick_pad"],
        "ytick.major.pad": p["tick_pad"],
        "axes.labelpad": p["labelpad"],
        "axes.titlepad": p["titlepad"],
        # layout
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": False,  # Nature: avoid background grid lines
        "legend.frameon": False,
        "figure.figsize": (w, round(w * p["aspect"], 4)),
        # colours (compartments and cell types keep COMPARTMENT_COLORS / MAJOR_COLORS)
        "axes.prop_cycle": cycler(color=list(CB_PALETTE)),
        "image.cmap": "viridis",
        # output: editable text in vector files, tight bounding box, raster resolution
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "svg.fonttype": "none",
        "savefig.bbox": "tight",
        "savefig.pad_inches": p["pad_inches"],
        "savefig.dpi": dpi if dpi is not None else p["dpi"],
    }


def _apply_font_family(rc: dict[str, Any], font_family: str) -> None:
    """Put ``font_family`` first: a generic family directly, a named font ahead of the sans-serif list."""
    if font_family in _GENERIC_FAMILIES:
        rc["font.family"] = [font_family]
        return
    from matplotlib import font_manager

    installed = {f.name.lower() for f in font_manager.fontManager.ttflist}
    if font_family.lower() not in installed:
        logger.warning(
            "font %r is not installed; figures fall back to the next available of %s. Install it "
            "(e.g. the 'Liberation Sans' package as an Arial substitute) and clear matplotlib's font cache.",
            font_family,
            ", ".join(_SANS),
        )
    rc["font.family"] = ["sans-serif"]
    sans = rc.get("font.sans-serif") or list(_SANS)
    rc["font.sans-serif"] = [font_family, *[f for f in sans if f != font_family]]


def set_style(
    style: str = "paper",
    *,
    font_size: float | None = None,
    font_family: str | None = None,
    dpi: float | None = None,
    context: bool = False,
) -> AbstractContextManager | None:
    """Set matplotlib's figure style for publication (``"paper"``) or screens (``"notebook"``).

    Method: fills a dictionary of :data:`matplotlib.rcParams` from a preset and either applies
    it globally (``rcParams.update``) or returns :func:`matplotlib.rc_context` with it, which
    restores every rcParam on exit. ``"paper"`` and ``"notebook"`` set the same keys, so
    switching between them leaves nothing behind; other rcParams the user changed are kept.

    ``"paper"`` follows the Nature Research figure guide (research-figure-guide.nature.com,
    "Building and exporting figure panels"; "Preparing figures - our specifications"):

    - text 7 pt (ticks and legend 6 pt): Nature asks for 5-7 pt at print size, in a standard
      sans-serif font (Arial or Helvetica; the free metric clones Liberation Sans, Nimbus Sans
      and TeX Gyre Heros, then DejaVu Sans, are used when Arial is not installed);
    - axes and tick lines 0.6 pt, data lines 1 pt (within the 0.25-1 pt strokes journals ask
      for), ticks 2.5 pt long, no top/right spines, no grid, no legend frame;
    - figure size for one Nature column: 89 mm wide (183 mm for two columns, at most 170 mm
      high; see :data:`SINGLE_COLUMN_MM`, :data:`DOUBLE_COLUMN_MM`, :func:`mm_to_inches`).
      Cell Press columns are 85, 114 and 174 mm;
    - vector output keeps text as text: ``pdf.fonttype = ps.fonttype = 42`` (TrueType, which
      Nature asks for: "Embed fonts (True Type 2 or 42)") and ``svg.fonttype = "none"``;
    - ``savefig.bbox = "tight"`` and ``savefig.dpi = 300``, Nature's minimum for images.

    ``"notebook"`` uses 11 pt text, 1 pt axes, matplotlib's 6.4 x 4.8 in figures and 150 dpi.
    ``"default"`` restores matplotlib's built-in rcParams (:data:`matplotlib.rcParamsDefault`,
    as :func:`matplotlib.rcdefaults`; the backend and other non-style settings are untouched),
    undoing any earlier call.

    Both presets make :data:`CB_PALETTE` the default colour cycle (``axes.prop_cycle``: the
    Okabe & Ito colours first, the accessible palette Nature cites via Wong 2011, Nat. Methods
    8:441) and ``viridis`` the default colour map (perceptually uniform and colour-blind safe).
    Compartment and cell-type colours are *not* part of a style: every ``tm.pl`` plot takes
    them from ``COMPARTMENT_COLORS`` and ``MAJOR_COLORS`` in ``tmeatlas.pl._utils``, so a
    compartment or cell type has the same colour in every plot and under every style.

    Parameters
    ----------
    style
        ``"paper"`` (journal figures), ``"notebook"`` (screens) or ``"default"`` (matplotlib's
        defaults, i.e. undo).
    font_size
        Base font size in points (axis labels, titles); tick labels and legends are scaled with
        it (6/7 of it for ``"paper"``). Default: 7 for ``"paper"``, 11 for ``"notebook"``; with
        ``"default"`` only ``font.size`` is set.
    font_family
        A generic family (``"sans-serif"``, ``"serif"``, ...) or a font name such as
        ``"Arial"``, put first in the sans-serif list (a warning is logged when it is not
        installed, and the next available font is used).
    dpi
        Resolution of raster files written by ``savefig`` (``savefig.dpi``). Default: 300 for
        ``"paper"``, 150 for ``"notebook"``. The on-screen ``figure.dpi`` is not changed.
    context
        ``False``: change the global rcParams and return ``None``. ``True``: change nothing and
        return a context manager that applies the style inside a ``with`` block only::

            with tm.pl.set_style("paper", context=True):
                tm.pl.composition(adata, sample_key="sample", save="fig1b.pdf")

    Returns
    -------
    ``None``, or a context manager (:func:`matplotlib.rc_context`) when ``context=True``.

    Raises
    ------
    InvalidParameterError
        Unknown ``style`` (the valid names are listed), a ``font_size`` or ``dpi`` that is not
        a positive number, an empty or non-text ``font_family``, or a non-boolean ``context``.

    Examples
    --------
    >>> import tmeatlas as tm
    >>> tm.pl.set_style("paper")  # all later figures: 7 pt, 89 mm wide, editable PDF text
    >>> tm.pl.set_style("default")  # back to matplotlib's defaults
    """
    if not isinstance(style, str) or style.lower() not in STYLES:
        raise InvalidParameterError(f"Unknown style {style!r}; choose one of {', '.join(map(repr, STYLES))}.")
    style = style.lower()
    font_size = _check_positive("font_size", font_size)
    dpi = _check_positive("dpi", dpi)
    if font_family is not None and (not isinstance(font_family, str) or not font_family.strip()):
        raise InvalidParameterError(
            f"`font_family` must be a font name (e.g. 'Arial') or a generic family "
            f"({', '.join(_GENERIC_FAMILIES)}), got {font_family!r}."
        )
    if not isinstance(context, bool):
        raise InvalidParameterError(f"`context` must be True or False, got {context!r}.")

    import matplotlib as mpl

    if style == "default":
        rc = _defaults()
        if font_size is not None:
            rc["font.size"] = font_size
        if dpi is not None:
            rc["savefig.dpi"] = dpi
    else:
        rc = _preset(style, font_size, dpi)
    if font_family is not None:
        _apply_font_family(rc, font_family.strip())

    if context:
        return mpl.rc_context(rc)
    mpl.rcParams.update(rc)
    logger.debug("matplotlib style set to %r", style)
    return None
