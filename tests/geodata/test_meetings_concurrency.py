"""Double booking under concurrency: two series saved at the same moment for one venue and time.

Each round starts two threads, each with its own engine (its own database connection), that
release together from a barrier and create overlapping series at the same venue: one weekly,
one monthly whose first meeting is the weekly series' third. Exactly one may be saved; the other
must get :class:`VenueConflictError`. Afterwards the stored series are expanded independently
(plain ``dateutil`` on the stored rows, not the library's expansion) and checked pairwise:
zero overlaps. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from dateutil import rrule as du_rrule

from geodata import db, meetings
from geodata.meetings import VenueConflictError

ROUNDS = 25
FIRST_DAY = datetime(2028, 1, 10, 18, 0)


def _venue(engine) -> int:
    """Create a community venue (with one unrelated series) and return its id."""
    sid = meetings.create_series(
        engine,
        title="Opening meeting",
        venue={"name": "Race hall", "address": "1 Race St", "lat": 41.9, "lon": -87.7},
        start=datetime(2027, 6, 1, 10, 0),
        rrule="FREQ=MONTHLY;COUNT=1",
        beats=["1713"],
    )
    return int(meetings.list_series(engine).set_index("id").loc[sid, "venue_id"])


def _at_once(call: Callable[[int], object]) -> list[object]:
    """Run ``call(0)`` and ``call(1)`` in two threads released together; return both results.

    A call that raises gives its exception as its result (asserted on by the caller).
    """
    barrier = threading.Barrier(2)
    results: list[object] = [None, None]

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except Exception as err:  # kept and asserted on by the caller
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _race(url: str, venue_id: int, rounds: int) -> list[list[object]]:
    """Run `rounds` rounds of two simultaneous, overlapping ``create_series``; return outcomes."""
    engines = [db.make_engine(url) for _ in range(2)]
    outcomes: list[list[object]] = []
    try:
        for r in range(rounds):
            day = FIRST_DAY + timedelta(days=70 * r)
            plans = [
                {"start": day, "rrule": "FREQ=WEEKLY;COUNT=4"},
                # its first meeting is the weekly series' third: same venue, same time
                {"start": day + timedelta(days=14), "rrule": "FREQ=MONTHLY;COUNT=2"},
            ]
            outcomes.append(
                _at_once(
                    lambda i, r=r, plans=plans: meetings.create_series(
                        engines[i],
                        title=f"Round {r} {'AB'[i]}",
                        venue=venue_id,
                        beats=["1713"],
                        **plans[i],
                    )
                )
            )
    finally:
        for engine in engines:
            engine.dispose()
    return outcomes


def _overlaps_at(engine, venue_id: int) -> tuple[int, list[tuple]]:
    """Return (series at the venue, overlapping pairs of meetings of different series)."""
    table = meetings.series_table
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                table.c.id, table.c.dtstart, table.c.rrule, table.c.duration_min, table.c.tzid
            ).where(table.c.venue_id == venue_id)
        ).all()
    spans = []
    for sid, dtstart, rule, minutes, tzid in rows:
        start = dtstart.replace(tzinfo=ZoneInfo(tzid))
        for hit in du_rrule.rrulestr(f"RRULE:{rule}", dtstart=start):
            spans.append((hit, hit + timedelta(minutes=minutes), sid))
    spans.sort()
    pairs = [
        (a, b) for i, a in enumerate(spans) for b in spans[i + 1 :] if b[0] < a[1] and a[2] != b[2]
    ]
    return len(rows), pairs


def _check(engine, url: str) -> None:
    venue_id = _venue(engine)
    outcomes = _race(url, venue_id, ROUNDS)
    for r, results in enumerate(outcomes):
        saved = [v for v in results if isinstance(v, int)]
        refused = [v for v in results if isinstance(v, VenueConflictError)]
        assert (len(saved), len(refused)) == (1, 1), (r, results)
        assert "overlaps" in refused[0].errors["venue"]
    n_series, pairs = _overlaps_at(engine, venue_id)
    assert n_series == ROUNDS + 1  # the opening series and one per round
    assert pairs == []  # zero double bookings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def race_db(request, samples_dir):
    """(engine, URL) of a meetings database on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("meetings_engine"), request.getfixturevalue("meetings_url")
        return
    url = request.getfixturevalue("pg_url")
    engine = meetings.open_database(url, samples_dir=samples_dir, seed=False)
    yield engine, url
    engine.dispose()


def test_no_double_booking_under_concurrency(race_db):
    _check(*race_db)


MOVE_ROUNDS = 10


def _move_race(url: str, venue_id: int, rounds: int) -> tuple[list[list[object]], list[int]]:
    """Each round: two series at the venue, both move one meeting into the same free slot."""
    engines = [db.make_engine(url) for _ in range(2)]
    setup = engines[0]
    outcomes: list[list[object]] = []
    created: list[int] = []
    try:
        for r in range(rounds):
            day = datetime(2030, 1, 7, 9, 0) + timedelta(days=40 * r)
            sids = [
                meetings.create_series(
                    setup,
                    title=f"Move round {r} {'AB'[i]}",
                    venue=venue_id,
                    beats=["1713"],
                    start=day + timedelta(hours=2 * i),
                    rrule="FREQ=DAILY;COUNT=1",
                )
                for i in range(2)
            ]
            created += sids
            target = day + timedelta(days=3, hours=10)  # the same free hour for both
            outcomes.append(
                _at_once(
                    lambda i, sids=sids, day=day, target=target: meetings.move_occurrence(
                        engines[i], sids[i], day + timedelta(hours=2 * i), target
                    )
                )
            )
    finally:
        for engine in engines:
            engine.dispose()
    return outcomes, created


def _check_moves(engine, url: str) -> None:
    venue_id = _venue(engine)
    outcomes, created = _move_race(url, venue_id, MOVE_ROUNDS)
    for r, results in enumerate(outcomes):
        moved = [v for v in results if isinstance(v, int)]
        refused = [v for v in results if isinstance(v, VenueConflictError)]
        assert (len(moved), len(refused)) == (1, 1), (r, results)
    # independently: the stored moved meetings at the venue never share a time
    table = meetings.exceptions_table
    with engine.connect() as connection:
        starts = connection.execute(
            sa.select(table.c.new_start).where(
                table.c.series_id.in_(created), table.c.status == "moved"
            )
        ).scalars()
        starts = list(starts)
    assert len(starts) == MOVE_ROUNDS
    assert len(set(starts)) == MOVE_ROUNDS


def test_no_double_booking_by_concurrent_moves(race_db):
    _check_moves(*race_db)
