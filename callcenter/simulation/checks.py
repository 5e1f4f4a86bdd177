"""Checking a scenario's expectations against what happened to its call.

Pure functions of the emulator's records of one call: its state, the session it was
accepted with, the events on its sideband, and the controller's answer to its webhook (kept
in each webhook attempt's ``response_body``). :func:`evaluate` gives one
:class:`CheckResult` per expectation, with both sides written out for people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from callcenter.config.reader import quoted
from callcenter.emulator import CallState, EmulatedCall
from callcenter.simulation.scenario import AcceptedExpectation, Expectations
from callcenter.simulation.text import clip

__all__ = [
    "CheckResult",
    "controller_answer",
    "emulator_outcome",
    "evaluate",
    "said_texts",
    "summary_texts",
    "tool_outputs",
]


@dataclass(frozen=True)
class CheckResult:
    """One expectation checked: its name, whether it held, and both sides as text."""

    name: str
    passed: bool
    expected: str
    actual: str


def controller_answer(call: EmulatedCall) -> dict[str, Any] | None:
    """The controller's answer to the call's webhook.

    That is the first 2xx JSON answer carrying a decision (a redelivery is answered
    "duplicate"), else the first JSON answer of any kind, else None.
    """
    answers = [a.response_body for a in call.webhook_attempts if isinstance(a.response_body, dict)]
    decided = [
        a.response_body
        for a in call.webhook_attempts
        if a.status is not None
        and 200 <= a.status < 300
        and isinstance(a.response_body, dict)
        and "decision" in a.response_body
    ]
    chosen = decided or answers
    return dict(chosen[0]) if chosen else None


def emulator_outcome(call: EmulatedCall) -> str:
    """How the call ended as OpenAI saw it (see ``scenario.OUTCOMES``), or "ringing"."""
    if call.state is CallState.ENDED:
        return "caller_hung_up" if call.ended_by == "caller" else "controller_hung_up"
    if call.state is CallState.MISSED:
        return "caller_hung_up_while_ringing" if call.ended_by == "caller" else "rang_out"
    return call.state.value


def evaluate(expect: Expectations, call: EmulatedCall) -> list[CheckResult]:
    """Check each expectation of ``expect`` against the records of ``call``."""
    answer = controller_answer(call) or {}
    checks: list[CheckResult] = []

    def check(name: str, expected: object, actual: object, missing: str) -> None:
        shown = missing if actual is None else _show(actual)
        checks.append(CheckResult(name, expected == actual, _show(expected), shown))

    unanswered = _no_decision(call)
    state = f"the call was {call.state.value}"
    if expect.decision is not None:
        check("decision", expect.decision, answer.get("decision"), unanswered)
    if expect.route is not None:
        check("route", expect.route, answer.get("route"), unanswered)
    if expect.controller_outcome is not None:
        check("controller_outcome", expect.controller_outcome, answer.get("outcome"), unanswered)
    if expect.outcome is not None:
        check("outcome", expect.outcome, emulator_outcome(call), "")
    if expect.accepted is not None:
        checks.extend(_accepted_checks(expect.accepted, call))
    if expect.rejected is not None:
        check("rejected", expect.rejected, call.reject_code, f"not rejected: {state}")
    if expect.referred_to is not None:
        check("referred_to", expect.referred_to, call.refer_target, f"not referred: {state}")
    if expect.hung_up_by is not None:
        hung_up = call.state is CallState.ENDED or (
            call.state is CallState.MISSED and call.ended_by == "caller"
        )
        who = call.ended_by if hung_up else None
        check("hung_up_by", expect.hung_up_by, who, f"nobody hung up: {state}")
    said = said_texts(call)
    for index, text in enumerate(expect.said_contains):
        found = any(text in line for line in said)
        actual = _listing(said, "nothing was said")
        checks.append(CheckResult(f"said_contains[{index}]", found, _show(text), actual))
    summaries = summary_texts(call)
    for index, text in enumerate(expect.summary_contains):
        found = any(text in summary for summary in summaries)
        actual = _listing(summaries, "no summary was asked for out of band")
        checks.append(CheckResult(f"summary_contains[{index}]", found, _show(text), actual))
    outputs = tool_outputs(call)
    for index, wanted in enumerate(expect.tool_output_contains):
        sent = outputs.get(wanted.tool, [])
        checks.append(
            CheckResult(
                f"tool_output_contains[{index}]",
                any(wanted.text in output for output in sent),
                f"{wanted.tool} output containing {_show(wanted.text)}",
                _listing(sent, f"no output for {wanted.tool}"),
            )
        )
    if call.script:
        problems = "; ".join(call.script_errors)
        checks.append(CheckResult("script", not problems, "ran without errors", problems or "ok"))
    return checks


def decision_mismatch(expect: Expectations, call: EmulatedCall) -> CheckResult | None:
    """The failed ``decision`` check, as soon as the controller has answered otherwise than
    expected (nothing later can mend it), e.g. "expected a 486 reject, got an accept"."""
    answer = controller_answer(call) or {}
    got = answer.get("decision")
    wanted = expect.decision or ("reject" if expect.rejected is not None else None)
    if wanted is None or not isinstance(got, str) or got == wanted:
        return None
    expected = f"a {expect.rejected} reject" if wanted == "reject" and expect.rejected else None
    return CheckResult("decision", False, expected or _a(wanted), _a(got))


def _a(decision: str) -> str:
    return f"an {decision}" if decision[:1] in "aeiou" else f"a {decision}"


def said_texts(call: EmulatedCall) -> list[str]:
    """What the agent was asked to say (``response.create`` instructions), then what it said.

    Out-of-band responses (a handoff summary) are not said to the caller and are left out.
    """
    asked = []
    for event in call.client_events:
        response = event.get("response") if event.get("type") == "response.create" else None
        if not isinstance(response, dict) or response.get("conversation") == "none":
            continue
        if response.get("instructions"):
            asked.append(str(response["instructions"]))
    aside = _out_of_band_ids(call)
    spoken = [
        _text_of(event) for event in _texts_done(call) if event.get("response_id") not in aside
    ]
    return asked + spoken


def summary_texts(call: EmulatedCall) -> list[str]:
    """What the model wrote in the responses the controller asked for out of band."""
    aside = _out_of_band_ids(call)
    return [_text_of(event) for event in _texts_done(call) if event.get("response_id") in aside]


def tool_outputs(call: EmulatedCall) -> dict[str, list[str]]:
    """The ``function_call_output`` items the controller sent, by the name of the tool."""
    names = {
        event["call_id"]: event["name"]
        for event in call.server_events
        if event["type"] == "response.function_call_arguments.done"
    }
    outputs: dict[str, list[str]] = {}
    for event in call.client_events:
        item = event.get("item") if event.get("type") == "conversation.item.create" else None
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            name = names.get(item.get("call_id"), f"an unknown call {item.get('call_id')}")
            outputs.setdefault(name, []).append(str(item.get("output", "")))
    return outputs


def _accepted_checks(expected: AcceptedExpectation, call: EmulatedCall) -> list[CheckResult]:
    body = call.accept_body
    if body is None:
        actual = f"not accepted: the call was {call.state.value}"
        return [CheckResult("accepted", False, "accepted", actual)]
    audio = body.get("audio")
    output = audio.get("output") if isinstance(audio, dict) else None
    voice = output.get("voice") if isinstance(output, dict) else None
    instructions = body.get("instructions")
    instructions = instructions if isinstance(instructions, str) else ""
    results = [CheckResult("accepted", True, "accepted", "accepted")]
    if expected.model is not None:
        model = body.get("model")
        shown = _show(model) if model else "not set"
        results.append(
            CheckResult("accepted.model", model == expected.model, _show(expected.model), shown)
        )
    if expected.voice is not None:
        shown = _show(voice) if voice else "not set"
        results.append(
            CheckResult("accepted.voice", voice == expected.voice, _show(expected.voice), shown)
        )
    if expected.instructions_contains is not None:
        found = expected.instructions_contains in instructions
        shown = _show(clip(instructions, 100)) if instructions else "no instructions"
        want = _show(expected.instructions_contains)
        results.append(CheckResult("accepted.instructions_contains", found, want, shown))
    return results


def _out_of_band_ids(call: EmulatedCall) -> set[str]:
    """The ids of the responses that ran outside the conversation (``conversation_id`` null)."""
    ids = set()
    for event in call.server_events:
        response = event.get("response") if event["type"] == "response.created" else None
        if isinstance(response, dict) and response.get("conversation_id") is None:
            ids.add(str(response.get("id")))
    return ids


def _texts_done(call: EmulatedCall) -> list[dict[str, Any]]:
    kinds = ("response.output_audio_transcript.done", "response.output_text.done")
    return [event for event in call.server_events if event["type"] in kinds]


def _text_of(event: dict[str, Any]) -> str:
    return str(event.get("transcript", event.get("text", "")))


def _no_decision(call: EmulatedCall) -> str:
    if not call.webhook_attempts:
        return "the webhook was never answered"
    last = call.webhook_attempts[-1]
    return f"no decision in the answer ({last.status or last.error})"


def _show(value: object) -> str:
    return quoted(value) if isinstance(value, str) else str(value)


def _listing(texts: Sequence[str], empty: str) -> str:
    return "; ".join(quoted(clip(text, 80)) for text in texts) if texts else empty
