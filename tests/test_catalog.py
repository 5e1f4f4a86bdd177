"""The model catalog: names from the SDK's type, shutdown dates from our table, kept in step."""

from __future__ import annotations

import inspect
import re
from datetime import date

from openai.types.realtime import call_accept_params

from callcenter.config.catalog import ANNOUNCED_SHUTDOWNS, sdk_model_catalog

_BULLET = re.compile(r'((?:"[^"]+"\s*,?\s*)+):\s*Announced shutdown date:\s*(\d{4}-\d{2}-\d{2})')


def sdk_docstring_shutdowns() -> dict[str, date]:
    """The shutdowns the installed SDK's source announces in CallAcceptParams.model's docstring."""
    source = " ".join(inspect.getsource(call_accept_params).split())
    found: dict[str, date] = {}
    for names, day in _BULLET.findall(source):
        for name in re.findall(r'"([^"]+)"', names):
            found[name] = date.fromisoformat(day)
    return found


def test_every_shutdown_the_sdk_announces_is_in_our_table() -> None:
    """An SDK upgrade that announces a new shutdown fails here until the table has it."""
    announced = sdk_docstring_shutdowns()
    assert announced, "the SDK's docstring changed shape: read call_accept_params.py by hand"
    missing = {name: day for name, day in announced.items() if ANNOUNCED_SHUTDOWNS.get(name) != day}
    assert not missing, f"add to callcenter.config.catalog.ANNOUNCED_SHUTDOWNS: {missing}"


def test_catalog_names_come_from_the_sdk_type() -> None:
    """The known names are the Literal values of CallAcceptParams.model."""
    catalog = sdk_model_catalog()
    assert catalog is not None
    assert {"gpt-realtime-2", "gpt-realtime", "gpt-4o-realtime-preview-2024-10-01"} <= catalog.known
    assert catalog.shutdowns["gpt-realtime"] == date(2027, 1, 20)
    assert "gpt-realtime-2" not in catalog.shutdowns
