"""Logging set-up: JSON lines in production, a readable format on a terminal.

A log line is an event name and its fields: ``logger.info("tool done", extra={"tool": name,
"ms": ms})``. :class:`JsonFormatter` writes every field as a key of the JSON object;
:class:`TextFormatter` appends them as ``key=value``. The ``call_id`` of the call being handled
is bound once per unit of work with :func:`bind_call` (a context variable, so it follows
threads' and asyncio tasks' own contexts) and added to every record by
:class:`CallContextFilter`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

# What every LogRecord carries; anything else on a record is a field passed with ``extra=``.
_RECORD_ATTRIBUTES: frozenset[str] = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime", "call_id"}
)


def fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields given to the log call with ``extra=``, in the order given."""
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES}


_current_call: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "callcenter_call_id", default=None
)


@contextlib.contextmanager
def bind_call(call_id: str) -> Iterator[None]:
    """Attach ``call_id`` to every log record emitted inside the block."""
    token = _current_call.set(call_id)
    try:
        yield
    finally:
        _current_call.reset(token)


def set_call(call_id: str) -> None:
    """Bind ``call_id`` for the rest of the current context (an asyncio task's, say)."""
    _current_call.set(call_id)


class CallContextFilter(logging.Filter):
    """Adds ``record.call_id`` from the bound call, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_id"):
            record.call_id = _current_call.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, call_id and exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        call_id = getattr(record, "call_id", None)
        if call_id:
            entry["call_id"] = call_id
        for key, value in fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level logger: message key=value … [call_id=…]`` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = fields(record)
        if extra:
            head, newline, trace = text.partition("\n")
            pairs = " ".join(f"{key}={value}" for key, value in extra.items())
            text = f"{head} {pairs}{newline}{trace}"
        call_id = getattr(record, "call_id", None)
        if call_id and f"call_id={call_id}" not in text:
            text += f" [call_id={call_id}]"
        return text


def configure_logging(level: str = "INFO", json_lines: bool | None = None) -> None:
    """Route the ``callcenter`` loggers to stderr; JSON unless stderr is a terminal."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(CallContextFilter())
    root = logging.getLogger("callcenter")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
