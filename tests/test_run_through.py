"""``tm.run`` on data as users hold it: steps that cannot apply are skipped with their reason, nothing
of the user's is lost, resume reruns exactly what changed, names are safe, bad input is refused
before any work, and every shared real dataset completes (skipped when ``../shared`` is absent)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import anndata as ad
import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm
from tmeatlas._names import MAX_NAME_LENGTH, safe_name, safe_names

mpl.use("Agg")
ROOT = Path(__file__).resolve().parents[1]


def _sim(n_cells=600, **kw):
    return tm.datasets.simulate_tumor(n_cells=n_cells, n_patients=2, rng=3, **kw)


def _status(a) -> dict[str, str]:
    return a.uns["pipeline"]["steps"].set_index("step")["status"].to_dict()


def _reason(a, step) -> str:
    return str(a.uns["pipeline"]["steps"].set_index("step").loc[step, "reason"])


# ---------------------------------------------------------------------------------------------
# steps that cannot apply
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_immune_only_cohort_completes_with_reasons(tmp_path, capsys):
    """T cells only: no malignant cell, so the immunotherapy is judged per sample from its benefit,
    the other therapy is skipped with the reason, no combination is proposed, and everything else
    (tables, figures, report) is still written."""
    a = _sim(n_cells=1500, spatial=False)
    a = a[a.obs["true_cell_type_major"].astype(str).isin(["T cell", "NK cell"])].copy()
    tm.run(a, sample_key="sample", therapies=["pembrolizumab", "paclitaxel"], out=tmp_path, n_perms=20)
    st = _status(a)
    assert st["immunotherapy"] == "done" and st["therapy"] == "done" and st["combinations"] == "done"
    t = tm.get.therapy_survival(a)
    assert list(t["therapy"].unique()) == ["pembrolizumab"] and (t["group"] == "(no malignant cells)").all()
    assert (t["reasons"].str.len() > 0).all()
    skipped = a.uns["therapy_survival"]["skipped"]
    assert (
        set(skipped["therapy"]) == {"paclitaxel"}
        and (skipped["reason"] == "no malignant cells in this sample").all()
    )
    assert not [k for k in a.uns if k.startswith("combination_cover")]
    b = tm.get.immunotherapy_benefit(a)
    assert (b["setting"] == "immune cells only").all()
    assert st["cell_types"] == "done" and st["signatures"] == "done"
    assert (tmp_path / "report" / "index.html").exists() and (
        tmp_path / "tables" / "immunotherapy_benefit.csv"
    ).exists()
    assert "Immunotherapy benefit" in (tmp_path / "report" / "index.html").read_text()
    err = capsys.readouterr().err
    assert "immunotherapy: done" in err or "immunotherapy" in err


def test_genes_on_one_chromosome_make_cnv_not_applicable():
    a = _sim(n_cells=300, spatial=False)
    tm.pp.gene_positions(a)
    a = a[:, (a.var["chromosome"] == "chr1").to_numpy()].copy()
    del a.var["chromosome"]
    tm.run(a, sample_key="sample", steps=["qc", "gene_positions", "normalize", "cnv", "malignant", "clones"],
           progress=False)  # fmt: skip
    st = _status(a)
    assert st["cnv"] == "not applicable" and "chr1" in _reason(a, "cnv")
    assert st["malignant"] == "not applicable" and _reason(a, "malignant").startswith("needs step 'cnv'")
    assert st["clones"] == "not applicable"


def test_two_cells_make_the_embedding_not_applicable_and_the_rest_runs():
    """No gene is detected in 3 cells: the embedding is skipped with its reason (it failed with
    pandas' "Cannot cut empty array"), every other step still runs."""
    a = _sim(n_cells=300, spatial=False)[:2].copy()
    tm.run(a, sample_key="sample", progress=False)
    st = _status(a)
    assert st["embedding"] == "not applicable" and "at least 3 cells" in _reason(a, "embedding")
    assert "X_umap" not in a.obsm
    assert st["cnv"] == "done" and st["cell_types"] == "done"


def test_panel_too_small_for_copy_number_calls_is_uncertain_not_normal():
    """A 1,000-gene panel: every cell is uncertain (not confidently non-malignant), with a warning."""
    a = _sim(n_cells=400)
    a = a[:, np.random.default_rng(0).choice(a.n_vars, 1000, replace=False)].copy()
    tm.pp.gene_positions(a)
    tm.tl.infer_cnv(a, sample_key="sample")
    with pytest.warns(UserWarning, match="fewer than the 3,000"):
        tm.tl.call_malignant(a, sample_key="sample")
    assert (a.obs["malignant"] == "uncertain").all()
    with pytest.raises(tm.NotApplicableError, match="uncertain"):
        tm.gr.interface(a, sample_key="sample")


def test_no_cd8_label_is_not_applicable():
    a = _sim(n_cells=400)
    a.obs["cell_type"] = pd.Categorical(np.where(a.obs["true_malignant"].astype(bool), "Tumour", "Stroma"))
    a.obs["region"] = a.obs["cell_type"].astype(str)
    tm.gr.interface(a, sample_key="sample", tumor_key="region", tumor_value="Tumour")
    with pytest.raises(tm.NotApplicableError, match="mentions CD8"):
        tm.gr.immune_phenotype(a, sample_key="sample")


def test_a_step_failure_does_not_stop_independent_steps(monkeypatch):
    a = _sim(n_cells=300, spatial=False)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(tm.tl, "infer_cnv", broken)
    with pytest.raises(tm.PipelineError, match=r"step 'cnv'.*RuntimeError: boom"):
        tm.run(a, sample_key="sample", steps=["qc", "gene_positions", "normalize", "cnv", "malignant", "signatures"],
               progress=False)  # fmt: skip
    st = _status(a)
    assert st["cnv"] == "failed" and st["malignant"] == "not run" and st["signatures"] == "done"


# ---------------------------------------------------------------------------------------------
# nothing lost
# ---------------------------------------------------------------------------------------------


def test_users_column_is_kept_not_replaced(caplog):
    a = _sim(n_cells=400, spatial=False)
    theirs = pd.Series(np.where(a.obs["true_malignant"].astype(bool), "tumour", "normal"), index=a.obs_names)
    a.obs["malignant"] = theirs.to_numpy()
    tm.pp.gene_positions(a)
    tm.tl.infer_cnv(a, sample_key="sample")
    with caplog.at_level("WARNING", logger="tmeatlas"):
        tm.tl.call_malignant(a, sample_key="sample")
    assert (a.obs["malignant_user"].astype(str) == theirs).all()
    assert set(a.obs["malignant"].astype(str)) <= {"malignant", "non-malignant", "uncertain"}
    assert "kept in obs['malignant_user']" in caplog.text
    tm.tl.call_malignant(a, sample_key="sample")  # ours now: overwritten without another copy
    assert "malignant_user2" not in a.obs


# ---------------------------------------------------------------------------------------------
# safe names
# ---------------------------------------------------------------------------------------------


def test_safe_names_known_answers():
    assert safe_name("P1") == "P1" and safe_name("tumour_A.1") == "tumour_A.1"
    bad = ["..", ".", "", "A/1", "A 1", "x" * 300, "CON", "../etc"]
    names = safe_names(bad + ["P1", "p1"], reserved=["index"])
    assert len(set(names.values())) == len(names)
    for _v, n in names.items():
        assert (
            len(n) <= MAX_NAME_LENGTH and n not in (".", "..", "") and "/" not in n and not n.startswith(".")
        )
    assert names["P1"] != "P1" and names["p1"] != "p1"  # would collide on case-insensitive file systems
    assert safe_names(["index"], reserved=["index"])["index"] != "index"
    assert safe_names(["B", "A/1"]) == {k: v for k, v in safe_names(["A/1", "B"]).items()}


@pytest.mark.slow
def test_awkward_sample_names_get_their_own_files(tmp_path):
    a = _sim(n_cells=900, spatial=False)
    names = np.array(["..", "A/1", "A 1"])
    a.obs["patient"] = names[np.arange(a.n_obs) % 3]
    tm.run(a, sample_key="patient", steps=["qc", "gene_positions", "normalize", "embedding", "cnv", "malignant",
                                           "cell_types"], out=tmp_path)  # fmt: skip
    pages = sorted(p.name for p in (tmp_path / "report").glob("*.html"))
    assert len(pages) == 4 and "index.html" in pages
    figs = [p for p in (tmp_path / "figures" / "samples").iterdir()]
    assert len(figs) == 3 and all(p.parent == tmp_path / "figures" / "samples" for p in figs)
    html = (tmp_path / "report" / "index.html").read_text()
    assert "A/1" in html and "A 1" in html


# ---------------------------------------------------------------------------------------------
# resume: a step reruns when its inputs change, and its dependents with it
# ---------------------------------------------------------------------------------------------

FAST = [
    "qc",
    "gene_positions",
    "normalize",
    "cnv",
    "malignant",
    "clones",
    "cell_types",
    "therapy",
    "combinations",
]


@pytest.fixture(scope="module")
def resumable(tmp_path_factory):
    a = _sim(n_cells=700, spatial=False)
    out = tmp_path_factory.mktemp("resume")
    tm.run(
        a, sample_key="sample", steps=FAST, therapies=["paclitaxel"], out=out, progress=False, report=False
    )
    return a, out


def test_resume_new_therapies_rerun_therapy_and_combinations(resumable):
    a = resumable[0].copy()
    tm.run(a, sample_key="sample", steps=FAST, therapies=["paclitaxel", "trastuzumab"], progress=False)
    st = _status(a)
    assert st["therapy"] == st["combinations"] == "done" and st["clones"] == "skipped"
    fresh = _sim(n_cells=700, spatial=False)
    tm.run(fresh, sample_key="sample", steps=FAST, therapies=["paclitaxel", "trastuzumab"], progress=False)
    pd.testing.assert_frame_equal(tm.get.therapy_survival(a), tm.get.therapy_survival(fresh))


def test_resume_new_seed_reruns_dependents(resumable):
    a = resumable[0].copy()
    tm.run(a, sample_key="sample", steps=FAST, therapies=["paclitaxel"], rng=7, progress=False)
    st = _status(a)
    assert st["qc"] == "skipped" and st["cnv"] == "done" and st["malignant"] == "done"
    assert st["cell_types"] == "done"  # reads the malignant calls, which were redone
    fresh = _sim(n_cells=700, spatial=False)
    tm.run(fresh, sample_key="sample", steps=FAST, therapies=["paclitaxel"], rng=7, progress=False)
    assert (fresh.obs["malignant"] == a.obs["malignant"]).all()


def test_resume_other_sample_key_reruns_everything(resumable):
    a = resumable[0].copy()
    a.obs["patient"] = a.obs["sample"].astype(str)
    tm.run(a, sample_key="patient", steps=FAST, therapies=["paclitaxel"], progress=False)
    assert all(v == "done" for v in _status(a).values())


def test_rerun_with_nothing_to_do_keeps_outputs(resumable, tmp_path):
    a, out = resumable
    a = a.copy()
    before = {p: p.stat().st_mtime_ns for p in (out / "tables").iterdir()}
    tm.run(
        a, sample_key="sample", steps=FAST, therapies=["paclitaxel"], out=out, progress=False, report=False
    )
    assert all(v == "skipped" for v in _status(a).values())
    assert {p: p.stat().st_mtime_ns for p in (out / "tables").iterdir()} == before


def test_cli_starts_over_when_the_input_changed(tmp_path, capsys):
    from tmeatlas.cli import main

    a = _sim(n_cells=300, spatial=False)
    a.write_h5ad(tmp_path / "in.h5ad")
    args = ["run", str(tmp_path / "in.h5ad"), "--sample-key", "sample", "--out", str(tmp_path / "o"),
            "--steps", "qc,gene_positions,normalize", "--no-report"]  # fmt: skip
    assert main(args) == 0
    b = a.copy()
    b.X = b.X * 2  # same cells and genes, other counts
    b.write_h5ad(tmp_path / "in.h5ad")
    capsys.readouterr()
    assert main(args) == 0
    assert "input changed" in capsys.readouterr().err
    kept = ad.read_h5ad(tmp_path / "o" / "atlas.h5ad")
    assert np.allclose(kept.obs["total_counts"], np.asarray(b.X.sum(axis=1)).ravel())


def test_interrupt_keeps_finished_steps_and_old_outputs(resumable, tmp_path, monkeypatch):
    import shutil

    a, out0 = resumable
    out = tmp_path / "o"
    shutil.copytree(out0, out)
    old_tables = {p.name: p.read_bytes() for p in (out / "tables").iterdir()}
    from tmeatlas import _report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    b = a.copy()
    monkeypatch.setattr(_report, "write_figures", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tm.run(b, sample_key="sample", steps=FAST, therapies=["paclitaxel", "trastuzumab"], out=out, progress=False,
               report=False)  # fmt: skip
    # the old complete output is still there, unmixed
    assert {p.name: p.read_bytes() for p in (out / "tables").iterdir()} == old_tables
    assert not (out / "INCOMPLETE").exists()
    monkeypatch.setattr(tm.tl, "combination_cover", interrupted)
    monkeypatch.undo()
    c = a.copy()

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tm.tl, "combination_cover", stop)
    with pytest.raises(KeyboardInterrupt):
        tm.run(c, sample_key="sample", steps=FAST, therapies=["paclitaxel", "trastuzumab"], out=out, progress=False,
               report=False)  # fmt: skip
    saved = ad.read_h5ad(out / "atlas.h5ad")
    st = saved.uns["pipeline"]["steps"].set_index("step")["status"]
    assert st["therapy"] == "done"  # finished before the interrupt, saved


# ---------------------------------------------------------------------------------------------
# checks before any work: a typed error and the AnnData unchanged
# ---------------------------------------------------------------------------------------------


def _float16(a):
    a.X = a.X.toarray().astype(np.float16)


def _zeros(a):
    a.X = sparse.csr_matrix(a.X.shape, dtype=np.float32)


def _nan_xy(a):
    a.obsm["spatial"][0, 0] = np.nan


def _xyz(a):
    a.obsm["spatial"] = np.c_[a.obsm["spatial"], np.arange(a.n_obs, dtype=float)]


def _mixed_keys(a):
    a.obs["sample"] = pd.Series(
        [1 if i % 2 else "1" for i in range(a.n_obs)], index=a.obs_names, dtype=object
    )


def _none_key(a):
    s = a.obs["sample"].astype(object)
    s.iloc[0] = None
    a.obs["sample"] = s


@pytest.mark.parametrize(
    ("change", "kwargs", "error", "match"),
    [
        (_float16, {}, tm.InvalidInputError, "float16"),
        (_zeros, {}, tm.InvalidInputError, "only zeros"),
        (_nan_xy, {}, tm.InvalidInputError, "missing or infinite coordinates"),
        (_xyz, {}, tm.InvalidInputError, "2-D"),
        (_mixed_keys, {}, tm.InvalidInputError, "same text"),
        (_none_key, {}, tm.InvalidInputError, "no value"),
        (None, {"gene_symbols": "nope"}, tm.InvalidInputError, "not a column of adata.var"),
        (None, {"n_jobs": 0}, tm.InvalidParameterError, "n_jobs"),
        (None, {"rng": 1.5}, tm.InvalidParameterError, "rng"),
    ],
)
def test_bad_input_is_refused_before_work(change, kwargs, error, match):
    a = _sim(n_cells=200)
    if change is not None:
        change(a)
    obs, uns = list(a.obs.columns), set(a.uns)
    with pytest.raises(error, match=match):
        tm.run(a, sample_key="sample", progress=False, **kwargs)
    assert list(a.obs.columns) == obs and set(a.uns) == uns


def test_output_that_is_a_file_is_refused_before_work(tmp_path):
    a = _sim(n_cells=200)
    f = tmp_path / "taken"
    f.write_text("x")
    with pytest.raises(tm.InvalidInputError, match="is a file"):
        tm.run(a, sample_key="sample", out=f, progress=False)
    assert "pipeline" not in a.uns


def test_backed_anndata_is_refused(tmp_path):
    a = _sim(n_cells=200)
    a.write_h5ad(tmp_path / "a.h5ad")
    b = ad.read_h5ad(tmp_path / "a.h5ad", backed="r")
    with pytest.raises(tm.InvalidInputError, match="backed"):
        tm.run(b, sample_key="sample", progress=False)
    b.file.close()


# ---------------------------------------------------------------------------------------------
# every shared real dataset completes (benchmarks/realdata.py prepares them as users hold them)
# ---------------------------------------------------------------------------------------------


def _harness():
    spec = importlib.util.spec_from_file_location("realdata", ROOT / "benchmarks" / "realdata.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


REAL_SETS = ["qian2020_ovarian", "tirosh2016_oligodendroglioma", "copykat_breast_example", "chen2024_nsclc_merfish",
             "andersson2021_her2st_ABCD", "scimap_cycif_lymphoma", "phenoptr_multiplex_if"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("name", REAL_SETS)
def test_run_completes_on_shared_real_data(name):
    h = _harness()
    if name not in h.datasets():
        pytest.skip(f"{name} not available (needs ../shared/data/real)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, sample_key, opts, truth = h._load(name)
        labels = {c: a.obs[c].astype(str).copy() for c in ("malignant", "cell_type") if c in a.obs}
        tm.run(
            a,
            sample_key=sample_key,
            progress=False,
            therapies=["paclitaxel", "pembrolizumab"],
            n_perms=20,
            **opts,
        )
    st = _status(a)
    assert "failed" not in st.values() and "not run" not in st.values(), st
    for c, v in labels.items():  # the authors' labels are kept
        assert (a.obs[f"{c}_user"].astype(str) == v).all()
    if name == "chen2024_nsclc_merfish":  # 479-gene panel: no confident "normal" for a cancer section
        assert (a.obs["malignant"] == "uncertain").all() and st["therapy"] == "not applicable"
    if name == "andersson2021_her2st_ABCD":
        assert st["tumor_score"] == "done"


def test_pixel_coordinates_warn(caplog):
    a = _sim(n_cells=300)
    a.obsm["spatial"] = a.obsm["spatial"] * 20  # as if 0.05 µm pixels
    with caplog.at_level("WARNING", logger="tmeatlas"):
        tm.run(a, sample_key="sample", steps=["qc"], progress=False)
    assert "may be pixels" in caplog.text


def test_cli_corrupt_atlas_in_out_starts_over(tmp_path, capsys):
    from tmeatlas.cli import main

    a = _sim(n_cells=300, spatial=False)
    a.write_h5ad(tmp_path / "in.h5ad")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "atlas.h5ad").write_bytes(b"not an HDF5 file")
    args = ["run", str(tmp_path / "in.h5ad"), "--sample-key", "sample", "--out", str(tmp_path / "o"),
            "--steps", "qc", "--no-report"]  # fmt: skip
    assert main(args) == 0
    assert "cannot be read" in capsys.readouterr().err
    assert "qc_outlier" in ad.read_h5ad(tmp_path / "o" / "atlas.h5ad").obs


def test_cli_exit_codes(tmp_path, capsys, monkeypatch):
    from tmeatlas.cli import EXIT_BAD_INPUT, EXIT_STEP_FAILED, main

    a = _sim(n_cells=300, spatial=False)
    a.write_h5ad(tmp_path / "in.h5ad")
    base = [
        "run",
        str(tmp_path / "in.h5ad"),
        "--sample-key",
        "sample",
        "--no-report",
        "--steps",
        "qc,normalize,signatures",
    ]
    assert main([*base, "--out", str(tmp_path / "a"), "--n-jobs", "0"]) == EXIT_BAD_INPUT

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(tm.tl, "score_signatures", broken)
    assert main([*base, "--out", str(tmp_path / "b")]) == EXIT_STEP_FAILED
    assert (tmp_path / "b" / "atlas.h5ad").exists() and (tmp_path / "b" / "tables").is_dir()


@pytest.mark.slow
def test_sigint_during_a_step_saves_the_finished_steps(tmp_path):
    """A real Ctrl-C (SIGINT) to ``tmeatlas run``: the steps finished before it are in atlas.h5ad and a
    rerun resumes after them."""
    import signal
    import subprocess
    import sys
    import time

    a = _sim(n_cells=1500, spatial=False)
    a.write_h5ad(tmp_path / "in.h5ad")
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "tmeatlas.cli", "run", str(tmp_path / "in.h5ad"), "--sample-key", "sample",
           "--out", str(out), "--therapies", "paclitaxel", "--no-report"]  # fmt: skip
    # a child inherits an ignored SIGINT (and Python then never installs its KeyboardInterrupt handler):
    # give it the default disposition, as a terminal does, whatever the test process's state
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    seen = ""
    t0 = time.time()
    while "[4/" not in seen and time.time() - t0 < 300:  # the embedding step has begun
        seen += proc.stderr.read(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0, (seen + err)[-2000:]
    saved = ad.read_h5ad(out / "atlas.h5ad")
    st = saved.uns["pipeline"]["steps"].set_index("step")["status"]
    assert st["qc"] == "done" and st["normalize"] == "done" and "counts" in saved.layers
    assert not (out / "report").exists()


def test_report_helpers_known_answers():
    from tmeatlas._report import _niche_counts, _params_text, _step_params_text
    from tmeatlas._store import store

    a = ad.AnnData(np.zeros((5, 1), np.float32))
    a.obs["niche"] = pd.Categorical(["TLS", "TLS", "stroma", "core", "core"])
    summary = pd.DataFrame({"niche": ["core", "stroma", "TLS"], "n_cells": [2, 1, 2]})
    got = _niche_counts(a, np.array([True, True, True, False, False]), summary)
    assert got["niche"].tolist() == ["core", "stroma", "TLS"] and got["n_cells"].tolist() == [0, 1, 2]
    assert _step_params_text('{"rng": 0, "n_hvg": 2000}') == "rng=0, n_hvg=2000"
    store(a, tool="t", uns_key="cnv", params={"w": np.float64(1.26666), "l": [np.int64(1), np.float32(0.5)]})
    assert _params_text(a, "cnv") == "w=1.267, l=[1, 0.5]"


def test_scores_on_scaled_data_say_so():
    a = _sim(n_cells=200, spatial=False)
    a.X = a.X.toarray()
    a.X = (a.X - a.X.mean(axis=0)) / (a.X.std(axis=0) + 1)
    with pytest.warns(UserWarning, match="negative values"):
        tm.tl.score_signatures(a, method="mean")
    assert a.uns["signatures"]["input"].startswith("scaled")


def test_cells_without_counts_are_uncertain(caplog):
    """A cell with no count in any CNV gene has no copy-number evidence: uncertain, not non-malignant."""
    a = _sim(n_cells=400, spatial=False)
    X = a.X.tolil()
    X[:5] = 0
    a.X = X.tocsr()
    tm.pp.gene_positions(a)
    tm.tl.infer_cnv(a, sample_key="sample")
    with caplog.at_level("WARNING", logger="tmeatlas"):
        tm.tl.call_malignant(a, sample_key="sample")
    assert (a.obs["malignant"].iloc[:5] == "uncertain").all() and a.obs["malignant_prob"].iloc[
        :5
    ].isna().all()
    assert "5 cells have no count" in caplog.text


@pytest.mark.realdata
def test_cell_spacing_range_on_real_sections(merfish_nsclc, phenoptr_cells):
    """The cell-spacing range of the pixel warning holds the real sections in microns (MERFISH lung
    6.6 µm, multiplex IF 6.6 µm) and the simulated tissue (8.8 µm); the CyCIF image in pixels (11.6)
    lies inside too, which is why the readers state units instead."""
    from tmeatlas._pipeline import CELL_SPACING_UM
    from tmeatlas._readers import median_spacing

    low, high = CELL_SPACING_UM
    merfish = median_spacing(merfish_nsclc.obsm["spatial"], np.zeros(merfish_nsclc.n_obs))
    xy = phenoptr_cells[["Cell X Position", "Cell Y Position"]].to_numpy(float)
    mif = median_spacing(xy, np.zeros(len(xy)))
    sim = _sim(n_cells=2000)
    simulated = median_spacing(sim.obsm["spatial"], sim.obs["sample"].to_numpy())
    assert abs(merfish - 6.6) < 0.1 and abs(mif - 6.6) < 0.1 and abs(simulated - 8.8) < 0.5
    assert all(low <= v <= high for v in (merfish, mif, simulated))


def test_run_places_the_tumour_of_a_protein_panel(phenoptr_adata):
    """Multiplex IF (no copy-number evidence): the interface takes the epithelial cells as the tumour,
    with a warning, and its core agrees with inForm's tissue segmentation (measured 0.90 of the Tumor
    category's cells core, 0.03 of the Stroma's)."""
    a = phenoptr_adata
    with pytest.warns(UserWarning, match="Epithelial"):
        tm.run(a, sample_key="sample", steps=["qc", "normalize", "cell_types", "interface", "immune_phenotype",
                                              "immunotherapy"], progress=False)  # fmt: skip
    st = _status(a)
    assert st["interface"] == "done" and st["immune_phenotype"] == "done", st
    # the benefit's PD-L1 share counts the same tumour cells (epithelial) with the myeloid cells
    comp = tm.get.immunotherapy_benefit(a, components=True).set_index("component")
    n_epi = int((a.obs["cell_type_major"] == "Epithelial").sum())
    assert comp.loc["pdl1_positive_share", "n_population"] >= n_epi
    assert a.uns["interface"]["params"]["tumor_value"] == "Epithelial"
    tumour = (a.obs["Tissue Category"].astype(str) == "Tumor").to_numpy()
    core = (a.obs["tumor_region"].astype(str) == "core").to_numpy()
    assert core[tumour].mean() >= 0.85 and core[~tumour].mean() <= 0.05


def test_interface_step_without_malignant_calls_on_rna():
    """RNA data without malignant calls: the step is not applicable, with the reason."""
    from tmeatlas._errors import NotApplicableError
    from tmeatlas._pipeline import _interface_step

    a = _sim(n_cells=300)
    a.obs = a.obs.drop(columns=[c for c in ("malignant",) if c in a.obs])
    with pytest.raises(NotApplicableError, match="malignant calls"):
        _interface_step(a, sample_key="sample")


def test_run_places_a_melanoma_panel_on_its_melanocytic_cells():
    """A melanoma imaging panel (SOX10, Melan-A; no keratin): the tumour is the melanocytic cells."""
    from tmeatlas.datasets._constructs import protein_panel

    pops = {"melanoma": ["SOX10", "MLANA"], "CD8 T": ["CD3", "CD8", "CD45"], "macrophage": ["CD68", "CD45"]}
    a = protein_panel({"melanoma": 400, "CD8 T": 150, "macrophage": 150}, populations=pops, seed=2)
    rng = np.random.default_rng(0)
    mel = (a.obs["truth"] == "melanoma").to_numpy()
    xy = rng.uniform(0, 600, (a.n_obs, 2))
    xy[mel, 0] = rng.uniform(0, 300, mel.sum())  # the tumour nest on the left half
    a.obsm["spatial"] = xy
    a.obs["sample"] = "s1"
    with pytest.warns(UserWarning, match="Melanocyte"):
        tm.run(a, sample_key="sample", steps=["qc", "normalize", "cell_types", "interface"], progress=False)
    assert _status(a)["interface"] == "done"
    assert a.uns["interface"]["params"]["tumor_value"] == "Melanocyte"
    core = (a.obs["tumor_region"].astype(str) == "core").to_numpy()
    assert core[mel].mean() >= 0.8 and core[~mel & (xy[:, 0] > 350)].mean() <= 0.05
