"""Scenario files: parsing and its errors, and the pure checks of what happened to a call."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from callcenter.emulator import (
    CallState,
    Delivery,
    EmulatedCall,
    Emulator,
    FaultPlan,
    HangUp,
    ModelCallTool,
    RestFault,
    RestRequest,
    Say,
    WaitFor,
    WebhookAttempt,
)
from callcenter.errors import ConfigError
from callcenter.simulation.checks import (
    CheckResult,
    controller_answer,
    emulator_outcome,
    evaluate,
    said_texts,
    summary_texts,
)
from callcenter.simulation.scenario import (
    AcceptedExpectation,
    Expectations,
    Hold,
    ToolOutputExpectation,
    load_scenario,
    parse_scenario,
    scenario_files,
)

BRIEF_EXAMPLE = """\
name = "support call is answered and greeted"
[call]
from = "+14155550123"
to = "+18005550100"
caller_name = "Ada"
headers = { "X-Tenant" = "partner-7" }
hang_up_while_ringing_after = 0.2
delivery = { copies = 2, concurrent = true, timestamp_offset = -120 }
[[faults]]
kind = "rest"
verb = "accept"
status = 503
[[steps]]
type = "say"
text = "Hi, where is my order?"
[[steps]]
type = "hang_up"
[expect]
decision = "accept"
route = "support"
outcome = "caller_hung_up"
accepted = { model = "gpt-realtime-2", voice = "marin", instructions_contains = "Acme" }
rejected = 486
referred_to = "sip:billing@pbx.example.com"
hung_up_by = "caller"
said_contains = ["Thanks for calling"]
tool_output_contains = { tool = "lookup_order", text = "shipped" }
summary_contains = "order A-1042"
"""


def config_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, "calls/bad.toml")
    return caught.value


# -- parsing ------------------------------------------------------------------------------------


def test_the_documented_example_parses_into_frozen_values() -> None:
    """Every section of the documented example becomes a frozen value."""
    scenario = parse_scenario(BRIEF_EXAMPLE, "support.toml")
    assert scenario.name == "support call is answered and greeted"
    assert scenario.call.from_number == "+14155550123"
    assert scenario.call.to_number == "+18005550100"
    assert scenario.call.caller_name == "Ada"
    assert scenario.call.headers == (("X-Tenant", "partner-7"),)
    assert scenario.call.hang_up_while_ringing_after == 0.2
    assert scenario.call.delivery == Delivery(copies=2, concurrent=True, timestamp_offset=-120)
    assert scenario.steps == (Say("Hi, where is my order?"), HangUp())
    assert scenario.fault_templates == (RestFault(verb="accept", status=503),)
    assert scenario.expect == Expectations(
        decision="accept",
        route="support",
        outcome="caller_hung_up",
        accepted=AcceptedExpectation("gpt-realtime-2", "marin", "Acme"),
        rejected=486,
        referred_to="sip:billing@pbx.example.com",
        hung_up_by="caller",
        said_contains=("Thanks for calling",),
        tool_output_contains=(ToolOutputExpectation("lookup_order", "shipped"),),
        summary_contains=("order A-1042",),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        scenario.name = "changed"  # type: ignore[misc]


def test_defaults_fill_what_a_scenario_leaves_out() -> None:
    """Only [call].to is required: the name is the file's, the caller a sample number."""
    scenario = parse_scenario('[call]\nto = "+18005550100"\n', "calls/deny.toml")
    assert scenario.name == "deny"
    assert scenario.call.from_number == "+14155550123"
    assert (scenario.steps, scenario.fault_templates, scenario.hold) == ((), (), None)
    assert scenario.expect == Expectations()
    assert scenario.timeout == 20.0


def test_hold_and_an_array_of_tool_outputs_parse() -> None:
    """[hold] names the calls to keep live; tool_output_contains may be an array."""
    scenario = parse_scenario(
        '[call]\nto = "+1"\n[hold]\ncalls = 2\nto = "+18005550100"\n[expect]\n'
        'tool_output_contains = [{ tool = "a", text = "x" }, { tool = "b", text = "y" }]\n'
    )
    assert scenario.hold == Hold(2, "+18005550100")
    assert scenario.expect.tool_output_contains == (
        ToolOutputExpectation("a", "x"),
        ToolOutputExpectation("b", "y"),
    )


def test_a_latency_alone_only_slows_the_answer() -> None:
    """A rest fault with a latency and no status delays without failing."""
    scenario = parse_scenario(
        '[call]\nto = "+1"\n[[faults]]\nkind = "rest"\nverb = "accept"\nlatency = 0.8\n'
    )
    assert scenario.fault_templates == (RestFault(verb="accept", status=None, latency=0.8),)


def test_a_transfer_fault_scripts_one_target() -> None:
    """kind = "transfer": the REFERs to that target (headers aside) end as scripted."""
    scenario = parse_scenario(
        '[call]\nto = "+1"\n[[faults]]\nkind = "transfer"\ntarget = "sip:a@pbx.example.com"\n'
        'result = "no_answer"\n'
    )
    plan = FaultPlan()
    for fault in scenario.faults_for("rtc_1"):
        plan.add(fault)
    assert plan.take_transfer("rtc_1", "sip:b@pbx.example.com") is None
    found = plan.take_transfer("rtc_1", "sip:a@pbx.example.com?X-Callcenter-Ticket=CC-1")
    assert found is not None
    assert found.result == "no_answer"


def test_faults_are_armed_fresh_for_the_call_only() -> None:
    """faults_for makes copies bound to the call id; the scenario's templates stay unused."""
    scenario = parse_scenario('[call]\nto = "+1"\n[[faults]]\nkind = "rest"\ntimes = 1\n')
    plan = FaultPlan()
    for fault in [*scenario.faults_for("rtc_1"), *scenario.faults_for("rtc_2")]:
        plan.add(fault)
    assert plan.take_rest("accept", "rtc_3") is None
    assert plan.take_rest("accept", "rtc_1") is not None
    assert plan.take_rest("accept", "rtc_1") is None
    assert scenario.fault_templates[0].call_id is None
    assert scenario.fault_templates[0].times == 1


def test_a_scenario_may_choose_the_server_timings_of_its_call() -> None:
    """`server_timings` in [call] is kept for the emulator; left out, the emulator's own."""
    chosen = parse_scenario('[call]\nto = "+1"\nserver_timings = "realistic"\n')
    assert chosen.call.server_timings == "realistic"
    assert parse_scenario('[call]\nto = "+1"\n').call.server_timings is None


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"),
    [
        ('nmae = "x"\n[call]\nto = "+1"\n', 1, "nmae", "unknown key"),
        ('name = "x"\n', None, "call", "required"),
        ('[call]\nfrom = "+1"\n', 1, "call.to", "required"),
        ('[call]\nto = "+1"\n[[steps]]\ntype = "hang_up"\n[[steps]]\ntype = "shout"\n', 6,
         "steps[1].type", 'unknown step type "shout"'),
        ('[call]\nto = "+1"\n[[steps]]\ntype = "say"\ntext = 5\n', 5, "steps[0].text",
         "expected a string, got an integer"),
        ('[call]\nto = "+1"\n[[steps]]\ntype = "say"\n', 3, "steps[0].text", "required"),
        ('[call]\nto = "+1"\n[[steps]]\ntype = "say"\ntext = "hi"\nloud = true\n', 6,
         "steps[0].loud", "unknown key"),
        ('[call]\nto = "+1"\n[[steps]]\ntype = "wait"\nseconds = "soon"\n', 5,
         "steps[0].seconds", "expected a number"),
        ('[call]\nto = "+1"\n[[faults]]\nkind = "rest"\nverb = "answer"\n', 5, "faults[0].verb",
         'got "answer"'),
        ('[call]\nto = "+1"\n[[faults]]\nkind = "rest"\ncall_id = "rtc_1"\n', 5,
         "faults[0].call_id", "unknown key"),
        ('[call]\nto = "+1"\n[[faults]]\nkind = "sideband"\n', 3, "faults[0]", "exactly one of"),
        ('[call]\nto = "+1"\n[[faults]]\nkind = "transfer"\nresult = "maybe"\n', 5,
         "faults[0].result", 'expected one of answered, busy, no_answer, refused; got "maybe"'),
        ('[call]\nto = "+1"\n[[faults]]\nkind = "dns"\n', 4, "faults[0].kind",
         'expected one of "rest", "sideband", "transfer"'),
        ('[call]\nto = "+1"\ndelivery = { copies = "two" }\n', 3, "call.delivery.copies",
         "expected an integer, got a string"),
        ('[call]\nto = "+1"\nserver_timings = "fast"\n', 3, "call.server_timings",
         'must be "realistic" or "none", not "fast"'),
        ('[call]\nto = "+1"\n[expect]\ndecision = "answer"\n', 4, "expect.decision",
         "expected one of accept, reject, refer"),
        ('[call]\nto = "+1"\n[expect]\nrejected = 99\n', 4, "expect.rejected", "400-699"),
        ('[call]\nto = "+1"\n[expect]\naccepted = { modle = "x" }\n', 4,
         "expect.accepted.modle", "unknown key"),
        ('[call]\nto = "+1"\n[expect]\ntool_output_contains = { tool = "a" }\n', 4,
         "expect.tool_output_contains.text", "required"),
        ('[call\nto = "+1"\n', 1, "", "TOML syntax error"),
    ],
)  # fmt: skip
def test_invalid_scenarios_name_file_line_key_and_reason(
    text: str, line: int | None, key: str, reason: str
) -> None:
    """Each problem is a ConfigError naming the file, the line, the key path and the reason."""
    error = config_error(text)
    assert (error.file, error.line, error.key) == ("calls/bad.toml", line, key)
    assert reason in error.reason
    assert str(error).startswith(f"calls/bad.toml:{line}: " if line else "calls/bad.toml: ")


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing scenario file is reported like any other invalid one."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_scenario(tmp_path / "missing.toml")


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    """A scenario file in another encoding is refused with the file named, not a traceback."""
    path = tmp_path / "latin.toml"
    path.write_bytes('[call]\nto = "+1"\ncaller_name = "Jos\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="the file is not UTF-8 text") as raised:
        load_scenario(path)
    assert raised.value.file == str(path)


def test_a_syntax_error_in_a_file_names_the_file_and_line(tmp_path: Path) -> None:
    """A TOML syntax error read from a file reads file:LINE: with the line tomllib names."""
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[call]\nto = "+1"\n[expect\n')
    with pytest.raises(ConfigError, match="TOML syntax error") as raised:
        load_scenario(path)
    assert str(raised.value).startswith(f"{path}:4: ")


def test_directories_expand_to_their_toml_files_in_name_order(tmp_path: Path) -> None:
    """A directory stands for its *.toml files, sorted; files are kept as given."""
    for name in ("b.toml", "a.toml", "notes.md"):
        (tmp_path / name).write_text("")
    single = tmp_path / "elsewhere" / "z.toml"
    assert scenario_files([tmp_path, single]) == [tmp_path / "a.toml", tmp_path / "b.toml", single]


# -- evaluation ---------------------------------------------------------------------------------


def attempt(body: Any, status: int = 200, copy: int = 0) -> WebhookAttempt:
    return WebhookAttempt(
        "wh_1", "realtime.call.incoming", 1, copy, 0, status, None, 0.01, 1.0, body
    )


def answered_call(**changes: Any) -> EmulatedCall:
    """A support call that was accepted, greeted, and hung up by the caller."""
    call = EmulatedCall(
        "rtc_1",
        "+14155550123",
        "+18005550100",
        state=CallState.ENDED,
        ended_by="caller",
        accept_body={
            "type": "realtime",
            "model": "gpt-realtime-2",
            "instructions": "You are the phone support agent of Acme Inc.",
            "audio": {"output": {"voice": "marin"}},
        },
        webhook_attempts=[
            attempt(
                {
                    "status": "handled",
                    "decision": "accept",
                    "route": "support",
                    "outcome": "accepted",
                }
            ),
        ],  # fmt: skip
        client_events=[
            {"type": "response.create", "response": {"instructions": "Say exactly: Thanks!"}}
        ],
        server_events=[
            {"type": "response.output_audio_transcript.done", "transcript": "Thanks for calling!"}
        ],
    )
    for name, value in changes.items():
        setattr(call, name, value)
    return call


def by_name(checks: list[CheckResult]) -> dict[str, CheckResult]:
    return {check.name: check for check in checks}


def test_an_answered_call_meets_its_expectations() -> None:
    """Decision, route, session, speech and ending all hold for the call they describe."""
    expect = Expectations(
        decision="accept",
        route="support",
        controller_outcome="accepted",
        outcome="caller_hung_up",
        accepted=AcceptedExpectation("gpt-realtime-2", "marin", "Acme"),
        hung_up_by="caller",
        said_contains=("Thanks for calling", "Say exactly"),
    )
    checks = evaluate(expect, answered_call())
    assert [c.name for c in checks] == [
        "decision",
        "route",
        "controller_outcome",
        "outcome",
        "accepted",
        "accepted.model",
        "accepted.voice",
        "accepted.instructions_contains",
        "hung_up_by",
        "said_contains[0]",
        "said_contains[1]",
    ]
    assert all(check.passed for check in checks), checks


def test_a_wrong_decision_fails_with_expected_and_actual() -> None:
    """A failed check shows both sides as people read them."""
    checks = by_name(evaluate(Expectations(decision="reject", rejected=486), answered_call()))
    assert checks["decision"] == CheckResult("decision", False, '"reject"', '"accept"')
    assert checks["rejected"] == CheckResult(
        "rejected", False, "486", "not rejected: the call was ended"
    )


def test_a_rejected_call_fails_an_acceptance_check() -> None:
    """An expected accept against a 603 reject fails, naming the state."""
    call = answered_call(
        state=CallState.REJECTED, reject_code=603, ended_by="controller", accept_body=None
    )
    checks = by_name(evaluate(Expectations(accepted=AcceptedExpectation(voice="x")), call))
    assert checks["accepted"].passed is False
    assert checks["accepted"].actual == "not accepted: the call was rejected"
    assert "accepted.voice" not in checks


def test_session_settings_that_differ_show_what_was_sent() -> None:
    """Model, voice and instructions are compared with the accept body."""
    expect = Expectations(accepted=AcceptedExpectation("gpt-realtime-mini", "cedar", "Globex"))
    checks = by_name(evaluate(expect, answered_call()))
    assert checks["accepted.model"].actual == '"gpt-realtime-2"'
    assert checks["accepted.voice"].actual == '"marin"'
    assert checks["accepted.instructions_contains"].actual == (
        '"You are the phone support agent of Acme Inc."'
    )
    assert not any(checks[f"accepted.{key}"].passed for key in ("model", "voice"))


def test_said_contains_lists_what_was_said_when_it_fails() -> None:
    """The actual side of a speech check is everything asked for and said."""
    (check,) = evaluate(Expectations(said_contains=("goodbye",)), answered_call())
    assert check.passed is False
    assert check.actual == '"Say exactly: Thanks!"; "Thanks for calling!"'


def test_without_a_webhook_answer_the_decision_is_missing() -> None:
    """A call whose webhook was never answered has no decision."""
    (check,) = evaluate(Expectations(decision="accept"), answered_call(webhook_attempts=[]))
    assert check.actual == "the webhook was never answered"
    failed = [attempt(None, status=401)]
    (check,) = evaluate(Expectations(decision="accept"), answered_call(webhook_attempts=failed))
    assert check.actual == "no decision in the answer (401)"


def test_the_decided_answer_wins_over_a_duplicates() -> None:
    """Among redeliveries, the answer that carries the decision is the controller's answer."""
    attempts = [attempt({"status": "duplicate"}, copy=1), attempt({"decision": "refer"})]
    assert controller_answer(answered_call(webhook_attempts=attempts)) == {"decision": "refer"}
    text_only = [attempt("Bad Gateway", status=502)]
    assert controller_answer(answered_call(webhook_attempts=text_only)) is None


@pytest.mark.parametrize(
    ("state", "ended_by", "outcome"),
    [
        (CallState.RINGING, None, "ringing"),
        (CallState.ACCEPTED, None, "accepted"),
        (CallState.REJECTED, "controller", "rejected"),
        (CallState.REFERRED, "refer", "referred"),
        (CallState.ENDED, "caller", "caller_hung_up"),
        (CallState.ENDED, "controller", "controller_hung_up"),
        (CallState.MISSED, "caller", "caller_hung_up_while_ringing"),
        (CallState.MISSED, "timeout", "rang_out"),
    ],
)
def test_outcomes_name_the_final_state_and_who_ended_it(
    state: CallState, ended_by: str | None, outcome: str
) -> None:
    """The emulator's view of the end of a call reads as one outcome word."""
    assert emulator_outcome(answered_call(state=state, ended_by=ended_by)) == outcome


def test_hung_up_by_ignores_calls_nobody_hung_up() -> None:
    """A referred call was not hung up by anyone."""
    call = answered_call(state=CallState.REFERRED, ended_by="refer")
    (check,) = evaluate(Expectations(hung_up_by="caller"), call)
    assert (check.passed, check.actual) == (False, "nobody hung up: the call was referred")


def test_tool_output_is_matched_by_the_tools_call_id() -> None:
    """A function_call_output counts for the tool whose call_id it answers."""
    call = answered_call(
        server_events=[
            {"type": "response.function_call_arguments.done", "call_id": "c1", "name": "lookup"},
            {"type": "response.function_call_arguments.done", "call_id": "c2", "name": "refund"},
        ],
        client_events=[
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": "c1", "output": '"shipped"'},
            }
        ],
    )
    expect = Expectations(
        tool_output_contains=(
            ToolOutputExpectation("lookup", "shipped"),
            ToolOutputExpectation("refund", "done"),
        )
    )
    found, missing = evaluate(expect, call)
    assert found.passed
    assert found.actual == '"\\"shipped\\""'
    assert (missing.passed, missing.actual) == (False, "no output for refund")


def handed_off_call() -> EmulatedCall:
    """A call whose controller asked for a summary out of band and then said its line."""
    summary = {"conversation": "none", "instructions": "Write a note for the colleague"}
    return answered_call(
        client_events=[
            {"type": "response.create", "response": summary},
            {"type": "response.create", "response": {"instructions": "Say exactly: One moment."}},
        ],
        server_events=[
            {"type": "response.created", "response": {"id": "r1", "conversation_id": None}},
            {"type": "response.created", "response": {"id": "r2", "conversation_id": "conv_1"}},
            {"type": "response.output_text.done", "response_id": "r1", "text": "Wants A-1042."},
            {"type": "response.output_audio_transcript.done", "response_id": "r2",
             "transcript": "One moment."},
        ],
    )  # fmt: skip


def test_summary_contains_reads_the_out_of_band_response() -> None:
    """summary_contains holds for the text of a response that ran outside the conversation."""
    expect = Expectations(summary_contains=("A-1042", "refund"))
    found, missing = evaluate(expect, handed_off_call())
    assert (found.name, found.passed) == ("summary_contains[0]", True)
    assert (missing.passed, missing.expected, missing.actual) == (
        False,
        '"refund"',
        '"Wants A-1042."',
    )


def test_without_a_summary_the_check_says_none_was_asked_for() -> None:
    """A call with no out-of-band response fails summary_contains, saying so."""
    (check,) = evaluate(Expectations(summary_contains=("A-1042",)), answered_call())
    assert (check.passed, check.actual) == (False, "no summary was asked for out of band")


def test_an_out_of_band_summary_is_not_what_the_agent_said() -> None:
    """said_contains leaves out the summary's request and its text: the caller heard neither."""
    assert said_texts(handed_off_call()) == ["Say exactly: One moment.", "One moment."]
    assert summary_texts(handed_off_call()) == ["Wants A-1042."]


def test_a_script_error_fails_the_scenario() -> None:
    """A script that stopped on a timed-out wait fails the implicit script check."""
    call = answered_call(script=(WaitFor("response.done"),), script_errors=["step 0 timed out"])
    (check,) = evaluate(Expectations(), call)
    assert (check.name, check.passed, check.actual) == ("script", False, "step 0 timed out")


def test_rest_records_do_not_count_as_decisions() -> None:
    """The decision comes from the webhook answer, not from the REST requests seen."""
    call = answered_call(
        webhook_attempts=[], rest_requests=[RestRequest("accept", "rtc_1", {}, 200, 1.0)]
    )
    (check,) = evaluate(Expectations(decision="accept"), call)
    assert check.passed is False


# -- a tool output checked against a real emulator -------------------------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """An emulator on loopback that delivers no webhooks (the test answers the call)."""
    started = Emulator(api_key="sk-scenario-tests", validate_events=True)
    await started.start()
    yield started
    await started.stop()
    assert started.event_problems == []


async def test_tool_output_contains_checks_what_a_controller_sent(emulator: Emulator) -> None:
    """The tool check reads the function_call_output a real sideband client sent."""
    scenario = parse_scenario(
        '[call]\nto = "+18005550100"\n'
        '[[steps]]\ntype = "say"\ntext = "Where is order 42?"\n'
        '[[steps]]\ntype = "model_call_tool"\nname = "lookup_order"\n'
        'arguments = { order_id = "42" }\n'
        '[[steps]]\ntype = "wait_for"\nkind = "function_call_output"\ntimeout = 5\n'
        '[[steps]]\ntype = "hang_up"\n'
        '[expect]\ntool_output_contains = { tool = "lookup_order", text = "shipped" }\n'
    )
    assert isinstance(scenario.steps[1], ModelCallTool)
    call = emulator.place_call(to_number=scenario.call.to_number, script=scenario.steps)
    async with AsyncOpenAI(api_key=emulator.api_key, base_url=emulator.base_url) as client:
        await client.realtime.calls.accept(call.call_id, type="realtime")
        async with client.realtime.connect(call_id=call.call_id) as connection:
            async for event in connection:
                if event.type == "response.function_call_arguments.done":
                    await connection.conversation.item.create(
                        item={
                            "type": "function_call_output",
                            "call_id": event.call_id,
                            "output": '{"status": "shipped"}',
                        }
                    )
    await emulator.wait_for(lambda: call.state is CallState.ENDED)
    (tool_check, script_check) = evaluate(scenario.expect, call)
    assert tool_check.passed, tool_check
    assert script_check.passed, script_check
