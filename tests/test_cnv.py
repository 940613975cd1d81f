"""CNV inference, malignant calls and clones: known answers, real data, bad input."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.metrics import f1_score

import tmeatlas as tm
from tmeatlas._core.cnv import arm_sums, bin_layout, smooth_chunk


def test_smoothing_known_answer():
    """Running mean truncated at segment ends, evaluated at bin centres, median-centred."""
    # one cell, 8 genes in two segments of 4; reference 0; window 3
    x = np.array([[1.0, 1, 1, 1, 0, 0, 0, 3]])
    X = sparse.csr_matrix(x)
    seg = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    s0, s1, centers, segs, first, last = bin_layout(seg, 1)
    assert list(centers) == list(range(8)) and list(first) == list(range(8)) and list(last) == list(range(8))
    lo = hi = np.zeros((1, 8))
    out = smooth_chunk(
        X.indptr,
        X.indices,
        X.data,
        0,
        1,
        np.arange(8),
        8,
        np.zeros(1, np.int64),
        lo,
        hi,
        s0,
        s1,
        centers,
        segs,
        1,
        10.0,
        1,
        1e4,
    )
    raw = np.array([1, 1, 1, 1, 0, 0, 1, 1.5])  # window mean, truncated at 3|4 and at the end
    np.testing.assert_allclose(out[0], raw - np.median(raw), atol=1e-6)
    # clipping and the reference envelope: values inside [lo, hi] are 0
    out = smooth_chunk(
        X.indptr,
        X.indices,
        X.data,
        0,
        1,
        np.arange(8),
        8,
        np.zeros(1, np.int64),
        np.full((1, 8), 0.5),
        np.full((1, 8), 2.0),
        s0,
        s1,
        centers,
        segs,
        0,
        0.7,
        1,
        1e4,
    )
    raw = np.array([0, 0, 0, 0, -0.5, -0.5, -0.5, 0.7])
    np.testing.assert_allclose(out[0], raw - np.median(raw), atol=1e-6)


def test_arm_sums_known_answer():
    """Per cell and arm, the sum of log1p(CP10k) (counts), of log1p (linear) or of the values (log)."""
    X = sparse.csr_matrix(np.array([[1.0, 3.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 2.0, 0.0]]))
    arms = np.array([[0, 0, 1, -1], [1, -1, 0, 0]], dtype=np.int64)  # two gene-to-arm assignments
    got = arm_sums(X.indptr, X.indices, X.data, arms, 2, 0, 10_000.0)
    cp = np.log1p(X.toarray() / X.toarray().sum(axis=1, keepdims=True).clip(1) * 10_000)
    want0 = np.column_stack([cp[:, 0] + cp[:, 1], cp[:, 2]])
    want1 = np.column_stack([cp[:, 2] + cp[:, 3], cp[:, 0]])
    np.testing.assert_allclose(got[0], want0)
    np.testing.assert_allclose(got[1], want1)
    np.testing.assert_allclose(
        arm_sums(X.indptr, X.indices, X.data, arms, 2, 1, 1.0)[0], [[4, 0], [0, 0], [2, 2]]
    )
    lin = arm_sums(X.indptr, X.indices, X.data, arms, 2, 2, 1.0)[1]
    np.testing.assert_allclose(lin, [[np.log1p(4), np.log1p(1)], [0, 0], [np.log1p(2), np.log1p(2)]])
    # a slice of the row pointer reads those rows only (the caller's row chunks)
    np.testing.assert_allclose(arm_sums(X.indptr[2:], X.indices, X.data, arms, 2, 0, 10_000.0)[0], want0[2:])


def test_rowcorr_one_or_several_profiles():
    from tmeatlas.tl._cnv_evidence import rowcorr

    P = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 2.0, 2.0]], dtype=np.float32)
    c = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(rowcorr(P, c), [1.0, -1.0, 0.0], atol=1e-6)
    both = rowcorr(P, np.column_stack([c, -c, np.zeros(3)]))
    np.testing.assert_allclose(both, [[1, -1, 0], [-1, 1, 0], [0, 0, 0]], atol=1e-6)


def test_bin_layout_never_straddles_segments():
    seg = np.repeat([0, 1, 2], [25, 3, 40])
    s0, s1, c, sg, first, last = bin_layout(seg, 10)
    assert list(np.bincount(sg)) == [2, 1, 4]
    for b in range(len(c)):
        assert s0[sg[b]] <= first[b] <= c[b] <= last[b] < s1[sg[b]]


@pytest.mark.realdata
def test_tirosh_oligodendroglioma_no_reference(tirosh):
    """Per-cell malignant F1 >= 0.95 without a reference; 1p and 19q the two most-lost arms."""
    truth = tirosh.obs["malignant"].astype(str) == "malignant"
    tirosh.var = tirosh.var[[]]  # hg19 positions shipped with the file are replaced by ours
    tm.pp.gene_positions(tirosh)
    tm.tl.infer_cnv(tirosh, sample_key="patient")
    assert tirosh.uns["cnv"]["input_type"] == "linear"
    assert not tirosh.obs.loc[truth.to_numpy(), "cnv_reference"].any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MGH54 has 11 cells: pooled, too few, uncertain (documented)
        tm.tl.call_malignant(tirosh, sample_key="patient")
    pred = tirosh.obs["malignant"] == "malignant"
    assert f1_score(truth, pred) >= 0.95
    bins = tirosh.uns["cnv"]["bins"]
    X = tirosh.obsm["X_cnv"][truth.to_numpy()]
    arm_mean = pd.DataFrame(X.T).groupby(bins["arm"].to_numpy()).mean().mean(axis=1).sort_values()
    assert set(arm_mean.index[:2]) == {"1p", "19q"}
    # gene-level clone calls: 1p lost in every tumour; 19q shifted down in every tumour and
    # significant in at least half (its genes vary more between glia and the microglia reference)
    tm.tl.cnv_clones(tirosh, sample_key="patient", min_clone_size=10)
    calls = tirosh.uns["cnv_clones"]["arm_calls"]
    p1, q19 = calls[calls["arm"] == "1p"], calls[calls["arm"] == "19q"]
    assert (p1["call"] == "loss").all() and p1["sample"].nunique() == 4
    assert (q19["shift"] < -0.15).all() and (q19["call"] == "loss").sum() >= 2


@pytest.mark.realdata
def test_copykat_breast_agreement(copykat_breast):
    a = copykat_breast
    tm.pp.gene_positions(a)
    tm.tl.infer_cnv(a)
    assert a.uns["cnv"]["input_type"] == "counts"
    tm.tl.call_malignant(a)
    f1 = f1_score(a.obs["copykat.pred"] == "aneuploid", a.obs["malignant"] == "malignant")
    assert f1 >= 0.9, f1


# ---------------------------------------------------------------- simulated cohort
@pytest.fixture(scope="module")
def sim_cnv():
    """A cohort with 3 tumours and a normal-only patient, through the whole CNV chain."""
    a = tm.datasets.simulate_tumor(n_cells=6000, n_patients=3, normal_patient=True, rng=7)
    tm.tl.infer_cnv(a, sample_key="sample")
    tm.tl.call_malignant(a, sample_key="sample")
    tm.tl.cnv_clones(a, sample_key="sample")
    return a


def test_simulated_malignant_f1_and_normal_patient(sim_cnv):
    a = sim_cnv
    truth = a.obs["true_malignant"].to_numpy(bool)
    pred = (a.obs["malignant"] == "malignant").to_numpy()
    assert f1_score(truth, pred) >= 0.97
    samples = a.obs["sample"].astype(str)
    normal = samples[
        ~a.obs.groupby("sample", observed=True)["true_malignant"].transform("any").to_numpy()
    ].iloc[0]
    in_normal = (samples == normal).to_numpy()
    assert pred[in_normal].mean() <= 0.02
    tab = a.uns["malignant"]["samples"].set_index("sample")
    assert not tab.loc[normal, "coherent_cnv"]
    assert not a.obs.loc[truth, "cnv_reference"].any()


def test_simulated_clones(sim_cnv):
    """Clone ARI in the tumours of this cohort (seed 7, 8,000 genes): >= 0.7 in each, >= 0.8 in two.

    Measured here: 0.851 / 0.822 / 0.844 since the leaves of the clone tree are reassigned jointly on
    all separating arms (0.839 / 0.799 / 0.647 before: a cell sent the wrong way at a split could
    never reach its clone). benchmarks/clones.py compares with an oracle trained on the true clones:
    single-arm subclones on short arms are near per-cell resolution at 8,000 genes.
    """
    from sklearn.metrics import adjusted_rand_score

    a = sim_cnv
    mal = a.obs["true_malignant"].to_numpy(bool)
    aris = []
    for s in a.obs["sample"].cat.categories:
        m = mal & (a.obs["sample"] == s).to_numpy()
        if not m.any():
            continue
        ari = adjusted_rand_score(a.obs["true_clone"][m].astype(str), a.obs["cnv_clone"][m].astype(str))
        assert ari >= 0.7, (s, ari)
        aris.append(ari)
    assert sum(x >= 0.8 for x in aris) >= 2, aris


def test_simulated_arm_calls_match_truth(sim_cnv):
    """Each called clone's gains/losses are the simulated arms of the true clone it mostly holds."""
    a = sim_cnv
    truth = a.uns["simulation"]["clone_cnv"]
    calls = a.uns["cnv_clones"]["arm_calls"]
    mal = a.obs["true_malignant"].to_numpy(bool)
    tp = fp = fn = 0
    for clone in a.uns["cnv_clones"]["clones"]["clone"]:
        m = mal & (a.obs["cnv_clone"] == clone).to_numpy()
        true_clone = a.obs["true_clone"][m].astype(str).value_counts().index[0]
        t = truth[(truth["clone"].astype(str) == true_clone) & (truth["level"] == "arm")]
        t = {(r.arm, "gain" if r.copy_number > 2 else "loss") for r in t.itertuples() if r.copy_number != 2}
        c = calls[(calls["clone"] == clone) & (calls["call"] != "neutral")]
        c = set(zip(c["arm"], c["call"]))
        tp += len(t & c)
        fp += len(c - t)
        fn += len(t - c)
    assert tp / (tp + fp) >= 0.9 and tp / (tp + fn) >= 0.8, (tp, fp, fn)


def test_roundtrip_and_determinism(sim_cnv, tmp_path):
    a = sim_cnv
    a.write_h5ad(tmp_path / "a.h5ad")
    b = ad.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(a.obsm["X_cnv"], b.obsm["X_cnv"])
    assert list(b.obs["cnv_clone"].cat.categories) == list(a.obs["cnv_clone"].cat.categories)
    pd.testing.assert_frame_equal(a.uns["cnv_clones"]["tree"], b.uns["cnv_clones"]["tree"], check_dtype=False)
    c = tm.tl.cnv_clones(b, sample_key="sample", copy=True)
    assert (c.obs["cnv_clone"].astype(str) == a.obs["cnv_clone"].astype(str)).all()


# ---------------------------------------------------------------- bad input
def test_bad_input(cohort):
    a = cohort
    no_pos = a.copy()
    no_pos.var = no_pos.var.drop(columns=["chromosome"])
    with pytest.raises(tm.MissingResultError, match=r"tm.pp.gene_positions"):
        tm.tl.infer_cnv(no_pos)
    one = a[:, (a.var["chromosome"] == "chr1").to_numpy()].copy()
    with pytest.raises(tm.InvalidInputError, match="several chromosomes"):
        tm.tl.infer_cnv(one)
    nan = a.copy()
    nan.X = nan.X.astype(np.float32)
    nan.X.data[:5] = np.nan
    with pytest.raises(tm.InvalidInputError, match="NaN"):
        tm.tl.infer_cnv(nan)
    allref = a.copy()
    allref.obs["lab"] = "normal"
    with pytest.raises(tm.InvalidInputError, match="all .* cells are in the reference"):
        tm.tl.infer_cnv(allref, reference_key="lab", reference_cats=["normal"])
    with pytest.raises(tm.InvalidParameterError, match="not found"):
        tm.tl.infer_cnv(a, reference_key="true_cell_type", reference_cats=["Unicorn"])
    with pytest.raises(tm.InvalidParameterError, match="both reference_key and reference_cats"):
        tm.tl.infer_cnv(a, reference_key="true_cell_type")
    with pytest.raises(tm.InvalidParameterError, match="odd"):
        tm.tl.infer_cnv(a, window=100)
    with pytest.raises(tm.InvalidParameterError, match="regular expression"):
        tm.tl.infer_cnv(a, exclude_genes="IG[")
    with pytest.raises(tm.MissingResultError, match="infer_cnv"):
        tm.tl.call_malignant(a)
    with pytest.raises(tm.MissingResultError, match="call_malignant"):
        tm.tl.cnv_clones(a)


def test_given_reference_and_tiny_sample(cohort):
    """A given reference is used as such; a 5-cell sample is pooled and, alone, marked uncertain."""
    a = cohort
    normal_types = ["CD4 T", "B", "C1Q+ macrophage", "iCAF", "Endothelial"]
    tm.tl.infer_cnv(a, reference_key="true_cell_type", reference_cats=normal_types, sample_key="sample")
    assert a.obs["cnv_reference"].sum() == a.obs["true_cell_type"].isin(normal_types).sum()
    assert a.uns["cnv"]["reference"]["how"] == "given"
    a.obs["sample2"] = a.obs["sample"].astype(str)
    a.obs.iloc[:5, a.obs.columns.get_loc("sample2")] = "tiny"
    with pytest.warns(UserWarning, match="too few"):
        tm.tl.call_malignant(a, sample_key="sample2")
    assert (a.obs["malignant"].iloc[:5] == "uncertain").all()
    assert np.isnan(a.obs["malignant_prob"].iloc[:5]).all()
    assert (a.obs["malignant"].iloc[5:] != "uncertain").mean() > 0.95


def test_log_normalised_input_gives_same_calls(cohort):
    import scanpy as sc

    a = cohort
    b = a.copy()
    sc.pp.normalize_total(b, target_sum=1e4)
    sc.pp.log1p(b)
    tm.tl.infer_cnv(a, sample_key="sample")
    tm.tl.infer_cnv(b, sample_key="sample")
    assert b.uns["cnv"]["input_type"] == "log"
    np.testing.assert_allclose(a.obsm["X_cnv"], b.obsm["X_cnv"], atol=1e-4)


def test_chunk_size_and_threads_do_not_change_results(cohort):
    a = cohort
    r1 = tm.tl.infer_cnv(a, sample_key="sample", chunk_size=97, n_jobs=1, copy=True)
    r2 = tm.tl.infer_cnv(a, sample_key="sample", chunk_size=5000, n_jobs=2, copy=True)
    np.testing.assert_allclose(r1.obsm["X_cnv"], r2.obsm["X_cnv"], atol=1e-5)


def test_no_normal_cells_falls_back_to_all_cells(cohort):
    """Without any cell of a normal lineage the profiles are relative to all cells (with a
    warning) and no cell is marked as reference; call_malignant then cannot tell which side of
    a CNV difference is normal (normal cells mirror the tumour) and marks every cell uncertain."""
    a = cohort[cohort.obs["true_compartment"].isin(["malignant", "epithelial"]).to_numpy()].copy()
    with pytest.warns(UserWarning, match="relative to the mean of all cells"):
        tm.tl.infer_cnv(a, sample_key="sample")
    assert a.uns["cnv"]["reference"]["how"] == "all cells (fallback)"
    assert not a.obs["cnv_reference"].any()
    with pytest.warns(UserWarning, match="no reference"):
        tm.tl.call_malignant(a, sample_key="sample")
    assert (a.obs["malignant"] == "uncertain").all() and a.obs["malignant_prob"].isna().all()
    assert set(a.uns["malignant"]["samples"]["reason"]) == {"no reference cells"}


# ---------------------------------------------------------------- issue 22: stroma-like and majority tumours
@pytest.mark.parametrize(
    ("opts", "min_f1"),
    [
        # benchmarks/malignant_real.py (4,000 cells, seeds 0-2), lowest patient F1 after the lineage
        # checks: mesenchymal 0.989, majority 0.996, both 0.998 (before them: 0.11-0.38 and 0 for
        # mesenchymal and both); asserted at the 0.9
        ({"mesenchymal_tumour": 0.5}, 0.9),
        ({"tumour_fraction": 0.75}, 0.9),
        ({"mesenchymal_tumour": 0.5, "tumour_fraction": 0.75}, 0.9),
    ],
)
def test_mesenchymal_and_majority_tumours(opts, min_f1):
    """Malignant cells with a fibroblast program and tumour-majority samples: every tumour patient
    F1 >= 0.9 and the normal-only patient <= 2 % malignant (issue 22 acceptance), no malignant cell
    in the reference, and the reference's checks are recorded."""
    a = tm.datasets.simulate_tumor(n_cells=3000, n_patients=2, normal_patient=True, rng=3, **opts)
    tm.tl.infer_cnv(a, sample_key="sample")
    tm.tl.call_malignant(a, sample_key="sample")
    truth = a.obs["true_malignant"].to_numpy(bool)
    pred = (a.obs["malignant"] == "malignant").to_numpy()
    ref = a.uns["cnv"]["reference"]
    assert ref["verified"] and isinstance(ref["lineage_checks"], pd.DataFrame)
    assert a.obs.loc[truth, "cnv_reference"].sum() <= 0.01 * truth.sum()
    for s in a.obs["sample"].cat.categories:
        i = (a.obs["sample"] == s).to_numpy()
        if truth[i].any():
            assert f1_score(truth[i], pred[i]) >= min_f1, (s, f1_score(truth[i], pred[i]))
        else:
            assert pred[i].mean() <= 0.02


def test_unverified_reference_gives_warning_and_uncertain_calls():
    """Without immune cells the automatic reference (stromal cells, here half of them malignant
    cells with a fibroblast program) cannot be checked: infer_cnv warns and records it,
    call_malignant marks every call uncertain with a warning, never a confident answer."""
    a = tm.datasets.simulate_tumor(n_cells=2000, n_patients=2, rng=1, mesenchymal_tumour=0.5)
    a = a[(a.obs["true_compartment"] != "immune").to_numpy()].copy()
    with pytest.warns(UserWarning, match="could not be checked"):
        tm.tl.infer_cnv(a, sample_key="sample")
    assert a.uns["cnv"]["reference"]["verified"] is False
    with pytest.warns(UserWarning, match="suspect reference"):
        tm.tl.call_malignant(a, sample_key="sample")
    assert (a.obs["malignant"] == "uncertain").all()
    tab = a.uns["malignant"]["samples"]
    assert not tab["trusted"].any() and tab["reason"].str.startswith("suspect reference").all()


def test_guard_known_answers():
    """Known answers of the per-sample guard: a sample whose reference carries the tumour profile
    and one whose CNV evidence does not separate are uncertain; a clean one and one without a
    coherent CNV profile are kept as called, unless "no CNV" was shown against fewer than
    ``min_cells`` reference cells (too little power to call a sample tumour-free)."""
    from tmeatlas.tl._malignant import _guard_samples

    table = pd.DataFrame({
        "sample": ["clean", "bad_ref", "mixed", "no_cnv", "weak"], "coherent_cnv": [True, True, True, False, False],
        "separation": [5.0, 6.0, 1.2, np.nan, np.nan], "reference_tumour_like": [0.0, 0.3, 0.0, np.nan, np.nan],
        "n_reference": [8, 40, 40, 40, 8], "n_cells": [100] * 5, "reason": ["x"] * 5,
    })  # fmt: skip
    groups = np.repeat(table["sample"].to_numpy(), 3).astype(object)
    with pytest.warns(UserWarning, match="bad_ref, mixed, weak"):
        out = _guard_samples(table, groups, {"verified": True}, 20)
    np.testing.assert_array_equal(out, np.repeat([False, True, True, False, True], 3))
    assert list(table["trusted"]) == [True, False, False, True, False]
    assert table.loc[1, "reason"].startswith("suspect reference") and "separate" in table.loc[2, "reason"]
    assert "against only 8 reference cells" in table.loc[4, "reason"]


def test_refine_leaves_known_answer():
    """The joint reassignment moves cells the tree sent the wrong way back to their clone.

    Two clones differ on arm "1p" (means 0 and 3, unit noise, noise-free elsewhere); the tree's
    leaves hold 10 cells of each clone on the wrong side. A likelihood under the two clones' means
    (pooled variance, size prior) puts every cell on its own side; tree sizes are updated.
    """
    from tmeatlas.tl._clones import _refine_leaves

    gen = np.random.default_rng(0)
    n = 200
    truth = np.repeat([0, 1], n // 2)
    As = np.zeros((n, 3))
    As[:, 1] = 3.0 * truth + gen.normal(0, 0.3, n)
    As[:, 0] = gen.normal(0, 1.0, n)  # an arm that separates nothing and is not a split arm
    arms = np.array(["1q", "1p", "2p"])
    wrong = np.r_[np.arange(10), np.arange(100, 110)]
    lab = truth.copy()
    lab[wrong] = 1 - lab[wrong]
    leaves = [("00", np.flatnonzero(lab == 0)), ("01", np.flatnonzero(lab == 1))]
    rows = [
        {"node": "S:0", "sample": "S", "n_cells": n, "split_arms": ""},
        {"node": "S:00", "sample": "S", "n_cells": 100, "split_arms": "1p-"},
        {"node": "S:01", "sample": "S", "n_cells": 100, "split_arms": "1p-"},
    ]
    out = _refine_leaves(leaves, As, arms, rows, "S", 20)
    assert [node for node, _ in out] == ["00", "01"]
    assert np.array_equal(out[0][1], np.arange(100)) and np.array_equal(out[1][1], np.arange(100, 200))
    assert [r["n_cells"] for r in rows] == [200, 100, 100]
    # a reassignment that would leave a clone below min_size is not taken: the tree's leaves stay.
    # Leaf "01" holds 30 cells of which only the last 12 differ on 1p.
    small = [("00", np.arange(170)), ("01", np.arange(170, 200))]
    As2 = np.zeros((n, 3))
    As2[:, 1] = gen.normal(0, 0.3, n)
    As2[188:, 1] += 3.0
    assert [len(ix) for _, ix in _refine_leaves(small, As2, arms, rows, "S", 20)] == [170, 30]
    assert [len(ix) for _, ix in _refine_leaves(small, As2, arms, rows, "S", 5)] == [188, 12]
    # one leaf, or no split arm: unchanged
    assert _refine_leaves(leaves[:1], As, arms, rows, "S", 20) == leaves[:1]


def test_anchor_means_each_lineage_counts_once():
    """A cluster's anchor is the median of its sample's other immune lineages' means, whatever their size.

    Clusters (summed linear expression, cells) of sample 0: lineages 0, 1, 2 with means 1, 2, 10 on
    gene 0; lineage 2 has 50 cells in two clusters, the others 10. A non-immune cluster (lineage 3)
    gets the median 2 (the pooled mean would be 7.5); a lineage-2 cluster is compared with lineages
    0 and 1 only (mean 1.5); in sample 1, without anchor cells, all samples' other lineages are used.
    """
    from tmeatlas.tl._cnv_evidence import _anchor_means

    cnt = np.array([10.0, 10.0, 20.0, 30.0, 5.0, 5.0])
    mean = np.array([[1.0, 1.0], [2.0, 1.0], [10.0, 1.0], [10.0, 1.0], [4.0, 1.0], [4.0, 1.0]])
    sample = np.array([0, 0, 0, 0, 0, 1])
    lineage = np.array([0, 1, 2, 2, 3, 3])
    out = _anchor_means(mean * cnt[:, None], cnt, sample, lineage, [0, 1, 2], 2, 4)
    assert np.allclose(out[:, 1], 1.0)
    assert np.isclose(out[4, 0], 2.0) and np.isclose(out[2, 0], 1.5) and np.isclose(out[3, 0], 1.5)
    assert np.isclose(out[0, 0], 6.0)  # lineage 0 against lineages 1 and 2: mean of 2 and 10
    assert np.isclose(out[5, 0], 2.0)  # sample 1 has no anchor cell: all samples' lineages 0-2


def test_lineage_programs_one_vote_per_sample():
    """A sample with many clusters of a lineage cannot make its own changes the lineage's program."""
    from tmeatlas.tl._cnv_evidence import _lineage_programs

    # 5 clusters of lineage 0 in sample 2 carry +1 on gene 0; one cluster each in samples 0 and 1 does not
    lfc = np.zeros((7, 2))
    lfc[2:, 0] = 1.0
    lfc[:, 1] = 0.5  # the lineage's expression program, in every cluster
    prog = _lineage_programs(lfc, np.zeros(7, int), np.full(7, 20), np.array([0, 1, 2, 2, 2, 2, 2]))
    assert np.allclose(prog[0], [0.0, 0.5])  # per-sample medians 0, 0, 1 -> 0 (pooled median would be 1)
    assert _lineage_programs(lfc[:2], np.zeros(2, int), np.full(2, 20), np.array([0, 1]))[0] is None


def test_haematological_lineage_from_whole_lineage_tests():
    """A lineage is called haematological when its whole-lineage test has changed arms, if it is immune."""
    from tmeatlas.tl._cnv import _haematological

    lin = np.r_[np.zeros(100), np.ones(50), np.full(30, 2)].astype(np.int64)
    samples = np.r_[np.zeros(150), np.ones(30)].astype(np.int64)
    table = pd.DataFrame(
        columns=["sample", "lineage", "cnv_cluster", "n_cells", "max_abs_shift", "cnv_arms", "cnv"]
    )
    table.attrs["anchor_lineages"] = pd.DataFrame({
        "sample": [0, 0, 1], "lineage": [0, 1, 2], "n_cells": [100, 50, 30], "max_abs_shift": [0.4, 0.1, 0.5],
        "cnv_arms": ["3q,17p", "", "6q"], "cnv": [True, False, True],
    })  # fmt: skip
    assert _haematological(table, lin, samples, [0, 1]) == [(0, 0, 100, "3q,17p")]
    assert _haematological(table, lin, samples, [0, 1, 2]) == [(0, 0, 100, "3q,17p"), (1, 2, 30, "6q")]
    assert _haematological(pd.DataFrame(), lin, samples, [0]) == []


def test_lymphoma_sample_detected_and_not_called_normal(tmp_path):
    """A constructed B-cell lymphoma (60 % of its sample; +3, +18, 6q-, 17p-) in a carcinoma cohort.

    infer_cnv calls the B lineage of that sample haematological (warning, arms, out of the
    reference) and no other lineage or sample; call_malignant leaves no more than 5 % of the
    lymphoma cells non-malignant (calls them malignant or uncertain) and keeps the carcinoma
    samples' calls. benchmarks/haematological.py measures it over seeds and fractions.
    """
    from sklearn.metrics import f1_score

    from tmeatlas.datasets._constructs import haematological_sample

    a = haematological_sample(
        tm.datasets.simulate_tumor(n_cells=4500, n_patients=3, n_genes=8000, rng=3),
        "P3",
        0.6,
        kind="lymphoma",
    )
    with pytest.warns(
        UserWarning, match="immune cells carry clonal copy-number changes: B and plasma of sample P3"
    ):
        tm.tl.infer_cnv(a, sample_key="sample")
    haem = a.uns["cnv"]["reference"]["haematological"]
    assert list(haem["sample"]) == ["P3"] and list(haem["lineage"]) == ["B and plasma"]
    assert {"3p", "3q", "17p"} <= set(haem["cnv_arms"].iloc[0].split(","))
    lym = a.obs_names.str.startswith("lymphoma")
    assert not (a.obs["cnv_reference"].astype(bool) & lym).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.call_malignant(a, sample_key="sample")
    call = a.obs["malignant"].astype(str)
    assert (call[lym] == "non-malignant").mean() <= 0.05
    normal_p3 = (a.obs["sample"] == "P3").to_numpy() & ~a.obs["true_malignant"].to_numpy()
    assert (call[normal_p3] == "malignant").mean() <= 0.02
    # in the lymphoma sample, no cell with another lineage's markers is called malignant
    from tmeatlas._core.cnv import as_csr
    from tmeatlas.tl._cnv import _marker_candidates

    codes, names = _marker_candidates(as_csr(a.X), a.var_names, 5000)
    other = (a.obs["sample"] == "P3").to_numpy() & (codes >= 0) & (codes != names.index("B and plasma"))
    assert other.sum() > 100 and not (call[other] == "malignant").any()
    for s in ("P1", "P2"):
        m = (a.obs["sample"] == s).to_numpy()
        assert f1_score(a.obs["true_malignant"][m], call[m] == "malignant") >= 0.98
    # round trip of the new table
    a.write_h5ad(tmp_path / "x.h5ad")
    b = ad.read_h5ad(tmp_path / "x.h5ad")
    assert list(b.uns["cnv"]["reference"]["haematological"]["lineage"]) == ["B and plasma"]


def test_haematological_sample_cells_whose_lineage_contradicts_the_call_are_uncertain():
    """Known answer: in a sample whose B lineage is haematological, B cells without CNV evidence and
    cells with another lineage's markers called malignant become uncertain; other samples and cells
    without a lineage keep their calls."""
    from tmeatlas.tl._cnv import MEMBERSHIP_PROGRAMS
    from tmeatlas.tl._malignant import _haematological_cells

    genes = MEMBERSHIP_PROGRAMS["B"] + MEMBERSHIP_PROGRAMS["fibroblast"] + ["OTHER1", "OTHER2"]
    X = np.zeros((40, len(genes)), dtype=np.float32)
    nb = len(MEMBERSHIP_PROGRAMS["B"])
    X[0:10, :nb] = 3  # B cells
    X[10:20, nb : len(genes) - 2] = 3  # fibroblasts
    X[30:40, nb : len(genes) - 2] = 3  # fibroblasts of another sample
    X[:, -2:] = 1
    a = ad.AnnData(X=sparse.csr_matrix(X), var=pd.DataFrame(index=genes))
    a.uns["cnv"] = {"params": {"layer": "None"}, "reference": {"haematological": pd.DataFrame(
        {"sample": ["P3"], "lineage": ["B and plasma"], "n_cells": [10], "cnv_arms": ["3p"]})}}  # fmt: skip
    groups = np.array(["P3"] * 30 + ["P1"] * 10, dtype=object)
    calls = np.array(
        (["malignant"] * 5 + ["non-malignant"] * 5) * 2 + ["malignant"] * 10 + ["malignant"] * 10
    )
    with pytest.warns(
        UserWarning, match="5 of their cells had no per-cell CNV evidence.*5 cells with another"
    ):
        out = _haematological_cells(a, "cnv", groups, calls)
    expected = np.zeros(40, dtype=bool)
    expected[5:10] = True  # B cells of the malignant lineage without CNV evidence
    expected[10:15] = True  # fibroblasts called malignant in the lymphoma sample
    np.testing.assert_array_equal(out, expected)


#: arms each construct carries (tmeatlas.datasets._constructs.HAEMATOLOGICAL)
_CONSTRUCT_ARMS = {
    "myeloma": {"3p", "3q", "9p", "9q", "15q", "19p", "19q", "1q", "13p", "13q"},
    "aml": {"8p", "8q", "5q", "7q", "17p"},
}


@pytest.mark.parametrize(
    ("kind", "n_cells", "lineage", "min_arms"),
    [("myeloma", 9000, "B and plasma", 3), ("aml", 4500, "myeloid", 2)],
)
def test_myeloma_and_aml_samples_detected_and_not_called_normal(kind, n_cells, lineage, min_arms):
    """Constructed myeloma (from plasma cells) and AML (from classical monocytes), 60 % of their
    sample: the lineage is found haematological on its arms, its cells are not called non-malignant
    (<= 5 %), the sample's normal cells not malignant (<= 2 %); benchmarks/haematological.py
    measures them over seeds and fractions (with 4,500 cells the myeloma sample is uncertain as a
    whole: its few plasma cells that pass the reference's marker rule do not show the lineage's
    changes)."""
    from sklearn.metrics import f1_score

    from tmeatlas.datasets._constructs import haematological_sample

    sim = tm.datasets.simulate_tumor(n_cells=n_cells, n_patients=3, n_genes=8000, rng=3)
    a = haematological_sample(sim, "P3", 0.6, rng=3, kind=kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.infer_cnv(a, sample_key="sample")
        tm.tl.call_malignant(a, sample_key="sample")
    haem = a.uns["cnv"]["reference"]["haematological"]
    assert list(haem["sample"]) == ["P3"] and list(haem["lineage"]) == [lineage]
    # found on its own arms only, and on several of them (which ones reach significance varies
    # with the sampled counts: myeloma 1q, 9q, 13q before the simulator's TCF7 change, 9q, 13q, 15q,
    # 19p after)
    found = set(haem["cnv_arms"].iloc[0].split(","))
    assert found <= _CONSTRUCT_ARMS[kind] and len(found) >= min_arms
    tumour = a.obs_names.str.startswith(kind)
    call = a.obs["malignant"].astype(str)
    assert (call[tumour] == "non-malignant").mean() <= 0.05 and (call[tumour] == "malignant").mean() >= 0.5
    normal_p3 = (a.obs["sample"] == "P3").to_numpy() & ~a.obs["true_malignant"].to_numpy()
    assert (call[normal_p3] == "malignant").mean() <= 0.02
    for s in ("P1", "P2"):
        m = (a.obs["sample"] == s).to_numpy()
        assert f1_score(a.obs["true_malignant"][m], call[m] == "malignant") >= 0.98


def test_lineage_beside_a_dominant_malignant_lineage_is_retested_without_it():
    """Known answer: one sample, three immune lineages (T, B, myeloid) of 100 cells; the myeloid cells carry
    a 1q gain. Against the mean of the other two, T and B cells show the gain mirrored (-0.4 on 1q) and
    are flagged; retested without the myeloid lineage in their yardstick, only the myeloid stays."""
    from tmeatlas.tl._cnv_evidence import _anchor_lineage_tests, _anchor_means, _retest_beside_malignant

    rng = np.random.default_rng(0)
    arm_labels = np.array(["1p", "1q", "2p", "2q"])
    gene_arm = np.repeat(np.arange(4), 150)
    base = rng.lognormal(0.0, 1.0, 600)
    m_cl = np.vstack([base * rng.lognormal(0, 0.05, 600) for _ in range(3)])
    m_cl[2, gene_arm == 1] *= 2.0  # the myeloid lineage: a 1q gain
    cnt = np.full(3, 100.0)
    sums = m_cl * cnt[:, None]
    cl_sample, cl_lineage = np.zeros(3, np.int64), np.arange(3)
    program = [None, None, None]
    anchors = np.arange(3)
    m_refs = _anchor_means(sums, cnt, cl_sample, cl_lineage, anchors, 1, 3)
    whole = _anchor_lineage_tests(m_cl, cnt, m_refs, program, cl_sample, cl_lineage, anchors, gene_arm, arm_labels,
                                  0.15, 1e-3)  # fmt: skip
    assert whole["cnv"].all()  # the mirror image flags T and B too
    out = _retest_beside_malignant(whole, sums, cnt, m_cl, program, cl_sample, cl_lineage, anchors, (1, 3), gene_arm,
                                   arm_labels, 0.15, 1e-3)  # fmt: skip
    assert out["cnv"].tolist() == [False, False, True]
    assert out.loc[out["lineage"] == 2, "cnv_arms"].item() == "1q"


def test_shallow_cells_consensus_holds_the_tumours_shared_arms():
    """At 1,500 UMIs per cell a CNV cluster (1-2 % of a sample) shows only its largest arms; the
    cells the first round calls malignant, retested together, show the arms the tumour shares.
    Known answer from the simulator (seed 0): the consensus arms hold 10 of the 14 truncal arm
    changes of the three tumours (4 before the retest) and no arm that no clone carries; patient F1
    0.955 / 0.850 / 0.975 (0.845 / 0.718 / 0.887 before). Seeds 0-2: 33 of 41 truncal arms (19
    before), no false arm."""
    a = tm.datasets.simulate_tumor(n_cells=4000, n_patients=3, normal_patient=True, rng=0, depth=1500.0)
    tm.tl.infer_cnv(a, sample_key="sample")
    tm.tl.call_malignant(a, sample_key="sample")
    cnv = a.uns["simulation"]["clone_cnv"]
    tab = a.uns["malignant"]["samples"].set_index("sample")
    truth = a.obs["true_malignant"].to_numpy(bool)
    pred = (a.obs["malignant"] == "malignant").to_numpy()
    found = n_truncal = 0
    for p, t in cnv.groupby("patient"):
        called = set(str(tab.loc[p, "cnv_arms"]).split(","))
        truncal = set(t.loc[(t["acquired_in"] == "truncal") & (t["level"] == "arm"), "arm"])
        found, n_truncal = found + len(truncal & called), n_truncal + len(truncal)
        assert called <= set(t["arm"]), (p, called)
        i = (a.obs["sample"] == p).to_numpy()
        assert f1_score(truth[i], pred[i]) >= 0.8, (p, f1_score(truth[i], pred[i]))
    assert n_truncal == 14 and found >= 9, (found, n_truncal)
    arms = a.uns["malignant"]["arm_shifts"]
    pooled = arms[(arms["cnv_cluster"] == -1) & arms["cnv"]]  # the kept retests are reported
    for p, t in pooled.groupby("sample"):
        assert set(t["arm"]) <= set(str(tab.loc[p, "cnv_arms"]).split(","))
    assert len(pooled)


def test_immunoglobulin_and_tcr_genes_left_out(cohort):
    """Known answer: ``exclude_genes="vdj"`` leaves the V(D)J genes out of the CNV genes and
    records it; the default keeps the expressed ones (IGKC, IGHG1, TRAC, ... in the simulator)."""
    import re

    from tmeatlas.tl._cnv import VDJ_GENES

    vdj = re.compile(VDJ_GENES)
    assert all(
        vdj.match(g) for g in ["IGKC", "IGHG1", "IGHM", "IGLC2", "IGHV3-23", "TRAC", "TRBC2", "TRBV12-4"]
    )
    assert not any(vdj.match(g) for g in ["IGHMBP2", "IGF1", "IGLL1", "TRAF3", "TRAPPC1", "JCHAIN", "TRIM28"])
    a = cohort.copy()
    tm.tl.infer_cnv(a, sample_key="sample", exclude_genes="vdj")
    used = a.uns["cnv"]["genes"]["gene"].astype(str)
    assert not used.str.match(VDJ_GENES).any()
    assert a.uns["cnv"]["params"]["exclude_genes"] == "vdj"
    tm.tl.infer_cnv(a, sample_key="sample")
    kept = a.uns["cnv"]["genes"]["gene"].astype(str)
    assert kept.str.match(VDJ_GENES).sum() >= 3 and len(kept) > len(used)
