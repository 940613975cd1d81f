"""Simulated checkpoint-blockade cohorts with a known response: ``tm.datasets.simulate_checkpoint_cohort``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import InvalidParameterError
from .._keys import OBS, OBSM, UNS
from .._rng import make_rng, resolve_seed, spawn_seeds
from .._settings import logger, settings
from . import _programs as prg
from . import _simulate as sim

if TYPE_CHECKING:
    from anndata import AnnData

    from .._rng import RngLike

__all__ = ["simulate_checkpoint_cohort"]

SETTINGS = ("t_cells", "tumour")
MECHANISMS = ("desert", "excluded", "antigen_loss", "exhausted")
_CD8 = ("CD8 T", "exhausted CD8 T", "progenitor-exhausted CD8 T")
_CD8_IDX = np.array([sim._FINE_IDX[t] for t in _CD8])
_TEFF, _TEX, _TPEX = (sim._FINE_IDX[t] for t in _CD8)
_RESP = ("responder", "non-responder")

#: Beta(a, b) of the progenitor-exhausted (TCF7+) share of CD8 T cells (means 0.41 / 0.20;
#: Sade-Feldman et al. 2018: TCF7+ CD8 T cells enriched in responders)
TPEX_BETA = {"responder": (7.0, 10.0), "non-responder": (3.0, 12.0)}
#: Beta of the terminally exhausted share of the other CD8 T cells (means 0.45 / 0.64;
#: CD39+TIM-3+ exhausted CD8 T cells enriched in non-responders, Sade-Feldman 2018)
TEX_BETA = {"responder": (5.0, 6.0), "non-responder": (7.0, 4.0)}
#: Beta of the CD8 share of sorted T/NK cells, ``t_cells`` setting (means 0.46 / 0.54)
CD8_BETA = {"responder": (12.0, 14.0), "non-responder": (14.0, 12.0)}
#: Dirichlet of CD4 T, Treg and NK among the other sorted cells (``t_cells``)
_OTHER_T = ("CD4 T", "Treg", "NK")
_OTHER_ALPHA = (20.4, 6.6, 3.0)
#: ``tumour`` setting: mechanism shares among non-responders (allocated by largest remainder,
#: so that 4 or more non-responders show every mechanism) and excluded share of responders
MECHANISM_SHARES = {"desert": 0.3, "excluded": 0.25, "antigen_loss": 0.2, "exhausted": 0.25}
RESPONDER_EXCLUDED = 0.2
#: ``tumour`` setting: share of responders with MHC class I intact in every clone (the others,
#: like the non-responders other than ``"antigen_loss"``, keep the simulator's clone-level
#: losses: 15 % of founding clones after the first, switched in 20 % of subclones)
RESPONDER_AP_INTACT = 0.85
_PHENOTYPE = {"desert": "desert", "excluded": "excluded", "antigen_loss": "inflamed", "exhausted": "inflamed"}


def _check_args(n_patients, cells_per_patient, setting, responder_fraction, n_genes) -> int:
    """Validate the arguments; return the number of responders."""
    n_patients = sim._check_int("n_patients", n_patients, 2)
    sim._check_int("cells_per_patient", cells_per_patient, 50)
    if setting not in SETTINGS:
        raise InvalidParameterError(
            f"setting must be 't_cells' (sorted T cells) or 'tumour' (whole tumours), got {setting!r}."
        )
    f = responder_fraction
    if isinstance(f, bool) or not isinstance(f, int | float | np.integer | np.floating) or not 0 < f < 1:
        raise InvalidParameterError(
            f"responder_fraction must be a fraction strictly between 0 and 1, got {responder_fraction!r}."
        )
    # n_genes: the same bounds as simulate_tumor (its checker, with a valid dummy cohort)
    sim._check_params(10, 1, True, n_genes, False, None, None)
    return int(np.clip(round(float(f) * n_patients), 1, n_patients - 1))


def _largest_remainder(shares: dict[str, float], n: int) -> list[str]:
    """``n`` labels in proportion to ``shares`` (Hamilton's largest-remainder allocation)."""
    keys = list(shares)
    quota = np.array([shares[k] for k in keys]) * n
    count = np.floor(quota).astype(int)
    count[np.argsort(-(quota - count), kind="stable")[: n - count.sum()]] += 1
    return [k for k, c in zip(keys, count) for _ in range(c)]


def _draw_truth(setting: str, n_patients: int, n_responders: int, rs: np.random.Generator) -> pd.DataFrame:
    """Latent per-patient truth: response, mechanism, phenotype, antigen loss and T-cell shares."""
    responder = np.zeros(n_patients, bool)
    responder[rs.permutation(n_patients)[:n_responders]] = True
    n_nr = n_patients - n_responders
    if setting == "tumour":
        mech_nr = list(rs.permutation(_largest_remainder(MECHANISM_SHARES, n_nr)))
    else:
        mech_nr = ["exhausted"] * n_nr
    excluded = rs.random(n_patients) < RESPONDER_EXCLUDED
    mechanism, phenotype = [], []
    for i in range(n_patients):
        m = "" if responder[i] else str(mech_nr.pop(0))
        mechanism.append(m)
        phenotype.append(_PHENOTYPE[m] if m else ("excluded" if excluded[i] else "inflamed"))
    group = np.where(responder, _RESP[0], _RESP[1])
    out = pd.DataFrame({"responder": responder, "response": group, "mechanism": mechanism})
    if setting == "tumour":
        out["immune_phenotype"] = phenotype
        intact = responder & (rs.random(n_patients) < RESPONDER_AP_INTACT)
        lost = out["mechanism"].to_numpy() == "antigen_loss"
        out["ap_override"] = [True if a else (False if b else None) for a, b in zip(intact, lost)]
    for col, beta in (("tpex_share_latent", TPEX_BETA), ("tex_of_rest_latent", TEX_BETA),
                      ("cd8_fraction_latent", CD8_BETA)):  # fmt: skip
        ab = np.array([beta[g] for g in group])
        out[col] = rs.beta(ab[:, 0], ab[:, 1])
    out["other_mix"] = list(rs.dirichlet(_OTHER_ALPHA, n_patients))
    if setting == "tumour":  # the CD8 fraction of a whole tumour follows its layout
        out = out.drop(columns="cd8_fraction_latent")
    return out


def _t_cell_types(row: pd.Series, n: int, rs: np.random.Generator) -> np.ndarray:
    """Fine types of one patient's ``n`` sorted T/NK cells (``t_cells`` setting)."""
    f8, s, t = row["cd8_fraction_latent"], row["tpex_share_latent"], row["tex_of_rest_latent"]
    types = [_TPEX, _TEX, _TEFF] + [sim._FINE_IDX[x] for x in _OTHER_T]
    p = np.concatenate([[f8 * s, f8 * (1 - s) * t, f8 * (1 - s) * (1 - t)], (1 - f8) * row["other_mix"]])
    return rs.choice(types, size=n, p=p / p.sum())


def _shift_to_mean(base_logit: np.ndarray, target: float) -> np.ndarray:
    """Probabilities ``expit(base_logit + d)`` whose mean is ``target`` (``d`` by bisection)."""
    from scipy.special import expit

    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if expit(base_logit + mid).mean() < target else (lo, mid)
    return expit(base_logit + 0.5 * (lo + hi))


def _recompose_cd8(L: dict, phenotype: str, tpex: float, tex: float, rs: np.random.Generator) -> None:
    """Redraw the CD8 T states of one tumour section (in place) to the patient's shares.

    Each CD8 T cell keeps its niche's odds from the simulator's compositions (Tpex-rich TLS and
    stroma, Tex-rich nests) shifted on the logit scale by one patient constant, so that the
    expected Tpex share of its CD8 T cells is ``tpex`` and the expected terminally exhausted
    share of the others is ``tex``.
    """
    ft, niche = L["ftype"], L["niche"]
    cd8 = np.flatnonzero(np.isin(ft, _CD8_IDX))
    if not len(cd8):
        return
    w = np.zeros((len(prg.NICHES), 3))
    for name, comps in sim._COMPOSITION.items():
        comp = comps.get("any") or comps.get(phenotype) or comps["desert"]
        w[sim.NICHE_IDX[name]] = [comp.get(t, 0.0) for t in _CD8]
    w = np.clip(w / np.maximum(w.sum(1, keepdims=True), 1e-12), 0.02, 0.98)[niche[cd8]]
    p_tpex = _shift_to_mean(np.log(w[:, 2] / (1 - w[:, 2])), tpex)
    p_tex = _shift_to_mean(np.log(w[:, 1] / w[:, 0]), tex)
    u = rs.random((len(cd8), 2))
    ft[cd8] = np.where(u[:, 0] < p_tpex, _TPEX, np.where(u[:, 1] < p_tex, _TEX, _TEFF))


def _realised(pat: dict, cells: dict) -> pd.DataFrame:
    """Per patient: CD8 T count, realised Tpex / Tex shares of CD8 T, CD8 fraction of cells and the
    fraction of malignant cells in clones that lost MHC class I antigen presentation.
    """
    lost = np.zeros(len(cells["clone_names"]), bool)
    for tree in pat["trees"]:
        for c in tree["clones"] if tree else []:
            lost[cells["clone_names"].index(c)] = not tree["states"][c]["antigen_presentation"]
    ftype, off = cells["ftype"], cells["off"]
    rows = []
    for p in range(len(off) - 1):
        sl = slice(off[p], off[p + 1])
        ft, mal = ftype[sl], cells["malignant"][sl]
        n8 = int(np.isin(ft, _CD8_IDX).sum())
        tpex, tex = ((float((ft == k).sum() / n8) if n8 else np.nan) for k in (_TPEX, _TEX))
        ap = float(lost[cells["clone"][sl][mal]].mean()) if mal.any() else np.nan
        rows.append((tpex, tex, n8 / len(ft), n8, len(ft), ap))
    cols = [
        "tpex_share_true",
        "tex_share_true",
        "cd8_fraction_true",
        "n_cd8",
        "n_cells",
        "ap_lost_fraction_true",
    ]
    return pd.DataFrame(rows, columns=cols)


def _patients_table(
    truth: pd.DataFrame, real: pd.DataFrame, base: pd.DataFrame, setting: str
) -> pd.DataFrame:
    """The per-patient truth table of ``uns["simulation"]["patients"]``."""
    out = pd.concat([base[["patient"]], truth.drop(columns=["other_mix"]), real], axis=1)
    if setting == "tumour":
        frac = out["ap_lost_fraction_true"].to_numpy()
        out["antigen_presentation"] = np.where(frac >= 1, "lost", np.where(frac > 0, "partial", "intact"))
        out = out.drop(columns="ap_override")
        out = pd.concat([out, base[["n_clones", "her2_amplified", "n_nests", "margin_width_um"]]], axis=1)
    else:
        out = out.drop(columns="ap_lost_fraction_true")
    out = pd.concat([out, base[["ambient_fraction", "depth_factor"]]], axis=1)
    first = ["patient", "response", "responder", "mechanism", "tpex_share_true", "cd8_fraction_true"]
    return out[first + [c for c in out.columns if c not in first]]


def _cohort_obs(obs: pd.DataFrame, setting: str) -> pd.DataFrame:
    """Add ``patient``, ``cell_type``, ``cell_type_major`` (and ``malignant``) to the simulator's obs."""
    if setting == "t_cells":  # sorted cells: no tissue, no malignant cells
        obs = obs.drop(columns=[OBS.true_malignant, OBS.true_clone, OBS.true_niche, "true_hypoxia",
                                "true_nest_depth"])  # fmt: skip
    obs.insert(1, "patient", obs[OBS.sample].copy())
    obs[OBS.cell_type] = obs[OBS.true_cell_type].cat.remove_unused_categories()
    obs[OBS.cell_type_major] = obs[OBS.true_cell_type_major].cat.remove_unused_categories()
    if setting == "tumour":
        obs[OBS.malignant] = obs[OBS.true_malignant].to_numpy()
    return obs


def _model_params(setting: str) -> dict:
    """The response model's distributions, recorded in ``params``."""
    out = {"tpex_beta": TPEX_BETA, "tex_beta": TEX_BETA}
    if setting == "t_cells":
        return {
            **out,
            "cd8_beta": CD8_BETA,
            "other_types": list(_OTHER_T),
            "other_dirichlet": list(_OTHER_ALPHA),
        }
    return {**out, "mechanism_shares": MECHANISM_SHARES, "responder_excluded": RESPONDER_EXCLUDED,
            "responder_ap_intact": RESPONDER_AP_INTACT, "spatial_units": "micron"}  # fmt: skip


def simulate_checkpoint_cohort(
    *,
    n_patients: int = 20,
    cells_per_patient: int = 400,
    setting: str = "t_cells",
    responder_fraction: float = 0.5,
    n_genes: int = 8000,
    rng: RngLike = 0,
) -> AnnData:
    """Simulate an immune-checkpoint-blockade cohort whose response to therapy is known.

    One sample per patient, each a responder or a non-responder, with counts from the model of
    :func:`~tmeatlas.datasets.simulate_tumor` (same genes, cell-type profiles, programs and
    negative-binomial counts with ambient RNA and depth variation) and a composition and
    tumour state that depend, with overlap, on the response. For checking scores that predict
    benefit from PD-1 blockade on a cohort with a known answer.

    Parameters
    ----------
    n_patients
        Number of patients (samples ``"P1"``, ``"P2"``, ...), at least 2.
    cells_per_patient
        Cells per patient (at least 50).
    setting
        ``"t_cells"``: sorted CD45+CD3+ T cells (plus a few NK cells), as the cohort of
        Sade-Feldman et al. (2018); ``"tumour"``: whole tumour sections (malignant, stromal
        and immune cells with spatial coordinates).
    responder_fraction
        Fraction of responders, strictly between 0 and 1; ``round(responder_fraction *
        n_patients)`` patients (at least one, at most ``n_patients - 1``) respond, chosen at
        random.
    n_genes
        Number of genes, as in :func:`~tmeatlas.datasets.simulate_tumor` (the same
        ``n_genes`` gives the same genes).
    rng
        Seed (``int``), :class:`numpy.random.Generator` or ``None``; the resolved seed is
        recorded in ``uns["simulation"]["params"]["seed"]``.

    Returns
    -------
    AnnData with raw counts in ``X`` (CSR, ``float32`` integers), ``var`` as from
    ``simulate_tumor`` and

    ``obs``
        ``sample`` and ``patient`` (the same), ``cell_type`` and ``cell_type_major`` (the
        simulator's fine and major labels, unused categories removed; they stand for an
        author-provided annotation and are copies of ``true_cell_type`` /
        ``true_cell_type_major``), ``malignant`` (``tumour`` only) and the simulator's
        ``true_*`` columns (``t_cells``: without the tissue columns).
    ``obsm["spatial"]``
        Microns, one section per patient (``tumour`` only).
    ``uns["simulation"]``
        ``params`` (with the resolved ``seed`` and the distributions below), ``patients``
        (one row per patient: ``patient``, ``response`` (``"responder"`` /
        ``"non-responder"``), ``responder`` (bool), ``mechanism`` of non-response (``""``
        for responders; ``"desert"``, ``"excluded"``, ``"antigen_loss"`` or ``"exhausted"``),
        ``tpex_share_true`` (progenitor-exhausted share of the sample's CD8 T cells, NaN
        without CD8 T cells), ``cd8_fraction_true`` (CD8 T cells / all cells),
        ``tex_share_true`` (terminally exhausted share of CD8 T cells), ``n_cd8``,
        ``n_cells``, the latent shares drawn (``*_latent``; ``tex_of_rest_latent`` is the
        terminally exhausted share of the non-Tpex CD8 T cells), ``tumour``: ``immune_phenotype``,
        ``antigen_presentation``, ``ap_lost_fraction_true`` and clone/layout columns; ambient
        fraction and depth factor), ``cell_types``, ``markers`` and, for ``tumour``, the clone tables of
        ``simulate_tumor``.

    Notes
    -----
    **t_cells.** Per patient, the CD8 share of the sorted cells ``f ~ Beta(12, 14)``
    (responders) or ``Beta(14, 12)`` (non-responders), the progenitor-exhausted (TCF7+,
    ``"progenitor-exhausted CD8 T"``) share of CD8 T cells ``s ~ Beta(7, 10)`` vs
    ``Beta(3, 12)`` (means 0.41 / 0.20), the terminally exhausted share of the remaining CD8 T
    cells ``t ~ Beta(5, 6)`` vs ``Beta(7, 4)`` (the rest are ``"CD8 T"`` effector-memory
    cells), and CD4 T / Treg / NK among the other cells ``~ Dirichlet(20.4, 6.6, 3)``; each
    cell's type is drawn from these shares. Responders thus have more TCF7+ CD8 T cells and
    non-responders more exhausted (CD39+TIM-3+) CD8 T cells and a somewhat larger CD8 fraction
    (Sade-Feldman et al. 2018). Every non-responder's ``mechanism`` is ``"exhausted"``. The
    laws overlap: the realised ``tpex_share_true`` separates responders from non-responders
    with a population AUROC of 0.90 (latent share 0.91), and in cohorts of 20 patients x 400
    cells (seeds 0-4) with 0.77, 0.79, 0.99, 0.98, 0.91 (mean 0.89); ``cd8_fraction_true``
    (higher in non-responders) with 0.71 in the population and 0.50-0.80 (mean 0.65) in those
    cohorts. The simulator detects ``TCF7`` in ~55 % of progenitor-exhausted cells (~1 % of
    other CD8 T cells): 15-20 % of all CD8 T cells (seeds 0-2, ~3,600 UMIs per cell), as in
    the shared Qian ovarian tumours (16 % of CD8A/B+ T cells at ~2,700 UMIs); a single-gene
    TCF7 count stays a noisy readout of the share.

    **tumour.** Whole tumour sections from the layouts of ``simulate_tumor``. Responders are
    inflamed (CD8 T cells inside the nests, interferon response with ``CD274``/PD-L1 in
    malignant and myeloid cells) or, 20 %, excluded; 85 % have MHC class I intact in every
    clone, the others keep the simulator's clone-level losses (15 % of founding clones after
    the first, switched in 20 % of subclones), as do the non-responders other than
    ``"antigen_loss"``.
    Non-responders have one mechanism, allocated in proportion 30 % desert, 25 % excluded,
    20 % antigen loss, 25 % exhausted (largest remainder, so four or more non-responders show
    all four): ``"desert"`` and ``"excluded"`` use those phenotypes (Chen & Mellman 2017);
    ``"antigen_loss"`` is inflamed with antigen presentation lost in every malignant clone
    (``HLA-A/B/C``, ``B2M``, ``TAP1/2``, ... at ~5 %; Sade-Feldman et al. 2017);
    ``"exhausted"`` is inflamed. The patients table gives ``antigen_presentation``
    (``"intact"``, ``"partial"``, ``"lost"``) and ``ap_lost_fraction_true`` (malignant cells
    in clones without it). In every patient the CD8 T states are redrawn to the patient's
    Tpex and Tex shares (the Beta laws above), keeping each niche's odds (Tpex-rich TLS and
    stroma, Tex-rich nests) shifted by one patient constant on the logit scale. Each signal
    separates the groups only partly; AUROC over seeds 0-4 (20 patients x 400 cells):
    ``tpex_share_true`` 0.66-1.00 (mean 0.89; NaN without CD8 T cells),
    ``cd8_fraction_true`` (higher in responders) 0.63-0.77 (mean 0.67), intact antigen
    presentation (``-ap_lost_fraction_true``) 0.60-0.85 (mean 0.73), interferon genes in
    malignant cells 0.61-0.73 (mean 0.68).

    Not simulated: the immune-resistance program of Jerby-Arnon et al. (2018) beyond the loss
    of antigen presentation and a low interferon response; the ``t_cells`` setting has no
    malignant or myeloid cells, so whole-tumour readouts (the T-cell-inflamed GEP of Ayers et
    al. 2017, PD-L1 on tumour cells) do not apply to it.

    Patients get ``cells_per_patient`` cells each; the cell-type labels, counts and the
    other truth follow the simulator's model, so see :func:`~tmeatlas.datasets.simulate_tumor`
    for the expression model and randomness. 20 patients x 400 cells x 8,000 genes take
    about 1-1.5 s on 2 idle cores (plus ~2 s for the first call with a given ``n_genes``),
    nearly all of it in the count kernels shared with ``simulate_tumor``.

    References
    ----------
    Sade-Feldman M. et al., *Defining T cell states associated with response to checkpoint
    immunotherapy in melanoma*, Cell 175:998 (2018). Sade-Feldman M. et al., *Resistance to
    checkpoint blockade therapy through inactivation of antigen presentation*, Nat Commun
    8:1136 (2017). Chen D.S. & Mellman I., *Elements of cancer immunity and the
    cancer-immune set point*, Nature 541:321 (2017). Miller B.C. et al., Nat Immunol 20:326
    (2019).
    """
    from anndata import AnnData

    from .._store import _append_log, h5ad_safe

    n_resp = _check_args(n_patients, cells_per_patient, setting, responder_fraction, n_genes)
    seed = resolve_seed(rng)
    logger.info(f"simulate_checkpoint_cohort: {setting}, {n_patients} patients, seed {seed}")
    truth = _draw_truth(setting, n_patients, n_resp, np.random.default_rng([seed, 0xC0407]))
    tumour = setting == "tumour"

    var, props = sim._universe(n_genes)
    gidx = {g: i for i, g in enumerate(var.index)}
    streams = spawn_seeds(seed, 3 + n_patients)
    pnames = [f"P{i + 1}" for i in range(n_patients)]
    n_per = np.full(n_patients, cells_per_patient)
    phenos = list(truth["immune_phenotype"]) if tumour else ["inflamed"] * n_patients
    is_normal = [not tumour] * n_patients  # t_cells: no malignant clones
    ap = list(truth["ap_override"]) if tumour else None
    pat = sim._simulate_patients(var, props, sim._type_profiles(n_genes), n_per, phenos, is_normal,
                                 streams[3:], antigen_presentation=ap)  # fmt: skip
    rs = np.random.default_rng([seed, 0xC0407, 1])
    for pi, L in enumerate(pat["layouts"]):
        row = truth.iloc[pi]
        if tumour:
            _recompose_cd8(L, phenos[pi], row["tpex_share_latent"], row["tex_of_rest_latent"], rs)
        else:
            L["ftype"] = _t_cell_types(row, cells_per_patient, rs)
            L["niche"] = np.full(cells_per_patient, sim.NICHE_IDX["stroma"])
    cells = sim._cell_states(pat, n_per, phenos, make_rng(int(streams[1])))
    X = sim._counts(pat["rows"], cells, props, gidx, streams[2], settings.chunk_size)

    adata = AnnData(X=X, obs=_cohort_obs(sim._obs(cells, pnames, n_per), setting), var=var.copy())
    if tumour:
        adata.obsm[OBSM.spatial] = cells["xy"]
    params = {
        "setting": setting, "n_patients": n_patients, "cells_per_patient": cells_per_patient,
        "responder_fraction": float(responder_fraction), "n_responders": n_resp, "n_genes": n_genes,
        "seed": seed, **_model_params(setting),
    }  # fmt: skip
    full = sim._truth(pat, cells, pnames, phenos, is_normal, n_per, params)
    full["patients"] = _patients_table(truth, _realised(pat, cells), full["patients"], setting)
    if not tumour:
        full = {k: full[k] for k in ("params", "patients", "cell_types", "markers")}
    adata.uns[UNS.simulation] = h5ad_safe(full)
    _append_log(adata, "datasets.simulate_checkpoint_cohort", [f"var[{k!r}]" for k in var.columns])
    logger.info(f"simulate_checkpoint_cohort: {adata.n_obs} cells x {n_genes} genes, {n_resp} responders")
    return adata
