"""The shipped therapy knowledge base as a tidy table: ``tm.datasets.therapies``.

The knowledge base lives in ``tmeatlas/_data`` as two tab-separated files written by
``data/build_therapies.py`` (which documents every column): ``therapies.tsv`` (one row per therapy;
its first line is ``# version: <version>``) and ``therapies_sources.tsv`` (one row per cited
publication, with its DOI).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import pandas as pd

from .._errors import InvalidParameterError, TmeatlasError

__all__ = ["therapies"]

THERAPIES_FILE = "therapies.tsv"
SOURCES_FILE = "therapies_sources.tsv"

#: columns of the shipped table, in order
FILE_COLUMNS = [
    "name", "display_name", "drug_class", "subclass", "modality", "molecular_targets", "targets",
    "target_logic", "target_compartment", "target_level", "required_genes", "requires_mutation",
    "sensitivity_genes", "resistance_genes", "sensitivity_programs", "resistance_programs", "payload",
    "indication", "mechanism", "evidence", "normal_expression_note", "sources",
]  # fmt: skip
#: columns holding lists (``;``-joined in the file, Python lists in the returned table)
LIST_COLUMNS = [
    "molecular_targets", "targets", "required_genes", "sensitivity_genes", "resistance_genes",
    "sensitivity_programs", "resistance_programs", "sources",
]  # fmt: skip
#: list columns whose items are HGNC symbols
GENE_COLUMNS = ["molecular_targets", "targets", "required_genes", "sensitivity_genes", "resistance_genes"]
#: list columns whose items are names of ``tm.datasets.signatures()``
PROGRAM_COLUMNS = ["sensitivity_programs", "resistance_programs"]
#: columns of :func:`therapies`, in order
COLUMNS = [*FILE_COLUMNS, "dois", "citation", "origin"]

#: allowed values of ``drug_class``
DRUG_CLASSES = ["chemotherapy", "targeted", "epigenetic", "adc", "cell_therapy", "immunotherapy", "other"]
#: allowed values of ``target_compartment``
COMPARTMENTS = ["malignant", "immune", "stroma", "tme"]
#: allowed values of ``target_logic`` (empty when a therapy has no ``targets``)
TARGET_LOGIC = ["any", "all"]
#: allowed values of ``target_level`` (empty when a therapy has no ``targets``): ``high`` when the label or
#: pivotal trial requires overexpression or amplification of the target, ``any`` when any expression qualifies
TARGET_LEVELS = ["any", "high"]
#: allowed values of ``modality`` in the shipped table (user entries may name others)
MODALITIES = [
    "small_molecule", "monoclonal_antibody", "antibody_drug_conjugate", "car_t", "bispecific_antibody",
    "tcr_bispecific", "peptide",
]  # fmt: skip
_NAME = re.compile(r"[A-Za-z0-9_]+")
_VERSION = re.compile(r"#\s*version:\s*(\S+)")


def _read(name: str, *, header_line: bool = False) -> tuple[pd.DataFrame, str | None]:
    """One file of the knowledge base as strings (and its version line); a clear error when missing."""
    from .._resources import data_path

    path = data_path(name)
    if not path.is_file():
        raise TmeatlasError(
            f"the shipped therapy knowledge-base file {name!r} is missing from tmeatlas/_data. Reinstall "
            "tmeatlas, or rebuild it with `python data/build_therapies.py`."
        )
    version = None
    with path.open("rb") as fh:
        if header_line:
            first = fh.readline().decode("utf-8").strip()
            m = _VERSION.fullmatch(first)
            if m is None:
                raise TmeatlasError(
                    f"{name} does not start with a '# version: ...' line; the knowledge base is damaged. "
                    "Rebuild it with `python data/build_therapies.py`."
                )
            version = m.group(1)
        df = pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)
    return df, version


def _split(value: str) -> list[str]:
    return [v for v in value.split(";") if v]


def _signature_names() -> list[str]:
    from ._signatures import META_FILE
    from ._signatures import _read as read_signatures

    return list(dict.fromkeys(read_signatures(META_FILE)["name"]))


def _shipped() -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The shipped table (list columns as lists), the sources table and the version; validated."""
    df, version = _read(THERAPIES_FILE, header_line=True)
    src, _ = _read(SOURCES_FILE)
    missing = [c for c in FILE_COLUMNS if c not in df.columns]
    if missing or not {"source", "doi"} <= set(src.columns):
        raise TmeatlasError(
            f"{THERAPIES_FILE} or {SOURCES_FILE} lacks columns ({missing or ['source/doi']}); the knowledge base "
            "is damaged. Rebuild it with `python data/build_therapies.py`."
        )
    df = df[FILE_COLUMNS].copy()
    for col in LIST_COLUMNS:
        df[col] = [_split(v) for v in df[col]]
    known = set(_signature_names())
    bad = sorted({p for col in PROGRAM_COLUMNS for progs in df[col] for p in progs} - known)
    if bad:
        raise TmeatlasError(
            f"the therapy knowledge base names programs that are not in the signature library: {bad}. The two "
            "shipped resources are out of step; rebuild with `python data/build_therapies.py`."
        )
    return df, src, version  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------
# user entries
# ------------------------------------------------------------------------------------------------
def _as_list(value, field: str, name: str) -> list[str]:
    if isinstance(value, str):
        return _split(value.replace(",", ";")) if value else []
    if isinstance(value, Iterable) and not isinstance(value, Mapping | pd.DataFrame):
        out = list(value)
        if all(isinstance(v, str) for v in out):
            return [v for v in out if v]
    raise InvalidParameterError(
        f"extra[{name!r}][{field!r}] must be a list of strings or a ';'-separated string, got {value!r}."
    )


def _entries(extra) -> list[dict]:
    """``extra`` as a list of {field: value} dicts with a ``name``."""
    if isinstance(extra, pd.DataFrame):
        if "name" not in extra.columns:
            if extra.index.name == "name":
                extra = extra.reset_index()
            else:
                raise InvalidParameterError(
                    "extra as a DataFrame needs a 'name' column (one row per therapy to add or override)."
                )
        rows = []
        for rec in extra.to_dict("records"):
            rows.append(
                {k: v for k, v in rec.items() if not (v is None or (isinstance(v, float) and pd.isna(v)))}
            )
        return rows
    if isinstance(extra, Mapping):
        rows = []
        for name, fields in extra.items():
            if not isinstance(fields, Mapping):
                raise InvalidParameterError(
                    f"extra[{name!r}] must be a dict of fields (e.g. {{'drug_class': 'targeted', "
                    f"'targets': ['EGFR']}}), got {type(fields).__name__}."
                )
            if "name" in fields and fields["name"] != name:
                raise InvalidParameterError(
                    f"extra[{name!r}] has a different 'name' field ({fields['name']!r})."
                )
            rows.append({**fields, "name": name})
        return rows
    raise InvalidParameterError(
        f"extra must be None, a dict name -> fields or a DataFrame with a 'name' column, got {type(extra).__name__}."
    )


def _check_genes(genes: list[str], field: str, name: str) -> None:
    from .._resources import gene_names, gene_table

    table = gene_table().index
    bad = [g for g in genes if g not in table]
    if not bad:
        return
    gn = gene_names()
    alias = dict(zip(gn["name"], gn["symbol"]))
    hints = [f"{b!r} is an alias of {alias[b]!r}" for b in bad if b in alias]
    raise InvalidParameterError(
        f"extra[{name!r}][{field!r}]: {bad} are not current HGNC symbols of the GRCh38 gene table"
        + (f" ({'; '.join(hints)})" if hints else "")
        + ". Use HGNC symbols, e.g. 'CD274' for PD-L1, 'ERBB2' for HER2, 'TNFRSF17' for BCMA."
    )


def _check_programs(progs: list[str], field: str, name: str, known: list[str]) -> None:
    bad = [p for p in progs if p not in known]
    if not bad:
        return
    from .._validation import suggest_names

    hint = suggest_names(bad, known)
    raise InvalidParameterError(
        f"extra[{name!r}][{field!r}]: unknown program(s) {bad}. "
        + (hint + " " if hint else "")
        + "Programs must be signature names of tm.datasets.signatures()."
    )


def _check_row(row: dict, name: str, known_programs: list[str]) -> None:
    """The allowed values, genes and programs of one merged entry; a typed error naming the field."""
    allowed = {"drug_class": DRUG_CLASSES, "target_compartment": COMPARTMENTS}
    if row["targets"]:
        allowed |= {"target_logic": TARGET_LOGIC, "target_level": TARGET_LEVELS}
    for field, values in allowed.items():
        if row[field] not in values:
            raise InvalidParameterError(
                f"extra[{name!r}][{field!r}] must be one of {values}, got {row[field]!r}."
            )
    if row["target_level"] and not row["targets"]:
        raise InvalidParameterError(
            f"extra[{name!r}]['target_level'] is {row['target_level']!r} but the entry has no 'targets'; give "
            "the targets whose expression level it qualifies, or leave target_level out."
        )
    for field in GENE_COLUMNS:
        _check_genes(row[field], field, name)
    for field in PROGRAM_COLUMNS:
        _check_programs(row[field], field, name, known_programs)


def _merge(df: pd.DataFrame, extra) -> pd.DataFrame:
    rows = {r["name"]: dict(r) for r in df.to_dict("records")}
    known_programs = _signature_names()
    allowed = set(FILE_COLUMNS)
    for entry in _entries(extra):
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidParameterError(
                f"therapy names must be non-empty strings of letters, digits and '_', got {name!r}."
            )
        # columns derived from the sources (a row of tm.datasets.therapies() passed back in): recomputed
        entry = {k: v for k, v in entry.items() if k not in ("dois", "citation", "origin")}
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise InvalidParameterError(
                f"extra[{name!r}] has unknown field(s) {unknown}; allowed fields: {FILE_COLUMNS}."
            )
        if name in rows:
            row, origin = dict(rows[name]), "user_override"
        else:
            if "drug_class" not in entry:
                raise InvalidParameterError(
                    f"extra[{name!r}] is a new therapy and needs at least 'drug_class' (one of {DRUG_CLASSES})."
                )
            row = {c: ([] if c in LIST_COLUMNS else "") for c in FILE_COLUMNS}
            row.update(name=name, display_name=name, target_compartment="malignant")
            origin = "user"
        for field, value in entry.items():
            if field in LIST_COLUMNS:
                row[field] = _as_list(value, field, name)
            elif isinstance(value, str):
                row[field] = value
            else:
                raise InvalidParameterError(f"extra[{name!r}][{field!r}] must be a string, got {value!r}.")
        for field in ("target_logic", "target_level"):
            if row["targets"] and not row[field]:
                row[field] = "any"
            if not row["targets"] and field not in entry:
                row[field] = ""
        _check_row(row, name, known_programs)
        row["origin"] = origin
        rows[name] = row
    return pd.DataFrame(list(rows.values()))


def therapies(*, species: str = "human", extra=None) -> pd.DataFrame:
    """The curated, cited and versioned therapy knowledge base shipped with tmeatlas.

    One row per therapy (83 in version ``2026.12.0``): chemotherapies (platinum, taxanes,
    anthracyclines, antimetabolites), targeted drugs (EGFR, HER2, BRAF/MEK, PARP, CDK4/6, endocrine
    ER and AR, KRAS G12C, angiogenesis, ALK, RET, NTRK, MET, KIT/ABL1, BCL-2, PI3K, mTOR),
    epigenetic drugs (HDAC, EZH2, DNMT and BET inhibitors), microenvironment-targeting drugs (CSF1R,
    TGF-beta receptor, CXCR4, FAP, CD73), antibody-drug conjugates (ERBB2, TACSTD2, NECTIN4, FOLR1,
    F3, TNFRSF8, CD79B, CD22, CD33), CAR T cells (CD19, BCMA), T-cell engagers (BCMA, CD19, CD20,
    GPRC5D, DLL3, gp100-HLA) and immune-checkpoint antibodies (PD-1, PD-L1, CTLA-4, LAG-3). Columns:
    ``name`` (snake_case id), ``display_name``, ``drug_class`` (``chemotherapy``, ``targeted``,
    ``epigenetic``, ``adc``, ``cell_therapy``, ``immunotherapy``, ``other``; microenvironment drugs
    that are not checkpoint blockade are ``targeted``), ``subclass`` (e.g. ``platinum``, ``her2``,
    ``hdac``, ``csf1r``, ``anti_pd1``), ``modality``, ``molecular_targets`` (what the drug
    binds), ``targets`` (genes whose *expression* the therapy needs; empty for cytotoxic
    chemotherapy and for drugs whose target is ubiquitous, such as HDAC or DNMT inhibitors),
    ``target_logic`` (``any``/``all``), ``target_compartment`` (``malignant``,
    ``immune``, ``stroma`` or ``tme``: where the targets must be expressed, e.g. PD-1 on T cells,
    VEGF-A across the microenvironment), ``target_level`` (``high`` when the label or pivotal trial
    requires overexpression or amplification of the target, e.g. trastuzumab, pertuzumab and
    trastuzumab emtansine for HER2 IHC 3+ or ISH-amplified disease; ``any`` when any expression
    qualifies, e.g. trastuzumab deruxtecan in HER2-low disease (DESTINY-Breast04) or endocrine
    therapy at ER >= 1%; empty when there are no ``targets``; the ``evidence`` text says why),
    ``required_genes`` (further genes whose loss confers
    resistance, e.g. RB1 for CDK4/6 inhibitors), ``requires_mutation`` (genomic requirement such as
    ``"BRAF V600E/K"`` or ``"KRAS G12C"``: expression data cannot see mutations, so a scorer can
    report but not test it), ``sensitivity_genes`` / ``resistance_genes`` (genes whose high
    expression goes with benefit / resistance, e.g. ABCB1 for taxanes, CCNE1 for CDK4/6
    inhibitors), ``sensitivity_programs`` / ``resistance_programs`` (names of
    :func:`tmeatlas.datasets.signatures` whose high score goes with benefit / resistance; a program
    whose *loss* confers resistance, such as MHC-I antigen presentation for checkpoint blockade, is
    a sensitivity program), ``payload`` (ADCs), ``indication``, ``mechanism``, ``evidence`` (what the
    entries rest on and their limits), ``normal_expression_note``, ``sources`` (citation keys: the
    pivotal trial first, then mechanism/resistance papers), ``dois`` (the DOI of each source, same
    order; empty for a user key not in the shipped sources), ``citation`` (short reference of the
    first source) and ``origin`` (``shipped``, ``user``, ``user_override``). List-valued columns
    hold Python lists. ``df.attrs["version"]`` is the knowledge-base version (``"+user"`` appended
    when ``extra`` is given); the full source table (authors, title, journal, year, DOI, how the DOI
    was checked) is ``tmeatlas/_data/therapies_sources.tsv``.

    Sources: pivotal trials such as Slamon et al., NEJM 2001 (trastuzumab), Reck et al., NEJM
    2016 (pembrolizumab), Maude et al., NEJM 2018 (tisagenlecleucel), Modi et al., NEJM 2022
    (trastuzumab deruxtecan in HER2-low disease), Tap et al., Lancet 2019 (pexidartinib); resistance and mechanism
    papers such as Holohan et al., Nat Rev Cancer 2013; Sharma et al., Cell 2010; Sharma et al.,
    Cell 2017; every row cites its own (``tmeatlas/_data/PROVENANCE.md``; built and checked by
    ``data/build_therapies.py``).

    Parameters
    ----------
    species
        Only ``"human"`` (targets are HGNC symbols).
    extra
        Therapies to add or override: a dict ``name -> {field: value}`` or a DataFrame with a
        ``name`` column and any of the columns above (except ``dois``, ``citation``, ``origin``). A known name
        overrides only the fields given; a new name needs at least ``drug_class``. List fields
        take lists or ``;``-separated strings; genes must be HGNC symbols of the package's gene
        table and programs names of :func:`tmeatlas.datasets.signatures`; ``drug_class``,
        ``target_compartment``, ``target_logic`` and ``target_level`` must take the values above
        (``target_logic`` and ``target_level`` default to ``"any"`` when ``targets`` are given);
        otherwise :class:`tmeatlas.InvalidParameterError`.

    Returns
    -------
    A :class:`pandas.DataFrame`, one row per therapy, shipped entries first in the curated order.
    """
    from .._validation import check_one_of

    check_one_of("species", species, ["human"])
    df, src, version = _shipped()
    df["origin"] = "shipped"
    if extra is not None:
        df = _merge(df, extra)
        version = f"{version}+user"
    doi = dict(zip(src["source"], src["doi"]))
    cite = (
        {r.source: f"{r.authors} {r.title}. {r.journal} ({r.year})" for r in src.itertuples()}
        if {"authors", "title", "journal", "year"} <= set(src.columns)
        else {}
    )
    df["dois"] = [[doi.get(k, "") for k in keys] for keys in df["sources"]]
    df["citation"] = [cite.get(keys[0], "") if keys else "" for keys in df["sources"]]
    df = df[COLUMNS].reset_index(drop=True)
    df.attrs["version"] = version
    return df
