"""Genomic positions of genes: ``tm.pp.gene_positions``."""

from __future__ import annotations

import gzip
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import GenePositionError, InvalidParameterError
from .._keys import UNS, VAR
from .._resources import CHROMOSOMES, NUCLEAR_CHROMOSOMES, chromosome_table, gene_names, gene_table
from .._settings import logger
from .._store import store
from .._validation import start

if TYPE_CHECKING:
    from os import PathLike

    from anndata import AnnData

__all__ = ["gene_positions"]

_GENOMES = {"hg38": "hg38", "grch38": "hg38"}
_ENSEMBL_RE = re.compile(r"^ENS[A-Z]*G\d{11}(\.\d+)?$")
_ENSEMBL_HUMAN_RE = re.compile(r"^ENSG\d{11}(\.\d+)?$")
_MOUSE_SYMBOL_RE = re.compile(r"^[A-Z][a-z][a-z0-9]*(-[a-z0-9]+)?$|^[A-Z][a-z0-9]+$")
_DUP_SUFFIX_RE = re.compile(r"^(.+?)(?:[.-](\d+))$")
MIN_FRACTION = 0.5


@doc_params("copy")
def gene_positions(
    adata: AnnData,
    *,
    genome: str = "hg38",
    gtf: str | PathLike | None = None,
    key: str | None = None,
    min_fraction: float = MIN_FRACTION,
    copy: bool = False,
) -> AnnData | None:
    """Place genes on the genome: write ``var["chromosome"]``, ``var["start"]``, ``var["end"]``, ``var["arm"]``.

    Gene identifiers (``adata.var_names`` or ``adata.var[key]``) are matched against a GRCh38
    gene table shipped with tmeatlas (xclone's GRCh38 annotation, completed with NCBI Gene via
    Bioconductor org.Hs.eg.db 3.16; provenance in ``tmeatlas/_data/PROVENANCE.md``). The kind
    of identifier is detected automatically:

    * **Ensembl gene IDs** (``ENSG00000141510`` or ``ENSG00000141510.17``): the version suffix is
      dropped and the stable ID is matched (IDs of a gene's alternative records included).
    * **HGNC symbols**: matched exactly; a symbol that is not current is resolved through
      unambiguous legacy names (clone-based names of Ensembl 82-84 / Cell Ranger 2016-2018
      references such as ``RP11-34P13.3``, mapped through their stable Ensembl ID) and NCBI
      aliases/previous symbols (``FYB`` → ``FYB1``); then case-insensitively; then without a
      ``make_unique`` suffix (``TBCE.1``/``TBCE-1`` → ``TBCE``) when the unsuffixed name exists.

    Duplicated symbols: every copy in ``var`` gets the same position. A symbol with loci on
    several chromosomes has one locus in the table: the primary (xclone/Ensembl) record, or
    for NCBI-only genes the record with the lowest Entrez ID. Genes not found (and
    mitochondrial genes, which CNV inference ignores) get a missing chromosome.

    Arms: ``var["arm"]`` is the arm label (``"1p"``, ``"17q"``): the gene's side of the
    centromere (UCSC hg38 cytoBand ``acen`` intervals, via numbat).

    Parameters
    ----------
    adata
        Annotated data matrix.
    genome
        Reference build; ``"hg38"`` (GRCh38) is shipped.
    gtf
        Path of a GTF (optionally gzipped) to use instead of the shipped table, e.g. the one
        your count matrix was made with. ``gene`` records are read (``gene_id``, ``gene_name``).
        Arms are assigned with the GRCh38 centromeres when ``genome="hg38"``.
    key
        Column of ``adata.var`` holding the identifiers; ``None`` uses ``var_names``.
    min_fraction
        Fewer matched genes than this fraction is an error (wrong species, wrong identifier
        type, wrong column).
    {copy}

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Writes ``var["chromosome"]`` (ordered categorical
    ``chr1`` ... ``chrY``), ``var["start"]``, ``var["end"]`` (nullable integers, 1-based),
    ``var["arm"]`` and ``uns["gene_positions"]`` (identifier type, fraction matched, counts per
    matching route, params).
    """
    if genome.lower() not in _GENOMES:
        raise InvalidParameterError(
            f"genome {genome!r} is not shipped; use genome='hg38' (GRCh38), or pass `gtf=` with the "
            "annotation of your genome."
        )
    genome = _GENOMES[genome.lower()]
    if not 0 < min_fraction <= 1:
        raise InvalidParameterError(f"min_fraction must be in (0, 1], got {min_fraction}.")
    adata = start(adata, copy)
    if key is None:
        ids = pd.Index(adata.var_names.astype(str))
    else:
        if key not in adata.var.columns:
            raise GenePositionError(
                f"key {key!r} is not a column of adata.var (columns: {list(adata.var.columns)}); "
                "pass the column holding gene symbols or Ensembl IDs, or key=None for var_names."
            )
        ids = pd.Index(adata.var[key].astype(str))

    id_type = _detect_id_type(ids)
    if gtf is not None:
        table, names = _read_gtf(gtf), None
        source = f"GTF {gtf}"
    else:
        table, names = gene_table(genome), gene_names(genome)
        source = f"tmeatlas GRCh38 table ({genome})"

    symbol, route = _match(ids, id_type, table, names, case_insensitive=id_type == "symbol")
    matched = symbol.notna().to_numpy()
    frac = float(matched.mean())
    if frac < min_fraction:
        raise GenePositionError(_mismatch_message(ids, id_type, frac, matched, gtf is not None))

    rows = table.reindex(symbol.fillna("").to_numpy())
    chrom = pd.Categorical(rows["chromosome"].astype(object).to_numpy(), categories=CHROMOSOMES, ordered=True)
    arm = rows["arm"].astype(object).to_numpy() if "arm" in rows else np.full(len(rows), np.nan, dtype=object)
    if gtf is not None:
        arm = _arms(rows["chromosome"].astype(object), rows["start"], rows["end"], genome)
    arm = pd.Categorical(pd.Series(arm).where(pd.notna(chrom)).to_numpy(), categories=_arm_order())
    startpos = pd.array(rows["start"].to_numpy(), dtype="Int64")
    endpos = pd.array(rows["end"].to_numpy(), dtype="Int64")
    routes = pd.Series(route).value_counts().to_dict()
    logger.info(
        "gene_positions: %d of %d genes placed (%.1f%%), ids detected as %s",
        matched.sum(),
        len(ids),
        100 * frac,
        id_type,
    )
    store(
        adata,
        tool="pp.gene_positions",
        var={VAR.chromosome: chrom, VAR.start: startpos, VAR.end: endpos, VAR.arm: arm},
        uns_key=UNS.gene_positions,
        uns={
            "id_type": id_type,
            "n_genes": len(ids),
            "n_matched": int(matched.sum()),
            "fraction_matched": frac,
            "matched_by": {k: int(v) for k, v in routes.items() if k != "none"},
            "source": source,
        },
        params={
            "genome": genome,
            "gtf": None if gtf is None else str(gtf),
            "key": key,
            "min_fraction": min_fraction,
        },
    )
    return adata if copy else None


def _arm_order() -> list[str]:
    return [c[3:] + a for c in NUCLEAR_CHROMOSOMES for a in ("p", "q")]


def _detect_id_type(ids: pd.Index) -> str:
    """'ensembl', 'ensembl_nonhuman', 'symbol' or 'symbol_mouse_like' by majority of a sample."""
    sample = ids[:: max(1, len(ids) // 5000)]
    ens = np.fromiter((bool(_ENSEMBL_RE.match(s)) for s in sample), bool, len(sample))
    if ens.mean() > 0.5:
        human = np.fromiter((bool(_ENSEMBL_HUMAN_RE.match(s)) for s in sample[ens]), bool, int(ens.sum()))
        return "ensembl" if human.mean() > 0.5 else "ensembl_nonhuman"
    mouse = np.fromiter((bool(_MOUSE_SYMBOL_RE.match(s)) for s in sample), bool, len(sample))
    return "symbol_mouse_like" if mouse.mean() > 0.5 else "symbol"


#: the lookups of the last (table, names) pair :func:`_lookups` built (the shipped resources are
#: the same objects at every call)
_LOOKUPS: dict[str, Any] = {}


def _lookups(table: pd.DataFrame, names: pd.DataFrame | None) -> dict[str, pd.Series]:
    """Identifier -> symbol lookups of ``table`` and ``names``: ``ensembl`` (stable gene ID),
    ``synonym`` and ``synonym_kind`` (previous symbols and aliases; with ``names``) and ``upper``
    (upper-cased symbols that are unambiguous). Built once per pair of objects.
    """
    if _LOOKUPS.get("table") is table and _LOOKUPS.get("names") is names:
        return _LOOKUPS["maps"]
    symbols = table.index
    id_map = pd.Series(symbols[table["gene_id"] != ""], index=table.loc[table["gene_id"] != "", "gene_id"])
    maps: dict[str, pd.Series] = {}
    if names is not None:
        extra = names[names["kind"] == "ensembl"]
        id_map = pd.concat([id_map, pd.Series(extra["symbol"].to_numpy(), index=extra["name"].to_numpy())])
        syn = names[names["kind"] != "ensembl"]
        maps["synonym"] = pd.Series(syn["symbol"].to_numpy(), index=syn["name"].to_numpy())
        maps["synonym_kind"] = pd.Series(syn["kind"].to_numpy(), index=syn["name"].to_numpy())
    maps["ensembl"] = id_map[~id_map.index.duplicated()]
    upper = pd.Series(symbols, index=symbols.str.upper())
    maps["upper"] = upper[~upper.index.duplicated(keep=False)]
    _LOOKUPS.update(table=table, names=names, maps=maps)
    return maps


def _match(
    ids: pd.Index, id_type: str, table: pd.DataFrame, names: pd.DataFrame | None, *, case_insensitive: bool
) -> tuple[pd.Series, np.ndarray]:
    """Map each identifier to a symbol of ``table`` (or NaN); return it and the route used.

    Case-insensitive matching is only tried when the identifiers look like human symbols: mouse
    symbols (``Actb``) must not be placed at the human ortholog's locus.
    """
    n = len(ids)
    out = pd.Series(np.full(n, np.nan, dtype=object))
    route = np.full(n, "none", dtype=object)
    symbols = table.index
    if id_type.startswith("ensembl"):
        stable = pd.Index(ids.str.replace(r"\.\d+$", "", regex=True))
        id_map = _lookups(table, names)["ensembl"]
        hit = stable.isin(id_map.index)
        out[hit] = id_map.reindex(stable[hit]).to_numpy()
        route[hit] = "ensembl_id"
        return out, route

    exact = ids.isin(symbols)
    out[exact] = ids[exact]
    route[exact] = "symbol"
    maps = _lookups(table, names)
    if names is not None:
        syn_map, syn_kind = maps["synonym"], maps["synonym_kind"]
        todo = ~out.notna().to_numpy() & ids.isin(syn_map.index)
        out[todo] = syn_map.reindex(ids[todo]).to_numpy()
        route[todo] = syn_kind.reindex(ids[todo]).to_numpy()
    # case-insensitive, only when unambiguous
    upper = maps["upper"]
    todo = ~out.notna().to_numpy() & case_insensitive
    if todo.any():
        up = ids[todo].str.upper()
        hit = up.isin(upper.index)
        idx = np.flatnonzero(todo)[hit]
        out[idx] = upper.reindex(up[hit]).to_numpy()
        route[idx] = "case_insensitive"
    # make_unique suffixes: "TBCE.1" / "TBCE-1" -> "TBCE" when "TBCE" is itself in the data
    todo = np.flatnonzero(~out.notna().to_numpy())
    present = set(ids)
    for i in todo:
        m = _DUP_SUFFIX_RE.match(ids[i])
        if m and m.group(1) in present:
            j = (
                ids.get_indexer([m.group(1)])[0]
                if ids.is_unique
                else int(np.flatnonzero(ids == m.group(1))[0])
            )
            if pd.notna(out[j]):
                out[i] = out[j]
                route[i] = "duplicate_suffix"
    return out, route


def _mismatch_message(ids: pd.Index, id_type: str, frac: float, matched: np.ndarray, is_gtf: bool) -> str:
    examples = ", ".join(map(repr, ids[~matched][:5]))
    what = {
        "ensembl": "human Ensembl gene IDs",
        "ensembl_nonhuman": "non-human Ensembl IDs (e.g. ENSMUSG: mouse)",
        "symbol": "gene symbols",
        "symbol_mouse_like": "mouse-style gene symbols (first letter upper case only, e.g. 'Actb', 'Cd3e')",
    }[id_type]
    msg = (
        f"only {100 * frac:.1f}% of {len(ids)} genes could be placed on the genome (need "
        f">= {100 * MIN_FRACTION:.0f}%). Identifiers were detected as {what}; unmatched examples: {examples}. "
    )
    if id_type in ("symbol_mouse_like", "ensembl_nonhuman"):
        msg += (
            "tmeatlas ships human GRCh38 positions: map the genes to human orthologs first, or pass "
            "`gtf=` with the annotation of your genome."
        )
    elif is_gtf:
        msg += "Check that the GTF is the annotation your matrix was made with (same gene_id / gene_name)."
    else:
        msg += (
            "If another column of adata.var holds symbols or Ensembl IDs, pass it as `key=`; if your "
            "matrix was made with another annotation, pass its GTF as `gtf=`; a targeted panel with "
            "few placeable genes cannot support genome-wide CNV inference."
        )
    return msg


def _read_gtf(path: str | PathLike) -> pd.DataFrame:
    """Gene records of a GTF as a table indexed by gene_name (and gene_id), like the shipped table."""
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    attr_re = re.compile(r'(\w+) "([^"]*)"')
    try:
        with opener(path, "rt") as fh:
            for line in fh:
                if line.startswith("#"):
                    continue
                f = line.rstrip("\n").split("\t")
                if len(f) < 9 or f[2] != "gene":
                    continue
                attrs = dict(attr_re.findall(f[8]))
                chrom = f[0] if f[0].startswith("chr") else f"chr{f[0]}"
                chrom = "chrM" if chrom == "chrMT" else chrom
                gid = attrs.get("gene_id", "")
                rows.append(
                    (attrs.get("gene_name", gid), re.sub(r"\.\d+$", "", gid), chrom, int(f[3]), int(f[4]))
                )
    except OSError as e:
        raise GenePositionError(f"cannot read GTF {str(path)!r}: {e}") from e
    if not rows:
        raise GenePositionError(
            f"no 'gene' records found in GTF {str(path)!r}; is it a GTF file (not GFF3/BED)?"
        )
    df = pd.DataFrame(rows, columns=["symbol", "gene_id", "chromosome", "start", "end"])
    df = df[df["chromosome"].isin(CHROMOSOMES)]
    by_id = df.drop_duplicates("gene_id").assign(symbol=lambda d: d["gene_id"])
    by_name = df.drop_duplicates("symbol")
    # one lookup table: symbols and IDs both index it (IDs are matched via the gene_id column)
    out = by_name.set_index("symbol")
    out["gene_id"] = out["gene_id"].where(~out["gene_id"].duplicated(), "")
    extra = by_id[~by_id["gene_id"].isin(out["gene_id"])].set_index("symbol")
    return pd.concat([out, extra])


def _arms(chrom: pd.Series, start_: pd.Series, end_: pd.Series, genome: str) -> np.ndarray:
    """Arm labels from GRCh38 centromeres (NaN for other genomes or unplaced genes)."""
    out = np.full(len(chrom), np.nan, dtype=object)
    if genome != "hg38":
        return out
    cen = chromosome_table(genome)
    mid = ((cen["centromere_start"] + cen["centromere_end"]) / 2).to_dict()
    for i, (c, s, e) in enumerate(zip(chrom, start_, end_)):
        if isinstance(c, str) and c in mid and pd.notna(mid[c]) and pd.notna(s):
            out[i] = c[3:] + ("p" if (s + e) / 2 < mid[c] else "q")
    return out
