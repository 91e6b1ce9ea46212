"""Alembic environment: runs against the engine handed over in `config.attributes`."""
from __future__ import annotations

from alembic import context

from monitor.core.storage.schema import Base

# Replicas starting together on one PostgreSQL database would race to create the same tables:
# the first takes this lock and migrates, the others wait and find nothing left to do.
MIGRATION_LOCK = 0x666C6D67  # "flmg"

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
        connection.commit()
