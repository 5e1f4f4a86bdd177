"""The store a benchmark runs on: a SQLite file of its own, or a PostgreSQL schema of its own
(created, migrated, and dropped at the end), so that no run sees another's calls."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from callcenter.store import Store, default_sqlite_url
from callcenter.store.engine import create_store_engine

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KINDS = ("sqlite", "postgres")


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--database`` (sqlite or postgres) and ``--postgres-url``, for :func:`database`."""
    parser.add_argument("--database", choices=KINDS, default="sqlite")
    parser.add_argument(
        "--postgres-url", default=POSTGRES_URL, help="the database the fresh schema goes in"
    )


@contextmanager
def database(kind: str, scratch: Path, postgres_url: str = POSTGRES_URL) -> Iterator[str]:
    """The URL of an empty, migrated store: a SQLite file, or a PostgreSQL schema of its own."""
    if kind == "sqlite":
        url = default_sqlite_url(scratch)
        with Store.open(url) as store:
            store.migrate()
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:16]}"
    admin = create_store_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        query = {"options": f"-csearch_path={schema}"}
        url = sa.make_url(postgres_url).update_query_dict(query).render_as_string(False)
        with Store.open(url) as store:
            store.migrate()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
