"""Input checks shared by all tools. They raise typed errors with actionable messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from ._core.expression import looks_like_counts
from ._errors import InvalidInputError, InvalidParameterError, MissingResultError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from anndata import AnnData

__all__ = [
    "check_adata",
    "check_expression_values",
    "check_obs_key",
    "check_int",
    "check_number",
    "check_one_of",
    "renamed_args",
    "get_matrix",
    "looks_like_counts",
    "start",
    "suggest_names",
]


def suggest_names(bad: Iterable[Any], known: Iterable[str] | dict[str, str], *, cutoff: float = 0.6) -> str:
    """``"'x': did you mean 'a', 'b'?"`` hints for unknown names (case-insensitive), ``""`` when none is close.

    ``known`` is the valid names, or a mapping from accepted spellings (aliases, display names)
    to the valid name that is suggested.
    """
    import difflib

    pairs = known.items() if isinstance(known, dict) else ((k, k) for k in known)
    lower = {str(alias).lower(): str(name) for alias, name in pairs}
    hints = []
    for b in list(bad)[:5]:
        close = difflib.get_close_matches(str(b).lower(), list(lower), n=3, cutoff=cutoff)
        close = list(dict.fromkeys(lower[c] for c in close))
        if close:
            hints.append(f"{b!r}: did you mean {', '.join(map(repr, close))}?")
    return " ".join(hints)


def check_adata(adata: Any) -> AnnData:
    """Raise unless ``adata`` is a non-empty AnnData."""
    from anndata import AnnData

    if not isinstance(adata, AnnData):
        raise InvalidInputError(
            f"expected an AnnData as first argument, got {type(adata).__name__}. "
            "Read your data with `anndata.read_h5ad` or `scanpy.read_10x_h5` first."
        )
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InvalidInputError(f"the AnnData is empty ({adata.n_obs} cells x {adata.n_vars} genes).")
    return adata


def start(adata: Any, copy: bool) -> AnnData:
    """Validate ``adata`` and return the object a tool should write to (a copy if ``copy``)."""
    check_adata(adata)
    if not isinstance(copy, bool):
        raise InvalidParameterError(f"copy must be True or False, got {copy!r}.")
    return adata.copy() if copy else adata


def get_matrix(adata: AnnData, layer: str | None = None):
    """``adata.X`` or ``adata.layers[layer]``, with a clear error if the layer is missing."""
    if layer is None:
        X = adata.X
        if X is None:
            raise InvalidInputError("adata.X is empty; pass `layer=` naming the layer that holds expression.")
        return X
    if layer not in adata.layers:
        raise MissingResultError(
            f"layer {layer!r} not found; available layers: {sorted(adata.layers) or 'none'}. "
            "Pass `layer=None` to use adata.X."
        )
    return adata.layers[layer]


def check_obs_key(adata: AnnData, key: str | None, *, what: str = "column", hint: str = "") -> None:
    """Raise unless ``key`` is a column of ``adata.obs`` (``None`` passes)."""
    if key is None:
        return
    if key not in adata.obs.columns:
        cols = ", ".join(map(repr, list(adata.obs.columns)[:15])) or "none"
        raise MissingResultError(
            f"{what} {key!r} is not a column of adata.obs (columns: {cols}). {hint}".rstrip()
        )


def check_one_of(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """Raise unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise InvalidParameterError(f"{name} must be one of {allowed}, got {value!r}.")


def check_expression_values(X) -> None:
    """Raise unless the stored values of ``X`` are finite and non-negative (counts or normalised expression)."""
    data = X.data if sparse.issparse(X) else np.asarray(X)
    if data.size and not np.isfinite(data).all():
        raise InvalidInputError(
            "the expression matrix contains NaN or infinite values; remove or impute them first."
        )
    if data.size and data.min() < 0:
        raise InvalidInputError(
            "the expression matrix has negative values (scaled data?); pass raw counts or log-normalised "
            "expression (e.g. `layer='counts'`)."
        )


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """Raise unless ``value`` is an integer (not a bool) of at least ``minimum``; return it as ``int``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer) or value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    what: str = "",
) -> float:
    """Raise unless ``value`` is a finite real number (not a bool) within the bounds; return it as ``float``.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; ``what`` is appended to the
    message (a unit, e.g. ``"(microns)"``).
    """
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
    ok = ok and bool(np.isfinite(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            bounds = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            bounds = f"{'>' if low_open else '>='} {low:g}"
        elif high is not None:
            bounds = f"{'<' if high_open else '<='} {high:g}"
        else:
            bounds = "(finite)"
        raise InvalidParameterError(
            f"{name} must be a number {bounds}{' ' + what if what else ''}, got {value!r}."
        )
    return float(value)


def renamed_args(**renames: str):
    """Decorator: accept the old keyword names ``old=new`` of a renamed parameter for one release.

    A call with an old name gets a :class:`FutureWarning` that names the new one and is forwarded
    under it; passing both names is an :class:`~tmeatlas.InvalidParameterError`.
    """
    import functools
    import warnings

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise InvalidParameterError(f"pass {new}= only ({old}= is its old name), not both.")
                warnings.warn(
                    f"{fn.__name__}({old}=...) is renamed {new}=; the old name will be removed in a later release.",
                    FutureWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        wrapper.renamed_args = dict(renames)
        return wrapper

    return decorate
