"""Checkpoint receptor–ligand interactions and signature summaries: known answers on tiny inputs."""

from __future__ import annotations

import warnings

import anndata as ad
import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm

mpl.use("Agg")

GENES = ["CD274", "PDCD1", "CD80", "CTLA4", "ACTB", "GAPDH", "MKI67", "CD3E"]
PAIRS = pd.DataFrame(
    {
        "pair": ["PD-1/PD-L1", "CTLA4/CD80", "PD-1cx/PD-L1"],
        "receptor": ["PDCD1", "CTLA4", "PDCD1+GAPDH"],
        "ligand": ["CD274", "CD80", "CD274"],
    }
)
N_PERMS = 200


def _toy(n_per: int = 30, samples=("s1", "s2"), seed: int = 0) -> ad.AnnData:
    """Counts: tumour cells express CD274, T cells PDCD1, B cells neither; CD80/CTLA4 everywhere at random."""
    gen = np.random.default_rng(seed)
    groups = ["tumour", "T", "B"]
    rows, obs = [], []
    for s in samples:
        for g in groups:
            X = np.zeros((n_per, len(GENES)))
            X[:, GENES.index("ACTB")] = gen.poisson(30, n_per)
            X[:, GENES.index("GAPDH")] = gen.poisson(2, n_per) + 1
            X[:, GENES.index("CD80")] = gen.poisson(1, n_per)
            X[:, GENES.index("CTLA4")] = gen.poisson(1, n_per)
            if g == "tumour":
                X[:, GENES.index("CD274")] = gen.poisson(5, n_per) + 1
            if g == "T":
                X[:, GENES.index("PDCD1")] = gen.poisson(5, n_per) + 1
            rows.append(X)
            obs += [(s, g)] * n_per
    obs = pd.DataFrame(obs, columns=["sample", "group"])
    obs.index = [f"c{i}" for i in range(len(obs))]
    obs["group"] = pd.Categorical(obs["group"], categories=groups)
    return ad.AnnData(
        sparse.csr_matrix(np.vstack(rows).astype(np.float32)), obs=obs, var=pd.DataFrame(index=GENES)
    )


def _lognorm(adata: ad.AnnData) -> np.ndarray:
    X = adata.X.toarray().astype(np.float64)
    return np.log1p(X / X.sum(axis=1, keepdims=True) * 1e4)


def _row(tab, **kw):
    m = np.ones(len(tab), dtype=bool)
    for k, v in kw.items():
        m &= (tab[k] == v).to_numpy()
    return tab[m]


def _run(adata, **kw):
    kw = {"groupby": "group", "sample_key": "sample", "pairs": PAIRS, "n_perms": N_PERMS, **kw}
    tm.tl.checkpoint_interactions(adata, **kw)
    return tm.get.checkpoint_interactions(adata)


# --------------------------------------------------------------------------------------------
# tm.tl.checkpoint_interactions
# --------------------------------------------------------------------------------------------
def test_known_answer_pd1_pdl1():
    a = _toy()
    tab = _run(a)
    assert list(tab.columns[:6]) == ["sample", "pair", "sender", "receiver", "ligand", "receptor"]
    E = _lognorm(a)
    for s in ("s1", "s2"):
        r = _row(tab, sample=s, pair="PD-1/PD-L1", sender="tumour", receiver="T")
        assert len(r) == 1
        r = r.iloc[0]
        assert r["ligand_fraction"] == 1.0 and r["receptor_fraction"] == 1.0
        tum = ((a.obs["sample"] == s) & (a.obs["group"] == "tumour")).to_numpy()
        tc = ((a.obs["sample"] == s) & (a.obs["group"] == "T")).to_numpy()
        lm, rm = E[tum, GENES.index("CD274")].mean(), E[tc, GENES.index("PDCD1")].mean()
        np.testing.assert_allclose([r["ligand_mean"], r["receptor_mean"]], [lm, rm], rtol=1e-10)
        np.testing.assert_allclose(r["strength"], (lm + rm) / 2, rtol=1e-10)
        assert r["pval"] == pytest.approx(1 / (N_PERMS + 1))  # no permutation does as well
        assert r["padj"] < 0.05 and not r["spatial"] and r["n_edges"] == -1
        # B cells express neither gene: no PD-1/PD-L1 row with B as sender or receiver
        assert _row(tab, sample=s, pair="PD-1/PD-L1", sender="B").empty
        assert _row(tab, sample=s, pair="PD-1/PD-L1", receiver="B").empty
        # a complex takes the minimum over its subunits (CellPhoneDB)
        c = _row(tab, sample=s, pair="PD-1cx/PD-L1", sender="tumour", receiver="T").iloc[0]
        gm = E[tc, GENES.index("GAPDH")].mean()
        assert c["receptor_mean"] == pytest.approx(min(rm, gm), rel=1e-10)
        assert c["receptor"] == "PDCD1+GAPDH"
    entry = a.uns["checkpoint_interactions"]
    assert entry["mode"] == "expression" and entry["expression"] == "log1p_cp10k"
    assert entry["params"]["n_perms"] == N_PERMS and entry["params"]["rng"] == 0
    assert set(tab["sample"]) == {"s1", "s2"}


def test_uninformative_controls_give_large_p():
    a = _toy()
    # log-normalised input (used as is) where CD80 and CTLA4 are the same in every cell:
    # every permutation ties the observed strength, p = 1
    L = _lognorm(a)
    L[:, GENES.index("CD80")] = 1.0
    L[:, GENES.index("CTLA4")] = 2.0
    a.layers["lognorm"] = sparse.csr_matrix(L)
    tab = _run(a, layer="lognorm")
    assert a.uns["checkpoint_interactions"]["expression"] == "as_is"
    ctla = tab[tab["pair"] == "CTLA4/CD80"]
    assert len(ctla) == 2 * 9 and np.all(ctla["pval"] == 1.0)
    np.testing.assert_allclose(ctla["strength"], 1.5)
    # labels unrelated to expression: no small p-values
    b = _toy()
    b.obs["group"] = pd.Categorical(np.random.default_rng(1).permutation(b.obs["group"].to_numpy()))
    tab = _run(b)
    pd1 = tab[tab["pair"] == "PD-1/PD-L1"]
    assert len(pd1) > 0 and pd1["padj"].min() > 0.2 and pd1["pval"].mean() > 0.25


def test_determinism_and_n_jobs_invariance():
    a = _toy()
    t1 = _run(a.copy(), rng=7, n_perms=250, n_jobs=1)
    t2 = _run(a.copy(), rng=7, n_perms=250, n_jobs=1)
    t3 = _run(a.copy(), rng=7, n_perms=250, n_jobs=3)
    pd.testing.assert_frame_equal(t1, t2)
    pd.testing.assert_frame_equal(t1, t3)
    t4 = _run(a.copy(), rng=8, n_perms=250)
    assert not np.array_equal(t1["pval"].to_numpy(), t4["pval"].to_numpy())
    np.testing.assert_array_equal(t1["strength"], t4["strength"])  # only the null changes
    b = a.copy()
    assert tm.tl.checkpoint_interactions(b, groupby="group", pairs=PAIRS, n_perms=20, copy=False) is None
    c = tm.tl.checkpoint_interactions(b, groupby="group", pairs=PAIRS, n_perms=20, copy=True)
    assert isinstance(c, ad.AnnData) and c is not b
    assert set(tm.get.checkpoint_interactions(c)["sample"]) == {"all"}


def _graph(a: ad.AnnData, partner: dict[str, str]) -> sparse.csr_matrix:
    """Symmetric graph joining the i-th cell of each group to the i-th cell of its partner group, per sample."""
    rows, cols = [], []
    for s in a.obs["sample"].unique():
        idx = {
            g: np.flatnonzero(((a.obs["sample"] == s) & (a.obs["group"] == g)).to_numpy())
            for g in a.obs["group"].cat.categories
        }
        for g, h in partner.items():
            rows += list(idx[g])
            cols += list(idx[h])
    A = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(a.n_obs, a.n_obs)).tocsr()
    A = ((A + A.T) > 0).astype(np.float64)
    return sparse.csr_matrix(A)


def test_spatial_mode_counts_only_neighbours():
    a = _toy()
    a.obsm["spatial"] = np.random.default_rng(0).uniform(size=(a.n_obs, 2))
    expr = _run(a.copy())
    assert len(_row(expr, pair="PD-1/PD-L1", sender="tumour", receiver="T")) == 2
    # tumour cells touch only B cells, T cells only B cells: no tumour -> T contact
    a.obsp["spatial_connectivities"] = _graph(a, {"tumour": "B", "T": "B"})
    tab = _run(a)
    assert a.uns["checkpoint_interactions"]["mode"] == "spatial"
    assert tab["spatial"].all() and (tab["n_edges"] > 0).all()
    assert _row(tab, pair="PD-1/PD-L1", sender="tumour", receiver="T").empty
    assert _row(tab, pair="PD-1/PD-L1").empty  # B expresses neither gene
    # tumour cells touching T cells: the interaction is back, over the contacts only
    g = _graph(a, {"tumour": "T", "B": "B"}).tolil()
    tum = np.flatnonzero(((a.obs["sample"] == "s1") & (a.obs["group"] == "tumour")).to_numpy())
    tc = np.flatnonzero(((a.obs["sample"] == "s1") & (a.obs["group"] == "T")).to_numpy())
    for j in tc[1:5]:  # the first tumour cell touches 4 more T cells: it counts 5 times
        g[tum[0], j] = g[j, tum[0]] = 1.0
    a.obsp["spatial_connectivities"] = g.tocsr()
    tab = _run(a)
    r = _row(tab, sample="s1", pair="PD-1/PD-L1", sender="tumour", receiver="T").iloc[0]
    E = _lognorm(a)[:, GENES.index("CD274")]
    w = np.ones(len(tum))
    w[0] = 5
    assert r["n_edges"] == len(tum) + 4
    assert r["ligand_mean"] == pytest.approx(np.sum(w * E[tum]) / w.sum(), rel=1e-10)
    assert r["ligand_mean"] != pytest.approx(
        _row(expr, sample="s1", pair="PD-1/PD-L1", sender="tumour").iloc[0]["ligand_mean"]
    )
    assert r["pval"] < 0.05
    # connectivity_key=None forces the expression mode
    tab = _run(a, connectivity_key=None)
    assert not tab["spatial"].any() and a.uns["checkpoint_interactions"]["mode"] == "expression"


def test_min_cells_and_missing_pair_genes():
    a = _toy()
    tab = _run(a, min_cells=31)
    assert tab.empty and list(tab.columns) == list(tm.get.checkpoint_interactions(a).columns)
    pairs = pd.concat(
        [PAIRS, pd.DataFrame({"pair": ["LAG3/MHC-II"], "receptor": ["LAG3"], "ligand": ["HLA-DRA"]})]
    )
    tab = _run(a, pairs=pairs)
    used = a.uns["checkpoint_interactions"]["pairs"]
    assert not used.set_index("pair").loc["LAG3/MHC-II", "measured"]
    assert "LAG3" in used.set_index("pair").loc["LAG3/MHC-II", "missing"]
    assert "LAG3/MHC-II" not in set(tab["pair"])
    # case-insensitive gene names
    b = _toy()
    b.var_names = [g.lower() for g in GENES]
    assert len(_run(b)) == len(_run(_toy()))


def test_h5ad_roundtrip(tmp_path):
    a = _toy()
    a.obsp["spatial_connectivities"] = _graph(a, {"tumour": "T", "B": "B"})
    before = _run(a)
    a.write_h5ad(tmp_path / "x.h5ad")
    back = ad.read_h5ad(tmp_path / "x.h5ad")
    after = tm.get.checkpoint_interactions(back)
    pd.testing.assert_frame_equal(before, after, check_dtype=False)
    assert back.uns["checkpoint_interactions"]["mode"] == "spatial"
    sub = tm.get.checkpoint_interactions(back, sample="s1", max_padj=0.1)
    assert len(sub) >= 1 and (sub["padj"] <= 0.1).all() and set(sub["sample"]) == {"s1"}
    pd.testing.assert_frame_equal(
        sub, tm.get.checkpoint_interactions(a, sample="s1", max_padj=0.1), check_dtype=False
    )


def test_bad_inputs(monkeypatch):
    a = _toy()
    with pytest.raises(tm.MissingResultError, match="groupby"):
        tm.tl.checkpoint_interactions(a, groupby="nope", pairs=PAIRS)
    with pytest.raises(tm.MissingResultError, match="annotate"):
        tm.tl.checkpoint_interactions(a, groupby="cell_type_major", pairs=PAIRS)
    with pytest.raises(tm.InvalidInputError, match="var_names"):
        tm.tl.checkpoint_interactions(
            a, groupby="group", pairs=pd.DataFrame({"pair": ["x"], "receptor": ["FOO1"], "ligand": ["BAR2"]})
        )
    with pytest.raises(tm.InvalidParameterError, match="columns"):
        tm.tl.checkpoint_interactions(
            a, groupby="group", pairs=pd.DataFrame({"pair": ["x"], "receptor": ["PDCD1"]})
        )
    with pytest.raises(tm.InvalidParameterError, match="unique"):
        tm.tl.checkpoint_interactions(a, groupby="group", pairs=pd.concat([PAIRS, PAIRS]))
    with pytest.raises(tm.InvalidParameterError, match="n_perms"):
        tm.tl.checkpoint_interactions(a, groupby="group", pairs=PAIRS, n_perms=0)
    with pytest.raises(tm.InvalidParameterError, match="min_fraction"):
        tm.tl.checkpoint_interactions(a, groupby="group", pairs=PAIRS, min_fraction=2)
    with pytest.raises(tm.InvalidParameterError, match="rng"):
        tm.tl.checkpoint_interactions(a, groupby="group", pairs=PAIRS, rng=-1)
    b = a.copy()
    b.X = sparse.csr_matrix(-b.X.toarray())
    with pytest.raises(tm.InvalidInputError, match="negative"):
        tm.tl.checkpoint_interactions(b, groupby="group", pairs=PAIRS)
    with pytest.raises(tm.MissingResultError, match="checkpoint_interactions"):
        tm.get.checkpoint_interactions(a)
    with pytest.raises(tm.InvalidInputError, match="AnnData"):
        tm.tl.checkpoint_interactions(np.zeros((3, 3)), groupby="group")
    # the shipped pair table: used when present, a clear error when the installation lacks it
    import tmeatlas._resources as res

    monkeypatch.setattr(
        res, "data_path", lambda name: res.resources.files("tmeatlas") / "_data" / ("absent_" + name)
    )
    with pytest.raises(tm.InvalidParameterError, match="checkpoint_pairs.tsv"):
        tm.tl.checkpoint_interactions(a, groupby="group")


def test_shipped_pairs_if_present():
    from tmeatlas._resources import data_path

    if not data_path("checkpoint_pairs.tsv").is_file():
        pytest.skip("tmeatlas/_data/checkpoint_pairs.tsv not shipped yet")
    a = _toy()
    tm.tl.checkpoint_interactions(a, groupby="group", sample_key="sample", n_perms=50)
    tab = tm.get.checkpoint_interactions(a)
    pairs = a.uns["checkpoint_interactions"]["pairs"]
    assert {"pair", "receptor", "ligand", "measured"} <= set(pairs.columns)
    pd1 = pairs[(pairs["receptor"] == "PDCD1") & (pairs["ligand"] == "CD274")]
    if len(pd1):
        assert len(_row(tab, pair=pd1["pair"].iloc[0], sender="tumour", receiver="T")) == 2


# --------------------------------------------------------------------------------------------
# signature summaries and tests (samples as replicates)
# --------------------------------------------------------------------------------------------
def _scored(diffs, n_cells, seed=0, groups=("A", "B")):
    """Per sample ``s``: group A's cells are group B's cells shifted by ``diffs[s]`` (``sig_X``); ``sig_Y`` noise."""
    gen = np.random.default_rng(seed)
    obs = []
    for s, (d, n) in enumerate(zip(diffs, n_cells)):
        base = gen.normal(0.2 * s, 0.5, n)
        for g in groups:
            x = base + (d if g == groups[0] else 0.0)
            obs += [(f"P{s}", g, xi, yi) for xi, yi in zip(x, gen.normal(0, 1, n))]
    obs = pd.DataFrame(obs, columns=["sample", "group", "sig_X", "sig_Y"])
    obs.index = obs.index.astype(str)
    return ad.AnnData(sparse.csr_matrix((len(obs), 3), dtype=np.float32), obs=obs)


def test_signature_summary_pseudobulk():
    a = _scored([0.5, 0.6, 0.7, 0.8], [20, 20, 20, 20])
    pb = tm.get.signature_summary(a, groupby="group", sample_key="sample")
    assert list(pb.columns) == ["sample", "group", "signature", "n_cells", "mean", "median"]
    assert len(pb) == 4 * 2 * 2 and set(pb["signature"]) == {"X", "Y"}
    sel = a.obs[(a.obs["sample"] == "P2") & (a.obs["group"] == "A")]
    r = pb[(pb["sample"] == "P2") & (pb["group"] == "A") & (pb["signature"] == "X")].iloc[0]
    assert r["n_cells"] == 20
    assert r["mean"] == pytest.approx(sel["sig_X"].mean()) and r["median"] == pytest.approx(
        sel["sig_X"].median()
    )
    # named signatures, with or without the prefix; min_cells drops small combinations
    assert set(
        tm.get.signature_summary(a, groupby="group", sample_key="sample", signatures="sig_X")["signature"]
    ) == {"X"}
    assert tm.get.signature_summary(
        a, groupby="group", sample_key="sample", signatures=["X"], min_cells=21
    ).empty


def test_signature_test_paired_wilcoxon_known_answer():
    a = _scored([0.5, 0.6, 0.7, 0.8], [20, 20, 20, 20])
    res = tm.get.signature_test(a, groupby="group", sample_key="sample", signatures="X")
    r = res[res["group"] == "A"].iloc[0]
    assert r["test"] == "wilcoxon" and r["reference"] == "B" and r["n_samples"] == 4
    # all 4 differences positive: exact two-sided p = 2 * (1/2)^4 = 0.125, the smallest possible with 4 samples
    assert r["pval"] == pytest.approx(0.125)
    assert r["statistic"] == 0.0
    assert r["effect"] == pytest.approx(np.mean([0.5, 0.6, 0.7, 0.8]))
    rb = res[res["group"] == "B"].iloc[0]
    assert rb["pval"] == pytest.approx(0.125) and rb["effect"] == pytest.approx(-r["effect"])
    # six samples, all higher: p = 2/64
    a6 = _scored([0.5] * 6, [15] * 6)
    r6 = tm.get.signature_test(a6, groupby="group", sample_key="sample", signatures="X").iloc[0]
    assert r6["pval"] == pytest.approx(2 / 64)


def test_one_patient_does_not_make_a_difference():
    """A shift carried by one patient's many cells: significant over cells, not over patients."""
    from scipy.stats import ttest_ind

    diffs = [1.0, 0.05, -0.06, 0.07, -0.08, 0.09, -0.10, 0.11]
    a = _scored(diffs, [500] + [30] * 7, seed=2)
    cell_p = ttest_ind(
        a.obs.loc[a.obs["group"] == "A", "sig_X"], a.obs.loc[a.obs["group"] == "B", "sig_X"]
    ).pvalue
    assert cell_p < 1e-6  # pseudoreplication: cells as replicates
    res = tm.get.signature_test(a, groupby="group", sample_key="sample", signatures="X")
    r = res[res["group"] == "A"].iloc[0]
    # exact signed-rank test: W- = 2 + 4 + 6 = 12; P(W <= 12) = 59 / 256 of the 2^8 sign patterns
    assert r["n_samples"] == 8 and r["statistic"] == 12.0
    assert r["pval"] == pytest.approx(2 * 59 / 256)


def test_signature_test_more_groups_and_unpaired():
    a = _scored([0.8, 0.9, 1.0, 1.1, 1.2], [20] * 5, groups=("A", "B", "C"))
    res = tm.get.signature_test(a, groupby="group", sample_key="sample")
    omni = res[(res["group"] == "all") & (res["signature"] == "X")].iloc[0]
    assert omni["test"] == "friedman" and omni["n_samples"] == 5
    rows = res[res["signature"] == "X"].set_index("group")
    assert (
        set(rows.index) == {"all", "A", "B", "C"} and (rows.loc[["A", "B", "C"], "reference"] == "rest").all()
    )
    assert rows.loc["A", "effect"] > 0 and rows.loc["A", "pval"] == pytest.approx(2 / 32)
    assert res["padj"].notna().all() and (res["padj"] >= res["pval"] - 1e-12).all()
    # groups that are sample-level conditions: Mann-Whitney across samples
    b = _scored([0.0] * 6, [20] * 6)
    b = b[b.obs["group"] == "A"].copy()
    b.obs["response"] = b.obs["sample"].map({f"P{i}": ("R" if i < 3 else "NR") for i in range(6)})
    res = tm.get.signature_test(b, groupby="response", sample_key="sample", signatures="X")
    assert set(res["test"]) == {"mannwhitneyu"} and (res["n_samples"] == 6).all()
    with pytest.raises(tm.InvalidParameterError, match="test"):
        tm.get.signature_test(a, groupby="group", sample_key="sample", test="ttest")


def test_signature_bad_inputs():
    a = _scored([0.5] * 4, [20] * 4)
    plain = a.copy()
    plain.obs = plain.obs[["sample", "group"]]
    with pytest.raises(tm.MissingResultError, match="score_signatures"):
        tm.get.signature_summary(plain, groupby="group", sample_key="sample")
    with pytest.raises(tm.MissingResultError, match="HYPOXIA"):
        tm.get.signature_test(a, groupby="group", sample_key="sample", signatures="HYPOXIA")
    with pytest.raises(tm.MissingResultError, match="groupby"):
        tm.get.signature_summary(a, groupby="nope", sample_key="sample")
    with pytest.raises(tm.InvalidParameterError, match="sample_key"):
        tm.get.signature_test(a, groupby="group", sample_key=None)
    with pytest.raises(tm.InvalidInputError, match="two groups"):
        tm.get.signature_test(a, groupby="group", sample_key="sample", groups=["A"])
    with pytest.raises(tm.InvalidParameterError, match="groups"):
        tm.get.signature_test(a, groupby="group", sample_key="sample", groups=["A", "Z"])


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------
def _plot_cases():
    a = _scored([0.5, 0.6, 0.7, 0.8], [20] * 4, groups=("A", "B", "C"))
    c = _toy()
    _run(c)
    return [
        (tm.pl.signatures, a, {"groupby": "group"}),
        (tm.pl.signatures, a, {"groupby": "group", "kind": "heatmap", "standard_scale": None}),
        (tm.pl.signature_by_sample, a, {"signature": "X", "groupby": "group", "sample_key": "sample"}),
        (tm.pl.checkpoint_interactions, c, {}),
        (tm.pl.checkpoint_interactions, c, {"sample": "s1", "pairs": ["PD-1/PD-L1"], "max_padj": None}),
    ]


def test_plot_contract(tmp_path):
    import matplotlib.pyplot as plt

    for fn, adata, kw in _plot_cases():
        fig = fn(adata, **kw, return_fig=True)
        assert isinstance(fig, mpl.figure.Figure)
        plt.close(fig)
        out = tmp_path / f"{fn.__name__}.pdf"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert fn(adata, **kw, show=False, save=out) is None
        assert out.stat().st_size > 1000
        fig, ax = plt.subplots()
        axes = fn(adata, **kw, ax=ax, show=False)
        assert axes[0] is ax
        plt.close(fig)


def test_plot_content():
    import matplotlib.pyplot as plt

    a = _scored([0.5, 0.6, 0.7, 0.8], [20] * 4)
    fig = tm.pl.signature_by_sample(a, signature="X", groupby="group", sample_key="sample", return_fig=True)
    title = fig.axes[0].get_title()
    assert "wilcoxon" in title and "p = 0.12" in title and "4 samples" in title
    assert len(fig.axes[0].lines) >= 4  # one line per sample joining its groups
    plt.close(fig)
    c = _toy()
    _run(c)
    fig = tm.pl.checkpoint_interactions(c, max_padj=0.05, return_fig=True)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "s1 | tumour → T" in labels and "s2 | tumour → T" in labels
    plt.close(fig)
    fig = tm.pl.checkpoint_interactions(c, max_padj=1e-9, return_fig=True)
    assert "no checkpoint interaction" in fig.axes[0].texts[0].get_text()
    plt.close(fig)
    with pytest.raises(tm.InvalidParameterError, match="kind"):
        tm.pl.signatures(a, groupby="group", kind="violin")
    with pytest.raises(tm.InvalidParameterError, match="pairs"):
        tm.pl.checkpoint_interactions(c, pairs=["nope"])
