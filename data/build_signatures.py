"""Build the signature library in ``tmeatlas/_data`` (format: ``data/SIGNATURES_FORMAT.md``).

Writes
  tmeatlas/_data/signatures_human.tsv     one row per (signature, gene)
  tmeatlas/_data/signatures_meta.tsv      one row per signature
  tmeatlas/_data/signatures_sources.tsv   one row per source (citation, DOI, licence)
  tmeatlas/_data/checkpoint_pairs.tsv     immune-checkpoint receptor-ligand pairs
  data/signatures_check.tsv               per signature: what it was compared with, verdict, symbol changes

Inputs
  * the curated lists below (``CURATED``), each with its publication; gene names are facts from
    the cited papers, the selection and the tables are this project's;
  * the 50 MSigDB Hallmark gene sets (Liberzon et al., Cell Syst 2015; MSigDB v7.5.1 symbols,
    CC BY 4.0).  Read from a GMT file: ``--hallmark-gmt`` (default
    ``../shared/data/resources/msigdb_hallmark_50.gmt``, an IOBR copy whose content is identical,
    set by set, to ``h.all.v7.5.1.symbols.gmt``; sha256 below);
  * CancerSEA functional-state gene lists (Yuan et al., NAR 2019), ``--cancersea-gmt`` (default
    ``../shared/data/resources/cancersea_14_states.gmt``, made from the CancerSEA download of
    2022-05-02 as kept in cnio-bu/beyondcell ``data-raw/CancerSEA``);
  * the 41 malignant-cell meta-programs of intratumour heterogeneity (Gavish et al., Nature
    618:598-606, 2023), ``data/gavish2023_cancer_mps.tsv`` (columns meta_program, rank, gene; 50
    genes per program in the authors' order; sha256 in ``GAVISH_SHA256``).  It is the element
    "Cancer" of the authors' file ``ITH_hallmarks/MPs_distribution/MP_list.RDS.gz`` in
    github.com/tiroshlab/3ca at commit f91ce80e1fe55b421e8ff9f4225886e4af81de9e (gzip RDS, sha256
    cbf32d4a540d6b6cf27bd9b2e13d658c91918820bc1580053353bdfba315ec38), converted with the ``rdata``
    package (``rdata.conversion.convert(rdata.parser.parse_file(path))["Cancer"]``, names and gene
    order kept).  Repository licence: MIT, "Copyright (c) 2022 Tirosh Lab" (full text in
    ``tmeatlas/_data/PROVENANCE.md``).  Upper-cased open-reading-frame names (``C15ORF48``) are read
    as ``C15orf48`` before the symbol rules below; names that do not resolve are dropped (recorded).

When a GMT file is absent (a fresh clone has no ``../shared``), the rows of those sets are taken
from the existing ``signatures_human.tsv`` so the curated part can still be rebuilt.

Gene symbols: every gene must be in ``tmeatlas._resources.gene_table().index``.  Previous symbols
are replaced by the current one (NCBI Gene via org.Hs.eg.db 3.16; ``SYMBOL_UPDATES``) when the
current symbol is in the gene table; names not in the gene table are resolved through
``gene_names()`` (alias/legacy).  Every change is recorded in ``data/signatures_check.tsv``.

Run:  python data/build_signatures.py        (then the format checks at the end run by themselves)
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tmeatlas._resources import gene_names, gene_table  # noqa: E402

DATA = ROOT / "tmeatlas" / "_data"
SHARED = ROOT.parent / "shared" / "data" / "resources"
HALLMARK_SHA256 = "25ec73df8b7b9a5a2cf26ce66525a5724ff90255cf358765b0bf5e61e3451fbb"
CANCERSEA_SHA256 = "b6cb1e1d8766857b8a2f6fe12a63bcc05eb1961445532a5a2b50cc32ffdde5ee"
GAVISH_TSV = ROOT / "data" / "gavish2023_cancer_mps.tsv"
GAVISH_SHA256 = "0808a49f5db4673f34d4122e503255872c09f5e55a8179ce2f1e088aac27a366"

CATEGORIES = [
    "stemness",
    "checkpoint",
    "exhaustion",
    "progenitor_exhausted",
    "cytotoxicity",
    "ifng_inflamed",
    "antigen_presentation_mhc1",
    "antigen_presentation_mhc2",
    "hypoxia",
    "emt",
    "cell_cycle",
    "tls",
    "caf",
    "tam",
    "treg",
    "mdsc",
    "angiogenesis",
    "persister",
    "senescence",
    "quiescence",
    "dna_repair",
    "drug_efflux",
    "hallmark",
    "meta_program",
]

# --------------------------------------------------------------------------------------------
# Sources: key -> (citation, doi, licence of the redistributed gene list)
# --------------------------------------------------------------------------------------------
FACTS = "facts from a publication (gene names); table by tmeatlas"
SOURCES = {
    "Liberzon2015": (
        "Liberzon A. et al. The Molecular Signatures Database hallmark gene set collection. Cell Syst 1:417-425 (2015); MSigDB v7.5.1 h.all symbols",
        "10.1016/j.cels.2015.12.004",
        "CC BY 4.0 (MSigDB)",
    ),
    "Yuan2019": (
        "Yuan H. et al. CancerSEA: a cancer single-cell state atlas. Nucleic Acids Res 47:D900-D908 (2019); CancerSEA download (biocc.hrbmu.edu.cn/CancerSEA/goDownload, 2022-05-02)",
        "10.1093/nar/gky939",
        FACTS + "; CancerSEA states no licence for its downloads",
    ),
    "Takahashi2006": (
        "Takahashi K., Yamanaka S. Induction of pluripotent stem cells from mouse embryonic and adult fibroblast cultures by defined factors. Cell 126:663-676 (2006)",
        "10.1016/j.cell.2006.07.024",
        FACTS,
    ),
    "Yu2007": (
        "Yu J. et al. Induced pluripotent stem cell lines derived from human somatic cells. Science 318:1917-1920 (2007)",
        "10.1126/science.1151526",
        FACTS,
    ),
    "Pardoll2012": (
        "Pardoll D.M. The blockade of immune checkpoints in cancer immunotherapy. Nat Rev Cancer 12:252-264 (2012)",
        "10.1038/nrc3239",
        FACTS,
    ),
    "Freeman2000": (
        "Freeman G.J. et al. Engagement of the PD-1 immunoinhibitory receptor by a novel B7 family member leads to negative regulation of lymphocyte activation. J Exp Med 192:1027-1034 (2000)",
        "10.1084/jem.192.7.1027",
        FACTS,
    ),
    "Latchman2001": (
        "Latchman Y. et al. PD-L2 is a second ligand for PD-1 and inhibits T cell activation. Nat Immunol 2:261-268 (2001)",
        "10.1038/85330",
        FACTS,
    ),
    "Linsley1991": (
        "Linsley P.S. et al. CTLA-4 is a second receptor for the B cell activation antigen B7. J Exp Med 174:561-569 (1991)",
        "10.1084/jem.174.3.561",
        FACTS,
    ),
    "Yu2009": (
        "Yu X. et al. The surface protein TIGIT suppresses T cell activation by promoting the generation of mature immunoregulatory dendritic cells. Nat Immunol 10:48-57 (2009)",
        "10.1038/ni.1674",
        FACTS,
    ),
    "Baixeras1992": (
        "Baixeras E. et al. Characterization of the lymphocyte activation gene 3-encoded protein. A new ligand for human leukocyte antigen class II antigens. J Exp Med 176:327-337 (1992)",
        "10.1084/jem.176.2.327",
        FACTS,
    ),
    "Wang2019": (
        "Wang J. et al. Fibrinogen-like protein 1 is a major immune inhibitory ligand of LAG-3. Cell 176:334-347 (2019)",
        "10.1016/j.cell.2018.11.010",
        FACTS,
    ),
    "Zhu2005": (
        "Zhu C. et al. The Tim-3 ligand galectin-9 negatively regulates T helper type 1 immunity. Nat Immunol 6:1245-1252 (2005)",
        "10.1038/ni1271",
        FACTS,
    ),
    "Huang2015": (
        "Huang Y.-H. et al. CEACAM1 regulates TIM-3-mediated tolerance and exhaustion. Nature 517:386-390 (2015)",
        "10.1038/nature13848",
        FACTS,
    ),
    "Braud1998": (
        "Braud V.M. et al. HLA-E binds to natural killer cell receptors CD94/NKG2A, B and C. Nature 391:795-799 (1998)",
        "10.1038/35869",
        FACTS,
    ),
    "Jaiswal2009": (
        "Jaiswal S. et al. CD47 is upregulated on circulating hematopoietic stem cells and leukemia cells to avoid phagocytosis. Cell 138:271-285 (2009)",
        "10.1016/j.cell.2009.05.046",
        FACTS,
    ),
    "Johnston2019": (
        "Johnston R.J. et al. VISTA is an acidic pH-selective ligand for PSGL-1. Nature 574:565-570 (2019)",
        "10.1038/s41586-019-1674-5",
        FACTS,
    ),
    "Chapoval2001": (
        "Chapoval A.I. et al. B7-H3: a costimulatory molecule for T cell activation and IFN-gamma production. Nat Immunol 2:269-274 (2001)",
        "10.1038/85339",
        FACTS,
    ),
    "Munn1998": (
        "Munn D.H. et al. Prevention of allogeneic fetal rejection by tryptophan catabolism. Science 281:1191-1193 (1998)",
        "10.1126/science.281.5380.1191",
        FACTS,
    ),
    "Rooney2015": (
        "Rooney M.S. et al. Molecular and genetic properties of tumors associated with local immune cytolytic activity. Cell 160:48-61 (2015)",
        "10.1016/j.cell.2014.12.033",
        FACTS,
    ),
    "Davoli2017": (
        "Davoli T. et al. Tumor aneuploidy correlates with markers of immune evasion and with reduced response to immunotherapy. Science 355:eaaf8399 (2017)",
        "10.1126/science.aaf8399",
        FACTS,
    ),
    "Guo2018": (
        "Guo X. et al. Global characterization of T cells in non-small-cell lung cancer by single-cell sequencing. Nat Med 24:978-985 (2018); list as kept in ZeminZhangLab/useful_single_cell_resource",
        "10.1038/s41591-018-0045-3",
        FACTS,
    ),
    "Ayers2017": (
        "Ayers M. et al. IFN-gamma-related mRNA profile predicts clinical response to PD-1 blockade. J Clin Invest 127:2930-2940 (2017)",
        "10.1172/JCI91190",
        FACTS,
    ),
    "Cristescu2018": (
        "Cristescu R. et al. Pan-tumor genomic biomarkers for PD-1 checkpoint blockade-based immunotherapy. Science 362:eaar3593 (2018) (weights of the 18-gene T cell-inflamed GEP of Ayers et al. 2017)",
        "10.1126/science.aar3593",
        FACTS,
    ),
    "Senbabaoglu2016": (
        "Senbabaoglu Y. et al. Tumor immune microenvironment characterization in clear cell renal cell carcinoma identifies prognostic and immunotherapeutically relevant messenger RNA signatures. Genome Biol 17:231 (2016)",
        "10.1186/s13059-016-1092-z",
        FACTS,
    ),
    "Tirosh2016": (
        "Tirosh I. et al. Dissecting the multicellular ecosystem of metastatic melanoma by single-cell RNA-seq. Science 352:189-196 (2016) (lists from Kowalczyk et al., Genome Res 2015; Regev lab file regev_lab_cell_cycle_genes.txt)",
        "10.1126/science.aad0501",
        FACTS,
    ),
    "Cabrita2020": (
        "Cabrita R. et al. Tertiary lymphoid structures improve immunotherapy and survival in melanoma. Nature 577:561-565 (2020)",
        "10.1038/s41586-019-1914-8",
        FACTS,
    ),
    "Messina2012": (
        "Messina J.L. et al. 12-Chemokine gene signature identifies lymph node-like structures in melanoma: potential for patient selection for immunotherapy? Sci Rep 2:765 (2012)",
        "10.1038/srep00765",
        FACTS,
    ),
    "Kieffer2020": (
        "Kieffer Y. et al. Single-cell analysis reveals fibroblast clusters linked to immunotherapy resistance in cancer. Cancer Discov 10:1330-1351 (2020)",
        "10.1158/2159-8290.CD-19-1384",
        FACTS,
    ),
    "Dominguez2020": (
        "Dominguez C.X. et al. Single-cell RNA sequencing reveals stromal evolution into LRRC15+ myofibroblasts as a determinant of patient response to cancer immunotherapy. Cancer Discov 10:232-253 (2020)",
        "10.1158/2159-8290.CD-19-0644",
        FACTS,
    ),
    "Cheng2021": (
        "Cheng S. et al. A pan-cancer single-cell transcriptional atlas of tumor infiltrating myeloid cells. Cell 184:792-809.e23 (2021) (M1 and M2 signature genes of its supplementary table)",
        "10.1016/j.cell.2021.01.010",
        FACTS,
    ),
    "Bagaev2021": (
        "Bagaev A. et al. Conserved pan-cancer microenvironment subtypes predict response to immunotherapy. Cancer Cell 39:845-865.e7 (2021) (functional gene expression signatures of the Molecular Functional Portrait)",
        "10.1016/j.ccell.2021.04.014",
        FACTS
        + "; the gene lists are compared with the authors' repository BostonGene/MFP, whose licence covers its code, not the published gene names",
    ),
    "Chu2023": (
        "Chu Y. et al. Pan-cancer T cell atlas links a cellular stress response state to immunotherapy resistance. Nat Med 29:1550-1562 (2023)",
        "10.1038/s41591-023-02371-y",
        FACTS,
    ),
    "Tsui2022": (
        "Tsui C. et al. MYB orchestrates T cell exhaustion and response to checkpoint inhibition. Nature 609:354-360 (2022) (definition of TPEX cells in its introduction)",
        "10.1038/s41586-022-05105-1",
        FACTS,
    ),
    "Chang2022": (
        "Chang et al. Ontogeny and vulnerabilities of drug-tolerant persisters in HER2+ breast cancer. Cancer Discov 12:1022-1045 (2022) (pre-DTP genes of Fig. 5a)",
        "10.1158/2159-8290.CD-20-1265",
        FACTS,
    ),
    "Gottesman2002": (
        "Gottesman M.M., Fojo T., Bates S.E. Multidrug resistance in cancer: role of ATP-dependent transporters. Nat Rev Cancer 2:48-58 (2002) (Key Points)",
        "10.1038/nrc706",
        FACTS,
    ),
    "Saul2022": (
        "Saul D. et al. A new gene set identifies senescent cells and predicts senescence-associated pathways across tissues. Nat Commun 13:4827 (2022) (SenMayo)",
        "10.1038/s41467-022-32552-1",
        FACTS + "; article CC BY 4.0",
    ),
    "Gavish2023": (
        "Gavish A. et al. Hallmarks of transcriptional intratumour heterogeneity across a thousand tumours. Nature 618:598-606 (2023) (malignant-cell meta-programs, authors' repository tiroshlab/3ca)",
        "10.1038/s41586-023-06130-4",
        "MIT, Copyright (c) 2022 Tirosh Lab (full text in PROVENANCE.md); gene lists from github.com/tiroshlab/3ca ITH_hallmarks/MPs_distribution/MP_list.RDS.gz",
    ),
}

# --------------------------------------------------------------------------------------------
# Curated signatures.  genes: list of up-genes, or dict gene -> (direction, weight).
# check: verdict before symbol updates ("checked" or "unchecked"); compared: what was compared.
# --------------------------------------------------------------------------------------------
EASIER = "third-party transcription in olapuentesantana/easier (Lapuente-Santana et al., Patterns 2021)"


def _mfp(key: str, label: str, extra: str) -> str:
    """What a Bagaev 2021 list was compared with (sixth round); the gene count is filled in by main()."""
    return (
        "authors' repository BostonGene/MFP, signatures/gene_signatures.gmt (the functional gene expression "
        f"signatures of the Molecular Functional Portrait of Bagaev 2021), line '{key}' (label '{label}'): the same "
        "{n} genes in the same order, read gene by gene (sixth round). Also in a third-party transcription that "
        f"cites PMID 34019806 (WeipengMO/gene_signature content/posts/tme-associated-signature.md){extra}"
    )


def _kieffer(row: str, extra: str) -> str:
    """What a Kieffer 2020 CAF-cluster list was compared with (sixth round); the gene count is filled in by main()."""
    return (
        "third-party transcription: WeipengMO/gene_signature content/posts/tme-associated-signature.md "
        f"(signature-collection site; row '{row} [Kieffer et al.]', source PMID 32434947 = Kieffer 2020), {{n}} genes, "
        "the same table that KIEFFER_ECM_MYCAF was checked against; the list is that row gene for gene and in its "
        f"order (sixth round). Not compared with the paper's own supplementary table.{extra}"
    )


CURATED = {
    # ---- stemness
    "STEMNESS_PLURIPOTENCY_OSKM": dict(
        category="stemness",
        source="Takahashi2006",
        description="the four reprogramming factors Oct3/4, Sox2, Klf4, c-Myc (Takahashi & Yamanaka 2006, abstract)",
        genes=["POU5F1", "SOX2", "KLF4", "MYC"],
        check="checked",
        compared="the paper's Summary/abstract (PubMed 16904174 via mdsite.deno.dev mirror; full-text copy on pdfkul.com): 'four factors, Oct3/4, Sox2, c-Myc, and Klf4' = POU5F1, SOX2, MYC, KLF4",
    ),
    "STEMNESS_PLURIPOTENCY_OSNL": dict(
        category="stemness",
        source="Yu2007",
        description="the four human reprogramming factors OCT4, SOX2, NANOG, LIN28 (Yu et al. 2007, abstract)",
        genes=["POU5F1", "SOX2", "NANOG", "LIN28"],
        check="checked",
        compared="the paper's summary sentence 'four factors (OCT4, SOX2, NANOG, and LIN28) are sufficient to reprogram human somatic cells' (fujifilmcdi.com publications page, Dec 2007; same factors in the Okita 2008 Science abstract); OCT4 = POU5F1, LIN28 = LIN28A",
    ),
    # ---- checkpoint (sets; the pairs are in checkpoint_pairs.tsv)
    "CHECKPOINT_INHIBITORY_RECEPTORS": dict(
        category="checkpoint",
        source="Pardoll2012",
        description="inhibitory checkpoint receptors of T/NK/myeloid cells of checkpoint_pairs.tsv: PD-1, CTLA-4, TIGIT, LAG-3, TIM-3, NKG2A/CD94, SIRPa, PSGL-1",
        genes=["PDCD1", "CTLA4", "TIGIT", "LAG3", "HAVCR2", "KLRC1", "KLRD1", "SIRPA", "SELPLG"],
        check="checked",
        compared="compilation check (no published list of this exact set exists): the build script asserts that the set equals the receptor genes of the 13 pairs in checkpoint_pairs.tsv, so each gene is there with its pair and that pair's primary citation (PDCD1: Freeman 2000, Latchman 2001; CTLA4: Linsley 1991, Pardoll 2012; TIGIT: Yu 2009; LAG3: Baixeras 1992, Wang 2019; HAVCR2: Zhu 2005, Huang 2015; KLRC1+KLRD1: Braud 1998; SIRPA: Jaiswal 2009; SELPLG: Johnston 2019). The pair citations were written from knowledge and not re-read (data/signatures_check.md)",
    ),
    "CHECKPOINT_LIGANDS": dict(
        category="checkpoint",
        source="Pardoll2012",
        description="checkpoint ligands of checkpoint_pairs.tsv (PD-L1, PD-L2, CD80, CD86, PVR, Nectin-2, HLA-DR, FGL1, galectin-9, CEACAM1, HLA-E, CD47, VISTA) plus B7-H3 (receptor unknown; Chapoval 2001)",
        genes=[
            "CD274",
            "PDCD1LG2",
            "CD80",
            "CD86",
            "PVR",
            "NECTIN2",
            "HLA-DRA",
            "HLA-DRB1",
            "FGL1",
            "LGALS9",
            "CEACAM1",
            "HLA-E",
            "CD47",
            "VSIR",
            "CD276",
        ],
        check="checked",
        compared="compilation check (no published list of this exact set exists): the build script asserts that the set equals the ligand genes of the 13 pairs in checkpoint_pairs.tsv plus CD276 (B7-H3, source Chapoval 2001, no known receptor), so each gene is there with its pair and that pair's primary citation. The pair citations were written from knowledge and not re-read (data/signatures_check.md)",
    ),
    "CHECKPOINT_ALL": dict(
        category="checkpoint",
        source="Pardoll2012",
        description="all checkpoint genes of this library: receptors, ligands and the enzyme IDO1 (Munn 1998)",
        genes=[
            "PDCD1",
            "CTLA4",
            "TIGIT",
            "LAG3",
            "HAVCR2",
            "KLRC1",
            "KLRD1",
            "SIRPA",
            "SELPLG",
            "CD274",
            "PDCD1LG2",
            "CD80",
            "CD86",
            "PVR",
            "NECTIN2",
            "HLA-DRA",
            "HLA-DRB1",
            "FGL1",
            "LGALS9",
            "CEACAM1",
            "HLA-E",
            "CD47",
            "VSIR",
            "CD276",
            "IDO1",
        ],
        check="checked",
        compared="compilation check (no published list of this exact set exists): the build script asserts that the set is the union of CHECKPOINT_INHIBITORY_RECEPTORS and CHECKPOINT_LIGANDS plus IDO1 (enzyme, source Munn 1998), i.e. every gene of checkpoint_pairs.tsv plus CD276 and IDO1",
    ),
    # ---- exhaustion / progenitor exhausted
    "TEX_CHU2023": dict(
        category="exhaustion",
        source="Chu2023",
        description="CD8 T cell exhaustion genes (Chu 2023 pan-cancer T cell atlas, CD8 T cell state 'Exhaustion'): inhibitory receptors PD-1, TIM-3, LAG-3, CTLA-4, TIGIT, 2B4, BTLA, CD160, LAIR1, LILRB1, VISTA with TOX, LAYN and CD39",
        genes=[
            "PDCD1",
            "LAYN",
            "HAVCR2",
            "LAG3",
            "CD244",
            "CTLA4",
            "LILRB1",
            "TIGIT",
            "TOX",
            "VSIR",
            "BTLA",
            "ENTPD1",
            "CD160",
            "LAIR1",
        ],
        check="checked",
        compared="third-party transcription: WeipengMO/gene_signature content/posts/pan-cancer-t-cell-altlas.md, table 'CD8 T cell state', row 'Exhaustion', whose reference is Chu Y. et al. Nat Med 29:1550-1562 (2023), doi 10.1038/s41591-023-02371-y; the same 14 genes in the same order, read gene by gene (sixth round); the same row is in the site's curated-gene-signatures.md (also citing Chu 2023). Two more independent copies agree gene for gene: an analysis script (probably zlin-bioinfo/PanCancer_ICI) whose CD8 lists were read from the paper's supplement 41591_2023_2371_MOESM3_ESM.xlsx (sheet 5, Supplementary Table 4), and a tutorial article (生信技能树) that names the paper and 'Fig. 2e and Supplementary Table 4'. The authors' repository (Coolgenome/TCM) reads the lists from a private path and holds none. The supplementary table itself was not opened",
    ),
    "TPEX_TSUI2022": dict(
        category="progenitor_exhausted",
        source="Tsui2022",
        description="progenitor (precursor) exhausted CD8 T cells, TPEX: PD-1+ cells that co-express TCF1 (TCF7), ID3, CXCR5 and Ly108 (SLAMF6) and lack TIM-3 (HAVCR2, direction down), the definition stated by Tsui 2022 (mouse markers, human orthologues)",
        genes={"TCF7": 1.0, "ID3": 1.0, "CXCR5": 1.0, "SLAMF6": 1.0, "PDCD1": 1.0, "HAVCR2": -1.0},
        check="checked",
        compared="the paper's own text, publisher page https://www.nature.com/articles/s41586-022-05105-1 (Main, first paragraph; also the author manuscript PMC9452299): 'In mice, TPEX cells are defined by the co-expression of PD-1, the transcriptional regulators TCF1 and ID3 and the surface molecules CXCR5 and Ly108. By contrast, exhausted effector T (TEX) cells co-express PD-1 and TIM-3 but lack the expression of TCF1, ID3, CXCR5 and Ly108' (sixth round). Genes: PD-1 = PDCD1, TCF1 = TCF7, ID3, CXCR5, Ly108 = SLAMF6 (up) and TIM-3 = HAVCR2 (down, the marker that separates TEX from TPEX); a definitional marker set, not a differential-expression list. It replaces TPEX_MILLER2019, whose genes could never be compared with Miller 2019",
    ),
    # ---- cytotoxicity
    "ROONEY_CYT": dict(
        category="cytotoxicity",
        source="Rooney2015",
        description="cytolytic activity: granzyme A and perforin (geometric mean in the paper)",
        genes=["GZMA", "PRF1"],
        check="checked",
        compared=EASIER + ", R/compute.CYT.R",
    ),
    "DAVOLI_CIS": dict(
        category="cytotoxicity",
        source="Davoli2017",
        description="cytotoxic immune signature of CD8 T and NK infiltrates (Davoli 2017)",
        genes=["CD247", "CD2", "CD3E", "GZMH", "NKG7", "PRF1", "GZMK"],
        check="checked",
        compared=EASIER + ", R/gene_signatures.R; also ashyamal/COMPASS markers (CIS)",
    ),
    "CYTOTOXIC_GUO2018": dict(
        category="cytotoxicity",
        source="Guo2018",
        description="cytotoxic effector genes used by the Zhang lab T-cell atlases (Zheng 2017, Guo 2018, Zhang 2018)",
        genes=["GZMA", "GZMB", "GZMK", "GZMH", "GNLY", "PRF1", "IFNG"],
        check="checked",
        compared="author lab's public list: ZeminZhangLab/useful_single_cell_resource genes.involved.in.immunooncology.R (cytotoxic.markers)",
    ),
    # ---- IFN-gamma / T cell-inflamed
    "AYERS_IFNG_6": dict(
        category="ifng_inflamed",
        source="Ayers2017",
        description="6-gene IFN-gamma signature (Ayers 2017, preliminary IFN-gamma set)",
        genes=["IDO1", "CXCL10", "CXCL9", "HLA-DRA", "STAT1", "IFNG"],
        check="checked",
        compared=EASIER + ", R/compute.IFNy.R",
    ),
    "AYERS_EXPANDED_IMMUNE_18": dict(
        category="ifng_inflamed",
        source="Ayers2017",
        description="18-gene expanded immune signature (Ayers 2017)",
        genes=[
            "CD3D",
            "IDO1",
            "CIITA",
            "CD3E",
            "CCL5",
            "GZMK",
            "CD2",
            "HLA-DRA",
            "CXCL13",
            "IL2RG",
            "NKG7",
            "HLA-E",
            "CXCR6",
            "LAG3",
            "TAGAP",
            "CXCL10",
            "STAT1",
            "GZMB",
        ],
        check="checked",
        compared=EASIER + ", R/compute.Ayers_expIS.R; also lindandan199113/TC sig_others.R",
    ),
    "AYERS_TCELL_INFLAMED_GEP_18": dict(
        category="ifng_inflamed",
        source="Cristescu2018",
        description="18-gene T cell-inflamed gene expression profile (Ayers 2017) with the published weights of Cristescu 2018; CD276 has a negative weight (direction down); the paper normalises to 11 housekeeping genes",
        genes={
            "CCL5": 0.008346,
            "CD27": 0.072293,
            "CD274": 0.042853,
            "CD276": -0.0239,
            "CD8A": 0.031021,
            "CMKLR1": 0.151253,
            "CXCL9": 0.074135,
            "CXCR6": 0.004313,
            "HLA-DQA1": 0.020091,
            "HLA-DRB1": 0.058806,
            "HLA-E": 0.07175,
            "IDO1": 0.060679,
            "LAG3": 0.123895,
            "NKG7": 0.075524,
            "PDCD1LG2": 0.003734,
            "PSMB10": 0.032999,
            "STAT1": 0.250229,
            "TIGIT": 0.084767,
        },
        check="checked",
        compared=EASIER
        + ", R/compute.Tcell_inflamed.R (genes and weights); same weights in an independent Python copy (code search hit, get_18gene_score_weights)",
    ),
    # ---- antigen presentation
    "MHC1_BAGAEV2021": dict(
        category="antigen_presentation_mhc1",
        source="Bagaev2021",
        description="MHC class I antigen presentation (Bagaev 2021 functional signature 'MHCI'): HLA-A/B/C, B2M, TAP1/2, TAPBP and the class I transactivator NLRC5",
        genes=["HLA-A", "HLA-B", "HLA-C", "B2M", "TAP1", "TAP2", "NLRC5", "TAPBP"],
        check="checked",
        compared=_mfp("MHCI", "MHCI", ", which lists the same genes without NLRC5"),
    ),
    "MHC2_BAGAEV2021": dict(
        category="antigen_presentation_mhc2",
        source="Bagaev2021",
        description="MHC class II antigen presentation (Bagaev 2021 functional signature 'MHCII'): HLA-DR/DP/DQ chains, HLA-DM and the transactivator CIITA",
        genes=[
            "HLA-DRA",
            "HLA-DRB1",
            "HLA-DMA",
            "HLA-DPA1",
            "HLA-DPB1",
            "HLA-DMB",
            "HLA-DQB1",
            "HLA-DQA1",
            "CIITA",
        ],
        check="checked",
        compared=_mfp("MHCII", "MHCII", ", identical"),
    ),
    "MHC1_APM_SENBABAOGLU": dict(
        category="antigen_presentation_mhc1",
        source="Senbabaoglu2016",
        description="antigen processing machinery score genes: MHC-I heavy chains, B2M, TAP1/2, TAPBP",
        genes=["B2M", "HLA-A", "HLA-B", "HLA-C", "TAP1", "TAP2", "TAPBP"],
        check="checked",
        compared="Senbabaoglu et al. 2016 full text on the publisher page (https://genomebiology.biomedcentral.com/articles/10.1186/s13059-016-1092-z, Results, 'In silico decomposition of the tumor-immune microenvironment'): 'a seven-gene APM signature that consisted of MHC class I genes (HLA-A/B/C, B2M) and genes involved in processing and loading antigens (TAP1, TAP2, and TAPBP)'; identical to the shipped 7 genes",
    ),
    # ---- cell cycle
    "TIROSH_G1S": dict(
        category="cell_cycle",
        source="Tirosh2016",
        description="G1/S genes (43) of Tirosh 2016 (from Kowalczyk 2015), the S list used by scanpy/Seurat",
        genes=[
            "MCM5",
            "PCNA",
            "TYMS",
            "FEN1",
            "MCM2",
            "MCM4",
            "RRM1",
            "UNG",
            "GINS2",
            "MCM6",
            "CDCA7",
            "DTL",
            "PRIM1",
            "UHRF1",
            "MLF1IP",
            "HELLS",
            "RFC2",
            "RPA2",
            "NASP",
            "RAD51AP1",
            "GMNN",
            "WDR76",
            "SLBP",
            "CCNE2",
            "UBR7",
            "POLD3",
            "MSH2",
            "ATAD2",
            "RAD51",
            "RRM2",
            "CDC45",
            "CDC6",
            "EXO1",
            "TIPIN",
            "DSCC1",
            "BLM",
            "CASP8AP2",
            "USP1",
            "CLSPN",
            "POLA1",
            "CHAF1B",
            "BRIP1",
            "E2F8",
        ],
        check="checked",
        compared="regev_lab_cell_cycle_genes.txt (first 43 lines), copy in cnio-bu/bollito",
    ),
    "TIROSH_G2M": dict(
        category="cell_cycle",
        source="Tirosh2016",
        description="G2/M genes (54) of Tirosh 2016 (from Kowalczyk 2015), the G2M list used by scanpy/Seurat",
        genes=[
            "HMGB2",
            "CDK1",
            "NUSAP1",
            "UBE2C",
            "BIRC5",
            "TPX2",
            "TOP2A",
            "NDC80",
            "CKS2",
            "NUF2",
            "CKS1B",
            "MKI67",
            "TMPO",
            "CENPF",
            "TACC3",
            "FAM64A",
            "SMC4",
            "CCNB2",
            "CKAP2L",
            "CKAP2",
            "AURKB",
            "BUB1",
            "KIF11",
            "ANP32E",
            "TUBB4B",
            "GTSE1",
            "KIF20B",
            "HJURP",
            "CDCA3",
            "HN1",
            "CDC20",
            "TTK",
            "CDC25C",
            "KIF2C",
            "RANGAP1",
            "NCAPD2",
            "DLGAP5",
            "CDCA2",
            "CDCA8",
            "ECT2",
            "KIF23",
            "HMMR",
            "AURKA",
            "PSRC1",
            "ANLN",
            "LBR",
            "CKAP5",
            "CENPE",
            "CTCF",
            "NEK2",
            "G2E3",
            "GAS2L3",
            "CBX5",
            "CENPA",
        ],
        check="checked",
        compared="regev_lab_cell_cycle_genes.txt (last 54 lines), copy in cnio-bu/bollito",
    ),
    # ---- TLS
    "CABRITA_TLS_9": dict(
        category="tls",
        source="Cabrita2020",
        description="9-gene TLS signature (Cabrita 2020; geometric mean in the paper)",
        genes=["CD79B", "CD1D", "CCR6", "LAT", "SKAP1", "CETP", "EIF1AY", "RBP5", "PTGDS"],
        check="checked",
        compared=EASIER + ", R/compute.TLS.R",
    ),
    "MESSINA_CHEMOKINE_12": dict(
        category="tls",
        source="Messina2012",
        description="12-chemokine signature of lymph node-like (tertiary lymphoid) structures (Messina 2012)",
        genes=[
            "CCL2",
            "CCL3",
            "CCL4",
            "CCL5",
            "CCL8",
            "CCL18",
            "CCL19",
            "CCL21",
            "CXCL9",
            "CXCL10",
            "CXCL11",
            "CXCL13",
        ],
        check="checked",
        compared=EASIER + ", R/compute.chemokines.R",
    ),
    # ---- CAF
    "CAF_BAGAEV2021": dict(
        category="caf",
        source="Bagaev2021",
        description="cancer-associated fibroblast genes (Bagaev 2021 functional signature 'CAF', labelled 'Fibroblasts')",
        genes=[
            "COL1A1",
            "COL1A2",
            "COL5A1",
            "ACTA2",
            "FGF2",
            "FAP",
            "LRP1",
            "CD248",
            "COL6A1",
            "COL6A2",
            "COL6A3",
            "CXCL12",
            "FBLN1",
            "LUM",
            "MFAP5",
            "MMP3",
            "MMP2",
            "PDGFRB",
            "PDGFRA",
        ],
        check="checked",
        compared=_mfp("CAF", "Fibroblasts", " as 'Cancer-associated fibroblasts', identical"),
    ),
    "KIEFFER_IL_ICAF": dict(
        category="caf",
        source="Kieffer2020",
        description="interleukin iCAF cluster genes of Kieffer 2020 (CAF-S1 cluster 'IL-iCAF')",
        genes=[
            "ITM2A",
            "CXCL12",
            "FIGF",
            "FXYD1",
            "PLPP3",
            "TNFRSF10D",
            "CTB-92J24.3",
            "LAMC3",
            "C7",
            "ZBTB16",
            "CAPN6",
            "SCARA5",
            "DLK1",
            "MEG3",
            "TAC1",
            "THUMPD3-AS1",
            "GMFG",
            "CYGB",
            "CCL8",
            "VCAM1",
            "FMO2",
            "FBLN5",
            "COLEC12",
            "PDGFD",
            "GADD45G",
            "SNAI1",
            "LSP1",
            "CCL2",
            "IL6",
            "PTGS2",
            "NR2F1",
            "F10",
            "CEBPA",
            "KDM6B",
            "PID1",
        ],
        check="checked",
        compared=_kieffer(
            "IL-iCAF",
            " FIGF is updated to VEGFD (NCBI) and the clone-based lncRNA name CTB-92J24.3 to AC011503.1 (the library's gene_names() alias).",
        ),
    ),
    "KIEFFER_IFNG_ICAF": dict(
        category="caf",
        source="Kieffer2020",
        description="IFN-gamma iCAF cluster genes of Kieffer 2020 (CAF-S1 cluster 'IFNgamma-iCAF')",
        genes=[
            "CCL19",
            "VCAM1",
            "RBP5",
            "CYP1B1",
            "C7",
            "TNFRSF4",
            "CXCL13",
            "CXCL9",
            "CCL2",
            "IL34",
            "ABI3BP",
            "CYP7B1",
            "F10",
            "COLEC12",
            "CXCL10",
            "EMILIN1",
            "GGT5",
            "EGFLAM",
            "PLXDC1",
            "CXCL11",
            "CCL8",
            "CXCL3",
        ],
        check="checked",
        compared=_kieffer("IFNr-iCAF", ""),
    ),
    "KIEFFER_DETOX_ICAF": dict(
        category="caf",
        source="Kieffer2020",
        description="detoxification iCAF cluster genes of Kieffer 2020 (CAF-S1 cluster 'detox-iCAF')",
        genes=[
            "ADH1B",
            "C7",
            "CXCL12",
            "TNXB",
            "RSPO3",
            "DCN",
            "C16orf89",
            "GDF10",
            "PAMR1",
            "FXYD1",
            "ZBTB16",
            "SLIT3",
            "HSPB6",
            "IL6",
            "FBLN5",
            "OGN",
            "PLA2G2A",
            "CHRDL1",
            "CYGB",
            "FGF7",
            "PI16",
            "PLAC9",
            "WISP2",
            "PTX3",
            "CCL2",
            "CXCL3",
        ],
        check="checked",
        compared=_kieffer("detox-iCAF", " WISP2 is updated to CCN5."),
    ),
    "KIEFFER_TGFB_MYCAF": dict(
        category="caf",
        source="Kieffer2020",
        description="TGF-beta myCAF cluster genes of Kieffer 2020 (CAF-S1 cluster 'TGFbeta-myCAF')",
        genes=[
            "CST1",
            "LAMP5",
            "LOXL1",
            "EDNRA",
            "TGFB1",
            "TGFB3",
            "TNN",
            "CST2",
            "HES4",
            "COL10A1",
            "ELN",
            "THBS4",
            "NKD2",
            "OLFM2",
            "COL6A3",
            "LRRC17",
            "COL3A1",
            "THY1",
            "HTRA3",
            "TMEM204",
            "SEPT11",
            "COMP",
            "TNFAIP6",
            "ID4",
            "GGT5",
            "INAFM1",
            "CILP",
            "OLFML2B",
        ],
        check="checked",
        compared=_kieffer("TGFb-myCAF", " SEPT11 is updated to SEPTIN11."),
    ),
    "KIEFFER_WOUND_MYCAF": dict(
        category="caf",
        source="Kieffer2020",
        description="wound-healing myCAF cluster genes of Kieffer 2020 (CAF-S1 cluster 'wound-myCAF')",
        genes=[
            "SFRP4",
            "CCDC80",
            "OGN",
            "DCN",
            "PTGER3",
            "SFRP2",
            "PDGFRL",
            "SMOC2",
            "MMP23B",
            "CPXM2",
            "COL14A1",
            "ITGBL1",
            "WISP2",
            "CILP2",
            "COL8A1",
            "GAS1",
            "COL3A1",
            "OMD",
            "COL11A1",
            "CILP",
            "NEXN",
            "ASPN",
            "RARRES2",
            "FIBIN",
            "TMEM119",
            "KERA",
            "ID4",
            "GRP",
            "COMP",
            "DPT",
            "ELN",
            "FBLN2",
            "IGF1",
            "IGF2",
        ],
        check="checked",
        compared=_kieffer("wound-myCAF", " WISP2 is updated to CCN5."),
    ),
    "KIEFFER_ECM_MYCAF": dict(
        category="caf",
        source="Kieffer2020",
        description="ECM-myCAF cluster genes of Kieffer 2020 (CAF-S1 cluster 'ecm-myCAF'; 40 genes, in the order of the transcribed list)",
        genes=[
            "ASPN",
            "COL3A1",
            "THY1",
            "SFRP2",
            "COL10A1",
            "COL6A3",
            "LRRC17",
            "CILP",
            "GRP",
            "ITGBL1",
            "COL8A1",
            "COL14A1",
            "ADAM12",
            "OLFML2B",
            "ELN",
            "PLPP4",
            "CREB3L1",
            "FBN1",
            "LOXL1",
            "MATN3",
            "LRRC15",
            "COMP",
            "ISLR",
            "P3H1",
            "COL11A1",
            "SEPT11",
            "NBL1",
            "SPON1",
            "SULF1",
            "FNDC1",
            "CNN1",
            "MIAT",
            "MMP23B",
            "CPXM1",
            "FIBIN",
            "P4HA3",
            "GXYLT2",
            "CILP2",
            "P3H4",
            "CCDC80",
        ],
        check="checked_with_changes",
        compared="third-party transcription: WeipengMO/gene_signature content/posts/tme-associated-signature.md (signature-collection site; row 'ecm-myCAF [Kieffer et al.]', source PMID 32434947 = Kieffer 2020), 40 genes; not compared with the paper's own supplementary table. "
        "The list is now that copy, gene for gene and in its order. It replaces the earlier 7-gene list (POSTN, MMP11, COL11A1, CTHRC1, COL10A1, INHBA, LRRC15), which was the library's marker set: "
        "COL10A1, COL11A1 and LRRC15 are in the copy; POSTN, MMP11, CTHRC1 and INHBA are not, so they were removed and 37 genes were added. SEPT11 is updated to SEPTIN11",
    ),
    "DOMINGUEZ_LRRC15_CAF": dict(
        category="caf",
        source="Dominguez2020",
        description="LRRC15+ myofibroblast (TGF-beta CAF) signature of Dominguez 2020",
        genes=[
            "MMP11",
            "COL11A1",
            "C1QTNF3",
            "CTHRC1",
            "COL12A1",
            "COL10A1",
            "COL5A2",
            "GJB2",
            "THBS2",
            "AEBP1",
            "MFAP2",
            "LRRC15",
            "PLAU",
            "ITGA11",
        ],
        check="checked",
        compared="third-party transcription by a published tool: l-magnificence/Mime (Mime1 R package) R/cal_auc_previous_immunotherapy_sig.R, LRRC15.CAF.Sig, whose comment gives the reference 'Dominguez CX ... Cancer Discov 2020;10:232-53' (doi 10.1158/2159-8290.CD-19-0644); the same 14 genes in the same order, read gene by gene (fifth round). Also in lindandan199113/TC data/sig/sig_others.R (same list, probably the same lineage). The paper's own supplementary table was not seen",
    ),
    # ---- TAM
    "TAM_BAGAEV2021": dict(
        category="tam",
        source="Bagaev2021",
        description="tumour-associated macrophage genes (Bagaev 2021 functional signature 'Macrophages', labelled 'Tumor-associated Macrophages')",
        genes=["IL10", "MRC1", "MSR1", "CD163", "CSF1R", "IL4I1", "SIGLEC1", "CD68"],
        check="checked",
        compared=_mfp("Macrophages", "Tumor-associated Macrophages", " as 'TAMs', identical"),
    ),
    "AZIZI_M1": dict(
        category="tam",
        source="Cheng2021",
        description="M1 macrophage polarisation genes (16) of the Cheng 2021 supplementary table (column M1); the name is kept from earlier versions, which cited Azizi 2018",
        genes=[
            "IL23",
            "TNF",
            "CXCL9",
            "CXCL10",
            "CXCL11",
            "CD86",
            "IL1A",
            "IL1B",
            "IL6",
            "CCL5",
            "IRF5",
            "IRF1",
            "CD40",
            "IDO1",
            "KYNU",
            "CCR7",
        ],
        check="checked",
        compared="fifth round, source changed from Azizi 2018 (whose table was never reached) to Cheng 2021, the publication the copies name: an R analysis script (GeoMx DLBCL macrophage benchmark; code-search copy) defines M1_marker 'from https://www.sciencedirect.com/science/article/pii/S0092867421000106#mmc2' = IL23, TNF, CXCL9, CXCL10, CXCL11, CD86, IL1A, IL1B, IL6, CCL5, IRF5, IRF1, CD40, IDO1, KYNU, CCR7; compared gene by gene and in order: identical. Several other scripts read the table itself (1-s2.0-S0092867421000106-mmc5.xlsx, column M1) and replace IL23 by IL23A, as here. Third-party transcription; the supplementary file itself was not opened. IL23 is written as published and updated to IL23A",
    ),
    "AZIZI_M2": dict(
        category="tam",
        source="Cheng2021",
        description="M2 macrophage polarisation genes (34) of the Cheng 2021 supplementary table (column M2); the name is kept from earlier versions, which cited Azizi 2018",
        genes=[
            "IL4R",
            "CCL4",
            "CCL13",
            "CCL20",
            "CCL17",
            "CCL18",
            "CCL22",
            "CCL24",
            "LYVE1",
            "VEGFA",
            "VEGFB",
            "VEGFC",
            "VEGFD",
            "EGF",
            "CTSA",
            "CTSB",
            "CTSC",
            "CTSD",
            "TGFB1",
            "TGFB2",
            "TGFB3",
            "MMP14",
            "MMP19",
            "MMP9",
            "CLEC7A",
            "WNT7B",
            "FASL",
            "TNFSF12",
            "TNFSF8",
            "CD276",
            "VTCN1",
            "MSR1",
            "FN1",
            "IRF4",
        ],
        check="checked",
        compared="fifth round, source changed from Azizi 2018 (whose table was never reached) to Cheng 2021, the publication the copies name: the same R script (GeoMx DLBCL macrophage benchmark; code-search copy) defines M2_marker 'from https://www.sciencedirect.com/science/article/pii/S0092867421000106#mmc2' with these 34 genes; compared gene by gene and in order: identical (FASL as published, updated to FASLG). Several scripts read 1-s2.0-S0092867421000106-mmc5.xlsx (column M2) and replace FASL by FASLG. Copies that add MRC1+CD163 or ARG1+FLT1 extend the list and do not name Cheng 2021 as the source of the extra genes. Third-party transcription; the supplementary file itself was not opened",
    ),
    # ---- Treg
    "TREG_BAGAEV2021": dict(
        category="treg",
        source="Bagaev2021",
        description="regulatory T cell genes (Bagaev 2021 functional signature 'Treg')",
        genes=["FOXP3", "CTLA4", "IL10", "TNFRSF18", "CCR8", "IKZF4", "IKZF2"],
        check="checked",
        compared=_mfp(
            "Treg", "Treg", "; also in its conserved-pan-cancer-microenvironment.md page, identical"
        ),
    ),
    # ---- MDSC
    "MDSC_BAGAEV2021": dict(
        category="mdsc",
        source="Bagaev2021",
        description="immune suppression by myeloid cells (Bagaev 2021 functional signature 'MDSC'): the suppressive effector genes of MDSCs and suppressive myeloid cells (IDO1, ARG1, IL10, CYBB/NOX2, PTGS2/COX-2, IL4I1, IL6)",
        genes=["IDO1", "ARG1", "IL10", "CYBB", "PTGS2", "IL4I1", "IL6"],
        check="checked",
        compared=_mfp(
            "MDSC", "Immune Suppression by Myeloid Cells", " as 'Myeloid immunosuppression', identical"
        ),
    ),
    # ---- persister
    "PERSISTER_CHANG2022": dict(
        category="persister",
        source="Chang2022",
        description="genes of the pre-DTP state from which drug-tolerant persisters arise (Chang 2022, Fig. 5a; HER2+ breast cancer cells under HER2 tyrosine-kinase inhibitors: a G0-like state enriched for diapause and senescence genes)",
        genes=[
            "ABCC5",
            "CES4A",
            "CLDN8",
            "DEPTOR",
            "FTX",
            "FYCO1",
            "IGBP1",
            "INPP4B",
            "KHNYN",
            "LINC00865",
            "MAN1A1",
            "NPY1R",
            "PIK3IP1",
            "PNRC1",
            "PSCA",
            "PYROXD2",
            "RAB4B",
            "SARG",
            "YBEY",
            "YPEL2",
        ],
        check="checked",
        compared="third-party transcription in a published literature meta-analysis of drug tolerance: barozziLab/DrugToleranceHallmarks code/literature_meta-analysis/DTP/dataset_chang_2022/markers.txt, set 'chang-2022_pre-DTP-up' (human), whose README names the paper ('Ontogeny and Vulnerabilities of Drug-Tolerant Persisters in HER2+ Breast Cancer', aacrjournals.org cancerdiscovery 12/4/1022) and says the genes of Fig. 5a were 'manually noted down'; 20 genes, read gene by gene (sixth round), kept in that file's alphabetical order. SARG is updated to C1orf116 (NCBI). The figure itself was not seen. It replaces PERSISTER_SHAFFER2017, whose genes could never be compared with Shaffer 2017",
    ),
    # ---- senescence
    "SENMAYO": dict(
        category="senescence",
        source="Saul2022",
        description="SenMayo senescence/SASP genes (Saul 2022, human list; 124 of the 125 published: the published PIGF denotes placental growth factor, PGF, also listed)",
        genes=[
            "ACVR1B",
            "ANG",
            "ANGPT1",
            "ANGPTL4",
            "AREG",
            "AXL",
            "BEX3",
            "BMP2",
            "BMP6",
            "C3",
            "CCL1",
            "CCL13",
            "CCL16",
            "CCL2",
            "CCL20",
            "CCL24",
            "CCL26",
            "CCL3",
            "CCL3L1",
            "CCL4",
            "CCL5",
            "CCL7",
            "CCL8",
            "CD55",
            "CD9",
            "CSF1",
            "CSF2",
            "CSF2RB",
            "CST4",
            "CTNNB1",
            "CTSB",
            "CXCL1",
            "CXCL10",
            "CXCL12",
            "CXCL16",
            "CXCL2",
            "CXCL3",
            "CXCL8",
            "CXCR2",
            "DKK1",
            "EDN1",
            "EGF",
            "EGFR",
            "EREG",
            "ESM1",
            "ETS2",
            "FAS",
            "FGF1",
            "FGF2",
            "FGF7",
            "GDF15",
            "GEM",
            "GMFG",
            "HGF",
            "HMGB1",
            "ICAM1",
            "ICAM3",
            "IGF1",
            "IGFBP1",
            "IGFBP2",
            "IGFBP3",
            "IGFBP4",
            "IGFBP5",
            "IGFBP6",
            "IGFBP7",
            "IL10",
            "IL13",
            "IL15",
            "IL18",
            "IL1A",
            "IL1B",
            "IL2",
            "IL32",
            "IL6",
            "IL6ST",
            "IL7",
            "INHA",
            "IQGAP2",
            "ITGA2",
            "ITPKA",
            "JUN",
            "KITLG",
            "LCP1",
            "MIF",
            "MMP1",
            "MMP10",
            "MMP12",
            "MMP13",
            "MMP14",
            "MMP2",
            "MMP3",
            "MMP9",
            "NAP1L4",
            "NRG1",
            "PAPPA",
            "PECAM1",
            "PGF",
            "PLAT",
            "PLAU",
            "PLAUR",
            "PTBP1",
            "PTGER2",
            "PTGES",
            "RPS6KA5",
            "SCAMP4",
            "SELPLG",
            "SEMA3F",
            "SERPINB4",
            "SERPINE1",
            "SERPINE2",
            "SPP1",
            "SPX",
            "TIMP2",
            "TNF",
            "TNFRSF10C",
            "TNFRSF11B",
            "TNFRSF1A",
            "TNFRSF1B",
            "TUBGCP2",
            "VEGFA",
            "VEGFC",
            "VGF",
            "WNT16",
            "WNT2",
        ],
        check="checked_with_changes",
        compared="MSigDB gene set SAUL_SEN_MAYO (curated from Saul 2022), file SAUL_SEN_MAYO.v2023.1.Hs.gmt as kept in lzh233/bysy data/pathway_data/: 125 genes, identical to the list here except PIGF, dropped on purpose: in SenMayo it means placental growth factor (NCBI lists PIGF as an alias of PGF, which is in the set), while the HGNC symbol PIGF is an unrelated GPI-anchor biosynthesis gene that would be scored instead. Also matches senescore genes.py SENMAYO_HUMAN (125)",
    ),
    # ---- drug efflux
    "DRUG_EFFLUX_ABC_CORE": dict(
        category="drug_efflux",
        source="Gottesman2002",
        description="the three ABC transporters that confer multidrug resistance to cancer cells: MDR1/P-gp (ABCB1), MRP1 (ABCC1), ABCG2/BCRP",
        genes=["ABCB1", "ABCC1", "ABCG2"],
        check="checked",
        compared="the review's Key Points on the publisher page (https://www.nature.com/articles/nrc706): 'ATP-binding cassette (ABC) transporters, including MDR1 (ABCB1), MRP1 (ABCC1) and ABCG2, can confer multidrug resistance to cancer cells in vitro' (sixth round); the same three genes. The source changed from Robey 2018, whose text naming all three was not found",
    ),
    "DRUG_EFFLUX_ABC_EXTENDED": dict(
        category="drug_efflux",
        source="Gottesman2002",
        description="ABC transporters that confer multidrug resistance (ABCB1, ABCC1, ABCG2) plus those shown to transport anticancer drugs (MRP2-5 = ABCC2-5, ABCA2, BSEP = ABCB11) (Gottesman 2002, Key Points)",
        genes=["ABCB1", "ABCC1", "ABCG2", "ABCC2", "ABCC3", "ABCC4", "ABCC5", "ABCA2", "ABCB11"],
        check="checked_with_changes",
        compared="the review's Key Points on the publisher page (https://www.nature.com/articles/nrc706): 'MDR1 (ABCB1), MRP1 (ABCC1) and ABCG2, can confer multidrug resistance' and 'MRP2 (ABCC2), MRP3 (ABCC3), MRP4 (ABCC4), MRP5 (ABCC5), ABCA2 and BSEP (ABCB11) are capable of transporting drugs' (sixth round). The list is now these 9 genes: the earlier 13-gene list, written from memory of Szakacs 2006 Table 1 and never compared, also had ABCB4, ABCC6, ABCC10 and ABCC11, which are removed; the source changed from Szakacs 2006 to Gottesman 2002",
    ),
}

# CancerSEA states used here: state -> (signature name, category, description, check, compared)
CANCERSEA = {
    "CancerSEA_Stemness": (
        "STEMNESS_CANCERSEA",
        "stemness",
        "CancerSEA stemness state genes (166), curated by Yuan 2019 from the literature",
        "checked",
        "CancerSEA download file Stemness.txt as kept in cnio-bu/beyondcell data-raw/CancerSEA (gene by gene)",
    ),
    "CancerSEA_Quiescence": (
        "QUIESCENCE_CANCERSEA",
        "quiescence",
        "CancerSEA quiescence state genes (66), Yuan 2019",
        "checked",
        "CancerSEA download file Quiescence.txt as kept in cnio-bu/beyondcell data-raw/CancerSEA (gene by gene)",
    ),
    "CancerSEA_Hypoxia": (
        "HYPOXIA_CANCERSEA",
        "hypoxia",
        "CancerSEA hypoxia state genes (83), Yuan 2019",
        "checked",
        "CancerSEA download file Hypoxia.txt as kept in cnio-bu/beyondcell data-raw/CancerSEA (gene by gene, same order)",
    ),
    "CancerSEA_EMT": (
        "EMT_CANCERSEA",
        "emt",
        "CancerSEA EMT state genes (90), Yuan 2019",
        "checked",
        "CancerSEA download file EMT.txt as kept in cnio-bu/beyondcell data-raw/CancerSEA (gene by gene, same order)",
    ),
    "CancerSEA_DNA_repair": (
        "DNA_REPAIR_CANCERSEA",
        "dna_repair",
        "CancerSEA DNA repair state genes (119), Yuan 2019",
        "checked",
        "CancerSEA download file DNA_repair.txt as kept in cnio-bu/beyondcell data-raw/CancerSEA (gene by gene, same order)",
    ),
    "CancerSEA_Angiogenesis": (
        "ANGIOGENESIS_CANCERSEA",
        "angiogenesis",
        "CancerSEA angiogenesis state genes (73), Yuan 2019",
        "checked",
        "CancerSEA download file Angiogenesis.txt as kept in cnio-bu/beyondcell data-raw/CancerSEA (gene by gene, same order)",
    ),
}

HALLMARK_COMPARED = (
    "h.all.v7.5.1.symbols.gmt (MSigDB v7.5.1, URLs gsea-msigdb.org) as kept in ma020424/Ma-: "
    "all 50 sets identical gene-for-gene to the IOBR copy"
)

# Previous symbol -> current symbol (NCBI Gene, org.Hs.eg.db 3.16 alias table), applied when the
# current symbol is in gene_table(); found with the shared gene_aliases_ncbi_orgHs_3.16.tsv.gz.
SYMBOL_UPDATES = {
    "APOPT1": "COA8",
    "CTGF": "CCN2",
    "CYR61": "CCN1",
    "DDX58": "RIGI",
    "FAM102A": "EEIG1",
    "FAM126B": "HYCC2",
    "FAM84A": "LRATD1",
    "H1F0": "H1-0",
    "H2AFX": "H2AX",
    "H2AFZ": "H2AZ1",
    "H2AW": "H2AC25",
    "H3F3B": "H3-3B",
    "HIST1H2AC": "H2AC6",
    "HIST1H2BK": "H2BC12",
    "HIST1H4C": "H4C3",
    "HIST2H2BE": "H2BC21",
    "MYLPF": "MYL11",
    "PHB": "PHB1",
    "TTC37": "SKIC3",
    # Tirosh 2016 cell-cycle lists
    "MLF1IP": "CENPU",
    "FAM64A": "PIMREG",
    "HN1": "JPT1",
    # Yu 2007 reprogramming factor
    "LIN28": "LIN28A",
    # Kieffer 2020 ecm-myCAF list
    "SEPT11": "SEPTIN11",
    "FIGF": "VEGFD",
    "WISP2": "CCN5",
    # Cheng 2021 M1/M2 lists (published spellings)
    "IL23": "IL23A",
    "FASL": "FASLG",
    # Gavish 2023 meta-programs: previous symbols that are still rows of the gene table (xclone part);
    # the current symbol is the NCBI one (org.Hs.eg.db 3.16 alias table); where that table offers
    # several (GARS, NOV, QARS, SARS) the HGNC successor of the previous symbol is used
    "C11orf88": "HOATZ",
    "C1orf194": "CFAP276",
    "C1orf61": "MIR9-1HG",
    "C6orf48": "SNHG32",
    "C9orf116": "PIERCE1",
    "CARS": "CARS1",
    "EPRS": "EPRS1",
    "FAM19A2": "TAFA2",
    "FAM208B": "TASOR2",
    "FAM45A": "DENND10",
    "GARS": "GARS1",
    "H2AFV": "H2AZ2",
    "H3F3A": "H3-3A",
    "HIST1H1B": "H1-5",
    "HIST1H1C": "H1-2",
    "HIST1H1E": "H1-4",
    "HIST2H2AC": "H2AC20",
    "HIST3H2A": "H2AC25",
    "NOV": "CCN3",
    "PLA2G16": "PLAAT3",
    "QARS": "QARS1",
    "RARRES3": "PLAAT4",
    "SARS": "SARS1",
    "TCTEX1D2": "DYNLT2B",
    "TMEM161B-AS1": "TMEM161B-DT",
    "TMEM206": "PACC1",
    "WARS": "WARS1",
    "YARS": "YARS1",
}

# --------------------------------------------------------------------------------------------
# Checkpoint receptor-ligand pairs
# --------------------------------------------------------------------------------------------
PAIRS = [
    (
        "PD-1/PD-L1",
        "PDCD1",
        "CD274",
        "activated T, B and NK cells",
        "tumour cells, macrophages, dendritic cells",
        "inhibitory",
        "Freeman2000",
    ),
    (
        "PD-1/PD-L2",
        "PDCD1",
        "PDCD1LG2",
        "activated T, B and NK cells",
        "dendritic cells, macrophages, some tumour cells",
        "inhibitory",
        "Latchman2001",
    ),
    (
        "CTLA-4/CD80",
        "CTLA4",
        "CD80",
        "regulatory and activated T cells",
        "antigen-presenting cells (dendritic cells, B cells, macrophages)",
        "inhibitory",
        "Linsley1991",
    ),
    (
        "CTLA-4/CD86",
        "CTLA4",
        "CD86",
        "regulatory and activated T cells",
        "antigen-presenting cells (dendritic cells, B cells, macrophages)",
        "inhibitory",
        "Pardoll2012",
    ),
    (
        "TIGIT/PVR",
        "TIGIT",
        "PVR",
        "T and NK cells (Treg, exhausted CD8 T)",
        "tumour cells, dendritic cells",
        "inhibitory",
        "Yu2009",
    ),
    (
        "TIGIT/NECTIN2",
        "TIGIT",
        "NECTIN2",
        "T and NK cells (Treg, exhausted CD8 T)",
        "tumour cells, dendritic cells",
        "inhibitory",
        "Yu2009",
    ),
    (
        "LAG-3/MHC-II",
        "LAG3",
        "HLA-DRA+HLA-DRB1",
        "activated and exhausted T cells, NK cells",
        "antigen-presenting cells, MHC-II+ tumour cells",
        "inhibitory",
        "Baixeras1992",
    ),
    (
        "LAG-3/FGL1",
        "LAG3",
        "FGL1",
        "activated and exhausted T cells",
        "tumour cells (hepatocyte-derived FGL1)",
        "inhibitory",
        "Wang2019",
    ),
    (
        "TIM-3/Galectin-9",
        "HAVCR2",
        "LGALS9",
        "exhausted T cells, Th1 cells, NK cells, myeloid cells",
        "tumour cells, myeloid and endothelial cells",
        "inhibitory",
        "Zhu2005",
    ),
    (
        "TIM-3/CEACAM1",
        "HAVCR2",
        "CEACAM1",
        "exhausted T cells",
        "T cells (in cis and trans), tumour cells",
        "inhibitory",
        "Huang2015",
    ),
    (
        "NKG2A/HLA-E",
        "KLRC1+KLRD1",
        "HLA-E",
        "NK cells and CD8 T cells",
        "tumour cells and most nucleated cells",
        "inhibitory",
        "Braud1998",
    ),
    (
        "SIRPa/CD47",
        "SIRPA",
        "CD47",
        "macrophages, dendritic cells (myeloid)",
        "tumour cells (and most cells)",
        "inhibitory",
        "Jaiswal2009",
    ),
    (
        "PSGL-1/VISTA",
        "SELPLG",
        "VSIR",
        "T cells",
        "myeloid cells (VISTA), at acidic pH",
        "inhibitory",
        "Johnston2019",
    ),
]
# Not a pair: B7-H3 (CD276; receptor unknown, Chapoval 2001) and IDO1 (enzyme, Munn 1998) are in the checkpoint sets only.
NOT_PAIRED_SOURCES = ["Chapoval2001", "Munn1998"]


GAVISH_COMPARED = (
    "authors' file tiroshlab/3ca ITH_hallmarks/MPs_distribution/MP_list.RDS.gz at commit f91ce80e1fe55b421e8ff9f4225886e4af81de9e "
    "(sha256 cbf32d4a540d6b6cf27bd9b2e13d658c91918820bc1580053353bdfba315ec38), element 'Cancer', program '{mp}': "
    "read again with rdata 1.1.0 and compared with data/gavish2023_cancer_mps.tsv gene for gene and in order "
    "(all 41 x 50 identical); {n} of its 50 genes shipped"
)


def gavish_slug(title: str) -> str:
    """``CELL_CYCLE_G2M`` from ``Cell Cycle - G2/M``: upper case, [A-Z0-9_] only ("Cylce" read as CYCLE)."""
    t = re.sub(r"\bG([12])/([SM])\b", r"G\1\2", title.replace("Cylce", "Cycle"))
    return re.sub(r"[^A-Z0-9]+", "_", t.upper()).strip("_")


def _why_dropped(gene: str) -> str:
    """Why a Gavish gene name is not shipped (a bare number is a spreadsheet date serial)."""
    if not gene.isdigit():
        return "not in the gene table, no alias"
    day = date(1899, 12, 30) + timedelta(days=int(gene))
    return f"a spreadsheet date serial ({day.isoformat()}, probably SEPT{day.day}); not restored"


def gavish_entries(table: set[str], aliases: dict[str, str]) -> dict[str, dict]:
    """The 41 malignant-cell meta-programs of Gavish 2023 (category meta_program), from GAVISH_TSV.

    Genes that do not resolve to the gene table are dropped here (``dropped``; main() records them).
    """
    if sha256(GAVISH_TSV) != GAVISH_SHA256:
        print(f"warning: {GAVISH_TSV} differs from the file this library was built from", file=sys.stderr)
    mps = pd.read_csv(GAVISH_TSV, sep="\t", dtype={"gene": str}, keep_default_na=False)
    out = {}
    for mp, g in mps.groupby("meta_program", sort=False):
        num, title = re.fullmatch(r"MP(\d+)\s+(.+)", mp.strip()).groups()
        genes = list(g.sort_values("rank")["gene"])
        keep = [x for x in genes if resolve(x, table, aliases) is not None]
        name = f"GAVISH_MP{num}_{gavish_slug(title)}"
        out[name] = dict(
            category="meta_program",
            source="Gavish2023",
            description=f"MP{num} {' '.join(title.split())} (Gavish et al. 2023, malignant-cell meta-program, "
            "top 50 genes in the authors' order)",
            rows=[(x, "up", 1.0) for x in keep],
            check="checked",
            compared=GAVISH_COMPARED.format(mp=" ".join(mp.split()), n=len(keep)),
            dropped=[(x, _why_dropped(x)) for x in genes if x not in keep],
        )
    assert len(out) == 41 and all(re.fullmatch(r"GAVISH_MP\d+_[A-Z0-9_]+", n) for n in out), sorted(out)
    return out


def check_checkpoint_sets():
    """The three checkpoint sets are compilations: assert that they are exactly the genes of PAIRS
    (each pair carries its own citation) plus CD276 (Chapoval 2001) and IDO1 (Munn 1998)."""
    receptors = {g for p in PAIRS for g in p[1].split("+")}
    ligands = {g for p in PAIRS for g in p[2].split("+")}
    rec = set(CURATED["CHECKPOINT_INHIBITORY_RECEPTORS"]["genes"])
    lig = set(CURATED["CHECKPOINT_LIGANDS"]["genes"])
    allg = set(CURATED["CHECKPOINT_ALL"]["genes"])
    assert rec == receptors, (
        "CHECKPOINT_INHIBITORY_RECEPTORS differs from the pairs' receptors",
        rec ^ receptors,
    )
    assert lig == ligands | {"CD276"}, (
        "CHECKPOINT_LIGANDS differs from the pairs' ligands + CD276",
        lig ^ (ligands | {"CD276"}),
    )
    assert allg == rec | lig | {"IDO1"}, (
        "CHECKPOINT_ALL is not receptors + ligands + IDO1",
        allg ^ (rec | lig | {"IDO1"}),
    )
    assert len(CURATED["CHECKPOINT_ALL"]["genes"]) == len(allg)


def read_gmt(path: Path) -> dict[str, list[str]]:
    sets = {}
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if parts and parts[0]:
            sets[parts[0]] = [g for g in parts[2:] if g]
    return sets


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve(gene: str, table: set[str], aliases: dict[str, str]) -> str | None:
    """Current symbol of ``gene`` in the gene table, or None."""
    if gene in SYMBOL_UPDATES and SYMBOL_UPDATES[gene] in table:
        return SYMBOL_UPDATES[gene]
    if gene in table:
        return gene
    if gene in aliases:
        return aliases[gene]
    orf = re.fullmatch(r"C(\d+|X|Y)ORF(\d+)", gene)  # upper-cased open reading frame (C15ORF48)
    return resolve(f"C{orf[1]}orf{orf[2]}", table, aliases) if orf else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hallmark-gmt", type=Path, default=SHARED / "msigdb_hallmark_50.gmt")
    ap.add_argument("--cancersea-gmt", type=Path, default=SHARED / "cancersea_14_states.gmt")
    args = ap.parse_args(argv)
    check_checkpoint_sets()

    table = set(gene_table().index)
    gn = gene_names()
    aliases = dict(zip(gn.loc[gn["kind"] != "ensembl", "name"], gn.loc[gn["kind"] != "ensembl", "symbol"]))

    # entries: name -> dict(category, source, description, rows=[(gene, direction, weight)], check, compared)
    entries: dict[str, dict] = {}
    for name, d in CURATED.items():
        g = d["genes"]
        rows = (
            [(x, "up", 1.0) for x in g]
            if isinstance(g, list)
            else [(x, "up" if w >= 0 else "down", abs(float(w))) for x, w in g.items()]
        )
        entries[name] = dict(
            category=d["category"],
            source=d["source"],
            description=d["description"],
            rows=rows,
            check=d["check"],
            compared=d["compared"].replace("{n}", str(len(rows))),
        )

    old = None
    if (DATA / "signatures_human.tsv").exists():
        old = pd.read_csv(DATA / "signatures_human.tsv", sep="\t", keep_default_na=False)
        old_meta = pd.read_csv(DATA / "signatures_meta.tsv", sep="\t", keep_default_na=False).set_index(
            "name"
        )

    def from_old(name):
        rows = old[old["name"] == name]
        return [(r.gene, r.direction, float(r.weight)) for r in rows.itertuples()]

    # Hallmarks
    if args.hallmark_gmt.exists():
        if sha256(args.hallmark_gmt) != HALLMARK_SHA256:
            print(
                f"warning: {args.hallmark_gmt} differs from the file this library was built from",
                file=sys.stderr,
            )
        hallmark = {k: [(x, "up", 1.0) for x in v] for k, v in read_gmt(args.hallmark_gmt).items()}
    else:
        print(f"{args.hallmark_gmt} not found: Hallmark rows kept from signatures_human.tsv", file=sys.stderr)
        hallmark = {k: None for k in old_meta.index[old_meta["category"] == "hallmark"]}
    for k, rows in sorted(hallmark.items()):
        entries[k] = dict(
            category="hallmark",
            source="Liberzon2015",
            description=f"MSigDB Hallmark {k[len('HALLMARK_') :].replace('_', ' ').lower()} (Liberzon 2015; MSigDB v7.5.1)",
            rows=rows,
            check="checked",
            compared=HALLMARK_COMPARED,
            prebuilt=rows is None,
        )

    # CancerSEA
    csea = read_gmt(args.cancersea_gmt) if args.cancersea_gmt.exists() else None
    if csea is None:
        print(
            f"{args.cancersea_gmt} not found: CancerSEA rows kept from signatures_human.tsv", file=sys.stderr
        )
    for state, (name, cat, desc, check, compared) in CANCERSEA.items():
        rows = [(x, "up", 1.0) for x in csea[state]] if csea is not None else None
        entries[name] = dict(
            category=cat,
            source="Yuan2019",
            description=desc,
            rows=rows,
            check=check,
            compared=compared,
            prebuilt=rows is None,
        )

    # Gavish 2023 meta-programs
    entries.update(gavish_entries(table, aliases))

    # symbols
    out_rows, meta_rows, check_rows = [], [], []
    for name, e in entries.items():
        if e.get("prebuilt"):
            rows = from_old(name)
            changes = old_meta.loc[name, "check"] == "checked_with_changes"
            check = old_meta.loc[name, "check"]
            change_txt = "(kept from the previous build)"
        else:
            rows, change_list = [], []
            for gene, direction, weight in e["rows"]:
                cur = resolve(gene, table, aliases)
                if cur is None:
                    raise SystemExit(f"{name}: {gene} not in the gene table and no alias")
                if cur != gene:
                    change_list.append(f"{gene}->{cur}")
                rows.append((cur, direction, weight))
            change_list += [f"{g} dropped ({why})" for g, why in e.get("dropped", [])]
            changes = bool(change_list)
            check = e["check"]
            if check == "checked" and changes:
                check = "checked_with_changes"
            change_txt = ", ".join(change_list)
        seen = set()
        for gene, direction, weight in rows:
            if gene in seen:
                raise SystemExit(f"{name}: {gene} twice")
            seen.add(gene)
            out_rows.append((name, gene, direction, weight))
        n_up = sum(r[1] == "up" for r in rows)
        meta_rows.append(
            (name, e["category"], "human", e["source"], e["description"], n_up, len(rows) - n_up, check)
        )
        check_rows.append((name, e["category"], e["source"], e["compared"], check, change_txt))

    human = pd.DataFrame(out_rows, columns=["name", "gene", "direction", "weight"])
    meta = pd.DataFrame(
        meta_rows, columns=["name", "category", "species", "source", "description", "n_up", "n_down", "check"]
    )
    used = set(meta["source"]) | {p[6] for p in PAIRS} | set(NOT_PAIRED_SOURCES)
    sources = pd.DataFrame(
        [(k, *SOURCES[k]) for k in SOURCES if k in used], columns=["source", "citation", "doi", "licence"]
    )
    pairs = pd.DataFrame(
        PAIRS, columns=["pair", "receptor", "ligand", "receptor_cells", "ligand_cells", "effect", "source"]
    )
    checks = pd.DataFrame(
        check_rows, columns=["name", "category", "source", "compared_with", "check", "symbol_changes"]
    )

    human.to_csv(DATA / "signatures_human.tsv", sep="\t", index=False)
    meta.to_csv(DATA / "signatures_meta.tsv", sep="\t", index=False)
    sources.to_csv(DATA / "signatures_sources.tsv", sep="\t", index=False)
    pairs.to_csv(DATA / "checkpoint_pairs.tsv", sep="\t", index=False)
    checks.to_csv(ROOT / "data" / "signatures_check.tsv", sep="\t", index=False)
    validate()
    print(meta.groupby("category").size().to_string())
    print(meta["check"].value_counts().to_string())
    print(f"{len(meta)} signatures, {len(human)} rows, {len(sources)} sources, {len(pairs)} pairs")


def validate():
    """Format rules of data/SIGNATURES_FORMAT.md, read back from the written files."""
    table = set(gene_table().index)
    human = pd.read_csv(DATA / "signatures_human.tsv", sep="\t", keep_default_na=False)
    meta = pd.read_csv(DATA / "signatures_meta.tsv", sep="\t", keep_default_na=False)
    src = pd.read_csv(DATA / "signatures_sources.tsv", sep="\t", keep_default_na=False)
    pairs = pd.read_csv(DATA / "checkpoint_pairs.tsv", sep="\t", keep_default_na=False)
    assert list(human.columns) == ["name", "gene", "direction", "weight"]
    assert list(meta.columns) == [
        "name",
        "category",
        "species",
        "source",
        "description",
        "n_up",
        "n_down",
        "check",
    ]
    assert list(src.columns) == ["source", "citation", "doi", "licence"]
    assert list(pairs.columns) == [
        "pair",
        "receptor",
        "ligand",
        "receptor_cells",
        "ligand_cells",
        "effect",
        "source",
    ]
    assert meta["name"].is_unique and src["source"].is_unique and pairs["pair"].is_unique
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", n) for n in meta["name"])
    assert set(human["name"]) == set(meta["name"])
    assert not human.duplicated(["name", "gene"]).any()
    assert set(human["direction"]) <= {"up", "down"}
    assert pd.api.types.is_float_dtype(human["weight"]) and (human["weight"] > 0).all()
    missing = sorted(set(human["gene"]) - table)
    assert not missing, missing
    assert set(meta["category"]) <= set(CATEGORIES), set(meta["category"]) - set(CATEGORIES)
    assert (meta["species"] == "human").all()
    assert set(meta["check"]) <= {"checked", "checked_with_changes", "unchecked"}
    assert set(meta["source"]) <= set(src["source"]) and set(pairs["source"]) <= set(src["source"])
    assert (src[["citation", "doi", "licence"]] != "").all().all()
    counts = human.groupby("name")["direction"].value_counts().unstack(fill_value=0)
    m = meta.set_index("name")
    assert (counts.reindex(m.index)["up"] == m["n_up"]).all()
    assert (counts.reindex(m.index).get("down", 0) == m["n_down"]).all()
    assert (m["n_up"] + m["n_down"] > 0).all() and (meta["description"] != "").all()
    assert set(pairs["effect"]) <= {"inhibitory", "stimulatory"}
    for col in ("receptor", "ligand"):
        for v in pairs[col]:
            genes = v.split("+")
            assert all(genes) and set(genes) <= table, v
    assert (meta["category"] == "hallmark").sum() == 50
    assert (meta["category"] == "meta_program").sum() == 41
    print("format checks passed")


if __name__ == "__main__":
    main()
