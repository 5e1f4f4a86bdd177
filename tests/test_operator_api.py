"""The operator API over real HTTP: auth, listing, timelines, actions, streaming and audit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from callcenter.call.vocabulary import CallOutcome, DecisionKind
from callcenter.emulator import CallState, EmulatorThread, ModelCallTool, ModelSay, Say
from callcenter.store import DecisionRecord, NewCall, Store
from tests.harness import InProcessController, wait_for
from tests.operator_support import (
    ADA,
    GREETED,
    HOLD,
    Api,
    error_code,
    live_call,
    operator_center,
)
from tests.sideband_support import CallCenter, config_with, finished, sent

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ENDPOINTS = [
    ("GET", "/calls"),
    ("GET", "/calls/rtc_x"),
    ("GET", "/calls/rtc_x/stream"),
    ("GET", "/audit"),
    ("POST", "/calls/rtc_x/transfer"),
    ("POST", "/calls/rtc_x/hangup"),
    ("POST", "/calls/rtc_x/instruct"),
]


@pytest.fixture
def center(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[CallCenter]:
    """Controllers on the sideband test config, with the test operators' tokens."""
    started = operator_center(tmp_path, emulator, controller_env)
    yield started
    started.stop()


@pytest.fixture
def controller(center: CallCenter) -> InProcessController:
    """One controller."""
    return center.start()


@pytest.fixture
def api(controller: InProcessController) -> Api:
    """The operator API of ``controller``, as the operator ada."""
    return Api(controller.url)


def seed(
    store: Store, call_id: str, at: datetime, caller: str, route: str, outcome: CallOutcome
) -> None:
    """Put a call in the store as intake would have."""
    call = NewCall(call_id, f"wh_{call_id}", f"evt_{call_id}", at, caller, None, None,
                   "+18005550100", None, [], None)  # fmt: skip
    decision = DecisionRecord(DecisionKind.ACCEPT, route, "test", None, None)
    store.claim_call(call, lambda _: decision, owner="test", stale_after=timedelta(1), now=at)
    if outcome.final:
        store.record_outcome(call_id, outcome=outcome, at=at)
    else:
        store.mark_answered(call_id, outcome=outcome, at=at)


def request(url: str, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    """One request to the API without a body."""
    return httpx.request(method, url + "/api/v1" + path, headers=headers, json={}, timeout=10)


# -- auth -------------------------------------------------------------------------------------


def test_every_endpoint_refuses_a_missing_token(controller: InProcessController) -> None:
    """No Authorization header: 401 with WWW-Authenticate: Bearer, on every endpoint."""
    for method, path in ENDPOINTS:
        response = request(controller.url, method, path, {})
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert error_code(response) == "unauthorized"


def test_every_endpoint_refuses_a_wrong_token(controller: InProcessController) -> None:
    """A token nobody holds: 401 on every endpoint."""
    for method, path in ENDPOINTS:
        headers = {"Authorization": f"Bearer {ADA}x"}
        response = request(controller.url, method, path, headers)
        assert response.status_code == 401, (method, path)


def test_without_tokens_the_api_is_disabled(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> None:
    """No CALLCENTER_OPERATOR_TOKENS: 403 operator_api_disabled."""
    center = CallCenter(tmp_path, emulator, controller_env)
    try:
        response = Api(center.start().url).get("/calls")
    finally:
        center.stop()
    assert (response.status_code, error_code(response)) == (403, "operator_api_disabled")


def test_repeated_failures_are_answered_429(controller: InProcessController, api: Api) -> None:
    """After 20 failures from one address even a right token waits, told so by Retry-After."""
    for _ in range(20):
        assert Api(controller.url, "wrong-token-000000").get("/calls").status_code == 401
    response = api.get("/calls")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1


def test_failures_are_counted_across_controllers_on_one_store(center: CallCenter) -> None:
    """Two controllers on one database file share the count: 10 failures on each, then 429."""
    first, second = center.start(), center.start()
    for controller in (first, second):
        for _ in range(10):
            assert Api(controller.url, "wrong-token-000000").get("/calls").status_code == 401
    for controller in (first, second):
        response = Api(controller.url).get("/calls")
        assert (response.status_code, error_code(response)) == (429, "too_many_failures")


def test_failed_logins_are_audited(controller: InProcessController, api: Api) -> None:
    """A failed login leaves an audit row with the client address and no operator."""
    Api(controller.url, None).get("/calls")
    (entry,) = [e for e in api.get("/audit").json()["entries"] if e["action"] == "login"]
    assert (entry["operator"], entry["result"], entry["client"]) == (
        None,
        "missing_token",
        "127.0.0.1",
    )


# -- listing ----------------------------------------------------------------------------------


def test_calls_are_filtered(controller: InProcessController, api: Api) -> None:
    """status, route, number and the time range each narrow the list."""
    store = controller.services.store
    seed(store, "rtc_a", T0, "+14155550001", "support", CallOutcome.ACCEPTED)
    seed(store, "rtc_b", T0 + timedelta(minutes=1), "+14155550002", "sales", CallOutcome.REJECTED)
    seed(store, "rtc_c", T0 + timedelta(minutes=2), "+14155550001", "support", CallOutcome.REJECTED)

    def ids(**params: str) -> list[str]:
        response = api.get("/calls", **params)
        assert response.status_code == 200, response.text
        return [c["call_id"] for c in response.json()["calls"]]

    assert ids() == ["rtc_c", "rtc_b", "rtc_a"]
    assert ids(status="rejected") == ["rtc_c", "rtc_b"]
    assert ids(route="support") == ["rtc_c", "rtc_a"]
    assert ids(number="+14155550001") == ["rtc_c", "rtc_a"]
    assert ids(since=(T0 + timedelta(minutes=1)).isoformat()) == ["rtc_c", "rtc_b"]
    assert ids(until=(T0 + timedelta(minutes=1)).isoformat()) == ["rtc_a"]


def test_calls_are_paginated_with_a_cursor(controller: InProcessController, api: Api) -> None:
    """limit and next_cursor walk the whole list once, newest first."""
    store = controller.services.store
    for index in range(5):
        seed(
            store,
            f"rtc_{index}",
            T0 + timedelta(seconds=index),
            "+1415555",
            "s",
            CallOutcome.ACCEPTED,
        )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        body = api.get("/calls", **params).json()
        seen += [c["call_id"] for c in body["calls"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["rtc_4", "rtc_3", "rtc_2", "rtc_1", "rtc_0"]


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"status": "nope"}, {"cursor": "zz"},
     {"since": "yesterday"}, {"until": "2026-01-01T00:00:00"}],
)  # fmt: skip
def test_bad_list_queries_are_400(api: Api, params: dict[str, str]) -> None:
    """A bad limit, status, cursor or time: 400, never a 5xx."""
    assert api.get("/calls", **params).status_code == 400


def test_an_unknown_call_is_404(api: Api) -> None:
    """GET, stream and every action on an unknown call: 404 unknown_call."""
    for response in (
        api.get("/calls/rtc_nope"),
        api.get("/calls/rtc_nope/stream"),
        api.post("/calls/rtc_nope/hangup", {}),
        api.post("/calls/rtc_nope/transfer", {"target": "sales"}),
        api.post("/calls/rtc_nope/instruct", {"text": "hi"}),
    ):
        assert (response.status_code, error_code(response)) == (404, "unknown_call")


def test_the_timeline_has_tools_escalation_and_transfer(
    emulator: EmulatorThread, controller: InProcessController, api: Api
) -> None:
    """After a tool run and an escalation, the timeline shows every part of the call."""
    script = [
        *GREETED,
        Say("Where is order A-1042?"),
        ModelCallTool("lookup_order", {"order_id": "A-1042"}),
        ModelSay("It ships tomorrow."),
        Say("Let me talk to a human."),
        ModelSay("Caller asked for a human.", out_of_band=True),
        HOLD,
    ]
    call = emulator.place_call(to_number="+18005550100", script=script)
    finished(controller, call.call_id)
    body = api.get(f"/calls/{call.call_id}").json()
    assert body["status"] == "referred"
    assert body["decision_detail"]["decision"] == "accept"
    texts = [line["text"] for line in body["transcript"]]
    assert "Where is order A-1042?" in texts
    assert "It ships tomorrow." in texts
    assert body["tool_calls"][0]["data"]["name"] == "lookup_order"
    assert body["escalations"][0]["data"]["trigger"] == "phrase"
    assert body["handoff"]["summary"] == "Caller asked for a human."
    assert body["transfer"][0]["kind"] == "transferred"
    assert body["end"]["outcome"] == "transferred"
    assert body["usage"] is not None


# -- actions ----------------------------------------------------------------------------------


def test_transfer_by_target_name(emulator: EmulatorThread, controller: InProcessController) -> None:
    """POST transfer {"target": "sales"}: the call is referred to the target's URI."""
    api = Api(controller.url)
    call = live_call(emulator, api)
    response = api.post(f"/calls/{call.call_id}/transfer", {"target": "sales"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["result"], answer["target"]) == ("transferred", "sales")
    assert [(t["target"], t["result"]) for t in answer["targets"]] == [("sales", "transferred")]
    record = finished(controller, call.call_id)
    assert (record.outcome, record.escalation_trigger) == ("transferred", "operator")
    assert call.refer_target == "tel:+14155550199"
    (attempt,) = api.get(f"/calls/{call.call_id}").json()["transfers"]
    assert (attempt["target"], attempt["uri"], attempt["result"]) == (
        "sales",
        "tel:+14155550199",
        "transferred",
    )
    assert attempt["started_at"] <= attempt["ended_at"]


def test_a_transfer_no_target_takes_is_answered_transfer_failed(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """Desk busy, backup refusing: the answer says transfer_failed with both targets."""
    short = ("ticket_header = true\n", "ticket_header = true\nanswer_timeout = 0.3\n")
    api = Api(center.start(config_with(short)).url)
    emulator.faults.script_transfer("sip:desk@pbx.example.com", "busy")
    emulator.faults.script_transfer("sip:backup@pbx.example.com", "refused", status=486)
    call = live_call(emulator, api)
    response = api.post(f"/calls/{call.call_id}/transfer", {"target": "desk"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["result"], answer["target"]) == ("transfer_failed", None)
    assert [(t["target"], t["result"]) for t in answer["targets"]] == [
        ("desk", "unanswered"),
        ("backup", "refused"),
    ]
    assert call.state is CallState.ACCEPTED  # the agent carries on with the caller
    body = api.get(f"/calls/{call.call_id}").json()
    assert [t["result"] for t in body["transfers"]] == ["unanswered", "refused"]
    assert body["status"] == "active"


def test_transfer_to_a_uri_is_refused_by_default(emulator: EmulatorThread, api: Api) -> None:
    """A typed URI when config does not allow them: 403 uri_targets_disabled."""
    call = live_call(emulator, api)
    response = api.post(f"/calls/{call.call_id}/transfer", {"target": "sip:x@pbx.example.com"})
    assert (response.status_code, error_code(response)) == (403, "uri_targets_disabled")
    assert call.state is CallState.ACCEPTED


def test_transfer_to_a_uri_where_config_allows_it(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """[operators] allow_uri_targets = true: a typed sip: URI is referred to."""
    config = config_with(("[[routes]]", "[operators]\nallow_uri_targets = true\n\n[[routes]]"))
    controller = center.start(config)
    api = Api(controller.url)
    call = live_call(emulator, api)
    response = api.post(f"/calls/{call.call_id}/transfer", {"target": "sip:eve@pbx.example.com"})
    assert response.status_code == 200, response.text
    finished(controller, call.call_id)
    assert call.refer_target == "sip:eve@pbx.example.com"


@pytest.mark.parametrize(
    ("body", "status"),
    [(None, 400), ([], 400), ({}, 422), ({"target": 5}, 422), ({"target": "nobody"}, 422),
     ({"target": "http://x"}, 422)],
)  # fmt: skip
def test_bad_transfer_bodies_are_refused(
    emulator: EmulatorThread, api: Api, body: object, status: int
) -> None:
    """Not an object: 400; no, or an unknown, target: 422."""
    call = live_call(emulator, api)
    assert api.post(f"/calls/{call.call_id}/transfer", body).status_code == status


def test_hangup(emulator: EmulatorThread, controller: InProcessController, api: Api) -> None:
    """POST hangup: the controller hangs the call up."""
    call = live_call(emulator, api)
    assert api.post(f"/calls/{call.call_id}/hangup").status_code == 200
    finished(controller, call.call_id)
    assert (call.state, call.ended_by) == (CallState.ENDED, "controller")


def test_instruct_sends_a_system_item_and_a_response(emulator: EmulatorThread, api: Api) -> None:
    """POST instruct: the sideband carries a system message, then response.create."""
    call = live_call(emulator, api)
    before = len(sent(call, "response.create"))
    response = api.post(f"/calls/{call.call_id}/instruct", {"text": "Offer a 10% voucher."})
    assert response.status_code == 200, response.text

    def instructed() -> bool:
        items = [e["item"] for e in sent(call, "conversation.item.create")]
        system = [i for i in items if i.get("role") == "system"]
        return bool(system) and len(sent(call, "response.create")) > before

    wait_for(instructed, what="the instruction on the sideband")
    items = [e["item"] for e in sent(call, "conversation.item.create")]
    (system,) = [i for i in items if i.get("role") == "system"]
    assert system["content"][0]["text"] == "Offer a 10% voucher."


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": 3}, {"text": "x" * 4001}])
def test_bad_instructions_are_422(emulator: EmulatorThread, api: Api, body: object) -> None:
    """No text, empty text, not text or too long: 422."""
    call = live_call(emulator, api)
    assert api.post(f"/calls/{call.call_id}/instruct", body).status_code == 422


def test_an_ended_call_is_409(
    emulator: EmulatorThread, controller: InProcessController, api: Api
) -> None:
    """Hanging up a call that already ended: 409 call_not_live."""
    call = live_call(emulator, api)
    emulator.caller_hangs_up(call.call_id)
    finished(controller, call.call_id)
    response = api.post(f"/calls/{call.call_id}/hangup")
    assert (response.status_code, error_code(response)) == (409, "call_not_live")


def test_actions_are_audited(emulator: EmulatorThread, api: Api) -> None:
    """Each action leaves a row: operator, action, call, result (refusals too)."""
    call = live_call(emulator, api)
    api.post(f"/calls/{call.call_id}/transfer", {"target": "nobody"})
    api.post(f"/calls/{call.call_id}/instruct", {"text": "Be brief."})
    entries = api.get("/audit").json()["entries"]
    rows = [(e["operator"], e["action"], e["call_id"], e["result"]) for e in entries]
    assert rows[:2] == [
        ("ada", "instruct", call.call_id, "delivered"),
        ("ada", "transfer", call.call_id, "refused:422:unknown_target"),
    ]


def test_audit_is_paginated(controller: InProcessController, api: Api) -> None:
    """limit and next_before walk the audit trail."""
    for _ in range(3):
        Api(controller.url, None).get("/calls")
    first = api.get("/audit", limit="2").json()
    second = api.get("/audit", limit="2", before=str(first["next_before"])).json()
    assert len(first["entries"]) == 2
    assert len(second["entries"]) == 1
    assert second["next_before"] is None


# -- streaming --------------------------------------------------------------------------------


def test_the_stream_carries_live_events_and_ends_with_the_call(
    emulator: EmulatorThread, api: Api
) -> None:
    """GET stream: the transcript as it is said, then an end event when the call ends."""
    call = live_call(emulator, api)
    seen: list[str] = []
    url = f"{api.url}/calls/{call.call_id}/stream"
    with httpx.stream("GET", url, headers=api.headers(), timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                seen.append(line.removeprefix("event: "))
                if seen[-1] == "transcript" and seen.count("transcript") == 1:
                    api.post(f"/calls/{call.call_id}/hangup")
    assert "transcript" in seen
    assert seen[-1] == "end"


def test_failures_are_counted_per_client_behind_a_local_proxy(
    controller: InProcessController, api: Api
) -> None:
    """Behind nginx on loopback, X-Real-IP tells clients apart: one's failures spare another."""
    for _ in range(20):
        headers = {"X-Real-IP": "203.0.113.9", "Authorization": "Bearer wrong-token-0000000"}
        request(controller.url, "GET", "/calls", headers)
    blocked = request(
        controller.url, "GET", "/calls", {**api.headers(), "X-Real-IP": "203.0.113.9"}
    )
    other = request(controller.url, "GET", "/calls", {**api.headers(), "X-Real-IP": "203.0.113.7"})
    assert (blocked.status_code, other.status_code) == (429, 200)
