"""The one place where tools write results into an AnnData.

:func:`store` writes per-cell, per-gene, matrix, graph and unstructured results, records the
call's ``params`` next to the unstructured result, makes every value h5ad-safe and logs what
it added. It also appends a line to ``adata.uns["tmeatlas_log"]``, the provenance of a run.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._errors import MissingResultError
from ._keys import UNS
from ._settings import logger
from ._version import __version__

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["h5ad_safe", "plain", "read_params", "store"]


def h5ad_safe(value: Any) -> Any:
    """Convert ``value`` into something ``write_h5ad`` accepts, recursively.

    ``None`` becomes the string ``"None"``, tuples and sets become lists (arrays when
    homogeneous), paths become strings, dataclass-free objects become their ``repr``.
    """
    if value is None:
        return "None"
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | str | np.integer | np.floating):
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return np.asarray([str(v) for v in value.ravel()]).reshape(value.shape)
        return value
    if isinstance(value, pd.DataFrame | pd.Series):
        df = value.to_frame() if isinstance(value, pd.Series) else value.copy()
        df.columns = [str(c) for c in df.columns]
        df.index = df.index.astype(str)
        for c in df.columns:
            if df[c].dtype == object:
                df[c] = df[c].astype(str)
        return df
    if isinstance(value, Mapping):
        return {str(k): h5ad_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        if len(items) == 0:
            return np.array([], dtype=str)
        if all(isinstance(v, str) for v in items):
            return np.asarray(items, dtype=str)
        if all(isinstance(v, bool | np.bool_) for v in items):
            return np.asarray(items, dtype=bool)
        if all(
            isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in items
        ):
            return np.asarray(items)
        return {str(i): h5ad_safe(v) for i, v in enumerate(items)}
    return repr(value)


def plain(value: Any) -> Any:
    """A value read back from ``uns`` (possibly after an h5ad round trip) as plain Python: the inverse
    of :func:`h5ad_safe` where it can be inverted. Numpy scalars and 0-d arrays become Python
    scalars, bytes become text, the string ``"None"`` becomes ``None``, arrays and lists become lists
    of plain values, mappings become dicts.
    """
    if isinstance(value, np.ndarray):
        value = value.item() if value.ndim == 0 else [plain(v) for v in value.tolist()]
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or (isinstance(value, str) and value == "None"):
        return None
    return value


def read_result(adata: AnnData, uns_key: str, tool: str) -> Mapping:
    """``adata.uns[uns_key]``, the record of ``tm.tl.<tool>``; a :class:`MissingResultError` naming the tool when absent."""
    entry = adata.uns.get(uns_key)
    if not isinstance(entry, Mapping):
        raise MissingResultError(
            f"no result in adata.uns[{uns_key!r}]; run `tm.tl.{tool}(adata, ...)` first."
        )
    return entry


def read_params(adata: AnnData, uns_key: str) -> dict[str, Any]:
    """``adata.uns[uns_key]["params"]`` as plain Python values (:func:`plain`); ``{}`` when absent."""
    entry = adata.uns.get(uns_key)
    params = entry.get("params") if isinstance(entry, Mapping) else None
    return {str(k): plain(v) for k, v in params.items()} if isinstance(params, Mapping) else {}


def store(
    adata: AnnData,
    *,
    tool: str,
    obs: Mapping[str, Any] | pd.DataFrame | None = None,
    var: Mapping[str, Any] | pd.DataFrame | None = None,
    obsm: Mapping[str, Any] | None = None,
    obsp: Mapping[str, Any] | None = None,
    uns_key: str | None = None,
    uns: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write results of ``tool`` into ``adata``; return and log the list of keys added.

    ``uns`` is written to ``adata.uns[uns_key]`` together with ``params`` (under ``"params"``).
    When ``uns`` is ``None`` but ``params`` is given, ``adata.uns[uns_key] = {"params": ...}``.
    """
    added: list[str] = []
    for slot, values in (("obs", obs), ("var", var)):
        if values is None:
            continue
        items = list(values.items())
        added.extend(_keep_users_columns(adata, slot, [k for k, _ in items], tool))
        frame = getattr(adata, slot)
        new = {}
        for key, col in items:
            col = (
                col.to_numpy()
                if isinstance(col, pd.Series) and not isinstance(col.dtype, pd.CategoricalDtype)
                else col
            )
            new[key] = col.values if isinstance(col, pd.Series) else col
            added.append(f"{slot}[{key!r}]")
        if len(new) <= 8:
            for key, col in new.items():
                frame[key] = col
        else:  # many columns (e.g. one per signature): one concat, not a fragmented frame
            block = pd.DataFrame(new, index=frame.index)
            setattr(
                adata,
                slot,
                pd.concat([frame.drop(columns=[k for k in new if k in frame.columns]), block], axis=1),
            )
    for slot, values in (("obsm", obsm), ("obsp", obsp)):
        if values is None:
            continue
        for key, mat in values.items():
            getattr(adata, slot)[key] = mat
            added.append(f"{slot}[{key!r}]")
    if uns is not None or params is not None:
        if uns_key is None:
            raise ValueError("store(): uns or params given without uns_key")  # programming error
        entry = dict(uns) if uns is not None else {}
        if params is not None:
            entry["params"] = dict(params)
        adata.uns[uns_key] = h5ad_safe(entry)
        added.append(f"uns[{uns_key!r}]")
    _append_log(adata, tool, added)
    if added:
        logger.info("%s added %s", tool, ", ".join(added))
    return added


#: suffix of the name under which a user's column is kept when a tool writes a column of that name
USER_SUFFIX = "_user"


def _ours(adata: AnnData, slot: str, key: str) -> bool:
    """Whether tmeatlas wrote ``slot[key]`` (it is named in ``uns["tmeatlas_log"]``)."""
    log = adata.uns.get(UNS.log)
    if not isinstance(log, pd.DataFrame) or "added" not in log.columns:
        return False
    return any(f"{slot}[{key!r}]" in str(a) for a in log["added"])


def _keep_users_columns(adata: AnnData, slot: str, keys: list[str], tool: str) -> list[str]:
    """Columns of ``obs``/``var`` that ``tool`` is about to write but that tmeatlas did not write (the
    user's own, e.g. the authors' ``obs["malignant"]``) are kept under ``<key>_user`` (or
    ``<key>_user2``, ...), with a warning; return what was moved, for the log.
    """
    frame = getattr(adata, slot)
    moved = []
    for key in keys:
        if key not in frame.columns or _ours(adata, slot, key):
            continue
        new, i = f"{key}{USER_SUFFIX}", 2
        while new in frame.columns:
            new, i = f"{key}{USER_SUFFIX}{i}", i + 1
        frame[new] = frame[key]
        logger.warning(
            "%s writes %s[%r], which held your own values: they are kept in %s[%r].",
            tool,
            slot,
            key,
            slot,
            new,
        )
        moved.append(f"{slot}[{new!r}] (your {slot}[{key!r}], kept)")
    return moved


def _append_log(adata: AnnData, tool: str, added: list[str]) -> None:
    log = adata.uns.get(UNS.log)
    rows = [] if not isinstance(log, pd.DataFrame) else [log]
    row = pd.DataFrame(
        {
            "tool": [tool],
            "version": [__version__],
            "time": [_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")],
            "added": ["; ".join(added)],
        }
    )
    rows.append(row)
    out = pd.concat(rows, ignore_index=True)
    out.index = out.index.astype(str)
    adata.uns[UNS.log] = out
