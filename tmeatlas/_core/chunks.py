"""Iterate over cells in chunks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["iter_chunks"]


def iter_chunks(n: int, chunk_size: int) -> Iterator[slice]:
    """Slices ``[0, chunk_size)``, ``[chunk_size, 2 chunk_size)``, ... covering ``range(n)``."""
    chunk_size = max(1, int(chunk_size))
    for s in range(0, n, chunk_size):
        yield slice(s, min(n, s + chunk_size))
