"""Simulated spot-based spatial sections (ST / Visium-like) pooled from simulated single cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import InvalidParameterError
from .._validation import check_int

if TYPE_CHECKING:
    from anndata import AnnData

    from .._rng import RngLike

#: section kinds and the share of spots whose expected tumour fraction is >= 0.5
SECTION_KINDS = {"dominated": (0.72, 0.88), "mixed": (0.25, 0.45), "free": (0.0, 0.0)}
#: share of the non-tumour spots that lie in normal glands / ducts (tumour sections, tumour-free sections)
DUCT_SHARE = {"tumour": 0.25, "free": 0.3}
SPOT_SPACING = 100.0  # microns between neighbouring spot centres (Visium: 100 um; ST v1: 200 um)
CAPTURE = 0.2  # share of a cell's simulated UMIs that a spot captures
CELLS_PER_SPOT = (5, 20)


def _field(rng: np.random.Generator, xy: np.ndarray, n_blobs: int, scale: float) -> np.ndarray:
    """A smooth random field on the spot grid: a sum of Gaussian bumps of random centre and height."""
    lo, hi = xy.min(0), xy.max(0)
    centres = lo + rng.random((n_blobs, 2)) * (hi - lo)
    heights = rng.uniform(0.5, 1.0, n_blobs)
    d2 = ((xy[:, None, :] - centres[None]) ** 2).sum(-1)
    return (heights * np.exp(-d2 / (2 * scale**2))).sum(1)


def _fractions(
    rng: np.random.Generator, xy: np.ndarray, kind: str, grid: int
) -> tuple[np.ndarray, np.ndarray]:
    """Expected tumour and normal-gland fractions of every spot of one section."""
    n = len(xy)
    tumour = np.zeros(n)
    if kind != "free":
        share = rng.uniform(*SECTION_KINDS[kind])
        z = _field(rng, xy, n_blobs=max(3, grid // 3), scale=grid / 5)
        thr = np.quantile(z, 1 - share)
        width = 0.1 * z.std()
        purity = rng.uniform(0.75, 0.95)
        # expected fraction 0.65 at the threshold, so that binomial sampling of the cells keeps
        # about the requested share of spots at a realised fraction >= 0.5
        off = -width * np.log(purity / 0.65 - 1)
        tumour = purity / (1 + np.exp(-(z - thr + off) / width))
    g = _field(rng, xy, n_blobs=max(4, grid // 2), scale=grid / 12)
    free = tumour < 0.25
    duct_share = DUCT_SHARE["free" if kind == "free" else "tumour"]
    duct = np.zeros(n)
    if free.any():
        cut = np.quantile(g[free], 1 - duct_share)
        duct[free & (g >= cut)] = rng.uniform(0.4, 0.8, int((free & (g >= cut)).sum()))
    return tumour, duct


def _draw(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    """``k`` cells of ``pool`` (without replacement while the pool lasts)."""
    if k == 0 or len(pool) == 0:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(pool, size=k, replace=k > len(pool))


def _check(sections, grid, n_genes) -> list[str]:
    if isinstance(sections, str) or not isinstance(sections, Sequence) or len(sections) == 0:
        raise InvalidParameterError(
            f"sections must be a non-empty list of {sorted(SECTION_KINDS)}, got {sections!r}."
        )
    bad = [s for s in sections if s not in SECTION_KINDS]
    if bad:
        raise InvalidParameterError(f"unknown section kind(s) {bad}; use one of {sorted(SECTION_KINDS)}.")
    if isinstance(grid, bool) or not isinstance(grid, int | np.integer) or grid < 6:
        raise InvalidParameterError(f"grid must be an integer >= 6 (spots per side), got {grid!r}.")
    check_int("n_genes", n_genes, 1000)
    return list(sections)


def simulate_spots(
    *,
    sections: Sequence[str] = ("dominated", "mixed", "free"),
    grid: int = 20,
    n_genes: int = 4000,
    rng: RngLike = 0,
) -> AnnData:
    r"""Simulate spot-based spatial sections (ST / Visium-like) with a known tumour fraction per spot.

    Single cells of ``tm.datasets.simulate_tumor`` (one tumour patient per tumour section, plus its
    normal patient) are pooled into the spots of a ``grid x grid`` square lattice. Each section
    has a smooth random tumour field (a sum of Gaussian bumps thresholded so that the requested
    share of spots has an expected tumour fraction :math:`f \geq 0.5`, with logistic edges and a
    purity of 0.75-0.95 inside) and normal glands (spots whose cells are 40-80 % normal epithelium,
    drawn from the normal patient) among the non-tumour spots. A spot holds
    :math:`n = n_0 + \mathrm{round}(5 f)` cells, :math:`n_0 \sim U\{5, \dots, 15\}` (tumour nests
    are cell-dense), of which :math:`\mathrm{Binomial}(n, f)` are malignant cells of the section's
    patient, the glandular share normal epithelial cells and the rest other non-malignant cells of
    the patient (stroma, immune). Its counts are
    :math:`\mathrm{Poisson}(0.2 \sum_\text{cells} x_{cg})`, the share of a cell's transcripts a spot
    captures, which also makes a cell drawn twice add fresh sampling noise. Pooling cells into spots
    follows the benchmarks of spot deconvolution (e.g. Andersson et al., Commun Biol 3:565, 2020).

    Parameters
    ----------
    sections
        One entry per section: ``"dominated"`` (72-88 % tumour spots, the case where a section's
        least tumour-like spots are still tumour), ``"mixed"`` (25-45 %) or ``"free"`` (no tumour:
        stroma, immune cells and normal glands of the normal patient).
    grid
        Spots per side of the square lattice (100 um apart).
    n_genes
        Genes of the underlying ``simulate_tumor`` call (with positions for ``tm.tl.infer_cnv``).
    rng
        Seed (``int``), :class:`numpy.random.Generator` or ``None``; recorded in
        ``uns["simulation"]["params"]["seed"]``.

    Returns
    -------
    AnnData of spots x genes with raw counts in ``X`` (CSR), ``var`` of ``simulate_tumor`` (gene
    positions included), ``obsm["spatial"]`` (microns) and the truth in ``obs``: ``sample``
    (``"S1"``, ...), ``true_section_kind``, ``true_patient``, ``true_n_cells``,
    ``true_tumor_fraction`` (share of malignant cells), ``true_tumor`` (fraction >= 0.5) and
    ``true_gland_fraction`` (share of normal epithelial cells); ``uns["simulation"]["params"]``.
    """
    import anndata as ad
    from scipy import sparse

    from .._rng import make_rng, resolve_seed
    from ._simulate import simulate_tumor

    kinds = _check(sections, grid, n_genes)
    seed = resolve_seed(rng)
    gen = make_rng(seed)
    n_tumour = sum(k != "free" for k in kinds)
    cells = simulate_tumor(
        n_cells=max(2000, 15 * grid * grid) * (n_tumour + 1), n_patients=max(n_tumour, 1), n_genes=int(n_genes),
        normal_patient=True, spatial=False, rng=int(gen.integers(2**31)),
    )  # fmt: skip
    obs = cells.obs
    patients = list(pd.unique(obs["sample"].astype(str)))
    normal = patients[-1]
    mal = obs["true_malignant"].to_numpy(bool)
    epi = (obs["true_cell_type_major"].astype(str) == "Epithelial").to_numpy() & ~mal
    sample = obs["sample"].astype(str).to_numpy()
    yy, xx = np.divmod(np.arange(grid * grid), grid)
    xy = np.column_stack([xx, yy]).astype(float)
    Xc = cells.X.tocsr()
    blocks, rows = [], []
    t = 0
    for i, kind in enumerate(kinds):
        patient = normal if kind == "free" else patients[t]
        t += kind != "free"
        pools = {
            "mal": np.flatnonzero(mal & (sample == patient)),
            "epi": np.flatnonzero(epi & (sample == normal)),
            "other": np.flatnonzero(~mal & ~epi & (sample == patient)),
        }
        f_t, f_d = _fractions(gen, xy, kind, grid)
        n_cells = gen.integers(CELLS_PER_SPOT[0], CELLS_PER_SPOT[1] - 4, len(xy)) + np.round(5 * f_t).astype(
            int
        )
        k_mal = gen.binomial(n_cells, f_t)
        k_epi = gen.binomial(n_cells - k_mal, f_d)
        idx, spot = [], []
        for s in range(len(xy)):
            drawn = [_draw(gen, pools["mal"], k_mal[s]), _draw(gen, pools["epi"], k_epi[s]),
                     _draw(gen, pools["other"], n_cells[s] - k_mal[s] - k_epi[s])]  # fmt: skip
            drawn = np.concatenate(drawn)
            idx.append(drawn)
            spot.append(np.full(len(drawn), s))
        idx, spot = np.concatenate(idx), np.concatenate(spot)
        pool_matrix = sparse.csr_matrix((np.ones(len(idx)), (spot, idx)), shape=(len(xy), Xc.shape[0]))
        mean = (pool_matrix @ Xc).tocsr() * CAPTURE
        mean.data = gen.poisson(mean.data).astype(np.float32)
        mean.eliminate_zeros()
        blocks.append(mean)
        rows.append(pd.DataFrame({
            "sample": f"S{i + 1}", "true_section_kind": kind, "true_patient": patient,
            "true_n_cells": n_cells, "true_tumor_fraction": k_mal / n_cells,
            "true_tumor": k_mal / n_cells >= 0.5, "true_gland_fraction": k_epi / n_cells,
        }))  # fmt: skip
    obs_out = pd.concat(rows, ignore_index=True)
    obs_out.index = [
        f"{s}_spot{j}" for s, j in zip(obs_out["sample"], np.tile(np.arange(len(xy)), len(kinds)))
    ]
    for c in ("sample", "true_section_kind", "true_patient"):
        obs_out[c] = obs_out[c].astype("category")
    out = ad.AnnData(X=sparse.vstack(blocks, format="csr"), obs=obs_out, var=cells.var.copy())
    out.obsm["spatial"] = np.tile(xy * SPOT_SPACING, (len(kinds), 1))
    out.uns["simulation"] = {
        "params": {"sections": kinds, "grid": int(grid), "n_genes": int(n_genes), "seed": int(seed),
                   "capture": CAPTURE, "spot_spacing_um": SPOT_SPACING},
    }  # fmt: skip
    return out
