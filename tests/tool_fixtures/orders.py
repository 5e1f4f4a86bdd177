"""Good tools: sync and async, a renamed one, and a dataclass defined after its user."""

from __future__ import annotations

from dataclasses import dataclass

import callcenter


@callcenter.tool
def lookup_order(order_id: str, include_items: bool = False) -> dict[str, object]:
    """Find an order by its number and tell its status.

    Args:
        order_id: The order number the caller reads out, like "A-1234".
        include_items: Whether to list the items too.
    """
    order: dict[str, object] = {"order_id": order_id, "status": "shipped"}
    if include_items:
        order["items"] = ["kettle"]
    return order


@callcenter.tool(name="open_ticket", timeout=2)
async def create_ticket(summary: str, address: Address | None = None) -> str:
    """Open a support ticket for the caller.

    :param summary: What went wrong, in one sentence.
    :param address: Where to send a replacement, if one is needed.
    """
    return f"ticket for {summary!r}"


@dataclass(frozen=True)
class Address:
    """A postal address.

    Attributes:
        street: The street and house number.
        city: The city.
    """

    street: str
    city: str


def helper() -> str:
    """Not a tool: not marked."""
    return "helper"
