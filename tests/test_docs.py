"""The documentation site lists every public name, method page and tutorial (no sphinx needed).

The build itself (``sphinx-build -W docs docs/_build/html``) runs in ``.ci/run``; these checks keep
a new public function, method page or tutorial from being left out of it.
"""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

import tmeatlas as tm

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NAMESPACES = ["pp", "tl", "gr", "pl", "get", "datasets"]


def _autosummary_entries(page: Path) -> list[str]:
    """The names listed in the ``autosummary`` directives of a MyST page, in order."""
    entries, inside = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. autosummary::"):
            inside = True
        elif line.startswith("```"):
            inside = False
        elif inside and line.startswith("   ") and not line.strip().startswith(":"):
            entries.append(line.strip())
    return [e for e in entries if e]


def _toctree_entries(page: Path) -> list[str]:
    """The documents listed in the ``toctree`` blocks of a MyST page."""
    text = page.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", text, flags=re.S):
        out += [line.strip() for line in block.splitlines() if line.strip() and not line.startswith(":")]
    return out


def test_api_page_lists_every_public_name():
    listed = _autosummary_entries(DOCS / "api.md")
    assert len(listed) == len(set(listed)), "a name is listed twice"
    expected = [
        n for n in tm.__all__ if n != "__version__" and not isinstance(getattr(tm, n), types.ModuleType)
    ]
    expected += [f"{ns}.{n}" for ns in NAMESPACES for n in getattr(tm, ns).__all__]
    missing = sorted(set(expected) - set(listed))
    assert not missing, f"add these public names to docs/api.md: {missing}"
    assert sorted(set(n.split(".")[0] for n in listed if "." in n)) == sorted(NAMESPACES)


@pytest.mark.parametrize("name", _autosummary_entries(DOCS / "api.md"))
def test_api_page_names_exist(name):
    obj = tm
    for part in name.split("."):
        assert hasattr(obj, part), f"docs/api.md lists {name}, which tmeatlas does not have"
        obj = getattr(obj, part)
    module = tm if "." not in name else getattr(tm, name.split(".")[0])
    assert name.split(".")[-1] in module.__all__, f"{name} is listed in docs/api.md but not public"


def test_every_method_page_is_in_the_toctree():
    pages = sorted(p.stem for p in (DOCS / "methods").glob("*.md") if p.stem != "index")
    assert pages and sorted(_toctree_entries(DOCS / "methods" / "index.md")) == pages


def test_every_tutorial_is_in_the_docs():
    tutorials = sorted(p.name for p in (ROOT / "tutorials").glob("*.md") if p.name != "README.md")
    assert tutorials
    for name in tutorials:
        link = DOCS / "tutorials" / name
        assert link.is_symlink() and link.resolve() == (ROOT / "tutorials" / name).resolve(), (
            f"docs/tutorials/{name} must link to ../../tutorials/{name}"
        )
    assert sorted(_toctree_entries(DOCS / "tutorials" / "index.md")) == [Path(n).stem for n in tutorials]


def test_top_level_pages_are_in_the_toctree():
    assert sorted(_toctree_entries(DOCS / "index.md")) == sorted(
        ["tutorials/index", "methods/index", "api", "changelog"]
    )
