"""Plots of the annotation: ``tm.pl.compartments``, ``tm.pl.marker_dotplot``, ``tm.pl.composition``."""

from __future__ import annotations

import warnings

import anndata as ad
import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from scipy import sparse

import tmeatlas as tm
from tmeatlas.pl._annotate import DOT_AREA, compartments, composition, marker_dotplot
from tmeatlas.pl._utils import CB_PALETTE, COMPARTMENT_COLORS, MAJOR_COLORS

mpl.use("Agg")


@pytest.fixture(scope="module")
def annotated():
    a = tm.datasets.simulate_tumor(n_cells=600, n_patients=2, n_genes=2000, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.annotate(a)
    return a


@pytest.fixture
def adata(annotated):
    return annotated.copy()


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _tiny(dense: bool = False) -> ad.AnnData:
    """8 cells, 2 groups, 2 genes with known fractions: g1: CD3E 3/4, MS4A1 1/4; g2: CD3E 1/4, MS4A1 2/4."""
    X = np.array([[1, 0], [2, 0], [0, 0], [3, 5], [0, 1], [0, 2], [0, 0], [1, 0]], dtype=np.float32)
    # every cell also has a third gene so that library sizes are known: 10 counts per cell
    X = np.c_[X, 10 - X.sum(axis=1)]
    obs = pd.DataFrame({"g": pd.Categorical(["g1"] * 4 + ["g2"] * 4)}, index=[f"c{i}" for i in range(8)])
    return ad.AnnData(
        X=X if dense else sparse.csr_matrix(X), obs=obs, var=pd.DataFrame(index=["CD3E", "MS4A1", "ACTB"])
    )


def _unannotated(adata):
    b = adata.copy()
    b.obs = b.obs.drop(columns=["compartment", "cell_type_major", "cell_type", "cell_type_confidence"])
    return b


def _panels(fig):
    return [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]


def _pdf_ok(path):
    b = path.read_bytes()
    assert path.stat().st_size > 0
    assert b"/FontFile2" in b  # text kept as text with an embedded TrueType font (vector)


# ---------------------------------------------------------------- compartments
def test_compartments_panels_palettes_and_pdf(adata, tmp_path):
    fig = compartments(adata, return_fig=True)
    assert isinstance(fig, mpl.figure.Figure)
    panels = _panels(fig)
    assert [a.get_title() for a in panels] == ["compartment", "cell_type_major"]
    assert panels[0].get_xlabel() == "spatial 1"  # no X_umap in the simulation: spatial coordinates
    for a, fixed in zip(panels, (COMPARTMENT_COLORS, MAJOR_COLORS)):
        coll = a.collections[0]
        assert coll.get_rasterized()
        assert len(coll.get_offsets()) == adata.n_obs
        used = {to_hex(c).upper() for c in coll.get_facecolors()}
        assert used <= {c.upper() for c in fixed.values()}
        legend = [t.get_text() for t in a.get_legend().get_texts()]
        key = a.get_title()
        assert legend == [c for c in adata.obs[key].cat.categories if (adata.obs[key] == c).any()]
    # a compartment's cells carry the compartment's fixed colour
    coll = panels[0].collections[0]
    mal = np.flatnonzero((adata.obs["compartment"] == "immune").to_numpy())
    order = {tuple(xy) for xy in adata.obsm["spatial"][mal, :2]}
    cols = {
        to_hex(c).upper() for xy, c in zip(coll.get_offsets(), coll.get_facecolors()) if tuple(xy) in order
    }
    assert cols == {COMPARTMENT_COLORS["immune"]}

    out = tmp_path / "compartments.pdf"
    assert compartments(adata, save=out) is None
    _pdf_ok(out)
    assert b"/Subtype /Image" in out.read_bytes()  # points rasterised


def test_compartments_samples_numeric_and_stored_palette(adata):
    assert "cell_type_colors" not in adata.uns
    fig = compartments(
        adata, color=["cell_type", "cell_type_confidence"], sample_key="sample", return_fig=True
    )
    panels = _panels(fig)
    assert len(panels) == 4
    assert [a.get_title() for a in panels] == [
        "P1: cell_type",
        "P1: cell_type_confidence",
        "P2: cell_type",
        "P2: cell_type_confidence",
    ]
    assert any(a.get_label() == "<colorbar>" for a in fig.axes)
    conf = panels[1].collections[-1]
    assert conf.get_cmap().name == "viridis"
    # the fine types had no colours: CB_PALETTE is stored scanpy-style, one per category
    cats = list(adata.obs["cell_type"].cat.categories)
    stored = list(adata.uns["cell_type_colors"])
    assert stored == [CB_PALETTE[i % len(CB_PALETTE)] for i in range(len(cats))]
    # the annotation's palettes are kept; a deleted one is restored from the fixed colours
    del adata.uns["compartment_colors"]
    compartments(adata, color="compartment", show=False)
    comp = list(adata.obs["compartment"].cat.categories)
    assert list(adata.uns["compartment_colors"]) == [COMPARTMENT_COLORS[c] for c in comp]
    # colours stored by the user (scanpy) are reused
    adata.uns["cell_type_colors"] = ["#000000"] * len(cats)
    fig = compartments(adata, color="cell_type", return_fig=True)
    assert {to_hex(c) for c in fig.axes[0].collections[0].get_facecolors()} == {"#000000"}


def test_compartments_basis_ax_and_errors(adata):
    import matplotlib.pyplot as plt

    adata.obsm["X_umap"] = np.asarray(adata.obsm["spatial"])[:, ::-1].copy()
    _, ax = plt.subplots()
    axes = compartments(adata, color="compartment", ax=ax, show=False)
    assert list(axes) == [ax] and ax.get_xlabel() == "UMAP1"
    fig = compartments(adata, color="compartment", basis="spatial", return_fig=True)
    assert fig.axes[0].get_xlabel() == "spatial 1"
    with pytest.raises(tm.InvalidParameterError, match="single panel"):
        compartments(adata, ax=ax)
    with pytest.raises(tm.MissingResultError, match="X_tsne"):
        compartments(adata, basis="X_tsne")
    for k in ("X_umap", "spatial"):
        del adata.obsm[k]
    with pytest.raises(tm.MissingResultError, match=r"sc\.tl\.umap"):
        compartments(adata)
    with pytest.raises(tm.MissingResultError, match=r"tm\.tl\.annotate\(adata\)"):
        compartments(_unannotated(adata), basis="spatial")
    with pytest.raises(tm.MissingResultError, match="not a column"):
        compartments(adata, color="nope")


# ---------------------------------------------------------------- marker_dotplot
@pytest.mark.parametrize("dense", [False, True])
def test_dotplot_known_answer(dense):
    a = _tiny(dense)
    fig = marker_dotplot(
        a, groupby="g", markers={"T": ["CD3E"], "B": ["MS4A1"]}, standard_scale=None, return_fig=True
    )
    ax = fig.axes[0]
    dots = ax.collections[0]
    # rows = groups (g1, g2), columns = genes (CD3E, MS4A1), row-major
    np.testing.assert_allclose(dots.get_sizes() / DOT_AREA, [3 / 4, 1 / 4, 1 / 4, 2 / 4])
    np.testing.assert_allclose(dots.get_offsets(), [[0, 0], [1, 0], [0, 1], [1, 1]])
    X = np.asarray(a.X.toarray() if sparse.issparse(a.X) else a.X, dtype=float)
    L = np.log1p(X / 10 * 1e4)  # counts: log1p(CP10k), 10 counts per cell
    expect = [L[:4, 0].mean(), L[:4, 1].mean(), L[4:, 0].mean(), L[4:, 1].mean()]
    np.testing.assert_allclose(dots.get_array(), expect)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CD3E", "MS4A1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["g1", "g2"]
    assert [t.get_text() for t in ax.texts] == ["T", "B"]  # bracket labels
    # scaled per gene to [0, 1]
    fig = marker_dotplot(a, groupby="g", markers=["MS4A1", "CD3E"], return_fig=True)
    dots = fig.axes[0].collections[0]
    np.testing.assert_allclose(dots.get_array(), [0, 1, 1, 0])  # g1: MS4A1 low, CD3E high
    np.testing.assert_allclose(dots.get_sizes() / DOT_AREA, [1 / 4, 3 / 4, 2 / 4, 1 / 4])
    assert len(fig.axes[0].texts) == 0  # a plain list: no brackets


def test_dotplot_log_input_used_as_is_and_layer():
    a = _tiny()
    a.layers["counts"] = a.X.copy()
    a.X = sparse.csr_matrix(a.X.multiply(0.5))  # not integers: used as is
    fig = marker_dotplot(a, groupby="g", markers=["CD3E"], standard_scale=None, return_fig=True)
    np.testing.assert_allclose(fig.axes[0].collections[0].get_array(), [0.75, 0.5 / 4])
    fig = marker_dotplot(
        a, groupby="g", markers=["CD3E"], layer="counts", standard_scale=None, return_fig=True
    )
    np.testing.assert_allclose(fig.axes[0].collections[0].get_array()[1], np.log1p(1e3) / 4)


def test_dotplot_library_markers_and_pdf(adata, tmp_path):
    fig = marker_dotplot(adata, return_fig=True)
    ax = fig.axes[0]
    genes = [t.get_text() for t in ax.get_xticklabels()]
    groups = [t.get_text() for t in ax.get_yticklabels()]
    present = [c for c in adata.obs["cell_type"].cat.categories if (adata.obs["cell_type"] == c).any()]
    assert groups == present
    assert set(genes) <= set(adata.var_names) and len(genes) == len(set(genes))
    labels = [t.get_text() for t in ax.texts]
    assert labels == [g for g in present if g in labels] and "CD8 T" in labels
    lib = tm.datasets.markers()
    cd8 = lib[(lib["cell_type"] == "CD8 T") & (lib["direction"] == "+")]["gene"]
    assert genes[:3] == [g for g in pd.unique(cd8) if g in adata.var_names][:3]
    fig = marker_dotplot(adata, groupby="cell_type_major", n_markers=2, return_fig=True)
    assert len(fig.axes[0].get_xticklabels()) <= 2 * adata.obs["cell_type_major"].nunique()
    out = tmp_path / "dot.pdf"
    assert marker_dotplot(adata, save=out) is None
    _pdf_ok(out)


def test_dotplot_errors(adata):
    a = _tiny()
    with pytest.raises(tm.MissingResultError, match=r"tm\.tl\.annotate"):
        marker_dotplot(a)  # default groupby cell_type is missing
    with pytest.raises(tm.MissingResultError, match="not a column"):
        marker_dotplot(a, groupby="nope")
    with pytest.raises(tm.InvalidInputError, match="var_names"):
        marker_dotplot(a, groupby="g", markers={"X": ["NOTAGENE"]})
    with pytest.raises(tm.InvalidInputError, match="marker library"):
        marker_dotplot(a, groupby="g")  # groups g1, g2 are no cell types
    with pytest.warns(UserWarning, match="not measured"):
        marker_dotplot(a, groupby="g", markers=["CD3E", "NOTAGENE"], show=False)
    with pytest.raises(tm.InvalidParameterError, match="standard_scale"):
        marker_dotplot(a, groupby="g", markers=["CD3E"], standard_scale="cells")
    with pytest.raises(tm.InvalidParameterError, match="n_markers"):
        marker_dotplot(adata, n_markers=0)
    a.X = sparse.csr_matrix(a.X.toarray() - 1)
    with pytest.raises(tm.InvalidInputError, match="negative"):
        marker_dotplot(a, groupby="g", markers=["CD3E"])


# ---------------------------------------------------------------- composition
def _bars(ax):
    """{bar centre y: [(width, colour)]} from the axes' rectangles."""
    out: dict[float, list] = {}
    for p in ax.patches:
        y = round(p.get_y() + p.get_height() / 2, 6)
        out.setdefault(y, []).append((p.get_width(), to_hex(p.get_facecolor()).upper()))
    return out


def test_composition_fractions_counts_colours(adata, tmp_path):
    fig = composition(adata, sample_key="sample", return_fig=True)
    ax = fig.axes[0]
    bars = _bars(ax)
    assert len(bars) == 2
    for segs in bars.values():
        assert sum(w for w, _ in segs) == pytest.approx(1.0)
        assert {c for _, c in segs} <= {c.upper() for c in MAJOR_COLORS.values()}
    truth = pd.crosstab(adata.obs["sample"], adata.obs["cell_type_major"], normalize="index")
    p1 = bars[0.0]
    t_cell = [w for w, c in p1 if c == MAJOR_COLORS["T cell"].upper()]
    assert t_cell == [pytest.approx(truth.loc["P1", "T cell"])]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        f"{s} (n={(adata.obs['sample'] == s).sum()})" for s in ("P1", "P2")
    ]
    # counts, and the sample order follows the categories
    adata.obs["sample"] = adata.obs["sample"].cat.reorder_categories(["P2", "P1"])
    fig = composition(adata, sample_key="sample", groupby="cell_type", normalize=False, return_fig=True)
    ax = fig.axes[0]
    assert [t.get_text().split(" ")[0] for t in ax.get_yticklabels()] == ["P2", "P1"]
    sums = [sum(w for w, _ in segs) for _, segs in sorted(_bars(ax).items())]
    assert sums == [(adata.obs["sample"] == s).sum() for s in ("P2", "P1")]
    assert "cell_type_colors" in adata.uns  # stored scanpy-style
    out = tmp_path / "composition.pdf"
    assert composition(adata, sample_key="sample", save=out) is None
    _pdf_ok(out)


def test_composition_errors(adata):
    with pytest.raises(tm.MissingResultError, match=r"tm\.tl\.annotate"):
        composition(_unannotated(adata), sample_key="sample")
    with pytest.raises(tm.MissingResultError, match="not a column"):
        composition(adata, sample_key="donor")
    with pytest.raises(tm.InvalidInputError, match="numeric"):
        composition(adata, sample_key="sample", groupby="cell_type_confidence")
    with pytest.raises(tm.InvalidInputError, match="AnnData"):
        composition(np.zeros((3, 3)), sample_key="sample")
