"""Tidy tables of results: ``tm.get``."""

from __future__ import annotations

from ._signatures import checkpoint_interactions, signature_summary, signature_test
from ._tables import composition, gene_positions

__all__ = [
    "checkpoint_interactions",
    "composition",
    "gene_positions",
    "signature_summary",
    "signature_test",
]
