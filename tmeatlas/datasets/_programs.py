"""Marker genes, gene programs and therapy rules used by :func:`~tmeatlas.datasets.simulate_tumor`.

Everything here is *data*: which real human genes (HGNC symbols of the GRCh38 table shipped
with tmeatlas) mark which cell state, by how much (natural-log fold change over the gene's
"off" level), and how a malignant clone's programs translate into a known response to a
therapy. :mod:`tmeatlas.datasets._simulate` turns it into expression profiles.

Cell types form a hierarchy **lineage -> major type -> fine type**. A fine type's log-profile
is the sum of its lineage module, its major-type module, its own fine module and optional
shared modules (cytotoxicity, MHC class II, exhaustion, ...). Fine states of one major type
therefore share most of their markers and differ by a few genes and by graded levels, as in
real atlases; they are not trivially separable.

Sources of the marker sets (canonical genes, not copied tables):

* T and NK cells: Zheng et al., *Pan-cancer single-cell landscape of tumor-infiltrating
  T cells*, Science 374:abe6474 (2021) -- CD8 Tem (GZMK), terminal Tex (PDCD1, HAVCR2,
  LAG3, TOX, ENTPD1, CXCL13, LAYN), Treg (FOXP3, IL2RA, CTLA4, TNFRSF18), CD4 naive/memory
  (IL7R, CCR7, SELL, LEF1).
* Progenitor vs terminally exhausted CD8 T: Sade-Feldman et al., Cell 175:998 (2018)
  (TCF7+ vs TCF7- CD8 T); Miller et al., Nat Immunol 20:326 (2019) (TCF7, SLAMF6, CXCR5, XCL1,
  intermediate PD-1).
* Myeloid cells: Cheng et al., *A pan-cancer single-cell transcriptional atlas of
  tumor infiltrating myeloid cells*, Cell 184:792 (2021) -- Mono_CD14, Mono_CD16,
  Macro_C1QC, Macro_SPP1, cDC1_CLEC9A, cDC2_CD1C, pDC_LILRA4, Mast_KIT; Zhang et al., Cell
  181:442 (2020) for C1QC+/SPP1+ TAMs; Zilionis et al., Immunity 50:1317 (2019) for
  tumour neutrophils (CSF3R, FCGR3B, CXCR2).
* Cancer-associated fibroblasts: Elyada et al., Cancer Discov 9:1102 (2019) (myCAF: ACTA2,
  TAGLN; iCAF: IL6, CXCL12, C3, CFD, PDGFRA); Kieffer et al., Cancer Discov 10:1330 (2020)
  (ECM-myCAF: POSTN, MMP11, COL11A1, LRRC15); Luo et al., Nat Commun 13:6619 (2022)
  (pan-cancer CAF atlas: pericytes RGS5, KCNJ8, PDGFRB).
* Endothelial cells: Goveia et al., Cancer Cell 37:21 (2020) (PECAM1, VWF, CDH5, PLVAP,
  ACKR1 venules).
* Malignant programs: Tirosh et al., Science 352:189 (2016) (cell cycle G1/S and G2/M
  genes); Puram et al., Cell 171:1611 (2017) (partial EMT); Buffa et al., Br J Cancer
  102:428 (2010) (hypoxia metagene); Sharma et al., Cell 141:69 (2010) and Hangauer et al.,
  Nature 551:247 (2017) (drug-tolerant persisters: KDM5A/B, GPX4); Gettinger et al.,
  Cancer Discov 7:1420 (2017) (B2M/HLA loss and PD-1 resistance); van den Brink et al.,
  Nat Methods 14:935 (2017) (dissociation stress genes); Schoggins & Rice, Curr Opin
  Virol 1:519 (2011) (interferon-stimulated genes).
"""

from __future__ import annotations

__all__ = [
    "CELL_TYPES",
    "CELL_TYPE_EXTRA_MODULES",
    "CONTINUA",
    "COMPARTMENTS",
    "HIGH_BASELINE",
    "MAJOR_TYPES",
    "MITO_GENES",
    "MODULES",
    "NICHES",
    "PROGRAMS",
    "THERAPIES",
    "all_program_genes",
    "therapy_responses",
]

# ---------------------------------------------------------------------------------------------
# cell-type hierarchy
# ---------------------------------------------------------------------------------------------

#: fine type -> (major type, compartment, lineage); the fine type is ``obs["true_cell_type"]``
CELL_TYPES: dict[str, tuple[str, str, str]] = {
    "Malignant": ("Malignant", "malignant", "epithelial"),
    "normal epithelium": ("Epithelial", "epithelial", "epithelial"),
    "CD8 T": ("T cell", "immune", "lymphoid"),
    "exhausted CD8 T": ("T cell", "immune", "lymphoid"),
    "progenitor-exhausted CD8 T": ("T cell", "immune", "lymphoid"),
    "CD4 T": ("T cell", "immune", "lymphoid"),
    "Treg": ("T cell", "immune", "lymphoid"),
    "NK": ("NK cell", "immune", "lymphoid"),
    "B": ("B cell", "immune", "lymphoid"),
    "Plasma": ("Plasma cell", "immune", "lymphoid"),
    "classical monocyte": ("Myeloid", "immune", "myeloid"),
    "non-classical monocyte": ("Myeloid", "immune", "myeloid"),
    "C1Q+ macrophage": ("Myeloid", "immune", "myeloid"),
    "SPP1+ macrophage": ("Myeloid", "immune", "myeloid"),
    "cDC1": ("Myeloid", "immune", "myeloid"),
    "cDC2": ("Myeloid", "immune", "myeloid"),
    "pDC": ("Myeloid", "immune", "myeloid"),
    "neutrophil": ("Myeloid", "immune", "myeloid"),
    "Mast": ("Mast cell", "immune", "myeloid"),
    "myCAF": ("Fibroblast", "stromal", "mesenchymal"),
    "iCAF": ("Fibroblast", "stromal", "mesenchymal"),
    "Pericyte": ("Pericyte", "stromal", "mesenchymal"),
    "Endothelial": ("Endothelial", "stromal", "endothelial"),
}

MAJOR_TYPES = [
    "Malignant",
    "T cell",
    "NK cell",
    "B cell",
    "Plasma cell",
    "Myeloid",
    "Mast cell",
    "Fibroblast",
    "Endothelial",
    "Pericyte",
    "Epithelial",
]
COMPARTMENTS = ["malignant", "immune", "stromal", "epithelial"]
NICHES = ["tumour", "margin", "stroma", "TLS", "normal_duct"]


def _m(genes: str, lfc: float) -> dict[str, float]:
    """``{gene: lfc}`` for a whitespace-separated gene list."""
    return dict.fromkeys(genes.split(), float(lfc))


def _merge(*parts: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in parts:
        out.update(p)
    return out


# ---------------------------------------------------------------------------------------------
# identity modules: natural-log fold change over the gene's "off" level
# ---------------------------------------------------------------------------------------------

MODULES: dict[str, dict[str, float]] = {
    # --- compartment-wide ---------------------------------------------------------------------
    "immune": _merge(
        _m("PTPRC", 4.5), _m("CORO1A LAPTM5 CD53 ARHGDIB LCP1 RAC2 CD37 CXCR4", 3.0), _m("SRGN HCST", 2.0)
    ),
    "MHC-II": _merge(
        _m("HLA-DRA CD74", 4.5),
        _m("HLA-DRB1 HLA-DPA1 HLA-DPB1", 4.0),
        _m("HLA-DQA1 HLA-DQB1 HLA-DMA HLA-DMB", 3.0),
    ),
    "cytotoxic": _merge(_m("NKG7 GZMA CCL5 CST7", 4.0), _m("PRF1 CTSW GZMH", 3.0), _m("CCL4 CCL3", 2.5)),
    # --- lineages ------------------------------------------------------------------------------
    "lineage:epithelial": _merge(
        _m("KRT8 KRT18", 5.0),
        _m("EPCAM KRT19 CLDN4 ELF3 SPINT2", 4.0),
        _m("CLDN7 CDH1 KRT7 CD24 MUC1 CLDN3", 3.0),
    ),
    "lineage:lymphoid": _merge(_m("IL2RG LTB CD52", 2.0), _m("SELL", 1.0)),
    "lineage:myeloid": _merge(
        _m("TYROBP FCER1G", 4.0), _m("LYZ AIF1 CST3 LST1", 3.5), _m("SPI1 CSF1R CD68 FCGR2A", 2.5)
    ),
    "lineage:mesenchymal": _merge(
        _m("SPARC IGFBP7 CALD1", 3.0), _m("PDGFRB", 2.5), _m("COL4A1 COL4A2 COL6A2", 2.0), _m("VIM", 1.0)
    ),
    "lineage:endothelial": _merge(_m("SPARC IGFBP7", 2.5), _m("COL4A1 COL4A2", 2.5), _m("VIM", 1.0)),
    # --- major types ---------------------------------------------------------------------------
    "major:Malignant": _merge(
        # carcinoma-associated genes (generic luminal-like carcinoma)
        _m("MDK SOX4 CRABP2 AGR2 S100P CEACAM6 KRT81 MUC1", 2.5),
    ),
    "major:Epithelial": _merge(_m("KRT5 KRT14 KRT17 KRT15", 4.0), _m("SLPI PIGR LTF", 3.0)),
    "major:T cell": _merge(
        _m("CD3D CD3E TRAC TRBC2", 4.5),
        _m("CD3G CD2 CD247 TRBC1 LCK", 3.5),
        _m("CD6 CD5 CD27 ITK ZAP70 IL32", 3.0),
    ),
    "major:NK cell": _merge(
        _m("KLRD1 GNLY", 4.5), _m("KLRF1 NCAM1 FCGR3A KLRC1 SH2D1B TXK", 3.5), _m("CD247 IL2RB", 2.5)
    ),
    "major:B cell": _merge(
        _m("MS4A1 CD79A CD79B", 5.0),
        _m("CD19 BANK1 CD22 PAX5 TNFRSF13C", 3.5),
        _m("IGHM IGKC", 5.0),
        _m("IGHD", 3.0),
    ),
    "major:Plasma cell": _merge(
        _m("IGKC", 9.0),
        _m("IGHG1 IGHA1 IGLC2", 8.0),
        _m("JCHAIN MZB1", 6.0),
        _m("XBP1 DERL3 FKBP11 TNFRSF17 PRDM1 SDC1", 3.5),
        _m("CD79A", 2.5),
    ),
    "major:Myeloid": {},
    "major:Mast cell": _merge(
        _m("TPSAB1 TPSB2", 6.0),
        _m("CPA3", 5.0),
        _m("KIT MS4A2 HDC HPGDS", 4.0),
        _m("GATA2 SLC18A2 IL1RL1 CLU", 3.0),
    ),
    "major:Fibroblast": _merge(
        _m("COL1A1 COL1A2 COL3A1", 5.5),
        _m("DCN LUM", 5.0),
        _m("FBLN1 COL6A1 COL6A3 MMP2 PDGFRA", 3.5),
        _m("FAP THY1 PDPN", 2.5),
    ),
    "major:Pericyte": _merge(
        _m("RGS5", 5.0),
        _m("KCNJ8 ABCC9 NOTCH3 HIGD1B", 4.0),
        _m("MCAM CSPG4 MYL9 TAGLN", 3.0),
        _m("ACTA2", 3.5),
    ),
    "major:Endothelial": _merge(
        _m("PECAM1 VWF CDH5", 5.0),
        _m("CLDN5 PLVAP EMCN KDR FLT1 RAMP2 EGFL7", 4.0),
        _m("ESAM AQP1 TIE1 SPARCL1 ENG ACKR1", 3.0),
    ),
    # --- fine types ----------------------------------------------------------------------------
    "fine:Malignant": {},
    "fine:normal epithelium": _merge(_m("KRT6B S100A2 MMP7 LCN2", 2.0)),
    "fine:CD8 T": _merge(_m("CD8A CD8B", 4.5), _m("GZMK", 3.5), _m("EOMES CXCR3 CD69", 2.0)),
    "fine:exhausted CD8 T": _merge(
        _m("CD8A CD8B", 4.5),
        _m("CXCL13", 3.5),
        _m("GZMB", 3.0),
        _m("LAYN MYO7A TNFRSF9", 2.0),
        _m("ITGAE RBPJ PHLDA1", 2.0),
    ),
    "fine:progenitor-exhausted CD8 T": _merge(
        _m("CD8A CD8B", 4.5),
        # TCF7 at the level that puts it in ~55 % of these cells at ~3,600 UMIs, so that 15-20 %
        # of all CD8 T cells of a checkpoint cohort detect it, as 16 % of the CD8A/B+ T cells of
        # the shared Qian ovarian tumours do at ~2,700 UMIs (was 2.5: 11 % of these cells, 4 %
        # of CD8 T cells, too few for Sade-Feldman's TCF7+ share to be read)
        _m("TCF7", 4.0),
        _m("SLAMF6", 2.5),
        _m("CXCR5 XCL1 XCL2", 3.0),
        _m("GZMK", 2.5),
        _m("IL7R CCR7", 1.5),
    ),
    "fine:CD4 T": _merge(
        _m("CD4", 3.0),
        _m("IL7R", 3.5),
        _m("CD40LG CCR7 LEF1 TCF7", 2.5),
        _m("ANXA1 KLF2", 2.0),
        _m("SELL", 1.5),
    ),
    "fine:Treg": _merge(
        _m("CD4", 3.0),
        _m("FOXP3 IL2RA", 4.0),
        _m("CTLA4 TNFRSF18 TNFRSF4", 3.5),
        _m("IKZF2 BATF CCR8", 2.5),
        _m("TIGIT LAYN TNFRSF9", 2.0),
    ),
    "fine:NK": _merge(_m("XCL1 KIR2DL4", 1.5)),
    "fine:B": _merge(_m("CR2 FCER2 TCL1A", 2.5)),
    "fine:Plasma": {},
    "fine:classical monocyte": _merge(
        _m("CD14", 4.0),
        _m("S100A8 S100A9", 5.0),
        _m("VCAN FCN1 S100A12", 4.0),
        _m("LYZ", 1.5),
        _m("SELL", 2.0),
    ),
    "fine:non-classical monocyte": _merge(
        _m("FCGR3A", 4.5), _m("CDKN1C LILRB2 MS4A7 CX3CR1", 3.5), _m("HES4 TCF7L2 LILRA5", 2.5)
    ),
    "fine:C1Q+ macrophage": _merge(
        _m("C1QA C1QB C1QC", 5.5),
        _m("APOE", 4.5),
        _m("SELENOP MAF CD163 F13A1 FOLR2", 3.0),
        _m("MRC1 MS4A7", 2.5),
        _m("APOC1", 2.5),
    ),
    "fine:SPP1+ macrophage": _merge(
        _m("SPP1", 6.0),
        _m("TREM2 GPNMB", 4.0),
        _m("FABP5 CD9 LGALS3 MMP9 ACP5", 3.0),
        _m("APOC1 APOE", 3.5),
        _m("C1QA C1QB C1QC", 2.5),
        _m("MARCO CTSK", 2.0),
    ),
    "fine:cDC1": _merge(
        _m("CLEC9A XCR1", 4.5), _m("CADM1 BATF3 IRF8 IDO1 WDFY4 DNASE1L3", 3.0), _m("CPNE3", 2.0)
    ),
    "fine:cDC2": _merge(_m("CD1C FCER1A CLEC10A", 4.5), _m("CD1E ITGAX IRF4", 2.5)),
    "fine:pDC": _merge(
        _m("LILRA4 CLEC4C", 4.5), _m("IL3RA IRF7 TCF4 PLD4 SERPINF1", 3.5), _m("GZMB JCHAIN LAMP5 PTCRA", 3.0)
    ),
    "fine:neutrophil": _merge(
        _m("CSF3R FCGR3B CXCR2", 4.5),
        _m("S100A8 S100A9", 5.0),
        _m("CXCR1 FPR1 FPR2 MNDA SOD2 G0S2", 3.5),
        _m("CMTM2 PROK2 IFITM2 NAMPT", 3.0),
    ),
    "fine:Mast": {},
    "fine:myCAF": _merge(
        _m("ACTA2 TAGLN", 3.5),
        _m("POSTN MMP11 COL11A1", 4.0),
        _m("CTHRC1 COL10A1 INHBA LRRC15 COMP", 3.0),
        _m("MYL9 TPM2 SULF1", 2.0),
        _m("FAP", 1.5),
    ),
    "fine:iCAF": _merge(
        _m("CFD", 4.0),
        _m("CXCL12 C3 C7", 3.5),
        _m("IL6 HAS1 CXCL1 CXCL2", 3.0),
        _m("APOD DPT PI16 CCL2", 3.0),
        _m("PDGFRA", 1.5),
    ),
    "fine:Pericyte": {},
    "fine:Endothelial": {},
}

#: shared modules (beyond lineage/major/fine) that a fine type adds, with their scale
CELL_TYPE_EXTRA_MODULES: dict[str, dict[str, float]] = {
    "Malignant": {},
    "normal epithelium": {},
    # cytotoxicity: graded over the CD8 states and NK cells (Zheng 2021)
    "CD8 T": {"cytotoxic": 1.0},
    "exhausted CD8 T": {"cytotoxic": 1.0, "exhaustion": 1.0},
    # progenitor-exhausted: intermediate PD-1/TOX (Miller 2019), little cytotoxicity
    "progenitor-exhausted CD8 T": {"cytotoxic": 0.55, "exhaustion": 0.45},
    "CD4 T": {},
    "Treg": {"exhaustion": 0.3},
    "NK": {"cytotoxic": 1.1},
    "B": {"MHC-II": 0.9},
    "Plasma": {},
    "classical monocyte": {"MHC-II": 0.6},
    "non-classical monocyte": {"MHC-II": 0.7},
    "C1Q+ macrophage": {"MHC-II": 1.0},
    "SPP1+ macrophage": {"MHC-II": 0.75},
    "cDC1": {"MHC-II": 1.1},
    "cDC2": {"MHC-II": 1.2},
    "pDC": {"MHC-II": 0.6},
    "neutrophil": {},
    "Mast": {},
    "myCAF": {},
    "iCAF": {},
    "Pericyte": {},
    "Endothelial": {"MHC-II": 0.3},
}

MODULES["exhaustion"] = _merge(
    _m("PDCD1 HAVCR2 LAG3 TOX", 3.5), _m("ENTPD1 TIGIT CTLA4", 3.0), _m("CXCL13", 1.0)
)

#: continua between related states: fine type -> {neighbouring state: probability that a cell
#: of the type is an intermediate towards it}. Intermediates mix the two log-profiles with
#: weight 0.15-0.45 of the neighbour, keeping the dominant label. Transitions follow the
#: trajectories reported in the atlases: CD8 Tem -> Tex and Tpex -> Tex (Zheng 2021; Miller
#: 2019), CD4 Tconv <-> Treg (Zheng 2021), monocyte -> macrophage and C1QC+ <-> SPP1+ TAMs
#: (Cheng 2021; Zhang 2020), DC3/monocyte-like cDC2 (Cheng 2021), the myCAF-iCAF continuum
#: (Elyada 2019; Kieffer 2020), plasmablasts (B -> plasma).
CONTINUA: dict[str, dict[str, float]] = {
    "CD8 T": {"exhausted CD8 T": 0.15, "progenitor-exhausted CD8 T": 0.1, "NK": 0.05},
    "exhausted CD8 T": {"CD8 T": 0.15, "progenitor-exhausted CD8 T": 0.1},
    "progenitor-exhausted CD8 T": {"exhausted CD8 T": 0.15, "CD8 T": 0.15, "CD4 T": 0.05},
    "CD4 T": {"Treg": 0.1, "progenitor-exhausted CD8 T": 0.05},
    "Treg": {"CD4 T": 0.2},
    "NK": {"CD8 T": 0.15},
    "B": {"Plasma": 0.05},
    "Plasma": {"B": 0.1},
    "classical monocyte": {"C1Q+ macrophage": 0.15, "non-classical monocyte": 0.1, "cDC2": 0.05},
    "non-classical monocyte": {"classical monocyte": 0.2},
    "C1Q+ macrophage": {"SPP1+ macrophage": 0.2, "classical monocyte": 0.1},
    "SPP1+ macrophage": {"C1Q+ macrophage": 0.25},
    "cDC1": {"cDC2": 0.1},
    "cDC2": {"classical monocyte": 0.15, "cDC1": 0.05},
    "pDC": {},
    "neutrophil": {"classical monocyte": 0.1},
    "Mast": {},
    "myCAF": {"iCAF": 0.15, "Pericyte": 0.05},
    "iCAF": {"myCAF": 0.12},
    "Pericyte": {"myCAF": 0.15},
    "Endothelial": {},
    "normal epithelium": {},
    "Malignant": {},
}

# ---------------------------------------------------------------------------------------------
# genes expressed everywhere at a high level (log level, not a fold change)
# ---------------------------------------------------------------------------------------------

_RIBOSOMAL = (
    "RPL3 RPL4 RPL5 RPL6 RPL7 RPL7A RPL8 RPL9 RPL10 RPL10A RPL11 RPL12 RPL13 RPL13A RPL14 RPL15 RPL17 "
    "RPL18 RPL18A RPL19 RPL21 RPL22 RPL23 RPL23A RPL24 RPL26 RPL27 RPL27A RPL28 RPL29 RPL30 RPL31 RPL32 "
    "RPL34 RPL35 RPL35A RPL36 RPL37 RPL37A RPL38 RPL39 RPL41 RPLP0 RPLP1 RPLP2 RPS2 RPS3 RPS3A RPS4X "
    "RPS5 RPS6 RPS7 RPS8 RPS9 RPS10 RPS11 RPS12 RPS13 RPS14 RPS15 RPS15A RPS16 RPS17 RPS18 RPS19 RPS20 "
    "RPS21 RPS23 RPS24 RPS25 RPS26 RPS27 RPS27A RPS28 RPS29 RPSA"
)

#: housekeeping / abundant genes: log level on the same scale as the background genes
HIGH_BASELINE: dict[str, float] = _merge(
    _m(_RIBOSOMAL, 4.1),
    _m("EEF1A1 TPT1 TMSB4X", 5.0),
    _m("MALAT1", 5.3),
    _m("ACTB B2M FTL FTH1", 4.6),
    _m("GAPDH PTMA MYL6 TMSB10 EEF2 UBA52 FAU HLA-B", 4.0),
    _m("HLA-A HLA-C", 3.6),
    _m("HLA-E PFN1 CFL1 SRP14 NACA EIF1 UBC H3-3B NEAT1 CD74 VIM", 3.0),
    _m("TAP1 PSMB8 PSMB9 TAPBP", 1.6),
    _m("TAP2 NLRC5", 0.6),
    _m("CD44 LGALS1 S100A10 S100A6 ANXA2", 1.8),
    _m("PGK1 LDHA ENO1 ALDOA MIF", 2.5),
    _m("FOS JUN JUNB DUSP1 ZFP36 IER2 KLF6", 2.0),
    _m("TUBB STMN1 HMGB2 H2AZ1", 1.5),
    _m("SPARC IGFBP7", 0.5),
)

#: the 13 protein-coding mitochondrial genes (chrM) with their Ensembl IDs; they are not in the
#: genome table (no chrM there) and are written with missing positions.
MITO_GENES: dict[str, str] = {
    "MT-ND1": "ENSG00000198888",
    "MT-ND2": "ENSG00000198763",
    "MT-CO1": "ENSG00000198804",
    "MT-CO2": "ENSG00000198712",
    "MT-ATP8": "ENSG00000228253",
    "MT-ATP6": "ENSG00000198899",
    "MT-CO3": "ENSG00000198938",
    "MT-ND3": "ENSG00000198840",
    "MT-ND4L": "ENSG00000212907",
    "MT-ND4": "ENSG00000198886",
    "MT-ND5": "ENSG00000198786",
    "MT-ND6": "ENSG00000198695",
    "MT-CYB": "ENSG00000198727",
}
#: log level of each mitochondrial gene (MT-CO1, MT-ND4, MT-CYB ... are the most abundant)
MITO_LEVELS: dict[str, float] = {
    "MT-ND1": 3.7, "MT-ND2": 3.5, "MT-CO1": 4.4, "MT-CO2": 4.2, "MT-ATP8": 2.7, "MT-ATP6": 4.1,
    "MT-CO3": 4.2, "MT-ND3": 3.4, "MT-ND4L": 2.7, "MT-ND4": 4.0, "MT-ND5": 2.9, "MT-ND6": 2.0,
    "MT-CYB": 3.9,
}  # fmt: skip

# ---------------------------------------------------------------------------------------------
# cell-level programs (activity per cell, weight = log fold change at activity 1)
# ---------------------------------------------------------------------------------------------

PROGRAMS: dict[str, dict[str, float]] = {
    # Tirosh 2016 G1/S + G2/M genes
    "proliferation": _merge(
        _m("MKI67 TOP2A CENPF", 3.5),
        _m("CCNB1 CDK1 BIRC5 UBE2C CDC20 NUSAP1 TPX2 AURKA CCNA2", 3.0),
        _m("RRM2 TYMS MCM2 MCM3 MCM5 PCNA PCLAF ZWINT CKS2 PTTG1", 2.5),
        _m("HMGB2 TUBB STMN1 H2AZ1", 1.0),
    ),
    # Buffa 2010 hypoxia metagene and canonical HIF targets
    "hypoxia": _merge(
        _m("CA9 ANKRD37 EGLN3", 3.0),
        _m("VEGFA ADM NDRG1 BNIP3 SLC2A1 P4HA1 ANGPTL4 ERO1A", 2.5),
        _m("PFKFB3 BHLHE40 LOX", 2.0),
        _m("PGK1 LDHA ENO1 ALDOA MIF", 1.0),
    ),
    # cancer stem-like state
    "stemness": _merge(
        _m("PROM1 ALDH1A1 SOX2", 3.0), _m("KLF4 SOX9 LGR5 NES ALDH1A3", 2.5), _m("CD44 ITGA6 BMI1", 1.5)
    ),
    # partial EMT (Puram 2017) / hallmark EMT; epithelial genes go down
    "EMT": _merge(
        _m("VIM", 2.0),
        _m("ZEB1 ZEB2 SNAI2 TWIST1", 3.0),
        _m("FN1 CDH2 TGFBI SERPINE1 TNC", 2.5),
        _m("LAMC2 LAMB3 PDPN ITGA5 MMP2", 2.0),
        _m("CDH1 EPCAM CLDN4 CLDN7", -1.5),
    ),
    # MHC class I antigen presentation; activity -3 means "lost" (B2M/HLA/NLRC5 loss)
    "antigen_presentation": _merge(
        _m("HLA-A HLA-B HLA-C B2M", 1.0), _m("TAP1 TAP2 PSMB8 PSMB9 NLRC5 TAPBP", 1.0), _m("HLA-E", 0.6)
    ),
    # drug-tolerant persister / quiescence (Sharma 2010, Hangauer 2017)
    "persister": _merge(
        _m("KDM5A KDM5B GPX4 AXL NGFR", 2.5), _m("CDKN1B TXNIP CDKN1A SESN1", 2.0), _m("ALDH1A3", 1.0)
    ),
    # interferon response (inflamed tumours)
    "interferon": _merge(
        _m("ISG15 IFI6 IFIT1 IFIT3 IFI44L MX1", 3.0),
        _m("STAT1 IRF1 GBP1 OAS1", 2.0),
        _m("CXCL9 CXCL10", 2.5),
        _m("CD274", 1.2),
        _m("PSMB9 TAP1", 0.8),
    ),
    # dissociation / stress response (van den Brink 2017)
    "stress": _merge(_m("FOS FOSB JUN JUNB ATF3 EGR1", 2.0), _m("HSPA1A HSPA1B DUSP1 IER2 ZFP36", 1.8)),
    # mitochondrial transcript fraction (cell quality); activity ~ N(0, 0.35)
    "mito": dict.fromkeys(MITO_GENES, 1.0),
    # ER signalling (luminal, endocrine-sensitive)
    "ER_signalling": _merge(_m("ESR1", 3.5), _m("PGR GATA3 FOXA1 TFF1", 3.0), _m("TFF3 AGR3 CA12", 2.0)),
}

#: drug targets set per clone ("high" adds this log fold change to the clone profile)
DRUG_TARGETS: dict[str, float] = {
    "ERBB2": 1.5,  # plus the 17q12 focal amplification (copy number 8)
    "EGFR": 3.0,
    "TACSTD2": 2.5,
    "NECTIN4": 3.0,
    "ESR1": 0.0,  # carried by the ER_signalling program
    "CD274": 2.5,
}

#: genes of the ERBB2 amplicon (17q12) amplified together with ERBB2
ERBB2_AMPLICON = ["PGAP3", "ERBB2", "MIEN1", "GRB7", "STARD3", "PNMT", "TCAP", "IKZF3"]

# ---------------------------------------------------------------------------------------------
# therapy response rules (documented; applied per malignant clone)
# ---------------------------------------------------------------------------------------------

#: therapy -> (example agent, rule); a clone is "sensitive" when the rule holds, else "resistant"
THERAPIES: dict[str, tuple[str, str]] = {
    "anti-HER2": ("trastuzumab", "sensitive iff ERBB2 high (17q12 focal amplification)"),
    "taxane": (
        "paclitaxel",
        "sensitive iff proliferation high and neither persister nor EMT high",
    ),
    "platinum": (
        "carboplatin",
        "sensitive iff proliferation high and neither persister, EMT nor stemness high",
    ),
    "anti-PD-1": (
        "pembrolizumab",
        "sensitive iff antigen presentation intact and the patient's immune phenotype is inflamed",
    ),
    "TROP2-ADC": ("sacituzumab govitecan", "sensitive iff TACSTD2 high"),
    "Nectin-4-ADC": ("enfortumab vedotin", "sensitive iff NECTIN4 high"),
    "EGFR inhibitor": ("cetuximab", "sensitive iff EGFR high"),
    "endocrine": ("tamoxifen / aromatase inhibitor", "sensitive iff ESR1 high"),
    "CDK4/6 inhibitor": ("palbociclib", "sensitive iff ESR1 high and not persister"),
}


def therapy_responses(states: dict[str, str], phenotype: str) -> dict[str, str]:
    """Apply :data:`THERAPIES` to one clone.

    ``states`` maps program/target names to ``"high"``/``"low"`` (``antigen_presentation``:
    ``"intact"``/``"lost"``); ``phenotype`` is the patient's immune phenotype.
    """
    hi = {k: v == "high" for k, v in states.items()}
    chemo_resistant = hi["persister"] or hi["EMT"]
    rules = {
        "anti-HER2": hi["ERBB2"],
        "taxane": hi["proliferation"] and not chemo_resistant,
        "platinum": hi["proliferation"] and not chemo_resistant and not hi["stemness"],
        "anti-PD-1": states["antigen_presentation"] == "intact" and phenotype == "inflamed",
        "TROP2-ADC": hi["TACSTD2"],
        "Nectin-4-ADC": hi["NECTIN4"],
        "EGFR inhibitor": hi["EGFR"],
        "endocrine": hi["ESR1"],
        "CDK4/6 inhibitor": hi["ESR1"] and not hi["persister"],
    }
    return {t: ("sensitive" if ok else "resistant") for t, ok in rules.items()}


def all_program_genes() -> list[str]:
    """Every gene named in this module (modules, programs, baselines, targets, amplicon), sorted."""
    genes: set[str] = set(HIGH_BASELINE) | set(DRUG_TARGETS) | set(ERBB2_AMPLICON)
    for mod in MODULES.values():
        genes |= set(mod)
    for prog in PROGRAMS.values():
        genes |= set(prog)
    return sorted(genes - set(MITO_GENES))
