"""Therapy schedule simulation: known answers (analytic solutions, competitive release, no drug
effect), the pipeline from ``therapy_survival``, errors, determinism, copy semantics, the h5ad round
trip and the plot."""

from __future__ import annotations

import warnings

import anndata as ad
import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm
from tmeatlas.pl._therapy_sim import therapy_simulation
from tmeatlas.tl._therapy_sim import simulate_therapy

mpl.use("Agg")

ADC = "sacituzumab_govitecan"


def _hand(groups: dict[str, tuple[float, float]], *, samples=("S1",), therapy: str = "drugx") -> ad.AnnData:
    """A tiny AnnData with a hand-written survival table: ``{group: (fraction_of_sample, surviving_fraction)}``."""
    rows = [
        {"therapy": therapy, "sample": s, "group": g, "n_cells": int(1000 * f), "fraction_of_sample": f,
         "surviving_fraction": sf, "survives": sf > 0.5}
        for s in samples for g, (f, sf) in groups.items()
    ]  # fmt: skip
    a = ad.AnnData(X=np.zeros((3, 2), np.float32))
    a.uns["therapy_survival"] = {"table": pd.DataFrame(rows)}
    return a


def _run(a, **kw) -> dict:
    simulate_therapy(a, therapy=kw.pop("therapy", "drugx"), **kw)
    return a.uns["therapy_simulation"]


def _traj(res, schedule, group=None) -> pd.DataFrame:
    t = res["trajectory"]
    t = t[t["schedule"] == schedule]
    return t if group is None else t[t["group"] == group].sort_values("time")


def _summary(res, schedule) -> pd.Series:
    s = res["summary"]
    return s[s["schedule"] == schedule].iloc[0]


# --------------------------------------------------------------------------------------------
# known answers
# --------------------------------------------------------------------------------------------
def test_sensitive_population_shrinks_and_never_progresses():
    res = _run(_hand({"A": (1.0, 0.0)}), schedule="continuous", t_max=1000.0)
    tr = _traj(res, "continuous", "A")
    assert np.all(np.diff(tr["size"].to_numpy()) < 0)  # shrinks throughout
    assert tr["size"].iloc[-1] < 1e-6
    row = _summary(res, "continuous")
    assert not row["progressed"] and np.isnan(row["time_to_progression"])
    assert row["n_cycles"] == 1 and row["time_on_treatment"] == pytest.approx(1000.0)


def test_analytic_exponential_kill_and_adaptive_switch_times():
    # K huge: dN/dt = (r0 - k_max) N = -0.03 N -> N = exp(-0.03 t); the adaptive rule stops at
    # N = 0.5 (t = ln2 / 0.03) and regrows at r0 = 0.03 to N = 1 (another ln2 / 0.03)
    res = _run(
        _hand({"A": (1.0, 0.0)}), carrying_capacity=1e9, t_max=200.0, growth_rates=0.03, max_kill_rate=0.06
    )
    tr = _traj(res, "continuous", "A")
    np.testing.assert_allclose(tr["size"], np.exp(-0.03 * tr["time"]), rtol=1e-5)
    half = np.log(2) / 0.03
    treat = res["treatment"]
    ad_ = treat[treat["schedule"] == "adaptive"].reset_index(drop=True)
    np.testing.assert_allclose(ad_["end"].iloc[:4], half * np.arange(1, 5), rtol=1e-6)
    np.testing.assert_array_equal(ad_["dose"].iloc[:4], [1.0, 0.0, 1.0, 0.0])
    ta = _traj(res, "adaptive", "A")
    assert ta["size"].min() == pytest.approx(0.5, rel=1e-6) and ta["size"].max() == pytest.approx(
        1.0, rel=1e-6
    )
    row = _summary(res, "adaptive")
    assert row["time_on_treatment"] == pytest.approx(row["cumulative_dose"])
    assert row["time_on_treatment"] == pytest.approx(100.0, abs=half)  # half of the time on treatment


def test_analytic_logistic_time_to_progression():
    # a resistant population (s = 1, no kill) grows logistically at r = r0 (1 - c):
    # N(t) = K / (1 + (K/N0 - 1) e^{-rt}); N = 1.2 at t = ln((K - N0)/N0 / ((K - 1.2)/1.2)) / r
    K, r0, c = 2.0, 0.03, 0.3
    res = _run(_hand({"R": (1.0, 1.0)}), carrying_capacity=K, growth_rates=r0, resistance_cost=c, t_max=500.0)
    r = r0 * (1 - c)
    expect = np.log((K - 1.0) / ((K - 1.2) / 1.2)) / r
    for sched in ("continuous", "adaptive"):
        row = _summary(res, sched)
        assert row["progressed"] and row["time_to_progression"] == pytest.approx(expect, rel=1e-6)
        assert row["dominant_at_progression"] == "R"
    tr = _traj(res, "continuous", "R")
    np.testing.assert_allclose(tr["size"], K / (1 + (K - 1) * np.exp(-r * tr["time"])), rtol=1e-6)


def test_competitive_release_adaptive_delays_progression():
    # Zhang et al. 2017 / Gatenby et al. 2009: a sensitive majority and a small resistant
    # subpopulation that pays a fitness cost; continuous dosing removes the competitors
    res = _run(_hand({"sens": (0.99, 0.0), "res": (0.01, 1.0)}), resistance_cost=0.3)
    cont, adap = _summary(res, "continuous"), _summary(res, "adaptive")
    assert cont["progressed"] and adap["progressed"]
    assert cont["time_to_progression"] < 0.8 * adap["time_to_progression"]
    assert cont["dominant_at_progression"] == adap["dominant_at_progression"] == "res"
    assert adap["n_cycles"] > 2 and adap["cumulative_dose"] < cont["cumulative_dose"]
    # adaptive keeps the burden between 50% and 100% of the start until resistance takes over
    ta = _traj(res, "adaptive", "sens")
    early = ta[ta["time"] < 0.5 * adap["time_to_progression"]]
    assert early["burden"].min() == pytest.approx(0.5, abs=0.01) and early["burden"].max() <= 1.0 + 1e-6
    # the resistant subpopulation grows more slowly while the sensitive one competes with it
    rc, ra = _traj(res, "continuous", "res"), _traj(res, "adaptive", "res")
    t = 200.0
    assert np.interp(t, ra["time"], ra["size"]) < np.interp(t, rc["time"], rc["size"])
    comp = res["composition"]
    row = comp[(comp["schedule"] == "continuous") & (comp["group"] == "res")].iloc[0]
    assert row["growth_rate"] == pytest.approx(0.03 * 0.7) and row["kill_rate"] == 0.0
    assert row["final_fraction"] == pytest.approx(1.0)


def test_no_drug_effect_schedules_agree():
    res = _run(_hand({"A": (0.6, 1.0), "B": (0.4, 1.0)}), t_max=800.0)
    ta, tc = _traj(res, "adaptive"), _traj(res, "continuous")
    np.testing.assert_allclose(ta["size"].to_numpy(), tc["size"].to_numpy(), rtol=1e-9)
    np.testing.assert_array_equal(ta["time"].to_numpy(), tc["time"].to_numpy())
    assert _summary(res, "adaptive")["time_to_progression"] == pytest.approx(
        _summary(res, "continuous")["time_to_progression"]
    )
    assert _summary(res, "adaptive")["n_cycles"] == 1


def test_parameters_as_mappings_and_matrices():
    groups = {"A": (0.5, 0.2), "B": (0.5, 0.9)}
    base = _run(_hand(groups), schedule="adaptive")["trajectory"]
    comp = pd.DataFrame(np.ones((2, 2)), index=["A", "B"], columns=["A", "B"])
    same = _run(_hand(groups), schedule=["adaptive"], competition=comp, growth_rates={"A": 0.03, "B": 0.03})
    pd.testing.assert_frame_equal(base, same["trajectory"])
    # no competition between the two: each grows as if alone
    free = _run(
        _hand(groups), schedule="continuous", competition=0.0, max_kill_rate=0.0, carrying_capacity=10.0
    )
    comp = free["composition"].set_index("group")
    assert comp.loc["A", "final_size"] == pytest.approx(10.0, rel=1e-3)  # each reaches K on its own
    assert comp.loc["B", "final_size"] == pytest.approx(10.0, rel=1e-3)


def test_samples_are_simulated_separately():
    a = _hand({"A": (0.9, 0.1), "B": (0.1, 0.9)}, samples=("S1", "S2"))
    res = _run(a)
    assert set(res["summary"]["sample"]) == {"S1", "S2"} and len(res["summary"]) == 4
    res1 = _run(_hand({"A": (0.9, 0.1), "B": (0.1, 0.9)}, samples=("S1", "S2")), sample="S2")
    assert list(res1["summary"]["sample"].unique()) == ["S2"]


# --------------------------------------------------------------------------------------------
# from therapy_survival
# --------------------------------------------------------------------------------------------
def _cohort(seed: int = 0) -> ad.AnnData:
    """One sample, malignant groups A (TACSTD2+, target of the ADC) and B (TACSTD2-), immune cells."""
    rs = np.random.default_rng(seed)
    bg = [f"G{i}" for i in range(180)]
    genes = ["TACSTD2", "CD8A", "PTPRC", *bg]
    sizes = {"A": 150, "B": 12, "imm": 40}
    rows, obs = [], []
    for k, (grp, n) in enumerate(sizes.items()):
        lam = np.full(len(genes), 0.3)
        lam[3 + 60 * k : 3 + 60 * (k + 1)] = 6.0
        mal = grp != "imm"
        lam[0] = 6.0 if grp == "A" else 0.0
        lam[1] = lam[2] = 0.0 if mal else 4.0
        rows.append(rs.poisson(np.maximum(lam, 0.2), size=(n, len(genes))))  # ambient RNA in every cell
        obs += [{"sample": "S1", "clone": grp if mal else None,
                 "malignant": "malignant" if mal else "non-malignant"}] * n  # fmt: skip
    X = sparse.csr_matrix(np.vstack(rows).astype(np.float32))
    return ad.AnnData(X=X, obs=pd.DataFrame(obs, index=[f"c{i}" for i in range(X.shape[0])]),
                      var=pd.DataFrame(index=genes))  # fmt: skip


@pytest.fixture(scope="module")
def cohort():
    a = _cohort()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.therapy_survival(a, therapies=[ADC], groupby="clone", sample_key="sample", n_boot=20)
    simulate_therapy(a, therapy=ADC)
    return a


def test_pipeline_from_therapy_survival(cohort):
    table = cohort.uns["therapy_survival"]["table"].set_index("group")
    res = cohort.uns["therapy_simulation"]
    comp = res["composition"][res["composition"]["schedule"] == "continuous"].set_index("group")
    np.testing.assert_allclose(
        comp.loc[["A", "B"], "initial_size"], table.loc[["A", "B"], "fraction_of_sample"]
    )
    np.testing.assert_allclose(
        comp.loc[["A", "B"], "surviving_fraction"], table.loc[["A", "B"], "surviving_fraction"]
    )
    assert comp.loc["A", "kill_rate"] > comp.loc["B", "kill_rate"]  # A expresses the target
    assert comp.loc["A", "growth_rate"] > comp.loc["B", "growth_rate"]  # B pays the cost of resistance
    cont, adap = _summary(res, "continuous"), _summary(res, "adaptive")
    assert cont["progressed"] and cont["dominant_at_progression"] == cont["dominant_at_end"] == "B"
    assert adap["time_to_progression"] > cont["time_to_progression"]  # a small resistant clone: release
    assert res["params"]["therapy"] == ADC and list(res["params"]["schedule"]) == ["continuous", "adaptive"]


def test_deterministic_copy_semantics_and_roundtrip(cohort, tmp_path):
    a = _cohort()
    a.uns["therapy_survival"] = cohort.uns["therapy_survival"]
    before = {k: v.copy() for k, v in a.uns.items() if k != "tmeatlas_log"}
    b = simulate_therapy(a, therapy=ADC, copy=True)
    assert isinstance(b, ad.AnnData) and b is not a
    assert "therapy_simulation" not in a.uns and set(before) <= set(a.uns)  # the input is untouched
    assert simulate_therapy(a, therapy=ADC) is None and "therapy_simulation" in a.uns
    for name in ("trajectory", "summary", "composition", "treatment"):
        pd.testing.assert_frame_equal(a.uns["therapy_simulation"][name], b.uns["therapy_simulation"][name])
        pd.testing.assert_frame_equal(
            a.uns["therapy_simulation"][name], cohort.uns["therapy_simulation"][name]
        )
    path = tmp_path / "sim.h5ad"
    a.write_h5ad(path)
    back = ad.read_h5ad(path)
    for name in ("trajectory", "summary", "composition", "treatment"):
        pd.testing.assert_frame_equal(
            back.uns["therapy_simulation"][name], a.uns["therapy_simulation"][name], check_dtype=False
        )
    assert back.uns["therapy_simulation"]["params"]["therapy"] == ADC
    fig = therapy_simulation(back, return_fig=True)  # plots from a read-back file
    assert isinstance(fig, mpl.figure.Figure)
    import matplotlib.pyplot as plt

    plt.close(fig)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_errors():
    bare = ad.AnnData(X=np.zeros((3, 2), np.float32))
    with pytest.raises(tm.MissingResultError, match="therapy_survival"):
        simulate_therapy(bare, therapy="drugx")
    a = _hand({"A": (1.0, 0.2)}, therapy="paclitaxel")
    with pytest.raises(tm.InvalidParameterError, match="(?i)did you mean 'paclitaxel'"):
        simulate_therapy(a, therapy="paclitaxl")
    with pytest.raises(tm.InvalidParameterError, match="not in the survival table"):
        simulate_therapy(a, therapy="paclitaxel", sample="S9")
    empty = _hand({"A": (0.0, 0.2)})
    with pytest.raises(tm.InvalidInputError, match="at least one"):
        simulate_therapy(empty, therapy="drugx")
    with pytest.raises(tm.InvalidInputError, match="AnnData"):
        simulate_therapy(np.zeros((3, 3)), therapy="drugx")
    b = _hand({"A": (1.0, 0.2)})
    for kw in (
        {"schedule": "weekly"}, {"adaptive_thresholds": (1.0, 0.5)}, {"adaptive_thresholds": 0.5},
        {"progression_threshold": 0.9}, {"t_max": -1}, {"dose": 1.5}, {"resistance_cost": 2.0},
        {"growth_rates": {"Z": 0.1}}, {"competition": -1.0}, {"n_points": 1}, {"key_added": ""},
        {"competition": pd.DataFrame([[1.0]], index=["Z"], columns=["Z"])},
    ):  # fmt: skip
        with pytest.raises(tm.InvalidParameterError):
            simulate_therapy(b, therapy="drugx", **kw)
    assert "therapy_simulation" not in b.uns
    undetermined = _hand({"A": (1.0, np.nan)})  # no evidence: nothing to simulate, said so
    with pytest.raises(tm.NotApplicableError, match="undetermined"):
        simulate_therapy(undetermined, therapy="drugx")
    bad = _hand({"A": (1.0, 1.5)})
    with pytest.raises(tm.InvalidInputError, match="surviving_fraction"):
        simulate_therapy(bad, therapy="drugx")


# --------------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------------
def test_plot_lines_and_pdf(tmp_path):
    import matplotlib.pyplot as plt

    a = _hand({"sens": (0.9, 0.0), "mid": (0.05, 0.5), "res": (0.05, 1.0)})
    simulate_therapy(a, therapy="drugx", t_max=600.0)
    fig = therapy_simulation(a, return_fig=True)
    assert isinstance(fig, mpl.figure.Figure)
    (ax,) = fig.axes
    gids = [
        ln.get_gid() for ln in ax.get_lines() if ln.get_gid() and not ln.get_gid().endswith("progression")
    ]
    expect = {f"{s}|{g}" for s in ("continuous", "adaptive") for g in ("sens", "mid", "res", "total")}
    assert set(gids) - {"threshold"} == expect and len(gids) == len(expect) + 1
    plt.close(fig)
    out = tmp_path / "sim.pdf"
    assert therapy_simulation(a, show=False, save=out, log=True) is None
    assert out.stat().st_size > 1000
    _, axs = plt.subplots()
    assert therapy_simulation(a, ax=axs, show=False) == [axs]
    plt.close("all")
    with pytest.raises(tm.MissingResultError, match="simulate_therapy"):
        therapy_simulation(_hand({"A": (1.0, 0.1)}), show=False)
    with pytest.raises(tm.InvalidParameterError, match="not simulated"):
        therapy_simulation(a, sample="S9", show=False)
    two = _hand({"A": (1.0, 0.1)}, samples=("S1", "S2"))
    simulate_therapy(two, therapy="drugx", schedule="adaptive", t_max=100.0)
    fig = therapy_simulation(two, return_fig=True)
    assert len([x for x in fig.axes if x.get_visible()]) == 2
    plt.close(fig)
