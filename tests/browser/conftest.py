"""Browser fixtures: a real `streamlit run` server and headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.first_start import free_port, streamlit_command
from tests.auth_helpers import PASSWORD, ensure_user
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _chromium() -> str | None:
    path = (
        os.environ.get("CHROMIUM_PATH")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    return path if path and Path(path).exists() else None


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def worker_port(worker_id: str) -> int:
    """Return a free port that no other xdist worker of this run can be given.

    Each worker takes only ports whose number modulo the worker count is its own index, so two
    workers starting servers at the same moment never race for one port (and a test never talks
    to another worker's server). Without xdist (``master``) any free port.
    """
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker_id == "master" or count <= 1:
        return free_port()
    index = int(worker_id.removeprefix("gw"))
    # try this worker's own ports in turn, from a random start: asking the kernel for any free
    # port until one has the right residue never ends on Linux, whose bind() to port 0 hands
    # out ports of one parity while there are some (20 of 20 odd here: gw0 of two looped)
    start = random.randrange(20_000, 40_000, count) + index
    for port in range(start, 60_000, count):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    msg = f"no free port for {worker_id} from {start} to 60000"
    raise RuntimeError(msg)


@pytest.fixture(scope="session")
def start_streamlit(tmp_path_factory, worker_id) -> Iterator[Callable[..., str]]:
    """Return a function that starts ``streamlit run SCRIPT`` with extra env and gives its URL."""
    processes: list[subprocess.Popen] = []
    logs = []

    def start(script: str, env: dict[str, str]) -> str:
        port = worker_port(worker_id)
        log = tmp_path_factory.mktemp("streamlit") / "server.log"
        # no background tiles: the tests need no network, and the maps (and the screenshots)
        # show what an offline deployment shows (outlines, labels, named districts, stations)
        full_env = {"BEATS_TILE_URL": "none", **os.environ, **env, "PYTHONPATH": str(REPO)}
        cmd = streamlit_command(REPO / script, port)
        handle = open(log, "w")  # noqa: SIM115 - kept open for the server's lifetime
        process = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=handle, stderr=handle)
        processes.append(process)
        logs.append(handle)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return url
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"streamlit did not start: {log.read_text()[-2000:]}")
        return url

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    for handle in logs:
        handle.close()


@pytest.fixture(scope="session")
def browser():
    path = _chromium()
    require("Chromium (apt-get install chromium)", path is not None)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def dashboard_db(sample_store) -> str:
    """URL of the database of the :func:`dashboard_url` server (its accounts and audit log)."""
    return f"sqlite:///{sample_store.root.parent / 'meetings.db'}"


@pytest.fixture(scope="session")
def dashboard_url(start_streamlit, sample_store, dashboard_db) -> str:
    """URL of the analyst dashboard running on the session's sample store."""
    env = {"BEATS_DATA_DIR": str(sample_store.root.parent), "DATABASE_URL": dashboard_db}
    return start_streamlit("dashboard/app.py", env)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


def wait_for_app(page, timeout_ms: int = 90_000) -> None:
    """Wait until the Streamlit page has finished running its script."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    # the app marks its script state; "running" also covers reruns before the status widget shows
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms
    )
    page.wait_for_function(
        "() => !document.querySelector(\"[data-testid='stStatusWidget']\")", timeout=timeout_ms
    )


def fill_sign_in(page, username: str, password: str = PASSWORD) -> None:
    """Type `username` and `password` into the sign-in form and submit it."""
    page.get_by_role("heading", name="Sign in").first.wait_for(timeout=90_000)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    wait_for_app(page)


def sign_in(page, url: str, db_url: str, roles: str = "analyst", *, path: str = "") -> str:
    """Open the app at `url`/`path` and sign in as a test user with `roles`; return its name."""
    username = ensure_user(db_url, roles)
    page.goto(f"{url}/{path}" if path else url)
    wait_for_app(page)
    fill_sign_in(page, username)
    page.get_by_role("button", name="Sign out").wait_for(timeout=90_000)
    wait_for_app(page)
    return username
