"""The no-op tool of ``bench/sideband.py``, as a company would write one."""

from __future__ import annotations

import callcenter


@callcenter.tool
def noop() -> dict[str, object]:
    """Do nothing and answer at once."""
    return {}
