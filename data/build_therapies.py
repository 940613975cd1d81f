"""Build the therapy knowledge base in ``tmeatlas/_data`` (read by ``tm.datasets.therapies``).

Reads
  data/therapies.toml          the curated entries: ``version``, shared ``[lists]`` and ``[text]``, and one
                               ``[[therapy]]`` table per therapy
  data/therapy_sources.toml    one ``[[source]]`` table per cited publication

Writes
  tmeatlas/_data/therapies.tsv           one row per therapy (first line: ``# version: <version>``)
  tmeatlas/_data/therapies_sources.tsv   one row per cited publication (authors, title, journal, year, DOI)

The two TOML files are the source of truth; the TSVs are generated from them and never edited by hand.
Facts (drug targets, trial results, resistance mechanisms) are from the cited publications; the
selection, the wording and the tables are this project's.

The column schema (``FILE_COLUMNS``, ``LIST_COLUMNS``, ``GENE_COLUMNS``, ``PROGRAM_COLUMNS`` and the
allowed values ``DRUG_CLASSES``, ``MODALITIES``, ``COMPARTMENTS``, ``TARGET_LOGIC``, ``TARGET_LEVELS``)
lives in ``tmeatlas/datasets/_therapies.py`` and is imported from there.

Fields of a ``[[therapy]]`` table = columns of ``therapies.tsv`` (list-valued columns are TOML arrays
here and ``;``-joined in the file). Required: name, display_name, drug_class, subclass, modality,
target_compartment, indication, mechanism, evidence, sources; target_logic and target_level are
required when ``targets`` is given and must be absent otherwise; payload is required for ADCs only.

  name                   snake_case identifier, unique (``[a-z0-9_]+``)
  display_name           drug name(s) as written in the clinic
  drug_class             chemotherapy | targeted | epigenetic | adc | cell_therapy | immunotherapy | other
                         (immunotherapies acting on immune cells are judged as checkpoint blockade;
                         microenvironment drugs that are not checkpoint blockade are ``targeted``)
  subclass               one of ``SUBCLASSES`` below (e.g. platinum, her2, hdac, csf1r, anti_pd1)
  modality               small_molecule | monoclonal_antibody | antibody_drug_conjugate | car_t |
                         bispecific_antibody | tcr_bispecific | peptide
  molecular_targets      what the drug binds or inhibits (informational; HGNC symbols)
  targets                genes whose EXPRESSION the therapy needs in ``target_compartment``; empty for
                         cytotoxic chemotherapy and drugs whose target is ubiquitous (HDAC, DNMT, BET, mTOR)
  target_logic           any | all: how several ``targets`` combine (empty when there are none)
  target_compartment     malignant | immune | stroma | tme (where the targets must be expressed)
  target_level           any | high (empty when there are no ``targets``): ``high`` when the label or the
                         pivotal trial requires OVEREXPRESSION or AMPLIFICATION of the target (trastuzumab,
                         pertuzumab, T-DM1: HER2 IHC 3+ or ISH-amplified; mirvetuximab: FR-alpha high),
                         ``any`` when any expression qualifies (trastuzumab deruxtecan in HER2-low disease,
                         endocrine therapy at ER >= 1%, antigen-directed T-cell therapies, kinase inhibitors
                         that need a mutation rather than a level); the ``evidence`` text says why
  required_genes         further genes that must be expressed in the malignant cells (their loss
                         confers resistance), e.g. RB1 for CDK4/6 inhibitors
  requires_mutation      genomic requirement (mutation, fusion, HLA type); expression data cannot see
                         it, so a scorer can only report it, never test it
  sensitivity_genes      genes whose high expression is reported to go with benefit
  resistance_genes       genes whose high expression is reported to confer resistance
  sensitivity_programs   signatures of ``tm.datasets.signatures()`` whose HIGH score goes with benefit;
                         a program whose LOSS confers resistance (e.g. MHC-I antigen presentation) is
                         listed here
  resistance_programs    signatures whose HIGH score goes with resistance
  payload                ADC payload (empty otherwise)
  indication             main approved (or studied) setting(s), short
  mechanism              one plain sentence
  evidence               what the targets, level, genes and programs rest on, with the limits
  normal_expression_note on-target, off-tumour expression worth knowing (optional)
  sources                keys into therapy_sources.toml: the pivotal trial first, then mechanism and
                         resistance papers

Shared values: a list item ``"@NAME"`` is replaced by the items of ``[lists].NAME`` and ``${NAME}`` in a
string by ``[text].NAME`` (both in ``therapies.toml``).

Fields of a ``[[source]]`` table = columns of ``therapies_sources.tsv``: key (written as ``source``),
authors, title, journal, year, doi, kind (trial | mechanism | resistance | biomarker | review), check
(how the DOI was verified, e.g. ``doi_verified: ... <date>``).

Checks (``check_schema`` on the TOML, ``validate`` on the written files): unknown, missing and
mistyped fields; allowed values of drug_class, subclass, modality, target_logic, target_compartment,
target_level and source kind; unique therapy names and source keys; every gene is in
``tmeatlas._resources.gene_table()``, every program is a signature of ``signatures_meta.tsv``, every
source key resolves to a DOI, every source is cited, every therapy cites its pivotal trial first and at
least one mechanism/resistance/biomarker/review paper, and every class of ``REQUIRED_CLASSES`` is present.

Run:  python data/build_therapies.py [--out-dir DIR]     (default: tmeatlas/_data)
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tmeatlas._resources import gene_table  # noqa: E402
from tmeatlas.datasets._therapies import (  # noqa: E402
    COMPARTMENTS,
    DRUG_CLASSES,
    FILE_COLUMNS,
    GENE_COLUMNS,
    LIST_COLUMNS,
    MODALITIES,
    PROGRAM_COLUMNS,
    SOURCES_FILE,
    TARGET_LEVELS,
    TARGET_LOGIC,
    THERAPIES_FILE,
)

DATA = ROOT / "tmeatlas" / "_data"
THERAPIES_TOML = ROOT / "data" / "therapies.toml"
SOURCES_TOML = ROOT / "data" / "therapy_sources.toml"

#: columns of ``therapies_sources.tsv``
SOURCE_COLUMNS = ["source", "authors", "title", "journal", "year", "doi", "kind", "check"]
SOURCE_KINDS = ["trial", "mechanism", "resistance", "biomarker", "review"]
#: the curated vocabulary of ``subclass`` per ``drug_class``
SUBCLASSES = {
    "chemotherapy": ["platinum", "taxane", "anthracycline", "antimetabolite"],
    "targeted": [
        "egfr", "her2", "braf_mek", "parp", "cdk4_6", "endocrine_er", "endocrine_ar", "kras_g12c", "angiogenesis",
        "alk", "ret", "ntrk", "met", "kit_abl", "bcl2", "pi3k", "mtor", "csf1r", "tgfb", "cxcr4", "fap",
        "adenosine",
    ],
    "epigenetic": ["hdac", "ezh2", "dnmt", "bet"],
    "adc": ["adc"],
    "cell_therapy": ["car_t"],
    "immunotherapy": ["t_cell_engager", "anti_pd1", "anti_pdl1", "anti_ctla4", "anti_lag3"],
    "other": [],
}  # fmt: skip
#: fields every ``[[therapy]]`` table must give
REQUIRED_FIELDS = [
    "name", "display_name", "drug_class", "subclass", "modality", "target_compartment", "indication",
    "mechanism", "evidence", "sources",
]  # fmt: skip

#: classes the knowledge base must cover: label -> conditions on an entry (a list column must contain
#: the value, any other column must equal it); checked by ``validate`` and the tests
REQUIRED_CLASSES = {
    "platinum": {"subclass": "platinum"},
    "taxane": {"subclass": "taxane"},
    "anthracycline": {"subclass": "anthracycline"},
    "antimetabolite": {"subclass": "antimetabolite"},
    "EGFR": {"subclass": "egfr"},
    "HER2": {"subclass": "her2"},
    "BRAF/MEK": {"subclass": "braf_mek"},
    "PARP": {"subclass": "parp"},
    "CDK4/6": {"subclass": "cdk4_6"},
    "endocrine ER": {"subclass": "endocrine_er"},
    "endocrine AR": {"subclass": "endocrine_ar"},
    "KRAS G12C": {"subclass": "kras_g12c"},
    "angiogenesis": {"subclass": "angiogenesis"},
    "HDAC": {"drug_class": "epigenetic", "subclass": "hdac"},
    "EZH2": {"drug_class": "epigenetic", "subclass": "ezh2"},
    "DNMT": {"drug_class": "epigenetic", "subclass": "dnmt"},
    "BET": {"drug_class": "epigenetic", "subclass": "bet"},
    "CSF1R": {"subclass": "csf1r", "targets": "CSF1R"},
    "TGF-beta": {"subclass": "tgfb"},
    "CXCR4": {"subclass": "cxcr4", "targets": "CXCR4"},
    "FAP": {"subclass": "fap", "targets": "FAP"},
    "adenosine": {"subclass": "adenosine"},
    "ADC ERBB2": {"drug_class": "adc", "targets": "ERBB2"},
    "ADC TACSTD2": {"drug_class": "adc", "targets": "TACSTD2"},
    "ADC NECTIN4": {"drug_class": "adc", "targets": "NECTIN4"},
    "cell therapy CD19": {"drug_class": "cell_therapy", "targets": "CD19"},
    "cell therapy BCMA": {"drug_class": "cell_therapy", "targets": "TNFRSF17"},
    "T-cell engager": {"subclass": "t_cell_engager"},
    "anti-PD-1": {"subclass": "anti_pd1"},
    "anti-PD-L1": {"subclass": "anti_pdl1"},
    "anti-CTLA-4": {"subclass": "anti_ctla4"},
    "anti-LAG-3": {"subclass": "anti_lag3"},
}
MIN_THERAPIES = 80

_NAME = re.compile(r"[a-z0-9_]+")
_DOI = re.compile(r"10\.\d{4,9}/\S+")
_REF = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class BuildError(SystemExit):
    """The curated files break a rule; the message lists every problem found."""


def _fail(problems: list[str], what: str) -> None:
    if problems:
        raise BuildError(f"{what}: {len(problems)} problem(s)\n  " + "\n  ".join(problems))


def _load_toml(path: Path) -> dict:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _expand(value, field: str, name: str, shared: dict, problems: list[str]):
    """Replace ``"@NAME"`` list items and ``${NAME}`` string references by the shared values."""
    if isinstance(value, str):

        def sub(m: re.Match) -> str:
            if m.group(1) not in shared["text"]:
                problems.append(f"{name}.{field}: unknown shared text ${{{m.group(1)}}}")
                return m.group(0)
            return shared["text"][m.group(1)]

        return _REF.sub(sub, value)
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, str) and item.startswith("@"):
                if item[1:] not in shared["lists"]:
                    problems.append(f"{name}.{field}: unknown shared list {item!r}")
                out.extend(shared["lists"].get(item[1:], []))
            else:
                out.append(item)
        return out
    return value


def _check_entry(t: dict, problems: list[str]) -> None:
    """Schema rules for one expanded ``[[therapy]]`` table."""
    name = t.get("name", "<no name>")
    unknown = sorted(set(t) - set(FILE_COLUMNS))
    missing = [f for f in REQUIRED_FIELDS if not t.get(f)]
    if unknown:
        problems.append(f"{name}: unknown field(s) {unknown}")
    if missing:
        problems.append(f"{name}: missing field(s) {missing}")
    for field, value in t.items():
        if field in LIST_COLUMNS:
            if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
                problems.append(f"{name}.{field}: must be a list of non-empty strings, got {value!r}")
        elif not isinstance(value, str):
            problems.append(f"{name}.{field}: must be a string, got {value!r}")
    if not _NAME.fullmatch(str(name)):
        problems.append(f"{name}: names are [a-z0-9_]+")
    allowed = {
        "drug_class": DRUG_CLASSES,
        "subclass": SUBCLASSES.get(t.get("drug_class"), []),
        "modality": MODALITIES,
        "target_compartment": COMPARTMENTS,
    }
    if t.get("targets"):
        allowed |= {"target_logic": TARGET_LOGIC, "target_level": TARGET_LEVELS}
    for field, values in allowed.items():
        if t.get(field) not in values:
            problems.append(f"{name}.{field}: {t.get(field)!r} is not one of {values}")
    if not t.get("targets"):
        extra = [f for f in ("target_logic", "target_level") if t.get(f)]
        if extra:
            problems.append(f"{name}: {extra} given without targets")
    if bool(t.get("payload")) != (t.get("drug_class") == "adc"):
        problems.append(f"{name}: payload is given for, and only for, antibody-drug conjugates")


def check_schema(doc: dict, sources: list[dict]) -> None:
    """Schema rules on the two TOML documents; raises :class:`BuildError` listing every problem."""
    problems: list[str] = []
    top = sorted(set(doc) - {"version", "lists", "text", "therapy"})
    if top:
        problems.append(f"therapies.toml: unknown top-level key(s) {top}")
    if not re.fullmatch(r"\d{4}\.\d{2}\.\d+", str(doc.get("version", ""))):
        problems.append(f"therapies.toml: version must be YYYY.MM.N, got {doc.get('version')!r}")
    names = [t.get("name") for t in doc.get("therapy", [])]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        problems.append(f"duplicate therapy names {dup}")
    keys = [s.get("key") for s in sources]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        problems.append(f"duplicate source keys {dup}")
    fields = ["key", *SOURCE_COLUMNS[1:]]
    for s in sources:
        key = s.get("key", "<no key>")
        unknown, missing = sorted(set(s) - set(fields)), [f for f in fields if s.get(f) in (None, "")]
        if unknown or missing:
            problems.append(f"source {key}: unknown field(s) {unknown}, missing field(s) {missing}")
        if s.get("kind") not in SOURCE_KINDS:
            problems.append(f"source {key}: kind {s.get('kind')!r} is not one of {SOURCE_KINDS}")
        if not isinstance(s.get("year"), int) or not 1900 <= s["year"] <= 2100:
            problems.append(f"source {key}: year must be an integer, got {s.get('year')!r}")
        if not _DOI.fullmatch(str(s.get("doi", ""))):
            problems.append(f"source {key}: {s.get('doi')!r} is not a DOI")
    _fail(problems, "data/therapies.toml / data/therapy_sources.toml")


def load() -> tuple[str, list[dict], list[dict]]:
    """The version, the expanded therapy entries (every column filled) and the sources, checked."""
    doc, src = _load_toml(THERAPIES_TOML), _load_toml(SOURCES_TOML)
    sources = src.get("source", [])
    if set(src) - {"source"}:
        _fail([f"unknown top-level key(s) {sorted(set(src) - {'source'})}"], "data/therapy_sources.toml")
    check_schema(doc, sources)
    shared = {"lists": doc.get("lists", {}), "text": doc.get("text", {})}
    problems: list[str] = []
    entries = []
    for raw in doc.get("therapy", []):
        name = raw.get("name", "<no name>")
        t = {k: _expand(v, k, name, shared, problems) for k, v in raw.items()}
        _check_entry(t, problems)
        entries.append({c: t.get(c, [] if c in LIST_COLUMNS else "") for c in FILE_COLUMNS})
    _fail(problems, "data/therapies.toml")
    return doc["version"], entries, sources


def tables() -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The two tables, list columns ``;``-joined, in the order written to disk, and the version."""
    version, entries, sources = load()
    rows = [
        {c: ";".join(dict.fromkeys(t[c])) if c in LIST_COLUMNS else t[c] for c in FILE_COLUMNS}
        for t in entries
    ]
    ther = pd.DataFrame(rows, columns=FILE_COLUMNS)
    used = list(dict.fromkeys(k for t in entries for k in t["sources"]))
    known = [s["key"] for s in sources]
    problems = [f"source key {k!r} has no [[source]] table" for k in used if k not in known]
    problems += [f"source {k!r} is cited by no therapy" for k in known if k not in used]
    _fail(problems, "data/therapy_sources.toml")
    src = pd.DataFrame(
        [[s["key"], *(s[c] for c in SOURCE_COLUMNS[1:])] for s in sources], columns=SOURCE_COLUMNS
    )
    return ther, src, version


def write(out_dir: Path) -> tuple[Path, Path]:
    """Write ``therapies.tsv`` (with the version line) and ``therapies_sources.tsv`` into ``out_dir``."""
    ther, src, version = tables()
    out_dir.mkdir(parents=True, exist_ok=True)
    p_ther, p_src = out_dir / THERAPIES_FILE, out_dir / SOURCES_FILE
    with p_ther.open("w", encoding="utf-8", newline="") as fh:
        fh.write(f"# version: {version}\n")
        ther.to_csv(fh, sep="\t", index=False, lineterminator="\n")
    src.to_csv(p_src, sep="\t", index=False, lineterminator="\n")
    return p_ther, p_src


def _has(entry: dict, conds: dict) -> bool:
    return all(v in entry[c].split(";") if c in LIST_COLUMNS else entry[c] == v for c, v in conds.items())


def validate(out_dir: Path = DATA) -> None:
    """Content rules, read back from the written files; raises :class:`BuildError` listing every problem."""
    p_ther = out_dir / THERAPIES_FILE
    first = p_ther.read_text(encoding="utf-8").splitlines()[0]
    ther = pd.read_csv(p_ther, sep="\t", dtype=str, keep_default_na=False, skiprows=1)
    src = pd.read_csv(out_dir / SOURCES_FILE, sep="\t", dtype=str, keep_default_na=False)
    problems = (
        [] if first == f"# version: {VERSION}" else [f"first line {first!r} is not '# version: {VERSION}'"]
    )
    if list(ther.columns) != FILE_COLUMNS or list(src.columns) != SOURCE_COLUMNS:
        _fail([f"columns {list(ther.columns)} / {list(src.columns)}"], str(out_dir))
    genes = set(gene_table().index)
    programs = set(
        pd.read_csv(DATA / "signatures_meta.tsv", sep="\t", dtype=str, keep_default_na=False)["name"]
    )
    kinds = src.set_index("source")["kind"]
    dois = src.set_index("source")["doi"]
    for t in ther.to_dict("records"):
        name = t["name"]
        for col, known in [*((c, genes) for c in GENE_COLUMNS), *((c, programs) for c in PROGRAM_COLUMNS)]:
            bad = [g for g in t[col].split(";") if g and g not in known]
            if bad:
                what = "gene_table()" if known is genes else "signatures_meta.tsv"
                problems.append(f"{name}.{col}: {bad} not in {what}")
        keys = t["sources"].split(";")
        if not set(keys) <= set(kinds.index):
            problems.append(f"{name}: sources {sorted(set(keys) - set(kinds.index))} not in {SOURCES_FILE}")
            continue
        if not all(_DOI.fullmatch(dois[k]) for k in keys):
            problems.append(f"{name}: a source without a DOI")
        if kinds[keys[0]] != "trial":
            problems.append(f"{name}: the first source ({keys[0]}) must be the pivotal trial")
        if all(kinds[k] == "trial" for k in keys):
            problems.append(f"{name}: cite a mechanism, resistance, biomarker or review paper too")
    if not ther["name"].is_unique or not src["source"].is_unique:
        problems.append("therapy names and source keys must be unique")
    if len(ther) < MIN_THERAPIES:
        problems.append(f"{len(ther)} therapies; the knowledge base promises at least {MIN_THERAPIES}")
    entries = ther.to_dict("records")
    missing = [label for label, conds in REQUIRED_CLASSES.items() if not any(_has(t, conds) for t in entries)]
    if missing:
        problems.append(f"classes not covered: {missing}")
    _fail(problems, f"{out_dir}/{THERAPIES_FILE}")


#: version of the knowledge base (``version`` in data/therapies.toml); bump it (YYYY.MM.N) on any change
VERSION = _load_toml(THERAPIES_TOML)["version"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out-dir", type=Path, default=DATA, help="where to write the two TSVs (default: tmeatlas/_data)"
    )
    args = ap.parse_args(argv)
    write(args.out_dir)
    validate(args.out_dir)
    ther, src, version = tables()
    print(ther.groupby(["drug_class", "subclass"]).size().to_string())
    print(f"version {version}: {len(ther)} therapies, {len(src)} sources; format checks passed")


if __name__ == "__main__":
    main()
