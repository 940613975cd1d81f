"""Known-answer tests of the simulated tumour cohort (``tm.datasets.simulate_tumor``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from tmeatlas._errors import InvalidParameterError
from tmeatlas._keys import OBS, OBSM, UNS, VAR
from tmeatlas._resources import gene_table
from tmeatlas.datasets import _programs as prg
from tmeatlas.datasets._simulate import simulate_tumor

T_TYPES = ["CD8 T", "exhausted CD8 T", "progenitor-exhausted CD8 T", "CD4 T", "Treg"]


@pytest.fixture(scope="module")
def sim5k():
    """The default cohort: 5000 cells, 3 patients (inflamed, excluded, desert)."""
    return simulate_tumor()


@pytest.fixture(scope="module")
def small():
    return simulate_tumor(n_cells=1200, n_patients=2, n_genes=2000, rng=7)


def _lognorm(X):
    X = sparse.csr_matrix(X, dtype=np.float64)
    X = sparse.diags(1e4 / np.asarray(X.sum(1)).ravel()) @ X
    X.data = np.log1p(X.data)
    return X.tocsr()


# --- marker resources ---------------------------------------------------------------------------
def test_every_program_gene_is_a_real_symbol():
    table = gene_table("hg38")
    missing = [g for g in prg.all_program_genes() if g not in table.index]
    assert not missing, f"symbols not in the GRCh38 table: {missing}"
    assert set(prg.CONTINUA) == set(prg.CELL_TYPES) == set(prg.CELL_TYPE_EXTRA_MODULES)
    for t, (major, comp, lineage) in prg.CELL_TYPES.items():
        assert major in prg.MAJOR_TYPES and comp in prg.COMPARTMENTS
        for mod in (f"lineage:{lineage}", f"major:{major}", f"fine:{t}", *prg.CELL_TYPE_EXTRA_MODULES[t]):
            assert mod in prg.MODULES
        assert all(s in prg.CELL_TYPES for s in prg.CONTINUA[t])


# --- shape, counts, genes -----------------------------------------------------------------------
def test_shape_dtype_integer_counts(sim5k):
    a = sim5k
    assert a.shape == (5000, 8000)
    assert sparse.issparse(a.X) and a.X.format == "csr"
    assert a.X.dtype == np.float32
    assert np.all(a.X.data > 0) and np.all(a.X.data == np.round(a.X.data))
    assert a.var_names.is_unique and a.obs_names.is_unique


def test_var_is_cnv_ready(sim5k):
    var = sim5k.var
    for col in (VAR.chromosome, VAR.start, VAR.end, VAR.arm, VAR.gene_id):
        assert col in var.columns
    table = gene_table("hg38")
    nuclear = ~var.index.str.startswith("MT-")
    genes = var.index[nuclear]
    assert genes.isin(table.index).all()
    np.testing.assert_array_equal(
        var.loc[genes, VAR.start].to_numpy(int), table.loc[genes, "start"].to_numpy()
    )
    assert (var.loc[genes, VAR.arm].astype(str) == table.loc[genes, "arm"]).all()
    assert var[VAR.chromosome].cat.ordered
    # genome order
    order = var.loc[genes, VAR.chromosome].cat.codes.to_numpy() * 1e10 + var.loc[genes, VAR.start].to_numpy(
        float
    )
    assert np.all(np.diff(order) >= 0)
    assert set(prg.MITO_GENES) <= set(var.index)
    assert set(prg.all_program_genes()) <= set(var.index)
    # the gene universe does not depend on rng
    other = simulate_tumor(n_cells=300, rng=123)
    assert other.var_names.equals(var.index)


def test_library_sizes_detection_and_mito_are_realistic(sim5k):
    X = sim5k.X
    umi = np.asarray(X.sum(1)).ravel()
    detected = np.diff(X.indptr)
    assert 3000 <= np.median(umi) <= 8000
    assert 1500 <= np.median(detected) <= 3000
    mt = sim5k.var_names.str.startswith("MT-")
    mt_frac = np.asarray(X[:, mt].sum(1)).ravel() / umi
    assert 0.02 <= np.median(mt_frac) <= 0.10
    mal = sim5k.obs[OBS.true_malignant].to_numpy()
    assert np.median(mt_frac[mal]) > np.median(mt_frac[~mal])
    assert np.median(umi[mal]) > np.median(umi[~mal])
    ribo = sim5k.var_names.str.match(r"^RP[LS]\d")
    assert 0.1 <= np.median(np.asarray(X[:, ribo].sum(1)).ravel() / umi) <= 0.45


def test_markers_mark_their_cell_types(sim5k):
    X = _lognorm(sim5k.X)
    t = sim5k.obs[OBS.true_cell_type].to_numpy()
    g = {n: i for i, n in enumerate(sim5k.var_names)}

    def mean(gene, types):
        return X[np.isin(t, types), g[gene]].mean()

    for gene, types in [("CD3D", T_TYPES), ("MS4A1", ["B"]), ("C1QC", ["C1Q+ macrophage"]),
                        ("SPP1", ["SPP1+ macrophage"]), ("COL1A1", ["myCAF", "iCAF"]), ("PECAM1", ["Endothelial"]),
                        ("EPCAM", ["Malignant", "normal epithelium"]), ("CXCL13", ["exhausted CD8 T"]),
                        ("FOXP3", ["Treg"]), ("TPSAB1", ["Mast"]), ("RGS5", ["Pericyte"])]:  # fmt: skip
        others = [x for x in prg.CELL_TYPES if x not in types]
        assert mean(gene, types) > 3 * mean(gene, others), gene
    # progenitor-exhausted: intermediate PD-1 between CD8 T and exhausted CD8 T, TCF7 higher than Tex
    assert (
        mean("PDCD1", ["CD8 T"])
        < mean("PDCD1", ["progenitor-exhausted CD8 T"])
        < mean("PDCD1", ["exhausted CD8 T"])
    )
    assert mean("TCF7", ["progenitor-exhausted CD8 T"]) > mean("TCF7", ["exhausted CD8 T"])
    # ambient RNA: malignant markers leak into immune cells at a low level
    assert 0 < mean("KRT18", T_TYPES) < 0.1 * mean("KRT18", ["Malignant"])


# --- truth --------------------------------------------------------------------------------------
def test_truth_columns_and_vocabularies(sim5k):
    obs = sim5k.obs
    assert list(obs[OBS.true_cell_type].cat.categories) == list(prg.CELL_TYPES)
    assert set(obs[OBS.true_cell_type]) == set(prg.CELL_TYPES)  # every type occurs in the default cohort
    assert set(obs[OBS.true_cell_type_major].cat.categories) == set(prg.MAJOR_TYPES)
    assert set(obs[OBS.true_compartment].cat.categories) == {"malignant", "immune", "stromal", "epithelial"}
    assert set(obs[OBS.true_niche].cat.categories) == {"tumour", "margin", "stroma", "TLS", "normal_duct"}
    assert list(obs[OBS.sample].cat.categories) == ["P1", "P2", "P3"]
    for t, (major, comp, _) in prg.CELL_TYPES.items():
        sub = obs[obs[OBS.true_cell_type] == t]
        assert (sub[OBS.true_cell_type_major] == major).all() and (sub[OBS.true_compartment] == comp).all()
    mal = obs[OBS.true_malignant].to_numpy()
    assert obs[OBS.true_malignant].dtype == bool
    np.testing.assert_array_equal(mal, (obs[OBS.true_cell_type] == "Malignant").to_numpy())
    assert (obs.loc[~mal, OBS.true_clone] == "non-malignant").all()
    clones = obs.loc[mal, OBS.true_clone].astype(str)
    assert (clones.str.split("_").str[0] == obs.loc[mal, OBS.sample].astype(str)).all()
    assert 0.1 < mal.mean() < 0.35
    assert obs["true_hypoxia"].between(0, 1).all()

    sim = sim5k.uns[UNS.simulation]
    assert sim["params"]["seed"] == 0 and sim["params"]["n_cells"] == 5000
    pats = sim["patients"]
    assert list(pats["immune_phenotype"]) == ["inflamed", "excluded", "desert"]
    tree = sim["clone_tree"]
    assert set(tree["clone"]) == set(clones) | set(tree.loc[tree["n_cells"] == 0, "clone"])
    assert tree.groupby("patient").size().between(2, 4).all()
    assert tree["parent"].str.endswith("_root").groupby(tree["patient"]).any().all()
    assert (tree["parent"].isin(tree["clone"]) | tree["parent"].str.endswith("_root")).all()
    cnv = sim["clone_cnv"]
    assert set(cnv["state"]) <= {"loss", "gain", "amplification", "focal_amplification"}
    assert set(cnv.loc[cnv["level"] == "arm", "copy_number"]) <= {1, 3, 4}
    # truncal events are shared by every clone of the patient
    for p, d in cnv[cnv["acquired_in"] == "truncal"].groupby("patient"):
        per_clone = d.groupby("clone")["arm"].apply(frozenset)
        assert per_clone.nunique() == 1 and len(per_clone) == (tree["patient"] == p).sum()
    progs = sim["clone_programs"]
    assert set(progs["program"]) == {"proliferation", "stemness", "EMT", "persister", "antigen_presentation",
                                     "ERBB2", "EGFR", "TACSTD2", "NECTIN4", "ESR1", "CD274"}  # fmt: skip
    ther = sim["clone_therapy"]
    assert set(ther["response"]) <= {"sensitive", "resistant"}
    assert set(ther["therapy"]) == set(sim["therapy_rules"]["therapy"])


def test_therapy_truth_follows_the_rules(sim5k):
    sim = sim5k.uns[UNS.simulation]
    st = sim["clone_programs"].pivot(index="clone", columns="program", values="state")
    resp = sim["clone_therapy"].pivot(index="clone", columns="therapy", values="response")
    pheno = sim["patients"].set_index("patient")["immune_phenotype"]
    for c in st.index:
        s, r = st.loc[c], resp.loc[c]
        assert (r["anti-HER2"] == "sensitive") == (s["ERBB2"] == "high")
        assert (r["TROP2-ADC"] == "sensitive") == (s["TACSTD2"] == "high")
        assert (r["EGFR inhibitor"] == "sensitive") == (s["EGFR"] == "high")
        assert (r["endocrine"] == "sensitive") == (s["ESR1"] == "high")
        if s["persister"] == "high" or s["EMT"] == "high":
            assert r["taxane"] == "resistant"
        if s["antigen_presentation"] == "lost" or pheno[c.split("_")[0]] != "inflamed":
            assert r["anti-PD-1"] == "resistant"
    # ERBB2 high iff the 17q12 focal amplification is in the clone's CNV truth
    cnv = sim["clone_cnv"]
    amp = set(cnv.loc[cnv["state"] == "focal_amplification", "clone"])
    assert amp == set(st.index[st["ERBB2"] == "high"])


def test_cnv_arms_change_expression(sim5k):
    X = _lognorm(sim5k.X)
    obs = sim5k.obs
    arm = sim5k.var[VAR.arm].astype(str).to_numpy()
    cnv = sim5k.uns[UNS.simulation]["clone_cnv"]
    cnv = cnv[cnv["level"] == "arm"]
    sizes = obs[OBS.true_clone].value_counts()
    checked = {"loss": 0, "gain": 0}
    for (patient, clone), d in cnv.groupby(["patient", "clone"]):
        if sizes.get(clone, 0) < 20:
            continue
        in_clone = (obs[OBS.true_clone] == clone).to_numpy()
        normal = ((obs[OBS.sample] == patient) & ~obs[OBS.true_malignant]).to_numpy()
        mc, mn = np.asarray(X[in_clone].mean(0)).ravel(), np.asarray(X[normal].mean(0)).ravel()
        delta = {a: (mc[arm == a] - mn[arm == a]).mean() for a in np.unique(arm) if (arm == a).sum() >= 20}
        baseline = np.median([v for a, v in delta.items() if a not in set(d["arm"])])
        for r in d.itertuples():
            if r.state == "loss":
                assert delta[r.arm] < 0 and delta[r.arm] < baseline - 0.03, (clone, r.arm)
                checked["loss"] += 1
            else:
                assert delta[r.arm] > 0 and delta[r.arm] > baseline + 0.03, (clone, r.arm)
                checked["gain"] += 1
    assert checked["loss"] >= 3 and checked["gain"] >= 3


def test_subclonal_program_drives_expression():
    """Clones with lost antigen presentation express less B2M/HLA-A/TAP1 than intact clones."""
    a = simulate_tumor(n_cells=2000, n_patients=2, n_genes=2000, rng=1)  # P1_c2, P2_c2 lose it
    X = _lognorm(a.X)
    g = {n: i for i, n in enumerate(a.var_names)}
    progs = a.uns[UNS.simulation]["clone_programs"]
    ap = progs[progs["program"] == "antigen_presentation"].set_index("clone")["state"]
    clone = a.obs[OBS.true_clone].astype(str).to_numpy()
    lost, intact = np.isin(clone, ap.index[ap == "lost"]), np.isin(clone, ap.index[ap == "intact"])
    assert lost.sum() >= 20 and intact.sum() >= 20
    for gene in ("B2M", "HLA-A"):  # log1p(CP10k): at least a 1.5 log-unit drop
        assert X[lost, g[gene]].mean() < X[intact, g[gene]].mean() - 1.5
    assert X[lost, g["TAP1"]].mean() < 0.6 * X[intact, g["TAP1"]].mean()
    # proliferation-high clones have more cycling (MKI67+) cells
    pr = progs[progs["program"] == "proliferation"].set_index("clone")["state"]
    hi, lo = np.isin(clone, pr.index[pr == "high"]), np.isin(clone, pr.index[pr == "low"])
    if hi.sum() >= 20 and lo.sum() >= 20:
        mki = a.X[:, g["MKI67"]].toarray().ravel() > 0
        assert mki[hi].mean() > mki[lo].mean()


# --- space --------------------------------------------------------------------------------------
def test_spatial_layout(sim5k):
    xy = sim5k.obsm[OBSM.spatial]
    obs = sim5k.obs
    assert xy.shape == (sim5k.n_obs, 2) and np.isfinite(xy).all()
    for p in obs[OBS.sample].cat.categories:
        sub = xy[(obs[OBS.sample] == p).to_numpy()]
        side = np.sqrt(len(sub)) * 12.0
        assert sub.min() > -20 and sub.max() < side + 40  # each patient is its own section, in microns
    # T cells inside nests: inflamed > excluded, desert
    tum = obs[obs[OBS.true_niche] == "tumour"]
    t_frac = tum[OBS.true_cell_type_major].eq("T cell").groupby(tum[OBS.sample], observed=True).mean()
    assert t_frac["P1"] > 3 * t_frac["P2"] and t_frac["P1"] > 3 * t_frac["P3"]
    # excluded: T cells held at the margin
    p2 = obs[obs[OBS.sample] == "P2"]
    margin = p2[OBS.true_niche] == "margin"
    assert p2.loc[margin, OBS.true_cell_type_major].eq("T cell").mean() > 3 * t_frac["P2"]
    # exhausted CD8 in tumour, progenitor-exhausted in TLS/stroma
    t = obs[OBS.true_cell_type]
    niche = obs[OBS.true_niche]
    tex = niche[t == "exhausted CD8 T"].isin(["tumour", "margin"]).mean()
    tpex = niche[t == "progenitor-exhausted CD8 T"].isin(["tumour", "margin"]).mean()
    assert tex > tpex
    assert (obs.loc[niche == "TLS", OBS.true_cell_type] == "B").mean() > 0.3
    assert (obs.loc[niche == "normal_duct", OBS.true_cell_type] == "normal epithelium").mean() > 0.6
    assert (obs.loc[niche != "tumour", OBS.true_malignant]).mean() < 0.05


def test_clones_are_spatially_segregated(sim5k):
    from scipy.spatial import cKDTree

    obs = sim5k.obs
    same = []
    for p in obs[OBS.sample].cat.categories:
        m = ((obs[OBS.sample] == p) & obs[OBS.true_malignant]).to_numpy()
        xy = sim5k.obsm[OBSM.spatial][m]
        cl = obs.loc[m, OBS.true_clone].to_numpy()
        _, nn = cKDTree(xy).query(xy, k=2)
        same.append(cl[nn[:, 1]] == cl)
    assert np.concatenate(same).mean() > 0.8


def test_hypoxia_rises_with_depth_and_drives_its_program():
    a = simulate_tumor(n_cells=12000, n_patients=1, rng=3, n_genes=2000)
    obs = a.obs
    mal = obs[OBS.true_malignant].to_numpy()
    hyp = obs["true_hypoxia"].to_numpy()
    depth = obs["true_nest_depth"].to_numpy()
    assert np.corrcoef(depth[mal], hyp[mal])[0, 1] > 0.5
    hi, lo = mal & (hyp > 0.6), mal & (hyp < 0.1)
    assert hi.sum() > 20
    X = _lognorm(a.X)
    g = {n: i for i, n in enumerate(a.var_names)}
    for gene in ("CA9", "VEGFA", "NDRG1"):
        assert X[hi, g[gene]].mean() > 1.5 * X[lo, g[gene]].mean()


def test_spatial_false_same_data(small):
    b = simulate_tumor(n_cells=1200, n_patients=2, n_genes=2000, rng=7, spatial=False)
    assert OBSM.spatial not in b.obsm
    assert (small.X != b.X).nnz == 0
    pd.testing.assert_frame_equal(small.obs, b.obs)


def test_normal_patient():
    a = simulate_tumor(n_cells=1500, n_patients=2, normal_patient=True, n_genes=2000, rng=1)
    obs = a.obs
    assert list(obs[OBS.sample].cat.categories) == ["P1", "P2", "P3"]
    normal = obs[obs[OBS.sample] == "P3"]
    assert not normal[OBS.true_malignant].any()
    assert (normal[OBS.true_cell_type] == "normal epithelium").sum() > 20
    assert not normal[OBS.true_niche].isin(["tumour", "margin"]).any()
    sim = a.uns[UNS.simulation]
    pats = sim["patients"].set_index("patient")
    assert pats.loc["P3", "immune_phenotype"] == "normal" and bool(pats.loc["P3", "is_normal"])
    assert not sim["clone_cnv"]["patient"].eq("P3").any()


def test_immune_phenotypes_argument():
    a = simulate_tumor(n_cells=1000, n_patients=2, immune_phenotypes=["desert", "desert"], n_genes=2000)
    assert list(a.uns[UNS.simulation]["patients"]["immune_phenotype"]) == ["desert", "desert"]


# --- determinism --------------------------------------------------------------------------------
def test_deterministic_and_seed_dependent(small):
    again = simulate_tumor(n_cells=1200, n_patients=2, n_genes=2000, rng=7)
    assert (small.X != again.X).nnz == 0
    pd.testing.assert_frame_equal(small.obs, again.obs)
    np.testing.assert_array_equal(small.obsm[OBSM.spatial], again.obsm[OBSM.spatial])
    pd.testing.assert_frame_equal(
        small.uns[UNS.simulation]["clone_cnv"], again.uns[UNS.simulation]["clone_cnv"]
    )
    other = simulate_tumor(n_cells=1200, n_patients=2, n_genes=2000, rng=8)
    assert (small.X != other.X).nnz > 0
    assert not small.obs[OBS.true_cell_type].equals(other.obs[OBS.true_cell_type])
    # a Generator is accepted and its resolved seed is recorded
    g = simulate_tumor(n_cells=300, n_genes=2000, rng=np.random.default_rng(1))
    seed = g.uns[UNS.simulation]["params"]["seed"]
    assert (simulate_tumor(n_cells=300, n_genes=2000, rng=seed).X != g.X).nnz == 0


def test_chunk_size_and_threads_do_not_change_counts(small):
    import numba

    b = simulate_tumor(n_cells=1200, n_patients=2, n_genes=2000, rng=7, chunk_size=97)
    assert (small.X != b.X).nnz == 0
    n_threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        c = simulate_tumor(n_cells=1200, n_patients=2, n_genes=2000, rng=7, chunk_size=500)
    finally:
        numba.set_num_threads(n_threads)
    assert (small.X != c.X).nnz == 0


# --- round trip ---------------------------------------------------------------------------------
def test_h5ad_round_trip(small, tmp_path):
    import anndata as ad

    path = tmp_path / "sim.h5ad"
    small.write_h5ad(path)
    b = ad.read_h5ad(path)
    assert (small.X != b.X).nnz == 0
    pd.testing.assert_frame_equal(small.obs, b.obs)
    np.testing.assert_array_equal(small.obsm[OBSM.spatial], b.obsm[OBSM.spatial])
    assert b.var[VAR.start].dtype == "Int64"
    assert list(b.var[VAR.chromosome].astype(str)) == list(small.var[VAR.chromosome].astype(str))
    sim_a, sim_b = small.uns[UNS.simulation], b.uns[UNS.simulation]
    assert set(sim_a) == set(sim_b)
    assert sim_b["params"]["seed"] == 7
    for key in ("patients", "clone_tree", "clone_cnv", "clone_programs", "clone_therapy", "therapy_rules"):
        pd.testing.assert_frame_equal(
            sim_a[key].reset_index(drop=True), sim_b[key].reset_index(drop=True), check_dtype=False,
            check_categorical=False,
        )  # fmt: skip


# --- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_cells": 0},
        {"n_cells": -5},
        {"n_cells": 2.5},
        {"n_patients": 0},
        {"n_cells": 20, "n_patients": 3},
        {"immune_phenotypes": ["inflamed", "cold", "desert"]},
        {"immune_phenotypes": ["inflamed"]},
        {"immune_phenotypes": "inflamed"},
        {"rng": -1},
        {"rng": "zero"},
        {"n_genes": 100},
        {"n_genes": 10**6},
        {"chunk_size": 0},
        {"spatial": "yes"},
        {"normal_patient": 1},
        {"doublet_rate": 0.6},
        {"doublet_rate": True},
        {"depth": 50},
        {"depth": "deep"},
    ],
)
def test_bad_input_raises(kwargs):
    with pytest.raises(InvalidParameterError):
        simulate_tumor(**kwargs)


def test_positional_arguments_are_rejected():
    with pytest.raises(TypeError):
        simulate_tumor(100)  # type: ignore[misc]


# --- realism of the clustering ------------------------------------------------------------------
@pytest.mark.slow
def test_standard_workflow_recovers_cell_types(sim5k):
    """Standard scanpy workflow: ARI with the fine types >= 0.7 but not trivially perfect."""
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score

    a = sim5k.copy()
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.highly_variable_genes(a, n_top_genes=2000)
    sc.pp.pca(a, n_comps=30)
    sc.pp.neighbors(a, n_neighbors=15)
    sc.tl.leiden(a, resolution=1.0, flavor="igraph", n_iterations=2, directed=False)
    ari = adjusted_rand_score(a.obs[OBS.true_cell_type], a.obs["leiden"])
    assert 0.7 <= ari < 0.95, ari


def test_tumour_composition_options():
    """Issue 22 options: tumour-majority and immune-poor patients reach their fractions (normal
    patients untouched); mesenchymal malignant cells express the fibroblast program, not the
    epithelial one, and keep their clone; with the options off the data are unchanged."""
    from tmeatlas.datasets import simulate_tumor

    base = simulate_tumor(n_cells=1200, n_patients=2, normal_patient=True, rng=5)
    same = simulate_tumor(n_cells=1200, n_patients=2, normal_patient=True, rng=5, mesenchymal_tumour=0.0)
    assert (base.X != same.X).nnz == 0 and "true_mesenchymal_tumour" not in same.obs
    assert "tumour_fraction" not in same.uns["simulation"]["params"]
    a = simulate_tumor(n_cells=1200, n_patients=2, normal_patient=True, rng=5, tumour_fraction=0.75,
                       immune_fraction=0.02, mesenchymal_tumour=0.5)  # fmt: skip
    frac = a.obs.groupby("sample", observed=True)["true_malignant"].mean()
    imm = (a.obs["true_compartment"] == "immune").groupby(a.obs["sample"], observed=True).mean()
    assert np.allclose(frac[["P1", "P2"]], 0.75, atol=0.01) and frac["P3"] == 0
    assert (imm[["P1", "P2"]] <= 0.021).all() and imm["P3"] > 0.1
    assert a.uns["simulation"]["params"]["tumour_fraction"] == 0.75
    mal = a.obs["true_malignant"].to_numpy()
    mes = a.obs["true_mesenchymal_tumour"].to_numpy()
    assert not mes[~mal].any() and 0.4 < mes[mal].mean() < 0.6
    assert (a.obs.loc[mal, "true_clone"] != "non-malignant").all()
    X = a.X.tocsc()

    def mean(g, m):
        return float(X[:, a.var_names.get_loc(g)].toarray().ravel()[m].mean())

    for g in ("COL1A1", "LUM"):
        assert mean(g, mes) > 5 * mean(g, mal & ~mes)
    for g in ("KRT8", "EPCAM"):
        assert mean(g, mal & ~mes) > 5 * mean(g, mes)


@pytest.mark.parametrize(
    "kwargs", [{"mesenchymal_tumour": 1.5}, {"tumour_fraction": -0.1}, {"immune_fraction": "few"}]
)
def test_composition_options_bad_input(kwargs):
    from tmeatlas.datasets import simulate_tumor

    with pytest.raises(InvalidParameterError, match="fraction between 0 and 1"):
        simulate_tumor(n_cells=200, n_patients=1, **kwargs)


def test_cnv_burden_scales_the_arm_events():
    """``cnv_burden`` scales the numbers of arm-level events (at least one per tumour and per clone);
    the default gives the data as before the option existed; values outside (0, 1] are refused."""
    from tmeatlas.datasets import simulate_tumor

    base = simulate_tumor(n_cells=600, n_patients=2, rng=7)
    same = simulate_tumor(n_cells=600, n_patients=2, rng=7, cnv_burden=1.0)
    assert (base.X != same.X).nnz == 0 and "cnv_burden" not in same.uns["simulation"]["params"]
    low = simulate_tumor(n_cells=600, n_patients=2, rng=7, cnv_burden=0.3)
    assert low.uns["simulation"]["params"]["cnv_burden"] == 0.3

    def arms_per_clone(a):
        cnv = a.uns["simulation"]["clone_cnv"]
        cnv = cnv[cnv["level"].astype(str) == "arm"] if "level" in cnv else cnv
        return cnv.groupby("clone", observed=True).size()

    n_base, n_low = arms_per_clone(base), arms_per_clone(low)
    assert n_low.mean() < 0.6 * n_base.mean() and n_low.min() >= 1
    for bad in (0, 1.5, -0.2, "low", True, float("nan")):
        with pytest.raises(InvalidParameterError, match="cnv_burden"):
            simulate_tumor(n_cells=200, n_patients=1, cnv_burden=bad)


def test_doublets_and_depth_options(small):
    """doublet_rate adds another cell's counts of the same sample to that share of cells (labelled);
    depth scales every library to the median asked; both off: the same data as before."""
    same = simulate_tumor(n_cells=1200, n_patients=2, n_genes=2000, rng=7, doublet_rate=0.0, depth=None)
    assert (same.X != small.X).nnz == 0
    d = simulate_tumor(n_cells=1200, n_patients=2, n_genes=2000, rng=7, doublet_rate=0.1)
    flag = d.obs["true_doublet"].to_numpy()
    assert flag.sum() == 120 and (d.obs["true_doublet_partner"].astype(str)[flag] != "").all()
    assert (d.obs["true_doublet_partner"].astype(str)[~flag] == "").all()
    # singlets unchanged; a doublet holds its own counts plus another cell's
    assert (d.X[~flag] != small.X[~flag]).nnz == 0
    extra = (d.X[flag] - small.X[flag]).toarray()
    assert (extra >= 0).all() and (extra.sum(axis=1) > 0).all()
    assert d.uns["simulation"]["params"]["doublet_rate"] == 0.1
    shallow = simulate_tumor(n_cells=1200, n_patients=2, n_genes=2000, rng=7, depth=1000)
    med = np.median(np.asarray(shallow.X.sum(axis=1)).ravel())
    assert 800 <= med <= 1200
    # the same composition and labels, fewer counts
    assert (shallow.obs["true_cell_type"] == small.obs["true_cell_type"]).all()
