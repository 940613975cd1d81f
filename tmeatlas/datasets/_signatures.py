"""The shipped gene-signature library as tidy tables: ``tm.datasets.signatures`` and
``tm.datasets.checkpoint_pairs``.

The library lives in ``tmeatlas/_data`` as three tab-separated files (format:
``data/SIGNATURES_FORMAT.md``): ``signatures_human.tsv`` (one row per signature and gene),
``signatures_meta.tsv`` (one row per signature) and ``signatures_sources.tsv`` (one row per
publication), plus ``checkpoint_pairs.tsv`` (immune-checkpoint receptor-ligand pairs).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .._errors import InvalidParameterError, TmeatlasError

__all__ = ["checkpoint_pairs", "signatures"]

#: the files of the library, in ``tmeatlas/_data``
GENES_FILE = "signatures_human.tsv"
META_FILE = "signatures_meta.tsv"
SOURCES_FILE = "signatures_sources.tsv"
PAIRS_FILE = "checkpoint_pairs.tsv"

#: columns of :func:`signatures`, in order
COLUMNS = [
    "name", "category", "gene", "direction", "weight", "species", "source", "citation", "doi", "licence",
    "description", "check",
]  # fmt: skip


def _read(name: str) -> pd.DataFrame:
    """One file of the library as strings; a clear error when the library is not installed."""
    from .._resources import data_path

    path = data_path(name)
    if not path.is_file():
        raise TmeatlasError(
            f"the shipped signature library file {name!r} is missing from tmeatlas/_data (this installation "
            "has no signature library). Reinstall tmeatlas, or pass your own signatures (a dict, a GMT file "
            "or a table) as `signatures=`."
        )
    with path.open("rb") as fh:
        return pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)


def _library() -> pd.DataFrame:
    """All signatures of the library, joined with their metadata and sources (:data:`COLUMNS`)."""
    genes = _read(GENES_FILE)
    meta = _read(META_FILE)
    src = _read(SOURCES_FILE)
    need = {GENES_FILE: (genes, {"name", "gene", "direction", "weight"}),
            META_FILE: (meta, {"name", "category", "species", "source", "description", "check"}),
            SOURCES_FILE: (src, {"source", "citation", "doi", "licence"})}  # fmt: skip
    for fname, (df, cols) in need.items():
        if not cols <= set(df.columns):
            raise TmeatlasError(
                f"{fname} lacks the columns {sorted(cols - set(df.columns))}; the library is damaged."
            )
    meta = meta.drop_duplicates("name").set_index("name")
    src = src.drop_duplicates("source").set_index("source")
    df = genes[["name", "gene", "direction", "weight"]].copy()
    for col in ("category", "species", "source", "description", "check"):
        df[col] = df["name"].map(meta[col]).fillna("").to_numpy()
    first = df["source"].str.split(";").str[0]
    for col in ("citation", "doi", "licence"):
        df[col] = first.map(src[col]).fillna("").to_numpy()
    df["weight"] = pd.to_numeric(df["weight"].replace("", "1"), errors="coerce").fillna(1.0).astype(float)
    return df[COLUMNS].reset_index(drop=True)


def _as_list(value, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, dict | pd.DataFrame):
        out = list(value)
        if all(isinstance(v, str) for v in out):
            return out
    raise InvalidParameterError(f"{what} must be a string or a list of strings, got {value!r}.")


#: signatures removed from the library because their gene lists could never be compared with their
#: publications (data/signatures_check.md, sixth round) -> the checked list that replaces them
REMOVED = {
    "TEX_TERMINAL_ZHENG2021": "TEX_CHU2023",
    "TREG_ZHENG2021": "TREG_BAGAEV2021",
    "TPEX_MILLER2019": "TPEX_TSUI2022",
    "MHC1_ANTIGEN_PRESENTATION": "MHC1_BAGAEV2021",
    "MHC2_ANTIGEN_PRESENTATION": "MHC2_BAGAEV2021",
    "ELYADA_ICAF": "KIEFFER_IL_ICAF",
    "ELYADA_MYCAF": "KIEFFER_ECM_MYCAF",
    "ELYADA_APCAF": "MHC2_BAGAEV2021",
    "ZHANG_C1QC_TAM": "TAM_BAGAEV2021",
    "ZHANG_SPP1_TAM": "TAM_BAGAEV2021",
    "MDSC_MARKERS": "MDSC_BAGAEV2021",
    "PERSISTER_SHAFFER2017": "PERSISTER_CHANG2022",
}


def _unknown(kind: str, bad: list[str], known: list[str]) -> InvalidParameterError:
    from .._validation import suggest_names

    gone = [b for b in bad if b in REMOVED]
    if gone:
        return InvalidParameterError(
            "signature(s) removed from the library because their gene lists could not be checked against their "
            "publications (data/signatures_check.md): "
            + ", ".join(f"{g!r} (use {REMOVED[g]!r})" for g in gone)
            + "."
        )
    hint = suggest_names(bad, known)
    listing = ", ".join(map(repr, known[:30])) + (" ..." if len(known) > 30 else "")
    return InvalidParameterError(
        f"unknown {kind} {', '.join(map(repr, bad[:10]))}{' ...' if len(bad) > 10 else ''}. "
        + (hint + " " if hint else "")
        + f"Known {kind}s: {listing} (see tm.datasets.signatures())."
    )


def signatures(
    *, category: str | list[str] | None = None, names: str | list[str] | None = None
) -> pd.DataFrame:
    """The curated, cited gene-signature library that :func:`tmeatlas.tl.score_signatures` uses.

    One row per (signature, gene): ``name`` (unique, ``[A-Za-z0-9_]+``; the score lands in
    ``obs["sig_<name>"]``), ``category`` (e.g. ``"stemness"``, ``"exhaustion"``,
    ``"ifng_inflamed"``, ``"hypoxia"``, ``"cell_cycle"``, ``"hallmark"``), ``gene`` (current HGNC
    symbol), ``direction`` (``"up"``: higher in the state; ``"down"``: lower), ``weight`` (1
    unless the publication gives gene weights), ``species``, ``source`` (key of the
    publication), ``citation``, ``doi``, ``licence`` (terms under which the gene list is
    redistributed), ``description`` (what the set measures and where in the paper it comes
    from) and ``check`` (``"checked"``: compared with the publication or a copy that names it;
    ``"checked_with_changes"``: compared, then changed to match that copy or given current
    symbols, each change recorded in ``data/signatures_check.md``; every shipped list is one of
    the two).
    The file format is described in ``data/SIGNATURES_FORMAT.md``; provenance and licences in
    ``tmeatlas/_data/PROVENANCE.md``.

    Parameters
    ----------
    category
        Keep only the signatures of this category (or these categories).
    names
        Keep only the signatures with these names.

    Returns
    -------
    A :class:`pandas.DataFrame`; pass an edited copy (or any table with the columns ``name``,
    ``gene`` and optionally ``direction``, ``weight``, ``category``) as ``signatures=`` to
    :func:`tmeatlas.tl.score_signatures` to score your own sets.
    """
    full = _library()
    df = full
    if category is not None:
        cats = _as_list(category, "category")
        known = list(dict.fromkeys(df["category"]))
        bad = [c for c in cats if c not in known]
        if bad:
            raise _unknown("category", bad, known)
        df = df[df["category"].isin(cats)]
    if names is not None:
        wanted = _as_list(names, "names")
        known = list(dict.fromkeys(full["name"]))
        bad = [n for n in wanted if n not in known]
        if bad:
            raise _unknown("signature name", bad, known)
        df = df[df["name"].isin(wanted)]
        if df.empty:
            raise InvalidParameterError(f"none of the signatures {wanted} is in the category {category!r}.")
    return df.reset_index(drop=True)


def checkpoint_pairs(*, effect: str | None = None) -> pd.DataFrame:
    """Immune-checkpoint receptor-ligand pairs shipped with tmeatlas, with their sources.

    One row per pair: ``pair`` (e.g. ``"PD-1/PD-L1"``), ``receptor`` and ``ligand`` (HGNC
    symbols, ``+``-joined when a complex), ``receptor_cells`` and ``ligand_cells`` (the cells that
    usually express them), ``effect`` (``"inhibitory"`` or ``"stimulatory"``), ``source`` (key
    of the publication) and its ``citation`` and ``doi``.

    Parameters
    ----------
    effect
        ``"inhibitory"`` or ``"stimulatory"`` for those pairs only; ``None`` for all.

    Returns
    -------
    A :class:`pandas.DataFrame`.
    """
    from .._validation import check_one_of

    check_one_of("effect", effect, [None, "inhibitory", "stimulatory"])
    df = _read(PAIRS_FILE)
    src = _read(SOURCES_FILE).drop_duplicates("source").set_index("source")
    if "source" in df:
        first = df["source"].str.split(";").str[0]
        for col in ("citation", "doi"):
            df[col] = first.map(src[col]).fillna("").to_numpy() if col in src else ""
    if effect is not None:
        df = df[df["effect"] == effect]
    return df.reset_index(drop=True)
