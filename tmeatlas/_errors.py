"""Typed exceptions. Each message says what is wrong and what to do about it."""

from __future__ import annotations

__all__ = [
    "GenePositionError",
    "InvalidInputError",
    "InvalidParameterError",
    "MissingDependencyError",
    "MissingResultError",
    "NotApplicableError",
    "TmeatlasError",
]


class TmeatlasError(Exception):
    """Base class of all tmeatlas errors."""


class InvalidInputError(TmeatlasError, ValueError):
    """The AnnData (matrix, obs, var, layers) does not fit what the tool needs."""


class InvalidParameterError(TmeatlasError, ValueError):
    """A keyword argument has an unusable value."""


class MissingResultError(TmeatlasError, KeyError):
    """A tool needs the result of an earlier step that is not in the AnnData."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotApplicableError(InvalidInputError):
    """The data cannot support this analysis (no malignant cells, no measured receptor-ligand pair,
    no CD8 label, too few genes on the genome): not a mistake in the call. :func:`tmeatlas.run`
    records the step as not applicable, with this message as the reason, and goes on.
    """


class GenePositionError(InvalidInputError):
    """Gene identifiers could not be placed on the genome."""


class MissingDependencyError(TmeatlasError, ImportError):
    """An optional dependency (an extra) is not installed."""
