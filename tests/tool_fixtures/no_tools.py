"""A module with functions, none marked as a tool."""

from __future__ import annotations


def lookup_order(order_id: str) -> str:
    """Find an order."""
    return order_id
