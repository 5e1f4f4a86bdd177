"""Fixtures shared by the test suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from callcenter.config.loader import example_config_path
from callcenter.emulator import EmulatorThread, Pacing, RedeliveryPolicy
from callcenter.notify.backoff import Backoff
from callcenter.settings import Settings
from callcenter.store import Store, default_sqlite_url
from callcenter.store.engine import create_store_engine
from tests.harness import API_KEY, WEBHOOK_KEEPALIVE, WEBHOOK_SECRET, InProcessController

POSTGRES_URL_VARIABLE = "CALLCENTER_TEST_POSTGRES_URL"
LONG = os.environ.get("CALLCENTER_LONG_TESTS") == "1"


# -- store ------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without CALLCENTER_LONG_TESTS=1, run the PostgreSQL variant of ``store_url`` (and
    ``module_store_url``) only where the store is the subject (marked ``store_subject``):
    elsewhere the test is about something else, and its SQLite variant guards that."""
    if LONG:
        return
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)  # only on parametrized tests
        params = callspec.params if callspec is not None else {}
        postgres = "postgres" in (params.get("store_url"), params.get("module_store_url"))
        if postgres and item.get_closest_marker("store_subject") is None:
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> str:
    """Say which PostgreSQL variants this run leaves out."""
    if LONG:
        return "store_url: every PostgreSQL variant (CALLCENTER_LONG_TESTS=1)"
    return (
        "store_url: PostgreSQL variants only where the store is the subject (store_subject); "
        "CALLCENTER_LONG_TESTS=1 runs them all"
    )


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema.

    The PostgreSQL variant is skipped unless CALLCENTER_TEST_POSTGRES_URL names a database;
    each test gets its own schema (through the connection's search_path), dropped afterwards.
    """
    if request.param == "sqlite":
        yield default_sqlite_url(tmp_path / "data")
    else:
        yield from _postgres_schema_url()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``store_url`` for a module's shared server: one database for the whole module."""
    if request.param == "sqlite":
        yield default_sqlite_url(tmp_path_factory.mktemp("module") / "data")
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store on each database of ``store_url``."""
    opened = Store.open(store_url)
    opened.migrate()
    yield opened
    opened.close()


def _postgres_schema_url() -> Iterator[str]:
    base = os.environ.get(POSTGRES_URL_VARIABLE)
    if not base:
        pytest.skip(
            f"PostgreSQL variant: set {POSTGRES_URL_VARIABLE} "
            "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run it"
        )
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_store_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# -- emulator and controller ------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    """The emulator of OpenAI's side on loopback, with fast redelivery and event checks on.

    Its server answers at once (no server timings) so that the suite stays fast; a test about
    the caller's wait sets ``emulator.emulator.pacing`` itself.
    """
    thread = EmulatorThread(
        api_key=API_KEY,
        webhook_secret=WEBHOOK_SECRET,
        redelivery=RedeliveryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2, timeout=5.0),
        pacing=Pacing(),
        validate_events=True,
        webhook_keepalive=WEBHOOK_KEEPALIVE,
    )
    thread.start()
    yield thread
    problems = list(thread.emulator.event_problems)
    thread.stop()
    assert not problems, f"the emulator emitted invalid events: {problems}"


@pytest.fixture
def controller_env(tmp_path: Path, emulator: EmulatorThread, store_url: str) -> dict[str, str]:
    """The environment a controller needs to talk to the emulator and the test store."""
    return {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OPENAI_BASE_URL": emulator.base_url,
        "CALLCENTER_DATABASE_URL": store_url,
        "CALLCENTER_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def start_controller(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[Callable[..., InProcessController]]:
    """Start the controller app under a real server, wired to the emulator.

    Takes the config text (default: the example config), a pinned clock, extra settings
    environment; migrates the store first and points the emulator's webhooks at it.
    """
    started: list[InProcessController] = []

    def start(
        config_text: str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        env: dict[str, str] | None = None,
        notify_backoff: Backoff | None = None,
    ) -> InProcessController:
        config_path = tmp_path / f"callcenter-{len(started)}.toml"
        config_path.write_text(config_text or example_config_path().read_text())
        settings = Settings.from_env({**controller_env, **(env or {})}, config_path=config_path)
        with Store.open(settings.database_url) as store:
            store.migrate()
        controller = InProcessController(settings, clock=clock, notify_backoff=notify_backoff)
        started.append(controller)
        emulator.emulator.webhook_url = controller.webhook_url
        return controller

    yield start
    for controller in started:
        controller.stop()
