"""Spatial graphs, neighbourhoods and niches: ``tm.gr``.

Neighbourhood composition per sample and neighbourhood enrichment are here; niches, the
tumour interface and immune phenotypes follow (spatial-niche issue).
"""

from __future__ import annotations

from ._neighborhoods import enrichment, neighborhoods

__all__ = ["enrichment", "neighborhoods"]
