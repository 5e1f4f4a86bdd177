"""Roles: one table of role × permission, and the same answers from the API, console and CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callcenter.cli.calls import calls
from callcenter.emulator import EmulatorThread
from callcenter.operators.roles import Permission, Role, allowed, refusal_message
from callcenter.store import Store
from callcenter.store.operators import AuditFilter, OperatorStore
from tests.harness import InProcessController
from tests.operator_support import (
    ADA,
    BOB,
    VERA,
    Api,
    csrf_of,
    error_code,
    live_call,
    logged_in,
    operator_center,
)


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        (Role.VIEWER, {Permission.READ}),
        (Role.OPERATOR, {Permission.READ, Permission.TRANSFER, Permission.HANGUP,
                         Permission.INSTRUCT}),
        (Role.ADMIN, set(Permission)),
    ],
)  # fmt: skip
def test_each_role_is_granted_exactly_its_permissions(role: Role, granted: set[Permission]) -> None:
    """viewer reads; operator also acts on calls; admin also reads the audit trail."""
    assert {p for p in Permission if allowed(role, p)} == granted


def test_a_refusal_names_the_role_and_what_it_lacks() -> None:
    """The 403 sentence says which role was refused what, and which role would do."""
    assert refusal_message(Role.VIEWER, Permission.HANGUP) == (
        "the viewer role may not hangup calls; it needs operator or admin"
    )
    assert "needs admin" in refusal_message(Role.OPERATOR, Permission.AUDIT)


# -- the same roles in the API, the console and the CLI, against a real server ------------------


@pytest.fixture
def controller(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[InProcessController]:
    """A controller with an admin (ada), an operator (bob) and a viewer (vera)."""
    center = operator_center(tmp_path, emulator, controller_env)
    yield center.start()
    center.stop()


def refusals(controller: InProcessController, **filters: str) -> list[tuple[object, ...]]:
    """The (operator, action, call_id, result) of the audited refusals matching ``filters``."""
    body = Api(controller.url, ADA).get("/audit", result="refused", **filters).json()
    return [(e["operator"], e["action"], e["call_id"], e["result"]) for e in body["entries"]]


def test_the_api_refuses_what_a_role_may_not_do_and_audits_it(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """A viewer reads but cannot act; only an admin reads the audit: 403 forbidden, audited."""
    call = live_call(emulator, Api(controller.url))
    viewer, operator = Api(controller.url, VERA), Api(controller.url, BOB)
    assert viewer.get(f"/calls/{call.call_id}").status_code == 200
    for action, body in (("transfer", {"target": "sales"}), ("hangup", None),
                         ("instruct", {"text": "Hurry."})):  # fmt: skip
        refused = viewer.post(f"/calls/{call.call_id}/{action}", body)
        assert (refused.status_code, error_code(refused)) == (403, "forbidden"), action
        assert "viewer role" in refused.json()["error"]["message"]
    assert (operator.get("/audit").status_code, viewer.get("/audit").status_code) == (403, 403)
    assert viewer.get(f"/calls/{call.call_id}").json()["status"] == "active"  # nothing done
    assert refusals(controller, operator="vera", call_id=call.call_id) == [
        ("vera", action, call.call_id, "refused:403:forbidden")
        for action in ("instruct", "hangup", "transfer")
    ]
    assert refusals(controller, action="audit") == [
        ("vera", "audit", None, "refused:403:forbidden"),
        ("bob", "audit", None, "refused:403:forbidden"),
    ]
    assert operator.post(f"/calls/{call.call_id}/hangup").status_code == 200


def test_the_console_hides_and_refuses_what_a_role_may_not_do(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """A viewer's call page has no action buttons and a forged POST is a 403 page, audited;
    the audit page is an admin's."""
    call = live_call(emulator, Api(controller.url))
    vera, bob, ada = (logged_in(controller, t) for t in (VERA, BOB, ADA))
    page = vera.get(f"/console/calls/{call.call_id}").text
    assert 'id="hangup"' not in page
    assert 'id="transfer"' not in page
    assert "nav-audit" not in page
    assert 'id="hangup"' in bob.get(f"/console/calls/{call.call_id}").text
    forged = vera.post(f"/console/calls/{call.call_id}/hangup", data={"csrf": csrf_of(page)})
    assert forged.status_code == 403
    assert forged.headers["content-type"].startswith("text/html")
    assert "the viewer role may not hangup calls" in forged.text
    assert bob.get("/console/audit").status_code == 403
    shown = ada.get("/console/audit", params={"result": "refused", "operator": "vera"})
    assert shown.status_code == 200
    assert "nav-audit" in shown.text
    assert shown.text.count("refused:403:forbidden") == 1  # vera's hang-up; bob's is not hers
    assert refusals(controller) == [
        ("bob", "audit", None, "refused:403:forbidden"),
        ("vera", "hangup", call.call_id, "refused:403:forbidden"),
    ]


def test_the_cli_gets_the_same_answers(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """`calls hangup` with a viewer's token and `calls audit` with an operator's exit 1 with
    the 403; an admin's `calls audit --result refused` lists both refusals."""

    def run(token: str, *args: str) -> Result:
        env = {"CALLCENTER_URL": controller.url, "CALLCENTER_OPERATOR_TOKEN": token}
        return CliRunner().invoke(calls, list(args), env=env)

    call = live_call(emulator, Api(controller.url))
    hangup = run(VERA, "hangup", call.call_id)
    assert hangup.exit_code == 1
    assert "403 forbidden: the viewer role may not hangup calls" in hangup.output
    assert "403 forbidden" in run(BOB, "audit").output
    listed = run(ADA, "audit", "--result", "refused")
    assert listed.exit_code == 0, listed.output
    header, _rule, *rows = listed.output.splitlines()
    assert header.split() == ["id", "at", "operator", "action", "call_id", "result", "client"]
    assert [row.split()[2:4] for row in rows] == [["bob", "audit"], ["vera", "hangup"]]


def test_the_audit_filter_matches_results_times_and_pages(store: Store) -> None:
    """result=refused matches every refusal and nothing merely starting so; since/until bound
    the time; ``before`` pages within the filter."""
    audit = OperatorStore(store)
    start = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    for minute, result in enumerate(
        ["delivered", "refused:403:forbidden", "refused_x", "refused:422:bad_text", "refused"]
    ):
        audit.add_audit(
            operator="ada", action="hangup", call_id="rtc_1", result=result, client=None,
            at=start + timedelta(minutes=minute),
        )  # fmt: skip

    def results(where: AuditFilter, before: int | None = None, limit: int = 10) -> list[str]:
        return [row.result for row in audit.audit(where, limit=limit, before_id=before)]

    refused = AuditFilter(result="refused")
    assert results(refused) == ["refused", "refused:422:bad_text", "refused:403:forbidden"]
    assert results(AuditFilter(result="refused:4")) == []  # a prefix ends at a ':'
    assert results(AuditFilter(result="refused_")) == []  # '_' is no LIKE wildcard here
    window = AuditFilter(since=start + timedelta(minutes=1), until=start + timedelta(minutes=3))
    assert results(window) == ["refused_x", "refused:403:forbidden"]
    (newest, second) = audit.audit(refused, limit=2)
    assert results(refused, before=second.id) == ["refused:403:forbidden"]
    assert results(AuditFilter(operator="bob")) == results(AuditFilter(call_id="rtc_2")) == []
