"""Fixtures for the meetings tests: a seeded SQLite database (built once) and PostgreSQL."""

from __future__ import annotations

import os
import shutil

import pytest
import sqlalchemy as sa

from geodata import meetings
from tests.conftest import require

PG_URL = os.environ.get("DATABASE_TEST_URL", "")


@pytest.fixture(scope="session")
def meetings_template(tmp_path_factory, samples_dir):
    """Path of a seeded, migrated SQLite meetings database (read-only: copy it)."""
    path = tmp_path_factory.mktemp("meetings") / "template.db"
    engine = meetings.open_database(f"sqlite:///{path}", samples_dir=samples_dir)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def meetings_url(meetings_template, tmp_path) -> str:
    """URL of a private copy of the seeded database that a test may change."""
    path = tmp_path / "meetings.db"
    shutil.copyfile(meetings_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def meetings_engine(meetings_url):
    engine = meetings.open_database(meetings_url)
    yield engine
    engine.dispose()


def _pg_reachable() -> bool:
    if not PG_URL.startswith("postgresql"):
        return False
    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect():
            pass
        engine.dispose()
    except Exception:  # any failure means "not available"
        return False
    return True


def drop_all(url: str) -> None:
    """Drop every table of the test database (the PostgreSQL database is reused)."""
    engine = sa.create_engine(url)
    reflected = sa.MetaData()
    reflected.reflect(engine)
    reflected.drop_all(engine)
    engine.dispose()


@pytest.fixture
def pg_url() -> str:
    """An empty PostgreSQL database (``DATABASE_TEST_URL``); skipped locally if unreachable."""
    require("PostgreSQL (DATABASE_TEST_URL)", _pg_reachable())
    drop_all(PG_URL)
    return PG_URL
