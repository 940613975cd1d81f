"""Known-answer tests of ``tm.tl.heterogeneity`` / ``tm.get.heterogeneity`` and of the simulator's
``n_clones`` / ``clone_skew`` options (copy semantics, h5ad round trip and determinism of the
public functions: ``tests/test_api.py`` CASES)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm
from tmeatlas.tl._heterogeneity import _mm

EMT = "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION"
HYP = "HALLMARK_HYPOXIA"
TWO = {"EMT": EMT, "hypoxia": HYP}


def _genes():
    lib = tm.datasets.signatures()
    emt = list(lib.loc[lib["name"] == EMT, "gene"])
    hyp = [g for g in lib.loc[lib["name"] == HYP, "gene"] if g not in set(emt)]
    return emt, hyp, [f"BG{i}" for i in range(300)]


def _adata(clones, *, xy=None, samples=None, states=None, seed=0):
    """Malignant cells with the given clone labels; counts Poisson; ``states`` ("EMT"/"hypoxia"/None per
    cell) raise that program's genes 8-fold."""
    gen = np.random.default_rng(seed)
    emt, hyp, bg = _genes()
    names = emt + hyp + bg
    n = len(clones)
    lam = np.full((n, len(names)), 1.0)
    if states is not None:
        for i, s in enumerate(states):
            if s == "EMT":
                lam[i, : len(emt)] *= 8
            elif s == "hypoxia":
                lam[i, len(emt) : len(emt) + len(hyp)] *= 8
    X = sparse.csr_matrix(gen.poisson(lam).astype(np.float32))
    obs = pd.DataFrame(
        {
            "malignant": "malignant",
            "cnv_clone": list(clones),
            "sample": samples if samples is not None else "S1",
        },
        index=[f"c{i}" for i in range(n)],
    )
    a = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=names))
    if xy is not None:
        a.obsm["spatial"] = np.asarray(xy, float)
    return a


def _row(a, **kw):
    tm.tl.heterogeneity(a, **{"n_boot": 50, **kw})
    return tm.get.heterogeneity(a).iloc[0]


def test_one_clone_has_no_diversity():
    r = _row(_adata(["A"] * 60))
    assert r["genetic_diversity"] == 0 and r["effective_clones"] == 1 and r["n_clones"] == 1
    assert r["genetic_diversity_low"] == 0 == r["genetic_diversity_high"]
    assert np.isnan(r["clone_mixing"]) and "clone_mixing" in r["not_measured"]


def test_two_equal_clones_give_ln2_within_the_correction():
    n = 200
    r = _row(_adata(["A", "B"] * (n // 2)))
    # Miller-Madow: ln 2 + (2 - 1) / (2 n)
    assert abs(r["genetic_diversity"] - np.log(2)) <= 1 / (2 * n) + 1e-12
    assert r["effective_clones"] == pytest.approx(np.exp(r["genetic_diversity"]))
    assert r["genetic_diversity_low"] < r["genetic_diversity"] <= r["genetic_diversity_high"]


def test_miller_madow_estimator():
    C = np.array([[10, 10, 0], [30, 0, 0], [1, 2, 3]], float)
    p = C[2] / 6
    np.testing.assert_allclose(_mm(C), [np.log(2) + 1 / 40, 0.0, -(p * np.log(p)).sum() + 2 / 12])


def test_spatial_mixing_segregated_and_random():
    gen = np.random.default_rng(1)
    n = 400
    lab = np.repeat(["A", "B"], n // 2)
    seg = np.column_stack(
        [np.where(lab == "A", 0.0, 1000.0) + gen.uniform(0, 100, n), gen.uniform(0, 100, n)]
    )
    r = _row(_adata(lab, xy=seg))
    assert r["clone_mixing"] < 0.05 and r["clone_spatial_entropy"] < 0.05
    rnd = gen.uniform(0, 500, (n, 2))
    r = _row(_adata(gen.permutation(lab), xy=rnd))
    assert 0.85 < r["clone_mixing"] < 1.15
    assert r["clone_mixing_low"] < 1 < r["clone_mixing_high"]
    assert r["clone_spatial_entropy"] > 0.5


def test_no_coordinates_are_not_measured():
    a = _adata(["A", "B"] * 30)
    r = _row(a, spatial_key="nowhere")
    assert np.isnan(r["clone_mixing"]) and np.isnan(r["clone_spatial_entropy"])
    assert "no coordinates in obsm['nowhere']" in r["not_measured"]
    assert (
        np.isnan(r["epigenetic_diversity"])
        and "no chromatin-accessibility modality given" in r["not_measured"]
    )


def test_states_between_and_within_clones():
    n = 200
    lab = np.repeat(["A", "B"], n // 2)
    aligned = np.where(lab == "A", "EMT", "hypoxia")
    r = _row(_adata(lab, states=aligned), programs=TWO)
    assert r["state_between_clones"] == pytest.approx(1.0, abs=0.02)
    assert abs(r["state_diversity"] - np.log(2)) <= 1 / (2 * n) + 1e-9
    crossed = np.tile(["EMT", "hypoxia"], n // 2)
    a = _adata(lab, states=crossed)
    r = _row(a, programs=TWO)
    assert r["state_between_clones"] < 0.05
    comp = pd.DataFrame(a.uns["heterogeneity"]["clone_state"])
    assert set(comp["state"]) == {"EMT", "hypoxia"} and np.allclose(comp["fraction"], 0.5, atol=0.05)


def test_malignant_state_column_and_therapy_by_state():
    """obs["malignant_state"] holds each malignant cell's state (NaN elsewhere), and therapy_survival can
    group by it: which states a therapy leaves behind."""
    n = 200
    lab = np.repeat(["A", "B"], n // 2)
    a = _adata(lab, states=np.where(lab == "A", "EMT", "hypoxia"))
    a.obs.loc[a.obs_names[:10], "malignant"] = "non-malignant"
    tm.tl.heterogeneity(a, programs=TWO, n_boot=0)
    col = a.obs["malignant_state"]
    assert col.iloc[:10].isna().all()
    assert set(col.cat.categories) == {"EMT", "hypoxia", "baseline"}
    assert (col.iloc[10:100] == "EMT").mean() > 0.9 and (col.iloc[100:] == "hypoxia").mean() > 0.9
    tm.tl.therapy_survival(a, groupby="malignant_state", therapies=["paclitaxel"], n_boot=20)
    groups = set(tm.get.therapy_survival(a)["group"].astype(str))
    assert {"EMT", "hypoxia"} <= groups


def test_intervals_contain_the_estimates_and_determinism():
    gen = np.random.default_rng(2)
    n = 300
    lab = gen.choice(["A", "B", "C"], n, p=[0.6, 0.3, 0.1])
    states = gen.choice(["EMT", "hypoxia", None], n)
    a = _adata(lab, xy=gen.uniform(0, 300, (n, 2)), states=states)
    tm.tl.heterogeneity(a, programs=TWO, n_boot=100)
    df = tm.get.heterogeneity(a)
    for k in tm.tl._heterogeneity.INDICES:
        v, lo, hi = df[k].iloc[0], df[f"{k}_low"].iloc[0], df[f"{k}_high"].iloc[0]
        if k.startswith("epigenetic"):  # no chromatin given
            assert np.isnan(v) and np.isnan(lo) and np.isnan(hi)
        elif k != "cnv_burden":
            assert lo <= v <= hi, k
    b = tm.tl.heterogeneity(a, programs=TWO, n_boot=100, copy=True)
    pd.testing.assert_frame_equal(tm.get.heterogeneity(b), df)
    c = tm.tl.heterogeneity(a, programs=TWO, n_boot=100, rng=5, copy=True)
    assert not tm.get.heterogeneity(c)["genetic_diversity_low"].equals(df["genetic_diversity_low"])
    assert (df["genetic_diversity"] == tm.get.heterogeneity(c)["genetic_diversity"]).all()


def test_small_samples_get_nan_and_a_reason():
    lab = ["A", "B"] * 40 + ["A"] * 10
    samples = ["big"] * 80 + ["tiny"] * 10
    a = _adata(lab, samples=samples)
    tm.tl.heterogeneity(a, sample_key="sample", n_boot=20)
    df = tm.get.heterogeneity(a).set_index("sample")
    assert np.isfinite(df.loc["big", "genetic_diversity"])
    for k in ("genetic_diversity", "effective_clones", "state_diversity", "clone_mixing"):
        assert np.isnan(df.loc["tiny", k]) and np.isnan(df.loc["tiny", f"{k}_low"])
    assert "10 malignant cells (fewer than 20)" in df.loc["tiny", "not_measured"]


def test_unlabelled_cells_and_no_tree():
    lab = ["A", "B"] * 30 + ["non-malignant"] * 5 + [None] * 5
    a = _adata(lab)
    r = _row(a)
    assert r["n_malignant"] == 70 and r["n_clone_labelled"] == 60
    assert pd.isna(r["clonal_events"]) and "no arm calls of tm.tl.cnv_clones" in r["not_measured"]
    # states are measured without clone labels; the clone indices are not
    b = _adata(["non-malignant"] * 40, states=["EMT"] * 20 + ["hypoxia"] * 20)
    r = _row(b, programs=TWO)
    assert np.isnan(r["genetic_diversity"]) and np.isfinite(r["state_diversity"])
    assert "malignant cells with a clone label (fewer than 20)" in r["not_measured"]


def test_bad_input_raises_typed_errors():
    a = _adata(["A", "B"] * 30)
    with pytest.raises(tm.InvalidParameterError, match="did you mean"):
        tm.tl.heterogeneity(a, programs=["HALLMARK_HYPOXIAA"])
    with pytest.raises(tm.InvalidParameterError, match="n_boot"):
        tm.tl.heterogeneity(a, n_boot=-1)
    with pytest.raises(tm.MissingResultError, match="cnv_clones"):
        tm.tl.heterogeneity(a, clone_key="nope")
    with pytest.raises(tm.MissingResultError, match="sample_key"):
        tm.tl.heterogeneity(a, sample_key="nope")
    b = a.copy()
    b.obs["malignant"] = "non-malignant"
    with pytest.raises(tm.NotApplicableError, match="no malignant cells"):
        tm.tl.heterogeneity(b)
    with pytest.raises(tm.NotApplicableError, match="no sample could be measured"):
        tm.tl.heterogeneity(_adata(["A", "B"] * 5))
    with pytest.raises(tm.MissingResultError, match="run `tm.tl.heterogeneity"):
        tm.get.heterogeneity(a)


@pytest.mark.filterwarnings("ignore:infer_cnv used")
def test_cnv_clone_tree_features():
    """On a small simulated cohort after infer_cnv -> call_malignant -> cnv_clones."""
    a = tm.datasets.simulate_tumor(
        n_cells=900, n_patients=1, n_genes=4500, rng=3, n_clones=2, clone_skew="even"
    )
    tm.tl.infer_cnv(a)
    tm.tl.call_malignant(a)
    tm.tl.cnv_clones(a, min_clone_size=10)
    tm.tl.heterogeneity(a, n_boot=20)
    r = tm.get.heterogeneity(a).iloc[0]
    calls = pd.DataFrame(a.uns["cnv_clones"]["arm_calls"])
    ev = calls[calls["call"] != "neutral"].groupby(["arm", "call"])["clone"].nunique()
    k = calls["clone"].nunique()
    assert r["n_clones"] == k
    assert r["clonal_events"] == (ev == k).sum() and r["subclonal_events"] == (ev < k).sum()
    tree = pd.DataFrame(a.uns["cnv_clones"]["tree"])
    leaves = tree.loc[tree["clone"].astype(str) != "", "node"].astype(str)
    assert r["tree_depth"] == max(len(v.split(":")[1]) - 1 for v in leaves)
    clones = pd.DataFrame(a.uns["heterogeneity"]["clones"])
    burden = (clones["fraction"] * clones["cnv_burden"]).sum()
    assert r["cnv_burden"] == pytest.approx(burden) and 0 < burden <= 1


# --- the simulator's clone options -------------------------------------------------------------
def test_simulator_clone_numbers_and_fractions():
    a = tm.datasets.simulate_tumor(
        n_cells=3000, n_patients=3, n_genes=1500, spatial=False, rng=4, n_clones=[1, 3, 6], clone_skew="even"
    )
    sim = a.uns["simulation"]
    pat = pd.DataFrame(sim["patients"])
    assert list(pat["n_clones"]) == [1, 3, 6]
    tree = pd.DataFrame(sim["clone_tree"])
    np.testing.assert_allclose(tree.groupby("patient")["target_fraction"].sum(), 1.0)
    obs = a.obs[a.obs["true_malignant"]]
    for p, row in pat.set_index("patient").iterrows():
        frac = obs.loc[obs["sample"] == p, "true_clone"].astype(str).value_counts(normalize=True)
        assert row["clone_shannon"] == pytest.approx(-(frac * np.log(frac)).sum(), abs=1e-9)
    assert pat["clone_shannon"].iloc[0] == 0 and pat["clone_shannon"].iloc[2] > np.log(6) - 0.1
    b = tm.datasets.simulate_tumor(
        n_cells=1500, n_patients=2, n_genes=1500, rng=4, n_clones=4, clone_skew="skewed"
    )
    fr = pd.DataFrame(b.uns["simulation"]["clone_tree"])["target_fraction"].to_numpy()
    np.testing.assert_allclose(fr[:4], np.array([8, 4, 2, 1]) / 15)
    c = tm.datasets.simulate_tumor(n_cells=600, n_patients=2, n_genes=1500, rng=4, clone_skew=0.5)
    assert "clone_shannon" in pd.DataFrame(c.uns["simulation"]["patients"])
    d = tm.datasets.simulate_tumor(n_cells=600, n_patients=2, n_genes=1500, rng=4)
    assert "clone_shannon" not in pd.DataFrame(d.uns["simulation"]["patients"])


@pytest.mark.parametrize(
    "kw",
    [
        {"n_clones": 7},
        {"n_clones": 0},
        {"n_clones": [2]},
        {"n_clones": "3"},
        {"clone_skew": "lopsided"},
        {"clone_skew": -1.0},
        {"clone_skew": True},
    ],  # fmt: skip
)
def test_simulator_bad_clone_options(kw):
    with pytest.raises(tm.InvalidParameterError):
        tm.datasets.simulate_tumor(n_cells=300, n_patients=2, n_genes=1500, **kw)
