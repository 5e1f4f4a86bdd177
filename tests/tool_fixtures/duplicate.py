"""Another ``lookup_order`` than the one in ``orders``."""

from __future__ import annotations

import callcenter


@callcenter.tool
def lookup_order(order_id: str) -> str:
    """Find an order (a second time)."""
    return order_id
