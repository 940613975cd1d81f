"""Tidy tables of results: ``tm.get``."""

from __future__ import annotations

from ._tables import composition, gene_positions

__all__ = ["composition", "gene_positions"]
