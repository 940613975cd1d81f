"""Which malignant subpopulations are likely to survive a therapy, and why: ``tm.tl.therapy_survival``;
which combinations leave none behind: ``tm.tl.combination_cover``.

The per-cell model is an additive logistic model over evidence terms read from the expression
data and the shipped knowledge base (:func:`tmeatlas.datasets.therapies`); its terms and weights
are documented in :func:`therapy_survival`. Combinations are chosen by an exact set-cover integer
program (:func:`scipy.optimize.milp`) with a greedy fallback.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from .._core.chunks import is_streamed, row_blocks, row_subset_blocks
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError, NotApplicableError
from .._keys import OBS, SURVIVAL_PREFIX, UNS
from .._rng import RngLike, make_rng, resolve_seed, spawn_seeds
from .._settings import logger, settings
from .._store import store
from .._validation import check_obs_key, get_matrix, looks_like_counts, start, suggest_names

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["SURVIVAL_PREFIX", "TABLE_COLUMNS", "WEIGHTS", "combination_cover", "therapy_survival"]

# key names (from tmeatlas/_keys.py; per-cell columns are ``obs[SURVIVAL_PREFIX + therapy]``)
UNS_THERAPY_SURVIVAL = UNS.therapy_survival
UNS_COMBINATION_COVER = UNS.combination_cover
OBS_IMMUNE_PHENOTYPE = OBS.immune_phenotype

#: columns of ``uns[key_added]["table"]``
TABLE_COLUMNS = [
    "therapy", "sample", "group", "n_cells", "fraction_of_sample", "surviving_fraction", "ci_low", "ci_high",
    "survives", "reasons",
]  # fmt: skip
#: columns of ``uns[key_added]["immunotherapy"]``
IMMUNO_COLUMNS = [
    "sample", "n_cells", "n_malignant", "ifng_malignant", "apm_malignant", "tcell_inflamed_gep", "cd8_fraction",
    "tpex_fraction", "pdl1_fraction", "immune_phenotype", "benefit", "components",
]  # fmt: skip

#: fixed weights of the evidence terms on the logit scale (see :func:`therapy_survival`)
WEIGHTS = {
    "intercept": 0.0,  # no evidence either way: survival 0.5, not flagged
    "target_absent": 4.0,  # absent target: odds of survival x e^4 ~ 55 (dominant)
    "target_present": 4.0,  # present target: symmetric, so an uncertain target (a = 0.5) is no evidence
    "required_lost": 3.0,  # loss of a gene the drug needs (RB1 for CDK4/6 inhibitors)
    "program": 1.5,  # per SD of a sensitivity / resistance program
    "gene": 1.0,  # per SD of a sensitivity / resistance gene
    "evidence": 1.5,  # per SD of a user drug-sensitivity signature
    "ici_benefit": 2.0,  # per SD of the sample's immunotherapy benefit score
    "ici_antigen": 1.5,  # per SD of antigen-presentation loss in the cell's neighbourhood
}
#: weights of the components of the per-sample immunotherapy benefit score (sign: + helps)
BENEFIT_WEIGHTS = {
    "ifng_malignant": 1.0,
    "apm_malignant": 1.0,
    "tcell_inflamed_gep": 1.0,
    "cd8_fraction": 1.0,
    "tpex_fraction": 1.0,
    "pdl1_fraction": 1.0,
    "immune_phenotype": 2.0,
}
#: spatial immune phenotype -> benefit component (Chen & Mellman, Nature 2017)
PHENOTYPE_VALUE = {"inflamed": 1.0, "excluded": -1.0, "desert": -1.0}
#: benefit components that measure T-cell abundance rather than infiltration; in a sample whose
#: spatial immune phenotype is excluded or desert they can lower the benefit but not raise it
_TCELL_ABUNDANCE = ("tcell_inflamed_gep", "cd8_fraction", "tpex_fraction")
_NOT_INFILTRATED = ("excluded", "desert")
#: immunotherapy signatures (library names)
_IFNG, _APM, _GEP, _TPEX, _TEX = (
    "AYERS_IFNG_6", "MHC1_APM_SENBABAOGLU", "AYERS_TCELL_INFLAMED_GEP_18", "TPEX_TSUI2022", "TEX_CHU2023",
)  # fmt: skip
_CYCLE = ("TIROSH_G2M", "TIROSH_G1S")  # excluded from the neighbour graph
_Z_CLIP = 3.0
_VAR_FLOOR_REL = 0.05  # variance floor of the mixture components: (5% of the 99th percentile)^2
_ASHMAN_D = 2.0  # bimodality criterion (Ashman et al. 1994)
_MIN_COMPONENT = 0.02
_DETECT_FULL = 0.5  # unimodal target: detected in half of a neighbourhood counts as fully available
_MIX_MAX = 20_000  # cells used to fit the target mixture (an even stride beyond)
_REASON_MIN = 0.25  # smallest mean logit contribution worth a reason
_GREEDY_ABOVE = 200_000  # therapies x subpopulations above which method="auto" runs the greedy cover


# --------------------------------------------------------------------------------------------
# knowledge base
# --------------------------------------------------------------------------------------------
def _resolve_therapies(therapies) -> pd.DataFrame:
    from ..datasets._therapies import therapies as kb

    if isinstance(therapies, pd.DataFrame):
        table = kb(extra=therapies)
        names = list(pd.unique(therapies.get("name", therapies.index)))
        return table[table["name"].isin(names)].reset_index(drop=True)
    table = kb()
    if isinstance(therapies, str):
        if therapies == "all":
            return table
        therapies = [therapies]
    if not isinstance(therapies, list | tuple | pd.Index | np.ndarray) or not len(therapies):
        raise InvalidParameterError(
            "therapies must be 'all', a therapy name, a list of names of tm.datasets.therapies(), or a DataFrame "
            f"of entries (see tm.datasets.therapies(extra=...)); got {therapies!r}."
        )
    known = list(table["name"])
    lower = {n.lower(): n for n in known}
    lower.update({d.lower(): n for d, n in zip(table["display_name"], table["name"])})
    out, bad = [], []
    for t in therapies:
        if not isinstance(t, str):
            bad.append(repr(t))
        elif t in known:
            out.append(t)
        elif t.lower() in lower:
            out.append(lower[t.lower()])
        else:
            bad.append(t)
    if bad:
        hint = suggest_names(bad, lower, cutoff=0.5)
        raise InvalidParameterError(
            f"unknown therapy name(s) {bad}. "
            + (hint + " " if hint else "")
            + "See tm.datasets.therapies()['name'] for the names, or pass a DataFrame of your own entries."
        )
    return table.set_index("name").loc[list(dict.fromkeys(out))].reset_index()


def _kind(row) -> str:
    """How a therapy is judged: ``"ici"``, ``"target"`` (acts on malignant cells) or ``"tme"``."""
    if row["drug_class"] == "immunotherapy" and row["target_compartment"] != "malignant":
        return "ici"
    if row["target_compartment"] == "malignant":
        return "target"
    return "tme"


# --------------------------------------------------------------------------------------------
# expression helpers
# --------------------------------------------------------------------------------------------
def _malignant_mask(adata, key, value) -> tuple[np.ndarray, str]:
    obs = adata.obs
    if key is not None:
        check_obs_key(adata, key, what="malignant_key")
        candidates = [(key, value if value is not None else "malignant")]
    else:
        candidates = [
            (OBS.malignant, "malignant"),
            (OBS.compartment, "malignant"),
            (OBS.cell_type_major, "Malignant"),
        ]
        if value is not None:
            candidates = [(k, value) for k, _ in candidates]
    for k, v in candidates:
        if k in obs.columns:
            col = obs[k]
            if pd.api.types.is_bool_dtype(col):
                return col.to_numpy(bool), f"obs[{k!r}] is True"
            return (col.astype(str) == str(v)).to_numpy(), f"obs[{k!r}] == {v!r}"
    raise MissingResultError(
        "no malignant calls: none of obs['malignant'], obs['compartment'], obs['cell_type_major'] exists. Run "
        "`tm.tl.call_malignant(adata)` or `tm.tl.annotate(adata)` first, or name your own column with "
        "`malignant_key=` and `malignant_value=`."
    )


def _lognorm_rows(X, rows: np.ndarray, chunk: int) -> sparse.csr_matrix:
    """Log-normalised expression of ``rows`` (CSR): ``log1p`` CP10k for counts, else as stored."""
    counts = looks_like_counts(X)
    parts = []
    for block in _row_subsets(X, rows, chunk):
        Xc = sparse.csr_matrix(block, dtype=np.float64)
        if Xc.nnz and (not np.isfinite(Xc.data).all() or Xc.data.min() < 0):
            raise InvalidInputError(
                "the expression matrix has negative or non-finite values (scaled data?); pass raw counts or "
                "log-normalised expression (e.g. `layer='counts'`)."
            )
        if counts:
            lib = np.asarray(Xc.sum(axis=1)).ravel()
            scale = np.divide(1e4, lib, out=np.zeros_like(lib), where=lib > 0)
            Xc = sparse.csr_matrix(sparse.diags(scale) @ Xc)
            Xc.data = np.log1p(Xc.data)
        Xc.eliminate_zeros()
        parts.append(Xc)
    return sparse.vstack(parts, format="csr") if parts else sparse.csr_matrix((0, X.shape[1]))


def _row_subsets(X, rows: np.ndarray, chunk: int):
    """Rows ``rows`` of ``X`` in that order, ``chunk`` at a time; a streamed (Dask, backed) matrix is
    read block by block and only the wanted rows are kept."""
    if not is_streamed(X):
        for s in range(0, len(rows), chunk):
            yield X[rows[s : s + chunk]]
        return
    rows = np.asarray(rows)
    order = np.argsort(rows, kind="stable")
    blocks = row_subset_blocks(row_blocks(X, chunk), rows[order])
    got = [sparse.csr_matrix(B) for _, B in blocks if B.shape[0]]
    if not got:
        return
    M = sparse.vstack(got, format="csr")
    if not (np.diff(rows) >= 0).all():  # back to the order asked for
        M = M[np.argsort(order, kind="stable")]
    for s in range(0, M.shape[0], chunk):
        yield M[s : s + chunk]


def _smoother(E, sample_codes, exclude_cols, n_neighbors, n_comps, n_top, seed) -> sparse.csr_matrix:
    """Row-stochastic kNN averaging operator over malignant cells (self included), built per sample in
    the principal components of the ``n_top`` most variable genes (cell-cycle genes excluded)."""
    from sklearn.neighbors import NearestNeighbors
    from sklearn.utils.extmath import randomized_svd

    n = E.shape[0]
    rows, cols = [], []
    keep = np.ones(E.shape[1], bool)
    keep[exclude_cols] = False
    for code in np.unique(sample_codes):
        idx = np.flatnonzero(sample_codes == code)
        k = min(n_neighbors, len(idx))
        if k <= 1 or len(idx) < 3:
            rows.append(idx)
            cols.append(idx)
            continue
        sub = E[idx]
        mean = np.asarray(sub.mean(axis=0)).ravel()
        var = np.asarray(sub.multiply(sub).mean(axis=0)).ravel() - mean**2
        var[~keep] = -1.0
        top = np.argsort(-var, kind="stable")[: min(n_top, int((var > 0).sum()))]
        if len(top) < 2:
            rows.append(idx)
            cols.append(idx)
            continue
        D = sub[:, top].toarray() - mean[top]
        nc = max(1, min(n_comps, len(idx) - 1, len(top) - 1))
        U, S, _ = randomized_svd(D, nc, random_state=int(seed % (2**32)))
        pcs = U * S
        nn = NearestNeighbors(n_neighbors=k).fit(pcs)
        _, ind = nn.kneighbors(pcs)
        rows.append(np.repeat(idx, k))
        cols.append(idx[ind.ravel()])
    r, c = np.concatenate(rows), np.concatenate(cols)
    W = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    W.data[:] = 1.0  # duplicate (self) entries count once
    deg = np.asarray(W.sum(axis=1)).ravel()
    return sparse.csr_matrix(sparse.diags(1.0 / np.maximum(deg, 1)) @ W)


def _zscore(
    v: np.ndarray, codes: np.ndarray | None, raw: np.ndarray | None = None, w2: np.ndarray | None = None
) -> np.ndarray:
    """Z-score (clipped at +-3) over all cells, or within each sample when ``codes`` is given.

    With ``raw`` (the per-cell values before averaging) and ``w2`` (each cell's sum of squared
    averaging weights), ``v`` is a neighbour average and the z-score is shrunk by the square root of
    its reliability, :math:`\\rho = \\max(0, 1 - \\sigma^2_{null} / \\sigma^2_{obs})`: the null variance
    is what averages of randomly permuted cells would have (:math:`\\mathrm{var(raw)} \\cdot
    \\overline{\\sum_j w_{ij}^2}`). Variation no larger than cell sampling noise then scores ~0."""
    out = np.zeros(len(v))
    groups = [np.arange(len(v))] if codes is None else [np.flatnonzero(codes == c) for c in np.unique(codes)]
    for idx in groups:
        x = v[idx]
        sd = x.std()
        if not np.isfinite(sd) or sd < 1e-12:
            continue
        z = (x - x.mean()) / sd
        if raw is not None and w2 is not None:
            rho = max(0.0, 1.0 - float(raw[idx].var()) * float(w2[idx].mean()) / sd**2)
            z = z * np.sqrt(rho)
        out[idx] = z
    return np.clip(out, -_Z_CLIP, _Z_CLIP)


def _two_gaussians(x: np.ndarray) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
    """1-D two-component Gaussian mixture by EM (initialised at the 10th/90th percentiles):
    ``(bimodal, means, variances, weights)``, components sorted by mean; bimodal when Ashman's
    D >= 2 and both weights >= 2%."""
    x = np.asarray(x, float)
    if len(x) > _MIX_MAX:
        x = x[np.linspace(0, len(x) - 1, _MIX_MAX).astype(int)]
    lo, hi = np.quantile(x, [0.1, 0.9])
    if hi - lo < 1e-9:
        return False, np.array([lo, hi]), np.full(2, 1e-8), np.array([0.5, 0.5])
    floor = max(1e-8, (_VAR_FLOOR_REL * np.quantile(x, 0.99)) ** 2)
    mu = np.array([lo, hi])
    var = np.full(2, max(x.var() / 4, floor))
    w = np.array([0.5, 0.5])
    for _ in range(200):
        r = _responsibilities(x, mu, var, w)
        nk = r.sum(axis=0) + 1e-12
        mu_new = (r * x[:, None]).sum(axis=0) / nk
        var = np.maximum((r * (x[:, None] - mu_new) ** 2).sum(axis=0) / nk, floor)
        w = nk / len(x)
        done = np.abs(mu_new - mu).max() < 1e-6
        mu = mu_new
        if done:
            break
    order = np.argsort(mu)
    mu, var, w = mu[order], var[order], w[order]
    d = np.sqrt(2.0) * abs(mu[1] - mu[0]) / np.sqrt(var.sum())
    return bool(d >= _ASHMAN_D and w.min() >= _MIN_COMPONENT), mu, var, w


def _responsibilities(x: np.ndarray, mu: np.ndarray, var: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Posterior probabilities of the mixture components for each value of ``x`` (rows sum to 1)."""
    logp = -0.5 * (x[:, None] - mu) ** 2 / var - 0.5 * np.log(var) + np.log(np.maximum(w, 1e-12))
    logp -= logp.max(axis=1, keepdims=True)
    r = np.exp(logp)
    return r / r.sum(axis=1, keepdims=True)


def _on_probability(x: np.ndarray, mu: np.ndarray, var: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Posterior probability of the high ("on") component, made monotone in ``x``: 0 at or below
    the off mean, 1 at or above the on mean (a wide off component must not claim the high tail)."""
    p = _responsibilities(np.asarray(x, float), mu, var, w)[:, 1]
    return np.where(x <= mu[0], 0.0, np.where(x >= mu[1], 1.0, p))


def _gene_cols(var_names, genes) -> dict[str, int]:
    from ._signatures import _gene_columns

    genes = list(dict.fromkeys(genes))
    if not genes:
        return {}
    cols = _gene_columns(var_names, genes)
    return {g: int(c) for g, c in zip(genes, cols) if c >= 0}


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


# --------------------------------------------------------------------------------------------
# immunotherapy benefit per sample
# --------------------------------------------------------------------------------------------
def _immuno_table(adata, scores, samples, mal, E_all, cols, cell_type_key) -> pd.DataFrame:
    """Per-sample components of the immunotherapy benefit score and the score itself."""
    labels = None
    if cell_type_key is not None:
        labels = adata.obs[cell_type_key].astype(str).str.contains("CD8", case=False).to_numpy()
    cd8 = labels
    if cd8 is None:
        c8 = [cols[g] for g in ("CD8A", "CD8B") if g in cols]
        cd8 = (np.asarray((E_all[:, c8] > 0).sum(axis=1)).ravel() > 0) if c8 else np.zeros(adata.n_obs, bool)
    cd8 = cd8 & ~mal
    pdl1 = np.asarray(E_all[:, cols["CD274"]].todense()).ravel() > 0 if "CD274" in cols else None
    pheno = (
        adata.obs[OBS_IMMUNE_PHENOTYPE].astype(str).to_numpy() if OBS_IMMUNE_PHENOTYPE in adata.obs else None
    )

    def col(name):
        return scores[name].to_numpy() if name in scores.columns else None

    ifng, apm, gep, tpex, tex = (col(n) for n in (_IFNG, _APM, _GEP, _TPEX, _TEX))
    rows = []
    for s in pd.unique(samples):
        m = samples == s
        mm = m & mal
        c8 = m & cd8
        row = {"sample": s, "n_cells": int(m.sum()), "n_malignant": int(mm.sum())}
        row["ifng_malignant"] = float(np.mean(ifng[mm])) if ifng is not None and mm.any() else np.nan
        row["apm_malignant"] = float(np.mean(apm[mm])) if apm is not None and mm.any() else np.nan
        row["tcell_inflamed_gep"] = float(np.mean(gep[m])) if gep is not None else np.nan
        row["cd8_fraction"] = float(c8.sum() / m.sum())
        row["tpex_fraction"] = (
            float(np.mean(tpex[c8] > tex[c8]))
            if tpex is not None and tex is not None and c8.sum() >= 5
            else np.nan
        )
        row["pdl1_fraction"] = float(np.mean(pdl1[m])) if pdl1 is not None else np.nan
        if pheno is not None:
            vals = pd.Series(pheno[m]).value_counts()
            row["immune_phenotype"] = str(vals.index[0]) if len(vals) else ""
        else:
            row["immune_phenotype"] = ""
        rows.append(row)
    df = pd.DataFrame(rows)
    num = np.zeros(len(df))
    den = np.zeros(len(df))
    used = [[] for _ in range(len(df))]
    for comp, w in BENEFIT_WEIGHTS.items():
        if comp == "immune_phenotype":
            z = df[comp].map(PHENOTYPE_VALUE).to_numpy(dtype=float)
        else:
            v = df[comp].to_numpy(dtype=float)
            ok = np.isfinite(v)
            z = np.full(len(v), np.nan)
            if ok.sum() >= 3 and np.std(v[ok]) > 1e-12:
                z[ok] = np.clip((v[ok] - v[ok].mean()) / v[ok].std(), -_Z_CLIP, _Z_CLIP)
        for i in np.flatnonzero(np.isfinite(z)):
            zi = z[i]
            note = ""
            if comp in _TCELL_ABUNDANCE and zi > 0 and df["immune_phenotype"].iloc[i] in _NOT_INFILTRATED:
                # T cells kept out of the tumour bed do not add benefit (Chen & Mellman 2017)
                note = f" (not counted: {df['immune_phenotype'].iloc[i]})"
                zi = 0.0
            num[i] += w * zi
            den[i] += w
            used[i].append(f"{comp}={z[i]:+.1f}{note}")
    df["benefit"] = np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
    df["components"] = ["; ".join(u) if u else "no component measurable (benefit 0)" for u in used]
    return df[IMMUNO_COLUMNS]


# --------------------------------------------------------------------------------------------
# tm.tl.therapy_survival
# --------------------------------------------------------------------------------------------
def therapy_survival(
    adata: AnnData,
    *,
    therapies="all",
    groupby: str = OBS.cnv_clone,
    sample_key: str | None = None,
    layer: str | None = None,
    evidence: dict | None = None,
    malignant_key: str | None = None,
    malignant_value: str | None = None,
    cell_type_key: str | None = None,
    program_reference: str = "sample",
    n_neighbors: int = 30,
    threshold: float = 0.5,
    n_boot: int = 200,
    rng: RngLike = 0,
    n_jobs: int | None = None,
    key_added: str = UNS_THERAPY_SURVIVAL,
    copy: bool = False,
) -> AnnData | None:
    r"""Predict, per malignant subpopulation, the fraction of cells likely to survive each therapy, and why.

    **Model.** Every malignant cell :math:`i` gets, for each therapy :math:`d`, a survival
    probability :math:`s_{id} = \sigma(\ell_{id})`, :math:`\sigma(x) = 1 / (1 + e^{-x})`, with the
    logit a sum of evidence terms, each a standardised quantity times a fixed weight
    (:data:`WEIGHTS`; set from the arguments below, not fitted to outcomes: a term at one
    standard deviation moves the odds of survival by :math:`e^{w}`):

    .. math:: \ell_{id} = b_0 + T_{id} + a_{id}\,(R_{id} + P_{id} + G_{id} + U_{id}) \;(+ I_{id}).

    * :math:`b_0 = 0`: with no evidence the prediction is 0.5 and the subpopulation is not
      flagged (survival must be shown, not assumed).
    * **Neighbourhoods.** Every per-cell quantity below is first averaged over the cell's
      ``n_neighbors`` nearest malignant neighbours *of the same sample and subpopulation*
      (``groupby``; self included; 20 principal components of the 1,000 most variable genes,
      cell-cycle genes excluded; k = 30 as in scVelo's moments, Bergen et al., Nat Biotechnol
      2020; a subpopulation smaller than k is averaged whole), so that dropout in one cell is not
      read as absence and a small clone is not diluted by its neighbours' clones.
    * **Target availability** :math:`T` (therapies acting on the malignant cell: ADCs,
      antibodies, CAR T cells, T-cell engagers, endocrine drugs, kinase inhibitors; the
      knowledge base's ``targets`` with ``target_compartment == "malignant"``). The target
      expression :math:`x_i` (log-normalised; several targets combined by ``target_logic``:
      ``any`` = max, ``all`` = min), neighbour-averaged to :math:`\tilde x_i`. The on-level is
      learned from the data without labels: a two-component Gaussian mixture of :math:`\tilde x`
      over all malignant cells (EM, variances floored at (5% of the 99th percentile)^2); when it
      is bimodal (Ashman's :math:`D \ge 2`, Ashman et al., J Classif 1994) availability
      :math:`a_i` is the posterior probability of the on component (made monotone: 0 at or below
      the off mean, 1 at or above the on mean), so a clone whose target is sparsely detected
      but clearly above the off level counts as target-positive; otherwise (one population)
      :math:`a_i = \min(1, \tilde p_i / 0.5)` with :math:`\tilde p_i` the neighbourhood's
      detection rate. Then :math:`T = 4(1 - a_i) - 4 a_i`: target expression is necessary
      (Slamon et al., NEJM 2001; Bardia et al., NEJM 2021), and the weights are symmetric so that
      an uncertain target (:math:`a_i = 0.5`) is no evidence either way, as :math:`b_0` requires.
      The modifiers :math:`R, P, G, U` are multiplied by :math:`a_i`: they act only where the
      drug reaches its target (high proliferation does not sensitise a cell that lacks the ADC's
      antigen; a resistance program adds nothing to a cell the drug cannot bind). Presence is not
      sufficient: resistance evidence in target-positive cells still raises survival.
    * **Required genes lost** :math:`R = 3 \ell_i`, with
      :math:`\ell_i = 1 - \min(1, \tilde x_i / (0.5\, m))` and :math:`m` the median of
      :math:`\tilde x` over malignant cells (e.g. RB1 loss for CDK4/6 inhibitors; Finn et al.,
      Breast Cancer Res 2009).
    * **Programs** :math:`P`: signature scores of the knowledge base's ``sensitivity_programs``
      and ``resistance_programs`` (Tirosh control score, :func:`tmeatlas.tl.score_signatures`),
      neighbour-averaged and z-scored across the malignant cells of each sample
      (``program_reference="sample"``: subpopulations are compared with the rest of their own
      tumour, free of between-patient shifts; ``"all"``: across the whole dataset). A z-score
      of neighbour averages is large even when cells differ only by sampling noise, so it is
      shrunk by :math:`\sqrt{\rho}`, the reliability of the averages (empirical Bayes):
      :math:`\rho = \max(0, 1 - \sigma^2_{null} / \sigma^2_{obs})`, with :math:`\sigma^2_{obs}`
      the variance of the averages over the reference cells and :math:`\sigma^2_{null}` what
      averages of randomly permuted cells would have (per-cell variance times the mean of
      :math:`\sum_j w_{ij}^2` over the averaging weights). A program that varies no more than
      chance then contributes ~0 instead of ranking clones by noise; one with real differences
      keeps :math:`\rho \approx 1`. Clipped at :math:`\pm 3`: :math:`P = -1.5\,\overline{z}_{sens}
      + 1.5 \max(0, \max z_{res})`. Sensitivity is two-sided (low proliferation protects from
      cytotoxics: chemotherapy kills dividing cells); any one resistance mechanism suffices
      (max), a low one does not sensitise (Holohan et al., Nat Rev Cancer 2013; Sharma et al.,
      Cell 2010).
    * **Genes** :math:`G`: the same for ``sensitivity_genes`` / ``resistance_genes``
      (expression, weight 1.0), e.g. ABCB1 for taxanes.
    * **User evidence** :math:`U = -1.5\, z_{sig}`: a drug-sensitivity signature
      ``{"up": genes high in sensitive cells, "down": genes high in resistant ones}`` (e.g.
      derived from GDSC/CTRP; Iorio et al., Cell 2016; Rees et al., Nat Chem Biol 2016), scored
      and standardised like a program.
    * **Mutations** (``requires_mutation``) cannot be seen in expression: reported as a caveat
      reason, no effect on the number.
    * **Immune-checkpoint blockade** (immunotherapies whose target is on immune cells or the
      microenvironment) replaces :math:`T, R, P, G` by
      :math:`I = -2 B_s + 1.5 \max(0, -z^{APM}_i)`: the sample's immunotherapy benefit score
      :math:`B_s` and the loss of MHC-I antigen presentation in the cell's neighbourhood (B2M /
      HLA loss, Sade-Feldman et al., Nat Commun 2017). :math:`B_s` is the weighted mean of
      cohort-standardised per-sample components (each z-scored across samples when at least
      three samples have it, else left out): IFN-gamma response (Ayers et al., JCI 2017) and
      MHC-I antigen presentation (Senbabaoglu et al., Genome Biol 2016) of the malignant
      cells, the T-cell-inflamed expression profile of all cells (Ayers 2017), the CD8 T-cell
      fraction, the fraction of CD8 T cells in the progenitor-exhausted rather than terminal
      state (Miller et al., Nat Immunol 2019; Sade-Feldman et al., Cell 2018; a cell counts when its
      TPEX_TSUI2022 score exceeds its TEX_CHU2023 score), the fraction of
      cells expressing PD-L1 (CD274), and (weight 2) the spatial immune phenotype
      ``obs["immune_phenotype"]`` of :func:`tmeatlas.gr.immune_phenotype` (inflamed +1,
      excluded or desert -1; Chen & Mellman, Nature 2017). In an excluded or desert sample the
      T-cell abundance components (CD8 fraction, progenitor-exhausted fraction, T-cell-inflamed
      profile) can lower the benefit but not raise it (a positive z counts as 0, and the
      components text says so): T cells kept out of the tumour bed are not evidence of benefit
      (Chen & Mellman 2017; Mariathasan et al., Nature 2018). It is reported for every sample,
      including one with only immune cells.
    * Therapies acting on the stroma or vasculature (bevacizumab, ramucirumab) get programs
      only, with a caveat.

    **Per subpopulation** (group x sample): ``surviving_fraction`` is the mean of
    :math:`s_{id}` over its malignant cells; ``ci_low``/``ci_high`` the 2.5/97.5% percentiles of
    ``n_boot`` bootstrap means over cells (one random stream per subpopulation from
    ``rng``; the interval reflects cell sampling, not the uncertainty of the weights).
    ``survives`` is ``ci_low > threshold``. ``reasons`` lists the terms by the size of their
    mean contribution to the logit (those above 0.25), in words, then caveats.

    This is a transparent prior model from published mechanisms, not a trained predictor; it
    ranks and explains rather than forecasts response rates.

    Parameters
    ----------
    adata
        Annotated data matrix (raw counts or log-normalised expression) with malignant calls.
    therapies
        ``"all"``, a name or list of names of :func:`tmeatlas.datasets.therapies` (unknown names:
        an error with close names), or a DataFrame of entries (added to / overriding the
        knowledge base as in ``tm.datasets.therapies(extra=...)``; all of its rows are scored).
    groupby
        Column of ``adata.obs`` with the subpopulations (CNV clone, cluster, cell state); the
        per-cell averaging takes its neighbours within the cell's own subpopulation.
    sample_key
        Column of ``adata.obs`` with the sample; ``None``: one sample.
    layer
        Layer to use instead of ``adata.X``.
    evidence
        ``{therapy: {"up": genes, "down": genes}}`` drug-sensitivity signatures (term :math:`U`).
    malignant_key, malignant_value
        Column and value that mark malignant cells (default: ``obs["malignant"] == "malignant"``,
        else ``obs["compartment"] == "malignant"``, else ``obs["cell_type_major"] == "Malignant"``).
    cell_type_key
        Column with cell types; labels containing ``"CD8"`` mark CD8 T cells for the benefit
        score. Default: ``obs["cell_type"]`` when present, else CD8A/CD8B expression.
    program_reference
        ``"sample"`` (z-scores within each sample's malignant cells) or ``"all"`` (over all).
    n_neighbors
        Neighbours of the per-cell averaging, within each sample and subpopulation (1: none).
    threshold
        ``survives`` when the lower bootstrap bound of the surviving fraction exceeds this.
    n_boot
        Bootstrap resamples of each subpopulation's cells (0: no interval).
    rng
        Seed of the bootstrap, the signature control genes and the PCA (recorded in ``params``).
    n_jobs
        Threads of the signature scoring (default ``tm.settings.n_jobs``); results do not depend on it.
    key_added
        Key of ``adata.uns`` for the tables.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or a copy. Writes ``obs["survival_<therapy>"]`` (float32; NaN outside malignant
    cells) and ``uns[key_added]`` with ``table`` (:data:`TABLE_COLUMNS`, one row per therapy,
    sample and group), ``immunotherapy`` (per-sample benefit components and score),
    ``therapies`` (therapy, drug_class, model, targets, target on-level, bimodal, toxicity: the
    fraction of non-malignant cells expressing the targets, used by
    :func:`combination_cover`), ``weights`` and ``params``.
    """
    from anndata import AnnData

    adata = start(adata, copy)
    seed = resolve_seed(rng)
    for name, val, lo in (("n_boot", n_boot, 0), ("n_neighbors", n_neighbors, 1)):
        if isinstance(val, bool) or not isinstance(val, int | np.integer) or val < lo:
            raise InvalidParameterError(f"{name} must be an integer >= {lo}, got {val!r}.")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise InvalidParameterError(f"threshold must be a number in (0, 1), got {threshold!r}.")
    if program_reference not in ("all", "sample"):
        raise InvalidParameterError(
            f"program_reference must be 'all' or 'sample', got {program_reference!r}."
        )
    if not isinstance(key_added, str) or not key_added or "/" in key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string without '/', got {key_added!r}.")
    kb = _resolve_therapies(therapies)
    if evidence is not None:
        if not isinstance(evidence, dict):
            raise InvalidParameterError('evidence must be a dict {therapy: {"up": [...], "down": [...]}}.')
        extra = set(evidence) - set(kb["name"])
        if extra:
            raise InvalidParameterError(f"evidence names therapies that are not scored: {sorted(extra)}.")
    X = get_matrix(adata, layer)
    hint = "Run `tm.tl.cnv_clones(adata)` first." if groupby == OBS.cnv_clone else ""
    if not isinstance(groupby, str):
        raise InvalidParameterError(f"groupby must be the name of a column of adata.obs, got {groupby!r}.")
    check_obs_key(adata, groupby, what="groupby", hint=hint)
    if sample_key is not None:
        check_obs_key(adata, sample_key, what="sample_key")
    if cell_type_key is not None:
        check_obs_key(adata, cell_type_key, what="cell_type_key")
    elif OBS.cell_type in adata.obs.columns:
        cell_type_key = OBS.cell_type
    mal, mal_rule = _malignant_mask(adata, malignant_key, malignant_value)
    gcol = adata.obs[groupby]
    has_group = gcol.notna().to_numpy()
    if not (mal & has_group).any():
        raise NotApplicableError(
            f"groupby {groupby!r} has no malignant cells ({mal_rule}: {int(mal.sum())} cells; none of them has a "
            f"{groupby!r} label). Group by a column that labels malignant cells (e.g. 'cnv_clone' after "
            "`tm.tl.cnv_clones`), or set malignant_key=/malignant_value=."
        )
    samples = (
        adata.obs[sample_key].astype(str).to_numpy()
        if sample_key is not None
        else np.full(adata.n_obs, "all", object)
    )
    groups = gcol.astype(str).to_numpy()
    chunk = int(settings.chunk_size)
    n_threads = settings.resolve_n_jobs(n_jobs)

    # --- signatures: programs, immunotherapy, cell cycle, user evidence ----------------------
    from ..datasets._signatures import _library

    lib_names = set(_library()["name"])
    progs = {p for col in ("sensitivity_programs", "resistance_programs") for ps in kb[col] for p in ps}
    progs |= {_IFNG, _APM, _GEP, _TPEX, _TEX, *_CYCLE}
    progs = sorted(p for p in progs if p in lib_names)
    light = AnnData(
        X=X, obs=pd.DataFrame(index=adata.obs_names.copy()), var=pd.DataFrame(index=adata.var_names.copy())
    )
    scores = _score(light, progs, seed, n_threads)
    ev_scores = pd.DataFrame(index=adata.obs_names)
    if evidence:
        sigs = {}
        for t, spec in evidence.items():
            if not isinstance(spec, dict) or not set(spec) <= {"up", "down"} or not spec:
                raise InvalidParameterError(f'evidence[{t!r}] must be {{"up": [genes], "down": [genes]}}.')
            sigs[f"EVIDENCE_{t}"] = {"up": list(spec.get("up", [])), "down": list(spec.get("down", []))}
        light2 = AnnData(
            X=X,
            obs=pd.DataFrame(index=adata.obs_names.copy()),
            var=pd.DataFrame(index=adata.var_names.copy()),
        )
        ev_scores = _score(light2, sigs, seed, n_threads)
        missing = [t for t in evidence if f"EVIDENCE_{t}" not in ev_scores.columns]
        if missing:
            raise InvalidInputError(
                f"evidence signatures of {missing} have fewer than 3 of their genes in adata.var_names; check the "
                "gene identifiers (HGNC symbols or Ensembl IDs) or give longer signatures."
            )

    # --- malignant expression, neighbour averaging ------------------------------------------
    mal_idx = np.flatnonzero(mal)
    n_mal = len(mal_idx)
    E = _lognorm_rows(X, mal_idx, chunk)
    s_codes = pd.factorize(samples[mal_idx])[0]
    # neighbours come from the cell's own sample and subpopulation (unlabelled cells: their sample's)
    sg_codes = pd.factorize(pd.Series(samples[mal_idx]) + "\x00" + pd.Series(groups[mal_idx]))[0]
    from ..datasets._signatures import _library as lib

    L = lib()
    cyc_cols = list(_gene_cols(adata.var_names, L.loc[L["name"].isin(_CYCLE), "gene"]).values())
    Ssm = _smoother(E, sg_codes, np.asarray(cyc_cols, dtype=np.int64), int(n_neighbors), 20, 1000, seed)
    zcodes = s_codes if program_reference == "sample" else None

    w2 = np.asarray(Ssm.multiply(Ssm).sum(axis=1)).ravel()  # sum of squared averaging weights per cell

    def smooth_z(v):
        return _zscore(Ssm @ v, zcodes, raw=v, w2=w2)

    zprog = {p: smooth_z(scores[p].to_numpy()[mal_idx]) for p in scores.columns}
    zev = {c[len("EVIDENCE_") :]: smooth_z(ev_scores[c].to_numpy()[mal_idx]) for c in ev_scores.columns}
    all_genes = {g for col in ("targets", "required_genes", "sensitivity_genes", "resistance_genes") for gs in kb[col]
                 for g in gs}  # fmt: skip
    gcols = _gene_cols(adata.var_names, sorted(all_genes | {"CD274", "CD8A", "CD8B"}))

    def expr(g):
        return np.asarray(E[:, gcols[g]].todense()).ravel()

    # --- per-sample immunotherapy benefit ---------------------------------------------------
    from ._checkpoints import _pair_expression

    imm_genes = [g for g in ("CD274", "CD8A", "CD8B") if g in gcols]
    tgt_all = sorted({g for gs in kb["targets"] for g in gs if g in gcols})
    need = list(dict.fromkeys(imm_genes + tgt_all))
    E_all, _ = (
        _pair_expression(X, np.asarray([gcols[g] for g in need], dtype=np.int64), chunk)
        if need
        else (sparse.csr_matrix((adata.n_obs, 0)), "")
    )
    loc = {g: j for j, g in enumerate(need)}
    immuno = _immuno_table(adata, scores, samples, mal, E_all, loc, cell_type_key)
    benefit = dict(zip(immuno["sample"], immuno["benefit"]))

    # --- per therapy -------------------------------------------------------------------------
    W = WEIGHTS
    surv = {}
    contribs: dict[str, dict[str, tuple[np.ndarray, object]]] = {}
    ther_rows = []
    target_cache: dict = {}
    non_mal = ~mal
    for row in kb.to_dict("records"):
        name = row["name"]
        kind = _kind(row)
        logit = np.full(n_mal, W["intercept"])
        terms: dict[str, tuple[np.ndarray, object]] = {}
        caveats: list[str] = []
        info = {"therapy": name, "drug_class": row["drug_class"], "model": kind,
                "targets": ";".join(row["targets"]), "bimodal": False, "on_level": np.nan, "off_level": np.nan,
                "toxicity": 0.0}  # fmt: skip
        tg = [g for g in row["targets"] if g in gcols]
        gate = None
        if (
            row["targets"]
            and kind == "target"
            and len(tg) < len(row["targets"])
            and (row["target_logic"] == "all" or not tg)
        ):
            caveats.append(f"target(s) {', '.join(g for g in row['targets'] if g not in gcols)} not measured")
        if row["targets"] and tg and kind == "target":
            logic = row["target_logic"] or "any"
            key = (tuple(tg), logic)
            if key not in target_cache:
                M = np.column_stack([expr(g) for g in tg])
                x = M.max(axis=1) if logic == "any" else M.min(axis=1)
                det = (M > 0).any(axis=1) if logic == "any" else (M > 0).all(axis=1)
                xs = Ssm @ x
                bimodal, mu_t, var_t, w_t = _two_gaussians(xs)
                off, on = float(mu_t[0]), float(mu_t[1])
                if bimodal:
                    a = _on_probability(xs, mu_t, var_t, w_t)
                else:
                    a = np.minimum(1.0, (Ssm @ det.astype(float)) / _DETECT_FULL)
                Mn = np.column_stack(
                    [np.asarray(E_all[:, loc[g]].todense()).ravel()[non_mal] > 0 for g in tg]
                )
                tox = (
                    float((Mn.any(axis=1) if logic == "any" else Mn.all(axis=1)).mean())
                    if non_mal.any()
                    else 0.0
                )
                target_cache[key] = (a, det, bimodal, off, on, tox)
            a, det, bimodal, off, on, tox = target_cache[key]
            info.update(bimodal=bimodal, on_level=on if bimodal else np.nan, off_level=off if bimodal else np.nan,
                        toxicity=tox)  # fmt: skip
            t = W["target_absent"] * (1 - a) - W["target_present"] * a
            terms["target"] = (t, (" and " if logic == "all" else "/").join(tg), (det, a))
            logit += t
            gate = a
        if kind in ("target", "tme"):
            for g in row["required_genes"]:
                if g not in gcols:
                    caveats.append(f"required gene {g} not measured")
                    continue
                x = expr(g)
                xs = Ssm @ x
                m = np.median(xs)
                lost = 1 - np.minimum(1.0, xs / (0.5 * m)) if m > 0 else np.ones(n_mal)
                t = W["required_lost"] * lost
                terms[f"required:{g}"] = (t, g, x > 0)
                logit += t
            for col, sign in (("sensitivity_programs", -1), ("resistance_programs", 1)):
                avail = [p for p in row[col] if p in zprog]
                caveats += [f"program {p} not scored (too few genes)" for p in row[col] if p not in zprog]
                if not avail:
                    continue
                Z = np.column_stack([zprog[p] for p in avail])
                if sign < 0:
                    t = -W["program"] * Z.mean(axis=1)
                    terms["sens_programs"] = (t, avail, Z)
                else:
                    t = W["program"] * np.maximum(0.0, Z.max(axis=1))
                    terms["res_programs"] = (t, avail, Z)
                logit += t
            for col, sign in (("sensitivity_genes", -1), ("resistance_genes", 1)):
                avail = [g for g in row[col] if g in gcols]
                if not avail:
                    continue
                Z = np.column_stack([smooth_z(expr(g)) for g in avail])
                if sign < 0:
                    t = -W["gene"] * Z.mean(axis=1)
                    terms["sens_genes"] = (t, avail, Z)
                else:
                    t = W["gene"] * np.maximum(0.0, Z.max(axis=1))
                    terms["res_genes"] = (t, avail, Z)
                logit += t
            if kind == "tme":
                caveats.append(f"acts on the {row['target_compartment']} ({';'.join(row['targets'])}); judged by "
                               "tumour programs only")  # fmt: skip
        else:  # immune-checkpoint blockade
            b = np.array([benefit[s] for s in samples[mal_idx]])
            t = -W["ici_benefit"] * b
            terms["ici_benefit"] = (t, None, b)
            logit += t
            if _APM in zprog:
                t = W["ici_antigen"] * np.maximum(0.0, -zprog[_APM])
                terms["ici_antigen"] = (t, _APM, zprog[_APM])
                logit += t
            else:
                caveats.append(f"antigen presentation ({_APM}) not scored")
        if name in zev:
            t = -W["evidence"] * zev[name]
            terms["evidence"] = (t, "user drug-sensitivity signature", zev[name])
            logit += t
        if row["requires_mutation"]:
            caveats.append(
                f"requires {row['requires_mutation']}: not measurable from expression, check the genotype"
            )
        if gate is not None:  # modifiers act only where the drug reaches its target
            for k in [k for k in terms if k != "target"]:
                t0, lab, ex = terms[k]
                terms[k] = (t0 * gate, lab, ex)
            logit = W["intercept"] + sum(t for t, _, _ in terms.values())
        surv[name] = 1.0 / (1.0 + np.exp(-logit))
        contribs[name] = (terms, caveats)
        ther_rows.append(info)

    # --- per group and sample: bootstrap and reasons -----------------------------------------
    mal_samples, mal_groups = samples[mal_idx], groups[mal_idx]
    ok = has_group[mal_idx]
    keys = pd.DataFrame({"sample": mal_samples[ok], "group": mal_groups[ok]}).drop_duplicates()
    keys = keys.sort_values(["sample", "group"], kind="stable").reset_index(drop=True)
    seeds = spawn_seeds(seed, max(1, len(keys)))
    n_sample_mal = pd.Series(mal_samples).value_counts()
    members = []
    for k in keys.itertuples():
        members.append(np.flatnonzero(ok & (mal_samples == k.sample) & (mal_groups == k.group)))
    rows = []
    for name in kb["name"]:
        s_all = surv[name]
        terms, caveats = contribs[name]
        for j, k in enumerate(keys.itertuples()):
            idx = members[j]
            s = s_all[idx]
            mean = float(s.mean())
            lo_ci, hi_ci = _bootstrap(s, n_boot, int(seeds[j]))
            rows.append({"therapy": name, "sample": k.sample, "group": k.group, "n_cells": len(idx),
                         "fraction_of_sample": len(idx) / int(n_sample_mal[k.sample]),
                         "surviving_fraction": mean, "ci_low": lo_ci, "ci_high": hi_ci,
                         "survives": bool(lo_ci > threshold),
                         "reasons": _reasons(terms, caveats, idx, benefit.get(k.sample, 0.0), immuno, k.sample)})  # fmt: skip
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    obs = {}
    for name, s in surv.items():
        col = np.full(adata.n_obs, np.nan, dtype=np.float32)
        col[mal_idx] = s
        obs[f"{SURVIVAL_PREFIX}{name}"] = col
    params = {
        "therapies": list(kb["name"]), "groupby": groupby, "sample_key": sample_key, "layer": layer,
        "evidence": sorted(evidence) if evidence else [], "malignant": mal_rule, "cell_type_key": cell_type_key,
        "program_reference": program_reference, "n_neighbors": int(n_neighbors), "threshold": float(threshold),
        "n_boot": int(n_boot), "rng": seed, "n_jobs": n_threads, "key_added": key_added,
        "knowledge_base_version": kb.attrs.get("version", ""),
    }  # fmt: skip
    logger.info("therapy_survival: %d therapies x %d subpopulations", len(kb), len(keys))
    store(
        adata,
        tool="tl.therapy_survival",
        obs=obs,
        uns_key=key_added,
        uns={
            "table": table,
            "immunotherapy": immuno,
            "therapies": pd.DataFrame(ther_rows),
            "weights": pd.DataFrame({"term": list(WEIGHTS), "weight": list(WEIGHTS.values())}),
        },  # fmt: skip
        params=params,
    )
    return adata if copy else None


def _bootstrap(s: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile interval (2.5%, 97.5%) of the mean of ``s`` over ``n_boot`` resamples of its cells."""
    if n_boot == 0 or len(s) < 2:
        m = float(s.mean())
        return m, m
    gen = make_rng(seed)
    n = len(s)
    means = np.empty(n_boot)
    step = max(1, 2_000_000 // n)
    for b0 in range(0, n_boot, step):
        b1 = min(n_boot, b0 + step)
        idx = gen.integers(0, n, size=(b1 - b0, n))
        means[b0:b1] = s[idx].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def _hl(z: float) -> str:
    return "high" if z > 0 else "low"


def _reasons(terms, caveats, idx, benefit, immuno, sample) -> str:
    """Ranked plain-English reasons for one subpopulation (mean logit contribution > 0.25), then caveats."""
    out = []
    for key, (t, label, extra) in terms.items():
        c = float(np.mean(t[idx]))
        if abs(c) < _REASON_MIN:
            continue
        if key == "target":
            det, avail = extra[0][idx], extra[1][idx]
            on = 100 * float((avail > 0.5).mean())
            txt = (f"{label} not expressed in {100 * (1 - det.mean()):.0f}% of cells (at the on-level in {on:.0f}% "
                   "of cell neighbourhoods)" if c > 0
                   else f"{label} at the on-level (target available) in {on:.0f}% of cell neighbourhoods "
                   f"(detected in {100 * det.mean():.0f}% of cells)")  # fmt: skip
        elif key.startswith("required:"):
            txt = f"{label} (required) lost: not detected in {100 * (1 - extra[idx].mean()):.0f}% of cells"
        elif key in ("sens_programs", "sens_genes"):
            what = "sensitivity program" if key == "sens_programs" else "sensitivity gene"
            z = float(extra[idx].mean())
            txt = f"{what} {'/'.join(label)} {_hl(z)} (z={z:.1f})"
        elif key in ("res_programs", "res_genes"):
            # the term is each cell's highest resistance z (when above the sample average): say how
            # many cells have one above average, which one most often, and how high on average
            Z = np.asarray(extra[idx], dtype=float)
            top, zmax = Z.argmax(axis=1), Z.max(axis=1)
            pos = zmax > 0
            what = "resistance programs" if key == "res_programs" else "resistance genes"
            if len(label) == 1:
                txt = f"{what[:-1]} {label[0]} above the sample average in {100 * pos.mean():.0f}% of cells (mean z={float(Z[:, 0].mean()):.1f})"
            else:
                j = (
                    int(np.bincount(top[pos], minlength=len(label)).argmax())
                    if pos.any()
                    else int(np.argmax(Z.mean(axis=0)))
                )
                txt = (f"{what} above the sample average in {100 * pos.mean():.0f}% of cells (most often {label[j]}; "
                       f"mean of each cell's highest z={float(zmax[pos].mean()) if pos.any() else 0.0:.1f})")  # fmt: skip
        elif key == "ici_benefit":
            r = immuno.loc[immuno["sample"] == sample, "components"]
            comp = r.iloc[0] if len(r) else ""
            txt = f"sample's immunotherapy benefit {'low' if benefit < 0 else 'high'} (score={benefit:.1f}: {comp})"
        elif key == "ici_antigen":
            zc = extra[idx]
            # the term only adds survival, through the cells whose antigen presentation is below average
            txt = f"antigen presentation ({label}) low in {100 * float((zc < 0).mean()):.0f}% of cells (mean z={float(zc.mean()):.1f})"
        else:
            z = float(extra[idx].mean())
            txt = f"{label} {_hl(z)} (z={z:.1f})"
        out.append((abs(c), f"{txt} [{'+' if c > 0 else '-'}survival]"))
    out.sort(key=lambda x: -x[0])
    return "; ".join([t for _, t in out] + [f"caveat: {c}" for c in caveats])


# --------------------------------------------------------------------------------------------
# tm.tl.combination_cover
# --------------------------------------------------------------------------------------------
def _objective(sel, tox, weight) -> float:
    return float(len(sel) + weight * sum(tox[d] for d in sel))


def _cover_milp(killed: np.ndarray, tox: np.ndarray, max_drugs: int, weight: float, n_solutions: int):
    """Exact covers: minimise ``sum x + weight * tox . x`` s.t. ``killed @ x >= 1``, ``sum x <= max_drugs``;
    the next solutions by no-good cuts (which also exclude supersets). Returns lists of drug indices."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n_g, n_d = killed.shape
    c = 1.0 + weight * tox
    cons = [LinearConstraint(np.ones((1, n_d)), -np.inf, max_drugs)]
    if n_g:
        cons.append(LinearConstraint(killed.astype(float), 1.0, np.inf))
    sols = []
    for _ in range(n_solutions):
        res = milp(c, constraints=cons, integrality=np.ones(n_d), bounds=Bounds(0, 1))
        if res.status != 0 or res.x is None:
            break
        sel = sorted(np.flatnonzero(res.x > 0.5).tolist())
        sols.append(sel)
        row = np.zeros((1, n_d))
        row[0, sel] = 1.0
        cons.append(LinearConstraint(row, -np.inf, len(sel) - 1))
        if not sel:
            break
    return sols


def _cover_greedy(killed: np.ndarray, tox: np.ndarray, max_drugs: int, weight: float, n_solutions: int):
    """Greedy set cover (Chvatal 1979): repeatedly add the therapy with most newly covered
    subpopulations per unit cost; further solutions start from each of the next-best first choices."""
    n_g, n_d = killed.shape
    cost = 1.0 + weight * tox

    def run(first):
        sel = [first] if first is not None else []
        covered = killed[:, sel].any(axis=1) if sel else np.zeros(n_g, bool)
        while not covered.all() and len(sel) < max_drugs:
            gain = (killed & ~covered[:, None]).sum(axis=0) / cost
            gain[sel] = -1
            d = int(np.argmax(gain))
            if gain[d] <= 0:
                break
            sel.append(d)
            covered |= killed[:, d]
        return sorted(sel) if covered.all() else None

    first_gain = killed.sum(axis=0) / cost
    sols = []
    for d in [None, *np.argsort(-first_gain, kind="stable").tolist()]:
        s = run(d)
        if s is not None and s not in sols:
            sols.append(s)
        if len(sols) >= n_solutions:
            break
    sols.sort(key=lambda s: _objective(s, tox, weight))
    return sols


def combination_cover(
    adata: AnnData,
    *,
    therapies=None,
    samples: str | list[str] | None = None,
    max_drugs: int = 3,
    min_fraction: float = 0.05,
    toxicity_weight: float = 1.0,
    method: str = "auto",
    key: str = UNS_THERAPY_SURVIVAL,
    n_solutions: int = 5,
    key_added: str = UNS_COMBINATION_COVER,
    copy: bool = False,
) -> AnnData | None:
    r"""Smallest therapy combinations that leave no malignant subpopulation surviving, sparing normal cells.

    From the flags of :func:`therapy_survival` (``uns[key]["table"]``): a subpopulation
    :math:`g` (group within a sample) with at least ``min_fraction`` of its sample's malignant
    cells is *killed* by therapy :math:`d` when it is not flagged as surviving it. A combination
    must kill every such subpopulation. With binary :math:`x_d` (therapy chosen) the exact
    set-cover integer program (Karp 1972; solved by HiGHS through :func:`scipy.optimize.milp`) is

    .. math:: \min_x \sum_d x_d + \lambda \sum_d \tau_d x_d \quad \text{s.t.}\quad
              \sum_d k_{gd} x_d \ge 1 \;\forall g, \quad \sum_d x_d \le \text{max\_drugs},

    with :math:`\tau_d` the toxicity of therapy :math:`d`: the fraction of non-malignant cells
    of the data expressing its targets (recorded by :func:`therapy_survival`; 0 for therapies
    without malignant-cell targets) and :math:`\lambda` = ``toxicity_weight`` (below 1, toxicity
    breaks ties between combinations of equal size; above, it can prefer more, safer drugs).
    The next solutions come from no-good cuts :math:`\sum_{d \in S} x_d \le |S| - 1` on each
    solution :math:`S` found (which also exclude its supersets). ``method="greedy"`` (or
    ``"auto"`` when therapies x subpopulations exceeds 200,000) uses the greedy set cover
    (Chvatal, Math Oper Res 1979; within a factor :math:`\ln n` of the optimum). A
    subpopulation that no candidate therapy kills is reported in ``uncoverable`` and left out
    of the constraints (never silently dropped).

    Parameters
    ----------
    adata
        Annotated data matrix with the result of :func:`therapy_survival`.
    therapies
        Candidate therapies (names in the survival table); ``None``: all of them.
    samples
        Cover only the subpopulations of these samples (one name or a list): one patient's
        combination. ``None``: every subpopulation of every sample with one combination.
    max_drugs
        Most therapies in a combination.
    min_fraction
        Subpopulations below this fraction of their sample's malignant cells are ignored.
    toxicity_weight
        :math:`\lambda`, the cost of toxicity relative to one more drug.
    method
        ``"auto"``, ``"milp"`` (exact) or ``"greedy"``.
    key
        Key of ``adata.uns`` with the result of :func:`therapy_survival`.
    n_solutions
        Number of combinations to report, best first.
    key_added
        Key of ``adata.uns`` for the result.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or a copy. Writes ``uns[key_added]`` with ``solutions`` (rank, therapies joined by
    ``" + "``, n_drugs, toxicity, objective, n_covered, n_subpopulations, coverage),
    ``coverage`` (rank, sample, group, fraction_of_sample, killed_by, covered: one row per
    solution and subpopulation), ``uncoverable`` (subpopulations no candidate kills), ``method``
    and ``params``. No solution within ``max_drugs``: empty ``solutions`` and a warning.
    """
    adata = start(adata, copy)
    for name, val, lo in (("max_drugs", max_drugs, 1), ("n_solutions", n_solutions, 1)):
        if isinstance(val, bool) or not isinstance(val, int | np.integer) or val < lo:
            raise InvalidParameterError(f"{name} must be an integer >= {lo}, got {val!r}.")
    for name, val in (("min_fraction", min_fraction), ("toxicity_weight", toxicity_weight)):
        if isinstance(val, bool) or not isinstance(val, int | float) or not np.isfinite(val) or val < 0:
            raise InvalidParameterError(f"{name} must be a non-negative number, got {val!r}.")
    if method not in ("auto", "milp", "greedy"):
        raise InvalidParameterError(f"method must be 'auto', 'milp' or 'greedy', got {method!r}.")
    res = adata.uns.get(key)
    if not isinstance(res, dict) or "table" not in res:
        raise MissingResultError(
            f"no therapy survival result in adata.uns[{key!r}]; run `tm.tl.therapy_survival` first."
        )
    table = pd.DataFrame(res["table"])
    table["survives"] = table["survives"].astype(str).isin(["True", "true", "1"])
    if samples is not None:
        wanted = [samples] if isinstance(samples, str) else [str(x) for x in samples]
        have = set(table["sample"].astype(str))
        missing = [x for x in wanted if x not in have]
        if missing or not wanted:
            raise InvalidParameterError(
                f"samples {missing or wanted} are not in the survival table ({sorted(have)})."
            )
        table = table[table["sample"].astype(str).isin(wanted)]
    names = list(pd.unique(table["therapy"]))
    if therapies is not None:
        cand = [therapies] if isinstance(therapies, str) else list(therapies)
        bad = [t for t in cand if t not in names]
        if bad:
            raise InvalidParameterError(f"therapies {bad} are not in the survival table (scored: {names}).")
        names = list(dict.fromkeys(cand))
    tox_tab = pd.DataFrame(res.get("therapies", pd.DataFrame({"therapy": names, "toxicity": 0.0})))
    tox_map = dict(zip(tox_tab["therapy"], pd.to_numeric(tox_tab["toxicity"], errors="coerce").fillna(0.0)))
    tox = np.array([float(tox_map.get(t, 0.0)) for t in names])
    table = table[table["therapy"].isin(names)]
    table["fraction_of_sample"] = pd.to_numeric(table["fraction_of_sample"])
    sub = table[["sample", "group", "fraction_of_sample"]].drop_duplicates(["sample", "group"])
    sub = sub[sub["fraction_of_sample"] >= min_fraction].reset_index(drop=True)
    piv = table.pivot_table(index=["sample", "group"], columns="therapy", values="survives", aggfunc="first")
    piv = piv.reindex(index=pd.MultiIndex.from_frame(sub[["sample", "group"]]), columns=names)
    killed = ~(piv.fillna(True).to_numpy(bool))
    can = killed.any(axis=1)
    uncoverable = sub.loc[~can].reset_index(drop=True)
    if len(uncoverable):
        warnings.warn(
            f"{len(uncoverable)} subpopulation(s) survive every candidate therapy and cannot be covered; see "
            f"adata.uns[{key_added!r}]['uncoverable'].",
            UserWarning,
            stacklevel=2,
        )
    K = killed[can]
    used = method if method != "auto" else ("greedy" if K.size > _GREEDY_ABOVE else "milp")
    solver = _cover_milp if used == "milp" else _cover_greedy
    sols = solver(K, tox, int(max_drugs), float(toxicity_weight), int(n_solutions)) if len(names) else []
    if not sols:
        warnings.warn(f"no combination of at most {max_drugs} therapies covers every coverable subpopulation.",
                      UserWarning, stacklevel=2)  # fmt: skip
    srows, crows = [], []
    covsub = sub.loc[can].reset_index(drop=True)
    for r, sel in enumerate(sols, 1):
        cov = K[:, sel].any(axis=1) if sel else np.ones(len(K), bool)
        srows.append({"rank": r, "therapies": " + ".join(names[d] for d in sel), "n_drugs": len(sel),
                      "toxicity": float(tox[sel].sum()), "objective": _objective(sel, tox, toxicity_weight),
                      "n_covered": int(cov.sum()), "n_subpopulations": len(sub),
                      "coverage": float(cov.sum() / max(1, len(sub)))})  # fmt: skip
        for g in range(len(covsub)):
            crows.append({"rank": r, "sample": covsub.loc[g, "sample"], "group": covsub.loc[g, "group"],
                          "fraction_of_sample": float(covsub.loc[g, "fraction_of_sample"]),
                          "killed_by": " + ".join(names[d] for d in sel if K[g, d]), "covered": bool(cov[g])})  # fmt: skip
        for g in range(len(uncoverable)):
            crows.append({"rank": r, "sample": uncoverable.loc[g, "sample"], "group": uncoverable.loc[g, "group"],
                          "fraction_of_sample": float(uncoverable.loc[g, "fraction_of_sample"]), "killed_by": "",
                          "covered": False})  # fmt: skip
    solutions = pd.DataFrame(srows, columns=["rank", "therapies", "n_drugs", "toxicity", "objective", "n_covered",
                                             "n_subpopulations", "coverage"])  # fmt: skip
    coverage = pd.DataFrame(
        crows, columns=["rank", "sample", "group", "fraction_of_sample", "killed_by", "covered"]
    )
    params = {"therapies": names, "samples": samples, "max_drugs": int(max_drugs), "min_fraction": float(min_fraction),
              "toxicity_weight": float(toxicity_weight), "method": method, "key": key,
              "n_solutions": int(n_solutions), "key_added": key_added}  # fmt: skip
    store(adata, tool="tl.combination_cover", uns_key=key_added,
          uns={"solutions": solutions, "coverage": coverage, "uncoverable": uncoverable, "method": used},
          params=params)  # fmt: skip
    return adata if copy else None
