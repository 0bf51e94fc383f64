"""Fixtures for the meetings tests: a seeded SQLite database, built once per session."""

from __future__ import annotations

import shutil

import pytest

from geodata import meetings


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
