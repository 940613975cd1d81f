"""Which therapy combinations leave no malignant subpopulation surviving: ``tm.tl.combination_cover``.

Read from the table of :func:`tmeatlas.tl.therapy_survival`; combinations are chosen by an exact
set-cover integer program (:func:`scipy.optimize.milp`) with a greedy fallback.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidParameterError, MissingResultError
from .._keys import UNS
from .._store import store
from .._validation import check_int, start

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["combination_cover"]

# key names (from tmeatlas/_keys.py)
UNS_THERAPY_SURVIVAL = UNS.therapy_survival
UNS_COMBINATION_COVER = UNS.combination_cover
_GREEDY_ABOVE = 200_000  # therapies x subpopulations above which method="auto" runs the greedy cover


def _objective(sel, tox, weight) -> float:
    """The cost of the combination ``sel``: its number of therapies plus ``weight`` times its toxicity."""
    return float(len(sel) + weight * sum(tox[d] for d in sel))


def _cover_milp(killed: np.ndarray, tox: np.ndarray, max_drugs: int, weight: float, n_solutions: int):
    """Exact covers: minimise ``sum x + weight * tox . x`` s.t. ``killed @ x >= 1``, ``sum x <= max_drugs``;
    the next solutions by no-good cuts (which also exclude supersets). Returns lists of drug indices.
    """
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
    subpopulations per unit cost; further solutions start from each of the next-best first choices.
    """
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


@doc_params("copy")
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

    From the flags of :func:`tmeatlas.tl.therapy_survival` (``uns[key]["table"]``): a subpopulation
    :math:`g` (group within a sample) with at least ``min_fraction`` of its sample's malignant
    cells is *killed* by therapy :math:`d` only when its evidence decides that it responds
    (``call == "responds"``; a row that survives or is undetermined kills nothing, so a
    combination never rests on a row without evidence). A combination must kill every such
    subpopulation; rows of samples without malignant cells (``fraction_of_sample`` NaN) are not
    subpopulations to cover. With binary :math:`x_d` (therapy chosen) the exact
    set-cover integer program (Karp 1972; solved by HiGHS through :func:`scipy.optimize.milp`) is

    .. math:: \min_x \sum_d x_d + \lambda \sum_d \tau_d x_d \quad \text{s.t.}\quad
              \sum_d k_{gd} x_d \ge 1 \;\forall g, \quad \sum_d x_d \le \text{max\_drugs},

    with :math:`\tau_d` the toxicity of therapy :math:`d`: the fraction of non-malignant cells
    of the data expressing its targets (recorded by :func:`tmeatlas.tl.therapy_survival`; 0 for therapies
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
        Annotated data matrix with the result of :func:`tmeatlas.tl.therapy_survival`.
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
        Key of ``adata.uns`` with the result of :func:`tmeatlas.tl.therapy_survival`.
    n_solutions
        Number of combinations to report, best first.
    key_added
        Key of ``adata.uns`` for the result.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``uns[key_added]`` with ``solutions`` (rank, therapies joined by
    ``" + "``, n_drugs, toxicity, objective, n_covered, n_subpopulations, coverage),
    ``coverage`` (rank, sample, group, fraction_of_sample, killed_by, covered: one row per
    solution and subpopulation), ``uncoverable`` (subpopulations no candidate kills), ``method``
    and ``params``. No solution within ``max_drugs``: empty ``solutions`` and a warning.
    """
    adata = start(adata, copy)
    res = _check_cover_args(adata, max_drugs, n_solutions, min_fraction, toxicity_weight, method, key)
    names, tox, sub, killed = _cover_problem(res, therapies, samples, min_fraction)
    can = killed.any(axis=1)
    uncoverable = sub.loc[~can].reset_index(drop=True)
    if len(uncoverable):
        warnings.warn(
            f"{len(uncoverable)} subpopulation(s) are not shown to respond to any candidate therapy (they survive "
            "it or the evidence is undetermined) and cannot be covered; see "
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
    solutions, coverage = _cover_tables(sols, K, names, tox, sub, can, uncoverable, toxicity_weight)
    params = {"therapies": names, "samples": samples, "max_drugs": int(max_drugs), "min_fraction": float(min_fraction),
              "toxicity_weight": float(toxicity_weight), "method": method, "key": key,
              "n_solutions": int(n_solutions), "key_added": key_added}  # fmt: skip
    store(adata, tool="tl.combination_cover", uns_key=key_added,
          uns={"solutions": solutions, "coverage": coverage, "uncoverable": uncoverable, "method": used},
          params=params)  # fmt: skip
    return adata if copy else None


def _check_cover_args(adata, max_drugs, n_solutions, min_fraction, toxicity_weight, method, key) -> dict:
    """Every argument checked before any work; returns the survival result ``adata.uns[key]``."""
    check_int("max_drugs", max_drugs, 1)
    check_int("n_solutions", n_solutions, 1)
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
    return res


def _cover_problem(
    res, therapies, samples, min_fraction
) -> tuple[list, np.ndarray, pd.DataFrame, np.ndarray]:
    """The set-cover instance read from the survival result: (candidate therapies, their toxicities, the
    subpopulations to cover, which therapy kills which subpopulation as a boolean matrix).
    """
    table = pd.DataFrame(res["table"])
    table["survives"] = table["survives"].astype(str).isin(["True", "true", "1"])
    # killed only where the evidence decides that the subpopulation responds (old results: not flagged)
    table["killed"] = table["call"].astype(str).eq("responds") if "call" in table else ~table["survives"]
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
    table["fraction_of_sample"] = pd.to_numeric(table["fraction_of_sample"], errors="coerce")
    sub = table[["sample", "group", "fraction_of_sample"]].drop_duplicates(["sample", "group"])
    sub = sub[sub["fraction_of_sample"] >= min_fraction].reset_index(drop=True)
    piv = table.pivot_table(index=["sample", "group"], columns="therapy", values="killed", aggfunc="first")
    piv = piv.reindex(index=pd.MultiIndex.from_frame(sub[["sample", "group"]]), columns=names)
    return names, tox, sub, piv.fillna(False).to_numpy(bool)


def _cover_tables(
    sols, K, names, tox, sub, can, uncoverable, toxicity_weight
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``solutions`` table (one row per combination) and the ``coverage`` table (one row per combination
    and subpopulation, the uncoverable ones included).
    """
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
    return solutions, coverage
