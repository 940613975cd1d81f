"""Colour-blind-safe palettes shared by the tools and the plots (lowest layer: no imports from tmeatlas).

The tools store colours scanpy-style (``uns[f"{key}_colors"]``) when they write a categorical
result; :mod:`tmeatlas.pl` draws with the same colours (``tm.pl.CB_PALETTE``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CB_PALETTE",
    "COMPARTMENT_COLORS",
    "MAJOR_COLORS",
    "categorical_palette",
    "compartment_palette",
    "major_palette",
]

#: Colour-blind-safe categorical colours: Okabe & Ito (2008) first, then Paul Tol's "muted"
#: and "light" schemes (Tol 2021, SRON/EPS/TN/09-002), which stay distinguishable under
#: the common colour-vision deficiencies.
CB_PALETTE = [
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000",
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
    "#AA4499", "#77AADD", "#EE8866", "#EEDD88", "#FFAABB", "#99DDFF", "#BBCC33", "#AAAA00",
    "#DDDDDD",
]  # fmt: skip

#: fixed colours of the compartments (Okabe-Ito), the same in every plot
COMPARTMENT_COLORS = {
    "malignant": "#D55E00",
    "immune": "#0072B2",
    "stromal": "#009E73",
    "epithelial": "#CC79A7",
    "parenchyma": "#DDCC77",
    "unassigned": "#BBBBBB",
}
#: fixed colours of the major cell types: Okabe-Ito and Paul Tol's muted scheme, immune types
#: in blues/purples, stroma in greens, malignant vermillion, brain parenchyma in sand, pear, orange and rose (Tol's
#: muted and light schemes), melanocytes in Tol's dark brown, as in the compartments
MAJOR_COLORS = {
    "Malignant": "#D55E00",
    "T cell": "#0072B2",
    "NK cell": "#56B4E9",
    "B cell": "#332288",
    "Plasma cell": "#AA4499",
    "Myeloid": "#E69F00",
    "Mast cell": "#882255",
    "Fibroblast": "#009E73",
    "Endothelial": "#117733",
    "Pericyte": "#999933",
    "Epithelial": "#CC79A7",
    "Oligodendrocyte": "#DDCC77",
    "OPC": "#BBCC33",
    "Astrocyte": "#EE8866",
    "Neuron": "#CC6677",
    "Melanocyte": "#661100",
    "Unassigned": "#BBBBBB",
}


def categorical_palette(categories: Sequence[str], adata=None, key: str | None = None) -> dict[str, str]:
    """Colours for ``categories``: ``adata.uns[f"{key}_colors"]`` when present (scanpy style), else :data:`CB_PALETTE`."""
    cats = [str(c) for c in categories]
    if adata is not None and key is not None:
        stored = adata.uns.get(f"{key}_colors")
        if stored is not None and len(stored) >= len(cats):
            return dict(zip(cats, list(stored)))
    return {c: CB_PALETTE[i % len(CB_PALETTE)] for i, c in enumerate(cats)}


def compartment_palette() -> dict[str, str]:
    """Colour of each compartment (fixed across all plots)."""
    return dict(COMPARTMENT_COLORS)


def major_palette() -> dict[str, str]:
    """Colour of each major cell type (fixed across all plots; unknown types get grey)."""
    from collections import defaultdict

    return defaultdict(lambda: "#777777", MAJOR_COLORS)
