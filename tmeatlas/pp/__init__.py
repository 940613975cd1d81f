"""Preprocessing: ``tm.pp``."""

from __future__ import annotations

from ._gene_positions import gene_positions

__all__ = ["gene_positions"]
