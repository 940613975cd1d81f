"""Tidy tables of results: ``tm.get``."""

from __future__ import annotations

from ._drug_screen import drug_screen
from ._heterogeneity import heterogeneity
from ._signatures import checkpoint_interactions, signature_summary, signature_test
from ._tables import composition, gene_positions
from ._therapy import combination_cover, immunotherapy_benefit, therapy_survival

__all__ = [
    "checkpoint_interactions",
    "combination_cover",
    "composition",
    "drug_screen",
    "gene_positions",
    "heterogeneity",
    "immunotherapy_benefit",
    "signature_summary",
    "signature_test",
    "therapy_survival",
]
