"""Tools: ``tm.tl`` (malignant calls, cell types, signatures, therapy survival).

The capability issues add their tools here; nothing is exported until it exists.
"""

from __future__ import annotations

__all__: list[str] = []
