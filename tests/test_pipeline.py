"""``tm.run`` and ``tmeatlas run``: the whole atlas in one call, its outputs, reruns, failures and input checks.

The HTML report is also opened in a real headless Chromium (Debian's ``chromium`` package, driven
by Playwright): no console errors, every image rendered, and a screenshot kept under
``test-artifacts/`` (or ``$TMEATLAS_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import anndata as ad
import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm
from tmeatlas.cli import main

mpl.use("Agg")

THERAPIES = ["trastuzumab", "paclitaxel", "pembrolizumab"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _cohort(n_cells=1500, **kw):
    return tm.datasets.simulate_tumor(n_cells=n_cells, n_patients=2, spatial=True, rng=1, **kw)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """One full run with outputs (shared by the tests below)."""
    out = tmp_path_factory.mktemp("run") / "atlas"
    a = _cohort()
    tm.run(
        a,
        sample_key="sample",
        therapies=THERAPIES,
        simulate=["trastuzumab"],
        n_perms=30,
        out=out,
        progress=False,
    )
    return a, out


@pytest.mark.slow
def test_run_writes_every_result_and_output(done):
    a, out = done
    steps = a.uns["pipeline"]["steps"]
    expected = {"qc", "gene_positions", "normalize", "embedding", "cnv", "malignant", "clones", "cell_types", "signatures",
                "stemness", "interface", "immune_phenotype", "niches", "heterogeneity", "checkpoints", "immunotherapy", "therapy",
                "combinations", "simulation"}  # fmt: skip
    assert set(steps["step"]) == expected
    assert (steps["status"] == "done").all()
    for col in (
        "malignant",
        "cnv_clone",
        "cell_type",
        "stemness",
        "niche",
        "tumor_region",
        "survival_trastuzumab",
        "qc_outlier",
    ):
        assert col in a.obs, col
    assert "counts" in a.layers and not tm._validation.looks_like_counts(a.X)  # counts kept, X normalised
    for s in a.obs["sample"].cat.categories:
        assert f"combination_cover_{s}" in a.uns
    # outputs
    back = ad.read_h5ad(out / "atlas.h5ad")
    assert back.n_obs == a.n_obs and "pipeline" in back.uns
    for t in ("cells", "malignant_per_sample", "composition", "signature_summary", "checkpoint_interactions",
              "immune_phenotype", "therapy_survival", "combination_cover", "pipeline_steps", "cnv_clones_clones"):  # fmt: skip
        df = pd.read_csv(out / "tables" / f"{t}.csv")
        assert len(df) > 0, t
    for f in ("cnv_heatmap", "therapy_survival", "spatial_niches", "signatures", "composition"):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{f}.{ext}").stat().st_size > 1000, (f, ext)
    report = out / "report"
    pages = sorted(p.name for p in report.glob("*.html"))
    assert pages == ["P1.html", "P2.html", "index.html"]
    text = (report / "P1.html").read_text()
    for section in ("composition", "malignant", "programs", "spatial", "therapy", "methods"):
        assert f'id="{section}"' in text
    assert "data:image/png;base64," in text and "not drawn" not in text
    assert "http://" not in text and "https://" not in text  # self-contained: nothing fetched
    assert "Therapy sources" in text and "scanpy" in text  # methods: citations and versions


@pytest.mark.slow
def test_malignant_fraction_interval_brackets_the_estimate(done):
    a, _ = done
    from tmeatlas._report import malignant_summary

    m = malignant_summary(a, sample_key="sample")
    assert (m["ci_low"] <= m["malignant_fraction"]).all() and (m["malignant_fraction"] <= m["ci_high"]).all()
    truth = a.obs.groupby("sample", observed=True)["true_malignant"].mean()
    got = m.set_index("sample")["malignant_fraction"]
    assert np.allclose(got.loc[truth.index], truth, atol=0.05)
    clones = a.uns["cnv_clones"]["clones"]["sample"].astype(str).value_counts()
    assert (m.set_index("sample")["n_clones"] == clones.reindex(m["sample"]).fillna(0).to_numpy()).all()


@pytest.mark.slow
def test_rerun_skips_done_steps_and_force_reruns(done):
    a, _ = done
    b = a.copy()
    tm.run(b, sample_key="sample", therapies=THERAPIES, simulate=["trastuzumab"], n_perms=30, progress=False)
    assert (b.uns["pipeline"]["steps"]["status"] == "skipped").all()
    tm.run(b, sample_key="sample", therapies=THERAPIES, simulate=["trastuzumab"], n_perms=30, progress=False,
           force=["combinations"])  # fmt: skip
    st = b.uns["pipeline"]["steps"].set_index("step")["status"]
    assert st["combinations"] == "done" and st["cnv"] == "skipped"
    # a changed parameter reruns that step only
    tm.run(
        b,
        sample_key="sample",
        therapies=["trastuzumab"],
        simulate=["trastuzumab"],
        n_perms=30,
        progress=False,
    )
    st = b.uns["pipeline"]["steps"].set_index("step")["status"]
    assert st["therapy"] == "done" and st["malignant"] == "skipped"


@pytest.mark.slow
def test_failed_step_is_named_and_earlier_results_are_kept(done, tmp_path, monkeypatch):
    a, _ = done
    b = a.copy()

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure inside the tool")

    monkeypatch.setattr(tm.tl, "therapy_survival", broken)
    with pytest.raises(tm.PipelineError, match=r"step 'therapy'.*RuntimeError: simulated failure") as e:
        tm.run(
            b,
            sample_key="sample",
            therapies=["paclitaxel"],
            n_perms=30,
            progress=False,
            out=tmp_path,
            report=False,
        )
    assert "atlas.h5ad" in str(e.value)
    st = b.uns["pipeline"]["steps"].set_index("step")
    assert st.loc["therapy", "status"] == "failed" and "simulated failure" in st.loc["therapy", "error"]
    kept = ad.read_h5ad(tmp_path / "atlas.h5ad")
    assert "malignant" in kept.obs and "niche" in kept.obs


def test_unknown_therapy_fails_before_any_work():
    a = _cohort(n_cells=300)
    with pytest.raises(tm.InvalidParameterError, match="unknown therapy.*trastuzumab"):
        tm.run(a, sample_key="sample", therapies=["trastuzumb"], progress=False)
    assert "pipeline" not in a.uns


def test_same_seed_same_atlas():
    a, b = _cohort(n_cells=800), _cohort(n_cells=800)
    kw = {"sample_key": "sample", "steps": ["qc", "gene_positions", "normalize", "cnv", "malignant", "clones", "cell_types",
                                            "interface", "niches"], "progress": False, "rng": 3}  # fmt: skip
    tm.run(a, **kw)
    tm.run(b, **kw)
    for col in ("malignant", "cnv_clone", "cell_type", "niche"):
        assert (a.obs[col].astype(str) == b.obs[col].astype(str)).all(), col


def test_copy_returns_new_and_leaves_input():
    a = _cohort(n_cells=400)
    before = a.X.copy()
    b = tm.run(a, sample_key="sample", steps=["qc", "gene_positions", "normalize"], copy=True, progress=False)
    assert b is not a and "pipeline" in b.uns and "pipeline" not in a.uns
    assert (before != a.X).nnz == 0
    assert tm.run(a, sample_key="sample", steps=["qc"], progress=False) is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: setattr(a, "obs_names", pd.Index(["c"] * a.n_obs)), "cell names are not unique"),
        (
            lambda a: a.obs.rename(columns={"sample": "patient"}, inplace=True),
            r"sample key 'sample'.*'patient'",
        ),
        (lambda a: setattr(a, "X", a.X.toarray() - 1.0), "negative values"),
        (
            lambda a: setattr(a, "var_names", pd.Index([f"ENSG{i:011d}" for i in range(a.n_vars)])),
            "Ensembl IDs",
        ),
        (lambda a: setattr(a, "var_names", pd.Index([n.capitalize() for n in a.var_names])), "mouse"),
    ],
)
def test_input_checks_before_any_work(change, match):
    a = _cohort(n_cells=300)
    change(a)
    with pytest.raises(tm.InvalidInputError, match=match):
        tm.run(a, sample_key="sample", progress=False)
    assert "pipeline" not in a.uns and "qc_outlier" not in a.obs


def test_ensembl_ids_with_symbol_column():
    a = _cohort(n_cells=300)
    a.var["symbol"] = a.var_names.astype(str)
    a.var_names = pd.Index(a.var["gene_id"].astype(str).to_numpy())
    with pytest.raises(tm.InvalidInputError, match="gene_symbols='symbol'"):
        tm.run(a, sample_key="sample", progress=False)
    tm.run(a, sample_key="sample", gene_symbols="symbol", steps=["qc", "gene_positions"], progress=False)
    assert "ERBB2" in a.var_names and a.var.loc["ERBB2", "gene_id"].startswith("ENSG")


def test_unknown_step_is_a_clear_error():
    a = _cohort(n_cells=300)
    with pytest.raises(tm.InvalidParameterError, match="did you mean 'cnv'"):
        tm.run(a, sample_key="sample", steps=["cvn"], progress=False)


@pytest.mark.slow
def test_cli_run_and_resume(tmp_path, capsys):
    a = tm.datasets.simulate_tumor(n_cells=700, n_patients=2, rng=2)
    a.write_h5ad(tmp_path / "in.h5ad")
    args = ["run", str(tmp_path / "in.h5ad"), "--sample-key", "sample", "--out", str(tmp_path / "o"),
            "--therapies", "trastuzumab,paclitaxel", "--skip", "embedding,checkpoints", "--no-report"]  # fmt: skip
    assert main(args) == 0
    assert (tmp_path / "o" / "atlas.h5ad").exists() and (
        tmp_path / "o" / "tables" / "therapy_survival.csv"
    ).exists()
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "resuming from" in err and "skipped" in err
    assert (
        main(["run", str(tmp_path / "in.h5ad"), "--sample-key", "patient", "--out", str(tmp_path / "p")]) == 2
    )
    assert "sample key 'patient'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the report in a real browser
# ---------------------------------------------------------------------------------------------


def _artifacts() -> Path:
    d = Path(
        os.environ.get("TMEATLAS_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts")
    )
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium not installed (Debian package `chromium`; .ci/run installs it)"
)
def test_report_renders_in_headless_chromium(done):
    pw = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) not installed")
    _, out = done
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]  # fmt: skip
    results = {}
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            for page_name in ("index.html", "P1.html"):
                page = browser.new_page(viewport={"width": 1300, "height": 900})
                problems: list[str] = []
                page.on("console", lambda m, problems=problems: problems.append(f"console {m.type}: {m.text}")
                        if m.type in ("error", "warning") else None)  # fmt: skip
                page.on("pageerror", lambda e, problems=problems: problems.append(f"page error: {e}"))
                page.on(
                    "requestfailed",
                    lambda r, problems=problems: problems.append(f"request failed: {r.url[:100]}"),
                )
                page.goto((out / "report" / page_name).resolve().as_uri(), wait_until="load")
                images = page.evaluate(
                    "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
                )
                shot = _artifacts() / f"report_{page_name.replace('.html', '')}.png"
                page.screenshot(path=str(shot), full_page=True)
                results[page_name] = (problems, images, shot)
                page.close()
        finally:
            browser.close()
    for name, (problems, images, shot) in results.items():
        assert problems == [], (name, problems)
        assert len(images) >= 8, (name, len(images))
        broken = [alt for alt, complete, width in images if not (complete and width > 0)]
        assert broken == [], (name, broken)
        assert shot.stat().st_size > 10_000
    (_artifacts() / "report_check.json").write_text(
        json.dumps({k: {"images": len(v[1]), "problems": v[0]} for k, v in results.items()}, indent=2)
    )


def test_run_signature_follows_house_rules():
    import inspect

    params = list(inspect.signature(tm.run).parameters.values())
    assert params[0].name == "adata" and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    names = {p.name for p in params}
    assert {"sample_key", "layer", "rng", "n_jobs", "copy"} <= names and "inplace" not in names
    assert inspect.signature(tm.run).parameters["copy"].default is False
    assert "Parameters" in tm.run.__doc__ and "Returns" in tm.run.__doc__


@pytest.mark.slow
@pytest.mark.realdata
def test_run_on_smart_seq_tpm_with_a_sample_without_tumour(tirosh, tmp_path):
    """Tirosh 2016 (Smart-seq TPM, 5 patients, one of 11 cells): linear-scale input is detected and
    log-transformed, malignant cells are called, and the sample without subclones gets a report that
    says so instead of failing."""
    a = tirosh.copy()
    authors = a.obs["malignant"].astype(str).to_numpy()  # the authors' labels (overwritten by the calls)
    tm.run(a, sample_key="patient", therapies=["carboplatin"], out=tmp_path, progress=False, n_perms=20)
    st = a.uns["pipeline"]["steps"].set_index("step")["status"]
    assert (st == "done").all(), st
    assert "input" in a.layers and float(a.X.max()) < 20  # X = log1p(TPM)
    from sklearn.metrics import f1_score

    called = a.obs["malignant"].astype(str).to_numpy()
    sure = called != "uncertain"  # the 11-cell patient is too small to call (see test_cnv)
    assert f1_score(authors[sure] == "malignant", called[sure] == "malignant") >= 0.95
    pages = {p.name for p in (tmp_path / "report").glob("*.html")}
    assert pages == {"index.html", *(f"{s}.html" for s in a.obs["patient"].cat.categories)}
    for p in (tmp_path / "report").glob("*.html"):
        assert "not drawn" not in p.read_text()


def test_single_sample_without_a_sample_key():
    a = _cohort(n_cells=300)
    with pytest.raises(tm.InvalidInputError, match="already has a 'sample' column"):
        tm.run(a, sample_key=None, progress=False)
    del a.obs["sample"]
    tm.run(a, sample_key=None, steps=["qc", "gene_positions"], progress=False)
    assert (a.obs["sample"] == "S1").all()
    assert a.uns["pipeline"]["input"]["n_samples"] == 1


def test_spot_grid_detection_known_answer():
    """A lattice (spot array) is regular; jittered cell positions are not."""
    from tmeatlas._pipeline import SPOT_REGULARITY, _grid_regularity

    gx, gy = np.meshgrid(np.arange(30.0), np.arange(30.0))
    square = np.column_stack([gx.ravel(), gy.ravel()]) * 100.0
    hexagonal = np.column_stack([gx.ravel() + 0.5 * (gy.ravel() % 2), gy.ravel() * np.sqrt(3) / 2]) * 100.0
    assert _grid_regularity(square) == 1.0 and _grid_regularity(hexagonal) == 1.0
    rs = np.random.default_rng(0)
    cells = rs.uniform(0, 3000, (900, 2))
    assert _grid_regularity(cells) < 0.5 < SPOT_REGULARITY
    a = _cohort(n_cells=300)  # simulated single cells
    assert tm._pipeline.check_input(a, sample_key="sample", layer=None, gene_symbols=None)["spots"] is False


def test_run_on_spots_plans_spot_steps(tmp_path):
    """Spots (a regular grid): no single-cell steps; the spot tumour score runs, and the report renders."""
    a = _cohort(n_cells=600)
    for s in a.obs["sample"].cat.categories:  # put each sample's observations on a square grid
        m = (a.obs["sample"] == s).to_numpy()
        k = int(np.ceil(np.sqrt(m.sum())))
        a.obsm["spatial"][m] = np.column_stack([np.arange(m.sum()) % k, np.arange(m.sum()) // k]) * 100.0
    tm.run(a, sample_key="sample", out=tmp_path, progress=False, n_perms=10)
    steps = a.uns["pipeline"]["steps"].set_index("step")["status"]
    assert "tumor_score" in steps.index and (steps == "done").all(), steps
    assert not set(steps.index) & set(tm._pipeline.CELL_STEPS)
    assert a.uns["pipeline"]["input"]["spots"] and "tumor_score" in a.obs and "malignant" not in a.obs
    assert (tmp_path / "report" / "index.html").exists()
    # spots=False treats them as cells again
    b = _cohort(n_cells=300)
    b.obsm["spatial"] = a.obsm["spatial"][: b.n_obs]
    tm.run(b, sample_key="sample", spots=False, steps=["qc", "gene_positions", "normalize", "cnv", "malignant"],
           progress=False)  # fmt: skip
    assert "malignant" in b.obs and not b.uns["pipeline"]["input"]["spots"]
    with pytest.raises(tm.InvalidParameterError, match="spots"):
        tm.run(b, sample_key="sample", spots="yes", progress=False)


@pytest.mark.realdata
def test_spot_grid_regularity_on_real_data(her2st, merfish_nsclc, phenoptr_cells):
    """The threshold's margin on the shared data: ST spot arrays vs MERFISH and multiplex IF cells."""
    from tmeatlas._pipeline import SPOT_REGULARITY, _grid_regularity

    spots = [_grid_regularity(her2st.obsm["spatial"][(her2st.obs["section"] == s).to_numpy()])
             for s in her2st.obs["section"].unique()]  # fmt: skip
    assert min(spots) >= 0.8, spots  # measured 0.80-0.93
    cells = [_grid_regularity(merfish_nsclc.obsm["spatial"]),
             _grid_regularity(phenoptr_cells[["Cell X Position", "Cell Y Position"]].to_numpy(float))]  # fmt: skip
    assert max(cells) < 0.4 < SPOT_REGULARITY < min(spots), cells  # measured 0.32-0.34


@pytest.mark.realdata
def test_run_on_her2st_spots(her2st):
    """her2st (Spatial Transcriptomics): detected as spots; the tumour score of tm.run matches the function's."""
    from sklearn.metrics import roc_auc_score

    a = her2st[her2st.obs["section"] == "B1"].copy()
    tm.run(
        a, sample_key="section", steps=["qc", "gene_positions", "normalize", "tumor_score"], progress=False
    )
    assert a.uns["pipeline"]["input"]["spots"]
    auc = roc_auc_score(a.obs["label"] == "invasive cancer", a.obs["tumor_score"])
    assert auc > 0.95, auc  # benchmarks/her2st.py: 0.981 on B1


def test_harmonic_fill_known_answer():
    """A path 0-1-...-10 with its ends fixed at x=0 and x=10: the harmonic interpolation is x=i."""
    from scipy import sparse

    from tmeatlas._core.embedding import harmonic_fill as _harmonic_fill

    n = 11
    W = sparse.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1], shape=(n, n))
    fixed = np.zeros(n, dtype=bool)
    fixed[[0, n - 1]] = True
    Y = np.zeros((n, 2))
    Y[n - 1] = [10.0, 5.0]
    out = _harmonic_fill(W, Y, fixed, np.zeros(n, int), tol=1e-9, max_iter=10_000)
    np.testing.assert_allclose(out[:, 0], np.arange(n), atol=1e-6)
    np.testing.assert_allclose(out[:, 1], np.arange(n) / 2, atol=1e-6)
    np.testing.assert_array_equal(out[fixed], Y[fixed])


def test_knn_graph_equals_scanpys_without_importing_umap():
    """The pipeline's own kNN graph (``_neighbors``) is scanpy's ``pp.neighbors(transformer="sklearn")``
    graph: the same distances, UMAP connectivities to float precision (duplicated cells included),
    the same Leiden clusters; and a fresh process running it never imports umap-learn/pynndescent."""
    import subprocess
    import sys

    import scanpy as sc

    from tmeatlas._pipeline import _neighbors

    gen = np.random.default_rng(1)
    pcs = np.vstack([gen.normal(loc=m, size=(150, 8)) for m in (0, 6)]).astype(np.float32)
    pcs[10] = pcs[11]  # a duplicated cell: another cell at distance 0
    ours = ad.AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(len(pcs))]), obsm={"X_pca": pcs})
    ref = ours.copy()
    _neighbors(ours, use_rep="X_pca", rng=0)
    sc.pp.neighbors(ref, n_neighbors=15, use_rep="X_pca", random_state=0, transformer="sklearn")
    np.testing.assert_allclose(ours.obsp["distances"].toarray(), ref.obsp["distances"].toarray(), atol=1e-6)
    np.testing.assert_allclose(ours.obsp["connectivities"].toarray(), ref.obsp["connectivities"].toarray(),
                               atol=1e-5)  # fmt: skip
    assert ours.uns["neighbors"]["params"]["n_neighbors"] == ref.uns["neighbors"]["params"]["n_neighbors"]
    for a in (ours, ref):
        sc.tl.leiden(a, flavor="igraph", n_iterations=2, directed=False, random_state=0)
    assert (ours.obs["leiden"] == ref.obs["leiden"]).all()
    tiny = ad.AnnData(obs=pd.DataFrame(index=list("abcdefgh")), obsm={"X_pca": pcs[:8]})
    _neighbors(tiny, use_rep="X_pca", rng=0)  # fewer cells than neighbours: scanpy's 1 + n/2
    assert tiny.uns["neighbors"]["params"]["n_neighbors"] == 5 and tiny.obsp["distances"].nnz == 8 * 4
    code = (
        "import sys, numpy as np, anndata as ad, pandas as pd; from tmeatlas._pipeline import _neighbors, _umap;"
        "a = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(60)]),"
        " obsm={'X_pca': np.random.default_rng(0).normal(size=(60, 5))});"
        "_neighbors(a, use_rep='X_pca', rng=0); _umap(a, use_rep='X_pca', n_max=100, rng=0);"
        "print(int('umap' in sys.modules), int('pynndescent' in sys.modules), a.obsm['X_umap'].shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "0", "(60,", "2)"]


def test_umap_layout_known_answers():
    """umap-learn's (a, b) for min_dist 0.5; the layout separates disconnected blobs, repeats with
    its seed, differs with another, and returns the scaled start when the graph has no edges."""
    from sklearn.metrics import silhouette_score

    from tmeatlas._core.embedding import ab_params, exact_knn, fuzzy_graph, umap_layout

    a_, b_ = ab_params(1.0, 0.5)
    assert a_ == pytest.approx(0.5830, abs=1e-3) and b_ == pytest.approx(1.3342, abs=1e-3)
    gen = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 100)
    X = gen.normal(scale=30, size=(3, 6))[labels] + gen.normal(size=(300, 6))
    G = fuzzy_graph(*exact_knn(X, 15))
    Y = umap_layout(G, X[:, :2], a=a_, b=b_, seed=3)
    assert Y.shape == (300, 2) and Y.dtype == np.float32 and np.isfinite(Y).all()
    assert silhouette_score(Y, labels) > 0.7
    np.testing.assert_array_equal(umap_layout(G, X[:, :2], a=a_, b=b_, seed=3), Y)
    assert not np.array_equal(umap_layout(G, X[:, :2], a=a_, b=b_, seed=4), Y)
    empty = umap_layout(sparse.csr_matrix((300, 300)), X[:, :2], a=a_, b=b_, seed=0)
    assert empty.min() >= 0 and empty.max() <= 10 + 1e-4


def test_landmark_umap_places_cells_with_their_cluster():
    """Above ``n_max`` cells UMAP embeds landmarks drawn per Leiden cluster; the other cells land
    among their own cluster's landmarks (three separated blobs), and the same seed repeats."""
    import scanpy as sc

    from tmeatlas._pipeline import _umap

    gen = np.random.default_rng(0)
    centres = gen.normal(scale=20, size=(3, 10))
    blob = np.repeat(np.arange(3), [500, 300, 100])
    pcs = centres[blob] + gen.normal(size=(len(blob), 10))

    def embed():
        a = ad.AnnData(
            obs=pd.DataFrame(index=[f"c{i}" for i in range(len(blob))]), obsm={"X_pca": pcs.copy()}
        )
        sc.pp.neighbors(a, n_neighbors=15, use_rep="X_pca", random_state=0, transformer="sklearn")
        sc.tl.leiden(a, resolution=0.1, flavor="igraph", n_iterations=2, directed=False, random_state=0,
                     key_added="leiden")  # fmt: skip
        _umap(a, use_rep="X_pca", n_max=150, rng=0, min_per_cluster=20)
        return a

    a = embed()
    Y = a.obsm["X_umap"]
    assert Y.shape == (len(blob), 2) and np.isfinite(Y).all()
    n_land = a.uns["umap"]["params"]["n_landmarks"]
    assert 150 <= n_land <= 150 + 3 * 20
    cent = np.array([Y[blob == b].mean(axis=0) for b in range(3)])
    nearest = np.argmin(((Y[:, None, :] - cent[None]) ** 2).sum(-1), axis=1)
    assert (nearest == blob).mean() == 1.0
    np.testing.assert_array_equal(embed().obsm["X_umap"], Y)
    # at most n_max cells: plain UMAP of every cell
    b = ad.AnnData(obs=a.obs[[]].iloc[:120].copy(), obsm={"X_pca": pcs[:120]})
    sc.pp.neighbors(b, n_neighbors=15, use_rep="X_pca", random_state=0, transformer="sklearn")
    b.obs["leiden"] = pd.Categorical(["0"] * 120)
    _umap(b, use_rep="X_pca", n_max=150, rng=0)
    assert "n_landmarks" not in b.uns["umap"]["params"]
