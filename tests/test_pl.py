from __future__ import annotations

import matplotlib as mpl
import pytest

import tmeatlas as tm

mpl.use("Agg")


def test_spatial_panels_scale_bar_and_errors(cohort):
    fig = tm.pl.spatial(cohort, color="true_cell_type_major", return_fig=True)
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == list(cohort.obs["sample"].cat.categories)
    texts = [t.get_text() for t in axes[0].texts]
    assert any(t.endswith(("µm", "mm")) for t in texts)
    fig = tm.pl.spatial(cohort, color="EPCAM", samples=["P1"], scale_bar=100, return_fig=True)
    assert "100 µm" in [t.get_text() for t in fig.axes[0].texts]
    with pytest.raises(tm.MissingResultError, match="neither a column"):
        tm.pl.spatial(cohort, color="nope", show=False)
    with pytest.raises(tm.InvalidParameterError, match="not found"):
        tm.pl.spatial(cohort, color="true_niche", samples=["P9"], show=False)
    del cohort.obsm["spatial"]
    with pytest.raises(tm.MissingResultError, match="coordinates"):
        tm.pl.spatial(cohort, color="true_niche", show=False)


# ---------------------------------------------------------------------------------------------
# the report's figure files (tmeatlas._report._draw): one layout, one draw per format
# ---------------------------------------------------------------------------------------------
def _crowded_figure():
    """Constrained layout, rotated tick labels, in-cell texts left out of the layout, a legend
    outside the axes and a colour bar: what the report's figures hold."""
    import numpy as np

    from tmeatlas.pl._utils import new_axes, side_legend

    fig, (a,) = new_axes(None, panel_size=(5.0, 3.0))
    m = a.pcolormesh(np.arange(13) - 0.5, np.arange(5) - 0.5, np.linspace(0, 1, 48).reshape(4, 12))
    for i in range(4):
        for j in range(12):
            a.text(
                j,
                i,
                f"{(i * 12 + j) / 47:.2f}",
                ha="center",
                va="center",
                fontsize="x-small",
                in_layout=False,
            )
    a.set_xticks(range(12), [f"therapy number {j}" for j in range(12)], rotation=45, ha="right")
    a.plot([0, 11], [0, 3], label="a line with a long legend label")
    side_legend(a, title="legend outside")
    fig.colorbar(m, ax=a, label="colour bar")
    return fig


def test_report_figures_are_the_tight_savefig_images(tmp_path):
    """``_draw`` lays the figure out and measures it once, then saves each format with that box: the
    PNG is the one ``savefig(bbox_inches="tight")`` wrote (same size, same pixels) and the legend
    outside the axes is inside the image."""
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from tmeatlas import _report

    ref = _crowded_figure()
    ref.savefig(tmp_path / "ref.png", bbox_inches="tight", dpi=_report.PNG_DPI)
    plt.close(ref)
    kept = []

    def make():
        kept.append(_crowded_figure())
        return kept[-1]

    rec = _report._draw(make, tmp_path, "fig", "section", "title", "caption", ("png", "pdf"))
    assert not rec.error and rec.png.is_file() and rec.pdf.read_bytes().startswith(b"%PDF")
    old = np.asarray(Image.open(tmp_path / "ref.png"))
    new = np.asarray(Image.open(rec.png))
    assert new.shape == old.shape
    assert np.array_equal(new, old)
    assert kept[0].get_layout_engine() is None  # frozen after the one layout
    # the legend outside the axes lies inside the saved box
    fig = _crowded_figure()
    box = _report._frozen_tight_bbox(fig, dpi=_report.PNG_DPI)
    leg = _inches(fig, fig.axes[0].get_legend())
    assert box.x0 <= leg.x0 and leg.x1 <= box.x1 and box.y0 <= leg.y0 and leg.y1 <= box.y1
    plt.close(fig)


def _inches(fig, artist):
    """The window extent of ``artist`` in inches (the unit of a saved box)."""
    return artist.get_window_extent(fig.canvas.get_renderer()).transformed(fig.dpi_scale_trans.inverted())


def test_gc_frozen_restores_the_collector():
    import gc

    from tmeatlas._report import _gc_frozen

    assert gc.get_freeze_count() == 0
    with _gc_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a caller's own freeze is left as it is
    try:
        n = gc.get_freeze_count()
        with _gc_frozen():
            assert gc.get_freeze_count() == n
        assert gc.get_freeze_count() == n
    finally:
        gc.unfreeze()


def test_immune_phenotypes_keeps_both_legends_in_the_figure():
    """The first legend (regions), kept with ``add_artist``, takes part in the layout and the saved
    box: its title used to be cut off at the image's right edge."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    from tmeatlas import _report
    from tmeatlas._keys import UNS

    adata = ad.AnnData(np.zeros((2, 1), dtype=np.float32))
    table = pd.DataFrame({"sample": ["P1", "P2"], "phenotype": ["inflamed", "excluded"],
                          "density_core": [860.0, 0.0], "density_margin": [700.0, 1130.0],
                          "density_stroma": [590.0, 585.0]})  # fmt: skip
    adata.uns[UNS.immune_phenotype] = {"params": {"sample_key": "sample"}, "table": table}
    fig = tm.pl.immune_phenotypes(adata, return_fig=True, show=False)
    box = _report._frozen_tight_bbox(fig, dpi=_report.PNG_DPI)
    legends = [c for c in fig.axes[0].get_children() if isinstance(c, mpl.legend.Legend)]
    assert len(legends) == 2
    for leg in legends:
        ext = _inches(fig, leg)
        assert box.x0 <= ext.x0 and ext.x1 <= box.x1, leg.get_title().get_text()
