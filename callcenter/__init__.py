"""callcenter: answer phone lines with OpenAI Realtime voice models over SIP."""

from __future__ import annotations

from callcenter.errors import (
    CallApiError,
    CallcenterError,
    CallConflictError,
    CallGoneError,
    ConfigError,
    SignatureError,
    SipParseError,
    StoreError,
)
from callcenter.tools.decorator import tool

__all__ = [
    "CallApiError",
    "CallConflictError",
    "CallGoneError",
    "CallcenterError",
    "ConfigError",
    "SignatureError",
    "SipParseError",
    "StoreError",
    "tool",
]
