"""Execute the tutorial notebooks in ``tutorials/`` and check the figures they write.

The tutorials are MyST markdown notebooks (jupytext's ``myst`` format, the format myst-nb
executes natively): each ``.md`` is read with jupytext into a notebook and runs top to bottom in
a fresh ``python3`` kernel (the interpreter running pytest) with its working directory in a
temporary folder and ``TMEATLAS_TUTORIAL_FIGDIR`` pointing the figure output there, so the
repository is not touched.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"

#: paper panels each notebook saves (``save_panel(fig, name)``), each as PDF and PNG
EXPECTED_FIGURES: dict[str, list[str]] = {
    "01_scrna_tme_atlas.md": [
        "malignant_calls", "cnv_heatmap", "clone_tree", "umap_compartments", "marker_dotplot",
        "composition", "signatures", "checkpoint_interactions",
    ],
    "02_spatial_niches.md": [
        "spatial_true_niche", "spatial_cell_types", "interface_profile", "immune_phenotypes",
        "spatial_niches", "niche_composition",
    ],
    "03_therapy_survival.md": [
        "therapy_survival", "survival_reasons_trastuzumab", "combination_cover_P1",
        "combination_cover_P2", "combination_cover_P3", "therapy_simulation",
        "survival_reasons_user_therapy",
    ],
    "04_inside_scanpy.md": ["scanpy_grid"],
}  # fmt: skip

#: appended to each notebook: the kernel must run the interpreter (and so the tmeatlas) under test
_KERNEL_CHECK = "import sys, tmeatlas\nprint(sys.prefix)\nprint(tmeatlas.__file__)\nprint(sys.executable)"


def _read(name):
    """Return the tutorial ``name`` (a MyST ``.md`` source) as an nbformat v4 notebook."""
    jupytext = pytest.importorskip("jupytext")
    return jupytext.read(TUTORIALS / name)


def test_every_notebook_is_listed():
    sources = [p.name for p in TUTORIALS.glob("*.md") if p.name != "README.md"]
    assert sorted(sources) == sorted(EXPECTED_FIGURES)


def test_notebooks_are_myst_sources():
    for name in EXPECTED_FIGURES:
        nb = _read(name)
        meta = nb.metadata
        assert meta["jupytext"]["text_representation"]["format_name"] == "myst", name
        assert meta["kernelspec"]["name"] == "python3" and meta["kernelspec"]["language"] == "python", name
        text = (TUTORIALS / name).read_text(encoding="utf-8")
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and text.count("```{code-cell} ipython3\n") == len(code), name


def test_notebooks_are_committed_without_outputs():
    for name in EXPECTED_FIGURES:
        nb = _read(name)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has outputs"
        assert 'FIG_DIR = Path(os.environ.get("TMEATLAS_TUTORIAL_FIGDIR", "figures"))' in code[0].source


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED_FIGURES))
def test_tutorial_executes(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    fig_dir = tmp_path / "figures"
    monkeypatch.setenv("TMEATLAS_TUTORIAL_FIGDIR", str(fig_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")

    nb = _read(name)
    nb.cells.append(nbformat.v4.new_code_cell(_KERNEL_CHECK))
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    t0 = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{name}: a cell raised\n{err}")
    print(f"{name}: executed in {time.perf_counter() - t0:.1f} s")

    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert not errors, f"{name}: error outputs {errors}"

    check_out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    prefix, package, executable = check_out.split("\n")[:3]
    assert Path(prefix) == Path(sys.prefix), (
        f"kernel ran {executable} (prefix {prefix}), not {sys.executable}"
    )
    import tmeatlas

    assert Path(package).resolve() == Path(tmeatlas.__file__).resolve()

    for fig in EXPECTED_FIGURES[name]:
        for ext in ("pdf", "png"):
            path = fig_dir / f"{fig}.{ext}"
            assert path.is_file(), f"{name} did not write {path.name}"
            assert path.stat().st_size > 1000, f"{path.name} is (nearly) empty"
    assert (fig_dir / f"{EXPECTED_FIGURES[name][0]}.pdf").read_bytes().startswith(b"%PDF")
    assert (fig_dir / f"{EXPECTED_FIGURES[name][0]}.png").read_bytes().startswith(b"\x89PNG")
