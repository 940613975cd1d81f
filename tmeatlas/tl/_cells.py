"""Cell and gene selections shared by the therapy tools (malignant cells, gene columns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .._errors import MissingResultError
from .._keys import OBS
from .._validation import check_obs_key

if TYPE_CHECKING:
    import numpy as np

__all__ = ["gene_cols", "malignant_mask"]


def malignant_mask(adata, key, value) -> tuple[np.ndarray, str]:
    """Malignant cells (bool per cell) and the rule that marked them (for ``params``)."""
    obs = adata.obs
    if key is not None:
        check_obs_key(adata, key, what="malignant_key")
        candidates = [(key, value if value is not None else "malignant")]
    else:
        candidates = [
            (OBS.malignant, "malignant"),
            (OBS.compartment, "malignant"),
            (OBS.cell_type_major, "Malignant"),
        ]
        if value is not None:
            candidates = [(k, value) for k, _ in candidates]
    for k, v in candidates:
        if k in obs.columns:
            col = obs[k]
            if pd.api.types.is_bool_dtype(col):
                return col.to_numpy(bool), f"obs[{k!r}] is True"
            return (col.astype(str) == str(v)).to_numpy(), f"obs[{k!r}] == {v!r}"
    raise MissingResultError(
        "no malignant calls: none of obs['malignant'], obs['compartment'], obs['cell_type_major'] exists. Run "
        "`tm.tl.call_malignant(adata)` or `tm.tl.annotate(adata)` first, or name your own column with "
        "`malignant_key=` and `malignant_value=`."
    )


def gene_cols(var_names, genes) -> dict[str, int]:
    """Column of each measured gene of ``genes`` (symbols or Ensembl IDs) in ``var_names``."""
    from ._signatures import _gene_columns

    genes = list(dict.fromkeys(genes))
    if not genes:
        return {}
    cols = _gene_columns(var_names, genes)
    return {g: int(c) for g, c in zip(genes, cols) if c >= 0}
