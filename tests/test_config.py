"""Config loading and validation: the example, the defaults, and file:line: key: reason errors."""

from __future__ import annotations

import logging
import tomllib
from datetime import date
from pathlib import Path

import pytest

from callcenter.config.lines import KeyLocator
from callcenter.config.loader import (
    AcceptAction,
    ConfigError,
    OpenWindow,
    ReferAction,
    RejectAction,
    example_config_path,
    load_config,
    parse_config,
    session_config,
)

REPO = Path(__file__).resolve().parent.parent
ROUTE = '[[routes]]\nname = "main"\ninstructions = "Help the caller."\n'


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "callcenter.toml")
    return caught.value


def test_example_config_loads() -> None:
    """The shipped example is valid and has the routes the docs talk about."""
    config = load_config(example_config_path())
    assert [route.name for route in config.routes] == ["partners", "support", "sales", "billing"]
    assert config.route("billing").action == ReferAction(
        "billing-desk", "sip:billing@pbx.example.com"
    )
    assert config.route("billing").handoff == "Connecting you to our billing team now."
    assert config.route("sales").hours is not None
    assert config.targets["support-desk"].fallback == "overflow"
    assert config.screening.deny == ("+1900*", "anonymous")


def test_examples_copy_matches_the_packaged_example() -> None:
    """examples/callcenter.toml is byte-for-byte the config shipped in the package."""
    assert (
        REPO / "examples" / "callcenter.toml"
    ).read_bytes() == example_config_path().read_bytes()


def test_minimal_config_gets_the_documented_defaults() -> None:
    """Absent sections and keys take the defaults of the user contract."""
    config = parse_config(ROUTE)
    assert config.path == "<config>"
    assert (config.openai.model, config.openai.voice) == ("gpt-realtime-2", "marin")
    assert config.openai.transcription_model == "gpt-4o-mini-transcribe"
    assert config.limits.max_concurrent_calls == 200
    assert config.limits.when_full == RejectAction(486)
    assert config.screening.deny_action == RejectAction(603)
    assert (config.screening.deny, config.screening.allow) == ((), ())
    assert config.tool_modules == ()
    assert config.default_route is None
    route = config.route("main")
    assert route.action == AcceptAction()
    assert (route.match, route.hours, route.escalation, route.tools) == (None, None, None, ())


def test_escalation_defaults() -> None:
    """An escalation table only needs a target."""
    config = parse_config(
        '[[targets]]\nname = "desk"\nuri = "tel:+14155550123"\n'
        + ROUTE
        + 'escalation = { target = "desk", dtmf = "#" }\n'
    )
    escalation = config.route("main").escalation
    assert escalation is not None
    assert (escalation.target, escalation.dtmf, escalation.phrases) == ("desk", "#", ())
    assert (escalation.max_tool_failures, escalation.max_silences, escalation.max_errors) == (
        2,
        3,
        3,
    )
    assert escalation.max_minutes is None


def test_session_config_builds_the_accept_body() -> None:
    """The accept body carries model, instructions, voice and input transcription."""
    config = parse_config(ROUTE)
    assert session_config(config.route("main"), config) == {
        "type": "realtime",
        "model": "gpt-realtime-2",
        "instructions": "Help the caller.",
        "audio": {
            "input": {"transcription": {"model": "gpt-4o-mini-transcribe"}},
            "output": {"voice": "marin"},
        },
    }


def test_session_config_uses_route_overrides() -> None:
    """A route's model and voice win over the [openai] defaults."""
    config = parse_config(ROUTE + 'model = "gpt-realtime-mini"\nvoice = "cedar"\n')
    body = session_config(config.route("main"), config)
    assert body["model"] == "gpt-realtime-mini"
    assert body["audio"].get("output", {}).get("voice") == "cedar"
    assert "tools" not in body


def test_announced_shutdown_model_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A model with an announced shutdown loads, with a warning naming the date."""
    with caplog.at_level(logging.WARNING, logger="callcenter"):
        parse_config('[openai]\nmodel = "gpt-realtime-mini"\n' + ROUTE, today=date(2026, 12, 1))
    (warning,) = [r for r in caplog.records if r.getMessage().startswith("model has an announced")]
    assert (warning.model, warning.shutdown) == ("gpt-realtime-mini", "2027-01-20")


def test_target_uri_resolves_names_and_passes_uris() -> None:
    """target_uri maps a target name to its URI and lets URIs through; the rest is an error."""
    config = parse_config('[[targets]]\nname = "desk"\nuri = "sip:desk@pbx.example.com"\n' + ROUTE)
    assert config.target_uri("desk") == "sip:desk@pbx.example.com"
    assert config.target_uri("tel:+14155550123") == "tel:+14155550123"
    with pytest.raises(ValueError, match="no target named 'nobody'"):
        config.target_uri("nobody")
    with pytest.raises(KeyError):
        config.route("nobody")


def test_summary_is_one_line() -> None:
    """summary() names the file, routes, targets, model and capacity on one line."""
    summary = load_config(example_config_path()).summary()
    assert "\n" not in summary
    assert "4 routes (partners, support, sales, billing)" in summary
    assert "max 200 calls" in summary


def test_number_patterns_are_normalised() -> None:
    """Separators in configured numbers are dropped so they compare with normalised callers."""
    config = parse_config(
        '[screening]\ndeny = ["+1 (900) *", "Anonymous"]\n'
        + ROUTE
        + 'match = { to = "+1 800-555-0100", from = ["+1415*", "[0-9]*"] }\n'
    )
    match = config.route("main").match
    assert config.screening.deny == ("+1900*", "anonymous")
    assert match is not None
    assert (match.to, match.from_) == (("+18005550100",), ("+1415*", "[0-9]*"))


def test_header_patterns_compile_globs_and_regexes() -> None:
    """Header globs and re: patterns both compile, case-insensitively, matching whole values."""
    config = parse_config(
        ROUTE + 'match = { headers = { "X-Tenant" = "acme*", "X-Region" = "re:(eu|us)-[0-9]+" } }\n'
    )
    match = config.route("main").match
    assert match is not None
    tenant, region = match.headers
    assert tenant.matches("ACME-west")
    assert not tenant.matches("not-acme")
    assert region.matches("EU-12")
    assert not region.matches("eu-12x")


def test_hours_parse_days_ranges_and_midnight() -> None:
    """open strings become weekly windows; an end before the start crosses midnight."""
    config = parse_config(
        ROUTE + 'hours = { timezone = "Europe/Paris", open = ["mon,wed 09:00-12:00, 13:00-17:00", '
        '"fri-sun 22:00-02:00", "tue 00:00-24:00"], closed = "reject:503", '
        'closed_dates = [2026-12-25, "2027-01-01"] }\n'
    )
    hours = config.route("main").hours
    assert hours is not None
    assert set(hours.windows) == {
        OpenWindow(0, 540, 720),
        OpenWindow(0, 780, 1020),
        OpenWindow(2, 540, 720),
        OpenWindow(2, 780, 1020),
        OpenWindow(4, 1320, 1560),
        OpenWindow(5, 1320, 1560),
        OpenWindow(6, 1320, 1560),
        OpenWindow(1, 0, 1440),
    }
    assert hours.closed == RejectAction(503)
    assert hours.closed_dates == frozenset({date(2026, 12, 25), date(2027, 1, 1)})


def test_daily_hours_and_default_closed_action() -> None:
    """'daily' opens every day; closed defaults to reject:480."""
    config = parse_config(ROUTE + 'hours = { timezone = "UTC", open = "daily 08:00-20:00" }\n')
    hours = config.route("main").hours
    assert hours is not None
    assert {window.weekday for window in hours.windows} == set(range(7))
    assert hours.closed == RejectAction(480)


def test_refer_actions_resolve_names_and_accept_uris() -> None:
    """refer:<name> resolves to the target's URI; refer:<URI> keeps the URI."""
    config = parse_config(
        '[limits]\nwhen_full = "refer:sip:overflow@pbx.example.com"\n'
        '[[targets]]\nname = "desk"\nuri = "tel:+14155550123"\n'
        '[[routes]]\nname = "main"\naction = "refer:desk"\n'
    )
    assert config.route("main").action == ReferAction("desk", "tel:+14155550123")
    assert config.limits.when_full == ReferAction(
        "sip:overflow@pbx.example.com", "sip:overflow@pbx.example.com"
    )


def test_load_config_names_a_missing_file(tmp_path: Path) -> None:
    """A file that cannot be read is a ConfigError naming it."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read the file"):
        load_config(missing)


def test_load_config_refuses_non_utf8(tmp_path: Path) -> None:
    """A file that is not UTF-8 is a ConfigError, not a UnicodeDecodeError."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[[routes]]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_load_config_uses_the_path_in_errors(tmp_path: Path) -> None:
    """Errors from load_config name the file as given."""
    path = tmp_path / "callcenter.toml"
    path.write_text('colour = "red"\n' + ROUTE)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:1: colour: unknown key")


def test_syntax_error_reports_the_line() -> None:
    """TOML syntax errors become ConfigErrors with tomllib's line."""
    error = error_of(ROUTE + 'greeting = "unterminated\nvoice = "marin"\n')
    assert error.line == 4
    assert str(error).startswith("callcenter.toml:4: TOML syntax error: ")


def test_syntax_error_at_end_of_document_reports_the_last_line() -> None:
    """A document cut short points at its last line."""
    error = error_of(ROUTE + "tools = [")
    assert error.line == 4


def test_config_error_carries_its_parts() -> None:
    """file, key, reason and line are attributes, not only text."""
    error = error_of(ROUTE + 'voice = "bob"\n')
    assert (error.file, error.key, error.line) == ("callcenter.toml", "routes[0].voice", 4)
    assert error.reason.startswith('unknown voice "bob"; expected one of alloy, ash')


# Each case: a document, the key path, and the start of the reason. The line the error must
# name is the one marked "# <-" (no marker: the error has no line).
ERROR_CASES = [
    ('colour = "red"  # <-\n' + ROUTE, "colour", "unknown key; expected one of tool_modules"),
    (ROUTE + 'colour = "red"  # <-\n', "routes[0].colour", "unknown key; expected one of name,"),
    (
        '[[targets]]\nname = "desk"\nuri = "tel:+1415"\n'
        + ROUTE
        + 'escalation = { target = "desk", tone = "0" }  # <-\n',
        "routes[0].escalation.tone",
        "unknown key; expected one of target, phrases",
    ),
    ("[openai]\nvoice = 7  # <-\n" + ROUTE, "openai.voice", "expected a string, got an integer"),
    (
        "[limits]\nmax_concurrent_calls = true  # <-\n" + ROUTE,
        "limits.max_concurrent_calls",
        "expected a positive integer, got a boolean",
    ),
    (
        "[limits]\nmax_concurrent_calls = 0  # <-\n" + ROUTE,
        "limits.max_concurrent_calls",
        "expected a positive integer, got 0",
    ),
    (
        '[limits]\nwhen_full = "accept"  # <-\n' + ROUTE,
        "limits.when_full",
        'expected "reject:<400-699>" or "refer:<target>", got "accept"',
    ),
    ('[openai]\nvoice = "bob"  # <-\n' + ROUTE, "openai.voice", 'unknown voice "bob"'),
    (
        '[[targets]]\nname = "desk"\nuri = "sip:"  # <-\n' + ROUTE,
        "targets[0].uri",
        "bad URI: 'sip:' has nothing after sip:",
    ),
    (
        '[[targets]]\nname = "desk"\nuri = "http://desk.example.com"  # <-\n' + ROUTE,
        "targets[0].uri",
        "bad URI: 'http://desk.example.com' is not a sip:, sips: or tel: URI",
    ),
    (
        '[[targets]]\nname = "desk"\nuri = "tel:5550123"  # <-\n' + ROUTE,
        "targets[0].uri",
        'bad URI "tel:5550123": a local tel: number needs a phone-context',
    ),
    (
        '[[targets]]\nname = "desk"\nuri = "tel:+14155550123"\nfallback = "nobody"  # <-\n' + ROUTE,
        "targets[0].fallback",
        'no target named "nobody"',
    ),
    (
        '[[targets]]\nname = "desk"\nuri = "tel:+14155550123"\nfallback = "desk"  # <-\n' + ROUTE,
        "targets[0].fallback",
        "a target cannot be its own fallback",
    ),
    (
        '[[targets]]\nname = "a"\nuri = "tel:+14155550123"\nfallback = "b"  # <-\n'
        '[[targets]]\nname = "b"\nuri = "tel:+14155550124"\nfallback = "a"\n' + ROUTE,
        "targets[0].fallback",
        "fallbacks go round in a loop: a -> b -> a",
    ),
    (
        '[[targets]]\nname = "desk"\nuri = "tel:+14155550123"\nticket_header = true  # <-\n'
        + ROUTE,
        "targets[0].ticket_header",
        "only sip: and sips: targets can carry a header",
    ),
    (
        '[[targets]]\nname = "desk"\nuri = "tel:+14155550123"\n'
        '[[targets]]\nname = "desk"  # <-\nuri = "tel:+14155550124"\n' + ROUTE,
        "targets[1].name",
        'duplicate target name "desk"',
    ),
    (
        '[[targets]]\nname = "the desk"  # <-\nuri = "tel:+14155550123"\n' + ROUTE,
        "targets[0].name",
        '"the desk": use letters, digits',
    ),
    (
        '[[routes]]\nname = "main"\naction = "refer:nobody"  # <-\n',
        "routes[0].action",
        'no target named "nobody"',
    ),
    (
        '[[routes]]\nname = "main"\naction = "refer:sip:@x"  # <-\n',
        "routes[0].action",
        "bad URI: 'sip:@x': bad user part ''",
    ),
    (
        '[[routes]]\nname = "main"\naction = "reject:200"  # <-\n',
        "routes[0].action",
        '"reject:200": the status code must be a number from 400 to 699',
    ),
    (
        '[[routes]]\nname = "main"\naction = "hangup"  # <-\n',
        "routes[0].action",
        'expected "accept", "reject:<400-699>" or "refer:<target>", got "hangup"',
    ),
    (
        '[[routes]]  # <-\nname = "main"\naction = "accept"\n',
        "routes[0].instructions",
        "required for a route that accepts calls",
    ),
    ("[[routes]]  # <-\ninstructions = 'x'\n", "routes[0].name", "required"),
    (ROUTE + 'greeting = ""  # <-\n', "routes[0].greeting", "must not be empty"),
    (
        '[[targets]]\nname = "desk"\nuri = "tel:+14155550123"\n'
        + ROUTE
        + 'escalation = { target = "tel:+14155550123" }  # <-\n',
        "routes[0].escalation.target",
        'no target named "tel:+14155550123"',
    ),
    (
        ROUTE + 'escalation = { phrases = ["human"] }  # <-\n',
        "routes[0].escalation.target",
        "required",
    ),
    (
        '[[targets]]\nname = "desk"\nuri = "tel:+14155550123"\n'
        + ROUTE
        + 'escalation = { target = "desk", dtmf = "00" }  # <-\n',
        "routes[0].escalation.dtmf",
        "expected one keypad key",
    ),
    (
        '[[targets]]\nname = "desk"\nuri = "tel:+14155550123"\n'
        + ROUTE
        + 'escalation = { target = "desk", max_minutes = -1 }  # <-\n',
        "routes[0].escalation.max_minutes",
        "expected a positive number, got -1",
    ),
    (
        ROUTE + 'hours = { timezone = "Mars/Olympus_Mons", open = "daily 09:00-17:00" }  # <-\n',
        "routes[0].hours.timezone",
        'unknown time zone "Mars/Olympus_Mons"',
    ),
    (
        ROUTE + 'hours = { timezone = "UTC" }  # <-\n',
        "routes[0].hours.open",
        'required, e.g. "mon-fri 09:00-17:00"',
    ),
    (
        ROUTE + 'hours = { timezone = "UTC", open = "someday 09:00-17:00" }  # <-\n',
        "routes[0].hours.open",
        '"someday" is not a day',
    ),
    (
        ROUTE + 'hours = { timezone = "UTC", open = "mon-fri" }  # <-\n',
        "routes[0].hours.open",
        '"mon-fri" should read like "mon-fri 09:00-17:00"',
    ),
    (
        ROUTE
        + '[routes.hours]\ntimezone = "UTC"\nopen = [\n  "mon 09:00-17:00",\n'
        + '  "tue 9-17",  # <-\n]\n',
        "routes[0].hours.open[1]",
        '"9-17" should be a time range like 09:00-17:00',
    ),
    (
        ROUTE + 'hours = { timezone = "UTC", open = "mon 09:00-24:30" }  # <-\n',
        "routes[0].hours.open",
        '"09:00-24:30": the end is not a time of day',
    ),
    (
        ROUTE + 'hours = { timezone = "UTC", open = "mon 25:00-26:00" }  # <-\n',
        "routes[0].hours.open",
        '"25:00-26:00": the start is not a time of day',
    ),
    (
        ROUTE + 'hours = { timezone = "UTC", open = "mon 09:00-09:00" }  # <-\n',
        "routes[0].hours.open",
        '"09:00-09:00" is empty',
    ),
    (
        ROUTE + "[routes.hours]\n" + 'timezone = "UTC"\nopen = "daily 09:00-17:00"\n'
        "closed_dates = [2026-12-25T00:00:00]  # <-\n",
        "routes[0].hours.closed_dates[0]",
        "expected a date, got a date-time",
    ),
    (
        ROUTE + "[routes.hours]\n" + 'timezone = "UTC"\nopen = "daily 09:00-17:00"\n'
        'closed_dates = ["25/12"]  # <-\n',
        "routes[0].hours.closed_dates[0]",
        '"25/12" is not a date (YYYY-MM-DD)',
    ),
    (
        ROUTE + 'match = { headers = { "X-Tenant" = "re:(acme" } }  # <-\n',
        "routes[0].match.headers.X-Tenant",
        "bad regular expression: missing )",
    ),
    (
        ROUTE + 'match = { headers = { "X Tenant" = "acme" } }  # <-\n',
        'routes[0].match.headers."X Tenant"',
        '"X Tenant" is not a SIP header name',
    ),
    (
        ROUTE + 'match = { headers = { "X-Tenant" = 3 } }  # <-\n',
        "routes[0].match.headers.X-Tenant",
        "expected a string pattern, got an integer",
    ),
    (
        ROUTE + "match = { to = 18005550100 }  # <-\n",
        "routes[0].match.to",
        "expected a string or an array of strings, got an integer",
    ),
    (ROUTE + 'match = { cc = "x" }  # <-\n', "routes[0].match.cc", "unknown key"),
    (
        ROUTE + '[[routes]]\nname = "main"  # <-\ninstructions = "again"\n',
        "routes[1].name",
        'duplicate name "main"',
    ),
    (ROUTE + 'tools = ["end call"]  # <-\n', "routes[0].tools[0]", '"end call" is not a tool name'),
    (
        ROUTE + 'tools = ["end_call", "end_call"]  # <-\n',
        "routes[0].tools[1]",
        'duplicate name "end_call"',
    ),
    ('default_route = "nope"  # <-\n' + ROUTE, "default_route", 'no route named "nope"'),
    (
        'tool_modules = ["acme tools"]  # <-\n' + ROUTE,
        "tool_modules[0]",
        '"acme tools" is not a module name',
    ),
    ('tool_modules = "acme.tools"  # <-\n' + ROUTE, "tool_modules", "expected an array of strings"),
    ('[screening]\ndeny = [""]  # <-\n' + ROUTE, "screening.deny[0]", "must not be empty"),
    ('[screening]\ndeny_action = "reject"  # <-\n' + ROUTE, "screening.deny_action", "expected"),
    ('openai = "gpt"  # <-\n' + ROUTE, "openai", "expected a table, got a string"),
    (
        '[[targets]]\nname = "desk"\nuri = "tel:+14155550123"\nanswer_timeout = -1  # <-\n' + ROUTE,
        "targets[0].answer_timeout",
        "expected a positive number",
    ),
    (
        ROUTE + 'on_transfer_failed = "retry"  # <-\n',
        "routes[0].on_transfer_failed",
        'expected "resume" or "hangup", got "retry"',
    ),
    ('routes = "main"  # <-\n', "routes", "expected an array of tables ([[routes]]), got a string"),
    ("[openai]\n", "routes", "at least one [[routes]] table is required"),
]


@pytest.mark.parametrize(("text", "key", "reason"), ERROR_CASES)
def test_config_errors_name_file_line_key_and_reason(text: str, key: str, reason: str) -> None:
    """Each invalid config fails with file:line: key.path: reason."""
    marked = [number for number, line in enumerate(text.splitlines(), 1) if "# <-" in line]
    line = marked[0] if marked else None
    error = error_of(text)
    where = f"callcenter.toml:{line}" if line else "callcenter.toml"
    assert str(error).startswith(f"{where}: {key}: {reason}"), str(error)


def test_transfer_settings_default_and_are_read() -> None:
    """answer_timeout defaults to 30 s per target; on_transfer_failed to "resume" per route."""
    config = parse_config(
        '[[targets]]\nname = "a"\nuri = "tel:+14155550123"\nanswer_timeout = 12.5\n'
        '[[targets]]\nname = "b"\nuri = "tel:+14155550124"\n'
        + ROUTE
        + '[[routes]]\nname = "strict"\ninstructions = "x"\non_transfer_failed = "hangup"\n'
    )
    assert (config.targets["a"].answer_timeout, config.targets["b"].answer_timeout) == (12.5, 30)
    assert config.route("main").on_transfer_failed == "resume"
    assert config.route("strict").on_transfer_failed == "hangup"


def test_locator_finds_keys_in_tables_inline_tables_and_arrays() -> None:
    """Lines are found through headers, sub-tables, dotted keys, quoted keys and arrays."""
    text = (
        "# [[routes]] in a comment\n"  # 1
        'tool_modules = ["a",\n'  # 2
        '  "b"]  # x = 1\n'  # 3
        "[[routes]]\n"  # 4
        "name = '''\n[[routes]]\n'''\n"  # 5-7
        "[[routes]]\n"  # 8
        'match = { headers = { "X-Tenant" = "a" }, to = ["1"] }\n'  # 9
        "[routes.hours]\n"  # 10
        'open.spec = "x"\n'  # 11
        "[openai]\n"  # 12
    )
    locator = KeyLocator(text)
    assert locator.line_of(("tool_modules", 1)) == 3
    assert locator.line_of(("routes", 0, "name")) == 5
    assert locator.line_of(("routes", 1)) == 8
    assert locator.line_of(("routes", 1, "match", "headers", "X-Tenant")) == 9
    assert locator.line_of(("routes", 1, "hours")) == 10
    assert locator.line_of(("routes", 1, "hours", "open", "spec")) == 11
    assert locator.line_of(("routes", 1, "hours", "timezone")) == 10
    assert locator.line_of(("openai", "model")) == 12
    assert locator.line_of(("limits",)) is None


def test_locator_finds_every_key_of_the_example() -> None:
    """Every key written in the example config is found on a line that names it."""
    text = example_config_path().read_text()
    lines = text.splitlines()
    locator = KeyLocator(text)

    def keys(value: object, path: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
        found = [path] if path and isinstance(path[-1], str) else []
        if isinstance(value, dict):
            for key, item in value.items():
                found += keys(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found += keys(item, (*path, index))
        return found

    for path in keys(tomllib.loads(text), ()):
        line = locator.line_of(path)
        assert line is not None, path
        assert str(path[-1]) in lines[line - 1], (path, line)
