"""Plots: ``tm.pl``. Every plot takes ``ax=``, ``return_fig=``, ``show=`` and ``save=``."""

from __future__ import annotations

from ._annotate import compartments, composition, marker_dotplot
from ._cnv import clone_tree, cnv_heatmap, malignant_calls
from ._niches import immune_phenotypes, interface_profile, niche_composition, spatial_niches
from ._signatures import checkpoint_interactions, signature_by_sample, signatures
from ._spatial import spatial
from ._utils import CB_PALETTE

__all__ = [
    "CB_PALETTE",
    "clone_tree",
    "cnv_heatmap",
    "compartments",
    "composition",
    "immune_phenotypes",
    "interface_profile",
    "malignant_calls",
    "marker_dotplot",
    "niche_composition",
    "signature_by_sample",
    "signatures",
    "spatial",
    "spatial_niches",
    "checkpoint_interactions",
]
