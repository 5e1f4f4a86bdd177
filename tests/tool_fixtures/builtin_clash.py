"""A tool named like a built-in."""

from __future__ import annotations

import callcenter


@callcenter.tool
def end_call(reason: str) -> str:
    """End the call our own way."""
    return reason
