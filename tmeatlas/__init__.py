"""tmeatlas: single-cell and spatial atlases of the tumour microenvironment.

``import tmeatlas as tm`` gives the namespaces ``tm.pp`` (preprocessing), ``tm.tl`` (tools),
``tm.gr`` (spatial graphs and niches), ``tm.pl`` (plots), ``tm.get`` (tidy tables) and
``tm.datasets``, plus ``tm.read`` (data as held: h5ad, 10x, Space Ranger, SpatialData, cell
tables; coordinates in microns), ``tm.run`` (the whole atlas, tables, figures and reports in one
call) and ``tm.settings``.
"""

from __future__ import annotations

from . import datasets, get, gr, pl, pp, tl
from ._errors import (
    GenePositionError,
    InvalidInputError,
    InvalidParameterError,
    MissingDependencyError,
    MissingResultError,
    NotApplicableError,
    TmeatlasError,
)
from ._pipeline import PipelineError, run
from ._readers import read
from ._settings import settings
from ._version import __version__

__all__ = [
    "GenePositionError",
    "InvalidInputError",
    "InvalidParameterError",
    "MissingDependencyError",
    "MissingResultError",
    "NotApplicableError",
    "PipelineError",
    "TmeatlasError",
    "__version__",
    "datasets",
    "get",
    "gr",
    "pl",
    "pp",
    "read",
    "run",
    "settings",
    "tl",
]
