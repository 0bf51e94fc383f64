"""First start of the analyst app on the bundled data: ``python -m bench.first_start``.

Starts ``streamlit run dashboard/app.py`` on an empty data directory (as a fresh install does),
opens it in headless Chromium and times, from the launch of the command:

* ``server_s``: the server answers its health check;
* ``sign_in_s``: the sign-in form is on the screen (the first page served);
* ``overview_s``: after signing in (a test account made beforehand, so no password change), the
  Overview has finished running and its map is drawn. The store is built from the bundled files
  on this first page; ``build_s`` is the time from submitting the form to the finished page.

Needs Chromium (``CHROMIUM_PATH`` or ``/usr/bin/chromium``) and Playwright. Numbers go in
docs/benchmarks.md ("First start"); the machine's load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["first_start", "free_port", "streamlit_command"]

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench password 2026"


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def streamlit_command(script: Path, port: int) -> list[str]:
    """Return the argv of a headless ``streamlit run SCRIPT`` on 127.0.0.1:`port`."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]


def _wait_for_app(page: object, timeout_ms: int) -> None:
    page.wait_for_selector(  # type: ignore[attr-defined]
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms
    )
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => !document.querySelector(\"[data-testid='stStatusWidget']\")", timeout=timeout_ms
    )


def first_start(*, timeout_s: float = 600.0) -> dict[str, float]:
    """Return the times (s) of one first start on a fresh, empty data directory."""
    from playwright.sync_api import sync_playwright

    from geodata import users

    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory(prefix="beatwise_first_start_") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        db_url = f"sqlite:///{data / 'meetings.db'}"
        engine = users.open_database(db_url)
        try:
            users.add_user(
                engine,
                "bench",
                roles="analyst",
                actor="bench",
                password=PASSWORD,
                must_change_password=False,
            )
        finally:
            engine.dispose()
        port = free_port()
        env = {
            **os.environ,
            "BEATS_DATA_DIR": str(data),
            "DATABASE_URL": db_url,
            "PYTHONPATH": str(REPO),
        }
        cmd = streamlit_command(REPO / "dashboard" / "app.py", port)
        url = f"http://127.0.0.1:{port}"
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115 - closed below
        start = time.monotonic()
        server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=log)
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    if time.monotonic() - start > timeout_s:
                        raise
                    time.sleep(0.1)
            server_s = time.monotonic() - start
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium, headless=True, args=["--no-sandbox"]
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                page.get_by_role("heading", name="Sign in").first.wait_for(timeout=timeout_s * 1000)
                sign_in_s = time.monotonic() - start
                page.get_by_label("Username").fill("bench")
                page.get_by_label("Password", exact=True).fill(PASSWORD)
                submitted = time.monotonic()
                page.get_by_role("button", name="Sign in").click()
                page.frame_locator("iframe").first.locator(".leaflet-container").wait_for(
                    timeout=timeout_s * 1000
                )
                _wait_for_app(page, int(timeout_s * 1000))
                done = time.monotonic()
                browser.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    build_s = done - submitted
    return {  # overview_s leaves out the (scripted) filling of the form
        "server_s": round(server_s, 1),
        "sign_in_s": round(sign_in_s, 1),
        "build_s": round(build_s, 1),
        "overview_s": round(sign_in_s + build_s, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the measurement `--repeat` times and print one JSON line per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    for _ in range(args.repeat):
        load = os.getloadavg()
        result = first_start()
        print(json.dumps({**result, "load_average": [round(v, 2) for v in load]}))


if __name__ == "__main__":
    main()
