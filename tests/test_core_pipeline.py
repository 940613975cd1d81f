"""The pipeline's numeric cores (``_core.qc``, ``_core.embedding``) on tiny known answers, and the step
registry (``_steps``) against the step functions of ``_pipeline._plan``."""

from __future__ import annotations

import ast
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from tmeatlas import _pipeline, _report, _steps
from tmeatlas._core.embedding import harmonic_fill, landmark_indices
from tmeatlas._core.qc import gene_moments, hvg_seurat, mad_outliers, qc_sums


def _counts(n=7, m=5, seed=0):
    gen = np.random.default_rng(seed)
    X = gen.poisson(1.0, size=(n, m)).astype(np.float32)
    X[2] = 0  # an empty cell
    return X


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_qc_sums_match_a_dense_computation(chunk):
    X = _counts()
    mt = np.array([1, 3])
    n_genes, total, mt_total = qc_sums(sparse.csr_matrix(X), mt, chunk)
    np.testing.assert_array_equal(n_genes, (X > 0).sum(axis=1))
    np.testing.assert_allclose(total, X.sum(axis=1))
    np.testing.assert_allclose(mt_total, X[:, mt].sum(axis=1))
    assert n_genes.dtype == np.int64
    # dense input, no mitochondrial genes: zeros
    _, _, none = qc_sums(X, np.array([], dtype=int), chunk)
    np.testing.assert_array_equal(none, 0)


def test_mad_outliers_known_answer():
    """Sample a: log1p(total) = 1, 2, 3, 4, 5, 20 (median 3.5, MAD 1.5 x 1.4826): only 20 lies more than
    5 MADs off; sample b has MAD 0 and flags nobody. Mitochondrial share: flagged only above 5 MADs over
    the median and above the floor of 10 %."""
    samples = np.array(["a"] * 6 + ["b"] * 3)
    total = np.expm1(np.array([1, 2, 3, 4, 5, 20, 3, 3, 3], dtype=float))
    genes = np.expm1(np.full(9, 3.0))
    out = mad_outliers(samples, total, genes, None)
    np.testing.assert_array_equal(out, [0, 0, 0, 0, 0, 1, 0, 0, 0])
    pct = np.array([50, 2, 3, 4, 5, 3, 1, 1, 1.0])  # a: median 3.5, MAD 1.4826; 50 is far above
    out = mad_outliers(samples, total, genes, pct)
    np.testing.assert_array_equal(out, [1, 0, 0, 0, 0, 1, 0, 0, 0])
    # far above the median (MAD 0) but below the floor of 10 %: not flagged
    out = mad_outliers(samples[:5], total[:5], genes[:5], np.array([0, 9.9, 0, 0, 0]))
    assert not out.any()
    assert mad_outliers(samples[:5], total[:5], genes[:5], np.array([0, 10.1, 0, 0, 0]))[1]


def test_gene_moments_match_numpy():
    X = np.log1p(_counts(9, 6, seed=1).astype(np.float64))
    det, mean, var = gene_moments(sparse.csr_matrix(X), 4)
    E = np.expm1(X)
    np.testing.assert_array_equal(det, (X != 0).sum(axis=0))
    np.testing.assert_allclose(mean, E.mean(axis=0))
    np.testing.assert_allclose(var, E.var(axis=0, ddof=1))


def test_hvg_seurat_hand_computed():
    """One bin: the normalised dispersion orders genes as var/mean does; the top two are chosen."""
    mean = np.array([1.0, 1.0, 1.0, 1.0])
    var = np.array([1.0, 4.0, 2.0, 8.0])  # dispersions 1, 4, 2, 8
    np.testing.assert_array_equal(hvg_seurat(mean, var, 2, n_bins=1), [False, True, False, True])
    # a gene alone in its bin gets normalised dispersion 1; a zero variance is never chosen
    mean = np.array([1.0, 1.0, 1.0, 100.0])
    var = np.array([0.0, 2.0, 1.0, 1.0])
    flag = hvg_seurat(mean, var, 2, n_bins=2)
    np.testing.assert_array_equal(flag, [False, True, False, True])


def test_hvg_seurat_matches_scanpy():
    import scanpy as sc

    gen = np.random.default_rng(3)
    X = gen.negative_binomial(2, 0.3, size=(200, 60)).astype(np.float32)
    X *= gen.uniform(0.2, 3, size=60)[None, :].round(0)
    a = ad.AnnData(X=sparse.csr_matrix(X))
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    det, mean, var = gene_moments(a.X, 50)
    keep = det >= 3
    ref = sc.pp.highly_variable_genes(a[:, keep], n_top_genes=20, inplace=False)["highly_variable"].to_numpy()
    np.testing.assert_array_equal(hvg_seurat(mean[keep], var[keep], 20), ref)


def test_harmonic_fill_three_nodes():
    """A path 0-1-2 with 0 at (0, 0) and 2 at (2, 4): node 1 lands halfway; an isolated free node 3
    keeps its start, the mean of the fixed cells of its group."""
    W = sparse.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=float))
    Y = np.array([[0.0, 0.0], [9.0, 9.0], [2.0, 4.0], [0.0, 0.0]])
    fixed = np.array([True, False, True, False])
    out = harmonic_fill(W, Y, fixed, np.zeros(4, int), tol=1e-12, max_iter=100)
    np.testing.assert_allclose(out[1], [1.0, 2.0])
    np.testing.assert_allclose(out[3], [1.0, 2.0])
    np.testing.assert_array_equal(out[fixed], Y[fixed])
    assert Y[1, 0] == 9.0  # the input is not changed


def test_landmark_indices_per_cluster():
    codes = np.repeat([0, 1, 2], [600, 300, 10])
    idx = landmark_indices(codes, 100, 0, min_per_cluster=20)
    assert (np.diff(idx) > 0).all()
    per = np.bincount(codes[idx], minlength=3)
    np.testing.assert_array_equal(per, [66, 33, 10])  # in proportion, at least 20 (all 10 of the small one)
    np.testing.assert_array_equal(landmark_indices(codes, 100, 0, min_per_cluster=20), idx)


# ---------------------------------------------------------------------------------------------
# the step registry
# ---------------------------------------------------------------------------------------------


def _calls(**kw):
    adata = ad.AnnData(X=sparse.csr_matrix((3, 4), dtype=np.float32))
    args = {"sample_key": "sample", "facts": {"counts_in": "X", "linear": False, "spots": False}, "spatial": True,
            "therapies": ["trastuzumab"], "therapy_arg": ["trastuzumab"], "integrate": False,
            "simulate": ["trastuzumab"], "n_perms": 10, "rng": 0, "n_jobs": 1, **kw}  # fmt: skip
    return adata, args


def test_every_registry_step_has_a_function_and_vice_versa():
    adata, args = _calls()
    calls = _pipeline._step_calls(adata, **args)
    assert set(calls) == set(_steps.STEP_ORDER)
    for spec in _steps.STEPS:
        # a step whose result test depends on the run gets it from _plan
        assert spec.present or calls[spec.name].result is not None, spec.name


def test_registry_tables():
    names = _steps.STEP_ORDER
    assert len(set(names)) == len(names) == len(_steps.STEPS)
    position = {n: i for i, n in enumerate(names)}
    for spec in _steps.STEPS:
        for d in (*spec.needs, *spec.uses):
            assert position[d] < position[spec.name], (spec.name, d)  # the order is a dependency order
        assert spec.methods_line.endswith(".")
        assert not (spec.cells_only and spec.spots_only)
    assert set(_steps.METHODS) == set(names)
    assert _report.METHODS is _steps.METHODS and _report.STEP_UNS is _steps.STEP_UNS
    assert _pipeline.STEP_ORDER is _steps.STEP_ORDER and _pipeline.CELL_STEPS is _steps.CELL_STEPS
    assert set(_steps.NEEDS) | set(_steps.USES) <= set(names)
    # figures drawn under a test of their own: programs present, combination covers present
    assert {s.name for s in _steps.STEPS if s.figures and s.shows is None} == {"signatures", "combinations"}
    figures = [f for s in _steps.STEPS for f in s.figures]
    assert len(figures) == len(set(figures))


def test_plan_follows_the_registry():
    adata, args = _calls()
    cells = [s.name for s in _pipeline._plan(adata, **args)]
    assert cells == [n for n in _steps.STEP_ORDER if n != "tumor_score"]
    no_sim = [s.name for s in _pipeline._plan(adata, **{**args, "simulate": [], "spatial": False})]
    assert "simulation" not in no_sim and not {"interface", "niches", "immune_phenotype"} & set(no_sim)
    spots = _pipeline._plan(adata, **{**args, "facts": {**args["facts"], "spots": True}})
    assert [s.name for s in spots] == ["qc", "gene_positions", "normalize", "embedding", "cnv", "signatures",
                                       "tumor_score"]  # fmt: skip
    by_name = {s.name: s for s in spots}
    assert by_name["cnv"].needs == ("gene_positions", "normalize")
    assert by_name["cnv"].title == _steps.BY_NAME["cnv"].title
    assert by_name["gene_positions"].title == "gene positions for 4 genes (GRCh38)"
    a = ad.AnnData(obs=pd.DataFrame(index=["c0"]), obsm={"X_cnv": np.zeros((1, 2))})
    assert by_name["cnv"].result(a) and not by_name["signatures"].result(a)


def test_shown_results_and_keys():
    a = ad.AnnData(obs=pd.DataFrame({"cell_type": ["T"]}, index=["c0"]), uns={"cnv_clones": {}})
    shown = _steps.shown_results(a)
    assert shown["cell_types"] and shown["clones"] and not shown["malignant"] and not shown["embedding"]
    assert _steps.combination_key("A/1") != _steps.combination_key("A 1")
    assert _steps.combination_key("P1") == "combination_cover_P1"
    assert _steps.simulation_key("trastuzumab") == "therapy_simulation_trastuzumab"


def test_report_does_not_import_the_pipeline():
    """``_report`` is below ``_pipeline`` (which writes the report): no import back."""
    src = Path(_report.__file__).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom):
            assert node.module != "_pipeline" and not (node.module or "").endswith("._pipeline")
            assert not any(a.name == "_pipeline" for a in node.names)
