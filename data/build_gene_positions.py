"""Build the GRCh38 gene-position resources shipped in ``tmeatlas/_data``.

Run from the project root:  ``python data/build_gene_positions.py [--shared ../shared/data/resources]``

Sources (all licences allow redistribution; see ``tmeatlas/_data/PROVENANCE.md``):

1. xclone 0.4.0 wheel (Apache-2.0), ``xclone/data/anno_data/annotate_genes_hg38_update.txt``:
   33,472 genes, symbol, Ensembl ID, GRCh38 start/stop, arm, band.  Primary table.
2. Bioconductor org.Hs.eg.db 3.16 (Artistic-2.0; NCBI Gene data, public): genes whose symbol
   is absent from (1) are added; their Ensembl IDs and their aliases / previous symbols give
   extra names.  Arms of these genes come from the centromere table (3).
3. numbat (MIT) ``centromeres_hg38.tsv`` and ``chrom_sizes_hg38.tsv``.
4. xclone 0.4.0 ``annotate_genes_hg19_update.txt`` and ``annotate_genes_hg38_select.txt``: used
   only as a dictionary of legacy gene names (Ensembl 82-84 clone names such as RP11-34P13.3,
   used by Cell Ranger references of 2016-2018) to Ensembl gene IDs; positions always come
   from (1)/(2) through the stable Ensembl ID.

Files (1), (2), (3) are the copies in ``../shared/data/resources``; the xclone wheel is fetched
from PyPI with ``pip download xclone==0.4.0 --no-deps`` when not present.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

CHROMS = [f"chr{i}" for i in range(1, 23)] + ["chrX", "chrY"]
ALL_CHROMS = [*CHROMS, "chrM"]

# Mitochondrial genes (absent from sources 1 and 2): the 13 protein-coding genes and 2 rRNAs of
# the revised Cambridge Reference Sequence (NC_012920.1 = Ensembl GRCh38 chromosome MT), with
# their Ensembl gene IDs and 1-based coordinates as listed by Ensembl BioMart.
MITO = [
    ("MT-RNR1", "ENSG00000211459", 648, 1601),
    ("MT-RNR2", "ENSG00000210082", 1671, 3229),
    ("MT-ND1", "ENSG00000198888", 3307, 4262),
    ("MT-ND2", "ENSG00000198763", 4470, 5511),
    ("MT-CO1", "ENSG00000198804", 5904, 7445),
    ("MT-CO2", "ENSG00000198712", 7586, 8269),
    ("MT-ATP8", "ENSG00000228253", 8366, 8572),
    ("MT-ATP6", "ENSG00000198899", 8527, 9207),
    ("MT-CO3", "ENSG00000198938", 9207, 9990),
    ("MT-ND3", "ENSG00000198840", 10059, 10404),
    ("MT-ND4L", "ENSG00000212907", 10470, 10766),
    ("MT-ND4", "ENSG00000198886", 10760, 12137),
    ("MT-ND5", "ENSG00000198786", 12337, 14148),
    ("MT-ND6", "ENSG00000198695", 14149, 14673),
    ("MT-CYB", "ENSG00000198727", 14747, 15887),
]


def _mito() -> pd.DataFrame:
    df = pd.DataFrame(MITO, columns=["symbol", "gene_id", "start", "end"])
    return df.assign(chromosome="chrM", arm="", band="", source="ensembl_mt")[
        ["symbol", "gene_id", "chromosome", "start", "end", "arm", "band", "source"]
    ]


OUT = Path(__file__).resolve().parents[1] / "tmeatlas" / "_data"


def _xclone_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, "xclone==0.4.0"],
            check=True,
        )
        whl = next(Path(tmp).glob("xclone-*.whl"))
        with zipfile.ZipFile(whl) as z:
            base = "xclone/data/anno_data/"
            h19 = pd.read_csv(z.open(base + "annotate_genes_hg19_update.txt"), sep="\t")
            sel = pd.read_csv(z.open(base + "annotate_genes_hg38_select.txt"), sep="\t")
    return h19, sel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared/data/resources"))
    args = ap.parse_args()
    R = Path(args.shared)

    cen = pd.read_csv(R / "centromeres_hg38.tsv", sep="\t")
    sizes = pd.read_csv(R / "chrom_sizes_hg38.tsv", sep="\t")
    chrom = sizes.rename(columns={"CHROM": "chromosome", "size": "length"})
    chrom["chromosome"] = "chr" + chrom["chromosome"].astype(str)
    cen["chromosome"] = "chr" + cen["CHROM"].astype(str)
    chrom = chrom.merge(
        cen[["chromosome", "start", "end"]].rename(
            columns={"start": "centromere_start", "end": "centromere_end"}
        ),
        on="chromosome",
        how="left",
    )
    # numbat's tables cover the autosomes; chrX/chrY lengths are the GRCh38 assembly's and their
    # centromeres the acen bands of UCSC's hg38 cytoBand table (as numbat's autosome values are).
    sex = pd.DataFrame(
        {
            "chromosome": ["chrX", "chrY"],
            "length": [156_040_895, 57_227_415],
            "centromere_start": [58_100_000, 10_300_000],
            "centromere_end": [61_000_000, 10_600_000],
        }
    )
    chrom = pd.concat([chrom[chrom.chromosome.isin(CHROMS)], sex], ignore_index=True)
    chrom = chrom.set_index("chromosome").loc[CHROMS].reset_index()
    chrom = pd.concat([chrom, pd.DataFrame({"chromosome": ["chrM"], "length": [16_569]})], ignore_index=True)
    mid = dict(zip(chrom.chromosome, (chrom.centromere_start + chrom.centromere_end) / 2))

    # 1. primary table
    x = pd.read_csv(R / "gene_positions_hg38_xclone.tsv.gz", sep="\t")
    x = pd.DataFrame(
        {
            "symbol": x.GeneName.astype(str),
            "gene_id": x.GeneID.astype(str),
            "chromosome": "chr" + x.chr.astype(str),
            "start": x.start.astype(np.int64),
            "end": x.stop.astype(np.int64),
            "arm": x.chr.astype(str) + x.arm.astype(str),
            "band": x.band.astype(str),
            "source": "xclone",
        }
    )
    x = x[x.chromosome.isin(CHROMS)]
    assert not x.symbol.duplicated().any() and not x.gene_id.duplicated().any()

    # 2. NCBI genes not in the primary table
    n = pd.read_csv(R / "gene_positions_hg38_ncbi_orgHs_3.16.tsv.gz", sep="\t", dtype={"ensembl_ids": str})
    n = n[n.chromosome.isin(CHROMS) & n.start.notna()].copy()
    n = n.sort_values(["symbol", "entrez_id"])
    # a symbol on several chromosomes: keep the lowest Entrez ID (the earliest, canonical record)
    n_first = n.drop_duplicates("symbol", keep="first")
    add = n_first[~n_first.symbol.isin(set(x.symbol))]
    cen_mid = add.chromosome.map(mid)
    gene_mid = (add.start + add.end) / 2
    add = pd.DataFrame(
        {
            "symbol": add.symbol.astype(str),
            "gene_id": add.ensembl_ids.fillna("").str.split(",").str[0],
            "chromosome": add.chromosome,
            "start": add.start.astype(np.int64),
            "end": add.end.astype(np.int64),
            "arm": add.chromosome.str[3:] + np.where(gene_mid < cen_mid, "p", "q"),
            "band": "",
            "source": "ncbi",
        }
    )
    add.loc[add.gene_id.isin(set(x.gene_id)), "gene_id"] = ""
    genes = pd.concat([x, add, _mito()], ignore_index=True)
    order = {c: i for i, c in enumerate(ALL_CHROMS)}
    genes = genes.sort_values(
        ["chromosome", "start"], key=lambda s: s.map(order) if s.name == "chromosome" else s
    )
    genes = genes.reset_index(drop=True)
    symbols = set(genes.symbol)
    sym_of_id = {g: s for g, s in zip(genes.gene_id, genes.symbol) if g}

    # names: Ensembl IDs, legacy names, aliases -> symbol of the table
    rows = []
    for _, r in n.iterrows():
        if r.symbol not in symbols or not isinstance(r.ensembl_ids, str):
            continue
        for gid in r.ensembl_ids.split(","):
            if gid and gid not in sym_of_id:
                rows.append((gid, "ensembl", r.symbol))
                sym_of_id[gid] = r.symbol
    h19, sel = _xclone_tables()
    legacy = pd.concat([h19[["GeneName", "GeneID"]], sel[["GeneName", "GeneID"]]]).drop_duplicates()
    legacy = legacy[~legacy.GeneName.isin(symbols)]
    legacy["symbol"] = legacy.GeneID.map(sym_of_id)
    legacy = legacy.dropna(subset=["symbol"])
    amb = legacy.groupby("GeneName").symbol.nunique()
    legacy = legacy[legacy.GeneName.isin(amb.index[amb == 1])].drop_duplicates("GeneName")
    rows += [(a, "legacy", s) for a, s in zip(legacy.GeneName, legacy.symbol)]
    al = pd.read_csv(R / "gene_aliases_ncbi_orgHs_3.16.tsv.gz", sep="\t")
    al = al[
        al.symbol.isin(symbols) & ~al.alias_symbol.isin(symbols) & ~al.alias_symbol.isin(set(legacy.GeneName))
    ]
    namb = al.groupby("alias_symbol").symbol.nunique()
    al = al[al.alias_symbol.isin(namb.index[namb == 1])].drop_duplicates("alias_symbol")
    rows += [(a, "alias", s) for a, s in zip(al.alias_symbol, al.symbol)]
    names = pd.DataFrame(rows, columns=["name", "kind", "symbol"]).drop_duplicates("name")
    assert not names.name.isin(symbols).any()
    assert re.match(r"ENSG\d{11}$", genes.gene_id[genes.gene_id != ""].iloc[0])

    OUT.mkdir(parents=True, exist_ok=True)
    genes.to_csv(OUT / "genes_hg38.tsv.gz", sep="\t", index=False)
    names.to_csv(OUT / "gene_names_hg38.tsv.gz", sep="\t", index=False)
    chrom.to_csv(OUT / "chromosomes_hg38.tsv", sep="\t", index=False)
    print(
        f"genes: {len(genes)} ({(genes.source == 'ncbi').sum()} from NCBI); names: "
        + ", ".join(f"{k}={v}" for k, v in names.kind.value_counts().items())
    )


if __name__ == "__main__":
    main()
