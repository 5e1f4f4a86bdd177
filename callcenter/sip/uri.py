"""``sip:``, ``sips:`` and ``tel:`` URIs (RFC 3261 §19.1 and §25.1, RFC 3966): parse and extend.

Pure functions; every failure raises :class:`~callcenter.errors.SipParseError`. Re-exported
by :mod:`callcenter.sip.invite`.
"""

from __future__ import annotations

import re
import string
import urllib.parse
from dataclasses import dataclass
from ipaddress import IPv6Address

from callcenter.errors import SipParseError

__all__ = ["Params", "SipUri", "add_uri_header", "is_transfer_uri", "parse_uri", "quote_for_error"]

Params = tuple[tuple[str, str | None], ...]

# Character classes of RFC 3261 §25.1 (``%`` stands for an escape, checked separately).
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER_RE = re.compile(rf"[{_UNRESERVED}%&=+$,;?/]+")
_PASSWORD_RE = re.compile(rf"[{_UNRESERVED}%&=+$,]*")
_PARAM_RE = re.compile(rf"[{_UNRESERVED}%\[\]/:&+$]+")
_HNV_CHARS = frozenset(string.ascii_letters + string.digits + "-_.!~*'()[]/?:+$")
_HNV_RE = re.compile(rf"[{_UNRESERVED}%\[\]/?:+$]*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TEL_GLOBAL_RE = re.compile(r"\+[0-9().\-]*[0-9][0-9().\-]*")
_TEL_LOCAL_RE = re.compile(r"[0-9A-Fa-f*#().\-]*[0-9][0-9A-Fa-f*#().\-]*")


@dataclass(frozen=True, slots=True)
class SipUri:
    """A parsed ``sip:``, ``sips:`` or ``tel:`` URI; ``text`` is the URI as written."""

    scheme: str
    user: str | None
    host: str | None
    port: int | None
    params: Params
    headers: tuple[tuple[str, str], ...]
    text: str


def parse_uri(value: str) -> SipUri:
    """Parse a bare ``sip:``/``sips:``/``tel:`` URI (no display name, no angle brackets)."""
    scheme, sep, body = value.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in ("sip", "sips", "tel"):
        raise SipParseError(f"{quote_for_error(value)} is not a sip:, sips: or tel: URI")
    if not body:
        raise SipParseError(f"{quote_for_error(value)} has nothing after {scheme}:")
    if scheme == "tel":
        return _parse_tel(body, value)
    return _parse_sip(scheme, body, value)


def _parse_tel(body: str, text: str) -> SipUri:
    number, _, rest = body.partition(";")
    if not (_TEL_GLOBAL_RE.fullmatch(number) or _TEL_LOCAL_RE.fullmatch(number)):
        raise SipParseError(
            f"{quote_for_error(text)}: {quote_for_error(number)} is not a telephone number"
        )
    params = _parse_uri_params(rest, text) if rest else ()
    return SipUri("tel", number, None, None, params, (), text)


def _parse_sip(scheme: str, body: str, text: str) -> SipUri:
    user: str | None = None
    if body.count("@") > 1:
        raise SipParseError(f"{quote_for_error(text)} has more than one '@'")
    userinfo, at, rest = body.partition("@")
    if at:
        raw_user, _, password = userinfo.partition(":")
        if not _USER_RE.fullmatch(raw_user):
            raise SipParseError(
                f"{quote_for_error(text)}: bad user part {quote_for_error(raw_user)}"
            )
        if not _PASSWORD_RE.fullmatch(password):
            raise SipParseError(f"{quote_for_error(text)}: bad password part")
        user = _unescape(raw_user, text)
    else:
        rest = body
    host, after = _split_host(rest, text)
    port: int | None = None
    if after.startswith(":"):
        port_text = after[1:].partition(";")[0].partition("?")[0]
        valid = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
        if not valid or not 0 < int(port_text) < 65536:
            raise SipParseError(f"{quote_for_error(text)}: bad port")
        port = int(port_text)
        after = after[1 + len(port_text) :]
    if after and after[0] not in ";?":
        raise SipParseError(
            f"{quote_for_error(text)}: unexpected {quote_for_error(after)} after the host"
        )
    param_text, question, header_text = after.partition("?")
    params = _parse_uri_params(param_text[1:], text) if param_text else ()
    headers = _parse_uri_headers(header_text, text) if question else ()
    return SipUri(scheme, user, host, port, params, headers, text)


def _split_host(rest: str, text: str) -> tuple[str, str]:
    """Split ``host[:port][;params][?headers]`` into the host and what follows it."""
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise SipParseError(f"{quote_for_error(text)}: unterminated IPv6 reference")
        try:
            IPv6Address(rest[1:end])
        except ValueError:
            raise SipParseError(
                f"{quote_for_error(text)}: bad IPv6 address {rest[1:end]!r}"
            ) from None
        return rest[: end + 1], rest[end + 1 :]
    match = re.match(r"[A-Za-z0-9._\-]*", rest)
    host = match.group() if match else ""
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not host or not all(_HOSTNAME_RE.fullmatch(label) for label in labels):
        raise SipParseError(f"{quote_for_error(text)}: missing or bad host")
    return host, rest[len(host) :]


def _parse_uri_params(text: str, uri: str) -> Params:
    params: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not _PARAM_RE.fullmatch(name) or (eq and not _PARAM_RE.fullmatch(value)):
            raise SipParseError(
                f"{quote_for_error(uri)}: bad URI parameter {quote_for_error(item)}"
            )
        params.append((_unescape(name, uri), _unescape(value, uri) if eq else None))
    return tuple(params)


def _parse_uri_headers(text: str, uri: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not eq or not name or not _HNV_RE.fullmatch(name) or not _HNV_RE.fullmatch(value):
            raise SipParseError(f"{quote_for_error(uri)}: bad URI header {quote_for_error(item)}")
        headers.append((_unescape(name, uri), _unescape(value, uri)))
    return tuple(headers)


def _unescape(value: str, text: str) -> str:
    if _BAD_ESCAPE_RE.search(value):
        raise SipParseError(f"{quote_for_error(text)}: bad %-escape")
    try:
        return urllib.parse.unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise SipParseError(f"{quote_for_error(text)}: %-escapes are not UTF-8") from None


def is_transfer_uri(uri: str) -> bool:
    """Whether ``uri`` is a ``tel:``, ``sip:`` or ``sips:`` URI that a REFER can target."""
    try:
        parsed = parse_uri(uri)
    except SipParseError:
        return False
    if parsed.scheme != "tel" or (parsed.user or "").startswith("+"):
        return True
    # A local tel number means nothing without its context (RFC 3966 §5.1.5).
    return any(name.lower() == "phone-context" for name, _ in parsed.params)


def add_uri_header(uri: str, name: str, value: str) -> str:
    """Append the URI header ``name=value`` (RFC 3261 §19.1.1) to a ``sip:``/``sips:`` URI.

    Both are %-escaped as ``hname``/``hvalue`` require, so any text can travel along a REFER.
    """
    parsed = parse_uri(uri)
    if parsed.scheme == "tel":
        raise SipParseError(f"{quote_for_error(uri)}: tel: URIs cannot carry headers")
    if not name:
        raise SipParseError("a URI header needs a name")
    separator = "&" if parsed.headers else "?"
    return f"{uri}{separator}{_hnv_escape(name)}={_hnv_escape(value)}"


def _hnv_escape(text: str) -> str:
    return "".join(
        char if char in _HNV_CHARS else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in text
    )


def quote_for_error(text: str, limit: int = 80) -> str:
    """Quote untrusted text for an error message, shortened to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
