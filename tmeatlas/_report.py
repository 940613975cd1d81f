"""Tables, figures and self-contained HTML reports of a :func:`tmeatlas.run` result.

The HTML reports embed every image (base64 PNG) and style (inline CSS), load nothing from the
network and run no script, so they open offline and can be sent as single files.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import platform
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._figsave import frozen_tight_bbox as _frozen_tight_bbox
from ._keys import OBS, OBSM, UNS
from ._names import safe_names
from ._steps import METHODS, STEP_UNS, combination_key, shown_results
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from anndata import AnnData

    from ._figsave import FigureSaver

__all__ = [
    "drop_unwritten",
    "figure_saver",
    "malignant_summary",
    "write_figures",
    "write_reports",
    "write_tables",
]

#: programs shown in the signature panels (those present in the data are drawn)
REPORT_SIGNATURES = [
    "TIROSH_G2M", "HALLMARK_HYPOXIA", "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION", "STEMNESS_CANCERSEA",
    "TEX_CHU2023", "TPEX_TSUI2022", "CYTOTOXIC_GUO2018", "AYERS_IFNG_6", "MHC1_BAGAEV2021", "MHC2_BAGAEV2021",
    "KIEFFER_IL_ICAF", "KIEFFER_ECM_MYCAF", "AZIZI_M1", "AZIZI_M2", "TAM_BAGAEV2021", "TREG_BAGAEV2021",
]  # fmt: skip

SECTIONS = [
    ("composition", "Composition: compartments and cell types"),
    ("malignant", "Malignant cells, copy number and subclones"),
    ("heterogeneity", "Tumour heterogeneity: clones, states and their spatial mixing"),
    ("programs", "Programs and immune checkpoints"),
    ("spatial", "Spatial organisation and immune phenotype"),
    ("therapy", "Therapy survival and combinations"),
]

PALETTE_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;color:#1b1b1b;background:#fafafa;line-height:1.45}
header{background:#0b3954;color:#fff;padding:18px 32px}header h1{margin:0 0 4px;font-size:24px}header p{margin:0;opacity:.85}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 32px;z-index:2}
nav a{margin-right:16px;color:#0072B2;text-decoration:none;font-size:14px}
main{padding:8px 32px 40px;max-width:1300px}section{margin-top:28px}h2{border-bottom:2px solid #0b3954;padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card .v{font-size:22px;font-weight:600}.card .k{font-size:12px;color:#555}
figure{background:#fff;border:1px solid #e2e2e2;border-radius:6px;margin:12px 0;padding:10px;display:inline-block;max-width:100%;vertical-align:top}
figure img{max-width:100%;height:auto;display:block}figcaption{font-size:13px;color:#444;margin-top:6px;max-width:900px}
table.tbl{border-collapse:collapse;font-size:12.5px;background:#fff;margin:8px 0}
table.tbl th,table.tbl td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
table.tbl th{background:#eef3f7}.note{font-size:13px;color:#555}.err{color:#b00020;font-size:13px}
code{background:#f0f0f0;padding:0 3px;border-radius:3px}
"""


@dataclass
class Figure:
    """One figure written by :func:`write_figures`."""

    name: str
    section: str
    title: str
    caption: str
    png: Path | None = None
    pdf: Path | None = None
    error: str = ""


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def malignant_summary(adata: AnnData, *, sample_key: str) -> pd.DataFrame:
    """Per sample: malignant cells, fraction and its 95% interval, uncertain cells, CNV evidence.

    The interval combines the uncertainty of the calls (a Poisson-binomial over the calibrated
    per-cell probabilities, variance ``sum p(1-p)``) with binomial sampling of cells
    (``n f (1-f)``): ``f +- 1.96 sqrt(sum p(1-p) + n f(1-f)) / n``.
    """
    o = adata.obs
    rows = []
    per = adata.uns.get(UNS.malignant, {}).get("samples")
    per = per.set_index("sample") if isinstance(per, pd.DataFrame) and "sample" in per else None
    clones = adata.uns.get(UNS.cnv_clones, {}).get("clones")
    clones = clones if isinstance(clones, pd.DataFrame) and "sample" in clones else None
    for s in (
        o[sample_key].cat.categories if hasattr(o[sample_key], "cat") else sorted(o[sample_key].unique())
    ):
        m = (o[sample_key] == s).to_numpy()
        n = int(m.sum())
        if n == 0:
            continue
        call = o[OBS.malignant].astype(str).to_numpy()[m] if OBS.malignant in o else np.array([], dtype=str)
        p = o[OBS.malignant_prob].to_numpy(float)[m] if OBS.malignant_prob in o else np.full(n, np.nan)
        n_mal = int((call == "malignant").sum())
        f = n_mal / n
        p_ok = np.nan_to_num(p, nan=0.0)
        half = 1.96 * np.sqrt(np.sum(p_ok * (1 - p_ok)) + n * f * (1 - f)) / n
        row = {
            "sample": str(s), "n_cells": n, "n_malignant": n_mal, "malignant_fraction": f,
            "ci_low": max(0.0, f - half), "ci_high": min(1.0, f + half),
            "n_uncertain": int((call == "uncertain").sum()),
            "mean_probability_of_called": float(np.nanmean(p[call == "malignant"])) if n_mal else float("nan"),
            "n_clones": int((clones["sample"].astype(str) == str(s)).sum()) if clones is not None else 0,
        }  # fmt: skip
        if per is not None and str(s) in per.index:
            for c in ("coherent_cnv", "cnv_arms", "reason"):
                if c in per.columns:
                    row[c] = per.loc[str(s), c]
        rows.append(row)
    return pd.DataFrame(rows)


def write_tables(adata: AnnData, folder: Path, *, sample_key: str) -> dict[str, Path]:
    """Write every result as a tidy CSV into ``folder``; return ``{name: path}``."""
    from . import get

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def put(name: str, make: Callable[[], pd.DataFrame | None], index: bool = False) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = make()
        except Exception as e:
            from ._settings import logger

            logger.warning("table %s not written: %s", name, e)
            return
        if df is None:
            return
        path = folder / f"{name}.csv"
        df.to_csv(path, index=index)
        out[name] = path

    o, u = adata.obs, adata.uns
    put("cells", lambda: o, index=True)
    if UNS.pipeline in u:
        put("pipeline_steps", lambda: u[UNS.pipeline]["steps"])
    if UNS.qc in u:
        put("qc_per_sample", lambda: u[UNS.qc]["samples"])
    if UNS.gene_positions in u:
        put("gene_positions", lambda: get.gene_positions(adata))
    if OBS.malignant in o:
        put("malignant_per_sample", lambda: malignant_summary(adata, sample_key=sample_key))
        put("malignant_cnv_cluster_arms", lambda: u[UNS.malignant].get("arm_shifts"))
    if UNS.cnv_clones in u:
        for k in ("clones", "arm_calls", "tree"):
            put(f"cnv_clones_{k}", lambda k=k: u[UNS.cnv_clones].get(k))
    if OBS.cell_type in o:
        put("composition", lambda: get.composition(adata, groupby=OBS.cell_type, sample_key=sample_key))
        put(
            "composition_major",
            lambda: get.composition(adata, groupby=OBS.cell_type_major, sample_key=sample_key),
        )
        put("annotation_markers_used", lambda: u[UNS.annotate].get("markers_used"))
    if OBSM.signatures in adata.obsm and OBS.cell_type_major in o:
        put(
            "signature_summary",
            lambda: get.signature_summary(adata, groupby=OBS.cell_type_major, sample_key=sample_key),
        )
        put(
            "signature_tests",
            lambda: get.signature_test(adata, groupby=OBS.cell_type_major, sample_key=sample_key),
        )
    if OBS.stemness in o and OBS.cnv_clone in o:
        put("stemness_per_clone", lambda: _stemness_per_clone(adata, sample_key))
    if UNS.checkpoint_interactions in u:
        put("checkpoint_interactions", lambda: get.checkpoint_interactions(adata))
    if UNS.interface in u:
        put("interface_per_sample", lambda: u[UNS.interface].get("samples"))
    if UNS.immune_phenotype in u:
        put("immune_phenotype", lambda: u[UNS.immune_phenotype].get("table"))
    if UNS.niches in u:
        put("niche_composition", lambda: u[UNS.niches].get("composition"), index=True)
        put("niche_summary", lambda: u[UNS.niches].get("summary"))
    if UNS.heterogeneity in u:
        put("heterogeneity", lambda: get.heterogeneity(adata))
    if UNS.immunotherapy_benefit in u:
        put("immunotherapy_benefit", lambda: get.immunotherapy_benefit(adata))
        put("immunotherapy_components", lambda: get.immunotherapy_benefit(adata, components=True))
    if UNS.therapy_survival in u:
        put("therapy_survival", lambda: get.therapy_survival(adata))
    covers = [(s, k) for s, k in _cover_keys(adata, sample_key)]
    if covers:
        put("combination_cover", lambda: pd.concat(
            [get.combination_cover(adata, key=k).assign(sample=str(s)) for s, k in covers], ignore_index=True))  # fmt: skip
    for k in sorted(x for x in u if str(x).startswith(UNS.therapy_simulation)):
        put(k, lambda k=k: u[k].get("summary"))
    return out


def _stemness_per_clone(adata: AnnData, sample_key: str) -> pd.DataFrame:
    """Cells, mean and median stemness per sample and CNV subclone."""
    o = adata.obs
    m = o[OBS.cnv_clone].notna() & o[OBS.stemness].notna()
    df = o.loc[m, [sample_key, OBS.cnv_clone, OBS.stemness]].copy()
    df[OBS.cnv_clone] = df[OBS.cnv_clone].astype(str)
    return (
        df.groupby([sample_key, OBS.cnv_clone], observed=True)[OBS.stemness]
        .agg(n_cells="size", mean_stemness="mean", median_stemness="median")
        .reset_index()
        .rename(columns={sample_key: "sample", OBS.cnv_clone: "clone"})
    )


def _niche_counts(adata: AnnData, mask: np.ndarray, summary: pd.DataFrame) -> pd.DataFrame:
    """Cells and fraction of each niche among the cells of ``mask`` (one patient, or the cohort), in
    the order of the cohort's niche summary.
    """
    niches = adata.obs.loc[mask, OBS.niche].astype(str)
    counts = niches.value_counts()
    order = [str(n) for n in summary["niche"]] + [
        n for n in counts.index if n not in set(summary["niche"].astype(str))
    ]
    n = np.array([int(counts.get(k, 0)) for k in order])
    return pd.DataFrame({"niche": order, "n_cells": n, "fraction": np.round(n / max(int(n.sum()), 1), 4)})


def _cover_keys(adata: AnnData, sample_key: str) -> list[tuple[str, str]]:
    """``(sample, uns key)`` of each sample's combination cover present in ``adata``."""
    cats = (
        adata.obs[sample_key].cat.categories
        if hasattr(adata.obs[sample_key], "cat")
        else adata.obs[sample_key].unique()
    )
    return [(str(s), combination_key(s)) for s in cats if combination_key(s) in adata.uns]


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


#: resolution of the PNG figures (the PDFs are vector)
PNG_DPI = 130
#: zlib level of the PNG figures: lossless like the default (6), less work per file for slightly larger files
PNG_COMPRESS_LEVEL = 1


@contextmanager
def _gc_frozen():
    """Leave the objects that exist now (the AnnData, imported modules) out of the garbage collector's scans.

    Drawing allocates many short-lived matplotlib objects, which trigger collections that would
    otherwise rescan the whole heap each time; objects made inside are collected as usual, and
    everything is unfrozen on exit. A heap already frozen by the caller is left as it is.
    """
    import gc

    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _measure(fig: Any) -> Any:
    """The padded tight box of ``fig`` laid out at the PNG's resolution (:func:`_frozen_tight_bbox`)."""
    return _frozen_tight_bbox(fig, dpi=PNG_DPI)


def _draw(fig_fn: Callable[[], Any], folder: Path, name: str, section: str, title: str, caption: str,
          formats: tuple[str, ...], *, saver: FigureSaver | None = None) -> Figure:  # fmt: skip
    """The :class:`Figure` record of the figure ``fig_fn`` draws, saved in ``formats`` (or its error);
    through ``saver`` when given (see :mod:`tmeatlas._figsave`).
    """
    import matplotlib.pyplot as plt

    rec = Figure(name=name, section=section, title=title, caption=caption)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = fig_fn()
            if fig is None:
                return rec
            paths = {ext: folder / f"{name}.{ext}" for ext in formats}
            (saver or figure_saver(background=False)).save(fig, paths, measure=_measure)
            for ext, path in paths.items():
                setattr(rec, ext, path)
    except Exception as e:
        rec.error = f"{type(e).__name__}: {e}"
    finally:
        plt.close("all")
    return rec


def _signatures_present(adata: AnnData) -> list[str]:
    """The programs of :data:`REPORT_SIGNATURES` scored in ``adata``."""
    cols = set(adata.obs.columns)
    from ._keys import SIGNATURE_PREFIX

    return [s for s in REPORT_SIGNATURES if f"{SIGNATURE_PREFIX}{s}" in cols]


def _therapies_to_explain(adata: AnnData, sample: str, n: int = 2) -> list[str]:
    """Therapies whose verdicts differ most between the sample's subclones (the informative ones)."""
    from . import get

    t = get.therapy_survival(adata)
    t = t[t["sample"].astype(str) == str(sample)]
    if t.empty:
        return []
    g = t.groupby("therapy")
    score = g["survives"].mean().sub(0.5).abs().rsub(0.5) + g["surviving_fraction"].std().fillna(0)
    return [str(x) for x in score.sort_values(ascending=False).index[:n]]


def write_figures(
    adata: AnnData, folder: Path, *, sample_key: str, formats: tuple[str, ...] = ("png", "pdf"),
    samples: bool = True, background: bool = False, saver: FigureSaver | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Draw the cohort figures and, with ``samples``, one set per sample; return the records.

    With ``background``, a second process saves figures while this one draws (on a machine with
    more than one core; :mod:`tmeatlas._figsave`); a file it could not write is left out of its
    record, with a warning. With a ``saver`` of :func:`figure_saver`, the files are saved through it
    and may still be being written on return: the caller closes it and passes its ``failed`` to
    :func:`drop_unwritten`.
    """
    import matplotlib as mpl

    if mpl.get_backend().lower() not in ("agg", "pdf", "svg", "module://matplotlib_inline.backend_inline"):
        mpl.use("Agg")
    if saver is not None:
        return _draw_all(
            adata, Path(folder), sample_key=sample_key, formats=formats, samples=samples, saver=saver
        )
    with figure_saver(background=background) as saver:
        records = _draw_all(adata, Path(folder), sample_key=sample_key, formats=formats, samples=samples,
                            saver=saver)  # fmt: skip
    drop_unwritten(records, saver.failed)
    return records


def _draw_all(adata: AnnData, folder: Path, *, sample_key: str, formats: tuple[str, ...], samples: bool,
              saver: FigureSaver) -> dict[str, Any]:  # fmt: skip
    """The figures of :func:`write_figures`, saved through ``saver``."""
    folder.mkdir(parents=True, exist_ok=True)
    ctx = _figure_context(adata, sample_key)
    specs = partial(_figure_specs, ctx)
    records: dict[str, Any] = {"cohort": [], "samples": {}}
    with _gc_frozen():
        if ctx.has["embedding"] and sample_key in adata.obs:
            records["cohort"].append(_draw(partial(_umap_samples, adata, sample_key), folder, "umap_samples",
                                           "composition", "Samples and clusters",
                                           "UMAP coloured by sample and Leiden cluster.", formats,
                                           saver=saver))  # fmt: skip
        for name, section, title, caption, fn in specs(adata, None):
            records["cohort"].append(_draw(fn, folder, name, section, title, caption, formats, saver=saver))
        if samples:
            records["samples"] = _sample_figures(adata, folder, sample_key=sample_key, specs=specs, formats=formats,
                                                 cohort=records["cohort"], saver=saver)  # fmt: skip
    return records


def figure_saver(*, background: bool) -> FigureSaver:
    """A :class:`~tmeatlas._figsave.FigureSaver` with the report's PNG settings (``background``: a
    second process renders files, on a machine with more than one core).
    """
    from ._figsave import FigureSaver

    png = {"dpi": PNG_DPI, "pil_kwargs": {"compress_level": PNG_COMPRESS_LEVEL}}
    return FigureSaver(background=background, options={"png": png}, measure_dpi=PNG_DPI)


def drop_unwritten(records: dict[str, Any], failed: dict[str, str]) -> None:
    """Leave the files the figure worker could not write (``{path: reason}``) out of ``records``, with a
    warning.
    """
    if not failed:
        return
    for rec in [*records["cohort"], *(r for recs in records["samples"].values() for r in recs)]:
        for ext in ("png", "pdf"):
            if getattr(rec, ext) is not None and str(getattr(rec, ext)) in failed:
                setattr(rec, ext, None)
    path, reason = next(iter(failed.items()))
    warnings.warn(f"{len(failed)} figure file(s) were not written (first: {Path(path).name}: {reason}). Rerun "
                  "with force=True to redraw them.", UserWarning, stacklevel=3)  # fmt: skip


@dataclass
class _FigureContext:
    """What the figure lists of a cohort read: the whole AnnData and which results it holds."""

    adata: AnnData
    sample_key: str
    #: step name -> whether the result its figures draw from is present (the registry's
    #: :func:`~tmeatlas._steps.shown_results`), and ``"spatial"``: whether there are coordinates
    has: dict[str, bool]
    #: the report's programs present in the data
    sigs: list[str]
    #: samples with a subclone tree, and with therapy-survival rows
    tree_samples: set[str]
    survival_samples: set[str]
    #: keyword arguments of every plotting call
    kw: dict[str, Any]


def _figure_context(adata: AnnData, sample_key: str) -> _FigureContext:
    """The :class:`_FigureContext` of ``adata``."""
    u = adata.uns
    has = {**shown_results(adata), "spatial": OBSM.spatial in adata.obsm}
    tree_samples = set()
    if has["clones"] and isinstance(u[UNS.cnv_clones].get("tree"), pd.DataFrame):
        tree_samples = set(u[UNS.cnv_clones]["tree"]["sample"].astype(str))
    survival_samples = set()
    if has["therapy"]:
        survival_samples = set(u[UNS.therapy_survival]["table"]["sample"].astype(str))
    return _FigureContext(adata, sample_key, has, _signatures_present(adata), tree_samples, survival_samples,
                          {"return_fig": True, "show": False})  # fmt: skip


def _figure_specs(ctx: _FigureContext, a: AnnData, sample: str | None) -> list[tuple]:
    """The figures of the cohort (``sample=None``, ``a`` the whole AnnData) or of one sample (``a`` its
    cells), in report order: ``(name, section, title, caption, draw)``.
    """
    return [
        *_composition_figures(ctx, a, sample),
        *_malignant_figures(ctx, a, sample),
        *_heterogeneity_figures(ctx, sample),
        *_program_figures(ctx, a, sample),
        *_spatial_figures(ctx, a, sample),
        *_therapy_figures(ctx, sample),
    ]


def _composition_figures(ctx: _FigureContext, a: AnnData, sample: str | None) -> list[tuple]:
    """The composition section's figures (UMAP, composition, marker dot plot)."""
    from . import pl

    has, kw, sample_key = ctx.has, ctx.kw, ctx.sample_key
    sp = []
    if has["cell_types"]:
        if has["embedding"]:
            sp.append(("umap_compartments", "composition", "Cells on the UMAP",
                       "Compartment and major cell type of every cell.", lambda: pl.compartments(a, **kw)))  # fmt: skip
        sp.append(("composition", "composition", "Cell-type composition",
                   "Share of each fine cell type per sample.",
                   lambda: pl.composition(a, sample_key=sample_key, groupby=OBS.cell_type, **kw)))  # fmt: skip
        if sample is None:
            sp.append(("marker_dotplot", "composition", "Markers of the assigned types",
                       "Top markers per fine type (scaled mean expression, fraction expressing).",
                       lambda: pl.marker_dotplot(a, **kw)))  # fmt: skip
    return sp


def _malignant_figures(ctx: _FigureContext, a: AnnData, sample: str | None) -> list[tuple]:
    """The malignant section's figures (calls, copy-number heatmap, subclone tree)."""
    from . import pl

    has, kw, adata = ctx.has, ctx.kw, ctx.adata
    sp = []
    if has["malignant"]:
        sp.append(("malignant_calls", "malignant", "Malignant calls",
                   "CNV evidence per cell and the call (malignant / non-malignant / uncertain).",
                   lambda: pl.malignant_calls(a, sample_key=ctx.sample_key, **kw)))  # fmt: skip
    if has["cnv"]:
        sp.append(("cnv_heatmap", "malignant", "Inferred copy number",
                   "Cells (rows, grouped by CNV subclone; non-malignant cells as 'nan') by genome position.",
                   lambda: pl.cnv_heatmap(a, groupby=OBS.cnv_clone if OBS.cnv_clone in a.obs else None, **kw)))  # fmt: skip
    if has["clones"] and (sample is None or sample in ctx.tree_samples):
        sp.append(("clone_tree", "malignant", "Subclone tree",
                   "Subclones and the arm-level events that separate them.",
                   lambda: pl.clone_tree(adata, sample=sample, **kw)))  # fmt: skip
    return sp


def _heterogeneity_figures(ctx: _FigureContext, sample: str | None) -> list[tuple]:
    """The heterogeneity section's figures (indices with intervals, clone-by-state composition and, per
    sample with coordinates and 2 clones or more, the spatial mixing map of the clones).
    """
    from . import pl

    if not ctx.has.get("heterogeneity"):
        return []
    adata, kw = ctx.adata, ctx.kw
    res = adata.uns[UNS.heterogeneity]
    table = pd.DataFrame(res.get("table", pd.DataFrame()))
    if sample is not None and "sample" in table.columns:
        table = table[table["sample"].astype(str) == sample]
    from .pl._heterogeneity import measured_indices

    if not measured_indices(table):  # nothing to draw: the table says why
        return []
    samples = None if sample is None else [sample]
    sp = [("heterogeneity", "heterogeneity", "Heterogeneity indices",
           "Each index per sample with its 95% cell-resampling interval; n/m: not measured (reason in the table).",
           lambda: pl.heterogeneity(adata, samples=samples, **kw))]  # fmt: skip
    comp = pd.DataFrame(res.get("clone_state", pd.DataFrame()))
    if len(comp) and (sample is None or (comp["sample"].astype(str) == sample).any()):
        sp.append(("clone_states", "heterogeneity", "States of each clone",
                   "Fraction of each CNV subclone's malignant cells in each program state.",
                   lambda: pl.clone_states(adata, samples=samples, **kw)))  # fmt: skip
    if sample is not None and ctx.has["spatial"] and _mixing_measured(table):
        sp.append(("clone_mixing", "heterogeneity", "Spatial mixing of the clones",
                   "Left: the malignant cells coloured by CNV subclone; right: each one's share of its 10 nearest "
                   "clone-labelled malignant cells that belong to another clone (low: clones segregate).",
                   lambda: pl.clone_mixing(adata, sample=sample, **kw)))  # fmt: skip
    return sp


def _mixing_measured(table: pd.DataFrame) -> bool:
    """Whether the one sample of ``table`` has 2 clones or more and its cells' neighbours were measured
    (``clone_spatial_entropy`` is a number: coordinates and enough labelled malignant cells).
    """
    if len(table) != 1 or not {"n_clones", "clone_spatial_entropy"} <= set(table.columns):
        return False
    n_clones, ent = (
        pd.to_numeric(table[c], errors="coerce").iloc[0] for c in ("n_clones", "clone_spatial_entropy")
    )
    return bool(n_clones >= 2 and np.isfinite(ent))


def _heterogeneity_html(adata: AnnData, sample: str | None) -> str:
    """The heterogeneity section's table: indices with their intervals and what was not measured."""
    from . import get

    if UNS.heterogeneity not in adata.uns:
        return ""
    t = get.heterogeneity(adata)
    if sample is not None:
        t = t[t["sample"].astype(str) == sample]
        if not len(t):
            return ""
    out = t[[c for c in ("sample", "n_malignant", "n_clones", "clonal_events", "subclonal_events", "n_states",
                         "dominant_state") if c in t.columns]].copy()  # fmt: skip
    for k in (
        "genetic_diversity",
        "effective_clones",
        "state_diversity",
        "state_between_clones",
        "clone_mixing",
    ):
        if k in t.columns:
            out[k] = [
                "n/m" if not np.isfinite(v) else f"{v:.2f} [{lo:.2f}, {hi:.2f}]"
                for v, lo, hi in zip(t[k], t[f"{k}_low"], t[f"{k}_high"])
            ]
    out["not_measured"] = t["not_measured"]
    return _table(
        out, max_rows=40, note="95% intervals from resampling cells; all columns: tables/heterogeneity.csv."
    )


def _program_figures(ctx: _FigureContext, a: AnnData, sample: str | None) -> list[tuple]:
    """The programs section's figures (signatures by cell type, checkpoint interactions)."""
    from . import pl

    has, kw, sigs = ctx.has, ctx.kw, ctx.sigs
    sp = []
    if sigs and has["cell_types"]:
        sp.append(("signatures", "programs", "Programs by cell type",
                   "Mean score (scaled per program) and fraction of cells with a positive score.",
                   lambda: pl.signatures(a, groupby=OBS.cell_type_major, signatures=sigs, **kw)))  # fmt: skip
    if has["checkpoints"]:
        sp.append(("checkpoint_interactions", "programs", "Checkpoint interactions",
                   "Receptor-ligand pairs between cell types with permutation FDR < 0.05.",
                   lambda: pl.checkpoint_interactions(ctx.adata, sample=sample, **kw)))  # fmt: skip
    return sp


def _spatial_figures(ctx: _FigureContext, a: AnnData, sample: str | None) -> list[tuple]:
    """The spatial section's figures (cell types, tumour score, niches, interface, immune phenotype)."""
    from . import pl

    has, kw, adata, sample_key = ctx.has, ctx.kw, ctx.adata, ctx.sample_key
    one = [sample] if sample is not None else None
    sp = []
    if has["spatial"] and has["cell_types"]:
        sp.append(("spatial_cell_types", "spatial", "Cell types in space",
                   "Major cell type of every cell at its position (microns).",
                   lambda: pl.spatial(adata, color=OBS.cell_type_major, sample_key=sample_key, samples=one, **kw)))  # fmt: skip
    if has["spatial"] and has["tumor_score"]:
        sp.append(("spatial_tumor_score", "spatial", "Spot tumour score",
                   "Expression, copy-number and neighbour evidence of tumour per spot (higher: more tumour).",
                   lambda: pl.spatial(adata, color=OBS.tumor_score, sample_key=sample_key, samples=one, **kw)))  # fmt: skip
    if has["niches"]:
        sp.append(("spatial_niches", "spatial", "Niches",
                   "Niches shared across samples (same colour = same niche in every sample).",
                   lambda: pl.spatial_niches(adata, sample_key=sample_key, samples=one, **kw)))  # fmt: skip
        if sample is None:
            sp.append(("niche_composition", "spatial", "Niche composition",
                       "Mean neighbourhood composition of each niche.", lambda: pl.niche_composition(adata, **kw)))  # fmt: skip
    if has["interface"]:
        sp.append(("interface_profile", "spatial", "Density along the tumour boundary",
                   "Cell-type densities against signed distance to the tumour boundary (negative inside).",
                   lambda: pl.interface_profile(a, sample_key=sample_key, **kw)))  # fmt: skip
    if has["immune_phenotype"]:
        sp.append(("immune_phenotypes", "spatial", "Immune phenotype",
                   "CD8 T-cell densities in tumour core, margin and stroma with the decision thresholds.",
                   lambda: pl.immune_phenotypes(adata, samples=one, **kw)))  # fmt: skip
    return sp


def _therapy_figures(ctx: _FigureContext, sample: str | None) -> list[tuple]:
    """The therapy section's figures (surviving fractions, reasons, combinations, dosing simulation)."""
    from . import pl

    has, kw, adata = ctx.has, ctx.kw, ctx.adata
    sp = []
    if has["therapy"] and (sample is None or sample in ctx.survival_samples):
        sp.append(("therapy_survival", "therapy", "Predicted surviving fraction",
                   "Per therapy and subclone; outlined cells are flagged as likely to survive.",
                   lambda: pl.therapy_survival(adata, samples=sample, **kw)))  # fmt: skip
        if sample is not None:
            for t in _therapies_to_explain(adata, sample):
                sp.append((f"survival_reasons_{t}", "therapy", f"Why subclones survive {t}",
                           "Ranked evidence terms per subclone.",
                           lambda t=t: pl.survival_reasons(adata, therapy=t, sample=sample, **kw)))  # fmt: skip
        for s, k in _cover_keys(adata, ctx.sample_key):
            if sample is None or s == str(sample):
                sp.append((f"combination_cover_{s}", "therapy", f"Combinations for {s}",
                           "Smallest therapy sets that leave no subclone above 5% flagged as surviving.",
                           lambda k=k: pl.combination_cover(adata, key=k, **kw)))  # fmt: skip
    if has["simulation"]:
        sp.append(("therapy_simulation", "therapy", "Continuous vs adaptive dosing",
                   "Simulated tumour burden per subclone under both schedules.",
                   lambda: pl.therapy_simulation(adata, sample=sample, **kw)))  # fmt: skip
    return sp


def _umap_samples(adata: AnnData, sample_key: str):
    """UMAP coloured by sample (when there are several) and Leiden cluster; ``None`` when neither applies."""
    import scanpy as sc

    o = adata.obs
    color = [sample_key] if o[sample_key].nunique() > 1 else []  # one sample: one colour says nothing
    color += [OBS.leiden] if OBS.leiden in o else []
    return sc.pl.umap(adata, color=color, return_fig=True, show=False, frameon=False) if color else None


def _sample_figures(adata: AnnData, folder: Path, *, sample_key: str, specs: Callable, formats: tuple[str, ...],
                    cohort: Sequence[Figure] = (), saver: FigureSaver | None = None) -> dict[str, list[Figure]]:  # fmt: skip
    """One set of figures per sample, in ``folder/samples/<safe name>/``.

    A figure the cohort set already holds with the same content is copied, not drawn again: a
    sample's ``combination_cover_<sample>`` always, and every figure of the same name when the
    cohort has a single sample (its cohort figures are that sample's).
    """
    o = adata.obs
    cats = o[sample_key].cat.categories if hasattr(o[sample_key], "cat") else sorted(o[sample_key].unique())
    file_names = safe_names(cats)
    present = [s for s in cats if (o[sample_key] == s).any()]
    drawn = {r.name: r for r in cohort if not r.error and all(getattr(r, ext) for ext in formats)}
    out: dict[str, list[Figure]] = {}
    for s in present:
        m = (o[sample_key] == s).to_numpy()
        sub = adata[m].copy()
        sdir = folder / "samples" / file_names[str(s)]
        sdir.mkdir(parents=True, exist_ok=True)
        recs = []
        for name, section, title, caption, fn in specs(sub, str(s)):
            same = drawn.get(name) if (len(present) == 1 or name == f"combination_cover_{s}") else None
            if same is not None:
                recs.append(_copied(same, sdir, Figure(name=name, section=section, title=title, caption=caption),
                                    formats, saver=saver))  # fmt: skip
            else:
                recs.append(_draw(fn, sdir, name, section, title, caption, formats, saver=saver))
        out[str(s)] = recs
        del sub
    return out


def _copied(src: Figure, folder: Path, rec: Figure, formats: tuple[str, ...], *,
            saver: FigureSaver | None = None) -> Figure:  # fmt: skip
    """``rec`` with the files of the drawn figure ``src`` copied into ``folder`` (through ``saver``,
    which may still be writing them).
    """
    saver = saver or figure_saver(background=False)
    for ext in formats:
        path = folder / f"{rec.name}.{ext}"
        saver.copy(getattr(src, ext), path)
        setattr(rec, ext, path)
    return rec


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


def _img(rec: Figure) -> str:
    """The HTML of a figure (embedded PNG and caption), its error, or ``""`` when it was not drawn."""
    if rec.error:
        return (f'<figure><div class="err">{html.escape(rec.title)}: not drawn ({html.escape(rec.error)})</div>'
                "</figure>")  # fmt: skip
    if rec.png is None or not Path(rec.png).exists():
        return ""
    b64 = base64.b64encode(Path(rec.png).read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(rec.title)}" src="data:image/png;base64,{b64}">'
        f"<figcaption><b>{html.escape(rec.title)}.</b> {html.escape(rec.caption)}</figcaption></figure>"
    )


def _table(df: pd.DataFrame | None, *, max_rows: int = 25, note: str = "") -> str:
    """A DataFrame as an HTML table of at most ``max_rows`` rows (floats to 3 digits), with a note."""
    if df is None or len(df) == 0:
        return ""
    shown = df.head(max_rows).copy()
    for c in shown.columns:
        if pd.api.types.is_float_dtype(shown[c]):
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    more = f" Showing {max_rows} of {len(df):,} rows." if len(df) > max_rows else ""
    body = shown.to_html(index=False, classes="tbl", border=0, escape=True)
    tail = f'<p class="note">{html.escape(note + more)}</p>' if (note or more) else ""
    return body + tail


def _cards(items: list[tuple[str, str]]) -> str:
    """The HTML of the summary cards ``(name, value)``."""
    inner = "".join(f'<div class="card"><div class="v">{html.escape(v)}</div><div class="k">{html.escape(k)}</div></div>'
                    for k, v in items)  # fmt: skip
    return f'<div class="cards">{inner}</div>'


def _versions() -> list[tuple[str, str]]:
    """``(package, version)`` of tmeatlas, Python and the main libraries installed."""
    import importlib.metadata as md

    out = [("tmeatlas", __version__), ("python", platform.python_version())]
    for pkg in (
        "numpy",
        "scipy",
        "pandas",
        "anndata",
        "scanpy",
        "squidpy",
        "scikit-learn",
        "numba",
        "matplotlib",
    ):
        try:
            out.append((pkg, md.version(pkg)))
        except md.PackageNotFoundError:
            continue
    return out


def _params_text(adata: AnnData, step: str) -> str:
    """The step's parameters as ``name=value`` text (plain values, numbers to 4 significant digits)."""
    from ._store import read_params

    def show(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list):
            return "[" + ", ".join(show(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {show(x)}" for k, x in v.items()) + "}"
        return str(v)

    key = STEP_UNS.get(step)
    parts = []
    for k, v in (read_params(adata, key) if key else {}).items():
        text = show(v)
        parts.append(f"{k}={text if len(text) < 120 else text[:117] + '...'}")
    return ", ".join(parts)


def _step_params_text(params: str) -> str:
    """The parameters ``tm.run`` recorded for a step (JSON) as ``name=value`` text."""
    import json

    try:
        values = json.loads(params) if params else {}
    except ValueError:
        return ""
    return ", ".join(f"{k}={v}" for k, v in values.items()) if isinstance(values, dict) else ""


def _methods(adata: AnnData, *, therapies: list[str] | None) -> str:
    """The methods section: every step with its status, method and parameters; software and sources."""
    from . import datasets

    rows = []
    steps = adata.uns.get(UNS.pipeline, {}).get("steps")
    if isinstance(steps, pd.DataFrame):
        for _, r in steps.iterrows():
            name = str(r["step"])
            why = str(r.get("reason", "") or "") or (
                str(r.get("error", "") or "") if r["status"] == "failed" else ""
            )
            status = html.escape(str(r["status"])) + (f": {html.escape(why)}" if why else "")
            rows.append(
                f"<tr><td><code>{html.escape(name)}</code></td><td>{status}</td>"
                f"<td>{float(r['seconds']):.1f}</td><td>{html.escape(METHODS.get(name, ''))}</td>"
                f"<td><code>{html.escape(_params_text(adata, name) or _step_params_text(r.get('params', '')))}</code></td></tr>"
            )
    table = ('<table class="tbl"><tr><th>step</th><th>status</th><th>seconds</th><th>method</th><th>parameters</th></tr>'
             + "".join(rows) + "</table>") if rows else ""  # fmt: skip
    ver = ", ".join(f"{k} {v}" for k, v in _versions())
    refs = []
    kb = datasets.therapies()
    libs = f"therapy knowledge base {kb.attrs.get('version', '?')}"
    if therapies:
        for _, r in kb[kb["name"].isin(therapies)].iterrows():
            dois = ", ".join(f"doi:{d}" for d in r["dois"])
            refs.append(f"<li><b>{html.escape(str(r['display_name']))}</b>: {html.escape(str(r['citation']))}; "
                        f"evidence sources {html.escape(dois)}</li>")  # fmt: skip
    src = datasets.markers()[["citation", "doi"]].drop_duplicates().sort_values("citation")
    marker_refs = "".join(
        f"<li>{html.escape(str(c))} doi:{html.escape(str(d))}</li>" for c, d in src.itertuples(index=False)
    )
    sg = datasets.signatures()
    sg = sg[sg["name"].isin(_signatures_present(adata))][["name", "citation", "doi"]].drop_duplicates("name")
    sig_refs = "".join(f"<li><code>{html.escape(str(n))}</code>: {html.escape(str(c))} doi:{html.escape(str(d))}</li>"
                       for n, c, d in sg.itertuples(index=False))  # fmt: skip
    return (
        "<p>Every step below is a public tmeatlas or scanpy function; its parameters are also stored in the "
        "<code>.h5ad</code> (<code>uns[key]['params']</code>) and the steps in <code>uns['pipeline']</code>.</p>"
        + table
        + f"<p><b>Software:</b> {html.escape(ver)}; {html.escape(libs)}.</p>"
        + (f"<h3>Therapy sources</h3><ul>{''.join(refs)}</ul>" if refs else "")
        + (f"<h3>Programs shown: sources</h3><ul>{sig_refs}</ul>" if sig_refs else "")
        + (f"<h3>Marker library sources</h3><ul>{marker_refs}</ul>" if marker_refs else "")
    )


def _page(title: str, subtitle: str, nav: list[tuple[str, str]], body: str) -> str:
    """A complete self-contained HTML page (inline CSS, no script)."""
    links = "".join(f'<a href="{html.escape(h)}">{html.escape(t)}</a>' for h, t in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title><style>{PALETTE_CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f"<nav>{links}</nav><main>{body}</main></body></html>\n"
    )


def _section_html(key: str, title: str, figs: list[Figure], extra: str) -> str:
    """A report section with its tables (``extra``) and figures, ``""`` when it has neither."""
    imgs = "".join(_img(f) for f in figs if f.section == key)
    if not imgs and not extra:
        return ""
    return f'<section id="{key}"><h2>{html.escape(title)}</h2>{extra}{imgs}</section>'


def _therapy_tables(adata: AnnData, sample: str | None, sample_key: str) -> str:
    """The therapy section's tables: subclones likely to survive, combinations, immunotherapy benefit."""
    from . import get

    if UNS.therapy_survival not in adata.uns:
        return _benefit_table(adata, sample)
    t = get.therapy_survival(adata)
    if sample is not None:
        t = t[t["sample"].astype(str) == sample]
        if t.empty:
            return ("<p>No malignant subpopulation was called in this sample, so no therapy-survival "
                    "estimate or combination is given.</p>") + _benefit_table(adata, sample)  # fmt: skip
    flagged = t[t["survives"].astype(bool)].sort_values(
        ["sample", "group", "surviving_fraction"], ascending=[True, True, False]
    )
    cols = [c for c in ("sample", "group", "therapy", "fraction_of_sample", "surviving_fraction", "ci_low", "ci_high",
                        "reasons") if c in flagged.columns]  # fmt: skip
    out = "<h3>Subclones likely to survive, with the reasons</h3>" + (
        _table(flagged[cols], max_rows=30, note="Full table: tables/therapy_survival.csv.")
        if len(flagged)
        else "<p>No subclone is flagged as likely to survive any therapy assessed.</p>"
    )
    covers = []
    for s, k in _cover_keys(adata, sample_key):
        if sample is None or s == sample:
            c = get.combination_cover(adata, key=k)
            c = c.drop_duplicates("rank")[
                [x for x in ("rank", "therapies", "n_drugs", "toxicity", "coverage") if x in c]
            ]
            covers.append(c.assign(sample=s).head(3))
    if covers:
        out += "<h3>Proposed combinations</h3>" + _table(pd.concat(covers, ignore_index=True), max_rows=40,
                                                         note="Full table: tables/combination_cover.csv.")  # fmt: skip
    return out + _benefit_table(adata, sample)


def _benefit_table(adata: AnnData, sample: str | None) -> str:
    """The immunotherapy benefit of the sample (or of every sample), with what was and was not counted."""
    from . import get

    if UNS.immunotherapy_benefit not in adata.uns:
        return ""
    b = get.immunotherapy_benefit(adata)
    if sample is not None:
        b = b[b["sample"].astype(str) == sample]
    cols = ["sample", "setting", "benefit", "ci_low", "ci_high", "call", "components", "not_counted"]
    return ("<h3>Immunotherapy benefit (relative to the cohort)</h3>"
            + _table(b[cols], max_rows=40, note="Components: tables/immunotherapy_components.csv."))  # fmt: skip


def _report_body(ctx: dict[str, Any], sample: str | None, figs: list[Figure]) -> str:
    """The HTML body of the cohort page (``sample=None``) or of one sample's page."""
    adata, sample_key, mal = ctx["adata"], ctx["sample_key"], ctx["mal"]
    o = adata.obs
    m = (o[sample_key].astype(str) == sample).to_numpy() if sample is not None else np.ones(adata.n_obs, bool)
    mrow = mal[mal["sample"] == sample] if sample is not None and len(mal) else mal
    cards = _summary_cards(ctx, sample, m, mrow)
    parts = [f'<section id="summary"><h2>Summary</h2>{_cards(cards)}</section>']
    tables = {
        "composition": lambda: _composition_html(adata, sample, sample_key, m),
        "malignant": lambda: _malignant_html(adata, sample, mrow),
        "heterogeneity": lambda: _heterogeneity_html(adata, sample),
        "programs": lambda: _programs_html(adata, sample, ctx["tables"]),
        "spatial": lambda: _spatial_html(adata, sample, ctx["pheno"], m),
        "therapy": lambda: _therapy_tables(adata, sample, sample_key),
    }
    parts += [_section_html(key, title, figs, tables[key]()) for key, title in SECTIONS]
    parts.append(f'<section id="methods"><h2>Methods</h2>{ctx["methods"]}</section>')
    return "".join(p for p in parts if p)


def _summary_cards(ctx: dict[str, Any], sample: str | None, m: np.ndarray, mrow: pd.DataFrame
                   ) -> list[tuple[str, str]]:  # fmt: skip
    """The summary cards ``(name, value)`` of the cohort or of one sample (cells ``m``, malignant row)."""
    o, pheno, cats = ctx["adata"].obs, ctx["pheno"], ctx["cats"]
    n = int(m.sum())
    cards = [("cells", f"{n:,}")]
    if sample is None:
        cards.append(("samples", str(len(cats))))
    if len(mrow):
        n_mal, n_all = int(mrow["n_malignant"].sum()), int(mrow["n_cells"].sum())
        if sample is not None:
            r = mrow.iloc[0]
            cards.append(
                (
                    "malignant fraction (95% interval)",
                    f"{r['malignant_fraction']:.1%} ({r['ci_low']:.1%}-{r['ci_high']:.1%})",
                )
            )
            cards.append(("CNV subclones", str(int(r["n_clones"]))))
        else:
            cards.append(("malignant cells", f"{n_mal:,} ({n_mal / max(n_all, 1):.1%})"))
    if isinstance(pheno, pd.DataFrame) and len(pheno):
        if sample is not None:
            pr = pheno[pheno["sample"].astype(str) == sample]
            if len(pr):
                conf = pr.iloc[0].get("confidence", np.nan)
                label = str(pr.iloc[0]["phenotype"])
                if pd.notna(conf):
                    label += f" (p = {float(conf):.2f})"
                cards.append(("immune phenotype", label))
        else:
            vc = pheno["phenotype"].astype(str).value_counts()
            cards.append(("immune phenotypes", ", ".join(f"{v} {k}" for k, v in vc.items())))
    if OBS.niche in o:
        cards.append(("niches", str(int(o.loc[m, OBS.niche].nunique()))))
    return cards


def _composition_html(adata: AnnData, sample: str | None, sample_key: str, m: np.ndarray) -> str:
    """The composition section's tables: major types per sample and quality control."""
    o, u = adata.obs, adata.uns
    comp = ""
    if OBS.cell_type_major in o:
        tab = pd.crosstab(
            o.loc[m, sample_key].astype(str), o.loc[m, OBS.cell_type_major].astype(str), normalize="index"
        )
        tab.columns.name = None
        comp = _table(
            tab.reset_index().rename(columns={sample_key: "sample"}),
            note="Fraction of cells per major type.",
        )
    qc = u.get(UNS.qc, {}).get("samples") if UNS.qc in u else None
    if isinstance(qc, pd.DataFrame) and len(qc):
        qc = qc[qc["sample"].astype(str) == sample] if sample is not None else qc
        comp += "<h3>Quality control</h3>" + _table(
            qc, note="Median counts, detected genes and mitochondrial share per sample; outliers (5 MADs) are "
            "flagged in obs['qc_outlier'], not removed.")  # fmt: skip
    return comp


def _malignant_html(adata: AnnData, sample: str | None, mrow: pd.DataFrame) -> str:
    """The malignant section's tables: malignant fraction with its interval and the subclones."""
    u = adata.uns
    mal_html = _table(
        mrow,
        note=(
            "95% interval: calibrated call uncertainty plus cell sampling (see tables/malignant_per_sample.csv)."
        ),
    )
    if UNS.cnv_clones in u and isinstance(u[UNS.cnv_clones].get("clones"), pd.DataFrame):
        cl = u[UNS.cnv_clones]["clones"]
        cl = cl[cl["sample"].astype(str) == sample] if sample is not None else cl
        mal_html += "<h3>Subclones</h3>" + _table(cl, max_rows=40)
    return mal_html


def _programs_html(adata: AnnData, sample: str | None, tables: dict[str, Path] | None) -> str:
    """The programs section's tables: stemness per subclone and the strongest checkpoint interactions."""
    u = adata.uns
    prog = ""
    if "stemness_per_clone" in (tables or {}):
        st = pd.read_csv(tables["stemness_per_clone"])
        st = st[st["sample"].astype(str) == sample] if sample is not None else st
        prog += "<h3>Stemness per subclone</h3>" + _table(st, max_rows=40)
    if UNS.checkpoint_interactions in u:
        from . import get

        ci = get.checkpoint_interactions(adata, sample=sample, max_padj=0.05)
        ci = ci.sort_values("strength", ascending=False)
        cols = [
            c
            for c in (
                "sample",
                "pair",
                "sender",
                "receiver",
                "ligand_fraction",
                "receptor_fraction",
                "strength",
                "padj",
            )
            if c in ci
        ]
        prog += "<h3>Strongest checkpoint interactions (FDR &lt; 0.05)</h3>" + (
            _table(ci[cols], max_rows=15) if len(ci) else "<p>No checkpoint pair passes FDR 0.05.</p>"
        )
    return prog


def _spatial_html(adata: AnnData, sample: str | None, pheno: pd.DataFrame | None, m: np.ndarray) -> str:
    """The spatial section's tables: immune phenotype and niches (or why there are none)."""
    u = adata.uns
    spatial = ""
    if isinstance(pheno, pd.DataFrame) and len(pheno):
        pr = pheno[pheno["sample"].astype(str) == sample] if sample is not None else pheno
        spatial += "<h3>Immune phenotype (CD8 T cells per mm<sup>2</sup>)</h3>" + _table(pr)
    if UNS.niches in u and isinstance(u[UNS.niches].get("summary"), pd.DataFrame):
        spatial += "<h3>Niches</h3>" + _table(_niche_counts(adata, m, u[UNS.niches]["summary"]), max_rows=15)
    if OBSM.spatial not in adata.obsm:
        spatial = "<p>No spatial coordinates (<code>obsm['spatial']</code>) in this dataset: spatial steps not run.</p>"
    return spatial


def write_reports(
    adata: AnnData,
    folder: Path,
    *,
    sample_key: str,
    figures: dict[str, Any],
    tables: dict[str, Path] | None = None,
) -> list[Path]:
    """Write ``folder/index.html`` (cohort) and ``folder/<sample>.html`` (one per sample)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    o, u = adata.obs, adata.uns
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    therapies = None
    if UNS.therapy_survival in u:
        from . import get

        therapies = sorted(get.therapy_survival(adata)["therapy"].astype(str).unique())
    methods = _methods(adata, therapies=therapies)
    mal = malignant_summary(adata, sample_key=sample_key) if OBS.malignant in o else pd.DataFrame()
    pheno = u.get(UNS.immune_phenotype, {}).get("table") if UNS.immune_phenotype in u else None
    written = []
    cats = [
        str(s)
        for s in (
            o[sample_key].cat.categories if hasattr(o[sample_key], "cat") else sorted(o[sample_key].unique())
        )
    ]
    nav_sections = [(f"#{k}", t.split(":")[0].split(" and ")[0]) for k, t in SECTIONS] + [
        ("#methods", "Methods")
    ]

    ctx = {"adata": adata, "sample_key": sample_key, "mal": mal, "pheno": pheno, "cats": cats, "methods": methods,
           "tables": tables}  # fmt: skip
    body_for = partial(_report_body, ctx)
    pages = safe_names(cats, reserved=["index"])
    links = "".join(f'<li><a href="{html.escape(pages[s])}.html">{html.escape(s)}</a></li>' for s in cats)
    cohort_body = f'<section id="patients"><h2>Patient reports</h2><ul>{links}</ul></section>' + body_for(
        None, figures.get("cohort", [])
    )
    path = folder / "index.html"
    path.write_text(_page("tmeatlas cohort report", f"{adata.n_obs:,} cells, {len(cats)} sample{'s' if len(cats) != 1 else ''}; {when}; tmeatlas {__version__}",
                          [("#patients", "Patients"), ("#summary", "Summary"), *nav_sections], cohort_body), encoding="utf-8")  # fmt: skip
    written.append(path)
    for s in cats:
        figs = figures.get("samples", {}).get(s, [])
        n = int((o[sample_key].astype(str) == s).sum())
        page = _page(f"tmeatlas report: {s}", f"{n:,} cells; {when}; tmeatlas {__version__}",
                     [("index.html", "Cohort"), ("#summary", "Summary"), *nav_sections], body_for(s, figs))  # fmt: skip
        p = folder / f"{pages[s]}.html"
        p.write_text(page, encoding="utf-8")
        written.append(p)
    return written
