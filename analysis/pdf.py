"""Print-ready PDF documents rendered on the server with ReportLab: handout, flyer, packet.

Page budgets are kept by construction: each page's content is one ReportLab ``KeepInFrame``
in ``shrink`` mode, so the community handout and the meeting flyer are always exactly one page
(US Letter or A4) and the sector packet at most two (profile, then the sector review). Maps are
vector drawings of the beat polygons with labels and a legend. Every text that came from the data
or a person goes through :func:`_text` (XML-escaped for ReportLab's paragraph markup, and limited
to characters the built-in Helvetica can print).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from io import BytesIO
from xml.sax.saxutils import escape

import geopandas as gpd
import pandas as pd
from reportlab.graphics.shapes import Drawing, Polygon, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    KeepInFrame,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from analysis.compare import count_text, covered_counts
from analysis.flyer import Flyer, place_line
from analysis.profiles import AreaProfile, SectorReview
from analysis.report import _station_xy
from geodata import schema

__all__ = ["PAGE_SIZES", "SEQUENTIAL", "flyer_pdf", "handout_pdf", "packet_pdf"]

#: Paper sizes by name (``--paper``): points, portrait.
PAGE_SIZES = {"letter": LETTER, "a4": A4}
#: Map classes, low to high (ColorBrewer YlOrRd 5: colour-blind and greyscale-print safe).
SEQUENTIAL = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
_MARGIN = 12 * mm
_STYLES = getSampleStyleSheet()
_BODY = ParagraphStyle("bw-body", parent=_STYLES["BodyText"], fontSize=10, leading=13)
_SMALL = ParagraphStyle("bw-small", parent=_BODY, fontSize=8, leading=10, textColor="#333333")
_CELL = ParagraphStyle("bw-cell", parent=_BODY, fontSize=9, leading=11)
_H1 = ParagraphStyle("bw-h1", parent=_STYLES["Heading1"], fontSize=20, leading=24, spaceAfter=4)
_H2 = ParagraphStyle("bw-h2", parent=_STYLES["Heading2"], fontSize=13, leading=16, spaceBefore=8)
_ARROWS = str.maketrans({"▲": "", "▼": "", "★": "*", "²": "2", "×": "x", "→": "->"})


def _text(value: object) -> str:
    """Return `value` as escaped paragraph text that Helvetica (cp1252) can print."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value).translate(_ARROWS).strip()
    text = text.encode("cp1252", errors="replace").decode("cp1252")
    return escape(text, {'"': "&quot;"})


def _p(text: str, style: ParagraphStyle = _BODY) -> Paragraph:
    """Return a paragraph of already-escaped `text` (may hold <b> tags written here)."""
    return Paragraph(text, style)


def _table(frame: pd.DataFrame, *, widths: Sequence[float] | None = None) -> Table:
    header = [_p(f"<b>{_text(c)}</b>", _CELL) for c in frame.columns]
    rows = [[_p(_text(v), _CELL) for v in row] for row in frame.astype(object).to_numpy()]
    table = Table([header, *rows], colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef3fa")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    return table


def _p_value(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def _change_columns(table: pd.DataFrame) -> dict[str, list[str]]:
    """Return the "Change" (percent) and "p" columns of a table of counts, as printed."""
    return {
        "Change": ["n/a" if pd.isna(v) else f"{v:+.0f}%" for v in table["pct_change"]],
        "p": [_p_value(v) for v in table["p_value"]],
    }


def _class_edges(vmax: float, n: int = len(SEQUENTIAL)) -> list[int]:
    raw = max(float(vmax), 1.0) / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-12))
    step = max(1, math.ceil(step))
    return [i * step for i in range(n + 1)]


def _map(
    areas: gpd.GeoDataFrame,
    *,
    width: float,
    height: float,
    values: Mapping[str, float] | None = None,
    fills: Mapping[str, str] | None = None,
    highlight: Sequence[str] = (),
    outlined: Sequence[str] = (),
    station_xy: tuple[float, float] | None = None,
    unit: str = "incidents",
    legend: Sequence[tuple[str, str]] = (),
) -> Drawing:
    """Return a vector map of `areas` (beat polygons) with beat labels and a legend.

    `values` colour beats in :data:`SEQUENTIAL` classes (legend with class breaks and `unit`);
    `fills` gives colours directly (its meaning in `legend`). Beats in `highlight` get a thick
    outline; beats in `outlined` are drawn unfilled and dashed (context).
    """
    drawing = Drawing(width, height)
    plot_h = height - 4
    xmin, ymin, xmax, ymax = areas.total_bounds
    kx = 1.0
    if areas.crs is not None and areas.crs.is_geographic:
        kx = math.cos(math.radians((ymin + ymax) / 2))
    map_w = width - 130  # legend column on the right
    scale = min(map_w / max((xmax - xmin) * kx, 1e-9), plot_h / max(ymax - ymin, 1e-9))

    def xy(x: float, y: float) -> tuple[float, float]:
        return 2 + (x - xmin) * kx * scale, 2 + (y - ymin) * scale

    edges = None
    if values is not None:
        edges = _class_edges(max(values.values(), default=0))
        step = edges[1] - edges[0]
    chosen = set(map(str, highlight))
    context = set(map(str, outlined))
    labels = []
    for beat, geom in zip(areas[schema.BEAT], areas.geometry, strict=True):
        fill = colors.HexColor("#f0f0f0")
        if fills is not None and beat in fills:
            fill = colors.HexColor(fills[beat])
        elif values is not None and edges is not None and beat in values:
            cls = min(int(values[beat] // step), len(SEQUENTIAL) - 1)
            fill = colors.HexColor(SEQUENTIAL[cls])
        for polygon in getattr(geom, "geoms", [geom]):
            points = [c for x, y in polygon.exterior.coords for c in xy(x, y)]
            drawing.add(
                Polygon(
                    points,
                    fillColor=None if beat in context else fill,
                    strokeColor=colors.HexColor("#222222"),
                    strokeWidth=2.2 if beat in chosen else 0.6,
                    strokeDashArray=[3, 2] if beat in context else None,
                )
            )
        point = geom.representative_point()
        labels.append((beat, *xy(point.x, point.y)))
    for beat, x, y in labels:  # labels above every polygon
        size = 9 if beat in chosen else 7
        drawing.add(
            String(
                x,
                y - size / 3,
                beat,
                fontSize=size,
                fontName="Helvetica-Bold",
                textAnchor="middle",
                fillColor=colors.black,
            )
        )
    if station_xy is not None:
        sx, sy = xy(*station_xy)
        drawing.add(
            Rect(
                sx - 5,
                sy - 5,
                10,
                10,
                fillColor=colors.HexColor("#08306b"),
                strokeColor=colors.white,
            )
        )
        drawing.add(
            String(
                sx,
                sy - 3,
                "P",
                fontSize=7,
                fontName="Helvetica-Bold",
                textAnchor="middle",
                fillColor=colors.white,
            )
        )
    # legend, top right
    lx, ly = width - 124, height - 12
    drawing.add(String(lx, ly, "Legend", fontSize=9, fontName="Helvetica-Bold"))
    ly -= 14
    if edges is not None:
        drawing.add(String(lx, ly, unit, fontSize=7.5, fontName="Helvetica"))
        ly -= 12
        for i, colour in enumerate(SEQUENTIAL):
            low = edges[i]
            high = edges[i + 1] if i == len(SEQUENTIAL) - 1 else edges[i + 1] - 1
            text = f"{low:,}" if high <= low else f"{low:,}-{high:,}"
            _legend_entry(drawing, lx, ly, colour, text)
            ly -= 12
    for colour, text in legend:
        _legend_entry(drawing, lx, ly, colour, text[:28])
        ly -= 12
    if chosen:
        drawing.add(String(lx, ly, "thick outline: this beat", fontSize=7.5))
        ly -= 12
    if context:
        drawing.add(String(lx, ly, "dashed: other beats", fontSize=7.5))
        ly -= 12
    if station_xy is not None:
        drawing.add(String(lx, ly, "P: police station", fontSize=7.5))
    return drawing


def _legend_entry(drawing: Drawing, x: float, y: float, colour: str, text: str) -> None:
    """Add one legend line to `drawing`: a swatch of `colour` at (`x`, `y`) and its words."""
    drawing.add(
        Rect(
            x,
            y - 2,
            12,
            9,
            fillColor=colors.HexColor(colour),
            strokeColor=colors.HexColor("#333333"),
            strokeWidth=0.4,
        )
    )
    drawing.add(String(x + 16, y, text, fontSize=7.5, fontName="Helvetica"))


def _text_width(paper: str) -> float:
    """Return the width between the margins of a `paper` page (points; letter if unknown)."""
    return float(PAGE_SIZES.get(paper, LETTER)[0]) - 2 * _MARGIN


def _build(pages: Sequence[Sequence[object]], *, paper: str, title: str) -> bytes:
    if paper not in PAGE_SIZES:
        msg = f"paper must be one of {sorted(PAGE_SIZES)}, got {paper!r}"
        raise ValueError(msg)
    size = PAGE_SIZES[paper]
    out = BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=size,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=title,
        author="Beatwise",
    )
    story: list[object] = []
    for i, page in enumerate(pages):
        if i:
            story.append(PageBreak())
        story.append(KeepInFrame(doc.width, doc.height - 2, content=list(page), mode="shrink"))
    doc.build(story)
    return out.getvalue()


def _opening(title: str, line: str, drawing: Drawing) -> list[object]:
    """Return the top of a one-page document: its title, one line of text, then its map.

    `title` and `line` are paragraph markup whose data text is already escaped (:func:`_text`).
    """
    return [_p(title, _H1), _p(line), Spacer(1, 4), drawing]


def handout_pdf(
    *,
    beat: str,
    sector: str,
    district: str,
    counts: pd.DataFrame,
    areas: gpd.GeoDataFrame,
    recent: Mapping[str, float],
    station: Mapping[str, object] | None,
    meetings: pd.DataFrame | None,
    period_text: str,
    about_text: str,
    recent_days: int = 28,
    paper: str = "letter",
    level_words: Mapping[str, str] | None = None,
) -> bytes:
    """Return the one-page community handout of `beat` as PDF bytes.

    Parameters
    ----------
    counts
        The counts table as displayed (category, last 28 days, the 28 before, trend, window).
    areas
        The district's beat outlines (any CRS) for the map; `recent` gives each beat's count.
    meetings
        The next meetings as displayed (When, Meeting, Where); None: schedule not available.
    period_text, about_text
        What the data covers and how it is protected, in words.
    paper
        ``letter`` or ``a4``.
    level_words
        The department's words for its levels (:func:`analysis.flyer.place_line`).
    """
    width = _text_width(paper)
    story = _opening(
        f"Beat {_text(beat)}: community meeting handout",
        f"{_text(place_line(sector, district, level_words))}. {_text(period_text)}",
        _map(
            areas,
            width=width,
            height=230,
            values=recent,
            highlight=[beat],
            unit=f"incidents per beat, last {recent_days} days",
        ),
    )
    story += [
        _p("Incidents by category", _H2),
        _table(counts),
        _p("Your police station", _H2),
    ]
    if station:
        story.append(
            _p(
                f"<b>{_text(station.get(schema.STATION_NAME))} station</b>, "
                f"{_text(station.get(schema.STATION_ADDRESS))}, {_text(station.get('city'))}. "
                f"Phone: <b>{_text(station.get(schema.STATION_PHONE)) or 'not listed'}</b>"
            )
        )
    else:
        story.append(_p("No station listed for this district."))
    story.append(_p("Next meetings", _H2))
    if meetings is None:
        story.append(_p("The meeting schedule is not available."))
    elif meetings.empty:
        story.append(_p("No upcoming meetings are scheduled for this beat."))
    else:
        story.append(_table(meetings, widths=[width * 0.3, width * 0.3, width * 0.4]))
    story += [Spacer(1, 6), _p(_text(about_text), _SMALL)]
    return _build([story], paper=paper, title=f"Beat {beat} community handout")


def flyer_pdf(flyer: Flyer, *, paper: str = "letter") -> bytes:
    """Return `flyer` as a one-page PDF (same content as :func:`analysis.flyer.render_flyer`)."""
    beat, meetings, beats, station = flyer.beat, flyer.meetings, flyer.beats, flyer.station
    row = beats[beats[schema.BEAT] == beat]
    same = beats[beats[schema.SECTOR] == flyer.sector] if flyer.sector is not None else row
    width = _text_width(paper)
    story = _opening(
        f"Beat {_text(beat)} neighborhood watch meetings",
        f"{_text(flyer.place)}. Everyone who lives or works in the beat is welcome.",
        _map(
            same,
            width=width,
            height=260,
            fills={str(beat): "#fd8d3c"},
            legend=[("#fd8d3c", f"beat {beat}")],
            highlight=[beat],
            outlined=[b for b in same[schema.BEAT] if b != beat],
            station_xy=flyer.station_xy,
        ),
    )
    story.append(_p("Next meetings", _H2))
    if len(meetings):
        shown = pd.DataFrame(
            {
                "Date": [f"{m:%a %b %d, %Y}" for m in meetings["start"]],
                "Time": [
                    f"{s:%I:%M %p}".lstrip("0") + "-" + f"{e:%I:%M %p}".lstrip("0")
                    for s, e in zip(meetings["start"], meetings["end"], strict=True)
                ],
                "Meeting": meetings["title"].astype(str),
                "Where": [
                    f"{v}, {a}" if a else str(v)
                    for v, a in zip(
                        meetings["venue_name"].fillna(""),
                        meetings["address"].fillna(""),
                        strict=True,
                    )
                ],
                "Note": [
                    f"{s.title()}: {n}"
                    if s in ("cancelled", "moved") and n
                    else (s.title() if s in ("cancelled", "moved") else "")
                    for s, n in zip(
                        meetings["status"].fillna("scheduled").astype(str),
                        meetings["note"].fillna("") if "note" in meetings else [""] * len(meetings),
                        strict=True,
                    )
                ],
            }
        )
        story.append(_table(shown))
        if "illustrative" in meetings and bool(meetings["illustrative"].fillna(False).any()):
            story.append(
                _p(
                    "These dates follow an illustrative schedule, not a published one: confirm "
                    "with the station before you go.",
                    _SMALL,
                )
            )
        first = meetings.iloc[0]
        if first.get("contact"):
            story.append(_p(f"Contact: {_text(first['contact'])}"))
        if first.get("virtual_link"):
            story.append(_p(f"Join online: {_text(first['virtual_link'])}"))
    else:
        story.append(_p("No meetings scheduled in the coming months."))
    if station:
        story += [
            _p("Your police station", _H2),
            _p(
                f"<b>{_text(station.get('name'))}</b>, {_text(station.get('address'))}. "
                f"Phone: <b>{_text(station.get('phone')) or 'not listed'}</b>"
            ),
        ]
    if flyer.feed_name:
        story.append(
            _p(f"Calendar feed for your phone or computer: {_text(flyer.feed_name)}", _SMALL)
        )
    return _build([story], paper=paper, title=f"Beat {beat} meetings")


def packet_pdf(
    profile: AreaProfile,
    beats: gpd.GeoDataFrame,
    *,
    stations: gpd.GeoDataFrame | None = None,
    review: SectorReview | None = None,
    reasons: Mapping[str, tuple[str, str, pd.DataFrame]] | None = None,
    note: str = "",
    paper: str = "letter",
) -> bytes:
    """Return the packet of `profile` (page 1) and of the sector `review` (page 2) as PDF.

    Parameters
    ----------
    beats
        Canonical beats in the analysis CRS (for the map).
    stations
        Stations layer, to place the serving station on the map.
    reasons
        Per flagged beat, why it changed (:func:`analysis.compare.explain_flagged`).
    note
        A warning printed under the title (e.g. that the period is covered by a sample).
    """
    width = _text_width(paper)
    station_xy = _station_xy(stations, profile.station)
    ids = beats[schema.BEAT]
    shown = beats[ids.isin([*profile.beats, *profile.neighbour_beats])]
    counts = profile.counts_by_category
    comparisons = profile.comparisons
    covered = covered_counts(comparisons)  # a period the data do not cover shows a dash
    page1: list[object] = [
        _p(f"{_text(profile.title)}: profile", _H1),
        _p(
            f"Period {_text(profile.start)} to {_text(profile.end)} ({_text(profile.timezone)}); "
            f"<b>{profile.n_incidents:,}</b> incidents; area {profile.area_km2:.2f} km2."
        ),
    ]
    if note:
        page1.append(_p(f"<b>Note:</b> {_text(note)}", _SMALL))
    if review is not None:
        fills = {
            str(r.beat): {"up": "#f03b20", "down": "#56B4E9"}.get(r.flag, "#ffffb2")
            for r in review.beats.itertuples()
        }
        legend = [
            ("#f03b20", "significant rise"),
            ("#56B4E9", "significant fall"),
            ("#ffffb2", "no significant change"),
        ]
    else:
        fills = dict.fromkeys(map(str, profile.beats), "#fd8d3c")
        legend = [("#fd8d3c", "the area")]
    page1 += [
        _map(
            shown,
            width=width,
            height=250,
            fills=fills,
            legend=legend,
            outlined=list(profile.neighbour_beats),
            station_xy=station_xy,
        ),
        _p("Incidents by category", _H2),
        _table(
            pd.DataFrame(
                {
                    "Category": [str(c) for c in counts.index],
                    "Incidents": [int(v) for v in counts.to_numpy()],
                }
            )
        ),
        _p("CompStat comparison", _H2),
        _table(
            pd.DataFrame(
                {
                    "Window": comparisons["label"],
                    "Current": comparisons["current"].astype(int),
                    "Previous": covered["previous"].map(count_text),
                    **_change_columns(comparisons),
                    "Flag": comparisons["flag"],
                    "Last year": covered["last_year"].map(count_text),
                }
            )
        ),
        _p(
            "p: exact two-sided test that two Poisson counts share one daily rate; up/down "
            "flagged at p &lt; 0.05.",
            _SMALL,
        ),
        _p("Top offenses", _H2),
        _table(profile.counts_by_offense.head(8)),
    ]
    pages = [page1]
    if review is not None:
        table = review.beats[
            [schema.BEAT, "incidents", "previous", "pct_change", "p_value", "flag"]
        ]
        page2: list[object] = [
            _p(f"Sector {_text(review.sector)}: beats side by side ({_text(review.window)})", _H1),
            _table(
                pd.DataFrame(
                    {
                        "Beat": table[schema.BEAT],
                        "Incidents": table["incidents"].astype(int),
                        "Previous": table["previous"].astype(int),
                        **_change_columns(table),
                        "Flag": table["flag"],
                    }
                )
            ),
            _p("What changed, and why", _H2),
        ]
        for row in review.explain().itertuples(index=False):
            text = f"<b>{_text(row.beat)}</b>: {_text(row.explanation)}"
            if reasons and str(row.beat) in reasons:
                parts, chance, _ = reasons[str(row.beat)]
                text += f" <b>Why:</b> {_text(parts)} In words: {_text(chance)}."
            page2.append(_p(text))
        page2 += [
            _p("Unusual counts against prior years", _H2),
            _p(_text(review.unusual_note), _SMALL),
        ]
        pages.append(page2)
    return _build(pages, paper=paper, title=f"{profile.title} packet")
