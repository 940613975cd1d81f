"""Tidy tables of therapy survival and combination covers: ``tm.get.therapy_survival``,
``tm.get.combination_cover``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .._errors import InvalidParameterError, MissingResultError
from .._keys import UNS
from .._store import read_result
from .._validation import check_adata

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["combination_cover", "immunotherapy_benefit", "therapy_survival"]

#: default keys (``tmeatlas/_keys.py``)
UNS_THERAPY_SURVIVAL = UNS.therapy_survival
UNS_COMBINATION_COVER = UNS.combination_cover


def _entry(adata: AnnData, key: str, tool: str) -> dict:
    check_adata(adata)
    if not isinstance(key, str):
        raise InvalidParameterError(f"key must be a string, got {key!r}.")
    return read_result(adata, key, tool)


def therapy_survival(adata: AnnData, *, key: str = UNS_THERAPY_SURVIVAL) -> pd.DataFrame:
    """The per-subpopulation survival table of :func:`tmeatlas.tl.therapy_survival`, tidy.

    One row per therapy, sample and group: ``n_cells``, ``fraction_of_sample``,
    ``surviving_fraction`` (mean predicted per-cell survival), ``ci_low``/``ci_high``
    (95% interval of the fraction of its cells that survive), ``call`` ("survives", "responds"
    or "undetermined"), ``survives`` (``call == "survives"``) and ``reasons`` (the call and why,
    then the evidence, ranked, ``"; "``-joined), joined with the therapy's ``drug_class``, ``model`` and
    ``toxicity``. Method and citations: :func:`tmeatlas.tl.therapy_survival`.

    Parameters
    ----------
    adata
        Annotated data matrix with the result of :func:`tmeatlas.tl.therapy_survival`.
    key
        Its ``adata.uns`` key.

    Returns
    -------
    A new :class:`pandas.DataFrame`, sorted by therapy, sample and descending surviving fraction.
    """
    res = _entry(adata, key, "therapy_survival")
    if "table" not in res:
        raise MissingResultError(f"adata.uns[{key!r}] has no 'table'; rerun `tm.tl.therapy_survival`.")
    df = pd.DataFrame(res["table"]).copy()
    df["survives"] = df["survives"].astype(str).isin(["True", "true", "1"])
    for c in ("n_cells",):
        df[c] = pd.to_numeric(df[c]).astype(int)
    for c in ("fraction_of_sample", "surviving_fraction", "ci_low", "ci_high"):
        df[c] = pd.to_numeric(df[c]).astype(float)
    if "therapies" in res:
        info = pd.DataFrame(res["therapies"])[["therapy", "drug_class", "model", "toxicity"]]
        df = df.merge(info, on="therapy", how="left")
    df = df.sort_values(
        ["therapy", "sample", "surviving_fraction"], ascending=[True, True, False], kind="stable"
    )
    return df.reset_index(drop=True)


def combination_cover(adata: AnnData, *, key: str = UNS_COMBINATION_COVER) -> pd.DataFrame:
    """The ranked combinations of :func:`tmeatlas.tl.combination_cover` with their coverage, tidy.

    One row per solution and subpopulation: ``rank``, ``therapies`` (``" + "``-joined),
    ``n_drugs``, ``toxicity``, ``objective``, ``coverage`` (fraction of subpopulations covered),
    then ``sample``, ``group``, ``fraction_of_sample``, ``killed_by`` (the chosen therapies that
    do not leave it surviving) and ``covered``. Method: :func:`tmeatlas.tl.combination_cover`
    (set-cover integer program).

    Parameters
    ----------
    adata
        Annotated data matrix with the result of :func:`tmeatlas.tl.combination_cover`.
    key
        Its ``adata.uns`` key.

    Returns
    -------
    A new :class:`pandas.DataFrame` (empty, with the columns, when no combination was found).
    """
    res = _entry(adata, key, "combination_cover")
    if "solutions" not in res or "coverage" not in res:
        raise MissingResultError(f"adata.uns[{key!r}] has no 'solutions'; rerun `tm.tl.combination_cover`.")
    sol = pd.DataFrame(res["solutions"]).copy()
    cov = pd.DataFrame(res["coverage"]).copy()
    cols = ["rank", "therapies", "n_drugs", "toxicity", "objective", "coverage"]
    if sol.empty or cov.empty:
        return pd.DataFrame(columns=[*cols, "sample", "group", "fraction_of_sample", "killed_by", "covered"])
    sol["rank"] = pd.to_numeric(sol["rank"]).astype(int)
    cov["rank"] = pd.to_numeric(cov["rank"]).astype(int)
    cov["covered"] = cov["covered"].astype(str).isin(["True", "true", "1"])
    df = sol[cols].merge(cov, on="rank", how="left")
    return df.sort_values(["rank", "sample", "group"], kind="stable").reset_index(drop=True)


def immunotherapy_benefit(
    adata: AnnData, *, key: str = UNS.immunotherapy_benefit, components: bool = False
) -> pd.DataFrame:
    """The per-sample immunotherapy benefit of :func:`tmeatlas.tl.immunotherapy_benefit`, tidy.

    One row per sample: ``setting`` (whole tumour / immune cells only), ``n_cells``, ``benefit``
    (relative to the cohort, 0 = its average), ``ci_low``/``ci_high`` (bootstrap over cells),
    ``call`` ("above cohort", "below cohort", "undetermined"), ``n_components`` and the counted
    ``components`` and ``not_counted`` ones with their reasons, as text. With
    ``components=True``: one row per sample and component (value, z, published direction,
    weight, contribution, status, reason, the population it is measured in and its size, the
    setting it was validated in, source). Method: :func:`tmeatlas.tl.immunotherapy_benefit`.

    Parameters
    ----------
    adata
        Annotated data matrix with the result of :func:`tmeatlas.tl.immunotherapy_benefit` (or of
        :func:`tmeatlas.tl.therapy_survival`, whose ``immunotherapy`` entry is the same table).
    key
        Its ``adata.uns`` key (``"therapy_survival"`` reads the benefit that therapy_survival used).
    components
        Return the per-component table instead of the per-sample one.

    Returns
    -------
    A new :class:`pandas.DataFrame`.
    """
    if not isinstance(components, bool):
        raise InvalidParameterError(f"components must be True or False, got {components!r}.")
    res = _entry(adata, key, "immunotherapy_benefit")
    if "immunotherapy" in res:  # the benefit that therapy_survival used
        res = {"table": res["immunotherapy"], "components": res.get("immunotherapy_components")}
    part = "components" if components else "table"
    if not isinstance(res, dict) or part not in res:
        raise MissingResultError(
            f"adata.uns[{key!r}] has no immunotherapy benefit '{part}'; run `tm.tl.immunotherapy_benefit(adata)`."
        )
    df = pd.DataFrame(res[part]).copy()
    for c in ("n_cells", "n_components", "n_population", "direction"):
        if c in df:
            df[c] = pd.to_numeric(df[c]).astype(int)
    return df.reset_index(drop=True)
