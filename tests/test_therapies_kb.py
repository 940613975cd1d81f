"""The shipped therapy knowledge base (``tmeatlas/_data/therapies.tsv``; loader ``therapies`` in
``tmeatlas/datasets/_therapies.py``; built by ``data/build_therapies.py``).

Checks: the table loads and is versioned; every class the therapy-survival feature names is present
with biologically correct targets; every program resolves in the signature library; every gene is a
current HGNC symbol of the gene table; every source resolves to a DOI; users can add and override
entries and bad input raises a typed error; the shipped files are exactly what the build script writes.
"""

from __future__ import annotations

import importlib.util
import re
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
    assert table["name"].is_unique and len(table) >= 30
    assert all(re.fullmatch(r"[a-z0-9_]+", n) for n in table["name"])
    assert table.attrs["version"] == build.VERSION
    assert re.fullmatch(r"\d{4}\.\d{2}\.\d+", table.attrs["version"])
    first = data_path(kb.THERAPIES_FILE).read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# version: {build.VERSION}"
    for col in kb.LIST_COLUMNS:
        assert all(isinstance(v, list) for v in table[col]), col
    assert (table["origin"] == "shipped").all()
    assert set(table["drug_class"]) == {"chemotherapy", "targeted", "adc", "cell_therapy", "immunotherapy"}
    assert set(table["target_compartment"]) <= set(kb.COMPARTMENTS)
    # targets and their logic go together; cytotoxic chemotherapy needs no target expression
    assert ((table["targets"].str.len() > 0) == (table["target_logic"] != "")).all()
    assert set(table["target_logic"]) <= {"", "any", "all"}
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
    assert df.attrs["version"].endswith("+user")
    # the shipped entries are unchanged by a call with extra
    pd.testing.assert_frame_equal(therapies(), table)


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
