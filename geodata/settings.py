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
``BEATS_IDLE_TIMEOUT_S``
    Seconds without an action after which an analyst-app session ends (default 1800).
``BEATS_LOCKOUT_FAILURES`` / ``BEATS_LOCKOUT_MINUTES``
    Failed sign-ins in a row that lock an account (default 5), and for how long (default 15).
``BEATS_TILE_URL``
    Background map tiles: a Leaflet URL template (``https://tiles.example.org/{z}/{x}/{y}.png``),
    ``openstreetmap`` (the default) or ``none`` for offline deployments: maps then draw beat
    outlines and labels on a plain background. ``BEATS_TILE_ATTRIBUTION`` credits a custom URL.
``BEATS_DEPARTMENT``
    The department profile (a bundled name such as ``seattle`` or a TOML path) that ``init``
    builds and that an app uses when its store records none. A store that records its
    department is always read as that department (see :func:`department`).
``BEATS_DASK_SCHEDULER``
    Address of a ``dask.distributed`` scheduler whose workers can read the store (e.g.
    ``tcp://10.0.0.5:8786``): store-wide counts and surfaces, and the reading and joining of
    incident exports (``geodata ingest``), then run on its workers (``docs/scale.md``). Unset:
    this machine.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from geodata.department import Department

__all__ = [
    "DEFAULT_DEPARTMENT",
    "REPO_ROOT",
    "SAMPLES_ROOT",
    "bundled_samples",
    "data_dir",
    "database_url",
    "department",
    "department_name",
    "idle_timeout_s",
    "lockout",
    "operator",
    "public_dir",
    "scheduler_address",
    "store_dir",
    "tile_settings",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The bundled real data, one directory per bundled department (each with a SOURCE.md).
SAMPLES_ROOT = Path(__file__).resolve().parent / "samples"
#: The department ``init`` builds when none is chosen (the README's first command).
DEFAULT_DEPARTMENT = "chicago"


def bundled_samples(name: str = DEFAULT_DEPARTMENT) -> Path:
    """Return the directory of a bundled department's sample files (``chicago``, ``seattle``)."""
    return SAMPLES_ROOT / name


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


def _number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError as err:
        msg = f"environment variable {name}={text!r} is not a number"
        raise ValueError(msg) from err
    if value <= 0:
        msg = f"environment variable {name}={text!r} must be greater than 0"
        raise ValueError(msg)
    return value


def idle_timeout_s() -> float:
    """Return the idle timeout of analyst-app sessions in seconds (``BEATS_IDLE_TIMEOUT_S``)."""
    return _number("BEATS_IDLE_TIMEOUT_S", 1800.0)


def lockout() -> tuple[int, float]:
    """Return (failed sign-ins that lock an account, lock minutes) from the environment."""
    return int(_number("BEATS_LOCKOUT_FAILURES", 5)), _number("BEATS_LOCKOUT_MINUTES", 15.0)


def operator() -> str:
    """Return the operating-system user running a command (the actor of CLI changes)."""
    try:
        return getpass.getuser()
    except OSError:  # no login name (some containers)
        return f"uid{os.getuid()}"


def tile_settings() -> tuple[str | None, str | None]:
    """Return ``(tiles, attribution)`` for the maps: a URL template, ``"OpenStreetMap"`` or None.

    None means no background tiles (``BEATS_TILE_URL=none``), for networks without a tile server.
    """
    value = os.environ.get("BEATS_TILE_URL", "openstreetmap").strip()
    if value.lower() in ("", "none", "off", "offline"):
        return None, None
    if value.lower() == "openstreetmap":
        return "OpenStreetMap", None
    attribution = os.environ.get("BEATS_TILE_ATTRIBUTION") or "Map tiles: configured tile server"
    return value, attribution


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


def scheduler_address(override: str | None = None) -> str | None:
    """Return the Dask scheduler to run store-wide work on (``BEATS_DASK_SCHEDULER``), or None.

    None means this machine (two local threads). See ``docs/scale.md``.
    """
    return override or os.environ.get("BEATS_DASK_SCHEDULER") or None
