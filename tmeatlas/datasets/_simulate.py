"""Simulated tumour cohorts with ground truth: ``tm.datasets.simulate_tumor``."""

from __future__ import annotations

import math
import re
import zlib
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numba import njit, prange

from .._errors import InvalidParameterError
from .._keys import OBS, OBSM, UNS, VAR
from .._resources import CHROMOSOMES, NUCLEAR_CHROMOSOMES, gene_table
from .._rng import make_rng, resolve_seed, spawn_seeds
from .._settings import logger, settings
from . import _programs as prg

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anndata import AnnData

    from .._rng import RngLike

__all__ = ["simulate_tumor"]

#: fixed seed of the "biology" shared by every cohort: gene universe, gene-level means,
#: dispersions, dosage sensitivities and cell-type profiles do not depend on ``rng``
_BIOLOGY_SEED = 0x7E3A71A5
PHENOTYPES = ("inflamed", "excluded", "desert")
_FINE = list(prg.CELL_TYPES)
_FINE_IDX = {t: i for i, t in enumerate(_FINE)}
_PROGRAM_ORDER = [
    "proliferation",
    "hypoxia",
    "stemness",
    "EMT",
    "antigen_presentation",
    "persister",
    "interferon",
    "stress",
    "mito",
    "ER_signalling",
]
_PIDX = {p: i for i, p in enumerate(_PROGRAM_ORDER)}
#: clone-level states drawn per clone (programs and drug targets)
_CLONE_PROGRAMS = ["proliferation", "stemness", "EMT", "persister", "antigen_presentation"]
_CLONE_TARGETS = ["ERBB2", "EGFR", "TACSTD2", "NECTIN4", "ESR1", "CD274"]

# clone-name / non-coding symbols: kept rare in the background selection
_CLONE_LIKE = re.compile(
    r"^(?:[A-Z]{1,2}\d{5,6}\.\d+|LINC\d|LOC\d|MIR\d|MIRLET|SNOR[AD]\d|SCARNA|RNU\d|RNA5|RNY|Y_RNA|"
    r"[A-Z0-9]+-AS\d|[A-Z0-9]+-IT\d|[A-Z0-9]+-DT$|[A-Z0-9]+-OT\d|IG[HKL][VDJ]\d|TR[ABDG][VDJ]\d|"
    r"OR\d+[A-Z]+\d+|KRTAP\d|RPL\d+[AL]?\d*P\d|RPS\d+[AXY]?\d*P\d)"
)

# spatial layout (microns)
_SPACING = 12.0
_HYPOXIA_DEPTH = 100.0  # half-maximal hypoxia this deep inside a nest (O2 diffuses ~100-150 um);
# small sections (whose nests are smaller) use 70 % of their largest nest radius instead
_HYPOXIA_WIDTH = 22.0
_FAR = -1000.0
#: the module fold changes of ``_programs.MODULES`` are multiplied by this (calibrates marker
#: levels: a strong marker (listed 4.5) reaches ~10-30 counts per 10k in its cell type)
_MARKER_GAIN = 1.5
#: patient-specific malignant program: fraction of genes changed and sd of their log fold change
_PATIENT_FRAC = 0.03
_PATIENT_SD = 0.6
#: weight of the neighbouring state in an intermediate cell (``_programs.CONTINUA``)
_MIX_LEVELS = np.array([0.15, 0.3, 0.45])

# library size: median UMIs per fine type (lognormal, sigma 0.45)
_LIB_MEDIAN = {
    "Malignant": 8000, "normal epithelium": 6500, "CD8 T": 3500, "exhausted CD8 T": 4200,
    "progenitor-exhausted CD8 T": 3500, "CD4 T": 3200, "Treg": 3800, "NK": 3400, "B": 4000,
    "Plasma": 9000, "classical monocyte": 5000, "non-classical monocyte": 4500,
    "C1Q+ macrophage": 7500, "SPP1+ macrophage": 8000, "cDC1": 5000, "cDC2": 5500, "pDC": 4000,
    "neutrophil": 1800, "Mast": 5500, "myCAF": 7000, "iCAF": 6500, "Pericyte": 5000, "Endothelial": 5000,
}  # fmt: skip
_LIB_SIGMA = 0.45

# ribosomal / mitochondrial shifts by fine type (log scale)
_RIBO_SHIFT = {"T cell": 0.45, "NK cell": 0.25, "B cell": 0.45, "Plasma cell": -0.4, "Myeloid": -0.2,
               "Mast cell": -0.2, "Fibroblast": -0.4, "Endothelial": -0.2, "Pericyte": -0.3,
               "Malignant": -0.3, "Epithelial": -0.2}  # fmt: skip
_MITO_SHIFT = {"Malignant": 0.55, "Epithelial": 0.3, "Plasma cell": 0.2, "Myeloid": 0.1}

# fraction of cycling cells per fine type (malignant: per clone)
_CYCLING = {"exhausted CD8 T": 0.10, "progenitor-exhausted CD8 T": 0.06, "CD8 T": 0.03, "CD4 T": 0.02,
            "Treg": 0.04, "NK": 0.03, "B": 0.03, "Plasma": 0.05, "normal epithelium": 0.03}  # fmt: skip
_CYCLING_DEFAULT = 0.015


# ---------------------------------------------------------------------------------------------
# niche compositions: niche -> phenotype -> {fine type: weight}
# ---------------------------------------------------------------------------------------------
def _comp(**kw: float) -> dict[str, float]:
    alias = {
        "mal": "Malignant", "cd8": "CD8 T", "tex": "exhausted CD8 T", "tpex": "progenitor-exhausted CD8 T",
        "cd4": "CD4 T", "treg": "Treg", "nk": "NK", "b": "B", "plasma": "Plasma",
        "mono": "classical monocyte", "ncmono": "non-classical monocyte", "c1q": "C1Q+ macrophage",
        "spp1": "SPP1+ macrophage", "cdc1": "cDC1", "cdc2": "cDC2", "pdc": "pDC", "neut": "neutrophil",
        "mast": "Mast", "mycaf": "myCAF", "icaf": "iCAF", "endo": "Endothelial", "peri": "Pericyte",
        "epi": "normal epithelium",
    }  # fmt: skip
    return {alias[k]: v for k, v in kw.items()}


_COMPOSITION: dict[str, dict[str, dict[str, float]]] = {
    "tumour": {
        "inflamed": _comp(mal=55, tex=7, cd8=3.5, tpex=1, cd4=2, treg=2, nk=2, b=0.5, plasma=0.5, mono=0.8,
                          ncmono=0.3, c1q=3, spp1=5, cdc1=0.4, cdc2=0.7, pdc=0.3, neut=1.2, mast=0.2,
                          mycaf=3, icaf=0.5, endo=2.5, peri=1),
        # excluded: intratumoural CD8 T cells well below the 100/mm2 of the immunotype definition
        # (J Immunother Cancer 12:e009550, 2024) at this section's ~6,900 cells/mm2
        "excluded": _comp(mal=72.85, tex=0.3, cd8=0.2, tpex=0.05, cd4=0.4, treg=0.3, nk=0.4, b=0.1, plasma=0.2,
                          mono=0.8, ncmono=0.2, c1q=2.5, spp1=4.5, cdc1=0.1, cdc2=0.3, pdc=0.1, neut=1.5,
                          mast=0.2, mycaf=5, icaf=0.5, endo=3, peri=1.2),
        "desert": _comp(mal=78, tex=0.2, cd8=0.2, tpex=0.05, cd4=0.2, treg=0.1, nk=0.2, b=0.05, plasma=0.1,
                        mono=0.5, ncmono=0.1, c1q=2, spp1=3, cdc1=0.05, cdc2=0.15, pdc=0.05, neut=1,
                        mast=0.1, mycaf=4, icaf=0.4, endo=3, peri=1.2),
    },
    "margin": {
        "inflamed": _comp(mal=8, tex=6, cd8=7, tpex=2, cd4=8, treg=4, nk=2.5, b=2, plasma=2, mono=2.5,
                          ncmono=1, c1q=6, spp1=3, cdc1=0.6, cdc2=1.5, pdc=0.5, neut=1.5, mast=0.8,
                          mycaf=18, icaf=6, endo=6, peri=2.5),
        "excluded": _comp(mal=8, tex=5, cd8=10, tpex=2, cd4=9, treg=4.5, nk=2, b=2, plasma=2, mono=3,
                          ncmono=1, c1q=6, spp1=3, cdc1=0.6, cdc2=1.5, pdc=0.5, neut=1.5, mast=1,
                          mycaf=20, icaf=6, endo=5, peri=2),
        "desert": _comp(mal=8, tex=0.3, cd8=0.6, tpex=0.1, cd4=1, treg=0.3, nk=0.5, b=0.3, plasma=0.8,
                        mono=2, ncmono=0.5, c1q=6, spp1=3, cdc1=0.2, cdc2=0.6, pdc=0.2, neut=1.5, mast=1,
                        mycaf=30, icaf=12, endo=7, peri=3),
    },
    "stroma": {
        "inflamed": _comp(cd8=4, tex=0.5, tpex=1.5, cd4=6, treg=2, nk=1.5, b=3, plasma=5, mono=3, ncmono=1,
                          c1q=6, spp1=1, cdc1=0.5, cdc2=1.5, pdc=0.6, neut=0.8, mast=2.5, mycaf=12,
                          icaf=28, endo=12, peri=5),
        "excluded": _comp(cd8=5, tex=1, tpex=1.5, cd4=6, treg=2, nk=1.5, b=2.5, plasma=4, mono=3, ncmono=1,
                          c1q=6, spp1=1, cdc1=0.5, cdc2=1.5, pdc=0.6, neut=0.8, mast=2.5, mycaf=16,
                          icaf=26, endo=12, peri=5),
        "desert": _comp(cd8=0.7, tex=0.1, tpex=0.2, cd4=1.5, treg=0.4, nk=0.8, b=0.5, plasma=2, mono=2.5,
                        ncmono=0.8, c1q=6, spp1=1, cdc1=0.3, cdc2=0.8, pdc=0.3, neut=0.8, mast=2.5,
                        mycaf=16, icaf=36, endo=14, peri=6),
        "normal": _comp(cd8=1.5, cd4=2, treg=0.3, nk=1, b=0.8, plasma=3, mono=2, ncmono=0.7, c1q=5,
                        spp1=0.3, cdc1=0.3, cdc2=0.8, pdc=0.3, neut=0.3, mast=3, mycaf=3, icaf=40, endo=15,
                        peri=6, epi=2),
    },
    "TLS": {
        "any": _comp(b=42, cd4=22, treg=3, cd8=7, tpex=5, tex=0.5, nk=0.5, plasma=2, cdc2=4, cdc1=1.5,
                     pdc=2.5, c1q=1.5, mono=0.5, endo=4, icaf=3, peri=0.5),
    },
    "normal_duct": {
        "any": _comp(epi=80, cd8=2, cd4=1, treg=0.2, nk=0.5, plasma=1, c1q=2, mast=0.5, icaf=6, mycaf=2,
                     endo=3, peri=1),
    },
}  # fmt: skip

# TLS per mm^2 (and minimum number) and ducts per mm^2 by phenotype
_TLS_DENSITY = {"inflamed": (3.0, 1), "excluded": (1.5, 1), "desert": (0.3, 0), "normal": (1.0, 1)}
_DUCT_DENSITY = {"inflamed": (2.0, 1), "excluded": (2.0, 1), "desert": (2.0, 1), "normal": (45.0, 2)}
#: interferon-response activity of malignant/myeloid cells by phenotype
_IFN_LEVEL = {"inflamed": 0.7, "excluded": 0.25, "desert": 0.05, "normal": 0.05}

# frequent arm-level events in carcinomas (Taylor et al., Cancer Cell 33:676, 2018): (arm, kind, weight)
_ARM_EVENTS = [
    ("1q", "gain", 3), ("8q", "gain", 3), ("20q", "gain", 2.5), ("3q", "gain", 2), ("5p", "gain", 2),
    ("7p", "gain", 1.5), ("7q", "gain", 1.2), ("17q", "gain", 1.5), ("20p", "gain", 1), ("6p", "gain", 1),
    ("12p", "gain", 0.8), ("8p", "loss", 2.5), ("17p", "loss", 2.5), ("16q", "loss", 2), ("13q", "loss", 1.5),
    ("18q", "loss", 1.5), ("9p", "loss", 1.5), ("4q", "loss", 1.2), ("5q", "loss", 1.2), ("3p", "loss", 1.5),
    ("11q", "loss", 1), ("1p", "loss", 1), ("6q", "loss", 1.2), ("22q", "loss", 1), ("10q", "loss", 0.8),
    ("15q", "loss", 0.8), ("19p", "loss", 0.5), ("2q", "loss", 0.5), ("14q", "loss", 0.7), ("21q", "loss", 0.5),
]  # fmt: skip
_CN = {"loss": 1, "gain": 3, "amplification": 4, "focal_amplification": 8}


# ---------------------------------------------------------------------------------------------
# the gene universe and gene-level "biology" (fixed, independent of rng)
# ---------------------------------------------------------------------------------------------
def _name_seed(name: str) -> int:
    return (_BIOLOGY_SEED * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


@cache
def _table_biology() -> dict[str, np.ndarray]:
    """Gene-level properties for every gene of the table (so they do not depend on ``n_genes``)."""
    tab = gene_table("hg38")
    n = len(tab)
    rs = np.random.default_rng(_name_seed("genes"))
    clone_like = np.fromiter((bool(_CLONE_LIKE.match(s)) for s in tab.index), bool, n)
    # heavy-tailed gene means: most genes low, a long upper tail (lognormal on the linear scale)
    base = np.where(clone_like, rs.normal(-2.6, 1.0, n), rs.normal(-0.9, 1.45, n))
    return {
        "clone_like": clone_like,
        "base": base,
        "sel_key": rs.exponential(1.0, n) / np.where(clone_like, 0.04, 1.0),
        "phi": rs.uniform(0.1, 0.3, n),  # NB dispersion (var = mu + phi mu^2)
        "dosage": rs.uniform(0.6, 1.0, n),  # dosage sensitivity: expression ~ (CN/2)^s
        "off": rs.normal(-3.6, 0.4, n),  # "off" level of marker genes
    }


@cache
def _universe(n_genes: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The ``n_genes`` simulated genes (genome order, the 13 MT genes last) and their properties.

    Genes: every marker/program gene, the 13 protein-coding mitochondrial genes and a fixed
    background selection from the GRCh38 table (weighted sampling without replacement with a
    fixed seed, clone-name/non-coding symbols 25x less likely), so a smaller ``n_genes`` is a
    subset of a larger one and every ``rng`` gives the same genes.
    """
    tab = gene_table("hg38")
    bio = _table_biology()
    core = prg.all_program_genes()
    mt = list(prg.MITO_GENES)
    n_mt = len(mt)
    n_bg = n_genes - len(core) - n_mt
    pos = pd.Series(np.arange(len(tab)), index=tab.index)
    core_pos = pos[core].to_numpy()
    excluded = np.zeros(len(tab), bool)
    excluded[core_pos] = True
    excluded |= (tab["chromosome"].astype(str) == "chrM").to_numpy() | tab.index.str.startswith("MT-")
    cand = np.flatnonzero(~excluded)
    bg_pos = cand[np.argsort(bio["sel_key"][cand], kind="stable")[:n_bg]]
    sel = np.sort(np.concatenate([core_pos, bg_pos]))  # the table is in genome order
    sub = tab.iloc[sel]
    # mitochondrial genes: positions from the table when it has chrM, else missing
    mt_rows = tab.reindex(mt)
    var = pd.DataFrame(index=pd.Index(list(sub.index) + mt))
    var[VAR.chromosome] = pd.Categorical(
        list(sub["chromosome"].astype(str)) + list(mt_rows["chromosome"].astype(object)),
        categories=CHROMOSOMES,
        ordered=True,
    )
    var[VAR.start] = pd.array(list(sub["start"]) + list(mt_rows["start"]), dtype="Int64")
    var[VAR.end] = pd.array(list(sub["end"]) + list(mt_rows["end"]), dtype="Int64")
    arm_order = [c[3:] + a for c in NUCLEAR_CHROMOSOMES for a in ("p", "q")]
    var[VAR.arm] = pd.Categorical(list(sub["arm"]) + [np.nan] * n_mt, categories=arm_order)
    var[VAR.gene_id] = list(sub["gene_id"]) + [prg.MITO_GENES[g] for g in mt]

    base = bio["base"][sel].copy()
    is_prog = excluded[sel]
    base[is_prog] = bio["off"][sel][is_prog]
    gidx = {g: i for i, g in enumerate(var.index)}
    for g, lvl in prg.HIGH_BASELINE.items():
        base[gidx[g]] = lvl
    mt_base = np.array([prg.MITO_LEVELS[g] for g in mt])
    props = {
        "table_pos": np.concatenate([sel, -np.ones(n_mt, int)]),
        "base": np.concatenate([base, mt_base]),
        "phi": np.concatenate([bio["phi"][sel], np.full(n_mt, 0.12)]),
        "dosage": np.concatenate([bio["dosage"][sel], np.zeros(n_mt)]),
        "is_core": np.concatenate([is_prog, np.ones(n_mt, bool)]),
        "is_mt": np.concatenate([np.zeros(len(sel), bool), np.ones(n_mt, bool)]),
    }
    return var, props


def _modulation(node: str, p: float, sd: float) -> np.ndarray:
    """Sparse random log fold changes of one hierarchy node over all table genes (fixed seed)."""
    rs = np.random.default_rng(_name_seed("node:" + node))
    n = len(gene_table("hg38"))
    return np.where(rs.random(n) < p, rs.normal(0.0, sd, n), 0.0)


@cache
def _type_profiles(n_genes: int) -> np.ndarray:
    """Log-expression profile of each fine type (rows in ``CELL_TYPES`` order) before patient effects.

    profile = gene base level + lineage, major, fine and shared marker modules (known markers)
    + sparse random hierarchical modulation of background genes (lineage > major > fine, so
    that related fine states share most of their differences) + ribosomal/mitochondrial shifts.
    """
    var, props = _universe(n_genes)
    names = var.index
    gidx = {g: i for i, g in enumerate(names)}
    tpos = props["table_pos"]
    has_pos = tpos >= 0
    bg = has_pos & ~props["is_core"]
    ribo = np.array([bool(re.match(r"^RP[LS]\d+[AXY]?$|^RPLP\d$|^RPSA$", g)) for g in names])
    out = np.empty((len(_FINE), n_genes))
    for i, t in enumerate(_FINE):
        major, _, lineage = prg.CELL_TYPES[t]
        lp = props["base"].copy()
        mods = {f"lineage:{lineage}": 1.0, f"major:{major}": 1.0, f"fine:{t}": 1.0}
        if lineage in ("lymphoid", "myeloid"):
            mods["immune"] = 1.0
        mods.update(prg.CELL_TYPE_EXTRA_MODULES[t])
        for mod, scale in mods.items():
            for g, lfc in prg.MODULES[mod].items():
                lp[gidx[g]] += _MARKER_GAIN * scale * lfc
        for node, p, sd in (("lineage:" + lineage, 0.10, 0.9), ("major:" + major, 0.05, 0.7),
                            ("fine:" + t, 0.03, 0.6)):  # fmt: skip
            lp[bg] += _modulation(node, p, sd)[tpos[bg]]
        lp[ribo] += _RIBO_SHIFT.get(major, 0.0) + (-0.9 if t == "neutrophil" else 0.0)
        lp[props["is_mt"]] += _MITO_SHIFT.get(major, 0.0) - (0.3 if t == "neutrophil" else 0.0)
        out[i] = lp
    return out


# ---------------------------------------------------------------------------------------------
# numba core: counter-based random numbers and negative-binomial counts, one stream per cell
# ---------------------------------------------------------------------------------------------
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_GOLD2 = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0


@njit(cache=True)
def _mix(z):
    """splitmix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit hash."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True)
def _uniform(state):
    state = state + _GOLD
    return ((_mix(state) >> _S11) * _INV53), state


@njit(cache=True)
def _normal(state):
    u1, state = _uniform(state)
    u2, state = _uniform(state)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2), state


@njit(cache=True)
def _gamma(shape, state):
    """Gamma(shape >= 1, scale 1): Marsaglia & Tsang, ACM TOMS 26:363 (2000)."""
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x, state = _normal(state)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u, state = _uniform(state)
        if math.log(1.0 - u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v, state


@njit(cache=True)
def _poisson(lam, state):
    """Poisson: multiplication for small means, PTRS (Hoermann, Insurance Math Econ 12:39, 1993)."""
    if lam < 10.0:
        lim = math.exp(-lam)
        k = 0
        prod, state = _uniform(state)
        while prod > lim:
            k += 1
            u, state = _uniform(state)
            prod *= u
        return k, state
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u, state = _uniform(state)
        v, state = _uniform(state)
        u -= 0.5
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return int(k), state
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= -lam + k * loglam - math.lgamma(
            k + 1.0
        ):
            return int(k), state


@njit(cache=True)
def _positive_nb(u, p0, lam, phi, state):
    """A draw of NB(mean lam, dispersion phi) conditional on being > 0, given ``u >= p0``.

    Small means: inversion of the CDF continued with the same uniform ``u`` that decided
    "not zero" (so the draw is an exact NB draw). Large means: gamma-Poisson mixture,
    redrawn until positive (``p0`` is then negligible).
    """
    r = 1.0 / phi
    if lam < 40.0:
        q = phi * lam / (1.0 + phi * lam)
        k = 0
        pk = p0
        cdf = p0
        while cdf <= u:
            k += 1
            pk *= (k - 1.0 + r) / k * q
            cdf += pk
            if pk < 1e-300 or k > 100000:
                break
        return k
    while True:
        g, state = _gamma(r, state)
        x, state = _poisson(g * phi * lam, state)
        if x > 0:
            return x


@njit(cache=True)
def _cell_setup(c, pid, lib, amb, act, P, logPM, Z, mod_idx, W):
    p = pid[c]
    M = mod_idx.shape[0]
    K = W.shape[0]
    wM = np.empty(M)
    Zc = Z[p]
    for m in range(M):
        lw = logPM[p, m]
        for k in range(K):
            a = act[c, k]
            if a != 0.0:
                lw += a * W[k, m]
        w = math.exp(lw)
        wM[m] = w
        Zc += w - P[p, mod_idx[m]]
    scale = (1.0 - amb[c]) * lib[c] / Zc
    return wM, scale, amb[c] * lib[c]


@njit(parallel=True, cache=True)
def _count_nonzero(
    start, stop, key, pid, lib, amb, sid, act, P, logPM, Z, mod_idx, gene2m, W, soup, phi, out, mask
):
    """Pass 1: which genes of cells ``start..stop`` are non-zero (bit mask) and how many.

    The zero test needs every gene's mean; pass 2 recomputes means only for the set bits.
    """
    G = P.shape[1]
    one = np.uint64(1)
    for i in prange(stop - start):
        c = start + i
        wM, scale, aL = _cell_setup(c, pid, lib, amb, act, P, logPM, Z, mod_idx, W)
        p = pid[c]
        s = sid[c]
        ck = _mix(key ^ _mix(np.uint64(c) * _GOLD2 + _GOLD))
        cnt = 0
        for g in range(G):
            m = gene2m[g]
            w = P[p, g] if m < 0 else wM[m]
            lam = scale * w + aL * soup[s, g]
            st = _mix(ck + np.uint64(g) * _GOLD)
            u = (st >> _S11) * _INV53
            ph = phi[g]
            if u >= math.exp(-math.log1p(ph * lam) / ph):
                cnt += 1
                mask[i, g >> 6] |= one << np.uint64(g & 63)
        out[i] = cnt


@njit(parallel=True, cache=True)
def _fill_counts(start, stop, key, pid, lib, amb, sid, act, P, logPM, Z, mod_idx, gene2m, W, soup, phi,
                 mask, indptr, indices, data):  # fmt: skip
    """Pass 2: draw the non-zero counts of cells ``start..stop`` into the CSR arrays."""
    G = P.shape[1]
    n_words = mask.shape[1]
    one = np.uint64(1)
    zero = np.uint64(0)
    for i in prange(stop - start):
        c = start + i
        wM, scale, aL = _cell_setup(c, pid, lib, amb, act, P, logPM, Z, mod_idx, W)
        p = pid[c]
        s = sid[c]
        ck = _mix(key ^ _mix(np.uint64(c) * _GOLD2 + _GOLD))
        pos = indptr[c]
        for wi in range(n_words):
            word = mask[i, wi]
            if word == zero:
                continue
            for b in range(64):
                if (word >> np.uint64(b)) & one == zero:
                    continue
                g = wi * 64 + b
                if g >= G:
                    break
                m = gene2m[g]
                w = P[p, g] if m < 0 else wM[m]
                lam = scale * w + aL * soup[s, g]
                st = _mix(ck + np.uint64(g) * _GOLD)
                u = (st >> _S11) * _INV53
                ph = phi[g]
                p0 = math.exp(-math.log1p(ph * lam) / ph)
                indices[pos] = g
                data[pos] = _positive_nb(u, p0, lam, ph, st)
                pos += 1


# ---------------------------------------------------------------------------------------------
# patients: clones, copy numbers, programs, therapy truth
# ---------------------------------------------------------------------------------------------
def _clone_tree(
    pname: str, rs: np.random.Generator, arms_ok: list[str], n_clones: int | None = None, burden: float = 1.0
) -> dict:
    """Clones of one patient: tree, CNV events (truncal + private) and program/target states.

    ``n_clones`` (1-6) overrides the number drawn (2-4); the draw is made either way, so ``None``
    gives the same tree as before the option existed. ``burden`` scales the numbers of arm events
    drawn (3-6 truncal, 1-3 per clone; at least one each).
    """
    n_drawn = int(rs.integers(2, 5))
    n_clones = n_drawn if n_clones is None else int(n_clones)
    clones = [f"{pname}_c{i + 1}" for i in range(n_clones)]
    parents = [f"{pname}_root"] + [
        clones[int(rs.integers(0, i))] if rs.random() < 0.75 else f"{pname}_root" for i in range(1, n_clones)
    ]
    ev = [(a, k, w) for a, k, w in _ARM_EVENTS if a in arms_ok]
    weights = np.array([w for _, _, w in ev])

    def draw_events(n, taken):
        free = [j for j, (a, _, _) in enumerate(ev) if a not in taken]
        if not free:
            return []
        w = weights[free] / weights[free].sum()
        pick = rs.choice(free, size=min(n, len(free)), replace=False, p=w)
        out = []
        for j in pick:
            a, kind, _ = ev[j]
            state = kind if kind == "loss" else ("amplification" if rs.random() < 0.2 else "gain")
            out.append((a, state))
        return out

    # truncal events (the unobserved most recent common ancestor, "<patient>_root")
    def n_events(lo, hi):
        return max(1, int(round(int(rs.integers(lo, hi)) * burden)))

    events = {f"{pname}_root": draw_events(n_events(3, 7), set())}
    # HER2 status: focal 17q12 amplification, truncal or subclonal
    her2 = rs.random() < 0.35
    her2_clone = None
    if her2:
        # (a single clone: truncal; ``rs.random()`` is drawn first either way)
        her2_clone = (
            f"{pname}_root" if rs.random() < 0.6 or n_clones == 1 else clones[int(rs.integers(1, n_clones))]
        )

    def ancestry(c):
        out = [c]
        while out[-1] in clones:
            out.append(parents[clones.index(out[-1])])
        return out  # c, parent, ..., root

    for c in clones:
        taken = {a for anc in ancestry(c)[1:] for a, _ in events.get(anc, [])}
        events[c] = draw_events(n_events(1, 4), taken)

    # program / target states, inherited from the parent with switches
    prior = {
        "proliferation": 0.65, "stemness": 0.3, "EMT": 0.3, "persister": 0.15,
        "antigen_presentation": 0.85, "EGFR": 0.3, "TACSTD2": 0.55, "NECTIN4": 0.35, "ESR1": 0.5,
        "CD274": 0.3,
    }  # fmt: skip
    keys = _CLONE_PROGRAMS + [t for t in _CLONE_TARGETS if t != "ERBB2"]
    states: dict[str, dict[str, bool]] = {}
    for i, c in enumerate(clones):
        if parents[i] not in states:
            st = {k: bool(rs.random() < prior[k]) for k in keys}
            st["antigen_presentation"] = True if i == 0 else st["antigen_presentation"]
        else:
            st = dict(states[parents[i]])
            flips = [k for k in keys if rs.random() < 0.2]
            if not flips:  # a subclone differs from its parent in at least one program
                flips = [keys[int(rs.integers(0, len(keys)))]]
            for k in flips:
                st[k] = not st[k]
        if st["persister"]:
            st["proliferation"] = False
        states[c] = st
    for c in clones:
        states[c]["ERBB2"] = her2 and her2_clone in ancestry(c)
    return {"clones": clones, "parents": parents, "events": events, "states": states,
            "her2_clone": her2_clone, "ancestry": {c: ancestry(c) for c in clones}}  # fmt: skip


def _state_label(k: str, v: bool) -> str:
    if k == "antigen_presentation":
        return "intact" if v else "lost"
    return "high" if v else "low"


# ---------------------------------------------------------------------------------------------
# spatial layout
# ---------------------------------------------------------------------------------------------
def _smooth_noise(x, y, rs, amp):
    """A smooth random field (sum of plane waves, wavelengths 80-300 um) with sd ~ ``amp``."""
    out = np.zeros_like(x)
    n = 8
    for _ in range(n):
        lam = rs.uniform(80.0, 300.0)
        th = rs.uniform(0, 2 * np.pi)
        ph = rs.uniform(0, 2 * np.pi)
        out += np.cos(2 * np.pi * (x * np.cos(th) + y * np.sin(th)) / lam + ph)
    return out * amp * np.sqrt(2.0 / n)


def _discs_depth(xy, nx, centers, radii, reach, depth=None, which=None, first=0):
    """Signed depth ``max_j (r_j - |x - c_j|)`` inside ``reach`` of each disc, and the argmax disc.

    Points lie on a jittered grid with ``nx`` columns, so each disc only visits its bounding box.
    ``depth``/``which`` (updated in place) add discs numbered from ``first`` to earlier ones.
    """
    n = len(xy)
    if depth is None:
        depth = np.full(n, _FAR)
        which = np.full(n, -1)
    nrow = (n + nx - 1) // nx
    for j, ((cx, cy), r) in enumerate(zip(centers, radii), start=first):
        R = r + reach
        c0, c1 = max(int((cx - R) / _SPACING) - 1, 0), min(int((cx + R) / _SPACING) + 2, nx)
        r0, r1 = max(int((cy - R) / _SPACING) - 1, 0), min(int((cy + R) / _SPACING) + 2, nrow)
        if c0 >= c1 or r0 >= r1:
            continue
        idx = (np.arange(r0, r1)[:, None] * nx + np.arange(c0, c1)[None, :]).ravel()
        idx = idx[idx < n]
        d = r - np.hypot(xy[idx, 0] - cx, xy[idx, 1] - cy)
        better = d > depth[idx]
        depth[idx[better]] = d[better]
        which[idx[better]] = j
    return depth, which


def _layout(
    n: int, phenotype: str, is_normal: bool, n_clones: int, rs: np.random.Generator, shares=None
) -> dict:
    """Cells of one patient's tissue section: coordinates, niches, cell types, clones, hypoxia.

    ``shares``: ``None`` (clone territories from the nests), or ``(fractions, generator)``: the
    clones' target fractions of the malignant cells, laid out as bands (:func:`_clone_bands`).
    """
    nx = max(int(math.ceil(math.sqrt(n))), 1)
    col, row = np.arange(n) % nx, np.arange(n) // nx
    xy = np.column_stack([col, row]).astype(float) * _SPACING + _SPACING / 2
    xy += rs.normal(0.0, 2.5, xy.shape)
    W, H = nx * _SPACING, (row.max() + 1) * _SPACING
    area_mm2 = W * H / 1e6

    # tumour nests: a Boolean model of discs with a smooth irregular boundary
    if is_normal:
        depth = np.full(n, _FAR)
        nest = np.full(n, -1)
        n_nests = 0
    else:
        # nests lie in a "tumour bed" (55-70 % of the section on one side; the rest is
        # peritumoural stroma); the expected count of a Boolean model covering f_tum of the
        # section (times 0.7) is drawn, then single nests are added until 90 % of f_tum is covered
        f_tum = rs.uniform(0.15, 0.25)
        th = rs.uniform(0, 2 * np.pi)
        proj = xy[:, 0] * np.cos(th) + xy[:, 1] * np.sin(th)
        proj = (proj - proj.min()) / max(np.ptp(proj), 1e-9)
        bed = np.flatnonzero(proj < rs.uniform(0.55, 0.7))
        r_hi = float(np.clip(0.2 * min(W, H), 30.0, 230.0))
        r_lo = min(60.0, 0.5 * r_hi)
        mean_area = np.pi * (r_hi**3 - r_lo**3) / (3 * (r_hi - r_lo))

        def new_centers(k):
            return xy[rs.choice(bed, size=k)] + rs.normal(0.0, _SPACING, (k, 2))

        n_nests = max(1, int(0.7 * -np.log(1 - f_tum) * W * H / mean_area))
        centers = new_centers(n_nests)
        radii = rs.uniform(r_lo, r_hi, n_nests)
        depth, nest = _discs_depth(xy, nx, centers, radii, reach=250.0)
        while (depth > 0).mean() < 0.9 * f_tum and n_nests < 100_000:
            c1, r1 = new_centers(1), rs.uniform(r_lo, r_hi, 1)
            _discs_depth(xy, nx, c1, r1, reach=250.0, depth=depth, which=nest, first=n_nests)
            centers, radii = np.vstack([centers, c1]), np.concatenate([radii, r1])
            n_nests += 1
        depth = np.where(depth > _FAR, depth + _smooth_noise(xy[:, 0], xy[:, 1], rs, 15.0), _FAR)
    margin_w = rs.uniform(40.0, 80.0)

    niche = np.full(n, NICHE_IDX["stroma"])
    niche[depth > -margin_w] = NICHE_IDX["margin"]
    niche[depth > 0] = NICHE_IDX["tumour"]
    key = "normal" if is_normal else phenotype
    # ducts and TLS in stroma, away from the nests
    for name, dens, r_rng, min_dist in (("normal_duct", _DUCT_DENSITY, (25.0, 55.0), 100.0),
                                        ("TLS", _TLS_DENSITY, (50.0, 90.0), 150.0)):  # fmt: skip
        rate, n_min = dens[key]
        k = max(n_min, int(rs.poisson(rate * area_mm2)))
        ok = np.flatnonzero((niche == NICHE_IDX["stroma"]) & (depth < -min_dist))
        if len(ok) == 0:
            ok = np.flatnonzero(niche == NICHE_IDX["stroma"])
        if len(ok) == 0 or k == 0:
            continue
        cidx = rs.choice(ok, size=min(k, len(ok)), replace=False)
        d2, _ = _discs_depth(xy, nx, xy[cidx], rs.uniform(*r_rng, len(cidx)), reach=0.0)
        niche[(d2 > 0) & (niche == NICHE_IDX["stroma"])] = NICHE_IDX[name]

    # cell types from niche compositions
    ftype = np.empty(n, int)
    for nname, comps in _COMPOSITION.items():
        cells = np.flatnonzero(niche == NICHE_IDX[nname])
        if len(cells) == 0:
            continue
        comp = comps.get("any") or comps.get(key) or comps["desert"]
        types = [_FINE_IDX[t] for t in comp]
        p = np.array(list(comp.values()), float)
        ftype[cells] = rs.choice(types, size=len(cells), p=p / p.sum())
    hyp_depth = _HYPOXIA_DEPTH if is_normal else min(_HYPOXIA_DEPTH, 0.7 * r_hi)
    hyp = 1.0 / (1.0 + np.exp(-(depth - hyp_depth) / _HYPOXIA_WIDTH))
    # macrophages: SPP1+ TAMs in hypoxic tumour areas, C1Q+ elsewhere
    mac = np.isin(ftype, [_FINE_IDX["C1Q+ macrophage"], _FINE_IDX["SPP1+ macrophage"]]) & (
        niche == NICHE_IDX["tumour"]
    )
    spp1 = rs.random(n) < 0.4 + 0.55 * hyp
    ftype[mac] = np.where(spp1[mac], _FINE_IDX["SPP1+ macrophage"], _FINE_IDX["C1Q+ macrophage"])

    # clones: each nest belongs to one clone territory (spatially segregated), 4% mixing
    clone = np.full(n, -1)
    mal = np.flatnonzero(ftype == _FINE_IDX["Malignant"])
    if len(mal) and shares is not None:
        clone[mal] = _clone_bands(xy[mal], *shares)
    elif len(mal):
        if n_nests >= n_clones:
            seeds = rs.choice(n_nests, size=n_clones, replace=False)
            dist = np.hypot(*(centers[:, None, :] - centers[seeds][None, :, :]).transpose(2, 0, 1))
            nest_clone = np.argmin(dist, axis=1)
            nest_clone[seeds] = np.arange(n_clones)
            clone[mal] = nest_clone[nest[mal]]
        else:  # fewer nests than clones: Voronoi territories of seed cells
            seeds = rs.choice(mal, size=min(n_clones, len(mal)), replace=False)
            dist = np.hypot(*(xy[mal][:, None, :] - xy[seeds][None, :, :]).transpose(2, 0, 1))
            clone[mal] = np.argmin(dist, axis=1)
        mix = rs.random(len(mal)) < 0.04
        clone[mal[mix]] = rs.integers(0, n_clones, mix.sum())
    return {"xy": xy, "niche": niche, "depth": np.maximum(depth, _FAR), "ftype": ftype, "clone": clone,
            "hypoxia": hyp, "n_nests": n_nests, "margin_width": margin_w}  # fmt: skip


NICHE_IDX = {nm: i for i, nm in enumerate(prg.NICHES)}


def _clone_bands(xy: np.ndarray, fractions: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Clone of each malignant cell at ``xy``: parallel bands across the tumour bed (a random
    direction) holding ``fractions`` of the cells, then 4 % of the cells relabelled with a clone
    drawn from ``fractions`` (the mixing of the nest layout, keeping the expected fractions).
    """
    th = gen.uniform(0, 2 * np.pi)
    order = np.argsort(xy[:, 0] * np.cos(th) + xy[:, 1] * np.sin(th), kind="stable")
    cuts = np.round(np.cumsum(fractions)[:-1] * len(xy)).astype(np.int64)
    lab = np.empty(len(xy), np.int64)
    lab[order] = np.searchsorted(cuts, np.arange(len(xy)), side="right")
    mix = gen.random(len(xy)) < 0.04
    lab[mix] = gen.choice(len(fractions), size=int(mix.sum()), p=fractions)
    return lab


#: geometric ratio of successive clone fractions under ``clone_skew="skewed"``
_SKEW_RATIO = 0.5
_MAX_CLONES = 6


def _check_clones(n_clones, clone_skew, n_patients: int, cnv_burden: float = 1.0) -> dict:
    """``{}`` with the defaults, else the per-patient clone numbers (or ``None``), the skew and the
    CNV burden.
    """
    ok = isinstance(cnv_burden, int | float | np.integer | np.floating) and not isinstance(cnv_burden, bool)
    if not (ok and np.isfinite(cnv_burden) and 0 < cnv_burden <= 1):
        raise InvalidParameterError(f"cnv_burden must be a number in (0, 1], got {cnv_burden!r}.")
    if n_clones is None and clone_skew is None:
        return {} if cnv_burden == 1 else {"cnv_burden": float(cnv_burden)}
    per = None
    if n_clones is not None:
        vals = [n_clones] * n_patients if isinstance(n_clones, int | np.integer) else n_clones
        if isinstance(vals, str) or not hasattr(vals, "__len__"):
            raise InvalidParameterError(
                f"n_clones must be an integer or one integer per patient, got {n_clones!r}."
            )
        if len(vals) != n_patients:
            raise InvalidParameterError(f"n_clones has {len(vals)} entries but n_patients is {n_patients}.")
        per = [_check_int("n_clones", v, 1) for v in vals]
        if max(per) > _MAX_CLONES:
            raise InvalidParameterError(f"n_clones must be between 1 and {_MAX_CLONES}, got {n_clones!r}.")
    if clone_skew is not None:
        ok_str = isinstance(clone_skew, str) and clone_skew in ("even", "skewed")
        ok_num = isinstance(clone_skew, int | float | np.integer | np.floating) and not isinstance(
            clone_skew, bool
        )
        if not (ok_str or (ok_num and np.isfinite(clone_skew) and clone_skew > 0)):
            raise InvalidParameterError(
                f"clone_skew must be 'even', 'skewed' or a positive Dirichlet concentration, got {clone_skew!r}."
            )
        clone_skew = clone_skew if ok_str else float(clone_skew)
    return {"n_clones": per, "clone_skew": clone_skew, "cnv_burden": float(cnv_burden)}


def _clone_fractions(k: int, skew, gen: np.random.Generator) -> np.ndarray:
    """Target fractions of ``k`` clones: equal, geometric (ratio 0.5, first clone largest) or Dirichlet."""
    if skew == "even":
        return np.full(k, 1.0 / k)
    if skew == "skewed":
        w = _SKEW_RATIO ** np.arange(k)
        return w / w.sum()
    return gen.dirichlet(np.full(k, float(skew)))


# ---------------------------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------------------------
def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidParameterError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise InvalidParameterError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)


def _check_params(n_cells, n_patients, spatial, n_genes, normal_patient, immune_phenotypes, chunk_size):
    """Validate the arguments; return ``(n_cells, n_patients, n_genes, phenotypes, chunk)``."""
    n_cells = _check_int("n_cells", n_cells, 1)
    n_patients = _check_int("n_patients", n_patients, 1)
    for name, value in (("spatial", spatial), ("normal_patient", normal_patient)):
        if not isinstance(value, bool | np.bool_):
            raise InvalidParameterError(f"{name} must be True or False, got {value!r}.")
    tab = gene_table("hg38")
    n_min = len(prg.all_program_genes()) + len(prg.MITO_GENES)
    n_max = int(((tab["chromosome"].astype(str) != "chrM") & ~tab.index.str.startswith("MT-")).sum()) + len(
        prg.MITO_GENES
    )
    n_genes = _check_int("n_genes", n_genes, n_min)
    if n_genes > n_max:
        raise InvalidParameterError(
            f"n_genes must be at most {n_max} (nuclear genes of the GRCh38 table + 13 MT genes), got {n_genes}."
        )
    chunk = _check_int("chunk_size", settings.chunk_size if chunk_size is None else chunk_size, 1)
    if immune_phenotypes is None:
        phenos = [PHENOTYPES[i % 3] for i in range(n_patients)]
    else:
        if isinstance(immune_phenotypes, str) or not hasattr(immune_phenotypes, "__len__"):
            raise InvalidParameterError(
                f"immune_phenotypes must be a list of {n_patients} phenotypes, got {immune_phenotypes!r}."
            )
        phenos = [str(p) if isinstance(p, np.str_) else p for p in immune_phenotypes]
        if len(phenos) != n_patients:
            raise InvalidParameterError(
                f"immune_phenotypes has {len(phenos)} entries but n_patients is {n_patients}."
            )
        bad = [p for p in phenos if p not in PHENOTYPES]
        if bad:
            raise InvalidParameterError(f"unknown immune phenotype(s) {bad}; use one of {list(PHENOTYPES)}.")
    n_total = n_patients + int(bool(normal_patient))
    if n_cells < 10 * n_total:
        raise InvalidParameterError(
            f"n_cells must be at least 10 per patient ({10 * n_total} for {n_total} patients), got {n_cells}."
        )
    return n_cells, n_patients, n_genes, phenos, chunk


def _simulate_patients(
    var, props, type_lp, n_per, phenos_all, is_normal, streams, antigen_presentation=None, clones=None
) -> dict:
    """Per patient: sample effect, clones (tree, CNV, programs, therapy truth), malignant profiles, layout.

    ``antigen_presentation`` (``None``, or per patient ``None``/``True``/``False``): ``True`` /
    ``False`` set MHC class I antigen presentation intact / lost in every clone of the patient
    (``tm.datasets.simulate_checkpoint_cohort``); this takes no random draws, so ``None``
    gives the same output as before. ``clones`` (:func:`_check_clones`; ``None`` or ``{}``: off)
    sets the clone numbers and their fractions (from a generator of its own per patient).
    """
    clones = clones or {}
    G = len(var)
    gidx = {g: i for i, g in enumerate(var.index)}
    has_pos = props["table_pos"] >= 0
    arm_codes = var[VAR.arm].astype(str).to_numpy()
    arm_ok = [a for a in var[VAR.arm].cat.categories if (arm_codes == a).sum() >= 20]
    er = gene_table("hg38").loc["ERBB2"]
    chrom = var[VAR.chromosome].astype(str).to_numpy()
    start = var[VAR.start].to_numpy(dtype=float, na_value=np.nan)
    amplicon = (chrom == "chr17") & (start > er["start"] - 350_000) & (start < er["end"] + 350_000)

    out = {"rows": [], "type_row0": [], "clone_row": {}, "trees": [], "layouts": [],
           "cnv": [], "programs": [], "therapy": [], "tree": []}  # fmt: skip
    rows = out["rows"]
    for pi, pname in enumerate(f"P{i + 1}" for i in range(len(n_per))):
        rs = make_rng(int(streams[pi]))
        batch = rs.normal(0.0, 0.08, G)  # mild sample effect on every gene
        out["type_row0"].append(len(rows))
        rows.extend(type_lp[t] + batch for t in range(len(_FINE)))
        n_set = clones["n_clones"][pi] if clones.get("n_clones") and not is_normal[pi] else None
        tree = None if is_normal[pi] else _clone_tree(pname, rs, arm_ok, n_set, clones.get("cnv_burden", 1.0))
        if tree is not None and antigen_presentation is not None and antigen_presentation[pi] is not None:
            for st in tree["states"].values():
                st["antigen_presentation"] = bool(antigen_presentation[pi])
        if tree is not None:
            pat_prog = np.where(rs.random(G) < _PATIENT_FRAC, rs.normal(0.0, _PATIENT_SD, G), 0.0)
            pat_prog[props["is_mt"]] = 0.0
            mal_lp = type_lp[_FINE_IDX["Malignant"]] + batch + pat_prog
            for c, parent in zip(tree["clones"], tree["parents"]):
                st = tree["states"][c]
                cn = np.full(G, 2.0)
                for anc in reversed(tree["ancestry"][c]):  # root first
                    for arm, state in tree["events"].get(anc, []):
                        cn[arm_codes == arm] = _CN[state]
                        origin = "truncal" if anc.endswith("_root") else anc
                        out["cnv"].append((pname, c, arm, "arm", arm, state, _CN[state], origin))
                if st["ERBB2"]:
                    cn[amplicon] = _CN["focal_amplification"]
                    anc = tree["her2_clone"]
                    origin = "truncal" if anc.endswith("_root") else anc
                    out["cnv"].append((pname, c, "17q", "focal", "17q12 (ERBB2 amplicon)", "focal_amplification",
                                       _CN["focal_amplification"], origin))  # fmt: skip
                lp = mal_lp + np.where(has_pos, props["dosage"] * np.log(cn / 2.0), 0.0)
                for tgt, lfc in prg.DRUG_TARGETS.items():
                    if st[tgt]:
                        lp[gidx[tgt]] += lfc
                out["clone_row"][c] = len(rows)
                rows.append(lp)
                labels = {k: _state_label(k, v) for k, v in st.items()}
                for k in _CLONE_PROGRAMS + _CLONE_TARGETS:
                    kind = "program" if k in _CLONE_PROGRAMS else "target"
                    out["programs"].append((pname, c, k, kind, labels[k]))
                for ther, resp in prg.therapy_responses(labels, phenos_all[pi]).items():
                    out["therapy"].append((pname, c, ther, resp))
                out["tree"].append((pname, c, parent, len(tree["ancestry"][c]) - 1))
        out["trees"].append(tree)
        n_cl = len(tree["clones"]) if tree else 0
        shares = None
        if tree is not None and clones.get("clone_skew") is not None:
            gen = np.random.default_rng([int(streams[pi]), 24])
            shares = (_clone_fractions(n_cl, clones["clone_skew"], gen), gen)
            tree["target_fraction"] = shares[0]
        out["layouts"].append(_layout(int(n_per[pi]), phenos_all[pi], is_normal[pi], n_cl, rs, shares))
    return out


def _check_droplets(doublet_rate, depth) -> dict:
    """The droplet options that are on (``{}`` with the defaults), validated."""
    from .._validation import check_number

    out = {}
    if doublet_rate is False or doublet_rate != 0.0:
        out["doublet_rate"] = check_number("doublet_rate", doublet_rate, low=0, high=0.5)
    if depth is not None:
        out["depth"] = check_number("depth", depth, low=100, high=1e6, what="(median UMIs per cell)")
    return out


def _add_doublets(adata, rate: float, gen: np.random.Generator) -> None:
    """Add to ``round(rate * n)`` random cells the counts of another random cell of their sample (and
    its expected library size to theirs).
    """
    from scipy import sparse

    n = adata.n_obs
    sample = adata.obs[OBS.sample].cat.codes.to_numpy()
    host = np.sort(gen.choice(n, int(round(rate * n)), replace=False))
    pools = {c: np.flatnonzero(sample == c) for c in np.unique(sample[host])}  # each sample's cells, once
    partner = np.empty(len(host), np.int64)
    for i, h in enumerate(host):
        pool = pools[sample[h]]
        pick = pool[gen.integers(len(pool) - 1)]
        partner[i] = pick if pick != h else pool[-1]
    add = sparse.csr_matrix((np.ones(len(host), np.float32), (host, partner)), shape=(n, n))
    adata.X = (adata.X + add @ adata.X).tocsr()
    flag = np.zeros(n, bool)
    flag[host] = True
    adata.obs[OBS.true_doublet] = flag
    kind = np.full(n, "", dtype=object)
    kind[host] = adata.obs[OBS.true_cell_type].astype(str).to_numpy()[partner]
    adata.obs[OBS.true_doublet_partner] = kind
    lib = adata.obs["true_library_size"].to_numpy().copy()
    lib[host] += lib[partner]
    adata.obs["true_library_size"] = lib.astype(np.float32)


def _check_composition(mesenchymal_tumour, tumour_fraction, immune_fraction) -> dict:
    """The composition options that are on (``{}`` with the defaults), validated."""
    out = {}
    for name, v, off in (("mesenchymal_tumour", mesenchymal_tumour, 0.0), ("tumour_fraction", tumour_fraction, None),
                         ("immune_fraction", immune_fraction, None)):  # fmt: skip
        if v is None or (off is not None and v == off):
            continue
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float | np.integer | np.floating)
            or not 0 <= v <= 1
        ):
            raise InvalidParameterError(f"{name} must be a fraction between 0 and 1, got {v!r}.")
        out[name] = float(v)
    return out


def _reshape_tumours(pat: dict, is_normal: list, opts: dict, rs: np.random.Generator) -> None:
    """Tumour-majority, immune-poor and mesenchymal-tumour patients (in place, on the layouts).

    Immune cells above ``immune_fraction`` and non-malignant cells drawn until ``tumour_fraction``
    of the cells are malignant become malignant cells of their nearest malignant cell's clone; a
    ``mesenchymal_tumour`` fraction of malignant cells gets a fibroblast-like profile (85 % of the
    way from the malignant to the myCAF profile of the patient) that keeps the clone's copy number.
    """
    from scipy.spatial import cKDTree

    immune_types = [i for i, t in enumerate(_FINE) if prg.CELL_TYPES[t][1] == "immune"]
    mal_t = _FINE_IDX["Malignant"]
    rows = pat["rows"]
    for pi, L in enumerate(pat["layouts"]):
        L["mesenchymal"] = np.zeros(len(L["ftype"]), bool)
        if is_normal[pi] or not (L["ftype"] == mal_t).any():
            continue
        ft, n = L["ftype"], len(L["ftype"])
        new = np.zeros(n, bool)
        if "immune_fraction" in opts:
            imm = np.flatnonzero(np.isin(ft, immune_types))
            k = len(imm) - int(round(opts["immune_fraction"] * n))
            if k > 0:
                new[rs.choice(imm, k, replace=False)] = True
        if "tumour_fraction" in opts:
            k = int(round(opts["tumour_fraction"] * n)) - int((ft == mal_t).sum() + new.sum())
            pool = np.flatnonzero((ft != mal_t) & ~new)
            if k > 0 and len(pool):
                new[rs.choice(pool, min(k, len(pool)), replace=False)] = True
        mal = np.flatnonzero(ft == mal_t)
        if new.any():
            _, near = cKDTree(L["xy"][mal]).query(L["xy"][new])
            L["clone"][new] = L["clone"][mal[near]]
            ft[new] = mal_t
        mal = np.flatnonzero(ft == mal_t)
        L["mesenchymal"][mal] = rs.random(len(mal)) < opts.get("mesenchymal_tumour", 0.0)
    if opts.get("mesenchymal_tumour"):
        pat["mes_row"] = {}
        for pi, tree in enumerate(pat["trees"]):
            if tree is None:
                continue
            r0 = pat["type_row0"][pi]
            shift = 0.85 * (rows[r0 + _FINE_IDX["myCAF"]] - rows[r0 + mal_t])
            for c in tree["clones"]:
                pat["mes_row"][c] = len(rows)
                rows.append(rows[pat["clone_row"][c]] + shift)


def _cell_states(pat: dict, n_per, phenos_all, rs: np.random.Generator) -> dict:
    """Per-cell arrays: type, niche, clone, profile row, library size, ambient fraction, activities."""
    lay, trees, rows = pat["layouts"], pat["trees"], pat["rows"]
    n_total = len(n_per)
    n = int(np.sum(n_per))
    off = np.concatenate([[0], np.cumsum(n_per)])
    cells = {
        k: np.concatenate([L[k] for L in lay]) for k in ("ftype", "niche", "hypoxia", "depth", "clone", "xy")
    }
    sample = np.repeat(np.arange(n_total), n_per)
    ftype, niche, hyp = cells["ftype"], cells["niche"], cells["hypoxia"]
    malignant = ftype == _FINE_IDX["Malignant"]
    row0 = np.asarray(pat["type_row0"])
    pid = row0[sample] + ftype
    clone_names = ["non-malignant"]
    clone = np.zeros(n, np.int64)
    for pi, tree in enumerate(trees):
        if tree is None:
            continue
        idx = np.arange(off[pi], off[pi + 1])
        cl = cells["clone"][idx]
        m = cl >= 0
        clone[idx[m]] = len(clone_names) + cl[m]
        pid[idx[m]] = np.array([pat["clone_row"][c] for c in tree["clones"]])[cl[m]]
        if "mes_row" in pat:
            mes = lay[pi]["mesenchymal"]
            pid[idx[mes]] = np.array([pat["mes_row"][c] for c in tree["clones"]])[cl[mes]]
        clone_names += tree["clones"]

    # intermediates along the continua between related states (the dominant label is kept)
    u_int = rs.random(n)
    lvl = rs.integers(0, len(_MIX_LEVELS), n)
    nb = np.full(n, -1)
    for t, t_name in enumerate(_FINE):
        items = list(prg.CONTINUA[t_name].items())
        sel = np.flatnonzero((ftype == t) & ~malignant)
        if not items or not len(sel):
            continue
        pick = np.searchsorted(np.cumsum([p for _, p in items]), u_int[sel], side="right")
        ok = pick < len(items)
        nb[sel[ok]] = np.array([_FINE_IDX[s] for s, _ in items])[pick[ok]]
    inter = np.flatnonzero(nb >= 0)
    if len(inter):
        nF = len(_FINE)
        code = ((sample[inter] * nF + ftype[inter]) * nF + nb[inter]) * len(_MIX_LEVELS) + lvl[inter]
        uniq, inv = np.unique(code, return_inverse=True)
        for u in uniq:
            rest, li = divmod(int(u), len(_MIX_LEVELS))
            rest, s_t = divmod(rest, nF)
            pi, t = divmod(rest, nF)
            w = float(_MIX_LEVELS[li])
            rows.append((1 - w) * rows[row0[pi] + t] + w * rows[row0[pi] + s_t])
        pid[inter] = len(rows) - len(uniq) + inv.ravel()

    # library size and ambient RNA
    depth_factor = rs.lognormal(0.0, 0.15, n_total)  # sequencing depth per sample
    lib = (
        np.array([_LIB_MEDIAN[t] for t in _FINE])[ftype]
        * depth_factor[sample]
        * rs.lognormal(0, _LIB_SIGMA, n)
    )
    lib[malignant] *= np.exp(0.25 * rs.standard_normal(n_total))[sample[malignant]]
    lib = np.maximum(lib, 400.0)
    amb_p = rs.uniform(0.01, 0.03, n_total)
    amb = np.clip(amb_p[sample] * rs.lognormal(0.0, 0.3, n), 0.0, 0.2)

    # program activities
    act = np.zeros((n, len(_PROGRAM_ORDER)))
    major = np.array([prg.CELL_TYPES[t][0] for t in _FINE])[ftype]
    cst = {k: np.zeros(len(clone_names)) for k in _CLONE_PROGRAMS + _CLONE_TARGETS}
    for tree in trees:
        for c in tree["clones"] if tree else []:
            for k in cst:
                cst[k][clone_names.index(c)] = float(tree["states"][c][k])
    p_cyc = np.array([_CYCLING.get(t, _CYCLING_DEFAULT) for t in _FINE])[ftype]
    p_cyc[(niche == NICHE_IDX["TLS"]) & (ftype == _FINE_IDX["B"])] = 0.12  # germinal-centre B cells
    cm = clone[malignant]
    p_cyc[malignant] = np.where(
        cst["persister"][cm] > 0, 0.03, np.where(cst["proliferation"][cm] > 0, 0.45, 0.1)
    )
    act[:, _PIDX["proliferation"]] = np.where(rs.random(n) < p_cyc, rs.uniform(0.7, 1.3, n), 0.0)
    in_tum = niche == NICHE_IDX["tumour"]
    act[:, _PIDX["hypoxia"]] = np.where(
        malignant, hyp + rs.normal(0, 0.08, n), np.where(in_tum, 0.5 * hyp, 0.0)
    )
    noise = rs.normal(0.0, 0.2, (n, 3))
    at_margin = (niche == NICHE_IDX["margin"]).astype(float)
    for j, k in enumerate(["stemness", "EMT", "persister"]):
        a = cst[k][clone] + noise[:, j] + (0.3 * at_margin if k == "EMT" else 0.0)
        act[:, _PIDX[k]] = np.where(malignant, a, 0.0)
    ap = np.where(cst["antigen_presentation"][clone] > 0, 0.0, -3.0) + 0.15 * rs.standard_normal(n)
    act[:, _PIDX["antigen_presentation"]] = np.where(malignant, ap, 0.0)
    ifn = np.array([_IFN_LEVEL[p] for p in phenos_all])[sample] * rs.uniform(0.5, 1.5, n)
    ifn_cells = malignant | np.isin(major, ["Myeloid", "Endothelial"])
    act[:, _PIDX["interferon"]] = np.where(ifn_cells, ifn, np.where(major == "T cell", 0.4 * ifn, 0.0))
    act[:, _PIDX["stress"]] = rs.exponential(0.25, n) * rs.uniform(0.5, 1.5, n_total)[sample]
    act[:, _PIDX["mito"]] = rs.normal(0.0, 0.35, n) + np.where(malignant, 0.3 * hyp, 0.0)
    er = np.where(malignant, cst["ESR1"][clone] * (1.0 + 0.15 * rs.standard_normal(n)), 0.0)
    er[ftype == _FINE_IDX["normal epithelium"]] = 0.3
    act[:, _PIDX["ER_signalling"]] = er
    cells.update(sample=sample, malignant=malignant, clone=clone, clone_names=clone_names, pid=pid, lib=lib,
                 amb=amb, act=act, amb_p=amb_p, depth_factor=depth_factor, off=off, in_tumour=in_tum)  # fmt: skip
    return cells


def _counts(rows, cells, props, gidx, key, chunk):
    """Negative-binomial counts as CSR, in chunks of cells (two passes: non-zeros, then values)."""
    from scipy import sparse

    prof = np.vstack(rows)
    prof -= prof.max(axis=1, keepdims=True)
    P = np.exp(prof)
    Z = P.sum(axis=1)
    mod_idx = np.asarray(sorted({gidx[g] for k in _PROGRAM_ORDER for g in prg.PROGRAMS[k]}), np.int64)
    G = P.shape[1]
    gene2m = np.full(G, -1, np.int64)
    gene2m[mod_idx] = np.arange(len(mod_idx))
    W = np.zeros((len(_PROGRAM_ORDER), len(mod_idx)))
    for k, name in enumerate(_PROGRAM_ORDER):
        for g, w in prg.PROGRAMS[name].items():
            W[k, gene2m[gidx[g]]] += w
    logPM = np.ascontiguousarray(prof[:, mod_idx])
    del prof
    # ambient soup per sample: library-weighted mean of its cells' expression profiles
    sample, pid, lib = cells["sample"], cells["pid"].astype(np.int64), cells["lib"]
    n_total = int(sample.max()) + 1
    soup = np.zeros((n_total, G))
    for pi in range(n_total):
        sl = slice(cells["off"][pi], cells["off"][pi + 1])
        w = np.bincount(pid[sl], weights=lib[sl], minlength=len(P))
        soup[pi] = (w / Z) @ P / max(w.sum(), 1e-12)
    args = (np.uint64(key), pid, lib, cells["amb"], sample.astype(np.int64), cells["act"], P, logPM, Z,
            mod_idx, gene2m, W, soup, props["phi"].astype(np.float64))  # fmt: skip
    n = len(pid)
    # pass 1 keeps a bit mask of the non-zero genes (G/8 bytes per cell, ~1/15 of the counts)
    nnz = np.zeros(n, np.int64)
    mask = np.zeros((n, (G + 63) // 64), np.uint64)
    for s0 in range(0, n, chunk):
        s1 = min(s0 + chunk, n)
        _count_nonzero(s0, s1, *args, nnz[s0:s1], mask[s0:s1])
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(nnz, out=indptr[1:])
    total = int(indptr[-1])
    idx_dtype = np.int32 if total < 2**31 else np.int64
    indices = np.empty(total, idx_dtype)
    data = np.empty(total, np.float32)
    for s0 in range(0, n, chunk):
        s1 = min(s0 + chunk, n)
        _fill_counts(s0, s1, *args, mask[s0:s1], indptr, indices, data)
        logger.info(f"simulate_tumor: counts for {s1}/{n} cells")
    del mask
    return sparse.csr_matrix((data, indices, indptr.astype(idx_dtype, copy=False)), shape=(n, G))


def _frame(rows: list, cols: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame({c: np.array([], str) for c in cols})


def _obs(cells: dict, pnames: list[str], n_per) -> pd.DataFrame:
    sample, ftype = cells["sample"], cells["ftype"]
    width = len(str(int(np.max(n_per))))
    local = np.arange(len(sample)) - cells["off"][sample]
    obs = pd.DataFrame(index=pd.Index([f"{pnames[s]}_{i:0{width}d}" for s, i in zip(sample, local)]))
    obs[OBS.sample] = pd.Categorical.from_codes(sample, categories=pnames)
    obs[OBS.true_cell_type] = pd.Categorical.from_codes(ftype, categories=_FINE)
    major = np.array([prg.CELL_TYPES[t][0] for t in _FINE], dtype=object)[ftype]
    obs[OBS.true_cell_type_major] = pd.Categorical(major, categories=prg.MAJOR_TYPES)
    comp = np.array([prg.CELL_TYPES[t][1] for t in _FINE], dtype=object)[ftype]
    obs[OBS.true_compartment] = pd.Categorical(comp, categories=prg.COMPARTMENTS)
    obs[OBS.true_malignant] = cells["malignant"]
    obs[OBS.true_clone] = pd.Categorical.from_codes(cells["clone"], categories=cells["clone_names"])
    obs[OBS.true_niche] = pd.Categorical.from_codes(cells["niche"], categories=prg.NICHES)
    hyp = np.where(cells["malignant"] | cells["in_tumour"], cells["hypoxia"], 0.0)
    obs["true_hypoxia"] = hyp.astype(np.float32)
    obs["true_nest_depth"] = cells["depth"].astype(np.float32)
    obs["true_library_size"] = cells["lib"].astype(np.float32)
    return obs


def _truth(pat, cells, pnames, phenos_all, is_normal, n_per, params) -> dict:
    """``uns["simulation"]``: parameters and tidy truth tables."""
    tree_df = _frame(pat["tree"], ["patient", "clone", "parent", "depth"])
    sizes = np.bincount(cells["clone"], minlength=len(cells["clone_names"]))
    if len(tree_df):
        tree_df["n_cells"] = [int(sizes[cells["clone_names"].index(c)]) for c in tree_df["clone"]]
    patients = []
    for pi, pname in enumerate(pnames):
        tree, lay = pat["trees"][pi], pat["layouts"][pi]
        her2 = "none" if tree is None or tree["her2_clone"] is None else tree["her2_clone"]
        patients.append((pname, phenos_all[pi], bool(is_normal[pi]), int(n_per[pi]),
                         len(tree["clones"]) if tree else 0, her2 != "none", her2, int(lay["n_nests"]),
                         float(lay["margin_width"]), float(cells["amb_p"][pi]),
                         float(cells["depth_factor"][pi])))  # fmt: skip
    markers = []
    for t in _FINE:
        major, _, lineage = prg.CELL_TYPES[t]
        mods = {"lineage": f"lineage:{lineage}", "major": f"major:{major}", "fine": f"fine:{t}"}
        for level, mod in mods.items():
            markers += [(t, level, g, float(lfc)) for g, lfc in prg.MODULES[mod].items() if lfc > 0]
        for mod, scale in prg.CELL_TYPE_EXTRA_MODULES[t].items():
            markers += [(t, mod, g, float(scale * lfc)) for g, lfc in prg.MODULES[mod].items()]
    return {
        "params": params,
        "patients": pd.DataFrame(patients, columns=[
            "patient", "immune_phenotype", "is_normal", "n_cells", "n_clones", "her2_amplified", "her2_clone",
            "n_nests", "margin_width_um", "ambient_fraction", "depth_factor"]),
        "clone_tree": tree_df,
        "clone_cnv": _frame(pat["cnv"], ["patient", "clone", "arm", "level", "region", "state", "copy_number",
                                         "acquired_in"]),
        "clone_programs": _frame(pat["programs"], ["patient", "clone", "program", "kind", "state"]),
        "clone_therapy": _frame(pat["therapy"], ["patient", "clone", "therapy", "response"]),
        "therapy_rules": pd.DataFrame([(t, a, r) for t, (a, r) in prg.THERAPIES.items()],
                                      columns=["therapy", "example_agent", "rule"]),
        "cell_types": pd.DataFrame([(t, *prg.CELL_TYPES[t]) for t in _FINE],
                                   columns=["cell_type", "major", "compartment", "lineage"]),
        "markers": pd.DataFrame(markers, columns=["cell_type", "module", "gene", "log_fold_change"]),
    }  # fmt: skip


def _clone_truth(truth: dict, pat: dict, cells: dict) -> None:
    """With ``n_clones``/``clone_skew``: each patient's true clone Shannon diversity (natural log, of
    the malignant cells' clone fractions) in ``patients``, the target fractions in ``clone_tree``.
    """
    sizes = np.bincount(cells["clone"], minlength=len(cells["clone_names"]))
    names = cells["clone_names"]
    shannon = []
    for tree in pat["trees"]:
        if tree is None:
            shannon.append(np.nan)
            continue
        n = np.array([sizes[names.index(c)] for c in tree["clones"]], float)
        p = n[n > 0] / max(n.sum(), 1.0)
        shannon.append(float(0.0 - (p * np.log(p)).sum()) if len(p) else np.nan)
    truth["patients"]["clone_shannon"] = shannon
    target = {c: float(f) for t in pat["trees"] if t and "target_fraction" in t
              for c, f in zip(t["clones"], t["target_fraction"])}  # fmt: skip
    if target and len(truth["clone_tree"]):
        truth["clone_tree"]["target_fraction"] = truth["clone_tree"]["clone"].map(target).astype(float)


def simulate_tumor(
    *,
    n_cells: int = 5000,
    n_patients: int = 3,
    spatial: bool = True,
    n_genes: int = 8000,
    normal_patient: bool = False,
    immune_phenotypes: Sequence[str] | None = None,
    mesenchymal_tumour: float = 0.0,
    tumour_fraction: float | None = None,
    immune_fraction: float | None = None,
    n_clones: int | Sequence[int] | None = None,
    clone_skew: float | str | None = None,
    cnv_burden: float = 1.0,
    doublet_rate: float = 0.0,
    depth: float | None = None,
    rng: RngLike = 0,
    chunk_size: int | None = None,
) -> AnnData:
    """Simulate a tumour cohort (raw 10x-like counts) with cell types, clones, niches and therapy truth.

    Parameters
    ----------
    n_cells
        Total number of cells, split over the patients (each patient gets 80-120 % of an even
        share). At least 10 per patient.
    n_patients
        Number of tumour patients (samples ``"P1"``, ``"P2"``, ...).
    spatial
        Write micron coordinates to ``obsm["spatial"]``. The same layout is simulated either
        way, so cell types and counts do not depend on this switch.
    n_genes
        Number of genes: every marker/program gene of :mod:`~tmeatlas.datasets._programs`
        (about 550), the 13 mitochondrial genes and a fixed background selection from the
        GRCh38 gene table. The same ``n_genes`` gives the same genes for every ``rng``.
    normal_patient
        Add one more patient (the last sample) with normal tissue only: no malignant cells,
        no copy-number changes, immune phenotype ``"normal"``.
    immune_phenotypes
        One of ``"inflamed"``, ``"excluded"``, ``"desert"`` per tumour patient; default cycles
        inflamed, excluded, desert.
    mesenchymal_tumour
        Fraction (0-1) of each tumour patient's malignant cells that look like stroma: their
        profile moves 85 % of the way from the malignant to the myCAF profile (collagens,
        ``LUM``, ``DCN``, no epithelial markers) while keeping their clone's copy-number
        changes and patient program, as the fibroblast-like cancer cells of ovarian and other
        carcinomas. Marked in ``obs["true_mesenchymal_tumour"]``. Default 0 (off).
    tumour_fraction
        Fraction (0-1) of each tumour patient's cells that are malignant (tumour-majority
        samples, e.g. 0.75): non-malignant cells drawn at random become malignant cells of the
        clone of their nearest malignant cell. ``None`` (default): as the tissue layout gives
        (15-20 %). Applied after ``immune_fraction``.
    immune_fraction
        Largest fraction (0-1) of each tumour patient's cells that are immune cells (samples
        with almost no normal immune cells, e.g. 0.01): the other immune cells become malignant
        cells as above. ``None`` (default): as the layout gives.
    n_clones
        Number of clones (1-6) of every tumour patient, or one number per tumour patient, so that
        clone numbers vary between patients with a known truth (e.g. for
        :func:`tmeatlas.tl.heterogeneity`). ``None`` (default): 2-4 drawn per patient.
    clone_skew
        Clone fractions of the malignant cells: ``"even"`` (equal), ``"skewed"`` (each clone half
        the size of the one before, the first largest: 67/33 % for two clones, 51/25/13/6/3/2 % for
        six) or a float, the concentration of a symmetric Dirichlet drawn per patient (0.5: often
        one dominant clone; 20: nearly even). The clones then lie in parallel bands across the
        tumour bed (a random direction), cut to these fractions, with 4 % of the cells relabelled
        at random (drawn from the fractions). ``None`` (default): as the nests fall (each nest one
        clone territory). With either option ``uns["simulation"]["patients"]`` gains
        ``clone_shannon``: the true Shannon diversity -sum_c p_c ln p_c of the patient's
        malignant cells over clones, and ``clone_tree`` the ``target_fraction`` (with
        ``clone_skew``). With both ``None`` the output is identical to earlier versions.
    cnv_burden
        Scale (0-1] of the number of arm-level copy-number events per tumour (default 1: 3-6
        truncal arms and 1-3 more per clone; 0.3: 1-2 truncal arms and 1 per clone, at least one
        each), for tumours with few changes such as the high-grade serous ovarian samples whose
        cancer cells differ from normal by two or three arm gains. With a tumour majority their
        cells' CNV evidence is skewed and hard to separate (``benchmarks/malignant_real.py``).
    doublet_rate
        Fraction (0-0.5) of droplets that hold two cells: that many cells, drawn at random, get
        the counts of another cell of their sample added (a doublet keeps the labels of its first
        cell; ``obs["true_doublet"]`` marks it and ``obs["true_doublet_partner"]`` names the
        other cell's ``true_cell_type``, ``""`` for singlets). 10x droplets hold 0.8 % doublets
        per 1,000 cells recovered (about 4-8 % in common runs; 10x Genomics user guide; McGinnis
        et al., Cell Syst 8:329, 2019). Default 0 (off); the partner cells stay in the data.
    depth
        Median library size (UMIs per cell) of the cohort: every cell's expected library size is
        scaled by the same factor, so shallow data (600-3,000 UMIs, as many real tumours) keep
        the differences between cell types and samples. ``None`` (default): as the cell types give
        (a median of 6,800 UMIs for 2,000 cells of 2 patients, seed 1).
    rng
        Seed (``int``), :class:`numpy.random.Generator` or ``None``; the resolved seed is
        recorded in ``uns["simulation"]["params"]["seed"]``.
    chunk_size
        Cells per chunk of count generation (default ``tm.settings.chunk_size``). The result
        does not depend on it, nor on the number of threads.

    Returns
    -------
    AnnData with raw counts in ``X`` (CSR, ``float32`` holding integers), genes named by HGNC
    symbol in genome order with ``var`` columns ``chromosome``, ``start``, ``end`` (nullable
    ``Int64``), ``arm``, ``gene_id`` from the GRCh38 table (the 13 ``MT-`` genes come last, on
    ``chrM`` with no arm), and the ground truth:

    ``obs``
        ``sample``, ``true_cell_type`` (23 fine types), ``true_cell_type_major``,
        ``true_compartment``, ``true_malignant``, ``true_clone`` (``"P1_c2"``, or
        ``"non-malignant"``), ``true_niche`` (tumour, margin, stroma, TLS, normal_duct),
        ``true_hypoxia`` (0-1), ``true_nest_depth`` (signed distance to the nest boundary
        in microns, positive inside, -1000 when far) and ``true_library_size``.
    ``obsm["spatial"]``
        Coordinates in microns, one tissue section per patient (sections share a range).
    ``uns["simulation"]``
        ``params`` (with the resolved ``seed``), ``patients``, ``clone_tree``, ``clone_cnv``,
        ``clone_programs``, ``clone_therapy``, ``therapy_rules``, ``cell_types``, ``markers``
        (tidy DataFrames: one row per patient; per clone its parent, depth and size; per
        clone and altered region its state, copy number and the clone it was acquired in
        (``"truncal"`` for the common ancestor); per clone and program/target its state; per
        clone and therapy ``"sensitive"``/``"resistant"``; the rules; the type hierarchy; the
        marker genes with their log fold changes).

    Notes
    -----
    **Expression model.** Each cell has a profile (its fine type in its patient, or its
    malignant clone) giving a log-mean per gene, plus cell-level program activities
    (proliferation, hypoxia, stemness, EMT, antigen presentation, persister, interferon,
    dissociation stress, mitochondrial fraction, ER signalling)::

        log m_g = profile[cell, g] + sum_k activity[cell, k] * program[k, g]
        lambda_g = L * ((1 - a) * m_g / sum(m) + a * soup_g)

    with library size ``L`` lognormal by cell type (median 1.8k UMIs for neutrophils to 9k
    for malignant and plasma cells), an ambient-RNA fraction ``a`` (1-3 % per sample) of
    the sample's soup (the library-weighted mean expression of its cells) and counts drawn
    from a negative binomial ``NB(lambda_g, phi_g)`` (gamma-Poisson; ``phi_g`` in 0.1-0.3).
    Gene means are heavy-tailed (ribosomal, ``MALAT1``, ``EEF1A1`` ... high; most genes low).
    Cell types follow a lineage > major > fine hierarchy of real marker modules (Zheng et al.
    2021; Cheng et al. 2021; Elyada et al. 2019; Kieffer et al. 2020; Sade-Feldman et al. 2018;
    see :mod:`tmeatlas.datasets._programs`) plus sparse random hierarchical differences of
    background genes, so related states share most of their expression. Along known continua
    (CD8 Tem -> Tex, CD4 Tconv <-> Treg, monocyte -> macrophage, C1QC+ <-> SPP1+ TAMs,
    myCAF <-> iCAF, ...; ``_programs.CONTINUA``) 10-35 % of a type's cells are intermediates
    whose log-profile mixes in 15-45 % of the neighbouring state (the label stays the
    dominant state). With the defaults a standard scanpy workflow (2000 HVGs, 30 PCs, Leiden
    at resolution 1) recovers ``true_cell_type`` with an adjusted Rand index of about
    0.73-0.83, the malignant cells splitting by patient as in real tumours.

    **Malignant cells.** Per patient: a patient-specific program (random log fold changes,
    sd 0.6, of 3 % of genes) and 2-4 clones (``n_clones``: 1-6) forming a tree under an unobserved
    common ancestor (``<patient>_root``) that carries 3-6 truncal arm-level events drawn from frequent
    carcinoma events (Taylor et al., Cancer Cell 2018); each clone adds 1-3 private events.
    Loss multiplies expression of the arm's genes by 0.5, gain by 1.5, amplification by 2
    (copy number 1, 3, 4), with gene-level dosage sensitivity ``s`` in 0.6-1
    (``(CN/2)**s``); a HER2-positive patient (35 %) carries the 17q12 ERBB2 amplicon
    (copy number 8), truncal or subclonal. Clones inherit their parent's programs and switch
    some: proliferation, stemness, EMT, persister (quiescent drug-tolerant), antigen
    presentation (intact/lost) and drug targets (ERBB2, EGFR, TACSTD2, NECTIN4, ESR1, CD274).
    Therapy truth per clone follows documented rules (``uns["simulation"]["therapy_rules"]``),
    e.g. anti-HER2 sensitive iff ERBB2 high; taxane sensitive iff proliferative and neither
    persister nor EMT high; anti-PD-1 sensitive iff antigen presentation intact and the
    patient inflamed.

    **Tissue.** Each patient is a jittered grid (12 um spacing), one section per patient.
    Tumour nests are a Boolean model of discs (radius up to 230 um, smaller in small
    sections) with a smoothly perturbed boundary, placed in a tumour bed on one side of the
    section and covering 15-25 % of it; the invasive margin is a 40-80 um band outside them;
    nests are 55-80 % malignant cells, so 15-20 % of all cells are malignant; tertiary lymphoid
    structures (B, CD4 T, progenitor-exhausted CD8 T, DCs) and normal ducts are discs in the
    stroma away from the nests. Cell types are drawn from niche compositions that depend on
    the immune phenotype: *inflamed* (CD8 T, mostly exhausted, inside nests), *excluded*
    (T cells held in the margin and stroma), *desert* (few T cells anywhere). Hypoxia rises
    with depth inside nests (half-maximal at 100 um, or 70 % of the largest nest radius in
    small sections) and drives the hypoxia program and the
    SPP1+ vs C1Q+ macrophage balance. Each nest belongs to one clone territory (with
    ``clone_skew``: bands cut to the clone fractions).

    **Randomness.** Every cell has its own counter-based random stream (splitmix64 of seed,
    cell and gene), so the counts do not depend on ``chunk_size`` or the thread count.
    Counts are drawn per cell in numba: a uniform decides zero against
    ``p0 = (1 + phi lambda)**(-1/phi)``; non-zero values continue the CDF inversion with the
    same uniform (``lambda < 40``) or are gamma-Poisson draws (Marsaglia-Tsang gamma, PTRS
    Poisson) conditioned on being positive, so each draw is exactly NB. Memory is the CSR
    matrix plus a bit mask of non-zero genes (``n_genes / 8`` bytes per cell) and small
    per-cell arrays (two passes: count non-zeros, then fill); no dense cells x genes matrix
    is built. 100k cells take ~20 s and ~2 GB on 2 cores; 1M cells ~15 GB.
    """
    from anndata import AnnData

    from .._store import _append_log, h5ad_safe

    n_cells, n_patients, n_genes, phenos, chunk = _check_params(
        n_cells, n_patients, spatial, n_genes, normal_patient, immune_phenotypes, chunk_size
    )
    seed = resolve_seed(rng)
    n_total = n_patients + int(bool(normal_patient))
    logger.info(f"simulate_tumor: {n_cells} cells, {n_total} patients, {n_genes} genes, seed {seed}")

    var, props = _universe(n_genes)
    gidx = {g: i for i, g in enumerate(var.index)}
    streams = spawn_seeds(seed, 3 + n_total)  # split, cells, counts, one per patient
    pnames = [f"P{i + 1}" for i in range(n_total)]
    is_normal = [False] * n_patients + [True] * (n_total - n_patients)
    phenos_all = phenos + ["normal"] * (n_total - n_patients)

    share = make_rng(int(streams[0])).uniform(0.8, 1.2, n_total)
    share = share / share.sum() * n_cells
    n_per = np.floor(share).astype(int)
    n_per[np.argsort(-(share - n_per), kind="stable")[: n_cells - n_per.sum()]] += 1

    extra = _check_composition(mesenchymal_tumour, tumour_fraction, immune_fraction)
    clones = _check_clones(n_clones, clone_skew, n_patients, cnv_burden)
    pat = _simulate_patients(var, props, _type_profiles(n_genes), n_per, phenos_all, is_normal, streams[3:],
                             clones=clones)  # fmt: skip
    if extra:  # options off: no extra random draws, so default outputs are unchanged
        _reshape_tumours(pat, is_normal, extra, np.random.default_rng([seed, 22]))
    cells = _cell_states(pat, n_per, phenos_all, make_rng(int(streams[1])))
    droplets = _check_droplets(doublet_rate, depth)
    if "depth" in droplets:  # options off: no change, no extra random draws
        cells["lib"] = cells["lib"] * (droplets["depth"] / float(np.median(cells["lib"])))
    X = _counts(pat["rows"], cells, props, gidx, streams[2], chunk)

    adata = AnnData(X=X, obs=_obs(cells, pnames, n_per), var=var.copy())
    if droplets.get("doublet_rate"):
        _add_doublets(adata, droplets["doublet_rate"], np.random.default_rng([seed, 23]))
    if extra.get("mesenchymal_tumour"):
        adata.obs["true_mesenchymal_tumour"] = np.concatenate([L["mesenchymal"] for L in pat["layouts"]])
    if spatial:
        adata.obsm[OBSM.spatial] = cells["xy"]
    params = {
        "n_cells": n_cells, "n_patients": n_patients, "spatial": bool(spatial), "n_genes": n_genes,
        "normal_patient": bool(normal_patient), "immune_phenotypes": list(phenos), "seed": seed,
        "chunk_size": chunk, "spatial_units": "micron", **extra, **droplets,
    }  # fmt: skip
    if clones:  # options off: params and truth tables as before
        params.update({k: v for k, v in clones.items() if v is not None})
    truth = _truth(pat, cells, pnames, phenos_all, is_normal, n_per, params)
    if clones:
        _clone_truth(truth, pat, cells)
    adata.uns[UNS.simulation] = h5ad_safe(truth)
    # the gene positions are tmeatlas's own (GRCh38 table): logged so that tools may replace them
    _append_log(adata, "datasets.simulate_tumor", [f"var[{k!r}]" for k in var.columns])
    logger.info(f"simulate_tumor: {n_cells} cells x {n_genes} genes, {X.nnz} non-zero counts")
    return adata
