"""Tools: ``tm.tl`` (malignant calls, cell types, signatures, therapy survival)."""

from __future__ import annotations

from ._annotate import annotate
from ._clones import cnv_clones
from ._cnv import infer_cnv
from ._integrate import integrate, transfer_labels
from ._malignant import call_malignant

__all__ = ["annotate", "call_malignant", "cnv_clones", "infer_cnv", "integrate", "transfer_labels"]
