from __future__ import annotations

import json

import anndata as ad
import pytest

from tmeatlas.cli import main


def test_demo_writes_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-cells", "1500", "--n-patients", "2", "--seed", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cells"] == 1500 and summary["n_patients"] == 2
    assert summary["gene_positions_fraction_matched"] > 0.95
    assert "cell-type annotation" not in summary["not_yet_implemented"]
    assert summary["not_yet_implemented"] == []
    assert summary["annotation_vs_truth"]["major_accuracy"] > 0.9
    assert summary["malignant_f1_vs_truth"] > 0.9
    for f in (
        "atlas.h5ad",
        "tables/cells.csv",
        "tables/gene_positions.csv",
        "figures/umap_samples.pdf",
        "report/index.html",
        "report/P1.html",
        "report/P2.html",
        "figures/samples/P1/cnv_heatmap.png",
        "figures/spatial_true_niche.png",
        "figures/spatial_true_niche.pdf",
        "figures/cnv_heatmap.pdf",
        "figures/clone_tree.png",
        "tables/cnv_clones_arm_calls.csv",
        "tables/malignant_per_sample.csv",
        "figures/umap_compartments.pdf",
        "figures/marker_dotplot.png",
        "figures/composition.pdf",
        "tables/composition.csv",
        "tables/signature_tests.csv",
        "tables/checkpoint_interactions.csv",
        "figures/signatures.pdf",
        "figures/checkpoint_interactions.png",
    ):
        assert (out / f).stat().st_size > 0, f
    a = ad.read_h5ad(out / "atlas.h5ad")
    assert a.n_obs == 1500 and "chromosome" in a.var and "X_umap" in a.obsm and "X_cnv" in a.obsm
    assert "cell_type" in a.obs and "compartment_colors" in a.uns
    assert "stemness" in a.obs and "sig_TIROSH_G2M" in a.obs and "checkpoint_interactions" in a.uns
    assert {"niche", "tumor_distance", "tumor_region", "immune_phenotype"} <= set(a.obs.columns)
    for f in (
        "figures/spatial_niches.pdf",
        "figures/immune_phenotypes.png",
        "tables/immune_phenotype.csv",
        "tables/therapy_survival.csv",
        "figures/therapy_survival.pdf",
        "figures/therapy_simulation.png",
    ):
        assert (out / f).stat().st_size > 0, f
    err = capsys.readouterr().err
    assert "simulating a cohort of 1,500 cells" in err and "[1/23] QC" in err and "[23/23] write" in err
    assert [s["status"] for s in summary["steps"]] == ["done"] * 19


def test_demo_bad_arguments(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "x"), "--n-cells", "0"]) == 2
    assert "error" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo"])  # --out is required
