"""Spatial graphs, neighbourhoods, niches, the tumour interface and immune phenotypes: ``tm.gr``."""

from __future__ import annotations

from ._interface import immune_phenotype, interface
from ._neighborhoods import enrichment, neighborhoods
from ._niches import niches
from ._tumor_score import tumor_score

__all__ = ["enrichment", "immune_phenotype", "interface", "neighborhoods", "niches", "tumor_score"]
