"""A tool taking a pydantic model, with a nested model, defined after the tool."""

from __future__ import annotations

import pydantic

import callcenter


@callcenter.tool
def update_customer(customer: Customer, notify: bool = False) -> dict[str, object]:
    """Change what the shop knows about a customer.

    Args:
        customer: The customer as the caller describes them.
        notify: Whether to email them a confirmation.
    """
    return {"type": type(customer).__name__, "customer": customer, "notify": notify}


class Phone(pydantic.BaseModel):
    """A phone number."""

    number: str = pydantic.Field(pattern=r"^\+[0-9]{6,15}$", description="In E.164 form.")


class Customer(pydantic.BaseModel):
    """A customer of the shop.

    Attributes:
        name: Their full name.
        phones: Where to reach them.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    name: str
    phones: list[Phone] = []
