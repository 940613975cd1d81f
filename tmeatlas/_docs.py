"""Docstring fragments shared by the public functions (scanpy's ``_doc_params`` idea).

A docstring writes ``{name}`` on a line of its own, indented like a parameter, where a shared
parameter block belongs; :func:`doc_params` fills it in when the module is imported. Only the
names given are replaced, so braces elsewhere in a docstring (``f"{key_added}_x"``) are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["FRAGMENTS", "doc_params"]

F = TypeVar("F", bound=Callable)

#: parameter blocks, written at the indentation of a numpydoc parameter list (4 spaces)
FRAGMENTS: dict[str, str] = {
    "copy": """\
    copy
        Return a copy instead of writing to ``adata``.""",
    "layer": """\
    layer
        Layer to use instead of ``adata.X``.""",
    "chunk_size": """\
    chunk_size
        Cells per chunk (default ``tm.settings.chunk_size``).""",
    "plot": """\
    ax
        Axes to draw into.
    return_fig
        Return the figure.
    show
        Show the figure (default: when not returning it and not drawing into ``ax``).
    save
        Path to save the figure to; the suffix picks the format (``.pdf``/``.svg`` keep text as text).""",
}


def doc_params(*names: str) -> Callable[[F], F]:
    """Fill the ``{name}`` lines of the decorated function's docstring with :data:`FRAGMENTS`."""
    unknown = [n for n in names if n not in FRAGMENTS]
    if unknown:
        raise KeyError(f"no docstring fragment {unknown}; known: {sorted(FRAGMENTS)}")

    def decorate(fn: F) -> F:
        doc = fn.__doc__ or ""
        for name in names:
            placeholder = f"    {{{name}}}"
            if placeholder not in doc:
                raise ValueError(f"{fn.__qualname__}: docstring has no line '{placeholder.strip()}'")
            doc = doc.replace(placeholder, FRAGMENTS[name])
        fn.__doc__ = doc
        return fn

    return decorate
