from __future__ import annotations

import gzip

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm
from tmeatlas._resources import gene_table


def _adata(names, **var):
    X = sparse.random(5, len(names), density=0.5, format="csr", random_state=0)
    return ad.AnnData(X=X, var=pd.DataFrame(var, index=pd.Index(names, dtype=str)))


KNOWN = {  # GRCh38 loci (Ensembl/NCBI): chromosome, arm
    "TP53": ("chr17", "17p"),
    "ERBB2": ("chr17", "17q"),
    "EGFR": ("chr7", "7p"),
    "MYC": ("chr8", "8q"),
    "CDKN2A": ("chr9", "9p"),
    "PTPRC": ("chr1", "1q"),
    "CD3E": ("chr11", "11q"),
    "XIST": ("chrX", "Xq"),
}


def test_known_symbols():
    a = _adata(list(KNOWN) + ["MT-CO1", "NOT_A_GENE"])
    tm.pp.gene_positions(a, min_fraction=0.5)
    for g, (c, arm) in KNOWN.items():
        assert a.var.loc[g, "chromosome"] == c
        assert a.var.loc[g, "arm"] == arm
    assert a.var.loc["TP53", "start"] == gene_table().loc["TP53", "start"]
    assert 7_660_000 < a.var.loc["TP53", "start"] < 7_690_000  # TP53 at chr17:7.66-7.69 Mb (GRCh38)
    assert a.var.loc["MT-CO1", "chromosome"] == "chrM" and pd.isna(a.var.loc["MT-CO1", "arm"])
    assert pd.isna(a.var.loc["NOT_A_GENE", "chromosome"]) and pd.isna(a.var.loc["NOT_A_GENE", "start"])
    info = a.uns["gene_positions"]
    assert info["n_matched"] == 9 and info["id_type"] == "symbol"
    assert info["fraction_matched"] == pytest.approx(0.9)


def test_ensembl_ids_with_and_without_version():
    tab = gene_table()
    ids = [tab.loc[g, "gene_id"] for g in KNOWN]
    a = _adata([f"{i}.{k}" for k, i in enumerate(ids, start=3)])
    b = _adata(ids)
    tm.pp.gene_positions(a)
    tm.pp.gene_positions(b)
    assert a.uns["gene_positions"]["id_type"] == "ensembl"
    assert list(a.var["chromosome"]) == [c for c, _ in KNOWN.values()]
    assert list(b.var["arm"]) == [arm for _, arm in KNOWN.values()]


def test_key_column_aliases_legacy_and_duplicates():
    # PDL1 -> CD274 (NCBI alias), FYB -> FYB1 (retired symbol of older Ensembl references),
    # duplicated symbol, a make_unique suffix and lower case all get placed; ids from a column
    names = ["FYB", "PDL1", "TP53", "TP53-1", "egfr", "MYC"]
    a = _adata([f"g{i}" for i in range(len(names))], symbol=names)
    tm.pp.gene_positions(a, key="symbol")
    by = a.uns["gene_positions"]["matched_by"]
    assert a.var["chromosome"].notna().all()
    assert a.var["chromosome"].iloc[0] == gene_table().loc["FYB1", "chromosome"]
    assert a.var["start"].iloc[2] == a.var["start"].iloc[3]
    assert a.var["chromosome"].iloc[1] == "chr9"  # CD274 at 9p24.1
    assert (
        by["alias"] == 1 and by["legacy"] == 1 and by["duplicate_suffix"] == 1 and by["case_insensitive"] == 1
    )


def test_mouse_symbols_clear_error():
    a = _adata(["Actb", "Cd3e", "Ptprc", "Epcam", "Col1a1", "Gapdh", "Cd8a", "Lyz2"])
    with pytest.raises(tm.GenePositionError, match=r"mouse-style gene symbols.*orthologs.*gtf="):
        tm.pp.gene_positions(a)
    with pytest.raises(tm.GenePositionError, match="non-human Ensembl"):
        tm.pp.gene_positions(_adata(["ENSMUSG00000029580", "ENSMUSG00000023274", "ENSMUSG00000026395"]))


def test_wrong_key_and_params():
    a = _adata(list(KNOWN))
    with pytest.raises(tm.GenePositionError, match="not a column of adata.var"):
        tm.pp.gene_positions(a, key="gene_ids")
    with pytest.raises(tm.InvalidParameterError, match="genome"):
        tm.pp.gene_positions(a, genome="mm10")
    with pytest.raises(tm.InvalidInputError, match="expected an AnnData"):
        tm.pp.gene_positions(a.X)


def test_gtf(tmp_path):
    gtf = tmp_path / "genes.gtf.gz"
    lines = [
        "#!genome-build GRCh38",
        '17\tENSEMBL\tgene\t7661779\t7687538\t.\t-\t.\tgene_id "ENSG00000141510.17"; gene_name "TP53";',
        '17\tENSEMBL\ttranscript\t7661779\t7687538\t.\t-\t.\tgene_id "ENSG00000141510.17"; gene_name "TP53";',
        'chr8\tENSEMBL\tgene\t127735434\t127742951\t.\t+\t.\tgene_id "ENSG00000136997"; gene_name "MYC";',
        'MT\tENSEMBL\tgene\t5904\t7445\t.\t+\t.\tgene_id "ENSG00000198804"; gene_name "MT-CO1";',
    ]
    with gzip.open(gtf, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    a = _adata(["TP53", "MYC", "MT-CO1", "XYZ"])
    tm.pp.gene_positions(a, gtf=gtf)
    assert list(a.var["chromosome"].astype(str)) == ["chr17", "chr8", "chrM", "nan"]
    assert list(a.var["arm"].astype(str)) == ["17p", "8q", "nan", "nan"]
    assert a.var.loc["TP53", "start"] == 7661779
    b = _adata(["ENSG00000141510.5", "ENSG00000136997", "ENSG00000198804"])
    tm.pp.gene_positions(b, gtf=gtf)
    assert list(b.var["chromosome"].astype(str)) == ["chr17", "chr8", "chrM"]
    bad = tmp_path / "x.gtf"
    bad.write_text("not a gtf\n")
    with pytest.raises(tm.GenePositionError, match="no 'gene' records"):
        tm.pp.gene_positions(a, gtf=bad)


def test_copy_roundtrip_determinism(tmp_path):
    a = _adata(list(KNOWN) + ["MT-ND1"])
    out = tm.pp.gene_positions(a, copy=True)
    assert "chromosome" not in a.var and out is not a
    assert tm.pp.gene_positions(a) is None
    pd.testing.assert_frame_equal(a.var, out.var)
    a.write_h5ad(tmp_path / "a.h5ad")
    b = ad.read_h5ad(tmp_path / "a.h5ad")
    pd.testing.assert_frame_equal(a.var, b.var, check_categorical=False)
    assert b.uns["gene_positions"]["params"]["genome"] == "hg38"
    assert not np.shares_memory(np.asarray(a.X.data), np.asarray(out.X.data))


@pytest.mark.realdata
@pytest.mark.parametrize("fixture", ["copykat_breast", "her2st"])
def test_real_data_symbols_and_ensembl(fixture, request, resources_dir):
    """>= 95% of genes placed by symbol, and >= 95% after conversion to versioned Ensembl IDs.

    The conversion uses NCBI's symbol -> Ensembl table (org.Hs.eg.db, ../shared/data/resources),
    an independent source from the xclone table that places genes by ID.
    """

    a = request.getfixturevalue(fixture)
    tm.pp.gene_positions(a)
    frac = a.uns["gene_positions"]["fraction_matched"]
    assert frac >= 0.95, frac

    ncbi = pd.read_csv(resources_dir / "gene_positions_hg38_ncbi_orgHs_3.16.tsv.gz", sep="\t").dropna(
        subset=["ensembl_ids"]
    )
    to_id = dict(zip(ncbi["symbol"], ncbi["ensembl_ids"].str.split(",").str[0]))
    convertible = a.var_names[a.var_names.isin(list(to_id))]
    e = ad.AnnData(
        X=sparse.csr_matrix((3, len(convertible))),
        var=pd.DataFrame(index=[f"{to_id[g]}.7" for g in convertible]),
    )
    e.var_names_make_unique()
    tm.pp.gene_positions(e)
    assert e.uns["gene_positions"]["id_type"] == "ensembl"
    assert e.uns["gene_positions"]["fraction_matched"] >= 0.95
    # the two routes agree on the chromosome
    same = np.asarray(e.var["chromosome"].astype(str)) == np.asarray(
        a.var.loc[convertible, "chromosome"].astype(str)
    )
    assert same.mean() > 0.99
