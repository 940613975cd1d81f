"""tm.gr.interface, tm.gr.immune_phenotype and tm.gr.niches: known answers, real data, bad input."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import tmeatlas as tm
from tmeatlas._errors import InvalidInputError, InvalidParameterError, MissingResultError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SPACING = 10.0  # microns between grid cells


def _grid(n_side: int, sample: str, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    g = np.arange(n_side) * SPACING
    xy = np.array([(x, y) for y in g for x in g], float) + rng.normal(0, 0.5, (n_side * n_side, 2))
    return xy, [sample] * len(xy)


def _section(kind: str, sample: str, rng, n_side: int = 60, radius: float = 150.0) -> pd.DataFrame:
    """A square section with one round tumour of ``radius`` µm in the centre; CD8 T cells by ``kind``."""
    xy, s = _grid(n_side, sample, rng)
    c = xy.mean(0)
    depth = radius - np.hypot(*(xy - c).T)  # > 0 inside
    types = np.where(depth > 0, "Malignant", "Fibroblast").astype(object)
    if kind == "none":
        types[:] = "Fibroblast"
    u = rng.random(len(xy))
    if kind == "inflamed":  # CD8 T cells inside the tumour (5 % of cells = 500/mm²)
        types[(depth > 0) & (u < 0.05)] = "CD8 T"
    elif kind == "excluded":  # CD8 T cells only in the first 60 µm of stroma (15 %)
        types[(depth <= 0) & (depth > -60) & (u < 0.15)] = "CD8 T"
    elif kind == "desert":  # a few CD8 T cells far out in the stroma (0.2 %)
        types[(depth < -120) & (u < 0.002)] = "CD8 T"
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "sample": s, "cell_type": types, "depth": depth})


def _adata(frames: list[pd.DataFrame]) -> ad.AnnData:
    df = pd.concat(frames, ignore_index=True)
    df.index = [f"c{i}" for i in range(len(df))]
    a = ad.AnnData(X=np.ones((len(df), 3), np.float32), obs=df[["sample", "cell_type"]].copy())
    a.obs["sample"] = a.obs["sample"].astype("category")
    a.obs["cell_type_major"] = np.where(df["cell_type"] == "CD8 T", "T cell", df["cell_type"])
    a.obsm["spatial"] = df[["x", "y"]].to_numpy()
    a.obs["true_depth"] = df["depth"].to_numpy()
    return a


@pytest.fixture(scope="module")
def phenotyped():
    rng = np.random.default_rng(0)
    kinds = {"S1": "inflamed", "S2": "excluded", "S3": "desert", "S4": "none"}
    return _adata([_section(k, s, rng) for s, k in kinds.items()]), kinds


# ---------------------------------------------------------------------------------------------
# interface
# ---------------------------------------------------------------------------------------------
def test_interface_distance_known_answer(phenotyped):
    a, _ = phenotyped
    a = a.copy()
    tm.gr.interface(a, tumor_key="cell_type", tumor_value="Malignant", sample_key="sample")
    d = a.obs["tumor_distance"].to_numpy(float)
    true = -a.obs["true_depth"].to_numpy()
    tumour_samples = a.obs["sample"].isin(["S2", "S3"]).to_numpy()  # tumour cells only, no CD8 inside
    near = tumour_samples & (np.abs(true) < 200)
    # the estimated signed distance follows the true one to within about one cell spacing
    assert np.median(np.abs(d[near] - true[near])) < SPACING
    assert np.percentile(np.abs(d[near] - true[near]), 95) < 2 * SPACING
    reg = a.obs["tumor_region"]
    assert list(reg.cat.categories) == ["core", "margin", "stroma"]
    inside = tumour_samples & (true < -2 * SPACING)
    assert (reg[inside] == "core").all()
    band = tumour_samples & (true > 2 * SPACING) & (true < 100 - 2 * SPACING)
    assert (reg[band] == "margin").all()
    far = tumour_samples & (true > 100 + 2 * SPACING)
    assert (reg[far] == "stroma").all()
    # the sample without tumour: NaN distances, all stroma, reported in the summary
    s4 = (a.obs["sample"] == "S4").to_numpy()
    assert np.isnan(d[s4]).all() and (reg[s4] == "stroma").all()
    table = a.uns["interface"]["samples"].set_index("sample")
    assert not table.loc["S4", "has_tumor"] and table.loc["S2", "has_tumor"]
    # tumour area close to pi r^2 = 0.0707 mm²
    assert table.loc["S2", "tumor_area_mm2"] == pytest.approx(np.pi * 0.15**2, rel=0.1)


def test_interface_tumour_buds_stay_in_stroma():
    rng = np.random.default_rng(1)
    df = _section("none", "S", rng, n_side=40)
    xy = df[["x", "y"]].to_numpy()
    big = np.hypot(*(xy - xy.mean(0)).T) < 80
    df.loc[big, "cell_type"] = "Malignant"
    bud = np.argsort(np.hypot(*(xy - np.array([30.0, 30.0])).T))[:3]  # a 3-cell bud far from the tumour
    df.loc[bud, "cell_type"] = "Malignant"
    a = _adata([df])
    tm.gr.interface(a, tumor_key="cell_type", tumor_value="Malignant")
    reg = a.obs["tumor_region"].to_numpy()
    assert (reg[bud] != "core").all()
    assert (reg[big] == "core").mean() > 0.95


def test_interface_spot_proportions_and_defaults(phenotyped):
    a, _ = phenotyped
    a = a[a.obs["sample"] == "S2"].copy()
    a.obs["tumor_prop"] = (a.obs["cell_type"] == "Malignant").astype(float) * 0.8
    b = a.copy()
    tm.gr.interface(a, tumor_key="tumor_prop")
    b.obs["compartment"] = np.where(b.obs["cell_type"] == "Malignant", "malignant", "stromal")
    tm.gr.interface(b)  # default: obs["compartment"] == "malignant"
    assert b.uns["interface"]["params"]["tumor_key"] == "compartment"
    agree = (a.obs["tumor_region"] == b.obs["tumor_region"]).mean()
    assert agree > 0.97


def test_interface_default_calls_without_tumour(phenotyped, caplog):
    """The package's own calls with no malignant cell (a normal sample): tumour-free, not an error."""
    a, _ = phenotyped
    a = a.copy()
    a.obs["malignant"] = pd.Categorical(["non-malignant"] * a.n_obs)
    with caplog.at_level("WARNING", logger="tmeatlas"):
        tm.gr.interface(a, sample_key="sample")
    assert "no sample has a tumour" in caplog.text
    assert a.obs["tumor_distance"].isna().all() and (a.obs["tumor_region"] == "stroma").all()
    tm.gr.immune_phenotype(a, sample_key="sample", cell_type_key="cell_type")
    assert (a.uns["immune_phenotype"]["table"]["phenotype"] == "no tumour").all()
    # a label given by the user and absent from the column stays an error (a typo, not a finding)
    with pytest.raises(InvalidParameterError, match="not a value"):
        tm.gr.interface(a, tumor_key="malignant", tumor_value="malignant")


def test_interface_bad_input(phenotyped):
    a, _ = phenotyped
    a = a.copy()
    b = a.copy()
    b.obs = b.obs.drop(columns=["cell_type_major"])
    with pytest.raises(MissingResultError, match="call_malignant"):
        tm.gr.interface(b)
    with pytest.raises(InvalidParameterError, match="tumor_value"):
        tm.gr.interface(a, tumor_key="cell_type")
    with pytest.raises(InvalidParameterError, match="not a value"):
        tm.gr.interface(a, tumor_key="cell_type", tumor_value="Tumour!")
    with pytest.raises(InvalidParameterError, match="threshold"):
        tm.gr.interface(a, tumor_key="cell_type", tumor_value="Malignant", threshold=1.5)
    with pytest.raises(InvalidParameterError, match="margin_width"):
        tm.gr.interface(a, tumor_key="cell_type", tumor_value="Malignant", margin_width=-1)
    a.obs["bad_prop"] = 2.0
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        tm.gr.interface(a, tumor_key="bad_prop")
    del a.obsm["spatial"]
    with pytest.raises(MissingResultError):
        tm.gr.interface(a, tumor_key="cell_type", tumor_value="Malignant")


# ---------------------------------------------------------------------------------------------
# immune phenotype
# ---------------------------------------------------------------------------------------------
def test_immune_phenotype_known_answer(phenotyped):
    a, kinds = phenotyped
    a = a.copy()
    tm.gr.interface(a, tumor_key="cell_type", tumor_value="Malignant", sample_key="sample")
    tm.gr.immune_phenotype(a, sample_key="sample", cell_type_key="cell_type")
    table = a.uns["immune_phenotype"]["table"].set_index("sample")
    expected = {"inflamed": "inflamed", "excluded": "excluded", "desert": "desert", "none": "no tumour"}
    for s, k in kinds.items():
        assert table.loc[s, "phenotype"] == expected[k], table
    # inflamed: 5 % of 10 000 cells/mm² = ~500 CD8/mm² in the core
    assert 300 < table.loc["S1", "density_core"] < 800
    assert table.loc["S2", "density_core"] < 20 and table.loc["S2", "density_margin"] > 400
    assert (a.obs.loc[a.obs["sample"] == "S2", "immune_phenotype"] == "excluded").all()
    assert a.uns["immune_phenotype"]["params"]["cd8_types"] == ["CD8 T"]
    # probabilities under counting error: a distribution over the three phenotypes, the call's as confidence
    p = table[["p_inflamed", "p_excluded", "p_desert"]]
    called = table.index[table["phenotype"] != "no tumour"]
    np.testing.assert_allclose(p.loc[called].sum(axis=1), 1.0)
    for s in called:
        assert table.loc[s, "confidence"] == table.loc[s, f"p_{table.loc[s, 'phenotype']}"]
    assert p.loc["S4"].isna().all() and np.isnan(table.loc["S4", "confidence"])  # no tumour


def test_phenotype_probabilities_known_answer():
    """Jeffreys-Poisson posterior of the CD8 densities: exact values from the gamma distribution."""
    from scipy.stats import gamma

    from tmeatlas.gr._interface import _phenotype_probabilities

    # 30 CD8 cells in 0.2 mm2 of core (150/mm2) and 10 in 0.1 mm2 of margin, cut-offs 100 and 200
    pc = gamma.sf(100, a=30.5, scale=1 / 0.2)
    pm = gamma.sf(200, a=10.5, scale=1 / 0.1)
    got = _phenotype_probabilities(30, 0.2, 10, 0.1, 100.0, 200.0)
    np.testing.assert_allclose(got, [pc, (1 - pc) * pm, (1 - pc) * (1 - pm)], rtol=1e-12)
    assert 0.9 < got[0] < 1.0  # 150/mm2 from 30 cells: probably above 100, not certainly
    # many cells far from the cut-offs: near certainty; exactly at a cut-off: about even
    assert _phenotype_probabilities(0, 5.0, 0, 5.0, 100.0, 200.0)[2] > 0.999
    assert abs(_phenotype_probabilities(1000, 10.0, 0, 1.0, 100.0, 200.0)[0] - 0.5) < 0.02
    # no core area: no evidence
    assert np.isnan(_phenotype_probabilities(0, 0.0, 5, 0.1, 100.0, 200.0)).all()


def test_immune_phenotype_bad_input(phenotyped):
    a, _ = phenotyped
    a = a.copy()
    with pytest.raises(MissingResultError, match="tm.gr.interface"):
        tm.gr.immune_phenotype(a, sample_key="sample", cell_type_key="cell_type")
    tm.gr.interface(a, tumor_key="cell_type", tumor_value="Malignant")  # no sample_key
    with pytest.raises(InvalidParameterError, match="sample_key"):
        tm.gr.immune_phenotype(a, sample_key="sample", cell_type_key="cell_type")
    tm.gr.interface(a, tumor_key="cell_type", tumor_value="Malignant", sample_key="sample")
    with pytest.raises(InvalidInputError, match="CD8"):
        tm.gr.immune_phenotype(a, sample_key="sample", cell_type_key="cell_type_major")
    with pytest.raises(InvalidParameterError, match="cd8_types"):
        tm.gr.immune_phenotype(a, sample_key="sample", cell_type_key="cell_type", cd8_types=["CD8+"])
    with pytest.raises(InvalidParameterError, match="inflamed_density"):
        tm.gr.immune_phenotype(a, sample_key="sample", cell_type_key="cell_type", inflamed_density=0)


def test_immune_phenotype_simulated_cohort():
    """Simulated patients with known phenotypes, with the simulator's true cell types."""
    phen = ["inflamed", "excluded", "desert"] * 2
    a = tm.datasets.simulate_tumor(n_cells=9000, n_patients=6, n_genes=1000, immune_phenotypes=phen, rng=11)
    tm.gr.interface(a, tumor_key="true_cell_type_major", tumor_value="Malignant", sample_key="sample")
    tm.gr.immune_phenotype(a, sample_key="sample", cell_type_key="true_cell_type")
    got = a.uns["immune_phenotype"]["table"]["phenotype"].tolist()
    assert got == phen, a.uns["immune_phenotype"]["table"]


# ---------------------------------------------------------------------------------------------
# niches
# ---------------------------------------------------------------------------------------------
def _blocks(sample: str, rng, flip: bool = False, stroma=(0.7, 0.2, 0.1)) -> pd.DataFrame:
    """Three vertical bands: tumour nest, T/B aggregate, fibroblast stroma (order flipped in ``flip``)."""
    xy, s = _grid(45, sample, rng)
    band = np.minimum((xy[:, 0] / (45 * SPACING / 3)).astype(int), 2)
    if flip:
        band = 2 - band
    pools = [
        (["Malignant", "Fibroblast"], [0.9, 0.1]),
        (["B cell", "T cell", "Endothelial"], [0.5, 0.4, 0.1]),
        (["Fibroblast", "Endothelial", "Myeloid"], list(stroma)),
    ]
    types = np.empty(len(xy), object)
    for b, (names, p) in enumerate(pools):
        m = band == b
        types[m] = rng.choice(names, size=m.sum(), p=p)
    return pd.DataFrame(
        {"x": xy[:, 0], "y": xy[:, 1], "sample": s, "cell_type": types, "depth": 0.0, "band": band}
    )


def test_niches_known_answer_and_consistency():
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(2)
    frames = [_blocks("A", rng), _blocks("B", rng, flip=True)]
    a = _adata(frames)
    band = pd.concat(frames)["band"].to_numpy()
    # three bands; the 50-cell neighbourhoods of cells near a band edge are mixed, and the
    # stability rule may keep that edge as a fourth niche (measured: 4, ARI 0.88)
    tm.gr.niches(a, groupby="cell_type_major", sample_key="sample", k_range=(2, 6), use_interface=False)
    niche = a.obs["niche"].to_numpy()
    assert adjusted_rand_score(band, niche) > 0.85
    u = a.uns["niches"]
    assert u["params"]["n_niches"] in (3, 4)
    assert set(u["composition"].index) == set(a.obs["niche"].cat.categories)
    assert {"tumour core", "TLS", "stroma"} <= set(a.obs["niche"].cat.categories)
    # with the number of niches given, the three bands (measured ARI 0.97)
    fixed = tm.gr.niches(a, groupby="cell_type_major", sample_key="sample", n_niches=3, use_interface=False,
                         copy=True)  # fmt: skip
    assert adjusted_rand_score(band, fixed.obs["niche"]) > 0.9
    assert {"tumour core", "TLS", "stroma"} == set(fixed.obs["niche"].cat.categories)
    # consistent across samples: each band has the same niche in both samples
    for b in range(3):
        names = {
            pd.Series(niche[(band == b) & (a.obs["sample"] == s).to_numpy()]).mode()[0] for s in ("A", "B")
        }
        assert len(names) == 1
    assert u["stability"]["stability"].max() > 0.9
    assert np.allclose(u["composition"].sum(axis=1), 1.0)
    assert len(a.uns["niche_colors"]) == u["params"]["n_niches"]
    # same seed, same niches; a copy leaves the input untouched
    b = tm.gr.niches(a, groupby="cell_type_major", sample_key="sample", k_range=(2, 6),
                     use_interface=False, copy=True)  # fmt: skip
    assert (b.obs["niche"].to_numpy() == niche).all()


def test_niche_names_known_answer():
    """Names from compositions: epithelium is 'normal' only when malignant cells have their own label."""
    from tmeatlas.gr._niches import _name

    labelled = pd.Series({"Malignant": 0.05, "Epithelial": 0.8, "Fibroblast": 0.15})
    assert _name(labelled, None, epithelium_is_normal=True) == "normal epithelium"
    epi = pd.Series({"Epithelial": 0.8, "Fibroblast": 0.15, "Lymphocyte": 0.05})
    assert _name(epi, None, epithelium_is_normal=False) == "epithelium"
    core = pd.Series({"core": 0.9, "margin": 0.1, "stroma": 0.0})
    assert (
        _name(epi, core, epithelium_is_normal=False) == "tumour core"
    )  # the interface's tumour is epithelial
    # broad vocabularies (MERFISH lung level 1): Lymphocyte is immune, Vascular is vessel
    lymph = pd.Series({"Lymphocyte": 0.55, "Myeloid": 0.17, "Fibroblast": 0.28})
    assert _name(lymph, None) == "immune-rich stroma"  # lymphocytes of unknown kind: not "T-cell-rich"
    mixed = pd.Series({"Lymphocyte": 0.25, "Myeloid": 0.22, "Plasma": 0.2, "Fibroblast": 0.33})
    assert _name(mixed, None) == "immune-rich stroma"  # more unknown lymphocytes than myeloid cells
    assert (
        _name(pd.Series({"Macrophage": 0.4, "CD8 T": 0.15, "Fibroblast": 0.45}), None)
        == "myeloid-rich stroma"
    )
    assert _name(pd.Series({"Vascular": 0.5, "Fibroblast": 0.3, "Myeloid": 0.2}), None) == "vascular stroma"
    assert _name(pd.Series({"Malignant": 0.7, "CD8 T": 0.2, "Fibroblast": 0.1}), None) == "inflamed tumour"
    assert _name(pd.Series({"B cell": 0.4, "T cell": 0.3, "Fibroblast": 0.3}), None) == "TLS"
    brain = pd.Series({"Oligodendrocyte": 0.5, "Astrocyte": 0.2, "Microglia": 0.2, "Endothelial": 0.1})
    assert _name(brain, None) == "parenchyma"  # glia of the brain; microglia count as myeloid


def test_patient_split_known_answer():
    from tmeatlas.gr._niches import _patient_split

    # niches 0 and 1 are each other's nearest; niche 2 is far away
    X = np.array([[0.0], [0.0], [1.0], [1.0], [10.0], [10.0]])
    samples = np.array([0, 1, 0, 1, 0, 1])
    # both niches in both samples: no split
    assert _patient_split(X, np.array([0, 0, 1, 1, 2, 2]), samples) == 1.0
    # niche 0 only in sample 0, niche 1 only in sample 1: a split by patient
    X4, s4 = np.array([[0.0], [1.0], [10.0], [10.0]]), np.array([0, 1, 0, 1])
    assert _patient_split(X4, np.array([0, 1, 2, 2]), s4) == 0.0
    # niche 0 is a third of both samples, niche 1 two thirds of sample 0 and a third of sample 1:
    # distributions (1/2, 1/2) and (2/3, 1/3) overlap by 1/2 + 1/3
    assert _patient_split(X, np.array([0, 0, 1, 1, 1, 2]), samples) == pytest.approx(5 / 6)
    assert _patient_split(X, np.zeros(6, int), samples) == 1.0


def test_niches_do_not_split_a_structure_by_patient():
    """Samples B and D have more myeloid cells in their stroma than A and C: still one stroma niche."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(5)
    frames = [
        _blocks("A", rng, stroma=(0.7, 0.2, 0.1)),
        _blocks("B", rng, flip=True, stroma=(0.5, 0.2, 0.3)),
        _blocks("C", rng, stroma=(0.7, 0.2, 0.1)),
        _blocks("D", rng, flip=True, stroma=(0.5, 0.2, 0.3)),
    ]
    a = _adata(frames)
    band = pd.concat(frames)["band"].to_numpy()
    tm.gr.niches(a, groupby="cell_type_major", sample_key="sample", k_range=(2, 6), use_interface=False)
    niche = a.obs["niche"].to_numpy()
    stroma = {pd.Series(niche[(band == 2) & (a.obs["sample"] == s).to_numpy()]).mode()[0] for s in "ABCD"}
    assert len(stroma) == 1, stroma
    table = a.uns["niches"]["stability"]
    # the finer partitions that separate the two kinds of patients were tried and passed over
    assert (table["sample_overlap"] < 0.5).any(), table
    assert adjusted_rand_score(band, niche) > 0.9  # measured 0.95: the three bands
    # without samples there is no check, and the stroma splits by its two compositions
    b = tm.gr.niches(a, groupby="cell_type_major", k_range=(2, 6), use_interface=False, copy=True)
    assert b.uns["niches"]["stability"]["sample_overlap"].isna().all()
    split = {pd.Series(b.obs["niche"].to_numpy()[(band == 2) & (a.obs["sample"] == s).to_numpy()]).mode()[0]
             for s in "ABCD"}  # fmt: skip
    assert len(split) == 2, split


def test_niches_simulated_cohort_with_interface():
    """Niches vs the simulator's true niches: measured ARI (see benchmarks/niches.py for the bound)."""
    from sklearn.metrics import adjusted_rand_score

    a = tm.datasets.simulate_tumor(n_cells=8000, n_patients=3, n_genes=1000, rng=4)
    tm.gr.interface(a, tumor_key="true_cell_type_major", tumor_value="Malignant", sample_key="sample")
    tm.gr.niches(a, groupby="true_cell_type", sample_key="sample")
    ari = adjusted_rand_score(a.obs["true_niche"], a.obs["niche"])
    assert ari > 0.75, ari  # measured 0.788 (5 niches: tumour core, margin, stroma, normal ducts, TLS)
    comp = a.uns["niches"]["composition"]
    top = comp.index[0]
    assert top in ("tumour core", "inflamed tumour")
    assert (a.obs.loc[a.obs["niche"] == top, "true_niche"] == "tumour").mean() > 0.85


def test_niches_bad_input(phenotyped):
    a, _ = phenotyped
    a = a.copy()
    with pytest.raises(InvalidParameterError, match="n_niches"):
        tm.gr.niches(a, groupby="cell_type", n_niches=1)
    with pytest.raises(InvalidParameterError, match="k_range"):
        tm.gr.niches(a, groupby="cell_type", k_range=(5, 3))
    with pytest.raises(MissingResultError):
        tm.gr.niches(a, groupby="not_a_column")
    b = a.copy()
    del b.obs["cell_type_major"]
    b.obs = b.obs.drop(columns=["cell_type"])
    with pytest.raises(MissingResultError, match="annotate"):
        tm.gr.niches(b)


# ---------------------------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_phenoptr_tumour_stroma_from_ck():
    """Multiplex IF (phenoptr): tumour region from CK+ cells vs inForm's Tissue Category."""
    path = DATA / "phenoptr_multiplex_if_cells.csv.gz"
    if not path.exists():
        pytest.skip("shared phenoptr data not available")
    df = pd.read_csv(path)
    cols = [c for c in df.columns if c.endswith(" Mean")]
    a = ad.AnnData(
        X=df[cols].to_numpy(np.float32),
        obs=pd.DataFrame({"Phenotype": df["Phenotype"].astype(str).to_numpy()}, index=df.index.astype(str)),
        var=pd.DataFrame(index=cols),
    )
    a.obsm["spatial"] = df[["Cell X Position", "Cell Y Position"]].to_numpy(float)
    tm.gr.interface(a, tumor_key="Phenotype", tumor_value="CK+")
    truth = (df["Tissue Category"] == "Tumor").to_numpy()
    pred = (a.obs["tumor_region"] == "core").to_numpy()
    accuracy = float((pred == truth).mean())
    assert accuracy >= 0.9, accuracy
    # the field's CD8+ cells give a phenotype with finite densities in every region
    a.obs["field"] = "field1"
    tm.gr.interface(a, tumor_key="Phenotype", tumor_value="CK+", sample_key="field")
    tm.gr.immune_phenotype(a, sample_key="field", cell_type_key="Phenotype")
    row = a.uns["immune_phenotype"]["table"].iloc[0]
    assert row["phenotype"] in ("inflamed", "excluded", "desert")
    assert np.isfinite([row["density_core"], row["density_margin"], row["density_stroma"]]).all()


def test_neighborhoods_from_spot_proportions():
    """Spot data: the neighbourhood composition is the renormalised mean of the neighbours' proportions."""
    rng = np.random.default_rng(3)
    xy = np.array([(x, y) for y in range(12) for x in range(12)], float) * 100.0
    left = xy[:, 0] < 600
    P = np.where(left[:, None], [0.8, 0.2, 0.0], [0.0, 0.3, 0.7]) + rng.uniform(0, 0.05, (len(xy), 3))
    a = ad.AnnData(
        X=np.ones((len(xy), 2), np.float32), obs=pd.DataFrame(index=[f"s{i}" for i in range(len(xy))])
    )
    a.obsm["spatial"] = xy
    a.obsm["props"] = pd.DataFrame(P, index=a.obs_names, columns=["tumour", "immune", "stroma"])
    tm.gr.neighborhoods(a, composition_key="props", radius=150.0, include_self=True)
    C = a.obsm["X_neighborhood"]
    assert list(C.columns) == ["tumour", "immune", "stroma"]
    i = 5 * 12 + 2  # an interior spot on the left: itself and its 8 neighbours
    nb = np.flatnonzero(np.abs(xy - xy[i]).max(axis=1) <= 150)
    expected = P[nb].sum(0) / P[nb].sum()
    assert np.allclose(C.iloc[i].to_numpy(), expected, atol=1e-6)
    tm.gr.niches(a, k_range=(2, 4), use_interface=False)
    assert a.uns["niches"]["params"]["groupby"] == "props"
    # the two sides, and the columns along their border (a mixed zone of its own)
    assert pd.crosstab(left, a.obs["niche"]).max(axis=1).sum() / len(xy) > 0.8
    with pytest.raises(InvalidParameterError, match="exactly one"):
        tm.gr.neighborhoods(a, composition_key="props", groupby="x")
    a.obsm["bad"] = -P
    with pytest.raises(InvalidInputError, match="non-negative"):
        tm.gr.neighborhoods(a, composition_key="bad", radius=150.0)
    with pytest.raises(MissingResultError, match="obsm"):
        tm.gr.neighborhoods(a, composition_key="nope", radius=150.0)
