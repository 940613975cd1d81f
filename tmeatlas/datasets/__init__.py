"""Datasets: ``tm.datasets`` (simulated cohorts with ground truth; later, shipped resources)."""

from __future__ import annotations

from ._markers import markers
from ._signatures import checkpoint_pairs, signatures
from ._simulate import simulate_tumor
from ._simulate_cohort import simulate_checkpoint_cohort
from ._spots import simulate_spots
from ._therapies import therapies

__all__ = [
    "checkpoint_pairs",
    "markers",
    "signatures",
    "simulate_checkpoint_cohort",
    "simulate_spots",
    "simulate_tumor",
    "therapies",
]
