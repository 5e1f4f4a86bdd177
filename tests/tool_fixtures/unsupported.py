"""A tool with a parameter type that pydantic cannot check from JSON."""

from __future__ import annotations

import callcenter


class CrmClient:
    """A client object: no model can send one."""


@callcenter.tool
def book(crm: CrmClient) -> str:
    """Book an appointment."""
    return type(crm).__name__
