"""The tumour–stroma interface and immune phenotypes: ``tm.gr.interface``, ``tm.gr.immune_phenotype``.

The spot-level tumour score (``tm.gr.tumor_score``) is in :mod:`tmeatlas.gr._tumor_score`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError, NotApplicableError
from .._keys import OBS, OBSM, UNS
from .._settings import logger
from .._store import store
from .._validation import check_int, check_obs_key, start
from ._neighborhoods import _coordinates, _is_real, _samples

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["REGIONS", "immune_phenotype", "interface"]

#: categories of ``obs["tumor_region"]``
REGIONS = ["core", "margin", "stroma"]
#: categories of ``obs["immune_phenotype"]``
PHENOTYPES = ["inflamed", "excluded", "desert", "no tumour"]
#: immune-phenotype calls whose probability under CD8 counting error is below this are logged
LOW_CONFIDENCE = 0.8
#: bounds of the automatic (Otsu) threshold on the local malignant share
THRESHOLD_BOUNDS = (0.2, 0.5)
#: tumour cells in clusters of at most this many are tumour buds, not tumour mass (ITBCC:
#: Lugli et al., Mod Pathol 30:1299, 2017)
BUD_CELLS = 4
#: Delaunay triangles with an edge longer than this many median nearest-neighbour distances
#: span holes or the outside of the tissue and carry no area
_MAX_EDGE = 3.0
#: default tumour columns tried in order, with the value that marks a tumour cell
_TUMOR_DEFAULTS = (
    (OBS.malignant, "malignant"),
    (OBS.compartment, "malignant"),
    (OBS.cell_type_major, "Malignant"),
)


# --------------------------------------------------------------------------------------------
# array cores
# --------------------------------------------------------------------------------------------
def _otsu(values: np.ndarray, n_bins: int = 64) -> float:
    """Otsu's (1979) threshold of values in [0, 1]: the cut maximising the between-class variance."""
    h, edges = np.histogram(values, bins=n_bins, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(h).astype(float)
    w1 = w0[-1] - w0
    m0 = np.cumsum(h * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][int(np.argmax(between))])


def _signed_distance(xy: np.ndarray, tumor: np.ndarray, k: int, threshold, min_cells: int):
    """Tumour mask, threshold used and signed distance (negative inside) of one sample's cells.

    ``tumor`` is each cell's tumour weight in [0, 1] (0/1 for single cells, a proportion for
    spots). Returns ``(inside, threshold, distance)``; ``distance`` is NaN when the sample holds
    fewer than ``min_cells`` cells inside the tumour.
    """
    from scipy.spatial import cKDTree

    n = len(xy)
    tree = cKDTree(xy)
    kk = min(k, n)
    d, idx = tree.query(xy, k=kk)
    d, idx = d.reshape(n, kk), idx.reshape(n, kk)
    share = tumor[idx].mean(axis=1)  # the cell itself is its own first neighbour
    if threshold == "otsu":
        thr = float(np.clip(_otsu(share), *THRESHOLD_BOUNDS)) if share.max() > 0 else THRESHOLD_BOUNDS[1]
    else:
        thr = float(threshold)
    inside = share > thr
    inside |= (tumor >= 0.5) & (share * kk >= BUD_CELLS + 1)
    if inside.sum() < min_cells:
        return np.zeros(n, bool), thr, np.full(n, np.nan)
    if inside.all():
        return inside, thr, np.full(n, -np.inf)
    # the boundary lies half a cell spacing beyond the last cell on either side
    half = 0.5 * float(np.median(d[:, 1])) if kk > 1 else 0.0
    d_in = cKDTree(xy[inside]).query(xy)[0]
    d_out = cKDTree(xy[~inside]).query(xy)[0]
    dist = np.where(inside, -np.maximum(d_out - half, 0.0), np.maximum(d_in - half, 0.0))
    return inside, thr, dist


def _cell_areas(xy: np.ndarray, max_edge: float = _MAX_EDGE) -> np.ndarray:
    r"""Tissue area around each cell: a third of every Delaunay triangle it is a corner of.

    Triangles with an edge longer than ``max_edge`` times the median nearest-neighbour distance
    span holes or the outside of the tissue and are dropped (an alpha-shape of the section), so
    the areas of all cells add up to the area the tissue covers.
    """
    from scipy.spatial import Delaunay, QhullError, cKDTree

    n = len(xy)
    out = np.zeros(n)
    if n < 3:
        return out
    nn = cKDTree(xy).query(xy, k=2)[0][:, 1]
    limit = max_edge * float(np.median(nn))
    try:
        tri = Delaunay(xy).simplices
    except QhullError:  # collinear or degenerate coordinates: no area
        return out
    p = xy[tri]
    edges = np.stack([np.hypot(*(p[:, a] - p[:, b]).T) for a, b in ((0, 1), (1, 2), (2, 0))], axis=1)
    keep = edges.max(axis=1) <= limit
    area = 0.5 * np.abs(
        (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
        - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1])
    )
    for corner in range(3):
        np.add.at(out, tri[keep, corner], area[keep] / 3)
    return out


def _regions(dist: np.ndarray, margin_width: float) -> np.ndarray:
    """Region code per cell: 0 core (inside), 1 margin (outside, within the band), 2 stroma; -1 no tumour."""
    out = np.full(len(dist), 2, dtype=np.int8)
    out[dist <= margin_width] = 1
    out[dist <= 0] = 0
    out[np.isnan(dist)] = -1
    return out


# --------------------------------------------------------------------------------------------
# tm.gr.interface
# --------------------------------------------------------------------------------------------
def _tumor_weights(adata: AnnData, tumor_key: str | None, tumor_value) -> tuple[np.ndarray, str, object]:
    """Tumour weight in [0, 1] of every cell and the column/value that defined it."""
    default = tumor_key is None and tumor_value is None
    if tumor_key is None:
        for key, value in _TUMOR_DEFAULTS:
            if key in adata.obs.columns:
                tumor_key, tumor_value = key, value if tumor_value is None else tumor_value
                break
        else:
            raise MissingResultError(
                "no tumour cells: run `tm.tl.call_malignant(adata)` or `tm.tl.annotate(adata)` first, "
                "or pass `tumor_key=` (a column marking tumour cells, or a numeric tumour proportion per spot)."
            )
    check_obs_key(adata, tumor_key, what="tumor_key")
    col = adata.obs[tumor_key]
    if pd.api.types.is_bool_dtype(col) and tumor_value is None:
        w = col.to_numpy().astype(float)
    elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) and tumor_value is None:
        w = col.to_numpy(dtype=float)
        if np.isnan(w).any() or w.min() < 0 or w.max() > 1:
            raise InvalidInputError(
                f"obs[{tumor_key!r}] is numeric, so it is read as a tumour proportion per cell/spot, but its "
                "values are not all in [0, 1]; pass a proportion, or a label column with `tumor_value=`."
            )
    else:
        labels = col.astype(str).to_numpy()
        if tumor_value is None:
            raise InvalidParameterError(
                f"obs[{tumor_key!r}] holds labels; pass `tumor_value=` (the label of tumour cells, e.g. 'CK+')."
            )
        values = [tumor_value] if isinstance(tumor_value, str) else list(tumor_value)
        known = set(labels)
        if default and known <= {"uncertain", "nan"}:
            raise NotApplicableError(
                f"every cell's obs[{tumor_key!r}] is 'uncertain' (the copy-number evidence cannot call malignant "
                "cells here, e.g. a targeted panel), so tumour regions cannot be placed; pass `tumor_key=` and "
                "`tumor_value=` naming tumour cells otherwise (e.g. a cell-type label)."
            )
        if default and not any(str(v) in known for v in values):
            # the package's own calls, with no tumour cell anywhere (a normal sample, or a panel
            # too small for CNV calls): every sample is tumour-free, not a mistyped label
            logger.warning(
                "interface: no cell has obs[%r] == %r, so no sample has a tumour; pass `tumor_key=` and "
                "`tumor_value=` to define tumour cells otherwise (e.g. a cell-type label).",
                tumor_key, tumor_value,
            )  # fmt: skip
            return np.zeros(len(labels)), tumor_key, tumor_value
        if not any(str(v) in known for v in values):
            shown = ", ".join(sorted(known)[:12])
            raise InvalidParameterError(
                f"tumor_value {tumor_value!r} is not a value of obs[{tumor_key!r}] ({shown})."
            )
        w = np.isin(labels, [str(v) for v in values]).astype(float)
    return w, tumor_key, tumor_value


@doc_params("copy")
def interface(
    adata: AnnData,
    *,
    tumor_key: str | None = None,
    tumor_value: str | list | None = None,
    sample_key: str | None = None,
    spatial_key: str = OBSM.spatial,
    n_neighbors: int = 15,
    threshold: str | float = "otsu",
    margin_width: float = 100.0,
    min_tumor_cells: int = 20,
    microns_per_unit: float = 1.0,
    key_added: str = UNS.interface,
    copy: bool = False,
) -> AnnData | None:
    r"""Signed distance of every cell to the tumour boundary, and tumour core / margin / stroma regions.

    Per sample, each cell's *tumour share* is the mean tumour weight :math:`t_j` of its
    ``n_neighbors`` nearest cells (itself included; :math:`t_j \in \{0, 1\}` for single cells,
    a tumour proportion for spots). The tumour region is where the share exceeds a threshold:
    by default Otsu's (1979) cut of the sample's shares (the bimodal split between tumour
    nests and stroma), bounded to [0.2, 0.5] so that the tumour region always holds at least a
    fifth, and need not hold more than a majority, of malignant cells — infiltrated nests stay
    tumour, isolated malignant cells in the stroma do not make one. A tumour cell with at least
    :data:`BUD_CELLS` tumour cells among its neighbours is inside as well (clusters of up to
    four cells are tumour buds in the stroma, by the ITBCC definition: Lugli et al., Mod
    Pathol 30:1299, 2017; larger clusters are tumour mass). The signed distance is

    .. math:: d_i = \begin{cases} -(\mathrm{dist}(i, \text{outside}) - h) & i \text{ inside} \\
              \mathrm{dist}(i, \text{inside}) - h & \text{otherwise} \end{cases}

    (kd-tree nearest-neighbour queries; :math:`h` is half the median nearest-neighbour
    spacing, the boundary lying between the last cells on either side), in microns. Regions:
    ``core`` (:math:`d \le 0`, inside the tumour), ``margin`` (the stromal band
    :math:`0 < d \le` ``margin_width``, the invasive margin of Galon et al., Science
    313:1960, 2006, at cellular scale) and ``stroma`` (beyond it).

    Parameters
    ----------
    adata
        Annotated data matrix with coordinates in ``obsm[spatial_key]``.
    tumor_key
        Column of ``adata.obs`` marking tumour cells: labels (with ``tumor_value``), booleans, or
        a numeric tumour proportion in [0, 1] per spot. ``None``: ``obs["malignant"]``
        (:func:`tmeatlas.tl.call_malignant`), else ``obs["compartment"]``, else
        ``obs["cell_type_major"]`` (:func:`tmeatlas.tl.annotate`); when that column calls no
        cell malignant, every sample is tumour-free (with a warning), whereas a ``tumor_value``
        given but absent from ``obs[tumor_key]`` is an error.
    tumor_value
        Label (or labels) of tumour cells in ``obs[tumor_key]`` (e.g. ``"CK+"``).
    sample_key
        Column of ``adata.obs`` with the sample (section); each is processed on its own.
    spatial_key
        Key of the coordinates in ``adata.obsm``.
    n_neighbors
        Cells whose tumour weights define each cell's tumour share (15: about two rings of cells).
    threshold
        ``"otsu"`` (default) or a fixed share in (0, 1).
    margin_width
        Width of the margin band outside the tumour, microns (100: about 5-10 cell diameters).
    min_tumor_cells
        A sample with fewer cells inside the tumour has no tumour: distances NaN, region ``stroma``.
    microns_per_unit
        Microns per coordinate unit (1 when coordinates are microns).
    key_added
        Key of ``adata.uns`` for the parameters and the per-sample summary.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obs["tumor_distance"]`` (microns, negative inside; NaN in
    samples without tumour), ``obs["tumor_region"]`` (core / margin / stroma) and
    ``uns[key_added]`` with ``samples`` (per sample: cells, cells in the tumour, threshold,
    tumour area in mm²) and ``params``.
    """
    adata = start(adata, copy)
    check_obs_key(adata, sample_key, what="sample_key")
    check_int("n_neighbors", n_neighbors, 1)
    if isinstance(threshold, str):
        if threshold != "otsu":
            raise InvalidParameterError(f"threshold must be 'otsu' or a number in (0, 1), got {threshold!r}.")
    elif not _is_real(threshold) or not 0 < threshold < 1:
        raise InvalidParameterError(f"threshold must be 'otsu' or a number in (0, 1), got {threshold!r}.")
    for name, value in (("margin_width", margin_width), ("microns_per_unit", microns_per_unit)):
        if not _is_real(value) or not np.isfinite(value) or value <= 0:
            raise InvalidParameterError(f"{name} must be a positive number, got {value!r}.")
    check_int("min_tumor_cells", min_tumor_cells, 1)
    xy = _coordinates(adata, spatial_key) * float(microns_per_unit)
    weights, tumor_key, tumor_value = _tumor_weights(adata, tumor_key, tumor_value)
    scodes, samples = _samples(adata, sample_key)

    dist = np.full(adata.n_obs, np.nan)
    summary = []
    for si, s in enumerate(samples):
        idx = np.flatnonzero(scodes == si)
        inside, thr, d = _signed_distance(
            xy[idx], weights[idx], int(n_neighbors), threshold, int(min_tumor_cells)
        )
        dist[idx] = d
        area = _cell_areas(xy[idx])
        has = not np.isnan(d).all()
        if not has:
            logger.warning(
                "interface: sample %r has fewer than %d cells in a tumour region; it is treated as having no tumour.",
                s, min_tumor_cells,
            )  # fmt: skip
        summary.append({
            "sample": s, "n_cells": len(idx), "n_tumor_cells": int(inside.sum()), "has_tumor": has,
            "threshold": thr, "tumor_area_mm2": float(area[inside].sum() / 1e6),
            "area_mm2": float(area.sum() / 1e6),
        })  # fmt: skip
    codes = _regions(dist, float(margin_width))
    region = pd.Categorical.from_codes(np.where(codes < 0, 2, codes), categories=REGIONS)
    params = {
        "tumor_key": tumor_key, "tumor_value": tumor_value, "sample_key": sample_key, "spatial_key": spatial_key,
        "n_neighbors": int(n_neighbors), "threshold": threshold, "margin_width": float(margin_width),
        "min_tumor_cells": int(min_tumor_cells), "microns_per_unit": float(microns_per_unit),
    }  # fmt: skip
    store(
        adata,
        tool="gr.interface",
        obs={OBS.tumor_distance: dist.astype(np.float32), OBS.tumor_region: region},
        uns_key=key_added,
        uns={"samples": pd.DataFrame(summary)},
        params=params,
    )
    return adata if copy else None


# --------------------------------------------------------------------------------------------
# tm.gr.immune_phenotype
# --------------------------------------------------------------------------------------------
def _classify(core: float, margin: float, inflamed_density: float, excluded_density: float) -> str:
    """Decision tree on CD8 T-cell densities (cells/mm²): core first, then margin."""
    if not np.isfinite(core):
        return "no tumour"
    if core >= inflamed_density:
        return "inflamed"
    if np.isfinite(margin) and margin >= excluded_density:
        return "excluded"
    return "desert"


def _phenotype_probabilities(
    n_core: int,
    area_core: float,
    n_margin: int,
    area_margin: float,
    inflamed_density: float,
    excluded_density: float,
) -> tuple[float, float, float]:
    r"""Probabilities of inflamed / excluded / desert given the CD8 counts (Poisson, Jeffreys prior).

    A region's CD8 density :math:`\lambda` given :math:`n` cells in area :math:`A` has the
    posterior :math:`\text{Gamma}(n + 1/2, \text{rate } A)` (Poisson counts, Jeffreys prior), so
    :math:`P(\lambda \ge t) = Q(n + 1/2, tA)` (regularised upper incomplete gamma). Core and
    margin are disjoint, hence independent: :math:`P_\text{inflamed} = P_c`,
    :math:`P_\text{excluded} = (1 - P_c) P_m`, :math:`P_\text{desert} = (1 - P_c)(1 - P_m)`.
    Without a core there is no call (all nan); without a margin, :math:`P_m = 0`.
    """
    from scipy.special import gammaincc

    if not (area_core > 0):
        return (np.nan, np.nan, np.nan)
    pc = float(gammaincc(n_core + 0.5, inflamed_density * area_core))
    pm = float(gammaincc(n_margin + 0.5, excluded_density * area_margin)) if area_margin > 0 else 0.0
    return (pc, (1 - pc) * pm, (1 - pc) * (1 - pm))


def _cd8_mask(adata: AnnData, cell_type_key: str | None, cd8_types) -> tuple[np.ndarray, str, list[str]]:
    """Which cells are CD8 T cells, the cell-type column and the CD8 labels used."""
    if cell_type_key is None:
        if OBS.cell_type in adata.obs.columns:
            cell_type_key = OBS.cell_type
        else:
            raise MissingResultError(
                "no cell types: run `tm.tl.annotate(adata)` first, or pass `cell_type_key=` "
                "(a column whose labels mark CD8 T cells)."
            )
    check_obs_key(adata, cell_type_key, what="cell_type_key")
    labels = adata.obs[cell_type_key].astype(str).to_numpy()
    known = sorted(set(labels))
    if cd8_types is None:
        cd8_types = [v for v in known if "cd8" in v.lower()]
        if not cd8_types:
            raise NotApplicableError(
                f"no label of obs[{cell_type_key!r}] mentions CD8 ({', '.join(known[:12])}); "
                "pass `cd8_types=` (the labels of CD8 T cells)."
            )
    else:
        cd8_types = [cd8_types] if isinstance(cd8_types, str) else [str(v) for v in cd8_types]
        missing = [v for v in cd8_types if v not in known]
        if missing:
            raise InvalidParameterError(f"cd8_types {missing} are not labels of obs[{cell_type_key!r}].")
    return np.isin(labels, cd8_types), cell_type_key, list(cd8_types)


@doc_params("copy")
def immune_phenotype(
    adata: AnnData,
    *,
    sample_key: str,
    cell_type_key: str | None = None,
    cd8_types: list[str] | None = None,
    inflamed_density: float = 100.0,
    excluded_density: float = 200.0,
    core_inset: float = 20.0,
    key_added: str = UNS.immune_phenotype,
    copy: bool = False,
) -> AnnData | None:
    r"""Inflamed / excluded / desert immune phenotype of every sample from CD8 T-cell densities.

    The three patterns of Chen & Mellman (Nature 541:321, 2017): CD8 T cells inside the tumour
    (*inflamed*), held at its margin (*excluded*) or scarce everywhere (*desert*). Per sample,
    CD8 T-cell densities (cells/mm²) are measured in the regions of :func:`tmeatlas.gr.interface`
    — tumour core, margin band and stroma — with each region's area the sum of its cells'
    shares of the Delaunay triangulation (triangles spanning holes or the outside, with an edge
    over three median neighbour spacings, are left out).
    The decision tree and its cut-offs are those of the digital-pathology immunotype of
    head-and-neck carcinoma (J Immunother Cancer 12:e009550, 2024,
    doi:10.1136/jitc-2024-009550): *inflamed* when the core density is
    :math:`\ge` ``inflamed_density`` (100/mm²), else *excluded* when the margin density is
    :math:`\ge` ``excluded_density`` (200/mm²), else *desert*. A sample without tumour is
    ``"no tumour"``. Needs single-cell-resolution data (cells, not spots).

    Densities from few cells or small regions are uncertain, so each call comes with the
    probability of each phenotype under the counting error of its two densities: with
    :math:`n` CD8 T cells in area :math:`A`, the density's posterior is
    :math:`\text{Gamma}(n + 1/2, \text{rate } A)` (Poisson counts with the Jeffreys prior;
    Jeffreys, Proc R Soc A 186:453, 1946), and the tree above gives
    :math:`P_\text{inflamed} = P(\lambda_\text{core} \ge t_1)`,
    :math:`P_\text{excluded} = (1 - P_\text{inflamed}) P(\lambda_\text{margin} \ge t_2)`, the
    rest desert. ``confidence`` is the probability of the phenotype called; calls below
    :data:`LOW_CONFIDENCE` are logged as a warning.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.gr.interface`.
    sample_key
        Column of ``adata.obs`` with the sample; must be the one ``interface`` used.
    cell_type_key
        Column of ``adata.obs`` with cell types (default ``obs["cell_type"]`` of
        :func:`tmeatlas.tl.annotate`).
    cd8_types
        Labels of CD8 T cells (default: every label containing "CD8", e.g. CD8 T, exhausted CD8 T).
    inflamed_density, excluded_density
        Cut-offs (CD8 T cells per mm²) of the core and of the margin.
    core_inset
        The core density counts cells at least this deep inside the boundary (microns; 20: about
        two cells), the tumour centre: the boundary is located to about one cell, so the first
        cells inside it mix tumour and margin (all core cells count when none is this deep).
    key_added
        Key of ``adata.uns`` for the per-sample table and the parameters.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``uns[key_added]["table"]`` (per sample: ``phenotype``,
    ``confidence``, ``p_inflamed``, ``p_excluded``, ``p_desert``, ``density_core``,
    ``density_margin``, ``density_stroma`` in CD8 T cells/mm², region areas in mm², cell and
    CD8 counts) with ``params``, and ``obs["immune_phenotype"]`` (the sample's
    phenotype broadcast to its cells).
    """
    adata = start(adata, copy)
    if not isinstance(sample_key, str):
        raise InvalidParameterError(
            f"sample_key must be the name of a column of adata.obs, got {sample_key!r}."
        )
    check_obs_key(adata, sample_key, what="sample_key")
    for name, value in (("inflamed_density", inflamed_density), ("excluded_density", excluded_density)):
        if not _is_real(value) or not np.isfinite(value) or value <= 0:
            raise InvalidParameterError(f"{name} must be a positive number (cells per mm²), got {value!r}.")
    if not _is_real(core_inset) or not np.isfinite(core_inset) or core_inset < 0:
        raise InvalidParameterError(f"core_inset must be a number >= 0 (microns), got {core_inset!r}.")
    if OBS.tumor_distance not in adata.obs.columns or UNS.interface not in adata.uns:
        raise MissingResultError("no tumour interface: run `tm.gr.interface(adata, sample_key=...)` first.")
    ip = adata.uns[UNS.interface].get("params", {})
    used = ip.get("sample_key")
    if used in (None, "None") or str(used) != sample_key:
        raise InvalidParameterError(
            f"tm.gr.interface was run with sample_key={used!r}; run it with sample_key={sample_key!r} first."
        )
    cd8, cell_type_key, cd8_types = _cd8_mask(adata, cell_type_key, cd8_types)
    spatial_key = str(ip.get("spatial_key", OBSM.spatial))
    xy = _coordinates(adata, spatial_key) * float(ip.get("microns_per_unit", 1.0))
    margin_width = float(ip.get("margin_width", 100.0))
    dist = adata.obs[OBS.tumor_distance].to_numpy(dtype=float)
    scodes, samples = _samples(adata, sample_key)

    rows = []
    for si, s in enumerate(samples):
        idx = np.flatnonzero(scodes == si)
        area = _cell_areas(xy[idx]) / 1e6  # mm²
        reg = _regions(dist[idx], margin_width)
        row = {"sample": s, "n_cells": len(idx), "n_cd8": int(cd8[idx].sum())}
        deep = dist[idx] <= -float(core_inset)
        for code, name in enumerate(REGIONS):
            m = reg == code
            if code == 0 and deep.any():
                m = deep  # the tumour centre: away from the ambiguous first cells inside the boundary
            a = float(area[m].sum())
            row[f"area_{name}_mm2"] = a
            row[f"n_cd8_{name}"] = int(cd8[idx][m].sum())
            row[f"density_{name}"] = row[f"n_cd8_{name}"] / a if a > 0 else np.nan
        if (reg < 0).all():
            row["density_core"] = np.nan
        row["phenotype"] = _classify(
            row["density_core"], row["density_margin"], inflamed_density, excluded_density
        )
        probs = _phenotype_probabilities(
            row["n_cd8_core"], row["area_core_mm2"] if np.isfinite(row["density_core"]) else 0.0,
            row["n_cd8_margin"], row["area_margin_mm2"], inflamed_density, excluded_density,
        )  # fmt: skip
        row.update(dict(zip(("p_inflamed", "p_excluded", "p_desert"), probs)))
        row["confidence"] = (
            row[f"p_{row['phenotype']}"] if row["phenotype"] in ("inflamed", "excluded", "desert") else np.nan
        )
        rows.append(row)
    cols = ["sample", "phenotype", "confidence", "p_inflamed", "p_excluded", "p_desert", "density_core",
            "density_margin", "density_stroma", "area_core_mm2", "area_margin_mm2", "area_stroma_mm2", "n_cells",
            "n_cd8", "n_cd8_core", "n_cd8_margin", "n_cd8_stroma"]  # fmt: skip
    table = pd.DataFrame(rows)[cols]
    unsure = table.loc[table["confidence"] < LOW_CONFIDENCE, ["sample", "phenotype", "confidence"]]
    if len(unsure):
        logger.warning(
            "immune_phenotype: %d sample(s) called with confidence < %.1f (few CD8 T cells or a small region; "
            "see the p_* columns): %s", len(unsure), LOW_CONFIDENCE,
            ", ".join(f"{r.sample} {r.phenotype} ({r.confidence:.2f})" for r in unsure.itertuples()),
        )  # fmt: skip
    per_sample = dict(zip(table["sample"], table["phenotype"]))
    pheno = pd.Categorical([per_sample[samples[c]] for c in scodes], categories=PHENOTYPES)
    params = {
        "sample_key": sample_key, "cell_type_key": cell_type_key, "cd8_types": cd8_types,
        "inflamed_density": float(inflamed_density), "excluded_density": float(excluded_density),
        "margin_width": margin_width, "core_inset": float(core_inset), "units": "CD8 T cells per mm2",
    }  # fmt: skip
    store(
        adata,
        tool="gr.immune_phenotype",
        obs={OBS.immune_phenotype: pheno},
        uns_key=key_added,
        uns={"table": table},
        params=params,
    )
    return adata if copy else None
