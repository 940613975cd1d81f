"""Tidy table of a drug screen: ``tm.get.drug_screen``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .._errors import MissingResultError
from .._keys import UNS
from ._therapy import _entry

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["drug_screen"]

#: default key (``tmeatlas/_keys.py``)
UNS_DRUG_SCREEN = UNS.drug_screen


def drug_screen(adata: AnnData, *, key: str = UNS_DRUG_SCREEN) -> pd.DataFrame:
    """The drug x subpopulation table of :func:`tmeatlas.tl.drug_screen`, tidy and ranked.

    One row per drug (``therapy``), sample and group: ``n_cells``, ``fraction_of_sample``,
    ``n_genes`` (measured genes of the drug), ``score`` (weighted mean standardised expression of
    its targets against the normal compartment, or of its signature's up minus down genes against
    the average malignant cell), ``effect`` (mean Cohen's d of the drug's targets against the
    normal compartment, or Cohen's d of a signature's per-cell score against the other malignant
    cells), ``pval`` and
    ``padj`` (the self-contained test that decides the call; Benjamini-Hochberg within the
    subpopulation), ``pval_random_genes`` and ``padj_random_genes`` (against random gene sets of
    the same expression: does the drug stand out), ``toxicity`` (activity in the normal
    compartment), ``rank`` (within the subpopulation, by score minus the toxicity penalty; missing
    for drugs not scored), ``call`` (``responds`` / ``survives`` / ``undetermined``), ``survives``
    and ``reasons``, joined with the drug's ``kind`` (``targets`` or ``signature``). Method and
    citations: :func:`tmeatlas.tl.drug_screen`.

    Parameters
    ----------
    adata
        Annotated data matrix with the result of :func:`tmeatlas.tl.drug_screen`.
    key
        Its ``adata.uns`` key.

    Returns
    -------
    A new :class:`pandas.DataFrame`, sorted by sample, group and rank (drugs not scored last).
    """
    res = _entry(adata, key, "drug_screen")
    if "table" not in res:
        raise MissingResultError(f"adata.uns[{key!r}] has no 'table'; rerun `tm.tl.drug_screen`.")
    df = pd.DataFrame(res["table"]).copy()
    df["survives"] = df["survives"].astype(str).isin(["True", "true", "1"])
    for c in ("n_cells", "n_genes"):
        df[c] = pd.to_numeric(df[c]).astype(int)
    for c in ("fraction_of_sample", "score", "effect", "pval", "padj", "pval_random_genes", "padj_random_genes",
              "toxicity"):  # fmt: skip
        if c in df.columns:  # screens written before the effect / random-gene columns
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["rank"] = pd.to_numeric(df["rank"], errors="coerce").round().astype("Int64")
    if "therapies" in res:
        kinds = pd.DataFrame(res["therapies"])[["therapy", "kind"]]
        df = df.merge(kinds, on="therapy", how="left")
    df = df.sort_values(["sample", "group", "rank", "therapy"], na_position="last", kind="stable")
    return df.reset_index(drop=True)
