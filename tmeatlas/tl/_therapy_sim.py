"""What a therapy schedule might do to a tumour's subpopulations over time: ``tm.tl.simulate_therapy``.

A deterministic Lotka–Volterra model of competing malignant subpopulations whose drug sensitivity
comes from :func:`tmeatlas.tl.therapy_survival`, treated continuously at the maximum tolerated dose
or adaptively (Zhang et al., Nat Commun 2017). It is a model with stated assumptions, meant to show
how competition and a cost of resistance shape the response, not to forecast a patient's course.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, MissingResultError, NotApplicableError
from .._keys import UNS
from .._settings import logger
from .._store import store
from .._validation import check_int, start, suggest_names

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["SCHEDULES", "simulate_therapy"]

# key names (to move into tmeatlas/_keys.py: ``UNS.therapy_simulation``)
UNS_THERAPY_SURVIVAL = UNS.therapy_survival
UNS_THERAPY_SIMULATION = UNS.therapy_simulation

#: the dosing schedules that :func:`simulate_therapy` knows
SCHEDULES = ("continuous", "adaptive")
#: columns of ``uns[key_added]["trajectory"]``
TRAJECTORY_COLUMNS = ["sample", "schedule", "time", "group", "size", "burden", "dose"]
#: columns of ``uns[key_added]["summary"]``
SUMMARY_COLUMNS = [
    "sample", "schedule", "progressed", "time_to_progression", "dominant_at_progression", "burden_at_end",
    "dominant_at_end", "time_on_treatment", "cumulative_dose", "n_cycles",
]  # fmt: skip
#: columns of ``uns[key_added]["composition"]``
COMPOSITION_COLUMNS = [
    "sample", "schedule", "group", "surviving_fraction", "growth_rate", "kill_rate", "initial_size",
    "size_at_progression", "final_size", "final_fraction",
]  # fmt: skip
#: columns of ``uns[key_added]["treatment"]``
TREATMENT_COLUMNS = ["sample", "schedule", "start", "end", "dose"]

_RTOL, _ATOL = 1e-8, 1e-10  # on log sizes
_MAX_SWITCHES = 10_000


# --------------------------------------------------------------------------------------------
# numeric core
# --------------------------------------------------------------------------------------------
def _simulate(
    n0: np.ndarray,
    r: np.ndarray,
    k: np.ndarray,
    A: np.ndarray,
    K: float,
    *,
    adaptive: bool,
    dose: float,
    lower: float,
    upper: float,
    progression: float,
    t_max: float,
    n_points: int,
) -> dict:
    r"""Integrate one schedule for one sample.

    Sizes are integrated on the log scale (:math:`x_i = \ln N_i`, positive by construction);
    subpopulations of initial size 0 stay at 0. Returns times, sizes (time x group), the dose in
    effect from each time on, the treatment segments and the time to progression (NaN if none).
    """
    from scipy.integrate import solve_ivp

    n_groups = len(n0)
    alive = n0 > 0
    ra, ka, Aa = r[alive], k[alive], A[np.ix_(alive, alive)]
    B0 = float(n0.sum())

    def rhs(t, x, d):
        return ra * (1.0 - (Aa @ np.exp(x)) / K) - d * ka

    def burden(x):
        return float(np.exp(x).sum())

    def ev_progress(t, x, d):
        return burden(x) - progression * B0

    ev_progress.direction = 1.0

    def ev_low(t, x, d):  # treatment on: stop when the burden falls to lower x initial
        return burden(x) - lower * B0

    ev_low.terminal, ev_low.direction = True, -1.0

    def ev_high(t, x, d):  # treatment off: resume when the burden regrows to upper x initial
        return burden(x) - upper * B0

    ev_high.terminal, ev_high.direction = True, 1.0

    t, x, on = 0.0, np.log(n0[alive]), True
    ttp, x_ttp = np.nan, None
    segments = []  # (start, end, dose, dense solution)
    while t < t_max:
        d = dose if on else 0.0
        events = [ev_progress] + ([ev_low if on else ev_high] if adaptive else [])
        sol = solve_ivp(rhs, (t, t_max), x, args=(d,), method="RK45", events=events, dense_output=True,
                        rtol=_RTOL, atol=_ATOL)  # fmt: skip
        if sol.status < 0:  # pragma: no cover - the right-hand side is smooth and bounded
            raise RuntimeError(f"simulate_therapy: the ODE solver failed: {sol.message}")
        t_end = float(sol.t[-1])
        if np.isnan(ttp) and len(sol.t_events[0]):
            ttp, x_ttp = float(sol.t_events[0][0]), sol.y_events[0][0]
        segments.append((t, t_end, d, sol.sol))
        if sol.status == 1 and adaptive and len(sol.t_events[1]):
            t, x, on = t_end, sol.y[:, -1], not on
            if len(segments) > _MAX_SWITCHES:
                warnings.warn(f"simulate_therapy: more than {_MAX_SWITCHES} adaptive switches; stopped at t={t:g}.",
                              UserWarning, stacklevel=3)  # fmt: skip
                break
        else:
            break
    t_stop = segments[-1][1]
    grid = np.linspace(0.0, t_stop, n_points)
    extra = [s[0] for s in segments[1:]] + ([ttp] if np.isfinite(ttp) else [])
    times = np.unique(np.concatenate([grid, np.asarray(extra, float)]))
    starts = np.array([s[0] for s in segments])
    seg_of = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(segments) - 1)
    sizes = np.zeros((len(times), n_groups))
    doses = np.empty(len(times))
    for j, (_, _, d, dense) in enumerate(segments):
        m = seg_of == j
        if m.any():
            sizes[np.ix_(m, alive)] = np.exp(dense(times[m])).T
            doses[m] = d
    at_ttp = np.zeros(n_groups)
    if x_ttp is not None:
        at_ttp[alive] = np.exp(x_ttp)
    return {
        "times": times,
        "sizes": sizes,
        "doses": doses,
        "segments": [(a, b, d) for a, b, d, _ in segments],
        "ttp": ttp,
        "at_ttp": at_ttp if x_ttp is not None else None,
    }


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def _number(name: str, val, *, lo: float = 0.0, lo_open: bool = True, hi: float | None = None) -> float:
    ok = not isinstance(val, bool) and isinstance(val, int | float | np.integer | np.floating)
    ok = ok and np.isfinite(val) and (val > lo if lo_open else val >= lo) and (hi is None or val <= hi)
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo:g}, {'inf)' if hi is None else f'{hi:g}]'}"
        raise InvalidParameterError(f"{name} must be a finite number in {rng}, got {val!r}.")
    return float(val)


def _schedules(schedule) -> list[str]:
    if isinstance(schedule, str):
        items = list(SCHEDULES) if schedule == "both" else [schedule]
    elif isinstance(schedule, Sequence) and len(schedule):
        items = list(schedule)
    else:
        items = [schedule]
    bad = [s for s in items if s not in SCHEDULES]
    if bad:
        raise InvalidParameterError(
            f"schedule must be 'continuous', 'adaptive', 'both' or a list of the first two, got {schedule!r}."
        )
    return list(dict.fromkeys(items))


def _survival_table(adata, key: str) -> pd.DataFrame:
    res = adata.uns.get(key)
    table = res.get("table") if isinstance(res, Mapping) else None
    if not isinstance(table, pd.DataFrame):
        raise MissingResultError(
            f"no therapy survival result in adata.uns[{key!r}]; run `tm.tl.therapy_survival(adata, ...)` first "
            "(or pass `key=` naming where its result is)."
        )
    need = ["therapy", "sample", "group", "fraction_of_sample", "surviving_fraction"]
    lacking = [c for c in need if c not in table.columns]
    if lacking:
        raise InvalidInputError(
            f"adata.uns[{key!r}]['table'] lacks columns {lacking}; rerun `tm.tl.therapy_survival`."
        )
    table = table[need].copy()
    for c in ("therapy", "sample", "group"):
        table[c] = table[c].astype(str)
    for c in ("fraction_of_sample", "surviving_fraction"):
        table[c] = pd.to_numeric(table[c], errors="coerce")
    return table


def _pick_therapy(table: pd.DataFrame, therapy, key: str) -> str:
    names = list(pd.unique(table["therapy"]))
    if not isinstance(therapy, str) or not therapy:
        raise InvalidParameterError(f"therapy must be the name of one therapy in the survival table; got {therapy!r}. "
                                    f"Scored therapies: {names}.")  # fmt: skip
    if therapy in names:
        return therapy
    lower = {n.lower(): n for n in names}
    if therapy.lower() in lower:
        return lower[therapy.lower()]
    hint = suggest_names([therapy], names, cutoff=0.5)
    hint = f" {hint}" if hint else ""
    raise InvalidParameterError(
        f"therapy {therapy!r} is not in adata.uns[{key!r}]['table'].{hint} Scored therapies: {names}. "
        "Score it with `tm.tl.therapy_survival(adata, therapies=[...])` first."
    )


def _per_group(name: str, value, groups: list[str], sample: str, check) -> np.ndarray:
    """A number for every group: a scalar for all, or a mapping ``{group: value}`` covering them."""
    if isinstance(value, Mapping):
        vals = {str(g): v for g, v in value.items()}
        missing = [g for g in groups if g not in vals]
        if missing:
            raise InvalidParameterError(
                f"{name} has no value for subpopulation(s) {missing} of sample {sample!r}; give a number or a "
                f"mapping over all of {groups}."
            )
        return np.array([check(f"{name}[{g!r}]", vals[g]) for g in groups])
    return np.full(len(groups), check(name, value))


def _competition(value, groups: list[str], sample: str) -> np.ndarray:
    """Competition matrix ``a_ij`` (diagonal 1): a number for every off-diagonal entry, or a DataFrame."""
    n = len(groups)
    if isinstance(value, pd.DataFrame):
        df = value.copy()
        df.index, df.columns = df.index.astype(str), df.columns.astype(str)
        missing = [g for g in groups if g not in df.index or g not in df.columns]
        if missing:
            raise InvalidParameterError(
                f"competition has no row/column for subpopulation(s) {missing} of sample {sample!r}; index and "
                f"columns must name all of {groups}."
            )
        A = df.loc[groups, groups].to_numpy(dtype=float)
        if not np.isfinite(A).all() or (A < 0).any():
            raise InvalidParameterError("competition coefficients must be finite and non-negative.")
        return A
    a = _number("competition", value, lo=0.0, lo_open=False)
    A = np.full((n, n), a)
    np.fill_diagonal(A, 1.0)
    return A


# --------------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------------
def _schedule_rows(s, sched, groups, n0, r, k, sf, res) -> tuple[pd.DataFrame, dict, list[dict], list[dict]]:
    """The trajectory, summary row, per-subpopulation composition rows and treatment segments of one run."""
    times, sizes, doses = res["times"], res["sizes"], res["doses"]
    burden = sizes.sum(axis=1)
    nt, ng = sizes.shape
    traj = pd.DataFrame({
        "sample": s, "schedule": sched, "time": np.repeat(times, ng), "group": np.tile(groups, nt),
        "size": sizes.ravel(), "burden": np.repeat(burden, ng), "dose": np.repeat(doses, ng),
    })  # fmt: skip
    progressed = bool(np.isfinite(res["ttp"]))
    at_ttp = res["at_ttp"]
    final = sizes[-1]
    on_time = sum(b - a for a, b, d in res["segments"] if d > 0)
    row = {
        "sample": s, "schedule": sched, "progressed": progressed, "time_to_progression": res["ttp"],
        "dominant_at_progression": groups[int(np.argmax(at_ttp))] if progressed else "",
        "burden_at_end": float(final.sum()), "dominant_at_end": groups[int(np.argmax(final))],
        "time_on_treatment": float(on_time),
        "cumulative_dose": float(sum((b - a) * d for a, b, d in res["segments"])),
        "n_cycles": int(sum(d > 0 for _, _, d in res["segments"])),
    }  # fmt: skip
    comp = [{
        "sample": s, "schedule": sched, "group": g, "surviving_fraction": float(sf[j]),
        "growth_rate": float(r[j]), "kill_rate": float(k[j]), "initial_size": float(n0[j]),
        "size_at_progression": float(at_ttp[j]) if progressed else np.nan,
        "final_size": float(final[j]), "final_fraction": float(final[j] / max(final.sum(), 1e-300)),
    } for j, g in enumerate(groups)]  # fmt: skip
    treat = [{"sample": s, "schedule": sched, "start": float(a), "end": float(b), "dose": float(d)}
             for a, b, d in res["segments"]]  # fmt: skip
    return traj, row, comp, treat


def _skipped(rows: list[dict], therapy: str, key_added: str, *, simulated: bool) -> pd.DataFrame:
    """Samples not simulated (survival undetermined): a warning, or ``NotApplicableError`` when none was."""
    skipped = pd.DataFrame(rows, columns=["sample", "reason"])
    if not simulated:
        raise NotApplicableError(
            f"no sample can be simulated for {therapy!r}: "
            + "; ".join(f"{r.sample}: {r.reason}" for r in skipped.itertuples())
            + ". Simulate a therapy whose survival the evidence decides (see tm.get.therapy_survival(adata)['call'])."
        )
    if len(skipped):
        warnings.warn(f"{len(skipped)} sample(s) not simulated (survival undetermined); see "
                      f"adata.uns[{key_added!r}]['skipped'].", UserWarning, stacklevel=3)  # fmt: skip
    return skipped


@doc_params("copy")
def simulate_therapy(
    adata: AnnData,
    *,
    therapy: str,
    schedule: str | Sequence[str] = "both",
    key: str = UNS_THERAPY_SURVIVAL,
    sample: str | Sequence[str] | None = None,
    t_max: float = 1825.0,
    dose: float = 1.0,
    adaptive_thresholds: tuple[float, float] = (0.5, 1.0),
    progression_threshold: float = 1.2,
    carrying_capacity: float = 4 / 3,
    growth_rates: float | Mapping[str, float] = 0.03,
    max_kill_rate: float = 0.06,
    resistance_cost: float = 0.3,
    competition: float | pd.DataFrame = 1.0,
    n_points: int = 401,
    key_added: str = UNS_THERAPY_SIMULATION,
    copy: bool = False,
) -> AnnData | None:
    r"""Simulate continuous and adaptive dosing of a therapy on the competing malignant subpopulations of each sample.

    **Model** (a deterministic model with stated assumptions, not a forecast). The malignant
    subpopulations :math:`i` of one sample (the groups of the :func:`therapy_survival` table for
    ``therapy``) start at their share of the sample's malignant cells, :math:`N_i(0)` =
    ``fraction_of_sample`` (sizes are relative to the initial total burden, :math:`B(0) = 1`), and
    compete for one resource in a Lotka–Volterra system with a drug-kill term:

    .. math:: \frac{dN_i}{dt} = r_i N_i \Big(1 - \frac{\sum_j a_{ij} N_j}{K}\Big) - d(t)\, k_i N_i .

    * **Kill rate** from the predicted sensitivity: :math:`k_i = k_{max}(1 - s_i)`, with
      :math:`s_i` the subpopulation's ``surviving_fraction`` (so a subpopulation predicted to
      survive, :math:`s_i = 1`, is not killed; one with no evidence either way, :math:`s_i = 0.5`,
      is killed at half the maximal rate). Log-kill (a constant fraction per unit time) is assumed.
    * **Cost of resistance**: resistant cells grow more slowly,
      :math:`r_i = r_0 (1 - c\, s_i)`, the premise of adaptive therapy (Gatenby et al., Cancer Res
      69:4894, 2009; Zhang et al., Nat Commun 8:1816, 2017).
    * **Competition** :math:`a_{ii} = 1`, :math:`a_{ij}` = ``competition`` (default 1: every cell
      uses the same resource), carrying capacity :math:`K` in units of the initial burden (default
      4/3: the tumour starts at 75 % of :math:`K`, as in Strobl et al., Cancer Res 81:1135, 2021).
      Adaptive therapy works through this competition: the sensitive cells it spares hold the
      resistant ones back (competitive release under continuous dosing).
    * **Dose** :math:`d(t)`: ``"continuous"`` — maximum-tolerated dosing, :math:`d = ` ``dose``
      throughout; ``"adaptive"`` — the rule of Zhang et al. 2017: treat (:math:`d =` ``dose``)
      until the burden :math:`B = \sum_i N_i` falls to ``adaptive_thresholds[0]`` (50 %) of its
      initial value, pause (:math:`d = 0`) until it regrows to ``adaptive_thresholds[1]`` (100 %),
      repeat. Treatment starts on.
    * **Progression**: the first time :math:`B(t)` exceeds ``progression_threshold`` (1.2) times
      the initial burden (RECIST-like 20 % growth; Eisenhauer et al., Eur J Cancer 45:228, 2009,
      used on the total burden as in Zhang 2017 and Strobl 2021). The schedule is not changed at
      progression; the simulation runs to ``t_max``. No progression within ``t_max``: NaN
      (censored).

    Assumptions beyond the equation: subpopulations do not switch into one another (no
    mutation or plasticity), the drug acts instantly (no pharmacokinetics), the predicted
    surviving fraction is read as a per-unit-time kill probability, and each sample is simulated
    on its own. Time is in days for the default rates (illustrative values, not fitted:
    :math:`r_0 = 0.03`/day, :math:`k_{max} = 0.06`/day, :math:`c = 0.3`); only ratios matter for
    the ordering of the schedules. Integrated with :func:`scipy.integrate.solve_ivp` (RK45, on the
    log sizes, relative tolerance 1e-8) with events for the adaptive switches and progression;
    deterministic, so it takes no ``rng``.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.tl.therapy_survival`.
    therapy
        Therapy to simulate: a name in the survival table (case-insensitive; unknown names: an
        error suggesting close ones).
    schedule
        ``"both"`` (continuous and adaptive, compared), ``"continuous"``, ``"adaptive"`` or a list.
    key
        Key of ``adata.uns`` with the :func:`therapy_survival` result.
    sample
        Sample or list of samples to simulate (default: every sample of the table).
    t_max
        Length of the simulation (days at the default rates).
    dose
        Dose while treating, as a fraction of the maximum tolerated dose, in (0, 1].
    adaptive_thresholds
        ``(lower, upper)`` fractions of the initial burden: adaptive dosing pauses when the burden
        falls to ``lower`` and resumes when it regrows to ``upper``; ``0 < lower < upper``.
    progression_threshold
        Progression when the burden exceeds this multiple of the initial burden (> 1).
    carrying_capacity
        :math:`K`, in units of the initial burden (> 0).
    growth_rates
        :math:`r_0`, the growth rate of a fully sensitive subpopulation (per day), or a mapping
        ``{group: r_0}`` for every subpopulation; the cost of resistance is applied on top.
    max_kill_rate
        :math:`k_{max}`, the kill rate of a fully sensitive subpopulation at full dose (per day, >= 0).
    resistance_cost
        :math:`c` in [0, 1]: a fully resistant subpopulation grows at :math:`(1 - c) r_0`.
    competition
        Off-diagonal competition coefficient :math:`a_{ij}` (>= 0), or a DataFrame with the
        subpopulations as index and columns (the full matrix, diagonal included).
    n_points
        Evenly spaced time points of the stored trajectory (the switch and progression times are
        added).
    key_added
        Key of ``adata.uns`` for the result.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``uns[key_added]`` with ``trajectory`` (:data:`TRAJECTORY_COLUMNS`:
    one row per sample, schedule, time point and subpopulation: its ``size``, the total ``burden``
    and the ``dose`` in effect from that time on), ``summary`` (:data:`SUMMARY_COLUMNS`: per sample
    and schedule, whether and when it progressed (``time_to_progression`` NaN when censored at
    ``t_max``), the largest subpopulation at progression (empty when none) and at ``t_max``, the final burden, the time on treatment, the cumulative dose and the number of
    treatment cycles), ``composition`` (:data:`COMPOSITION_COLUMNS`: per subpopulation its
    parameters and sizes at the start, at progression and at the end), ``treatment`` (the dosing
    intervals) and ``params``.
    """
    adata = start(adata, copy)
    schedules = _schedules(schedule)
    t_max = _number("t_max", t_max)
    dose = _number("dose", dose, hi=1.0)
    K = _number("carrying_capacity", carrying_capacity)
    progression = _number("progression_threshold", progression_threshold, lo=1.0)
    k_max = _number("max_kill_rate", max_kill_rate, lo_open=False)
    cost = _number("resistance_cost", resistance_cost, lo_open=False, hi=1.0)
    if isinstance(adaptive_thresholds, str | bytes) or not isinstance(
        adaptive_thresholds, Sequence | np.ndarray
    ):
        raise InvalidParameterError(
            f"adaptive_thresholds must be (lower, upper), got {adaptive_thresholds!r}."
        )
    if len(adaptive_thresholds) != 2:
        raise InvalidParameterError(
            f"adaptive_thresholds must be (lower, upper), got {adaptive_thresholds!r}."
        )
    lower = _number("adaptive_thresholds[0]", adaptive_thresholds[0])
    upper = _number("adaptive_thresholds[1]", adaptive_thresholds[1])
    if not lower < upper:
        raise InvalidParameterError(
            f"adaptive_thresholds must have lower < upper, got {adaptive_thresholds!r}."
        )
    check_int("n_points", n_points, 2)
    if not isinstance(competition, pd.DataFrame):
        _number("competition", competition, lo_open=False)
    if not isinstance(growth_rates, Mapping):
        _number("growth_rates", growth_rates)
    if not isinstance(key_added, str) or not key_added or "/" in key_added:
        raise InvalidParameterError(f"key_added must be a non-empty string without '/', got {key_added!r}.")
    if not isinstance(key, str):
        raise InvalidParameterError(f"key must be a key of adata.uns, got {key!r}.")

    table = _survival_table(adata, key)
    therapy = _pick_therapy(table, therapy, key)
    table = table[table["therapy"] == therapy]
    available = list(pd.unique(table["sample"]))
    if sample is None:
        samples = available
    else:
        samples = [sample] if isinstance(sample, str) else [str(s) for s in sample]
        missing = [s for s in samples if s not in available]
        if missing or not samples:
            raise InvalidParameterError(
                f"sample(s) {missing or samples} not in the survival table of {therapy!r}; available: {available}."
            )
        samples = list(dict.fromkeys(samples))

    traj, summ, comp, treat, skipped = [], [], [], [], []
    for s in samples:
        sub = table[table["sample"] == s].drop_duplicates("group")
        sub = sub[sub["fraction_of_sample"].fillna(0) > 0]
        if sub.empty:
            raise InvalidInputError(
                f"sample {s!r} has no malignant subpopulation with cells in the survival table of {therapy!r}; "
                "at least one is needed. Pick another sample with `sample=`."
            )
        if sub["surviving_fraction"].isna().any():  # undetermined: no evidence to simulate a response from
            und = sub.loc[sub["surviving_fraction"].isna(), "group"].tolist()
            skipped.append(
                {"sample": s, "reason": f"surviving fraction undetermined (no evidence) for {und}"}
            )
            continue
        bad = sub.loc[~sub["surviving_fraction"].between(0, 1), "group"].tolist()
        if bad:
            raise InvalidInputError(
                f"surviving_fraction of subpopulation(s) {bad} of sample {s!r} is outside [0, 1]; "
                "rerun `tm.tl.therapy_survival`."
            )
        groups = sub["group"].tolist()
        n0 = sub["fraction_of_sample"].to_numpy(float)
        n0 = n0 / n0.sum()
        sf = sub["surviving_fraction"].to_numpy(float)
        r0 = _per_group("growth_rates", growth_rates, groups, s, lambda n, v: _number(n, v))
        r = r0 * (1.0 - cost * sf)
        k = k_max * (1.0 - sf)
        A = _competition(competition, groups, s)
        for sched in schedules:
            res = _simulate(n0, r, k, A, K, adaptive=sched == "adaptive", dose=dose, lower=lower, upper=upper,
                            progression=progression, t_max=t_max, n_points=int(n_points))  # fmt: skip
            t_df, row, comp_rows, treat_rows = _schedule_rows(s, sched, groups, n0, r, k, sf, res)
            traj.append(t_df)
            summ.append(row)
            comp += comp_rows
            treat += treat_rows
            logger.info(
                "simulate_therapy: %s, sample %s, %s: %s", therapy, s, sched,
                f"progression at t={res['ttp']:.1f}" if row["progressed"] else f"no progression by t={t_max:g}",
            )  # fmt: skip

    skipped = _skipped(skipped, therapy, key_added, simulated=bool(traj))
    trajectory = pd.concat(traj, ignore_index=True)[TRAJECTORY_COLUMNS]
    summary = pd.DataFrame(summ, columns=SUMMARY_COLUMNS)
    composition = pd.DataFrame(comp, columns=COMPOSITION_COLUMNS)
    treatment = pd.DataFrame(treat, columns=TREATMENT_COLUMNS)
    params = {
        "therapy": therapy, "schedule": schedules, "key": key, "sample": samples, "t_max": t_max, "dose": dose,
        "adaptive_thresholds": [lower, upper], "progression_threshold": progression, "carrying_capacity": K,
        "growth_rates": dict(growth_rates) if isinstance(growth_rates, Mapping) else float(growth_rates),
        "max_kill_rate": k_max, "resistance_cost": cost,
        "competition": competition if isinstance(competition, pd.DataFrame) else float(competition),
        "n_points": int(n_points), "key_added": key_added,
    }  # fmt: skip
    store(adata, tool="tl.simulate_therapy", uns_key=key_added,
          uns={"trajectory": trajectory, "summary": summary, "composition": composition, "treatment": treatment,
               "skipped": skipped}, params=params)  # fmt: skip
    return adata if copy else None
