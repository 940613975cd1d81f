"""Loaders for the resources shipped in ``tmeatlas/_data`` (read once, cached)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

__all__ = ["CHROMOSOMES", "NUCLEAR_CHROMOSOMES", "chromosome_table", "data_path", "gene_names", "gene_table"]

#: nuclear chromosomes in genome order (those that CNV inference uses)
NUCLEAR_CHROMOSOMES = [f"chr{i}" for i in range(1, 23)] + ["chrX", "chrY"]
#: categories of ``var["chromosome"]``
CHROMOSOMES = [*NUCLEAR_CHROMOSOMES, "chrM"]


def data_path(name: str):
    """Path-like handle of a file in ``tmeatlas/_data``."""
    return resources.files("tmeatlas") / "_data" / name


@cache
def gene_table(genome: str = "hg38") -> pd.DataFrame:
    """GRCh38 genes, indexed by HGNC symbol: gene_id, chromosome, start, end, arm, band, source.

    Sorted by genomic position. See ``tmeatlas/_data/PROVENANCE.md``.
    """
    with data_path(f"genes_{genome}.tsv.gz").open("rb") as fh:
        df = pd.read_csv(
            fh, sep="\t", compression="gzip", dtype={"gene_id": str, "band": str}, keep_default_na=False
        )
    df["chromosome"] = pd.Categorical(df["chromosome"], categories=CHROMOSOMES, ordered=True)
    return df.set_index("symbol")


@cache
def gene_names(genome: str = "hg38") -> pd.DataFrame:
    """Extra names of the genes of :func:`gene_table`: columns name, kind (ensembl/legacy/alias), symbol."""
    with data_path(f"gene_names_{genome}.tsv.gz").open("rb") as fh:
        return pd.read_csv(fh, sep="\t", compression="gzip", dtype=str, keep_default_na=False)


@cache
def chromosome_table(genome: str = "hg38") -> pd.DataFrame:
    """Chromosome lengths and centromere intervals, indexed by chromosome (``chr1`` ... ``chrY``)."""
    with data_path(f"chromosomes_{genome}.tsv").open("rb") as fh:
        return pd.read_csv(fh, sep="\t").set_index("chromosome")
