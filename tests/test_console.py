"""The console over real HTTP: login, session, CSRF, escaping, actions, history and CSV."""

from __future__ import annotations

import html
import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from callcenter.call.vocabulary import CallOutcome, EventKind
from callcenter.emulator import EmulatorThread, Say
from callcenter.operators.console import SECRET_FILE
from tests.harness import InProcessController, wait_for
from tests.operator_support import (
    ADA,
    GREETED,
    HOLD,
    Api,
    csrf_of,
    error_code,
    live_call,
    logged_in,
    operator_center,
)
from tests.sideband_support import SUPPORT, finished
from tests.test_store import claim_with

EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
def controller(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[InProcessController]:
    """A controller with the test operators' tokens."""
    center = operator_center(tmp_path, emulator, controller_env)
    yield center.start()
    center.stop()


def test_pages_need_a_session(controller: InProcessController) -> None:
    """Without logging in, every page sends the visitor to the login form."""
    for path in ("/console", "/console/history", "/console/calls/rtc_x", "/console/live"):
        response = httpx.get(controller.url + path)
        assert response.status_code == 302
        assert response.headers["location"].endswith("/console/login")


def test_a_wrong_token_does_not_log_in(controller: InProcessController) -> None:
    """A wrong token: 401, the form again, an audit row."""
    client = httpx.Client(base_url=controller.url)
    csrf = csrf_of(client.get("/console/login").text)
    response = client.post("/console/login", data={"token": "nope-0000000000000", "csrf": csrf})
    assert response.status_code == 401
    assert "not valid" in response.text
    audit = Api(controller.url).get("/audit").json()["entries"]
    assert audit[0]["result"] == "wrong_token"


def test_a_post_without_the_csrf_token_is_refused(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """A form posted without (or with another) CSRF token: 400, nothing done."""
    call = live_call(emulator, Api(controller.url))
    client = logged_in(controller)
    for data in ({}, {"csrf": "forged"}):
        response = client.post(f"/console/calls/{call.call_id}/hangup", data=data)
        assert response.status_code == 400
    assert call.ended_by is None


def test_the_session_cookie_is_signed_with_a_kept_key(
    controller: InProcessController, tmp_path: Path
) -> None:
    """The generated key lives 0600 in the data dir; the cookie is HttpOnly, SameSite."""
    client = httpx.Client(base_url=controller.url)
    csrf = csrf_of(client.get("/console/login").text)
    response = client.post("/console/login", data={"token": ADA, "csrf": csrf})
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    key = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_untrusted_values_are_escaped(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """A malicious display name, SIP header and transcript line are shown as text."""
    script = [*GREETED, Say(EVIL), HOLD]
    call = emulator.place_call(
        to_number=SUPPORT, caller_name=EVIL, headers=[("X-Evil", EVIL)], script=script
    )
    store = controller.services.store
    wait_for(lambda: any(e.data["text"] == EVIL for e in store.transcript(call.call_id)))
    client = logged_in(controller)
    for path in (f"/console/calls/{call.call_id}", "/console", "/console/history"):
        page = client.get(path).text
        assert "<img src=x" not in page, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in page, path


def test_transfer_from_the_call_page(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """The transfer form refers the call to the chosen target."""
    call = live_call(emulator, Api(controller.url))
    client = logged_in(controller)
    csrf = csrf_of(client.get(f"/console/calls/{call.call_id}").text)
    response = client.post(
        f"/console/calls/{call.call_id}/transfer", data={"csrf": csrf, "target": "sales"}
    )
    assert response.status_code == 302
    finished(controller, call.call_id)
    assert call.refer_target == "tel:+14155550199"
    (entry,) = [
        e for e in Api(controller.url).get("/audit").json()["entries"] if e["action"] == "transfer"
    ]
    assert (entry["operator"], entry["result"]) == ("ada", "delivered")


def test_the_call_page_lists_every_transfer_attempt(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """Desk refused, backup took the call: the page shows both attempts and the final target."""
    emulator.faults.script_transfer("sip:desk@pbx.example.com", "refused", status=403)
    call = live_call(emulator, Api(controller.url))
    client = logged_in(controller)
    csrf = csrf_of(client.get(f"/console/calls/{call.call_id}").text)
    client.post(f"/console/calls/{call.call_id}/transfer", data={"csrf": csrf, "target": "desk"})
    finished(controller, call.call_id)
    page = client.get(f"/console/calls/{call.call_id}").text
    table = page[
        page.index('id="transfers"') : page.index("</table>", page.index('id="transfers"'))
    ]
    assert "<td>desk</td>" in table
    assert "<td>refused</td>" in table
    assert "<td>backup</td>" in table
    assert "<td>transferred</td>" in table
    assert '<code id="final-target">sip:backup@pbx.example.com</code>' in page


def test_odd_console_urls_are_refused(controller: InProcessController) -> None:
    """An impossible call id is 404 and a control character in the query 400, as JSON."""
    client = logged_in(controller)
    odd_id = client.get("/console/calls/rtc_%00x")
    odd_query = client.get("/console/history", params={"q": "+1\x00"})
    assert (odd_id.status_code, odd_id.json()["error"]["message"]) == (404, "No call has that id.")
    assert (odd_query.status_code, odd_query.json()["error"]["code"]) == (400, "bad_request")


def audit_rows(controller: InProcessController, action: str) -> list[dict[str, object]]:
    """The audit trail's rows of ``action``, newest first."""
    entries = Api(controller.url).get("/audit").json()["entries"]
    return [e for e in entries if e["action"] == action]


def test_a_refused_console_transfer_is_audited(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """A transfer to an unknown target from the console is refused, flashed and audited."""
    call = live_call(emulator, Api(controller.url))
    client = logged_in(controller)
    csrf = csrf_of(client.get(f"/console/calls/{call.call_id}").text)
    response = client.post(
        f"/console/calls/{call.call_id}/transfer", data={"csrf": csrf, "target": "nowhere"}
    )
    assert response.status_code == 302
    assert "transfer refused: no target" in client.get(response.headers["location"]).text
    (entry,) = audit_rows(controller, "transfer")
    assert (entry["operator"], entry["call_id"], entry["result"]) == (
        "ada",
        call.call_id,
        "refused:422:unknown_target",
    )
    assert call.refer_target is None


def test_console_actions_on_unknown_or_ended_calls_are_audited(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """Hanging up an unknown call, or one already over, from the console: refusals audited."""
    call = live_call(emulator, Api(controller.url))
    client = logged_in(controller)
    csrf = csrf_of(client.get(f"/console/calls/{call.call_id}").text)
    client.post(f"/console/calls/{call.call_id}/hangup", data={"csrf": csrf})
    finished(controller, call.call_id)
    client.post(f"/console/calls/{call.call_id}/hangup", data={"csrf": csrf})
    client.post("/console/calls/rtc_nope/instruct", data={"csrf": csrf, "text": "hello"})
    results = [(e["call_id"], e["result"]) for e in audit_rows(controller, "hangup")]
    assert results == [(call.call_id, "refused:409:call_not_live"), (call.call_id, "delivered")]
    ((call_id, result),) = [(e["call_id"], e["result"]) for e in audit_rows(controller, "instruct")]
    assert (call_id, result) == ("rtc_nope", "refused:404:unknown_call")


def test_history_searches_and_exports_csv(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """History finds a call by number; the CSV export has it with a header row."""
    call = live_call(emulator, Api(controller.url))
    client = logged_in(controller)
    page = client.get("/console/history", params={"number": SUPPORT}).text
    assert call.call_id in page
    assert call.call_id not in client.get("/console/history", params={"number": "+1999"}).text
    exported = client.get("/console/history.csv", params={"number": SUPPORT})
    assert exported.headers["content-type"].startswith("text/csv")
    header, row = exported.text.strip().splitlines()
    assert header.startswith("call_id,status,route")
    assert row.startswith(call.call_id)


def test_the_call_page_is_a_timeline_with_tool_calls_pretty_printed_and_escaped(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """A tool call's arguments and result are indented JSON in <details>, still escaped."""
    call = live_call(emulator, Api(controller.url))
    store = controller.services.store
    tool = {"name": "lookup", "arguments": json.dumps({"order": EVIL}), "output": {"eta": "Mon"},
            "ok": True, "error": None, "duration_ms": 12.5}  # fmt: skip
    store.add_event(call.call_id, EventKind.TOOL, tool, datetime.now(UTC))
    store.add_event(call.call_id, EventKind.DTMF, {"key": "5"}, datetime.now(UTC))
    page = logged_in(controller).get(f"/console/calls/{call.call_id}").text
    assert "<img src=x" not in page
    assert "<summary>arguments</summary><pre>{\n  &#34;order&#34;: &#34;&lt;img src=x" in page
    assert "<summary>result</summary><pre>{\n  &#34;eta&#34;: &#34;Mon&#34;\n}</pre>" in page
    assert "12.5 ms" in page
    assert "<kbd>5</kbd>" in page
    assert "In conversation with the agent" in page  # the outcome in words
    Api(controller.url).post(f"/calls/{call.call_id}/hangup")
    finished(controller, call.call_id)
    page = logged_in(controller).get(f"/console/calls/{call.call_id}").text
    assert "<b>Ending</b> (operator ada): Hung up by an operator" in page
    assert "<b>Call over</b>: Hung up by an operator" in page


def test_history_and_the_api_filter_by_outcome_and_transcript_words_a_page_at_a_time(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """Words said find the call in History and GET /calls; pages link on; stats count it."""
    api = Api(controller.url)
    call = live_call(emulator, api, [*GREETED, Say("Where is my parcel?"), HOLD])
    store = controller.services.store
    said = lambda: any("parcel" in str(e.data["text"]) for e in store.transcript(call.call_id))  # noqa: E731
    wait_for(said, what="the caller's line")
    for n in range(50):  # older calls, enough for a second page
        claim_with(store, f"rtc_old{n:02d}", CallOutcome.COMPLETED)
    assert [c["call_id"] for c in api.get("/calls", text="PARCEL?").json()["calls"]] == [
        call.call_id
    ]
    assert api.get("/calls", text="parcel", outcome="completed").json()["calls"] == []
    assert len(api.get("/calls", outcome="completed", limit=60).json()["calls"]) == 50
    assert error_code(api.get("/calls", outcome="bogus")) == "bad_query"
    client = logged_in(controller)
    found = client.get("/console/history", params={"text": "parcel", "outcome": "accepted"})
    assert call.call_id in found.text
    assert "rtc_old" not in found.text
    first = client.get("/console/history").text
    assert call.call_id in first
    assert 'id="next-page"' in first
    older = re.search(r'href="([^"]+)" id="next-page"', first)
    assert older is not None
    assert older.group(1)
    second = client.get(html.unescape(older.group(1))).text
    assert "rtc_old00" in second
    assert 'id="first-page"' in second
    assert client.get("/console/history", params={"outcome": "nope"}).status_code == 400
    stats = api.get("/stats").json()
    assert stats["live"]["calls"] == 1
    assert stats["calls"] >= 1
    backwards = api.get("/stats", since="2026-01-01T00:00:00Z", until="2025-01-01T00:00:00Z")
    assert error_code(backwards) == "bad_query"
    dashboard = client.get("/console").text
    assert 'id="stat-live">1<' in dashboard
    assert "not measured" in dashboard
