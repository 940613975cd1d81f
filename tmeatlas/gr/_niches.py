"""Spatial niches shared across samples: ``tm.gr.niches``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidParameterError, MissingResultError
from .._keys import OBS, OBSM, UNS
from .._palettes import CB_PALETTE
from .._rng import RngLike, make_rng, resolve_seed, spawn_seeds
from .._settings import logger
from .._store import store
from .._validation import check_int, check_obs_key, renamed_args, start
from ._interface import REGIONS
from ._neighborhoods import _is_int, _is_real, _samples, neighborhoods

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["niches"]

#: k-means restarts of each stability run (a run stuck in a poor local optimum would make a
#: well-separated partition look unstable)
STABILITY_N_INIT = 8
#: neighbour counts of the neighbourhood compositions computed when none exist (about two rings
#: of cells, and a ~50-cell neighbourhood that sees the surrounding tissue)
DEFAULT_SCALES = (15, 50)
#: two mutually most similar niches whose distributions over samples overlap less than this
#: (overlap coefficient) are one structure split by patient; a number of niches that makes
#: such a split is passed over
MIN_SAMPLE_OVERLAP = 0.5
#: runs per candidate number of niches in the stability selection
N_STABILITY_RUNS = 5
#: cells of the stability subsamples (ARI between runs is estimated well on this many)
STABILITY_CELLS = 5_000

# words used to name a niche from its composition: group name -> role (major-type vocabulary,
# compartments and the fine types of tm.tl.annotate map onto these)
_ROLE = {
    "malignant": "tumour", "epithelial": "epithelium", "normal epithelium": "epithelium",
    "t cell": "T", "nk cell": "T", "b cell": "B", "plasma cell": "plasma", "myeloid": "myeloid",
    "mast cell": "myeloid", "fibroblast": "fibro", "endothelial": "vessel", "pericyte": "vessel",
    "immune": "immune", "stromal": "fibro", "stroma": "fibro", "tumour": "tumour", "tumor": "tumour",
    "lymphocyte": "immune", "vascular": "vessel", "microglia": "myeloid", "parenchyma": "parenchyma",
    "oligodendrocyte": "parenchyma", "opc": "parenchyma", "astrocyte": "parenchyma", "neuron": "parenchyma",
}  # fmt: skip
#: the role words, in the order the naming rules read them
_ROLES = ("tumour", "epithelium", "T", "B", "plasma", "myeloid", "immune", "fibro", "vessel", "parenchyma")


def _role(group: str) -> str:
    """The role word of a cell group ("tumour", "T", "fibro", ...; "other" when none fits)."""
    g = group.lower()
    if g in _ROLE:
        return _ROLE[g]
    for word, role in (("malignant", "tumour"), ("tumor", "tumour"), ("tumour", "tumour"), ("ck+", "tumour"),
                       ("cancer", "tumour"), ("carcinoma", "tumour"), ("lymphocyte", "immune"),
                       ("epitheli", "epithelium"), ("cd8", "T"), ("cd4", "T"), ("treg", "T"), ("t cell", "T"),
                       ("nk", "T"), ("plasma", "plasma"), ("b cell", "B"), ("macrophage", "myeloid"),
                       ("monocyte", "myeloid"), ("dc", "myeloid"), ("neutrophil", "myeloid"), ("mast", "myeloid"),
                       ("cd68", "myeloid"), ("caf", "fibro"), ("fibro", "fibro"), ("endotheli", "vessel"),
                       ("pericyte", "vessel"), ("vascul", "vessel"), ("myeloid", "myeloid"),
                       ("granulocyte", "myeloid"), ("dendritic", "myeloid")):  # fmt: skip
        if word in g:
            return role
    if g == "b":
        return "B"
    return "other"


def _name(comp: pd.Series, region: pd.Series | None, epithelium_is_normal: bool = True) -> str:
    """A descriptive name of a niche from its mean composition (and tumour-region shares).

    ``epithelium_is_normal``: the epithelial groups are non-malignant (malignant cells have a
    group of their own, or every epithelial group is named normal), so an epithelial niche is
    "normal epithelium"; otherwise an epithelial group may hold the tumour, and an epithelial
    niche is "epithelium", or "tumour core" when it lies mostly in the tumour core of
    :func:`tmeatlas.gr.interface`.
    """
    roles = comp.groupby(comp.index.map(_role)).sum()
    r = {k: float(roles.get(k, 0.0)) for k in _ROLES}
    immune = r["T"] + r["B"] + r["plasma"] + r["myeloid"] + r["immune"]
    in_core = float(region.get("core", 0.0)) if region is not None else np.nan
    at_margin = float(region.get("margin", 0.0)) if region is not None else np.nan
    if r["tumour"] >= 0.5 or (in_core >= 0.5 and r["tumour"] >= 0.3):
        return "inflamed tumour" if r["T"] >= 0.15 else "tumour core"
    if r["B"] >= 0.2 and r["B"] + r["T"] >= 0.4:
        return "TLS"
    if r["epithelium"] >= 0.4:
        if epithelium_is_normal:
            return "normal epithelium"
        return "tumour core" if in_core >= 0.5 else "epithelium"
    if r["tumour"] >= 0.15 or at_margin >= 0.5 or in_core >= 0.3:
        return "immune-rich margin" if immune >= 0.3 else "tumour margin"
    top = max(("T", "B", "plasma", "myeloid"), key=lambda k: r[k])
    if immune >= 0.5 and r["immune"] < 0.5 * immune and r[top] >= r["immune"]:  # the leading kind is known
        return {"T": "T-cell-rich stroma", "B": "B-cell aggregate", "plasma": "plasma-cell-rich stroma",
                "myeloid": "myeloid-rich stroma"}[top]  # fmt: skip
    if immune >= 0.3:
        return "immune-rich stroma"
    if r["parenchyma"] >= 0.4:
        return "parenchyma"
    if r["vessel"] >= 0.4:
        return "vascular stroma"
    if r["fibro"] + r["vessel"] >= 0.4:
        return "stroma"
    top = comp.sort_values(ascending=False).index[:2]
    return "mixed (" + ", ".join(map(str, top)) + ")"


def _block_of(column: str) -> str:
    """The neighbourhood scale of a composition column ("CD8 T@50" -> "50"; no scale -> "")."""
    return column.rsplit("@", 1)[1] if "@" in column else ""


def _features(
    F: np.ndarray, columns: list[str], interface: dict[str, np.ndarray] | None, fit: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
    r"""The clustered representation: chi-square-scaled compositions, blocks balanced as in MFA.

    Each composition column is divided by the square root of its mean,
    :math:`x_{ij} / \sqrt{\bar p_j}`, the chi-square metric of correspondence analysis: a
    neighbourhood fraction's sampling variance grows with the group's abundance, so on raw
    fractions abundant groups (malignant cells, fibroblasts) dominate the distances and rare
    but concentrated ones (B cells of a TLS) do not count. Each block — one per neighbourhood
    scale, and one per interface feature (``interface``: name -> column) — is then divided by
    the square root of the largest eigenvalue of its covariance (multiple factor analysis,
    Escofier & Pagès, Comput Stat Data Anal 18:121, 1994; for a one-column block, its standard
    deviation), so that no block outweighs the others by its number of columns or its spread.
    Means and eigenvalues are computed on the ``fit`` rows.
    """

    def top_weight(B: np.ndarray) -> float:
        top = float(np.linalg.eigvalsh(np.atleast_2d(np.cov(B, rowvar=False)))[-1]) if len(B) > 1 else 0.0
        return 1.0 / np.sqrt(top) if top > 1e-12 else 0.0

    mean = F[fit].mean(axis=0)
    col = np.zeros(F.shape[1])
    ok = mean > 0
    col[ok] = 1.0 / np.sqrt(mean[ok])
    tags = [_block_of(c) for c in columns]
    weights: dict[str, float] = {}
    for tag in dict.fromkeys(tags):
        cols = np.flatnonzero([t == tag for t in tags])
        w = top_weight(F[np.ix_(fit, cols)] * col[cols])  # eigenvalue on the fit rows only
        weights[f"composition@{tag}" if tag else "composition"] = w
        col[cols] *= w
    X = F * col  # one pass over the full matrix
    if interface:
        extra = []
        for name, v in interface.items():
            v = np.asarray(v, dtype=np.float64)
            w = top_weight(v[fit, None])
            weights[name] = w
            extra.append(w * v[:, None])
        X = np.hstack([X, *extra])
    return X, weights


def _kmeans(X: np.ndarray, k: int, seed: int, n_init: int = 3) -> np.ndarray:
    """Centroids of k-means (k-means++ initialisation) on ``X``."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    km = KMeans(n_clusters=k, n_init=n_init, max_iter=100, random_state=int(seed % (2**31 - 1)))
    # one thread: the fits are small (<= 50k rows) and OpenMP threads spin when the cores are
    # busy (measured 42 s vs 2 s for the stability search on a loaded 2-core machine)
    with threadpool_limits(limits=1, user_api="openmp"):
        km.fit(X)
    return km.cluster_centers_


def _assign(X: np.ndarray, centres: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    """Nearest centroid of every row, in chunks (memory bounded by ``chunk`` x k)."""
    out = np.empty(len(X), dtype=np.int64)
    c2 = (centres**2).sum(1)
    for a in range(0, len(X), chunk):
        b = X[a : a + chunk]
        out[a : a + chunk] = np.argmin(c2[None, :] - 2 * b @ centres.T, axis=1)
    return out


def _stability(X: np.ndarray, ks: list[int], seed: int, n_runs: int, fit_size: int) -> pd.DataFrame:
    """Mean pairwise ARI of k-means runs on independent subsamples, scored on one evaluation set."""
    from sklearn.metrics import adjusted_rand_score

    rs = make_rng(seed)
    n = len(X)
    m = min(n, fit_size)
    evaluation = rs.choice(n, size=m, replace=False) if m < n else np.arange(n)
    rows = []
    for k in ks:
        labels = []
        for s in spawn_seeds(seed + k, n_runs):
            r = make_rng(int(s))
            sub = r.choice(n, size=max(min(n, int(0.8 * m)), k), replace=False)
            labels.append(_assign(X[evaluation], _kmeans(X[sub], k, int(s), n_init=STABILITY_N_INIT)))
        scores = [
            adjusted_rand_score(labels[i], labels[j]) for i in range(n_runs) for j in range(i + 1, n_runs)
        ]
        rows.append(
            {"n_niches": k, "stability": float(np.mean(scores)), "stability_sd": float(np.std(scores))}
        )
    return pd.DataFrame(rows)


def _patient_split(X: np.ndarray, labels: np.ndarray, samples: np.ndarray) -> float:
    r"""Smallest sample-distribution overlap of two mutually most similar niches (1: no split by sample).

    For niches ``a`` and ``b`` that are each other's nearest (centroid distance), the overlap
    coefficient :math:`\sum_s \min(q_{as}, q_{bs})` of their distributions over samples
    (:math:`q_{as}` the fraction of sample ``s``'s cells in ``a``, normalised over samples so that
    sample size does not count) is 1 when both occur alike in every sample and 0 when they never
    share a sample: then they are one tissue structure split by patient.
    """
    present = np.unique(labels)
    if len(present) < 2:
        return 1.0
    cent = np.array([X[labels == c].mean(axis=0) for c in present])
    d = ((cent[:, None, :] - cent[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = d.argmin(axis=1)
    frac = pd.crosstab(samples, labels, normalize="index").reindex(columns=present, fill_value=0.0).to_numpy()
    q = frac / np.maximum(frac.sum(axis=0, keepdims=True), 1e-12)
    worst = 1.0
    for a, b in enumerate(nearest):
        if nearest[b] == a:
            worst = min(worst, float(np.minimum(q[:, a], q[:, b]).sum()))
    return worst


@renamed_args(cluster_key="groupby")
@doc_params("copy")
def niches(
    adata: AnnData,
    *,
    groupby: str | None = None,
    sample_key: str | None = None,
    spatial_key: str = OBSM.spatial,
    n_niches: int | None = None,
    k_range: tuple[int, int] = (3, 10),
    use_interface: bool = True,
    stability_tolerance: float = 0.03,
    max_fit_cells: int = 50_000,
    rng: RngLike = 0,
    key_added: str = UNS.niches,
    copy: bool = False,
) -> AnnData | None:
    r"""Spatial niches: cells whose neighbourhoods look alike, with the same meaning in every sample.

    Each cell is described by the cell-type composition of its neighbourhood
    (``obsm["X_neighborhood"]`` of :func:`tmeatlas.gr.neighborhoods`; computed with its defaults
    when absent), the cellular-neighbourhood representation of Goltsev et al. (Cell 174:968,
    2018) and Schürch et al. (Cell 182:1341, 2020), plus — when :func:`tmeatlas.gr.interface`
    has run and ``use_interface`` — its position relative to the tumour: whether it lies inside,
    and its proximity :math:`\exp(-\max(d, 0) / \lambda)` to the boundary (:math:`d` the
    signed distance, :math:`\lambda` half the interface's margin width). The proximity is
    continuous, so the clustering places the margin–stroma cut where the composition changes
    rather than at the interface's fixed band.

    Compositions are compared in the chi-square metric of correspondence analysis: each
    group's fraction is divided by the square root of its mean fraction, so that a rare group
    concentrated in a small structure (B cells in a TLS) counts as much as a change in an
    abundant one (a fraction's sampling variance grows with its mean). Each block of features —
    one per neighbourhood scale, and each of the two interface features on its own — is then
    divided by the square root of the largest eigenvalue of its covariance, as in multiple
    factor analysis (Escofier & Pagès, Comput Stat Data Anal 18:121, 1994), so that no block
    dominates by its number of columns or its spread (weights in ``params["block_weights"]``).
    Inside and proximity are separate blocks because they describe different things (which
    side of the boundary, how far outside): as one block, their shared inside/outside contrast
    takes the top eigenvalue and the proximity gradient outside the tumour, which carries the
    margin, is scaled down with it. All samples are clustered
    together by k-means, so a niche means the same composition in every sample (the graphs,
    built per sample, never join two samples).

    The number of niches, when not given, is chosen by stability (Lange et al., Neural Comput
    16:1299, 2004): for each :math:`k` in ``k_range``, k-means (:data:`STABILITY_N_INIT`
    restarts, so that a poor local optimum is not mistaken for instability) is fitted on
    :data:`N_STABILITY_RUNS` independent 80 % subsamples of :data:`STABILITY_CELLS` cells and the
    runs' labels of one evaluation set are compared by the adjusted Rand index. A coarse
    partition (tumour / margin / stroma) is usually the most stable of all, and a finer one that
    is nearly as reproducible adds niches that are really there (TLS, normal ducts), so the
    candidates are every :math:`k` whose mean ARI is within ``stability_tolerance`` of the best,
    and the largest is kept — unless, with ``sample_key``, it splits one structure by patient:
    two niches that are each other's most similar and whose distributions over samples overlap
    by less than :data:`MIN_SAMPLE_OVERLAP` (overlap coefficient
    :math:`\sum_s \min(q_{as}, q_{bs})`, :math:`q_{as}` niche ``a``'s share of sample ``s``
    normalised over samples) are the same tissue seen in different patients (the stroma of
    inflamed and of desert tumours), not two niches; such a :math:`k` is passed over for the
    next candidate. ``uns[key_added]["stability"]`` records the ARI and, for the candidates
    tried, this overlap.

    Centroids are fitted on at most ``max_fit_cells`` cells (a random subsample) and every cell
    joins its nearest centroid, so memory and time stay linear in cells.

    Each niche is named from its mean composition by fixed rules (tumour share >= 0.5:
    "tumour core", or "inflamed tumour" with >= 15 % T/NK cells; B >= 20 % with B + T >= 40 %:
    "TLS"; epithelium >= 40 %: "normal epithelium" — or, when no group is labelled malignant and
    an epithelial group is not named normal (it may then hold the tumour), "epithelium", or
    "tumour core" when mostly in the interface's core; >= 15 % tumour or mostly in the margin band:
    "tumour margin" / "immune-rich margin"; immune >= 50 % or >= 30 %: "T-cell-rich stroma",
    "myeloid-rich stroma", ..., "immune-rich stroma"; tissue parenchyma (glia, neurons) >= 40 %:
    "parenchyma"; fibroblasts and vessels: "stroma" / "vascular stroma"); repeated names get a
    number.

    Parameters
    ----------
    adata
        Annotated data matrix with coordinates (``obsm["spatial"]``).
    groupby
        Cell groups whose neighbourhood composition describes each cell (e.g.
        ``"cell_type"``). ``None``: the groups of an existing ``obsm["X_neighborhood"]``, else
        ``obs["cell_type"]`` (fine types separate myCAF from iCAF and macrophage states, which
        mark the invasive margin), else ``obs["cell_type_major"]``. Compositions computed here
        use the 15 and the 50 nearest cells (:data:`DEFAULT_SCALES`), the cell included.
    sample_key
        Column of ``adata.obs`` with the sample (used when the neighbourhoods are computed here).
    spatial_key
        Key of the coordinates in ``adata.obsm`` (used when the neighbourhoods are computed here).
    n_niches
        Number of niches; ``None`` chooses it by stability within ``k_range``.
    k_range
        Smallest and largest number of niches tried.
    use_interface
        Add the tumour region of :func:`tmeatlas.gr.interface` to the features when present.
    stability_tolerance
        A larger number of niches is preferred when its mean ARI is at most this much below the
        best (0.03 leaves room for the run-to-run spread of the ARI of a reproducible partition,
        reported as ``stability_sd``).
    max_fit_cells
        Cells on which centroids (and stability) are fitted.
    rng
        Seed of the subsamples and k-means initialisations (recorded in ``params``).
    key_added
        Key of ``adata.uns`` for the niche table and parameters.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obs["niche"]`` (categorical niche names) and ``uns[key_added]``
    with ``composition`` (niches x groups, mean neighbourhood fractions), ``regions`` (niches x
    tumour regions, when used), ``summary`` (``niche``, ``n_cells``, ``fraction``),
    ``per_sample`` (sample x niche fractions), ``stability`` (per ``k``: mean and sd of ARI, and
    ``sample_overlap`` of the candidates tried) and
    ``params``; ``uns["niche_colors"]`` (colour-blind-safe).
    """
    adata = start(adata, copy)
    _check_niches(n_niches, k_range, use_interface, stability_tolerance, max_fit_cells)
    check_obs_key(adata, sample_key, what="sample_key")
    seed = resolve_seed(rng)

    groupby = _ensure_neighborhoods(adata, groupby, sample_key, spatial_key)
    comp = adata.obsm[OBSM.neighborhood]
    columns = (
        [str(c) for c in comp.columns]
        if isinstance(comp, pd.DataFrame)
        else [f"f{i}" for i in range(comp.shape[1])]
    )
    F = np.asarray(comp, dtype=np.float64)
    interface, region_onehot, decay = _interface_features(adata, use_interface)
    n = adata.n_obs
    if n < 3 * k_range[1] and n_niches is None:
        raise InvalidParameterError(
            f"{n} cells are too few to choose among {k_range[1]} niches; pass a smaller k_range."
        )
    rs = make_rng(seed)
    fit = np.sort(rs.choice(n, size=int(max_fit_cells), replace=False)) if n > max_fit_cells else np.arange(n)
    X, block_weights = _features(F, columns, interface, fit)

    stability = None
    if n_niches is None:
        sample_codes = _samples(adata, sample_key)[0][fit] if sample_key is not None else None
        k, centres, stability = _choose_k(
            X, fit, k_range, seed, max_fit_cells, stability_tolerance, sample_codes
        )
    else:
        k = int(n_niches)
        centres = None
    if centres is None:
        centres = _kmeans(X[fit], k, seed, n_init=STABILITY_N_INIT)
    labels = _assign(X, centres)
    label_names, uns = _compute_tables(adata, F, columns, labels, k, region_onehot, sample_key)
    if stability is not None:
        uns["stability"] = stability

    params = {
        "groupby": groupby, "sample_key": sample_key, "n_niches": k, "n_niches_given": n_niches,
        "k_range": list(k_range), "use_interface": bool(region_onehot is not None),
        "block_weights": block_weights, "proximity_decay_um": decay, "stability_tolerance": float(stability_tolerance),
        "max_fit_cells": int(max_fit_cells), "rng": seed, "spatial_key": spatial_key,
    }  # fmt: skip
    store(adata, tool="gr.niches", obs={OBS.niche: label_names}, uns_key=key_added, uns=uns, params=params)
    adata.uns[f"{OBS.niche}_colors"] = [CB_PALETTE[i % len(CB_PALETTE)] for i in range(k)]
    return adata if copy else None


def _check_niches(n_niches, k_range, use_interface, stability_tolerance, max_fit_cells) -> None:
    """None; raises :class:`~tmeatlas.InvalidParameterError` naming the first invalid parameter of :func:`niches`."""
    if n_niches is not None and (not _is_int(n_niches) or n_niches < 2):
        raise InvalidParameterError(f"n_niches must be an integer >= 2 or None, got {n_niches!r}.")
    if (
        not isinstance(k_range, tuple | list)
        or len(k_range) != 2
        or not all(_is_int(k) for k in k_range)
        or not 2 <= k_range[0] <= k_range[1]
    ):
        raise InvalidParameterError(f"k_range must be two integers 2 <= low <= high, got {k_range!r}.")
    if not isinstance(use_interface, bool):
        raise InvalidParameterError(f"use_interface must be True or False, got {use_interface!r}.")
    if not _is_real(stability_tolerance) or not 0 <= stability_tolerance < 1:
        raise InvalidParameterError(f"stability_tolerance must be in [0, 1), got {stability_tolerance!r}.")
    check_int("max_fit_cells", max_fit_cells, 100)


def _ensure_neighborhoods(
    adata: AnnData, groupby: str | None, sample_key: str | None, spatial_key: str
) -> str:
    """The cluster key of ``obsm["X_neighborhood"]``, computing the compositions (:data:`DEFAULT_SCALES`) when absent."""
    nh = adata.uns.get(UNS.neighborhoods, {})
    have = OBSM.neighborhood in adata.obsm and isinstance(nh, dict) and "params" in nh
    # "cluster_key": the parameter's name in atlases written before it was renamed groupby
    done_with = nh["params"].get("groupby", nh["params"].get("cluster_key")) if have else None
    if have and (groupby is None or str(done_with) == groupby):
        return str(done_with)
    if groupby is None:
        groupby = next((k for k in (OBS.cell_type, OBS.cell_type_major) if k in adata.obs.columns), None)
        if groupby is None:
            raise MissingResultError(
                "no cell groups: run `tm.tl.annotate(adata)` (or `tm.gr.neighborhoods`) first, "
                "or pass `groupby=`."
            )
    check_obs_key(adata, groupby, what="groupby")
    neighborhoods(adata, groupby=groupby, sample_key=sample_key, spatial_key=spatial_key,
                  n_neighbors=DEFAULT_SCALES[0], scales=list(DEFAULT_SCALES), include_self=True)  # fmt: skip
    return groupby


def _interface_features(adata: AnnData, use_interface: bool):
    """``(interface, region_onehot, decay)``: inside / proximity features, one-hot tumour regions and the
    proximity decay (microns) from :func:`tmeatlas.gr.interface`; all ``None`` when not used.
    """
    if not (use_interface and OBS.tumor_distance in adata.obs.columns and UNS.interface in adata.uns):
        return None, None, None
    decay = 0.5 * float(adata.uns[UNS.interface].get("params", {}).get("margin_width", 100.0))
    d = adata.obs[OBS.tumor_distance].to_numpy(dtype=float)
    inside = np.where(np.isnan(d), 0.0, (d <= 0).astype(float))
    proximity = np.where(np.isnan(d), 0.0, np.exp(-np.maximum(np.nan_to_num(d, nan=0.0), 0.0) / decay))
    interface = {"inside": inside, "proximity": proximity}
    codes = pd.Categorical(adata.obs[OBS.tumor_region].astype(str), categories=REGIONS).codes
    region_onehot = np.zeros((adata.n_obs, len(REGIONS)))
    ok = codes >= 0
    region_onehot[np.flatnonzero(ok), codes[ok]] = 1.0
    return interface, region_onehot, decay


def _choose_k(
    X: np.ndarray,
    fit: np.ndarray,
    k_range,
    seed: int,
    max_fit_cells: int,
    stability_tolerance: float,
    sample_codes: np.ndarray | None,
) -> tuple[int, np.ndarray | None, pd.DataFrame]:
    """``(k, centroids or None, stability table)``: the largest near-most-stable number of niches that
    splits no structure by sample (``sample_codes`` of the ``fit`` rows; ``None``: no check).
    """
    ks = list(range(int(k_range[0]), int(k_range[1]) + 1))
    stability = _stability(X, ks, seed, N_STABILITY_RUNS, min(int(max_fit_cells), STABILITY_CELLS))
    best = float(stability["stability"].max())
    candidates = stability.loc[stability["stability"] >= best - float(stability_tolerance), "n_niches"]
    stability["sample_overlap"] = np.nan
    k, centres = None, None
    for kk in sorted((int(x) for x in candidates), reverse=True):
        cen = _kmeans(X[fit], kk, seed, n_init=STABILITY_N_INIT)
        if sample_codes is None or len(np.unique(sample_codes)) < 2:
            k, centres = kk, cen
            break
        overlap = _patient_split(X[fit], _assign(X[fit], cen), sample_codes)
        stability.loc[stability["n_niches"] == kk, "sample_overlap"] = overlap
        if overlap >= MIN_SAMPLE_OVERLAP:
            k, centres = kk, cen
            break
    if k is None:  # every near-best partition splits a niche by sample: the most stable one
        k = int(stability.loc[stability["stability"].idxmax(), "n_niches"])
    logger.info("niches: %d niches chosen by stability (mean ARI %.3f)", k,
                float(stability.set_index("n_niches").loc[k, "stability"]))  # fmt: skip
    return k, centres, stability


def _niche_names(comp_groups: pd.DataFrame, reg_df: pd.DataFrame | None, k: int) -> list[str]:
    """The name of each of the ``k`` niches (:func:`_name`), repeated names numbered."""
    names = []
    epithelium_is_normal = any(_role(g) == "tumour" for g in comp_groups.columns) or all(
        "normal" in str(g).lower() for g in comp_groups.columns if _role(g) == "epithelium"
    )
    for c in range(k):
        nm = _name(comp_groups.loc[c] if c in comp_groups.index else pd.Series(dtype=float),
                   reg_df.loc[c] if reg_df is not None and c in reg_df.index else None,
                   epithelium_is_normal)  # fmt: skip
        names.append(nm)
    counts: dict[str, int] = {}
    unique = []
    for nm in names:
        counts[nm] = counts.get(nm, 0) + 1
        unique.append(nm if counts[nm] == 1 else f"{nm} {counts[nm]}")
    return unique


def _compute_tables(
    adata: AnnData,
    F: np.ndarray,
    columns: list[str],
    labels: np.ndarray,
    k: int,
    region_onehot: np.ndarray | None,
    sample_key: str | None,
) -> tuple[pd.Categorical, dict]:
    """``(niche of every cell, uns tables)``: niches named and ordered by tumour content, with their
    composition, regions, summary and per-sample fractions.
    """
    # composition per niche (averaged over scales when multi-scale) and names
    groups = [c.split("@")[0] for c in columns]
    comp_df = pd.DataFrame(F, columns=columns).groupby(labels).mean()
    comp_groups = comp_df.T.groupby(groups, sort=False).mean().T
    reg_df = None
    if region_onehot is not None:
        reg_df = pd.DataFrame(region_onehot, columns=REGIONS).groupby(labels).mean()
    unique = _niche_names(comp_groups, reg_df, k)
    # order niches by their tumour content (tumour first), stable
    tumour_share = np.array([comp_groups.loc[c, [g for g in comp_groups.columns if _role(g) == "tumour"]].sum()
                             if c in comp_groups.index else 0.0 for c in range(k)])  # fmt: skip
    order = list(np.argsort(-tumour_share, kind="stable"))
    cats = [unique[c] for c in order]
    label_names = pd.Categorical.from_codes(np.argsort(order)[labels], categories=cats)

    comp_out = comp_groups.reindex(order)
    comp_out.index = cats
    summary = pd.DataFrame({
        "niche": cats,
        "n_cells": [int((labels == c).sum()) for c in order],
        "fraction": [float((labels == c).mean()) for c in order],
    })  # fmt: skip
    uns = {"composition": comp_out, "summary": summary}
    if reg_df is not None:
        r = reg_df.reindex(order)
        r.index = cats
        uns["regions"] = r
    if sample_key is not None:
        per = pd.crosstab(
            adata.obs[sample_key].astype(str).to_numpy(), np.asarray(label_names), normalize="index"
        )
        uns["per_sample"] = per.reindex(columns=cats, fill_value=0.0)
    return label_names, uns
