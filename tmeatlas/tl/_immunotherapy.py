"""Per-sample benefit from immune-checkpoint blockade: ``tm.tl.immunotherapy_benefit``.

Every component is a published biomarker, measured in the cell population and the setting
(whole tumour or sorted immune cells) in which it was validated; see :func:`components` and
:func:`immunotherapy_benefit`. :func:`tmeatlas.tl.therapy_survival` uses the same benefit for its
immunotherapy rows.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError
from .._keys import OBS, UNS
from .._rng import RngLike, make_rng, resolve_seed
from .._settings import logger, settings
from .._store import store
from .._validation import check_int, check_obs_key, get_matrix, start

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["components", "immunotherapy_benefit"]


WHOLE, IMMUNE_ONLY = "whole tumour", "immune cells only"


def components() -> pd.DataFrame:
    """The benefit components (``_data/immunotherapy_components.tsv``, read once, on first use; see ``PROVENANCE.md``).

    One row per component: its published direction (+1: higher goes with response), weight, the
    cell population it is measured in, the setting it was validated in, what is measured, and its
    source.
    """
    return _read_components().copy()


@cache
def _read_components() -> pd.DataFrame:
    """The shipped components table, read once (callers get copies from :func:`components`)."""
    from .._resources import data_path

    with data_path("immunotherapy_components.tsv").open("rb") as fh:
        df = pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)
    df["direction"] = df["direction"].astype(int)
    df["weight"] = df["weight"].astype(float)
    bad = set(df["setting"]) - {"any", "spatial", WHOLE}
    if bad:  # a malformed edit of the data file: say where, before any sample is scored
        raise ValueError(f"immunotherapy_components.tsv: unknown setting {sorted(bad)}")
    return df


#: components that count T-cell abundance: in an excluded or desert sample they can lower the
#: benefit but not raise it (T cells kept out of the tumour bed; Chen & Mellman 2017)
_ABUNDANCE = ("cd8_infiltration", "tcell_inflamed_gep")
_NOT_INFILTRATED = ("excluded", "desert")
_PHENOTYPE_VALUE = {"inflamed": 1.0, "excluded": -1.0, "desert": -1.0}
_MYELOID_WORDS = r"macrophage|monocyte|myeloid|dendritic|\bdc|cdc|pdc|microglia|neutrophil|tam\b"
_GEP, _APM, _TLS = "AYERS_TCELL_INFLAMED_GEP_18", "MHC1_APM_SENBABAOGLU", "CABRITA_TLS_9"
_TPEX, _TEX = "TPEX_TSUI2022", "TEX_CHU2023"
_SIGNATURES = (_GEP, _APM, _TLS, _TPEX, _TEX)
#: what each component needs in the data (for the "not measured" reason)
_NEEDS = {"tcf7_cd8_share": "TCF7", "progenitor_cd8_share": f"{_TPEX} and {_TEX}", "exhausted_cd8_share": "ENTPD1 or HAVCR2", "cd8_infiltration": "CD8 T cells",
          "pdl1_positive_share": "CD274", "tcell_inflamed_gep": _GEP, "antigen_presentation": _APM, "tls": _TLS}  # fmt: skip
#: immune lineage genes: a cell with any of them detected counts as immune when no label says so
_IMMUNE_GENES = (
    "PTPRC",
    "CD3D",
    "CD3E",
    "CD2",
    "CD14",
    "CD68",
    "LYZ",
    "MS4A1",
    "CD79A",
    "NKG7",
    "TPSAB1",
    "JCHAIN",
)
_GENES = tuple(dict.fromkeys(("TCF7", "ENTPD1", "HAVCR2", "CD274", "CD8A", "CD8B", *_IMMUNE_GENES)))
_IMMUNE_WORDS = (
    r"\bt\b|t cell|t_cell|cd4|cd8|treg|\bnk|b cell|b_cell|\bb\b|plasma|mast|lymph|immune|" + _MYELOID_WORDS
)
_MIN_CELLS = 10  # fewest cells of a component's population for the component to be measured
_MIN_SAMPLES = 3  # fewest samples with a component for it to be standardised across the cohort
_WHOLE_NON_IMMUNE = 0.25  # a sample with >= 25% non-immune cells (or any malignant cell) is a whole tumour
_Z_CLIP = 3.0


def _score(adata_like, signatures, seed: int, n_jobs) -> pd.DataFrame:
    """Control scores (Tirosh) of ``signatures`` on every cell of a light AnnData; unscorable ones dropped."""
    from ._signatures import score_signatures

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            score_signatures(adata_like, signatures=signatures, method="control", rng=seed, n_jobs=n_jobs,
                             key_added="_therapy_scores", prefix="_ts_")  # fmt: skip
        except InvalidInputError:
            return pd.DataFrame(index=adata_like.obs_names)
    cols = [c for c in adata_like.obs.columns if str(c).startswith("_ts_")]
    return adata_like.obs[cols].rename(columns=lambda c: str(c)[4:]).astype(np.float64)


def _light(adata, X):
    """An AnnData that shares ``X`` and the names, for scoring without touching ``adata``."""
    from anndata import AnnData

    return AnnData(
        X=X, obs=pd.DataFrame(index=adata.obs_names.copy()), var=pd.DataFrame(index=adata.var_names.copy())
    )


# --------------------------------------------------------------------------------------------
# per-cell quantities
# --------------------------------------------------------------------------------------------
def _detected(adata, X, chunk: int, samples: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-cell detection of the genes of :data:`_GENES` that are measured: count > 0, or for the
    intensities of a protein panel (never zero) a channel above its background
    (:func:`tmeatlas.tl._annotate_protein.positive`, per sample).
    """
    from ._annotate_protein import columns, looks_like_protein, positive
    from ._cells import gene_cols as _gene_cols
    from ._checkpoints import pair_expression

    cols = _gene_cols(adata.var_names, list(_GENES))
    if not cols:
        return {}
    names = list(cols)
    if looks_like_protein(X, adata.var_names):
        samples = np.zeros(adata.n_obs, np.int64) if samples is None else samples
        M = columns(X, [cols[g] for g in names])  # one pass over the matrix
        return {g: positive(M[:, k], samples) for k, g in enumerate(names)}
    E, _ = pair_expression(X, np.asarray([cols[g] for g in names], dtype=np.int64), chunk)
    E = E.tocsc()
    return {g: np.asarray((E[:, j] > 0).todense()).ravel() for j, g in enumerate(names)}


def _labels(adata, key: str | None) -> np.ndarray | None:
    return adata.obs[key].astype(str).to_numpy() if key is not None and key in adata.obs else None


def _cell_masks(adata, det: dict, mal: np.ndarray, cell_type_key: str | None) -> dict[str, np.ndarray]:
    """CD8 T, myeloid and immune cells, from labels where they say so, else from marker detection."""
    n = adata.n_obs
    none = np.zeros(n, bool)

    def any_of(*genes):
        out = none.copy()
        for g in genes:
            out |= det.get(g, none)
        return out

    lab = _labels(adata, cell_type_key)
    if lab is not None and pd.Series(lab).str.contains("CD8", case=False).any():
        cd8, how = (
            pd.Series(lab).str.contains("CD8", case=False).to_numpy(),
            f"obs[{cell_type_key!r}] mentions CD8",
        )
    else:
        cd8, how = any_of("CD8A", "CD8B"), "CD8A or CD8B detected"
    cd8 &= ~mal
    if lab is not None and pd.Series(lab).str.contains(_MYELOID_WORDS, case=False, regex=True).any():
        myeloid = pd.Series(lab).str.contains(_MYELOID_WORDS, case=False, regex=True).to_numpy()
    else:
        myeloid = any_of("CD14", "CD68") & ~any_of("CD3D", "CD3E")
    myeloid &= ~mal
    comp = _labels(adata, OBS.compartment)
    if comp is not None:
        immune = comp == "immune"
    elif lab is not None:
        immune = pd.Series(lab).str.contains(_IMMUNE_WORDS, case=False, regex=True).to_numpy()
    else:
        immune = any_of(*_IMMUNE_GENES)
    return {"cd8": cd8, "cd8_rule": how, "myeloid": myeloid, "immune": immune & ~mal}


def _settings(samples: np.ndarray, mal: np.ndarray, immune: np.ndarray) -> dict[str, str]:
    """Whole tumour when a sample has malignant cells or >= 25% non-immune cells, else immune cells only."""
    out = {}
    for s in pd.unique(samples):
        m = samples == s
        non_immune = float(np.mean(~immune[m] & ~mal[m]))
        out[s] = WHOLE if mal[m].any() or non_immune >= _WHOLE_NON_IMMUNE else IMMUNE_ONLY
    return out


def _ratio_parts(masks, det, scores, mal) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Numerators and denominators (cells x components) whose column sums give each component."""
    n = len(mal)
    one = np.ones(n)
    nothing = np.zeros(n, bool)
    cd8 = masks["cd8"]
    pop = mal | masks["myeloid"]

    def sig(name, where):
        return (
            (np.nan_to_num(scores[name].to_numpy()) * where, where.astype(float)) if name in scores else None
        )

    parts = {
        "tcf7_cd8_share": (cd8 & det["TCF7"], cd8) if "TCF7" in det else None,
        "exhausted_cd8_share": (cd8 & (det.get("ENTPD1", nothing) | det.get("HAVCR2", nothing)), cd8)
        if ("ENTPD1" in det or "HAVCR2" in det) else None,
        "progenitor_cd8_share": (cd8 & (scores[_TPEX].to_numpy() > scores[_TEX].to_numpy()), cd8)
        if _TPEX in scores and _TEX in scores else None,
        "cd8_infiltration": (cd8, one),
        "pdl1_positive_share": (pop & det["CD274"], pop) if "CD274" in det else None,
        "tcell_inflamed_gep": sig(_GEP, np.ones(n, bool)),
        "antigen_presentation": sig(_APM, mal),
        "tls": sig(_TLS, np.ones(n, bool)),
    }  # fmt: skip
    names = [c for c in components()["component"] if c != "immune_phenotype"]
    NUM = np.zeros((n, len(names)))
    DEN = np.zeros((n, len(names)))
    for j, c in enumerate(names):
        if parts.get(c) is not None:
            NUM[:, j] = parts[c][0]
            DEN[:, j] = parts[c][1]
        else:
            DEN[:, j] = np.nan  # not measured in these data
    return NUM, DEN, names


# --------------------------------------------------------------------------------------------
# per-sample values, cohort standardisation, score, bootstrap
# --------------------------------------------------------------------------------------------
def _component_rows(samples, setting, NUM, DEN, names, phenotype, masks) -> pd.DataFrame:
    """One row per sample and component: value, population size and whether it is measured (and why not)."""
    meta = components().set_index("component")
    rows = []
    for s in pd.unique(samples):
        m = samples == s
        num, den = NUM[m].sum(axis=0), DEN[m].sum(axis=0)
        for j, c in enumerate(names):
            need = meta.loc[c, "setting"]
            row = {
                "sample": s,
                "component": c,
                "value": np.nan,
                "n_population": 0,
                "status": "measured",
                "reason": "",
            }
            if np.isnan(den[j]):
                row.update(status="not measured", reason=f"{_NEEDS[c]} not in the data")
            elif need == WHOLE and setting[s] != WHOLE:
                row.update(
                    status="not applicable", reason=f"validated on whole tumours; this sample is {setting[s]}"
                )
            else:
                npop = int(round(den[j]))
                row["n_population"] = npop
                if npop < _MIN_CELLS:
                    row.update(
                        status="not measured", reason=f"{npop} {meta.loc[c, 'population']} (< {_MIN_CELLS})"
                    )
                else:
                    row["value"] = float(num[j] / den[j])
            rows.append(row)
        ph = phenotype.get(s, "")
        row = {"sample": s, "component": "immune_phenotype", "value": _PHENOTYPE_VALUE.get(ph, np.nan),
               "n_population": int(m.sum()), "status": "measured", "reason": ph}  # fmt: skip
        if ph not in _PHENOTYPE_VALUE:
            row.update(
                status="not measured", reason="no spatial immune phenotype (run tm.gr.immune_phenotype)"
            )
        rows.append(row)
    df = pd.DataFrame(rows).merge(components(), on="component", how="left")
    return df


def _standardise(comp: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Z of each measured component across the samples that have it (>= 3 samples), clipped at +-3."""
    comp = comp.copy()
    comp["z"] = np.nan
    scale = {}
    for c, sub in comp.groupby("component", sort=False):
        ok = sub["status"].eq("measured")
        if c == "immune_phenotype":
            comp.loc[sub.index[ok], "z"] = sub.loc[ok, "value"]
            continue
        v = sub.loc[ok, "value"].to_numpy(float)
        if len(v) < _MIN_SAMPLES or np.std(v) <= 1e-12:
            why = f"measured in {len(v)} sample(s); needs >= {_MIN_SAMPLES} that differ to compare"
            comp.loc[sub.index[ok], ["status", "reason"]] = ["not counted", why]
            continue
        mu, sd = float(v.mean()), float(v.std())
        scale[c] = (mu, sd)
        comp.loc[sub.index[ok], "z"] = np.clip((v - mu) / sd, -_Z_CLIP, _Z_CLIP)
    return comp, scale


def _contributions(comp: pd.DataFrame, phenotype: dict) -> pd.DataFrame:
    comp = comp.copy()
    counted = comp["z"].notna()
    contrib = comp["direction"] * comp["weight"] * comp["z"]
    blocked = counted & comp["component"].isin(_ABUNDANCE) & (contrib > 0)
    blocked &= comp["sample"].map(lambda s: phenotype.get(s, "") in _NOT_INFILTRATED)
    for i in np.flatnonzero(blocked.to_numpy()):
        ph = phenotype.get(comp["sample"].iloc[i], "")
        comp.iloc[i, comp.columns.get_loc("reason")] = (
            f"positive part not counted: T cells kept out of the tumour bed ({ph})"
        )
    contrib[blocked] = 0.0
    comp["contribution"] = contrib.where(counted)
    comp.loc[counted & ~blocked & comp["status"].eq("measured"), "status"] = "counted"
    comp.loc[blocked, "status"] = "counted"
    return comp


def _score_samples(comp: pd.DataFrame) -> pd.Series:
    c = comp[comp["status"] == "counted"]
    num = c.groupby("sample", sort=False)["contribution"].sum()
    den = c.groupby("sample", sort=False)["weight"].sum()
    return num / den


def _bootstrap(
    samples, NUM, DEN, names, comp, scale, n_boot: int, seed: int, p_inflamed: dict | None = None
) -> dict[str, tuple[float, float]]:
    """Percentile interval of each sample's benefit over ``n_boot`` resamples of its cells (fixed cohort
    scale); the spatial phenotype, where its call probability is known (``p_inflamed``, from the counting
    error of the CD8 densities), is drawn per resample: +1 with that probability, else -1.
    """
    out = {}
    if n_boot == 0:
        return out
    gen = make_rng(seed)
    col = {c: j for j, c in enumerate(names)}
    for s in pd.unique(samples):
        rows = comp[(comp["sample"] == s) & (comp["status"] == "counted")]
        if rows.empty:
            continue
        idx = np.flatnonzero(samples == s)
        n = len(idx)
        ph_rows = rows[rows["component"] == "immune_phenotype"]
        fixed = float(ph_rows["contribution"].sum())
        p_in = (p_inflamed or {}).get(s)
        ph_w = float((ph_rows["direction"] * ph_rows["weight"]).sum())
        live = rows[rows["component"] != "immune_phenotype"]
        js = [col[c] for c in live["component"]]
        sign_w = (live["direction"] * live["weight"]).to_numpy(float)
        pos_only = live["reason"].str.startswith("positive part not counted").to_numpy()
        mu = np.array([scale[c][0] for c in live["component"]])
        sd = np.array([scale[c][1] for c in live["component"]])
        wsum = float(rows["weight"].sum())
        vals = np.empty(n_boot)
        step = max(1, 2_000_000 // max(1, n))
        for b0 in range(0, n_boot, step):
            b1 = min(n_boot, b0 + step)
            W = gen.poisson(1.0, size=(b1 - b0, n)).astype(np.float64)  # Poisson bootstrap of cells
            num = W @ NUM[idx][:, js]
            den = W @ np.nan_to_num(DEN[idx][:, js])
            z = np.clip((num / np.maximum(den, 1e-12) - mu) / sd, -_Z_CLIP, _Z_CLIP)
            c = z * sign_w
            c[:, pos_only] = np.minimum(c[:, pos_only], 0.0)
            ph = fixed
            if len(ph_rows) and p_in is not None and np.isfinite(p_in):
                ph = ph_w * np.where(gen.random(b1 - b0) < p_in, 1.0, -1.0)
            vals[b0:b1] = (c.sum(axis=1) + ph) / wsum
        lo, hi = np.quantile(vals, [0.025, 0.975])
        out[s] = (float(lo), float(hi))
    return out


def _phenotype_probability(adata: AnnData) -> dict[str, float]:
    """Each sample's probability of the inflamed call (``uns["immune_phenotype"]["table"]``), if recorded."""
    t = adata.uns.get(UNS.immune_phenotype, {}).get("table")
    if not isinstance(t, pd.DataFrame) or "p_inflamed" not in t:
        return {}
    return dict(zip(t["sample"].astype(str), t["p_inflamed"].astype(float), strict=True))


def _sample_table(comp, scores, ci, setting, samples) -> pd.DataFrame:
    rows = []
    n_samples = len(pd.unique(samples))
    for s in pd.unique(samples):
        sub = comp[comp["sample"] == s]
        used = sub[sub["status"] == "counted"]
        skipped = sub[sub["status"] != "counted"]
        b = float(scores.get(s, np.nan))
        lo, hi = ci.get(s, (b, b))
        no_cohort = n_samples < _MIN_SAMPLES
        if not np.isfinite(b) or no_cohort:
            call = "undetermined"
        elif lo > 0:
            call = "above cohort"
        elif hi < 0:
            call = "below cohort"
        else:
            call = "undetermined"
        rows.append({
            "sample": s, "setting": setting[s], "n_cells": int((samples == s).sum()), "benefit": b,
            "ci_low": lo, "ci_high": hi, "call": call, "n_components": len(used),
            "components": "; ".join(f"{r.component}={r.value:.3g} (z={r.z:+.1f}, {'+' if r.direction > 0 else '-'}, "
                                    f"in {r.population})" for r in used.itertuples()) or "none counted",
            "not_counted": "; ".join(
                [f"{r.component}: {r.status} ({r.reason})" for r in skipped.itertuples()]
                + ([f"call: a cohort of {n_samples} sample(s) (needs >= {_MIN_SAMPLES} to place one above or "
                    "below it)"] if no_cohort else [])
            ),
        })  # fmt: skip
    return pd.DataFrame(rows)


def benefit_tables(
    adata, X, *, samples, mal, cell_type_key, seed, n_jobs, n_boot, chunk, scores=None, detected=None
):
    """The per-sample benefit table and the per-sample x component table (the core of the public tool);
    ``scores`` / ``detected`` when the caller has read them already (no second pass over the matrix).
    """
    det = _detected(adata, X, chunk, samples) if detected is None else detected
    masks = _cell_masks(adata, det, mal, cell_type_key)
    if scores is None or not set(_SIGNATURES) <= set(scores.columns):
        scores = _score(_light(adata, X), list(_SIGNATURES), seed, n_jobs)
    setting = _settings(samples, mal, masks["immune"])
    pheno = {}
    if OBS.immune_phenotype in adata.obs:
        ph = adata.obs[OBS.immune_phenotype].astype(str).to_numpy()
        for s in pd.unique(samples):
            vc = pd.Series(ph[samples == s]).value_counts()
            pheno[s] = str(vc.index[0]) if len(vc) else ""
    NUM, DEN, names = _ratio_parts(masks, det, scores, mal)
    comp = _component_rows(samples, setting, NUM, DEN, names, pheno, masks)
    comp, scale = _standardise(comp)
    comp = _contributions(comp, pheno)
    sc = _score_samples(comp)
    ci = _bootstrap(samples, NUM, DEN, names, comp, scale, n_boot, seed, _phenotype_probability(adata))
    table = _sample_table(comp, sc, ci, setting, samples)
    comp["cd8_rule"] = masks["cd8_rule"]
    cols = ["sample", "component", "value", "z", "direction", "weight", "contribution", "status", "reason",
            "population", "n_population", "setting", "measure", "source", "cd8_rule"]  # fmt: skip
    return table, comp[cols].reset_index(drop=True)


@doc_params("copy", "layer")
def immunotherapy_benefit(
    adata: AnnData,
    *,
    sample_key: str | None = None,
    layer: str | None = None,
    malignant_key: str | None = None,
    malignant_value: str | None = None,
    cell_type_key: str | None = None,
    n_boot: int = 200,
    rng: RngLike = 0,
    n_jobs: int | None = None,
    key_added: str = UNS.immunotherapy_benefit,
    copy: bool = False,
) -> AnnData | None:
    r"""Per-sample benefit from immune-checkpoint blockade, from published biomarkers, for every sample.

    **Components** (:func:`components`), each measured in the population and setting in which it
    was validated:

    * ``tcf7_cd8_share`` (+, weight 2): TCF7+ share of CD8 T cells, the progenitor-exhausted /
      memory-like cells that expand after PD-1 blockade (Sade-Feldman et al., Cell 2018: the
      share separated responders in a pre-treatment melanoma cohort; Miller et al., Nat Immunol
      2019). Any setting, sorted T cells included.
    * ``exhausted_cd8_share`` (-, weight 1): CD39 (ENTPD1) or TIM-3 (HAVCR2) detected among CD8
      T cells, enriched in non-responders (Sade-Feldman 2018). Any setting.
    * ``immune_phenotype`` (weight 2, spatial): inflamed +1, excluded or desert -1 from
      ``obs["immune_phenotype"]`` (Chen & Mellman, Nature 2017).
    * Whole tumours only (a sample with malignant cells or >= 25% non-immune cells): CD8 T-cell
      infiltration (CD8 T cells per cell; Tumeh et al., Nature 2014), the PD-L1+ share of
      malignant and myeloid cells (the cells the combined positive score counts), the
      T-cell-inflamed GEP (Ayers et al., JCI 2017; validated on whole-tumour RNA, so not applied
      to sorted immune cells, where CD8 abundance and GEP mark expanded exhausted clones of
      non-responders), the malignant cells' MHC-I antigen presentation (B2M/HLA loss confers
      resistance; Sade-Feldman et al., Nat Commun 2017) and the TLS score (Cabrita et al.,
      Nature 2020). In an excluded or desert sample the abundance components (infiltration,
      GEP) can lower the benefit but not raise it.

    CD8 T cells are the labels of ``cell_type_key`` that mention CD8 (default
    ``obs["cell_type"]``), else cells with CD8A or CD8B detected; myeloid cells likewise from
    labels (macrophage, monocyte, DC, ...) or CD14/CD68. A component needs >= 10 cells of its
    population in the sample.

    **Score.** Each measured component is standardised across the samples that have it
    (:math:`z`, clipped at :math:`\pm 3`; at least 3 samples that differ, else "not counted"),
    and :math:`B_s = \sum_c d_c w_c z_{sc} / \sum_c w_c` over the counted components (:math:`d`
    the published direction, :math:`w` the weight; the phenotype enters as :math:`\pm 1`). Weight
    2 goes to the biomarkers validated at the resolution single-cell and spatial data have (T-cell
    states, the spatial phenotype), 1 to those transferred from bulk tumour RNA or
    immunohistochemistry; nothing is fitted to outcomes. The benefit is relative to the cohort
    (0 = its average). The interval is the 2.5-97.5% percentile over ``n_boot`` Poisson
    resamples of each sample's cells with the cohort scale held fixed, the spatial phenotype drawn
    in each resample from its call probability (``p_inflamed`` of
    :func:`tmeatlas.gr.immune_phenotype`, the counting error of the CD8 densities); ``call`` is
    "above cohort" / "below cohort" when the interval excludes 0, else "undetermined" (also with no
    counted component, and in a cohort of fewer than 3 samples, which has no average to place a
    sample against: ``not_counted`` says so).

    Parameters
    ----------
    adata
        Annotated data matrix (counts or log-normalised), tumour or immune cells only.
    sample_key
        Column of ``adata.obs`` with the sample (patient); ``None``: one sample (no cohort to
        compare with: every component "not counted", benefit undetermined).
    {layer}
    malignant_key, malignant_value
        Column and value marking malignant cells (default ``obs["malignant"] == "malignant"``, then
        ``obs["compartment"]``, then ``obs["cell_type_major"]``); without any, no cell is malignant.
    cell_type_key
        Column with cell-type labels (CD8 and myeloid cells); default ``obs["cell_type"]`` if present.
    n_boot
        Cell resamples of the interval (0: none).
    rng
        Seed of the bootstrap and of the signatures' control genes.
    n_jobs
        Threads of the signature scoring (default ``tm.settings.n_jobs``).
    key_added
        Key of ``adata.uns`` for the result.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``uns[key_added]`` with ``table`` (one row per sample: setting,
    n_cells, benefit, ci_low, ci_high, call, n_components, components, not_counted),
    ``components`` (one row per sample and component: value, z, direction, weight,
    contribution, status counted / not counted / not measured / not applicable, reason,
    population, n_population, setting, measure, source) and ``params``; read them with
    :func:`tmeatlas.get.immunotherapy_benefit`.
    """
    adata = start(adata, copy)
    n_boot = check_int("n_boot", n_boot, 0)
    seed = resolve_seed(rng)
    if not isinstance(key_added, str) or not key_added or "/" in key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string without '/', got {key_added!r}.")
    X = get_matrix(adata, layer)
    for k, what in ((sample_key, "sample_key"), (cell_type_key, "cell_type_key")):
        if k is not None:
            check_obs_key(adata, k, what=what)
    if cell_type_key is None and OBS.cell_type in adata.obs.columns:
        cell_type_key = OBS.cell_type
    samples = _samples(adata, sample_key)
    mal, mal_rule = _malignant_or_none(adata, malignant_key, malignant_value)
    n_threads = settings.resolve_n_jobs(n_jobs)
    table, comp = benefit_tables(adata, X, samples=samples, mal=mal, cell_type_key=cell_type_key, seed=seed,
                                 n_jobs=n_threads, n_boot=n_boot, chunk=int(settings.chunk_size))  # fmt: skip
    if table["benefit"].isna().all():
        warnings.warn(
            "immunotherapy benefit undetermined for every sample: no component could be compared across samples "
            f"(see adata.uns[{key_added!r}]['components']). It needs >= 3 samples (sample_key=).",
            UserWarning,
            stacklevel=2,
        )
    params = {"sample_key": sample_key, "layer": layer, "malignant": mal_rule, "cell_type_key": cell_type_key,
              "n_boot": n_boot, "rng": seed, "n_jobs": n_threads, "key_added": key_added}  # fmt: skip
    logger.info("immunotherapy_benefit: %d samples", len(table))
    store(adata, tool="tl.immunotherapy_benefit", uns_key=key_added,
          uns={"table": table, "components": comp}, params=params)  # fmt: skip
    return adata if copy else None


def _samples(adata, sample_key) -> np.ndarray:
    if sample_key is None:
        return np.full(adata.n_obs, "all", object)
    col = adata.obs[sample_key]
    if col.isna().any():
        raise InvalidInputError(
            f"obs[{sample_key!r}] has {int(col.isna().sum())} missing value(s); give every cell a sample."
        )
    return col.astype(str).to_numpy()


def _malignant_or_none(adata, key, value) -> tuple[np.ndarray, str]:
    """The malignant mask of :func:`therapy_survival`, or none malignant when no call exists (immune cells)."""
    from .._errors import MissingResultError
    from ._cells import malignant_mask as _malignant_mask

    try:
        return _malignant_mask(adata, key, value)
    except MissingResultError:
        if key is not None:
            raise
        return np.zeros(adata.n_obs, bool), "no malignant call in obs: no cell counted as malignant"
