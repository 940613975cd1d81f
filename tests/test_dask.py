"""Out-of-core and distributed: tools read a Dask-backed matrix one row chunk at a time.

The matrix comes from ``anndata.experimental.read_elem_lazy`` over an ``.h5ad`` (a Dask array of
scipy CSR blocks); results must equal the in-memory path, on the default scheduler and on a
``dask.distributed`` LocalCluster with two worker processes.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest

import tmeatlas as tm
from tmeatlas._core.chunks import is_dask, row_block
from tmeatlas._validation import looks_like_counts

pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(in-memory AnnData, the same cells with X as a lazy Dask array over the written file)."""
    import h5py

    a = tm.datasets.simulate_tumor(n_cells=1500, n_patients=2, rng=4)
    tm.pp.gene_positions(a)
    path = tmp_path_factory.mktemp("dask") / "cohort.h5ad"
    a.write_h5ad(path)
    f = h5py.File(path, "r")
    X = ad.experimental.read_elem_lazy(f["X"], chunks=(400, a.n_vars))
    lazy = ad.AnnData(X=X, obs=a.obs.copy(), var=a.var.copy())
    yield a, lazy
    f.close()


def test_lazy_matrix_is_dask_and_blocks_are_csr(pair):
    a, lazy = pair
    assert is_dask(lazy.X) and not is_dask(a.X)
    block = row_block(lazy.X, 100, 350)
    assert block.format == "csr" and block.shape == (250, a.n_vars)
    assert (block != a.X[100:350]).nnz == 0
    assert looks_like_counts(lazy.X) and looks_like_counts(a.X)


@pytest.mark.parametrize("method", ["control", "rank", "mean"])
def test_score_signatures_on_dask_equals_in_memory(pair, method):
    a, lazy = pair
    a, lazy = a.copy(), ad.AnnData(X=lazy.X, obs=lazy.obs.copy(), var=lazy.var.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.score_signatures(a, method=method, chunk_size=300)
        tm.tl.score_signatures(lazy, method=method, chunk_size=300)
    got, want = np.asarray(lazy.obsm["X_signatures"]), np.asarray(a.obsm["X_signatures"])
    assert got.shape == want.shape and np.allclose(got, want, rtol=0, atol=1e-10)
    assert is_dask(lazy.X)  # the matrix was read, not replaced


@pytest.mark.slow
def test_score_signatures_on_a_local_cluster(pair):
    import distributed  # the test extra declares it

    a, lazy = pair
    a, lazy = a.copy(), ad.AnnData(X=lazy.X, obs=lazy.obs.copy(), var=lazy.var.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.score_signatures(a)
        with (
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
            distributed.Client(cluster) as client,
        ):
            assert len(client.scheduler_info()["workers"]) == 2
            tm.tl.score_signatures(lazy)
    assert np.allclose(
        np.asarray(lazy.obsm["X_signatures"]), np.asarray(a.obsm["X_signatures"]), rtol=0, atol=1e-10
    )


def _fresh(pair):
    a, lazy = pair
    return a.copy(), ad.AnnData(X=lazy.X, obs=lazy.obs.copy(), var=lazy.var.copy())


def test_cnv_malignant_and_clones_on_dask_equal_in_memory(pair):
    a, lazy = _fresh(pair)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in (a, lazy):
            tm.tl.infer_cnv(b, sample_key="sample", chunk_size=300)
            tm.tl.call_malignant(b, sample_key="sample")
            tm.tl.cnv_clones(b, sample_key="sample")
    assert is_dask(lazy.X)
    assert np.allclose(lazy.obsm["X_cnv"], a.obsm["X_cnv"], rtol=0, atol=1e-6)
    assert (lazy.obs["cnv_reference"] == a.obs["cnv_reference"]).all()
    assert np.allclose(lazy.obs["malignant_prob"], a.obs["malignant_prob"], rtol=0, atol=1e-6, equal_nan=True)
    for key in ("malignant", "cnv_clone"):
        assert (lazy.obs[key].astype(str) == a.obs[key].astype(str)).all(), key
    assert (a.obs["malignant"] == "malignant").sum() > 100  # the comparison is not between empty calls


def test_annotate_on_dask_equals_in_memory(pair):
    a, lazy = _fresh(pair)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in (a, lazy):
            tm.tl.annotate(b, chunk_size=300)
    for key in ("compartment", "cell_type_major", "cell_type"):
        assert (lazy.obs[key].astype(str) == a.obs[key].astype(str)).all(), key
    assert np.allclose(lazy.obs["cell_type_confidence"], a.obs["cell_type_confidence"], rtol=0, atol=1e-9)
    assert (a.obs["cell_type_major"].astype(str) == a.obs["true_cell_type_major"].astype(str)).mean() > 0.8


def test_checkpoint_interactions_on_dask_equal_in_memory(pair):
    a, lazy = _fresh(pair)
    for b in (a, lazy):
        tm.tl.checkpoint_interactions(
            b, groupby="true_cell_type_major", sample_key="sample", n_perms=50, rng=1
        )
    got, want = tm.get.checkpoint_interactions(lazy), tm.get.checkpoint_interactions(a)
    assert len(want) > 0 and got.shape == want.shape
    num = want.select_dtypes("number").columns
    assert np.allclose(got[num].to_numpy(float), want[num].to_numpy(float), rtol=0, atol=1e-9, equal_nan=True)


def test_drug_screen_and_benefit_on_dask_equal_in_memory(pair):
    a, lazy = _fresh(pair)
    drugs = {"her2": ["ERBB2"], "trop2": ["TACSTD2"], "sig": {"up": ["MKI67", "TOP2A", "CDK1"], "down": []}}
    for b in (a, lazy):
        b.obs["malignant"] = np.where(b.obs["true_malignant"].astype(bool), "malignant", "non-malignant")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tm.tl.drug_screen(b, drugs=drugs, groupby="true_clone", sample_key="sample", n_perms=50, rng=1)
            tm.tl.immunotherapy_benefit(b, sample_key="sample", cell_type_key="true_cell_type", n_boot=20)
    for get in (tm.get.drug_screen, tm.get.immunotherapy_benefit):
        got, want = get(lazy), get(a)
        assert len(want) > 0 and got.shape == want.shape
        num = want.select_dtypes("number").columns
        assert np.allclose(
            got[num].to_numpy(float), want[num].to_numpy(float), rtol=0, atol=1e-9, equal_nan=True
        )


def test_heterogeneity_on_dask_equals_in_memory(pair):
    a, lazy = _fresh(pair)
    lazy.obsm["spatial"] = np.asarray(a.obsm["spatial"]).copy()  # _fresh keeps obs and var only
    for b in (a, lazy):
        b.obs["malignant"] = np.where(b.obs["true_malignant"].astype(bool), "malignant", "non-malignant")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tm.tl.heterogeneity(b, sample_key="sample", clone_key="true_clone", n_boot=20, rng=1)
    assert is_dask(lazy.X)
    got, want = tm.get.heterogeneity(lazy), tm.get.heterogeneity(a)
    assert len(want) == 2 and got.shape == want.shape
    assert want["state_diversity"].notna().all()  # the program states were read from the matrix
    assert want["clone_mixing"].notna().all() and (got["not_measured"] == want["not_measured"]).all()
    num = want.select_dtypes("number").columns
    assert np.allclose(got[num].to_numpy(float), want[num].to_numpy(float), rtol=0, atol=1e-9, equal_nan=True)


@pytest.mark.slow
def test_infer_cnv_on_a_local_cluster(pair):
    import distributed

    a, lazy = _fresh(pair)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.infer_cnv(a, sample_key="sample")
        with (
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
            distributed.Client(cluster) as client,
        ):
            assert len(client.scheduler_info()["workers"]) == 2
            tm.tl.infer_cnv(lazy, sample_key="sample", chunk_size=400)
    assert np.allclose(lazy.obsm["X_cnv"], a.obsm["X_cnv"], rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def pair_10k(tmp_path_factory):
    """10,000 cells in 4 patients, in memory and as a lazy Dask matrix over the written file."""
    from tmeatlas._core.chunks import read_h5ad_lazy

    a = tm.datasets.simulate_tumor(n_cells=10_000, n_patients=4, rng=11)
    path = tmp_path_factory.mktemp("dask10k") / "cohort.h5ad"
    a.write_h5ad(path)
    lazy = read_h5ad_lazy(path, chunk_size=3000)
    return a, lazy


def test_pipeline_on_dask_equals_in_memory(pair_10k):
    """tm.run on a lazy matrix (10,000 cells): counts stay on disk (layers["counts"] is the same
    Dask array), X is a lazy log-normalisation, highly variable genes come from one streamed pass
    (Seurat's dispersion rule, as scanpy's), PCA reads only those genes; every result equals the
    in-memory run."""
    a, lazy = pair_10k
    a = a.copy()
    tm.settings.chunk_size, old = 3000, tm.settings.chunk_size  # several blocks per sample
    try:
        for b in (a, lazy):
            tm.run(b, sample_key="sample", report=False, progress=False, n_perms=20)
    finally:
        tm.settings.chunk_size = old
    assert is_dask(lazy.X) and is_dask(lazy.layers["counts"])
    assert (lazy.var["highly_variable"] == a.var["highly_variable"]).all() and a.var[
        "highly_variable"
    ].sum() == 2000
    for key in ("X_pca", "X_cnv", "X_signatures", "X_umap"):
        assert np.allclose(np.asarray(lazy.obsm[key]), np.asarray(a.obsm[key]), rtol=0, atol=1e-5), key
    for key in ("qc_outlier", "leiden", "malignant", "cnv_clone", "cell_type", "niche", "tumor_region"):
        assert (lazy.obs[key].astype(str) == a.obs[key].astype(str)).all(), key
    # stemness is a percentile within each group: scores that differ in their last bits between the two
    # paths (summation order) can swap the ranks of near-tied cells, so a handful may move by a rank
    diff = np.abs(lazy.obs["stemness"].to_numpy(float) - a.obs["stemness"].to_numpy(float))
    assert (np.isnan(lazy.obs["stemness"]) == np.isnan(a.obs["stemness"])).all()
    assert np.nanmean(diff > 1e-9) <= 1e-3 and np.nanmax(diff) < 0.01, (
        np.nanmean(diff > 1e-9),
        np.nanmax(diff),
    )
    surv = [c for c in a.obs.columns if c.startswith("survival_")]
    assert surv and np.allclose(
        lazy.obs[surv].to_numpy(float), a.obs[surv].to_numpy(float), atol=1e-9, equal_nan=True
    )
    got, want = lazy.uns["therapy_survival"]["table"], a.uns["therapy_survival"]["table"]
    num = want.select_dtypes("number").columns
    assert len(want) and np.allclose(
        got[num].to_numpy(float), want[num].to_numpy(float), atol=1e-9, equal_nan=True
    )
    assert (lazy.uns["pipeline"]["steps"]["status"] == "done").all()


def test_cli_lazy_run_and_resume(pair, tmp_path):
    """`tmeatlas run --lazy` keeps the matrix on disk, writes the atlas and resumes from it."""
    from tmeatlas.cli import main

    a, _ = pair
    src = tmp_path / "in.h5ad"
    a.write_h5ad(src)
    out = tmp_path / "out"
    args = ["run", str(src), "--sample-key", "sample", "--out", str(out), "--lazy", "--quiet", "--no-report",
            "--steps", "qc,gene_positions,normalize,cnv,malignant"]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args) == 0
        first = ad.read_h5ad(out / "atlas.h5ad")
        written = (out / "atlas.h5ad").stat().st_mtime_ns
        assert main(args) == 0  # resumes: reads atlas.h5ad lazily; nothing to do, so nothing is rewritten
    assert (out / "atlas.h5ad").stat().st_mtime_ns == written
    again = ad.read_h5ad(out / "atlas.h5ad")
    assert (again.obs["malignant"] == first.obs["malignant"]).all() and (
        first.obs["malignant"] == "malignant"
    ).sum() > 100
    assert (again.layers["counts"] != a.X).nnz == 0
    steps = again.uns["pipeline"]["steps"].set_index("step")["status"]
    assert (steps == "done").all() and not list(out.glob("*.partial"))
