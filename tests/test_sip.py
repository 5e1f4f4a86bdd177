"""SIP address parsing, number normalisation, header look-up and URI helpers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip.invite import (
    IncomingCall,
    SipHeaders,
    SipParseError,
    add_uri_header,
    is_transfer_uri,
    normalise_number,
    parse_address,
    parse_uri,
)

VALID_ADDRESSES: list[tuple[str, dict[str, Any]]] = [
    (
        '"Alice \\"A\\" Smith" <sip:+14155550123@trunk.example.com;user=phone>;tag=abc',
        {
            "display_name": 'Alice "A" Smith',
            "scheme": "sip",
            "user": "+14155550123",
            "host": "trunk.example.com",
            "uri_params": (("user", "phone"),),
            "header_params": (("tag", "abc"),),
            "uri": "sip:+14155550123@trunk.example.com;user=phone",
            "number": "+14155550123",
        },
    ),
    (
        "Bob Smith <sip:bob@example.com>",
        {"display_name": "Bob Smith", "user": "bob", "number": "bob", "header_params": ()},
    ),
    (
        "sip:alice@example.com;tag=1",
        {
            "display_name": None,
            "uri": "sip:alice@example.com",
            "uri_params": (),
            "header_params": (("tag", "1"),),
        },
    ),
    (
        "<tel:+1-415-555-0123;phone-context=example.com>",
        {
            "scheme": "tel",
            "user": "+1-415-555-0123",
            "host": None,
            "uri_params": (("phone-context", "example.com"),),
            "number": "+14155550123",
        },
    ),
    (
        "tel:+1-415-555-0123;tag=x",
        {"uri": "tel:+1-415-555-0123", "header_params": (("tag", "x"),), "number": "+14155550123"},
    ),
    ("sip:u:pw@h", {"user": "u", "host": "h", "port": None, "uri": "sip:u:pw@h"}),
    ("<sip:bob@pbx.example.com:5061>", {"host": "pbx.example.com", "port": 5061}),
    ("<sip:alice@[2001:db8::1]:5070>", {"host": "[2001:db8::1]", "port": 5070}),
    ("<sip:[::1]>", {"user": None, "host": "[::1]", "number": None}),
    (
        "<sip:queue@pbx.example.com;transport=tls;lr?X-Ticket=abc&Subject=hi%20there>",
        {
            "uri_params": (("transport", "tls"), ("lr", None)),
            "uri_headers": (("X-Ticket", "abc"), ("Subject", "hi there")),
        },
    ),
    ("<sips:%2B1%20415%20555%200123@x.example.com>", {"user": "+1 415 555 0123"}),
    ("<SIPS:Alice@Example.COM>", {"scheme": "sips", "user": "Alice", "number": "alice"}),
    (
        '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=9',
        {"display_name": "Anonymous", "number": "anonymous"},
    ),
    ("<sip:+14155550123;npdi;rn=+14155550000@gw.example.com>", {"number": "+14155550123"}),
    (
        '<sip:a@b.example>;tag="x;y";expires=60',
        {"header_params": (("tag", '"x;y"'), ("expires", "60"))},
    ),
    ('"Zoë Ångström" <sip:zoe@example.se>', {"display_name": "Zoë Ångström"}),
    ('"" <sip:nobody@example.com>', {"display_name": None}),
    ("  <sip:alice@example.com> ; tag = 7  ", {"header_params": (("tag", "7"),)}),
    ("Carol<sip:carol@example.com>", {"display_name": "Carol"}),
]

INVALID_ADDRESSES = [
    "",
    "   ",
    "alice",
    "http://example.com",
    "sip:",
    "sip:@example.com",
    "<sip:alice@example.com",
    "sip:alice@example.com:0",
    "sip:alice@example.com:65536",
    "sip:alice@example.com:50x",
    "<sip:alice@[::zz]>",
    "<sip:alice@[::1>",
    'sip:alice@example.com;tag="x',
    '"Alice <sip:alice@example.com>',
    "<sip:al%zzice@example.com>",
    "<sip:%FF@example.com>",
    "sip:a@b@c",
    "tel:hello",
    "Alice sip:alice@example.com",
    "<sip:a b@example.com>",
    "<sip:alice@example.com> junk",
    "<sip:alice@-bad-.example.com>",
    "<sip:alice@example..com>",
    "<sip:alice@example.com?noequals>",
    "<sip:alice@example.com;=x>",
    '"Alice" sip:alice@example.com',
    "<sip:alice@example.com>;tag=a\x00b",
]


@pytest.mark.parametrize(("value", "expected"), VALID_ADDRESSES)
def test_parse_address_reads_valid_forms(value: str, expected: dict[str, Any]) -> None:
    """Each accepted form parses into the expected fields."""
    address = parse_address(value)
    for field, wanted in expected.items():
        assert getattr(address, field) == wanted, field


@pytest.mark.parametrize("value", INVALID_ADDRESSES)
def test_parse_address_rejects_garbage(value: str) -> None:
    """Malformed values raise SipParseError, which is also a ValueError."""
    with pytest.raises(SipParseError):
        parse_address(value)
    assert issubclass(SipParseError, ValueError)


def test_parse_error_message_quotes_the_value() -> None:
    """The error names the offending value so a log line explains itself."""
    with pytest.raises(SipParseError, match="'sip:alice@example.com:99999': bad port"):
        parse_address("sip:alice@example.com:99999")


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("+1 (415) 555-0123", "+14155550123"),
        ("+1.415.555.0123", "+14155550123"),
        ("4155550123", "4155550123"),
        ("*67", "*67"),
        ("Anonymous", "anonymous"),
        ("Alice.Smith", "alice.smith"),
        ("+1415abc", "+1415abc"),
    ],
)
def test_normalise_number(raw: str, normalised: str) -> None:
    """Separators go from numbers; names are only lower-cased."""
    assert normalise_number(raw) == normalised


def test_headers_get_is_case_insensitive_and_first_wins() -> None:
    """get() ignores case and returns the first of repeated headers."""
    headers = SipHeaders([("X-Tenant", "acme"), ("x-tenant", "other"), ("To", "<sip:a@b>")])
    assert headers.get("X-TENANT") == "acme"
    assert headers.get_all("x-Tenant") == ["acme", "other"]
    assert headers.get("Diversion") is None
    assert headers.get_all("Diversion") == []


def test_headers_understand_compact_forms() -> None:
    """Compact names (f, t, i, m...) answer for their full names and back."""
    headers = SipHeaders([("f", "<sip:a@b>"), ("i", "abc@host"), ("Contact", "<sip:c@d>")])
    assert headers.get("From") == "<sip:a@b>"
    assert headers.get("Call-ID") == "abc@host"
    assert headers.get("m") == "<sip:c@d>"
    assert list(headers) == [("f", "<sip:a@b>"), ("i", "abc@host"), ("Contact", "<sip:c@d>")]
    assert len(headers) == 3


def test_incoming_call_reads_numbers_from_from_and_to() -> None:
    """from_sip_headers parses From and To into caller and dialled numbers."""
    call = IncomingCall.from_sip_headers(
        "rtc_1",
        [
            ("From", '"Alice" <sip:+1-415-555-0123@trunk.example.com>;tag=1'),
            ("To", "<sip:+18005550100@sip.api.openai.com>"),
        ],
        "srtp",
    )
    assert call.caller_number == "+14155550123"
    assert call.dialled_number == "+18005550100"
    assert call.caller is not None
    assert call.caller.display_name == "Alice"
    assert call.media_security == "srtp"


def test_incoming_call_leaves_garbage_from_as_none() -> None:
    """An unparsable From gives no caller instead of an error; To still parses."""
    call = IncomingCall.from_sip_headers(
        "rtc_2", [("From", "<<garbage"), ("t", "<tel:+18005550100>")]
    )
    assert call.caller is None
    assert call.caller_number is None
    assert call.dialled_number == "+18005550100"


def test_incoming_call_without_headers() -> None:
    """No From and no To: both numbers are None."""
    call = IncomingCall.from_sip_headers("rtc_3", [])
    assert (call.caller, call.dialled, call.caller_number, call.dialled_number) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("tel:+14155550123", True),
        ("tel:+1-415-555-0123", True),
        ("tel:5550123;phone-context=+1415", True),
        ("tel:5550123", False),
        ("sip:agent@example.com", True),
        ("sips:agent@example.com:5061;transport=tls", True),
        ("sip:queue@pbx.example.com?X-Ticket=abc", True),
        ("sip:pbx.example.com", True),
        ("SIP:Agent@Example.com", True),
        ("http://example.com", False),
        ("sip:", False),
        ("tel:", False),
        ("support-desk", False),
        (" sip:agent@example.com", False),
        ("<sip:agent@example.com>", False),
        ("sip:agent@", False),
    ],
)
def test_is_transfer_uri(uri: str, ok: bool) -> None:
    """Only tel:/sip:/sips: URIs with a sane body can be REFER targets."""
    assert is_transfer_uri(uri) is ok


def test_add_uri_header_appends_a_header() -> None:
    """The first header starts with '?', the next with '&'."""
    once = add_uri_header("sip:queue@pbx.example.com", "X-Ticket", "T-123")
    assert once == "sip:queue@pbx.example.com?X-Ticket=T-123"
    twice = add_uri_header(once, "X-Lang", "en")
    assert twice == "sip:queue@pbx.example.com?X-Ticket=T-123&X-Lang=en"


def test_add_uri_header_escapes_the_value() -> None:
    """Characters outside hnv-unreserved/unreserved are %-escaped."""
    uri = add_uri_header("sip:q@pbx.example.com;transport=tls", "X-Note", "a b&c=d%é")
    assert uri == "sip:q@pbx.example.com;transport=tls?X-Note=a%20b%26c%3Dd%25%C3%A9"
    assert parse_uri(uri).headers == (("X-Note", "a b&c=d%é"),)


def test_add_uri_header_refuses_tel_uris() -> None:
    """tel: URIs have no header part."""
    with pytest.raises(SipParseError):
        add_uri_header("tel:+14155550123", "X-Ticket", "T-1")


# -- properties -------------------------------------------------------------------------------

_TOKENS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
_DISPLAY_NAMES = st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20
).filter(lambda name: name.strip() == name and bool(name))
_LABELS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)


@st.composite
def _name_addrs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A rendered From-style value and the fields it must parse back into."""
    digits = draw(st.text(alphabet="0123456789", min_size=3, max_size=15))
    separators = draw(st.lists(st.sampled_from(["", "-", ".", "(", ")"]), min_size=len(digits)))
    written = "+" + "".join(d + s for d, s in zip(digits, separators, strict=False))
    scheme = draw(st.sampled_from(["sip", "sips", "tel"]))
    host = ".".join(draw(st.lists(_LABELS, min_size=1, max_size=3)))
    port = draw(st.none() | st.integers(1, 65535))
    uri_params = tuple(draw(st.lists(st.tuples(_TOKENS, st.none() | _TOKENS), max_size=3)))
    header_params = tuple(draw(st.lists(st.tuples(_TOKENS, st.none() | _TOKENS), max_size=3)))
    display = draw(st.none() | _DISPLAY_NAMES)

    def params(items: tuple[tuple[str, str | None], ...]) -> str:
        return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in items)

    if scheme == "tel":
        uri = f"tel:{written}{params(uri_params)}"
    else:
        uri = f"{scheme}:{written}@{host}{'' if port is None else f':{port}'}{params(uri_params)}"
    quoted = (
        None if display is None else '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
    )
    bracketed = display is not None or uri_params or draw(st.booleans())
    value = f"{quoted + ' ' if quoted else ''}<{uri}>" if bracketed else uri
    expected = {
        "display_name": display,
        "scheme": scheme,
        "number": "+" + digits,
        "host": None if scheme == "tel" else host,
        "port": None if scheme == "tel" else port,
        "uri_params": uri_params,
        "header_params": header_params,
        "uri": uri,
    }
    return value + params(header_params), expected


@settings(max_examples=300)
@given(_name_addrs())
def test_parse_address_round_trips_generated_name_addrs(case: tuple[str, dict[str, Any]]) -> None:
    """Rendered numbers, display names (with quotes and escapes) and params parse back."""
    value, expected = case
    address = parse_address(value)
    for field, wanted in expected.items():
        assert getattr(address, field) == wanted, field


_SIP_ALPHABET = 'sipteltel:<>"\\@;=?&%[]:+0123456789abcdef .-_,'


@settings(max_examples=300)
@given(st.text() | st.text(alphabet=_SIP_ALPHABET, max_size=60))
def test_parse_address_raises_only_sip_parse_error(value: str) -> None:
    """Arbitrary text either parses or raises SipParseError, nothing else."""
    try:
        parse_address(value)
    except SipParseError:
        pass


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["From", "To", "f", "t", "X-Tenant"]) | st.text(max_size=10),
            st.text(max_size=40) | st.text(alphabet=_SIP_ALPHABET, max_size=40),
        ),
        max_size=6,
    )
)
def test_from_sip_headers_never_raises(headers: list[tuple[str, str]]) -> None:
    """Untrusted headers always give an IncomingCall."""
    call = IncomingCall.from_sip_headers("rtc_x", headers)
    assert call.caller_number is None or isinstance(call.caller_number, str)
    assert call.dialled_number is None or isinstance(call.dialled_number, str)


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=20), st.text(max_size=40))
def test_add_uri_header_round_trips_any_text(name: str, value: str) -> None:
    """Whatever the name and value, the parsed URI gives them back."""
    uri = add_uri_header("sip:queue@pbx.example.com", name, value)
    assert parse_uri(uri).headers == ((name, value),)
