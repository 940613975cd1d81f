"""Which malignant subpopulations are likely to survive a therapy, and why: ``tm.tl.therapy_survival``.

The per-cell model is an additive logistic model over evidence terms read from the expression
data and the shipped knowledge base (:func:`tmeatlas.datasets.therapies`); its terms and weights
are documented in :func:`therapy_survival`. The combinations that leave no subpopulation behind are
chosen from its table by :func:`tmeatlas.tl.combination_cover` (:mod:`tmeatlas.tl._combination`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from .._core.chunks import row_block
from .._core.expression import looks_like_counts
from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, NotApplicableError
from .._keys import OBS, SURVIVAL_PREFIX, UNS
from .._rng import RngLike, make_rng, resolve_seed, spawn_seeds
from .._settings import logger, settings
from .._store import store
from .._validation import check_int, check_obs_key, check_one_of, get_matrix, start
from ._annotate_protein import looks_like_protein
from ._cells import gene_cols as _gene_cols
from ._cells import malignant_mask as _malignant_mask
from ._immunotherapy import _APM, _GENES, IMMUNE_ONLY, _score, benefit_tables
from ._therapy import _kind, _lognorm_rows, _resolve_therapies, _smoother, _zscore

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["SURVIVAL_PREFIX", "TABLE_COLUMNS", "WEIGHTS", "therapy_survival"]

# key names (from tmeatlas/_keys.py; per-cell columns are ``obs[SURVIVAL_PREFIX + therapy]``)
UNS_THERAPY_SURVIVAL = UNS.therapy_survival

#: columns of ``uns[key_added]["table"]``
TABLE_COLUMNS = [
    "therapy", "sample", "group", "n_cells", "fraction_of_sample", "surviving_fraction", "ci_low", "ci_high",
    "call", "survives", "reasons",
]  # fmt: skip
#: columns of ``uns[key_added]["therapies"]``
THERAPY_COLUMNS = ["therapy", "drug_class", "model", "targets", "target_level", "bimodal", "on_level", "off_level",
                   "background", "toxicity"]  # fmt: skip
#: the group of the immunotherapy row of a sample without malignant cells
_NO_MALIGNANT = "(no malignant cells)"

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
    "ici_antigen": 1.5,  # per SD of antigen presentation in the cell's neighbourhood (two-sided)
}
_CYCLE = ("TIROSH_G2M", "TIROSH_G1S")  # excluded from the neighbour graph
_VAR_FLOOR_REL = 0.05  # variance floor of the mixture components: (5% of the 99th percentile)^2
_ASHMAN_D = 2.0  # bimodality criterion (Ashman et al. 1994)
_MIN_COMPONENT = 0.02
_LEVEL_STEP = 4.0  # levels of the detection model: background; expressed (4x); overexpressed (4x expressed)
_MIN_LINEAGE = 20  # fewest non-malignant cells of a lineage whose rate can serve as the background
_AMPLIFIED = 2.0  # on/off fold change a target needs to count as overexpressed (HER2/CEP17 >= 2.0, ASCO/CAP)
_SURE = 0.8  # availability at or above this: present (likelihood ratio 4:1); at or below 1 - this: absent
_DECIDE = float(np.log(4.0))  # mean logit a call needs beyond the threshold's (odds 4:1, as _SURE)
_MIX_MAX = 20_000  # cells used to fit the target mixture (an even stride beyond)
_REASON_MIN = 0.25  # smallest mean logit contribution worth a reason


# --------------------------------------------------------------------------------------------
# target mixture
# --------------------------------------------------------------------------------------------
def _two_gaussians(x: np.ndarray) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
    """1-D two-component Gaussian mixture by EM (initialised at the 10th/90th percentiles):
    ``(bimodal, means, variances, weights)``, components sorted by mean; bimodal when Ashman's
    D >= 2 and both weights >= 2%.
    """
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
    the off mean, 1 at or above the on mean (a wide off component must not claim the high tail).
    """
    p = _responsibilities(np.asarray(x, float), mu, var, w)[:, 1]
    return np.where(x <= mu[0], 0.0, np.where(x >= mu[1], 1.0, p))


# --------------------------------------------------------------------------------------------
# evidence terms
# --------------------------------------------------------------------------------------------
class _Ctx:
    """What every therapy's terms read: malignant cells, their neighbourhoods, scores and counts."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _target_counts(X, cols: np.ndarray, chunk: int) -> tuple[sparse.csc_matrix, np.ndarray]:
    """Stored values of the genes ``cols`` for every cell (CSC) and every cell's library size (row sum)."""
    parts, libs = [], []
    for s in range(0, X.shape[0], chunk):
        Xc = sparse.csr_matrix(row_block(X, s, min(X.shape[0], s + chunk)), dtype=np.float64)
        libs.append(np.asarray(Xc.sum(axis=1)).ravel())
        parts.append(sparse.csr_matrix(Xc[:, cols]))
    C = sparse.vstack(parts, format="csc") if parts else sparse.csc_matrix((0, len(cols)))
    return C, np.concatenate(libs) if libs else np.zeros(0)


def _background(C: sparse.csc_matrix, lib: np.ndarray, non_mal: np.ndarray, lineage) -> np.ndarray:
    """Per gene, the median over the non-malignant lineages (>= 20 cells; all non-malignant cells pooled
    when none has 20) of its rate (counts per count): the level of a cell that does not express the gene
    (ambient RNA, mis-mapping), robust to the few lineages that do express it. Floored at half a count
    over all non-malignant cells; NaN without any.
    """
    if not non_mal.any() or lib[non_mal].sum() <= 0:
        return np.full(C.shape[1], np.nan)
    groups = [non_mal]
    if lineage is not None:
        groups = [non_mal & (lineage == g) for g in pd.unique(lineage[non_mal])]
        groups = [m for m in groups if m.sum() >= _MIN_LINEAGE] or [non_mal]
    rates = np.vstack([np.asarray(C[m].sum(axis=0)).ravel() / max(lib[m].sum(), 1.0) for m in groups])
    return np.maximum(np.median(rates, axis=0), 0.5 / lib[non_mal].sum())


def _llr_availability(C: np.ndarray, L: np.ndarray, off: float, on: float) -> np.ndarray:
    """Posterior (even prior) that pooled counts ``C`` over ``L`` counted molecules come from rate ``on``
    rather than ``off`` (Poisson likelihood ratio): ~0.5 where the depth cannot tell them apart.
    """
    llr = C * np.log(on / off) - L * (on - off)
    return 1.0 / (1.0 + np.exp(-np.clip(llr, -50, 50)))


def _pooled(ctx, v: np.ndarray) -> np.ndarray:
    """Sum of ``v`` over each malignant cell's neighbourhood (the averaging operator times its size)."""
    return (ctx.Ssm @ v) / np.maximum(ctx.w2, 1e-12)


def _level_ratio(ctx, genes, xs, mu, var, w) -> float:
    """Fold change between the on and off cells of a bimodal target (pooled counts per molecule when the
    input is counts, else the component means back on the linear scale).
    """
    on = _on_probability(xs, mu, var, w) > 0.5
    if ctx.counts and on.any() and (~on).any():
        c = np.sum([ctx.count(g) for g in genes], axis=0)
        hi, lo = c[on].sum() / max(ctx.lib[on].sum(), 1.0), c[~on].sum() / max(ctx.lib[~on].sum(), 1.0)
        return float(hi / max(lo, 0.5 / max(ctx.lib[~on].sum(), 1.0)))
    return float(np.expm1(mu[1]) / max(np.expm1(mu[0]), 1e-12))


def _availability(ctx, genes: list[str], logic: str, level: str):
    """Per malignant cell: probability its neighbourhood has the target, detection, and how it was judged.

    ``level``: ``"any"`` (expressed above the ambient level), ``"high"`` (overexpressed: only a
    bimodal population whose on level is at least twice its off level can show it; otherwise
    presence is capped at 0.5, undetermined, while absence is still tested), ``"required"`` (a gene
    normal cells express: lost when below a sixteenth of its level in the non-malignant cells).
    """
    M = np.column_stack([ctx.expr(g) for g in genes])
    x = M.max(axis=1) if logic == "any" else M.min(axis=1)
    det = (M > 0).any(axis=1) if logic == "any" else (M > 0).all(axis=1)
    xs = ctx.Ssm @ x
    bimodal, mu, var, w = _two_gaussians(xs)
    info = {"bimodal": bimodal, "on_level": float(mu[1]) if bimodal else np.nan,
            "off_level": float(mu[0]) if bimodal else np.nan, "target_level": level, "background": np.nan}  # fmt: skip
    if level == "high" and bimodal and _level_ratio(ctx, genes, xs, mu, var, w) >= _AMPLIFIED:
        return _on_probability(xs, mu, var, w), det, info, "mixture"
    b = np.array([ctx.background.get(g, np.nan) for g in genes])
    if not ctx.counts or not np.isfinite(b).all():
        why = (
            "input is not raw counts"
            if not ctx.counts
            else "no non-malignant cells to measure the background"
        )
        return np.full(len(x), 0.5), det, info, f"untestable: {why}"
    info["background"] = float(b.max() * 1e4)
    L = _pooled(ctx, ctx.lib)
    # (not expressed, expressed) rates: the ambient level and 4x it; for required genes, a sixteenth and
    # a quarter of the level in non-malignant cells (which express them)
    k = _LEVEL_STEP
    rates = [(bg / k**2, bg / k) if level == "required" else (bg, k * bg) for bg in b]
    A = np.column_stack(
        [_llr_availability(_pooled(ctx, ctx.count(g)), L, off, on) for g, (off, on) in zip(genes, rates)]
    )
    a = A.max(axis=1) if logic == "any" else A.min(axis=1)
    if level == "high":  # expression is shown, overexpression is not: presence stays undetermined
        return np.minimum(a, 0.5), det, info, "depth (overexpression not testable without two levels)"
    return a, det, info, "depth"


def _target_term(row, ctx, terms, caveats, info):
    """Target availability term; returns the gate (availability) or None when the therapy has no target."""
    tg = [g for g in row["targets"] if g in ctx.gcols]
    missing = [g for g in row["targets"] if g not in ctx.gcols]
    if missing and (row["target_logic"] == "all" or not tg):
        caveats.append(f"target(s) {', '.join(missing)} not measured")
    if not tg:
        return None
    logic = row["target_logic"] or "any"
    level = row.get("target_level") or "any"
    key = (tuple(tg), logic, level)
    if key not in ctx.target_cache:
        a, det, tinfo, how = _availability(ctx, tg, logic, level)
        Mn = np.column_stack([ctx.all_detected(g)[ctx.non_mal] for g in tg])
        tinfo["toxicity"] = (
            float((Mn.any(axis=1) if logic == "any" else Mn.all(axis=1)).mean()) if ctx.non_mal.any() else 0.0
        )
        ctx.target_cache[key] = (a, det, tinfo, how)
    a, det, tinfo, how = ctx.target_cache[key]
    info.update(tinfo)
    if how.startswith("untestable"):
        caveats.append(f"target {'/'.join(tg)} {how}: absence not tested")
    t = WEIGHTS["target_absent"] * (1 - a) - WEIGHTS["target_present"] * a
    terms["target"] = (t, (" and " if logic == "all" else "/").join(tg), (det, a, level, how))
    return a


def _centred(v: np.ndarray, codes: np.ndarray | None) -> np.ndarray:
    """``v`` minus its mean over the reference (each sample's malignant cells, or all)."""
    out = v.astype(float).copy()
    groups = [np.arange(len(v))] if codes is None else [np.flatnonzero(codes == c) for c in np.unique(codes)]
    for idx in groups:
        out[idx] -= out[idx].mean()
    return out


def _modifier_terms(row, ctx, terms, caveats, kind):
    """Required genes, sensitivity / resistance programs and genes (all relative to the reference)."""
    W = WEIGHTS
    for g in row["required_genes"]:
        if g not in ctx.gcols:
            caveats.append(f"required gene {g} not measured")
            continue
        a, det, _, how = _availability(ctx, [g], "any", "required")
        if how.startswith("untestable"):
            caveats.append(f"required gene {g} {how}: loss not tested")
        terms[f"required:{g}"] = (W["required_lost"] * np.maximum(0.0, 1.0 - 2.0 * a), g, (det, a))
    for col, sign, key, weight, source in (
        ("sensitivity_programs", -1, "sens_programs", W["program"], ctx.zprog),
        ("resistance_programs", 1, "res_programs", W["program"], ctx.zprog),
        ("sensitivity_genes", -1, "sens_genes", W["gene"], None),
        ("resistance_genes", 1, "res_genes", W["gene"], None),
    ):
        if source is not None:
            avail = [p for p in row[col] if p in source]
            caveats += [f"program {p} not scored (too few genes)" for p in row[col] if p not in source]
            Z = np.column_stack([source[p] for p in avail]) if avail else None
        else:
            avail = [g for g in row[col] if g in ctx.gcols]
            Z = np.column_stack([ctx.smooth_z(ctx.expr(g)) for g in avail]) if avail else None
        if Z is None:
            continue
        if sign < 0:  # sensitivity: the mean z, two-sided
            terms[key] = (-weight * Z.mean(axis=1), avail, Z)
        else:  # resistance: any one mechanism (the highest z), centred on the reference so an average cell is 0
            terms[key] = (weight * _centred(Z.max(axis=1), ctx.zcodes), avail, Z)
    if kind == "tme":
        caveats.append(f"acts on the {row['target_compartment']} ({';'.join(row['targets'])}); judged by tumour "
                       "programs only")  # fmt: skip


def _ici_terms(ctx, terms, caveats):
    """Immune-checkpoint blockade: the sample's benefit and antigen presentation around the cell."""
    b = np.array([ctx.benefit.get(s, np.nan) for s in ctx.samples[ctx.mal_idx]])
    if np.isnan(b).any():
        caveats.append("immunotherapy benefit undetermined in some samples (see uns[...]['immunotherapy'])")
    terms["ici_benefit"] = (-WEIGHTS["ici_benefit"] * np.nan_to_num(b), None, b)
    if _APM in ctx.zprog:
        terms["ici_antigen"] = (-WEIGHTS["ici_antigen"] * ctx.zprog[_APM], _APM, ctx.zprog[_APM])
    else:
        caveats.append(f"antigen presentation ({_APM}) not scored")


def _therapy_logit(row, ctx):
    """Per-cell logit of survival, its terms (contribution, label, evidence) and caveats for one therapy."""
    kind = _kind(row)
    terms: dict[str, tuple] = {}
    caveats: list[str] = []
    info = {"therapy": row["name"], "drug_class": row["drug_class"], "model": kind, "targets": ";".join(row["targets"]),
            "target_level": row.get("target_level", ""), "bimodal": False, "on_level": np.nan, "off_level": np.nan,
            "background": np.nan, "toxicity": 0.0}  # fmt: skip
    gate = _target_term(row, ctx, terms, caveats, info) if kind == "target" and row["targets"] else None
    if kind in ("target", "tme"):
        _modifier_terms(row, ctx, terms, caveats, kind)
    else:
        _ici_terms(ctx, terms, caveats)
    if row["name"] in ctx.zev:
        terms["evidence"] = (-WEIGHTS["evidence"] * ctx.zev[row["name"]], "user drug-sensitivity signature",
                             ctx.zev[row["name"]])  # fmt: skip
    if row["requires_mutation"]:
        caveats.append(
            f"requires {row['requires_mutation']}: not measurable from expression, check the genotype"
        )
    if gate is not None:  # modifiers act only where the drug reaches its target
        terms = {
            k: ((t * gate, lab, ex) if k != "target" else (t, lab, ex)) for k, (t, lab, ex) in terms.items()
        }
    logit = WEIGHTS["intercept"] + sum((t for t, _, _ in terms.values()), np.zeros(ctx.n_mal))
    return logit, terms, caveats, info


# --------------------------------------------------------------------------------------------
# per subpopulation: interval, call, reasons
# --------------------------------------------------------------------------------------------
def _bootstrap(s: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """95% interval of the fraction of a group's cells that survive: cells resampled with replacement,
    each survives with its probability, and the fraction given the survivors drawn from its Jeffreys
    posterior Beta(k + 1/2, n - k + 1/2), so a finite group never gets a zero-width interval.
    """
    if n_boot == 0 or len(s) == 0:
        m = float(s.mean()) if len(s) else np.nan
        return m, m
    gen = make_rng(seed)
    n = len(s)
    vals = np.empty(n_boot)
    step = max(1, 2_000_000 // n)
    for b0 in range(0, n_boot, step):
        b1 = min(n_boot, b0 + step)
        idx = gen.integers(0, n, size=(b1 - b0, n))
        k = (gen.random((b1 - b0, n)) < s[idx]).sum(axis=1)
        vals[b0:b1] = gen.beta(k + 0.5, n - k + 0.5)
    lo, hi = np.quantile(vals, [0.025, 0.975])
    return float(lo), float(hi)


def _call(mean_logit: float, lo: float, hi: float, threshold: float, measured: bool) -> tuple[str, str]:
    """``survives`` / ``responds`` when the interval excludes the threshold and the evidence is strong
    enough (mean logit at least 1 from the threshold's), else ``undetermined`` with the reason.
    """
    if not measured:
        return (
            "undetermined",
            "undetermined: no measured evidence moves the prediction for this subpopulation",
        )
    gap = mean_logit - float(np.log(threshold / (1 - threshold)))
    if lo > threshold and gap >= _DECIDE:
        return "survives", f"survives: {100 * lo:.0f}-{100 * hi:.0f}% of cells predicted to survive"
    if hi < threshold and gap <= -_DECIDE:
        return "responds", f"responds: {100 * lo:.0f}-{100 * hi:.0f}% of cells predicted to survive"
    why = (f"the interval {100 * lo:.0f}-{100 * hi:.0f}% contains {100 * threshold:.0f}%" if lo <= threshold <= hi
           else f"the evidence is weak (mean logit {gap:+.2f} from the threshold's; deciding needs +-{_DECIDE:g})")  # fmt: skip
    return "undetermined", f"undetermined: {why}"


def _hl(z: float) -> str:
    """``"high"`` for a positive z, else ``"low"``."""
    return "high" if z > 0 else "low"


def _target_text(label, extra, idx) -> str:
    """The reason text of the target term over the cells ``idx``: present / absent / undetermined shares."""
    det, avail, how = extra[0][idx], extra[1][idx], extra[3]
    pres, absent = 100 * float((avail >= _SURE).mean()), 100 * float((avail <= 1 - _SURE).mean())
    basis = {"mixture": "on vs off level of the data's two expression levels, at least twofold apart",
             "depth": "expression vs the ambient level, at each neighbourhood's depth",
             "depth (overexpression not testable without two levels)": "expression vs the ambient level at each "
             "neighbourhood's depth; overexpression needs two expression levels in the data"}.get(how, how)  # fmt: skip
    return (f"{label} present in {pres:.0f}% of cell neighbourhoods, absent in {absent:.0f}%, undetermined in "
            f"{100 - pres - absent:.0f}% ({basis}; detected in {100 * float(det.mean()):.0f}% of cells)")  # fmt: skip


def _resistance_text(key, label, Z, c) -> str:
    """The reason text of a resistance term: the most frequent top mechanism and its mean highest z."""
    top, zmax = Z.argmax(axis=1), Z.max(axis=1)
    what = "resistance program" if key == "res_programs" else "resistance gene"
    j = int(np.bincount(top, minlength=len(label)).argmax())
    where = "above" if c > 0 else "below"
    most = f" (most often {label[j]})" if len(label) > 1 else f" {label[0]}"
    return f"{what}{'s' if len(label) > 1 else ''}{most} {where} the reference average (mean highest z={float(zmax.mean()):.1f})"


def _term_text(key, label, extra, idx, c, benefit, immuno, sample) -> str:
    """The reason text of one evidence term over the cells ``idx``."""
    if key == "target":
        return _target_text(label, extra, idx)
    if key.startswith("required:"):
        det, avail = extra[0][idx], extra[1][idx]
        return (f"{label} (required) absent in {100 * float((avail <= 1 - _SURE).mean()):.0f}% of cell neighbourhoods "
                f"(detected in {100 * float(det.mean()):.0f}% of cells)")  # fmt: skip
    if key in ("sens_programs", "sens_genes"):
        z = float(extra[idx].mean())
        return f"{'sensitivity program' if key == 'sens_programs' else 'sensitivity gene'} {'/'.join(label)} {_hl(z)} (z={z:.1f})"
    if key in ("res_programs", "res_genes"):
        return _resistance_text(key, label, np.asarray(extra[idx], dtype=float), c)
    if key == "ici_benefit":
        r = immuno.loc[immuno["sample"] == sample, "components"]
        return f"sample's immunotherapy benefit {'low' if benefit < 0 else 'high'} (score={benefit:+.2f}: {r.iloc[0] if len(r) else ''})"
    if key == "ici_antigen":
        z = float(extra[idx].mean())
        return f"antigen presentation ({label}) {_hl(z)} (mean z={z:.1f})"
    z = float(extra[idx].mean())
    return f"{label} {_hl(z)} (z={z:.1f})"


def _reasons(terms, caveats, idx, benefit, immuno, sample) -> str:
    """Terms by the size of their mean logit contribution (those above 0.25, else the largest), then caveats."""
    contrib = [
        (abs(float(np.mean(t[idx]))), float(np.mean(t[idx])), key, lab, ex)
        for key, (t, lab, ex) in terms.items()
    ]
    contrib.sort(key=lambda x: -x[0])
    shown = [x for x in contrib if x[0] >= _REASON_MIN or x[2] == "target"] or contrib[
        :1
    ]  # the target always
    out = []
    for size, c, key, lab, ex in shown:
        txt = _term_text(key, lab, ex, idx, c, benefit, immuno, sample)
        effect = (
            "no effect"
            if size < 1e-9
            else f"{'+' if c > 0 else '-'}survival{'' if size >= _REASON_MIN else ', small'}"
        )
        out.append(f"{txt} [{effect}]")
    if not contrib:
        out.append("no evidence term applies to this therapy here")
    return "; ".join(out + [f"caveat: {c}" for c in caveats])


# --------------------------------------------------------------------------------------------
# tm.tl.therapy_survival
# --------------------------------------------------------------------------------------------
@doc_params("copy", "layer")
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
    logit a sum of evidence terms, each a quantity relative to a stated reference times a fixed
    weight (:data:`WEIGHTS`; not fitted to outcomes: a term at one standard deviation moves the
    odds of survival by :math:`e^{w}`):

    .. math:: \ell_{id} = b_0 + T_{id} + a_{id}\,(R_{id} + P_{id} + G_{id} + U_{id}) \;(+ I_{id}).

    * :math:`b_0 = 0`: with no evidence the prediction is 0.5 and the row is "undetermined"
      (survival must be shown, not assumed). Every term is zero for an average cell of its
      reference, so no term leans one way by construction.
    * **Neighbourhoods.** Every per-cell quantity below is first averaged (counts: pooled) over
      the cell's ``n_neighbors`` nearest malignant neighbours *of the same sample and
      subpopulation* (``groupby``; self included; 20 principal components of the 1,000 most
      variable genes, cell-cycle genes excluded; k = 30 as in scVelo's moments, Bergen et al.,
      Nat Biotechnol 2020; a subpopulation smaller than k is pooled whole).
    * **Target availability** :math:`T` (therapies acting on the malignant cell; the knowledge
      base's ``targets``, several combined by ``target_logic``: ``any`` = max, ``all`` = min).
      Absence is called only when the depth allows it (a detection model given library size):
      a neighbourhood's pooled target counts :math:`C` over its pooled library :math:`L` are
      compared, by the Poisson likelihood ratio, between a rate at which the gene is expressed
      and one at which it is not; :math:`a_i` is the posterior (even prior). The "not
      expressed" rate :math:`\beta` is the gene's rate in the non-malignant lineages (median over
      the ``obs["cell_type_major"]`` lineages with >= 20 cells: ambient RNA, robust to the few
      lineages that express it); the "expressed" rate is :math:`\epsilon = 4\beta` (a fourfold
      step per level: two log2 units). The knowledge base's ``target_level`` sets
      the two rates: ``any`` (any expression qualifies, e.g. the HER2-low trial of trastuzumab
      deruxtecan, Modi et al., NEJM 2022): :math:`\beta` vs :math:`\epsilon`; ``high``
      (overexpression or amplification, e.g. trastuzumab): the data's own on and off levels when
      the neighbourhood-averaged expression is bimodal (two-component Gaussian mixture, Ashman's
      :math:`D \ge 2`, Ashman et al., J Classif 1994) with the on cells' pooled rate at least
      twice the off cells' (the amplification criterion of in-situ hybridisation, HER2/CEP17
      :math:`\ge 2.0`; Wolff et al., J Clin Oncol 36:2105, 2018); otherwise overexpression cannot be shown (expression above ambient is not
      amplification), so presence stays undetermined (:math:`a_i \le 0.5`) and only absence is
      tested. At shallow depth both rates
      fit and :math:`a_i \approx 0.5`: dropout is not read as absence. Without raw counts (or
      without non-malignant cells) absence is not tested (:math:`a_i = 0.5` unless bimodal; a
      caveat says so). Then :math:`T = 4(1 - a_i) - 4 a_i` (target expression is necessary:
      Slamon et al., NEJM 2001; Bardia et al., NEJM 2021). The modifiers :math:`R, P, G, U` are
      multiplied by :math:`a_i`: they act only where the drug reaches its target.
    * **Required genes lost** :math:`R = 3 \max(0, 1 - 2 a_i)` with :math:`a_i` the same test
      between a sixteenth and a quarter of the gene's level in the non-malignant cells (which
      express such genes): only a loss the depth can show adds survival (e.g. RB1 for CDK4/6
      inhibitors; Finn et al., Breast Cancer Res 2009).
    * **Programs** :math:`P`: signature scores of the knowledge base's ``sensitivity_programs``
      and ``resistance_programs`` (Tirosh control score, :func:`tmeatlas.tl.score_signatures`),
      neighbour-averaged and z-scored across the reference, the malignant cells of each sample
      (``program_reference="sample"``) or of the whole dataset (``"all"``), and shrunk by
      :math:`\sqrt{\rho}`, the reliability of the averages (empirical Bayes:
      :math:`\rho = \max(0, 1 - \sigma^2_{null} / \sigma^2_{obs})` with :math:`\sigma^2_{null}`
      what averages of permuted cells would have), clipped at :math:`\pm 3`:
      :math:`P = -1.5\,\overline{z}_{sens} + 1.5\,(m_i - \overline{m})`, with
      :math:`m_i = \max z_{res}` (any one resistance mechanism suffices; Holohan et al., Nat Rev
      Cancer 2013) centred on its reference mean :math:`\overline{m}`, so resistance, like
      sensitivity, is two-sided and zero for an average cell.
    * **Genes** :math:`G`: the same for ``sensitivity_genes`` / ``resistance_genes`` (weight 1).
    * **User evidence** :math:`U = -1.5\, z_{sig}`: a drug-sensitivity signature
      ``{"up": genes high in sensitive cells, "down": genes high in resistant ones}`` (e.g.
      derived from GDSC/CTRP; Iorio et al., Cell 2016), scored and standardised like a program.
    * **Mutations** (``requires_mutation``) cannot be seen in expression: a caveat only.
    * **Immune-checkpoint blockade** (immunotherapies whose target is on immune cells) replaces
      :math:`T, R, P, G` by :math:`I = -2 B_s - 1.5\, z^{APM}_i`: the sample's benefit
      :math:`B_s` of :func:`tmeatlas.tl.immunotherapy_benefit` (published biomarkers, each in
      the population and setting it was validated in; relative to the cohort; undetermined
      counts 0 with a caveat) and MHC-I antigen presentation around the cell (B2M / HLA loss,
      Sade-Feldman et al., Nat Commun 2017), two-sided. Samples without malignant cells (sorted
      immune cells) get one immunotherapy row each, from :math:`B_s` alone (group
      ``"(no malignant cells)"``, ``fraction_of_sample`` NaN so :func:`tmeatlas.tl.combination_cover`
      ignores it); their other therapies are listed in ``skipped`` with the reason.
    * Therapies acting on the stroma or vasculature get programs only, with a caveat.

    **Per subpopulation** (group x sample): ``surviving_fraction`` is the mean of
    :math:`s_{id}` over its cells; ``ci_low``/``ci_high`` a 95% interval of the fraction of its
    cells that survive (``n_boot`` resamples of the cells, each surviving with its probability,
    the fraction drawn from its Jeffreys posterior: a finite group never gets a zero-width
    interval). ``call`` is ``"survives"`` / ``"responds"`` when the interval lies above / below
    ``threshold`` and the mean logit is at least :math:`\log 4` from the threshold's (odds 4:1), else
    ``"undetermined"`` (``surviving_fraction`` NaN when no evidence was measured at all);
    ``survives`` is ``call == "survives"``. ``reasons`` starts with the call and why, then the
    terms by the size of their mean contribution (those above 0.25; else the largest one), then
    caveats: never empty.

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
        per-cell averaging takes its neighbours within the cell's own subpopulation. Not needed
        when no cell is malignant and only immunotherapies are asked for.
    sample_key
        Column of ``adata.obs`` with the sample; ``None``: one sample.
    {layer}
    evidence
        ``{therapy: {"up": genes, "down": genes}}`` drug-sensitivity signatures (term :math:`U`).
    malignant_key, malignant_value
        Column and value that mark malignant cells (default: ``obs["malignant"] == "malignant"``,
        else ``obs["compartment"] == "malignant"``, else ``obs["cell_type_major"] == "Malignant"``).
    cell_type_key
        Column with cell types for the benefit (CD8 T and myeloid cells); default
        ``obs["cell_type"]`` when present, else marker genes.
    program_reference
        ``"sample"`` (z-scores within each sample's malignant cells) or ``"all"`` (over all).
    n_neighbors
        Neighbours of the per-cell averaging, within each sample and subpopulation (1: none).
    threshold
        Survival probability the interval must exclude for a call.
    n_boot
        Resamples of each subpopulation's cells (0: no interval, every row undetermined).
    rng
        Seed of the bootstrap, the signature control genes and the PCA (recorded in ``params``).
    n_jobs
        Threads of the signature scoring (default ``tm.settings.n_jobs``); results do not depend on it.
    key_added
        Key of ``adata.uns`` for the tables.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obs["survival_<therapy>"]`` (float32; NaN outside malignant
    cells) and ``uns[key_added]`` with ``table`` (:data:`TABLE_COLUMNS`, one row per therapy,
    sample and group), ``immunotherapy`` and ``immunotherapy_components`` (the per-sample benefit
    and its components, as :func:`tmeatlas.get.immunotherapy_benefit`), ``skipped`` (therapy,
    sample, reason), ``therapies`` (therapy, drug_class, model, targets, target_level, mixture
    levels, background, toxicity: the fraction of non-malignant cells expressing the targets,
    used by :func:`tmeatlas.tl.combination_cover`), ``weights`` and ``params``.
    """
    adata = start(adata, copy)
    seed = resolve_seed(rng)
    kb = _check_survival_args(adata, therapies, evidence, n_boot, n_neighbors, threshold, program_reference,
                              key_added, sample_key, cell_type_key)  # fmt: skip
    X = get_matrix(adata, layer)
    if cell_type_key is None and OBS.cell_type in adata.obs.columns:
        cell_type_key = OBS.cell_type
    mal, mal_rule = _malignant_mask(adata, malignant_key, malignant_value)
    has_group, groups = _groups(adata, groupby, mal, mal_rule, kb)
    samples = (
        adata.obs[sample_key].astype(str).to_numpy()
        if sample_key is not None
        else np.full(adata.n_obs, "all", object)
    )
    chunk, n_threads = int(settings.chunk_size), settings.resolve_n_jobs(n_jobs)
    scores, ev_scores = _all_scores(adata, X, kb, evidence, seed, n_threads)
    counts = _gene_counts(adata, X, kb, chunk)  # one pass for the targets and the benefit's genes
    detected = {
        g: np.asarray((counts[0][:, j] > 0).todense()).ravel() for g, j in counts[2].items() if g in _GENES
    }
    if looks_like_protein(X, adata.var_names):  # intensities are never zero: the benefit reads its own calls
        detected = None
    imm, imm_comp = benefit_tables(adata, X, samples=samples, mal=mal, cell_type_key=cell_type_key, seed=seed,
                                   n_jobs=n_threads, n_boot=n_boot, chunk=chunk, scores=scores, detected=detected)  # fmt: skip
    surv, contribs, ther_rows = {}, {}, []
    ctx = None
    if (mal & has_group).any():
        ctx = _context(adata, X, kb, mal, samples, groups, scores, ev_scores, program_reference, n_neighbors, seed,
                       chunk, counts)  # fmt: skip
        ctx.benefit = dict(zip(imm["sample"], imm["benefit"]))
        for row in kb.to_dict("records"):
            logit, terms, caveats, info = _therapy_logit(row, ctx)
            surv[row["name"]] = (1.0 / (1.0 + np.exp(-logit)), logit)
            contribs[row["name"]] = (terms, caveats)
            ther_rows.append(info)
    table = _survival_table(kb, ctx, surv, contribs, has_group, threshold, n_boot, seed, imm)
    extra, skipped = _immune_only_rows(kb, imm, samples, mal, threshold)
    table = pd.concat([table, extra], ignore_index=True) if len(extra) else table
    if table.empty:
        why = "; ".join(sorted(set(skipped["reason"]))) or "no subpopulation to judge"
        raise NotApplicableError(
            f"no therapy can be judged: {why}. Call malignant cells first (tm.tl.call_malignant)."
        )
    num = ["n_cells", "fraction_of_sample", "surviving_fraction", "ci_low", "ci_high"]
    table[num] = table[num].apply(pd.to_numeric).astype({"n_cells": int})
    table["survives"] = table["survives"].astype(bool)
    obs = {}
    for name, (s, _) in surv.items():
        col = np.full(adata.n_obs, np.nan, dtype=np.float32)
        col[ctx.mal_idx] = s
        obs[f"{SURVIVAL_PREFIX}{name}"] = col
    params = {
        "therapies": list(kb["name"]), "groupby": groupby, "sample_key": sample_key, "layer": layer,
        "evidence": sorted(evidence) if evidence else [], "malignant": mal_rule, "cell_type_key": cell_type_key,
        "program_reference": program_reference, "n_neighbors": int(n_neighbors), "threshold": float(threshold),
        "n_boot": int(n_boot), "rng": seed, "n_jobs": n_threads, "key_added": key_added,
        "knowledge_base_version": kb.attrs.get("version", ""),
    }  # fmt: skip
    logger.info("therapy_survival: %d therapies, %d rows", len(kb), len(table))
    store(adata, tool="tl.therapy_survival", obs=obs, uns_key=key_added,
          uns={"table": table, "immunotherapy": imm, "immunotherapy_components": imm_comp, "skipped": skipped,
               "therapies": pd.DataFrame(ther_rows, columns=THERAPY_COLUMNS),
               "weights": pd.DataFrame({"term": list(WEIGHTS), "weight": list(WEIGHTS.values())})},
          params=params)  # fmt: skip
    return adata if copy else None


def _check_survival_args(adata, therapies, evidence, n_boot, n_neighbors, threshold, program_reference, key_added,
                         sample_key, cell_type_key) -> pd.DataFrame:  # fmt: skip
    """Every argument checked before any work; returns the therapies' knowledge-base rows."""
    check_int("n_boot", n_boot, 0)
    check_int("n_neighbors", n_neighbors, 1)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise InvalidParameterError(f"threshold must be a number in (0, 1), got {threshold!r}.")
    check_one_of("program_reference", program_reference, ("all", "sample"))
    if not isinstance(key_added, str) or not key_added or "/" in key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string without '/', got {key_added!r}.")
    kb = _resolve_therapies(therapies)
    if evidence is not None:
        if not isinstance(evidence, dict):
            raise InvalidParameterError('evidence must be a dict {therapy: {"up": [...], "down": [...]}}.')
        extra = set(evidence) - set(kb["name"])
        if extra:
            raise InvalidParameterError(f"evidence names therapies that are not scored: {sorted(extra)}.")
        for t, spec in evidence.items():
            if not isinstance(spec, dict) or not set(spec) <= {"up", "down"} or not spec:
                raise InvalidParameterError(f'evidence[{t!r}] must be {{"up": [genes], "down": [genes]}}.')
    if sample_key is not None:
        check_obs_key(adata, sample_key, what="sample_key")
    if cell_type_key is not None:
        check_obs_key(adata, cell_type_key, what="cell_type_key")
    return kb


def _groups(adata, groupby, mal, mal_rule, kb) -> tuple[np.ndarray, np.ndarray]:
    """Which cells have a subpopulation label, and the labels; immune-only data need none."""
    if not isinstance(groupby, str):
        raise InvalidParameterError(f"groupby must be the name of a column of adata.obs, got {groupby!r}.")
    has_ici = any(_kind(r) == "ici" for r in kb.to_dict("records"))
    if groupby not in adata.obs.columns and not mal.any() and has_ici:
        return np.zeros(adata.n_obs, bool), np.full(adata.n_obs, "", object)
    hint = "Run `tm.tl.cnv_clones(adata)` first." if groupby == OBS.cnv_clone else ""
    check_obs_key(adata, groupby, what="groupby", hint=hint)
    gcol = adata.obs[groupby]
    has_group = gcol.notna().to_numpy()
    if not (mal & has_group).any() and not has_ici:
        raise NotApplicableError(
            f"groupby {groupby!r} has no malignant cells ({mal_rule}: {int(mal.sum())} cells; none of them has a "
            f"{groupby!r} label). Group by a column that labels malignant cells (e.g. 'cnv_clone' after "
            "`tm.tl.cnv_clones`), set malignant_key=/malignant_value=, or ask for immunotherapies only (they are "
            "judged per sample, also on immune cells alone)."
        )
    return has_group, gcol.astype(str).to_numpy()


def _all_scores(adata, X, kb, evidence, seed, n_threads) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Program scores of every cell (knowledge-base programs, benefit signatures, cell cycle) and user evidence."""
    from ..datasets._signatures import _library
    from ._immunotherapy import _SIGNATURES, _light

    lib_names = set(_library()["name"])
    progs = {p for col in ("sensitivity_programs", "resistance_programs") for ps in kb[col] for p in ps}
    progs = sorted(p for p in progs | {_APM, *_SIGNATURES, *_CYCLE} if p in lib_names)
    scores = _score(_light(adata, X), progs, seed, n_threads)
    ev_scores = pd.DataFrame(index=adata.obs_names)
    if evidence:
        sigs = {
            f"EVIDENCE_{t}": {"up": list(s.get("up", [])), "down": list(s.get("down", []))}
            for t, s in evidence.items()
        }
        ev_scores = _score(_light(adata, X), sigs, seed, n_threads)
        missing = [t for t in evidence if f"EVIDENCE_{t}" not in ev_scores.columns]
        if missing:
            raise InvalidInputError(
                f"evidence signatures of {missing} have fewer than 3 of their genes in adata.var_names; check the "
                "gene identifiers (HGNC symbols or Ensembl IDs) or give longer signatures."
            )
    return scores, ev_scores


def _gene_counts(adata, X, kb, chunk) -> tuple[sparse.csc_matrix, np.ndarray, dict[str, int], dict[str, int]]:
    """Stored values of the knowledge base's targets and required genes and of the benefit's marker genes
    for every cell, in one pass over the matrix: (values, library sizes, gene -> column of the values,
    gene -> column of ``adata``).
    """
    genes = {g for col in ("targets", "required_genes", "sensitivity_genes", "resistance_genes") for gs in kb[col]
             for g in gs}  # fmt: skip
    gcols = _gene_cols(adata.var_names, sorted(genes | set(_GENES)))
    need = sorted({g for col in ("targets", "required_genes") for gs in kb[col] for g in gs} | set(_GENES))
    need = [g for g in need if g in gcols]
    C, lib = _target_counts(X, np.asarray([gcols[g] for g in need], dtype=np.int64), chunk)
    return C, lib, {g: j for j, g in enumerate(need)}, gcols


def _context(
    adata, X, kb, mal, samples, groups, scores, ev_scores, program_reference, n_neighbors, seed, chunk, counts
):
    """Malignant expression, neighbourhoods, standardised programs and target counts for every therapy."""
    from ..datasets._signatures import _library

    mal_idx = np.flatnonzero(mal)
    E = _lognorm_rows(X, mal_idx, chunk)
    s_codes = pd.factorize(samples[mal_idx])[0]
    sg_codes = pd.factorize(pd.Series(samples[mal_idx]) + "\x00" + pd.Series(groups[mal_idx]))[0]
    L = _library()
    cyc_cols = list(_gene_cols(adata.var_names, L.loc[L["name"].isin(_CYCLE), "gene"]).values())
    Ssm = _smoother(E, sg_codes, np.asarray(cyc_cols, dtype=np.int64), int(n_neighbors), 20, 1000, seed)
    zcodes = s_codes if program_reference == "sample" else None
    w2 = np.asarray(Ssm.multiply(Ssm).sum(axis=1)).ravel()  # sum of squared averaging weights per cell
    C, lib, loc, gcols = counts
    need = list(loc)
    non_mal = ~mal
    lineage = (
        adata.obs[OBS.cell_type_major].astype(str).to_numpy() if OBS.cell_type_major in adata.obs else None
    )
    counts = looks_like_counts(X)
    bg = _background(C, lib, non_mal, lineage) if counts else np.full(len(need), np.nan)
    ctx = _Ctx(mal_idx=mal_idx, n_mal=len(mal_idx), samples=samples, Ssm=Ssm, w2=w2, zcodes=zcodes, gcols=gcols,
               counts=counts, lib=lib[mal_idx], non_mal=non_mal, background=dict(zip(need, bg)), target_cache={})  # fmt: skip
    ctx.expr = lambda g: np.asarray(E[:, gcols[g]].todense()).ravel()
    ctx.count = lambda g: np.asarray(C[:, loc[g]].todense()).ravel()[mal_idx]
    ctx.all_detected = lambda g: np.asarray(C[:, loc[g]].todense()).ravel() > 0
    ctx.smooth_z = lambda v: _zscore(Ssm @ v, zcodes, raw=v, w2=w2)
    ctx.zprog = {p: ctx.smooth_z(scores[p].to_numpy()[mal_idx]) for p in scores.columns}
    ctx.zev = {
        c[len("EVIDENCE_") :]: ctx.smooth_z(ev_scores[c].to_numpy()[mal_idx]) for c in ev_scores.columns
    }
    ctx.groups = groups[mal_idx]
    return ctx


def _survival_table(kb, ctx, surv, contribs, has_group, threshold, n_boot, seed, imm) -> pd.DataFrame:
    """One row per therapy, sample and labelled group of malignant cells: fraction, interval, call, reasons."""
    if ctx is None:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    mal_samples, mal_groups = ctx.samples[ctx.mal_idx], ctx.groups
    ok = has_group[ctx.mal_idx]
    keys = pd.DataFrame({"sample": mal_samples[ok], "group": mal_groups[ok]}).drop_duplicates()
    keys = keys.sort_values(["sample", "group"], kind="stable").reset_index(drop=True)
    seeds = spawn_seeds(seed, max(1, len(keys)))
    n_sample_mal = pd.Series(mal_samples).value_counts()
    members = [
        np.flatnonzero(ok & (mal_samples == k.sample) & (mal_groups == k.group)) for k in keys.itertuples()
    ]
    rows = []
    for name in kb["name"]:
        s_all, logit = surv[name]
        terms, caveats = contribs[name]
        for j, k in enumerate(keys.itertuples()):
            idx = members[j]
            measured = any(np.abs(t[idx]).max() > 1e-9 for t, _, _ in terms.values())
            lo, hi = _bootstrap(s_all[idx], n_boot, int(seeds[j]))
            call, why = _call(float(logit[idx].mean()), lo, hi, threshold, measured)
            mean = float(s_all[idx].mean()) if measured else np.nan
            if not measured:
                lo = hi = np.nan
            text = _reasons(terms, caveats, idx, ctx.benefit.get(k.sample, np.nan), imm, k.sample)
            rows.append({"therapy": name, "sample": k.sample, "group": k.group, "n_cells": len(idx),
                         "fraction_of_sample": len(idx) / int(n_sample_mal[k.sample]), "surviving_fraction": mean,
                         "ci_low": lo, "ci_high": hi, "call": call, "survives": call == "survives",
                         "reasons": "; ".join(x for x in (why, text) if x)})  # fmt: skip
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _immune_only_rows(kb, imm, samples, mal, threshold) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples without malignant cells: one row per immunotherapy from the sample's benefit; the rest skipped."""
    rows, skipped = [], []
    for s in pd.unique(samples):
        if mal[samples == s].any():
            continue
        r = imm[imm["sample"] == s].iloc[0]
        b, lo_b, hi_b = float(r["benefit"]), float(r["ci_low"]), float(r["ci_high"])
        for row in kb.to_dict("records"):
            if (
                r["setting"] != IMMUNE_ONLY
            ):  # a tumour whose malignant cells were not called: nothing to judge
                skipped.append({"therapy": row["name"], "sample": s, "reason": "no malignant cell called in this "
                                "whole-tumour sample (calls absent or uncertain)"})  # fmt: skip
                continue
            if _kind(row) != "ici":
                skipped.append(
                    {"therapy": row["name"], "sample": s, "reason": "no malignant cells in this sample"}
                )
                continue
            w = WEIGHTS["ici_benefit"]
            measured = bool(np.isfinite(b))
            frac, lo, hi = (float(1 / (1 + np.exp(w * v))) for v in (b, hi_b, lo_b))
            call, why = _call(-w * b if measured else 0.0, lo, hi, threshold, measured)
            text = (f"sample's immunotherapy benefit {b:+.2f} (95% interval {lo_b:+.2f} to {hi_b:+.2f}) relative to "
                    f"the cohort, {r['setting']}: {r['components']}" if measured
                    else f"sample's immunotherapy benefit undetermined ({r['not_counted']})")  # fmt: skip
            rows.append({"therapy": row["name"], "sample": s, "group": _NO_MALIGNANT, "n_cells": int(r["n_cells"]),
                         "fraction_of_sample": np.nan, "surviving_fraction": frac if measured else np.nan,
                         "ci_low": lo if measured else np.nan, "ci_high": hi if measured else np.nan, "call": call,
                         "survives": call == "survives", "reasons": f"{why}; {text}"})  # fmt: skip
    return pd.DataFrame(rows, columns=TABLE_COLUMNS), pd.DataFrame(
        skipped, columns=["therapy", "sample", "reason"]
    )
