"""Alembic environment: runs on the connection (and inside the transaction) handed over by
`bot.store.migrate.upgrade_to_head` through ``config.attributes["connection"]``."""
from alembic import context

from bot.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("store migrations run through bot.store.migrate.upgrade_to_head(engine)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
