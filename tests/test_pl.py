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
