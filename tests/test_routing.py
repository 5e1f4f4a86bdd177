"""The routing decision: screening, route match, business hours and the concurrency cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.call.escalation import transfer_chain
from callcenter.config.loader import Config, Target, example_config_path, load_config, parse_config
from callcenter.intake.routing import Accept, Refer, Reject, decide
from callcenter.sip.invite import IncomingCall

NEW_YORK = ZoneInfo("America/New_York")
# Wednesday 2026-06-10, 12:00 in New York: inside every opening below.
OPEN = datetime(2026, 6, 10, 12, 0, tzinfo=NEW_YORK)
CONFIG_TEXT = """
default_route = "support"

[limits]
max_concurrent_calls = 10
when_full = "reject:486"

[screening]
deny = ["+1900*", "anonymous"]

[[targets]]
name = "billing-desk"
uri = "sip:billing@pbx.example.com"

[[targets]]
name = "sales-desk"
uri = "tel:+14155550199"

[[routes]]
name = "partners"
match = { from = ["+44*"], headers = { "X-Tenant" = "partner-*" } }
instructions = "Partner desk."

[[routes]]
name = "regional"
match = { headers = { "X-Region" = "re:(eu|us)-[0-9]+" } }
instructions = "Regional desk."

[[routes]]
name = "support"
match = { to = ["+1 800 555 0100"] }
instructions = "Support."
handoff = "Connecting you."

[[routes]]
name = "sales"
match = { to = "+18005550199" }
instructions = "Sales."
handoff = "One moment."
[routes.hours]
timezone = "America/New_York"
open = ["mon-fri 09:00-17:00", "fri 22:00-02:00"]
closed = "refer:sales-desk"
closed_dates = [2026-12-25]

[[routes]]
name = "billing"
match = { to = ["+18005550142"] }
action = "refer:billing-desk"
handoff = "Connecting you to billing."

[[routes]]
name = "closed-line"
match = { to = ["+18005550000"] }
action = "reject:480"
"""


@pytest.fixture(scope="module")
def config() -> Config:
    return parse_config(CONFIG_TEXT, "routing.toml")


def call(
    caller: str | None = "+14155550123",
    dialled: str | None = "+18005550100",
    headers: tuple[tuple[str, str], ...] = (),
) -> IncomingCall:
    sip_headers = list(headers)
    if caller is not None:
        sip_headers.append(("From", f'"Caller" <sip:{caller}@trunk.example.com>;tag=1'))
    if dialled is not None:
        sip_headers.append(("To", f"<sip:{dialled}@sip.api.openai.com>"))
    return IncomingCall.from_sip_headers("rtc_test", sip_headers)


def test_matching_route_accepts(config: Config) -> None:
    """A call to a route's number is accepted by that route, with a readable reason."""
    decision = decide(call(), config, OPEN, 0)
    assert isinstance(decision, Accept)
    assert (decision.kind, decision.route_name) == ("accept", "support")
    assert decision.reason == "call to +18005550100 matches route support"


def test_deny_list_rejects_before_any_route(config: Config) -> None:
    """A denied caller gets deny_action (603 by default) and no route."""
    decision = decide(call(caller="+19005550123"), config, OPEN, 0)
    assert decision == Reject(603, "caller +19005550123 is on the deny list", None)
    assert (decision.kind, decision.route_name) == ("reject", None)


def test_deny_list_matches_names_case_insensitively(config: Config) -> None:
    """'anonymous' in the deny list catches an Anonymous caller."""
    decision = decide(call(caller="Anonymous"), config, OPEN, 0)
    assert isinstance(decision, Reject)
    assert decision.status_code == 603


def test_deny_action_can_refer() -> None:
    """A refer deny_action sends the denied caller to its target, without a handoff."""
    config = parse_config(
        '[screening]\ndeny = ["+1900*"]\ndeny_action = "refer:sip:fraud@pbx.example.com"\n'
        '[[routes]]\nname = "main"\ninstructions = "Hi."\n'
    )
    decision = decide(call(caller="+19005550000"), config, OPEN, 0)
    assert decision == Refer(
        "sip:fraud@pbx.example.com",
        "sip:fraud@pbx.example.com",
        "caller +19005550000 is on the deny list",
        None,
        None,
    )


def test_allow_list_lets_only_listed_callers_through() -> None:
    """With an allow list, listed callers pass and others (and unknown callers) do not."""
    config = parse_config(
        '[screening]\nallow = ["+1415*"]\n[[routes]]\nname = "main"\ninstructions = "Hi."\n'
    )
    assert isinstance(decide(call(caller="+14155550123"), config, OPEN, 0), Accept)
    stranger = decide(call(caller="+12125550123"), config, OPEN, 0)
    assert stranger == Reject(603, "caller +12125550123 is not on the allow list")
    unknown = decide(call(caller=None), config, OPEN, 0)
    assert unknown == Reject(603, "caller (unknown) is not on the allow list")


def test_all_match_conditions_must_hold(config: Config) -> None:
    """from and headers together: both must match for the partners route."""
    partner = (("x-tenant", "Partner-Globex"),)
    matched = decide(call(caller="+442071234567", headers=partner), config, OPEN, 0)
    assert matched.route_name == "partners"
    wrong_caller = decide(call(caller="+14155550123", headers=partner), config, OPEN, 0)
    assert wrong_caller.route_name == "support"
    no_header = decide(call(caller="+442071234567"), config, OPEN, 0)
    assert no_header.route_name == "support"


def test_regex_header_pattern_routes(config: Config) -> None:
    """A re: header pattern must match the whole value."""
    assert decide(call(headers=(("X-Region", "EU-7"),)), config, OPEN, 0).route_name == "regional"
    assert decide(call(headers=(("X-Region", "eu-7b"),)), config, OPEN, 0).route_name == "support"


def test_first_matching_route_wins(config: Config) -> None:
    """Routes are tried in order: a regional header wins over the dialled support number."""
    decision = decide(call(headers=(("X-Region", "us-1"),)), config, OPEN, 0)
    assert decision.route_name == "regional"


def test_unmatched_call_uses_the_default_route(config: Config) -> None:
    """No route matches: the default route takes the call and the reason says so."""
    decision = decide(call(dialled="+18005559999"), config, OPEN, 0)
    assert isinstance(decision, Accept)
    assert decision.route_name == "support"
    assert "default route support" in decision.reason


def test_unmatched_call_without_default_is_404() -> None:
    """No route and no default_route: 404 naming the dialled number."""
    config = parse_config(
        '[[routes]]\nname = "main"\nmatch = { to = ["+18005550100"] }\ninstructions = "Hi."\n'
    )
    assert decide(call(dialled="+18005559999"), config, OPEN, 0) == Reject(
        404, "no route for +18005559999"
    )
    assert decide(call(dialled=None), config, OPEN, 0) == Reject(404, "no route for (unknown)")


def test_reject_route(config: Config) -> None:
    """A reject route answers with its status code and names itself."""
    decision = decide(call(dialled="+18005550000"), config, OPEN, 0)
    assert isinstance(decision, Reject)
    assert (decision.status_code, decision.route_name) == (480, "closed-line")
    assert decision.reason.endswith("which rejects with 480")


def test_refer_route_resolves_its_target(config: Config) -> None:
    """A refer route gives the target's URI, its name and the route's handoff line."""
    decision = decide(call(dialled="+18005550142"), config, OPEN, 0)
    assert isinstance(decision, Refer)
    assert (decision.kind, decision.route_name) == ("refer", "billing")
    assert (decision.target_uri, decision.target) == ("sip:billing@pbx.example.com", "billing-desk")
    assert decision.handoff == "Connecting you to billing."


def test_open_hours_accept(config: Config) -> None:
    """Inside business hours the route accepts."""
    decision = decide(call(dialled="+18005550199"), config, OPEN, 0)
    assert isinstance(decision, Accept)
    assert decision.route_name == "sales"


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 6, 10, 8, 59, 59, tzinfo=NEW_YORK),  # Wednesday before opening
        datetime(2026, 6, 10, 17, 0, tzinfo=NEW_YORK),  # Wednesday, the end is exclusive
        datetime(2026, 6, 13, 12, 0, tzinfo=NEW_YORK),  # Saturday noon
        datetime(2026, 12, 25, 12, 0, tzinfo=NEW_YORK),  # a closed date (a Friday)
        datetime(2026, 6, 10, 22, 0, tzinfo=UTC),  # 18:00 in New York
    ],
)
def test_closed_hours_take_the_closed_action(config: Config, when: datetime) -> None:
    """Outside every window, or on a closed date, hours.closed applies (here a refer)."""
    decision = decide(call(dialled="+18005550199"), config, when, 0)
    assert decision == Refer(
        "tel:+14155550199",
        "sales-desk",
        "sales is closed (America/New_York)",
        config.route("sales"),
        "One moment.",
    )


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 6, 10, 9, 0, tzinfo=NEW_YORK),  # opening minute
        datetime(2026, 6, 12, 23, 30, tzinfo=NEW_YORK),  # Friday late window
        datetime(2026, 6, 13, 1, 59, tzinfo=NEW_YORK),  # ... which runs into Saturday
        datetime(2026, 6, 10, 13, 0, tzinfo=UTC),  # 09:00 in New York
    ],
)
def test_open_windows_include_midnight_crossings(config: Config, when: datetime) -> None:
    """Window starts are inclusive and a window crossing midnight belongs to its start day."""
    assert isinstance(decide(call(dialled="+18005550199"), config, when, 0), Accept)


def test_capacity_turns_accept_into_when_full(config: Config) -> None:
    """At max_concurrent_calls active calls, an accept becomes when_full (486)."""
    assert isinstance(decide(call(), config, OPEN, 9), Accept)
    decision = decide(call(), config, OPEN, 10)
    assert decision == Reject(486, "at capacity (10 active calls)", config.route("support"))


def test_capacity_can_refer_to_overflow() -> None:
    """A refer when_full sends the call to the overflow target, without a handoff line."""
    config = parse_config(
        '[limits]\nmax_concurrent_calls = 1\nwhen_full = "refer:overflow"\n'
        '[[targets]]\nname = "overflow"\nuri = "sip:overflow@pbx.example.com"\n'
        '[[routes]]\nname = "main"\ninstructions = "Hi."\nhandoff = "Hold on."\n'
    )
    decision = decide(call(), config, OPEN, 5)
    assert isinstance(decision, Refer)
    assert (decision.target_uri, decision.target, decision.handoff) == (
        "sip:overflow@pbx.example.com",
        "overflow",
        None,
    )


def test_capacity_does_not_block_refer_routes(config: Config) -> None:
    """The cap applies to accepts only: a refer route still refers when full."""
    assert isinstance(decide(call(dialled="+18005550142"), config, OPEN, 1000), Refer)


def test_naive_time_is_refused(config: Config) -> None:
    """decide needs an aware datetime; a naive one is a programming error."""
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(call(), config, datetime(2026, 6, 10, 12, 0), 0)


# -- properties -------------------------------------------------------------------------------

_NUMBERS = st.sampled_from(
    ["+18005550100", "+18005550199", "+18005550142", "+18005550000", "+19005550123"]
) | st.from_regex(r"\+?[0-9]{3,12}", fullmatch=True)
_CALLERS = st.none() | _NUMBERS | st.sampled_from(["anonymous", "alice", "+442071234567"])
_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(["X-Tenant", "x-region", "Diversion", "P-Asserted-Identity"]),
        st.sampled_from(["partner-1", "eu-3", "garbage", ""]) | st.text(max_size=10),
    ),
    max_size=3,
)
_TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, NEW_YORK, ZoneInfo("Asia/Tokyo")]),
)
_LOADS = st.integers(min_value=0, max_value=50)


@st.composite
def _calls(draw: st.DrawFn) -> IncomingCall:
    return call(draw(_CALLERS), draw(st.none() | _NUMBERS), tuple(draw(_HEADERS)))


@settings(max_examples=200)
@given(_calls(), _LOADS, _TIMES)
def test_decide_is_total_and_deterministic(
    config: Config, incoming: IncomingCall, load: int, now: datetime
) -> None:
    """Any call, load and time gets a decision, and the same one every time."""
    first = decide(incoming, config, now, load)
    assert first == decide(incoming, config, now, load)
    assert first.kind in ("accept", "reject", "refer")


@settings(max_examples=150)
@given(st.from_regex(r"\+1900[0-9]{7}", fullmatch=True), st.none() | _NUMBERS, _LOADS, _TIMES)
def test_deny_listed_callers_are_never_accepted(
    config: Config, caller: str, dialled: str | None, load: int, now: datetime
) -> None:
    """A caller on the deny list never reaches a route."""
    decision = decide(call(caller, dialled), config, now, load)
    assert not isinstance(decision, Accept)
    assert decision.route_name is None


@settings(max_examples=150)
@given(_calls(), st.integers(min_value=10, max_value=10_000), _TIMES)
def test_over_capacity_never_accepts(
    config: Config, incoming: IncomingCall, load: int, now: datetime
) -> None:
    """At or over max_concurrent_calls, no decision is an Accept."""
    assert not isinstance(decide(incoming, config, now, load), Accept)


@settings(max_examples=150)
@given(_calls(), _LOADS, _TIMES)
def test_closed_routes_never_accept(
    config: Config, incoming: IncomingCall, load: int, now: datetime
) -> None:
    """Whenever the chosen route's hours are closed, the decision is not an Accept."""
    decision = decide(incoming, config, now, load)
    if decision.route_name is not None:
        hours = config.route(decision.route_name).hours
        if hours is not None and not hours.is_open(now):
            assert not isinstance(decision, Accept)


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=7 * 24 * 60 - 1))
def test_weekly_windows_agree_with_a_direct_check(config: Config, minute: int) -> None:
    """is_open matches a plain reading of "mon-fri 09:00-17:00" plus "fri 22:00-02:00"."""
    monday = datetime(2026, 6, 8, tzinfo=NEW_YORK)  # a Monday with no closed date that week
    now = monday + timedelta(minutes=minute)
    day, minute_of_day = divmod(minute, 24 * 60)
    expected = (
        (day < 5 and 9 * 60 <= minute_of_day < 17 * 60)
        or (day == 4 and minute_of_day >= 22 * 60)
        or (day == 5 and minute_of_day < 2 * 60)
    )
    hours = config.route("sales").hours
    assert hours is not None
    assert hours.is_open(now) is expected


# -- the fallback chain a refer route and an escalation both walk --------------------------------


def test_a_refer_target_chain_runs_to_the_end_of_its_fallbacks() -> None:
    """With the example config, billing-desk falls back to support-desk, then to overflow."""
    targets = load_config(example_config_path()).targets
    assert [str(t) for t in transfer_chain(targets, "billing-desk")] == [
        "billing-desk",
        "support-desk",
        "overflow",
    ]
    assert [t.uri for t in transfer_chain(targets, "sales-desk")] == [
        "sip:sales@pbx.example.com",
        "sip:reception@pbx.example.com",  # a URI fallback ends the chain
    ]


def test_the_fallback_chain_visits_each_target_once() -> None:
    """A chain that loops back (the config refuses one, the function still stops) ends."""
    targets = {
        "a": Target("a", "sip:a@pbx.example.com", fallback="b"),
        "b": Target("b", "sip:b@pbx.example.com", fallback="a"),
    }
    assert [str(t) for t in transfer_chain(targets, "a")] == ["a", "b"]
