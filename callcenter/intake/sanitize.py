"""Checks on the untrusted parts of a webhook, pure and bounded, done before they travel inward.

A verified signature proves that OpenAI sent a delivery, not that its content is sane: the
``sip_headers`` are whatever the caller's carrier put in the INVITE, and a bug or an attacker
holding a leaked secret can send anything. So every value is checked here before the store,
the SDK's path building or the router sees it:

- the JSON nesting depth, counted without recursion (``json`` itself raises RecursionError);
- the ``call_id``, which becomes a path segment of the calls REST API and a primary key;
- the event's id and type, which are stored and logged;
- the SIP headers, which are cleaned rather than refused (a carrier's odd header must not
  cost the caller the call): control characters and lone surrogates, which neither
  PostgreSQL text nor UTF-8 can carry, become U+FFFD, a value is cut at
  :data:`MAX_HEADER_CHARS` and the list at :data:`MAX_HEADERS`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

__all__ = [
    "MAX_HEADERS",
    "MAX_HEADER_CHARS",
    "MAX_JSON_DEPTH",
    "clean_sip_headers",
    "json_too_deep",
    "media_security",
    "valid_call_id",
    "valid_event_id",
    "valid_event_type",
]

# A realtime.call.incoming event nests 4 deep ({data: {sip_headers: [{...}]}}).
MAX_JSON_DEPTH = 64
# Carriers send a few dozen headers of at most a few KiB (an Identity header is the longest).
MAX_HEADERS = 256
MAX_HEADER_CHARS = 8192

# OpenAI's call ids are "rtc_" and letters, digits or underscores (rtc_479a2756…, rtc_u1_…);
# "-" is let through as well. Never a dot or a slash: the id is a path segment.
_CALL_ID_RE = re.compile(r"rtc_[A-Za-z0-9_-]{1,124}")
_EVENT_ID_RE = re.compile(r"[\x21-\x7e]{1,256}")
_EVENT_TYPE_RE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
_MAX_EVENT_TYPE_CHARS = 100
_MEDIA_SECURITY_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")

# An escape (a backslash and the byte after it), a JSON string once escapes are gone, and the
# bytes that are neither brackets nor braces. Two passes, each linear (one regex for strings
# with escapes would retry from every quote of an unterminated string: quadratic).
_ESCAPE_RE = re.compile(rb"\\.", re.DOTALL)
_STRING_RE = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}

# C0 controls but the tab, DEL, and lone surrogates (from "\ud800" escapes in the JSON).
_UNSAFE_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects deeper than ``limit``.

    Brackets inside strings do not count. Linear in the body and recursion-free; on a body
    that is not JSON the answer is meaningless but the parser refuses that body anyway.
    """
    unescaped = _ESCAPE_RE.sub(b"", body)
    brackets = _STRING_RE.sub(b"", unescaped).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    steps = (_DEPTH_STEP[byte] for byte in brackets)
    return max(itertools.accumulate(steps), default=0) > limit


def valid_call_id(call_id: str) -> bool:
    """Whether ``call_id`` has the shape of an OpenAI call id (``rtc_`` and a safe tail)."""
    return _CALL_ID_RE.fullmatch(call_id) is not None


def valid_event_id(event_id: str) -> bool:
    """Whether ``event_id`` is 1–256 visible ASCII characters (OpenAI's are ``evt_…``)."""
    return _EVENT_ID_RE.fullmatch(event_id) is not None


def valid_event_type(event_type: object) -> bool:
    """Whether ``event_type`` is a dotted lower-case name such as ``batch.completed``."""
    return (
        isinstance(event_type, str)
        and len(event_type) <= _MAX_EVENT_TYPE_CHARS
        and _EVENT_TYPE_RE.fullmatch(event_type) is not None
    )


def media_security(value: str | None) -> str | None:
    """``sip_media_security`` kept when it is a short token (``srtp``, ``rtp``…), else unknown."""
    if value is None or _MEDIA_SECURITY_RE.fullmatch(value) is None:
        return None
    return value


def clean_sip_headers(
    headers: Iterable[tuple[str, str]],
) -> tuple[list[tuple[str, str]], int]:
    """The headers made safe to store and route on, and how many of them had to change.

    Line breaks around a value are dropped (a value read with its CRLF); every other control
    character, and any lone surrogate, becomes U+FFFD; values are cut at
    :data:`MAX_HEADER_CHARS`; headers past :data:`MAX_HEADERS` are dropped (and counted).
    """
    cleaned: list[tuple[str, str]] = []
    changed = 0
    for index, (name, value) in enumerate(headers):
        if index >= MAX_HEADERS:
            changed += 1
            continue
        pair = (_clean_text(name), _clean_text(value))
        changed += pair != (name, value)
        cleaned.append(pair)
    return cleaned, changed


def _clean_text(text: str) -> str:
    return _UNSAFE_RE.sub(REPLACEMENT, text.strip("\r\n")[:MAX_HEADER_CHARS])
