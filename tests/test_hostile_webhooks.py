"""Hostile webhooks against `callcenter serve` (gunicorn): a 4xx, never a 5xx, nothing changed.

Hypothesis generates the deliveries: forged, stale, future, replayed, truncated, oversized,
chunked, non-UTF-8, non-ASCII header bytes, deep JSON, wrong types, odd call_ids, and odd SIP
headers (huge, CR/LF, NUL…). Each is sent over loopback to the production server; then no
5xx, no call action at the emulator, no row in the store, one warning per refusal, no
traceback and no secret in the log or in any answer, and a server that still handles a
genuine call. ``CALLCENTER_LONG_TESTS=1`` adds a run of 10,000 deliveries that prints its
figures.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import socket
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.emulator import EmulatorThread, RedeliveryPolicy
from callcenter.emulator.webhooks import webhook_headers
from callcenter.intake.sanitize import valid_call_id
from callcenter.store import Store
from tests.harness import API_KEY, WEBHOOK_KEEPALIVE, WEBHOOK_SECRET, GunicornController, wait_for

LONG = os.environ.get("CALLCENTER_LONG_TESTS") == "1"
LONG_COUNT = 10_000
LIMIT = 1024 * 1024
OTHER_SECRET = "whsec_b3RoZXItc2VjcmV0LWZvci1ob3N0aWxlLXRlc3Rz"
SECRETS = (WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"), API_KEY)
CLOSED = "+18005550100"

# Every call is rejected (486): a routed call costs one REST call and opens no sideband.
CONFIG = f"""
default_route = "closed"

[[routes]]
name = "closed"
match = {{ to = ["{CLOSED}"] }}
action = "reject:486"
"""

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the served controller, one per module and database ---------------------------------------


@dataclass
class Served:
    """The server under attack, its emulator and store, and what the run has seen."""

    controller: GunicornController
    emulator: EmulatorThread
    store: Store
    answers: list[str] = field(default_factory=list)  # every answer body, for the secret check
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    refusals: int = 0  # JSON 4xx answers, each of which must log one warning


@pytest.fixture(scope="module")
def served(module_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`callcenter serve` with two workers, wired to an emulator that delivers nothing itself."""
    emulator = EmulatorThread(
        api_key=API_KEY,
        webhook_secret=WEBHOOK_SECRET,
        redelivery=RedeliveryPolicy(max_attempts=1, timeout=5.0),
        webhook_keepalive=WEBHOOK_KEEPALIVE,
    )
    emulator.start()
    directory = tmp_path_factory.mktemp("served")
    config_path = directory / "callcenter.toml"
    config_path.write_text(CONFIG)
    store = Store.open(module_store_url)
    store.migrate()
    env = {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OPENAI_BASE_URL": emulator.base_url,
        "CALLCENTER_DATABASE_URL": module_store_url,
        "CALLCENTER_DATA_DIR": str(directory / "data"),
    }
    controller = GunicornController(env, config_path, workers=2)
    try:
        yield Served(controller, emulator, store)
    finally:
        controller.stop()
        store.close()
        emulator.stop()


# -- building deliveries ----------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One HTTP request to the webhook endpoint and the statuses it may be answered with."""

    kind: str
    body: bytes
    headers: dict[str, str | bytes]
    expected: frozenset[int]
    chunked: bool = False


def signed(
    body: bytes, *, secret: str = WEBHOOK_SECRET, offset: int = 0, webhook_id: str = "wh_x"
) -> dict[str, str | bytes]:
    return {**webhook_headers(secret, webhook_id, int(time.time()) + offset, body)}


def event(
    call_id: object = "rtc_hostile", sip_headers: object = None, **changes: object
) -> dict[str, object]:
    """A realtime.call.incoming event, with any top-level field replaced by ``changes``."""
    if sip_headers is None:
        sip_headers = [
            {"name": "From", "value": "<sip:+14155550123@example.com>"},
            {"name": "To", "value": f"<sip:{CLOSED}@example.com>"},
        ]
    return {
        "id": "evt_hostile",
        "object": "event",
        "created_at": int(time.time()),
        "type": "realtime.call.incoming",
        "data": {"call_id": call_id, "sip_headers": sip_headers},
        **changes,
    }


def encoded(value: object) -> bytes:
    return json.dumps(value).encode()


webhook_ids = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=30).map(
    lambda tail: "wh_" + tail
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
not_strings = json_values.filter(lambda value: not isinstance(value, str))
odd_call_ids = st.sampled_from(
    ["", ".", "..", "../x", "rtc_/..", "rtc_%2e%2e", "rtc_", "rtc_\x00", "rtc_\ud800", "rtc_ a"]
) | st.text(max_size=200).filter(lambda text: not valid_call_id(text))
some_event = st.builds(event, call_id=odd_call_ids).map(encoded) | st.text(max_size=200).map(
    str.encode
)


@st.composite
def forged(draw: st.DrawFn) -> Delivery:
    """Signed with another secret, or carrying a made-up signature."""
    body = draw(some_event)
    headers = signed(body, secret=OTHER_SECRET, webhook_id=draw(webhook_ids))
    if draw(st.booleans()):
        fake = draw(st.text(string.ascii_letters + string.digits + "+/=, ", min_size=1))
        headers["webhook-signature"] = fake.strip() or "v1,x"
    return Delivery("forged", body, headers, frozenset({400, 401}))


@st.composite
def stale(draw: st.DrawFn) -> Delivery:
    """Genuinely signed, but outside the five-minute window, in the past or the future."""
    offset = draw(st.integers(310, 10**7)) * draw(st.sampled_from([-1, 1]))  # 10 s of margin
    body = encoded(event(call_id="rtc_" + draw(webhook_ids)))
    return Delivery("stale", body, signed(body, offset=offset), frozenset({401}))


@st.composite
def replayed(draw: st.DrawFn) -> Delivery:
    """The id, timestamp and signature of one delivery sent with another body."""
    original, other = draw(st.lists(some_event, min_size=2, max_size=2, unique=True))
    return Delivery("replayed", other, signed(original), frozenset({400, 401}))


@st.composite
def truncated(draw: st.DrawFn) -> Delivery:
    """A genuine event cut short after it was signed."""
    body = encoded(event(call_id="rtc_" + draw(webhook_ids)))
    cut = draw(st.integers(0, len(body) - 1))
    return Delivery("truncated", body[:cut], signed(body), frozenset({400, 401}))


@st.composite
def oversized(draw: st.DrawFn) -> Delivery:
    """A signed body past 1 MiB, sent with a Content-Length or chunked."""
    extra = draw(st.integers(1, 64 * 1024))
    body = b'{"pad": "' + b"x" * (LIMIT + extra) + b'"}'
    return Delivery("oversized", body, signed(body), frozenset({413}), draw(st.booleans()))


@st.composite
def non_utf8(draw: st.DrawFn) -> Delivery:
    """A body that is not UTF-8 (which nobody can have signed)."""
    body = draw(st.binary(min_size=1, max_size=200).filter(_not_utf8))
    headers = signed(b"{}")
    return Delivery("non_utf8", body, headers, frozenset({400}))


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@st.composite
def header_bytes(draw: st.DrawFn) -> Delivery:
    """A signature header holding bytes past ASCII (latin-1 on the wire)."""
    body = encoded(event())
    headers = signed(body)
    name = draw(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]))
    odd = draw(st.binary(min_size=1, max_size=8).map(lambda b: bytes(x | 0x80 for x in b)))
    value = headers[name]
    assert isinstance(value, str)
    cut = draw(st.integers(0, len(value)))
    headers[name] = value[:cut].encode() + odd + value[cut:].encode()
    return Delivery("header_bytes", body, headers, frozenset({400}))


@st.composite
def deep_json(draw: st.DrawFn) -> Delivery:
    """Signed JSON nested past the bound (up to 20,000 deep)."""
    depth = draw(st.integers(65, 20_000))
    opening, closing = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    inner = opening * depth + b"1" + closing * depth
    body = b'{"type": "realtime.call.incoming", "data": ' + inner + b"}"
    return Delivery("deep_json", body, signed(body), frozenset({400}), draw(st.booleans()))


@st.composite
def wrong_types(draw: st.DrawFn) -> Delivery:
    """A signed event with one field of the wrong JSON type (or not an object at all)."""
    where = draw(st.sampled_from(["body", "type", "id", "data", "call_id", "headers", "header"]))
    wrong = draw(not_strings)
    if where == "body":
        payload: object = draw(st.lists(json_values, max_size=3) | json_scalars)
    elif where in ("type", "id"):
        payload = event(**{where: wrong})
    elif where == "data":
        payload = event(data=draw(not_strings.filter(lambda value: not isinstance(value, dict))))
    elif where == "call_id":
        payload = event(call_id=wrong)
    elif where == "headers":
        payload = event(sip_headers=draw(json_scalars.filter(lambda value: value is not None)))
    else:
        payload = event(sip_headers=[{"name": "X-Odd", "value": wrong}])
    body = encoded(payload)
    return Delivery("wrong_types", body, signed(body), frozenset({400}))


@st.composite
def odd_call_id(draw: st.DrawFn) -> Delivery:
    """A genuinely signed event whose call_id is not of OpenAI's rtc_ form."""
    body = encoded(event(call_id=draw(odd_call_ids)))
    return Delivery("odd_call_id", body, signed(body), frozenset({400}), draw(st.booleans()))


@st.composite
def odd_sip_headers(draw: st.DrawFn) -> list[dict[str, str]]:
    """Headers a carrier might send: control characters, CR/LF, NUL, lone surrogates, huge."""
    odd_text = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(
        ["\x00", "a\r\nVia: evil", "\r\n", "\x1b[2J", "\ud800", "\udfff x", "\x7f", "\t"]
    )
    pairs = draw(st.lists(st.tuples(odd_text, odd_text), min_size=1, max_size=6))
    if draw(st.booleans()):
        pairs.append(("X-Huge", "x" * draw(st.integers(8000, 100_000))))
    return [{"name": name, "value": value} for name, value in pairs]


hostile = st.one_of(
    forged(),
    stale(),
    replayed(),
    truncated(),
    oversized(),
    non_utf8(),
    header_bytes(),
    deep_json(),
    wrong_types(),
    odd_call_id(),
)


# -- sending and checking ---------------------------------------------------------------------


def send(served: Served, delivery: Delivery) -> httpx.Response:
    """Post ``delivery`` (chunked if it says so) and keep its answer for the final checks."""
    content: bytes | Iterator[bytes] = delivery.body
    if delivery.chunked:
        content = iter([delivery.body[i : i + 65536] for i in range(0, len(delivery.body), 65536)])
    response = httpx.post(
        served.controller.webhook_url, content=content, headers=delivery.headers, timeout=30
    )
    served.statuses[response.status_code] += 1
    served.answers.append(response.text)
    return response


def refused(served: Served, delivery: Delivery) -> None:
    """Send ``delivery``; it must get one of its 4xx with the JSON error and change nothing."""
    rest_before = len(served.emulator.emulator.rest_requests)
    calls_before = len(served.store.list_calls())
    response = send(served, delivery)
    assert response.status_code < 500, (delivery.kind, response.status_code, response.text)
    assert response.status_code in delivery.expected, (delivery.kind, response.text)
    error = response.json()["error"]
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    served.refusals += 1
    assert len(served.emulator.emulator.rest_requests) == rest_before, "a call action was taken"
    assert len(served.store.list_calls()) == calls_before, "a call was stored"


def log_lines(served: Served) -> list[dict[str, object]]:
    lines = []
    for line in list(served.controller.output):
        try:
            lines.append(json.loads(line))
        except ValueError:
            lines.append({"msg": line})
    return lines


def assert_clean_log_and_healthy(served: Served) -> None:
    """One warning per refusal, no traceback, no secret anywhere; a genuine call still works."""

    def refusal_lines() -> int:
        return sum(1 for entry in log_lines(served) if entry.get("msg") == "webhook refused")

    wait_for(lambda: refusal_lines() >= served.refusals, what="a warning for every refusal")
    lines = log_lines(served)
    assert refusal_lines() == served.refusals
    assert not [e for e in lines if "exc" in e or "Traceback" in str(e.get("msg"))]
    text = "".join(served.controller.output) + "".join(served.answers)
    for secret in SECRETS:
        assert secret not in text
    assert base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_")).decode() not in text
    assert httpx.get(served.controller.url + "/readyz").status_code == 200
    emulator = served.emulator
    emulator.emulator.webhook_url = served.controller.webhook_url
    try:
        call = emulator.place_call(to_number=CLOSED)
        wait_for(lambda: call.webhook_attempts, what="the genuine delivery to be answered")
        assert call.webhook_attempts[0].status == 200
        wait_for(lambda: [r.verb for r in call.rest_requests] == ["reject"], what="its reject")
    finally:
        emulator.emulator.webhook_url = None


# -- the properties ---------------------------------------------------------------------------


def test_hostile_webhooks_get_a_4xx_and_change_nothing(served: Served) -> None:
    """Every hostile delivery gets a 4xx with the JSON error: no call action, no row, no 5xx."""

    @PROPERTY
    @given(hostile)
    def property_(delivery: Delivery) -> None:
        refused(served, delivery)

    property_()
    assert served.statuses.get(500, 0) == 0
    assert_clean_log_and_healthy(served)


def test_odd_sip_headers_are_cleaned_and_the_call_still_routed(served: Served) -> None:
    """Genuine events with odd SIP headers are routed; no control character reaches the store."""

    @settings(PROPERTY, max_examples=40)
    @given(odd_sip_headers())
    def property_(extra: list[dict[str, str]]) -> None:
        call = served.emulator.place_call(to_number=CLOSED)  # rings; we deliver its webhook
        body = encoded(event(call_id=call.call_id, sip_headers=call.sip_headers + extra))
        response = send(served, Delivery("sip_headers", body, signed(body), frozenset({200})))
        assert response.status_code == 200, response.text
        assert response.json()["decision"] == "reject"
        wait_for(lambda: [r.verb for r in call.rest_requests] == ["reject"], what="one reject")
        record = served.store.get_call(call.call_id)
        assert record is not None
        text = "".join(name + value for name, value in record.sip_headers)
        assert not [
            ch for ch in text if (ord(ch) < 32 and ch != "\t") or 0xD800 <= ord(ch) < 0xE000
        ]

    property_()
    assert_clean_log_and_healthy(served)


@pytest.mark.skipif(
    not LONG, reason=f"{LONG_COUNT:,} hostile webhooks: set CALLCENTER_LONG_TESTS=1"
)
@pytest.mark.timeout(3600)
def test_ten_thousand_hostile_webhooks(served: Served) -> None:
    """10,000 hostile deliveries: 0 5xx, 0 call actions, no traceback (figures printed)."""
    started = time.monotonic()
    before = sum(served.statuses.values())

    @settings(PROPERTY, max_examples=LONG_COUNT)
    @given(hostile)
    def property_(delivery: Delivery) -> None:
        refused(served, delivery)

    property_()
    seconds = time.monotonic() - started
    sent = sum(served.statuses.values()) - before
    errors = sum(n for status, n in served.statuses.items() if status >= 500)
    print(
        f"\nhostile webhooks: {sent} sent, {errors} 5xx, {seconds:.1f} s, {dict(served.statuses)}"
    )
    assert errors == 0
    assert_clean_log_and_healthy(served)


@pytest.mark.parametrize("value", [b"v1,\x00abc", b"v1,a\r b", b"v1,\x7f"])
def test_control_bytes_in_headers_are_refused_by_the_server(served: Served, value: bytes) -> None:
    """Control bytes in a header never reach the app: gunicorn answers 400 (its HTML page)."""
    body = encoded(event())
    headers = {**signed(body), "webhook-signature": value, "content-length": str(len(body))}
    lines = [b"POST /webhooks/openai HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for name, field_value in headers.items():
        raw = field_value if isinstance(field_value, bytes) else field_value.encode()
        lines.append(name.encode() + b": " + raw)
    with socket.create_connection(("127.0.0.1", served.controller.port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert served.store.get_call("rtc_hostile") is None
    assert not [line for line in served.controller.output if "Traceback" in line]


def test_body_cut_short_under_gunicorn_is_a_4xx(served: Served) -> None:
    """A client that stops before its Content-Length gets a JSON 4xx, and nothing is stored."""
    body = encoded(event(call_id="rtc_cut_short"))
    lines = [b"POST /webhooks/openai HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [f"{name}: {value!s}".encode() for name, value in signed(body).items()]
    lines.append(f"Content-Length: {len(body)}".encode())
    with socket.create_connection(("127.0.0.1", served.controller.port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body[:20])
        sock.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"]
    served.refusals += 1
    assert served.store.get_call("rtc_cut_short") is None
