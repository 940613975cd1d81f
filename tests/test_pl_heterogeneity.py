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
