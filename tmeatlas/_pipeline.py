"""``tm.run``: a cohort from counts to an annotated atlas, tables, figures and HTML reports in one call.

Each step is a public tmeatlas (or scanpy) function called with documented parameters; the
pipeline adds input checks up front, a record of every step in ``adata.uns["pipeline"]``,
skipping of steps already done with the same parameters, a progress display, and error
messages that name the failed step. The steps are declared in :mod:`tmeatlas._steps` (the
registry: order, dependencies, methods text, result keys); this module builds each step's
function from the run's arguments (:func:`_step_calls`) and runs them.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from ._core.chunks import is_streamed, row_block
from ._core.embedding import (
    ab_params,
    exact_knn,
    fuzzy_graph,
    harmonic_fill,
    knn_distances,
    landmark_indices,
    umap_layout,
)
from ._core.expression import looks_like_counts
from ._core.qc import gene_moments, hvg_seurat, mad_outliers, qc_sums
from ._errors import InvalidInputError, InvalidParameterError, TmeatlasError
from ._keys import OBS, OBSM, UNS
from ._steps import (
    BY_NAME,
    CELL_STEPS,
    STEP_ORDER,
    STEPS,
    StepSpec,
    combination_key,
    has_result,
    simulation_key,
)
from ._steps import NEEDS as NEEDS  # re-exported: the registry's derived tables
from ._steps import USES as USES
from ._validation import check_adata, suggest_names
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from anndata import AnnData

__all__ = ["PipelineError", "run"]

#: layer that holds raw counts once the pipeline has normalised ``X``
COUNTS_LAYER = "counts"
#: candidate ``var`` columns with gene symbols, in the order they are suggested
SYMBOL_COLUMNS = (
    "gene_symbols",
    "gene_symbol",
    "feature_name",
    "gene_name",
    "symbol",
    "gene_ids_symbol",
    "name",
)
#: coordinates are a spot grid when at least this share of nearest-neighbour distances lies within
#: SPOT_TOLERANCE of their median, per sample (spot arrays: 0.80-0.93 on the four her2st sections;
#: cells: 0.32-0.35 on MERFISH, multiplex IF and the simulated tissues; tests/test_pipeline.py)
SPOT_REGULARITY = 0.7
SPOT_TOLERANCE = 0.1
#: median distance between neighbouring cells that is plausible in microns (real sections: MERFISH lung
#: 6.6, multiplex IF 6.6, simulated tissue 8.8); outside it tm.run warns that the coordinates may be
#: pixels. Pixel sizes near 1 µm cannot be told apart from microns this way: readers state units.
CELL_SPACING_UM = (2.0, 40.0)
#: the sample name given to every cell when ``sample_key=None`` (one sample)
SINGLE_SAMPLE = "S1"
#: largest value of log-normalised data; a larger maximum means linear-scale input (TPM, CPM)
LINEAR_MAX = 50.0
#: layer that keeps linear-scale input (TPM, CPM) once ``X`` holds its log1p
INPUT_LAYER = "input"
#: up to this many cells the kNN graph is exact (scikit-learn); above, pynndescent's approximate search
EXACT_KNN_MAX = 100_000
#: up to this many cells UMAP embeds every cell; above, it embeds about this many landmark cells and
#: places the others by harmonic interpolation over the kNN graph (see ``_umap``)
UMAP_MAX = 100_000


class PipelineError(TmeatlasError, RuntimeError):
    """A step of :func:`tmeatlas.run` failed; the message names the step and its cause."""


@dataclass
class _Step:
    """One planned step of this run: its registry entry's name, dependencies and title, with its function."""

    name: str
    title: str
    fn: Callable[[AnnData], Any]
    params: dict = field(default_factory=dict)
    #: keys whose presence shows the step's result is in the AnnData (for skipping)
    result: Callable[[AnnData], bool] = lambda a: True
    #: steps whose results it cannot do without (:data:`NEEDS`)
    needs: tuple[str, ...] = ()
    #: steps whose results it reads when present (:data:`USES`)
    uses: tuple[str, ...] = ()


def _json(params: dict) -> str:
    """The parameters as canonical JSON (sorted keys; other objects as text)."""
    return json.dumps(params, sort_keys=True, default=str)


def _quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``'s result, with its warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def check_input(
    adata: AnnData, *, sample_key: str | None, layer: str | None, gene_symbols: str | None
) -> dict[str, Any]:
    """Checks made before any work starts; return what they found (kind of matrix, spatial, ...).

    Raises :class:`~tmeatlas.InvalidInputError` with the fix for: duplicated cell names, a
    missing sample key, scaled (negative) or non-finite values, Ensembl IDs without a symbol
    column, non-human gene names, a missing layer.
    """
    from scipy import sparse

    check_adata(adata)
    if not adata.obs_names.is_unique:
        dup = adata.obs_names[adata.obs_names.duplicated()].unique()[:3].tolist()
        raise InvalidInputError(
            f"cell names are not unique ({int(adata.obs_names.duplicated().sum()):,} duplicates, e.g. {dup}); "
            "call `adata.obs_names_make_unique()` (or prefix them with the sample) first."
        )
    if sample_key is None:  # one sample: run() adds obs["sample"]
        if OBS.sample in adata.obs.columns:
            raise InvalidInputError(
                f"sample_key=None means one sample, but adata.obs already has a {OBS.sample!r} column: pass "
                f"sample_key={OBS.sample!r} (or the column naming each cell's patient/sample)."
            )
    elif sample_key not in adata.obs.columns:
        hint = suggest_names([sample_key], [str(c) for c in adata.obs.columns]) if sample_key else ""
        cols = ", ".join(map(repr, list(adata.obs.columns)[:12])) or "none"
        raise InvalidInputError(
            f"sample key {sample_key!r} is not a column of adata.obs (columns: {cols}). {hint} "
            "Pass `sample_key=` naming the column that says which patient/sample each cell comes from; "
            "for a single sample add one: `adata.obs['sample'] = 'S1'`.".replace("  ", " ")
        )
    if sample_key is not None and adata.obs[sample_key].isna().any():
        raise InvalidInputError(
            f"{int(adata.obs[sample_key].isna().sum()):,} cells have no value in obs[{sample_key!r}]; "
            "fill or drop them first."
        )
    if layer is not None and layer not in adata.layers:
        raise InvalidInputError(f"layer {layer!r} not found; layers: {sorted(adata.layers) or 'none'}.")
    X = adata.layers[layer] if layer is not None else adata.X
    if X is None:
        raise InvalidInputError("adata.X is empty; pass `layer=` naming the layer with counts.")
    _check_matrix(adata, X)
    _check_sample_values(adata, sample_key)
    spacing, spots = _check_coordinates(adata, sample_key)
    if sparse.issparse(X):
        data = X.data
    else:  # dense, backed or Dask: the first rows
        first = row_block(X, 0, min(adata.n_obs, 5000))
        data = first.data if sparse.issparse(first) else np.asarray(first)
    if data.size and not np.isfinite(data).all():
        raise InvalidInputError(
            "the expression matrix has NaN or infinite values; remove or impute them first."
        )
    if data.size and data.min() < 0:
        raise InvalidInputError(
            "the expression matrix has negative values: it looks scaled (`sc.pp.scale`) or batch-corrected. "
            "tm.run needs raw counts (best) or log-normalised expression: pass `layer=` naming a layer that holds them."
        )
    counts = looks_like_counts(X)
    # where the raw counts are: "X", a layer's name, or None (log-normalised input only)
    counts_in = (layer or "X") if counts else None
    if counts_in is None and COUNTS_LAYER in adata.layers and looks_like_counts(adata.layers[COUNTS_LAYER]):
        counts_in = COUNTS_LAYER
    # not counts: log-normalised, or linear-scale normalised values (TPM, CPM: values above 50,
    # which log1p(CP10k) data do not reach)
    linear = (not counts) and bool(data.size) and float(data.max()) > LINEAR_MAX
    if gene_symbols is not None and gene_symbols not in adata.var.columns:
        raise InvalidInputError(
            f"gene_symbols={gene_symbols!r} is not a column of adata.var (columns: {list(adata.var.columns)[:12]})."
        )
    names = pd.Index(adata.var[gene_symbols].astype(str)) if gene_symbols is not None else adata.var_names
    ensembl = names.str.match(r"^ENS[A-Z]*G\d{6,}").mean()
    if ensembl > 0.5:
        cands = [
            c
            for c in adata.var.columns
            if c in SYMBOL_COLUMNS or "symbol" in c.lower() or "name" in c.lower()
        ]
        where = (
            f"pass `gene_symbols={cands[0]!r}` (a column of adata.var that holds symbols)"
            if cands
            else "add a column of HGNC symbols to adata.var and pass its name as `gene_symbols=`"
        )
        raise InvalidInputError(
            f"{ensembl:.0%} of the gene identifiers are Ensembl IDs, but tmeatlas's marker, signature and therapy "
            f"libraries use HGNC symbols: {where}."
        )
    mouse = names.str.match(r"^[A-Z][a-z0-9]+[a-z][a-z0-9]*$").mean()
    if mouse > 0.5 and names.str.match(r"^[A-Z0-9-]+$").mean() < 0.2:
        raise InvalidInputError(
            f"{mouse:.0%} of the gene names look like mouse symbols (e.g. {names[0]!r}); tmeatlas's libraries are human. "
            "Map genes to human orthologues first."
        )
    spatial = OBSM.spatial in adata.obsm and np.asarray(adata.obsm[OBSM.spatial]).shape[1] >= 2
    return {
        "spots": bool(spatial) and spots,
        "median_spacing": spacing,
        "counts": bool(counts),
        "counts_in": counts_in,
        "linear": linear,
        "spatial": bool(spatial),
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "n_samples": int(adata.obs[sample_key].nunique()) if sample_key is not None else 1,
    }


def _check_matrix(adata: AnnData, X) -> None:
    """A backed AnnData, float16 values and an all-zero matrix are refused before any work."""
    from scipy import sparse

    if getattr(adata, "isbacked", False):
        raise InvalidInputError(
            "adata is opened in backed mode (`read_h5ad(..., backed='r')`), which tm.run cannot write into: load it "
            "with `anndata.read_h5ad(path)`, or, for data larger than memory, `tmeatlas run --lazy` / "
            "`tmeatlas._core.chunks.read_h5ad_lazy(path)`."
        )
    if np.dtype(getattr(X, "dtype", np.float32)) == np.float16:
        raise InvalidInputError(
            "the expression matrix is float16, which cannot hold counts above 2,048 exactly nor sums of many "
            "cells: convert it first, e.g. `adata.X = adata.X.astype('float32')`."
        )
    if sparse.issparse(X) and (X.nnz == 0 or not np.any(X.data)):
        raise InvalidInputError(
            "the expression matrix holds only zeros: check that the right matrix or layer was read."
        )
    if isinstance(X, np.ndarray) and not np.any(X):
        raise InvalidInputError(
            "the expression matrix holds only zeros: check that the right matrix or layer was read."
        )


def _check_sample_values(adata: AnnData, sample_key: str | None) -> None:
    """Sample values that would merge once written as text (``1`` and ``"1"``) are refused."""
    if sample_key is None or sample_key not in adata.obs.columns:
        return
    col = adata.obs[sample_key]
    values = pd.unique(col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else col.dropna())
    text = pd.Series([str(v) for v in values])
    if text.duplicated().any():
        same = sorted({t for t in text[text.duplicated()]})[:3]
        raise InvalidInputError(
            f"obs[{sample_key!r}] holds different values with the same text ({same}: e.g. the number 1 and the "
            f"string '1'), which would merge into one sample: make the column one type, e.g. "
            f"`adata.obs[{sample_key!r}] = adata.obs[{sample_key!r}].astype(str)` if they are the same sample."
        )


def _check_coordinates(adata: AnnData, sample_key: str | None) -> tuple[float | None, bool]:
    """Coordinates with missing values, or with a third axis that varies, are refused (the spatial steps
    measure distances and areas in a 2-D section); coordinates whose spacing is not that of cells or
    spots in microns (pixels, array indices) give a warning. Return the median spacing and whether the
    coordinates are a spot grid (:func:`_looks_like_spots`).
    """
    from ._readers import PLAUSIBLE_SPACING_UM, median_spacing
    from ._settings import logger

    if OBSM.spatial not in adata.obsm:
        return None, False
    xy = np.asarray(adata.obsm[OBSM.spatial], dtype=float)
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise InvalidInputError(
            f"obsm['spatial'] must be cells x 2 (x, y in microns); it has shape {xy.shape}."
        )
    bad = ~np.isfinite(xy[:, :2]).all(axis=1)
    if bad.any():
        raise InvalidInputError(
            f"{int(bad.sum()):,} cells have missing or infinite coordinates in obsm['spatial']: drop them "
            "(`adata = adata[np.isfinite(adata.obsm['spatial']).all(axis=1)].copy()`) or pass spatial=False."
        )
    if xy.shape[1] > 2 and np.ptp(xy[:, 2:], axis=0).max() > 0:
        raise InvalidInputError(
            f"obsm['spatial'] has {xy.shape[1]} columns and the third varies: the spatial steps work on 2-D sections "
            "(areas, densities). Run each z-plane or section as its own sample with 2-D coordinates "
            "(`adata.obsm['spatial'] = adata.obsm['spatial'][:, :2]` only if z does not matter)."
        )
    groups = adata.obs[sample_key].astype(str).to_numpy() if sample_key in adata.obs else np.zeros(len(xy))
    spacing = median_spacing(xy, groups)
    spots = _looks_like_spots(adata, sample_key)
    low, high = PLAUSIBLE_SPACING_UM if spots else CELL_SPACING_UM
    if spacing is not None and not low <= spacing <= high:
        logger.warning(
            "obsm['spatial']: neighbouring observations lie a median %.3g units apart, outside the %g-%g µm expected "
            "(cells lie about 5-20 µm apart, Visium spots 100 µm, ST spots 200 µm): the coordinates may be pixels, so areas "
            "and densities (immune phenotype, niches) would be wrong. Convert them to microns first "
            "(`adata.obsm['spatial'] = xy * microns_per_pixel`; `tm.read(..., microns_per_unit=)`).",
            spacing, low, high,
        )  # fmt: skip
    return spacing, spots


def check_output(out: str | Path | None) -> Path | None:
    """The output folder must be a folder this process can write: checked before any work."""
    import os

    if out is None:
        return None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {str(out)!r} is a file, not a folder: name a folder (it is created).")
    parent = out if out.exists() else next((p for p in out.parents if p.exists()), Path())
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInputError(
            f"cannot write into {str(parent)!r} (permission denied): choose another --out folder."
        )
    return out


def run(
    adata: AnnData,
    *,
    sample_key: str | None,
    spatial: bool | None = None,
    spots: bool | None = None,
    therapies: Sequence[str] | str | None = None,
    out: str | Path | None = None,
    layer: str | None = None,
    gene_symbols: str | None = None,
    steps: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    force: bool | Sequence[str] = False,
    integrate: bool = False,
    simulate: Sequence[str] = (),
    n_perms: int = 200,
    report: bool = True,
    rng: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Run the whole tmeatlas atlas on a cohort: QC to therapy combinations, with tables, figures and reports.

    Steps, in order (each one the public function named, with the parameters recorded in
    ``uns["pipeline"]``):

    1. ``qc``: per-cell QC metrics (:func:`scanpy.pp.calculate_qc_metrics`) and a flag
       ``obs["qc_outlier"]`` for cells more than 5 median absolute deviations from their
       sample's median log counts or log genes (the MAD rule of Germain et al., Genome Biol
       2020); flagged cells are kept and reported, not removed.
    2. ``gene_positions``: :func:`tmeatlas.pp.gene_positions` (GRCh38, shipped).
    3. ``normalize``: raw counts are kept in ``layers["counts"]`` and ``X`` becomes
       ``log1p(counts / total * 1e4)``; linear-scale normalised input (TPM, CPM: values above 50)
       is kept in ``layers["input"]`` and ``X`` becomes its ``log1p``; log-normalised input is
       used as given.
    4. ``embedding``: highly variable genes, PCA (30), kNN graph (15; exact up to 100,000 cells,
       pynndescent above; on scVI's latent space when ``integrate=True``), Leiden clusters and
       UMAP (above 100,000 cells: UMAP of about 100,000 landmark cells drawn per Leiden cluster,
       the other cells placed by harmonic interpolation over the kNN graph). The exact graph is
       scanpy's (``pp.neighbors(transformer="sklearn")``) and the layout umap-learn's algorithm
       (scanpy's ``min_dist=0.5``, PCA start), both computed by tmeatlas's cached kernels.
    5. ``cnv``, ``malignant``, ``clones``: :func:`tmeatlas.tl.infer_cnv`,
       :func:`~tmeatlas.tl.call_malignant`, :func:`~tmeatlas.tl.cnv_clones` per sample.
    6. ``cell_types``: :func:`tmeatlas.tl.annotate` (markers + malignant calls).
    7. ``signatures``, ``stemness``: :func:`tmeatlas.tl.score_signatures` (whole library,
       control-gene method) and :func:`tmeatlas.tl.stemness` (malignant cells per sample,
       other cells per compartment).
    8. ``checkpoints``: :func:`tmeatlas.tl.checkpoint_interactions` between major cell types per
       sample (spatial neighbours only when coordinates exist).
    9. ``interface``, ``immune_phenotype``, ``niches`` (with coordinates in ``obsm["spatial"]``).
    10. ``heterogeneity``: :func:`tmeatlas.tl.heterogeneity` per sample (needs CNV subclones);
        ``immunotherapy``: :func:`tmeatlas.tl.immunotherapy_benefit` per sample (also for samples
        of immune cells only).
    11. ``therapy``, ``combinations``: :func:`tmeatlas.tl.therapy_survival` per CNV subclone
        and sample (immunotherapy rows for samples of immune cells only), and
        :func:`tmeatlas.tl.combination_cover` per sample (key ``"combination_cover_<sample>"``).
    12. ``simulation`` (only with ``simulate=``): :func:`tmeatlas.tl.simulate_therapy` per therapy.

    With ``out``, writes ``out/atlas.h5ad``, ``out/tables/*.csv``, ``out/figures/*.png|pdf``
    and self-contained HTML reports ``out/report/index.html`` (cohort) and
    ``out/report/<sample>.html`` (one per patient).

    A rerun skips each step whose result is present and whose parameters are unchanged
    (``force=True`` or a list of step names reruns them). When a step fails, the error
    (:class:`PipelineError`) names the step and the cause; results of earlier steps stay in
    ``adata`` and, with ``out``, are written to ``out/atlas.h5ad`` so that a rerun resumes
    there (the console command ``tmeatlas run`` does this automatically).

    Parameters
    ----------
    adata
        Cells x genes, raw counts (preferred) in ``X`` or ``layer``, or log-normalised.
    sample_key
        Column of ``obs`` naming each cell's patient/sample. Per-patient steps run per value.
        ``None`` for a single sample: ``obs["sample"]`` is added with the value ``"S1"``.
    spatial
        Run the spatial steps; ``None`` runs them when ``obsm["spatial"]`` exists (microns).
    spots
        The observations are spots (Visium, ST: each a mixture of cells), not cells. ``None``:
        detected from the coordinates (a regular grid: at least :data:`SPOT_REGULARITY` of the
        nearest-neighbour distances within 10 % of their median, in most samples). For spots the
        single-cell steps (:data:`CELL_STEPS`: malignant calls, cell types, interface, immune
        phenotype, niches, therapy, ...) are not planned and ``tumor_score``
        (:func:`tmeatlas.gr.tumor_score`) runs instead; per-spot cell-type proportions from a
        deconvolution then go to :func:`tmeatlas.gr.neighborhoods` (``composition_key=``) and
        :func:`tmeatlas.gr.niches` by hand.
    therapies
        Therapies (names or display names from :func:`tmeatlas.datasets.therapies`), ``"all"``,
        or a DataFrame of your own entries (see ``tm.datasets.therapies(extra=...)``); ``None``
        uses all of them. Unknown names are an error before any work starts.
    out
        Output folder (created); ``None`` keeps results in ``adata`` only.
    layer
        Layer with the expression to use instead of ``X``.
    gene_symbols
        Column of ``var`` with HGNC symbols when ``var_names`` are other identifiers (Ensembl
        IDs): the symbols become ``var_names`` (made unique), the old names go to ``var["gene_id"]``.
    steps
        Run only these steps (names above); default all that apply.
    skip
        Steps not to run.
    force
        Rerun steps even when done with the same parameters (``True`` for all, or names).
    integrate
        Fit scVI (:func:`tmeatlas.tl.integrate`, needs the ``scvi`` extra) across samples and
        build the kNN graph and UMAP on its latent space.
    simulate
        Therapies whose continuous and adaptive schedules are simulated per sample.
    n_perms
        Permutations of the checkpoint-interaction test.
    report
        Write the HTML reports (with ``out``).
    rng
        Seed for every step that draws random numbers.
    n_jobs
        Threads for the steps that use them. Unless ``n_jobs=1``, a second process renders figure files
        while the next figures are drawn, on a machine with more than one core.
    progress
        Print each step, its cell counts and its time to stderr.
    copy
        Work on and return a copy.

    Returns
    -------
    ``None`` (results written into ``adata``), or the new AnnData when ``copy=True``.
    ``uns["pipeline"]["steps"]`` records every step: status (done / skipped / failed),
    seconds, parameters.
    """
    import matplotlib as mpl

    if mpl.get_backend().lower() not in ("agg", "pdf", "svg") and out is not None and not _interactive():
        mpl.use("Agg")
    if not isinstance(copy, bool):
        raise InvalidParameterError(f"copy must be True or False, got {copy!r}.")
    facts = check_input(adata, sample_key=sample_key, layer=layer, gene_symbols=gene_symbols)
    facts["data_fingerprint"] = _data_fingerprint(adata, facts, sample_key)
    check_output(out)
    from ._settings import settings

    settings.resolve_n_jobs(n_jobs)
    therapy_arg, therapy_names, simulate, spatial, spots = _check_arguments(
        facts, therapies=therapies, steps=steps, skip=skip, force=force, simulate=simulate, spatial=spatial,
        spots=spots, rng=rng,
    )  # fmt: skip
    adata, sample_key = _prepare(adata, sample_key=sample_key, gene_symbols=gene_symbols, copy=copy)
    plan = _plan(
        adata, sample_key=sample_key, facts=facts, spatial=bool(spatial), therapies=therapy_names, therapy_arg=therapy_arg, integrate=integrate,
        simulate=simulate, n_perms=n_perms, rng=rng, n_jobs=n_jobs,
    )  # fmt: skip
    wanted = [s for s in plan if (steps is None or s.name in steps) and s.name not in skip]
    forced = set(STEP_ORDER) if force is True else set(force or [])
    out = Path(out) if out is not None else None
    prints = _fingerprints(plan, sample_key=sample_key, data=facts["data_fingerprint"])
    n = len(wanted) + (4 if out is not None else 0)
    shown = _Display(n, progress, n_cells=adata.n_obs, n_samples=facts["n_samples"],
                     unit="spots" if facts["spots"] else "cells")  # fmt: skip
    t_run = time.perf_counter()
    try:
        record, ran = _execute(adata, wanted, prints=prints, forced=forced, shown=shown, progress=progress,
                               sample_key=sample_key)  # fmt: skip
    except KeyboardInterrupt:  # the finished steps are saved; a rerun resumes after them
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            _write_atlas(adata, out / "atlas.h5ad")
        raise
    finally:
        _save_record(adata, _load_record(adata), sample_key=sample_key, facts=facts)
    failed = [(s, r) for s, r in record.items() if r["status"] == "failed"]
    if out is not None:
        adata.uns[UNS.pipeline]["seconds_total"] = round(time.perf_counter() - t_run, 2)
        _write_outputs(adata, out, sample_key=sample_key, report=report, shown=shown, ran=ran or bool(failed),
                       background=n_jobs != 1, stamp=_json({"steps": {k: [v["fingerprint"], v["status"].replace("skipped", "done"), v["reason"]]
                                              for k, v in record.items()},
                                    "report": report, "version": __version__}))  # fmt: skip
    _summary(record, progress)
    if failed:
        _raise_failed(failed, wanted, out)
    return adata if copy else None


def _check_arguments(facts: dict, *, therapies, steps, skip, force, simulate, spatial, spots, rng
                     ) -> tuple[Any, list[str], list[str], bool, bool]:  # fmt: skip
    """Check ``run``'s arguments against the input's ``facts`` (and set ``facts["spots"]``); return the
    therapies argument, the therapy names, the therapies to simulate, and whether the run is spatial and
    on spots.
    """
    if not isinstance(rng, int | np.integer) or isinstance(rng, bool):
        raise InvalidParameterError(f"rng must be an integer seed, got {rng!r}.")
    therapy_arg, therapy_names = _therapy_list(therapies)
    unknown = [
        s
        for s in [*(steps or []), *skip, *(force if isinstance(force, list | tuple) else [])]
        if s not in STEP_ORDER
    ]
    if unknown:
        raise InvalidParameterError(
            f"unknown step(s) {unknown}; steps are {list(STEP_ORDER)}. {suggest_names(unknown, STEP_ORDER)}".rstrip()
        )
    simulate = [simulate] if isinstance(simulate, str) else list(simulate)
    if simulate:
        sim_names = _therapy_list(simulate)[1]
        missing = [t for t in sim_names if t not in therapy_names]
        if missing:
            raise InvalidParameterError(
                f"simulate={missing} needs these therapies in `therapies=` too (their survival is simulated)."
            )
        simulate = sim_names
    if spatial is None:
        spatial = facts["spatial"]
    elif spatial and not facts["spatial"]:
        raise InvalidInputError(
            "spatial=True but adata.obsm['spatial'] is missing: store cell coordinates (microns) there."
        )
    if spots is not None and not isinstance(spots, bool):
        raise InvalidParameterError(f"spots must be True, False or None, got {spots!r}.")
    if spots is None:
        spots = bool(spatial) and facts["spots"]
    elif spots and not facts["spatial"]:
        raise InvalidInputError(
            "spots=True but adata.obsm['spatial'] is missing: store the spot coordinates there."
        )
    facts["spots"] = bool(spots)
    if spots:
        from ._settings import logger

        logger.warning(
            "tm.run: the observations are spots (coordinates on a regular grid: Visium, ST), each a mixture of "
            "cells, so the single-cell steps (%s) are not run; tm.gr.tumor_score scores each spot instead. "
            "Pass spots=False to treat them as cells.", ", ".join(CELL_STEPS),
        )  # fmt: skip
    return therapy_arg, therapy_names, simulate, spatial, spots


def _prepare(adata: AnnData, *, sample_key: str | None, gene_symbols: str | None, copy: bool
             ) -> tuple[AnnData, str]:  # fmt: skip
    """The AnnData the steps work on (a copy with ``copy``) with a categorical sample column and the gene
    symbols as names; return it and the sample key (``"sample"`` for a single sample).
    """
    if copy:
        adata = adata.copy()
    if sample_key is None:
        sample_key = OBS.sample
        adata.obs[sample_key] = pd.Categorical([SINGLE_SAMPLE] * adata.n_obs)
    if gene_symbols is not None:
        _use_symbols(adata, gene_symbols)
    if adata.obs[sample_key].dtype.name != "category":
        adata.obs[sample_key] = adata.obs[sample_key].astype(str).astype("category")
    return adata, sample_key


def _raise_failed(failed: list[tuple[str, dict]], wanted: list[_Step], out: Path | None) -> None:
    """Raise the :class:`PipelineError` that names the first failed step and its cause."""
    name, r = failed[0]
    title = next(s.title for s in wanted if s.name == name)
    saved = (f" Results of the other steps are in {out / 'atlas.h5ad'}; a rerun on it resumes after them."
             if out is not None else "")  # fmt: skip
    more = f" (also failed: {', '.join(s for s, _ in failed[1:])})" if len(failed) > 1 else ""
    raise PipelineError(f"step {name!r} ({title}) failed: {r['error'].rstrip('.')}.{more}{saved}") from r.get(
        "exc"
    )


def _execute(adata, wanted: list[_Step], *, prints: dict[str, str], forced: set[str], shown: _Display,
             progress: bool, sample_key: str) -> tuple[dict[str, dict], bool]:  # fmt: skip
    """Run the planned steps in order; return the record of this run and whether any step ran.

    A step whose fingerprint (inputs, parameters, upstream fingerprints) is unchanged and whose
    result is present is reused. A step that needs one that is not applicable, failed or was not
    run is itself not applicable / not run, with the reason. A tool's
    :class:`~tmeatlas.NotApplicableError` makes its step not applicable; any other exception makes
    it failed, and the run goes on with the steps that do not need it. The record is saved into
    ``adata`` after every step, so an interrupt keeps the finished steps. Statuses: ``done`` (ran
    now), ``skipped`` (done earlier with the same inputs, reused), ``not applicable`` (``reason``),
    ``failed`` (``error``), ``not run`` (a step it needs failed). A UMAP layout still running in the
    background (:func:`_umap`) is waited for and stored before returning.
    """
    try:
        return _execute_steps(adata, wanted, prints=prints, forced=forced, shown=shown, progress=progress,
                              sample_key=sample_key)  # fmt: skip
    finally:
        _finish_layouts(adata)


def _execute_steps(adata, wanted: list[_Step], *, prints: dict[str, str], forced: set[str], shown: _Display,
                   progress: bool, sample_key: str) -> tuple[dict[str, dict], bool]:  # fmt: skip
    """The loop of :func:`_execute`."""
    record = _load_record(adata)
    now: dict[str, dict] = {}
    ran = False
    planned = {s.name for s in wanted}
    for step in wanted:
        fp = prints[step.name]
        prev = record.get(step.name)
        blocked = next(((d, now[d]) for d in step.needs if d in now and now[d]["status"] not in ("done", "skipped")),
                       None)  # fmt: skip
        missing = [d for d in step.needs if d not in planned and d not in record]
        if blocked is not None or missing:
            dep, r = (
                blocked if blocked is not None else (missing[0], {"status": "not run", "reason": "not run"})
            )
            status = "not applicable" if r["status"] == "not applicable" else "not run"
            why = r["reason"] if r["status"] == "not applicable" else (
                "it failed" if r["status"] == "failed" else r["reason"])  # fmt: skip
            now[step.name] = _entry(step, fp, status, reason=f"needs step {dep!r}: {why}")
            shown.na(step.title, now[step.name]["reason"], status=status)
        elif (step.name not in forced and prev is not None and prev.get("fingerprint") == fp
              and prev["status"] in ("done", "skipped") and step.result(adata)):  # fmt: skip
            now[step.name] = {**prev, "status": "skipped"}
            shown.skip(step.title)
        else:
            now[step.name] = _attempt(adata, step, fp, shown, progress, sample_key)
            ran = True
        record[step.name] = now[step.name]
        _store_steps(adata, record)
    return now, ran


def _entry(
    step: _Step, fp: str, status: str, *, seconds: float = 0.0, reason: str = "", error: str = ""
) -> dict:
    """A step's record: its parameters, status, seconds, version, error, reason and fingerprint."""
    return {"params": _json(step.params), "status": status, "seconds": round(seconds, 2), "version": __version__,
            "error": error, "reason": reason, "fingerprint": fp}  # fmt: skip


def _attempt(adata, step: _Step, fp: str, shown: _Display, progress: bool, sample_key: str) -> dict:
    """Run one step; its record (done, not applicable with the reason, or failed with the error)."""
    from ._errors import NotApplicableError

    shown.begin(step.title)
    t = time.perf_counter()
    try:
        with _notes(progress) as notes:
            step.fn(adata)
    except NotApplicableError as e:
        entry = _entry(step, fp, "not applicable", seconds=time.perf_counter() - t, reason=str(e))
        shown.na(None, entry["reason"])
        return entry
    except Exception as e:
        entry = _entry(step, fp, "failed", seconds=time.perf_counter() - t, error=f"{type(e).__name__}: {e}")
        entry["exc"] = e
        shown.fail(entry["error"])
        return entry
    dt = time.perf_counter() - t
    shown.end(dt, _outcome(step.name, adata, sample_key))
    shown.notes(notes)
    return _entry(step, fp, "done", seconds=dt)


def _summary(record: dict[str, dict], progress: bool) -> None:
    """Name the steps that did not apply or did not run, with their reasons (stderr)."""
    off = [(s, r) for s, r in record.items() if r["status"] in ("not applicable", "not run")]
    if progress and off:
        print(f"tmeatlas run: {len(off)} step(s) not run:", file=sys.stderr, flush=True)
        for s, r in off:
            print(f"  - {s}: {r['status']}: {r['reason']}", file=sys.stderr, flush=True)


def _data_fingerprint(adata: AnnData, facts: dict, sample_key: str | None) -> str:
    """A cheap fingerprint of the input: shape, cell and gene names, the sample of every cell, and
    the values of three blocks of up to 500 rows (start, middle, end) of the matrix that holds the
    input (raw counts, the kept linear-scale input, or ``X``).
    """
    import hashlib

    from scipy import sparse

    h = hashlib.sha1()
    h.update(repr(adata.shape).encode())
    for names in (adata.obs_names, adata.var_names):
        h.update(pd.util.hash_pandas_object(pd.Series(names.astype(str)), index=False).to_numpy().tobytes())
    if sample_key is not None and sample_key in adata.obs.columns:
        h.update(
            pd.util.hash_pandas_object(adata.obs[sample_key].astype(str), index=False).to_numpy().tobytes()
        )
    src = facts.get("counts_in")
    X = adata.X if src in (None, "X") else adata.layers[src]
    if src is None and INPUT_LAYER in adata.layers:
        X = adata.layers[INPUT_LAYER]
    n = adata.n_obs
    for start in sorted({0, max(0, n // 2 - 250), max(0, n - 500)}):
        B = row_block(X, start, min(n, start + 500))
        B = sparse.csr_matrix(B, dtype=np.float64)
        B.sum_duplicates()
        B.eliminate_zeros()
        B.sort_indices()
        for part in (B.data, B.indices.astype(np.int64), B.indptr.astype(np.int64)):
            h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


def input_fingerprint(adata: AnnData, *, sample_key: str | None, layer: str | None = None,
                      gene_symbols: str | None = None) -> str:  # fmt: skip
    """The fingerprint ``tm.run`` records in ``uns["pipeline"]["input"]["data_fingerprint"]`` for this
    input (``tmeatlas run`` compares it to resume only on the same data).
    """
    facts = check_input(adata, sample_key=sample_key, layer=layer, gene_symbols=gene_symbols)
    return _data_fingerprint(adata, facts, sample_key)


def _fingerprints(plan: list[_Step], *, sample_key: str, data: str) -> dict[str, str]:
    """Each step's fingerprint: its parameters, the sample key, the data, the package version and the
    fingerprints of the steps it needs or reads (so a change upstream reruns every dependent).
    """
    import hashlib

    out: dict[str, str] = {}
    for step in plan:  # the plan is in dependency order
        deps = {d: out[d] for d in (*step.needs, *step.uses) if d in out}
        text = _json(
            {
                "params": step.params,
                "sample_key": sample_key,
                "data": data,
                "deps": deps,
                "version": __version__,
            }
        )
        out[step.name] = hashlib.sha1(text.encode()).hexdigest()[:16]
    return out


def _grid_regularity(xy: np.ndarray, rng: int = 0, n_max: int = 5000) -> float:
    """Share of nearest-neighbour distances within ``SPOT_TOLERANCE`` of their median (1: a lattice)."""
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, dtype=float)[:, :2]
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 10:
        return 0.0
    tree = cKDTree(xy)
    query = xy if len(xy) <= n_max else xy[np.random.default_rng(rng).choice(len(xy), n_max, replace=False)]
    d = tree.query(query, k=2)[0][:, 1]
    med = float(np.median(d))
    if med <= 0:
        return 0.0
    return float(np.mean(np.abs(d / med - 1) <= SPOT_TOLERANCE))


def _looks_like_spots(adata: AnnData, sample_key: str | None) -> bool:
    """Whether the coordinates form a spot grid (Visium, ST) rather than cell positions.

    Spot arrays place observations on a regular lattice, so nearly all nearest-neighbour
    distances equal the spot pitch; cell positions are irregular. The median over samples of
    :func:`_grid_regularity` is compared with :data:`SPOT_REGULARITY`.
    """
    from .gr._neighborhoods import _samples

    xy = np.asarray(adata.obsm[OBSM.spatial])
    codes, names = _samples(adata, sample_key)
    shares = [_grid_regularity(xy[codes == c]) for c in range(len(names))]
    return float(np.median(shares)) >= SPOT_REGULARITY


def _interactive() -> bool:
    """Whether Python runs interactively (a console or a Jupyter kernel)."""
    return hasattr(sys, "ps1") or "ipykernel" in sys.modules


def _use_symbols(adata: AnnData, column: str) -> None:
    """Make ``var[column]`` (gene symbols) the gene names, made unique; the old ones go to ``var["gene_id"]``."""
    import anndata as ad

    sym = adata.var[column].astype(str)
    if "gene_id" not in adata.var.columns:
        adata.var["gene_id"] = adata.var_names.astype(str)
    bad = sym.isin(["nan", "", "None"])
    sym = sym.where(~bad, adata.var_names.astype(str))
    adata.var_names = pd.Index(ad.utils.make_index_unique(pd.Index(sym.to_numpy())))


def _therapy_list(therapies) -> tuple[Any, list[str]]:
    """Resolve therapy names up front (unknown names fail before any work); return (argument, names)."""
    from .tl._therapy import _resolve_therapies

    table = _resolve_therapies(
        "all" if therapies is None else (list(therapies) if isinstance(therapies, tuple) else therapies)
    )
    names = table["name"].astype(str).tolist()
    return (therapies if isinstance(therapies, pd.DataFrame) else names), names


class _Display:
    """The progress display on stderr: one numbered line per step (silent when not ``enabled``)."""

    def __init__(self, n: int, enabled: bool, *, n_cells: int, n_samples: int, unit: str = "cells") -> None:
        self.n, self.i, self.enabled = n, 0, enabled
        self.cells = f"{n_cells:,} {unit}, {n_samples} sample{'s' if n_samples != 1 else ''}"
        if enabled:
            print(f"tmeatlas run: {self.cells}", file=sys.stderr, flush=True)

    def begin(self, title: str) -> None:
        self.i += 1
        if self.enabled:
            print(f"[{self.i}/{self.n}] {title} ...", end="", file=sys.stderr, flush=True)

    def end(self, seconds: float, outcome: str = "") -> None:
        if self.enabled:
            print(
                f" done in {seconds:.1f} s{f' ({outcome})' if outcome else ''}", file=sys.stderr, flush=True
            )

    def notes(self, notes: list[str]) -> None:
        if self.enabled:
            for text in dict.fromkeys(notes):
                print(f"      note: {text}", file=sys.stderr, flush=True)

    def fail(self, error: str = "") -> None:
        if self.enabled:
            print(f" FAILED ({error})" if error else " FAILED", file=sys.stderr, flush=True)

    def na(self, title: str | None, reason: str, status: str = "not applicable") -> None:
        """A step that does not apply (or is not run): its own line (``title``) or the end of the begun
        line (``None``).
        """
        if not self.enabled:
            return
        if title is not None:
            self.i += 1
            print(f"[{self.i}/{self.n}] {title}: {status}: {reason}", file=sys.stderr, flush=True)
        else:
            print(f" {status}: {reason}", file=sys.stderr, flush=True)

    def reuse(self, what: str) -> None:
        self.i += 1
        if self.enabled:
            print(f"[{self.i}/{self.n}] {what}: unchanged, kept", file=sys.stderr, flush=True)

    def skip(self, title: str) -> None:
        self.i += 1
        if self.enabled:
            print(
                f"[{self.i}/{self.n}] {title}: done earlier with the same parameters, skipped",
                file=sys.stderr,
                flush=True,
            )


@contextmanager
def _notes(enabled: bool):
    """With the progress display on, hold the tools' log messages and warnings of a step and
    yield them as a list (shown under the step's line instead of inside it).
    """
    import logging

    from ._settings import logger

    if not enabled:
        yield []
        return
    held: list[str] = []

    class _Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(record.getMessage())

    saved = logger.handlers[:]
    hold = _Hold(level=logging.NOTSET)
    logger.handlers = [hold]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield held
    finally:
        logger.handlers = saved
    held.extend(
        str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning | FutureWarning)
    )


def _outcome(name: str, a: AnnData, sample_key: str) -> str:
    """One line on what a step found, for the progress display."""
    o = a.obs
    try:
        if name == "qc":
            return f"{int(o[OBS.qc_outlier].sum()):,} outlier cells flagged"
        if name == "embedding":
            return f"{o[OBS.leiden].nunique()} Leiden clusters"
        if name == "malignant":
            return f"{int((o[OBS.malignant] == 'malignant').sum()):,} malignant cells"
        if name == "clones":
            return f"{int(a.uns[UNS.cnv_clones]['clones'].shape[0])} subclones"
        if name == "cell_types":
            return f"{o[OBS.cell_type].nunique()} cell types"
        if name == "signatures":
            return f"{a.obsm[OBSM.signatures].shape[1]} signatures scored"
        if name == "immune_phenotype":
            t = a.uns[UNS.immune_phenotype]["table"]
            return ", ".join(f"{s}: {p}" for s, p in zip(t["sample"], t["phenotype"]))
        if name == "niches":
            return f"{o[OBS.niche].nunique()} niches"
        if name == "tumor_score":
            used = a.uns[UNS.tumor_score]["params"].get("use_cnv")
            return f"copy-number term {'used' if used else 'left out'}"
        if name == "therapy":
            from .get import therapy_survival

            t = therapy_survival(a)
            n = t["call"].value_counts() if "call" in t else pd.Series(dtype=int)
            return (f"{len(t)} rows: {int(n.get('responds', 0))} respond, {int(n.get('survives', 0))} survive, "
                    f"{int(n.get('undetermined', 0))} undetermined")  # fmt: skip
        if name == "immunotherapy":
            t = a.uns[UNS.immunotherapy_benefit]["table"]
            return f"benefit determined for {int(t['benefit'].notna().sum())} of {len(t)} samples"
    except (KeyError, AttributeError, TypeError, ValueError):
        return ""
    return ""


#: the columns of ``uns["pipeline"]["steps"]``
RECORD_COLUMNS = ("step", "status", "seconds", "params", "version", "error", "reason", "fingerprint")


def _load_record(adata: AnnData) -> dict[str, dict]:
    """The record of earlier runs in ``uns["pipeline"]["steps"]`` as ``{step: entry}`` (empty when absent)."""
    entry = adata.uns.get(UNS.pipeline)
    if not isinstance(entry, dict) or not isinstance(entry.get("steps"), pd.DataFrame):
        return {}
    df = entry["steps"]
    return {
        str(r["step"]): {k: (float(r[k]) if k == "seconds" else ("" if pd.isna(r[k]) else str(r[k])))
                         for k in RECORD_COLUMNS[1:] if k in df.columns}
        for _, r in df.iterrows()
    }  # fmt: skip


def _steps_frame(record: dict[str, dict]) -> pd.DataFrame:
    """The record as the ``uns["pipeline"]["steps"]`` table, one row per step in pipeline order."""
    order = [s for s in STEP_ORDER if s in record]
    df = pd.DataFrame([{"step": s, **{k: v for k, v in record[s].items() if k != "exc"}} for s in order],
                      columns=list(RECORD_COLUMNS))  # fmt: skip
    for c in RECORD_COLUMNS:
        if c != "seconds":
            df[c] = df[c].fillna("").astype(str)
    df.index = df.index.astype(str)
    return df


def _store_steps(adata: AnnData, record: dict[str, dict]) -> None:
    """Keep the record in ``uns["pipeline"]["steps"]`` after each step (an interrupt keeps it)."""
    entry = adata.uns.get(UNS.pipeline)
    entry = dict(entry) if isinstance(entry, dict) else {}
    entry["steps"] = _steps_frame(record)
    adata.uns[UNS.pipeline] = entry


def _save_record(adata: AnnData, record: dict[str, dict], *, sample_key: str, facts: dict) -> None:
    """Store the record and the input facts in ``uns["pipeline"]`` through ``store``."""
    from ._store import store

    store(
        adata, tool="run", uns_key=UNS.pipeline,
        uns={"steps": _steps_frame(record), "input": {k: ("None" if v is None else v) for k, v in facts.items()}},
        params={"sample_key": sample_key, "version": __version__},
    )  # fmt: skip


def _qc_step(a: AnnData, *, counts_in: str | None, sample_key: str, chunk: int) -> None:
    """Per-cell QC metrics and the outlier flag (5 MADs of log counts or log genes per sample; mitochondrial
    share above 5 MADs and 10 %), read by row blocks.
    """
    from ._store import store

    X = a.X if counts_in in ("X", None) else a.layers[counts_in]
    mt = a.var_names.str.upper().str.startswith("MT-")
    n_genes, total, mt_total = qc_sums(X, np.flatnonzero(mt), chunk)
    pct_mt = mt_total / np.maximum(total, 1e-12) * 100 if mt.any() else np.zeros(a.n_obs)
    samples = a.obs[sample_key].astype(str).to_numpy()
    outlier = mad_outliers(samples, total, n_genes, pct_mt if mt.any() else None, n_mads=5, mt_floor=10)
    table = (
        pd.DataFrame({"sample": samples, "total": total, "genes": n_genes, "pct_mt": pct_mt, "outlier": outlier})
        .groupby("sample", observed=True)
        .agg(n_cells=("total", "size"), median_counts=("total", "median"), median_genes=("genes", "median"),
             median_pct_mt=("pct_mt", "median"), n_outliers=("outlier", "sum"))
        .reset_index()
    )  # fmt: skip
    store(
        a, tool="run.qc",
        obs={OBS.n_genes_by_counts: n_genes, OBS.total_counts: total, OBS.pct_counts_mt: pct_mt, OBS.qc_outlier: outlier},
        uns_key=UNS.qc, uns={"samples": table}, params={"sample_key": sample_key, "n_mads": 5, "max_pct_mt_floor": 10},
    )  # fmt: skip


def _normalize_step(a: AnnData, *, counts_in: str | None, linear: bool) -> None:
    """Counts kept in ``layers['counts']`` and ``X = log1p(CP10k)``; TPM/CPM kept in ``layers['input']`` and
    ``X = log1p(X)``; log-normalised input used as given.
    """
    import scanpy as sc

    if counts_in is None:
        if linear and INPUT_LAYER not in a.layers:  # TPM / CPM: keep it, X = log1p(X)
            a.layers[INPUT_LAYER] = a.X.copy()
            sc.pp.log1p(a)
        return  # log-normalised input: used as given
    if counts_in == "X" and COUNTS_LAYER not in a.layers:
        # a Dask matrix is immutable and lazy: the layer shares it, and X becomes a lazy
        # log-normalisation of its blocks (nothing is loaded until a tool reads a block)
        a.layers[COUNTS_LAYER] = a.X if is_streamed(a.X) else a.X.copy()
    if looks_like_counts(a.X):
        sc.pp.normalize_total(a, target_sum=1e4)
        sc.pp.log1p(a)


def _embedding_step(a: AnnData, *, sample_key: str, layer: str | None, integrate: bool, rng: int,
                    n_jobs: int | None, chunk: int) -> None:  # fmt: skip
    """Highly variable genes (Seurat flavour; streamed for Dask matrices), PCA, kNN graph (on scVI's
    latent space with ``integrate``), Leiden clusters and UMAP (landmarks above ``UMAP_MAX`` cells;
    unless ``n_jobs=1``, laid out in a thread while the next steps run, see :func:`_umap`).
    """
    import scanpy as sc

    from . import tl

    streamed = is_streamed(a.X)
    if streamed:  # one pass over the blocks: detection, mean and variance of expm1(X) per gene
        n_det, mean, var = gene_moments(a.X, chunk)
    else:
        n_det = np.asarray((a.X > 0).sum(axis=0)).ravel()
    # genes detected in fewer than 3 cells have no dispersion estimate (scanpy bins log means)
    detected = n_det >= 3
    if detected.sum() < 2:
        from ._errors import NotApplicableError

        raise NotApplicableError(f"needs genes detected in at least 3 cells ({a.n_obs} cells here)")
    n_hvg = int(min(2000, detected.sum()))
    flag = np.zeros(a.n_vars, dtype=bool)
    if streamed:
        flag[np.flatnonzero(detected)] = hvg_seurat(mean[detected], var[detected], n_hvg)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hv = sc.pp.highly_variable_genes(a[:, detected], n_top_genes=n_hvg, inplace=False)
        flag[np.flatnonzero(detected)] = hv["highly_variable"].to_numpy(bool)
    a.var["highly_variable"] = flag
    n_comps = int(min(30, a.n_obs - 1, n_hvg - 1))
    if streamed:  # PCA of the highly variable genes only, read into memory block by block
        from anndata import AnnData as _AnnData

        from ._core.chunks import select_columns

        cols = np.flatnonzero(flag)
        sub = _AnnData(X=select_columns(a.X, cols, chunk))
        sc.tl.pca(sub, n_comps=n_comps, random_state=rng)
        a.obsm["X_pca"] = sub.obsm["X_pca"]
        pcs = np.zeros((a.n_vars, n_comps), dtype=sub.varm["PCs"].dtype)
        pcs[cols] = sub.varm["PCs"]
        a.varm["PCs"] = pcs
        a.uns["pca"] = dict(
            sub.uns["pca"], params={**sub.uns["pca"].get("params", {}), "mask_var": "highly_variable"}
        )
    else:
        sc.tl.pca(a, n_comps=n_comps, mask_var="highly_variable", random_state=rng)
    use_rep = "X_pca"
    if integrate:
        tl.integrate(a, batch_key=sample_key, layer=layer, rng=rng, n_jobs=n_jobs)
        use_rep = OBSM.scvi
    _neighbors(a, use_rep=use_rep, rng=rng)
    sc.tl.leiden(
        a,
        resolution=1.0,
        flavor="igraph",
        n_iterations=2,
        directed=False,
        random_state=rng,
        key_added=OBS.leiden,
    )
    _umap(a, use_rep=use_rep, n_max=UMAP_MAX, rng=rng, background=n_jobs != 1)


class _Call(NamedTuple):
    """A step's function for this run and its parameters; where they depend on the run, its title and
    the test that its result is present (otherwise the registry's).
    """

    fn: Callable[[AnnData], Any]
    params: dict
    title: str | None = None
    result: Callable[[AnnData], bool] | None = None


def _plan(
    adata, *, sample_key, facts, spatial, therapies, therapy_arg, integrate, simulate, n_perms, rng, n_jobs
) -> list[_Step]:
    """The steps of this run in pipeline order: every registry entry that applies, with its function."""
    calls = _step_calls(
        adata, sample_key=sample_key, facts=facts, spatial=spatial, therapies=therapies, therapy_arg=therapy_arg,
        integrate=integrate, simulate=simulate, n_perms=n_perms, rng=rng, n_jobs=n_jobs,
    )  # fmt: skip
    given = {"simulate": bool(simulate)}
    spots = bool(facts.get("spots"))
    steps: list[_Step] = []
    for spec in STEPS:
        if _applies(spec, spatial=spatial, spots=spots, given=given):
            call = calls[spec.name]
            steps.append(_Step(spec.name, call.title or spec.title, call.fn, call.params,
                               call.result or partial(has_result, spec=spec), spec.needs, spec.uses))  # fmt: skip
    return steps


def _applies(spec: StepSpec, *, spatial: bool, spots: bool, given: dict[str, bool]) -> bool:
    """Whether the step is planned: coordinates for spatial steps, cells or spots, a requested step asked for."""
    return (
        (spatial or not spec.spatial)
        and not (spots and spec.cells_only)
        and (spots or not spec.spots_only)
        and (spec.only_with is None or given[spec.only_with])
    )


def _step_calls(
    adata, *, sample_key, facts, spatial, therapies, therapy_arg, integrate, simulate, n_perms, rng, n_jobs
) -> dict[str, _Call]:
    """Every registry step's function for this run, by step name, built from ``run``'s arguments."""
    from ._settings import settings

    counts_in, linear = facts["counts_in"], facts["linear"]
    # the layer tools read counts from ("counts" once X has been normalised)
    layer = COUNTS_LAYER if counts_in == "X" else counts_in
    if layer is None and linear:
        layer = INPUT_LAYER  # tools detect TPM/CPM themselves (e.g. infer_cnv's Smart-seq mode)
    common = {"sample_key": sample_key, "layer": layer, "rng": rng, "n_jobs": n_jobs}
    return {
        **_input_calls(adata, counts_in=counts_in, linear=linear, integrate=integrate,
                       chunk=int(settings.chunk_size), **common),
        **_analysis_calls(spatial=spatial, n_perms=n_perms, **common),
        **_therapy_calls(therapies=therapies, therapy_arg=therapy_arg, simulate=simulate, **common),
    }  # fmt: skip


def _input_calls(
    adata, *, counts_in, linear, integrate, chunk, sample_key, layer, rng, n_jobs
) -> dict[str, _Call]:
    """The calls of ``qc``, ``gene_positions``, ``normalize`` and ``embedding``."""
    from . import pp

    normalize_title = ("keep counts in layers['counts']; X = log1p(CP10k)" if counts_in is not None else
                       "linear-scale input (TPM/CPM) kept in layers['input']; X = log1p(X)" if linear else
                       "log-normalised input used as given")  # fmt: skip
    embedding = partial(_embedding_step, sample_key=sample_key, layer=layer, integrate=integrate, rng=rng,
                        n_jobs=n_jobs, chunk=chunk)  # fmt: skip
    return {
        "qc": _Call(partial(_qc_step, counts_in=counts_in, sample_key=sample_key, chunk=chunk), {"n_mads": 5}),
        "gene_positions": _Call(lambda a: pp.gene_positions(a), {},
                                f"gene positions for {adata.n_vars:,} genes (GRCh38)"),
        "normalize": _Call(partial(_normalize_step, counts_in=counts_in, linear=linear), {"target_sum": 1e4},
                           normalize_title,
                           lambda a: (INPUT_LAYER in a.layers) if (counts_in is None and linear) else
                           (counts_in is None or not looks_like_counts(a.X))),
        "embedding": _Call(embedding, {"n_hvg": 2000, "n_pcs": 30, "n_neighbors": 15, "leiden_resolution": 1.0,
                                       "integrate": integrate, "rng": rng, "exact_knn_max": EXACT_KNN_MAX,
                                       "umap_max": UMAP_MAX},
                           BY_NAME["embedding"].title + (" (scVI)" if integrate else "")),
    }  # fmt: skip


def _analysis_calls(*, spatial, n_perms, sample_key, layer, rng, n_jobs) -> dict[str, _Call]:
    """The calls of the steps from ``cnv`` to ``checkpoints`` (``tumor_score`` for spots)."""
    from . import gr, tl

    def stemness(a: AnnData) -> None:
        mal = (a.obs[OBS.cell_type_major] == "Malignant").to_numpy()
        group = np.where(
            mal, "malignant " + a.obs[sample_key].astype(str), a.obs[OBS.compartment].astype(str)
        )
        from ._store import store

        store(a, tool="run.stemness", obs={OBS.stemness_group: pd.Categorical(group)})
        tl.stemness(a, groupby=OBS.stemness_group, layer=layer)

    return {
        "cnv": _Call(lambda a: tl.infer_cnv(a, layer=layer, sample_key=sample_key, n_jobs=n_jobs, rng=rng),
                     {"layer": str(layer), "rng": rng}),
        "malignant": _Call(lambda a: tl.call_malignant(a, sample_key=sample_key, rng=rng), {"rng": rng}),
        "clones": _Call(lambda a: tl.cnv_clones(a, sample_key=sample_key, rng=rng), {"rng": rng}),
        "cell_types": _Call(lambda a: tl.annotate(a, layer=layer, sample_key=sample_key), {"layer": str(layer)}),
        "signatures": _Call(lambda a: _quiet(tl.score_signatures, a, method="control", rng=rng, n_jobs=n_jobs),
                            {"method": "control", "rng": rng}),
        "stemness": _Call(stemness, {"groupby": "malignant per sample, others per compartment"}),
        "tumor_score": _Call(lambda a: gr.tumor_score(a, layer=layer, sample_key=sample_key, rng=rng, n_jobs=n_jobs),
                             {"layer": str(layer), "rng": rng}),
        "interface": _Call(partial(_interface_step, sample_key=sample_key), {}),
        "immune_phenotype": _Call(lambda a: gr.immune_phenotype(a, sample_key=sample_key), {}),
        "niches": _Call(lambda a: gr.niches(a, sample_key=sample_key, rng=rng), {"rng": rng}),
        "heterogeneity": _Call(lambda a: _quiet(tl.heterogeneity, a, sample_key=sample_key, layer=layer, rng=rng,
                                                n_jobs=n_jobs), {"rng": rng}),
        # checkpoints after the spatial graph exists (neighbours restrict the interactions)
        "checkpoints": _Call(lambda a: tl.checkpoint_interactions(a, groupby=OBS.cell_type_major, sample_key=sample_key,
                                                                   layer=layer, n_perms=n_perms, rng=rng, n_jobs=n_jobs),
                             {"n_perms": n_perms, "rng": rng, "spatial": spatial}),
    }  # fmt: skip


#: fewest cells of a protein panel's tumour lineage (:data:`PANEL_TUMOUR_LINEAGES`) that stand for its
#: tumour in the ``interface`` and ``immunotherapy`` steps
MIN_PANEL_TUMOUR_CELLS = 20


#: the lineages that stand for the tumour of a protein panel without malignant calls, with the markers
#: that define them: carcinoma (keratin+ / E-cadherin+) and melanoma (SOX10+ / Melan-A+) cells
PANEL_TUMOUR_LINEAGES = {"Epithelial": "keratin+ / E-cadherin+", "Melanocyte": "SOX10+ / Melan-A+"}


def _panel_tumour(a: AnnData, step: str) -> tuple[str, str] | None:
    """``(key, value)`` naming the tumour cells of a protein panel without malignant calls: the larger
    of its epithelial (carcinoma) and melanocytic (melanoma) populations, as imaging studies of these
    tumours define the tumour, with a warning that says so; ``None`` where there are malignant calls or
    the data are not a protein panel. Not applicable with fewer than ``MIN_PANEL_TUMOUR_CELLS`` cells.
    """
    from ._errors import NotApplicableError

    if OBS.malignant in a.obs or a.uns.get(UNS.annotate, {}).get("input") != "protein":
        return None
    major = a.obs[OBS.cell_type_major].astype(str)
    n = {t: int((major == t).sum()) for t in PANEL_TUMOUR_LINEAGES}
    lineage = max(n, key=n.get)
    if n[lineage] < MIN_PANEL_TUMOUR_CELLS:
        raise NotApplicableError(
            f"a protein panel carries no copy-number evidence and this one has {n['Epithelial']} epithelial and "
            f"{n['Melanocyte']} melanocytic cells (fewer than {MIN_PANEL_TUMOUR_CELLS}): tumour cells cannot be "
            "placed; call the tool naming them (e.g. `tm.gr.interface(adata, tumor_key=..., tumor_value=...)`)."
        )
    warnings.warn(
        f"{step}: a protein panel carries no copy-number evidence; the tumour is taken as the {lineage} "
        f"({PANEL_TUMOUR_LINEAGES[lineage]}) cells ({n[lineage]:,}), as imaging studies define it. For other "
        "tumours, or normal tissue of that lineage in the field, call the tool naming the tumour cells.",
        UserWarning,
        stacklevel=3,
    )
    return OBS.cell_type_major, lineage


def _interface_step(a: AnnData, *, sample_key: str) -> None:
    """``gr.interface`` on the malignant calls, or on a protein panel's epithelial or melanocytic cells
    (:func:`_panel_tumour`); not applicable without either.
    """
    from . import gr
    from ._errors import NotApplicableError

    panel = _panel_tumour(a, "interface")
    if panel is not None:
        gr.interface(a, tumor_key=panel[0], tumor_value=panel[1], sample_key=sample_key)
    elif OBS.malignant in a.obs:
        gr.interface(a, sample_key=sample_key)
    else:
        raise NotApplicableError("needs malignant calls (step 'malignant' gave none) to place the tumour.")


def _immunotherapy_step(a: AnnData, *, sample_key: str, layer, rng, n_jobs) -> None:
    """``tl.immunotherapy_benefit``; on a protein panel the tumour cells are its epithelial or
    melanocytic cells (:func:`_panel_tumour`), as for the interface.
    """
    from . import tl
    from ._errors import NotApplicableError

    try:
        panel = _panel_tumour(a, "immunotherapy")
    except NotApplicableError:
        panel = None  # immune cells alone still give a benefit
    key, value = panel if panel is not None else (None, None)
    _quiet(tl.immunotherapy_benefit, a, sample_key=sample_key, layer=layer, malignant_key=key,
           malignant_value=value, rng=rng, n_jobs=n_jobs)  # fmt: skip


def _therapy_calls(*, therapies, therapy_arg, simulate, sample_key, layer, rng, n_jobs) -> dict[str, _Call]:
    """The calls of ``immunotherapy``, ``therapy``, ``combinations`` and ``simulation``."""
    from . import tl

    def therapy(a: AnnData) -> None:
        from ._errors import NotApplicableError
        from .tl._cells import malignant_mask

        has_call = OBS.malignant in a.obs or OBS.cell_type_major in a.obs
        if OBS.cnv_clone not in a.obs and has_call and malignant_mask(a, None, None)[0].any():
            raise NotApplicableError("needs CNV subclones of the malignant cells (step 'clones' gave none)")
        _quiet(tl.therapy_survival, a, therapies=therapy_arg, groupby=OBS.cnv_clone, sample_key=sample_key,
               layer=layer, rng=rng, n_jobs=n_jobs)  # fmt: skip

    def combinations(a: AnnData) -> None:
        # samples without malignant subpopulations (no survival rows of a subclone) get no combination
        have = _covered_samples(a)
        for s in a.obs[sample_key].cat.categories:
            if str(s) in have:
                _quiet(tl.combination_cover, a, samples=str(s), key_added=combination_key(s))

    def simulation(a: AnnData) -> None:
        for t in simulate:
            tl.simulate_therapy(
                a, therapy=t, key_added=simulation_key(t) if len(simulate) > 1 else UNS.therapy_simulation
            )

    n = len(therapies)
    return {
        "immunotherapy": _Call(partial(_immunotherapy_step, sample_key=sample_key, layer=layer, rng=rng,
                                       n_jobs=n_jobs), {"rng": rng}),
        "therapy": _Call(therapy, {"therapies": sorted(therapies), "rng": rng},
                         f"{BY_NAME['therapy'].title} ({n} therap{'y' if n == 1 else 'ies'})"),
        "combinations": _Call(combinations, {},
                              result=lambda a: all(combination_key(s) in a.uns for s in _covered_samples(a))),
        "simulation": _Call(simulation, {"therapies": list(simulate)},
                            f"{BY_NAME['simulation'].title} of {', '.join(simulate)}",
                            lambda a: UNS.therapy_simulation in a.uns or len(simulate) > 1),
    }  # fmt: skip


def _neighbors(a: AnnData, *, use_rep: str, rng: int, n_neighbors: int = 15) -> None:
    """The kNN graph of ``obsm[use_rep]`` as :func:`scanpy.pp.neighbors` writes it (``obsp``
    ``distances`` and ``connectivities``, ``uns["neighbors"]``).

    Up to ``EXACT_KNN_MAX`` cells: exact neighbours and UMAP's fuzzy graph from
    :mod:`tmeatlas._core.embedding` (the same graph as scanpy's ``transformer="sklearn"``, without
    importing umap-learn, whose import compiles pynndescent's kernels at every start); above, scanpy with
    pynndescent's approximate search.
    """
    import scanpy as sc

    if a.n_obs > EXACT_KNN_MAX:
        sc.pp.neighbors(a, n_neighbors=n_neighbors, use_rep=use_rep, random_state=rng)
        return
    k = n_neighbors if n_neighbors <= a.n_obs else 1 + int(0.5 * a.n_obs)  # scanpy's small-data rule
    ind, dist = exact_knn(a.obsm[use_rep], k)
    a.obsp["distances"] = knn_distances(ind, dist)
    a.obsp["connectivities"] = fuzzy_graph(ind, dist)
    a.uns["neighbors"] = {
        "connectivities_key": "connectivities",
        "distances_key": "distances",
        "params": {"n_neighbors": k, "method": "umap", "random_state": rng, "metric": "euclidean",
                   "use_rep": use_rep},
    }  # fmt: skip


def _layout(rep: np.ndarray, graph, rng: int) -> tuple[np.ndarray, dict]:
    """UMAP coordinates of the fuzzy ``graph`` (:func:`~tmeatlas._core.embedding.umap_layout`,
    scanpy's defaults ``min_dist=0.5``, ``spread=1``) started from the first two principal axes of
    ``rep``, and the parameters to record.

    The start is PCA rather than umap-learn's spectral embedding: as informative about the global
    structure (Kobak & Linderman, Nat Biotechnol 39:156, 2021), and defined when the graph falls
    into several components.
    """
    X = np.asarray(rep, dtype=np.float64)
    X = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    init = X @ vt[:2].T if X.shape[1] >= 2 else np.column_stack([X[:, 0], np.zeros(len(X))])
    a_, b_ = ab_params(spread=1.0, min_dist=0.5)
    Y = umap_layout(graph, init, a=a_, b=b_, seed=rng)
    return Y, {"a": a_, "b": b_, "min_dist": 0.5, "spread": 1.0, "init": "pca", "random_state": rng}


#: UMAP layouts being computed in a background thread while later steps run: ``id(adata) -> (thread,
#: result box)``, stored into the AnnData by :func:`_finish_layouts`
_LAYOUTS: dict[int, tuple[Any, dict]] = {}


def _layout_in_background(a: AnnData, *, use_rep: str, rng: int) -> None:
    """Start :func:`_layout` of every cell in a thread (its kernel releases the GIL, so a second core
    lays out while the next steps run); :func:`_finish_layouts` stores ``obsm["X_umap"]`` and
    ``uns["umap"]`` when it is done. The coordinates are those of the same call made directly.
    """
    import threading

    rep, graph, box = a.obsm[use_rep], a.obsp["connectivities"], {}

    def work() -> None:
        import os
        from contextlib import suppress

        # Linux only (elsewhere the id is not a process id): this thread's own priority, so the steps
        # (and their BLAS threads) keep the CPU they use
        if sys.platform.startswith("linux"):
            with suppress(AttributeError, OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        try:
            box["result"] = _layout(rep, graph, rng)
        except BaseException as e:  # reported by _finish_layouts
            box["error"] = e

    thread = threading.Thread(target=work, name="tmeatlas-umap", daemon=True)
    _LAYOUTS[id(a)] = (thread, box)
    thread.start()


def _finish_layouts(a: AnnData) -> None:
    """Wait for the background UMAP layout of ``a`` (if any) and store it; a failed layout leaves no
    UMAP (the embedding step then reruns next time, its result being absent), with a warning.
    """
    pending = _LAYOUTS.pop(id(a), None)
    if pending is None:
        return
    thread, box = pending
    thread.join()
    if "error" in box:
        e = box["error"]
        warnings.warn(f"the UMAP layout failed ({type(e).__name__}: {e}); figures are drawn without it and "
                      "the next run recomputes it.", UserWarning, stacklevel=3)  # fmt: skip
        return
    a.obsm["X_umap"], params = box["result"]
    a.uns["umap"] = {"params": params}


def _umap(a: AnnData, *, use_rep: str, n_max: int, rng: int, min_per_cluster: int = 50,
          background: bool = False) -> None:  # fmt: skip
    """UMAP of every cell up to ``n_max`` cells; above, of landmarks.

    The layout is umap-learn's algorithm (:func:`_layout`; one thread, seeded) on the kNN graph of
    :func:`_neighbors`. Its cost grows faster than the number of cells (umap-learn on this machine:
    the whole embedding step took ~2 minutes at 100,000 cells and over 8 minutes at 300,000
    without finishing). Above ``n_max``
    cells, about ``n_max`` landmarks are drawn per Leiden cluster in proportion to its size (at
    least ``min_per_cluster`` each, so small clusters keep a place), UMAP embeds them on their own
    kNN graph (exact up to ``EXACT_KNN_MAX`` landmarks, as for all cells), and every other cell is placed at the harmonic interpolation of the landmark
    positions over the whole kNN graph: with ``P`` the row-normalised connectivities and the
    landmarks held fixed, ``y_i = sum_j P_ij y_j`` for every other cell (solved by Jacobi
    iteration), i.e. where a random walk from the cell first meets a landmark, on average.
    The same approximation as landmark / out-of-sample embeddings (e.g. scanpy's ``ingest``);
    ``uns["umap"]["params"]`` records ``n_landmarks``. Needs ``obs["leiden"]`` and the kNN graph.
    ``benchmarks/umap_landmarks.py`` (20,000 simulated cells, 4,000 landmarks): silhouette of the
    true cell types 0.55 vs 0.47 for UMAP of every cell, kNN preservation 0.082 vs 0.092.
    With ``background`` (and up to ``n_max`` cells), the layout runs in a thread
    (:func:`_layout_in_background`) and is stored by :func:`_finish_layouts`.
    """
    from anndata import AnnData as _AnnData

    n = a.n_obs
    if n <= n_max and background:
        _layout_in_background(a, use_rep=use_rep, rng=rng)
        return
    if n <= n_max:
        a.obsm["X_umap"], params = _layout(a.obsm[use_rep], a.obsp["connectivities"], rng)
        a.uns["umap"] = {"params": params}
        return
    codes = a.obs[OBS.leiden].cat.codes.to_numpy()
    landmarks = landmark_indices(codes, n_max, rng, min_per_cluster=min_per_cluster)
    sub = _AnnData(
        obs=pd.DataFrame(index=a.obs_names[landmarks]), obsm={use_rep: np.asarray(a.obsm[use_rep])[landmarks]}
    )
    _neighbors(sub, use_rep=use_rep, rng=rng)
    Y_sub, params = _layout(sub.obsm[use_rep], sub.obsp["connectivities"], rng)
    fixed = np.zeros(n, dtype=bool)
    fixed[landmarks] = True
    Y = np.zeros((n, 2))
    Y[landmarks] = Y_sub
    a.obsm["X_umap"] = harmonic_fill(a.obsp["connectivities"], Y, fixed, codes).astype(Y_sub.dtype)
    a.uns["umap"] = {"params": {**params, "n_landmarks": len(landmarks)}}


#: the output folders that a run writes next to ``atlas.h5ad``
OUTPUT_FOLDERS = ("tables", "figures", "report")
#: a file present in the output folder while its folders are being replaced
INCOMPLETE = "INCOMPLETE"
#: what the last complete output was made from (skips redrawing when nothing changed)
STAMP = ".tmeatlas_outputs.json"


def _write_outputs(adata: AnnData, out: Path, *, sample_key: str, report: bool, shown: _Display, ran: bool,
                   stamp: str, background: bool = False) -> None:  # fmt: skip
    """Tables, figures, reports and ``atlas.h5ad``, written so that an interruption leaves either the
    old complete output or the new one (or a folder marked ``INCOMPLETE``), never a mix.

    Tables, figures and reports are written into ``out/.staging`` and then moved into place, with
    ``out/INCOMPLETE`` present during the move. When no step ran and the last complete output was
    made from the same steps (``out/.tmeatlas_outputs.json``), nothing is redrawn. ``background``:
    a second process renders figure files (:func:`tmeatlas._report.figure_saver`) while the atlas
    is written.
    """
    import shutil

    from . import _report

    out.mkdir(parents=True, exist_ok=True)
    stamp_file = out / STAMP
    complete = not (out / INCOMPLETE).exists() and (out / "atlas.h5ad").exists() and all(
        (out / f).is_dir() for f in OUTPUT_FOLDERS[: 3 if report else 2])  # fmt: skip
    if not ran and complete and stamp_file.exists() and stamp_file.read_text(encoding="utf-8") == stamp:
        for what in (
            "tables (CSV)",
            "figures (PNG and PDF)",
            "HTML reports (cohort and one per patient)",
            "atlas.h5ad",
        ):
            shown.reuse(what)
        return
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    shown.begin("tables (CSV)")
    t = time.perf_counter()
    tables = _report.write_tables(adata, staging / "tables", sample_key=sample_key)
    shown.end(time.perf_counter() - t)
    shown.begin(f"figures (PNG and PDF), {out / 'atlas.h5ad'}")
    t = time.perf_counter()
    with _report.figure_saver(background=background) as saver:
        figures = _report.write_figures(adata, staging / "figures", sample_key=sample_key, saver=saver)
        partial = _atlas_partial(adata, out / "atlas.h5ad")  # while the figure worker finishes
    _report.drop_unwritten(figures, saver.failed)
    shown.end(time.perf_counter() - t)
    shown.begin("HTML reports (cohort and one per patient)")
    t = time.perf_counter()
    try:
        if report:
            _report.write_reports(
                adata, staging / "report", sample_key=sample_key, figures=figures, tables=tables
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    shown.end(time.perf_counter() - t)
    shown.begin(f"write the new outputs into {out}")
    t = time.perf_counter()
    (out / INCOMPLETE).write_text(
        "tmeatlas was replacing this folder's outputs when it stopped; rerun `tmeatlas run` to finish.\n",
        encoding="utf-8",
    )
    stamp_file.unlink(missing_ok=True)
    partial.replace(out / "atlas.h5ad")
    for name in OUTPUT_FOLDERS:
        old = out / name
        if old.exists():
            shutil.rmtree(old)
        if (staging / name).exists():
            (staging / name).replace(old)
    shutil.rmtree(staging, ignore_errors=True)
    stamp_file.write_text(stamp, encoding="utf-8")
    (out / INCOMPLETE).unlink()
    shown.end(time.perf_counter() - t)


def _write_atlas(adata: AnnData, path: Path) -> None:
    """Write ``atlas.h5ad`` through a temporary file: a lazily read AnnData may be reading the old one."""
    _atlas_partial(adata, path).replace(path)


def _atlas_partial(adata: AnnData, path: Path) -> Path:
    """Write ``adata`` to ``<path>.partial`` (removed if the write stops) and return that path."""
    tmp = path.with_name(path.name + ".partial")
    try:
        _quiet(adata.write_h5ad, tmp, compression="lzf")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _covered_samples(a) -> set[str]:
    """Samples with survival rows of a malignant subpopulation (the ones that get a combination)."""
    t = a.uns[UNS.therapy_survival]["table"]
    return set(t.loc[pd.to_numeric(t["fraction_of_sample"], errors="coerce").notna(), "sample"].astype(str))
