"""Build the therapy knowledge base in ``tmeatlas/_data`` (read by ``tm.datasets.therapies``).

Writes
  tmeatlas/_data/therapies.tsv           one row per therapy (first line: ``# version: <VERSION>``)
  tmeatlas/_data/therapies_sources.tsv   one row per cited publication (authors, title, journal, year, DOI)

The curated entries below (``THERAPIES``) are the source of truth; the TSVs are generated from them
and never edited by hand.  Facts (drug targets, trial results, resistance mechanisms) are from the
cited publications; the selection, the wording and the tables are this project's.

Columns of ``therapies.tsv`` (list-valued columns are ``;``-joined in the file):

  name                   snake_case identifier, unique (``[a-z0-9_]+``)
  display_name           drug name(s) as written in the clinic
  drug_class             chemotherapy | targeted | adc | cell_therapy | immunotherapy
  subclass               platinum, taxane, anthracycline, antimetabolite, egfr, her2, braf_mek, parp,
                         cdk4_6, endocrine_er, endocrine_ar, kras_g12c, angiogenesis, adc, car_t,
                         t_cell_engager, anti_pd1, anti_pdl1, anti_ctla4, anti_lag3
  modality               small_molecule | monoclonal_antibody | antibody_drug_conjugate | car_t |
                         bispecific_antibody
  molecular_targets      what the drug binds or inhibits (informational; HGNC symbols)
  targets                genes whose EXPRESSION the therapy needs in ``target_compartment``; empty for
                         cytotoxic chemotherapy, which needs no particular target expression
  target_logic           any | all: how several ``targets`` combine (empty when there are none)
  target_compartment     malignant | immune | stroma | tme (where the targets must be expressed)
  required_genes         further genes that must be expressed in the malignant cells (their loss
                         confers resistance), e.g. RB1 for CDK4/6 inhibitors
  requires_mutation      genomic requirement (mutation, wild-type status); expression data cannot see
                         it, so a scorer can only report it, never test it
  sensitivity_genes      genes whose high expression is reported to go with benefit
  resistance_genes       genes whose high expression is reported to confer resistance
  sensitivity_programs   signatures of ``tm.datasets.signatures()`` whose HIGH score goes with benefit;
                         a program whose LOSS confers resistance (e.g. MHC-I antigen presentation) is
                         listed here
  resistance_programs    signatures whose HIGH score goes with resistance
  payload                ADC payload (empty otherwise)
  indication             main approved setting(s), short
  mechanism              one plain sentence
  evidence               what the targets, genes and programs rest on, with the limits
  normal_expression_note on-target, off-tumour expression worth knowing (optional)
  sources                keys into therapies_sources.tsv: the pivotal trial first, then mechanism and
                         resistance papers

Columns of ``therapies_sources.tsv``: source, authors, title, journal, year, doi, kind
(trial | mechanism | resistance | biomarker | review), check (how the DOI was verified).

Checks run at the end (``validate``): every gene is in ``tmeatlas._resources.gene_table()``,
every program is a signature of ``signatures_meta.tsv``, every source key resolves to a DOI, every
therapy cites a trial and at least one mechanism/resistance/review paper, and every class of the
feature request is present.

Run:  python data/build_therapies.py [--out-dir DIR]     (default: tmeatlas/_data)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tmeatlas._resources import gene_table  # noqa: E402

DATA = ROOT / "tmeatlas" / "_data"

#: version of the knowledge base; bump it (YYYY.MM.N) whenever an entry changes
VERSION = "2026.11.0"

THERAPIES_FILE = "therapies.tsv"
SOURCES_FILE = "therapies_sources.tsv"

COLUMNS = [
    "name", "display_name", "drug_class", "subclass", "modality", "molecular_targets", "targets",
    "target_logic", "target_compartment", "required_genes", "requires_mutation", "sensitivity_genes",
    "resistance_genes", "sensitivity_programs", "resistance_programs", "payload", "indication", "mechanism",
    "evidence", "normal_expression_note", "sources",
]  # fmt: skip
LIST_COLUMNS = [
    "molecular_targets", "targets", "required_genes", "sensitivity_genes", "resistance_genes",
    "sensitivity_programs", "resistance_programs", "sources",
]  # fmt: skip
GENE_COLUMNS = ["molecular_targets", "targets", "required_genes", "sensitivity_genes", "resistance_genes"]
PROGRAM_COLUMNS = ["sensitivity_programs", "resistance_programs"]
SOURCE_COLUMNS = ["source", "authors", "title", "journal", "year", "doi", "kind", "check"]

DRUG_CLASSES = ["chemotherapy", "targeted", "adc", "cell_therapy", "immunotherapy"]
MODALITIES = [
    "small_molecule",
    "monoclonal_antibody",
    "antibody_drug_conjugate",
    "car_t",
    "bispecific_antibody",
]
COMPARTMENTS = ["malignant", "immune", "stroma", "tme"]
SUBCLASSES = [
    "platinum", "taxane", "anthracycline", "antimetabolite", "egfr", "her2", "braf_mek", "parp", "cdk4_6",
    "endocrine_er", "endocrine_ar", "kras_g12c", "angiogenesis", "adc", "car_t", "t_cell_engager", "anti_pd1",
    "anti_pdl1", "anti_ctla4", "anti_lag3",
]  # fmt: skip
SOURCE_KINDS = ["trial", "mechanism", "resistance", "biomarker", "review"]

# --------------------------------------------------------------------------------------------
# Sources: key -> (authors, title, journal volume:pages, year, doi, kind)
# --------------------------------------------------------------------------------------------
SOURCES = {
    # ---- general drug resistance
    "Holohan2013": (
        "Holohan C., Van Schaeybroeck S., Longley D.B., Johnston P.G.",
        "Cancer drug resistance: an evolving paradigm",
        "Nat Rev Cancer 13:714-726",
        2013,
        "10.1038/nrc3599",
        "review",
    ),
    "Robey2018": (
        "Robey R.W. et al.",
        "Revisiting the role of ABC transporters in multidrug-resistant cancer",
        "Nat Rev Cancer 18:452-464",
        2018,
        "10.1038/s41568-018-0005-8",
        "resistance",
    ),
    "Sharma2010": (
        "Sharma S.V. et al.",
        "A chromatin-mediated reversible drug-tolerant state in cancer cell subpopulations",
        "Cell 141:69-80",
        2010,
        "10.1016/j.cell.2010.02.027",
        "resistance",
    ),
    "Shaffer2017": (
        "Shaffer S.M. et al.",
        "Rare cell variability and drug-induced reprogramming as a mode of cancer drug resistance",
        "Nature 546:431-435",
        2017,
        "10.1038/nature22794",
        "resistance",
    ),
    "Fischer2015": (
        "Fischer K.R. et al.",
        "Epithelial-to-mesenchymal transition is not required for lung metastasis but contributes to chemoresistance",
        "Nature 527:472-476",
        2015,
        "10.1038/nature15748",
        "resistance",
    ),
    "Zheng2015": (
        "Zheng X. et al.",
        "Epithelial-to-mesenchymal transition is dispensable for metastasis but induces chemoresistance in pancreatic cancer",
        "Nature 527:525-530",
        2015,
        "10.1038/nature16064",
        "resistance",
    ),
    # ---- platinum
    "Rosenberg1969": (
        "Rosenberg B., VanCamp L., Trosko J.E., Mansour V.H.",
        "Platinum compounds: a new class of potent antitumour agents",
        "Nature 222:385-386",
        1969,
        "10.1038/222385a0",
        "mechanism",
    ),
    "Arriagada2004": (
        "Arriagada R. et al. (International Adjuvant Lung Cancer Trial Collaborative Group)",
        "Cisplatin-based adjuvant chemotherapy in patients with completely resected non-small-cell lung cancer",
        "N Engl J Med 350:351-360",
        2004,
        "10.1056/NEJMoa031644",
        "trial",
    ),
    "Galluzzi2012": (
        "Galluzzi L. et al.",
        "Molecular mechanisms of cisplatin resistance",
        "Oncogene 31:1869-1883",
        2012,
        "10.1038/onc.2011.384",
        "resistance",
    ),
    "Ozols2003": (
        "Ozols R.F. et al.",
        "Phase III trial of carboplatin and paclitaxel compared with cisplatin and paclitaxel in patients with optimally resected stage III ovarian cancer: a Gynecologic Oncology Group study",
        "J Clin Oncol 21:3194-3200",
        2003,
        "10.1200/JCO.2003.02.153",
        "trial",
    ),
    "Andre2004": (
        "Andre T. et al.",
        "Oxaliplatin, fluorouracil, and leucovorin as adjuvant treatment for colon cancer",
        "N Engl J Med 350:2343-2351",
        2004,
        "10.1056/NEJMoa032709",
        "trial",
    ),
    # ---- taxanes
    "Kavallaris2010": (
        "Kavallaris M.",
        "Microtubules and resistance to tubulin-binding agents",
        "Nat Rev Cancer 10:194-204",
        2010,
        "10.1038/nrc2803",
        "resistance",
    ),
    "Tannock2004": (
        "Tannock I.F. et al.",
        "Docetaxel plus prednisone or mitoxantrone plus prednisone for advanced prostate cancer",
        "N Engl J Med 351:1502-1512",
        2004,
        "10.1056/NEJMoa040720",
        "trial",
    ),
    # ---- anthracyclines
    "Nitiss2009": (
        "Nitiss J.L.",
        "Targeting DNA topoisomerase II in cancer chemotherapy",
        "Nat Rev Cancer 9:338-350",
        2009,
        "10.1038/nrc2607",
        "review",
    ),
    # ---- antimetabolites
    "Judson2014": (
        "Judson I. et al.",
        "Doxorubicin alone versus intensified doxorubicin plus ifosfamide for first-line treatment of advanced or metastatic soft-tissue sarcoma: a randomised controlled phase 3 trial",
        "Lancet Oncol 15:415-423",
        2014,
        "10.1016/S1470-2045(14)70063-4",
        "trial",
    ),
    "Longley2003": (
        "Longley D.B., Harkin D.P., Johnston P.G.",
        "5-fluorouracil: mechanisms of action and clinical strategies",
        "Nat Rev Cancer 3:330-338",
        2003,
        "10.1038/nrc1074",
        "review",
    ),
    "Moertel1990": (
        "Moertel C.G. et al.",
        "Levamisole and fluorouracil for adjuvant therapy of resected colon carcinoma",
        "N Engl J Med 322:352-358",
        1990,
        "10.1056/NEJM199002083220602",
        "trial",
    ),
    "Burris1997": (
        "Burris H.A. 3rd et al.",
        "Improvements in survival and clinical benefit with gemcitabine as first-line therapy for patients with advanced pancreas cancer: a randomized trial",
        "J Clin Oncol 15:2403-2413",
        1997,
        "10.1200/JCO.1997.15.6.2403",
        "trial",
    ),
    # ---- EGFR
    "VanCutsem2009": (
        "Van Cutsem E. et al.",
        "Cetuximab and chemotherapy as initial treatment for metastatic colorectal cancer",
        "N Engl J Med 360:1408-1417",
        2009,
        "10.1056/NEJMoa0805019",
        "trial",
    ),
    "Karapetis2008": (
        "Karapetis C.S. et al.",
        "K-ras mutations and benefit from cetuximab in advanced colorectal cancer",
        "N Engl J Med 359:1757-1765",
        2008,
        "10.1056/NEJMoa0804385",
        "biomarker",
    ),
    "Misale2012": (
        "Misale S. et al.",
        "Emergence of KRAS mutations and acquired resistance to anti-EGFR therapy in colorectal cancer",
        "Nature 486:532-536",
        2012,
        "10.1038/nature11156",
        "resistance",
    ),
    "Soria2018": (
        "Soria J.-C. et al.",
        "Osimertinib in untreated EGFR-mutated advanced non-small-cell lung cancer",
        "N Engl J Med 378:113-125",
        2018,
        "10.1056/NEJMoa1713137",
        "trial",
    ),
    # ---- HER2
    "Slamon2001": (
        "Slamon D.J. et al.",
        "Use of chemotherapy plus a monoclonal antibody against HER2 for metastatic breast cancer that overexpresses HER2",
        "N Engl J Med 344:783-792",
        2001,
        "10.1056/NEJM200103153441101",
        "trial",
    ),
    "Baselga2012": (
        "Baselga J. et al.",
        "Pertuzumab plus trastuzumab plus docetaxel for metastatic breast cancer",
        "N Engl J Med 366:109-119",
        2012,
        "10.1056/NEJMoa1113216",
        "trial",
    ),
    "Murthy2020": (
        "Murthy R.K. et al.",
        "Tucatinib, trastuzumab, and capecitabine for HER2-positive metastatic breast cancer",
        "N Engl J Med 382:597-609",
        2020,
        "10.1056/NEJMoa1914609",
        "trial",
    ),
    "Chandarlapaty2012": (
        "Chandarlapaty S. et al.",
        "Frequent mutational activation of the PI3K-AKT pathway in trastuzumab-resistant breast cancer",
        "Clin Cancer Res 18:6784-6791",
        2012,
        "10.1158/1078-0432.CCR-12-1785",
        "resistance",
    ),
    # ---- BRAF/MEK
    "Chapman2011": (
        "Chapman P.B. et al.",
        "Improved survival with vemurafenib in melanoma with BRAF V600E mutation",
        "N Engl J Med 364:2507-2516",
        2011,
        "10.1056/NEJMoa1103782",
        "trial",
    ),
    "Long2014": (
        "Long G.V. et al.",
        "Combined BRAF and MEK inhibition versus BRAF inhibition alone in melanoma",
        "N Engl J Med 371:1877-1888",
        2014,
        "10.1056/NEJMoa1406037",
        "trial",
    ),
    # ---- PARP
    "Farmer2005": (
        "Farmer H. et al.",
        "Targeting the DNA repair defect in BRCA mutant cells as a therapeutic strategy",
        "Nature 434:917-921",
        2005,
        "10.1038/nature03445",
        "mechanism",
    ),
    "Lord2017": (
        "Lord C.J., Ashworth A.",
        "PARP inhibitors: synthetic lethality in the clinic",
        "Science 355:1152-1158",
        2017,
        "10.1126/science.aam7344",
        "review",
    ),
    "Robson2017": (
        "Robson M. et al.",
        "Olaparib for metastatic breast cancer in patients with a germline BRCA mutation",
        "N Engl J Med 377:523-533",
        2017,
        "10.1056/NEJMoa1706450",
        "trial",
    ),
    "Mirza2016": (
        "Mirza M.R. et al.",
        "Niraparib maintenance therapy in platinum-sensitive, recurrent ovarian cancer",
        "N Engl J Med 375:2154-2164",
        2016,
        "10.1056/NEJMoa1611310",
        "trial",
    ),
    # ---- CDK4/6
    "Finn2016": (
        "Finn R.S. et al.",
        "Palbociclib and letrozole in advanced breast cancer",
        "N Engl J Med 375:1925-1936",
        2016,
        "10.1056/NEJMoa1607303",
        "trial",
    ),
    "Hortobagyi2016": (
        "Hortobagyi G.N. et al.",
        "Ribociclib as first-line therapy for HR-positive, advanced breast cancer",
        "N Engl J Med 375:1738-1748",
        2016,
        "10.1056/NEJMoa1609709",
        "trial",
    ),
    "Goetz2017": (
        "Goetz M.P. et al.",
        "MONARCH 3: abemaciclib as initial therapy for advanced breast cancer",
        "J Clin Oncol 35:3638-3646",
        2017,
        "10.1200/JCO.2017.75.6155",
        "trial",
    ),
    "Asghar2015": (
        "Asghar U., Witkiewicz A.K., Turner N.C., Knudsen E.S.",
        "The history and future of targeting cyclin-dependent kinases in cancer therapy",
        "Nat Rev Drug Discov 14:130-146",
        2015,
        "10.1038/nrd4504",
        "review",
    ),
    "Turner2019": (
        "Turner N.C. et al.",
        "Cyclin E1 expression and palbociclib efficacy in previously treated hormone receptor-positive metastatic breast cancer",
        "J Clin Oncol 37:1169-1178",
        2019,
        "10.1200/JCO.18.00925",
        "biomarker",
    ),
    "Finn2009": (
        "Finn R.S., Dering J., Conklin D., et al.",
        "PD 0332991, a selective cyclin D kinase 4/6 inhibitor, preferentially inhibits proliferation of luminal "
        "estrogen receptor-positive human breast cancer cell lines in vitro",
        "Breast Cancer Res 11:R77",
        2009,
        "10.1186/bcr2419",
        "biomarker",
    ),
    # ---- endocrine (ER)
    "EBCTCG2011": (
        "Early Breast Cancer Trialists' Collaborative Group (EBCTCG)",
        "Relevance of breast cancer hormone receptors and other factors to the efficacy of adjuvant tamoxifen: patient-level meta-analysis of randomised trials",
        "Lancet 378:771-784",
        2011,
        "10.1016/S0140-6736(11)60993-8",
        "trial",
    ),
    "BIG2005": (
        "Breast International Group (BIG) 1-98 Collaborative Group (Thurlimann B. et al.)",
        "A comparison of letrozole and tamoxifen in postmenopausal women with early breast cancer",
        "N Engl J Med 353:2747-2757",
        2005,
        "10.1056/NEJMoa052258",
        "trial",
    ),
    "Robertson2016": (
        "Robertson J.F.R. et al.",
        "Fulvestrant 500 mg versus anastrozole 1 mg for hormone receptor-positive advanced breast cancer (FALCON): an international, randomised, double-blind, phase 3 trial",
        "Lancet 388:2997-3005",
        2016,
        "10.1016/S0140-6736(16)32389-3",
        "trial",
    ),
    "Osborne2011": (
        "Osborne C.K., Schiff R.",
        "Mechanisms of endocrine resistance in breast cancer",
        "Annu Rev Med 62:233-247",
        2011,
        "10.1146/annurev-med-070909-182917",
        "resistance",
    ),
    "Hanker2020": (
        "Hanker A.B., Sudhan D.R., Arteaga C.L.",
        "Overcoming endocrine resistance in breast cancer",
        "Cancer Cell 37:496-513",
        2020,
        "10.1016/j.ccell.2020.03.009",
        "resistance",
    ),
    # ---- endocrine (AR)
    "Scher2012": (
        "Scher H.I. et al.",
        "Increased survival with enzalutamide in prostate cancer after chemotherapy",
        "N Engl J Med 367:1187-1197",
        2012,
        "10.1056/NEJMoa1207506",
        "trial",
    ),
    "deBono2011": (
        "de Bono J.S. et al.",
        "Abiraterone and increased survival in metastatic prostate cancer",
        "N Engl J Med 364:1995-2005",
        2011,
        "10.1056/NEJMoa1014618",
        "trial",
    ),
    "Watson2015": (
        "Watson P.A., Arora V.K., Sawyers C.L.",
        "Emerging mechanisms of resistance to androgen receptor inhibitors in prostate cancer",
        "Nat Rev Cancer 15:701-711",
        2015,
        "10.1038/nrc4016",
        "resistance",
    ),
    "Antonarakis2014": (
        "Antonarakis E.S. et al.",
        "AR-V7 and resistance to enzalutamide and abiraterone in prostate cancer",
        "N Engl J Med 371:1028-1038",
        2014,
        "10.1056/NEJMoa1315815",
        "resistance",
    ),
    # ---- KRAS G12C
    "Ostrem2013": (
        "Ostrem J.M. et al.",
        "K-Ras(G12C) inhibitors allosterically control GTP affinity and effector interactions",
        "Nature 503:548-551",
        2013,
        "10.1038/nature12796",
        "mechanism",
    ),
    "Skoulidis2021": (
        "Skoulidis F. et al.",
        "Sotorasib for lung cancers with KRAS p.G12C mutation",
        "N Engl J Med 384:2371-2381",
        2021,
        "10.1056/NEJMoa2103695",
        "trial",
    ),
    "Janne2022": (
        "Janne P.A. et al.",
        "Adagrasib in non-small-cell lung cancer harboring a KRAS(G12C) mutation",
        "N Engl J Med 387:120-131",
        2022,
        "10.1056/NEJMoa2204619",
        "trial",
    ),
    "Awad2021": (
        "Awad M.M. et al.",
        "Acquired resistance to KRAS(G12C) inhibition in cancer",
        "N Engl J Med 384:2382-2393",
        2021,
        "10.1056/NEJMoa2105281",
        "resistance",
    ),
    # ---- angiogenesis
    "Hurwitz2004": (
        "Hurwitz H. et al.",
        "Bevacizumab plus irinotecan, fluorouracil, and leucovorin for metastatic colorectal cancer",
        "N Engl J Med 350:2335-2342",
        2004,
        "10.1056/NEJMoa032691",
        "trial",
    ),
    "Ferrara2004": (
        "Ferrara N., Hillan K.J., Gerber H.-P., Novotny W.",
        "Discovery and development of bevacizumab, an anti-VEGF antibody for treating cancer",
        "Nat Rev Drug Discov 3:391-400",
        2004,
        "10.1038/nrd1381",
        "mechanism",
    ),
    "Bergers2008": (
        "Bergers G., Hanahan D.",
        "Modes of resistance to anti-angiogenic therapy",
        "Nat Rev Cancer 8:592-603",
        2008,
        "10.1038/nrc2442",
        "resistance",
    ),
    "Fuchs2014": (
        "Fuchs C.S. et al.",
        "Ramucirumab monotherapy for previously treated advanced gastric or gastro-oesophageal junction adenocarcinoma (REGARD): an international, randomised, multicentre, placebo-controlled, phase 3 trial",
        "Lancet 383:31-39",
        2014,
        "10.1016/S0140-6736(13)61719-5",
        "trial",
    ),
    # ---- ADCs
    "Drago2021": (
        "Drago J.Z., Modi S., Chandarlapaty S.",
        "Unlocking the potential of antibody-drug conjugates for cancer therapy",
        "Nat Rev Clin Oncol 18:327-344",
        2021,
        "10.1038/s41571-021-00470-8",
        "review",
    ),
    "Modi2022": (
        "Modi S. et al.",
        "Trastuzumab deruxtecan in previously treated HER2-low advanced breast cancer",
        "N Engl J Med 387:9-20",
        2022,
        "10.1056/NEJMoa2203690",
        "trial",
    ),
    "Verma2012": (
        "Verma S. et al.",
        "Trastuzumab emtansine for HER2-positive advanced breast cancer",
        "N Engl J Med 367:1783-1791",
        2012,
        "10.1056/NEJMoa1209124",
        "trial",
    ),
    "Bardia2021": (
        "Bardia A. et al.",
        "Sacituzumab govitecan in metastatic triple-negative breast cancer",
        "N Engl J Med 384:1529-1541",
        2021,
        "10.1056/NEJMoa2028485",
        "trial",
    ),
    "Powles2021": (
        "Powles T. et al.",
        "Enfortumab vedotin in previously treated advanced urothelial carcinoma",
        "N Engl J Med 384:1125-1135",
        2021,
        "10.1056/NEJMoa2035807",
        "trial",
    ),
    "ChallitaEid2016": (
        "Challita-Eid P.M. et al.",
        "Enfortumab vedotin antibody-drug conjugate targeting Nectin-4 is a highly potent therapeutic agent in multiple preclinical cancer models",
        "Cancer Res 76:3003-3013",
        2016,
        "10.1158/0008-5472.CAN-15-1313",
        "mechanism",
    ),
    "Moore2023": (
        "Moore K.N. et al.",
        "Mirvetuximab soravtansine in FRalpha-positive, platinum-resistant ovarian cancer",
        "N Engl J Med 389:2162-2174",
        2023,
        "10.1056/NEJMoa2309169",
        "trial",
    ),
    # ---- cell therapy and T-cell engagers
    "June2018": (
        "June C.H., Sadelain M.",
        "Chimeric antigen receptor therapy",
        "N Engl J Med 379:64-73",
        2018,
        "10.1056/NEJMra1706169",
        "review",
    ),
    "Maude2018": (
        "Maude S.L. et al.",
        "Tisagenlecleucel in children and young adults with B-cell lymphoblastic leukemia",
        "N Engl J Med 378:439-448",
        2018,
        "10.1056/NEJMoa1709866",
        "trial",
    ),
    "Neelapu2017": (
        "Neelapu S.S. et al.",
        "Axicabtagene ciloleucel CAR T-cell therapy in refractory large B-cell lymphoma",
        "N Engl J Med 377:2531-2544",
        2017,
        "10.1056/NEJMoa1707447",
        "trial",
    ),
    "Munshi2021": (
        "Munshi N.C. et al.",
        "Idecabtagene vicleucel in relapsed and refractory multiple myeloma",
        "N Engl J Med 384:705-716",
        2021,
        "10.1056/NEJMoa2024850",
        "trial",
    ),
    "Berdeja2021": (
        "Berdeja J.G. et al.",
        "Ciltacabtagene autoleucel, a B-cell maturation antigen-directed chimeric antigen receptor T-cell therapy in patients with relapsed or refractory multiple myeloma (CARTITUDE-1): a phase 1b/2 open-label study",
        "Lancet 398:314-324",
        2021,
        "10.1016/S0140-6736(21)00933-8",
        "trial",
    ),
    "Sotillo2015": (
        "Sotillo E. et al.",
        "Convergence of acquired mutations and alternative splicing of CD19 enables resistance to CART-19 immunotherapy",
        "Cancer Discov 5:1282-1295",
        2015,
        "10.1158/2159-8290.CD-15-1020",
        "resistance",
    ),
    "Orlando2018": (
        "Orlando E.J. et al.",
        "Genetic mechanisms of target antigen loss in CAR19 therapy of acute lymphoblastic leukemia",
        "Nat Med 24:1504-1506",
        2018,
        "10.1038/s41591-018-0146-z",
        "resistance",
    ),
    "Samur2021": (
        "Samur M.K. et al.",
        "Biallelic loss of BCMA as a resistance mechanism to CAR T cell therapy in a patient with multiple myeloma",
        "Nat Commun 12:868",
        2021,
        "10.1038/s41467-021-21177-5",
        "resistance",
    ),
    "Jain2021": (
        "Jain M.D. et al.",
        "Tumor interferon signaling and suppressive myeloid cells are associated with CAR T-cell failure in large B-cell lymphoma",
        "Blood 137:2621-2633",
        2021,
        "10.1182/blood.2020007445",
        "resistance",
    ),
    "Scholler2022": (
        "Scholler N. et al.",
        "Tumor immune contexture is a determinant of anti-CD19 CAR T cell efficacy in large B cell lymphoma",
        "Nat Med 28:1872-1882",
        2022,
        "10.1038/s41591-022-01916-x",
        "biomarker",
    ),
    "Moreau2022": (
        "Moreau P. et al.",
        "Teclistamab in relapsed or refractory multiple myeloma",
        "N Engl J Med 387:495-505",
        2022,
        "10.1056/NEJMoa2203478",
        "trial",
    ),
    "Kantarjian2017": (
        "Kantarjian H. et al.",
        "Blinatumomab versus chemotherapy for advanced acute lymphoblastic leukemia",
        "N Engl J Med 376:836-847",
        2017,
        "10.1056/NEJMoa1609783",
        "trial",
    ),
    # ---- immune checkpoint blockade
    "Pardoll2012": (
        "Pardoll D.M.",
        "The blockade of immune checkpoints in cancer immunotherapy",
        "Nat Rev Cancer 12:252-264",
        2012,
        "10.1038/nrc3239",
        "mechanism",
    ),
    "Sharma2017": (
        "Sharma P., Hu-Lieskovan S., Wargo J.A., Ribas A.",
        "Primary, adaptive, and acquired resistance to cancer immunotherapy",
        "Cell 168:707-723",
        2017,
        "10.1016/j.cell.2017.01.017",
        "resistance",
    ),
    "Reck2016": (
        "Reck M. et al.",
        "Pembrolizumab versus chemotherapy for PD-L1-positive non-small-cell lung cancer",
        "N Engl J Med 375:1823-1833",
        2016,
        "10.1056/NEJMoa1606774",
        "trial",
    ),
    "Larkin2015": (
        "Larkin J. et al.",
        "Combined nivolumab and ipilimumab or monotherapy in untreated melanoma",
        "N Engl J Med 373:23-34",
        2015,
        "10.1056/NEJMoa1504030",
        "trial",
    ),
    "Rittmeyer2017": (
        "Rittmeyer A. et al.",
        "Atezolizumab versus docetaxel in patients with previously treated non-small-cell lung cancer (OAK): a phase 3, open-label, multicentre randomised controlled trial",
        "Lancet 389:255-265",
        2017,
        "10.1016/S0140-6736(16)32517-X",
        "trial",
    ),
    "Antonia2017": (
        "Antonia S.J. et al.",
        "Durvalumab after chemoradiotherapy in stage III non-small-cell lung cancer",
        "N Engl J Med 377:1919-1929",
        2017,
        "10.1056/NEJMoa1709937",
        "trial",
    ),
    "Hodi2010": (
        "Hodi F.S. et al.",
        "Improved survival with ipilimumab in patients with metastatic melanoma",
        "N Engl J Med 363:711-723",
        2010,
        "10.1056/NEJMoa1003466",
        "trial",
    ),
    "Leach1996": (
        "Leach D.R., Krummel M.F., Allison J.P.",
        "Enhancement of antitumor immunity by CTLA-4 blockade",
        "Science 271:1734-1736",
        1996,
        "10.1126/science.271.5256.1734",
        "mechanism",
    ),
    "Tawbi2022": (
        "Tawbi H.A. et al.",
        "Relatlimab and nivolumab versus nivolumab in untreated advanced melanoma",
        "N Engl J Med 386:24-34",
        2022,
        "10.1056/NEJMoa2109970",
        "trial",
    ),
    "Ayers2017": (
        "Ayers M. et al.",
        "IFN-gamma-related mRNA profile predicts clinical response to PD-1 blockade",
        "J Clin Invest 127:2930-2940",
        2017,
        "10.1172/JCI91190",
        "biomarker",
    ),
    "Tumeh2014": (
        "Tumeh P.C. et al.",
        "PD-1 blockade induces responses by inhibiting adaptive immune resistance",
        "Nature 515:568-571",
        2014,
        "10.1038/nature13954",
        "biomarker",
    ),
    "Zaretsky2016": (
        "Zaretsky J.M. et al.",
        "Mutations associated with acquired resistance to PD-1 blockade in melanoma",
        "N Engl J Med 375:819-829",
        2016,
        "10.1056/NEJMoa1604958",
        "resistance",
    ),
    "SadeFeldman2018": (
        "Sade-Feldman M. et al.",
        "Defining T cell states associated with response to checkpoint immunotherapy in melanoma",
        "Cell 175:998-1013",
        2018,
        "10.1016/j.cell.2018.10.038",
        "biomarker",
    ),
    "Cabrita2020": (
        "Cabrita R. et al.",
        "Tertiary lymphoid structures improve immunotherapy and survival in melanoma",
        "Nature 577:561-565",
        2020,
        "10.1038/s41586-019-1914-8",
        "biomarker",
    ),
    "Mariathasan2018": (
        "Mariathasan S. et al.",
        "TGF-beta attenuates tumour response to PD-L1 blockade by contributing to exclusion of T cells",
        "Nature 554:544-548",
        2018,
        "10.1038/nature25501",
        "resistance",
    ),
    "Spranger2015": (
        "Spranger S., Bao R., Gajewski T.F.",
        "Melanoma-intrinsic beta-catenin signalling prevents anti-tumour immunity",
        "Nature 523:231-235",
        2015,
        "10.1038/nature14404",
        "resistance",
    ),
    "Dominguez2020": (
        "Dominguez C.X. et al.",
        "Single-cell RNA sequencing reveals stromal evolution into LRRC15+ myofibroblasts as a determinant of patient response to cancer immunotherapy",
        "Cancer Discov 10:232-253",
        2020,
        "10.1158/2159-8290.CD-19-0644",
        "resistance",
    ),
    "VanAllen2015": (
        "Van Allen E.M. et al.",
        "Genomic correlates of response to CTLA-4 blockade in metastatic melanoma",
        "Science 350:207-211",
        2015,
        "10.1126/science.aad0095",
        "biomarker",
    ),
}

# --------------------------------------------------------------------------------------------
# Reusable program sets (names of tm.datasets.signatures())
# --------------------------------------------------------------------------------------------
PROLIFERATION = ["TIROSH_G2M", "HALLMARK_E2F_TARGETS"]
CHEMO_RESISTANCE = ["PERSISTER_CHANG2022", "EMT_CANCERSEA", "QUIESCENCE_CANCERSEA", "STEMNESS_CANCERSEA"]
DNA_REPAIR = ["DNA_REPAIR_CANCERSEA", "HALLMARK_DNA_REPAIR"]
ICB_SENSITIVITY = [
    "AYERS_TCELL_INFLAMED_GEP_18",
    "AYERS_IFNG_6",
    "MHC1_APM_SENBABAOGLU",
    "TPEX_TSUI2022",
    "CABRITA_TLS_9",
]
ICB_RESISTANCE = [
    "HALLMARK_TGF_BETA_SIGNALING",
    "DOMINGUEZ_LRRC15_CAF",
    "HALLMARK_WNT_BETA_CATENIN_SIGNALING",
]
ICB_SOURCES = [
    "Pardoll2012",
    "Sharma2017",
    "Ayers2017",
    "SadeFeldman2018",
    "Cabrita2020",
    "Mariathasan2018",
    "Spranger2015",
    "Dominguez2020",
    "Zaretsky2016",
]
CHEMO_SOURCES = ["Holohan2013", "Sharma2010", "Fischer2015", "Zheng2015"]

CHEMO_EVIDENCE = (
    "Cytotoxic: kills dividing cells, so proliferation programs mark sensitivity; drug-tolerant persister, EMT, "
    "quiescence and stemness states are documented routes of chemoresistance (Sharma 2010; Fischer 2015; "
    "Zheng 2015; Holohan 2013)."
)
ICB_EVIDENCE = (
    "A T cell-inflamed, IFN-gamma-rich tumour (Ayers 2017), intact MHC-I antigen presentation (loss via "
    "B2M/JAK mutations in Zaretsky 2016), TCF7+ progenitor CD8 T cells (Sade-Feldman 2018) and tertiary "
    "lymphoid structures (Cabrita 2020) go with response; TGF-beta-driven T-cell exclusion (Mariathasan 2018), "
    "LRRC15+ CAFs (Dominguez 2020) and tumour beta-catenin signalling (Spranger 2015) with resistance. Tumour "
    "mutational burden and MSI status matter too but are genomic, not expression, properties."
)


def T(
    name,
    display_name,
    drug_class,
    subclass,
    modality,
    *,
    mechanism,
    evidence,
    sources,
    indication,
    molecular_targets=(),
    targets=(),
    target_logic="",
    target_compartment="malignant",
    required_genes=(),
    requires_mutation="",
    sensitivity_genes=(),
    resistance_genes=(),
    sensitivity_programs=(),
    resistance_programs=(),
    payload="",
    normal_expression_note="",
):
    """One therapy entry (lists are joined with ';' when written)."""
    if targets and not target_logic:
        target_logic = "any"
    return dict(
        name=name,
        display_name=display_name,
        drug_class=drug_class,
        subclass=subclass,
        modality=modality,
        molecular_targets=list(molecular_targets),
        targets=list(targets),
        target_logic=target_logic,
        target_compartment=target_compartment,
        required_genes=list(required_genes),
        requires_mutation=requires_mutation,
        sensitivity_genes=list(sensitivity_genes),
        resistance_genes=list(resistance_genes),
        sensitivity_programs=list(sensitivity_programs),
        resistance_programs=list(resistance_programs),
        payload=payload,
        indication=indication,
        mechanism=mechanism,
        evidence=evidence,
        normal_expression_note=normal_expression_note,
        sources=list(sources),
    )


# --------------------------------------------------------------------------------------------
# The therapies
# --------------------------------------------------------------------------------------------
THERAPIES = [
    # ================================ chemotherapy: platinum
    T(
        "cisplatin",
        "Cisplatin",
        "chemotherapy",
        "platinum",
        "small_molecule",
        indication="testicular, ovarian, lung, bladder, head and neck and other solid tumours",
        mechanism="Forms platinum-DNA intrastrand and interstrand crosslinks that block replication and transcription and trigger apoptosis.",
        resistance_genes=["ERCC1", "ABCC2"],
        sensitivity_programs=PROLIFERATION,
        resistance_programs=[*DNA_REPAIR, "DRUG_EFFLUX_ABC_EXTENDED", *CHEMO_RESISTANCE],
        evidence=CHEMO_EVIDENCE
        + " Platinum-specific: enhanced repair of platinum adducts (nucleotide-excision "
        "repair, ERCC1) and reduced uptake or increased efflux (MRP2/ABCC2) confer resistance (Galluzzi 2012). "
        "Cisplatin-based adjuvant chemotherapy improved survival in resected NSCLC (IALT; Arriagada 2004); "
        "antitumour activity first shown by Rosenberg 1969.",
        sources=["Arriagada2004", "Rosenberg1969", "Galluzzi2012", *CHEMO_SOURCES],
    ),
    T(
        "carboplatin",
        "Carboplatin",
        "chemotherapy",
        "platinum",
        "small_molecule",
        indication="ovarian, lung and other solid tumours (often with paclitaxel)",
        mechanism="Platinum analogue of cisplatin with the same DNA-crosslinking action and a milder toxicity profile.",
        resistance_genes=["ERCC1", "ABCC2"],
        sensitivity_programs=PROLIFERATION,
        resistance_programs=[*DNA_REPAIR, "DRUG_EFFLUX_ABC_EXTENDED", *CHEMO_RESISTANCE],
        evidence=CHEMO_EVIDENCE
        + " Carboplatin shares cisplatin's adducts and its resistance mechanisms (DNA repair, "
        "efflux; Galluzzi 2012); with paclitaxel it was non-inferior to cisplatin-paclitaxel and less toxic in ovarian cancer (GOG 158; Ozols 2003).",
        sources=["Ozols2003", "Galluzzi2012", *CHEMO_SOURCES],
    ),
    T(
        "oxaliplatin",
        "Oxaliplatin",
        "chemotherapy",
        "platinum",
        "small_molecule",
        indication="colorectal cancer (FOLFOX), gastric and pancreatic cancer",
        mechanism="Diaminocyclohexane platinum compound that forms bulky DNA adducts, blocking replication and transcription.",
        resistance_genes=["ERCC1"],
        sensitivity_programs=PROLIFERATION,
        resistance_programs=[*DNA_REPAIR, *CHEMO_RESISTANCE],
        evidence=CHEMO_EVIDENCE
        + " Adjuvant FOLFOX improved disease-free survival in colon cancer (MOSAIC; Andre 2004); "
        "DNA-repair capacity is a platinum-class resistance mechanism (Galluzzi 2012).",
        sources=["Andre2004", "Galluzzi2012", *CHEMO_SOURCES],
    ),
    # ================================ chemotherapy: taxanes
    T(
        "paclitaxel",
        "Paclitaxel",
        "chemotherapy",
        "taxane",
        "small_molecule",
        indication="breast, ovarian, lung and other solid tumours",
        mechanism="Binds beta-tubulin and stabilises microtubules, arresting cells in mitosis.",
        molecular_targets=["TUBB"],
        resistance_genes=["ABCB1", "TUBB3"],
        sensitivity_programs=["TIROSH_G2M", "HALLMARK_G2M_CHECKPOINT"],
        resistance_programs=["DRUG_EFFLUX_ABC_CORE", *CHEMO_RESISTANCE],
        evidence=CHEMO_EVIDENCE
        + " Taxane-specific: P-glycoprotein (ABCB1) efflux and beta-III tubulin (TUBB3) "
        "overexpression confer resistance (Kavallaris 2010; Robey 2018). Tubulin is ubiquitous, so no target "
        "expression is required. Paclitaxel with carboplatin is standard first-line therapy of ovarian cancer "
        "(GOG 158; Ozols 2003).",
        sources=["Ozols2003", "Kavallaris2010", "Robey2018", *CHEMO_SOURCES],
    ),
    T(
        "docetaxel",
        "Docetaxel",
        "chemotherapy",
        "taxane",
        "small_molecule",
        indication="breast, prostate, lung, gastric and head and neck cancer",
        mechanism="Semisynthetic taxane that stabilises microtubules and blocks mitosis.",
        molecular_targets=["TUBB"],
        resistance_genes=["ABCB1", "TUBB3"],
        sensitivity_programs=["TIROSH_G2M", "HALLMARK_G2M_CHECKPOINT"],
        resistance_programs=["DRUG_EFFLUX_ABC_CORE", *CHEMO_RESISTANCE],
        evidence=CHEMO_EVIDENCE
        + " Improved survival in metastatic castration-resistant prostate cancer (TAX 327; "
        "Tannock 2004); ABCB1 efflux and beta-III tubulin confer taxane resistance (Kavallaris 2010).",
        sources=["Tannock2004", "Kavallaris2010", "Robey2018", *CHEMO_SOURCES],
    ),
    # ================================ chemotherapy: anthracyclines
    T(
        "doxorubicin",
        "Doxorubicin",
        "chemotherapy",
        "anthracycline",
        "small_molecule",
        indication="breast cancer, sarcomas, lymphomas and leukaemias",
        mechanism="Intercalates into DNA and poisons topoisomerase II, trapping DNA double-strand breaks.",
        molecular_targets=["TOP2A"],
        targets=["TOP2A"],
        target_logic="any",
        resistance_genes=["ABCB1"],
        sensitivity_programs=PROLIFERATION,
        resistance_programs=["DRUG_EFFLUX_ABC_CORE", *CHEMO_RESISTANCE],
        evidence=CHEMO_EVIDENCE + " Topoisomerase II is the drug's target: cells overexpressing TOP2 are "
        "hypersensitive to TOP2 poisons and cells with low TOP2 are resistant (Nitiss 2009); doxorubicin is a "
        "P-glycoprotein substrate (Robey 2018). Doxorubicin alone remains standard first-line therapy of "
        "advanced soft-tissue sarcoma (EORTC 62012; Judson 2014). "
        "TOP2A is itself a proliferation gene, so its signal overlaps the proliferation programs.",
        normal_expression_note="TOP2B in cardiomyocytes is linked to anthracycline cardiotoxicity (Nitiss 2009).",
        sources=["Judson2014", "Nitiss2009", "Robey2018", *CHEMO_SOURCES],
    ),
    # ================================ chemotherapy: antimetabolites
    T(
        "fluorouracil",
        "5-Fluorouracil",
        "chemotherapy",
        "antimetabolite",
        "small_molecule",
        indication="colorectal, gastric, pancreatic, breast and head and neck cancer",
        mechanism="Pyrimidine analogue whose metabolite FdUMP inhibits thymidylate synthase; its metabolites are also misincorporated into RNA and DNA.",
        molecular_targets=["TYMS"],
        resistance_genes=["TYMS", "DPYD"],
        sensitivity_programs=PROLIFERATION,
        resistance_programs=CHEMO_RESISTANCE,
        evidence=CHEMO_EVIDENCE
        + " High thymidylate synthase (TYMS) and dihydropyrimidine dehydrogenase (DPYD) "
        "expression are associated with resistance (Longley 2003); adjuvant fluorouracil-based therapy "
        "improved survival in colon cancer (Moertel 1990). TYMS is the drug's target but, unlike a receptor, "
        "its HIGH expression confers resistance, so it is listed as a resistance gene, not a target.",
        sources=["Moertel1990", "Longley2003", *CHEMO_SOURCES],
    ),
    T(
        "gemcitabine",
        "Gemcitabine",
        "chemotherapy",
        "antimetabolite",
        "small_molecule",
        indication="pancreatic, lung, bladder, breast and ovarian cancer",
        mechanism="Deoxycytidine analogue that is incorporated into DNA and, as the diphosphate, inhibits ribonucleotide reductase.",
        molecular_targets=["RRM1"],
        sensitivity_programs=PROLIFERATION,
        resistance_programs=CHEMO_RESISTANCE,
        evidence=CHEMO_EVIDENCE
        + " Gemcitabine improved survival and clinical benefit in advanced pancreatic cancer (Burris 1997). EMT "
        "contributed to gemcitabine resistance in pancreatic cancer models (Zheng 2015).",
        sources=["Burris1997", *CHEMO_SOURCES],
    ),
    # ================================ targeted: EGFR
    T(
        "cetuximab",
        "Cetuximab",
        "targeted",
        "egfr",
        "monoclonal_antibody",
        indication="RAS wild-type metastatic colorectal cancer; head and neck squamous cell carcinoma",
        mechanism="Chimeric IgG1 antibody that binds the EGFR extracellular domain, blocks ligand binding and induces receptor internalisation.",
        molecular_targets=["EGFR"],
        targets=["EGFR"],
        requires_mutation="KRAS/NRAS wild-type (RAS-mutant colorectal cancer does not benefit)",
        resistance_programs=["HALLMARK_KRAS_SIGNALING_UP"],
        evidence="Improved outcome with chemotherapy in metastatic colorectal cancer (CRYSTAL; Van Cutsem 2009). "
        "KRAS mutation abolishes benefit (Karapetis 2008) and emerges at acquired resistance (Misale 2012). "
        "HALLMARK_KRAS_SIGNALING_UP is an expression proxy for RAS-pathway activation, "
        "not a mutation call.",
        normal_expression_note="EGFR in skin keratinocytes underlies the acneiform rash.",
        sources=["VanCutsem2009", "Karapetis2008", "Misale2012"],
    ),
    T(
        "osimertinib",
        "Osimertinib",
        "targeted",
        "egfr",
        "small_molecule",
        indication="EGFR-mutant non-small-cell lung cancer",
        mechanism="Irreversible third-generation EGFR tyrosine-kinase inhibitor selective for sensitising and T790M-mutant EGFR.",
        molecular_targets=["EGFR"],
        targets=["EGFR"],
        requires_mutation="EGFR exon 19 deletion or L858R (also active against T790M)",
        resistance_programs=["PERSISTER_CHANG2022"],
        evidence="First-line osimertinib prolonged progression-free survival (FLAURA; Soria 2018). EGFR-mutant lung "
        "cancer cells survive EGFR inhibition as reversible drug-tolerant persisters (Sharma 2010); "
        "PERSISTER_CHANG2022 (the pre-persister state of HER2+ breast cancer cells under HER2 kinase inhibitors) "
        "is the library's closest persister program, shown for another kinase inhibitor and tumour type. "
        "Genomic resistance (EGFR C797S, MET amplification) is not visible in expression. Expression of EGFR cannot reveal the "
        "activating mutation the drug needs.",
        sources=["Soria2018", "Sharma2010", "Holohan2013"],
    ),
    # ================================ targeted: HER2
    T(
        "trastuzumab",
        "Trastuzumab",
        "targeted",
        "her2",
        "monoclonal_antibody",
        indication="HER2-positive breast and gastric cancer",
        mechanism="Humanised IgG1 antibody against the HER2 extracellular domain that inhibits HER2 signalling and mediates antibody-dependent cellular cytotoxicity.",
        molecular_targets=["ERBB2"],
        targets=["ERBB2"],
        required_genes=["PTEN"],
        resistance_programs=["HALLMARK_PI3K_AKT_MTOR_SIGNALING"],
        evidence="Added to chemotherapy it improved survival in HER2-overexpressing metastatic breast cancer (Slamon "
        "2001). HER2 overexpression usually persists at progression while PI3K-AKT activation (PTEN loss, "
        "PIK3CA mutation) is frequent in trastuzumab-refractory tumours (Chandarlapaty 2012). "
        "PTEN is a required gene: its loss confers resistance.",
        normal_expression_note="ERBB2 in cardiomyocytes underlies trastuzumab cardiotoxicity.",
        sources=["Slamon2001", "Chandarlapaty2012"],
    ),
    T(
        "pertuzumab",
        "Pertuzumab",
        "targeted",
        "her2",
        "monoclonal_antibody",
        indication="HER2-positive breast cancer (with trastuzumab and a taxane)",
        mechanism="Humanised antibody that binds the HER2 dimerisation domain and blocks ligand-induced HER2-HER3 heterodimerisation.",
        molecular_targets=["ERBB2"],
        targets=["ERBB2"],
        resistance_programs=["HALLMARK_PI3K_AKT_MTOR_SIGNALING"],
        evidence="Added to trastuzumab and docetaxel it prolonged progression-free survival in HER2-positive metastatic "
        "breast cancer (CLEOPATRA; Baselga 2012); PI3K-AKT activation is frequent in tumours refractory to "
        "HER2 antibodies (Chandarlapaty 2012).",
        sources=["Baselga2012", "Chandarlapaty2012"],
    ),
    T(
        "tucatinib",
        "Tucatinib",
        "targeted",
        "her2",
        "small_molecule",
        indication="HER2-positive metastatic breast cancer, including brain metastases",
        mechanism="Oral tyrosine-kinase inhibitor highly selective for HER2 over EGFR.",
        molecular_targets=["ERBB2"],
        targets=["ERBB2"],
        resistance_programs=["HALLMARK_PI3K_AKT_MTOR_SIGNALING"],
        evidence="Added to trastuzumab and capecitabine it improved progression-free and overall survival (HER2CLIMB; "
        "Murthy 2020); PI3K-AKT activation is frequent in HER2-therapy-refractory tumours (Chandarlapaty 2012).",
        sources=["Murthy2020", "Chandarlapaty2012"],
    ),
    # ================================ targeted: BRAF/MEK
    T(
        "vemurafenib",
        "Vemurafenib",
        "targeted",
        "braf_mek",
        "small_molecule",
        indication="BRAF V600-mutant melanoma",
        mechanism="Selective inhibitor of the BRAF V600E kinase that blocks MAPK signalling in BRAF-mutant cells.",
        molecular_targets=["BRAF"],
        targets=["BRAF"],
        requires_mutation="BRAF V600E/K",
        resistance_genes=["AXL", "NGFR", "EGFR"],
        evidence="Improved survival in BRAF V600E melanoma (BRIM-3; Chapman 2011). Rare melanoma cells expressing "
        "EGFR, AXL, NGFR and other resistance markers survive vemurafenib and are reprogrammed into stable "
        "resistance (Shaffer 2017); these markers are scored as resistance genes (the library has no checked "
        "gene list of those cells, so no resistance program is named). BRAF is "
        "expressed by most cells: expression cannot reveal the V600 mutation the drug needs.",
        normal_expression_note="Paradoxical MAPK activation in BRAF wild-type cells causes cutaneous squamous cell carcinomas.",
        sources=["Chapman2011", "Shaffer2017", "Holohan2013"],
    ),
    T(
        "dabrafenib_trametinib",
        "Dabrafenib + trametinib",
        "targeted",
        "braf_mek",
        "small_molecule",
        indication="BRAF V600-mutant melanoma, non-small-cell lung and anaplastic thyroid cancer",
        mechanism="Combined inhibition of mutant BRAF (dabrafenib) and MEK1/2 (trametinib) for deeper, more durable MAPK-pathway blockade.",
        molecular_targets=["BRAF", "MAP2K1", "MAP2K2"],
        targets=["BRAF"],
        requires_mutation="BRAF V600E/K",
        resistance_genes=["AXL", "NGFR", "EGFR"],
        evidence="The combination prolonged progression-free survival over dabrafenib alone (COMBI-d; Long 2014). "
        "Pre-resistant EGFR/AXL/NGFR-high melanoma cells escape MAPK inhibition (Shaffer 2017, shown for "
        "vemurafenib); these markers are scored as resistance genes. Target = BRAF, but the V600 "
        "mutation is what matters and expression cannot see it.",
        sources=["Long2014", "Shaffer2017", "Holohan2013"],
    ),
    # ================================ targeted: PARP
    T(
        "olaparib",
        "Olaparib",
        "targeted",
        "parp",
        "small_molecule",
        indication="BRCA-mutated or HRD-positive ovarian, breast, prostate and pancreatic cancer",
        mechanism="Inhibits and traps PARP1/2 on DNA, killing cells that lack homologous-recombination repair (synthetic lethality).",
        molecular_targets=["PARP1", "PARP2"],
        targets=["PARP1"],
        requires_mutation="BRCA1/BRCA2 mutation or homologous-recombination deficiency (indication-dependent)",
        resistance_programs=DNA_REPAIR,
        evidence="Synthetic lethality with BRCA loss (Farmer 2005; Lord 2017); improved progression-free survival in "
        "germline BRCA-mutant breast cancer (OlympiAD; Robson 2017). Restored homologous recombination is "
        "the main resistance route (Lord 2017); the DNA-repair programs are an expression proxy for it. "
        "HRD and BRCA status are genomic; no HRD expression program is in the signature library.",
        sources=["Robson2017", "Farmer2005", "Lord2017"],
    ),
    T(
        "niraparib",
        "Niraparib",
        "targeted",
        "parp",
        "small_molecule",
        indication="ovarian cancer maintenance after response to platinum",
        mechanism="Selective PARP1/2 inhibitor that traps PARP on DNA, lethal to homologous-recombination-deficient cells.",
        molecular_targets=["PARP1", "PARP2"],
        targets=["PARP1"],
        requires_mutation="greatest benefit with germline BRCA mutation or HRD; benefit also without",
        resistance_programs=DNA_REPAIR,
        evidence="Prolonged progression-free survival as maintenance in platinum-sensitive recurrent ovarian cancer, "
        "in both the germline-BRCA and the non-germline-BRCA cohorts, largest in the former (NOVA; Mirza 2016); "
        "resistance by restored homologous recombination "
        "(Lord 2017).",
        sources=["Mirza2016", "Lord2017"],
    ),
    # ================================ targeted: CDK4/6
    T(
        "palbociclib",
        "Palbociclib",
        "targeted",
        "cdk4_6",
        "small_molecule",
        indication="HR-positive, HER2-negative advanced breast cancer (with endocrine therapy)",
        mechanism="Selective CDK4/6 inhibitor that prevents RB1 phosphorylation and arrests cells in G1.",
        molecular_targets=["CDK4", "CDK6"],
        targets=["ESR1"],
        required_genes=["RB1"],
        resistance_genes=["CCNE1"],
        sensitivity_programs=["HALLMARK_ESTROGEN_RESPONSE_EARLY"],
        evidence="Added to letrozole it prolonged progression-free survival (PALOMA-2; Finn 2016). A functional RB1 is "
        "required for G1 arrest and RB1 loss confers resistance (Asghar 2015); high CCNE1 mRNA went with less "
        "benefit in PALOMA-3 (Turner 2019). CDK4 and CDK6 are expressed in nearly every cell, so the expression "
        "the drug needs is that of ER: luminal ER-positive lines are the most sensitive and basal lines resist "
        "(Finn 2009); it is used in ER-positive disease with endocrine therapy, hence also the estrogen-response "
        "program.",
        sources=["Finn2016", "Asghar2015", "Turner2019", "Finn2009"],
    ),
    T(
        "ribociclib",
        "Ribociclib",
        "targeted",
        "cdk4_6",
        "small_molecule",
        indication="HR-positive, HER2-negative advanced and early breast cancer (with endocrine therapy)",
        mechanism="Selective CDK4/6 inhibitor that blocks RB1 phosphorylation and G1-S progression.",
        molecular_targets=["CDK4", "CDK6"],
        targets=["ESR1"],
        required_genes=["RB1"],
        resistance_genes=["CCNE1"],
        sensitivity_programs=["HALLMARK_ESTROGEN_RESPONSE_EARLY"],
        evidence="Added to letrozole it prolonged progression-free survival (MONALEESA-2; Hortobagyi 2016); RB1 "
        "requirement and cyclin E-CDK2 bypass are class-wide (Asghar 2015; Turner 2019); ER expression marks the "
        "sensitive luminal cells (Finn 2009).",
        sources=["Hortobagyi2016", "Asghar2015", "Turner2019", "Finn2009"],
    ),
    T(
        "abemaciclib",
        "Abemaciclib",
        "targeted",
        "cdk4_6",
        "small_molecule",
        indication="HR-positive, HER2-negative advanced and high-risk early breast cancer",
        mechanism="CDK4/6 inhibitor (more potent on CDK4) given continuously, arresting RB1-proficient cells in G1.",
        molecular_targets=["CDK4", "CDK6"],
        targets=["ESR1"],
        required_genes=["RB1"],
        resistance_genes=["CCNE1"],
        sensitivity_programs=["HALLMARK_ESTROGEN_RESPONSE_EARLY"],
        evidence="Added to a non-steroidal aromatase inhibitor it prolonged progression-free survival (MONARCH 3; "
        "Goetz 2017); RB1 requirement and cyclin E bypass as for the class (Asghar 2015; Turner 2019); ER "
        "expression marks the sensitive luminal cells (Finn 2009).",
        sources=["Goetz2017", "Asghar2015", "Turner2019", "Finn2009"],
    ),
    # ================================ targeted: endocrine (ER)
    T(
        "tamoxifen",
        "Tamoxifen",
        "targeted",
        "endocrine_er",
        "small_molecule",
        indication="ER-positive breast cancer (adjuvant and metastatic; pre- and postmenopausal)",
        mechanism="Selective estrogen-receptor modulator that competitively blocks estrogen binding to ER-alpha in breast tissue.",
        molecular_targets=["ESR1"],
        targets=["ESR1"],
        resistance_genes=["ERBB2"],
        sensitivity_programs=["HALLMARK_ESTROGEN_RESPONSE_EARLY", "HALLMARK_ESTROGEN_RESPONSE_LATE"],
        resistance_programs=["HALLMARK_PI3K_AKT_MTOR_SIGNALING"],
        evidence="Benefit is confined to ER-positive disease (EBCTCG 2011). Growth-factor receptor (HER2/EGFR) and "
        "PI3K-AKT-mTOR signalling are established escape routes (Osborne 2011; Hanker 2020).",
        sources=["EBCTCG2011", "Osborne2011", "Hanker2020"],
    ),
    T(
        "letrozole",
        "Letrozole",
        "targeted",
        "endocrine_er",
        "small_molecule",
        indication="ER-positive breast cancer in postmenopausal women",
        mechanism="Non-steroidal aromatase inhibitor that blocks estrogen synthesis, depriving ER-positive cells of ligand.",
        molecular_targets=["CYP19A1"],
        targets=["ESR1"],
        requires_mutation="ESR1 ligand-binding-domain mutations (acquired) confer resistance",
        sensitivity_programs=["HALLMARK_ESTROGEN_RESPONSE_EARLY", "HALLMARK_ESTROGEN_RESPONSE_LATE"],
        resistance_programs=["HALLMARK_PI3K_AKT_MTOR_SIGNALING"],
        evidence="Improved disease-free survival over tamoxifen in postmenopausal early breast cancer (BIG 1-98, 2005). "
        "The drug acts on aromatase (CYP19A1) but needs ER-positive tumour cells; ESR1 mutations and PI3K "
        "signalling drive resistance (Hanker 2020). ESR1 mutations cannot be seen in expression data.",
        sources=["BIG2005", "Osborne2011", "Hanker2020"],
    ),
    T(
        "fulvestrant",
        "Fulvestrant",
        "targeted",
        "endocrine_er",
        "small_molecule",
        indication="HR-positive advanced breast cancer in postmenopausal women",
        mechanism="Selective estrogen-receptor degrader that binds ER-alpha, blocks its dimerisation and targets it for degradation.",
        molecular_targets=["ESR1"],
        targets=["ESR1"],
        sensitivity_programs=["HALLMARK_ESTROGEN_RESPONSE_EARLY", "HALLMARK_ESTROGEN_RESPONSE_LATE"],
        resistance_programs=["HALLMARK_PI3K_AKT_MTOR_SIGNALING"],
        evidence="Prolonged progression-free survival over anastrozole in endocrine-naive advanced disease (FALCON; "
        "Robertson 2016); resistance through growth-factor and PI3K signalling (Hanker 2020).",
        sources=["Robertson2016", "Osborne2011", "Hanker2020"],
    ),
    # ================================ targeted: endocrine (AR)
    T(
        "enzalutamide",
        "Enzalutamide",
        "targeted",
        "endocrine_ar",
        "small_molecule",
        indication="castration-resistant and castration-sensitive prostate cancer",
        mechanism="Androgen-receptor antagonist that blocks androgen binding, AR nuclear translocation and AR binding to DNA.",
        molecular_targets=["AR"],
        targets=["AR"],
        resistance_genes=["NR3C1"],
        sensitivity_programs=["HALLMARK_ANDROGEN_RESPONSE"],
        resistance_programs=["STEMNESS_CANCERSEA", "EMT_CANCERSEA"],
        evidence="Improved survival after docetaxel (AFFIRM; Scher 2012). Glucocorticoid-receptor (NR3C1) upregulation "
        "bypasses AR blockade and lineage plasticity towards AR-independent states confers resistance "
        "(Watson 2015); AR-V7 splice variants lack the ligand-binding domain "
        "(Antonarakis 2014) and are not distinguished from full-length AR in gene-level counts (Watson 2015).",
        sources=["Scher2012", "Watson2015", "Antonarakis2014"],
    ),
    T(
        "abiraterone",
        "Abiraterone acetate",
        "targeted",
        "endocrine_ar",
        "small_molecule",
        indication="metastatic castration-resistant and castration-sensitive prostate cancer (with prednisone)",
        mechanism="Irreversible CYP17A1 inhibitor that blocks androgen synthesis in testes, adrenal glands and tumour, depriving AR of ligand.",
        molecular_targets=["CYP17A1"],
        targets=["AR"],
        sensitivity_programs=["HALLMARK_ANDROGEN_RESPONSE"],
        resistance_programs=["STEMNESS_CANCERSEA", "EMT_CANCERSEA"],
        evidence="Improved survival after docetaxel (de Bono 2011). Needs AR-dependent tumour cells; AR-V7 "
        "(Antonarakis 2014) and AR-independent lineage plasticity (Watson 2015) confer resistance.",
        sources=["deBono2011", "Watson2015", "Antonarakis2014"],
    ),
    # ================================ targeted: KRAS G12C
    T(
        "sotorasib",
        "Sotorasib",
        "targeted",
        "kras_g12c",
        "small_molecule",
        indication="KRAS G12C-mutant non-small-cell lung cancer",
        mechanism="Covalent inhibitor that locks KRAS G12C in its inactive GDP-bound state.",
        molecular_targets=["KRAS"],
        targets=["KRAS"],
        requires_mutation="KRAS G12C",
        sensitivity_programs=["HALLMARK_KRAS_SIGNALING_UP"],
        evidence="Durable responses in previously treated KRAS G12C NSCLC (CodeBreaK 100; Skoulidis 2021). Covalent "
        "targeting of the switch-II pocket (Ostrem 2013). Acquired resistance through secondary KRAS and "
        "bypass RTK/MAPK alterations and histological transformation (Awad 2021), mostly genomic. "
        "Expression cannot reveal the G12C mutation.",
        sources=["Skoulidis2021", "Ostrem2013", "Awad2021"],
    ),
    T(
        "adagrasib",
        "Adagrasib",
        "targeted",
        "kras_g12c",
        "small_molecule",
        indication="KRAS G12C-mutant non-small-cell lung and colorectal cancer",
        mechanism="Covalent, irreversible inhibitor of GDP-bound KRAS G12C with a long half-life.",
        molecular_targets=["KRAS"],
        targets=["KRAS"],
        requires_mutation="KRAS G12C",
        sensitivity_programs=["HALLMARK_KRAS_SIGNALING_UP"],
        evidence="Objective responses in previously treated KRAS G12C NSCLC (KRYSTAL-1; Janne 2022); acquired "
        "resistance mechanisms were mapped in adagrasib-treated patients (Awad 2021). Expression cannot reveal "
        "the G12C mutation.",
        sources=["Janne2022", "Ostrem2013", "Awad2021"],
    ),
    # ================================ targeted: angiogenesis
    T(
        "bevacizumab",
        "Bevacizumab",
        "targeted",
        "angiogenesis",
        "monoclonal_antibody",
        indication="colorectal, lung, ovarian, cervical, renal cancer and glioblastoma; hepatocellular carcinoma with atezolizumab",
        mechanism="Humanised antibody that neutralises circulating VEGF-A and so inhibits tumour angiogenesis.",
        molecular_targets=["VEGFA"],
        targets=["VEGFA"],
        target_compartment="tme",
        sensitivity_programs=["HALLMARK_ANGIOGENESIS", "ANGIOGENESIS_CANCERSEA"],
        resistance_programs=["HALLMARK_HYPOXIA", "HYPOXIA_CANCERSEA"],
        evidence="Added to IFL chemotherapy it improved survival in metastatic colorectal cancer (Hurwitz 2004; "
        "Ferrara 2004). VEGF-A is secreted by tumour, stromal and myeloid cells, so the target is scored "
        "across the microenvironment. Hypoxia-induced alternative pro-angiogenic signals mediate evasive "
        "resistance (Bergers 2008).",
        sources=["Hurwitz2004", "Ferrara2004", "Bergers2008"],
    ),
    T(
        "ramucirumab",
        "Ramucirumab",
        "targeted",
        "angiogenesis",
        "monoclonal_antibody",
        indication="gastric/gastro-oesophageal junction, lung, colorectal and hepatocellular cancer",
        mechanism="Human IgG1 antibody against VEGFR2 (KDR) that blocks VEGF ligand binding on endothelial cells.",
        molecular_targets=["KDR"],
        targets=["KDR"],
        target_compartment="stroma",
        sensitivity_programs=["HALLMARK_ANGIOGENESIS", "ANGIOGENESIS_CANCERSEA"],
        resistance_programs=["HALLMARK_HYPOXIA", "HYPOXIA_CANCERSEA"],
        evidence="Improved survival as monotherapy in previously treated gastric cancer (REGARD; Fuchs 2014). KDR is "
        "expressed by tumour endothelium; evasive resistance as for the anti-angiogenic class (Bergers 2008).",
        sources=["Fuchs2014", "Bergers2008"],
    ),
    # ================================ antibody-drug conjugates
    T(
        "trastuzumab_deruxtecan",
        "Trastuzumab deruxtecan (T-DXd)",
        "adc",
        "adc",
        "antibody_drug_conjugate",
        indication="HER2-positive and HER2-low breast cancer; HER2-mutant lung and HER2-positive gastric cancer",
        mechanism="Anti-HER2 antibody carrying a membrane-permeable topoisomerase I inhibitor (DXd) at a high drug-to-antibody ratio, with bystander killing.",
        molecular_targets=["ERBB2"],
        targets=["ERBB2"],
        payload="deruxtecan (DXd; topoisomerase I inhibitor)",
        sensitivity_programs=["TIROSH_G2M"],
        resistance_programs=["DRUG_EFFLUX_ABC_CORE"],
        evidence="Active even in HER2-low (IHC 1+ or 2+/ISH-negative) breast cancer (DESTINY-Breast04; Modi 2022), so low "
        "ERBB2 expression suffices; the bystander payload reaches neighbouring antigen-negative cells. "
        "Target loss, impaired internalisation and payload efflux are ADC resistance routes (Drago 2021).",
        normal_expression_note="Interstitial lung disease is the dose-limiting toxicity.",
        sources=["Modi2022", "Drago2021"],
    ),
    T(
        "trastuzumab_emtansine",
        "Trastuzumab emtansine (T-DM1)",
        "adc",
        "adc",
        "antibody_drug_conjugate",
        indication="HER2-positive breast cancer",
        mechanism="Trastuzumab conjugated through a non-cleavable linker to the maytansinoid microtubule inhibitor DM1.",
        molecular_targets=["ERBB2"],
        targets=["ERBB2"],
        payload="emtansine (DM1; microtubule inhibitor)",
        resistance_genes=["ABCB1"],
        sensitivity_programs=["TIROSH_G2M"],
        resistance_programs=["DRUG_EFFLUX_ABC_CORE"],
        evidence="Improved progression-free and overall survival over lapatinib-capecitabine in HER2-positive "
        "metastatic breast cancer (EMILIA; Verma 2012). Needs high HER2; maytansinoid payloads are "
        "P-glycoprotein substrates and efflux is an ADC resistance route (Drago 2021).",
        sources=["Verma2012", "Drago2021"],
    ),
    T(
        "sacituzumab_govitecan",
        "Sacituzumab govitecan",
        "adc",
        "adc",
        "antibody_drug_conjugate",
        indication="triple-negative and HR-positive/HER2-negative breast cancer; urothelial carcinoma",
        mechanism="Anti-TROP2 antibody linked by a hydrolysable linker to SN-38, the active topoisomerase I-inhibiting metabolite of irinotecan.",
        molecular_targets=["TACSTD2"],
        targets=["TACSTD2"],
        payload="SN-38 (topoisomerase I inhibitor)",
        sensitivity_programs=["TIROSH_G2M"],
        resistance_programs=["DRUG_EFFLUX_ABC_CORE"],
        evidence="Improved progression-free and overall survival in pretreated metastatic triple-negative breast cancer "
        "(ASCENT; Bardia 2021). Target loss and payload efflux are ADC resistance routes (Drago 2021).",
        normal_expression_note="TROP2 (TACSTD2) is expressed by many normal epithelia.",
        sources=["Bardia2021", "Drago2021"],
    ),
    T(
        "enfortumab_vedotin",
        "Enfortumab vedotin",
        "adc",
        "adc",
        "antibody_drug_conjugate",
        indication="locally advanced or metastatic urothelial carcinoma",
        mechanism="Anti-Nectin-4 antibody linked to the microtubule-disrupting agent monomethyl auristatin E (MMAE).",
        molecular_targets=["NECTIN4"],
        targets=["NECTIN4"],
        payload="monomethyl auristatin E (MMAE; microtubule inhibitor)",
        resistance_genes=["ABCB1"],
        sensitivity_programs=["TIROSH_G2M"],
        resistance_programs=["DRUG_EFFLUX_ABC_CORE"],
        evidence="Improved overall survival over chemotherapy in pretreated urothelial carcinoma (EV-301; Powles 2021); "
        "Nectin-4 is highly expressed in urothelial cancer (Challita-Eid 2016). MMAE is a P-glycoprotein "
        "substrate; target loss and payload efflux are ADC resistance routes (Drago 2021).",
        normal_expression_note="Nectin-4 in skin keratinocytes underlies the skin toxicity.",
        sources=["Powles2021", "ChallitaEid2016", "Drago2021"],
    ),
    T(
        "mirvetuximab_soravtansine",
        "Mirvetuximab soravtansine",
        "adc",
        "adc",
        "antibody_drug_conjugate",
        indication="folate receptor alpha-high, platinum-resistant ovarian cancer",
        mechanism="Anti-folate receptor alpha antibody conjugated to the maytansinoid microtubule inhibitor DM4.",
        molecular_targets=["FOLR1"],
        targets=["FOLR1"],
        payload="soravtansine (DM4; microtubule inhibitor)",
        sensitivity_programs=["TIROSH_G2M"],
        resistance_programs=["DRUG_EFFLUX_ABC_CORE"],
        evidence="Improved progression-free and overall survival over chemotherapy in FR-alpha-high platinum-resistant "
        "ovarian cancer (MIRASOL; Moore 2023); ADC resistance routes as reviewed by Drago 2021.",
        normal_expression_note="Ocular toxicity (keratopathy, blurred vision) is characteristic.",
        sources=["Moore2023", "Drago2021"],
    ),
    # ================================ cell therapy (CAR T)
    T(
        "tisagenlecleucel",
        "Tisagenlecleucel",
        "cell_therapy",
        "car_t",
        "car_t",
        indication="relapsed/refractory B-cell acute lymphoblastic leukaemia (up to 25 years) and large B-cell lymphoma",
        mechanism="Autologous T cells transduced with a CD19-directed chimeric antigen receptor (4-1BB costimulation) that kill CD19-expressing cells.",
        molecular_targets=["CD19"],
        targets=["CD19"],
        sensitivity_programs=["CYTOTOXIC_GUO2018"],
        resistance_programs=["MDSC_BAGAEV2021", "HALLMARK_INTERFERON_GAMMA_RESPONSE"],
        evidence="High remission rates in relapsed/refractory paediatric B-ALL (ELIANA; Maude 2018). CD19 loss by "
        "mutation or alternative splicing causes relapse (Sotillo 2015; Orlando 2018) - the loss is seen as "
        "absent target expression, but a splice isoform lacking the CAR epitope is not seen in gene-level "
        "counts. In large B-cell lymphoma, tumour interferon signalling and (blood) monocytic MDSCs went with "
        "failure (Jain 2021) and a T cell-infiltrated pre-treatment microenvironment with response (Scholler "
        "2022); these microenvironment programs were shown for axicabtagene ciloleucel and are carried over "
        "to CD19 CAR T cells as a class.",
        normal_expression_note="CD19 on normal B cells: expected B-cell aplasia.",
        sources=["Maude2018", "June2018", "Sotillo2015", "Orlando2018", "Jain2021", "Scholler2022"],
    ),
    T(
        "axicabtagene_ciloleucel",
        "Axicabtagene ciloleucel",
        "cell_therapy",
        "car_t",
        "car_t",
        indication="relapsed/refractory large B-cell and follicular lymphoma",
        mechanism="Autologous CD19-directed CAR T cells with CD28 costimulation.",
        molecular_targets=["CD19"],
        targets=["CD19"],
        sensitivity_programs=["CYTOTOXIC_GUO2018"],
        resistance_programs=["MDSC_BAGAEV2021", "HALLMARK_INTERFERON_GAMMA_RESPONSE"],
        evidence="Durable responses in refractory large B-cell lymphoma (ZUMA-1; Neelapu 2017). CD19 antigen loss "
        "(Orlando 2018), tumour interferon signalling and blood monocytic MDSCs (Jain 2021) went with failure; "
        "pre-treatment T-cell infiltration (Immunoscore, Immunosign 21) with response and survival (Scholler "
        "2022). CYTOTOXIC_GUO2018 stands in for Immunosign 21, which the library does not have.",
        normal_expression_note="CD19 on normal B cells: expected B-cell aplasia.",
        sources=["Neelapu2017", "June2018", "Orlando2018", "Jain2021", "Scholler2022"],
    ),
    T(
        "idecabtagene_vicleucel",
        "Idecabtagene vicleucel",
        "cell_therapy",
        "car_t",
        "car_t",
        indication="relapsed/refractory multiple myeloma",
        mechanism="Autologous CAR T cells directed against B-cell maturation antigen (BCMA, TNFRSF17) with 4-1BB costimulation.",
        molecular_targets=["TNFRSF17"],
        targets=["TNFRSF17"],
        evidence="Responses in heavily pretreated myeloma (KarMMa; Munshi 2021); biallelic BCMA loss causes "
        "resistance (Samur 2021).",
        normal_expression_note="BCMA is restricted to plasma cells and some mature B cells.",
        sources=["Munshi2021", "June2018", "Samur2021"],
    ),
    T(
        "ciltacabtagene_autoleucel",
        "Ciltacabtagene autoleucel",
        "cell_therapy",
        "car_t",
        "car_t",
        indication="relapsed/refractory multiple myeloma",
        mechanism="Autologous CAR T cells with two BCMA-binding single-domain antibodies and 4-1BB costimulation.",
        molecular_targets=["TNFRSF17"],
        targets=["TNFRSF17"],
        evidence="Deep, durable responses in heavily pretreated myeloma (CARTITUDE-1; Berdeja 2021); BCMA loss is a "
        "resistance mechanism of BCMA-directed CAR T cells (Samur 2021).",
        normal_expression_note="BCMA is restricted to plasma cells and some mature B cells.",
        sources=["Berdeja2021", "June2018", "Samur2021"],
    ),
    # ================================ immunotherapy: T-cell engagers
    T(
        "teclistamab",
        "Teclistamab",
        "immunotherapy",
        "t_cell_engager",
        "bispecific_antibody",
        indication="relapsed/refractory multiple myeloma",
        mechanism="Bispecific antibody binding BCMA on myeloma cells and CD3 on T cells, redirecting the patient's T cells to kill the myeloma cells.",
        molecular_targets=["TNFRSF17", "CD3E"],
        targets=["TNFRSF17"],
        evidence="Deep responses in triple-class-exposed myeloma (MajesTEC-1; Moreau 2022); needs BCMA on the tumour "
        "(target) and endogenous T cells; BCMA loss abolishes BCMA-directed therapy (Samur 2021).",
        normal_expression_note="BCMA is restricted to plasma cells and some mature B cells.",
        sources=["Moreau2022", "Samur2021"],
    ),
    T(
        "blinatumomab",
        "Blinatumomab",
        "immunotherapy",
        "t_cell_engager",
        "bispecific_antibody",
        indication="B-cell precursor acute lymphoblastic leukaemia (relapsed/refractory and MRD-positive)",
        mechanism="Bispecific T-cell engager (BiTE) linking CD19 on B cells with CD3 on T cells.",
        molecular_targets=["CD19", "CD3E"],
        targets=["CD19"],
        evidence="Improved survival over chemotherapy in relapsed/refractory B-ALL (TOWER; Kantarjian 2017); CD19 loss "
        "is a shared escape route of CD19-directed therapies (Sotillo 2015).",
        normal_expression_note="CD19 on normal B cells: expected B-cell depletion.",
        sources=["Kantarjian2017", "Sotillo2015"],
    ),
    # ================================ immunotherapy: checkpoint blockade
    T(
        "pembrolizumab",
        "Pembrolizumab",
        "immunotherapy",
        "anti_pd1",
        "monoclonal_antibody",
        indication="melanoma, NSCLC, head and neck, urothelial, MSI-high/dMMR and many other cancers",
        mechanism="Humanised IgG4 antibody against PD-1 on T cells that blocks its engagement by PD-L1/PD-L2 and releases T-cell inhibition.",
        molecular_targets=["PDCD1"],
        targets=["PDCD1"],
        target_compartment="immune",
        sensitivity_genes=["CD274", "PDCD1LG2"],
        sensitivity_programs=ICB_SENSITIVITY,
        resistance_programs=ICB_RESISTANCE,
        evidence="Superior to chemotherapy in NSCLC with PD-L1 on at least 50% of tumour cells (KEYNOTE-024; Reck "
        "2016); pre-existing PD-1+/PD-L1+ CD8 T cells at the invasive margin predict response (Tumeh 2014). "
        + ICB_EVIDENCE,
        sources=["Reck2016", "Tumeh2014", *ICB_SOURCES],
    ),
    T(
        "nivolumab",
        "Nivolumab",
        "immunotherapy",
        "anti_pd1",
        "monoclonal_antibody",
        indication="melanoma, NSCLC, renal, head and neck, urothelial, oesophageal and other cancers",
        mechanism="Human IgG4 antibody against PD-1 that blocks PD-L1/PD-L2 binding and restores T-cell activity.",
        molecular_targets=["PDCD1"],
        targets=["PDCD1"],
        target_compartment="immune",
        sensitivity_genes=["CD274", "PDCD1LG2"],
        sensitivity_programs=ICB_SENSITIVITY,
        resistance_programs=ICB_RESISTANCE,
        evidence="Improved progression-free survival over ipilimumab in untreated melanoma (CheckMate 067; Larkin 2015). "
        + ICB_EVIDENCE,
        sources=["Larkin2015", *ICB_SOURCES],
    ),
    T(
        "atezolizumab",
        "Atezolizumab",
        "immunotherapy",
        "anti_pdl1",
        "monoclonal_antibody",
        indication="NSCLC, small-cell lung cancer, hepatocellular carcinoma (with bevacizumab) and others",
        mechanism="Humanised IgG1 antibody (Fc-engineered) against PD-L1 that blocks its binding to PD-1 and B7.1.",
        molecular_targets=["CD274"],
        targets=["CD274"],
        target_compartment="tme",
        sensitivity_programs=ICB_SENSITIVITY,
        resistance_programs=ICB_RESISTANCE,
        evidence="Improved survival over docetaxel in previously treated NSCLC (OAK; Rittmeyer 2017). PD-L1 is "
        "expressed by tumour and immune cells, so the target is scored across the microenvironment; TGF-beta "
        "signalling in fibroblasts with T-cell exclusion went with non-response to atezolizumab in urothelial "
        "cancer (Mariathasan 2018). " + ICB_EVIDENCE,
        sources=["Rittmeyer2017", *ICB_SOURCES],
    ),
    T(
        "durvalumab",
        "Durvalumab",
        "immunotherapy",
        "anti_pdl1",
        "monoclonal_antibody",
        indication="stage III NSCLC after chemoradiotherapy; biliary tract, small-cell lung and other cancers",
        mechanism="Human IgG1 antibody (Fc-engineered) against PD-L1 that blocks its binding to PD-1 and CD80.",
        molecular_targets=["CD274"],
        targets=["CD274"],
        target_compartment="tme",
        sensitivity_programs=ICB_SENSITIVITY,
        resistance_programs=ICB_RESISTANCE,
        evidence="Consolidation after chemoradiotherapy prolonged progression-free survival in stage III NSCLC "
        "(PACIFIC; Antonia 2017). " + ICB_EVIDENCE,
        sources=["Antonia2017", *ICB_SOURCES],
    ),
    T(
        "ipilimumab",
        "Ipilimumab",
        "immunotherapy",
        "anti_ctla4",
        "monoclonal_antibody",
        indication="melanoma; with nivolumab in renal cell, MSI-high colorectal, lung and other cancers",
        mechanism="Human IgG1 antibody against CTLA-4 that blocks its competition with CD28 for CD80/CD86 and enhances T-cell priming.",
        molecular_targets=["CTLA4"],
        targets=["CTLA4"],
        target_compartment="immune",
        sensitivity_programs=["ROONEY_CYT", "MHC1_APM_SENBABAOGLU", "AYERS_IFNG_6"],
        resistance_programs=["HALLMARK_WNT_BETA_CATENIN_SIGNALING", "HALLMARK_TGF_BETA_SIGNALING"],
        evidence="First therapy to improve survival in metastatic melanoma (Hodi 2010); CTLA-4 blockade enhances "
        "antitumour immunity (Leach 1996). Cytolytic-marker expression and neoantigen load went with benefit "
        "(Van Allen 2015); tumour beta-catenin signalling excluded T cells and caused resistance to "
        "anti-CTLA-4/anti-PD-L1 in mice (Spranger 2015). CTLA4 is expressed mainly by Treg and activated T cells.",
        sources=["Hodi2010", "Leach1996", "VanAllen2015", "Spranger2015", "Sharma2017", "Pardoll2012"],
    ),
    T(
        "nivolumab_relatlimab",
        "Nivolumab + relatlimab",
        "immunotherapy",
        "anti_lag3",
        "monoclonal_antibody",
        indication="untreated unresectable or metastatic melanoma",
        mechanism="Fixed-dose combination of an anti-LAG-3 antibody (relatlimab) with anti-PD-1 (nivolumab), relieving two inhibitory checkpoints on exhausted T cells.",
        molecular_targets=["LAG3", "PDCD1"],
        targets=["LAG3", "PDCD1"],
        target_logic="any",
        target_compartment="immune",
        sensitivity_genes=["CD274"],
        sensitivity_programs=ICB_SENSITIVITY,
        resistance_programs=ICB_RESISTANCE,
        evidence="Prolonged progression-free survival over nivolumab alone in untreated melanoma (RELATIVITY-047; "
        "Tawbi 2022); LAG-3 and PD-1 are co-expressed inhibitory receptors of exhausted T cells (Pardoll 2012). "
        + ICB_EVIDENCE,
        sources=["Tawbi2022", *ICB_SOURCES],
    ),
]

# Classes the feature request names: label -> predicate on an entry (used by validate() and the tests)
REQUIRED_CLASSES = {
    "platinum": lambda t: t["subclass"] == "platinum",
    "taxane": lambda t: t["subclass"] == "taxane",
    "anthracycline": lambda t: t["subclass"] == "anthracycline",
    "antimetabolite": lambda t: t["subclass"] == "antimetabolite",
    "EGFR": lambda t: t["subclass"] == "egfr",
    "HER2": lambda t: t["subclass"] == "her2",
    "BRAF/MEK": lambda t: t["subclass"] == "braf_mek",
    "PARP": lambda t: t["subclass"] == "parp",
    "CDK4/6": lambda t: t["subclass"] == "cdk4_6",
    "endocrine ER": lambda t: t["subclass"] == "endocrine_er",
    "endocrine AR": lambda t: t["subclass"] == "endocrine_ar",
    "KRAS G12C": lambda t: t["subclass"] == "kras_g12c",
    "angiogenesis": lambda t: t["subclass"] == "angiogenesis",
    "ADC ERBB2": lambda t: t["drug_class"] == "adc" and "ERBB2" in t["targets"],
    "ADC TACSTD2": lambda t: t["drug_class"] == "adc" and "TACSTD2" in t["targets"],
    "ADC NECTIN4": lambda t: t["drug_class"] == "adc" and "NECTIN4" in t["targets"],
    "cell therapy CD19": lambda t: t["drug_class"] == "cell_therapy" and "CD19" in t["targets"],
    "cell therapy BCMA": lambda t: t["drug_class"] == "cell_therapy" and "TNFRSF17" in t["targets"],
    "anti-PD-1": lambda t: t["subclass"] == "anti_pd1",
    "anti-PD-L1": lambda t: t["subclass"] == "anti_pdl1",
    "anti-CTLA-4": lambda t: t["subclass"] == "anti_ctla4",
    "anti-LAG-3": lambda t: t["subclass"] == "anti_lag3",
}

#: how the DOIs were verified (recorded per source in the ``check`` column)
DOI_CHECK = "doi_verified: DOI seen with this title in independent public copies (publisher pages or reference lists), 2026-11-27"
#: sources whose DOI was not re-checked here, with the reason (every other DOI was seen with its title)
DOI_NOTES = {
    "Robey2018": "doi_from_signature_library: the citation and DOI that signatures_sources.tsv carried until the library "
    "cited Gottesman 2002 for its efflux sets; not re-checked"
}


def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables, list columns ``;``-joined, in the order written to disk."""
    rows = []
    for t in THERAPIES:
        row = dict(t)
        for col in LIST_COLUMNS:
            row[col] = ";".join(dict.fromkeys(row[col]))
        rows.append(row)
    ther = pd.DataFrame(rows, columns=COLUMNS)
    used = list(dict.fromkeys(k for t in THERAPIES for k in t["sources"]))
    unknown = [k for k in used if k not in SOURCES]
    if unknown:
        raise SystemExit(f"source keys without an entry in SOURCES: {unknown}")
    src = pd.DataFrame(
        [(k, *SOURCES[k], DOI_NOTES.get(k, DOI_CHECK)) for k in SOURCES if k in used],
        columns=SOURCE_COLUMNS,
    )
    return ther, src


def write(out_dir: Path) -> tuple[Path, Path]:
    """Write ``therapies.tsv`` (with the version line) and ``therapies_sources.tsv`` into ``out_dir``."""
    ther, src = tables()
    out_dir.mkdir(parents=True, exist_ok=True)
    p_ther, p_src = out_dir / THERAPIES_FILE, out_dir / SOURCES_FILE
    with p_ther.open("w", encoding="utf-8", newline="") as fh:
        fh.write(f"# version: {VERSION}\n")
        ther.to_csv(fh, sep="\t", index=False, lineterminator="\n")
    src.to_csv(p_src, sep="\t", index=False, lineterminator="\n")
    return p_ther, p_src


def validate(out_dir: Path = DATA) -> None:
    """Format and content rules, read back from the written files."""
    p_ther = out_dir / THERAPIES_FILE
    first = p_ther.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# version: {VERSION}", first
    ther = pd.read_csv(p_ther, sep="\t", dtype=str, keep_default_na=False, skiprows=1)
    src = pd.read_csv(out_dir / SOURCES_FILE, sep="\t", dtype=str, keep_default_na=False)
    assert list(ther.columns) == COLUMNS and list(src.columns) == SOURCE_COLUMNS
    assert ther["name"].is_unique and src["source"].is_unique
    assert all(re.fullmatch(r"[a-z0-9_]+", n) for n in ther["name"])
    assert set(ther["drug_class"]) <= set(DRUG_CLASSES)
    assert set(ther["subclass"]) <= set(SUBCLASSES)
    assert set(ther["modality"]) <= set(MODALITIES)
    assert set(ther["target_compartment"]) <= set(COMPARTMENTS)
    assert ((ther["targets"] == "") == (ther["target_logic"] == "")).all()
    assert set(ther["target_logic"]) <= {"", "any", "all"}
    assert (ther[["display_name", "mechanism", "evidence", "indication", "sources"]] != "").all().all()
    genes = set(gene_table().index)
    for col in GENE_COLUMNS:
        for v in ther[col]:
            bad = [g for g in v.split(";") if g and g not in genes]
            assert not bad, (col, bad)
    meta_path = DATA / "signatures_meta.tsv"
    programs = set(pd.read_csv(meta_path, sep="\t", dtype=str, keep_default_na=False)["name"])
    for col in PROGRAM_COLUMNS:
        for v in ther[col]:
            bad = [p for p in v.split(";") if p and p not in programs]
            assert not bad, (col, bad)
    kinds = src.set_index("source")["kind"]
    assert set(kinds) <= set(SOURCE_KINDS)
    assert (src[["authors", "title", "journal", "year", "doi"]] != "").all().all()
    assert all(re.fullmatch(r"10\.\d{4,9}/\S+", d) for d in src["doi"])
    assert all(re.fullmatch(r"(19|20)\d\d", y) for y in src["year"])
    for name, s in zip(ther["name"], ther["sources"]):
        keys = s.split(";")
        assert set(keys) <= set(kinds.index), (name, set(keys) - set(kinds.index))
        assert kinds[keys[0]] == "trial", f"{name}: the first source must be the pivotal trial"
        assert any(kinds[k] != "trial" for k in keys), f"{name}: cite a mechanism/resistance paper too"
    assert len(ther) >= 30
    entries = [{**r, "targets": r["targets"].split(";")} for r in ther.to_dict("records")]
    missing = [label for label, pred in REQUIRED_CLASSES.items() if not any(pred(t) for t in entries)]
    assert not missing, missing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out-dir", type=Path, default=DATA, help="where to write the two TSVs (default: tmeatlas/_data)"
    )
    args = ap.parse_args(argv)
    write(args.out_dir)
    validate(args.out_dir)
    ther, src = tables()
    print(ther.groupby(["drug_class", "subclass"]).size().to_string())
    print(f"version {VERSION}: {len(ther)} therapies, {len(src)} sources; format checks passed")


if __name__ == "__main__":
    main()
