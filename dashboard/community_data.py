"""Cached loaders of the community app: the published extract and the meetings database only.

The community app never opens the analyst store. Everything it shows comes from the extract
directory written by ``python -m geodata publish`` (:func:`geodata.settings.public_dir`) and
from the meetings database (:func:`geodata.settings.database_url`).

First run: when the public directory holds no extract, :func:`ensure_extract` builds one from
the *bundled sample* of the selected department (``BEATS_DEPARTMENT``, Chicago by default; its
profile names the files under ``geodata/samples/``): it ingests the sample into a temporary store,
publishes it through the same publish step, and deletes the temporary store. The analyst store
(``$BEATS_DATA_DIR/store``) is neither read nor created, then or later.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, SupportsInt, cast

import altair as alt
import folium
import geopandas as gpd
import pandas as pd
import streamlit as st
from shapely.geometry import Point
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from analysis import pdf
from analysis.flyer import place_line
from dashboard import maps
from dashboard.maps import esc, plain
from geodata import geocode, schema, settings
from geodata.errors import StoreError
from geodata.geocode import BlockGazetteer, FoundBeat
from geodata.join import BeatIndex
from geodata.meetings.model import MeetingError
from geodata.publish import EXTRACT_FILES, PublicExtract, read_extract, read_finder
from geodata.stations import station_of

if TYPE_CHECKING:
    from geodata.meetings.seeding import MeetingDefaults

__all__ = [
    "FIND_KEY",
    "BeatView",
    "Coverage",
    "area_caption",
    "beat_at",
    "beat_map",
    "beat_view",
    "coverage",
    "coverage_note",
    "coverage_text",
    "ensure_extract",
    "extract_token",
    "find_beat",
    "handout_html",
    "handout_pdf",
    "level_word",
    "load_extract",
    "meetings_ics",
    "next_meetings",
    "place_text",
    "plain",
    "trend_chart",
]

logger = logging.getLogger(__name__)

FIND_KEY = "community_find"
#: Shown when the app published the bundled sample itself (first run).
SAMPLE_NOTE = (
    "Demonstration data: the bundled sample of {department}, published as if on the day after "
    "its busiest week. Your police department's own figures replace it once published."
)
#: Under a seeded (illustrative) schedule of the bundled demo, and of any other department.
ILLUSTRATIVE_DEMO = "Illustrative schedule for the demo data: not an official one."
ILLUSTRATIVE = (
    "Illustrative schedule: an example of when and where this beat could meet, not a schedule "
    "the police department has published. Please confirm with your station."
)
#: Meetings shown in the "next meetings" panel.
MEETINGS_SHOWN = 3
MEETINGS_HORIZON_DAYS = 400


@st.cache_resource(show_spinner="Publishing the bundled sample for a first run...")
def ensure_extract(root: str) -> str:
    """Return the public directory, publishing the bundled sample there if it holds no extract.

    The sample goes through a temporary store that is deleted afterwards: the analyst store is
    never touched.
    """
    public = Path(root)
    if all((public / name).exists() for name in EXTRACT_FILES.values()):
        return root
    from geodata.department import load_department
    from geodata.ingest import build_sample_store
    from geodata.publish import publish_store
    from geodata.store import IncidentStore

    department = load_department(settings.department_name())
    with tempfile.TemporaryDirectory(prefix="beatwise-sample-") as tmp:
        store = IncidentStore(Path(tmp) / "store")
        build_sample_store(store, department=department)
        note = SAMPLE_NOTE.format(department=department.name)
        publish_store(store, public, as_of="busiest", note=note, demo=True)
    return root


def level_word(metadata: dict, level: str) -> str:
    """Return the department's word for `level` recorded in the extract ("precinct")."""
    return str((metadata.get("levels") or {}).get(level, level))


def extract_token(root: str) -> str:
    """Return a cache key that changes when the extract is published again."""
    path = Path(root) / EXTRACT_FILES["metadata"]
    return str(path.stat().st_mtime_ns) if path.exists() else "none"


@st.cache_data(show_spinner="Loading the published data...")
def load_extract(root: str, token: str) -> tuple[PublicExtract, gpd.GeoDataFrame, pd.DataFrame]:
    """Return the published extract, the beat outlines (WGS84) and the stations."""
    del token
    return read_extract(root)


#: Cell of the community app's beat index: coarser than the analyst app's 5 m so it builds in
#: a fraction of a second; the answer is the same (points near a boundary get the exact test).
FINDER_CELL_M = 25.0


@st.cache_resource(show_spinner=False)
def _finder(root: str, token: str) -> tuple[BlockGazetteer, BeatIndex] | None:
    del token
    published = read_finder(root)
    if published is None:
        return None
    gazetteer, beats = published
    return gazetteer, BeatIndex(beats, cell_size_m=FINDER_CELL_M)


def beat_at(root: str, token: str, lon: float, lat: float) -> str | None:
    """Return the beat holding the WGS84 point (:meth:`BeatIndex.beat_at`), or None."""
    finder = _finder(root, token)
    if finder is None:
        return None
    return finder[1].beat_at(lon, lat)


def find_beat(root: str, token: str, text: str) -> FoundBeat:
    """Return the beat of a typed block address or "lat, lon" (:func:`geocode.find_beat`).

    The published block gazetteer and exact beat outlines answer, as in the analyst app and
    ``geodata meetings find``; the published (grid-snapped) incident points are never used.

    Raises
    ------
    StoreError
        The extract was published without the "find my beat" files (publish it again).
    """
    finder = _finder(root, token)
    if finder is None:
        msg = (
            "Finding a beat by address is not available for this published data yet; "
            "pick your beat from the list or click the map."
        )
        raise StoreError(msg)
    gazetteer, index = finder
    return geocode.find_beat(text, gazetteer=gazetteer, index=index)


@dataclass(frozen=True)
class Coverage:
    """The days of the published window the data cover, and what that means for its periods.

    Parameters
    ----------
    first, last
        First and last day of the window the source holds data for (both None: no day).
    window_start, window_end
        The published window ``[window_start, window_end)``.
    recent_days
        Length of the recent period (the last `recent_days` days of the window) and of the
        period before it.
    """

    first: date | None
    last: date | None
    window_start: date
    window_end: date
    recent_days: int

    @property
    def recent_start(self) -> date:
        """First day of the recent period."""
        return self.window_end - timedelta(days=self.recent_days)

    @property
    def previous_start(self) -> date:
        """First day of the period before the recent one."""
        return self.window_end - timedelta(days=2 * self.recent_days)

    def covers(self, start: date, end: date) -> str:
        """Return ``"all"``, ``"part"`` or ``"none"``: how much of ``[start, end)`` is covered."""
        if self.first is None or self.last is None:
            return "none"
        if self.last < start or self.first >= end:
            return "none"
        if self.first <= start and self.last >= end - timedelta(days=1):
            return "all"
        return "part"

    @property
    def ends_early(self) -> bool:
        """True when the data end before the window does (the last days are not counted)."""
        return self.last is not None and self.last < self.window_end - timedelta(days=1)


def coverage(metadata: dict) -> Coverage:
    """Return the window's data coverage recorded in an extract's metadata.

    ``data_covered_from`` and ``data_covered_to`` (both None: no data in the window). An extract
    published before ``data_covered_to`` existed counts as covered to the window's end, and its
    ``data_covered_from`` on or after the window's end as no coverage.
    """
    start = date.fromisoformat(metadata["window_start"])
    end = date.fromisoformat(metadata["window_end_exclusive"])
    first = metadata.get("data_covered_from")
    first_day = date.fromisoformat(first) if first else None
    if "data_covered_to" in metadata:
        last = metadata["data_covered_to"]
        last_day = date.fromisoformat(last) if last else None
    else:
        last_day = end - timedelta(days=1) if first_day is not None else None
    if first_day is None or last_day is None or first_day >= end:
        first_day = last_day = None
    return Coverage(first_day, last_day, start, end, int(metadata.get("recent_days", 28)))


def place_text(view: BeatView, *, capitalize: bool = True) -> str:
    """Return "sector K, precinct W" in the department's words.

    A beat that belongs to no top-level area (Seattle's 99, H1-H3) gives "sector 99, no
    precinct", never "precinct None".
    """
    levels = view.metadata.get("levels")
    return place_line(view.sector, view.district or None, levels, capitalize=capitalize)


def area_caption(view: BeatView) -> str:
    """Return which beats the map shows: "Beats of precinct W" or "Beats without a precinct"."""
    word = level_word(view.metadata, schema.DISTRICT)
    return f"Beats of {word} {view.district}" if view.district else f"Beats without a {word}"


@dataclass(frozen=True)
class BeatView:
    """What the community app shows for one beat.

    ``total_recent`` and ``total_previous`` are None when the data do not cover their period
    (``recent`` and ``previous`` in `counts` are NA then); the recent total of a period the
    data cover only in part counts up to ``coverage.last``, and its change is NA.
    """

    beat: str
    sector: str
    district: str
    counts: pd.DataFrame  # category, recent, previous, change, window
    total_recent: int | None
    total_previous: int | None
    station: dict
    metadata: dict
    coverage: Coverage


@st.cache_data(show_spinner=False, max_entries=64)
def beat_view(root: str, token: str, beat: str) -> BeatView:
    """Return the counts, trend, station and metadata of a beat from the extract."""
    extract, beats, stations = load_extract(root, token)
    row = beats[beats[schema.BEAT] == beat]
    if row.empty:
        msg = f"beat {beat!r} is not in the published extract"
        raise StoreError(msg)
    sector = str(row[schema.SECTOR].iloc[0])
    district = schema.id_text(row[schema.DISTRICT].iloc[0])
    summary = extract.beat_summary
    mine = summary[summary[schema.BEAT] == beat]
    counts = pd.DataFrame({schema.CATEGORY: list(extract.metadata.get("categories", []))})
    counts = counts.merge(mine.drop(columns=schema.BEAT), on=schema.CATEGORY, how="left")
    covered = coverage(extract.metadata)
    window_known = covered.covers(covered.window_start, covered.window_end) != "none"
    recent = covered.covers(covered.recent_start, covered.window_end)
    previous_known = covered.covers(covered.previous_start, covered.recent_start) == "all"

    def known_counts(column: str, known: bool) -> pd.Series:
        if not known:  # a period the data do not cover has no count: NA, never 0
            return pd.Series(pd.array([pd.NA] * len(counts), dtype="Int64"), index=counts.index)
        values = pd.to_numeric(counts[column], errors="coerce").fillna(0).astype(int)
        return values.astype("Int64")

    counts["window"] = known_counts("window", window_known)
    counts["recent"] = known_counts("recent", recent != "none")
    counts["previous"] = known_counts("previous", previous_known)
    comparable = previous_known and recent == "all"  # a part is not compared with a whole
    counts["change"] = (
        counts["recent"] - counts["previous"] if comparable else known_counts("change", False)
    )
    station = {}
    if (row := station_of(stations, district)) is not None:
        station = {k: (None if pd.isna(v) else v) for k, v in row.items()}
    return BeatView(
        beat=beat,
        sector=sector,
        district=district,
        counts=counts[[schema.CATEGORY, "recent", "previous", "change", "window"]],
        total_recent=int(counts["recent"].sum()) if recent != "none" else None,
        total_previous=int(counts["previous"].sum()) if previous_known else None,
        station=station,
        metadata=extract.metadata,
        coverage=covered,
    )


def counts_display(view: BeatView) -> pd.DataFrame:
    """Return the counts table as shown: category, last 28 days, the 28 before, trend."""
    recent_days = int(view.metadata.get("recent_days", 28))
    covered = view.coverage
    partly = covered.covers(covered.recent_start, covered.window_end) == "part"

    def count(value: object) -> object:
        return "no data" if value is None or pd.isna(value) else int(cast(SupportsInt, value))

    def arrow(recent: object, previous: object, change: object) -> str:
        if recent is None or pd.isna(recent):
            return "no data"
        if previous is None or pd.isna(previous):
            return "no earlier data"
        if change is None or pd.isna(change):
            return f"data end {covered.last}" if partly else "no earlier data"
        delta = int(cast(SupportsInt, change))  # a difference of two counts: NA ruled out above
        return "▲ up" if delta > 0 else ("▼ down" if delta < 0 else "= same")

    frame = view.counts
    return pd.DataFrame(
        {
            "Category": frame[schema.CATEGORY].str.capitalize(),
            f"Last {recent_days} days": [count(v) for v in frame["recent"]],
            f"{recent_days} days before": [count(v) for v in frame["previous"]],
            "Trend": [
                arrow(r, p, c)
                for r, p, c in zip(frame["recent"], frame["previous"], frame["change"], strict=True)
            ],
            f"Whole {view.metadata.get('window_days')}-day window": [
                count(v) for v in frame["window"]
            ],
        }
    )


def coverage_text(covered: Coverage) -> str:
    """Return the days of the window the data cover, in words ("2018-01-01 to 2018-01-15")."""
    if covered.first is None:
        return "no data in this window"
    return f"{covered.first} to {covered.last}"


def coverage_note(view: BeatView) -> str | None:
    """Return a sentence on the days the published data do not cover, or None when they all are.

    Shown wherever the counts are (page and handouts), so a period past the end of the data is
    never read as a period without incidents.
    """
    covered = view.coverage
    recent_days = int(view.metadata.get("recent_days", 28))
    last_day = covered.window_end - timedelta(days=1)
    if covered.last is None:
        return (
            f"The published data hold no records for {covered.window_start} to {last_day}: "
            "there are no counts for this period (no data, not zero incidents)."
        )
    if not covered.ends_early:
        return None
    recent = covered.covers(covered.recent_start, covered.window_end)
    if recent == "none":
        return (
            f"The data end on {covered.last}: there are no counts for the last {recent_days} "
            f"days ({covered.recent_start} to {last_day}); the whole-window figures are counted "
            f"up to {covered.last}."
        )
    return (
        f"The data end on {covered.last}: the last {recent_days} days ({covered.recent_start} to "
        f"{last_day}) are counted only up to that day, so they are not compared with the "
        f"{recent_days} days before."
    )


def trend_chart(root: str, token: str, beat: str) -> alt.Chart:
    """Return the weekly incidents of a beat by category since data coverage began."""
    extract = load_extract(root, token)[0]
    weekly = extract.beat_weekly
    weekly = weekly[weekly[schema.BEAT] == beat]
    covered = coverage(extract.metadata)
    start, end = covered.window_start, covered.window_end
    if covered.first is not None and covered.last is not None:  # only the weeks with data
        start, end = covered.first, covered.last + timedelta(days=1)
    first_week = start - timedelta(days=start.weekday())
    weeks = pd.date_range(first_week, end - timedelta(days=1), freq="7D")
    if covered.first is None:  # no data in the window: no weeks to show, not weeks of zeros
        weeks = weeks[:0]
    grid = pd.MultiIndex.from_product(
        [weeks, extract.metadata.get("categories", [])], names=["week", schema.CATEGORY]
    ).to_frame(index=False)
    counts = weekly.assign(week=pd.to_datetime(weekly["week"]))[
        ["week", schema.CATEGORY, "incidents"]
    ]
    frame = grid.merge(counts, on=["week", schema.CATEGORY], how="left")
    frame["incidents"] = pd.to_numeric(frame["incidents"], errors="coerce").fillna(0).astype(int)
    frame["week_label"] = frame["week"].dt.strftime("%d %b %Y")
    order = [f"{w:%d %b %Y}" for w in weeks]
    return (
        alt.Chart(frame, title=f"Beat {beat}: incidents per week")
        .mark_bar()
        .encode(
            x=alt.X(
                "week_label:O",
                title="Week starting (Monday)",
                sort=order,
                axis=alt.Axis(labelAngle=-40),
            ),
            y=alt.Y("sum(incidents):Q", title="Incidents"),
            color=alt.Color(
                f"{schema.CATEGORY}:N",
                title="Category",
                scale=alt.Scale(range=list(maps.CATEGORICAL)),
            ),
            tooltip=[
                alt.Tooltip("week_label:O", title="Week starting"),
                alt.Tooltip(f"{schema.CATEGORY}:N", title="Category"),
                alt.Tooltip("incidents:Q", title="Incidents"),
            ],
        )
        .properties(height=320)
        .configure_axis(labelFontSize=16, titleFontSize=18)
        .configure_legend(labelFontSize=16, titleFontSize=16)
        .configure_title(fontSize=20)
    )


def _district_beats(root: str, token: str, district: str) -> gpd.GeoDataFrame:
    extract, beats, _ = load_extract(root, token)
    if district:
        mine = beats[beats[schema.DISTRICT] == district].copy()
    else:  # the beats outside every top-level area, together
        mine = beats[beats[schema.DISTRICT].map(schema.id_text) == ""].copy()
    totals = extract.beat_summary.groupby(schema.BEAT)["recent"].sum()
    mine["recent"] = mine[schema.BEAT].map(totals).fillna(0).astype(int)
    return mine


def beat_map(
    root: str, token: str, beat: str, *, pin: tuple[float, float, str] | None = None
) -> folium.Map:
    """Return the aggregated map: the district's beats coloured by recent incidents.

    Only beat polygons with counts and the station are drawn; no incident or block point ever
    reaches the map. `pin` (``lat, lon, label``) marks the address the user typed.
    """
    view = beat_view(root, token, beat)
    areas = _district_beats(root, token, view.district)
    fmap = maps.base_map(areas, zoom=13)  # fitted to the district: the beat and its context
    recent_days = int(view.metadata.get("recent_days", 28))
    maps.choropleth(
        fmap,
        areas,
        "recent",
        name=f"Incidents, last {recent_days} days",
        fields=[(schema.SECTOR, "Sector")],
        highlight=[beat],
    )
    if view.station.get(schema.LON) is not None:
        stations = gpd.GeoDataFrame(
            [view.station],
            geometry=[Point(view.station[schema.LON], view.station[schema.LAT])],
            crs=schema.WGS84,
        )
        maps.add_stations(fmap, stations)
    if pin is not None:
        maps.add_pin(fmap, pin[0], pin[1], pin[2])
    return fmap


def _meeting_defaults(metadata: dict) -> MeetingDefaults:
    """Return how the extract's department seeds its meetings (its ``meetings`` metadata).

    An extract published before the metadata named them takes the defaults of the department
    profile named by ``BEATS_DEPARTMENT`` in the extract's time zone (the analyst store is
    never read).
    """
    from geodata.department import load_department
    from geodata.meetings.seeding import MeetingDefaults, defaults_for

    recorded = metadata.get("meetings")
    if isinstance(recorded, dict):
        return MeetingDefaults.from_record(recorded)
    selected = defaults_for(load_department(settings.department_name()))
    return replace(selected, timezone=metadata.get("timezone") or selected.timezone)


def _reference_layers(root: str, token: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return the extract's beats (in the analysis CRS) and stations as the meetings need them.

    The exact beats of "find my beat" when published, else the published outlines projected
    to the extract's analysis CRS; stations without a position are left out.
    """
    extract, outlines, stations = load_extract(root, token)
    finder = read_finder(root)
    crs = (extract.metadata.get("masking") or {}).get("crs")
    beats = finder[1] if finder is not None else outlines.to_crs(crs or outlines.estimate_utm_crs())
    frame = pd.DataFrame(stations).copy()
    if schema.LON not in frame or schema.LAT not in frame:
        frame = frame.iloc[0:0].assign(**{schema.LON: [], schema.LAT: []})
    frame = frame.dropna(subset=[schema.LON, schema.LAT])
    if schema.STATION_ID not in frame:  # published before stations carried their id
        frame[schema.STATION_ID] = frame.get(schema.DISTRICT, pd.Series(dtype=object))
    frame[schema.STATION_ID] = frame[schema.STATION_ID].where(
        frame[schema.STATION_ID].notna(), "HQ"
    )
    located = gpd.GeoDataFrame(
        frame,
        geometry=gpd.points_from_xy(frame[schema.LON], frame[schema.LAT]),
        crs=schema.WGS84,
    )
    return beats, located


@st.cache_resource(show_spinner=False, max_entries=4)
def _meetings_engine(url: str, root: str, token: str) -> Engine:
    """Return the meetings database, seeded for the extract's department if it has none.

    The extract's beats and stations are the reference data and its metadata the seed
    defaults (:func:`geodata.meetings.open_database`): a new database gets this department's
    illustrative schedule, never the bundled sample's, and a database holding meetings for
    the department's beats is left as it is.
    """
    from geodata import meetings

    extract = load_extract(root, token)[0]
    beats, stations = _reference_layers(root, token)
    return meetings.open_database(
        url, beats=beats, stations=stations, defaults=_meeting_defaults(extract.metadata)
    )


def _engine(root: str | None) -> Engine:
    root = root or str(settings.public_dir())
    return _meetings_engine(settings.database_url(), root, extract_token(root))


def next_meetings(
    beat: str, limit: int = MEETINGS_SHOWN, *, root: str | None = None
) -> pd.DataFrame | None:
    """Return the next meetings of a beat from the meetings database (None: not available).

    A database that cannot be reached (or seeded) is logged and reported as "not available":
    the public page stays up without its schedule. A beat the database does not know has no
    meetings (an empty frame).

    Parameters
    ----------
    beat
        The beat id as published.
    limit
        At most this many meetings.
    root
        The public directory whose beats seed a new database (default
        :func:`geodata.settings.public_dir`).
    """
    from geodata import meetings

    try:
        engine = _engine(root)
    except (SQLAlchemyError, OSError, StoreError, MeetingError) as err:
        logger.warning("meetings database not available: %s", err)
        return None
    # bi-monthly beat meetings: look 400 days ahead to find the next `limit` of them
    horizon = date.today() + timedelta(days=MEETINGS_HORIZON_DAYS)
    try:
        return meetings.upcoming_meetings(engine, beat=beat, end=horizon, limit=limit)
    except MeetingError as err:  # e.g. a beat the schedule does not know: no meetings
        logger.info("no meetings for beat %s: %s", beat, err)
        return pd.DataFrame(columns=list(meetings.MEETING_COLUMNS))
    except (SQLAlchemyError, OSError) as err:
        logger.warning("meetings database not available: %s", err)
        return None


def meetings_ics(beat: str, *, root: str | None = None) -> bytes | None:
    """Return the beat's meetings as an iCalendar file (None: not available or no meetings)."""
    from geodata import meetings

    try:
        return meetings.calendar_ics(_engine(root), beat=beat)
    except MeetingError as err:
        logger.info("no calendar for beat %s: %s", beat, err)
        return None
    except (SQLAlchemyError, OSError, StoreError) as err:
        logger.warning("meetings database not available: %s", err)
        return None


def meetings_display(upcoming: pd.DataFrame) -> pd.DataFrame:
    """Return the meetings table as shown: when (with any change of status), what, where.

    Text is shown as text (``st.table`` and the handout escape it).
    """
    if upcoming is None or upcoming.empty:
        return pd.DataFrame(columns=["When", "Meeting", "Where"])
    status = upcoming["status"].fillna("scheduled").astype(str)
    when = [_when(s, e) for s, e in zip(upcoming["start"], upcoming["end"], strict=True)]
    when = [
        w if st_ == "scheduled" else f"{w} ({st_})" for w, st_ in zip(when, status, strict=True)
    ]
    venue = upcoming["venue_name"].fillna("").astype(str)
    address = upcoming["address"].fillna("").astype(str)
    return pd.DataFrame(
        {
            "When": when,
            "Meeting": upcoming["title"].astype(str),
            "Where": [f"{v}, {a}" if a else v for v, a in zip(venue, address, strict=True)],
        }
    )


def _when(start: pd.Timestamp, end: pd.Timestamp | None) -> str:
    text = f"{start:%a %d %b %Y, %H:%M}"
    if end is not None and not pd.isna(end):
        text += f"–{end:%H:%M}"
    return text


def _svg_map(areas: gpd.GeoDataFrame, beat: str, width: int = 640, height: int = 420) -> str:
    """Return an inline SVG of the district's beats shaded by recent incidents."""
    xmin, ymin, xmax, ymax = areas.total_bounds
    kx = math.cos(math.radians((ymin + ymax) / 2))
    scale = min(
        (width - 20) / max((xmax - xmin) * kx, 1e-9), (height - 20) / max(ymax - ymin, 1e-9)
    )
    vmax = max(int(areas["recent"].max() or 0), 1)
    paths = []
    for _, row in areas.iterrows():
        geom = row.geometry
        polys = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
        d = []
        for poly in polys:
            pts = [
                f"{10 + (x - xmin) * kx * scale:.1f},{10 + (ymax - y) * scale:.1f}"
                for x, y in poly.exterior.coords
            ]
            d.append("M" + " L".join(pts) + " Z")
        shade = 245 - int(170 * int(row["recent"]) / vmax)
        chosen = str(row[schema.BEAT]) == beat
        paths.append(
            f'<path d="{" ".join(d)}" fill="rgb(253,{shade},{max(shade - 60, 0)})" '
            f'stroke="#222" stroke-width="{3 if chosen else 0.8}"><title>Beat '
            f"{esc(row[schema.BEAT])}: {int(row['recent'])}</title></path>"
        )
        centre = poly.representative_point() if len(polys) == 1 else geom.representative_point()
        paths.append(
            f'<text x="{10 + (centre.x - xmin) * kx * scale:.1f}" '
            f'y="{10 + (ymax - centre.y) * scale:.1f}" font-size="{14 if chosen else 10}" '
            f'text-anchor="middle">{esc(row[schema.BEAT])}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="Beats around this beat">{"".join(paths)}</svg>'
    )


def handout_pdf(
    root: str, token: str, beat: str, upcoming: pd.DataFrame | None, *, paper: str = "letter"
) -> bytes:
    """Return the one-page PDF handout of a beat (same content as :func:`handout_html`)."""
    view = beat_view(root, token, beat)
    meta = view.metadata
    areas = _district_beats(root, token, view.district)
    groups = ", ".join(str(g) for g in meta["exclusions"]["groups"])
    period = (
        f"Published data from {meta.get('window_start')} to before "
        f"{meta.get('window_end_exclusive')} (data available: {coverage_text(view.coverage)})."
    )
    if gap := coverage_note(view):
        period = f"{period} {gap}"
    about = (
        f"About these numbers: published {meta.get('delay_days')} days after the fact, over a "
        f"rolling {meta.get('window_days')}-day window; locations generalised to the block; not "
        f"shown: {groups}, and any incident flagged sensitive or domestic. Generated "
        f"{meta.get('generated_at')}."
    )
    if meta.get("note"):
        about = f"{meta['note']} {about}"
    table = counts_display(view)
    return pdf.handout_pdf(
        beat=beat,
        sector=view.sector,
        district=view.district,
        counts=table.astype(object).where(table.notna(), "-"),
        areas=areas,
        recent=dict(zip(areas[schema.BEAT], areas["recent"], strict=True)),
        station=view.station or None,
        meetings=None if upcoming is None else meetings_display(upcoming),
        period_text=period,
        about_text=about,
        recent_days=int(meta.get("recent_days", 28)),
        paper=paper,
        level_words=meta.get("levels"),
    )


def handout_html(root: str, token: str, beat: str, upcoming: pd.DataFrame | None) -> str:
    """Return a printable one-page HTML handout of a beat; every data value is escaped."""
    view = beat_view(root, token, beat)
    meta = view.metadata
    table = counts_display(view)
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
        for row in table.astype(object).where(table.notna(), "–").itertuples(index=False)
    )
    header = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    station = view.station
    station_html = (
        f"<p><b>{esc(station.get(schema.STATION_NAME))} station</b>, "
        f"{esc(station.get(schema.STATION_ADDRESS))}, {esc(station.get('city'))}<br>"
        f"Phone: {esc(station.get(schema.STATION_PHONE)) or 'not listed'}</p>"
        if station
        else f"<p>No station listed for this {esc(level_word(meta, schema.DISTRICT))}.</p>"
    )
    if upcoming is None:
        meetings_html = "<p>The meeting schedule is not available.</p>"
    elif upcoming.empty:
        meetings_html = "<p>No upcoming meetings are scheduled for this beat.</p>"
    else:
        shown = meetings_display(upcoming)
        meetings_html = (
            "<table><tr>"
            + "".join(f"<th>{esc(c)}</th>" for c in shown.columns)
            + "</tr>"
            + "".join(
                "<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
                for row in shown.itertuples(index=False)
            )
            + "</table>"
        )
    svg = _svg_map(_district_beats(root, token, view.district), beat)
    groups = ", ".join(esc(g) for g in meta["exclusions"]["groups"])
    gap = coverage_note(view)
    gap_html = f"\n<p><b>{esc(gap)}</b></p>" if gap else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Beat {esc(beat)} community handout</title>
<style>
@page {{ size: letter; margin: 12mm; }}
body {{ font-family: Arial, Helvetica, sans-serif; font-size: 12pt; color: #111; max-width: 190mm;
  margin: auto; }}
h1 {{ font-size: 22pt; margin: 0 0 4pt; }} h2 {{ font-size: 14pt; margin: 10pt 0 4pt; }}
table {{ border-collapse: collapse; width: 100%; font-size: 11pt; }}
td, th {{ border: 1px solid #999; padding: 2pt 5pt; text-align: left; }}
.note {{ font-size: 9pt; color: #333; }} svg {{ display: block; margin: 4pt auto; }}
</style></head><body>
<h1>Beat {esc(beat)} — community meeting handout</h1>
<p>{esc(place_text(view))}. Published data from
{esc(meta.get("window_start"))} to before {esc(meta.get("window_end_exclusive"))}
(data available: {esc(coverage_text(view.coverage))}).</p>{gap_html}
{svg}
<h2>Incidents by category</h2>
<table><tr>{header}</tr>{rows}</table>
<h2>Your police station</h2>
{station_html}
<h2>Next meetings</h2>
{meetings_html}
<p class="note">About these numbers: published {esc(meta.get("delay_days"))} days after the
fact, over a rolling {esc(meta.get("window_days"))}-day window; locations generalised to the
block; not shown: {groups}, and any incident flagged sensitive or domestic. Generated
{esc(meta.get("generated_at"))}.</p>
</body></html>"""
