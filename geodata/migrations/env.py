"""Alembic environment: migrations run on the engine handed over by :func:`geodata.db.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        msg = "no database: hand an engine to the migrations or set sqlalchemy.url"
        raise RuntimeError(msg)
    engine = create_engine(url)

with engine.begin() as connection:
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    context.run_migrations()
