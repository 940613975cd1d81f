"""Plots of niches, the tumour interface and immune phenotypes (``tmeatlas.pl._niches``).

The inputs are built by hand following the schema of ``tm.gr.niches``, ``tm.gr.interface`` and
``tm.gr.immune_phenotype``, so these tests do not depend on the tools.
"""

from __future__ import annotations

import anndata as ad
import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

import tmeatlas as tm
from tmeatlas._keys import OBS, OBSM, UNS
from tmeatlas.pl._niches import (
    MIN_BIN_CELLS,
    PHENOTYPE_COLORS,
    _binned_fractions,
    immune_phenotypes,
    interface_profile,
    niche_composition,
    spatial_niches,
)
from tmeatlas.pl._utils import CB_PALETTE, MAJOR_COLORS

mpl.use("Agg")

NICHES = ["tumour core", "tumour margin", "immune-rich stroma", "stroma", "TLS"]
TYPES = ["Malignant", "T cell", "Myeloid", "Fibroblast", "B cell"]
MARGIN = 100.0


def _build(n: int = 2000, seed: int = 0) -> ad.AnnData:
    """Two samples of ``n / 2`` cells on 800 x 800 µm: S1 with a tumour left of x = 400 µm, S2 without."""
    rng = np.random.default_rng(seed)
    sample = np.repeat(["S1", "S2"], n // 2)
    xy = rng.uniform(0, 800, size=(n, 2))
    dist = np.where(sample == "S1", xy[:, 0] - 400.0, np.nan)
    # malignant cells inside the tumour, T cells rising towards the stroma
    p_mal = np.where(np.nan_to_num(dist, nan=500) < 0, 0.7, 0.05)
    ct = np.where(rng.random(n) < p_mal, "Malignant", rng.choice(TYPES[1:], n))
    region = np.where(np.isnan(dist) | (dist > MARGIN), "stroma", np.where(dist < 0, "core", "margin"))
    niche = rng.choice(NICHES, n)
    obs = pd.DataFrame(
        {
            OBS.sample: pd.Categorical(sample),
            OBS.cell_type_major: pd.Categorical(ct, categories=TYPES),
            OBS.niche: pd.Categorical(niche, categories=NICHES),
            OBS.tumor_distance: dist,
            OBS.tumor_region: pd.Categorical(region, categories=["core", "margin", "stroma"]),
        },
        index=[f"c{i}" for i in range(n)],
    )
    adata = ad.AnnData(X=np.zeros((n, 3), dtype=np.float32), obs=obs)
    adata.obsm[OBSM.spatial] = xy
    comp = pd.crosstab(obs[OBS.niche], obs[OBS.cell_type_major], normalize="index")
    comp.index, comp.columns = comp.index.astype(str), comp.columns.astype(str)
    summary = obs[OBS.niche].value_counts().rename_axis("niche").reset_index(name="n_cells")
    summary["fraction"] = summary["n_cells"] / n
    adata.uns[UNS.niches] = {
        "params": {"sample_key": OBS.sample, "spatial_key": OBSM.spatial, "groupby": OBS.cell_type_major},
        "composition": comp,
        "summary": summary,
    }
    adata.uns[UNS.interface] = {"params": {"margin_width": MARGIN, "sample_key": OBS.sample}}
    table = pd.DataFrame(
        {
            "sample": ["S1", "S2"],
            "phenotype": ["inflamed", "no tumour"],
            "density_core": [120.0, np.nan],
            "density_margin": [300.0, np.nan],
            "density_stroma": [50.0, 80.0],
            "n_cells": [n // 2, n // 2],
        }
    )
    adata.uns[UNS.immune_phenotype] = {
        "params": {"sample_key": OBS.sample, "min_density": 50.0},
        "table": table,
    }
    adata.obs[OBS.immune_phenotype] = pd.Categorical(np.where(sample == "S1", "inflamed", "no tumour"))
    return adata


@pytest.fixture(scope="module")
def built():
    return _build()


@pytest.fixture
def adata(built):
    return built.copy()


@pytest.fixture
def bare(built):
    """The same cells without any niche / interface / phenotype result."""
    b = built.copy()
    b.obs = b.obs.drop(columns=[OBS.niche, OBS.tumor_distance, OBS.tumor_region, OBS.immune_phenotype])
    for k in (UNS.niches, UNS.interface, UNS.immune_phenotype):
        del b.uns[k]
    return b


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _panels(fig):
    return [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]


def _pdf_ok(path):
    b = path.read_bytes()
    assert path.stat().st_size > 1000
    assert b"/FontFile2" in b  # text kept as text with an embedded TrueType font (vector)


def _legend_texts(legend):
    return [t.get_text() for t in legend.get_texts()]


# ---------------------------------------------------------------- spatial_niches
def test_spatial_niches_panels_legend_scale_bar(adata, tmp_path):
    fig = spatial_niches(adata, return_fig=True)
    assert isinstance(fig, mpl.figure.Figure)
    panels = _panels(fig)
    assert [a.get_title() for a in panels] == ["S1", "S2"]
    for a in panels:
        assert a.get_aspect() == 1.0
        assert list(a.get_xticks()) == [] and list(a.get_yticks()) == []
        assert any(t.get_text().endswith("µm") for t in a.texts)
        assert len(a.collections[0].get_offsets()) == 1000
    # one legend for all panels, with the niche names in category order
    assert len(fig.legends) == 1
    assert _legend_texts(fig.legends[0]) == NICHES
    assert all(a.get_legend() is None for a in panels)
    # default colours: CB palette by category
    used = {to_hex(c).upper() for c in panels[0].collections[0].get_facecolors()}
    assert used == {CB_PALETTE[i].upper() for i in range(len(NICHES))}

    out = tmp_path / "niches.pdf"
    assert spatial_niches(adata, save=out) is None
    _pdf_ok(out)


def test_spatial_niches_options(adata):
    # stored scanpy-style colours are honoured
    adata.uns["niche_colors"] = ["#000000", "#111111", "#222222", "#333333", "#444444"]
    fig = spatial_niches(adata, samples=["S2"], scale_bar=100, return_fig=True)
    (a,) = _panels(fig)
    assert a.get_title() == "S2"
    assert "100 µm" in [t.get_text() for t in a.texts]
    used = {to_hex(c) for c in a.collections[0].get_facecolors()}
    assert used == set(adata.uns["niche_colors"])
    # into a given axes: one panel, legend on the axes; scale_bar=0 hides the bar
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    ret = spatial_niches(adata, samples=["S1"], scale_bar=0, ax=ax, show=False)
    assert ret == [ax]
    assert not ax.texts
    assert _legend_texts(ax.get_legend()) == NICHES
    # cells without a niche: grey, listed last in the legend
    adata.obs.loc[adata.obs_names[:5], OBS.niche] = np.nan
    fig = spatial_niches(adata, samples=["S1"], return_fig=True)
    assert _legend_texts(fig.legends[0])[-1] == "no niche"
    # sample_key defaults to the one recorded by tm.gr.niches; "None" (h5ad-safe None): one panel
    adata.obs["patient"] = adata.obs[OBS.sample].map({"S1": "P1", "S2": "P2"}).astype("category")
    adata.uns[UNS.niches]["params"]["sample_key"] = "patient"
    assert [a.get_title() for a in _panels(spatial_niches(adata, return_fig=True))] == ["P1", "P2"]
    adata.uns[UNS.niches]["params"]["sample_key"] = "None"
    adata.obs = adata.obs.drop(columns=[OBS.sample])
    assert [a.get_title() for a in _panels(spatial_niches(adata, return_fig=True))] == [OBS.niche]


def test_spatial_niches_errors(adata, bare):
    with pytest.raises(tm.MissingResultError, match=r"run `tm\.gr\.niches\(adata\)` first"):
        spatial_niches(bare, show=False)
    with pytest.raises(tm.InvalidParameterError, match="not found"):
        spatial_niches(adata, samples=["S9"], show=False)
    with pytest.raises(tm.InvalidParameterError, match="ncols"):
        spatial_niches(adata, ncols=0, show=False)
    with pytest.raises(tm.InvalidParameterError, match="scale_bar"):
        spatial_niches(adata, scale_bar=-5, show=False)
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    with pytest.raises(tm.InvalidParameterError, match="single panel"):
        spatial_niches(adata, ax=ax)
    del adata.obsm[OBSM.spatial]
    with pytest.raises(tm.MissingResultError, match="coordinates"):
        spatial_niches(adata, show=False)
    with pytest.raises(tm.InvalidInputError, match="AnnData"):
        spatial_niches(np.zeros((3, 3)))


# ---------------------------------------------------------------- niche_composition
def test_niche_composition_heatmap(adata, tmp_path):
    comp = adata.uns[UNS.niches]["composition"]
    fig = niche_composition(adata, annotate=True, return_fig=True)
    assert isinstance(fig, mpl.figure.Figure)
    (a,) = _panels(fig)
    assert any(x.get_label() == "<colorbar>" for x in fig.axes)
    (im,) = a.images
    np.testing.assert_allclose(im.get_array(), comp.loc[NICHES].to_numpy())
    assert im.get_cmap().name == "viridis"
    assert [t.get_text() for t in a.get_yticklabels()] == NICHES
    assert [t.get_text() for t in a.get_xticklabels()] == list(comp.columns)
    assert len(a.texts) == comp.size
    assert a.texts[0].get_text() == f"{comp.iloc[0, 0]:.2f}"
    # rows follow the category order of obs["niche"], whatever the table's order
    adata.uns[UNS.niches]["composition"] = comp.iloc[::-1]
    fig = niche_composition(adata, return_fig=True)
    assert [t.get_text() for t in _panels(fig)[0].get_yticklabels()] == NICHES
    assert not _panels(fig)[0].texts

    out = tmp_path / "composition.pdf"
    assert niche_composition(adata, save=out) is None
    _pdf_ok(out)


def test_niche_composition_bar_and_ax(adata):
    import matplotlib.pyplot as plt

    comp = adata.uns[UNS.niches]["composition"]
    _, ax = plt.subplots()
    assert niche_composition(adata, kind="bar", ax=ax, show=False) == [ax]
    bars = [p for c in ax.containers for p in c]
    assert len(bars) == comp.size
    # major cell types keep their fixed colours
    assert [to_hex(c[0].get_facecolor()).upper() for c in ax.containers] == [
        MAJOR_COLORS[g].upper() for g in comp.columns
    ]
    assert _legend_texts(ax.get_legend()) == list(comp.columns)
    # each bar is the niche's composition, summing to 1
    widths = np.array([[p.get_width() for p in c] for c in ax.containers]).T
    np.testing.assert_allclose(widths, comp.loc[NICHES].to_numpy())
    np.testing.assert_allclose(widths.sum(axis=1), 1.0)


def test_niche_composition_errors(adata, bare):
    with pytest.raises(tm.MissingResultError, match=r"run `tm\.gr\.niches\(adata\)` first"):
        niche_composition(bare, show=False)
    with pytest.raises(tm.InvalidParameterError, match="kind"):
        niche_composition(adata, kind="pie", show=False)
    with pytest.raises(tm.InvalidParameterError, match="cmap"):
        niche_composition(adata, cmap="no-such-map", show=False)
    del adata.uns[UNS.niches]["composition"]
    with pytest.raises(tm.MissingResultError, match="composition"):
        niche_composition(adata, show=False)


# ---------------------------------------------------------------- interface_profile
def test_binned_fractions_known_answer():
    # bin 0: 10 cells, 3 of group 1; bin 1: 9 cells (below MIN_BIN_CELLS) -> NaN; bin 2: empty
    b = np.array([0] * 10 + [1] * 9)
    g = np.array([1, 1, 1] + [0] * 7 + [0] * 9)
    frac = _binned_fractions(b, g, 3, 2)
    assert MIN_BIN_CELLS == 10
    np.testing.assert_allclose(frac[0], [0.7, 0.3])
    assert np.isnan(frac[1:]).all()


def test_interface_profile_lines_boundary_and_margin(adata, tmp_path):
    fig = interface_profile(adata, return_fig=True)
    assert isinstance(fig, mpl.figure.Figure)
    (a,) = _panels(fig)
    lines = [ln for ln in a.get_lines() if not ln.get_label().startswith("_")]
    assert [ln.get_label() for ln in lines] == TYPES
    assert _legend_texts(a.get_legend()) == ["margin", *TYPES]
    centres = np.arange(-287.5, 300, 25)
    np.testing.assert_allclose(lines[0].get_xdata(), centres)
    # the pooled fractions in each bin sum to 1 and match a direct count (S2 has no tumour)
    ys = np.array([ln.get_ydata() for ln in lines])
    np.testing.assert_allclose(ys.sum(axis=0), 1.0)
    d = adata.obs[OBS.tumor_distance].to_numpy()
    in_bin = (d >= -300) & (d < -275)
    mal = (adata.obs[OBS.cell_type_major] == "Malignant").to_numpy()
    assert ys[0, 0] == pytest.approx(mal[in_bin].mean())
    # boundary at 0 and margin band [0, margin_width]
    assert any(np.allclose(ln.get_xdata(), 0) for ln in a.get_lines() if ln.get_label().startswith("_"))
    (band,) = [p for p in a.patches if p.get_label() == "margin"]
    assert (band.get_x(), band.get_x() + band.get_width()) == (0.0, MARGIN)
    assert a.get_xlabel().endswith("(µm)")
    # major cell types keep their fixed colours
    assert to_hex(lines[0].get_color()).upper() == MAJOR_COLORS["Malignant"].upper()

    out = tmp_path / "interface.pdf"
    assert interface_profile(adata, save=out) is None
    _pdf_ok(out)


def test_interface_profile_options(adata):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert interface_profile(
        adata, groups=["T cell"], per_sample=True, bins=[-200, -100, 0, 100, 200], ax=ax, show=False
    ) == [ax]
    labelled = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert [ln.get_label() for ln in labelled] == ["T cell"]
    thin = [ln for ln in ax.get_lines() if ln.get_label() == "_nolegend_"]
    assert len(thin) == 1  # only S1 has a tumour
    np.testing.assert_allclose(thin[0].get_ydata(), labelled[0].get_ydata())
    # sparse bins (< 10 cells) are not drawn
    fig = interface_profile(adata, bins=np.linspace(-400, 400, 401), return_fig=True)
    y = _panels(fig)[0].get_lines()[-1].get_ydata()
    assert np.isnan(y).all()
    # a number of bins spans the distances
    fig = interface_profile(adata, bins=4, return_fig=True)
    assert len(_panels(fig)[0].get_lines()[-1].get_xdata()) == 4


def test_interface_profile_errors(adata, bare):
    with pytest.raises(tm.MissingResultError, match=r"run `tm\.gr\.interface\(adata\)` first"):
        interface_profile(bare, show=False)
    for bins in ([0, 0], [100, 0], [1.0], "abc", [[0, 1], [2, 3]], 0, [0, np.nan]):
        with pytest.raises(tm.InvalidParameterError, match="bins"):
            interface_profile(adata, bins=bins, show=False)
    with pytest.raises(tm.InvalidParameterError, match="groups"):
        interface_profile(adata, groups=["Unicorn"], show=False)
    with pytest.raises(tm.MissingResultError, match="annotate"):
        interface_profile(adata.copy(), groupby=OBS.cell_type, show=False)
    adata.obs[OBS.tumor_distance] = np.nan
    with pytest.raises(tm.InvalidInputError, match="no sample with tumour"):
        interface_profile(adata, show=False)


# ---------------------------------------------------------------- immune_phenotypes
def test_immune_phenotypes_bars_labels_legend(adata, tmp_path):
    fig = immune_phenotypes(adata, return_fig=True)
    assert isinstance(fig, mpl.figure.Figure)
    (a,) = _panels(fig)
    bars = [p for c in a.containers for p in c]
    assert len(bars) == 3 * 2
    assert [c.get_label() for c in a.containers] == ["core", "margin", "stroma"]
    core = [p.get_height() for p in a.containers[0]]
    assert core[0] == 120.0 and np.isnan(core[1])  # no tumour: no core density
    labels = a.get_xticklabels()
    assert [t.get_text() for t in labels] == ["S1", "S2"]
    boxes = [to_hex(t.get_bbox_patch().get_facecolor()).upper() for t in labels]
    assert boxes == [PHENOTYPE_COLORS["inflamed"].upper(), PHENOTYPE_COLORS["no tumour"].upper()]
    legends = [c for c in a.get_children() if isinstance(c, mpl.legend.Legend)]
    texts = sorted(_legend_texts(lg) for lg in legends)
    assert texts == [["core", "margin", "stroma"], ["inflamed", "no tumour"]]

    out = tmp_path / "phenotypes.pdf"
    assert immune_phenotypes(adata, save=out) is None
    _pdf_ok(out)

    # an uncertain call shows its probability under the sample's name; a confident one does not
    b = adata.copy()
    b.uns["immune_phenotype"]["table"] = b.uns["immune_phenotype"]["table"].assign(confidence=[0.46, np.nan])
    (a,) = _panels(immune_phenotypes(b, return_fig=True))
    assert [t.get_text() for t in a.get_xticklabels()] == ["S1\np = 0.46", "S2"]
    b.uns["immune_phenotype"]["table"]["confidence"] = [0.95, np.nan]
    (a,) = _panels(immune_phenotypes(b, return_fig=True))
    assert [t.get_text() for t in a.get_xticklabels()] == ["S1", "S2"]


def test_immune_phenotypes_log_samples_ax(adata):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert immune_phenotypes(adata, samples=["S1"], log=True, ax=ax, show=False) == [ax]
    assert ax.get_yscale() == "log"
    bars = [p for c in ax.containers for p in c]
    assert len(bars) == 3
    tops = sorted(p.get_y() + p.get_height() for p in bars)
    np.testing.assert_allclose(tops, [50.0, 120.0, 300.0])


def test_immune_phenotypes_errors(adata, bare):
    with pytest.raises(tm.MissingResultError, match=r"run `tm\.gr\.immune_phenotype\(adata\)` first"):
        immune_phenotypes(bare, show=False)
    with pytest.raises(tm.InvalidParameterError, match="S9"):
        immune_phenotypes(adata, samples=["S9"], show=False)
    with pytest.raises(tm.InvalidParameterError, match="log"):
        immune_phenotypes(adata, log="yes", show=False)
    adata.uns[UNS.immune_phenotype]["table"] = adata.uns[UNS.immune_phenotype]["table"].drop(
        columns="density_core"
    )
    with pytest.raises(tm.InvalidInputError, match="density_core"):
        immune_phenotypes(adata, show=False)


# ---------------------------------------------------------------- after an h5ad round trip
def test_all_plots_after_h5ad_roundtrip(adata, tmp_path):
    from tmeatlas._store import h5ad_safe

    for k in (UNS.niches, UNS.interface, UNS.immune_phenotype):
        adata.uns[k] = h5ad_safe(dict(adata.uns[k]))
    adata.write_h5ad(tmp_path / "x.h5ad")
    back = ad.read_h5ad(tmp_path / "x.h5ad")
    assert len(_panels(spatial_niches(back, return_fig=True))) == 2
    assert _panels(niche_composition(back, kind="bar", return_fig=True))[0].containers
    assert _panels(interface_profile(back, per_sample=True, return_fig=True))[0].get_legend() is not None
    assert len(_panels(immune_phenotypes(back, return_fig=True))[0].containers) == 3
