"""Safe names: sample and therapy names as file names and ``uns`` keys.

A sample may be called anything (``..``, ``A/1``, 300 characters, ``CON``); its figures, its report
page and its ``uns`` keys need a name that is path-safe, short and unique. The report always shows
the original name; the safe name only addresses files and keys.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["MAX_NAME_LENGTH", "safe_name", "safe_names"]

#: longest safe name (file systems allow 255 bytes; figures append a suffix to it)
MAX_NAME_LENGTH = 64
#: names that Windows reserves for devices, in any case and with any extension
_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _digest(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()[:6]


def safe_name(value: object) -> str:
    """A path-safe name for ``value``: itself when it is already safe, otherwise a cleaned prefix and
    six hexadecimal digits of its SHA-1, so that two different values never share a name.

    Safe means: only letters, digits, ``_``, ``.`` and ``-``; not starting with ``.`` or ``-``; not a
    device name of Windows; at most :data:`MAX_NAME_LENGTH` characters. Known answers:
    ``safe_name("P1") == "P1"``; ``safe_name("A/1")`` and ``safe_name("A 1")`` differ.
    """
    text = str(value)
    clean = _UNSAFE.sub("_", text).lstrip(".-")
    stem = clean.split(".")[0].lower()
    if clean == text and clean and len(clean) <= MAX_NAME_LENGTH and stem not in _RESERVED:
        return clean
    prefix = clean[: MAX_NAME_LENGTH - 7].rstrip("._-") or "sample"
    return f"{prefix}-{_digest(text)}"


def safe_names(values: Iterable[object], *, reserved: Iterable[str] = ()) -> dict[str, str]:
    """``{str(value): safe name}`` for distinct values, unique even on case-insensitive file systems.

    Values whose safe names differ only in case (``"P1"`` and ``"p1"``) both get the digest suffix,
    whatever their order; so does a value whose name is one of ``reserved`` (e.g. ``"index"`` next
    to the cohort's ``index.html``).
    """
    names = {str(v): safe_name(v) for v in dict.fromkeys(str(v) for v in values)}
    taken = {r.lower() for r in reserved}
    folded: dict[str, int] = {}
    for n in names.values():
        folded[n.lower()] = folded.get(n.lower(), 0) + 1
    for v, n in names.items():
        clash = folded[n.lower()] > 1 or n.lower() in taken
        if clash and not n.endswith(f"-{_digest(v)}"):
            names[v] = f"{n[: MAX_NAME_LENGTH - 7]}-{_digest(v)}"
    return names
