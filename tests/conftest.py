"""Fixtures shared by the test suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from callcenter.store import Store, default_sqlite_url
from callcenter.store.engine import create_store_engine

POSTGRES_URL_VARIABLE = "CALLCENTER_TEST_POSTGRES_URL"


# -- store ------------------------------------------------------------------------------------


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
