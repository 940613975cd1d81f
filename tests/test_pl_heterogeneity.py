"""``tm.pl.heterogeneity`` and ``tm.pl.clone_states``: what they draw, on hand-made results."""

from __future__ import annotations

import anndata as ad
import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest

import tmeatlas as tm

mpl.use("Agg")


def _adata():
    """A result of tm.tl.heterogeneity written by hand: 3 samples, S3 without clones."""
    table = pd.DataFrame(
        {
            "sample": ["S1", "S2", "S3"],
            "genetic_diversity": [0.2, 1.1, np.nan],
            "genetic_diversity_low": [0.1, 0.9, np.nan],
            "genetic_diversity_high": [0.3, 1.3, np.nan],
            "state_diversity": [1.0, 1.5, 0.7],
            "state_diversity_low": [0.8, 1.2, 0.5],
            "state_diversity_high": [1.2, 1.7, 0.9],
            "not_measured": ["", "", "genetic_diversity: no clone labels"],
        }
    )
    comp = pd.DataFrame(
        {
            "sample": ["S1", "S1", "S2", "S2", "S2"],
            "clone": ["S1_c1", "S1_c1", "S2_c1", "S2_c2", "S2_c2"],
            "state": ["cycling", "baseline", "baseline", "EMT", "baseline"],
            "n_cells": [30, 70, 50, 40, 10],
            "fraction": [0.3, 0.7, 1.0, 0.8, 0.2],
        }
    )
    a = ad.AnnData(np.zeros((3, 2)))
    a.uns["heterogeneity"] = {"table": table, "clone_state": comp, "params": {}}
    return a


def test_points_and_intervals_are_the_table():
    import matplotlib.pyplot as plt

    fig = tm.pl.heterogeneity(_adata(), return_fig=True)
    axes = fig.axes
    assert [a.get_ylabel().split("\n")[0] for a in axes] == ["genetic diversity", "state diversity"]
    pts = axes[0].collections[-1].get_offsets()
    np.testing.assert_allclose(np.asarray(pts), [[0, 0.2], [1, 1.1]])  # S3 not measured: no point
    assert any(t.get_text() == "n/m" for t in axes[0].texts)
    segs = axes[1].collections[0].get_segments()
    np.testing.assert_allclose([s[:, 1] for s in segs], [[0.8, 1.2], [1.2, 1.7], [0.5, 0.9]])
    plt.close(fig)


def test_sample_and_index_selection_and_errors():
    import matplotlib.pyplot as plt

    fig = tm.pl.heterogeneity(_adata(), indices="state_diversity", samples=["S3", "S1"], return_fig=True)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["S3", "S1"]
    plt.close(fig)
    with pytest.raises(tm.InvalidParameterError, match="unknown indices"):
        tm.pl.heterogeneity(_adata(), indices="genetic_divrsity")
    with pytest.raises(tm.InvalidParameterError, match="unknown samples"):
        tm.pl.heterogeneity(_adata(), samples=["S9"])
    with pytest.raises(tm.MissingResultError, match="tl.heterogeneity"):
        tm.pl.heterogeneity(ad.AnnData(np.zeros((2, 2))))


def test_clone_states_bars_are_the_compositions():
    import matplotlib.pyplot as plt

    fig = tm.pl.clone_states(_adata(), return_fig=True)
    a = fig.axes[0]
    assert [t.get_text() for t in a.get_xticklabels()] == ["S1 · S1_c1", "S2 · S2_c1", "S2 · S2_c2"]
    tops = np.zeros(3)
    for bars in a.containers:
        tops = np.maximum(tops, [r.get_y() + r.get_height() for r in bars])
    np.testing.assert_allclose(tops, 1.0)  # every clone's states add up to its cells
    labels = [t.get_text() for t in a.get_legend().get_texts()]
    assert labels[-1] == "baseline" and set(labels) == {"cycling", "EMT", "baseline"}
    plt.close(fig)
    fig = tm.pl.clone_states(_adata(), samples="S2", return_fig=True)
    assert len(fig.axes[0].get_xticklabels()) == 2
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# tm.pl.clone_mixing
# ---------------------------------------------------------------------------------------------
def _line():
    """22 malignant cells on a line, clone A at x = 0..10 and B at 11..21, one unlabelled malignant and
    one non-malignant cell (light grey); no sample column, no heterogeneity result."""
    n = 22
    xy = np.c_[np.r_[np.arange(n), 3.0, 30.0], np.r_[np.zeros(n), 1.0, 1.0]]
    obs = pd.DataFrame(
        {
            "malignant": ["malignant"] * (n + 1) + ["non-malignant"],
            "cnv_clone": ["A"] * 11 + ["B"] * 11 + ["", "non-malignant"],
        },
        index=[f"c{i}" for i in range(n + 2)],
    )
    return ad.AnnData(np.zeros((n + 2, 1), dtype=np.float32), obs=obs, obsm={"spatial": xy})


def _halves():
    """Sample S1: a 10 x 6 grid, clone A left (x <= 4) and B right; sample S2: a one-clone copy; 20
    non-malignant cells of S1 in between the rows; the heterogeneity table of :func:`_adata` with
    a ``clone_mixing`` column."""
    gx, gy = np.meshgrid(np.arange(10.0), np.arange(6.0))
    grid = np.c_[gx.ravel(), gy.ravel()]
    other = np.c_[np.arange(20) / 2.0, np.full(20, 2.5)]
    xy = np.r_[grid, other, grid + 100.0]
    clone = np.r_[np.where(grid[:, 0] <= 4, "A", "B"), ["non-malignant"] * 20, ["C"] * 60]
    obs = pd.DataFrame(
        {
            "sample": ["S1"] * 80 + ["S2"] * 60,
            "malignant": np.r_[["malignant"] * 60, ["non-malignant"] * 20, ["malignant"] * 60],
            "cnv_clone": clone,
        },
        index=[f"c{i}" for i in range(140)],
    )
    a = ad.AnnData(np.zeros((140, 1), dtype=np.float32), obs=obs, obsm={"spatial": xy})
    het = _adata().uns["heterogeneity"]
    het["table"] = het["table"].assign(
        clone_mixing=[0.12, np.nan, np.nan], clone_mixing_low=[0.05, np.nan, np.nan],
        clone_mixing_high=[0.2, np.nan, np.nan],
    )  # fmt: skip
    a.uns["heterogeneity"] = het
    return a


def test_clone_mixing_colours_are_the_neighbour_fractions():
    import matplotlib.pyplot as plt

    fig = tm.pl.clone_mixing(_line(), return_fig=True)
    clones, mixing = fig.axes[:2]
    # by hand: the 10 nearest of cell i on the line are i-5..i+5 (or the 10 closest at an end);
    # cell 10 has 5 of B among them, cell 9 four (11..14), ... cell 5 none; B mirrors A
    expected = [0.0] * 6 + [0.1, 0.2, 0.3, 0.4, 0.5] + [0.5, 0.4, 0.3, 0.2, 0.1] + [0.0] * 6
    grey, coloured = mixing.collections[:2]
    np.testing.assert_allclose(coloured.get_array(), expected)
    np.testing.assert_allclose(np.asarray(coloured.get_offsets())[:, 0], np.arange(22))
    assert len(grey.get_offsets()) == 2  # the unlabelled malignant and the non-malignant cell
    assert [len(c.get_offsets()) for c in clones.collections] == [2, 11, 11]
    assert [t.get_text() for t in clones.get_legend().get_texts()] == ["A", "B"]
    assert fig._suptitle.get_text() == "all"  # no heterogeneity result: the sample alone
    assert clones.get_aspect() == mixing.get_aspect() == 1.0
    plt.close(fig)


def test_clone_mixing_separated_halves_mix_only_at_the_border():
    import matplotlib.pyplot as plt

    axes = tm.pl.clone_mixing(_halves(), sample="S1", show=False)
    assert len(axes) == 2
    grey, coloured = axes[1].collections[:2]
    assert len(grey.get_offsets()) == 20 and len(coloured.get_offsets()) == 60
    x = np.asarray(coloured.get_offsets())[:, 0]
    frac = np.asarray(coloured.get_array())
    assert (frac[(x <= 2) | (x >= 7)] == 0).all()  # two columns or more from the border: no other clone
    assert (frac[(x == 4) | (x == 5)] > 0).all() and frac.mean() < 0.2
    assert "S1: clone mixing 0.12 [0.05, 0.20]" in axes[0].figure._suptitle.get_text()
    plt.close(axes[0].figure)


def test_clone_mixing_errors():
    a = _halves()
    with pytest.raises(tm.InvalidParameterError, match=r"2 samples \(\['S1', 'S2'\]\).*sample="):
        tm.pl.clone_mixing(a, show=False)
    with pytest.raises(tm.InvalidParameterError, match="unknown sample 's1'.*did you mean 'S1'"):
        tm.pl.clone_mixing(a, sample="s1", show=False)
    with pytest.raises(tm.NotApplicableError, match="one clone \\(C\\).*nothing mixes"):
        tm.pl.clone_mixing(a, sample="S2", show=False)
    with pytest.raises(tm.InvalidInputError, match="no coordinates in obsm\\['xy'\\].*spatial indices"):
        tm.pl.clone_mixing(a, sample="S1", spatial_key="xy", show=False)
    with pytest.raises(tm.MissingResultError, match="clone_key 'clones'.*cnv_clones"):
        tm.pl.clone_mixing(a, sample="S1", clone_key="clones", show=False)
    a.obs["cnv_clone"] = "non-malignant"
    with pytest.raises(tm.InvalidInputError, match="no malignant cell .* has a clone label"):
        tm.pl.clone_mixing(a, sample="S1", show=False)
    few = _line()[8:]  # 14 labelled cells of two clones: fewer than the 20 of clone_mixing
    with pytest.raises(tm.NotApplicableError, match="fewer than 20"):
        tm.pl.clone_mixing(few, show=False)
    with pytest.raises(tm.InvalidInputError, match="AnnData"):
        tm.pl.clone_mixing(np.zeros((3, 3)))


def test_clone_mixing_saves_returns_and_draws_into_ax(tmp_path):
    import matplotlib.pyplot as plt

    assert tm.pl.clone_mixing(_line(), save=tmp_path / "map.png", show=False) is None
    assert (tmp_path / "map.png").stat().st_size > 1000
    assert tm.pl.clone_mixing(_line(), save=tmp_path / "map", show=False) is None
    assert (tmp_path / "map.pdf").stat().st_size > 1000  # no suffix: PDF
    fig = tm.pl.clone_mixing(_halves(), sample="S1", return_fig=True)
    assert isinstance(fig, mpl.figure.Figure) and len(fig.axes) == 3  # two maps and the colour bar
    plt.close(fig)
    fig, ax = plt.subplots()
    (drawn,) = tm.pl.clone_mixing(_line(), ax=ax, show=False)
    assert drawn is ax and ax.get_title() == "all" and len(ax.collections) == 2
    plt.close(fig)
