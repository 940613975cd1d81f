"""Tools: ``tm.tl`` (malignant calls, cell types, signatures, therapy survival)."""

from __future__ import annotations

from ._annotate import annotate
from ._checkpoints import checkpoint_interactions
from ._clones import cnv_clones
from ._cnv import infer_cnv
from ._combination import combination_cover
from ._drug_screen import drug_screen
from ._heterogeneity import heterogeneity
from ._immunotherapy import immunotherapy_benefit
from ._integrate import integrate, transfer_labels
from ._malignant import call_malignant
from ._signatures import score_signatures
from ._stemness import stemness
from ._survival import therapy_survival
from ._therapy_sim import simulate_therapy

__all__ = [
    "annotate",
    "call_malignant",
    "checkpoint_interactions",
    "cnv_clones",
    "combination_cover",
    "drug_screen",
    "heterogeneity",
    "immunotherapy_benefit",
    "infer_cnv",
    "integrate",
    "score_signatures",
    "simulate_therapy",
    "stemness",
    "therapy_survival",
    "transfer_labels",
]
