"""tm.gr.neighborhoods and tm.gr.enrichment: known answers on tiny layouts, squidpy agreement on MERFISH."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm
from tmeatlas.gr._neighborhoods import ENRICHMENT_COLUMNS, enrichment, neighborhoods


def _blobs(n_per=30, n_samples=1, gap=1000.0, seed=0):
    """Two clusters in two spatial blobs far apart; each sample repeats the same coordinates."""
    gen = np.random.default_rng(seed)
    xy1 = gen.normal(0, 5, size=(n_per, 2))
    xy2 = gen.normal(0, 5, size=(n_per, 2)) + gap
    xy = np.vstack([xy1, xy2])
    lab = np.array(["A"] * n_per + ["B"] * n_per)
    xy = np.vstack([xy] * n_samples)
    obs = pd.DataFrame(
        {
            "type": pd.Categorical(np.tile(lab, n_samples), categories=["A", "B"]),
            "sample": pd.Categorical(np.repeat([f"s{i}" for i in range(n_samples)], 2 * n_per)),
        },
        index=[f"c{i}" for i in range(len(xy))],
    )
    a = ad.AnnData(X=sparse.csr_matrix((len(xy), 3), dtype=np.float32), obs=obs)
    a.obsm["spatial"] = xy
    return a


def _mixed(n=400, seed=1):
    """Random labels on random positions: no enrichment expected."""
    gen = np.random.default_rng(seed)
    obs = pd.DataFrame(
        {
            "type": pd.Categorical(gen.choice(["A", "B", "C"], n)),
            "sample": pd.Categorical(np.repeat(["s0", "s1"], n // 2)),
        },
        index=[f"c{i}" for i in range(n)],
    )
    a = ad.AnnData(X=sparse.csr_matrix((n, 2), dtype=np.float32), obs=obs)
    a.obsm["spatial"] = gen.uniform(0, 500, size=(n, 2))
    return a


# --------------------------------------------------------------------------------------------
# neighborhoods
# --------------------------------------------------------------------------------------------
def test_knn_composition_own_type_and_no_cross_sample_edges():
    a = _blobs(n_per=30, n_samples=2)
    neighborhoods(a, groupby="type", sample_key="sample", n_neighbors=10)
    A = a.obsp["spatial_connectivities"]
    assert sparse.isspmatrix_csr(A) or sparse.issparse(A)
    assert set(np.unique(A.data)) == {1.0}
    assert A.diagonal().sum() == 0
    assert np.all(np.diff(A.indptr) == 10)
    rows, cols = A.nonzero()
    s = a.obs["sample"].cat.codes.to_numpy()
    assert np.all(s[rows] == s[cols])  # samples share coordinates but never an edge
    X = a.obsm["X_neighborhood"]
    assert isinstance(X, pd.DataFrame) and list(X.columns) == ["A", "B"]
    own = np.where(a.obs["type"].to_numpy() == "A", X["A"].to_numpy(), X["B"].to_numpy())
    np.testing.assert_allclose(own, 1.0)
    D = a.obsp["spatial_distances"]
    assert D.nnz == A.nnz and np.all(D.data < 100)  # never across the gap
    summ = a.uns["neighborhoods"]["samples"]
    assert list(summ["n_edges"]) == [600, 600] and np.allclose(summ["mean_degree"], 10.0)
    assert a.uns["neighborhoods"]["params"]["graph"] == "knn"


def test_knn_matches_brute_force():
    a = _mixed(n=120)
    neighborhoods(a, groupby="type", n_neighbors=4)
    xy = a.obsm["spatial"]
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    want = np.sort(d, axis=1)[:, :4]
    D = a.obsp["spatial_distances"]
    got = np.sort(np.vstack([D[i].data for i in range(a.n_obs)]), axis=1)
    np.testing.assert_allclose(got, want)
    codes = a.obs["type"].cat.codes.to_numpy()
    nn = np.argsort(d, axis=1)[:, :4]
    frac = np.stack([(codes[nn] == k).mean(1) for k in range(3)], axis=1)
    np.testing.assert_allclose(a.obsm["X_neighborhood"].to_numpy(), frac, atol=1e-6)


def test_radius_graph_symmetric_and_include_self():
    a = _blobs(n_per=20, n_samples=1)
    neighborhoods(a, groupby="type", radius=50.0, include_self=True)
    A = a.obsp["spatial_connectivities"]
    assert (A != A.T).nnz == 0
    D = a.obsp["spatial_distances"]
    assert D.data.max() <= 50.0
    np.testing.assert_allclose(a.obsm["X_neighborhood"].to_numpy().sum(1), 1.0, atol=1e-6)
    assert a.uns["neighborhoods"]["params"]["graph"] == "radius"


def test_isolated_cells_get_zeros():
    a = _blobs(n_per=5, n_samples=1)
    neighborhoods(a, groupby="type", radius=1e-6)
    assert a.obsp["spatial_connectivities"].nnz == 0
    np.testing.assert_array_equal(a.obsm["X_neighborhood"].to_numpy(), 0.0)
    assert int(a.uns["neighborhoods"]["samples"]["n_isolated"].iloc[0]) == a.n_obs


def test_multiscale_columns():
    a = _mixed(n=200)
    neighborhoods(a, groupby="type", sample_key="sample", radius=40.0, scales=[20.0, 40.0, 80.0])
    X = a.obsm["X_neighborhood"]
    assert list(X.columns) == [f"{c}@{s}" for s in ("20", "40", "80") for c in ("A", "B", "C")]
    assert a.obsp["spatial_distances"].data.max() <= 40.0
    b = _mixed(n=200)
    neighborhoods(b, groupby="type", sample_key="sample", radius=80.0)
    np.testing.assert_allclose(X[["A@80", "B@80", "C@80"]].to_numpy(), b.obsm["X_neighborhood"].to_numpy())
    c = _mixed(n=200)
    neighborhoods(c, groupby="type", scales=[5, 10])
    assert list(c.obsm["X_neighborhood"].columns)[:3] == ["A@5", "B@5", "C@5"]
    assert np.all(np.diff(c.obsp["spatial_connectivities"].indptr) == 5)  # graph at the first scale


def test_neighborhoods_copy_and_h5ad(tmp_path):
    a = _mixed(n=100)
    out = neighborhoods(a, groupby="type", copy=True)
    assert out is not a and "X_neighborhood" not in a.obsm
    out.write_h5ad(tmp_path / "n.h5ad")
    back = ad.read_h5ad(tmp_path / "n.h5ad")
    np.testing.assert_allclose(np.asarray(back.obsm["X_neighborhood"]), out.obsm["X_neighborhood"].to_numpy())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"groupby": "nope"}, tm.MissingResultError),
        ({"groupby": "type", "radius": 10.0, "n_neighbors": 5}, tm.InvalidParameterError),
        ({"groupby": "type", "n_neighbors": 0}, tm.InvalidParameterError),
        ({"groupby": "type", "radius": -1.0}, tm.InvalidParameterError),
        ({"groupby": "type", "scales": [5, 2.5]}, tm.InvalidParameterError),
        ({"groupby": "type", "sample_key": "nope"}, tm.MissingResultError),
    ],
)
def test_neighborhoods_bad_input(kwargs, error):
    with pytest.raises(error):
        neighborhoods(_mixed(n=50), **kwargs)


def test_neighborhoods_needs_coordinates():
    a = _mixed(n=50)
    del a.obsm["spatial"]
    with pytest.raises(tm.MissingResultError, match="coordinates"):
        neighborhoods(a, groupby="type")
    b = _mixed(n=50)
    b.obsm["spatial"][0, 0] = np.nan
    with pytest.raises(tm.InvalidInputError, match="NaN"):
        neighborhoods(b, groupby="type")
    with pytest.raises(tm.InvalidInputError, match="AnnData"):
        neighborhoods(np.zeros((3, 3)), groupby="type")


# --------------------------------------------------------------------------------------------
# enrichment
# --------------------------------------------------------------------------------------------
def _z(a, sample="pooled", key="enrichment"):
    t = a.uns[key]["zscore"]
    t = t[t["sample"] == sample]
    return t.set_index(["cluster_a", "cluster_b"])


def test_enrichment_segregated_types():
    a = _blobs(n_per=40, n_samples=2, gap=30.0)
    neighborhoods(a, groupby="type", sample_key="sample", n_neighbors=6)
    enrichment(a, groupby="type", sample_key="sample", n_perms=200)
    t = a.uns["enrichment"]["zscore"]
    assert list(t.columns) == ENRICHMENT_COLUMNS
    assert set(t["sample"]) == {"s0", "s1", "pooled"}
    for s in ("s0", "s1", "pooled"):
        z = _z(a, s)["zscore"]
        assert z[("A", "A")] > 3 and z[("B", "B")] > 3
        assert z[("A", "B")] < -3 and z[("B", "A")] < -3
    # pooled counts are the sum of the per-sample counts
    c = t.groupby(["sample", "cluster_a", "cluster_b"], observed=True)["count"].sum().unstack([1, 2])
    np.testing.assert_array_equal(c.loc["pooled"].to_numpy(), c.loc[["s0", "s1"]].sum().to_numpy())
    assert int(t["count"][t["sample"] == "pooled"].sum()) == a.obsp["spatial_connectivities"].nnz


def test_enrichment_known_counts_and_no_signal_when_random():
    a = _mixed(n=400)
    neighborhoods(a, groupby="type", sample_key="sample", n_neighbors=5)
    enrichment(a, groupby="type", sample_key="sample", n_perms=200)
    A = a.obsp["spatial_connectivities"].tocoo()
    codes = a.obs["type"].cat.codes.to_numpy()
    want = np.zeros((3, 3), dtype=np.int64)
    np.add.at(want, (codes[A.row], codes[A.col]), 1)
    got = _z(a)["count"].to_numpy().reshape(3, 3)
    np.testing.assert_array_equal(got, want)
    assert np.all(np.abs(_z(a)["zscore"].to_numpy()) < 4.5)


def test_enrichment_deterministic_and_n_jobs_invariant():
    a = _mixed(n=300)
    neighborhoods(a, groupby="type", sample_key="sample", n_neighbors=5)
    enrichment(a, groupby="type", sample_key="sample", n_perms=230, rng=7, n_jobs=1, key_added="e1")
    enrichment(a, groupby="type", sample_key="sample", n_perms=230, rng=7, n_jobs=2, key_added="e2")
    enrichment(a, groupby="type", sample_key="sample", n_perms=230, rng=7, n_jobs=1, key_added="e3")
    enrichment(a, groupby="type", sample_key="sample", n_perms=230, rng=8, n_jobs=1, key_added="e4")
    pd.testing.assert_frame_equal(a.uns["e1"]["zscore"], a.uns["e2"]["zscore"])
    pd.testing.assert_frame_equal(a.uns["e1"]["zscore"], a.uns["e3"]["zscore"])
    assert not np.allclose(a.uns["e1"]["zscore"]["zscore"], a.uns["e4"]["zscore"]["zscore"])
    assert a.uns["e1"]["params"]["rng"] == 7


def test_enrichment_ignores_cross_sample_edges():
    a = _mixed(n=200)
    neighborhoods(a, groupby="type", n_neighbors=5)  # one graph over both samples
    enrichment(a, groupby="type", sample_key="sample", n_perms=50)
    A = a.obsp["spatial_connectivities"].tocoo()
    s = a.obs["sample"].cat.codes.to_numpy()
    assert int(_z(a)["count"].sum()) == int((s[A.row] == s[A.col]).sum())


def test_enrichment_without_sample_is_pooled_only(tmp_path):
    a = _mixed(n=150)
    neighborhoods(a, groupby="type", n_neighbors=5)
    out = enrichment(a, groupby="type", n_perms=50, copy=True)
    assert "enrichment" not in a.uns
    assert set(out.uns["enrichment"]["zscore"]["sample"]) == {"pooled"}
    out.write_h5ad(tmp_path / "e.h5ad")
    back = ad.read_h5ad(tmp_path / "e.h5ad")
    assert list(back.uns["enrichment"]["zscore"].columns) == ENRICHMENT_COLUMNS


def test_enrichment_bad_input():
    a = _mixed(n=60)
    with pytest.raises(tm.MissingResultError, match="neighborhoods"):
        enrichment(a, groupby="type")
    neighborhoods(a, groupby="type", n_neighbors=3)
    with pytest.raises(tm.MissingResultError):
        enrichment(a, groupby="nope")
    with pytest.raises(tm.InvalidParameterError):
        enrichment(a, groupby="type", n_perms=0)
    with pytest.raises(tm.InvalidParameterError):
        enrichment(a, groupby="type", rng=-1)
    with pytest.raises(tm.InvalidInputError, match="AnnData"):
        enrichment(np.zeros((3, 3)), groupby="type")


@pytest.mark.realdata
def test_enrichment_matches_squidpy_on_merfish(merfish_nsclc):
    import squidpy as sq  # test extra (tmeatlas[spatial]): a broken install must fail here, not skip
    from scipy.stats import spearmanr

    a = merfish_nsclc
    neighborhoods(a, groupby="type_lvl1", n_neighbors=10)
    enrichment(a, groupby="type_lvl1", n_perms=300, rng=0)
    res = sq.gr.nhood_enrichment(
        a,
        cluster_key="type_lvl1",
        connectivity_key="spatial",
        n_perms=300,
        seed=0,
        n_jobs=1,
        show_progress_bar=False,
        copy=True,
    )
    cats = [str(c) for c in a.obs["type_lvl1"].cat.categories]
    t = _z(a)
    z = t["zscore"].unstack().loc[cats, cats].to_numpy()
    cnt = t["count"].unstack().loc[cats, cats].to_numpy()
    np.testing.assert_array_equal(cnt, np.asarray(res.counts))
    zs = np.asarray(res.zscore)
    ok = np.isfinite(z) & np.isfinite(zs)
    assert ok.sum() >= 40
    assert spearmanr(z[ok], zs[ok]).statistic >= 0.95
