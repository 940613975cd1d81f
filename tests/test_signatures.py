"""Signature scores (``tm.tl.score_signatures``) and the signature library (``tm.datasets.signatures``).

Known answers on tiny matrices (mean method exactly; rank method against a direct dense
implementation of UCell's formula; control method against ``sc.tl.score_genes``), then the
real-data anchor: the control score equals scanpy's on two real data sets.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.stats import rankdata

import tmeatlas as tm
from tmeatlas.datasets import _signatures as lib_mod
from tmeatlas.tl._signatures import _resolve, score_signatures


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _adata(X, names=None) -> ad.AnnData:
    a = ad.AnnData(X=X)
    a.var_names = names if names is not None else [f"G{i}" for i in range(a.n_vars)]
    a.obs_names = [f"c{i}" for i in range(a.n_obs)]
    return a


def _log_data(n_cells=200, n_genes=1500, seed=0) -> ad.AnnData:
    rs = np.random.default_rng(seed)
    lam = rs.gamma(0.6, 1.5, size=n_genes)
    counts = rs.poisson(lam[None, :] * rs.gamma(4, 0.25, size=(n_cells, 1)))
    X = sparse.csr_matrix(counts.astype(np.float32))
    lib = np.asarray(X.sum(axis=1)).ravel()
    X = sparse.csr_matrix(sparse.diags(1e4 / lib) @ X, dtype=np.float32)
    X.data = np.log1p(X.data)
    return _adata(X)


def _ucell_dense(X: np.ndarray, cols, max_rank: int) -> np.ndarray:
    """UCell (>= 2.7.6) written out on a dense matrix: average ranks, capped, normalised U."""
    mr = min(max_rank, X.shape[1])
    R = np.minimum(rankdata(-X, axis=1, method="average"), mr)
    n = len(cols)
    lfac = n * (n + 1) / 2
    return 1 - (R[:, cols].sum(axis=1) - lfac) / (n * mr - lfac)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


@pytest.fixture
def fake_library(tmp_path, monkeypatch):
    """A small library in the shipped format, read in place of tmeatlas/_data."""
    genes = pd.DataFrame(
        [("TEST_UP", g, "up", "1") for g in ["G0", "G1", "G2", "G3"]]
        + [("TEST_MIXED", g, "up", "2") for g in ["G4", "G5", "G6"]]
        + [("TEST_MIXED", "G7", "down", "1")]
        + [("OTHER_SET", g, "up", "1") for g in ["G8", "G9", "G10", "MISSING1"]],
        columns=["name", "gene", "direction", "weight"],
    )
    meta = pd.DataFrame(
        {
            "name": ["TEST_UP", "TEST_MIXED", "OTHER_SET"],
            "category": ["hallmark", "exhaustion", "hallmark"],
            "species": "human",
            "source": ["src_a", "src_b;src_a", "src_a"],
            "description": ["d1", "d2", "d3"],
            "n_up": [4, 3, 4],
            "n_down": [0, 1, 0],
            "check": "checked",
        }
    )
    src = pd.DataFrame(
        {
            "source": ["src_a", "src_b"],
            "citation": ["A et al. 2020", "B et al. 2021"],
            "doi": ["10.1/a", "10.1/b"],
            "licence": ["CC BY 4.0", "facts"],
        }  # fmt: skip
    )
    pairs = pd.DataFrame(
        {
            "pair": ["PD-1/PD-L1", "CD28/CD80"],
            "receptor": ["PDCD1", "CD28"],
            "ligand": ["CD274", "CD80"],
            "receptor_cells": ["T cells", "T cells"],
            "ligand_cells": ["tumour", "APC"],
            "effect": ["inhibitory", "stimulatory"],
            "source": ["src_b", "src_a"],
        }  # fmt: skip
    )
    files = {
        lib_mod.GENES_FILE: genes,
        lib_mod.META_FILE: meta,
        lib_mod.SOURCES_FILE: src,
        lib_mod.PAIRS_FILE: pairs,
    }
    for name, df in files.items():
        df.to_csv(tmp_path / name, sep="\t", index=False)

    def _read(name):
        path = tmp_path / name
        if not path.exists():
            raise tm.TmeatlasError(f"missing {name}")
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)

    monkeypatch.setattr(lib_mod, "_read", _read)
    return files


# ------------------------------------------------------------------------------------------------
# mean method: exact known answer
# ------------------------------------------------------------------------------------------------
def test_mean_method_known_answer():
    X = np.array(
        [[1.0, 2.0, 0.0, 4.0, 1.0], [0.0, 0.0, 3.0, 1.0, 2.0], [2.0, 2.0, 2.0, 2.0, 2.0]], dtype=np.float32
    )
    X *= np.float32(0.37)  # non-integer: log-normalised values, used as given
    a = _adata(sparse.csr_matrix(X), ["A", "B", "C", "D", "E"])
    sigs = {
        "plain": ["A", "B", "C"],
        "weighted": {"up": ["A", "D"], "weights": {"A": 3.0, "D": 1.0}},
        "updown": {"up": ["A", "B"], "down": ["E", "C"]},
    }
    score_signatures(a, signatures=sigs, method="mean", min_genes=2)
    np.testing.assert_allclose(a.obs["sig_plain"], X[:, :3].mean(1), atol=1e-6)
    np.testing.assert_allclose(a.obs["sig_weighted"], (3 * X[:, 0] + X[:, 3]) / 4, atol=1e-6)
    np.testing.assert_allclose(a.obs["sig_updown"], X[:, :2].mean(1) - X[:, [4, 2]].mean(1), atol=1e-6)
    assert a.obs["sig_plain"].dtype == np.float32
    S = a.obsm["X_signatures"]
    assert isinstance(S, pd.DataFrame) and list(S.columns) == ["plain", "weighted", "updown"]
    np.testing.assert_array_equal(S["updown"].to_numpy(), a.obs["sig_updown"].to_numpy())
    res = a.uns["signatures"]
    assert res["method"] == "mean" and res["input"].startswith("log")
    assert res["params"]["method"] == "mean"


def test_counts_are_log_normalised_on_the_fly():
    rs = np.random.default_rng(3)
    C = rs.poisson(2.0, size=(30, 40)).astype(np.float32)
    a = _adata(sparse.csr_matrix(C))
    E = np.log1p(C / C.sum(1, keepdims=True) * 1e4)
    score_signatures(a, signatures={"s": ["G1", "G5", "G7", "G9"]}, method="mean")
    np.testing.assert_allclose(a.obs["sig_s"], E[:, [1, 5, 7, 9]].mean(1), rtol=1e-5)
    assert a.uns["signatures"]["input"].startswith("counts")
    b = _adata(C.copy())  # dense input, same answer
    score_signatures(b, signatures={"s": ["G1", "G5", "G7", "G9"]}, method="mean")
    np.testing.assert_allclose(b.obs["sig_s"], a.obs["sig_s"], rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# control method: scanpy's score_genes
# ------------------------------------------------------------------------------------------------
def test_control_equals_scanpy_score_genes():
    sc = pytest.importorskip("scanpy")
    a = _log_data()
    rs = np.random.default_rng(1)
    sets = {f"S{k}": list(rs.choice(a.var_names, 8 + 7 * k, replace=False)) for k in range(5)}
    for kw in ({}, {"ctrl_size": 20, "n_bins": 10}):
        score_signatures(a, signatures=sets, method="control", rng=7, **kw)
        for name, genes in sets.items():
            sc.tl.score_genes(a, genes, score_name="ref", random_state=7, **kw)
            np.testing.assert_allclose(a.obs[f"sig_{name}"], a.obs["ref"], atol=2e-6)
    summ = a.uns["signatures"]["summary"]
    assert (summ["n_control"] > 0).all() and summ["scored"].all()


def test_control_down_genes_and_gene_pool():
    sc = pytest.importorskip("scanpy")
    a = _log_data(seed=2)
    up, down = list(a.var_names[10:30]), list(a.var_names[400:412])
    score_signatures(a, signatures={"s": {"up": up, "down": down}}, method="control")
    sc.tl.score_genes(a, up, score_name="u", random_state=0)
    sc.tl.score_genes(a, down, score_name="d", random_state=0)
    np.testing.assert_allclose(a.obs["sig_s"], a.obs["u"] - a.obs["d"], atol=2e-6)
    pool = list(a.var_names[:900])
    score_signatures(a, signatures={"s": up}, gene_pool=pool, method="control", rng=4)
    sc.tl.score_genes(a, up, gene_pool=pool, score_name="u", random_state=4)
    np.testing.assert_allclose(a.obs["sig_s"], a.obs["u"], atol=2e-6)


def test_control_independent_of_threads_and_chunks():
    a = _log_data(seed=5)
    sets = {"x": list(a.var_names[:40]), "y": list(a.var_names[100:125])}
    b, c = a.copy(), a.copy()
    score_signatures(a, signatures=sets, n_jobs=1)
    score_signatures(b, signatures=sets, n_jobs=2, chunk_size=37)
    score_signatures(c, signatures=sets, rng=1)
    np.testing.assert_allclose(a.obsm["X_signatures"], b.obsm["X_signatures"], atol=1e-6)
    assert not np.allclose(a.obs["sig_x"], c.obs["sig_x"])  # another seed draws other controls
    d = a.copy()
    score_signatures(d, signatures=sets, n_jobs=1)
    np.testing.assert_array_equal(a.obsm["X_signatures"], d.obsm["X_signatures"])  # same seed, same result


# ------------------------------------------------------------------------------------------------
# rank method: UCell
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n_genes", "max_rank", "density", "levels"),
    [
        (60, 20, 0.5, 4),  # many ties, zeros below the cap
        (60, 200, 0.9, 4),  # cap above the number of genes: zeros ranked inside the cap
        (40, 40, 0.95, 3),  # tie group straddling the cap
        (900, 250, 0.7, 0),  # many distinct values: partial-sort path, ties from rounding
        (900, 2000, 0.4, 0),
    ],
)
def test_rank_equals_dense_ucell(n_genes, max_rank, density, levels):
    rs = np.random.default_rng(n_genes + max_rank)
    vals = (
        rs.integers(1, levels + 1, size=(25, n_genes))
        if levels
        else np.round(rs.random((25, n_genes)) * 5, 2)
    )
    X = vals * (rs.random((25, n_genes)) < density)
    a = _adata(sparse.csr_matrix(X))
    cols = {f"S{k}": rs.choice(n_genes, 3 + 2 * k, replace=False) for k in range(4)}
    score_signatures(
        a, signatures={k: [f"G{i}" for i in v] for k, v in cols.items()}, method="rank", max_rank=max_rank
    )
    for k, v in cols.items():
        np.testing.assert_allclose(a.obs[f"sig_{k}"], _ucell_dense(X, v, max_rank), atol=1e-6)
    assert a.uns["signatures"]["params"]["max_rank"] == min(max_rank, n_genes)


def test_rank_down_genes_clip_at_zero():
    rs = np.random.default_rng(0)
    X = rs.integers(0, 6, size=(40, 80)).astype(float)
    a = _adata(sparse.csr_matrix(X))
    up, down = [3, 5, 7, 9], [10, 11, 12]
    sig = {"s": {"up": [f"G{i}" for i in up], "down": [f"G{i}" for i in down]}}
    score_signatures(a, signatures=sig, method="rank", max_rank=30)
    want = np.maximum(_ucell_dense(X, up, 30) - _ucell_dense(X, down, 30), 0)
    np.testing.assert_allclose(a.obs["sig_s"], want, atol=1e-6)
    assert (a.obs["sig_s"] >= 0).all()
    # ranks do not depend on per-cell normalisation: counts and their log-normalised values agree
    b = _adata(sparse.csr_matrix(np.log1p(X / X.sum(1, keepdims=True) * 1e4)))
    score_signatures(b, signatures=sig, method="rank", max_rank=30)
    np.testing.assert_allclose(a.obs["sig_s"], b.obs["sig_s"], atol=1e-6)


# ------------------------------------------------------------------------------------------------
# genes, inputs, reporting
# ------------------------------------------------------------------------------------------------
def test_missing_genes_reported_and_skipped_sets_warned_once():
    a = _log_data(n_genes=100)
    sigs = {
        "ok": ["G1", "G2", "G3", "NOPE1"],
        "few": ["G4", "NOPE2", "NOPE3"],
        "none": ["NOPE4", "NOPE5"],
        "two": ["G5", "G6"],  # shorter than min_genes: scored when all its genes are present
    }
    with pytest.warns(UserWarning, match=r"2 of 4 signatures not scored.*few, none") as rec:
        score_signatures(a, signatures=sigs, method="mean")
    assert len([w for w in rec if issubclass(w.category, UserWarning)]) == 1
    res = a.uns["signatures"]
    summ = res["summary"].set_index("signature")
    assert summ.loc["ok", "n_present"] == 3 and summ.loc["ok", "n_genes"] == 4
    assert summ.loc["ok", "fraction_present"] == pytest.approx(0.75)
    assert summ["scored"].tolist() == [True, False, False, True]
    genes = res["genes"]
    assert set(genes.loc[~genes["present"], "gene"]) == {"NOPE1", "NOPE2", "NOPE3", "NOPE4", "NOPE5"}
    assert (
        "sig_ok" in a.obs and "sig_few" not in a.obs and list(a.obsm["X_signatures"].columns) == ["ok", "two"]
    )


def test_ensembl_ids_and_legacy_symbols_match():
    from tmeatlas._resources import gene_table

    gt = gene_table()
    syms = ["CD3E", "GZMB", "PRF1", "NKG7", "MKI67", "TOP2A"]
    ids = [gt.loc[s, "gene_id"] for s in syms]
    X = sparse.csr_matrix(np.random.default_rng(0).random((10, 6)).astype(np.float32))
    a = _adata(X, ids)
    score_signatures(
        a, signatures={"t": syms[:4], "cc": syms[4:] + ["NOT_A_GENE"]}, method="mean", min_genes=2
    )
    np.testing.assert_allclose(a.obs["sig_t"], X.toarray()[:, :4].mean(1), atol=1e-6)
    genes = a.uns["signatures"]["genes"]
    assert genes.set_index("gene").loc["GZMB", "var_name"] == ids[1]
    # a legacy symbol in the data ("FYB") matches the current one in a signature ("FYB1")
    b = _adata(X.copy(), ["FYB", "CD3E", "GZMB", "PRF1", "NKG7", "MKI67"])
    score_signatures(b, signatures={"s": ["FYB1", "CD3E", "GZMB"]}, method="mean")
    np.testing.assert_allclose(b.obs["sig_s"], X.toarray()[:, :3].mean(1), atol=1e-6)


def test_gmt_dict_and_table_inputs_agree(tmp_path):
    a = _log_data(n_genes=300)
    sets = {"SET_A": [f"G{i}" for i in range(20)], "SET_B": [f"G{i}" for i in range(50, 62)]}
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("".join(f"{k}\tsome description\t" + "\t".join(v) + "\n" for k, v in sets.items()))
    table = pd.DataFrame([(k, g) for k, v in sets.items() for g in v], columns=["name", "gene"])
    out = []
    for s in (sets, gmt, str(gmt), table):
        b = a.copy()
        score_signatures(b, signatures=s)
        out.append(np.asarray(b.obsm["X_signatures"]))
    for o in out[1:]:
        np.testing.assert_array_equal(out[0], o)
    df = _resolve(gmt)
    assert list(df.columns) == ["name", "category", "gene", "direction", "weight"]
    assert (df["category"] == "user").all() and (df["direction"] == "up").all()


def test_h5ad_round_trip_and_copy(tmp_path):
    a = _log_data(n_genes=300)
    sigs = {"x": {"up": ["G1", "G2", "G3", "G4"], "down": ["G9", "G10"]}, "y": ["G20", "G21", "G22"]}
    b = score_signatures(a, signatures=sigs, method="control", key_added="my_scores", prefix="s_", copy=True)
    assert "s_x" not in a.obs and "s_x" in b.obs and "X_my_scores" in b.obsm
    b.write_h5ad(tmp_path / "x.h5ad")
    back = ad.read_h5ad(tmp_path / "x.h5ad")
    np.testing.assert_array_equal(back.obs["s_x"], b.obs["s_x"])
    np.testing.assert_array_equal(np.asarray(back.obsm["X_my_scores"]), np.asarray(b.obsm["X_my_scores"]))
    assert set(back.uns["my_scores"]) >= {"params", "summary", "genes", "method", "input"}
    assert back.uns["my_scores"]["params"]["rng"] == 0


def test_bad_input_errors():
    a = _log_data(n_genes=100)
    with pytest.raises(tm.InvalidInputError, match="min_genes"):
        _quiet(score_signatures, a, signatures={"s": ["X1", "X2", "X3"]})
    with pytest.raises(tm.InvalidParameterError, match="method"):
        score_signatures(a, signatures={"s": ["G1", "G2", "G3"]}, method="aucell")
    with pytest.raises(tm.InvalidParameterError, match="min_genes"):
        score_signatures(a, signatures={"s": ["G1", "G2", "G3"]}, min_genes=0)
    with pytest.raises(tm.InvalidParameterError, match="both up and down"):
        score_signatures(a, signatures={"s": {"up": ["G1", "G2"], "down": ["G2"]}})
    with pytest.raises(tm.InvalidParameterError, match="list of gene"):
        score_signatures(a, signatures={"s": "G1"})
    with pytest.raises(tm.InvalidParameterError, match="GMT file"):
        score_signatures(a, signatures="/nonexistent/sets.gmt")
    with pytest.raises(tm.InvalidParameterError, match="signatures must be"):
        score_signatures(a, signatures=42)
    nan = a.copy()
    nan.X = nan.X.toarray()
    nan.X[0, 0] = np.nan
    with pytest.raises(tm.InvalidInputError, match="NaN"):
        score_signatures(nan, signatures={"s": ["G1", "G2", "G3"]})
    neg = a.copy()
    neg.X = neg.X.toarray() - 1.0
    with pytest.raises(tm.InvalidInputError, match="negative"):
        score_signatures(neg, signatures={"s": ["G1", "G2", "G3"]}, method="rank")
    with pytest.raises(tm.InvalidInputError, match="AnnData"):
        score_signatures(np.zeros((3, 3)), signatures={"s": ["G1"]})


# ------------------------------------------------------------------------------------------------
# the library
# ------------------------------------------------------------------------------------------------
def test_library_tables_and_filters(fake_library):
    df = lib_mod.signatures()
    assert list(df.columns) == lib_mod.COLUMNS
    assert set(df["name"]) == {"TEST_UP", "TEST_MIXED", "OTHER_SET"}
    mixed = df[df["name"] == "TEST_MIXED"]
    assert (mixed["citation"] == "B et al. 2021").all() and (mixed["weight"] == [2.0, 2.0, 2.0, 1.0]).all()
    assert set(lib_mod.signatures(category="hallmark")["name"]) == {"TEST_UP", "OTHER_SET"}
    assert set(lib_mod.signatures(names=["TEST_UP"])["gene"]) == {"G0", "G1", "G2", "G3"}
    with pytest.raises(tm.InvalidParameterError, match="unknown category"):
        lib_mod.signatures(category="hallmarks")
    with pytest.raises(tm.InvalidParameterError, match="did you mean 'TEST_UP'"):
        lib_mod.signatures(names=["TEST_UPP"])
    pairs = lib_mod.checkpoint_pairs()
    assert list(pairs["pair"]) == ["PD-1/PD-L1", "CD28/CD80"] and pairs.loc[0, "doi"] == "10.1/b"
    assert list(lib_mod.checkpoint_pairs(effect="inhibitory")["pair"]) == ["PD-1/PD-L1"]
    with pytest.raises(tm.InvalidParameterError):
        lib_mod.checkpoint_pairs(effect="nonsense")


def test_library_signatures_by_default_category_and_name(fake_library):
    a = _log_data(n_genes=50)
    with pytest.warns(UserWarning, match="OTHER_SET"):  # MISSING1 absent: 3 of 4 genes, needs 4
        score_signatures(a, min_genes=4, method="mean")
    summ = a.uns["signatures"]["summary"].set_index("signature")
    assert summ.loc["TEST_MIXED", "category"] == "exhaustion" and summ["scored"].tolist() == [
        True,
        True,
        False,
    ]
    X = a.X.toarray()
    np.testing.assert_allclose(a.obs["sig_TEST_MIXED"], X[:, 4:7].mean(1) - X[:, 7], atol=1e-6)
    b = a.copy()
    score_signatures(b, signatures="hallmark", method="mean")
    assert set(b.uns["signatures"]["summary"]["signature"]) == {"TEST_UP", "OTHER_SET"}
    score_signatures(b, signatures=["TEST_MIXED", "TEST_UP"], method="mean")
    assert list(b.obsm["X_signatures"].columns) == ["TEST_UP", "TEST_MIXED"]  # library order
    with pytest.raises(tm.InvalidParameterError, match="unknown signature name or category"):
        score_signatures(b, signatures="NO_SUCH_SET")


def test_shipped_library_is_well_formed():
    from tmeatlas._resources import data_path, gene_table

    if not data_path(lib_mod.GENES_FILE).is_file():
        pytest.skip("the shipped signature library is not installed yet")
    df = lib_mod.signatures()
    assert df["name"].str.fullmatch(r"[A-Za-z0-9_]+").all()
    assert df["direction"].isin(["up", "down"]).all() and np.isfinite(df["weight"]).all()
    assert (df["category"] != "").all() and (df["citation"] != "").all()
    assert df["gene"].isin(gene_table().index).mean() > 0.99
    assert len(_resolve(None)) == len(df.drop_duplicates(["name", "gene", "direction"]))


def test_shipped_library_is_checked_and_covers_the_required_categories():
    """Every shipped list was compared with its publication (data/signatures_check.md), and every
    category that the signature feature asks for keeps at least one list."""
    from tmeatlas._resources import data_path

    if not data_path(lib_mod.GENES_FILE).is_file():
        pytest.skip("the shipped signature library is not installed yet")
    df = lib_mod.signatures().drop_duplicates("name")
    assert set(df["check"]) <= {"checked", "checked_with_changes"}, df.loc[
        ~df["check"].str.startswith("checked"), "name"
    ]
    required = {
        "stemness", "checkpoint", "exhaustion", "progenitor_exhausted", "cytotoxicity", "ifng_inflamed",
        "antigen_presentation_mhc1", "antigen_presentation_mhc2", "hypoxia", "emt", "cell_cycle", "tls", "caf",
        "tam", "treg", "mdsc", "angiogenesis", "persister", "senescence", "quiescence", "dna_repair", "hallmark",
    }  # fmt: skip
    assert required <= set(df["category"]), required - set(df["category"])
    assert (df["category"] == "hallmark").sum() == 50


def test_shipped_gavish_meta_programs():
    """The 41 malignant-cell meta-programs of Gavish et al. 2023, with their MIT notice (issue 24)."""
    from tmeatlas._resources import data_path

    if not data_path(lib_mod.GENES_FILE).is_file():
        pytest.skip("the shipped signature library is not installed yet")
    df = lib_mod.signatures(category="meta_program")
    names = list(dict.fromkeys(df["name"]))
    assert len(names) == 41 and all(n.startswith("GAVISH_MP") for n in names)
    assert {"GAVISH_MP1_CELL_CYCLE_G2M", "GAVISH_MP6_HYPOXIA", "GAVISH_MP12_EMT_I",
            "GAVISH_MP3_CELL_CYCLE_HMG_RICH", "GAVISH_MP41_UNASSIGNED"} <= set(names)  # fmt: skip
    assert {f"GAVISH_MP{k}" for k in range(1, 42)} == {n.split("_")[0] + "_" + n.split("_")[1] for n in names}
    assert (df["category"] == "meta_program").all() and (df["source"] == "Gavish2023").all()
    assert df["licence"].str.contains("MIT").all() and df["licence"].str.contains("Tirosh Lab").all()
    assert df["doi"].eq("10.1038/s41586-023-06130-4").all()
    genes = df.groupby("name")["gene"].apply(set)
    assert "TOP2A" in genes["GAVISH_MP1_CELL_CYCLE_G2M"]
    assert {"NDRG1", "VEGFA"} <= genes["GAVISH_MP6_HYPOXIA"]
    sizes = df.groupby("name").size()
    assert (sizes <= 50).all() and (sizes >= 48).all(), sizes[sizes < 48]
    assert (df["direction"] == "up").all() and (df["weight"] == 1.0).all()
    assert df.drop_duplicates("name")["description"].str.contains("Gavish et al. 2023").all()
    # the authors' typo is kept in the description only
    desc = df.drop_duplicates("name").set_index("name")["description"]
    assert desc["GAVISH_MP3_CELL_CYCLE_HMG_RICH"].startswith("MP3 Cell Cylce HMG-rich")


def test_removed_signature_names_say_what_replaces_them():
    from tmeatlas._resources import data_path

    if not data_path(lib_mod.GENES_FILE).is_file():
        pytest.skip("the shipped signature library is not installed yet")
    names = set(lib_mod.signatures()["name"])
    assert set(lib_mod.REMOVED.values()) <= names and not set(lib_mod.REMOVED) & names
    with pytest.raises(tm.InvalidParameterError, match="'TEX_CHU2023'"):
        lib_mod.signatures(names="TEX_TERMINAL_ZHENG2021")
    a = _log_data(n_genes=50)
    with pytest.raises(tm.InvalidParameterError, match="removed from the library.*'TPEX_TSUI2022'"):
        score_signatures(a, signatures=["TPEX_MILLER2019"])


# ------------------------------------------------------------------------------------------------
# real data: equal to scanpy's score_genes on the same genes
# ------------------------------------------------------------------------------------------------
def _hallmark_sets(resources_dir) -> pd.DataFrame:
    path = resources_dir / "msigdb_hallmark_50.gmt"
    if not path.exists():
        pytest.skip("msigdb_hallmark_50.gmt not available")
    return _resolve(path)


@pytest.mark.realdata
@pytest.mark.parametrize("dataset", ["tirosh", "copykat_breast"])
def test_control_matches_scanpy_on_real_data(dataset, request, resources_dir):
    sc = pytest.importorskip("scanpy")
    a = request.getfixturevalue(dataset)
    raw = a.copy()
    if dataset == "copykat_breast":  # raw counts: scanpy needs them normalised, tmeatlas does it itself
        sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)  # Tirosh: TPM-like values -> log1p, given to both tools
    table = _hallmark_sets(resources_dir)
    names = list(pd.unique(table["name"]))[:10]
    sets = table[table["name"].isin(names)]
    score_signatures(a, signatures=sets)
    if dataset == "copykat_breast":
        score_signatures(raw, signatures=sets)
        assert raw.uns["signatures"]["input"].startswith("counts")
    genes = a.uns["signatures"]["genes"]
    for name in names:
        used = list(dict.fromkeys(genes.loc[(genes["signature"] == name) & genes["present"], "var_name"]))
        sc.tl.score_genes(a, used, score_name="ref", random_state=0)
        ref = a.obs["ref"].to_numpy()
        for b in (a, raw) if dataset == "copykat_breast" else (a,):
            ours = b.obs[f"sig_{name}"].to_numpy()
            assert np.corrcoef(ours, ref)[0, 1] >= 0.98, name
            np.testing.assert_allclose(ours, ref, atol=1e-5, err_msg=name)
