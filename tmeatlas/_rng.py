"""The one random-number convention of tmeatlas.

Every stochastic tool takes ``rng=`` (default ``0``): an ``int`` seed, a
:class:`numpy.random.Generator` or ``None`` (fresh entropy). The tool turns it into an integer
seed with :func:`resolve_seed`, records that seed in its ``params``, and draws only from
generators built from it, so that rerunning with the recorded seed reproduces the result.
"""

from __future__ import annotations

import numpy as np

from ._errors import InvalidParameterError

__all__ = ["RngLike", "make_rng", "resolve_seed", "spawn_seeds"]

RngLike = int | np.random.Generator | None


def resolve_seed(rng: RngLike) -> int:
    """Return the integer seed that a tool records and draws from."""
    if isinstance(rng, bool):
        raise InvalidParameterError(f"rng must be an int seed, a numpy Generator or None, got {rng!r}.")
    if isinstance(rng, int | np.integer):
        if rng < 0:
            raise InvalidParameterError(f"rng seed must be non-negative, got {rng}.")
        return int(rng)
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63 - 1))
    if rng is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
    raise InvalidParameterError(
        f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}."
    )


def make_rng(seed: int) -> np.random.Generator:
    """A PCG64 generator from an integer seed (as returned by :func:`resolve_seed`)."""
    return np.random.default_rng(np.random.SeedSequence(seed))


def spawn_seeds(seed: int, n: int) -> np.ndarray:
    """``n`` independent child seeds of ``seed``: one stream per chunk, permutation or worker.

    Results built from them do not depend on how the work is split over threads.
    """
    return np.random.SeedSequence(seed).generate_state(n, dtype=np.uint64) >> np.uint64(1)
