"""Typed exceptions. Each message says what is wrong and what to do about it."""

from __future__ import annotations

__all__ = [
    "GenePositionError",
    "InvalidInputError",
    "InvalidParameterError",
    "MissingDependencyError",
    "MissingResultError",
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


class GenePositionError(InvalidInputError):
    """Gene identifiers could not be placed on the genome."""


class MissingDependencyError(TmeatlasError, ImportError):
    """An optional dependency (an extra) is not installed."""
