"""The tools of the example config: Acme's order desk, with a few orders kept in memory.

A company writes its own module like this one and lists it in ``tool_modules``; each
function marked ``@callcenter.tool`` becomes a tool the routes may name. Here the orders
live in a dict so that the demo and the emulator have something to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from callcenter.tools.decorator import tool

__all__ = ["lookup_order"]


@dataclass(frozen=True)
class Order:
    """What the order desk knows about one order."""

    order_id: str
    status: str
    items: tuple[str, ...]
    delivery: date | None = None


_ORDERS = {
    order.order_id: order
    for order in (
        Order("A-1042", "shipped", ("espresso machine",), date(2026, 11, 25)),
        Order("A-1043", "processing", ("milk frother", "descaler")),
        Order("A-1044", "delivered", ("grinder",), date(2026, 11, 18)),
    )
}


@tool(timeout=5)
def lookup_order(order_id: str, include_items: bool = False) -> dict[str, object]:
    """Find an order by its number and tell its status and delivery date.

    Args:
        order_id: The order number the caller reads out, like "A-1042".
        include_items: Whether to list what the order contains.
    """
    order = _ORDERS.get(order_id.strip().upper())
    if order is None:
        return {"found": False, "order_id": order_id, "hint": "ask the caller to spell it"}
    found: dict[str, object] = {"found": True, "order_id": order.order_id, "status": order.status}
    if order.delivery is not None:
        found["delivery"] = order.delivery.isoformat()
    if include_items:
        found["items"] = list(order.items)
    return found
