"""Tidy tables from results stored in an AnnData."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import MissingResultError
from .._keys import UNS, VAR
from .._validation import check_adata

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

__all__ = ["gene_positions"]


def gene_positions(adata: AnnData, *, placed_only: bool = True) -> pd.DataFrame:
    """Genes with their genomic positions, in genome order, as a tidy table.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`tmeatlas.pp.gene_positions`.
    placed_only
        Drop genes without a position.

    Returns
    -------
    DataFrame with columns ``gene``, ``chromosome``, ``start``, ``end``, ``arm``.
    """
    check_adata(adata)
    cols = [VAR.chromosome, VAR.start, VAR.end, VAR.arm]
    if any(c not in adata.var.columns for c in cols):
        raise MissingResultError("no gene positions: run `tm.pp.gene_positions(adata)` first.")
    df = adata.var[cols].copy()
    df.insert(0, "gene", adata.var_names.astype(str))
    if placed_only:
        df = df[df[VAR.chromosome].notna()]
    df = df.sort_values([VAR.chromosome, VAR.start], na_position="last").reset_index(drop=True)
    df.attrs["summary"] = dict(adata.uns.get(UNS.gene_positions, {}))
    return df
