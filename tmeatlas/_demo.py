"""``tmeatlas demo``: simulate a cohort and run every analysis that exists, writing results to a folder.

The demo never pretends: it runs the steps tmeatlas has, lists them in ``DIR/summary.json``,
and names the atlas steps that are not implemented yet.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._keys import OBS, OBSM, UNS

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["run_demo"]

#: atlas steps planned but not implemented in this version (reported in summary.json)
NOT_YET: list[str] = []

#: therapies of the demo: one per class that the simulated cohort carries a response truth for
DEMO_THERAPIES = [
    "trastuzumab", "paclitaxel", "carboplatin", "pembrolizumab", "sacituzumab_govitecan",
    "enfortumab_vedotin", "cetuximab", "tamoxifen", "palbociclib",
]  # fmt: skip


#: programs shown in the demo's signature figure
DEMO_SIGNATURES = [
    "TIROSH_G2M", "HALLMARK_HYPOXIA", "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION", "STEMNESS_CANCERSEA",
    "TEX_TERMINAL_ZHENG2021", "TPEX_MILLER2019", "CYTOTOXIC_GUO2018", "AYERS_IFNG_6", "MHC1_ANTIGEN_PRESENTATION",
    "MHC2_ANTIGEN_PRESENTATION", "ELYADA_ICAF", "ELYADA_MYCAF", "ZHANG_C1QC_TAM", "ZHANG_SPP1_TAM", "TREG_ZHENG2021",
]  # fmt: skip


def _quiet(fn, *args, **kwargs):
    """Call ``fn`` with warnings silenced (the demo reports skipped sets in its tables)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


class _Progress:
    def __init__(self, n_steps: int, enabled: bool) -> None:
        self.n, self.i, self.enabled, self.t0 = n_steps, 0, enabled, time.perf_counter()
        self.steps: list[dict] = []

    def __call__(self, label: str, fn, *args, **kwargs):
        self.i += 1
        if self.enabled:
            print(f"[{self.i}/{self.n}] {label} ...", end="", file=sys.stderr, flush=True)
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        dt = time.perf_counter() - t
        self.steps.append({"step": label, "seconds": round(dt, 2)})
        if self.enabled:
            print(f" done in {dt:.1f} s", file=sys.stderr, flush=True)
        return out


def run_demo(*, out: str | Path, n_cells: int = 20_000, n_patients: int = 4, rng: int = 0, progress: bool = True) -> AnnData:
    """Simulate a tumour cohort, run the implemented analyses and write h5ad, tables and figures to ``out``."""
    import matplotlib as mpl

    mpl.use("Agg")
    import scanpy as sc

    from . import datasets, get, gr, pl, pp, tl

    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    step = _Progress(21, progress)

    adata = step(f"simulate a cohort of {n_cells:,} cells, {n_patients} patients", datasets.simulate_tumor,
                 n_cells=n_cells, n_patients=n_patients, spatial=True, rng=rng)
    step(f"gene positions for {adata.n_vars:,} genes (GRCh38)", pp.gene_positions, adata)

    def _scanpy(a: AnnData) -> None:
        a.layers["counts"] = a.X.copy()
        a.var["mt"] = a.var_names.str.startswith("MT-")
        sc.pp.calculate_qc_metrics(a, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
        sc.pp.normalize_total(a, target_sum=1e4)
        sc.pp.log1p(a)
        sc.pp.highly_variable_genes(a, n_top_genes=2000)
        sc.tl.pca(a, n_comps=30, mask_var="highly_variable", random_state=rng)
        sc.pp.neighbors(a, n_neighbors=15, random_state=rng)
        sc.tl.umap(a, random_state=rng)
        sc.tl.leiden(a, resolution=1.0, flavor="igraph", n_iterations=2, directed=False, random_state=rng)

    step(f"CNV inference ({adata.n_obs:,} cells, automatic reference per patient)", tl.infer_cnv, adata, sample_key=OBS.sample)
    step("malignant calls", tl.call_malignant, adata, sample_key=OBS.sample)
    step("CNV subclones", tl.cnv_clones, adata, sample_key=OBS.sample)
    step("scanpy: QC, normalisation, PCA, neighbours, UMAP, Leiden", _scanpy, adata)
    step("cell types and compartments (markers + CNV calls)", tl.annotate, adata, layer="counts", sample_key=OBS.sample)
    step("signature scores (91 cited sets, one sparse pass)", _quiet, tl.score_signatures, adata, method="control")

    def _stemness(a: AnnData) -> None:
        # stemness compares cells of one lineage: malignant cells per patient, the rest per compartment
        mal = (a.obs[OBS.cell_type_major] == "Malignant").to_numpy()
        a.obs["stemness_group"] = np.where(mal, "malignant " + a.obs[OBS.sample].astype(str), a.obs[OBS.compartment].astype(str))
        tl.stemness(a, groupby="stemness_group", layer="counts")

    step("stemness (gene counts + coherent stemness programs)", _stemness, adata)
    step("checkpoint receptor-ligand interactions per patient", tl.checkpoint_interactions, adata,
         groupby=OBS.cell_type_major, sample_key=OBS.sample, layer="counts", n_perms=200)

    if OBSM.spatial in adata.obsm:
        step("tumour interface: signed distance to the tumour boundary, core / margin / stroma", gr.interface, adata,
             sample_key=OBS.sample)
        step("immune phenotype per patient (CD8 T densities in core, margin, stroma)", gr.immune_phenotype, adata,
             sample_key=OBS.sample)
        step("spatial niches shared across patients (number chosen by stability)", gr.niches, adata,
             sample_key=OBS.sample, rng=rng)

    step(f"therapy survival of every CNV subclone ({len(DEMO_THERAPIES)} therapies)", _quiet, tl.therapy_survival,
         adata, therapies=DEMO_THERAPIES, groupby=OBS.cnv_clone, sample_key=OBS.sample, rng=rng)
    def _covers(a: AnnData) -> None:
        # one combination per patient (each patient's subclones), and the first patient's under the default key
        for i, p in enumerate(a.obs[OBS.sample].cat.categories):
            tl.combination_cover(a, samples=str(p), key_added=UNS.combination_cover if i == 0 else f"{UNS.combination_cover}_{p}")

    step("per-patient combinations that leave no subclone behind (integer programming)", _quiet, _covers, adata)
    step("adaptive vs continuous dosing of trastuzumab (Lotka-Volterra model)", tl.simulate_therapy, adata,
         therapy="trastuzumab")

    def _agreement(a: AnnData) -> dict:
        from sklearn.metrics import adjusted_rand_score, f1_score

        ari = adjusted_rand_score(a.obs[OBS.true_cell_type], a.obs["leiden"])
        tab = pd.crosstab(a.obs["leiden"], a.obs[OBS.true_cell_type])
        tab.to_csv(out / "tables" / "leiden_vs_true_cell_type.csv")
        truth = a.obs[OBS.true_malignant].to_numpy(bool)
        called = (a.obs[OBS.malignant] == "malignant").to_numpy()
        clone_ari = {}
        for s in a.obs[OBS.sample].cat.categories:
            m = truth & (a.obs[OBS.sample] == s).to_numpy()
            if m.any():
                clone_ari[str(s)] = round(float(adjusted_rand_score(a.obs[OBS.true_clone][m].astype(str), a.obs[OBS.cnv_clone][m].astype(str))), 4)
        o = a.obs
        labels = sorted(o[OBS.true_cell_type].astype(str).unique())
        annotation = {
            "major_accuracy": round(float((o[OBS.cell_type_major].astype(str) == o[OBS.true_cell_type_major].astype(str)).mean()), 4),
            "compartment_accuracy": round(float((o[OBS.compartment].astype(str) == o[OBS.true_compartment].astype(str)).mean()), 4),
            "fine_macro_f1": round(float(f1_score(o[OBS.true_cell_type].astype(str), o[OBS.cell_type].astype(str),
                                                   average="macro", labels=labels)), 4),
        }
        from sklearn.metrics import roc_auc_score

        cp = a.uns[UNS.simulation]["clone_programs"]
        hi = set(cp.loc[(cp["program"] == "stemness") & (cp["state"] == "high"), "clone"].astype(str))
        stem_auc = {}
        for s in a.obs[OBS.sample].cat.categories:
            m = truth & (a.obs[OBS.sample] == s).to_numpy() & a.obs["stemness"].notna().to_numpy()
            y = a.obs[OBS.true_clone].astype(str).isin(hi).to_numpy()[m]
            if 0 < y.sum() < len(y):
                stem_auc[str(s)] = round(float(roc_auc_score(y, a.obs["stemness"].to_numpy()[m])), 4)
        cd8 = o[OBS.true_cell_type].isin(["CD8 T", "exhausted CD8 T", "progenitor-exhausted CD8 T"]).to_numpy()
        tex = (o[OBS.true_cell_type] == "exhausted CD8 T").to_numpy()[cd8]
        spatial = {}
        if OBS.niche in a.obs.columns:
            pheno = a.uns[UNS.immune_phenotype]["table"].set_index("sample")["phenotype"]
            truth_pheno = a.uns[UNS.simulation]["patients"].set_index("patient")["immune_phenotype"]
            spatial = {
                "niche_ari_vs_truth": round(float(adjusted_rand_score(o[OBS.true_niche], o[OBS.niche])), 4),
                "niches": [str(c) for c in o[OBS.niche].cat.categories],
                "immune_phenotype_called": {str(k): str(v) for k, v in pheno.items()},
                "immune_phenotype_truth": {str(k): str(v) for k, v in truth_pheno.items()},
            }
        return {
            "annotation_vs_truth": annotation,
            "spatial_vs_truth": spatial,
            "stemness_auroc_vs_truth": stem_auc,
            "exhaustion_auroc_vs_truth": round(float(roc_auc_score(tex, o["sig_TEX_TERMINAL_ZHENG2021"].to_numpy()[cd8])), 4),
            "ari_leiden_vs_true_cell_type": round(float(ari), 4),
            "n_leiden_clusters": int(a.obs["leiden"].nunique()),
            "malignant_f1_vs_truth": round(float(f1_score(truth, called)), 4),
            "clone_ari_vs_truth": clone_ari,
        }

    metrics = step("clusters vs ground truth", _agreement, adata)

    def _tables(a: AnnData) -> None:
        a.obs.to_csv(out / "tables" / "cells.csv")
        get.gene_positions(a).to_csv(out / "tables" / "gene_positions.csv", index=False)
        comp = pd.crosstab(a.obs[OBS.sample], a.obs[OBS.true_cell_type], normalize="index")
        comp.to_csv(out / "tables" / "true_composition.csv")
        for name, df in _frames(a.uns.get(UNS.simulation, {})):
            df.to_csv(out / "tables" / f"simulation_{name}.csv", index=False)
        get.composition(a, groupby=OBS.cell_type, sample_key=OBS.sample).to_csv(out / "tables" / "composition.csv", index=False)
        a.uns[UNS.annotate]["markers_used"].to_csv(out / "tables" / "annotation_markers_used.csv", index=False)
        get.signature_summary(a, groupby=OBS.cell_type_major, sample_key=OBS.sample).to_csv(
            out / "tables" / "signature_summary.csv", index=False)
        _quiet(get.signature_test, a, groupby=OBS.cell_type_major, sample_key=OBS.sample).to_csv(
            out / "tables" / "signature_tests.csv", index=False)
        get.checkpoint_interactions(a).to_csv(out / "tables" / "checkpoint_interactions.csv", index=False)
        a.uns[UNS.malignant]["samples"].to_csv(out / "tables" / "malignant_per_sample.csv", index=False)
        if OBS.niche in a.obs.columns:
            a.uns[UNS.niches]["composition"].to_csv(out / "tables" / "niche_composition.csv")
            a.uns[UNS.interface]["samples"].to_csv(out / "tables" / "interface_per_sample.csv", index=False)
            a.uns[UNS.immune_phenotype]["table"].to_csv(out / "tables" / "immune_phenotype.csv", index=False)
        get.therapy_survival(a).to_csv(out / "tables" / "therapy_survival.csv", index=False)
        covers = []
        for i, p in enumerate(a.obs[OBS.sample].cat.categories):
            k = UNS.combination_cover if i == 0 else f"{UNS.combination_cover}_{p}"
            covers.append(get.combination_cover(a, key=k).assign(patient=str(p)))
        pd.concat(covers, ignore_index=True).to_csv(out / "tables" / "combination_cover.csv", index=False)
        a.uns[UNS.therapy_simulation]["summary"].to_csv(out / "tables" / "therapy_simulation.csv", index=False)
        a.uns[UNS.malignant]["arm_shifts"].to_csv(out / "tables" / "malignant_cnv_cluster_arms.csv", index=False)
        for k in ("clones", "arm_calls", "tree"):
            a.uns[UNS.cnv_clones][k].to_csv(out / "tables" / f"cnv_clones_{k}.csv", index=False)

    step("tables", _tables, adata)

    def _figures(a: AnnData) -> None:
        import matplotlib.pyplot as plt

        for key in (OBS.true_cell_type, "leiden"):
            with plt.rc_context({"figure.figsize": (7, 6)}):
                fig = sc.pl.umap(a, color=key, palette=pl.CB_PALETTE if key != "leiden" else None, return_fig=True, show=False, frameon=False)
            for ext in ("png", "pdf"):
                fig.savefig(out / "figures" / f"umap_{key}.{ext}", bbox_inches="tight", dpi=150)
            plt.close(fig)
        for ext in ("png", "pdf"):
            pl.cnv_heatmap(a, groupby=OBS.cnv_clone, show=False, save=out / "figures" / f"cnv_heatmap.{ext}")
            pl.malignant_calls(a, sample_key=OBS.sample, show=False, save=out / "figures" / f"malignant_calls.{ext}")
            pl.clone_tree(a, show=False, save=out / "figures" / f"clone_tree.{ext}")
            pl.compartments(a, show=False, save=out / "figures" / f"umap_compartments.{ext}")
            pl.marker_dotplot(a, show=False, save=out / "figures" / f"marker_dotplot.{ext}")
            pl.composition(a, sample_key=OBS.sample, show=False, save=out / "figures" / f"composition.{ext}")
            pl.signatures(a, groupby=OBS.cell_type_major, signatures=DEMO_SIGNATURES, show=False,
                          save=out / "figures" / f"signatures.{ext}")
            pl.checkpoint_interactions(a, show=False, save=out / "figures" / f"checkpoint_interactions.{ext}")
            pl.therapy_survival(a, show=False, save=out / "figures" / f"therapy_survival.{ext}")
            pl.combination_cover(a, show=False, save=out / "figures" / f"combination_cover.{ext}")
            pl.therapy_simulation(a, show=False, save=out / "figures" / f"therapy_simulation.{ext}")
        if OBSM.spatial in a.obsm:
            for key in (OBS.true_niche, OBS.true_cell_type_major):
                for ext in ("png", "pdf"):
                    pl.spatial(a, color=key, sample_key=OBS.sample, ncols=4, show=False, save=out / "figures" / f"spatial_{key}.{ext}")
            if OBS.niche in a.obs.columns:
                for ext in ("png", "pdf"):
                    pl.spatial_niches(a, show=False, save=out / "figures" / f"spatial_niches.{ext}")
                    pl.niche_composition(a, show=False, save=out / "figures" / f"niche_composition.{ext}")
                    pl.interface_profile(a, show=False, save=out / "figures" / f"interface_profile.{ext}")
                    pl.immune_phenotypes(a, show=False, save=out / "figures" / f"immune_phenotypes.{ext}")

    step("figures", _figures, adata)
    step("write cohort.h5ad", adata.write_h5ad, out / "cohort.h5ad", compression="gzip")

    summary = {
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "n_patients": int(adata.obs[OBS.sample].nunique()),
        "seed": int(rng),
        "gene_positions_fraction_matched": float(adata.uns[UNS.gene_positions]["fraction_matched"]),
        **metrics,
        "steps": step.steps,
        "not_yet_implemented": NOT_YET,
        "outputs": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()),
    }
    step("summary.json", (out / "summary.json").write_text, json.dumps(summary, indent=2))
    if progress:
        print(
            f"tmeatlas demo: wrote {out}/ (malignant F1 vs truth {metrics['malignant_f1_vs_truth']:.3f}; "
            f"major cell-type accuracy {metrics['annotation_vs_truth']['major_accuracy']:.3f}; "
            f"ARI of Leiden clusters vs true cell types {metrics['ari_leiden_vs_true_cell_type']:.2f})",
            file=sys.stderr,
        )
    return adata


def _frames(d, prefix: str = ""):
    """(name, DataFrame) pairs found anywhere in a nested uns dict."""
    if isinstance(d, pd.DataFrame):
        yield prefix.strip("_") or "table", d
        return
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _frames(v, f"{prefix}_{k}")
    elif isinstance(d, np.ndarray | list):
        return
