"""Shared fixtures: the bundled real data, one store per data set, built once per session.

Slow tests are marked ``slow`` (long fits and backtests, many hypothesis examples, AppTest runs
over many pages or stores); browser tests (``browser``) count as slow too. A local run leaves
them out (``--run-slow`` runs them, as does ``-m slow`` or ``-m browser``); under ``CI=true``
(``.ci/run``, README's test command) every test runs.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import os
import pickle
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

# numba writes its compiled kernels (ours and fast_hdbscan's) to one stable folder, so a new
# checkout or venv reuses them; this must happen before anything imports numba
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "beatwise" / "numba"))

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from geodata import settings, users
from geodata.boundaries import read_beats
from geodata.department import load_department
from geodata.ingest import IngestReport, build_sample_store, install_boundaries
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


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (pyproject.toml): one worker per core for the quick run; one process for
    the full suite (``CI=true``, ``--run-slow``) and for ``-m`` selections.

    The full suite with its browser tests is not yet shown green on xdist workers: on 2 workers
    under load 5-10 a run met 3 errors among the browser tests and did not end in 50 min, and
    ``tests/browser -n 2`` timed out in ``test_every_action_leaves_one_audit_entry`` (the
    import's "20 rows read" not shown in 120 s). So CI keeps the single process it passes in
    (22-25 min). ``-n 2`` still asks for workers.
    """
    if IN_CI or config.getoption("--run-slow") or config.getoption("markexpr"):
        return 0
    return None  # pytest-xdist's own count: the cores


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


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """Hash the tests' passwords with Argon2id at its lowest cost (1 pass over 1 MiB).

    Every page test signs a user in, and Argon2id at the product's cost takes about 0.2 s a
    hash or check on this machine. A check reads the cost from the stored hash, so the code
    under test is the same; ``tests/geodata/test_auth.py`` still checks the Argon2id format.
    Commands and servers that tests start in another process hash at the product's cost.
    """
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", cheap)
        patch.setattr(users, "_DUMMY_HASH", cheap.hash("not a password of anyone"))
        yield


@pytest.fixture(scope="session", autouse=True)
def _component_scan_once() -> Iterator[None]:
    """Let AppTest scan the installed packages for Streamlit components once per process.

    Each new ``AppTest`` reads the metadata of every installed distribution (0.16 s of CPU
    here, about 100 AppTests a run); the installed packages do not change during a run, so
    the first scan's result is reused. Only where page tests were collected.
    """
    if "streamlit.testing.v1" not in sys.modules:
        yield
        return
    from streamlit.components.v2 import manifest_scanner

    scan = functools.cache(manifest_scanner.scan_component_manifests)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            manifest_scanner, "scan_component_manifests", lambda max_workers=None: list(scan())
        )
        yield


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Put back ``sys.modules["__main__"]`` after each test.

    Streamlit's script runner (every AppTest) installs the page script as ``__main__`` and never
    puts the old one back. A process that Python then starts by "spawn" (a Dask LocalCluster's
    workers) runs ``__main__``'s file first, so it ran a page outside Streamlit and the worker
    died: the distributed tests failed whenever a page test had run before them in the same
    process (seen in a two-worker full run).
    """
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def beats():
    return read_beats(SAMPLES / "beats.geojson")


@pytest.fixture(scope="session")
def beat_index(beats):
    return BeatIndex(beats)


def built_once(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    build: Callable[[IncidentStore], list[IngestReport] | None],
) -> IncidentStore:
    """Return this process's store `name`, filled by `build` once per test run.

    Under pytest-xdist the first worker that asks builds the store in the run's temp folder,
    which the workers share (``getbasetemp().parent``, as pytest-xdist's docs show), holding a
    lock; every worker, that one included, then gets a private copy: a store writes caches
    beside itself when read (daily counts, binned KDE counts, counts per file), so two
    processes never read the same folder. Without xdist the store is built in place. What
    `build` returns (the ingest reports) is kept as ``store.build_reports``, its paths pointing
    into the copy.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        store = IncidentStore(tmp_path_factory.mktemp(name) / "store")
        store.build_reports = build(store)  # type: ignore[attr-defined]
        return store
    shared = tmp_path_factory.getbasetemp().parent / f"built-{name}"
    shared.mkdir(exist_ok=True)
    built = IncidentStore(shared / "store")
    done = shared / "build_reports.pickle"  # written last: the store is whole
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(built.root, ignore_errors=True)  # a build that failed part way
            done.write_bytes(pickle.dumps(build(built)))
    store = copy_store(built, tmp_path_factory.mktemp(name) / "store")
    reports = pickle.loads(done.read_bytes())
    if reports is not None:
        reports = [_moved(report, built.root, store.root) for report in reports]
    store.build_reports = reports  # type: ignore[attr-defined]
    return store


def _moved(report: IngestReport, old: Path, new: Path) -> IngestReport:
    """Return `report` with the files it names under `old` named under `new`."""
    paths = {
        key: str(new / Path(value).relative_to(old))
        for key in ("rejections_csv", "disagreements_csv")
        if (value := getattr(report, key)) and Path(value).is_relative_to(old)
    }
    return dataclasses.replace(report, **paths)


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory) -> IncidentStore:
    """A store built from all bundled Chicago files (read-only: copy it to modify)."""
    return built_once(tmp_path_factory, "store", lambda store: build_sample_store(store, SAMPLES))


@pytest.fixture(scope="session")
def seattle_store(tmp_path_factory) -> IncidentStore:
    """A store built from the bundled Seattle 2018 files (read-only: copy it to modify).

    Its department (``store.department()``) names the levels beat / sector / precinct; the
    store's columns stay ``beat``, ``sector``, ``district``.
    """
    return built_once(
        tmp_path_factory, "seattle", lambda store: build_sample_store(store, department="seattle")
    )


@pytest.fixture(scope="session")
def minneapolis_store(tmp_path_factory) -> IncidentStore:
    """A store of the bundled Minneapolis department: sectors built from calls, no incidents,
    the 14,181 accepted CAD calls of 21 June - 13 July 2020 (read-only)."""
    return built_once(
        tmp_path_factory,
        "minneapolis",
        lambda store: build_sample_store(store, department="minneapolis"),
    )


@pytest.fixture(scope="session")
def chicago_beats_store(tmp_path_factory, sample_store) -> IncidentStore:
    """A store of the bundled Chicago beats and districts, no incidents (read-only).

    It keeps the beat index of the sample store (the same beats), so it and its copies
    (:func:`copy_store`) ingest without rasterising the beats again: about 4.5 s of CPU that
    a new store spends on its first ingest.
    """

    def build(store: IncidentStore) -> None:
        install_boundaries(
            store,
            SAMPLES / "beats.geojson",
            districts_path=SAMPLES / "districts.geojson",
            department=load_department("chicago"),
        )
        reuse_beat_index(store, sample_store)

    return built_once(tmp_path_factory, "chicago_beats", build)


def reuse_beat_index(store: IncidentStore, source: IncidentStore) -> None:
    """Copy `source`'s saved beat indexes beside `store`'s beats (the same beat layer)."""
    layers = next((store.root / "boundaries").rglob("beats.parquet")).parent
    for index in (source.root / "boundaries").rglob("beat-index-*.npz"):
        shutil.copyfile(index, layers / index.name)


def copy_store(store: IncidentStore, root: Path) -> IncidentStore:
    """Return a private copy of `store` at `root` (a folder that does not exist yet)."""
    shutil.copytree(store.root, root)
    return IncidentStore(root)


@pytest.fixture
def writable_store(sample_store, tmp_path) -> IncidentStore:
    """A private copy of the sample store that a test may change."""
    return copy_store(sample_store, tmp_path / "store")


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


def _reachable(url: str) -> bool:
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except Exception:  # any failure means "not available"
        return False
    return True


def worker_database_url(base: str, worker: str) -> str:
    """The database of xdist worker `worker` (``gw0``, ...): `base`'s name with ``_gw0`` appended.

    Each worker gets a database of its own because :func:`pg_url` drops every table of it; a
    run without xdist (``worker == "master"``) uses `base` itself.
    """
    if worker == "master":
        return base
    url = sa.engine.make_url(base)
    return url.set(database=f"{url.database}_{worker}").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _pg_database(worker_id: str) -> str | None:
    """This worker's PostgreSQL database, dropped and created anew once per session.

    None when ``DATABASE_TEST_URL`` names no reachable PostgreSQL server. Under xdist the
    configured database is only used to connect; its role needs CREATEDB (``.ci/run``).
    """
    if not PG_URL.startswith("postgresql") or not _reachable(PG_URL):
        return None
    url = worker_database_url(PG_URL, worker_id)
    if url == PG_URL:
        return url
    name = sa.engine.make_url(url).database
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url


@pytest.fixture
def pg_url(_pg_database: str | None) -> str:
    """An empty PostgreSQL database (``DATABASE_TEST_URL``, one per xdist worker): skipped
    locally when no server answers, fails under CI."""
    require("PostgreSQL (DATABASE_TEST_URL)", _pg_database is not None)
    assert _pg_database is not None
    engine = sa.create_engine(_pg_database)
    reflected = sa.MetaData()
    reflected.reflect(engine)
    reflected.drop_all(engine)
    engine.dispose()
    return _pg_database
