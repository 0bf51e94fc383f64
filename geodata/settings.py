"""Where the product keeps its data: the one module that reads environment variables.

Library functions take paths and URLs as arguments; the command line and the dashboard ask this
module for the defaults.

``BEATS_DATA_DIR``
    The data directory (default ``<repository>/data``). The incident store is its ``store/``
    sub-directory and the default SQLite database is ``meetings.db`` in it.
``DATABASE_URL``
    SQLAlchemy URL of the meetings/plans database (default: SQLite in the data directory), e.g.
    ``postgresql+psycopg://user:pass@localhost/beats``.
``BEATS_PUBLIC_DIR``
    Where ``python -m geodata publish`` writes the community extract (default ``<data>/public``).
``BEATS_DEPARTMENT``
    The department profile (a bundled name such as ``seattle`` or a TOML path) that ``init``
    builds and that an app uses when its store records none. A store that records its
    department is always read as that department (see :func:`department`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from geodata.department import Department

__all__ = [
    "DEFAULT_DEPARTMENT",
    "REPO_ROOT",
    "SAMPLES_DIR",
    "data_dir",
    "database_url",
    "department",
    "department_name",
    "public_dir",
    "store_dir",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The bundled real Chicago data (see its SOURCE.md).
SAMPLES_DIR = Path(__file__).resolve().parent / "samples" / "chicago"
#: The department ``init`` builds when none is chosen (the README's first command).
DEFAULT_DEPARTMENT = "chicago"


def data_dir() -> Path:
    """Return the data directory (``BEATS_DATA_DIR`` or ``<repository>/data``)."""
    return Path(os.environ.get("BEATS_DATA_DIR", REPO_ROOT / "data")).expanduser()


def store_dir(override: str | Path | None = None) -> Path:
    """Return the incident store directory: `override` (``--store``) or ``<data>/store``."""
    return Path(override).expanduser() if override else data_dir() / "store"


def database_url(override: str | None = None) -> str:
    """Return the SQLAlchemy URL of the database (``DATABASE_URL`` or SQLite in the data dir)."""
    if override:
        return override
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{data_dir() / 'meetings.db'}"


def public_dir(override: str | Path | None = None) -> Path:
    """Return the directory of the published community extract."""
    if override:
        return Path(override).expanduser()
    return Path(os.environ.get("BEATS_PUBLIC_DIR", data_dir() / "public")).expanduser()


def department_name(override: str | Path | None = None) -> str:
    """Return the chosen department profile: `override`, ``BEATS_DEPARTMENT`` or Chicago."""
    if override:
        return str(override)
    return os.environ.get("BEATS_DEPARTMENT") or DEFAULT_DEPARTMENT


def department(store_override: str | Path | None = None) -> Department:
    """Return the department of the selected store.

    The store's recorded profile wins (a store is one department's data); without a store, the
    profile named by ``BEATS_DEPARTMENT`` (default Chicago).

    Parameters
    ----------
    store_override
        The store directory (``--store``); default :func:`store_dir`.
    """
    from geodata.department import load_department, store_department
    from geodata.store import IncidentStore

    store = IncidentStore(store_dir(store_override))
    if store.meta_path.exists():
        return store_department(store)
    return load_department(department_name())
