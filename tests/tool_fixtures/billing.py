"""A second good module; it re-exports a tool of ``orders``, which is no duplicate."""

from __future__ import annotations

from typing import Literal

import callcenter
from tests.tool_fixtures.orders import lookup_order

__all__ = ["balance", "lookup_order"]


@callcenter.tool
def balance(account: str, currency: Literal["EUR", "USD"] = "EUR") -> float:
    """Tell the balance of an account.

    Args:
        account: The account number.
        currency: The currency to tell it in.
    """
    return 12.5
