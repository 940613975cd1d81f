"""Datasets: ``tm.datasets`` (simulated cohorts with ground truth; later, shipped resources)."""

from __future__ import annotations

from ._markers import markers
from ._simulate import simulate_tumor

__all__ = ["markers", "simulate_tumor"]
