"""Alembic environment: run by :meth:`keyserver.db.Database.migrate` with a live connection."""

from alembic import context

from keyserver.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when alembic is driven by hand
    raise SystemExit("keyserver migrations run through `keyserver init`, which passes a connection")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
