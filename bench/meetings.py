"""Benchmark: the meetings database with the seeded Chicago schedule (SQLite and PostgreSQL).

Times, on a fresh database each: creating + migrating + seeding (``open_database``), a year of
occurrences for everything and for one beat (``upcoming_meetings``), the iCal file of all series
and of one beat (``calendar_ics``), one validated edit with venue-conflict check
(``update_series``), the stable feeds (``write_feeds``), and "find my meeting" for a block
address (``find_my_meeting``, index and block list built once beforehand, timed separately).

Usage::

    .venv/bin/python -m bench.meetings [--pg URL] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

from geodata import meetings, settings
from geodata.geocode import BlockGazetteer
from geodata.ingest import build_sample_store
from geodata.join import BeatIndex
from geodata.store import IncidentStore

T = TypeVar("T")


def _time(fn: Callable[[], T], repeat: int) -> tuple[float, float, T]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times[0], statistics.median(times), result


def run(url: str, label: str, repeat: int, work: Path) -> list[tuple[str, str, float, float, str]]:
    rows = []
    t0 = time.perf_counter()
    engine = meetings.open_database(url)
    seed_s = time.perf_counter() - t0
    n_series = len(meetings.list_series(engine))
    rows.append((label, "open_database (migrate + seed)", seed_s, seed_s, f"{n_series} series"))
    year = (date(2027, 1, 1), date(2027, 12, 31))
    first, median, everything = _time(
        lambda: meetings.upcoming_meetings(engine, start=year[0], end=year[1]), repeat
    )
    rows.append((label, "upcoming_meetings, all, 1 year", first, median, f"{len(everything)} rows"))
    first, median, one = _time(
        lambda: meetings.upcoming_meetings(engine, beat="1713", start=year[0], end=year[1]), repeat
    )
    rows.append((label, "upcoming_meetings, one beat, 1 year", first, median, f"{len(one)} rows"))
    first, median, ics = _time(lambda: meetings.calendar_ics(engine), repeat)
    rows.append((label, "calendar_ics, all series", first, median, f"{len(ics):,} bytes"))
    first, median, ics = _time(lambda: meetings.calendar_ics(engine, beat="1713"), repeat)
    rows.append((label, "calendar_ics, one beat", first, median, f"{len(ics):,} bytes"))
    sid = int(one["series_id"].iloc[0])
    state = {"version": 1}

    def edit() -> int:
        state["version"] = meetings.update_series(
            engine, sid, expected_version=state["version"], notes=f"edit {state['version']}"
        )
        return state["version"]

    first, median, _ = _time(edit, repeat)
    rows.append((label, "update_series (validate, conflicts, save)", first, median, "2 years"))
    feeds = work / f"feeds_{label}"
    first, median, paths = _time(lambda: meetings.write_feeds(engine, feeds), 1)
    rows.append((label, "write_feeds (all beats + sectors)", first, median, f"{len(paths)} files"))
    engine.dispose()
    return rows


def _drop_all(url: str) -> None:
    """Drop every table of the (scratch) PostgreSQL database so the run starts empty."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    reflected = sa.MetaData()
    reflected.reflect(engine)
    reflected.drop_all(engine)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default=os.environ.get("DATABASE_TEST_URL"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = run(f"sqlite:///{work / 'meetings.db'}", "SQLite", args.repeat, work)
        if args.pg:
            _drop_all(args.pg)
            rows += run(args.pg, "PostgreSQL", args.repeat, work)
        store = IncidentStore(work / "store")
        build_sample_store(store, settings.bundled_samples("chicago"))
        t0 = time.perf_counter()
        gazetteer = BlockGazetteer.from_store(store)
        index = BeatIndex(store.read_layer("beats"))
        build_s = time.perf_counter() - t0
        rows.append(
            ("-", "block list + beat index (once)", build_s, build_s, f"{len(gazetteer)} blocks")
        )
        engine = meetings.open_database(f"sqlite:///{work / 'meetings.db'}")
        now = datetime(2027, 1, 1)
        first, median, found = _time(
            lambda: meetings.find_my_meeting(
                engine, "1234 W Madison St", gazetteer=gazetteer, beat_index=index, now=now
            ),
            args.repeat,
        )
        rows.append(("SQLite", "find_my_meeting (address)", first, median, f"beat {found.beat}"))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"load: {os.getloadavg()}")
    print("| database | operation | first (s) | median (s) | size |")
    print("|---|---|---:|---:|---|")
    for label, name, first, median, size in rows:
        print(f"| {label} | {name} | {first:.3f} | {median:.3f} | {size} |")


if __name__ == "__main__":
    main()
