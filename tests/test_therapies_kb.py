"""The shipped therapy knowledge base (``tmeatlas/_data/therapies.tsv``; loader ``therapies`` in
``tmeatlas/datasets/_therapies.py``; built by ``data/build_therapies.py``).

Checks: the table loads and is versioned; every class the therapy-survival feature names is present
with biologically correct targets (including epigenetic, microenvironment, ADC and T-cell-engager
classes); target levels follow the labels (HER2 overexpression for trastuzumab, HER2-low for
trastuzumab deruxtecan); every program resolves in the signature library; every gene is a current
HGNC symbol of the gene table; every source resolves to a DOI whose check is recorded; users can add
and override entries and bad input raises a typed error; the curated TOML files are schema-checked and
the shipped files are exactly what the build script writes.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import tmeatlas as tm
from tmeatlas._resources import data_path, gene_table
from tmeatlas.datasets import _therapies as kb
from tmeatlas.datasets._therapies import therapies

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "data" / "build_therapies.py"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return therapies()


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("build_therapies", BUILD)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _has(table, **conds):
    mask = pd.Series(True, index=table.index)
    for col, val in conds.items():
        mask &= table[col].map(lambda v, val=val: val in v if isinstance(v, list) else v == val)
    return table[mask]


# ------------------------------------------------------------------------------------------------
# loading, version, shape
# ------------------------------------------------------------------------------------------------
def test_loads_tidy_and_versioned(table, build):
    assert list(table.columns) == kb.COLUMNS
    assert table["name"].is_unique and len(table) >= 80
    assert all(re.fullmatch(r"[a-z0-9_]+", n) for n in table["name"])
    assert table.attrs["version"] == build.VERSION
    assert re.fullmatch(r"\d{4}\.\d{2}\.\d+", table.attrs["version"])
    first = data_path(kb.THERAPIES_FILE).read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# version: {build.VERSION}"
    for col in kb.LIST_COLUMNS:
        assert all(isinstance(v, list) for v in table[col]), col
    assert (table["origin"] == "shipped").all()
    assert set(table["drug_class"]) == {
        "chemotherapy",
        "targeted",
        "epigenetic",
        "adc",
        "cell_therapy",
        "immunotherapy",
    }
    assert set(table["drug_class"]) <= set(kb.DRUG_CLASSES) and set(table["modality"]) <= set(kb.MODALITIES)
    assert set(table["target_compartment"]) <= set(kb.COMPARTMENTS)
    # targets and their logic go together; cytotoxic chemotherapy needs no target expression
    assert ((table["targets"].str.len() > 0) == (table["target_logic"] != "")).all()
    assert set(table["target_logic"]) <= {"", "any", "all"}
    # target_level goes with targets too: "any" or "high" when there are targets, empty otherwise
    assert ((table["targets"].str.len() > 0) == (table["target_level"] != "")).all()
    assert set(table["target_level"]) == {"", *kb.TARGET_LEVELS}
    assert (table[["display_name", "mechanism", "evidence", "indication", "citation"]] != "").all().all()


def test_species_other_than_human_is_refused():
    with pytest.raises(tm.InvalidParameterError, match="species"):
        therapies(species="mouse")


# ------------------------------------------------------------------------------------------------
# coverage: every class of the feature request, with the right targets
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("subclass", "gene"),
    [
        ("platinum", None), ("taxane", None), ("anthracycline", "TOP2A"), ("antimetabolite", None),
        ("egfr", "EGFR"), ("her2", "ERBB2"), ("braf_mek", "BRAF"), ("parp", "PARP1"), ("cdk4_6", "ESR1"),
        ("endocrine_er", "ESR1"), ("endocrine_ar", "AR"), ("kras_g12c", "KRAS"), ("angiogenesis", "VEGFA"),
        ("anti_pd1", "PDCD1"), ("anti_pdl1", "CD274"), ("anti_ctla4", "CTLA4"), ("anti_lag3", "LAG3"),
        ("hdac", None), ("ezh2", None), ("dnmt", None), ("bet", None), ("csf1r", "CSF1R"), ("tgfb", "TGFBR1"),
        ("cxcr4", "CXCR4"), ("fap", "FAP"), ("adenosine", "NT5E"), ("alk", "ALK"), ("ret", "RET"),
        ("ntrk", "NTRK1"), ("met", "MET"), ("kit_abl", "KIT"), ("bcl2", "BCL2"), ("pi3k", "ESR1"), ("mtor", None),
        ("t_cell_engager", "DLL3"),
    ],
)  # fmt: skip
def test_every_requested_class_is_present(table, subclass, gene):
    rows = _has(table, subclass=subclass)
    assert len(rows) >= 1, subclass
    if gene is not None:
        assert any(gene in t for t in rows["targets"]), (subclass, gene)


@pytest.mark.parametrize(
    ("drug_class", "gene"),
    [
        ("adc", "ERBB2"),
        ("adc", "TACSTD2"),
        ("adc", "NECTIN4"),
        ("cell_therapy", "CD19"),
        ("cell_therapy", "TNFRSF17"),
        ("adc", "F3"),
        ("adc", "TNFRSF8"),
        ("adc", "CD79B"),
        ("adc", "CD22"),
        ("adc", "CD33"),
        ("immunotherapy", "PMEL"),
        ("immunotherapy", "MS4A1"),
        ("immunotherapy", "GPRC5D"),
    ],
)
def test_adc_and_cell_therapy_antigens(table, drug_class, gene):
    assert len(_has(table, drug_class=drug_class, targets=gene)) >= 1


def test_known_targets_are_biologically_correct(table):
    t = table.set_index("name")
    expected = {
        "trastuzumab": ["ERBB2"], "trastuzumab_deruxtecan": ["ERBB2"], "sacituzumab_govitecan": ["TACSTD2"],
        "enfortumab_vedotin": ["NECTIN4"], "tisagenlecleucel": ["CD19"], "idecabtagene_vicleucel": ["TNFRSF17"],
        "teclistamab": ["TNFRSF17"], "cetuximab": ["EGFR"], "osimertinib": ["EGFR"], "dabrafenib_trametinib": ["BRAF"],
        "palbociclib": ["ESR1"], "enzalutamide": ["AR"], "sotorasib": ["KRAS"], "bevacizumab": ["VEGFA"],
        "pembrolizumab": ["PDCD1"], "atezolizumab": ["CD274"], "ipilimumab": ["CTLA4"],
        "pexidartinib": ["CSF1R"], "motixafortide": ["CXCR4"], "sibrotuzumab": ["FAP"], "oleclumab": ["NT5E"],
        "tisotumab_vedotin": ["F3"], "datopotamab_deruxtecan": ["TACSTD2"], "brentuximab_vedotin": ["TNFRSF8"],
        "polatuzumab_vedotin": ["CD79B"], "tebentafusp": ["PMEL"], "tarlatamab": ["DLL3"], "glofitamab": ["MS4A1"],
        "talquetamab": ["GPRC5D"], "lorlatinib": ["ALK"], "selpercatinib": ["RET"], "capmatinib": ["MET"],
        "larotrectinib": ["NTRK1", "NTRK2", "NTRK3"], "imatinib": ["KIT"], "venetoclax": ["BCL2"],
        "cemiplimab": ["PDCD1"], "dostarlimab": ["PDCD1"], "tremelimumab": ["CTLA4"],
        "vorinostat": [], "azacitidine": [], "decitabine": [], "everolimus": [],
    }  # fmt: skip
    for name, genes in expected.items():
        assert t.loc[name, "targets"] == genes, name
    # compartments: PD-1 on T cells, VEGF-A across the microenvironment, KDR on endothelium
    assert t.loc["pembrolizumab", "target_compartment"] == "immune"
    assert t.loc["bevacizumab", "target_compartment"] == "tme"
    assert t.loc["ramucirumab", "target_compartment"] == "stroma"
    assert t.loc["trastuzumab", "target_compartment"] == "malignant"
    # mutations are recorded, not claimed as expression properties
    assert "V600" in t.loc["dabrafenib_trametinib", "requires_mutation"]
    assert "G12C" in t.loc["sotorasib", "requires_mutation"]
    assert "EGFR" in t.loc["osimertinib", "requires_mutation"]
    # CDK4/6 needs RB1; cyclin E1 and efflux pumps confer resistance
    assert t.loc["palbociclib", "required_genes"] == ["RB1"]
    assert t.loc["palbociclib", "molecular_targets"] == ["CDK4", "CDK6"]  # binds CDK4/6, needs ER
    assert "CCNE1" in t.loc["palbociclib", "resistance_genes"]
    assert "ABCB1" in t.loc["paclitaxel", "resistance_genes"]
    assert "TYMS" in t.loc["fluorouracil", "resistance_genes"]
    # cytotoxic chemotherapy needs no target expression
    for name in ("cisplatin", "carboplatin", "paclitaxel", "fluorouracil", "gemcitabine"):
        assert t.loc[name, "targets"] == [], name
    assert t.loc["amivantamab", "molecular_targets"] == ["EGFR", "MET"]
    assert t.loc["tebentafusp", "required_genes"] == ["HLA-A", "B2M"]  # a peptide-HLA target needs MHC-I
    assert "HLA-A*02:01" in t.loc["tebentafusp", "requires_mutation"]
    assert t.loc["alpelisib", "required_genes"] == ["PTEN"]
    assert "MCL1" in t.loc["venetoclax", "resistance_genes"]


def test_epigenetic_and_microenvironment_classes(table):
    t = table.set_index("name")
    for name in ("vorinostat", "romidepsin", "panobinostat", "tazemetostat", "azacitidine", "decitabine"):
        assert t.loc[name, "drug_class"] == "epigenetic", name
    assert {"hdac", "ezh2", "dnmt", "bet"} <= set(table.loc[table["drug_class"] == "epigenetic", "subclass"])
    # microenvironment drugs that are not checkpoint blockade are judged by programs, not as ICB
    tme = table[table["subclass"].isin(["csf1r", "tgfb", "cxcr4", "fap", "adenosine"])]
    assert len(tme) >= 5
    assert (tme["drug_class"] == "targeted").all()
    assert (tme["target_compartment"] != "malignant").all()
    assert t.loc["pexidartinib", "target_compartment"] == "immune"  # CSF1R on macrophages
    assert t.loc["sibrotuzumab", "target_compartment"] == "stroma"  # FAP on fibroblasts
    assert t.loc["oleclumab", "target_compartment"] == "tme"
    # immunotherapies acting on immune cells stay checkpoint blockade
    for name in ("cemiplimab", "dostarlimab", "tremelimumab"):
        assert (t.loc[name, "drug_class"], t.loc[name, "target_compartment"]) == (
            "immunotherapy",
            "immune",
        ), name


# ------------------------------------------------------------------------------------------------
# target level: overexpression (high) or any expression (any), as the label or pivotal trial says
# ------------------------------------------------------------------------------------------------
def test_target_level_follows_the_label(table):
    t = table.set_index("name")
    assert t.loc["trastuzumab_deruxtecan", "target_level"] == "any"  # HER2-low (DESTINY-Breast04)
    assert "Modi2022" in t.loc["trastuzumab_deruxtecan", "sources"]
    for name in ("trastuzumab", "pertuzumab", "trastuzumab_emtansine"):  # HER2 IHC 3+ / ISH+
        assert t.loc[name, "target_level"] == "high", name
    for name in ("tamoxifen", "letrozole", "fulvestrant", "palbociclib"):  # ER >= 1%
        assert t.loc[name, "target_level"] == "any", name
        assert "Allison2020" in t.loc[name, "sources"], name
    for name in ("tisagenlecleucel", "teclistamab", "tebentafusp", "sacituzumab_govitecan"):
        assert t.loc[name, "target_level"] == "any", name
    # every level is explained in the evidence text
    with_targets = table[table["targets"].str.len() > 0]
    assert all(
        f"target_level {lvl}" in ev for lvl, ev in zip(with_targets["target_level"], with_targets["evidence"])
    )


# ------------------------------------------------------------------------------------------------
# cross-references: programs, genes, sources
# ------------------------------------------------------------------------------------------------
def test_every_program_resolves_in_the_signature_library(table):
    library = set(tm.datasets.signatures()["name"])
    used = {p for col in kb.PROGRAM_COLUMNS for progs in table[col] for p in progs}
    assert used, "no programs at all"
    assert used <= library, sorted(used - library)
    # the resistance programs named by the feature request are used
    for name in (
        "DRUG_EFFLUX_ABC_CORE",
        "PERSISTER_CHANG2022",
        "EMT_CANCERSEA",
        "STEMNESS_CANCERSEA",
        "QUIESCENCE_CANCERSEA",
        "DNA_REPAIR_CANCERSEA",
        "MHC1_APM_SENBABAOGLU",
    ):
        assert name in used, name


def test_every_gene_is_a_current_hgnc_symbol(table):
    genes = set(gene_table().index)
    for col in kb.GENE_COLUMNS:
        bad = sorted({g for v in table[col] for g in v} - genes)
        assert not bad, (col, bad)


def test_every_source_resolves_to_a_doi(table):
    src = pd.read_csv(data_path(kb.SOURCES_FILE), sep="\t", dtype=str, keep_default_na=False)
    assert src["source"].is_unique
    # how each DOI was checked is recorded, with a date
    assert all(re.match(r"doi_(verified|from_signature_library): .*", c) for c in src["check"])
    assert all(re.search(r"\d{4}-\d{2}-\d{2}$", c) for c in src["check"] if c.startswith("doi_verified"))
    assert all(re.fullmatch(r"10\.\d{4,9}/\S+", d) for d in src["doi"])
    kinds = src.set_index("source")["kind"]
    for name, keys, dois in zip(table["name"], table["sources"], table["dois"]):
        assert keys, name
        assert set(keys) <= set(kinds.index), (name, set(keys) - set(kinds.index))
        assert all(dois) and len(dois) == len(keys), name
        assert kinds[keys[0]] == "trial", f"{name}: pivotal trial first"
        assert any(kinds[k] != "trial" for k in keys), f"{name}: needs a mechanism/resistance source"
    # every listed source is cited by some therapy
    assert set(src["source"]) == {k for keys in table["sources"] for k in keys}


# ------------------------------------------------------------------------------------------------
# user additions and overrides
# ------------------------------------------------------------------------------------------------
def test_user_can_add_and_override(table):
    extra = {
        "trastuzumab": {"resistance_programs": ["EMT_CANCERSEA"], "evidence": "my note"},
        "my_adc": {
            "drug_class": "adc",
            "targets": "ERBB3;EGFR",
            "target_logic": "all",
            "sources": ["MyLab2025"],
        },
    }
    df = therapies(extra=extra)
    t = df.set_index("name")
    assert len(df) == len(table) + 1
    assert t.loc["trastuzumab", "resistance_programs"] == ["EMT_CANCERSEA"]
    assert t.loc["trastuzumab", "evidence"] == "my note"
    assert t.loc["trastuzumab", "targets"] == ["ERBB2"]  # untouched fields kept
    assert t.loc["trastuzumab", "origin"] == "user_override"
    assert t.loc["my_adc", "targets"] == ["ERBB3", "EGFR"] and t.loc["my_adc", "target_logic"] == "all"
    assert t.loc["my_adc", "origin"] == "user" and t.loc["my_adc", "dois"] == [""]
    assert t.loc["my_adc", "target_level"] == "any"  # the default when targets are given
    assert df.attrs["version"].endswith("+user")
    # the shipped entries are unchanged by a call with extra
    pd.testing.assert_frame_equal(therapies(), table)


def test_user_target_level():
    t = therapies(
        extra={
            "my_her2": {"drug_class": "targeted", "targets": ["ERBB2"], "target_level": "high"},
            "trastuzumab_deruxtecan": {"target_level": "high"},
            "paclitaxel": {"targets": []},
        }
    ).set_index("name")
    assert t.loc["my_her2", "target_level"] == "high"
    assert t.loc["trastuzumab_deruxtecan", "target_level"] == "high"
    assert t.loc["paclitaxel", "target_level"] == ""


def test_user_entries_as_a_dataframe():
    extra = pd.DataFrame(
        {"name": ["my_ab", "cetuximab"], "drug_class": ["targeted", None], "targets": ["MET", None],
         "target_compartment": ["malignant", "malignant"]}
    )  # fmt: skip
    t = therapies(extra=extra).set_index("name")
    assert t.loc["my_ab", "targets"] == ["MET"]
    assert t.loc["cetuximab", "targets"] == ["EGFR"] and t.loc["cetuximab", "origin"] == "user_override"


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"x": {"drug_class": "targeted", "targets": ["PD-L1"]}}, "HGNC"),
        ({"x": {"drug_class": "targeted", "targets": ["PDL1"]}}, "CD274"),
        ({"x": {"drug_class": "targeted", "resistance_programs": ["EMT_CANCERSE"]}}, "did you mean"),
        ({"x": {"drug_class": "magic"}}, "drug_class"),
        ({"x": {"targets": ["EGFR"]}}, "drug_class"),
        ({"x": {"drug_class": "targeted", "colour": "red"}}, "unknown field"),
        ({"x": {"drug_class": "targeted", "target_compartment": "blood"}}, "target_compartment"),
        ({"x": {"drug_class": "targeted", "targets": ["EGFR"], "target_logic": "some"}}, "target_logic"),
        ({"x": {"drug_class": "targeted", "targets": ["EGFR"], "target_level": "medium"}}, "target_level"),
        ({"x": {"drug_class": "targeted", "target_level": "high"}}, "no 'targets'"),
        ({"x": {"drug_class": "targeted", "targets": [1, 2]}}, "list of strings"),
        ({"bad name!": {"drug_class": "targeted"}}, "names"),
        ({"x": "targeted"}, "dict of fields"),
        (pd.DataFrame({"drug": ["x"]}), "'name' column"),
        (["cisplatin"], "extra must be"),
    ],
)
def test_bad_extra_is_a_typed_error(extra, match):
    with pytest.raises(tm.InvalidParameterError, match=match):
        therapies(extra=extra)


# ------------------------------------------------------------------------------------------------
# the shipped files are what the build script writes
# ------------------------------------------------------------------------------------------------
def test_shipped_files_equal_the_build_output(build, tmp_path):
    build.write(tmp_path)
    build.validate(tmp_path)
    for name in (kb.THERAPIES_FILE, kb.SOURCES_FILE):
        shipped = data_path(name).read_bytes()
        rebuilt = (tmp_path / name).read_bytes()
        assert shipped == rebuilt, f"{name} differs from data/build_therapies.py output: rerun the script"


def test_build_script_reproduces_the_shipped_files(tmp_path):
    """Run as a script, into a temporary directory, it writes the shipped bytes."""
    res = subprocess.run(
        [sys.executable, str(BUILD), "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    for name in (kb.THERAPIES_FILE, kb.SOURCES_FILE):
        assert (tmp_path / name).read_bytes() == data_path(name).read_bytes(), name


def test_build_uses_the_package_schema(build):
    # one place for the schema: the build script imports it from the package
    for name in (
        "FILE_COLUMNS",
        "LIST_COLUMNS",
        "GENE_COLUMNS",
        "PROGRAM_COLUMNS",
        "DRUG_CLASSES",
        "TARGET_LEVELS",
    ):
        assert getattr(build, name) is getattr(kb, name), name
    assert build.THERAPIES_TOML.suffix == ".toml" and build.SOURCES_TOML.suffix == ".toml"


_GOOD = """
version = "2099.01.0"
[[therapy]]
name = "my_drug"
display_name = "My drug"
drug_class = "targeted"
subclass = "egfr"
modality = "small_molecule"
targets = ["EGFR"]
target_logic = "any"
target_compartment = "malignant"
target_level = "any"
indication = "x"
mechanism = "x"
evidence = "x"
sources = ["Soria2018"]
"""


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (("", ""), None),
        (('target_level = "any"', 'target_level = "medium"'), "target_level"),
        (('target_level = "any"\n', ""), "target_level"),
        (('drug_class = "targeted"', 'drug_class = "magic"'), "drug_class"),
        (('modality = "small_molecule"', 'modality = "pill"'), "modality"),
        (('target_compartment = "malignant"', 'target_compartment = "blood"'), "target_compartment"),
        (('subclass = "egfr"', 'subclass = "hdac"'), "subclass"),
        (('indication = "x"', 'colour = "red"'), "unknown field"),
        (('mechanism = "x"\n', ""), "missing field"),
        (('targets = ["EGFR"]', 'targets = ["PD-L1"]'), None),  # genes are checked later, by validate
        (("DUPLICATE", ""), "duplicate therapy names"),
        (('evidence = "x"', 'evidence = "${NOPE}"'), "unknown shared text"),
    ],
)
def test_curated_entries_are_schema_checked(build, tmp_path, monkeypatch, change, match):
    if change[0] == "DUPLICATE":  # the same [[therapy]] table twice
        text = _GOOD + _GOOD[_GOOD.index("[[therapy]]") :]
    else:
        text = _GOOD.replace(*change)
    toml = tmp_path / "therapies.toml"
    toml.write_text(text, encoding="utf-8")
    monkeypatch.setattr(build, "THERAPIES_TOML", toml)
    if match is None:
        version, entries, _ = build.load()
        assert version == "2099.01.0" and entries[0]["name"] == "my_drug"
        assert list(entries[0]) == kb.FILE_COLUMNS
    else:
        with pytest.raises(SystemExit, match=match):
            build.load()


def test_validate_catches_unknown_genes_and_programs(build, tmp_path):
    build.write(tmp_path)
    path = tmp_path / kb.THERAPIES_FILE
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("\tCSF1R\t", "\tCSF1RX\t").replace("TAM_BAGAEV2021", "TAM_NOPE"), encoding="utf-8"
    )
    with pytest.raises(SystemExit, match=r"(?s)CSF1RX.*not in gene_table.*TAM_NOPE.*not in signatures_meta"):
        build.validate(tmp_path)


def test_damaged_program_reference_is_caught(monkeypatch):
    real = kb._signature_names
    monkeypatch.setattr(kb, "_signature_names", lambda: [n for n in real() if n != "TIROSH_G2M"])
    with pytest.raises(tm.TmeatlasError, match="not in the signature library"):
        therapies()


def test_rows_of_the_table_can_be_passed_back_as_extra():
    kb = tm.datasets.therapies()
    row = kb[kb["name"] == "paclitaxel"].copy()
    row["name"], row["display_name"] = "my_taxane", "My taxane"
    t = tm.datasets.therapies(extra=row)  # dois, citation and origin are recomputed, not rejected
    mine = t[t["name"] == "my_taxane"].iloc[0]
    assert mine["origin"] == "user" and mine["citation"] == kb[kb["name"] == "paclitaxel"].iloc[0]["citation"]
