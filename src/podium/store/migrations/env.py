"""Alembic environment for the Podium store.

Two ways in:
- `Database.migrate()` passes an open connection in `config.attributes["connection"]`;
  the migrations run inside that connection's transaction.
- the alembic CLI, from the repository root:
      alembic -c src/podium/store/alembic.ini -x url=sqlite:////abs/podium.db upgrade head
  the URL comes from `-x url=…`, else `sqlalchemy.url`, else $PODIUM_DATABASE_URL.
  `--sql` (offline mode) prints the SQL instead of running it.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from podium.store.db import Database, normalize_url
from podium.store.tables import metadata

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: copy-and-move tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _cli_url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("PODIUM_DATABASE_URL")
    )
    if not url:
        raise SystemExit("no database: pass -x url=… or set PODIUM_DATABASE_URL")
    return url


def run() -> None:
    passed = config.attributes.get("connection")
    if passed is not None:
        _configure(passed)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    if context.is_offline_mode():
        context.configure(
            url=normalize_url(_cli_url()),
            target_metadata=metadata,
            literal_binds=True,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    db = Database(_cli_url())
    try:
        with db.migration_connection() as connection:
            _configure(connection)
    finally:
        db.dispose()


run()
