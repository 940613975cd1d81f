"""Spatial graphs, neighbourhoods and niches: ``tm.gr``.

The spatial-niche issue adds its tools here; nothing is exported until it exists.
"""

from __future__ import annotations

__all__: list[str] = []
