"""Plots of therapy survival and combination covers (``tmeatlas.pl._therapy``).

The inputs come from the real tools (``tm.tl.therapy_survival``, ``tm.tl.combination_cover``) run
once on a tiny simulated cohort with the simulator's true malignant calls and clones.
"""

from __future__ import annotations

import warnings

import anndata as ad
import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest

import tmeatlas as tm
from tmeatlas.pl._therapy import (
    FLAGGED_COLOR,
    NOT_FLAGGED_COLOR,
    SEP,
    _split_reasons,
    combination_cover,
    survival_reasons,
    therapy_survival,
)

mpl.use("Agg")
import matplotlib.pyplot as plt

THERAPIES = ["trastuzumab", "paclitaxel", "pembrolizumab", "sacituzumab_govitecan", "palbociclib"]


@pytest.fixture(scope="module")
def cohort():
    """Two patients, malignant clones from the simulator's truth; a full cover and one with uncovered clones."""
    a = tm.datasets.simulate_tumor(n_cells=600, n_patients=2, n_genes=3000, rng=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.tl.therapy_survival(a, therapies=THERAPIES, groupby="true_clone", sample_key="sample",
                               malignant_key="true_malignant", n_boot=50)  # fmt: skip
        tm.tl.combination_cover(a)
        tm.tl.combination_cover(a, therapies=["paclitaxel", "pembrolizumab"], key_added="cover_partial")
    return a


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _table(a, key="therapy_survival"):
    return a.uns[key]["table"]


def _gids(ax, gid):
    return [p for p in ax.patches if p.get_gid() == gid]


# --------------------------------------------------------------------------------------------
# the cohort behind the tests
# --------------------------------------------------------------------------------------------
def test_cohort_has_flags_and_uncovered(cohort):
    t = _table(cohort)
    assert len(t) == len(THERAPIES) * 5 and 0 < t["survives"].sum() < len(t)
    assert len(cohort.uns["combination_cover"]["solutions"]) >= 2
    assert len(cohort.uns["cover_partial"]["uncoverable"]) > 0


# --------------------------------------------------------------------------------------------
# tm.pl.therapy_survival
# --------------------------------------------------------------------------------------------
def test_heatmap_turns_when_therapies_are_many(cohort, monkeypatch):
    """More therapies than MAX_THERAPY_COLUMNS: therapies are the rows, subpopulations the columns,
    and every value, flag and annotation moves with its cell."""
    from tmeatlas.pl import _therapy

    t = _table(cohort)
    monkeypatch.setattr(_therapy, "MAX_THERAPY_COLUMNS", len(THERAPIES) - 1)
    ax = therapy_survival(cohort, return_fig=True).axes[0]
    assert [x.get_text() for x in ax.get_yticklabels()] == THERAPIES
    cols = [x.get_text() for x in ax.get_xticklabels()]
    assert cols[0] == f"P1{SEP}P1_c1" and len(cols) == 5
    assert ax.get_ylabel() == "therapy" and ax.get_xlabel().startswith("subpopulation")
    (mesh,) = [c for c in ax.collections if c.get_gid() == "surviving_fraction"]
    vals = np.asarray(mesh.get_array()).reshape(len(THERAPIES), 5)
    piv = t.assign(col=t["sample"] + SEP + t["group"]).pivot(
        index="therapy", columns="col", values="surviving_fraction"
    )
    np.testing.assert_allclose(vals, piv.loc[THERAPIES, cols].to_numpy())
    assert len(_gids(ax, "survives")) == int(t["survives"].sum())
    assert len(ax.texts) == len(t)


def test_heatmap_cells_values_and_flags(cohort):
    t = _table(cohort)
    fig = therapy_survival(cohort, return_fig=True)
    assert isinstance(fig, mpl.figure.Figure)
    ax = fig.axes[0]
    (mesh,) = [c for c in ax.collections if c.get_gid() == "surviving_fraction"]
    vals = np.asarray(mesh.get_array()).reshape(5, len(THERAPIES))
    assert vals.size == len(t)
    # rows "sample · group" in the tool's order, columns the therapies in the tool's order
    assert [x.get_text() for x in ax.get_xticklabels()] == THERAPIES
    rows = [x.get_text() for x in ax.get_yticklabels()]
    assert rows[0] == f"P1{SEP}P1_c1" and len(rows) == 5
    piv = t.assign(row=t["sample"] + SEP + t["group"]).pivot(
        index="row", columns="therapy", values="surviving_fraction"
    )
    np.testing.assert_allclose(vals, piv.loc[rows, THERAPIES].to_numpy())
    assert len(_gids(ax, "survives")) == int(t["survives"].sum())
    assert len(ax.texts) == len(t)  # value annotations
    assert "survives" in ax.get_legend().get_texts()[0].get_text()
    cbar = fig.axes[1]
    assert cbar.get_ylim() == (0.0, 1.0)


def test_heatmap_subsets_without_annotations(cohort):
    t = _table(cohort)
    out = therapy_survival(cohort, samples="P1", therapies=["Palbociclib", "trastuzumab"], annotate=False,
                           cmap="viridis", show=False)  # fmt: skip
    ax = out[0]
    assert [x.get_text() for x in ax.get_xticklabels()] == ["palbociclib", "trastuzumab"]
    assert [x.get_text() for x in ax.get_yticklabels()] == [f"P1{SEP}P1_c1", f"P1{SEP}P1_c2"]
    assert not ax.texts
    sub = t[(t["sample"] == "P1") & t["therapy"].isin(["palbociclib", "trastuzumab"])]
    assert len(_gids(ax, "survives")) == int(sub["survives"].sum())


def test_heatmap_into_given_axes(cohort):
    fig, ax = plt.subplots()
    out = therapy_survival(cohort, ax=ax, show=False)
    assert out[0] is ax and ax.figure is fig


# --------------------------------------------------------------------------------------------
# tm.pl.survival_reasons
# --------------------------------------------------------------------------------------------
def test_reasons_bars_intervals_and_text(cohort):
    t = _table(cohort)
    sub = t[t["therapy"] == "trastuzumab"].reset_index(drop=True)
    fig = survival_reasons(cohort, therapy="trastuzumab", return_fig=True)
    ax = fig.axes[0]
    bars = ax.containers[0]
    assert len(bars) == len(sub)
    np.testing.assert_allclose([b.get_width() for b in bars], sub["surviving_fraction"])
    flagged = [b for b in bars if b.get_gid() == "survives"]
    assert len(flagged) == int(sub["survives"].sum()) > 0
    assert all(mpl.colors.to_hex(b.get_facecolor()) == FLAGGED_COLOR.lower() for b in flagged)
    assert all(
        mpl.colors.to_hex(b.get_facecolor()) == NOT_FLAGGED_COLOR.lower() for b in bars if b not in flagged
    )
    # error bars: one interval per subpopulation, from ci_low to ci_high
    (err,) = [c for c in ax.containers if isinstance(c, mpl.container.ErrorbarContainer)]
    segs = err.lines[2][0].get_segments()
    np.testing.assert_allclose([s[0][0] for s in segs], np.minimum(sub["ci_low"], sub["surviving_fraction"]))
    np.testing.assert_allclose([s[1][0] for s in segs], np.maximum(sub["ci_high"], sub["surviving_fraction"]))
    texts = [x.get_text() for x in ax.texts if x.get_gid() == "reasons"]
    assert len(texts) == len(sub)
    first = _split_reasons(sub["reasons"].iloc[0])[0]
    assert texts[0].replace("\n    ", " ").startswith(f"1. {first}")
    assert max(len(line) for x in texts for line in x.split("\n")) <= 80


def test_reasons_filters_and_max_reasons(cohort):
    out = survival_reasons(cohort, therapy="trastuzumab", sample="P2", group=["P2_c2", "P2_c3"], max_reasons=1,
                           show=False)  # fmt: skip
    ax = out[0]
    assert len(ax.containers[0]) == 2
    texts = [x.get_text() for x in ax.texts if x.get_gid() == "reasons"]
    assert all("2." not in x and "more)" in x for x in texts)


def test_reasons_into_given_axes(cohort):
    fig, ax = plt.subplots()
    out = survival_reasons(cohort, therapy="palbociclib", ax=ax, show=False)
    assert out[0] is ax


def test_split_reasons_keeps_parentheses():
    s = "sample's benefit low (score=-1.0: ifng=+1.0; apm=-2.0) [+survival]; B2M lost; caveat: x; y"
    assert _split_reasons(s) == [
        "sample's benefit low (score=-1.0: ifng=+1.0; apm=-2.0) [+survival]", "B2M lost", "caveat: x", "y",
    ]  # fmt: skip
    assert _split_reasons("") == []


# --------------------------------------------------------------------------------------------
# tm.pl.combination_cover
# --------------------------------------------------------------------------------------------
def test_cover_rows_cells_and_killers(cohort):
    sol = cohort.uns["combination_cover"]["solutions"]
    cov = cohort.uns["combination_cover"]["coverage"]
    fig = combination_cover(cohort, n_solutions=5, return_fig=True)
    ax = fig.axes[0]
    n_rows = len(sol)
    labels = [x.get_text() for x in ax.get_yticklabels()]
    assert len(labels) == n_rows
    assert labels[0].startswith(f"#1  {sol['therapies'].iloc[0]}") and "objective" in labels[0]
    assert len(ax.get_xticklabels()) == cov[["sample", "group"]].drop_duplicates().shape[0]
    segs = [p for p in ax.patches if str(p.get_gid()).startswith("killed_by:")]
    want = sum(len([k for k in x.split(" + ") if k]) for x in cov["killed_by"])
    assert len(segs) == want
    # each segment names a therapy of its row's combination, in that therapy's colour
    legend = {t.get_text(): mpl.colors.to_hex(h.get_facecolor())
              for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles)}  # fmt: skip
    for p in segs:
        row = round(p.get_y() + 0.45)
        therapy = p.get_gid().split(":", 1)[1]
        assert therapy in sol["therapies"].iloc[row].split(" + ")
        assert mpl.colors.to_hex(p.get_facecolor()) == legend[therapy]
    assert legend["palbociclib"] in [c.lower() for c in tm.pl.CB_PALETTE]
    assert not _gids(ax, "uncovered")


def test_cover_marks_uncovered_and_limits_rows(cohort):
    unc = cohort.uns["cover_partial"]["uncoverable"]
    out = combination_cover(cohort, key="cover_partial", n_solutions=1, show=False)
    ax = out[0]
    assert len(ax.get_yticklabels()) == 1
    assert len(_gids(ax, "uncovered")) == len(unc)
    marks = [ln for ln in ax.lines if ln.get_gid() == "uncovered_marker"]
    assert len(marks) == len(unc)
    assert "not covered" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "survive every candidate" in ax.get_title(loc="left")


def test_cover_into_given_axes(cohort):
    fig, ax = plt.subplots()
    out = combination_cover(cohort, ax=ax, show=False)
    assert out[0] is ax


# --------------------------------------------------------------------------------------------
# the plot contract, errors, h5ad
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fn", "kw"),
    [(therapy_survival, {}), (survival_reasons, {"therapy": "paclitaxel"}), (combination_cover, {})],
)
def test_save_pdf(cohort, tmp_path, fn, kw):
    out = tmp_path / "sub" / "plot.pdf"
    assert fn(cohort, **kw, show=False, save=out) is None
    assert out.read_bytes()[:4] == b"%PDF" and out.stat().st_size > 1000
    svg = tmp_path / "plot.svg"
    fn(cohort, **kw, show=False, save=svg)
    assert "<text" in svg.read_text()  # text stays text


def test_missing_results():
    a = ad.AnnData(X=np.zeros((3, 2), dtype=np.float32))
    for fn, kw in ((therapy_survival, {}), (survival_reasons, {"therapy": "paclitaxel"})):
        with pytest.raises(tm.MissingResultError, match=r"tm\.tl\.therapy_survival\(adata, therapies="):
            fn(a, **kw)
    with pytest.raises(tm.MissingResultError, match=r"tm\.tl\.combination_cover\(adata\)"):
        combination_cover(a)
    with pytest.raises(tm.InvalidInputError, match="AnnData"):
        therapy_survival(np.zeros((3, 3)))


def test_bad_parameters(cohort):
    P = tm.InvalidParameterError
    with pytest.raises(P, match="did you mean 'palbociclib'"):
        survival_reasons(cohort, therapy="palbociclb")
    with pytest.raises(P, match="did you mean 'trastuzumab'"):
        therapy_survival(cohort, therapies=["trastuzumb"])
    with pytest.raises(P, match="unknown samples"):
        therapy_survival(cohort, samples=["P9"])
    with pytest.raises(P, match="unknown sample"):
        survival_reasons(cohort, therapy="paclitaxel", sample="P3")
    with pytest.raises(P, match="unknown group"):
        survival_reasons(cohort, therapy="paclitaxel", group="P1_c9")
    with pytest.raises(P, match="no subpopulation"):
        survival_reasons(cohort, therapy="paclitaxel", sample="P1", group="P2_c1")
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(P, match="n_solutions"):
            combination_cover(cohort, n_solutions=bad)
    with pytest.raises(P, match="max_reasons"):
        survival_reasons(cohort, therapy="paclitaxel", max_reasons=0)
    with pytest.raises(P, match="colour map"):
        therapy_survival(cohort, cmap="not_a_map")
    with pytest.raises(P, match="annotate"):
        therapy_survival(cohort, annotate="yes")
    with pytest.raises(P, match="key"):
        therapy_survival(cohort, key=3)
    with pytest.raises(tm.MissingResultError):
        combination_cover(cohort, key="therapy_survival")  # a survival result is not a cover


def test_after_h5ad_round_trip(cohort, tmp_path):
    path = tmp_path / "c.h5ad"
    cohort.write_h5ad(path)
    r = ad.read_h5ad(path)
    ax0 = therapy_survival(cohort, show=False)[0]
    ax1 = therapy_survival(r, show=False)[0]
    m0, m1 = (next(c for c in a.collections if c.get_gid() == "surviving_fraction") for a in (ax0, ax1))
    np.testing.assert_allclose(np.asarray(m1.get_array()), np.asarray(m0.get_array()))
    assert len(_gids(ax1, "survives")) == len(_gids(ax0, "survives"))
    assert "0.5" in ax1.get_legend().get_texts()[0].get_text()  # threshold read back from params
    b = survival_reasons(r, therapy="trastuzumab", show=False)[0]
    assert len(b.containers[0]) == int((pd.DataFrame(_table(r))["therapy"] == "trastuzumab").sum())
    c = combination_cover(r, key="cover_partial", show=False)[0]
    assert len(_gids(c, "uncovered")) == len(cohort.uns["cover_partial"]["uncoverable"])
    assert len(combination_cover(r, show=False)[0].get_yticklabels()) == min(
        3, len(cohort.uns["combination_cover"]["solutions"])
    )
