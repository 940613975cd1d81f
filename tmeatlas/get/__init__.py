"""Tidy tables of results: ``tm.get``."""

from __future__ import annotations

from ._tables import gene_positions

__all__ = ["gene_positions"]
