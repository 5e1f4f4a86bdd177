"""A tool taking ``**kwargs``."""

from __future__ import annotations

import callcenter


@callcenter.tool
def anything(**fields: str) -> str:
    """Take any fields."""
    return ",".join(fields)
