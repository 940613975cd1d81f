"""Tidy tables from results stored in an AnnData."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import MissingResultError
from .._keys import UNS, VAR
from .._validation import check_adata

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

__all__ = ["composition", "gene_positions"]


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


def composition(
    adata: AnnData, *, groupby: str = "cell_type_major", sample_key: str | None = None
) -> pd.DataFrame:
    """Cell counts and fractions of each label, per sample, as a tidy table.

    Parameters
    ----------
    adata
        Annotated data matrix, e.g. after :func:`tmeatlas.tl.annotate`.
    groupby
        Column of ``adata.obs`` with the labels (``"cell_type_major"``, ``"cell_type"``,
        ``"compartment"``, ``"cnv_clone"``, ...).
    sample_key
        Column with the sample (patient); ``None`` treats all cells as one sample ``"all"``.

    Returns
    -------
    DataFrame with columns ``sample``, ``label``, ``n_cells`` and ``fraction`` (of the
    sample's cells), one row per observed (sample, label) pair.
    """
    import pandas as pd

    from .._validation import check_obs_key

    check_adata(adata)
    hint = (
        "run `tm.tl.annotate(adata)` first."
        if groupby in ("cell_type_major", "cell_type", "compartment")
        else ""
    )
    check_obs_key(adata, groupby, what="groupby", hint=hint)
    check_obs_key(adata, sample_key, what="sample_key")
    samples = adata.obs[sample_key].astype(str) if sample_key else pd.Series("all", index=adata.obs_names)
    df = pd.DataFrame({"sample": samples.to_numpy(), "label": adata.obs[groupby].astype(str).to_numpy()})
    out = df.groupby(["sample", "label"], sort=True).size().rename("n_cells").reset_index()
    out["fraction"] = out["n_cells"] / out.groupby("sample")["n_cells"].transform("sum")
    return out
