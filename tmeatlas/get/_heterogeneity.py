"""Tidy table of tumour heterogeneity: ``tm.get.heterogeneity``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import MissingResultError
from .._keys import UNS
from ._therapy import _entry

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["heterogeneity"]

#: default key (``tmeatlas/_keys.py``)
UNS_HETEROGENEITY = UNS.heterogeneity
_TEXT = ("sample", "dominant_state", "not_measured")
_COUNTS = (
    "n_malignant",
    "n_clone_labelled",
    "n_chromatin_profiled",
    "n_clones",
    "clonal_events",
    "subclonal_events",
    "tree_depth",
    "n_states",
)


def heterogeneity(adata: AnnData, *, key: str = UNS_HETEROGENEITY) -> pd.DataFrame:
    """The per-sample heterogeneity table of :func:`tmeatlas.tl.heterogeneity`, tidy.

    One row per sample: ``sample``, cell counts (``n_malignant``, ``n_clone_labelled``,
    ``n_chromatin_profiled``), the clone tree descriptors (``n_clones``, ``clonal_events``,
    ``subclonal_events``, ``tree_depth``; nullable integers), ``n_states`` and
    ``dominant_state``, then every index with its 95 % cell-resampling interval
    (``genetic_diversity``, ``effective_clones``, ``cnv_burden``, ``state_diversity``,
    ``state_between_clones``, ``clone_mixing``, ``clone_spatial_entropy``,
    ``epigenetic_diversity``, ``epigenetic_rna_agreement``, each with ``_low`` and ``_high``) and
    ``not_measured`` (why an index is NaN). Formulas (Miller-Madow Shannon entropy, Hill number of
    order 1, mutual information of state and clone, neighbour mixing, Cohen's kappa of the RNA and
    chromatin states) and citations: :func:`tmeatlas.tl.heterogeneity`; the
    clone-by-state composition is ``adata.uns[key]["clone_state"]``.

    Parameters
    ----------
    adata
        Annotated data matrix with the result of :func:`tmeatlas.tl.heterogeneity`.
    key
        Its ``adata.uns`` key.

    Returns
    -------
    A new :class:`pandas.DataFrame`, sorted by sample.
    """
    res = _entry(adata, key, "heterogeneity")
    if "table" not in res:
        raise MissingResultError(f"adata.uns[{key!r}] has no 'table'; rerun `tm.tl.heterogeneity`.")
    df = pd.DataFrame(res["table"]).copy()
    for c in df.columns:
        if c in _TEXT:
            df[c] = df[c].astype(str)
        elif c in _COUNTS:
            df[c] = pd.to_numeric(df[c], errors="coerce").round().astype("Int64")
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(np.float64)
    return df.sort_values("sample", kind="stable").reset_index(drop=True)
