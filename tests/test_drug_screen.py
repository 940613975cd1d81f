"""tm.tl.drug_screen / tm.get.drug_screen: known answers on a tiny hand-made AnnData."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm
from tmeatlas._core.drug_screen import score_moments, set_effects, welch
from tmeatlas.tl._drug_screen import TABLE_COLUMNS, _bin_permutations, _null_moments

N_BG = 240  # background genes: the same Poisson rate in every cell
TARGET_A = ["TGTA1", "TGTA2", "TGTA3"]  # only in malignant group A
UP_B = ["UPB1", "UPB2", "UPB3", "UPB4", "UPB5"]  # only in malignant group B
TOX = "TOXG"  # every normal cell, and weakly in malignant cells
TOXW = "TOXW"  # high in group A, lower but present in every normal cell: a window, with toxicity


def _tiny(seed: int = 0, normal: bool = True) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    n_a, n_b, n_n = 60, 60, 80 if normal else 0
    n = n_a + n_b + n_n
    genes = [f"BG{i:03d}" for i in range(N_BG)] + TARGET_A + UP_B + [TOX, TOXW]
    rates = rng.uniform(0.2, 3.0, N_BG)
    X = np.zeros((n, len(genes)))
    X[:, :N_BG] = rng.poisson(rates, size=(n, N_BG))
    a, b, m = slice(0, n_a), slice(n_a, n_a + n_b), slice(n_a + n_b, n)
    for g in TARGET_A:
        X[a, genes.index(g)] = rng.poisson(8, n_a)
    for g in UP_B:
        X[b, genes.index(g)] = rng.poisson(8, n_b)
    X[m, genes.index(TOX)] = rng.poisson(10, n_n) + 1
    X[: n_a + n_b, genes.index(TOX)] = rng.poisson(0.3, n_a + n_b)
    X[a, genes.index(TOXW)] = rng.poisson(20, n_a)
    X[m, genes.index(TOXW)] = rng.poisson(0.5, n_n) + 1
    obs = pd.DataFrame(index=[f"c{i}" for i in range(n)])
    obs["sample"] = "S1"
    obs["clone"] = pd.Categorical(["A"] * n_a + ["B"] * n_b + [None] * n_n)
    obs["compartment"] = ["malignant"] * (n_a + n_b) + ["immune"] * n_n
    return ad.AnnData(X=sparse.csr_matrix(X.astype(np.float32)), obs=obs, var=pd.DataFrame(index=genes))


def _background_drugs(n: int = 30, seed: int = 1) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    return [(f"BGDRUG{d}", f"BG{g:03d}") for d in range(n) for g in rng.choice(N_BG, 3, replace=False)]


def _target_table() -> pd.DataFrame:
    rows = [("drugA", g) for g in TARGET_A] + [("toxic", TOX), ("toxwin", TOXW), ("ghost", "NOTAGENE")]
    rows += _background_drugs()
    return pd.DataFrame(rows, columns=["drug", "target"])


def _signatures() -> dict:
    rng = np.random.default_rng(2)
    sigs = {
        "sigB": {"up": UP_B, "down": []},
        "sigA": {"up": [], "down": UP_B},
        "short": {"up": ["UPB1", "X9"]},
    }
    for d in range(30):
        g = [f"BG{i:03d}" for i in rng.choice(N_BG, 6, replace=False)]
        sigs[f"BGSIG{d}"] = {"up": g[:3], "down": g[3:]}
    return sigs


def _screen(a, drugs, **kw):
    kw = {"groupby": "clone", "sample_key": "sample", "n_perms": 300, **kw}
    tm.tl.drug_screen(a, drugs=drugs, **kw)
    return tm.get.drug_screen(a, key=kw.get("key_added", "drug_screen"))


def _row(df, drug, group):
    r = df[(df["therapy"] == drug) & (df["group"] == group)]
    assert len(r) == 1
    return r.iloc[0]


def test_target_expressed_only_in_a_ranks_first_there_and_responds():
    a = _tiny()
    df = _screen(a, _target_table())
    assert list(a.uns["drug_screen"]["table"].columns) == TABLE_COLUMNS
    top = df[df["group"] == "A"].iloc[0]
    assert top["therapy"] == "drugA" and top["rank"] == 1
    assert top["call"] == "responds" and not top["survives"]
    assert top["score"] > 2 and top["padj"] <= 0.05
    assert "TGTA" in top["reasons"] and "above the normal compartment" in top["reasons"]
    assert _row(df, "drugA", "B")["call"] != "responds"
    # every row explains itself; random drugs are not called
    assert df["reasons"].str.len().gt(0).all()
    assert (df[df["therapy"].str.startswith("BGDRUG")]["call"] == "responds").mean() <= 0.1
    assert set(df["n_cells"]) == {60} and np.allclose(df["fraction_of_sample"], 0.5)


def test_target_high_in_normal_cells_gets_the_toxicity():
    a = _tiny()
    df = _screen(a, _target_table())
    ther = a.uns["drug_screen"]["therapies"].set_index("therapy")
    assert ther.loc["toxic", "toxicity"] > 0.95
    assert ther.loc["drugA", "toxicity"] < 0.05
    toxic = _row(df, "toxic", "A")
    assert toxic["toxicity"] > 0.95 and "normal cells" in toxic["reasons"]
    assert toxic["score"] < 0 and "below the normal compartment" in toxic["reasons"]
    assert toxic["call"] != "responds"
    # a target window in A that every normal cell shares: ranked second without the penalty, lower with it
    win = _row(df, "toxwin", "A")
    assert win["score"] > 0.5 and win["toxicity"] > 0.95
    plain = _screen(_tiny(), _target_table(), toxicity_weight=0.0)
    heavy = _screen(_tiny(), _target_table(), toxicity_weight=5.0)
    assert _row(plain, "toxwin", "A")["rank"] == 2
    assert win["rank"] < _row(heavy, "toxwin", "A")["rank"]


def test_signature_with_up_genes_high_in_b_scores_b():
    a = _tiny()
    df = _screen(a, _signatures())
    b = _row(df, "sigB", "B")
    assert b["call"] == "responds" and b["score"] > 0.5 and b["rank"] == 1
    assert "sensitive" in b["reasons"] and "UPB" in b["reasons"]
    assert _row(df, "sigB", "A")["call"] == "survives"  # down in A: significant resistance
    assert _row(df, "sigA", "A")["call"] == "responds"  # the same genes as down genes
    assert df.loc[df["therapy"] == "sigB", "kind"].eq("signature").all()


def test_drug_with_too_few_measured_genes_says_so():
    a = _tiny()
    df = _screen(a, {**_signatures(), "ghost": ["NOTAGENE"]})
    for drug, n in (("short", 1), ("ghost", 0)):
        rows = df[df["therapy"] == drug]
        assert len(rows) == 2  # one row per subpopulation, never dropped
        assert (
            rows["call"].eq("undetermined").all() and rows["score"].isna().all() and rows["rank"].isna().all()
        )
        assert rows["reasons"].str.contains("not scored").all()
        assert (rows["n_genes"] == n).all()
    assert "min_genes=3" in _row(df, "short", "A")["reasons"] and "X9" in _row(df, "short", "A")["reasons"]
    assert "NOTAGENE" in _row(df, "ghost", "A")["reasons"]
    # a lower min_genes scores it
    df1 = _screen(_tiny(), _signatures(), min_genes=1)
    assert np.isfinite(_row(df1, "short", "B")["score"])


def test_gmt_reader_signatures_and_target_sets(tmp_path):
    path = tmp_path / "drugs.gmt"
    sigs = _signatures()
    lines = ["drugA\tplain targets\t" + "\t".join(TARGET_A)]
    for name, s in sigs.items():
        if s.get("up"):
            lines.append(f"{name}_UP\tdesc\t" + "\t".join(s["up"]))
        if s.get("down"):
            lines.append(f"{name}_DN\tdesc\t" + "\t".join(s["down"]))
    path.write_text("\n".join(lines) + "\n")
    a = _tiny()
    df = _screen(a, path)
    ther = a.uns["drug_screen"]["therapies"].set_index("therapy")
    assert ther.loc["drugA", "kind"] == "targets" and ther.loc["sigB", "kind"] == "signature"
    assert ther.loc["sigA", "n_genes"] == 5
    ref = _screen(_tiny(), {**sigs, "drugA": TARGET_A})
    both = df.merge(ref, on=["therapy", "sample", "group"], suffixes=("", "_ref"))
    assert len(both) == len(df)
    np.testing.assert_allclose(both["score"], both["score_ref"], equal_nan=True)
    assert _row(df, "drugA", "A")["call"] == "responds"


def test_target_table_options():
    a = _tiny()
    # targets joined by '|' (Drug Repurposing Hub), weights and a down-direction resistance marker
    tab = pd.DataFrame({"drug": ["drugA", "drugA2", "drugA2"], "target": ["|".join(TARGET_A), TARGET_A[0], TOX],
                        "weight": [1.0, 2.0, 1.0], "direction": ["up", "up", "down"]})  # fmt: skip
    df = _screen(a, pd.concat([tab, _target_table().iloc[6:]]))
    assert _row(df, "drugA", "A")["n_genes"] == 3
    r = _row(df, "drugA2", "A")
    assert r["n_genes"] == 2 and r["score"] > 2


def test_bad_input_raises_typed_errors(tmp_path):
    a = _tiny()
    with pytest.raises(tm.InvalidParameterError, match="target"):
        tm.tl.drug_screen(a, drugs=pd.DataFrame({"drug": ["x"], "gene": ["TGTA1"]}), groupby="clone")
    with pytest.raises(tm.MissingResultError, match="nonexistent"):
        tm.tl.drug_screen(a, drugs=_target_table(), groupby="nonexistent")
    with pytest.raises(tm.InvalidParameterError, match="empty"):
        tm.tl.drug_screen(a, drugs=pd.DataFrame(columns=["drug", "target"]), groupby="clone")
    with pytest.raises(tm.InvalidParameterError, match="drugs must be"):
        tm.tl.drug_screen(a, drugs=["drugA"], groupby="clone")
    with pytest.raises(tm.InvalidParameterError, match="not found"):
        tm.tl.drug_screen(a, drugs=str(tmp_path / "missing.gmt"), groupby="clone")
    with pytest.raises(tm.InvalidParameterError, match="n_perms"):
        tm.tl.drug_screen(a, drugs=_target_table(), groupby="clone", n_perms=0)
    with pytest.raises(tm.InvalidParameterError, match="up"):
        tm.tl.drug_screen(a, drugs={"d": {"sensitive": ["TGTA1"]}}, groupby="clone")
    with pytest.raises(tm.NotApplicableError, match="identifiers"):
        tm.tl.drug_screen(a, drugs=pd.DataFrame({"drug": ["x"], "target": ["NOTAGENE"]}), groupby="clone")
    with pytest.raises(tm.NotApplicableError, match="non-malignant"):  # a target table needs normal cells
        tm.tl.drug_screen(_tiny(normal=False), drugs=_target_table(), groupby="clone")
    assert "drug_screen" not in a.uns


def test_same_rng_same_result_and_threads_do_not_matter():
    t1 = _screen(_tiny(), {**_signatures(), "drugA": TARGET_A}, rng=7)
    t2 = _screen(_tiny(), {**_signatures(), "drugA": TARGET_A}, rng=7, n_jobs=2)
    pd.testing.assert_frame_equal(t1, t2)
    t3 = _screen(_tiny(), {**_signatures(), "drugA": TARGET_A}, rng=8)
    # the permutations only move the random-gene columns: the decision does not depend on rng
    random_cols = ["pval_random_genes", "padj_random_genes", "reasons"]
    pd.testing.assert_frame_equal(t1.drop(columns=random_cols), t3.drop(columns=random_cols))
    assert not np.allclose(t1["pval_random_genes"].fillna(0), t3["pval_random_genes"].fillna(0))


def test_h5ad_round_trip_and_copy(tmp_path):
    a = _tiny()
    assert tm.tl.drug_screen(a, drugs=_target_table(), groupby="clone", n_perms=50) is None
    before = tm.get.drug_screen(a)
    a.write_h5ad(tmp_path / "x.h5ad")
    back = ad.read_h5ad(tmp_path / "x.h5ad")
    pd.testing.assert_frame_equal(before, tm.get.drug_screen(back))
    assert back.uns["drug_screen"]["params"]["n_perms"] == 50
    c = tm.tl.drug_screen(_tiny(), drugs=_target_table(), groupby="clone", n_perms=50, copy=True)
    pd.testing.assert_frame_equal(before, tm.get.drug_screen(c))


def test_combination_cover_reads_the_screen():
    a = _tiny()
    tm.tl.drug_screen(a, drugs={**_signatures(), "drugA": TARGET_A}, groupby="clone", n_perms=100)
    tm.tl.combination_cover(a, key="drug_screen", therapies=["drugA", "sigB", "sigA"])
    assert len(a.uns["combination_cover"]["solutions"]) >= 1


def test_exact_null_moments_match_random_permutations():
    rng = np.random.default_rng(0)
    G, K = 60, 3
    Z = rng.standard_normal((K, G))
    cut = np.repeat(np.arange(6), 10)
    M = sparse.csr_matrix(
        np.array([[0.5, 0.5, -1.0] + [0.0] * (G - 3), [0.0] * 10 + [1 / 3] * 3 + [0.0] * (G - 13)])
    )
    mean, sd = _null_moments(Z, M, cut, np.bincount(cut).astype(float))
    perms = _bin_permutations(cut, 20_000, np.random.default_rng(1))
    null = np.stack([(M @ Z[:, p].T).T for p in perms])  # perms x groups x drugs
    np.testing.assert_allclose(null.mean(axis=0), mean, atol=0.02)
    np.testing.assert_allclose(null.std(axis=0), sd, rtol=0.03)


def test_per_cell_scores_and_welch_have_known_answers():
    rng = np.random.default_rng(3)
    X = sparse.random(
        50, 8, density=0.4, random_state=4, format="csr", data_rvs=lambda k: rng.uniform(0.5, 3, k)
    )
    codes = np.repeat([0, 1, -1, 2], [15, 20, 5, 10])  # -1: skipped
    M = sparse.csr_matrix(np.array([[1.0, 0, 0, 0, 0, 0, 0, 0], [0.5, 0, 0.5, 0, -0.5, -0.5, 0, 0]]))
    mean, sd = rng.uniform(0, 1, 8), rng.uniform(0.05, 1, 8)
    chunks = [(X.indptr, X.indices, X.data, s, min(50, s + 16), s) for s in range(0, 50, 16)]
    S, Q = score_moments(chunks, codes, 3, M, mean, sd, 2.0, 1, 1e4)  # mode 1: values as stored
    cell = np.clip((X.toarray() - mean) / sd, -2, 2) @ M.T.toarray()  # cells x drugs, dense
    for k in range(3):
        np.testing.assert_allclose(S[k], cell[codes == k].sum(axis=0))
        np.testing.assert_allclose(Q[k], (cell[codes == k] ** 2).sum(axis=0))
    # Welch's t and Cohen's d on the scores (ddof 0); the group's variance is not taken below the reference's
    a, b = cell[codes == 0, 1], cell[codes == 1, 1]
    effect, t, df, se = welch(S[:1], Q[:1], np.array([15.0]), S[1:2], Q[1:2], np.array([20.0]))
    assert effect[0, 1] == pytest.approx((a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2))
    welch_t = (a.mean() - b.mean()) / np.sqrt(max(a.var(), b.var()) / 15 + b.var() / 20)
    assert (
        t[0, 1] == pytest.approx(welch_t)
        and df[0, 1] == 14
        and se[0, 1] == pytest.approx(effect[0, 1] / t[0, 1])
    )
    # a group with no variance (no expressing cell) against a varying reference: the reference's variance
    e0, t0, _, _ = welch(np.zeros((1, 1)), np.zeros((1, 1)), np.array([4.0]), np.array([[10.0]]), np.array([[40.0]]),
                      np.array([20.0]))  # fmt: skip
    assert t0[0, 0] == pytest.approx(-0.5 / np.sqrt(1.75 / 4 + 1.75 / 20))
    assert e0[0, 0] == pytest.approx(-0.5 / np.sqrt(1.75 / 2))


def test_target_sets_average_their_genes_and_bound_the_error():
    d, se = np.array([[1.2, 0.4]]), np.array([[0.2, 0.1]])
    effect, t = set_effects(d, se, sparse.csr_matrix([[1.0, 0.0], [0.5, 0.5], [0.5, -1.0]]))
    np.testing.assert_allclose(effect[0], [1.2, 0.8, (0.6 - 0.4) / 2])  # up and down: two directions
    np.testing.assert_allclose(t[0], [6.0, 0.8 / 0.15, 0.2 / 0.2])
    # the same gene twice (perfect correlation): the bound gives one gene's t, not sqrt(2) times it
    _, t2 = set_effects(np.array([[1.2, 1.2]]), np.array([[0.2, 0.2]]), sparse.csr_matrix([[0.5, 0.5]]))
    assert t2[0, 0] == pytest.approx(6.0)


def test_no_call_where_groups_differ_by_chance_only():
    """Null: the 'malignant' groups and the normal compartment are random labels on one population."""
    rng = np.random.default_rng(5)
    n, g = 600, 120
    X = rng.poisson(rng.uniform(0.1, 4.0, g), size=(n, g)).astype(np.float32)
    genes = [f"G{i:03d}" for i in range(g)]
    lab = rng.permutation(np.repeat(["A", "B", "C", "normal"], n // 4))
    obs = pd.DataFrame({"clone": pd.Categorical(np.where(lab == "normal", None, lab)),
                        "compartment": np.where(lab == "normal", "immune", "malignant")},
                       index=[f"c{i}" for i in range(n)])  # fmt: skip
    a = ad.AnnData(X=sparse.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes))
    tab = pd.DataFrame({"drug": [f"D{i}" for i in range(g)], "target": genes})
    picks = [list(rng.choice(genes, 10, replace=False)) for _ in range(40)]
    sigs = {f"S{i}": {"up": p[:5], "down": p[5:]} for i, p in enumerate(picks)}
    for drugs in (tab, sigs):
        df = _screen(a, drugs, sample_key=None, n_perms=50)
        assert df["call"].eq("undetermined").all()
        assert df["effect"].abs().max() < 0.5
        assert df["reasons"].str.contains("undetermined: ").all()
        # single genes: Welch p-values of a true null are not far from uniform
        if drugs is tab:
            assert 0.0 < (df["pval"] < 0.05).mean() < 0.12


def test_real_ovarian_carcinoma_targets_have_a_window_and_lineage_targets_do_not(qian_ovarian):
    """Shared real data: targets of ovarian-carcinoma antibodies/ADCs vs haematopoietic and endothelial
    targets of approved drugs (benchmarks/drug_screen.py: OVARIAN_TARGETS, LINEAGE_TARGETS), one
    subpopulation per sample, among random single-gene drugs."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from drug_screen import LINEAGE_TARGETS, OVARIAN_TARGETS

    a = qian_ovarian.copy()
    a.obs["authors_malignant"] = np.where(a.obs["author_cell_type"].astype(str) == "Epithelial", "yes", "no")
    rng = np.random.default_rng(0)
    rows = [*OVARIAN_TARGETS.items(), *LINEAGE_TARGETS.items()]
    rows += [(f"R{i}", g) for i, g in enumerate(rng.choice(np.asarray(a.var_names), 300, replace=False))]
    df = _screen(a, pd.DataFrame(rows, columns=["drug", "target"]), groupby="sample", malignant_key="authors_malignant",
                 malignant_value="yes", n_perms=50)  # fmt: skip
    ovarian = df[df["therapy"].isin(OVARIAN_TARGETS)]
    lineage = df[df["therapy"].isin(LINEAGE_TARGETS)]
    assert len(ovarian) == 28 and len(lineage) == 36
    assert ovarian["call"].eq("responds").mean() >= 0.5 and not ovarian["call"].eq("survives").any()
    assert lineage["call"].eq("responds").mean() <= 0.1
    assert (
        lineage.loc[lineage["therapy"] == "pexidartinib", "call"].eq("survives").all()
    )  # CSF1R: macrophages
