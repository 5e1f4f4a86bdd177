"""A tool with a parameter type that has no JSON Schema."""

from __future__ import annotations

from datetime import datetime

import callcenter


@callcenter.tool
def book(when: datetime) -> str:
    """Book an appointment."""
    return when.isoformat()
