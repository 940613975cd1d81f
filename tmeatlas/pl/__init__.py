"""Plots: ``tm.pl``. Every plot takes ``ax=``, ``return_fig=``, ``show=`` and ``save=``; ``set_style`` sets the figure preset."""

from __future__ import annotations

from ._annotate import compartments, composition, marker_dotplot
from ._cnv import clone_tree, cnv_heatmap, malignant_calls
from ._heterogeneity import clone_mixing, clone_states, heterogeneity
from ._niches import immune_phenotypes, interface_profile, niche_composition, spatial_niches
from ._signatures import checkpoint_interactions, signature_by_sample, signatures
from ._spatial import spatial
from ._style import set_style
from ._therapy import combination_cover, survival_reasons, therapy_survival
from ._therapy_sim import therapy_simulation
from ._utils import CB_PALETTE

__all__ = [
    "CB_PALETTE",
    "clone_mixing",
    "clone_states",
    "clone_tree",
    "cnv_heatmap",
    "combination_cover",
    "compartments",
    "composition",
    "heterogeneity",
    "immune_phenotypes",
    "interface_profile",
    "malignant_calls",
    "marker_dotplot",
    "niche_composition",
    "set_style",
    "signature_by_sample",
    "signatures",
    "spatial",
    "spatial_niches",
    "survival_reasons",
    "therapy_simulation",
    "therapy_survival",
    "checkpoint_interactions",
]
