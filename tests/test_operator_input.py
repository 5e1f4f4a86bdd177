"""Hostile input to the operator API: a 4xx with a fixed JSON error, never a 5xx or internals."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callcenter.emulator import EmulatorThread
from tests.harness import InProcessController
from tests.operator_support import Api, live_call, operator_center

# What a Python exception or a driver would put in a message; no error body may carry it.
INTERNALS = ("invalid literal", "Traceback", "Error", "line ", "psycopg", "sqlite", "NUL")


@pytest.fixture
def api(tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]) -> Iterator[Api]:
    """The operator API of one controller, as the operator ada."""
    center = operator_center(tmp_path, emulator, controller_env)
    controller: InProcessController = center.start()
    yield Api(controller.url)
    center.stop()


def forged_cursor(at: str, call_id: object = "rtc_x") -> str:
    """A cursor built the way the API builds one, around any values."""
    raw = json.dumps([at, call_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    """Status, code and message of a JSON error, checked free of internals."""
    assert response.headers["content-type"] == "application/json", response.text
    error = response.json()["error"]
    assert not [word for word in INTERNALS if word in error["message"]], error
    return response.status_code, error["code"], error["message"]


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [("/calls", {"limit": "x"}, "limit"), ("/calls", {"limit": "1e3"}, "limit"),
     ("/calls", {"limit": "-1"}, "limit"), ("/calls", {"limit": "٣"}, "limit"),
     ("/calls", {"limit": "9" * 40}, "limit"), ("/audit", {"limit": "ten"}, "limit"),
     ("/audit", {"before": "x"}, "before"), ("/audit", {"before": "9" * 30}, "before"),
     ("/audit", {"before": str(2**63)}, "before"), ("/calls", {"cursor": "zz"}, "cursor"),
     ("/calls", {"cursor": forged_cursor("9999-12-31T23:00:00-05:00")}, "cursor"),
     ("/calls", {"cursor": forged_cursor("2026-01-01T00:00:00+00:00", 5)}, "cursor"),
     ("/calls", {"since": "yesterday"}, "since"), ("/calls", {"until": "2026-01-01"}, "until"),
     ("/calls", {"since": "9999-12-31T23:00:00-05:00"}, "since"),
     ("/calls", {"until": "0001-01-01T00:00:00+01:00"}, "until"),
     ("/calls", {"status": "\u202e"}, "status")],
)  # fmt: skip
def test_a_bad_parameter_is_400_naming_it(
    api: Api, path: str, params: dict[str, str], named: str
) -> None:
    """Each bad query parameter gets a 400 whose fixed message names it, never Python's text."""
    status, code, message = refusal(api.get(path, **params))
    assert (status, code) in ((400, "bad_query"), (400, "bad_status"))
    assert message.startswith(named + " must be"), message


@pytest.mark.parametrize(
    "params",
    [{"route": "a\x00b"}, {"number": "\x00"}, {"status": "active\x00"}, {"x\x00": "1"}],
)
def test_control_characters_in_the_query_are_400(api: Api, params: dict[str, str]) -> None:
    """A NUL or another control character in the query never reaches the database."""
    assert refusal(api.get("/calls", **params))[:2] == (400, "bad_request")


@pytest.mark.parametrize(
    "call_id", ["rtc_%00", "rtc_%0A", "x" * 300, "rtc_%E2%98%83", "%20", "rtc_a%27b"]
)
def test_odd_call_ids_are_unknown_calls(api: Api, call_id: str) -> None:
    """An id no call can have (control characters, overlong, odd characters): 404 everywhere."""
    for method, suffix in (("GET", ""), ("GET", "/stream"), ("POST", "/hangup")):
        url = f"{api.url}/calls/{call_id}{suffix}"
        response = httpx.request(method, url, headers=api.headers(), timeout=10)
        assert refusal(response)[:2] == (404, "unknown_call"), (method, suffix)


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"text": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
     b"\xff\xfe", b'{"text": "\\ud800"}', b"{" * 3],
)  # fmt: skip
def test_deep_or_broken_json_bodies_are_refused(api: Api, body: bytes) -> None:
    """JSON nested past the parser's depth, or not JSON at all: a 4xx, never a RecursionError."""
    headers = {**api.headers(), "Content-Type": "application/json"}
    url = f"{api.url}/calls/rtc_nope/instruct"
    status, _, _ = refusal(httpx.post(url, content=body, headers=headers, timeout=10))
    assert 400 <= status < 500


def test_an_oversized_body_is_refused(api: Api) -> None:
    """A command body larger than any command: refused as not a JSON object, 400."""
    body = json.dumps({"text": "x" * 100_000}).encode()
    headers = {**api.headers(), "Content-Type": "application/json"}
    response = httpx.post(f"{api.url}/calls/rtc_nope/instruct", content=body, headers=headers)
    assert refusal(response)[:2] == (400, "bad_request")


def test_an_odd_last_event_id_restarts_the_stream(api: Api, emulator: EmulatorThread) -> None:
    """A Last-Event-ID that is no event id (a superscript digit, say) streams from the start."""
    call = live_call(emulator, api)
    api.post(f"/calls/{call.call_id}/hangup")
    headers = {**api.headers(), "Last-Event-ID": "\u00b2".encode("latin-1")}
    response = httpx.get(f"{api.url}/calls/{call.call_id}/stream", headers=headers, timeout=10)
    assert response.status_code == 200
    assert "event: end" in response.text
