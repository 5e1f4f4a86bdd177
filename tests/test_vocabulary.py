"""The words of a call: each listed once in docs/vocabulary.md, one status per outcome."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

from callcenter.call.escalation import TRIGGERS
from callcenter.call.latency import latency_summary
from callcenter.call.vocabulary import (
    LIVE_STATUSES,
    CallOutcome,
    CallStatus,
    DecisionKind,
    DeliveryStatus,
    EventKind,
)
from callcenter.operators.roles import Role

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "vocabulary.md"


def table_rows(section: str) -> dict[str, list[str]]:
    """The rows of the table under ``## section``: first cell (unquoted) -> the other cells."""
    text = PAGE.read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        found = re.fullmatch(r"`([a-z0-9_]+)`", cells[0]) if line.startswith("|") else None
        if found:
            rows[found.group(1)] = cells[1:]
    return rows


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ("Outcomes", CallOutcome),
        ("Statuses", CallStatus),
        ("Decisions", DecisionKind),
        ("Events", EventKind),
        ("Deliveries", DeliveryStatus),
        ("Roles", Role),
    ],
)
def test_the_docs_table_lists_every_word_and_no_other(section: str, words: type[StrEnum]) -> None:
    """Each outcome, status, decision and event kind the code can produce is a row of its table."""
    assert list(table_rows(section)) == [word.value for word in words]


def test_the_triggers_table_lists_every_escalation_trigger() -> None:
    """Each escalation trigger the session can fire is a row of the triggers table."""
    assert tuple(table_rows("Escalation triggers")) == TRIGGERS


def test_the_outcomes_table_gives_each_outcome_its_status() -> None:
    """The status column of the outcomes table is the status the store gives each outcome."""
    shown = {outcome: cells[0].strip("`") for outcome, cells in table_rows("Outcomes").items()}
    assert shown == {outcome.value: outcome.status.value for outcome in CallOutcome}


def test_only_live_outcomes_leave_a_call_live() -> None:
    """accepted and transferring leave a call live; every final outcome leaves it over."""
    for outcome in CallOutcome:
        assert (outcome.status in LIVE_STATUSES) == (not outcome.final), outcome


def test_the_readme_and_the_metrics_docs_link_the_table() -> None:
    """The README and docs/operations.md point to the one table instead of listing outcomes."""
    assert "docs/vocabulary.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "vocabulary.md#outcomes" in operations


def test_the_waits_table_lists_every_latency_field() -> None:
    """The caller's wait table names each field of the API's latency object, in order."""
    assert list(table_rows("The caller's wait")) == list(latency_summary(None))
