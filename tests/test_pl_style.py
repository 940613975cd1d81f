from __future__ import annotations

import logging

import matplotlib as mpl
import pytest

import tmeatlas as tm
from tmeatlas.pl import _style
from tmeatlas.pl._style import set_style
from tmeatlas.pl._utils import CB_PALETTE, COMPARTMENT_COLORS, MAJOR_COLORS

mpl.use("Agg")


@pytest.fixture(autouse=True)
def _restore_rcparams():
    """Every test leaves the global rcParams as it found them."""
    with mpl.rc_context():
        yield


def _colors():
    return [mpl.colors.to_hex(c) for c in mpl.rcParams["axes.prop_cycle"].by_key()["color"]]


def _style_keys():
    return [k for k in mpl.rcParamsDefault if k not in _style._NOT_STYLE and not k.startswith("webagg.")]


def test_exported_in_tm_pl():
    assert tm.pl.set_style is set_style
    assert "set_style" in tm.pl.__all__


def test_paper_style_values():
    assert set_style("paper") is None
    rc = mpl.rcParams
    assert rc["font.size"] == 7
    assert rc["axes.labelsize"] == 7 and rc["axes.titlesize"] == 7
    assert rc["xtick.labelsize"] == rc["ytick.labelsize"] == rc["legend.fontsize"] == 6
    # every fixed text size within Nature's 5-7 pt
    for key in (
        "font.size",
        "axes.labelsize",
        "axes.titlesize",
        "xtick.labelsize",
        "legend.fontsize",
        "legend.title_fontsize",
        "figure.titlesize",
    ):
        assert 5 <= rc[key] <= 7, key
    assert 0.5 <= rc["axes.linewidth"] <= 0.6
    assert rc["xtick.major.width"] == rc["ytick.major.width"] == rc["axes.linewidth"]
    assert rc["xtick.minor.width"] < rc["xtick.major.width"]
    assert rc["xtick.major.size"] == rc["ytick.major.size"] == 2.5
    assert not rc["axes.spines.top"] and not rc["axes.spines.right"]
    assert rc["axes.spines.left"] and rc["axes.spines.bottom"]
    assert rc["legend.frameon"] is False
    assert rc["savefig.bbox"] == "tight"
    assert rc["pdf.fonttype"] == 42 and rc["ps.fonttype"] == 42 and rc["svg.fonttype"] == "none"
    assert rc["savefig.dpi"] == 300
    w, h = rc["figure.figsize"]
    assert w == pytest.approx(89 / 25.4) and h < w
    assert rc["font.family"] == ["sans-serif"] and rc["font.sans-serif"][:2] == ["Arial", "Helvetica"]
    assert _colors() == [c.lower() for c in CB_PALETTE]
    assert _colors()[:3] == ["#e69f00", "#56b4e9", "#009e73"]  # Okabe-Ito first
    assert rc["image.cmap"] == "viridis"


def test_notebook_style_values_and_switching_leaves_nothing_behind():
    set_style("notebook")
    rc = mpl.rcParams
    assert rc["font.size"] == 11 and rc["xtick.labelsize"] == 10 and rc["axes.titlesize"] == 12
    assert rc["axes.linewidth"] == 1.0 and rc["xtick.major.width"] == 1.0
    assert rc["savefig.dpi"] == 150 and tuple(rc["figure.figsize"]) == (6.4, 4.8)
    assert rc["pdf.fonttype"] == 42 and rc["legend.frameon"] is False
    assert _colors() == [c.lower() for c in CB_PALETTE]
    notebook = dict(rc)
    set_style("paper")
    set_style("notebook")
    assert dict(mpl.rcParams) == notebook  # paper and notebook set the same keys


def test_default_restores_matplotlib_defaults():
    mpl.rcParams["backend"] = "Agg"
    set_style("paper", font_family="serif", font_size=6, dpi=600)
    assert mpl.rcParams["font.size"] == 6
    assert set_style("default") is None
    for key in _style_keys():
        assert mpl.rcParams[key] == mpl.rcParamsDefault[key], key
    assert mpl.rcParams["pdf.fonttype"] == 3 and mpl.rcParams["font.size"] == 10
    assert mpl.get_backend().lower() == "agg"  # the backend is not a style: untouched
    set_style("default", font_size=9, dpi=200)
    assert mpl.rcParams["font.size"] == 9 and mpl.rcParams["savefig.dpi"] == 200


def test_overrides_scale_fonts_and_set_dpi_and_family():
    set_style("paper", font_size=6, dpi=450, font_family="DejaVu Sans")
    rc = mpl.rcParams
    assert rc["font.size"] == 6 and rc["axes.labelsize"] == 6
    assert rc["xtick.labelsize"] == pytest.approx(6 * 6 / 7, abs=0.01)
    assert rc["savefig.dpi"] == 450
    assert rc["font.sans-serif"][0] == "DejaVu Sans" and rc["font.sans-serif"].count("DejaVu Sans") == 1
    set_style("paper", font_family="serif")
    assert mpl.rcParams["font.family"] == ["serif"]


def test_missing_font_warns_and_falls_back(caplog):
    logger = logging.getLogger("tmeatlas")
    logger.addHandler(caplog.handler)
    try:
        set_style("paper", font_family="No Such Font 123")
    finally:
        logger.removeHandler(caplog.handler)
    assert "not installed" in caplog.text
    assert mpl.rcParams["font.sans-serif"][0] == "No Such Font 123"
    assert mpl.rcParams["font.family"] == ["sans-serif"]  # no findfont spam: the list falls through


def test_context_manager_leaves_global_state_unchanged():
    before = dict(mpl.rcParams)
    cm = set_style("paper", context=True)
    assert dict(mpl.rcParams) == before  # nothing applied before the with block
    with cm:
        assert mpl.rcParams["font.size"] == 7 and mpl.rcParams["pdf.fonttype"] == 42
    assert dict(mpl.rcParams) == before
    set_style("paper")
    paper = dict(mpl.rcParams)
    with set_style("default", context=True):
        assert mpl.rcParams["font.size"] == mpl.rcParamsDefault["font.size"]
    assert dict(mpl.rcParams) == paper


def test_paper_pdf_keeps_text_as_text(tmp_path):
    import matplotlib.pyplot as plt

    out = tmp_path / "fig.pdf"
    with set_style("paper", context=True):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1], label="T cell")
        ax.set_xlabel("Malignant fraction (%)")
        ax.legend()
        fig.savefig(out)
        plt.close(fig)
    data = out.read_bytes()
    # Type 42: the TrueType program is embedded (/FontFile2); matplotlib >= 3.10 writes it as a
    # CIDFontType2 descendant of a Type0 font, older versions as /Subtype /TrueType
    assert b"/FontFile2" in data and (b"/CIDFontType2" in data or b"/TrueType" in data)
    assert b"/Type3" not in data
    # without the style matplotlib writes Type 3 fonts (text not editable in Illustrator)
    fig, ax = plt.subplots()
    ax.set_xlabel("Malignant fraction (%)")
    fig.savefig(tmp_path / "plain.pdf")
    plt.close(fig)
    assert b"/Type3" in (tmp_path / "plain.pdf").read_bytes()


def test_paper_svg_keeps_text_as_text(tmp_path):
    import matplotlib.pyplot as plt

    with set_style("paper", context=True):
        fig, ax = plt.subplots()
        ax.set_xlabel("Malignant fraction")
        fig.savefig(tmp_path / "fig.svg")
        plt.close(fig)
    svg = (tmp_path / "fig.svg").read_text()
    assert "<text" in svg and "Malignant fraction" in svg


def test_fixed_palettes_do_not_depend_on_style():
    comp, major = dict(COMPARTMENT_COLORS), dict(MAJOR_COLORS)
    for style in ("paper", "notebook", "default"):
        set_style(style)
        assert comp == COMPARTMENT_COLORS and major == MAJOR_COLORS


def test_single_column_width_helpers():
    assert _style.mm_to_inches(_style.SINGLE_COLUMN_MM) == pytest.approx(3.504, abs=1e-3)
    assert _style.mm_to_inches(_style.DOUBLE_COLUMN_MM) == pytest.approx(7.205, abs=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"style": "poster"}, "'paper', 'notebook', 'default'"),
        ({"style": None}, "Unknown style"),
        ({"font_size": 0}, "positive number"),
        ({"font_size": -7}, "positive number"),
        ({"font_size": "7"}, "positive number"),
        ({"font_size": float("nan")}, "positive number"),
        ({"font_size": True}, "positive number"),
        ({"dpi": 0}, "positive number"),
        ({"font_family": ""}, "font name"),
        ({"font_family": 3}, "font name"),
        ({"context": "yes"}, "True or False"),
    ],
)
def test_bad_input_is_a_typed_error(kwargs, match):
    before = dict(mpl.rcParams)
    with pytest.raises(tm.InvalidParameterError, match=match):
        set_style(**kwargs)
    assert dict(mpl.rcParams) == before  # nothing half-applied


def test_style_name_is_case_insensitive():
    set_style("Paper")
    assert mpl.rcParams["font.size"] == 7


def test_import_does_not_pull_in_pyplot():
    import subprocess
    import sys

    code = "import sys, tmeatlas.pl._style; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
