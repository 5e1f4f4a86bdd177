"""The emulator's log lines: constant event names, values as fields, a call's call_id bound."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from openai import AsyncOpenAI

from callcenter.emulator import Emulator
from callcenter.observability.logs import CallContextFilter

from .helpers import answered, read_until

ABOUT_A_CALL = ("call ringing", "calls api", "call accepted", "sideband attached", "call over")


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records
        self.addFilter(CallContextFilter())  # as configure_logging's handler does

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """The records the emulator's loggers emit during the test, as a handler sees them."""
    found: list[logging.LogRecord] = []
    handler = _Collect(found)
    logger = logging.getLogger("callcenter.emulator")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield found
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_log_lines_about_a_call_carry_its_call_id(
    emulator: Emulator, client: AsyncOpenAI, records: list[logging.LogRecord]
) -> None:
    """Ringing, the calls API, the sideband and the end each log a fixed name with call_id bound."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await read_until(connection, "session.created")
        await client.realtime.calls.hangup(call.call_id)
    await emulator.wait_for(lambda: any(r.getMessage() == "sideband closed" for r in records))
    by_name = {record.getMessage(): record for record in records}
    for name in (*ABOUT_A_CALL, "sideband closed"):
        assert getattr(by_name[name], "call_id", None) == call.call_id, name
    assert all(call.call_id not in record.getMessage() for record in records)
    assert (by_name["call over"].state, by_name["call over"].by) == ("ended", "controller")
    assert by_name["sideband attached"].attach == 1
