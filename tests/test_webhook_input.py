"""Bad input to the webhook endpoint: a clear 4xx, never a 5xx, and no side effect."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from callcenter.config.loader import example_config_path
from callcenter.emulator import Delivery, EmulatorThread, Wait
from callcenter.emulator.webhooks import webhook_headers
from callcenter.intake import sanitize
from callcenter.settings import Settings
from callcenter.store import Store
from tests.harness import WEBHOOK_SECRET, InProcessController, wait_for
from tests.test_intake import SUPPORT, signed_post

StartController = Callable[..., InProcessController]
OTHER_SECRET = "whsec_b3RoZXItc2VjcmV0LWZvci1yb3RhdGlvbi10ZXN0cw=="


def incoming(call_id: str = "rtc_input") -> bytes:
    return json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "created_at": int(time.time()),
            "type": "realtime.call.incoming",
            "data": {
                "call_id": call_id,
                "sip_headers": [
                    {"name": "From", "value": "<sip:+14155550123@example.com>"},
                    {"name": "To", "value": f"<sip:{SUPPORT}@example.com>"},
                ],
            },
        }
    ).encode()


def nothing_stored(controller: InProcessController) -> bool:
    return controller.services.store.list_calls() == []


def test_unsigned_delivery_is_400(start_controller: StartController) -> None:
    """A delivery without signature headers is a 400 and changes nothing."""
    controller = start_controller()
    response = httpx.post(controller.webhook_url, content=incoming())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsigned"
    assert nothing_stored(controller)


def test_forged_delivery_is_401(start_controller: StartController) -> None:
    """A delivery signed with an unknown secret is a 401 and changes nothing."""
    controller = start_controller()
    response = signed_post(controller.webhook_url, incoming(), secret=OTHER_SECRET)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "forged"
    assert nothing_stored(controller)


def test_tampered_body_is_401(start_controller: StartController) -> None:
    """A body changed after signing does not verify."""
    controller = start_controller()
    body = incoming()
    headers = webhook_headers(WEBHOOK_SECRET, "wh_1", int(time.time()), body)
    response = httpx.post(
        controller.webhook_url, content=body.replace(b"4155", b"4156"), headers=headers
    )
    assert response.status_code == 401


@pytest.mark.parametrize("offset", [-600, 600])
def test_stale_delivery_is_401(start_controller: StartController, offset: int) -> None:
    """A timestamp outside the five-minute window is refused as stale."""
    controller = start_controller()
    response = signed_post(controller.webhook_url, incoming(), offset=offset)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "stale"


def test_late_delivery_inside_the_window_is_handled(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """A delivery four minutes late (inside the window) is still a valid event."""
    controller = start_controller()
    call = emulator.place_call(
        to_number=SUPPORT, script=[Wait(5)], delivery=Delivery(timestamp_offset=-240)
    )
    wait_for(lambda: controller.services.store.get_call(call.call_id) is not None)


def test_non_numeric_timestamp_is_400(start_controller: StartController) -> None:
    """A webhook-timestamp that is not a number is a malformed request."""
    controller = start_controller()
    headers = {"webhook-id": "wh_1", "webhook-timestamp": "soon", "webhook-signature": "v1,xx"}
    response = httpx.post(controller.webhook_url, content=incoming(), headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "bad_timestamp")


def test_non_utf8_body_is_400(start_controller: StartController) -> None:
    """A body that is not UTF-8 is a 400 (it cannot even be checked against a signature)."""
    controller = start_controller()
    headers = {
        "webhook-id": "wh_1",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1,AAAA",
    }
    response = httpx.post(controller.webhook_url, content=b"\xff\xfe{not utf-8}", headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_encoding")


def test_non_json_body_is_400(start_controller: StartController) -> None:
    """A signed body that is not JSON is a 400."""
    controller = start_controller()
    response = signed_post(controller.webhook_url, b"call me maybe")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")


def test_malformed_event_is_400(start_controller: StartController) -> None:
    """A signed call.incoming event without a call_id is a 400 naming the field."""
    controller = start_controller()
    body = json.dumps(
        {
            "id": "evt_1",
            "type": "realtime.call.incoming",
            "created_at": 1,
            "data": {"sip_headers": []},
        }
    ).encode()
    response = signed_post(controller.webhook_url, body)
    assert response.status_code == 400
    assert "call_id" in response.json()["error"]["message"]
    assert nothing_stored(controller)


def test_oversized_body_is_413(start_controller: StartController) -> None:
    """A body over 1 MiB is refused with 413 before anything else."""
    controller = start_controller()
    response = signed_post(controller.webhook_url, b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_entity_too_large"


@pytest.mark.parametrize("event_type", ["batch.completed", "live.transport.incoming"])
def test_other_event_types_are_acknowledged_and_ignored(
    emulator: EmulatorThread, start_controller: StartController, event_type: str
) -> None:
    """Events other than realtime.call.incoming get a 2xx and cause nothing."""
    controller = start_controller()
    emulator.send_webhook(event_type)
    wait_for(lambda: emulator.emulator.webhook_attempts, what="the delivery")
    attempt = emulator.emulator.webhook_attempts[0]
    assert attempt.status == 200
    assert nothing_stored(controller)


def test_old_secret_still_verifies_during_a_rotation(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """With OPENAI_WEBHOOK_SECRET=new,old a delivery signed with the old secret is handled."""
    controller = start_controller(env={"OPENAI_WEBHOOK_SECRET": f"{OTHER_SECRET},{WEBHOOK_SECRET}"})
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(5)])
    wait_for(lambda: call.webhook_attempts, what="the delivery to be answered")
    assert call.webhook_attempts[0].status == 200
    assert controller.services.store.get_call(call.call_id) is not None


def test_unknown_path_is_a_json_404(start_controller: StartController) -> None:
    """Unknown paths answer a JSON error, not an HTML page."""
    controller = start_controller()
    response = httpx.get(controller.url + "/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_is_a_json_405(start_controller: StartController) -> None:
    """GET on the webhook endpoint is a JSON 405."""
    controller = start_controller()
    response = httpx.get(controller.webhook_url)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.store_subject
def test_store_down_answers_503_and_acts_on_nothing(
    emulator: EmulatorThread, controller_env: dict[str, str]
) -> None:
    """With the database unreachable the webhook is 503 (so OpenAI redelivers), no call action."""
    env = {
        **controller_env,
        "CALLCENTER_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/none",
    }
    settings = Settings.from_env(env, config_path=example_config_path())
    controller = InProcessController(settings)
    try:
        ready = httpx.get(controller.url + "/readyz")
        assert ready.status_code == 503
        emulator.emulator.webhook_url = None
        call = emulator.place_call(to_number=SUPPORT)
        body = json.dumps(
            {
                "id": "evt_1",
                "object": "event",
                "created_at": int(time.time()),
                "type": "realtime.call.incoming",
                "data": {"call_id": call.call_id, "sip_headers": call.sip_headers},
            }
        ).encode()
        response = signed_post(controller.webhook_url, body)
        assert (response.status_code, response.json()["error"]["code"]) == (
            503,
            "store_unavailable",
        )
        assert call.rest_requests == []
    finally:
        controller.stop()


def test_health_and_readiness(start_controller: StartController) -> None:
    """/healthz answers while the process lives; /readyz when the store is migrated."""
    controller = start_controller()
    assert httpx.get(controller.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(controller.url + "/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")


@pytest.mark.store_subject
def test_readiness_fails_on_an_unmigrated_store(
    controller_env: dict[str, str], store_url: str
) -> None:
    """/readyz is 503 when the database has not been migrated."""
    settings = Settings.from_env(controller_env, config_path=example_config_path())
    controller = InProcessController(settings)
    try:
        ready = httpx.get(controller.url + "/readyz")
        assert ready.status_code == 503
        assert "migrate" in ready.json()["error"]["message"]
    finally:
        controller.stop()
    with Store.open(store_url) as store:
        store.migrate()


# -- hostile input: a 4xx, one warning, no traceback, nothing changed -------------------------


def signed_headers(body: bytes, webhook_id: str = "wh_hostile") -> dict[str, str]:
    return webhook_headers(WEBHOOK_SECRET, webhook_id, int(time.time()), body)


def refused_once(caplog: pytest.LogCaptureFixture, code: str) -> None:
    """The delivery left exactly one WARNING ``webhook refused`` with its code, no traceback."""
    refusals = [r for r in caplog.records if r.getMessage() == "webhook refused"]
    assert [(r.levelname, getattr(r, "code", None)) for r in refusals] == [("WARNING", code)]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.parametrize(
    ("header", "value", "code"),
    [
        ("webhook-signature", "v1,\xe9t\xe9", "malformed"),
        ("webhook-signature", "v1,\x7f", "malformed"),
        ("webhook-id", "wh_\xff", "malformed"),
        ("webhook-timestamp", "17\xb2", "bad_timestamp"),
    ],
)
def test_header_bytes_no_signature_can_hold_are_400(
    emulator: EmulatorThread,
    start_controller: StartController,
    caplog: pytest.LogCaptureFixture,
    header: str,
    value: str,
    code: str,
) -> None:
    """Non-ASCII or control bytes in a signature header are a 400, checked before the SDK."""
    controller = start_controller()
    headers: dict[str, str | bytes] = {**signed_headers(incoming())}
    headers[header] = value.encode("latin-1")
    response = httpx.post(controller.webhook_url, content=incoming(), headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert nothing_stored(controller)
    refused_once(caplog, code)


def test_deeply_nested_json_is_400(
    start_controller: StartController, caplog: pytest.LogCaptureFixture
) -> None:
    """A signed body nested 10,000 deep is a 400, not a RecursionError."""
    controller = start_controller()
    body = b'{"type": "realtime.call.incoming", "data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    response = signed_post(controller.webhook_url, body)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "too_deep")
    assert nothing_stored(controller)
    refused_once(caplog, "too_deep")


@pytest.mark.parametrize(
    "call_id",
    ["", ".", "..", "../rtc_x", "rtc_a/../b", "rtc_", "rtc_" + "a" * 200, "rtc_a\x00", "rtc_é"],
)
def test_odd_call_ids_are_400_before_any_claim(
    emulator: EmulatorThread,
    start_controller: StartController,
    caplog: pytest.LogCaptureFixture,
    call_id: str,
) -> None:
    """A call_id not of OpenAI's rtc_ form is a 400: no claim, no call action, no cap slot."""
    controller = start_controller()
    response = signed_post(controller.webhook_url, incoming(call_id))
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_call_id")
    assert nothing_stored(controller)
    assert emulator.emulator.rest_requests == []
    refused_once(caplog, "invalid_call_id")


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "realtime.call.incoming",
        {"type": 7, "data": {}},
        {"type": "realtime.call.incoming", "id": "evt_1", "created_at": 1, "data": []},
        {
            "type": "realtime.call.incoming",
            "id": "evt_\x00",
            "created_at": 1,
            "data": {"call_id": "rtc_wrong_types", "sip_headers": []},
        },
    ],
)
def test_wrong_types_are_400(start_controller: StartController, payload: object) -> None:
    """A signed event of the wrong shape (not an object, a number for a type…) is a 400."""
    controller = start_controller()
    response = signed_post(controller.webhook_url, json.dumps(payload).encode())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_event"
    assert nothing_stored(controller)


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_chunked_body_over_the_limit_is_413(
    start_controller: StartController, caplog: pytest.LogCaptureFixture
) -> None:
    """A chunked body is counted as it streams: past 1 MiB it is a 413, not a forged 401."""
    controller = start_controller()
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = httpx.post(
        controller.webhook_url, content=chunks(body), headers=signed_headers(body)
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_entity_too_large"
    refused_once(caplog, "request_entity_too_large")


def test_chunked_body_of_exactly_the_limit_is_read_whole(
    start_controller: StartController,
) -> None:
    """A chunked body of exactly 1 MiB is read whole (and verifies), not refused as too large."""
    controller = start_controller()
    head = b'{"type": "batch.completed", "pad": "'
    body = head + b"x" * (1024 * 1024 - len(head) - 2) + b'"}'
    assert len(body) == 1024 * 1024
    response = httpx.post(
        controller.webhook_url, content=chunks(body), headers=signed_headers(body)
    )
    assert (response.status_code, response.json()["status"]) == (200, "ignored")


def test_body_cut_short_is_400(
    start_controller: StartController, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that stops sending before its Content-Length gets a 400 and changes nothing."""
    controller = start_controller()
    body = incoming()
    head = ["POST /webhooks/openai HTTP/1.1", f"Host: {controller.url[7:]}"]
    head += [f"{name}: {value}" for name, value in signed_headers(body).items()]
    head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    host, port = controller.url[7:].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall("\r\n".join(head).encode() + body[:20])
        sock.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 400")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "incomplete_body"
    assert nothing_stored(controller)
    refused_once(caplog, "incomplete_body")


def test_control_characters_in_sip_headers_are_cleaned_and_the_call_routed(
    emulator: EmulatorThread, start_controller: StartController, store_url: str
) -> None:
    """NUL, CR/LF and other controls in SIP headers never reach the store; the call is routed."""
    controller = start_controller()
    odd = [("X-Odd", "a\x00b"), ("X-Injected", "1\r\nVia: evil"), ("X-Bell\x07", "\x1b[31mred")]
    call = emulator.place_call(
        from_number="+14155550123\x00", to_number=SUPPORT, headers=odd, script=[Wait(5)]
    )
    wait_for(lambda: call.webhook_attempts, what="the delivery to be answered")
    assert call.webhook_attempts[0].status == 200
    store = controller.services.store
    wait_for(lambda: (c := store.get_call(call.call_id)) is not None and c.status == "active")
    record = store.get_call(call.call_id)
    assert record is not None
    assert record.route == "support"
    stored_headers = dict(record.sip_headers)
    assert stored_headers["X-Odd"] == "a\ufffdb"
    assert stored_headers["X-Injected"] == "1\ufffd\ufffdVia: evil"
    assert stored_headers["X-Bell\ufffd"] == "\ufffd[31mred"
    assert record.caller_number is None  # a From with a NUL in it names nobody
    assert not any(
        ord(ch) < 32 and ch != "\t" for pair in record.sip_headers for ch in "".join(pair)
    )


# -- the pure checks of intake/sanitize.py ------------------------------------------------------


def test_json_depth_is_bounded_at_its_limit() -> None:
    """JSON 64 deep passes, 65 deep does not; brackets inside strings do not count."""
    assert not sanitize.json_too_deep(b"[" * 64 + b"]" * 64)
    assert sanitize.json_too_deep(b"[" * 65 + b"]" * 65)
    assert sanitize.json_too_deep(b'{"a":' * 65 + b"1" + b"}" * 65)
    assert not sanitize.json_too_deep(json.dumps({"a": "[{" * 1000 + '\\"'}).encode())


@pytest.mark.timeout(10)
def test_json_depth_check_is_linear_on_unterminated_strings() -> None:
    """An unterminated string of escaped quotes is scanned once, not again from every quote."""
    assert not sanitize.json_too_deep(b'\\"' * 300_000)  # quadratic: minutes; linear: 0.2 s


def test_sip_headers_are_capped_in_number_and_length() -> None:
    """Past 256 headers the rest are dropped, past 8 KiB a value is cut; both are counted."""
    many = [(f"X-{n}", "v") for n in range(sanitize.MAX_HEADERS + 4)]
    kept, changed = sanitize.clean_sip_headers(many)
    assert (len(kept), changed) == (sanitize.MAX_HEADERS, 4)
    kept, changed = sanitize.clean_sip_headers([("X-Long", "x" * 100_000), ("To", "<sip:a@b>")])
    assert (len(kept[0][1]), kept[1], changed) == (
        sanitize.MAX_HEADER_CHARS,
        ("To", "<sip:a@b>"),
        1,
    )


def test_a_value_read_with_its_line_ending_keeps_its_meaning() -> None:
    """A trailing CR/LF is dropped, not replaced, so a From read with its CRLF still parses."""
    kept, changed = sanitize.clean_sip_headers([("From", "<sip:+14155550123@a.example>\r\n")])
    assert (kept, changed) == ([("From", "<sip:+14155550123@a.example>")], 1)


@pytest.mark.parametrize(
    ("value", "kept"),
    [("srtp", "srtp"), ("rtp", "rtp"), ("dtls-srtp", "dtls-srtp"), ("s\x00", None)],
)
def test_media_security_is_kept_only_as_a_token(value: str, kept: str | None) -> None:
    """sip_media_security is kept when it is a short token, and unknown otherwise."""
    assert sanitize.media_security(value) == kept


def test_openai_call_ids_pass() -> None:
    """OpenAI's call ids (rtc_ and hex, or with more underscores) pass the check."""
    assert sanitize.valid_call_id("rtc_479a275623b54bdb9b6fbae2f7cbd408")
    assert sanitize.valid_call_id("rtc_u1_9a0b")
