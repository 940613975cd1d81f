"""The one way a benchmark script writes its results file (imported by the scripts run from the project root)."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def write_results(path: Path, benchmark: str, settings: dict, body: dict, *, show: str = "summary") -> None:
    """Write ``{"benchmark", "settings", "machine", **body}`` as indented JSON to ``path``; print ``body[show]``."""
    out = {
        "benchmark": benchmark,
        "settings": settings,
        "machine": {"date": datetime.now(UTC).isoformat(timespec="seconds"), "platform": platform.platform()},
        **body,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(body.get(show), indent=2))
