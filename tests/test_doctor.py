"""`callcenter doctor`: each check against real files, databases, env values and servers."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from werkzeug.serving import make_server

from callcenter.cli.doctor import (
    Status,
    check_api_key,
    check_gunicorn,
    check_models,
    check_region,
    check_webhook_secrets,
    judge_webhook_answer,
    judge_worker_class,
    mask_secret,
)
from callcenter.cli.http_probe import ProbeAnswer
from callcenter.cli.setup import doctor
from callcenter.config.catalog import sdk_model_catalog
from callcenter.config.loader import example_config_path, parse_config
from callcenter.settings import Settings
from callcenter.store import Store, default_sqlite_url
from callcenter.store.engine import create_store_engine
from callcenter.web.serve_process import free_port
from tests.harness import SERVE_POLL_INTERVAL, WEBHOOK_SECRET, InProcessController

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run

REPO = Path(__file__).resolve().parent.parent
GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"
API_KEY = "sk-proj-" + "Q" * 40 + "x9"
SHUTDOWN_MODELS = (
    "gpt-realtime",
    "gpt-realtime-2025-08-28",
    "gpt-realtime-mini",
    "gpt-realtime-mini-2025-12-15",
    "gpt-audio-mini",
    "gpt-audio-mini-2025-12-15",
)
# Everything doctor reads; a test's env starts from none of them set.
DOCTOR_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_WEBHOOK_SECRET",
    "CALLCENTER_CONFIG",
    "CALLCENTER_DATABASE_URL",
    "CALLCENTER_DATA_DIR",
    "GUNICORN_CMD_ARGS",
    "CALLCENTER_THREADS",
    "CALLCENTER_WORKERS",
    "CALLCENTER_BIND",
)


@pytest.fixture(autouse=True)
def _in_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test where no ./gunicorn.conf.py lies around."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture
def migrated_url(store_url: str) -> str:
    """A migrated database: SQLite in tmp_path, or PostgreSQL when configured."""
    with Store.open(store_url) as store:
        store.migrate()
    return store_url


@pytest.fixture
def base_env() -> dict[str, str]:
    """Valid config and secrets; no database named yet."""
    return {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CALLCENTER_CONFIG": str(example_config_path()),
    }


@pytest.fixture
def good_env(base_env: dict[str, str], migrated_url: str) -> dict[str, str]:
    """Environment values with which every check passes, on each database."""
    return {**base_env, "CALLCENTER_DATABASE_URL": migrated_url}


@pytest.fixture
def env(base_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Environment values with which every check passes, on a migrated SQLite file."""
    url = default_sqlite_url(tmp_path / "data")
    with Store.open(url) as store:
        store.migrate()
    return {**base_env, "CALLCENTER_DATABASE_URL": url}


def run_doctor(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run the real command; returns the exit code and what it printed."""
    full_env: dict[str, str | None] = dict.fromkeys(DOCTOR_VARIABLES)
    full_env.update(env)
    result = CliRunner().invoke(doctor, list(args), env=full_env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout


def line_of(out: str, name: str) -> str:
    """The first output line of the check called ``name``, with the fix line after it."""
    lines = out.splitlines()
    for index, line in enumerate(lines):
        if line[6:].startswith(name + " "):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            return line + ("\n" + following if "fix: " in following else "")
    raise AssertionError(f"no {name!r} line in:\n{out}")


# -- the whole command ------------------------------------------------------------------------


def test_healthy_deployment_passes(good_env: dict[str, str]) -> None:
    """Valid config, secrets and a migrated database: every check OK, exit 0."""
    code, out = run_doctor(good_env)
    assert code == 0, out
    names = ("config", "models", "api key", "region", "webhook secret", "database", "gunicorn")
    for name in names:
        assert line_of(out, name).startswith("OK "), out
    assert out.splitlines()[-1] == "7 OK, 0 WARN, 0 FAIL"


def test_any_failure_exits_1_with_a_fix(env: dict[str, str]) -> None:
    """A FAIL makes the exit code 1, and its fix is printed on the next line."""
    code, out = run_doctor({**env, "OPENAI_API_KEY": ""})
    assert code == 1
    check = line_of(out, "api key")
    assert check.startswith("FAIL")
    assert "fix: set OPENAI_API_KEY" in check


def test_warnings_alone_exit_0(env: dict[str, str]) -> None:
    """WARN is advice: the exit code stays 0."""
    code, out = run_doctor({**env, "OPENAI_API_KEY": "proxy-issued-key-1234567890abcdef"})
    assert code == 0
    assert line_of(out, "api key").startswith("WARN")


def test_secrets_never_appear_in_the_output(env: dict[str, str]) -> None:
    """Only the public prefix and four characters of each secret are printed."""
    old = "whsec_" + "b2xkLXNlY3JldC1mb3ItdGVzdHMtb2YtZG9jdG9y"
    code, out = run_doctor({**env, "OPENAI_WEBHOOK_SECRET": f"{WEBHOOK_SECRET},{old}"})
    assert code == 0
    assert API_KEY not in out
    assert API_KEY[:12] + "…" in out
    for secret in (WEBHOOK_SECRET, old):
        assert secret not in out
        assert secret[:6] not in out.replace("whsec_", "")
        assert secret[:10] + "…" in out


# -- config -----------------------------------------------------------------------------------


def test_missing_config_is_a_failure(env: dict[str, str]) -> None:
    """No CALLCENTER_CONFIG and no --config: FAIL, telling where to set it."""
    env = {key: value for key, value in env.items() if key != "CALLCENTER_CONFIG"}
    code, out = run_doctor(env)
    assert code == 1
    assert "CALLCENTER_CONFIG is not set" in line_of(out, "config")


def test_invalid_config_names_file_and_key(env: dict[str, str], tmp_path: Path) -> None:
    """A config error is reported as the loader words it: file, line, key and reason."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[[routes]]\nname = "x"\naction = "dance"\n')
    code, out = run_doctor(env, "--config", str(bad))
    assert code == 1
    check = line_of(out, "config")
    assert check.startswith("FAIL")
    assert f"{bad}:3: routes[0].action" in check
    assert f"callcenter check-config {bad}" in check


# -- models -----------------------------------------------------------------------------------


def test_sdk_catalog_lists_the_announced_shutdowns() -> None:
    """The catalog flags the models whose shutdown on 2027-01-20 was announced."""
    catalog = sdk_model_catalog()
    assert catalog is not None
    for model in SHUTDOWN_MODELS:
        assert catalog.shutdowns[model] == date(2027, 1, 20)
    assert "gpt-realtime-2" in catalog.known
    assert "gpt-realtime-2" not in catalog.shutdowns


def route_config(global_model: str, route_model: str | None) -> str:
    text = example_config_path().read_text()
    text = text.replace('model = "gpt-realtime-2"', f'model = "{global_model}"', 1)
    if route_model:
        text = text.replace('name = "sales"\n', f'name = "sales"\nmodel = "{route_model}"\n', 1)
    return text


def test_model_with_announced_shutdown_is_flagged_with_its_date(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A route's model with a shutdown date gets its own line naming the route and the date."""
    config = tmp_path / "c.toml"
    config.write_text(route_config("gpt-realtime-2", "gpt-realtime-mini"))
    _, out = run_doctor(env, "--config", str(config))
    check = line_of(out, "models")
    assert 'gpt-realtime-mini (used by route "sales")' in check
    assert "2027-01-20" in check
    assert "deprecations" in check


def test_shutdown_in_the_future_warns() -> None:
    """Before the date: WARN with the number of days left."""
    config = parse_config(route_config("gpt-realtime", None), today=date(2026, 12, 1))
    [result] = check_models(config, sdk_model_catalog(), date(2026, 12, 21))
    assert result.status is Status.WARN
    assert "gpt-realtime (used by [openai].model)" in result.message
    assert "in 30 days" in result.message


def test_shutdown_in_the_past_fails() -> None:
    """On or after the date: FAIL, the model is gone."""
    config = parse_config(route_config("gpt-realtime", None), today=date(2026, 12, 1))
    [result] = check_models(config, sdk_model_catalog(), date(2027, 1, 20))
    assert result.status is Status.FAIL
    assert "was shut down on 2027-01-20" in result.message


def test_every_route_model_is_checked() -> None:
    """The global model and each route's own are judged separately."""
    config = parse_config(
        route_config("gpt-audio-mini", "gpt-realtime-mini-2025-12-15"), today=date(2026, 12, 1)
    )
    results = check_models(config, sdk_model_catalog(), date(2026, 1, 1))
    assert [r.status for r in results] == [Status.WARN, Status.WARN]
    assert {r.message.split(" ")[0] for r in results} == {
        "gpt-audio-mini",
        "gpt-realtime-mini-2025-12-15",
    }


def test_model_unknown_to_the_sdk_warns() -> None:
    """A model name the SDK does not list is probably a typo."""
    config = parse_config(route_config("gpt-realtim-2", None), today=date(2026, 12, 1))
    [result] = check_models(config, sdk_model_catalog(), date(2026, 1, 1))
    assert result.status is Status.WARN
    assert "not a Realtime model the installed openai SDK lists" in result.message


def test_unreadable_catalog_warns_to_check_by_hand() -> None:
    """Without the SDK's list, the models are named with the deprecations page."""
    config = parse_config(route_config("gpt-realtime-2", None), today=date(2026, 12, 1))
    [result] = check_models(config, None, date(2026, 1, 1))
    assert result.status is Status.WARN
    assert result.fix is not None
    assert "gpt-realtime-2" in result.fix


# -- secrets ----------------------------------------------------------------------------------


def test_mask_keeps_the_public_prefix_and_four_characters() -> None:
    """Masks show the kind of secret and its length, never its body."""
    assert mask_secret("sk-proj-" + "A" * 30) == "sk-proj-AAAA… (38 chars)"
    assert mask_secret("whsec_" + "B" * 30) == "whsec_BBBB… (36 chars)"
    assert mask_secret("sk-short") == "sk-… (8 chars)"
    assert mask_secret("x" * 10) == "… (10 chars)"


@pytest.mark.parametrize(
    ("value", "status", "words"),
    [
        (None, Status.FAIL, "is not set"),
        ('"' + API_KEY + '"', Status.FAIL, "quotes or blanks"),
        (API_KEY[:20] + " " + API_KEY[20:], Status.FAIL, "quotes or blanks"),
        ("sk-admin-" + "z" * 30, Status.WARN, "admin key"),
        ("proxy-issued-key-1234567890abcdef", Status.WARN, "does not start with sk-"),
        (API_KEY, Status.OK, "is set"),
    ],
)
def test_api_key_shapes(value: str | None, status: Status, words: str) -> None:
    """Missing or mangled keys fail; keys of the wrong kind warn; project keys pass."""
    result = check_api_key(value)
    assert (result.status, words in result.message) == (status, True)


@pytest.mark.parametrize(
    ("value", "status", "words"),
    [
        (None, Status.FAIL, "not set"),
        ("whsec_abc", Status.FAIL, "not valid base64"),
        (f'"{WEBHOOK_SECRET}"', Status.FAIL, "contains quotes"),
        ("a-raw-shared-secret-without-prefix", Status.WARN, "does not start with whsec_"),
        (",".join([WEBHOOK_SECRET] * 3), Status.WARN, "holds 3 secrets"),
        (f"{WEBHOOK_SECRET}, {WEBHOOK_SECRET}", Status.OK, "rotation in progress"),
        (WEBHOOK_SECRET, Status.OK, "is set"),
    ],
)
def test_webhook_secret_shapes(value: str | None, status: Status, words: str) -> None:
    """One whsec_ secret passes, two mean a rotation, anything malformed is named."""
    result = check_webhook_secrets(value)
    assert result.status is status, result
    assert words in result.message


# -- database ---------------------------------------------------------------------------------


def test_unmigrated_database_fails_with_migrate_fix(
    base_env: dict[str, str], store_url: str
) -> None:
    """A reachable database without the schema: FAIL, run `callcenter migrate`."""
    if store_url.startswith("sqlite"):
        path = sa.make_url(store_url).database
        assert path is not None
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()
    code, out = run_doctor({**base_env, "CALLCENTER_DATABASE_URL": store_url})
    assert code == 1
    check = line_of(out, "database")
    assert "reachable but not migrated" in check
    assert "fix: run `callcenter migrate`" in check


def test_missing_sqlite_file_is_reported_not_created(env: dict[str, str], tmp_path: Path) -> None:
    """doctor does not create the SQLite file (or its directory) it was asked to check."""
    url = default_sqlite_url(tmp_path / "nowhere")
    code, out = run_doctor({**env, "CALLCENTER_DATABASE_URL": url})
    assert code == 1
    assert "the file does not exist" in line_of(out, "database")
    assert not (tmp_path / "nowhere").exists()


def test_database_url_defaults_to_sqlite_in_the_data_dir(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Without CALLCENTER_DATABASE_URL, the database is the SQLite file in CALLCENTER_DATA_DIR."""
    data_dir = tmp_path / "data-dir"
    with Store.open(default_sqlite_url(data_dir)) as store:
        store.migrate()
    env = {key: value for key, value in env.items() if key != "CALLCENTER_DATABASE_URL"}
    code, out = run_doctor({**env, "CALLCENTER_DATA_DIR": str(data_dir)})
    assert code == 0, out
    assert str(data_dir / "callcenter.db") in line_of(out, "database")


def test_schema_at_another_revision_fails(good_env: dict[str, str], migrated_url: str) -> None:
    """A database migrated by another version is named with both revisions."""
    engine = create_store_engine(migrated_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    code, out = run_doctor(good_env)
    assert code == 1
    assert "schema at revision 9999, this callcenter expects" in line_of(out, "database")


def test_unreachable_postgres_fails_without_showing_the_password(
    env: dict[str, str],
) -> None:
    """Nothing listens at the URL: FAIL within the connect timeout, password masked."""
    url = f"postgresql+psycopg://callcenter:s3cr3tpw@127.0.0.1:{free_port()}/callcenter"
    code, out = run_doctor({**env, "CALLCENTER_DATABASE_URL": url})
    assert code == 1
    check = line_of(out, "database")
    assert "cannot connect" in check
    assert "s3cr3tpw" not in out
    assert "callcenter:***@127.0.0.1" in check


def test_malformed_database_url_fails(env: dict[str, str]) -> None:
    """A URL SQLAlchemy cannot parse is reported as such."""
    code, out = run_doctor({**env, "CALLCENTER_DATABASE_URL": "not a url"})
    assert code == 1
    assert "is not a URL" in line_of(out, "database")


# -- gunicorn ---------------------------------------------------------------------------------


def test_deploy_gunicorn_conf_is_suitable(env: dict[str, str]) -> None:
    """The shipped deploy/gunicorn.conf.py selects gthread with 8 threads."""
    code, out = run_doctor(env, "--gunicorn-config", str(GUNICORN_CONF))
    assert code == 0, out
    assert f"{GUNICORN_CONF}: gthread workers, 8 threads each" in line_of(out, "gunicorn")


def test_without_gunicorn_settings_serve_is_assumed() -> None:
    """No config file and no GUNICORN_CMD_ARGS: `callcenter serve`, which runs gthread."""
    result = check_gunicorn(None, "")
    assert result.status is Status.OK
    assert "callcenter serve" in result.message


@pytest.mark.parametrize(
    ("cmd_args", "status", "words"),
    [
        ("-k gevent", Status.WARN, "monkey-patch"),
        ("--worker-class=eventlet", Status.WARN, "monkey-patch"),
        ("--worker-class sync", Status.WARN, "sync workers"),
        ("-ksync --threads 4", Status.OK, "gthread workers, 4 threads"),
        ("--threads=4", Status.OK, "gthread workers, 4 threads"),
        ("-k gthread", Status.WARN, "1 thread"),
        ("-k uvicorn.workers.UvicornWorker", Status.WARN, "built and tested with gthread"),
        ("--threads many", Status.FAIL, "is not a number"),
        ("-k 'unbalanced", Status.FAIL, "cannot be split"),
    ],
)
def test_gunicorn_cmd_args_are_judged(cmd_args: str, status: Status, words: str) -> None:
    """GUNICORN_CMD_ARGS choosing the worker class or threads is judged like gunicorn reads it."""
    result = check_gunicorn(None, cmd_args)
    assert result.status is status, result
    assert words in result.message


def test_cmd_args_override_the_config_file() -> None:
    """As in gunicorn, GUNICORN_CMD_ARGS wins over the file."""
    result = check_gunicorn(GUNICORN_CONF, "-k gevent")
    assert result.status is Status.WARN
    assert result.message.startswith(f"{GUNICORN_CONF} + GUNICORN_CMD_ARGS: gevent")


def test_config_file_named_in_cmd_args_is_read(tmp_path: Path) -> None:
    """-c in GUNICORN_CMD_ARGS names the file to read, as gunicorn does."""
    conf = tmp_path / "g.py"
    conf.write_text('worker_class = "sync"\n')
    result = check_gunicorn(None, f"-c {conf}")
    assert result.status is Status.WARN
    assert result.message.startswith(f"{conf}: sync workers")


def test_gunicorn_conf_in_the_working_directory_is_read(env: dict[str, str]) -> None:
    """./gunicorn.conf.py is gunicorn's default file, so doctor reads it too."""
    Path("gunicorn.conf.py").write_text('worker_class = "gevent"\n')
    _, out = run_doctor(env)
    check = line_of(out, "gunicorn")
    assert check.startswith("WARN")
    assert "gunicorn.conf.py: gevent workers" in check


def test_broken_gunicorn_conf_fails(tmp_path: Path) -> None:
    """A config file that raises is a FAIL naming the exception."""
    conf = tmp_path / "g.py"
    conf.write_text("workers = int('four')\n")
    result = check_gunicorn(conf, "")
    assert result.status is Status.FAIL
    assert "ValueError" in result.message


def test_missing_gunicorn_conf_fails(tmp_path: Path) -> None:
    """--gunicorn-config naming no file is a FAIL, not a traceback."""
    result = check_gunicorn(tmp_path / "absent.py", "")
    assert result.status is Status.FAIL
    assert "does not exist" in result.message


def test_worker_class_given_as_a_class_is_named() -> None:
    """A class object in the config file is judged by its dotted name."""
    result = judge_worker_class("gunicorn.workers.gthread.ThreadWorker", 8, "conf")
    assert result.status is Status.OK


# -- the public webhook URL -------------------------------------------------------------------


@contextmanager
def http_server(app: Callable[..., Any]) -> Iterator[str]:
    """A WSGI app served on 127.0.0.1 in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(SERVE_POLL_INTERVAL,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def answering(status: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> Any:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response(status, headers or [])
        return [body]

    return app


@pytest.fixture
def callcenter_url(tmp_path: Path) -> Iterator[str]:
    """A real controller app on loopback (its webhook refuses unsigned deliveries)."""
    url = default_sqlite_url(tmp_path / "served")
    with Store.open(url) as store:
        store.migrate()
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CALLCENTER_DATABASE_URL": url,
            "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        },
        config_path=example_config_path(),
    )
    controller = InProcessController(settings)
    yield controller.url
    controller.stop()


def test_reachable_callcenter_over_http_warns_to_add_tls(
    env: dict[str, str], callcenter_url: str
) -> None:
    """A callcenter answers the unsigned POST with 400; plain http gets a WARN about TLS."""
    code, out = run_doctor(env, "--webhook-url", callcenter_url + "/webhooks/openai")
    assert code == 0, out
    check = line_of(out, "webhook url")
    assert check.startswith("WARN")
    assert "callcenter answers (HTTP 400 to an unsigned request), over plain http" in check


def test_callcenter_error_over_https_is_ok() -> None:
    """Over https, callcenter's 400 or 401 with its JSON error is OK."""
    body = (
        b'{"error": {"code": "unsigned", "message": "The webhook signature headers are invalid."}}'
    )
    for status in (400, 401):
        result = judge_webhook_answer(
            "https://cc.example.com/webhooks/openai", ProbeAnswer(status, body)
        )
        assert result.status is Status.OK


def test_wrong_path_is_a_404_failure(env: dict[str, str], callcenter_url: str) -> None:
    """A URL callcenter does not serve: FAIL naming the right path."""
    code, out = run_doctor(env, "--webhook-url", callcenter_url + "/webhook")
    assert code == 1
    check = line_of(out, "webhook url")
    assert "HTTP 404" in check
    assert "/webhooks/openai" in check


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("200 OK", "not callcenter"),
        ("502 Bad Gateway", "HTTP 502"),
        ("403 Forbidden", "HTTP 403"),
        ("400 Bad Request", "not callcenter's JSON error"),
    ],
)
def test_other_answers_are_not_a_callcenter(env: dict[str, str], status: str, words: str) -> None:
    """2xx, 5xx, other 4xx and a foreign 400 are each named for what they are."""
    with http_server(answering(status, b"<html>nope</html>")) as url:
        code, out = run_doctor(env, "--webhook-url", url + "/webhooks/openai")
    check = line_of(out, "webhook url")
    assert words in check
    assert check.startswith("WARN" if status.startswith("400") else "FAIL")
    assert code == (0 if status.startswith("400") else 1)


def test_redirect_is_not_followed(env: dict[str, str]) -> None:
    """A redirect fails, naming where it goes: OpenAI must be given the final URL."""
    app = answering("301 Moved Permanently", headers=[("Location", "https://elsewhere/x")])
    with http_server(app) as url:
        code, out = run_doctor(env, "--webhook-url", url + "/webhooks/openai")
    assert code == 1
    assert "redirects (HTTP 301) to https://elsewhere/x" in line_of(out, "webhook url")


def test_nothing_listening_fails(env: dict[str, str]) -> None:
    """Connection refused: FAIL, with the reason."""
    url = f"http://127.0.0.1:{free_port()}/webhooks/openai"
    code, out = run_doctor(env, "--webhook-url", url)
    assert code == 1
    assert "no answer" in line_of(out, "webhook url")


def test_silent_server_times_out(env: dict[str, str]) -> None:
    """A server that accepts the connection but never answers fails after --timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/webhooks/openai"
        code, out = run_doctor(env, "--webhook-url", url, "--timeout", "0.2")
    assert code == 1
    assert "timed out" in line_of(out, "webhook url")


def test_url_credentials_and_query_are_not_printed() -> None:
    """A user:password or query string in the URL stays out of the report."""
    result = judge_webhook_answer(
        "https://user:hunter2@cc.example.com/webhooks/openai?token=abc", ProbeAnswer(404)
    )
    assert "hunter2" not in result.message
    assert "token" not in result.message
    assert result.message.startswith("https://cc.example.com/webhooks/openai:")


def test_non_http_url_is_not_probed(env: dict[str, str]) -> None:
    """Anything but an http(s) URL fails at once."""
    code, out = run_doctor(env, "--webhook-url", "ftp://cc.example.com/webhooks/openai")
    assert code == 1
    assert "is not an http(s) URL" in line_of(out, "webhook url")


@pytest.mark.parametrize(
    ("region", "base_url", "status"),
    [
        ("eu", "https://eu.api.openai.com/v1", Status.OK),
        ("eu", None, Status.FAIL),
        ("eu", "https://api.openai.com/v1", Status.FAIL),
        ("us", "https://eu.api.openai.com/v1", Status.FAIL),
        ("us", None, Status.OK),
        ("eu", "http://127.0.0.1:8765/v1", Status.OK),
    ],
)
def test_the_sip_region_and_the_base_url_must_match(
    region: str, base_url: str | None, status: Status
) -> None:
    """EU SIP needs the EU API and the other way round; a non-OpenAI host is not judged."""
    result = check_region(region, base_url)
    assert result.status is status
    if status is Status.FAIL:
        assert "OPENAI_BASE_URL=" in (result.fix or "")


def test_doctor_fails_on_eu_sip_with_the_global_api(env: dict[str, str], tmp_path: Path) -> None:
    """CALLCENTER_SIP_REGION=eu without the EU base URL makes doctor exit 1 with a region line."""
    config = tmp_path / "c.toml"
    config.write_text(route_config("gpt-realtime-2", None))
    code, out = run_doctor(
        {**env, "CALLCENTER_SIP_REGION": "eu", "OPENAI_BASE_URL": ""}, "--config", str(config)
    )
    assert code == 1
    assert "eu.api.openai.com" in line_of(out, "region")
