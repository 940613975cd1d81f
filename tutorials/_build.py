"""Regenerate the tutorial notebooks (without outputs) from the cell sources below.

    python tutorials/_build.py

The notebooks are committed without outputs; ``tests/test_tutorials.py`` executes them. Edit the
cells here (or in Jupyter, then clear the outputs) and keep the figure names in
``tests/test_tutorials.py::EXPECTED_FIGURES`` in step with the ``save_panel`` calls.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os
from importlib.metadata import version
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scanpy as sc

import tmeatlas as tm

# figures go here; the test suite redirects it to a temporary folder
FIG_DIR = Path(os.environ.get("TMEATLAS_TUTORIAL_FIGDIR", "figures"))
FIG_DIR.mkdir(parents=True, exist_ok=True)'''

STYLE = '''\
tm.pl.set_style("paper")  # journal preset: 7 pt sans-serif, vector text in PDF, 300 dpi PNG
pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 30)
pd.set_option("display.max_colwidth", 80)


def save_panel(fig, name):
    """Write one paper panel as PDF (vector, for the manuscript) and PNG (preview) into FIG_DIR."""
    for ext in ("pdf", "png"):
        fig.savefig(FIG_DIR / f"{name}.{ext}")


print("tmeatlas", tm.__version__, "| scanpy", version("scanpy"), "| figures ->", FIG_DIR.resolve())'''


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


# ---------------------------------------------------------------------------------------------
# 01  scRNA-seq TME atlas
# ---------------------------------------------------------------------------------------------
NB01 = [
    md("""
# Tutorial 1 — A tumour-microenvironment atlas from scRNA-seq counts

This tutorial builds a small single-cell atlas of the tumour microenvironment (TME) from raw
counts, the way you would for a new cohort. You will learn how to

1. place genes on the genome and infer copy-number (CNV) profiles (`tm.pp.gene_positions`,
   `tm.tl.infer_cnv`);
2. call malignant cells from their CNV profiles and split them into subclones
   (`tm.tl.call_malignant`, `tm.tl.cnv_clones`);
3. run the usual scanpy preprocessing while keeping the raw counts in `adata.layers["counts"]`;
4. annotate compartments and cell types (`tm.tl.annotate`), score gene programs
   (`tm.tl.score_signatures`, `tm.tl.stemness`) and test immune-checkpoint interactions
   (`tm.tl.checkpoint_interactions`);
5. draw the paper figures with `tm.pl` and export tidy tables with `tm.get`.

We use a **simulated** cohort (`tm.datasets.simulate_tumor`) because it comes with the ground
truth: every cell's true type, whether it is malignant and which clone it belongs to. We never
pass those `true_*` columns to a tool; we use them only at the end of each step to check the
results, and every number quoted comes from a code cell.
"""),
    code(SETUP),
    code(STYLE),
    md("""
## 1. A simulated cohort

`simulate_tumor` draws 10x-like raw counts (negative binomial, with ambient RNA and
cell-type-specific library sizes) for several patients. Each patient has malignant subclones
that share truncal copy-number events and add private ones, plus immune, stromal and normal
epithelial cells. `spatial=False` gives a dissociated scRNA-seq experiment (tutorial 2 uses the
tissue coordinates). The raw counts are in `adata.X`; the ground truth is in the `obs` columns
starting with `true_` and in `adata.uns["simulation"]`.
"""),
    code("""
adata = tm.datasets.simulate_tumor(n_cells=4000, n_patients=3, spatial=False, rng=0)
adata
"""),
    code("""
truth_cols = ["sample", "true_compartment", "true_cell_type_major", "true_cell_type", "true_malignant", "true_clone"]
print(adata.obs[truth_cols].head())
adata.uns["simulation"]["patients"][["patient", "n_cells", "n_clones", "her2_amplified", "immune_phenotype"]]
"""),
    md("""
## 2. Genes on the genome

CNV inference needs each gene's chromosome, position and arm. `tm.pp.gene_positions` matches
the gene names (HGNC symbols, Ensembl IDs or legacy names) against the GRCh38 table shipped with
tmeatlas and writes `var["chromosome"]`, `var["start"]`, `var["end"]` and `var["arm"]`; the
match statistics go to `uns["gene_positions"]`.
"""),
    code("""
tm.pp.gene_positions(adata)
print("fraction of genes placed:", round(adata.uns["gene_positions"]["fraction_matched"], 4))
tm.get.gene_positions(adata).head()
"""),
    md("""
## 3. Copy-number profiles and malignant cells

Cancer cells carry arm-level gains and losses; averaging expression over windows of
neighbouring genes and comparing with normal cells reveals them (inferCNV; Patel et al. 2014,
Tirosh et al. 2016). `tm.tl.infer_cnv` finds confidently normal reference cells itself (cells
expressing one normal lineage program), per patient with `sample_key`, and reads raw counts
directly. Results: `obsm["X_cnv"]` (cells x genomic bins), `obs["cnv_reference"]` and
`uns["cnv"]`.

`tm.tl.call_malignant` then asks, per patient, whether a coherent CNV profile exists and which
cells carry it: `obs["malignant"]` (malignant / non-malignant / uncertain), `obs["malignant_prob"]`,
`obs["cnv_score"]` and `uns["malignant"]` (per-sample table and the arm shifts).
"""),
    code("""
tm.tl.infer_cnv(adata, sample_key="sample")
tm.tl.call_malignant(adata, sample_key="sample")
print("reference cells used:", int(adata.obs["cnv_reference"].sum()))
adata.uns["malignant"]["samples"]
"""),
    md("""
**Check against the truth.** A contingency table of the calls against `true_malignant`, and
precision, recall and F1 of the "malignant" call (uncertain calls count as not malignant).
"""),
    code("""
from sklearn.metrics import adjusted_rand_score, f1_score, precision_score, recall_score, roc_auc_score

truth_mal = adata.obs["true_malignant"].to_numpy(bool)
called_mal = (adata.obs["malignant"] == "malignant").to_numpy()
print(pd.crosstab(adata.obs["malignant"], adata.obs["true_malignant"], margins=True))
malignant_metrics = {
    "precision": precision_score(truth_mal, called_mal),
    "recall": recall_score(truth_mal, called_mal),
    "F1": f1_score(truth_mal, called_mal),
}
print({k: round(v, 3) for k, v in malignant_metrics.items()})
"""),
    code("""
fig = tm.pl.malignant_calls(adata, sample_key="sample", return_fig=True)
save_panel(fig, "malignant_calls")
"""),
    md("""
## 4. CNV subclones

Within each patient, `tm.tl.cnv_clones` splits the malignant cells divisively and keeps a split
only when a chromosome arm differs between the two sides on genes held out from the split
itself. Results: `obs["cnv_clone"]` and `uns["cnv_clones"]` with `clones`, `arm_calls` and the
`tree`.
"""),
    code("""
tm.tl.cnv_clones(adata, sample_key="sample")
adata.uns["cnv_clones"]["clones"]
"""),
    md("""
**Check against the truth.** Clone names are arbitrary labels (the called `P1_c1` need not be
the simulated `P1_c1`), so we compare partitions with the adjusted Rand index (ARI, 1 = identical
partition, about 0 = chance) on the cells that are both truly malignant and called malignant,
per patient, and show the contingency table.
"""),
    code("""
clone_ari = {}
for s in adata.obs["sample"].cat.categories:
    m = truth_mal & called_mal & (adata.obs["sample"] == s).to_numpy()
    clone_ari[s] = adjusted_rand_score(adata.obs["true_clone"][m].astype(str), adata.obs["cnv_clone"][m].astype(str))
print("clone ARI per patient:", {k: round(v, 3) for k, v in clone_ari.items()})
both = truth_mal & called_mal
pd.crosstab(adata.obs["cnv_clone"][both].astype(str), adata.obs["true_clone"][both].astype(str))
"""),
    code("""
fig = tm.pl.cnv_heatmap(adata, groupby="cnv_clone", return_fig=True)
save_panel(fig, "cnv_heatmap")
"""),
    code("""
fig = tm.pl.clone_tree(adata, return_fig=True)
save_panel(fig, "clone_tree")
"""),
    md("""
## 5. Standard scanpy preprocessing (keeping the counts)

From here on `adata.X` holds log-normalised expression, as most scanpy workflows expect. Copy
the raw counts to a layer **first**: tmeatlas tools that model counts read them with
`layer="counts"`.
"""),
    code("""
adata.layers["counts"] = adata.X.copy()
sc.pp.normalize_total(adata, target_sum=1e4)
sc.pp.log1p(adata)
sc.pp.highly_variable_genes(adata, n_top_genes=2000)
sc.tl.pca(adata, n_comps=30, mask_var="highly_variable", random_state=0)
sc.pp.neighbors(adata, n_neighbors=15, random_state=0)
sc.tl.umap(adata, random_state=0)
"""),
    md("""
## 6. Compartments and cell types

`tm.tl.annotate` scores the shipped, cited marker library per cell (averaged over the
neighbour graph when there is one), refines the labels with a classifier trained on the most
clearly marked cells, and takes the malignant label from the CNV calls (markers suggest, only
copy number shows, malignancy). Results: `obs["compartment"]`, `obs["cell_type_major"]`,
`obs["cell_type"]`, `obs["cell_type_confidence"]`, the fine-type scores in
`obsm["X_cell_type_scores"]` and `uns["annotate"]` (markers used, counts per sample); colours are
stored scanpy-style in `uns["compartment_colors"]` and `uns["cell_type_major_colors"]`.
"""),
    code("""
tm.tl.annotate(adata, layer="counts", sample_key="sample")
adata.obs[["compartment", "cell_type_major", "cell_type", "cell_type_confidence"]].head()
"""),
    md("""
**Check against the truth.** Accuracy of the compartment and major type, macro-averaged F1 over
the fine types, and the confusion table of the major types.
"""),
    code("""
o = adata.obs
fine_labels = sorted(o["true_cell_type"].astype(str).unique())
annotation_metrics = {
    "compartment accuracy": (o["compartment"].astype(str) == o["true_compartment"].astype(str)).mean(),
    "major type accuracy": (o["cell_type_major"].astype(str) == o["true_cell_type_major"].astype(str)).mean(),
    "fine type macro F1": f1_score(o["true_cell_type"].astype(str), o["cell_type"].astype(str), average="macro", labels=fine_labels),
}
print({k: round(float(v), 3) for k, v in annotation_metrics.items()})
pd.crosstab(o["cell_type_major"], o["true_cell_type_major"])
"""),
    code("""
fig = tm.pl.compartments(adata, return_fig=True)
save_panel(fig, "umap_compartments")
"""),
    code("""
fig = tm.pl.marker_dotplot(adata, groupby="cell_type", return_fig=True)
save_panel(fig, "marker_dotplot")
"""),
    code("""
fig = tm.pl.composition(adata, sample_key="sample", groupby="cell_type_major", return_fig=True)
save_panel(fig, "composition")
"""),
    md("""
## 7. Gene programs: signatures, stemness

`tm.tl.score_signatures` scores every signature of the shipped library (hallmarks, T-cell
exhaustion, CAF and macrophage states, cell cycle, ...) in one sparse pass with the
Tirosh / Seurat / scanpy control-gene score (`method="control"`; UCell ranks with
`method="rank"`). A signature with too few measured genes is skipped with a warning rather
than scored on a handful of genes. Results: `obs["sig_<name>"]`, the matrix
`obsm["X_signatures"]` and `uns["signatures"]` (which genes were found, which sets were scored).
"""),
    code("""
tm.tl.score_signatures(adata, rng=0)
summary = adata.uns["signatures"]["summary"]
print(f"{int(summary['scored'].sum())} of {len(summary)} signatures scored")
summary.head()
"""),
    md("""
**Check against the truth.** Among CD8 T cells, the terminal-exhaustion score should rank the
truly exhausted cells first: the area under the ROC curve (AUROC; 0.5 = chance, 1 = perfect).
"""),
    code("""
o = adata.obs  # score_signatures added its many columns by replacing adata.obs: take a fresh reference
cd8 = o["true_cell_type"].isin(["CD8 T", "exhausted CD8 T", "progenitor-exhausted CD8 T"]).to_numpy()
is_tex = (o["true_cell_type"] == "exhausted CD8 T").to_numpy()[cd8]
exhaustion_auroc = roc_auc_score(is_tex, o["sig_TEX_CHU2023"].to_numpy()[cd8])
print("exhaustion AUROC among CD8 T cells:", round(exhaustion_auroc, 3))
"""),
    code("""
SIGNATURES = [
    "TIROSH_G2M", "HALLMARK_HYPOXIA", "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION", "STEMNESS_CANCERSEA",
    "TEX_CHU2023", "TPEX_TSUI2022", "CYTOTOXIC_GUO2018", "MHC1_BAGAEV2021",
    "KIEFFER_IL_ICAF", "KIEFFER_ECM_MYCAF", "AZIZI_M1", "TAM_BAGAEV2021", "TREG_BAGAEV2021",
]
fig = tm.pl.signatures(adata, groupby="cell_type_major", signatures=SIGNATURES, return_fig=True)
save_panel(fig, "signatures")
"""),
    md("""
Differences between groups should be tested with **patients, not cells, as replicates**
(cells of one patient are not independent). `tm.get.signature_summary` gives the pseudobulk
mean per sample and group, `tm.get.signature_test` the patient-level tests (with only three
patients here, the smallest attainable p-values are large; that is the honest answer).
"""),
    code("""
tests = tm.get.signature_test(adata, groupby="cell_type_major", sample_key="sample", signatures=SIGNATURES)
tests[tests["group"] == "Malignant"][["signature", "group", "reference", "test", "n_samples", "effect", "pvalue", "padj"]]
"""),
    md("""
**Stemness.** `tm.tl.stemness` combines a CytoTRACE-like gene-count signature with the coherent
component of published stemness sets, as percentile ranks **within groups**: stemness only
makes sense among cells of one lineage. As in the `tmeatlas demo`, we compare malignant cells
within each patient and the other cells within their compartment. Results: `obs["stemness"]`,
its two components `obs["stemness_gene_count"]` and `obs["stemness_signatures"]`, and
`uns["stemness"]`.
"""),
    code("""
is_malignant = (adata.obs["cell_type_major"] == "Malignant").to_numpy()
adata.obs["stemness_group"] = np.where(
    is_malignant, "malignant " + adata.obs["sample"].astype(str), adata.obs["compartment"].astype(str)
)
tm.tl.stemness(adata, groupby="stemness_group", layer="counts")
# scores are percentile ranks within each group; compare the called subclones of each patient
adata.obs[is_malignant].groupby(["sample", "cnv_clone"], observed=True)[["stemness", "stemness_gene_count", "stemness_signatures"]].mean().round(3)
"""),
    md("""
**Check against the truth.** The simulation marks some clones as stem-like
(`uns["simulation"]["clone_programs"]`, program `stemness`, state `high`). Within each patient
that has both kinds of clone, the AUROC of the stemness score for telling their cells apart:
"""),
    code("""
cp = adata.uns["simulation"]["clone_programs"]
stem_high = set(cp.loc[(cp["program"] == "stemness") & (cp["state"] == "high"), "clone"].astype(str))
stemness_auroc = {}
for s in adata.obs["sample"].cat.categories:
    m = truth_mal & (adata.obs["sample"] == s).to_numpy() & adata.obs["stemness"].notna().to_numpy()
    y = adata.obs["true_clone"].astype(str).isin(stem_high).to_numpy()[m]
    if 0 < y.sum() < len(y):
        stemness_auroc[s] = roc_auc_score(y, adata.obs["stemness"].to_numpy()[m])
print("stem-like clones in the simulation:", sorted(stem_high))
print("stemness AUROC per patient:", {k: round(v, 3) for k, v in stemness_auroc.items()})
"""),
    md("""
## 8. Immune-checkpoint interactions

`tm.tl.checkpoint_interactions` scores receptor-ligand pairs of the shipped checkpoint table
(PD-1/PD-L1, TIGIT/NECTIN2, LAG-3/MHC-II, ...) between every sender and receiver group, per
patient, as CellPhoneDB does, with a label-permutation p-value (Benjamini-Hochberg adjusted).
Without a spatial graph it uses all cells of the groups (`mode = "expression"`; tutorial 2 shows
the contact-aware mode). Pairs with an unmeasured gene are skipped and listed. We use few
permutations to keep the tutorial fast; use the default (1,000) for real analyses. Results:
`uns["checkpoint_interactions"]`, read with `tm.get.checkpoint_interactions`.
"""),
    code("""
tm.tl.checkpoint_interactions(
    adata, groupby="cell_type_major", sample_key="sample", layer="counts", n_perms=100, rng=0
)
print("mode:", adata.uns["checkpoint_interactions"]["mode"])
ci = tm.get.checkpoint_interactions(adata, max_padj=0.05)
print(len(ci), "significant sender-receiver-pair rows (padj <= 0.05); strongest:")
ci.sort_values("strength", ascending=False)[["sample", "pair", "sender", "receiver", "ligand_fraction", "receptor_fraction", "strength", "padj"]].head(10)
"""),
    code("""
fig = tm.pl.checkpoint_interactions(adata, return_fig=True)
save_panel(fig, "checkpoint_interactions")
"""),
    md("""
## 9. Tidy tables

Every result has a tidy-table accessor in `tm.get` (one row per observation, ready for
`to_csv`, pandas or R). For example, the cell-type composition per patient:
"""),
    code("""
tables = {
    "gene_positions": tm.get.gene_positions(adata),
    "composition": tm.get.composition(adata, groupby="cell_type", sample_key="sample"),
    "signature_summary": tm.get.signature_summary(adata, groupby="cell_type_major", sample_key="sample", signatures=SIGNATURES),
    "signature_test": tests,
    "checkpoint_interactions": tm.get.checkpoint_interactions(adata),
}
for name, df in tables.items():
    print(f"{name:24s} {df.shape[0]:6d} rows  columns: {', '.join(map(str, df.columns))}")
tables["composition"].head()
"""),
    md("""
## 10. Summary: this run against the ground truth

All the checks of this notebook in one table (recomputed every time the notebook runs; a
different seed or cohort size gives different values).
"""),
    code("""
summary_rows = (
    [("malignant call", k, v) for k, v in malignant_metrics.items()]
    + [("clones (ARI)", s, v) for s, v in clone_ari.items()]
    + [("annotation", k, float(v)) for k, v in annotation_metrics.items()]
    + [("exhaustion score", "AUROC in CD8 T cells", exhaustion_auroc)]
    + [("stemness (AUROC)", s, v) for s, v in stemness_auroc.items()]
)
pd.DataFrame(summary_rows, columns=["step", "metric", "value"]).round(3)
"""),
    md("""
## The same in one call

Every step above, and the spatial and therapy steps of tutorials 2 and 3, is also what
`tm.run` does in one call on a fresh cohort, with input checks, a record of each step's
parameters in `uns["pipeline"]`, tidy tables, figures and a self-contained HTML report per
patient and for the cohort:

```python
tm.run(adata, sample_key="sample", out="atlas")      # or, in a shell: tmeatlas run cohort.h5ad --sample-key sample --out atlas
```

Next: tutorial 2 adds tissue coordinates (neighbourhoods, tumour interface, immune phenotype,
niches), tutorial 3 predicts which subclones survive which therapy, and tutorial 4 shows how
to add tmeatlas to an existing scanpy analysis.
"""),
]

# ---------------------------------------------------------------------------------------------
# 02  spatial niches
# ---------------------------------------------------------------------------------------------
NB02 = [
    md("""
# Tutorial 2 — Spatial neighbourhoods, the tumour interface and niches

With single-cell-resolution spatial data (MERFISH, Xenium, CosMx, CODEX, ...) the question
changes from *which* cells are in a tumour to *where* they are. This tutorial shows how to

1. build per-sample spatial neighbour graphs and neighbourhood compositions (`tm.gr.neighborhoods`);
2. test which cell types are neighbours more often than by chance (`tm.gr.enrichment`);
3. find the tumour boundary, the invasive margin and each cell's signed distance to it
   (`tm.gr.interface`);
4. classify each patient as immune *inflamed*, *excluded* or *desert* (`tm.gr.immune_phenotype`);
5. find spatial niches shared across patients (`tm.gr.niches`);
6. draw the spatial paper panels (`tm.pl.spatial`, `tm.pl.spatial_niches`,
   `tm.pl.niche_composition`, `tm.pl.interface_profile`, `tm.pl.immune_phenotypes`).

The simulated cohort knows each patient's true immune phenotype and each cell's true niche, so
we can check the results as we go.
"""),
    code(SETUP),
    code(STYLE),
    md("""
## 1. A simulated spatial cohort

With `spatial=True` each patient is one tissue section with coordinates in microns in
`obsm["spatial"]`: tumour nests, an invasive margin around them, stroma, tertiary lymphoid
structures (TLS) and normal ducts. The patients cycle through the three immune phenotypes of
Chen & Mellman (Nature 2017); the truth is in `uns["simulation"]["patients"]` and
`obs["true_niche"]`.
"""),
    code("""
adata = tm.datasets.simulate_tumor(n_cells=5000, n_patients=3, spatial=True, rng=0)
print(adata)
truth_patients = adata.uns["simulation"]["patients"]
truth_patients[["patient", "n_cells", "immune_phenotype", "n_nests"]]
"""),
    code("""
fig = tm.pl.spatial(adata, color="true_niche", sample_key="sample", return_fig=True)
save_panel(fig, "spatial_true_niche")
"""),
    md("""
## 2. Malignant cells and cell types (as in tutorial 1, in brief)

The spatial tools need cell labels. We call malignant cells from inferred copy number and
annotate cell types exactly as in tutorial 1 (raw counts in `adata.X`; on spatial data without
a whole-transcriptome panel, give your own labels instead).
"""),
    code("""
tm.pp.gene_positions(adata)
tm.tl.infer_cnv(adata, sample_key="sample")
tm.tl.call_malignant(adata, sample_key="sample")
tm.tl.annotate(adata, sample_key="sample")
major_accuracy = (adata.obs["cell_type_major"].astype(str) == adata.obs["true_cell_type_major"].astype(str)).mean()
print("major cell type accuracy vs truth:", round(float(major_accuracy), 3))
"""),
    code("""
fig = tm.pl.spatial(adata, color="cell_type_major", sample_key="sample", return_fig=True)
save_panel(fig, "spatial_cell_types")
"""),
    md("""
## 3. Neighbour graphs and neighbourhood composition

`tm.gr.neighborhoods` builds one graph per sample (never between sections) from the nearest
cells or a radius, and describes each cell by the cell-type fractions among its neighbours
(the cellular-neighbourhood features of Goltsev et al. 2018 and Schürch et al. 2020). Results:
`obsp["spatial_connectivities"]`, `obsp["spatial_distances"]`, the composition table
`obsm["X_neighborhood"]` and `uns["neighborhoods"]` (per-sample graph summary).
"""),
    code("""
tm.gr.neighborhoods(adata, cluster_key="cell_type_major", sample_key="sample", n_neighbors=15)
print(adata.uns["neighborhoods"]["samples"])
adata.obsm["X_neighborhood"].head()
"""),
    md("""
## 4. Neighbourhood enrichment

`tm.gr.enrichment` counts graph edges between every pair of groups and compares them with label
permutations within each sample (the z-score of `squidpy.gr.nhood_enrichment`), per sample and
pooled. z > 0: the two types touch more often than by chance. Results:
`uns["enrichment"]["zscore"]` (tidy).
"""),
    code("""
tm.gr.enrichment(adata, cluster_key="cell_type_major", sample_key="sample", n_perms=200, rng=0)
z = adata.uns["enrichment"]["zscore"]
pooled = z[z["sample"] == "pooled"].pivot(index="cluster_a", columns="cluster_b", values="zscore")
pooled.round(1)
"""),
    md("""
The same z-scores per patient for contacts between malignant cells and T cells (the major type
that holds the CD8 T cells), the contacts that the immune phenotypes below are about:
"""),
    code("""
z[(z["cluster_a"] == "Malignant") & (z["cluster_b"] == "T cell")][["sample", "zscore", "count", "perm_mean"]]
"""),
    md("""
## 5. The tumour interface

`tm.gr.interface` marks the tumour region (cells whose neighbourhood is mostly malignant, cut
by Otsu's threshold per sample), computes every cell's **signed distance** to the boundary in
microns (negative inside) and splits the tissue into `core`, `margin` (a band outside the
boundary) and `stroma`. Results: `obs["tumor_distance"]`, `obs["tumor_region"]`,
`uns["interface"]["samples"]`.
"""),
    code("""
tm.gr.interface(adata, sample_key="sample")
print(adata.uns["interface"]["samples"])
pd.crosstab(adata.obs["tumor_region"], adata.obs["true_niche"])
"""),
    md("""
**Check against the truth.** The simulation records each cell's signed depth in its tumour
nest (`true_nest_depth`, positive inside; -1000 when far away). Its rank correlation with our
distance (sign flipped, as ours is negative inside):
"""),
    code("""
from scipy.stats import spearmanr

near = (adata.obs["true_nest_depth"] > -1000).to_numpy() & adata.obs["tumor_distance"].notna().to_numpy()
rho = spearmanr(-adata.obs["tumor_distance"][near], adata.obs["true_nest_depth"][near]).statistic
print(f"Spearman correlation over the {int(near.sum())} cells with both values: {rho:.3f}")
"""),
    code("""
fig = tm.pl.interface_profile(adata, groupby="cell_type_major", return_fig=True)
save_panel(fig, "interface_profile")
"""),
    md("""
## 6. Immune phenotype per patient

`tm.gr.immune_phenotype` measures CD8 T-cell densities (cells/mm²) in the core, margin and
stroma of each sample and applies a published decision tree: *inflamed* (CD8 T cells inside the
tumour), *excluded* (held at the margin), *desert* (scarce everywhere). We name the cell-type
column explicitly (`cell_type_key="cell_type"`, the labels of `tm.tl.annotate`) so that the
result cannot come from any other column. Results:
`uns["immune_phenotype"]["table"]` and `obs["immune_phenotype"]` (the sample's phenotype on
each of its cells; `tm.tl.therapy_survival` uses it for immunotherapy, see tutorial 3).
A density from a few cells in a small region is uncertain, so the table also gives each
phenotype's probability under the counting error of the core and margin densities (`p_inflamed`,
`p_excluded`, `p_desert`) and the called one's as `confidence`; calls below 0.8 are logged.
"""),
    code("""
tm.gr.immune_phenotype(adata, sample_key="sample", cell_type_key="cell_type")
pheno = adata.uns["immune_phenotype"]["table"]
comparison = pheno[["sample", "phenotype", "confidence", "density_core", "density_margin", "density_stroma"]].merge(
    truth_patients[["patient", "immune_phenotype"]].rename(columns={"patient": "sample", "immune_phenotype": "truth"}),
    on="sample",
)
comparison["agrees"] = comparison["phenotype"] == comparison["truth"]
print(f"phenotype agrees with the truth in {int(comparison['agrees'].sum())} of {len(comparison)} patients")
comparison.round(1)
"""),
    code("""
fig = tm.pl.immune_phenotypes(adata, return_fig=True)
save_panel(fig, "immune_phenotypes")
"""),
    md("""
## 7. Spatial niches

`tm.gr.niches` clusters cells by their neighbourhood composition (fine cell types at two
scales, compared in the chi-square metric so that a rare type concentrated in a small structure,
such as B cells in a TLS, counts) plus their position relative to the tumour boundary, with all
samples together so that a niche means the same thing in every patient. Without `n_niches`, the
number is chosen by **stability** across subsamples (Lange et al. 2004): the largest number of
niches nearly as reproducible as the most stable one, passing over partitions that only split
one structure by patient (for example the stroma of inflamed and of desert tumours; the
`sample_overlap` column). Niches are named from their composition by fixed rules (repeated
names get a number). Results: `obs["niche"]`, `uns["niches"]` (`composition`, `regions`,
`summary`, `per_sample`, `stability`) and `uns["niche_colors"]`.
"""),
    code("""
tm.gr.niches(adata, cluster_key="cell_type", sample_key="sample", k_range=(3, 8), rng=0)
print(adata.uns["niches"]["stability"].round(3))
adata.obs["niche_by_stability"] = adata.obs["niche"].copy()
"""),
    md("""
**Check against the truth** with the adjusted Rand index and the contingency table against
`true_niche`.
"""),
    code("""
from sklearn.metrics import adjusted_rand_score

niche_ari = {"chosen by stability": adjusted_rand_score(adata.obs["true_niche"], adata.obs["niche"])}
print("niches chosen:", adata.obs["niche"].nunique(), "| ARI vs true niches:", round(niche_ari["chosen by stability"], 3))
pd.crosstab(adata.obs["niche"], adata.obs["true_niche"])
"""),
    md("""
These sections are small (about 1,700 cells, 0.25 mm² each), and the simulated 40-80 µm margin
band holds a third of their cells, so its edges weigh heavily in the ARI. `benchmarks/niches.py
--section-sizes` measures this: over four simulated cohorts of this shape the mean niche ARI is
0.75, against 0.77 for a classifier *trained* on the true niches of the other cohorts with the
same features; with 10,000 cells per section it is 0.88 (classifier 0.90).
"""),
    md("""
To impose a number of niches (here the simulation's five kinds: tumour, margin, stroma, TLS
and normal ducts), pass `n_niches`. The call overwrites `obs["niche"]` and `uns["niches"]`;
we kept the stability choice in `obs["niche_by_stability"]` above.
"""),
    code("""
n_true = adata.obs["true_niche"].nunique()
tm.gr.niches(adata, cluster_key="cell_type", sample_key="sample", n_niches=n_true, rng=0)
niche_ari[f"n_niches={n_true}"] = adjusted_rand_score(adata.obs["true_niche"], adata.obs["niche"])
print({k: round(v, 3) for k, v in niche_ari.items()})
pd.crosstab(adata.obs["niche"], adata.obs["true_niche"])
"""),
    code("""
fig = tm.pl.spatial_niches(adata, sample_key="sample", return_fig=True)
save_panel(fig, "spatial_niches")
"""),
    code("""
fig = tm.pl.niche_composition(adata, return_fig=True)
save_panel(fig, "niche_composition")
"""),
    md("""
## 8. Contact-aware checkpoint interactions

With the spatial graph in `obsp["spatial_connectivities"]`, `tm.tl.checkpoint_interactions`
switches to its spatial mode: only sender-receiver pairs of cells **in contact** count, and
group pairs that never touch are not tested. (Few permutations to keep the tutorial fast.)
"""),
    code("""
tm.tl.checkpoint_interactions(adata, groupby="cell_type_major", sample_key="sample", n_perms=100, rng=0)
print("mode:", adata.uns["checkpoint_interactions"]["mode"])
ci = tm.get.checkpoint_interactions(adata, max_padj=0.05)
ci[ci["pair"] == "PD-1/PD-L1"].head(10)
"""),
    md("""
## Summary: this run against the ground truth
"""),
    code("""
pd.DataFrame(
    [("major cell type accuracy", float(major_accuracy)),
     ("interface distance vs true nest depth (Spearman)", float(rho)),
     ("immune phenotype: patients agreeing", float(comparison["agrees"].mean()))]
    + [(f"niche ARI ({k})", float(v)) for k, v in niche_ari.items()],
    columns=["check", "value"],
).round(3)
"""),
]

# ---------------------------------------------------------------------------------------------
# 03  therapy survival
# ---------------------------------------------------------------------------------------------
NB03 = [
    md("""
# Tutorial 3 — Which subclones survive which therapy, and why

Tumours are mixtures of subclones, and a therapy that shrinks the tumour can leave one of them
behind. This tutorial shows how to

1. browse the curated, cited therapy knowledge base (`tm.datasets.therapies`);
2. predict, per malignant subclone, the fraction of cells likely to survive each therapy and
   the reasons (`tm.tl.therapy_survival`, `tm.get.therapy_survival`, `tm.pl.therapy_survival`,
   `tm.pl.survival_reasons`);
3. find the smallest combination per patient that leaves no subclone surviving
   (`tm.tl.combination_cover`, `tm.pl.combination_cover`);
4. compare continuous and adaptive dosing in a competition model (`tm.tl.simulate_therapy`,
   `tm.pl.therapy_simulation`);
5. add your own therapy entry and your own drug-sensitivity evidence.

The model is a transparent prior built from published mechanisms (target expression, resistance
programs and genes, antigen presentation and the immune context for checkpoint blockade), not a
trained response predictor: it ranks and explains. The simulated cohort carries a per-clone
sensitive/resistant truth for one example drug of several classes, so we can see where the
predictions agree and where they do not.
"""),
    code(SETUP),
    code(STYLE),
    md("""
## 1. The therapy knowledge base

One row per therapy with its class, the genes whose expression it needs (`targets`, and where:
`target_compartment`), genes whose loss confers resistance (`required_genes`), resistance and
sensitivity genes and programs, the evidence and its sources (pivotal trial first). The version
is in `df.attrs["version"]`.
"""),
    code("""
kb = tm.datasets.therapies()
print("knowledge base version:", kb.attrs["version"], "|", len(kb), "therapies")
print(kb["drug_class"].value_counts().to_string())
kb[["name", "drug_class", "subclass", "targets", "target_compartment", "resistance_programs", "citation"]].head(12)
"""),
    code("""
kb.set_index("name").loc["trastuzumab", ["mechanism", "targets", "required_genes", "resistance_genes", "resistance_programs", "evidence", "sources"]]
"""),
    md("""
## 2. Cohort, malignant subclones and immune context

We need malignant calls and subclones (tutorial 1) and, for checkpoint blockade, the immune
context: CD8 T-cell types from `tm.tl.annotate` and, with tissue coordinates, the spatial
immune phenotype of tutorial 2. All of it runs on the raw counts in `adata.X`.
"""),
    code("""
adata = tm.datasets.simulate_tumor(n_cells=4000, n_patients=3, spatial=True, rng=0)
tm.pp.gene_positions(adata)
tm.tl.infer_cnv(adata, sample_key="sample")
tm.tl.call_malignant(adata, sample_key="sample")
tm.tl.cnv_clones(adata, sample_key="sample")
tm.tl.annotate(adata, sample_key="sample")
tm.gr.interface(adata, sample_key="sample")
tm.gr.immune_phenotype(adata, sample_key="sample", cell_type_key="cell_type")
adata.uns["cnv_clones"]["clones"]
"""),
    md("""
## 3. Predicted survival per subclone

For every malignant cell and therapy, `tm.tl.therapy_survival` adds up evidence terms on the
logit scale with fixed, published-mechanism weights (stored in `uns["therapy_survival"]["weights"]`):
absence of the target (pooled over the cell's nearest malignant neighbours and called absent only
where the sequencing depth can tell it from the ambient level, so that dropouts do not read as
absence), loss of required genes, resistance/sensitivity programs and genes (relative to each
patient's malignant cells), and for checkpoint blockade the patient's immunotherapy benefit
(`tm.tl.immunotherapy_benefit`) and local antigen presentation. Each subclone gets a `call`:
`survives` or `responds` when the interval of its surviving fraction excludes 0.5 and the
evidence has odds of at least 4:1, else `undetermined` (with the reason first in `reasons`).

Results: per-cell probabilities `obs["survival_<therapy>"]` and `uns["therapy_survival"]` with
the `table` (read with `tm.get.therapy_survival`), the per-patient immunotherapy benefit
(`tm.get.immunotherapy_benefit(adata, key="therapy_survival")`), the per-therapy `therapies` summary (target on-level, toxicity) and `params`.
"""),
    code("""
THERAPIES = [
    "trastuzumab", "paclitaxel", "carboplatin", "pembrolizumab", "sacituzumab_govitecan",
    "enfortumab_vedotin", "cetuximab", "tamoxifen", "palbociclib",
]
tm.tl.therapy_survival(adata, therapies=THERAPIES, groupby="cnv_clone", sample_key="sample", rng=0)
table = tm.get.therapy_survival(adata)
print(table["call"].value_counts())
table[["therapy", "sample", "group", "n_cells", "surviving_fraction", "ci_low", "ci_high", "call", "reasons"]].head(10)
"""),
    code("""
fig = tm.pl.therapy_survival(adata, return_fig=True)
save_panel(fig, "therapy_survival")
"""),
    md("""
`tm.pl.survival_reasons` explains one therapy: each subclone's surviving fraction with its
interval and the evidence terms that moved it, largest first.
"""),
    code("""
fig = tm.pl.survival_reasons(adata, therapy="trastuzumab", return_fig=True)
save_panel(fig, "survival_reasons_trastuzumab")
"""),
    md("""
For checkpoint blockade the patient's immune context matters: the benefit combines published
biomarkers, each in the cells and setting it was validated in (TCF7+ and progenitor-exhausted
shares of CD8 T cells, the spatial immune phenotype, CD8 infiltration, PD-L1, the T-cell-inflamed
profile, antigen presentation, TLS), relative to the cohort, with what could not be measured and
why:
"""),
    code("""
tm.get.immunotherapy_benefit(adata, key="therapy_survival")[["sample", "setting", "benefit", "ci_low", "ci_high", "call", "components", "not_counted"]]
"""),
    md("""
### Check against the truth

The simulation decides each clone's response to one example drug per class by documented rules
(`uns["simulation"]["therapy_rules"]`). We match each called subclone to the simulated clone
most of its cells come from, look up the truth for the therapy's class, and cross-tabulate it
with the `call` (a *resistant* clone should be called `survives`, a *sensitive* one `responds`;
`undetermined` rows are counted apart).
"""),
    code("""
sim = adata.uns["simulation"]
rules = sim["therapy_rules"]
# therapy name -> class of the simulation's rule whose example agent it is
therapy_class = {
    t: rules.loc[rules["example_agent"].str.contains(t.replace("_", " "), case=False), "therapy"].iloc[0]
    for t in THERAPIES
}
mal = adata.obs[adata.obs["malignant"] == "malignant"]
dominant = mal.groupby("cnv_clone", observed=True)["true_clone"].agg(lambda s: s.astype(str).value_counts().index[0])
purity = mal.groupby("cnv_clone", observed=True)["true_clone"].agg(lambda s: s.astype(str).value_counts(normalize=True).iloc[0])
print(pd.DataFrame({"dominant true clone": dominant, "purity": purity.round(3)}))

truth = sim["clone_therapy"].set_index(["clone", "therapy"])["response"]
check = table[["therapy", "sample", "group", "surviving_fraction", "call", "survives"]].copy()
check["true_clone"] = check["group"].astype(str).map(dominant)
check["truth"] = [truth.get((c, therapy_class[t])) for c, t in zip(check["true_clone"], check["therapy"])]
print(pd.crosstab(check["truth"], check["call"], margins=True))
decided = check[check["call"] != "undetermined"]
agreement = ((decided["truth"] == "resistant") == decided["survives"]).mean()
print(f"{len(decided)} of {len(check)} subclone x therapy pairs decided; the call agrees with the simulated "
      f"response for {agreement:.1%} of them")
"""),
    code("""
# where they disagree, and why the model decided so
disagree = decided[(decided["truth"] == "resistant") != decided["survives"]]
disagree.merge(table[["therapy", "sample", "group", "reasons"]], on=["therapy", "sample", "group"])
"""),
    md("""
A prediction that rests on a target can only be as good as the target's detection in the data.
For the anti-HER2 antibody: the fraction of each subclone's cells with at least one ERBB2
count, the simulation's ERBB2 state of the dominant clone and the predicted surviving fraction.
"""),
    code("""
cp = sim["clone_programs"]
erbb2_state = cp[cp["program"] == "ERBB2"].set_index("clone")["state"]
detected = pd.Series((adata[mal.index, "ERBB2"].X > 0).toarray().ravel(), index=mal.index)
her2 = pd.DataFrame({
    "ERBB2 detected (fraction of cells)": detected.groupby(mal["cnv_clone"], observed=True).mean().round(3),
    "true ERBB2 state": dominant.map(erbb2_state),
})
her2.join(table[table["therapy"] == "trastuzumab"].set_index("group")[["surviving_fraction", "call"]])
"""),
    md("""
## 4. Combinations that leave no subclone behind

`tm.tl.combination_cover` solves a set-cover integer program: the fewest therapies (at most
`max_drugs`) such that every subclone above `min_fraction` of its patient's malignant cells is
shown to respond (`call == "responds"`; undetermined rows kill nothing) to at least one of them, with toxicity (the fraction of
non-malignant cells expressing the targets) as a tie-breaker. With `samples=` it covers one
patient; we solve each patient separately and store each result under its own key. Results:
`uns[key_added]` with `solutions`, `coverage` and `uncoverable`, read with
`tm.get.combination_cover`.
"""),
    code("""
covers = []
for patient in adata.obs["sample"].cat.categories:
    key = f"combination_cover_{patient}"
    tm.tl.combination_cover(adata, samples=patient, key_added=key)
    solutions = adata.uns[key]["solutions"]
    best = solutions.iloc[0]["therapies"] if len(solutions) else "(none within max_drugs)"
    print(f"{patient}: best combination = {best}; uncoverable subclones: {len(adata.uns[key]['uncoverable'])}")
    covers.append(tm.get.combination_cover(adata, key=key).assign(patient=patient))
pd.concat(covers, ignore_index=True).head(10)
"""),
    code("""
for patient in adata.obs["sample"].cat.categories:
    fig = tm.pl.combination_cover(adata, key=f"combination_cover_{patient}", return_fig=True)
    save_panel(fig, f"combination_cover_{patient}")
"""),
    md("""
## 5. Continuous versus adaptive dosing

`tm.tl.simulate_therapy` turns the predicted surviving fractions into kill rates in a
Lotka-Volterra competition model of each patient's subclones (resistant cells pay a growth cost)
and compares continuous maximum-tolerated dosing with adaptive dosing (treat until the burden
halves, pause until it regrows; Zhang et al. 2017). The rates are illustrative, not fitted: read
the ordering of the schedules, not the days. We simulate the therapy with the lowest mean
predicted surviving fraction over all subclones. Results: `uns["therapy_simulation"]` with
`trajectory`, `summary`, `composition`, `treatment` and `params`.
"""),
    code("""
sim_therapy = table.groupby("therapy")["surviving_fraction"].mean().idxmin()
print("simulated therapy:", sim_therapy)
tm.tl.simulate_therapy(adata, therapy=sim_therapy)
adata.uns["therapy_simulation"]["summary"]
"""),
    code("""
fig = tm.pl.therapy_simulation(adata, return_fig=True)
save_panel(fig, "therapy_simulation")
"""),
    md("""
## 6. Your own therapy entries and evidence

**A new or changed entry.** `tm.datasets.therapies(extra=...)` adds therapies or overrides
fields of shipped ones (a dict `name -> {field: value}` or a DataFrame with a `name` column).
Genes must be HGNC symbols of the package's gene table and programs names of the signature
library, so a typo fails loudly. A new entry needs at least `drug_class`; user rows are marked
in the `origin` column and the version gets `+user`.
"""),
    code("""
user_entries = {
    # a hypothetical TROP2-directed ADC with an efflux-pump resistance gene
    "my_trop2_adc": {"drug_class": "adc", "display_name": "Example TROP2 ADC", "targets": ["TACSTD2"],
                     "target_compartment": "malignant", "resistance_genes": ["ABCB1"]},
    # add a resistance gene to a shipped entry (only the fields given are overridden)
    "paclitaxel": {"resistance_genes": ["ABCB1", "TUBB3"]},
}
kb_user = tm.datasets.therapies(extra=user_entries)
print("version:", kb_user.attrs["version"])
kb_user.loc[kb_user["origin"] != "shipped", ["name", "drug_class", "targets", "resistance_genes", "origin"]]
"""),
    code("""
try:
    tm.datasets.therapies(extra={"typo_drug": {"drug_class": "targeted", "targets": ["ERBB22"]}})
except tm.InvalidParameterError as err:
    print("InvalidParameterError:", err)
"""),
    md("""
**Scoring them, with your own evidence.** `tm.tl.therapy_survival` takes the same entries as a
DataFrame in `therapies=` (all of its rows are scored), and `evidence=` adds a drug-sensitivity
signature per therapy, `{"up": genes high in sensitive cells, "down": genes high in resistant
cells}` (for example derived from GDSC/CTRP screens), as one more evidence term. The gene lists
below are an illustration, not a validated signature.

The per-cell columns `obs["survival_<therapy>"]` do not depend on `key_added`, so scoring
`paclitaxel` again would overwrite the column of the run above: we score on a copy
(`copy=True` returns a new AnnData and leaves `adata` untouched).
"""),
    code("""
user_df = pd.DataFrame([{"name": name, **fields} for name, fields in user_entries.items()])
evidence = {"paclitaxel": {"up": ["MKI67", "TOP2A", "CCNB1", "CDK1", "BIRC5"], "down": ["ABCB1", "ABCC1", "GSTP1"]}}
user_run = tm.tl.therapy_survival(
    adata, therapies=user_df, evidence=evidence, groupby="cnv_clone", sample_key="sample", rng=0, copy=True
)
print("knowledge base used:", user_run.uns["therapy_survival"]["params"]["knowledge_base_version"])
tm.get.therapy_survival(user_run)[["therapy", "sample", "group", "surviving_fraction", "call", "reasons"]]
"""),
    code("""
fig = tm.pl.survival_reasons(user_run, therapy="my_trop2_adc", return_fig=True)
save_panel(fig, "survival_reasons_user_therapy")
"""),
]

# ---------------------------------------------------------------------------------------------
# 04  inside scanpy
# ---------------------------------------------------------------------------------------------
NB04 = [
    md("""
# Tutorial 4 — tmeatlas inside an existing scanpy workflow

You already have a normalised, clustered AnnData from scanpy. This tutorial shows how tmeatlas
fits into it without redoing anything:

1. label your Leiden clusters by marker consensus (`tm.tl.annotate(groupby="leiden")`);
2. score signatures and check that `tm.tl.score_signatures` reproduces `sc.tl.score_genes`;
3. choose between writing results into your object and getting a copy (`copy=True`);
4. find every result in `obs` / `obsm` / `uns` and keep it through an `.h5ad` round trip;
5. put `tm.pl` panels and `sc.pl` panels into one figure with `ax=`.
"""),
    code(SETUP),
    code(STYLE),
    md("""
## 1. "Your" scanpy object

We stand in for your data with a small simulated cohort and run plain scanpy on it: counts kept
in a layer, normalisation, highly variable genes, PCA, neighbours, Leiden, UMAP. With your own
data, start from `adata = sc.read_h5ad(...)` instead.
"""),
    code("""
adata = tm.datasets.simulate_tumor(n_cells=3000, n_patients=2, spatial=False, rng=2)
adata.layers["counts"] = adata.X.copy()
sc.pp.normalize_total(adata, target_sum=1e4)
sc.pp.log1p(adata)
sc.pp.highly_variable_genes(adata, n_top_genes=2000)
sc.tl.pca(adata, n_comps=30, mask_var="highly_variable", random_state=0)
sc.pp.neighbors(adata, n_neighbors=15, random_state=0)
sc.tl.leiden(adata, resolution=1.0, flavor="igraph", n_iterations=2, directed=False, random_state=0)
sc.tl.umap(adata, random_state=0)
obs_before, obsm_before, uns_before = set(adata.obs.columns), set(adata.obsm), set(adata.uns)
print(adata)
"""),
    md("""
## 2. Cluster labels by marker consensus

With `groupby="leiden"`, `tm.tl.annotate` averages the marker scores over each cluster and gives
every cell of a cluster the cluster's labels (without `groupby` it labels cells one by one).
Raw counts are read from `layer="counts"`.

This object has no CNV calls, so malignant cells can only be *suggested* by carcinoma markers:
tmeatlas says so with a warning and records `uns["annotate"]["malignant_source"] = "markers"`.
Run `tm.tl.infer_cnv` and `tm.tl.call_malignant` first (tutorial 1) for copy-number evidence.
"""),
    code("""
tm.tl.annotate(adata, groupby="leiden", layer="counts", sample_key="sample")
print("malignant labels from:", adata.uns["annotate"]["malignant_source"])
cluster_labels = adata.obs.groupby("leiden", observed=True)[["compartment", "cell_type_major", "cell_type"]].first()
cluster_labels.assign(n_cells=adata.obs["leiden"].value_counts().sort_index())
"""),
    md("""
**Per cluster or per cell?** `copy=True` returns an annotated copy and leaves `adata` as it is,
which makes it easy to compare the two modes (and both with the simulation's truth):
"""),
    code("""
labels_before = adata.obs["cell_type"].copy()
per_cell = tm.tl.annotate(adata, layer="counts", sample_key="sample", copy=True)
print("returned:", type(per_cell).__name__, "| adata unchanged:", adata.obs["cell_type"].equals(labels_before))
truth = adata.obs["true_cell_type_major"].astype(str)
print("major-type accuracy, cluster consensus:", round(float((adata.obs["cell_type_major"].astype(str) == truth).mean()), 3))
print("major-type accuracy, per cell:        ", round(float((per_cell.obs["cell_type_major"].astype(str) == truth).mean()), 3))
print("cells labelled the same way by both:   ", round(float((per_cell.obs["cell_type_major"] == adata.obs["cell_type_major"]).mean()), 3))
"""),
    md("""
## 3. Signature scores: the same numbers as `sc.tl.score_genes`

`tm.tl.score_signatures` implements the Tirosh control-gene score exactly as scanpy does
(same expression bins and the same control-gene draws for a given seed), but scores all
signatures at once in one sparse pass. Check it on one set, the CD8 T-cell exhaustion
genes of Chu et al. 2023, against `sc.tl.score_genes` on the same log-normalised matrix:
"""),
    code("""
lib = tm.datasets.signatures(names="TEX_CHU2023")
genes = [g for g in lib.loc[lib["direction"] == "up", "gene"] if g in adata.var_names]
sc.tl.score_genes(adata, genes, ctrl_size=50, n_bins=25, random_state=0, score_name="scanpy_TEX")
tm.tl.score_signatures(adata, signatures="TEX_CHU2023", ctrl_size=50, n_bins=25, rng=0)

diff = np.abs(adata.obs["sig_TEX_CHU2023"].to_numpy() - adata.obs["scanpy_TEX"].to_numpy())
print(f"{len(genes)} genes; largest absolute difference: {diff.max():.2e}; "
      f"identical up to float32 rounding: {np.allclose(adata.obs['sig_TEX_CHU2023'], adata.obs['scanpy_TEX'], atol=1e-5)}")
"""),
    md("""
**In place or copy.** Every `tm.tl` / `tm.gr` tool writes into the object and returns `None`;
with `copy=True` it returns a new AnnData instead. Handy to try a variant (here UCell rank
scores for several categories) without touching your object:
"""),
    code("""
variant = tm.tl.score_signatures(adata, signatures=["exhaustion", "cell_cycle"], method="rank", copy=True)
print("in place returns:", tm.tl.score_signatures(adata, signatures=["exhaustion", "cell_cycle"], rng=0))
new_cols = sorted(c for c in variant.obs.columns if c.startswith("sig_"))
print("copy has", len(new_cols), "signature columns, e.g.", new_cols[:3])
lo, hi = float(variant.obs[new_cols].min().min()), float(variant.obs[new_cols].max().max())
print(f"UCell scores lie in [0, 1]: {0 <= lo and hi <= 1} (range {lo:.3f} to {hi:.3f})")
"""),
    md("""
## 4. Where the results live

tmeatlas follows scanpy's conventions: per-cell results in `obs` (signature scores as
`obs["sig_<name>"]`), per-cell matrices in `obsm` (as labelled DataFrames), everything else in
`uns` under the tool's key, and scanpy-style colours in `uns["<key>_colors"]` (so `sc.pl`
plots use the same colours as `tm.pl`). Every call is also logged in `uns["tmeatlas_log"]`
with what it added.
"""),
    code("""
print("obs added: ", sorted(set(adata.obs.columns) - obs_before))
print("obsm added:", sorted(set(adata.obsm) - obsm_before))
print("uns added: ", sorted(set(adata.uns) - uns_before))
adata.uns["tmeatlas_log"][["tool", "added"]]
"""),
    md("""
**h5ad round trip.** tmeatlas stores tables as DataFrames and plain values rather than Python
objects, so that results can be written to `.h5ad`; writing and reading back this object keeps
them (checked below):
"""),
    code("""
import anndata as ad

path = Path("tutorial_04_tmeatlas.h5ad")
adata.write_h5ad(path)
back = ad.read_h5ad(path)
checks = {
    "obs columns": list(back.obs.columns) == list(adata.obs.columns),
    "cell types": back.obs["cell_type"].equals(adata.obs["cell_type"]),
    "signature scores": np.allclose(back.obs["sig_TEX_CHU2023"], adata.obs["sig_TEX_CHU2023"]),
    "obsm X_cell_type_scores (DataFrame)": isinstance(back.obsm["X_cell_type_scores"], pd.DataFrame)
    and np.allclose(back.obsm["X_cell_type_scores"].to_numpy(), adata.obsm["X_cell_type_scores"].to_numpy()),
    "uns['annotate'] keys": set(back.uns["annotate"]) == set(adata.uns["annotate"]),
    "uns['signatures']['summary']": back.uns["signatures"]["summary"].equals(adata.uns["signatures"]["summary"]),
}
print(checks)
path.unlink()
"""),
    md("""
## 5. tmeatlas panels in a scanpy figure

Every `tm.pl` function takes `ax=`, like `sc.pl` functions, so both draw into one grid. Single-
panel calls are needed for `ax=` (e.g. one `color` key in `tm.pl.compartments`).
"""),
    code("""
fig, axs = plt.subplots(2, 2, figsize=(7.2, 6.0), layout="constrained")
sc.pl.umap(adata, color="leiden", legend_loc="on data", frameon=False, ax=axs[0, 0], show=False)
sc.pl.umap(adata, color="cell_type_major", frameon=False, ax=axs[0, 1], show=False)  # colours from uns, set by tmeatlas
tm.pl.composition(adata, sample_key="sample", groupby="cell_type_major", ax=axs[1, 0])
tm.pl.signatures(adata, groupby="cell_type_major", signatures=["TEX_CHU2023", "TIROSH_G2M", "TIROSH_G1S"], ax=axs[1, 1])
for ax, letter in zip(axs.flat, "abcd"):
    ax.set_title(letter, loc="left", fontweight="bold")
save_panel(fig, "scanpy_grid")
"""),
    md("""
The same object then feeds the rest of tmeatlas: CNV and malignant calls (tutorial 1), spatial
analyses when it has coordinates (tutorial 2) and therapy survival (tutorial 3).
"""),
]

NOTEBOOKS = {
    "01_scrna_tme_atlas.ipynb": NB01,
    "02_spatial_niches.ipynb": NB02,
    "03_therapy_survival.ipynb": NB03,
    "04_inside_scanpy.ipynb": NB04,
}


def build() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells)
        nb.metadata = {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{name[:2]}-{i:03d}"  # stable ids: rebuilding gives an identical file
            if cell.cell_type == "code":
                cell.execution_count = None
                cell.outputs = []
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    build()
