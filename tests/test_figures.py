"""The report's figures as a reader sees them: no text printed over another text, nothing cut off.

:func:`layout_problems` is the check: it draws a laid-out figure once at the PNG's resolution,
records every text that is actually drawn (visible, non-empty, in a drawn artist, not clipped away)
and reports

- two texts whose boxes overlap by more than :data:`TOLERANCE_PX` pixels in both directions (the
  boxes are the texts' own rectangles, rotated with the text: two neighbouring tick labels turned by
  45 degrees have overlapping axis-aligned boxes while their glyphs are apart);
- a text or a legend that reaches outside the saved image (the padded tight box of
  ``tmeatlas._report._frozen_tight_bbox``), e.g. a legend title cut off at the right edge.

The test runs :func:`tmeatlas._report.write_figures` on a finished ``tm.run`` of a small simulated
cohort (two patients with coordinates, every therapy of the knowledge base, one dosing simulation)
and checks every cohort and per-sample figure.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import matplotlib as mpl
import numpy as np
import pytest

import tmeatlas as tm

mpl.use("Agg")

#: overlap (pixels at the PNG's resolution, in both directions) above which two texts overprint;
#: a text's box holds its line spacing and descent, so boxes that touch by a pixel are not a defect
TOLERANCE_PX = 1.5


@contextmanager
def _recording_draws(seen: list):
    """Inside: every :class:`~matplotlib.text.Text` and :class:`~matplotlib.legend.Legend` that draws is
    appended to ``seen`` (a text that returns early, invisible or empty, is filtered later)."""
    from matplotlib.legend import Legend
    from matplotlib.text import Text

    originals = {cls: cls.draw for cls in (Text, Legend)}

    def recorder(cls):
        def draw(self, renderer, *args, **kwargs):
            seen.append(self)
            return originals[cls](self, renderer, *args, **kwargs)

        return draw

    for cls in originals:
        cls.draw = recorder(cls)  # Annotation.draw calls Text.draw: recorded when it is drawn
    try:
        yield
    finally:
        for cls, draw in originals.items():
            cls.draw = draw


def _clipped_away(artist, box) -> bool:
    """Whether ``artist`` is clipped to a box (pixels) that its own box ``box`` does not meet."""
    if not artist.get_clip_on():
        return False
    clips = [artist.get_clip_box()]
    path = artist.get_clip_path()
    if path is not None:
        clips.append(path.get_fully_transformed_path().get_extents())
    return any(
        box.x1 < c.x0 or box.x0 > c.x1 or box.y1 < c.y0 or box.y0 > c.y1 for c in clips if c is not None
    )


def _corners(text, box, renderer) -> np.ndarray:
    """The four corners (pixels) of ``text``'s rectangle, turned with the text, in order around it.

    A rotated rectangle and its axis-aligned box (``box``) share their centre; its sides are the
    extent of the same text unrotated.
    """
    rot = text.get_rotation() % 180
    if rot % 90 == 0:
        return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    text.set_rotation(0)
    try:
        w, h = text.get_window_extent(renderer).size
    finally:
        text.set_rotation(rot)
    c, s = np.cos(np.deg2rad(rot)), np.sin(np.deg2rad(rot))
    half = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    return np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2]) + half @ np.array([[c, s], [-s, c]])


def _overlap_depth(p: np.ndarray, q: np.ndarray) -> float:
    """How far (pixels) two convex quadrilaterals overlap: the least overlap of their projections on the
    normals of their sides (separating axes); 0 when they do not meet. For two axis-aligned boxes it is
    the smaller of the width and height of their intersection."""
    depth = np.inf
    for poly in (p, q):
        for i in range(2):
            edge = poly[i + 1] - poly[i]
            axis = np.array([-edge[1], edge[0]]) / np.hypot(*edge)
            a, b = p @ axis, q @ axis
            d = min(a.max(), b.max()) - max(a.min(), b.min())
            if d <= 0:
                return 0.0
            depth = min(depth, d)
    return float(depth)


def _drawn(fig, dpi: float):
    """``(texts, legends, renderer)``: what a draw of ``fig`` at ``dpi`` prints, with the texts' boxes."""
    from matplotlib.legend import Legend

    seen: list = []
    fig.set_dpi(dpi)
    with _recording_draws(seen):
        fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    texts, legends, done = [], [], set()
    for art in seen:
        if id(art) in done:
            continue
        done.add(id(art))
        if isinstance(art, Legend):
            legends.append((art, art.get_window_extent(renderer)))
            continue
        if not art.get_visible() or not art.get_text().strip() or art.get_alpha() == 0:
            continue
        box = art.get_window_extent(renderer)
        if box.width < 1 or box.height < 1 or not np.isfinite(box.get_points()).all():
            continue
        if not _clipped_away(art, box):
            texts.append((art, box))
    return texts, legends, renderer


def layout_problems(fig, bbox, *, dpi: float) -> list[str]:
    """What a reader would see wrong in ``fig`` saved with ``bbox_inches=bbox`` (inches) at ``dpi``.

    The figure must be laid out already (``_frozen_tight_bbox``): the draw here runs no layout.
    """
    old_dpi = fig.dpi
    try:
        texts, legends, renderer = _drawn(fig, dpi)
        problems = []
        lim = bbox.transformed(fig.dpi_scale_trans)  # the saved image, pixels
        for art, box in [*texts, *legends]:
            if (
                box.x0 < lim.x0 - 0.5
                or box.x1 > lim.x1 + 0.5
                or box.y0 < lim.y0 - 0.5
                or box.y1 > lim.y1 + 0.5
            ):
                label = (
                    art.get_text() if hasattr(art, "get_text") else f"legend {art.get_title().get_text()!r}"
                )
                problems.append(f"outside the image: {label[:40]!r}")
        if len(texts) > 1:
            b = np.array([[bx.x0, bx.y0, bx.x1, bx.y1] for _, bx in texts])
            ox = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
            oy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
            for i, j in zip(*np.nonzero(np.triu((ox > TOLERANCE_PX) & (oy > TOLERANCE_PX), 1))):
                (ti, bi), (tj, bj) = texts[i], texts[j]
                depth = _overlap_depth(_corners(ti, bi, renderer), _corners(tj, bj, renderer))
                if depth > TOLERANCE_PX:
                    problems.append(
                        f"{ti.get_text()[:40]!r} overprints {tj.get_text()[:40]!r} ({depth:.0f} px)"
                    )
        return problems
    finally:
        fig.set_dpi(old_dpi)


# ---------------------------------------------------------------------------------------------
# the checker itself on known answers
# ---------------------------------------------------------------------------------------------
def _checked(fig) -> list[str]:
    from tmeatlas import _report

    try:
        return layout_problems(fig, _report._frozen_tight_bbox(fig, dpi=_report.PNG_DPI), dpi=_report.PNG_DPI)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_checker_finds_overprinted_texts_and_cut_off_legends():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("a title")
    ax.text(0.5, 0.5, "first text", transform=ax.transAxes)
    ax.text(0.52, 0.51, "second text", transform=ax.transAxes)
    (problems,) = [p for p in _checked(fig) if "overprints" in p]
    assert "first text" in problems and "second text" in problems
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], label="a line")
    leg = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), title="a wide legend title")
    ax.add_artist(leg)  # clipped to the axes: left out of the tight box, cut off in the image
    problems = _checked(fig)
    assert any("outside the image" in p and "a wide legend title" in p for p in problems), problems


def test_checker_compares_rotated_texts_as_rotated_rectangles():
    import matplotlib.pyplot as plt

    names = ["docetaxel", "doxorubicin", "fluorouracil", "gemcitabine", "osimertinib", "trastuzumab"]
    fig, ax = plt.subplots(figsize=(2.5, 2))
    ax.set_xticks(range(6), names, rotation=45, ha="right", rotation_mode="anchor", fontsize="small")
    assert _checked(fig) == []  # their axis-aligned boxes overlap, the glyphs do not
    fig, ax = plt.subplots(figsize=(1.2, 2))
    ax.set_xticks(range(6), names, rotation=45, ha="right", rotation_mode="anchor", fontsize="large")
    assert len(_checked(fig)) >= 5  # one tick apart is less than a line: the names overprint
    fig, ax = plt.subplots(figsize=(0.8, 2))
    ax.set_xticks(range(6), names, rotation=90, fontsize="large")
    assert len(_checked(fig)) >= 5


def test_dot_plot_keys_stay_apart_with_few_rows():
    """A dot plot of two rows: its colour bar is short, so a label along it used to reach over the
    size legend under it, and the bar's ticks over each other; the plot's title over the bar's."""
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(0)
    obs = pd.DataFrame(
        {"group": pd.Categorical(["tumour", "immune"] * 30)}, index=[f"c{i}" for i in range(60)]
    )
    for k in range(6):
        obs[f"sig_PROGRAM_{k}"] = rng.normal(size=60) + (obs["group"] == "tumour") * k / 5
    a = ad.AnnData(np.zeros((60, 1), dtype=np.float32), obs=obs)
    for fig in (
        tm.pl.signatures(a, groupby="group", return_fig=True),
        tm.pl.signatures(a, groupby="group", standard_scale=None, return_fig=True),
    ):
        assert _checked(fig) == []


# ---------------------------------------------------------------------------------------------
# every figure of the report
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_figures(tmp_path_factory):
    """``(records, problems)``: what ``write_figures`` returns after a full ``tm.run``, and
    ``{"<folder>/<figure>": problems}`` for every figure it draws."""
    from tmeatlas import _report

    a = tm.datasets.simulate_tumor(n_cells=2000, n_patients=2, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.run(a, sample_key="sample", simulate=["trastuzumab"], n_perms=30, progress=False)
    found: list = []
    frozen = _report._frozen_tight_bbox

    def checked(fig, *, dpi):
        bbox = frozen(fig, dpi=dpi)
        found.append(layout_problems(fig, bbox, dpi=dpi))
        return bbox

    mp = pytest.MonkeyPatch()
    mp.setattr(_report, "_frozen_tight_bbox", checked)
    try:  # PNG only: the PDF is saved with the same layout and box
        records = _report.write_figures(
            a, tmp_path_factory.mktemp("figures"), sample_key="sample", formats=("png",)
        )
    finally:
        mp.undo()
    flat = [("cohort", r) for r in records["cohort"]]
    # a sample's combination cover is the cohort's file, copied (not drawn again)
    flat += [
        (s, r) for s, recs in records["samples"].items() for r in recs if r.name != f"combination_cover_{s}"
    ]
    assert not [r.error for _, r in flat if r.error]
    drawn = [f"{s}/{r.name}" for s, r in flat if r.png is not None]
    assert len(drawn) == len(found)  # one check per saved figure, in order
    return records, dict(zip(drawn, found))


@pytest.fixture(scope="module")
def report_problems(report_figures):
    return report_figures[1]


@pytest.mark.slow
def test_figures_shared_with_the_cohort_are_copied_not_redrawn(report_figures, tmp_path):
    """A sample's combination cover is the cohort's figure, byte for byte; with a single sample
    every per-sample figure the cohort set holds is a copy of it."""
    from tmeatlas import _report

    records = report_figures[0]
    cohort = {r.name: r for r in records["cohort"]}
    for s, recs in records["samples"].items():
        mine = {r.name: r for r in recs}
        name = f"combination_cover_{s}"
        assert mine[name].png.read_bytes() == cohort[name].png.read_bytes()
        assert mine[name].png.parent != cohort[name].png.parent
    drawn = []
    real = _report._draw

    def counting(fn, folder, name, *args, **kwargs):
        drawn.append(f"{folder.name}/{name}")
        return real(fn, folder, name, *args, **kwargs)

    a = tm.datasets.simulate_tumor(n_cells=800, n_patients=1, spatial=False, rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm.run(a, sample_key="sample", progress=False)
    mp = pytest.MonkeyPatch()
    mp.setattr(_report, "_draw", counting)
    try:
        one = _report.write_figures(a, tmp_path, sample_key="sample", formats=("png",))
    finally:
        mp.undo()
    cohort = {r.name: r for r in one["cohort"]}
    (sample,) = one["samples"]
    for r in one["samples"][sample]:
        if r.name in cohort:
            assert r.png.read_bytes() == cohort[r.name].png.read_bytes(), r.name
            assert f"{r.png.parent.name}/{r.name}" not in drawn
        else:  # only the sample's own figures are drawn
            assert f"{r.png.parent.name}/{r.name}" in drawn


@pytest.mark.slow
def test_report_figures_have_no_overprinted_text(report_problems):
    assert len(report_problems) > 40  # every section drew
    bad = {k: [p for p in v if "overprints" in p] for k, v in report_problems.items()}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, "\n".join(f"{k}: {len(v)}: {v[:3]}" for k, v in bad.items())


@pytest.mark.slow
def test_report_figures_keep_every_text_and_legend_in_the_image(report_problems):
    bad = {k: [p for p in v if "outside the image" in p] for k, v in report_problems.items()}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, "\n".join(f"{k}: {len(v)}: {v[:3]}" for k, v in bad.items())


# ---------------------------------------------------------------------------------------------
# figure files rendered by a second process (tmeatlas._figsave)
# ---------------------------------------------------------------------------------------------
def _small_figure(*, formatter=None):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), layout="constrained")
    ax.scatter(np.arange(50), np.sin(np.arange(50)), c=np.arange(50))
    ax.set_title("a title")
    if formatter is not None:
        ax.xaxis.set_major_formatter(formatter)
    return fig


def _worker_or_skip():
    from tmeatlas import _figsave

    if not _figsave.worker_available():
        pytest.skip("one usable core: figures are saved in this process")


@pytest.mark.parametrize("backlog", [10**6, -1], ids=["worker lays out", "worker behind"])
def test_worker_renders_the_same_png_and_a_pdf(tmp_path, monkeypatch, backlog):
    """Whether the worker lays the figure out and renders both files (it keeps up) or only the PDF of
    a figure laid out here (it is behind), the PNG is byte-identical to one saved in this process and
    the PDF is written; a copy queued after the job finds the file."""
    from tmeatlas import _figsave, _report

    _worker_or_skip()
    monkeypatch.setattr(_figsave, "MAX_BACKLOG", backlog)
    import matplotlib.pyplot as plt

    with _report.figure_saver(background=False) as here:
        here.save(_small_figure(), {"png": tmp_path / "here.png", "pdf": tmp_path / "here.pdf"},
                  measure=_report._measure)  # fmt: skip
    with _report.figure_saver(background=True) as there:
        assert there.wait_ready()
        there.save(_small_figure(), {"png": tmp_path / "there.png", "pdf": tmp_path / "there.pdf"},
                   measure=_report._measure)  # fmt: skip
        plt.close("all")  # the worker holds its own copy
        there.copy(tmp_path / "there.pdf", tmp_path / "copied.pdf")
        assert there._sent == 2  # the figure (or its PDF) and the copy went to the worker
        assert there._jobs[0].endswith(".png") == (backlog > 0)
    assert there.failed == {}
    assert there.worker_peak_rss_gib is None or 0 < there.worker_peak_rss_gib < 2  # reported on Linux
    assert (tmp_path / "there.png").read_bytes() == (tmp_path / "here.png").read_bytes()
    assert (tmp_path / "there.pdf").read_bytes()[:5] == b"%PDF-"
    assert (tmp_path / "copied.pdf").read_bytes() == (tmp_path / "there.pdf").read_bytes()
    assert abs((tmp_path / "there.pdf").stat().st_size - (tmp_path / "here.pdf").stat().st_size) < 100


def test_worker_failures_are_reported_and_unpicklable_figures_saved_here(tmp_path):
    """A file the worker cannot write is named in ``failed`` with its reason; a figure that cannot be
    pickled (a lambda formatter) is saved in this process."""
    from matplotlib.ticker import FuncFormatter

    from tmeatlas import _report

    _worker_or_skip()
    import matplotlib.pyplot as plt

    with _report.figure_saver(background=True) as saver:
        assert saver.wait_ready()
        saver.save(_small_figure(), {"pdf": tmp_path / "missing_folder" / "a.pdf"})
        saver.save(_small_figure(formatter=FuncFormatter(lambda x, _: f"{x:.0f}")),
                   {"pdf": tmp_path / "lambda.pdf"})  # fmt: skip
        plt.close("all")
    assert list(saver.failed) == [str(tmp_path / "missing_folder" / "a.pdf")]
    assert "No such file" in saver.failed[str(tmp_path / "missing_folder" / "a.pdf")]
    assert (tmp_path / "lambda.pdf").exists() and saver._sent == 1
    records = {"cohort": [_report.Figure(name="a", section="", title="", caption="",
                                        pdf=tmp_path / "missing_folder" / "a.pdf")], "samples": {}}  # fmt: skip
    with pytest.warns(UserWarning, match="1 figure file"):
        _report.drop_unwritten(records, saver.failed)
    assert records["cohort"][0].pdf is None


def test_worker_is_stopped_on_an_interrupt(tmp_path):
    """An exception inside the block (Ctrl-C) stops the worker instead of waiting for it."""
    from tmeatlas import _report

    _worker_or_skip()
    saver = _report.figure_saver(background=True)
    proc = saver._proc

    def interrupted():
        with saver:
            assert saver.wait_ready()
            saver.save(_small_figure(), {"pdf": tmp_path / "a.pdf"})
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert proc.poll() is not None and saver._proc is None


def test_background_off_without_a_second_core(tmp_path, monkeypatch):
    """One usable core (or background=False): no worker process, files saved here."""
    from tmeatlas import _figsave, _report

    monkeypatch.setattr(_figsave, "worker_available", lambda: False)
    with _report.figure_saver(background=True) as saver:
        assert saver._proc is None
        saver.save(_small_figure(), {"png": tmp_path / "a.png"})
    assert (tmp_path / "a.png").exists()


def test_a_stopped_worker_leaves_the_work_here(tmp_path):
    """Before the worker is ready and after it has stopped, figures are saved in this process."""
    from tmeatlas import _report

    _worker_or_skip()
    saver = _report.figure_saver(background=True)
    saver.save(_small_figure(), {"png": tmp_path / "early.png"}, measure=_report._measure)
    assert saver.wait_ready()
    saver._proc.kill()
    saver._proc.wait()
    saver.save(_small_figure(), {"png": tmp_path / "late.png"}, measure=_report._measure)
    assert saver.close() == {} and saver._sent == 0
    assert (tmp_path / "early.png").exists() and (tmp_path / "late.png").exists()
