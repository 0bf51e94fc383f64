"""Shared fixtures: the bundled real data, one store per data set, built once per session.

Slow tests are marked ``slow`` (long fits and backtests, many hypothesis examples, AppTest runs
over many pages or stores); browser tests (``browser``) count as slow too. A local run leaves
them out (``--run-slow`` runs them, as does ``-m slow`` or ``-m browser``); under ``CI=true``
(``.ci/run``, README's test command) every test runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# numba writes its compiled kernels (ours and fast_hdbscan's) to one stable folder, so a new
# checkout or venv reuses them; this must happen before anything imports numba
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "beatwise" / "numba"))

import pytest
import sqlalchemy as sa

from geodata import settings
from geodata.boundaries import read_beats
from geodata.ingest import build_sample_store
from geodata.join import BeatIndex
from geodata.store import IncidentStore

pytest_plugins = ["tests.meetings_fixtures", "tests.community_helpers"]

SAMPLES = settings.bundled_samples("chicago")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
#: The PostgreSQL test database (``.ci/run`` creates it); its tables are dropped by each test.
PG_URL = os.environ.get("DATABASE_TEST_URL", "")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", help="also run tests marked slow (CI always does)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out ``slow`` and ``browser`` tests locally unless asked (``--run-slow``, ``-m``)."""
    if IN_CI or config.getoption("--run-slow") or config.getoption("markexpr"):
        return
    slow = [item for item in items if _is_slow(item)]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not _is_slow(item)]


def _is_slow(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) for name in ("slow", "browser"))


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def beats():
    return read_beats(SAMPLES / "beats.geojson")


@pytest.fixture(scope="session")
def beat_index(beats):
    return BeatIndex(beats)


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory) -> IncidentStore:
    """A store built from all bundled Chicago files (read-only: copy it to modify)."""
    root = tmp_path_factory.mktemp("store") / "store"
    store = IncidentStore(root)
    reports = build_sample_store(store, SAMPLES)
    store.build_reports = reports  # type: ignore[attr-defined]
    return store


@pytest.fixture(scope="session")
def seattle_store(tmp_path_factory) -> IncidentStore:
    """A store built from the bundled Seattle 2018 files (read-only: copy it to modify).

    Its department (``store.department()``) names the levels beat / sector / precinct; the
    store's columns stay ``beat``, ``sector``, ``district``.
    """
    root = tmp_path_factory.mktemp("seattle") / "store"
    store = IncidentStore(root)
    reports = build_sample_store(store, department="seattle")
    store.build_reports = reports  # type: ignore[attr-defined]
    return store


@pytest.fixture(scope="session")
def minneapolis_store(tmp_path_factory) -> IncidentStore:
    """A store of the bundled Minneapolis department: sectors built from calls, no incidents,
    the 14,181 accepted CAD calls of 21 June - 13 July 2020 (read-only)."""
    root = tmp_path_factory.mktemp("minneapolis") / "store"
    store = IncidentStore(root)
    build_sample_store(store, department="minneapolis")
    return store


@pytest.fixture
def writable_store(sample_store, tmp_path) -> IncidentStore:
    """A private copy of the sample store that a test may change."""
    root = tmp_path / "store"
    shutil.copytree(sample_store.root, root)
    return IncidentStore(root)


@pytest.fixture(scope="session")
def client():
    """Yield a client of a two-worker Dask ``LocalCluster`` (one thread per worker process)."""
    # a requirement, not optional: under CI a missing dask fails here rather than skipping
    from geodata.cluster import local_cluster

    with local_cluster(2) as connected:
        yield connected


def require(component: str, available: bool) -> None:
    """Skip when `component` is missing locally; fail under CI=true, where it must be installed."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{component} is required under CI=true but is not available")
    pytest.skip(f"{component} not available (installed by .ci/run)")


APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture
def app_env(sample_store, monkeypatch):
    """Point the dashboard at the session's sample store; return the app entry path."""
    monkeypatch.setenv("BEATS_DATA_DIR", str(sample_store.root.parent))
    return APP


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


@pytest.fixture
def pg_url() -> str:
    """An empty PostgreSQL database (``DATABASE_TEST_URL``): skipped locally, fails under CI."""
    require("PostgreSQL (DATABASE_TEST_URL)", _pg_reachable())
    engine = sa.create_engine(PG_URL)
    reflected = sa.MetaData()
    reflected.reflect(engine)
    reflected.drop_all(engine)
    engine.dispose()
    return PG_URL
