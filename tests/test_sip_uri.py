"""`callcenter sip-uri`: the trunk target of a project, and the trunk settings to check."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from callcenter.cli.setup import sip_uri
from callcenter.sip.trunk import SIP_HOST, TRUNK_CHECKS, trunk_target, validate_project_id

ALPHANUMERIC = st.text(
    alphabet=st.characters(min_codepoint=48, max_codepoint=122)
    .filter(str.isalnum)
    .filter(str.isascii),
    min_size=1,
    max_size=40,
)


def run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(sip_uri, list(args), env={"OPENAI_PROJECT_ID": None, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


# -- the pure part ------------------------------------------------------------------------------


def test_target_is_the_documented_uri() -> None:
    """A project id becomes sip:<id>@sip.api.openai.com;transport=tls on port 5061."""
    target = trunk_target("proj_abc123")
    assert target.uri == "sip:proj_abc123@sip.api.openai.com;transport=tls"
    assert (target.host, target.port, target.transport, target.notes) == (SIP_HOST, 5061, "tls", ())


@given(ALPHANUMERIC)
def test_any_alphanumeric_project_id_is_accepted(suffix: str) -> None:
    """proj_ followed by any letters and digits is a project id, carried as is in the URI."""
    assert trunk_target(f"proj_{suffix}").uri == f"sip:proj_{suffix}@{SIP_HOST};transport=tls"


def test_surrounding_blanks_are_dropped() -> None:
    """A project id pasted with blanks around it is used without them."""
    assert validate_project_id("  proj_abc123\n") == "proj_abc123"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("org-AbC123", "is an organization id"),
        ("sip:proj_abc@sip.api.openai.com;transport=tls", "is a SIP URI"),
        ("proj_abc-def", "characters other than letters and digits"),
        ("proj_", "characters other than letters and digits"),
        ("", "is not a project id"),
        ("abc123", "is not a project id"),
    ],
)
def test_malformed_project_ids_are_refused_with_the_reason(value: str, reason: str) -> None:
    """Each kind of wrong value gets its own explanation and where to find the real id."""
    with pytest.raises(ValueError, match=reason) as raised:
        validate_project_id(value)
    assert "Settings > Project > General" in str(raised.value)


def test_eu_region_gets_the_eu_host_and_base_url() -> None:
    """EU: sip-eu.api.openai.com, paired with https://eu.api.openai.com/v1, and a note why."""
    target = trunk_target("proj_abc123", "eu")
    assert target.uri == "sip:proj_abc123@sip-eu.api.openai.com;transport=tls"
    assert target.base_url == "https://eu.api.openai.com/v1"
    assert "OPENAI_BASE_URL=https://eu.api.openai.com/v1" in target.notes[0]


def test_unknown_region_is_refused() -> None:
    """Only the regions the command knows are accepted."""
    with pytest.raises(ValueError, match="unknown region 'mars'"):
        trunk_target("proj_abc123", "mars")


# -- the command --------------------------------------------------------------------------------


def test_command_prints_the_uri_and_every_check() -> None:
    """The output names the URI and each trunk setting to check, then points to the docs."""
    code, out, _ = run("--project", "proj_abc123")
    assert code == 0
    assert "    sip:proj_abc123@sip.api.openai.com;transport=tls\n" in out
    for check in TRUNK_CHECKS:
        assert f"{check.title}:" in out
    for fact in ("5061", "SRTP", "PCMU", "PCMA", "REFER", "webhook"):
        assert fact in out
    assert "docs/trunks.md" in out


def test_uri_only_prints_just_the_uri() -> None:
    """--uri-only writes one line, the URI, for scripts."""
    code, out, err = run("--project", "proj_abc123", "--uri-only")
    assert (code, out, err) == (0, "sip:proj_abc123@sip.api.openai.com;transport=tls\n", "")


def test_uri_only_sends_region_notes_to_stderr() -> None:
    """With --region eu, the URI stays alone on stdout and the note goes to stderr."""
    code, out, err = run("--project", "proj_abc123", "--region", "eu", "--uri-only")
    assert code == 0
    assert out == "sip:proj_abc123@sip-eu.api.openai.com;transport=tls\n"
    assert err.startswith("note: ")
    assert "EU" in err


def test_eu_region_prints_the_note_with_the_uri() -> None:
    """The full EU output names the EU SIP host, the base URL to pair with it, and the note."""
    code, out, _ = run("--project", "proj_abc123", "--region", "eu")
    assert code == 0
    assert "sip-eu.api.openai.com" in out
    assert "    OPENAI_BASE_URL=https://eu.api.openai.com/v1\n" in out
    assert "Note: " in out


def test_bad_project_id_is_a_usage_error() -> None:
    """A malformed project id exits 2 with the reason, naming the --project option."""
    code, _, err = run("--project", "org-AbC123")
    assert code == 2
    assert "Invalid value for '--project'" in err
    assert "is an organization id" in err


def test_project_id_comes_from_the_environment() -> None:
    """Without --project, OPENAI_PROJECT_ID (the SDK's own variable) names the project."""
    code, out, _ = run("--uri-only", env={"OPENAI_PROJECT_ID": "proj_fromenv"})
    assert (code, out) == (0, "sip:proj_fromenv@sip.api.openai.com;transport=tls\n")


def test_missing_project_id_is_a_usage_error() -> None:
    """Neither --project nor OPENAI_PROJECT_ID: exit 2, naming the option."""
    code, _, err = run()
    assert code == 2
    assert "--project" in err
