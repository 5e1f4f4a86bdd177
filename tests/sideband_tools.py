"""Company tools for the sideband tests: fine, failing, timing out, slow, and held open."""

from __future__ import annotations

import asyncio
import threading

import callcenter

RELEASE_SLOW = threading.Event()  # lets slow_lookup return
HELD: list[str] = []  # order ids hold_line started for
CANCELLED: list[str] = []  # order ids whose hold_line was cancelled


@callcenter.tool
def lookup_order(order_id: str) -> dict[str, object]:
    """Find an order by its number.

    Args:
        order_id: The order number, like "A-1042".
    """
    return {"order_id": order_id, "status": "shipped"}


@callcenter.tool
def flaky_lookup(order_id: str) -> dict[str, object]:
    """Find an order in a system that is down.

    Args:
        order_id: The order number.
    """
    raise ConnectionError("the order system is down")


@callcenter.tool(timeout=0.2)
async def stuck_lookup(order_id: str) -> dict[str, object]:
    """Find an order in a system that never answers.

    Args:
        order_id: The order number.
    """
    await asyncio.Event().wait()
    return {}


@callcenter.tool
def slow_lookup(order_id: str) -> dict[str, object]:
    """Find an order in a slow system.

    Args:
        order_id: The order number.
    """
    RELEASE_SLOW.wait(10)
    return {"order_id": order_id, "status": "delayed"}


@callcenter.tool(timeout=30)
async def hold_line(order_id: str) -> dict[str, object]:
    """Keep working on an order until the call ends.

    Args:
        order_id: The order number.
    """
    HELD.append(order_id)
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        CANCELLED.append(order_id)
        raise
    return {}
