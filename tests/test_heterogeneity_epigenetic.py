"""Known-answer tests of the epigenetic indices of ``tm.tl.heterogeneity`` (``chromatin=``): the
chromatin states are called by the same code as the RNA states, on gene activity scores of the same
cells (tiny Poisson matrices as in ``tests/test_heterogeneity.py``)."""

from __future__ import annotations

import importlib.util

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm
from tmeatlas.tl._heterogeneity import _kappa

EMT = "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION"
HYP = "HALLMARK_HYPOXIA"
TWO = {"EMT": EMT, "hypoxia": HYP}
EPI = ("epigenetic_diversity", "epigenetic_rna_agreement")


def _adata(n=200, *, samples=None, seed=0):
    """Malignant cells in two clones; a third each in EMT / hypoxia (its genes 8-fold) or neither."""
    gen = np.random.default_rng(seed)
    lib = tm.datasets.signatures()
    emt = list(lib.loc[lib["name"] == EMT, "gene"])
    hyp = [g for g in lib.loc[lib["name"] == HYP, "gene"] if g not in set(emt)]
    names = emt + hyp + [f"BG{i}" for i in range(300)]
    states = np.resize(np.array(["EMT", "hypoxia", None], dtype=object), n)
    lam = np.ones((n, len(names)))
    lam[states == "EMT", : len(emt)] *= 8
    lam[states == "hypoxia", len(emt) : len(emt) + len(hyp)] *= 8
    obs = pd.DataFrame(
        {
            "malignant": "malignant",
            "cnv_clone": np.repeat(["A", "B"], n // 2),
            "sample": samples if samples is not None else "S1",
        },
        index=[f"c{i}" for i in range(n)],
    )
    X = sparse.csr_matrix(gen.poisson(lam).astype(np.float32))
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=names))


def _run(a, chromatin, **kw):
    tm.tl.heterogeneity(a, programs=TWO, chromatin=chromatin, **{"n_boot": 50, **kw})
    return tm.get.heterogeneity(a)


def test_kappa_known_answer():
    A = np.array([[[20, 5], [10, 15]], [[10, 0], [0, 10]], [[30, 0], [0, 0]]], float)
    # po = 0.7, pe = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 -> 0.4; perfect agreement 1; one state in both: undefined
    np.testing.assert_allclose(_kappa(A), [0.4, 1.0, np.nan])


def test_gene_activity_equal_to_rna_gives_the_rna_states():
    a = _adata()
    r = _run(a, a.copy()).iloc[0]
    assert r["n_chromatin_profiled"] == 200 and r["n_states"] == 3
    for end in ("", "_low", "_high"):
        assert r[f"epigenetic_diversity{end}"] == r[f"state_diversity{end}"]
    assert r["epigenetic_rna_agreement"] == 1.0
    assert "epigenetic" not in r["not_measured"]
    p = a.uns["heterogeneity"]["params"]["chromatin"]
    assert p["modality"] == "AnnData" and p["n_cells_matched"] == 200 and p["n_genes"] == a.n_vars
    assert sorted(p["signatures_scored"]) == sorted(TWO.values())


def test_identical_cells_have_one_chromatin_state():
    a = _adata()
    c = ad.AnnData(
        X=np.tile(np.asarray(a.X[:1].todense()), (a.n_obs, 1)),
        obs=pd.DataFrame(index=a.obs_names),
        var=pd.DataFrame(index=a.var_names),
    )
    r = _run(a, c).iloc[0]
    assert r["epigenetic_diversity"] == 0  # everyone "baseline": H = 0 and no Miller-Madow term
    # one chromatin state against three RNA states: agreement exactly at chance
    assert r["epigenetic_rna_agreement"] == pytest.approx(0.0, abs=1e-12)


def test_cells_without_a_profile_do_not_count():
    a = _adata()
    half = a[::2].copy()
    r = _run(a, half).iloc[0]
    assert r["n_malignant"] == 200 and r["n_chromatin_profiled"] == 100
    # the same cells scored alone, as RNA, give the same states: their diversity is the epigenetic one
    alone = _run(half, None).iloc[0]
    assert r["epigenetic_diversity"] == pytest.approx(alone["state_diversity"], abs=1e-12)
    assert a.uns["heterogeneity"]["params"]["chromatin"]["n_cells_matched"] == 100


def test_a_sample_with_few_profiled_cells_is_not_measured():
    a = _adata(samples=np.repeat(["big", "small"], 100))
    keep = np.r_[np.arange(100), np.arange(100, 110)]  # all of "big", 10 cells of "small"
    df = _run(a, a[keep].copy(), sample_key="sample").set_index("sample")
    assert np.isfinite(df.loc["big", "epigenetic_diversity"])
    assert df.loc["small", "n_chromatin_profiled"] == 10
    for k in EPI:
        assert np.isnan(df.loc["small", k]) and np.isnan(df.loc["small", f"{k}_low"])
    assert "10 malignant cells with a chromatin profile (fewer than 20)" in df.loc["small", "not_measured"]
    assert np.isfinite(df.loc["small", "state_diversity"])  # the RNA indices do not depend on it


def test_without_chromatin_the_column_says_not_measured():
    df = _run(_adata(), None)
    assert df["n_chromatin_profiled"].isna().all()
    for k in EPI:
        assert df[k].isna().all()
    assert "no chromatin-accessibility modality given" in df["not_measured"].iloc[0]


@pytest.mark.skipif(importlib.util.find_spec("mudata") is None, reason="mudata not installed")
@pytest.mark.filterwarnings("ignore:var_names are not unique")  # RNA and gene activity share gene names
def test_mudata_modality():
    import mudata

    mudata.set_options(pull_on_update=False)
    a = _adata()
    peaks = ad.AnnData(X=a.X.copy(), obs=pd.DataFrame(index=a.obs_names))
    peaks.var_names = [f"chr2:{100 * i}-{100 * i + 50}" for i in range(a.n_vars)]
    md = mudata.MuData({"rna": a.copy(), "atac": peaks, "gene_activity": a.copy()})
    r = _run(a, md, chromatin_mod="gene_activity").iloc[0]
    assert r["epigenetic_diversity"] == r["state_diversity"]
    assert a.uns["heterogeneity"]["params"]["chromatin"]["modality"] == "gene_activity"
    with pytest.raises(tm.InvalidParameterError, match="did you mean 'gene_activity'"):
        tm.tl.heterogeneity(a, programs=TWO, chromatin=md, chromatin_mod="gene_activty")
    with pytest.raises(tm.InvalidInputError, match="holds peaks.*chromatin_mod="):  # the default, "atac"
        tm.tl.heterogeneity(a, programs=TWO, chromatin=md)


@pytest.mark.parametrize("peak", ["chr1:{}-{}", "chr1-{}-{}", "1_{}_{}"])
def test_peaks_are_refused(peak):
    a = _adata(60)
    c = ad.AnnData(X=a.X.copy(), obs=pd.DataFrame(index=a.obs_names))
    c.var_names = [peak.format(1000 * i, 1000 * i + 500) for i in range(a.n_vars)]
    with pytest.raises(tm.InvalidInputError, match="holds peaks.*compute gene activity scores first.*Signac"):
        tm.tl.heterogeneity(a, programs=TWO, chromatin=c)


def test_bad_chromatin_inputs_raise_typed_errors():
    a = _adata(60)
    c = a.copy()
    c.var_names = [f"G{i}" for i in range(a.n_vars)]
    with pytest.raises(tm.InvalidInputError, match="no gene of the programs.*gene activity"):
        tm.tl.heterogeneity(a, programs=TWO, chromatin=c)
    c = a.copy()
    c.obs_names = [f"other{i}" for i in range(a.n_obs)]
    with pytest.raises(tm.InvalidInputError, match="no cell of adata is in chromatin"):
        tm.tl.heterogeneity(a, programs=TWO, chromatin=c)
    c = a.copy()
    c.X = c.X.toarray() - 1.0
    with pytest.raises(tm.InvalidInputError, match=r"chromatin\.X .*negative"):
        tm.tl.heterogeneity(a, programs=TWO, chromatin=c)
    with pytest.raises(tm.InvalidParameterError, match="AnnData of gene activity"):
        tm.tl.heterogeneity(a, programs=TWO, chromatin=a.X)


def test_round_trip_determinism_and_no_mutation(tmp_path):
    a = _adata()
    c = a[::2].copy()
    c.X = c.X.toarray() * 0.5  # log-normalised-like, dense: not counts
    X0, C0 = a.X.copy(), c.X.copy()
    obs0, cobs0, cvar0 = a.obs.copy(), c.obs.copy(), c.var.copy()
    b = tm.tl.heterogeneity(a, programs=TWO, chromatin=c, n_boot=30, rng=3, copy=True)
    b2 = tm.tl.heterogeneity(a, programs=TWO, chromatin=c, n_boot=30, rng=3, copy=True)
    pd.testing.assert_frame_equal(tm.get.heterogeneity(b), tm.get.heterogeneity(b2))
    assert (a.X != X0).nnz == 0 and np.array_equal(c.X, C0)
    pd.testing.assert_frame_equal(a.obs, obs0)
    pd.testing.assert_frame_equal(c.obs, cobs0)
    pd.testing.assert_frame_equal(c.var, cvar0)
    assert "heterogeneity" not in a.uns and not c.uns
    b.write_h5ad(tmp_path / "x.h5ad")
    back = ad.read_h5ad(tmp_path / "x.h5ad")
    pd.testing.assert_frame_equal(tm.get.heterogeneity(back), tm.get.heterogeneity(b))
    assert int(back.uns["heterogeneity"]["params"]["chromatin"]["n_cells_matched"]) == 100
