"""Statistical helpers shared by the tools: multiple-testing correction.

Array functions only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bh_adjust"]


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values of one family (J R Stat Soc B 1995), as float64.

    ``p`` holds finite p-values (scipy's ``false_discovery_control``); an empty array gives an
    empty array.
    """
    from scipy.stats import false_discovery_control

    if len(p) == 0:
        return p.astype(np.float64)
    return false_discovery_control(np.asarray(p, dtype=np.float64), method="bh")
