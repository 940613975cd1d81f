"""Every result key that tmeatlas reads or writes, in one place.

Tools import names from here rather than spelling strings, so that a key is renamed in one
line and a user can look up where each result lives.
"""

from __future__ import annotations

from types import SimpleNamespace

__all__ = ["OBS", "OBSM", "OBSP", "SIGNATURE_PREFIX", "SURVIVAL_PREFIX", "UNS", "VAR"]

#: per-gene columns in ``adata.var``
VAR = SimpleNamespace(
    chromosome="chromosome",
    start="start",
    end="end",
    arm="arm",
    gene_id="gene_id",
    gene_symbol="gene_symbol",
    position_source="position_source",
)

#: per-cell columns in ``adata.obs``
OBS = SimpleNamespace(
    sample="sample",
    # tm.run: QC (scanpy's names), clusters, stemness groups
    n_genes_by_counts="n_genes_by_counts",
    total_counts="total_counts",
    pct_counts_mt="pct_counts_mt",
    qc_outlier="qc_outlier",
    leiden="leiden",
    stemness_group="stemness_group",
    # ground truth written by tm.datasets.simulate_tumor
    true_cell_type="true_cell_type",
    true_cell_type_major="true_cell_type_major",
    true_compartment="true_compartment",
    true_malignant="true_malignant",
    true_clone="true_clone",
    true_niche="true_niche",
    true_doublet="true_doublet",
    true_doublet_partner="true_doublet_partner",
    # tm.tl.infer_cnv / call_malignant / cnv_clones
    cnv_reference="cnv_reference",
    cnv_score="cnv_score",
    cnv_correlation="cnv_correlation",
    malignant_prob="malignant_prob",
    malignant="malignant",
    cnv_clone="cnv_clone",
    # tm.tl.heterogeneity
    malignant_state="malignant_state",
    # tm.tl.annotate
    compartment="compartment",
    cell_type_major="cell_type_major",
    cell_type="cell_type",
    cell_type_confidence="cell_type_confidence",
    cell_type_doublet="cell_type_doublet",
    # tm.tl.stemness
    stemness="stemness",
    gene_count="gene_count",
    # tm.tl.transfer_labels
    transferred_label="transferred_label",
    transferred_confidence="transferred_label_confidence",
    # tm.gr.niches / interface / immune_phenotype
    niche="niche",
    tumor_distance="tumor_distance",
    tumor_region="tumor_region",
    immune_phenotype="immune_phenotype",
    # tm.gr.tumor_score
    tumor_score="tumor_score",
)

#: prefix of the per-cell signature scores in ``adata.obs`` (``"sig_<name>"``)
SIGNATURE_PREFIX = "sig_"

#: prefix of the per-cell therapy survival probabilities in ``adata.obs`` (``"survival_<therapy>"``)
SURVIVAL_PREFIX = "survival_"

#: matrices in ``adata.obsm``
OBSM = SimpleNamespace(
    spatial="spatial",
    cnv="X_cnv",
    cell_type_scores="X_cell_type_scores",
    scvi="X_scvi",
    scanvi="X_scanvi",
    signatures="X_signatures",
    neighborhood="X_neighborhood",
    tumor_score="X_tumor_score",
)

#: graphs in ``adata.obsp``
OBSP = SimpleNamespace(spatial_connectivities="spatial_connectivities", spatial_distances="spatial_distances")

#: entries in ``adata.uns``
UNS = SimpleNamespace(
    gene_positions="gene_positions",
    simulation="simulation",
    cnv="cnv",
    malignant="malignant",
    cnv_clones="cnv_clones",
    annotate="annotate",
    integrate="integrate",
    transfer_labels="transfer_labels",
    signatures="signatures",
    stemness="stemness",
    checkpoint_interactions="checkpoint_interactions",
    neighborhoods="neighborhoods",
    enrichment="enrichment",
    niches="niches",
    interface="interface",
    immune_phenotype="immune_phenotype",
    tumor_score="tumor_score",
    therapy_survival="therapy_survival",
    combination_cover="combination_cover",
    therapy_simulation="therapy_simulation",
    immunotherapy_benefit="immunotherapy_benefit",
    drug_screen="drug_screen",
    heterogeneity="heterogeneity",
    # tm.read: the unit of obsm["spatial"]
    spatial_units="spatial_units",
    pipeline="pipeline",
    qc="qc",
    log="tmeatlas_log",
)
