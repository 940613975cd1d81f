"""Package settings and the ``tmeatlas`` logger.

The logger is named ``"tmeatlas"`` and owns one stream handler; the root logger is never
touched, so tmeatlas messages neither disappear nor duplicate inside a user's logging set-up.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

__all__ = ["logger", "settings"]

logger = logging.getLogger("tmeatlas")
if not logger.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("tmeatlas: %(message)s"))
    logger.addHandler(_handler)
    logger.propagate = False

_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


@dataclass
class Settings:
    """Global settings: ``tm.settings.verbosity``, ``tm.settings.n_jobs``, ``tm.settings.chunk_size``.

    verbosity
        0 errors, 1 warnings (default), 2 info (what each tool added), 3 debug.
    n_jobs
        Default number of threads for tools called with ``n_jobs=None``; ``-1`` means all cores.
    chunk_size
        Default number of cells processed at once by chunked tools; bounds their memory.
    """

    _verbosity: int = field(default=1, repr=False)
    n_jobs: int = 1
    chunk_size: int = 10_000

    def __post_init__(self) -> None:
        self.verbosity = self._verbosity

    @property
    def verbosity(self) -> int:
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int) -> None:
        if value not in _LEVELS:
            from ._errors import InvalidParameterError

            raise InvalidParameterError(f"verbosity must be one of {sorted(_LEVELS)}, got {value!r}.")
        self._verbosity = int(value)
        logger.setLevel(_LEVELS[value])

    def resolve_n_jobs(self, n_jobs: int | None) -> int:
        """Turn a user's ``n_jobs`` (``None``: the setting; ``-1``: all cores) into a thread count."""
        from ._errors import InvalidParameterError

        n = self.n_jobs if n_jobs is None else n_jobs
        if not isinstance(n, int | type(None)) or n == 0 or (n is not None and n < -1):
            raise InvalidParameterError(f"n_jobs must be a positive integer or -1 (all cores), got {n!r}.")
        if n == -1:
            return os.cpu_count() or 1
        return int(n)


settings = Settings()
