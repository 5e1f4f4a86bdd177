"""Alembic environment: migrations run on the connection that ``Store.migrate()`` hands over.

There is no alembic.ini: ``callcenter migrate`` (``Store.migrate()``) builds the Alembic
config in code and passes its own connection, already inside a write transaction that holds
the migration lock, in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from callcenter.store.schema import metadata


def run_migrations_online() -> None:
    """Run the pending migrations inside the caller's transaction."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations with `callcenter migrate`, not the alembic CLI")
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
