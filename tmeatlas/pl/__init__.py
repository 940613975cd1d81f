"""Plots: ``tm.pl``. Every plot takes ``ax=``, ``return_fig=``, ``show=`` and ``save=``."""

from __future__ import annotations

from ._spatial import spatial
from ._utils import CB_PALETTE

__all__ = ["CB_PALETTE", "spatial"]
