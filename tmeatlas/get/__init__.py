"""Tidy tables of results: ``tm.get``."""

from __future__ import annotations

from ._signatures import checkpoint_interactions, signature_summary, signature_test
from ._tables import composition, gene_positions
from ._therapy import combination_cover, therapy_survival

__all__ = [
    "checkpoint_interactions",
    "combination_cover",
    "composition",
    "gene_positions",
    "signature_summary",
    "signature_test",
    "therapy_survival",
]
