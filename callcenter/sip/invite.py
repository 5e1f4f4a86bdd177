"""SIP addresses, numbers and headers: parsing of the untrusted values an INVITE carries.

Pure functions and frozen values, no I/O. The grammar is RFC 3261 §25.1 (``sip:``/``sips:``)
and RFC 3966 (``tel:``), read strictly enough to reject garbage and leniently enough for
what carriers really send. Everything that fails raises :class:`SipParseError`; callers that
must not fail (webhook intake) use :meth:`IncomingCall.from_sip_headers`, which never raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from callcenter.errors import SipParseError
from callcenter.sip.uri import (
    Params,
    SipUri,
    add_uri_header,
    is_transfer_uri,
    parse_uri,
    quote_for_error,
)

__all__ = [
    "IncomingCall",
    "SipAddress",
    "Params",
    "SipHeaders",
    "SipParseError",
    "SipUri",
    "add_uri_header",
    "is_transfer_uri",
    "normalise_number",
    "parse_address",
    "parse_uri",
]

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\[\]:]+")
_HEADER_PARAM_RE = re.compile(
    r'[ \t]*;[ \t]*([^;=\s"]*)[ \t]*(?:=[ \t]*("(?:[^"\\]|\\.)*"|[^;\s"]*))?[ \t]*', re.DOTALL
)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

_VISUAL_SEPARATORS = str.maketrans("", "", "-.() \t")
_DIALLABLE_RE = re.compile(r"\+?[0-9*#]+")

# Compact header names of RFC 3261 §7.3.3 and later RFCs, mapped to their full (lower) names.
_COMPACT_NAMES = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}


def normalise_number(s: str) -> str:
    """Strip visual separators from a phone number, keeping a leading ``+``.

    ``"+1 (415) 555-0123"`` becomes ``"+14155550123"``. A value that is not a number once
    stripped (``"alice"``, ``"Anonymous"``) is returned lower-cased and otherwise unchanged.
    """
    stripped = s.translate(_VISUAL_SEPARATORS)
    if _DIALLABLE_RE.fullmatch(stripped):
        return stripped
    return s.strip().lower()


@dataclass(frozen=True, slots=True)
class SipAddress:
    """A From/To/P-Asserted-Identity style address: display name, URI and header parameters.

    ``user`` is unescaped (for ``tel:`` it is the number as written); ``uri`` is the URI as
    written, without the header parameters. Header parameter values are kept as written
    (a quoted value keeps its quotes).
    """

    display_name: str | None
    scheme: str
    user: str | None
    host: str | None
    port: int | None
    uri_params: Params
    header_params: Params
    uri: str
    uri_headers: tuple[tuple[str, str], ...] = ()

    @property
    def number(self) -> str | None:
        """The user part (or the tel number) normalised by :func:`normalise_number`."""
        if not self.user:
            return None
        # A telephone-subscriber user part may carry its own ";" parameters (";npdi", ";isub=").
        number = self.user.split(";", 1)[0]
        return normalise_number(number) if number else None


def parse_address(value: str) -> SipAddress:
    """Parse a name-addr (``"Alice" <sip:alice@example.com>;tag=1``) or a bare addr-spec.

    Without angle brackets, ``;`` parameters after the URI belong to the header (RFC 3261
    §20.10), so ``sip:alice@example.com;tag=1`` has the header parameter ``tag``.
    """
    text = value.strip(" \t\r\n")
    if not text:
        raise SipParseError("empty address")
    if _CONTROL_RE.search(text):
        raise SipParseError(f"{quote_for_error(text)} contains control characters")
    display_name, rest = _split_display_name(text)
    if rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            raise SipParseError(f"{quote_for_error(text)}: '<' without '>'")
        uri_text = rest[1:end].strip(" \t")
        header_params = _parse_header_params(rest[end + 1 :], text)
    elif display_name is not None:
        raise SipParseError(f"{quote_for_error(text)}: a display name needs the URI in <...>")
    else:
        at = rest.find("@")
        cut = rest.find(";", max(at, 0))
        uri_text, params_text = (rest, "") if cut < 0 else (rest[:cut].rstrip(" \t"), rest[cut:])
        header_params = _parse_header_params(params_text, text)
    uri = parse_uri(uri_text)
    return SipAddress(
        display_name=display_name,
        scheme=uri.scheme,
        user=uri.user,
        host=uri.host,
        port=uri.port,
        uri_params=uri.params,
        header_params=header_params,
        uri=uri.text,
        uri_headers=uri.headers,
    )


def _split_display_name(text: str) -> tuple[str | None, str]:
    """Split off a quoted or unquoted display name; return it (or None) and the rest."""
    if text.startswith('"'):
        name, end = _read_quoted(text, 0)
        rest = text[end:].lstrip(" \t")
        if not rest.startswith("<"):
            raise SipParseError(f"{quote_for_error(text)}: expected '<' after the display name")
        return _unquote(name) or None, rest
    bracket = text.find("<")
    if bracket < 0:
        return None, text
    name = text[:bracket].strip(" \t")
    if '"' in name or ">" in name:
        raise SipParseError(f"{quote_for_error(text)}: bad display name")
    return name or None, text[bracket:]


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted-string starting at ``start``; return it with quotes and its end index."""
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pos += 2
        elif char == '"':
            return text[start : pos + 1], pos + 1
        else:
            pos += 1
    raise SipParseError(f"{quote_for_error(text)}: unterminated quoted string")


def _unquote(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1], flags=re.DOTALL)


def _parse_header_params(text: str, whole: str) -> Params:
    params: list[tuple[str, str | None]] = []
    pos = 0
    rest = text.rstrip(" \t")
    while pos < len(rest):
        match = _HEADER_PARAM_RE.match(rest, pos)
        if match is None:
            raise SipParseError(
                f"{quote_for_error(whole)}: unexpected {quote_for_error(rest[pos:])}"
            )
        name, value = match.group(1), match.group(2)
        if not _TOKEN_RE.fullmatch(name):
            raise SipParseError(
                f"{quote_for_error(whole)}: bad parameter name {quote_for_error(name)}"
            )
        if value is not None and not value.startswith('"') and not _GEN_VALUE_RE.fullmatch(value):
            raise SipParseError(f"{quote_for_error(whole)}: bad value for parameter {name}")
        params.append((name, value))
        pos = match.end()
    return tuple(params)


def _canonical_header_name(name: str) -> str:
    lowered = name.strip().lower()
    return _COMPACT_NAMES.get(lowered, lowered)


class SipHeaders:
    """The INVITE's headers as ordered ``(name, value)`` pairs, looked up case-insensitively.

    Compact forms count as their full names: ``get("From")`` also finds an ``f:`` header.
    """

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs = tuple((name, value) for name, value in pairs)

    def get(self, name: str) -> str | None:
        """The value of the first header called ``name``, or None."""
        wanted = _canonical_header_name(name)
        for key, value in self._pairs:
            if _canonical_header_name(key) == wanted:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """The values of every header called ``name``, in order."""
        wanted = _canonical_header_name(name)
        return [value for key, value in self._pairs if _canonical_header_name(key) == wanted]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SipHeaders) and self._pairs == other._pairs

    def __hash__(self) -> int:
        return hash(self._pairs)

    def __repr__(self) -> str:
        return f"SipHeaders({list(self._pairs)!r})"


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """What routing knows about a ringing call: its id, headers and parsed From/To."""

    call_id: str
    headers: SipHeaders
    caller: SipAddress | None
    dialled: SipAddress | None
    media_security: str | None = None

    @property
    def caller_number(self) -> str | None:
        """The caller's normalised number (or user name), None when From is missing or garbage."""
        return self.caller.number if self.caller else None

    @property
    def dialled_number(self) -> str | None:
        """The dialled normalised number (or user name), None when To is missing or garbage."""
        return self.dialled.number if self.dialled else None

    @classmethod
    def from_sip_headers(
        cls,
        call_id: str,
        headers: Iterable[tuple[str, str]],
        media_security: str | None = None,
    ) -> IncomingCall:
        """Build from the webhook's ``sip_headers``; an unparsable From or To becomes None."""
        sip_headers = SipHeaders(headers)
        return cls(
            call_id=call_id,
            headers=sip_headers,
            caller=_parse_leniently(sip_headers.get("From")),
            dialled=_parse_leniently(sip_headers.get("To")),
            media_security=media_security,
        )


def _parse_leniently(value: str | None) -> SipAddress | None:
    if value is None:
        return None
    try:
        return parse_address(value)
    except SipParseError:
        return None
