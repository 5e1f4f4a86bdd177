"""A tool with a parameter that has no annotation."""

from __future__ import annotations

import callcenter


@callcenter.tool
def greet(name) -> str:
    """Greet someone."""
    return f"hello {name}"
