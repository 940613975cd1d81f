"""Private numeric cores (array in, array out); the public tools wrap them."""

from __future__ import annotations
