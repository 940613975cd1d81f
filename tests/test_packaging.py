"""Packaging: the dependencies declared in ``pyproject.toml`` match what ``tmeatlas/`` imports.

(a) every third-party module imported anywhere in the package (functions included) belongs to a
declared distribution, core or a runtime extra, and one only in an extra is imported inside
functions; (b) every core dependency is imported or carries a ``# backend`` comment saying why it
is needed; (c) the installed versions satisfy the declared floors and the APIs the code relies on
exist.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.metadata as md
import inspect
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tmeatlas"
PYPROJECT = ROOT / "pyproject.toml"

#: extras for working on tmeatlas, not for running it: package code may not rely on them
TOOLING_EXTRAS = {"test", "bench", "docs", "dev"}

#: import name -> distribution, for distributions that may not be installed here (installed ones
#: are looked up in their metadata)
IMPORT_TO_DIST = {
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "igraph": "igraph",
    "scvi": "scvi-tools",
    "spatialdata": "spatialdata",
    "torch": "torch",
}

#: APIs the code calls that not every version of their distribution has: (module, attribute,
#: where tmeatlas uses it). The floors in pyproject.toml are chosen so that these exist.
APIS = [
    ("anndata.experimental", "read_elem_lazy", "_core.chunks.read_h5ad_lazy (anndata 0.12)"),
    ("anndata.io", "read_elem", "_core.chunks.read_h5ad_lazy (anndata 0.11)"),
    ("scipy.stats", "false_discovery_control", "Benjamini-Hochberg (scipy 1.11)"),
    ("scipy.optimize", "milp", "tl.combination_cover (scipy 1.9)"),
    ("scipy.spatial", "QhullError", "gr.immune_phenotype"),
    ("threadpoolctl", "threadpool_limits", "gr.niches"),
]

#: scanpy keywords tm.run passes (scanpy 1.10)
SCANPY_KEYWORDS = [("tl.leiden", "flavor"), ("pp.neighbors", "transformer"), ("tl.pca", "mask_var")]


def _project() -> dict:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)["project"]


def _requirements(extra: str | None = None) -> list[Requirement]:
    """The requirements of the core (``extra=None``) or of one extra."""
    project = _project()
    specs = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(s) for s in specs]


@functools.cache
def _imports() -> dict[str, list[tuple[str, bool]]]:
    """Third-party top-level module -> [(file, imported at module level)] for every import in the package."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                head = name.split(".")[0]
                if head in sys.stdlib_module_names or head in {"tmeatlas", "__future__"}:
                    continue
                found.setdefault(head, []).append((str(path.relative_to(ROOT)), id(node) in top))
    return found


@functools.cache
def _installed_modules() -> dict[str, list[str]]:
    """Top-level module -> distributions providing it, from the installed metadata (read once)."""
    return md.packages_distributions()


def _distributions(module: str) -> set[str]:
    """Canonical names of the distributions that provide the top-level ``module``."""
    installed = _installed_modules().get(module, [])
    names = {canonicalize_name(d) for d in installed}
    if module in IMPORT_TO_DIST:
        names.add(canonicalize_name(IMPORT_TO_DIST[module]))
    return names or {canonicalize_name(module)}


def _declared() -> tuple[set[str], set[str]]:
    """Canonical names of the core requirements and of those of the runtime extras."""
    core = {canonicalize_name(r.name) for r in _requirements()}
    extras = {
        canonicalize_name(r.name)
        for extra in _project()["optional-dependencies"]
        if extra not in TOOLING_EXTRAS
        for r in _requirements(extra)
    }
    return core, extras - {"tmeatlas"}


def test_every_import_is_declared():
    core, extras = _declared()
    undeclared = {
        module: sorted({f for f, _ in where})
        for module, where in _imports().items()
        if not _distributions(module) & (core | extras)
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_optional_dependencies_are_imported_inside_functions():
    core, extras = _declared()
    at_top = {
        module: sorted(f for f, top in where if top)
        for module, where in _imports().items()
        if not _distributions(module) & core
    }
    at_top = {m: files for m, files in at_top.items() if files}
    assert not at_top, f"an extra's module imported at module level breaks `import tmeatlas`: {at_top}"


def _comments() -> dict[str, str]:
    """Core requirement name -> the comment lines just above it (and on its line) in pyproject.toml."""
    lines = PYPROJECT.read_text(encoding="utf-8").splitlines()
    start = lines.index("dependencies = [")
    out, block = {}, []
    for line in lines[start + 1 :]:
        text = line.strip()
        if text == "]":
            break
        if text.startswith("#"):
            block.append(text.lstrip("# "))
            continue
        spec, _, inline = text.partition("#")
        name = canonicalize_name(Requirement(spec.strip().rstrip(",").strip('"')).name)
        out[name] = " ".join([*block, inline.strip()]).strip()
        block = []
    return out


def test_core_dependencies_are_used_or_explained():
    imported = set().union(*(_distributions(m) for m in _imports()))
    comments = _comments()
    core = {canonicalize_name(r.name) for r in _requirements()}
    assert set(comments) == core  # the comment parser saw every requirement
    unexplained = sorted(
        name for name in core if name not in imported and not comments[name].lower().startswith("backend")
    )
    assert not unexplained, (
        f"core dependencies never imported by tmeatlas and without a '# backend ...' comment saying why "
        f"they are needed: {unexplained}"
    )


def test_squidpy_is_optional():
    core, extras = _declared()
    assert "squidpy" not in core and "squidpy" in extras
    assert "squidpy" not in _imports()


@pytest.mark.parametrize("extra", [None, *sorted(_project()["optional-dependencies"])])
def test_installed_versions_satisfy_the_floors(extra):
    bad, missing = [], []
    for req in _requirements(extra):
        if canonicalize_name(req.name) == "tmeatlas" or (req.marker and not req.marker.evaluate()):
            continue
        try:
            installed = md.version(req.name)
        except md.PackageNotFoundError:
            missing.append(req.name)
            continue
        if not req.specifier.contains(installed, prereleases=True):
            bad.append(f"{req.name} {installed} does not satisfy {req.specifier}")
    assert not bad, bad
    if extra is None:
        assert not missing, f"core dependencies not installed: {missing}"


@pytest.mark.parametrize(("module", "attr", "where"), APIS)
def test_relied_on_apis_exist(module, attr, where):
    mod = importlib.import_module(module)
    assert hasattr(mod, attr), f"{module}.{attr} (used by {where}) is missing: raise the floor"


@pytest.mark.parametrize(("func", "keyword"), SCANPY_KEYWORDS)
def test_scanpy_keywords_exist(func, keyword):
    sc = pytest.importorskip("scanpy")
    obj = sc
    for part in func.split("."):
        obj = getattr(obj, part)
    assert keyword in inspect.signature(obj).parameters, (
        f"sc.{func} has no {keyword}=: raise the scanpy floor"
    )


def test_py_typed_is_shipped():
    assert (PACKAGE / "py.typed").is_file()
    with PYPROJECT.open("rb") as f:
        wheel = tomllib.load(f)["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["tmeatlas"]  # hatch ships every file under the package folder


def test_pre_commit_pins_the_installed_ruff():
    text = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    hooks = re.findall(r"^\s*- id: (\S+)", text, flags=re.M)
    assert {"ruff-check", "ruff-format"} <= set(hooks)
    try:
        ruff = md.version("ruff")
    except md.PackageNotFoundError:
        pytest.skip("ruff is not installed (the dev extra)")
    assert re.search(rf"^\s*rev: v{re.escape(ruff)}\s*$", text, flags=re.M), (
        f"pin the ruff-pre-commit rev to the installed ruff v{ruff}"
    )
