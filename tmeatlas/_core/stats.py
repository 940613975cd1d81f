"""Statistical helpers shared by the tools: multiple-testing correction, the signed-rank test.

Array functions only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["bh_adjust", "signed_rank_test"]


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values of one family (J R Stat Soc B 1995), as float64.

    ``p`` holds finite p-values (scipy's ``false_discovery_control``); an empty array gives an
    empty array.
    """
    from scipy.stats import false_discovery_control

    if len(p) == 0:
        return p.astype(np.float64)
    return false_discovery_control(np.asarray(p, dtype=np.float64), method="bh")


@lru_cache(maxsize=64)
def _signed_rank_null(n: int) -> np.ndarray:
    """Cumulative null distribution ``P(T+ <= t)``, ``t = 0 .. n(n+1)/2``, of the signed-rank sum
    of ``n`` untied non-zero differences (the number of subsets of ``1..n`` with each sum / 2^n).
    """
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k]
    return np.cumsum(counts) / 2.0**n


def signed_rank_test(d: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of the differences ``d`` (finite): ``(statistic, p)``.

    The same result as :func:`scipy.stats.wilcoxon` (``zero_method="wilcox"``,
    ``method="auto"``); the exact case (at most 50 differences, none zero, no tied magnitudes)
    is computed here from a cached null distribution, without scipy's per-call overhead, for the thousands of small
    tests a table of signatures x groups asks for; other cases go to scipy.
    """
    d = np.asarray(d, dtype=np.float64)
    n = len(d)
    mag = np.abs(d)
    if 0 < n <= 50 and (mag > 0).all() and len(np.unique(mag)) == n:
        ranks = np.empty(n)
        ranks[np.argsort(mag)] = np.arange(1, n + 1)
        r_plus = float(ranks[d > 0].sum())
        total = n * (n + 1) // 2
        cdf = _signed_rank_null(n)
        # P(T+ <= r) and, by the null's symmetry, P(T+ >= r) = P(T+ <= total - r)
        below, above = cdf[int(r_plus)], cdf[total - int(r_plus)]
        return min(r_plus, total - r_plus), float(min(1.0, 2.0 * min(below, above)))
    from scipy.stats import wilcoxon

    res = wilcoxon(d, alternative="two-sided", zero_method="wilcox")
    return float(res.statistic), float(res.pvalue)
