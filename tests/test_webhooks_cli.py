"""`callcenter webhooks …` against the emulator's Webhook Endpoints API, and real controllers."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callcenter.cli import env_file as _env_file
from callcenter.cli.webhooks import webhooks
from callcenter.config.loader import example_config_path
from callcenter.emulator import CallState, Delivery, EmulatorThread, Wait, new_webhook_secret
from callcenter.emulator.webhook_registry import WebhookEndpoint
from callcenter.web.serve_process import ServeProcess, free_port
from tests.harness import API_KEY, InProcessController, wait_for

PUBLIC_URL = "https://callcenter.example.com/webhooks/openai"
SECRET = "OPENAI_WEBHOOK_SECRET"


@pytest.fixture
def cli(emulator: EmulatorThread) -> Callable[..., Result]:
    """Run `callcenter webhooks ARGS…` with the SDK pointed at the emulator."""
    runner = CliRunner()
    env = {"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": emulator.base_url}

    def run(*args: str, input: str | None = None, **overrides: str | None) -> Result:
        return runner.invoke(webhooks, list(args), env={**env, **overrides}, input=input)

    return run


def registered(emulator: EmulatorThread) -> list[WebhookEndpoint]:
    """The endpoints the emulator holds."""
    return list(emulator.emulator.webhook_endpoints)


def only_endpoint(emulator: EmulatorThread) -> WebhookEndpoint:
    """The one endpoint the emulator holds."""
    (endpoint,) = registered(emulator)
    return endpoint


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


# -- create -----------------------------------------------------------------------------------


def test_create_prints_the_id_and_the_secret_once(
    cli: Callable[..., Result], emulator: EmulatorThread
) -> None:
    """create subscribes the URL to incoming calls and shows the new secret exactly once."""
    result = cli("create", "--url", PUBLIC_URL, "--name", "acme")
    assert result.exit_code == 0, result.output
    endpoint = only_endpoint(emulator)
    assert (endpoint.url, endpoint.name, endpoint.event_types) == (
        PUBLIC_URL,
        "acme",
        ["realtime.call.incoming"],
    )
    assert endpoint.id in result.output
    assert result.output.count(endpoint.secret) == 1


@pytest.mark.parametrize(
    "url", ["http://callcenter.example.com/webhooks/openai", "callcenter.example.com/webhooks"]
)
def test_create_refuses_a_url_openai_cannot_deliver_to(
    cli: Callable[..., Result], emulator: EmulatorThread, url: str
) -> None:
    """A URL that is neither https nor loopback http is refused before anything is created."""
    result = cli("create", "--url", url)
    assert result.exit_code == 2
    assert "https" in result.output
    assert registered(emulator) == []


def test_create_accepts_loopback_http_for_the_emulator(
    cli: Callable[..., Result], emulator: EmulatorThread
) -> None:
    """Plain http to 127.0.0.1 is allowed: that is where a local controller listens."""
    result = cli("create", "--url", "http://127.0.0.1:8080/webhooks/openai")
    assert result.exit_code == 0, result.output
    assert only_endpoint(emulator).url == "http://127.0.0.1:8080/webhooks/openai"


def test_create_writes_the_secret_to_a_new_private_env_file(
    cli: Callable[..., Result], emulator: EmulatorThread, tmp_path: Path
) -> None:
    """--env-file writes OPENAI_WEBHOOK_SECRET to a new file of mode 0600, not to the screen."""
    env_file = tmp_path / "callcenter.env"
    result = cli("create", "--url", PUBLIC_URL, "--env-file", str(env_file))
    assert result.exit_code == 0, result.output
    secret = only_endpoint(emulator).secret
    assert env_file.read_text() == f"{SECRET}={secret}\n"
    assert mode(env_file) == 0o600
    assert secret not in result.output


def test_create_refuses_to_overwrite_an_env_file(
    cli: Callable[..., Result], emulator: EmulatorThread, tmp_path: Path
) -> None:
    """An existing env file is left alone without --force, and no endpoint is created."""
    env_file = tmp_path / "callcenter.env"
    env_file.write_text(f"{SECRET}=whsec_keep\n")
    result = cli("create", "--url", PUBLIC_URL, "--env-file", str(env_file))
    assert result.exit_code == 2
    assert "--force" in result.output
    assert env_file.read_text() == f"{SECRET}=whsec_keep\n"
    assert registered(emulator) == []


def test_create_with_force_sets_the_secret_and_keeps_other_lines(
    cli: Callable[..., Result], emulator: EmulatorThread, tmp_path: Path
) -> None:
    """--force sets the variable in place, keeps the rest and narrows a 0640 file to 0600."""
    env_file = tmp_path / "callcenter.env"
    env_file.write_text(f"# secrets\nOPENAI_API_KEY=sk-x\n{SECRET}=\nCALLCENTER_WORKERS=4\n")
    env_file.chmod(0o640)
    result = cli("create", "--url", PUBLIC_URL, "--env-file", str(env_file), "--force")
    assert result.exit_code == 0, result.output
    secret = only_endpoint(emulator).secret
    assert env_file.read_text() == (
        f"# secrets\nOPENAI_API_KEY=sk-x\n{SECRET}={secret}\nCALLCENTER_WORKERS=4\n"
    )
    assert mode(env_file) == 0o600


def test_env_file_update_never_widens_permissions(tmp_path: Path) -> None:
    """A read-only 0400 env file stays 0400 when its secret is set."""
    env_file = tmp_path / "callcenter.env"
    env_file.write_text(f"{SECRET}=whsec_old\n")
    env_file.chmod(0o400)
    _env_file.set_value(env_file, SECRET, "whsec_new")
    assert _env_file.read_value(env_file, SECRET) == "whsec_new"
    assert mode(env_file) == 0o400


# -- list and delete --------------------------------------------------------------------------


def test_list_shows_a_table_without_secrets(
    cli: Callable[..., Result], emulator: EmulatorThread
) -> None:
    """list prints one row per endpoint, newest first, with the secret's hint only."""
    cli("create", "--url", PUBLIC_URL, "--name", "first")
    cli("create", "--url", "https://backup.example.com/webhooks/openai", "--name", "second")
    result = cli("list")
    assert result.exit_code == 0, result.output
    header, newest, oldest = result.output.splitlines()
    assert header.split() == ["ID", "NAME", "URL", "EVENTS", "SECRET", "UPDATED"]
    assert "second" in newest
    assert PUBLIC_URL in oldest
    for endpoint in registered(emulator):
        assert endpoint.secret not in result.output
        assert endpoint.secret[-4:] in result.output


def test_list_says_when_there_is_no_endpoint(cli: Callable[..., Result]) -> None:
    """With no endpoint, list says how to create one."""
    result = cli("list")
    assert result.exit_code == 0
    assert "No webhook endpoints" in result.output


def test_delete_removes_the_endpoint_after_confirmation(
    cli: Callable[..., Result], emulator: EmulatorThread
) -> None:
    """delete asks first; answering no keeps the endpoint, --yes deletes it."""
    cli("create", "--url", PUBLIC_URL)
    endpoint_id = only_endpoint(emulator).id
    declined = cli("delete", endpoint_id, input="n\n")
    assert declined.exit_code == 1
    assert registered(emulator) != []
    deleted = cli("delete", endpoint_id, "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert registered(emulator) == []


# -- errors -----------------------------------------------------------------------------------


def test_api_errors_are_one_clean_line(cli: Callable[..., Result]) -> None:
    """An API error exits 1 with OpenAI's message on one line, and no traceback."""
    result = cli("delete", "we_missing", "--yes")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: OpenAI answered HTTP 404: No webhook endpoint found with id 'we_missing'."
    ]


def test_a_wrong_api_key_is_reported_cleanly(cli: Callable[..., Result]) -> None:
    """A rejected key is a 401 line, with the key itself masked by OpenAI's message."""
    result = cli("list", OPENAI_API_KEY="sk-wrong-key-123456")
    assert result.exit_code == 1
    assert result.output.startswith("Error: OpenAI answered HTTP 401: Incorrect API key")
    assert "Traceback" not in result.output


def test_a_missing_api_key_is_reported_cleanly(cli: Callable[..., Result]) -> None:
    """Without OPENAI_API_KEY the command says so, before any request."""
    result = cli("list", OPENAI_API_KEY=None)
    assert result.exit_code == 1
    assert "OPENAI_API_KEY is not set" in result.output


def test_an_unreachable_api_is_reported_cleanly(cli: Callable[..., Result]) -> None:
    """A base URL where nothing listens gives one 'could not reach' line."""
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    result = cli("list", OPENAI_BASE_URL=base_url)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: could not reach {base_url}")


# -- test, against real controllers -----------------------------------------------------------


def test_test_reports_a_controller_refusing_the_signature(
    cli: Callable[..., Result],
    emulator: EmulatorThread,
    start_controller: Callable[..., InProcessController],
) -> None:
    """A controller holding another secret answers 401; test says so and what it means."""
    controller = start_controller()
    cli("create", "--url", controller.webhook_url)
    result = cli("test", only_endpoint(emulator).id)
    assert result.exit_code == 1
    assert f"to {controller.webhook_url}: answered HTTP 401" in result.output
    assert "OPENAI_WEBHOOK_SECRET on the node is not this endpoint's" in result.output


@pytest.fixture
def serve(
    controller_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[int, Path], ServeProcess]]:
    """Start `callcenter serve` (one worker) on a port, with the secret of an env file."""
    started: list[ServeProcess] = []

    def start(port: int, env_file: Path) -> ServeProcess:
        secret = _env_file.read_value(env_file, SECRET)
        assert secret
        process = ServeProcess(
            {**controller_env, SECRET: secret}, example_config_path(), workers=1, port=port
        )
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()


def test_test_reports_the_answer_of_a_controller_set_up_from_the_env_file(
    cli: Callable[..., Result],
    emulator: EmulatorThread,
    serve: Callable[[int, Path], ServeProcess],
    tmp_path: Path,
) -> None:
    """create --env-file, serve with that file, test: the controller verifies and answers 200."""
    port, env_file = free_port(), tmp_path / "callcenter.env"
    url = f"http://127.0.0.1:{port}/webhooks/openai"
    assert cli("create", "--url", url, "--env-file", str(env_file)).exit_code == 0
    serve(port, env_file)
    result = cli("test", only_endpoint(emulator).id)
    assert result.exit_code == 0, result.output
    assert f"Test realtime.call.incoming delivery to {url}: answered HTTP 200" in result.output


def test_rotation_keeps_calls_flowing_with_both_secrets(
    cli: Callable[..., Result],
    emulator: EmulatorThread,
    serve: Callable[[int, Path], ServeProcess],
    tmp_path: Path,
) -> None:
    """After rotate --env-file, a controller with new,old accepts calls signed with either."""
    port, env_file = free_port(), tmp_path / "callcenter.env"
    url = f"http://127.0.0.1:{port}/webhooks/openai"
    assert cli("create", "--url", url, "--env-file", str(env_file)).exit_code == 0
    endpoint = only_endpoint(emulator)
    old = endpoint.secret
    env_file.chmod(0o644)

    rotated = cli("rotate", endpoint.id, "--env-file", str(env_file))

    assert rotated.exit_code == 0, rotated.output
    new = endpoint.secret
    assert new != old
    assert _env_file.read_value(env_file, SECRET) == f"{new},{old}"
    assert mode(env_file) == 0o600
    assert "24 hours" in rotated.output
    serve(port, env_file)
    signed_new = emulator.place_call(script=[Wait(5)])  # the emulator signs with the new secret
    signed_old = emulator.place_call(script=[Wait(5)], delivery=Delivery(secret=old))
    forged = emulator.place_call(delivery=Delivery(secret=new_webhook_secret()))
    wait_for(
        lambda: all(c.webhook_attempts for c in (signed_new, signed_old, forged)),
        what="the three deliveries to be answered",
    )
    assert {a.status for a in signed_new.webhook_attempts + signed_old.webhook_attempts} == {200}
    assert forged.webhook_attempts[0].status == 401
    assert {signed_new.state, signed_old.state} == {CallState.ACCEPTED}
    assert cli("test", endpoint.id).exit_code == 0


def test_rotate_prints_the_new_secret_and_the_steps(
    cli: Callable[..., Result], emulator: EmulatorThread
) -> None:
    """Without --env-file, rotate shows the new secret once and the three steps."""
    cli("create", "--url", PUBLIC_URL)
    endpoint = only_endpoint(emulator)
    result = cli("rotate", endpoint.id)
    assert result.exit_code == 0, result.output
    assert result.output.count(endpoint.secret) == 1
    assert endpoint.old_secret is not None  # kept for 24 hours: OpenAI signs with both
    for step in ("1. On every node", "2. Restart or roll", "3. Once every node"):
        assert step in result.output


def test_rotate_refuses_an_env_file_without_the_current_secret(
    cli: Callable[..., Result], emulator: EmulatorThread, tmp_path: Path
) -> None:
    """rotate --env-file needs the file's current secret, and checks it before rotating."""
    cli("create", "--url", PUBLIC_URL)
    endpoint = only_endpoint(emulator)
    secret = endpoint.secret
    env_file = tmp_path / "callcenter.env"
    env_file.write_text("OPENAI_API_KEY=sk-x\n")
    missing = cli("rotate", endpoint.id, "--env-file", str(tmp_path / "absent.env"))
    empty = cli("rotate", endpoint.id, "--env-file", str(env_file))
    assert (missing.exit_code, empty.exit_code) == (2, 2)
    assert endpoint.secret == secret
