"""The error tree of callcenter.

    CallcenterError
    ├── ConfigError          the config file is invalid (names file, key path and reason)
    ├── SipParseError        a SIP/tel URI or name-addr could not be parsed (also a ValueError)
    ├── SignatureError       a webhook failed verification (forged, stale or unsigned)
    ├── StoreError           the store cannot be reached or refused a write
    │   └── SchemaError      the store answers but is not migrated to the shipped revision
    ├── UnreachableError     a running emulator or controller that ``simulate`` drives does
    │                        not answer as one (or the emulator delivers elsewhere)
    └── CallApiError         a calls endpoint (accept/reject/refer/hangup) failed for good
        ├── CallGoneError    404: the call no longer exists (the caller hung up)
        └── CallConflictError 409: the call belongs to someone else or was already answered

Each error is raised by the layer that detects it and caught by the layer that must react
to it; data travels in attributes, never only in the message.
"""

from __future__ import annotations


class CallcenterError(Exception):
    """Root of every error callcenter raises on purpose."""


class ConfigError(CallcenterError):
    """The configuration is invalid.

    ``str()`` reads ``file: key.path: reason``, e.g.
    ``callcenter.toml: routes[2].escalation.target: no target named "desk"``.
    """

    def __init__(self, file: str, key: str, reason: str, line: int | None = None) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


class SipParseError(CallcenterError, ValueError):
    """A SIP header value could not be parsed as an address."""


class SignatureError(CallcenterError):
    """A webhook was not signed by a known secret, or its timestamp is outside the window."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class StoreError(CallcenterError):
    """The store could not be reached, or an operation on it failed."""


class SchemaError(StoreError):
    """The database answers, but its schema is not at the revision this code ships."""


class UnreachableError(CallcenterError):
    """A running emulator or controller given to ``simulate`` cannot be driven.

    ``str()`` reads ``the <what> at <url>: <reason>``, e.g. ``the emulator at
    http://127.0.0.1:8765: cannot connect ([Errno 111] Connection refused)``.
    """

    def __init__(self, what: str, url: str, reason: str) -> None:
        self.what = what
        self.url = url
        self.reason = reason
        super().__init__(f"the {what} at {url}: {reason}")


class CallApiError(CallcenterError):
    """A calls REST endpoint failed and retrying will not help (or the deadline passed)."""

    def __init__(self, verb: str, call_id: str, status: int | None, message: str) -> None:
        self.verb = verb
        self.call_id = call_id
        self.status = status
        super().__init__(
            f"{verb} {call_id} failed ({status if status else 'no answer'}): {message}"
        )


class CallGoneError(CallApiError):
    """The calls endpoint answered 404: the call is over (the caller hung up while ringing)."""


class CallConflictError(CallApiError):
    """The calls endpoint answered 409: the call was already answered, possibly by another owner."""
