"""The structure of the code base: thin functions, no import cycles, layers that point one way.

These are the acceptance checks of the house rules in DEVELOPERS.md, read from the source with
:mod:`ast` (nothing is imported): a function is at most ``MAX_LINES`` lines counted from the first
statement after its docstring to its last line, blank and comment lines included; the modules of
``tmeatlas`` import each other without a cycle (imports inside functions count too); and a module
never imports one from a higher layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tmeatlas"
MAX_LINES = 120
#: layers, lowest first: a module may import from its own layer or a lower one only
LAYERS = (
    (
        "_core",
        "_docs",
        "_errors",
        "_keys",
        "_names",
        "_rng",
        "_settings",
        "_version",
        "_palettes",
        "_figsave",
    ),
    ("_validation", "_store", "_resources"),
    ("datasets", "pp"),
    ("tl", "gr"),
    ("pl", "get"),
    ("_steps", "_readers", "_report", "_pipeline", "_demo"),
    ("cli", "__init__"),
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = fn.body
    first = body[0]
    docstring = (
        isinstance(first, ast.Expr)
        and isinstance(getattr(first, "value", None), ast.Constant)
        and (isinstance(first.value.value, str))
    )
    start = body[1].lineno if docstring and len(body) > 1 else first.lineno
    return fn.end_lineno - start + 1


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The ``tmeatlas`` modules that module ``name`` imports (package ``__init__`` files excluded)."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if not is_pkg:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        for c in candidates:
            if c in modules and c != name and modules[c].name != "__init__.py":
                out.add(c)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for i, members in enumerate(LAYERS):
        if top in members:
            return i
    raise AssertionError(f"module {module} is in no layer of tests/test_house.py::LAYERS: add it there")


def test_no_function_over_max_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body_lines(node) > MAX_LINES:
                long.append(f"{path.relative_to(PACKAGE.parent)}::{node.name} ({_body_lines(node)} lines)")
    assert not long, f"functions over {MAX_LINES} lines: split them by concern: {long}"


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, f"import cycles: {cycles}"


def test_layers_point_down():
    up = [
        f"{a} -> {b}"
        for a, targets in sorted(_graph().items())
        for b in sorted(targets)
        if _layer(b) > _layer(a)
    ]
    assert not up, f"modules importing from a higher layer (move the shared part down): {up}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    '''Doc.'''\n    a = 1\n\n    return a\n", 3),
        ("def f():\n    return 1\n", 1),
        ("def f():\n    '''Only a docstring.'''\n", 1),
    ],
)
def test_line_count_known_answers(source, expected):
    fn = ast.parse(source).body[0]
    assert _body_lines(fn) == expected


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_is_clean(command):
    import subprocess
    import sys

    pytest.importorskip("ruff", reason="ruff is not installed (the test extra pins it)")
    res = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "."], cwd=PACKAGE.parent, capture_output=True, text=True
    )
    assert res.returncode == 0, (
        f"ruff {' '.join(command)} is not clean:\n{res.stdout[-3000:]}{res.stderr[-1000:]}"
    )
