"""Printable beat profile / sector packet: one self-contained HTML file (no scripts, no network).

The map is drawn as inline SVG from the beat polygons (analysis CRS, metres, so the map is true
to scale without a projection step): the area's beats filled, neighbouring beats outlined and
labelled, the serving station as a star and the period's incidents as dots (above
``MAX_DOTS`` points they are aggregated to grid cells, like the dashboard's maps). Charts are
inline SVG bars and an HTML heat table, so the page prints on paper exactly as it shows on screen
and opens on a machine without internet. All data text is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from analysis.compare import CHANGE_COLUMNS, count_text, covered_counts
from analysis.profiles import WEEKDAYS, AreaProfile, SectorReview
from geodata import schema

__all__ = ["MAX_DOTS", "render_packet", "svg_map"]

# map coordinates (x, y) to SVG coordinates
_Transform = Callable[[float, float], tuple[float, float]]

MAX_DOTS = 2_000
_SIZE = 560
_CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:24px;color:#1a1a1a}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 6px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#f2f2f2}td.l,th.l{text-align:left}.up{color:#b30000;font-weight:bold}
.down{color:#006d2c;font-weight:bold}.note{color:#555;font-size:12px}.grid{display:flex;gap:24px;
flex-wrap:wrap}.hw td{width:16px;height:14px;padding:0;font-size:9px;text-align:center}
@media print{body{margin:8mm}.pb{page-break-before:always}}
"""


def _e(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True)


def _path(geom: shapely.Geometry, transform: _Transform) -> str:
    parts = []
    polygons = getattr(geom, "geoms", [geom])
    for polygon in polygons:
        for ring in [polygon.exterior, *polygon.interiors]:
            xy = [transform(x, y) for x, y in ring.coords]
            parts.append("M" + "L".join(f"{a:.1f},{b:.1f}" for a, b in xy) + "Z")
    return "".join(parts)


def svg_map(
    beats: gpd.GeoDataFrame,
    members: Sequence[str],
    *,
    neighbours: Sequence[str] = (),
    incidents: pd.DataFrame | None = None,
    station_xy: tuple[float, float] | None = None,
    fills: dict[str, str] | None = None,
    size_px: int = _SIZE,
) -> str:
    """Return an inline SVG map of `members` (filled), `neighbours` (outlined) and points.

    Parameters
    ----------
    beats
        Canonical beats in a projected CRS (metres).
    members
        Beats of the area.
    neighbours
        Beats drawn around the area as context, labelled with their ids.
    incidents
        Points with ``x``/``y`` in the beats' CRS; more than ``MAX_DOTS`` are drawn as grid cells.
    station_xy
        The serving station in the beats' CRS.
    fills
        Optional fill colour per member beat (e.g. by change); default a light blue.
    """
    ids = beats[schema.BEAT]
    shown = beats[ids.isin(set(members) | set(neighbours))]
    if shown.empty:
        return "<svg></svg>"
    xmin, ymin, xmax, ymax = shown.total_bounds
    if station_xy is not None:
        xmin, xmax = min(xmin, station_xy[0]), max(xmax, station_xy[0])
        ymin, ymax = min(ymin, station_xy[1]), max(ymax, station_xy[1])
    span = max(xmax - xmin, ymax - ymin, 1.0) * 1.04
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    scale = size_px / span

    def transform(x: float, y: float) -> tuple[float, float]:
        return (x - cx) * scale + size_px / 2, (cy - y) * scale + size_px / 2

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size_px}" height="{size_px}" '
        f'viewBox="0 0 {size_px} {size_px}" class="map" role="img">',
        f'<rect width="{size_px}" height="{size_px}" fill="#fafafa"/>',
    ]
    member_set = set(members)
    for row in shown.itertuples(index=False):
        beat = str(getattr(row, schema.BEAT))
        geom = row.geometry.simplify(5.0, preserve_topology=True)
        if beat in member_set:
            fill = (fills or {}).get(beat, "#c6dbef")
            style = f'fill="{_e(fill)}" stroke="#08306b" stroke-width="2"'
        else:
            style = 'fill="none" stroke="#777" stroke-width="1" stroke-dasharray="4 2"'
        out.append(
            f'<path d="{_path(geom, transform)}" {style} fill-rule="evenodd" '
            f'data-beat="{_e(beat)}"><title>Beat {_e(beat)}</title></path>'
        )
    if incidents is not None and len(incidents):
        out.extend(_dots(incidents, transform, span))
    for row in shown.itertuples(index=False):
        point = row.geometry.representative_point()
        x, y = transform(point.x, point.y)
        beat = str(getattr(row, schema.BEAT))
        weight = "bold" if beat in member_set else "normal"
        out.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="12" text-anchor="middle" '
            f'font-weight="{weight}" fill="#222">{_e(beat)}</text>'
        )
    if station_xy is not None:
        x, y = transform(*station_xy)
        out.append(
            f'<text x="{x:.1f}" y="{y + 7:.1f}" font-size="22" text-anchor="middle" '
            f'fill="#08306b" class="station">&#9733;<title>Station</title></text>'
        )
    bar_m = 10 ** math.floor(math.log10(span / 4))
    bar_px = bar_m * scale
    out.append(
        f'<line x1="10" y1="{size_px - 12}" x2="{10 + bar_px:.1f}" y2="{size_px - 12}" '
        f'stroke="#000" stroke-width="3"/><text x="10" y="{size_px - 18}" '
        f'font-size="11">{bar_m:g} m</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _dots(incidents: pd.DataFrame, transform: _Transform, span: float) -> list[str]:
    located = incidents.dropna(subset=[schema.X, schema.Y])
    out = []
    if len(located) <= MAX_DOTS:
        for x, y in zip(located[schema.X], located[schema.Y], strict=True):
            a, b = transform(x, y)
            out.append(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.2" fill="#b30000" '
                'fill-opacity="0.6" class="incident"/>'
            )
        return out
    cell = span / 60
    cells = located.groupby(
        [np.floor(located[schema.X] / cell), np.floor(located[schema.Y] / cell)]
    ).size()
    vmax = float(cells.max())
    for (i, j), n in cells.items():
        a, b = transform((i + 0.5) * cell, (j + 0.5) * cell)
        radius = 1.5 + 6 * math.sqrt(n / vmax)
        out.append(
            f'<circle cx="{a:.1f}" cy="{b:.1f}" r="{radius:.1f}" fill="#b30000" '
            f'fill-opacity="0.5" class="incident"><title>{int(n)}</title></circle>'
        )
    return out


def _bars(labels: Sequence[object], values: Sequence[float], *, width: int = 360) -> str:
    vmax = max([float(v) for v in values] + [1.0])
    height = 18 * len(labels) + 4
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart">'
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 4 + 18 * i
        length = (width - 150) * float(value) / vmax
        out.append(
            f'<text x="0" y="{y + 12}" font-size="11">{_e(label)}</text>'
            f'<rect x="100" y="{y}" width="{length:.1f}" height="14" fill="#4292c6"/>'
            f'<text x="{104 + length:.1f}" y="{y + 12}" font-size="11">{_e(value)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _columns(labels: Sequence[object], values: Sequence[float], *, width: int = 560) -> str:
    vmax = max([float(v) for v in values] + [1.0])
    height, n = 120, max(len(values), 1)
    step = width / n
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}" '
        'class="chart">'
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar = height * float(value) / vmax
        out.append(
            f'<rect x="{i * step + 1:.1f}" y="{height - bar:.1f}" width="{step - 2:.1f}" '
            f'height="{bar:.1f}" fill="#6baed6"><title>{_e(label)}: {_e(value)}</title>'
            "</rect>"
        )
    out.append(
        f'<text x="0" y="{height + 13}" font-size="10">{_e(labels[0]) if labels else ""}'
        f'</text><text x="{width}" y="{height + 13}" font-size="10" text-anchor="end">'
        f"{_e(labels[-1]) if labels else ''}</text></svg>"
    )
    return "".join(out)


def _table(frame: pd.DataFrame, *, left: Iterable[str] = (), formats: dict | None = None) -> str:
    left_set, formats = set(left), formats or {}
    head = "".join(
        f'<th class="{"l" if c in left_set else ""}">{_e(c)}</th>' for c in frame.columns
    )
    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for column, value in record.items():
            text = formats[column](value) if column in formats else _e(value)
            klass = "l" if column in left_set else ""
            if column.startswith("flag") and value:
                klass = str(value)
            cells.append(f'<td class="{_e(klass)}">{text}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _pct(value: float | None) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{float(value):+.0f}%"


def _p(value: float | None) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{float(value):.3f}"


def _heat(matrix: pd.DataFrame) -> str:
    vmax = max(float(matrix.to_numpy().max()), 1.0)
    head = "<tr><th></th>" + "".join(f"<th>{h}</th>" for h in matrix.columns) + "</tr>"
    rows = []
    for day, values in zip(WEEKDAYS, matrix.to_numpy(), strict=True):
        cells = []
        for v in values:
            shade = int(255 - 200 * v / vmax)
            cells.append(f'<td style="background:rgb(255,{shade},{shade})">{int(v) or ""}</td>')
        rows.append(f'<tr><th class="l">{day[:3]}</th>{"".join(cells)}</tr>')
    return f'<table class="hw">{head}{"".join(rows)}</table>'


def _station_xy(stations: gpd.GeoDataFrame | None, station: dict | None) -> tuple | None:
    if stations is None or station is None or stations.empty:
        return None
    rows = stations[stations[schema.STATION_ID] == station.get("station_id")]
    if rows.empty:
        return None
    point = rows.geometry.iloc[0]
    return float(point.x), float(point.y)


def _comparison_table(comparisons: pd.DataFrame) -> str:
    counts = covered_counts(comparisons)  # a period the data do not cover shows a dash
    periods = zip(comparisons["start"], comparisons["end"], strict=True)
    view = comparisons.assign(
        period=[f"{a} – {b}" for a, b in periods],
        previous=counts["previous"],
        last_year=counts["last_year"],
    )[["label", "period", "current", *CHANGE_COLUMNS]]
    return _table(
        view,
        left=("label", "period"),
        formats={
            "previous": count_text,
            "last_year": count_text,
            "pct_change": _pct,
            "pct_change_last_year": _pct,
            "p_value": _p,
            "p_value_last_year": _p,
        },
    )


def render_packet(
    profile: AreaProfile,
    beats: gpd.GeoDataFrame,
    incidents: pd.DataFrame,
    *,
    stations: gpd.GeoDataFrame | None = None,
    review: SectorReview | None = None,
    note: str = "",
) -> str:
    """Return the printable packet of `profile` (and of `review` for a sector) as HTML.

    Parameters
    ----------
    profile
        From :func:`analysis.profiles.profile_area`.
    beats
        Canonical beats in the analysis CRS (for the map).
    incidents
        Incidents with ``beat``, ``occurred_at``, ``x``, ``y``; those of the area in the
        profile period are drawn.
    stations
        Stations layer, to place the serving station on the map.
    review
        Sector review shown after the profile (sector packet).
    note
        A warning printed under the title (e.g. that the period is covered by a sample).
    """
    local = incidents[schema.OCCURRED_AT]
    if profile.timezone and local.dt.tz is not None:
        local = local.dt.tz_convert(profile.timezone)
    in_period = incidents[schema.BEAT].isin(profile.beats).to_numpy() & profile.period.contains(
        local
    )
    fills = None
    if review is not None:
        colours = {"up": "#fcae91", "down": "#a1d99b", "": "#c6dbef"}
        fills = {str(r.beat): colours.get(r.flag, "#c6dbef") for r in review.beats.itertuples()}
    area_map = svg_map(
        beats,
        profile.beats,
        neighbours=profile.neighbour_beats,
        incidents=incidents[in_period],
        station_xy=_station_xy(stations, profile.station),
        fills=fills,
    )
    station = profile.station
    station_text = (
        f"{_e(station.get('name'))} station, {_e(station.get('address'))}, "
        f"phone {_e(station.get('phone')) or 'not listed'}"
        if station
        else "no station on record"
    )
    density = profile.density_per_km2
    share = profile.concentration.get("share")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(profile.title)} profile</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(profile.title)} — profile</h1>",
        f"<div>Period {_e(profile.start)} to {_e(profile.end)} ({_e(profile.timezone)}); "
        f"beats {_e(', '.join(profile.beats))}</div>",
    ]
    if note:
        parts.append(f'<p class="note"><b>Note:</b> {_e(note)}</p>')
    parts += [
        f"<p><b>{profile.n_incidents}</b> incidents; area {profile.area_km2:.2f} km²; "
        f"density {(density or 0):.1f} per km². Serving station: {station_text}. "
        f"Neighbours: {_e(', '.join(profile.neighbours)) or 'none'}.</p>",
        f'<div class="grid"><div>{area_map}<div class="note">Filled: the area; dashed: '
        "neighbouring beats; ★ station; red dots: incidents in the period.</div></div><div>",
        "<h2>Incidents by category</h2>",
        _bars(list(profile.counts_by_category.index), list(profile.counts_by_category.values)),
        "<h2>Daily incidents</h2>",
        _columns([str(d) for d in profile.daily["date"]], list(profile.daily["incidents"])),
        "</div></div>",
        "<h2>CompStat comparison</h2>",
        _comparison_table(profile.comparisons),
        '<p class="note">p: exact two-sided test that two Poisson counts share one daily rate '
        "(conditional binomial); up/down flagged at p &lt; 0.05. n/a: previous count 0, or "
        "the data set holds no comparable data for that period.</p>",
        "<h2>Hour of day × weekday</h2>",
        _heat(profile.hour_weekday),
        '<div class="grid"><div><h2>Top offenses</h2>',
        _table(profile.counts_by_offense, left=(schema.OFFENSE, schema.CATEGORY)),
        "</div><div><h2>Top location types</h2>",
        _table(
            profile.location_types,
            left=(schema.LOCATION_DESC,),
            formats={"share": lambda v: f"{v:.0%}"},
        ),
        "</div><div><h2>Top blocks</h2>",
        _table(profile.top_blocks, left=(schema.BLOCK,), formats={"share": lambda v: f"{v:.0%}"}),
        "</div></div>",
        (
            f"<p>Concentration: <b>{share:.0%}</b> of incidents on the busiest 20% of blocks "
            f"({profile.concentration['n_top_places']} of {profile.concentration['n_places']} "
            "blocks with incidents).</p>"
            if share is not None
            else ""
        ),
    ]
    if review is not None:
        table = review.beats.drop(columns=[c for c in ("area_km2",) if c in review.beats])
        parts += [
            f'<h2 class="pb">Sector {_e(review.sector)}: beats side by side '
            f"({_e(review.window)} window)</h2>",
            _table(
                table,
                left=(schema.BEAT,),
                formats={
                    "pct_change": _pct,
                    "pct_change_last_year": _pct,
                    "p_value": _p,
                    "p_value_last_year": _p,
                    "per_km2": lambda v: f"{v:.1f}",
                },
            ),
            f"<p>Sector total: {_e(review.total.get('current'))} incidents, previous "
            f"{_e(review.total.get('previous'))} ({_pct(review.total.get('pct_change'))}, p "
            f"{_p(review.total.get('p_value'))}).</p>",
            "<h2>Unusual counts against prior years</h2>",
            f'<p class="note">{_e(review.unusual_note)}</p>',
            _table(
                review.unusual,
                left=("beat",),
                formats={
                    "mean": lambda v: "" if pd.isna(v) else f"{v:.1f}",
                    "sd": lambda v: "" if pd.isna(v) else f"{v:.1f}",
                    "threshold": lambda v: "" if pd.isna(v) else f"{v:.1f}",
                },
            ),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)
