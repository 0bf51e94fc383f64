"""The relational database (meetings, venues, saved beat plans): engines and versioned schema.

SQLite file by default (no server to install), PostgreSQL when ``DATABASE_URL`` says so. The
schema is versioned with Alembic (``geodata/migrations``); every feature owns its own branch of
revisions (``meetings``, ``plans``), and :func:`upgrade` brings a database to all heads, so an
upgrade never drops data. Callers pass the URL; only :mod:`geodata.settings` reads the
environment.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_heads", "make_engine", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Return an engine for `url`; SQLite gets foreign keys, WAL and a busy timeout.

    Parameters
    ----------
    url
        SQLAlchemy URL, e.g. ``sqlite:///data/meetings.db`` or
        ``postgresql+psycopg://user:pass@localhost/beats``.
    echo
        Log every SQL statement.
    """
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic config that migrates `engine` with the product's revisions."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Migrate the database to `revision` (default: the newest revision of every branch)."""
    command.upgrade(alembic_config(engine), revision)


def current_heads(engine: Engine) -> set[str]:
    """Return the revisions the database is at (empty for a new database)."""
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def latest_heads() -> set[str]:
    """Return the newest revision of every branch shipped with the product."""
    return set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
