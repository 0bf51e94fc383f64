"""Benchmark: the cost of sign-in and of the session check every click of the analyst app pays.

Times, on SQLite (a temporary file) and optionally PostgreSQL (``--pg URL``, an empty database
whose tables are replaced): one Argon2id hash, a password sign-in (:func:`users.authenticate`,
one verify and the audit row of a failure or the reset of the count), starting a session, and
:func:`users.resume_session` (the check the router makes before every page run). Usage::

    .venv/bin/python -m bench.auth [--repeat 50] [--pg postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher

from geodata import users

PASSWORD = "benchmark password 1"


def _times(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _line(label: str, times: list[float]) -> str:
    return (
        f"| {label} | {statistics.median(times) * 1000:.1f} ms | {min(times) * 1000:.1f} ms | "
        f"{max(times) * 1000:.1f} ms | {len(times)} |"
    )


def run(url: str, repeat: int) -> list[str]:
    """Return table rows of median/best/worst times on the database at `url`."""
    engine = users.open_database(url)
    users.add_user(engine, "bench", roles="analyst", actor="bench", password=PASSWORD)
    user = users.authenticate(engine, "bench", PASSWORD)
    token = users.start_session(engine, user)
    rows = [
        _line(
            "sign-in, right password",
            _times(lambda: users.authenticate(engine, "bench", PASSWORD), repeat // 5 or 1),
        ),
        _line(
            "start a session (+ audit row)",
            _times(lambda: users.start_session(engine, user), repeat),
        ),
        _line(
            "session check per click (`resume_session`)",
            _times(lambda: users.resume_session(engine, token, idle_timeout_s=1800), repeat),
        ),
    ]
    engine.dispose()
    return rows


def main() -> None:
    """Print the benchmark table (Markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--pg", help="PostgreSQL URL of an empty database (tables are dropped)")
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {os.cpu_count()} cores; load {os.getloadavg()}")
    hasher = PasswordHasher()
    print("| step | median | best | worst | runs |\n|---|---|---|---|---|")
    print(_line("Argon2id hash (64 MiB, t=3, p=4)", _times(lambda: hasher.hash(PASSWORD), 10)))
    with tempfile.TemporaryDirectory() as tmp:
        for row in run(f"sqlite:///{Path(tmp) / 'auth.db'}", args.repeat):
            print(row.replace("| ", "| SQLite: ", 1))
    if args.pg:
        engine = sa.create_engine(args.pg)
        reflected = sa.MetaData()
        reflected.reflect(engine)
        reflected.drop_all(engine)
        engine.dispose()
        for row in run(args.pg, args.repeat):
            print(row.replace("| ", "| PostgreSQL: ", 1))
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
