"""Cell types and compartments: ``tm.tl.annotate`` and the marker library."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm
from tmeatlas.tl._annotate import COMPARTMENTS, MAJOR_TYPES, TISSUE_MIN_ODDS_RATIO, TISSUE_MIN_SHARE

MERFISH_TO_LVL1 = {
    # documented mapping of tmeatlas major types onto the seven broad types of the MERFISH
    # lung section (korsunskylab/tessera): lymphocytes pool T, NK and B cells; "Vascular"
    # pools endothelial cells and pericytes; malignant cells are epithelial there
    "T cell": "Lymphocyte", "NK cell": "Lymphocyte", "B cell": "Lymphocyte", "Plasma cell": "Plasma",
    "Myeloid": "Myeloid", "Mast cell": "Mast", "Fibroblast": "Fibroblast", "Endothelial": "Vascular",
    "Pericyte": "Vascular", "Epithelial": "Epithelial", "Malignant": "Epithelial", "Unassigned": "Unassigned",
}  # fmt: skip

REQUIRED_FINE = [
    "CD8 T", "CD4 T", "Treg", "exhausted CD8 T", "progenitor-exhausted CD8 T", "NK", "B", "Plasma",
    "classical monocyte", "non-classical monocyte", "C1Q+ macrophage", "SPP1+ macrophage", "cDC1", "cDC2",
    "pDC", "Mast", "neutrophil", "myCAF", "iCAF", "Endothelial", "Pericyte", "normal epithelium",
    "Microglia", "Oligodendrocyte", "OPC", "Astrocyte", "Neuron",
]  # fmt: skip
BRAIN = ["Oligodendrocyte", "OPC", "Astrocyte", "Neuron"]
#: issue 21: normal tissue cells of common tumour sites beyond the brain (fine type -> major, tissue)
TISSUE_FINE = {
    "hepatocyte": ("Epithelial", "liver"), "cholangiocyte": ("Epithelial", "liver"),
    "Kupffer cell": ("Myeloid", "liver"), "alveolar type I": ("Epithelial", "lung"),
    "alveolar type II": ("Epithelial", "lung"), "ciliated": ("Epithelial", "lung"),
    "keratinocyte": ("Epithelial", "skin"), "Melanocyte": ("Melanocyte", "skin"),
    "breast luminal HR": ("Epithelial", "breast"), "breast basal/myoepithelial": ("Epithelial", "breast"),
    "prostate luminal": ("Epithelial", "prostate"), "prostate basal": ("Epithelial", "prostate"),
    "enterocyte": ("Epithelial", "colon"), "goblet": ("Epithelial", "colon"),
    "proximal tubule": ("Epithelial", "kidney"),
}  # fmt: skip


# ------------------------------------------------------------------------------ library
def test_marker_library_is_complete_and_cited():
    from tmeatlas._resources import gene_table

    lib = tm.datasets.markers()
    assert set(lib.columns) >= {
        "cell_type",
        "cell_type_major",
        "compartment",
        "level",
        "gene",
        "direction",
        "source",
        "citation",
        "doi",
    }
    assert set(lib["gene"]) <= set(gene_table().index), "every marker is a current GRCh38 HGNC symbol"
    assert lib["citation"].str.len().gt(20).all() and lib["doi"].str.startswith("10.").all()
    majors = set(lib.loc[lib["level"] == "major", "cell_type"])
    assert majors == set(MAJOR_TYPES) - {"Malignant", "Unassigned"}
    assert set(REQUIRED_FINE) <= set(lib.loc[lib["level"] == "fine", "cell_type"])
    n_pos = lib[lib["direction"] == "+"].groupby(["level", "cell_type"]).size()
    assert n_pos.min() >= 4
    assert not lib.duplicated(["level", "cell_type", "gene"]).any()
    assert len(tm.datasets.markers(level="fine")) + len(tm.datasets.markers(level="major")) == len(lib)
    # the brain parenchyma: its own compartment, tissue-restricted like microglia
    assert "parenchyma" in COMPARTMENTS and set(lib["compartment"]) <= set(COMPARTMENTS)
    assert set(lib.loc[lib["compartment"] == "parenchyma", "cell_type_major"]) == {*BRAIN, "Melanocyte"}
    assert set(lib.loc[lib["tissue"] == "brain", "cell_type"]) == {*BRAIN, "Microglia"}
    assert (lib.loc[lib["cell_type"] == "Microglia", "cell_type_major"] == "Myeloid").all()
    # NCAM1 (CD56; neurons, glia), CD22 (oligodendrocytes) and KIT (neurons) do not define a lineage
    defining = lib[(lib["level"] == "major") & (lib["role"] == "defining")]
    assert not {("NK cell", "NCAM1"), ("B cell", "CD22"), ("Mast cell", "KIT")} & set(
        zip(defining["cell_type"], defining["gene"])
    )


# ------------------------------------------------------------------------------ known answers
def _toy(rng=0):
    """30 T cells, 30 B cells, 30 fibroblasts (stray marker counts at rate 0.05) and 6 cells
    expressing no marker at all."""
    r = np.random.default_rng(rng)
    markers = {
        "T": ["CD3D", "CD3E", "CD2", "TRAC"],
        "B": ["MS4A1", "CD79A", "CD79B", "CD19"],
        "F": ["COL1A1", "COL1A2", "DCN", "LUM"],
    }
    filler = [f"FILLER{i}" for i in range(30)]
    genes = [g for v in markers.values() for g in v] + filler
    n = {"T": 30, "B": 30, "F": 30, "none": 6}
    rows, truth = [], []
    for t, k in n.items():
        for _ in range(k):
            lam = np.full(len(genes), 2.0)
            lam[:12] = 0.05 if t != "none" else 0.0  # "none": no marker of any type
            if t != "none":
                lam[[genes.index(g) for g in markers[t]]] = 8.0
            rows.append(r.poisson(lam))
            truth.append(t)
    a = ad.AnnData(sparse.csr_matrix(np.array(rows, dtype=np.float32)), var=pd.DataFrame(index=genes))
    a.obs["truth"] = truth
    return a


def test_known_answer_toy():
    a = _toy()
    tm.tl.annotate(a, refine=False)
    expect = {"T": "T cell", "B": "B cell", "F": "Fibroblast", "none": "Unassigned"}
    assert (a.obs["cell_type_major"].astype(str) == a.obs["truth"].map(expect)).all()
    comp = {"T": "immune", "B": "immune", "F": "stromal", "none": "unassigned"}
    assert (a.obs["compartment"].astype(str) == a.obs["truth"].map(comp)).all()
    conf = a.obs["cell_type_confidence"]
    assert conf.between(0, 1).all() and (conf[a.obs["truth"] == "none"] == 0).all()
    # the stored palettes follow the fixed colours, scanpy-style
    assert len(a.uns["compartment_colors"]) == len(a.obs["compartment"].cat.categories)
    assert a.uns["annotate"]["params"]["refine"] is False


def test_doublets_of_two_lineages_are_flagged_not_forced():
    """Known answer: 10 droplets holding a T cell and a fibroblast (their counts summed) among the toy's
    singlets; 10 holding two T cells (homotypic: one lineage, not flagged)."""
    a = _toy()
    X = a.X.toarray()
    truth = a.obs["truth"].to_numpy()
    t, f = np.flatnonzero(truth == "T"), np.flatnonzero(truth == "F")
    het = X[t[:10]] + X[f[:10]]
    hom = X[t[10:20]] + X[t[20:30]]
    b = ad.AnnData(sparse.csr_matrix(np.vstack([X, het, hom]).astype(np.float32)), var=a.var.copy())
    b.obs["truth"] = list(truth) + ["T+F"] * 10 + ["T+T"] * 10
    tm.tl.annotate(b, refine=False)
    flag = b.obs["cell_type_doublet"].to_numpy()
    kind = b.obs["truth"].to_numpy()
    assert flag[kind == "T+F"].all() and not flag[kind == "T+T"].any()
    assert not flag[np.isin(kind, ["T", "B", "F", "none"])].any()
    # labels stay those of the best type; the confidence is capped
    assert np.isin(b.obs["cell_type_major"].astype(str)[kind == "T+F"], ["T cell", "Fibroblast"]).all()
    assert (b.obs["cell_type_confidence"][flag] <= 0.5).all()
    pairs = b.uns["annotate"]["doublet_pairs"]
    assert pairs.iloc[0][["lineage_a", "lineage_b"]].tolist() == ["T/NK", "mesenchymal"]
    assert pairs.iloc[0]["n_cells"] == 10


def test_user_markers_dict_and_groupby_consensus():
    a = _toy()
    mk = {"T cell": ["CD3D", "CD3E", "CD2"], "B cell": {"+": ["MS4A1", "CD79A", "CD19"], "-": ["CD3E"]}}
    a.obs["cluster"] = np.where(a.obs["truth"] == "T", "c0", np.where(a.obs["truth"] == "B", "c1", "c2"))
    tm.tl.annotate(a, markers=mk, groupby="cluster")
    lab = a.obs.groupby("cluster", observed=True)["cell_type_major"].agg(lambda s: set(s.astype(str)))
    assert lab["c0"] == {"T cell"} and lab["c1"] == {"B cell"} and lab["c2"] == {"Unassigned"}
    with pytest.raises(tm.InvalidParameterError, match="list of genes"):
        tm.tl.annotate(a, markers={"T cell": "CD3E"})


def _brain_toy(rng=0, n=30, profile="defining", stray=None):
    """``n`` cells per brain type expressing its defining markers (``profile="defining"``, only those
    genes measured) or all its positive markers (``"all"``), plus T cells, fibroblasts and microglia
    (myeloid defining markers and the microglia genes); stray marker counts at rate 0.05.

    ``stray``: instead of brain cells, 300 fibroblasts of which ``stray`` co-express two defining
    markers of each brain type (sporadic reads in a tissue without brain cells; all markers measured).
    """
    lib = tm.datasets.markers(level="major")
    pos = lib[lib["cell_type"].isin(BRAIN) & (lib["direction"] == "+")]
    dfn = {t: pos.loc[(pos["cell_type"] == t) & (pos["role"] == "defining"), "gene"].tolist() for t in BRAIN}
    expressed = (
        dfn if profile == "defining" else {t: pos.loc[pos["cell_type"] == t, "gene"].tolist() for t in BRAIN}
    )
    markers = {**expressed, "T": ["CD3D", "CD3E", "CD2", "TRAC"], "F": ["COL1A1", "COL1A2", "DCN", "LUM"],
               "Microglia": ["CD68", "CSF1R", "C1QA", "LYZ", "P2RY12", "TMEM119", "CX3CR1", "SALL1"]}  # fmt: skip
    listed = pos["gene"] if profile == "all" or stray is not None else []
    genes = list(dict.fromkeys([*(g for v in markers.values() for g in v), *listed]))
    genes += [f"FILLER{i}" for i in range(30)]
    r = np.random.default_rng(rng)
    sizes = {"T": n, "F": n} | ({"F": 300} if stray is not None else {t: n for t in [*BRAIN, "Microglia"]})
    rows, truth = [], []
    for t, k in sizes.items():
        for i in range(k):
            lam = np.where(np.arange(len(genes)) < len(genes) - 30, 0.05, 2.0)
            lam[[genes.index(g) for g in markers[t]]] = 8.0
            if stray is not None and t == "F" and i < stray:
                lam[[genes.index(dfn[b][j]) for b in BRAIN for j in (0, 1)]] = 1.0
            rows.append(r.poisson(lam))
            truth.append(t)
    a = ad.AnnData(sparse.csr_matrix(np.array(rows, dtype=np.float32)), var=pd.DataFrame(index=genes))
    a.obs["truth"] = truth
    return a


EXPECT_BRAIN = {t: t for t in BRAIN} | {"T": "T cell", "F": "Fibroblast", "Microglia": "Myeloid"}


@pytest.mark.parametrize("refine", [False, True])
def test_known_answer_brain_parenchyma(refine):
    """Cells expressing only a brain type's defining markers get that type, in the parenchyma."""
    a = _brain_toy()
    tm.tl.annotate(a, refine=refine, tissue_types=True)  # only the defining genes are measured
    major = a.obs["cell_type_major"].astype(str)
    ok = (major == a.obs["truth"].map(EXPECT_BRAIN)).to_numpy()
    if refine:  # the classifier's novelty test leaves some cells of such a tiny set Unassigned (as in _toy)
        assert ok[(major != "Unassigned").to_numpy()].all()
        assert pd.Series(ok).groupby(a.obs["truth"].to_numpy()).mean()[BRAIN].min() >= 0.8
        return
    assert ok.all(), pd.crosstab(a.obs["truth"], major)
    brain = a.obs["truth"].isin(BRAIN).to_numpy()
    assert (a.obs["compartment"].astype(str)[brain] == "parenchyma").all()
    fine = a.obs["cell_type"].astype(str)
    assert (fine[a.obs["truth"] == "Microglia"] == "Microglia").all()
    assert (fine[brain] == a.obs["truth"][brain]).all()  # one fine type per brain major type
    assert set(a.uns["annotate"]["tissue_types"].split(", ")) == {*BRAIN, "Microglia"}
    assert list(a.obs["compartment"].cat.categories) == COMPARTMENTS
    assert len(a.uns["cell_type_major_colors"]) == len(a.obs["cell_type_major"].cat.categories)


def test_tissue_types_need_a_population():
    """By default brain types are scored when brain cells are there (all their markers measured),
    not from sporadic reads (2 of 330 cells co-express their defining markers, < 1 %);
    ``tissue_types=False`` drops them, ``True`` scores them regardless."""
    a = _brain_toy(profile="all")
    tm.tl.annotate(a, refine=False)
    assert set(a.uns["annotate"]["tissue_types"].split(", ")) == {*BRAIN, "Microglia"}
    major = a.obs["cell_type_major"].astype(str)
    assert (major == a.obs["truth"].map(EXPECT_BRAIN)).mean() >= 0.95
    tm.tl.annotate(a, tissue_types=False)
    assert "parenchyma" not in set(a.obs["compartment"].astype(str))
    assert a.uns["annotate"]["params"]["tissue_types"] is False
    b = _brain_toy(stray=2)
    tm.tl.annotate(b)
    assert b.uns["annotate"]["tissue_types"] == ""
    used = b.uns["annotate"]["markers_used"].set_index(["level", "cell_type"])
    assert not used.loc[[("major", t) for t in BRAIN], "predictable"].any()
    assert not used.loc[("fine", "Microglia"), "predictable"]
    assert "parenchyma" not in set(b.obs["compartment"].astype(str))
    tm.tl.annotate(b, tissue_types=True)
    assert "Oligodendrocyte" in b.uns["annotate"]["tissue_types"]
    with pytest.raises(tm.InvalidParameterError, match="tissue_types"):
        tm.tl.annotate(b, tissue_types="brain")


def test_tissue_vocabulary_is_cited_and_restricted():
    """Every tissue type of issue 21 is in the library at the fine level, restricted to its organ, with
    2-4 defining markers, 5-10 positive markers and a source listed in markers_sources.tsv."""
    from tmeatlas._resources import data_path

    lib = tm.datasets.markers()
    with data_path("markers_sources.tsv").open("rb") as fh:
        sources = set(pd.read_csv(fh, sep="\t", dtype=str)["source"])
    fine = lib[lib["level"] == "fine"]
    for t, (major, tissue) in TISSUE_FINE.items():
        rows = fine[fine["cell_type"] == t]
        assert set(rows["cell_type_major"]) == {major} and set(rows["tissue"]) == {tissue}, t
        pos = rows[rows["direction"] == "+"]
        # prostate basal cells have no organ-specific gene (KRT5, KRT15, TP63 mark every basal
        # epithelium): no defining marker, they follow prostate luminal cells
        n_def = (pos["role"] == "defining").sum()
        assert 5 <= len(pos) <= 10 and (n_def == 0 if t == "prostate basal" else 2 <= n_def <= 4), t
        assert {k for s in rows["source"] for k in s.split(";")} <= sources, t
    # melanocytes are parenchyma of the skin (a major type of their own), not epithelium
    mel = lib[lib["cell_type"] == "Melanocyte"]
    assert set(mel["level"]) == {"major", "fine"} and set(mel["compartment"]) == {"parenchyma"}
    # hepatocyte genes are fine-level only: ambient ALB/APO reads cannot make a cell epithelial
    major_genes = set(lib.loc[(lib["level"] == "major") & (lib["direction"] == "+"), "gene"])
    assert not {"ALB", "APOH", "FGB", "APOA1", "APOC3"} & major_genes


#: major-type markers that the toy cells of each major type express (hepatocytes: KRT8/KRT18 only,
#: the two classic epithelial genes they keep; EPCAM-, KRT19-)
_MAJOR_PROFILE = {
    "Epithelial": ["EPCAM", "KRT8", "KRT18", "KRT19", "CDH1", "CLDN4"],
    "hepatocyte": ["KRT8", "KRT18"],
    "Myeloid": ["CD68", "CSF1R", "C1QA", "LYZ", "CD14"],
    "T cell": ["CD3D", "CD3E", "CD2", "TRAC"],
    "Fibroblast": ["COL1A1", "COL1A2", "DCN", "LUM"],
    "Melanocyte": [],
}


def _tissue_toy(types, n=40, rng=0, stray=0, n_carcinoma=400):
    """``n`` cells of each tissue type in ``types`` (its major type's markers and all its positive
    markers), carcinoma cells (epithelial markers only), T cells, fibroblasts and macrophages.

    ``stray``: that many carcinoma cells co-express two defining markers of every tissue type of
    ``TISSUE_FINE`` at a low level (sporadic reads in a tumour without these cells). Every positive
    marker of the library is measured, at rate 0.02 where the cell does not express it.
    """
    lib = tm.datasets.markers(level="fine")
    pos = lib[lib["cell_type"].isin(list(TISSUE_FINE)) & (lib["direction"] == "+")]
    own = {t: pos.loc[pos["cell_type"] == t, "gene"].tolist() for t in TISSUE_FINE}
    dfn = {
        t: pos.loc[(pos["cell_type"] == t) & (pos["role"] == "defining"), "gene"].tolist()
        for t in TISSUE_FINE
    }
    every = tm.datasets.markers().query("direction == '+'")["gene"]
    genes = list(dict.fromkeys([*(g for v in _MAJOR_PROFILE.values() for g in v), *pos["gene"], *every]))
    genes += [f"FILLER{i}" for i in range(30)]
    col = {g: j for j, g in enumerate(genes)}
    sizes = {"carcinoma": n_carcinoma, "T": 60, "F": 60, "macrophage": 60} | {t: n for t in types}
    r = np.random.default_rng(rng)
    rows, truth = [], []
    for t, k in sizes.items():
        major = {"carcinoma": "Epithelial", "T": "T cell", "F": "Fibroblast", "macrophage": "Myeloid"}.get(t)
        if major is None:
            major = "hepatocyte" if t == "hepatocyte" else TISSUE_FINE[t][0]
        expressed = _MAJOR_PROFILE[major] + own.get(t, [])
        for i in range(k):
            lam = np.where(np.arange(len(genes)) < len(genes) - 30, 0.02, 2.0)
            lam[[col[g] for g in expressed]] = 8.0
            if t == "carcinoma" and i < stray:
                lam[[col[d[j]] for d in dfn.values() if d for j in (0, 1)]] = 3.0
            rows.append(r.poisson(lam))
            truth.append(t)
    a = ad.AnnData(sparse.csr_matrix(np.array(rows, dtype=np.float32)), var=pd.DataFrame(index=genes))
    a.obs["truth"] = truth
    return a


def test_known_answer_tissue_types(tmp_path):
    """Cells expressing a tissue type's markers get it as their fine type under the right major type
    (hepatocytes with KRT8/KRT18 but no EPCAM or KRT19 reach Epithelial); the gate keeps every type
    whose population is there; the gate table survives the h5ad round trip."""
    a = _tissue_toy(list(TISSUE_FINE))
    tm.tl.annotate(a, refine=False)
    truth = a.obs["truth"].astype(str)
    fine = a.obs["cell_type"].astype(str)
    major = a.obs["cell_type_major"].astype(str)
    kept = set(a.uns["annotate"]["tissue_types"].split(", "))
    assert set(TISSUE_FINE) <= kept, set(TISSUE_FINE) - kept
    for t, (m, _) in TISSUE_FINE.items():
        # without the classifier, hepatocytes (KRT8/KRT18 their only epithelial genes: 2 of 12) compete
        # with stray reads of other lineages' markers; the classifier places them (next test)
        cells = (truth == t).to_numpy()
        assert (major[cells] == m).mean() >= (0.5 if t == "hepatocyte" else 0.85), (
            t,
            major[cells].value_counts(),
        )
        assert (fine[cells] == t).mean() >= (0.5 if t == "hepatocyte" else 0.85), (
            t,
            fine[cells].value_counts(),
        )
    mel = (truth == "Melanocyte").to_numpy()
    assert (a.obs["compartment"].astype(str)[mel] == "parenchyma").all()
    # hardly a tissue label on the cells of every tumour (measured 5 of 580: carcinoma cells whose
    # stray reads, 2 % per marker, hit two defining markers of one of the 15 types)
    other = truth.isin(["carcinoma", "T", "F", "macrophage"]).to_numpy()
    assert fine[other].isin(list(TISSUE_FINE)).mean() <= 0.02
    gate = a.uns["annotate"]["tissue_gate"].set_index(["level", "cell_type"])
    assert gate.loc[("fine", "hepatocyte"), "kept"] and gate.loc[("fine", "hepatocyte"), "share"] >= 0.03
    # every kept type's defining markers go together (the co-detection test), and the table says so
    assert (gate.loc[gate["kept"], "odds_ratio"] >= TISSUE_MIN_ODDS_RATIO).all()
    assert gate.loc[("fine", "hepatocyte"), "odds_ratio"] > 10
    # tissue_types=False drops them all, the major types stay
    b = a.copy()
    tm.tl.annotate(b, refine=False, tissue_types=False)
    assert not b.obs["cell_type"].astype(str).isin(list(TISSUE_FINE)).any()
    assert b.uns["annotate"]["tissue_types"] == ""
    epi = (truth.map(lambda t: TISSUE_FINE.get(t, ("",))[0]) == "Epithelial").to_numpy()
    # (without CNV calls, most of them become Malignant by their stray carcinoma-gene reads)
    assert b.obs["cell_type_major"].astype(str)[epi].isin(["Epithelial", "Malignant"]).mean() >= 0.95
    a.write_h5ad(tmp_path / "tissue.h5ad")
    back = ad.read_h5ad(tmp_path / "tissue.h5ad")
    assert list(back.obs["cell_type"].astype(str)) == list(fine)
    assert len(back.uns["annotate"]["tissue_gate"]) == len(a.uns["annotate"]["tissue_gate"])


def test_tissue_types_refined():
    """With the classifier (default), the tissue types keep their labels too."""
    a = _tissue_toy(["hepatocyte", "alveolar type II", "Kupffer cell", "Melanocyte", "enterocyte"], n=60)
    tm.tl.annotate(a)
    truth = a.obs["truth"].astype(str)
    fine = a.obs["cell_type"].astype(str)
    major = a.obs["cell_type_major"].astype(str)
    for t in ["hepatocyte", "alveolar type II", "Kupffer cell", "Melanocyte", "enterocyte"]:
        assert (fine[truth == t] == t).mean() >= 0.8, (t, fine[truth == t].value_counts().to_dict())
    assert (major[truth == "hepatocyte"] == "Epithelial").mean() >= 0.8


def test_stray_reads_create_no_tissue_type():
    """A tumour without tissue cells: 3 of 580 cells (< 1 %) co-express two defining markers of every
    tissue type; none is scored, ``tissue_types=True`` scores them regardless."""
    a = _tissue_toy([], stray=3)
    tm.tl.annotate(a)
    assert a.uns["annotate"]["tissue_types"] == ""
    gate = a.uns["annotate"]["tissue_gate"]
    assert not gate["kept"].any() and (gate["share"] < TISSUE_MIN_SHARE).all()
    assert not a.obs["cell_type"].astype(str).isin(list(TISSUE_FINE)).any()
    assert "parenchyma" not in set(a.obs["compartment"].astype(str))
    tm.tl.annotate(a, tissue_types=True)
    assert set(TISSUE_FINE) <= set(a.uns["annotate"]["tissue_types"].split(", "))


def test_cnv_calls_decide_malignancy_of_tissue_cells():
    """Alveolar type II cells called non-malignant keep their label; cells with the same program
    called malignant are Malignant; uncertain calls stay "epithelium (CNV uncertain)"."""
    a = _tissue_toy(["alveolar type II"], n=90)
    calls = np.where(a.obs["truth"] == "carcinoma", "malignant", "non-malignant").astype(object)
    at2 = np.flatnonzero((a.obs["truth"] == "alveolar type II").to_numpy())
    calls[at2[:30]] = "malignant"
    calls[at2[30:40]] = "uncertain"
    a.obs["malignant"] = pd.Categorical(calls)
    tm.tl.annotate(a, refine=False)
    fine = a.obs["cell_type"].astype(str).to_numpy()
    assert (fine[at2[:30]] == "Malignant").all()
    assert (fine[at2[30:40]] == "epithelium (CNV uncertain)").all()
    assert (fine[at2[40:]] == "alveolar type II").mean() >= 0.95
    assert (a.obs["cell_type_major"].astype(str).to_numpy()[at2[40:]] == "Epithelial").mean() >= 0.95


# ------------------------------------------------------------------------------ simulated cohort
@pytest.fixture(scope="module")
def sim_annot():
    a = tm.datasets.simulate_tumor(n_cells=5000, n_patients=3, rng=0)
    tm.tl.infer_cnv(a, sample_key="sample")
    tm.tl.call_malignant(a, sample_key="sample")
    return a


def _scores(a):
    from sklearn.metrics import f1_score

    o = a.obs
    labels = sorted(o["true_cell_type"].astype(str).unique())
    return (
        float((o["cell_type_major"].astype(str) == o["true_cell_type_major"].astype(str)).mean()),
        float((o["compartment"].astype(str) == o["true_compartment"].astype(str)).mean()),
        float(
            f1_score(
                o["true_cell_type"].astype(str), o["cell_type"].astype(str), average="macro", labels=labels
            )
        ),
    )


def test_simulated_cohort_accuracy(sim_annot):
    """Acceptance: major >= 0.95, compartment >= 0.98, fine macro-F1 >= 0.85 (measured 0.992, 0.993, 0.941)."""
    a = sim_annot.copy()
    tm.tl.annotate(a, sample_key="sample")
    major, comp, fine = _scores(a)
    assert major >= 0.95 and comp >= 0.98 and fine >= 0.85, (major, comp, fine)
    assert a.uns["annotate"]["malignant_source"] == "cnv"
    ok = (a.obs["cell_type"].astype(str) == a.obs["true_cell_type"].astype(str)).to_numpy()
    conf = a.obs["cell_type_confidence"].to_numpy()
    assert conf[ok].mean() > conf[~ok].mean() + 0.3  # confidence means something
    # malignant labels are the CNV calls
    assert ((a.obs["cell_type_major"] == "Malignant") == (a.obs["malignant"] == "malignant")).all()
    assert a.uns["annotate"]["counts"]["n_cells"].sum() == a.n_obs
    comp = tm.get.composition(a, sample_key="sample")
    assert np.allclose(comp.groupby("sample")["fraction"].sum(), 1.0)
    truth = a.obs.groupby("sample", observed=True)["true_cell_type_major"].value_counts(normalize=True)
    got = comp.set_index(["sample", "label"])["fraction"]
    assert abs(got[("P1", "T cell")] - truth[("P1", "T cell")]) < 0.02


def test_simulated_doublets_are_flagged():
    """Simulated droplets with two cells (6 %): heterotypic ones (two lineages) are mostly flagged,
    singlets rarely (measured 0.56 and 0.012 at seed 0)."""
    b = tm.datasets.simulate_tumor(n_cells=5000, n_patients=3, rng=0, doublet_rate=0.06)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.annotate(b, sample_key="sample")
    o = b.obs
    from tmeatlas.tl._annotate import _DOUBLET_LINEAGE as lineage

    major_of = (
        o.drop_duplicates("true_cell_type").set_index("true_cell_type")["true_cell_type_major"].astype(str)
    )
    partner = o["true_doublet_partner"].map(lambda t: lineage.get(major_of.get(t, ""), -1))
    het = o["true_doublet"] & (o["true_cell_type_major"].astype(str).map(lineage) != partner)
    assert het.sum() > 150
    assert o["cell_type_doublet"][het].mean() >= 0.4
    assert o["cell_type_doublet"][~o["true_doublet"]].mean() <= 0.03


def test_without_cnv_calls_markers_flag_malignant(sim_annot):
    a = sim_annot.copy()
    del a.obs["malignant"]
    with pytest.warns(UserWarning, match="markers only"):
        tm.tl.annotate(a)
    major, comp, fine = _scores(a)
    assert major >= 0.95 and comp >= 0.97, (major, comp)
    assert a.uns["annotate"]["malignant_source"] == "markers"


def test_log_normalised_input_and_ensembl_ids(sim_annot):
    import scanpy as sc

    a = sim_annot.copy()
    tm.tl.annotate(a)
    b = sim_annot.copy()
    sc.pp.normalize_total(b, target_sum=1e4)
    sc.pp.log1p(b)
    tm.tl.annotate(b)
    assert b.uns["annotate"]["input"] == "log"
    assert (a.obs["cell_type_major"] == b.obs["cell_type_major"]).mean() > 0.97
    from tmeatlas._resources import gene_table

    ids = gene_table()["gene_id"]
    c = sim_annot.copy()
    c.var_names = [ids.get(g, g) or g for g in c.var_names]
    c.var_names_make_unique()
    tm.tl.annotate(c)
    assert (a.obs["cell_type_major"] == c.obs["cell_type_major"]).mean() > 0.99


def test_panel_awareness(sim_annot):
    """Only measured markers count; a type whose markers are all missing is never predicted."""
    lib = tm.datasets.markers()
    mast = set(lib.loc[lib["cell_type_major"] == "Mast cell", "gene"])
    keep = [g for g in lib["gene"].unique() if g not in mast][::2]  # half of the other markers
    a = sim_annot[:, [g for g in sim_annot.var_names if g in set(keep)]].copy()
    assert a.n_vars < 200
    tm.tl.annotate(a)
    used = a.uns["annotate"]["markers_used"].set_index(["level", "cell_type"])
    assert not used.loc[("major", "Mast cell"), "predictable"]
    assert "Mast cell" not in set(a.obs["cell_type_major"].astype(str))
    assert used.loc[("major", "T cell"), "coverage"] < 1.0
    full = sim_annot.copy()
    tm.tl.annotate(full)
    assert a.obs["cell_type_confidence"].mean() < full.obs["cell_type_confidence"].mean()


def test_unknown_type_is_unassigned_not_forced(sim_annot):
    """Plasma cells, with plasma markers removed from the library, are left Unassigned (measured 116/116)."""
    lib = tm.datasets.markers()
    a = sim_annot.copy()
    tm.tl.annotate(a, markers=lib[lib["cell_type_major"] != "Plasma cell"])
    plasma = (a.obs["true_cell_type_major"] == "Plasma cell").to_numpy()
    un = (a.obs["cell_type_major"] == "Unassigned").to_numpy()
    assert un[plasma].mean() >= 0.8
    assert un[~plasma].mean() <= 0.02


def test_neighbour_smoothing_is_recorded(sim_annot):
    a = sim_annot[:1500].copy()
    n = a.n_obs
    rows = np.repeat(np.arange(n), 2)
    cols = np.stack([(np.arange(n) + 1) % n, (np.arange(n) - 1) % n], axis=1).ravel()
    a.obsp["connectivities"] = sparse.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n))
    tm.tl.annotate(a)
    assert a.uns["annotate"]["smoothed_over"] == "connectivities"
    tm.tl.annotate(a, smooth=None)
    assert a.uns["annotate"]["smoothed_over"] == "none"
    with pytest.raises(tm.InvalidInputError, match="neighbors"):
        tm.tl.annotate(a, smooth="missing_graph")


# ------------------------------------------------------------------------------ bad input
def test_bad_input_errors():
    a = _toy()
    b = a.copy()
    b.X = b.X.toarray()
    b.X[0, 0] = np.nan
    with pytest.raises(tm.InvalidInputError, match="NaN"):
        tm.tl.annotate(b)
    b.X[0, 0] = -1
    with pytest.raises(tm.InvalidInputError, match="negative"):
        tm.tl.annotate(b)
    mouse = ad.AnnData(np.ones((5, 4), np.float32), var=pd.DataFrame(index=["Cd3e", "Cd3d", "Ms4a1", "Actb"]))
    with pytest.raises(tm.InvalidInputError, match="human"):
        tm.tl.annotate(mouse)
    nothing = ad.AnnData(
        np.ones((5, 3), np.float32), var=pd.DataFrame(index=["FILLER1", "FILLER2", "FILLER3"])
    )
    with pytest.raises(tm.InvalidInputError, match="none of the marker genes"):
        tm.tl.annotate(nothing)
    with pytest.raises(tm.InvalidParameterError, match="min_score"):
        tm.tl.annotate(a, min_score=3)
    with pytest.raises(tm.MissingResultError, match="groupby"):
        tm.tl.annotate(a, groupby="leiden")
    with pytest.raises(tm.InvalidParameterError, match="columns"):
        tm.tl.annotate(a, markers=pd.DataFrame({"gene": ["CD3E"]}))


# ------------------------------------------------------------------------------ real data
def test_merfish_lung_panel(merfish_nsclc):
    """MERFISH NSCLC (479 genes, median 64 transcripts per cell) against the authors' type_lvl1.

    Measured: balanced accuracy 0.59 (per cell, defaults). The acceptance target of 0.85 is not
    reached; a supervised logistic regression trained on these very labels reaches 0.72
    (5-fold cross-validated, all 479 genes; benchmarks/annotate_accuracy.py), so the labels are not fully recoverable from this
    expression matrix. The lung epithelium here expresses LYZ and MHC class II (alveolar type II
    cells), and only two epithelial markers (KRT8, PERP) are on the panel: most errors are
    epithelial cells called myeloid.
    """
    from sklearn.metrics import balanced_accuracy_score

    a = merfish_nsclc.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.annotate(a)
    pred = a.obs["cell_type_major"].astype(str).map(MERFISH_TO_LVL1)
    bal = balanced_accuracy_score(a.obs["type_lvl1"].astype(str), pred)
    assert bal >= 0.55, bal
    used = a.uns["annotate"]["markers_used"]
    assert (used["coverage"] < 1).any()  # panel: coverage is reported per type
    # the panel holds PDGFRA, VCAN, CSPG4, CHGB, CX3CR1: no lung cell becomes a brain type
    assert "parenchyma" not in set(a.obs["compartment"].astype(str))
    assert "Microglia" not in set(a.obs["cell_type"].astype(str))


QIAN_TO_AUTHOR = {
    # tmeatlas major types onto the authors' six types of the Qian 2020 ovarian set: the authors'
    # "B_cell" population is the B lineage (148 of its 159 cells express two or more of MZB1,
    # JCHAIN, DERL3, TNFRSF17: mostly plasma cells); pericytes sit in their fibroblasts, NK in T
    "Malignant": "Epithelial", "Epithelial": "Epithelial", "T cell": "T_cell", "NK cell": "T_cell",
    "B cell": "B_cell", "Plasma cell": "B_cell", "Myeloid": "Macrophage", "Fibroblast": "Fibroblast",
    "Pericyte": "Fibroblast", "Endothelial": "Endothelial", "Mast cell": "Mast cell", "Unassigned": "Unassigned",
}  # fmt: skip


def test_qian_ovarian_real_droplets(qian_ovarian):
    """Qian 2020 ovarian cancer (10x, 4 samples, ambient immunoglobulin and collagen in every cell).

    ``annotate`` alone (no CNV calls, no graph). Measured (benchmarks/annotate_accuracy.py):
    balanced accuracy 0.929 against the authors' six types (before the background-aware
    evidence and defining markers: 0.910), B-lineage recall 0.931, carcinoma cells called an
    immune or stromal type 16.5% overall (was 22.7%; 129 "Mast cell" and 73 "B cell" calls gone),
    1.1% in samples 11-13 (was 8.1%). Nearly all of what is left is one cluster of sample 14
    whose cancer cells (same CNV profile as the sample's epithelial cancer cells) express
    collagens and no epithelial marker: markers cannot place them, only copy number can.
    """
    from sklearn.metrics import balanced_accuracy_score

    a = qian_ovarian
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.annotate(a, sample_key="sample")
    y = a.obs["author_cell_type"].astype(str).to_numpy()
    major = a.obs["cell_type_major"].astype(str).to_numpy()
    assert balanced_accuracy_score(y, [QIAN_TO_AUTHOR[m] for m in major]) >= 0.90
    assert np.isin(major[y == "B_cell"], ["B cell", "Plasma cell"]).mean() >= 0.88
    # ambient immunoglobulin is no evidence: other cells are not called plasma cells
    assert (major[y != "B_cell"] == "Plasma cell").mean() <= 0.01
    # tryptase, CPA3 and KIT are not in this gene set: mast cells cannot be decided, none is called
    used = a.uns["annotate"]["markers_used"].set_index(["level", "cell_type"])
    assert not used.loc[("major", "Mast cell"), "predictable"]
    assert "Mast cell" not in set(major)
    epi = y == "Epithelial"
    leak = epi & a.obs["compartment"].astype(str).isin(["immune", "stromal"]).to_numpy()
    assert leak[epi].mean() <= 0.20
    other = epi & (a.obs["sample"].astype(str) != "14").to_numpy()
    assert leak[other].sum() / other.sum() <= 0.03
    # no brain: sporadic PLP1/MAG reads of carcinoma cells and TMEM119 of fibroblasts are no population.
    # The one tissue type kept: 70 of the 1,080 provisional epithelial cells (6.5 %) co-express the
    # ciliated genes FOXJ1, CAPS, RSPH1 (cancer cells with the fallopian tube's ciliated program: 198
    # of the 208 so labelled before the fine-type evidence rule are CNV-malignant)
    assert a.uns["annotate"]["tissue_types"] == "ciliated"
    gate = a.uns["annotate"]["tissue_gate"].set_index("cell_type")
    assert gate.loc["ciliated", "share"] >= 0.03 and (gate.drop("ciliated")["share"] < 0.005).all()
    assert "parenchyma" not in set(a.obs["compartment"].astype(str))
    assert "Microglia" not in set(a.obs["cell_type"].astype(str))
    # doublet flags: 61 of 4,000 cells (1.5 %; 10x runs hold a few % doublets)
    assert 0.0 < a.obs["cell_type_doublet"].mean() <= 0.05


def test_tirosh_oligodendroglioma_parenchyma(tirosh):
    """Tirosh 2016 oligodendroglioma (Smart-seq2, 184 cells): the authors' normal oligodendrocytes
    and microglia/macrophages, malignant cells from obs.malignant.

    Measured (defaults): 23/23 oligodendrocytes "Oligodendrocyte" (confidence 1.0; before the
    parenchyma vocabulary 21/23 "NK cell" at confidence ~0.26), 19/19 microglia Myeloid, 16/19 with
    the fine type "Microglia" (before: non-classical monocyte / SPP1+ / C1Q+ macrophage).
    """
    a = tirosh.copy()
    author = a.obs.pop("cell_type").astype(str).to_numpy()
    tm.tl.annotate(a)
    major = a.obs["cell_type_major"].astype(str).to_numpy()
    oligo = author == "Oligodendrocytes (non-malignant)"
    micro = author == "Microglia/Macrophage"
    assert (major[oligo] == "Oligodendrocyte").mean() >= 0.8
    assert not (major == "NK cell").any()
    assert (a.obs["compartment"].astype(str).to_numpy()[oligo] == "parenchyma").mean() >= 0.8
    assert (major[micro] == "Myeloid").mean() >= 0.9
    assert (a.obs["cell_type"].astype(str).to_numpy()[micro] == "Microglia").mean() >= 0.7
    assert ((major == "Malignant") == (a.obs["malignant"] == "malignant").to_numpy()).all()
    # without CNV calls the malignant cells take glial or other labels, never the oligodendrocytes' NK
    b = tirosh.copy()
    b.obs.pop("cell_type")
    del b.obs["malignant"]
    tm.tl.annotate(b)
    assert (b.obs["cell_type_major"].astype(str).to_numpy()[oligo] == "Oligodendrocyte").mean() >= 0.8


def test_mean_odds_ratio_known_answers():
    """Markers detected in the same cells associate (odds ratio >> 1); independent ones do not
    (about 1); a column detected nowhere or everywhere carries no information."""
    from scipy import sparse

    from tmeatlas.tl._annotate import _mean_odds_ratio

    # 2 x 2 table 40 / 10 / 10 / 40: (40.5 * 40.5) / (10.5 * 10.5)
    a = np.r_[np.ones(50), np.zeros(50)]
    b = np.r_[np.ones(40), np.zeros(20), np.ones(0), np.zeros(40)]
    b[50:60] = 1
    on = sparse.csr_matrix(np.column_stack([a, b]))
    assert _mean_odds_ratio(on) == pytest.approx(40.5**2 / 10.5**2)
    gen = np.random.default_rng(0)
    noise = sparse.csr_matrix(gen.random((20_000, 3)) < 0.3)
    assert 0.85 < _mean_odds_ratio(noise) < 1.15
    const = sparse.csr_matrix(np.column_stack([a, np.ones(100)]))
    assert _mean_odds_ratio(const) == np.inf
