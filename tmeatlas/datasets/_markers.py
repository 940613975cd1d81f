"""The shipped marker library as a tidy table: ``tm.datasets.markers``."""

from __future__ import annotations

import pandas as pd

__all__ = ["markers"]


def markers(*, level: str | None = None) -> pd.DataFrame:
    """The curated, cited cell-type marker library that :func:`tmeatlas.tl.annotate` uses.

    One row per (cell type, gene): ``cell_type``, ``cell_type_major`` (the fixed major
    vocabulary), ``compartment``, ``level`` (``"major"``: scored to choose the major type;
    ``"fine"``: scored within a major type), ``gene`` (HGNC symbol), ``direction`` (``"+"``
    expressed by the type, ``"-"`` must not be expressed), ``role`` (of a positive major-level
    marker: ``"defining"``, identifies the lineage on its own, or ``"supporting"``, shared with
    other lineages; a type none of whose defining markers is measured is never predicted),
    ``source`` (key of the primary
    publication), ``tissue`` (the organ of a tissue-restricted type: ``"brain"`` for the
    brain parenchyma and microglia, ``"liver"``, ``"lung"``, ``"skin"``, ``"breast"``,
    ``"prostate"``, ``"colon"``, ``"kidney"`` for the normal cells of those sites; empty for the
    cells of every tumour) and ``citation`` /
    ``doi`` of that publication. The library was written for
    this package from the marker genes the cited tumour atlases report for each population
    (T cells: Zheng et al. 2021; myeloid cells: Cheng et al. 2021; fibroblasts: Elyada et al.
    2019, Luo et al. 2022; brain parenchyma: Darmanis et al. 2015, Zhang et al. 2016; liver, lung, skin, breast,
    prostate, colon and kidney: the organ atlases named in ``tm.tl.annotate``; ...); every
    gene is a current GRCh38 HGNC symbol
    (``tmeatlas/_data/PROVENANCE.md``).

    Parameters
    ----------
    level
        ``"major"`` or ``"fine"`` for one level only; ``None`` for both.

    Returns
    -------
    A :class:`pandas.DataFrame`; pass an edited copy as ``markers=`` to
    :func:`tmeatlas.tl.annotate` to use your own.
    """
    from .._resources import data_path
    from .._validation import check_one_of

    check_one_of("level", level, [None, "major", "fine"])
    df = library()
    with data_path("markers_sources.tsv").open("rb") as fh:
        src = pd.read_csv(fh, sep="\t", dtype=str).set_index("source")
    first = df["source"].str.split(";").str[0]
    df["citation"] = first.map(src["citation"]).to_numpy()
    df["doi"] = df["source"].map(lambda s: ";".join(src.loc[k, "doi"] for k in s.split(";")))
    if level is not None:
        df = df[df["level"] == level].reset_index(drop=True)
    return df


def library() -> pd.DataFrame:
    """The shipped marker library (``markers_human.tsv``) as stored: one row per type, level and gene."""
    from .._resources import data_path

    with data_path("markers_human.tsv").open("rb") as fh:
        return pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)
