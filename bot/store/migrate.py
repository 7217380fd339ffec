"""Bring a database's schema to the newest migration, safely from several processes at once.

The Alembic environment lives in ``bot/store/migrations`` and is driven by a `Config` built
here, so no ``alembic.ini`` is needed at run time. Upgrading runs in one transaction that first
takes a lock: on PostgreSQL the advisory lock `MIGRATION_LOCK` (DDL is transactional there, so a
second process waits, then finds the schema at head and does nothing); on SQLite
``BEGIN IMMEDIATE`` (the database's write lock, waited for up to the busy timeout). Running it
again on an up-to-date database changes nothing.

To add a migration, write ``migrations/versions/NNNN_what.py`` with ``down_revision`` set to the
previous head, in the style of ``0001_initial.py`` (explicit types, no imports from the app,
so that old migrations keep meaning what they meant), and update `bot.store.schema` to match:
a test compares the migrated database with the declared tables.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from bot.store.engine import MIGRATION_LOCK, writer

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")


def alembic_config() -> Config:
    """An Alembic `Config` for the store's migrations, built in code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Run every pending migration in one locked transaction (see the module docstring)."""
    config = alembic_config()
    with writer(engine).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
