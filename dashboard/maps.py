"""Folium maps: the only place geometries go to WGS84, and every label is HTML-escaped.

Every map carries a legend and labels (docs/maps.md):

* a legend box (drawn by Leaflet itself, no CDN) with one section per layer: class breaks and
  units of a choropleth, outline styles, markers;
* choropleths use :data:`SEQUENTIAL` (ColorBrewer YlOrRd, 5 classes, colour-blind safe) with
  round class breaks (:func:`class_breaks`); categorical layers use :data:`CATEGORICAL`
  (Okabe-Ito);
* area labels (beat, sector, district ids) are drawn as text with a white halo, each level from
  the zoom in :data:`LABEL_MIN_ZOOM`, so they stay readable instead of piling up;
* background tiles come from :func:`geodata.settings.tile_settings` (``BEATS_TILE_URL``); with
  ``none`` the map is drawn on a plain background, and outlines and labels carry it, with place
  context from the store's own layers (:func:`add_context`: district outlines named after their
  station's neighbourhood, every station).

Text stays text: branca, under folium, wraps each piece of a map it has rendered in a new
``Element`` and compiles that piece as a Jinja2 template when the page is put together, so a
``{{ ... }}`` or ``{% ... %}`` in any data (a beat name, a station's address, a meeting venue, a
GeoJSON property) was evaluated on the server, a server-side template injection. This module
makes those wrappers plain text (:func:`_keep_rendered_text`, installed on import, before any
map is drawn); the page is otherwise byte for byte the same. The tests in
tests/dashboard/test_maps.py fail if a folium or branca upgrade makes the wrappers otherwise.

Size rules (the marker limit is also described in docs/profiles.md):

* polygons are simplified to ``SIMPLIFY_M`` (5 m) before drawing: the whole-city beat
  choropleth drops from about 2.4 MB to about 0.4 MB of HTML;
* individual incident markers are drawn only up to ``MAX_MARKERS`` (2,000, clustered); above
  that, points are aggregated to a hexagon-like grid of counts, so a map never carries more than a
  few thousand features whatever the data size (cells double in size until at most ``MAX_CELLS``
  are drawn).
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
import sys
from collections.abc import Collection, Sequence
from typing import Any

import branca.element
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import MacroElement, Template
from folium.plugins import MarkerCluster

from geodata import schema, settings

__all__ = [
    "CATEGORICAL",
    "LABEL_MIN_ZOOM",
    "MAX_MARKERS",
    "OFFLINE_MAX_ZOOM",
    "SEQUENTIAL",
    "SIMPLIFY_M",
    "Context",
    "MapControl",
    "add_context",
    "add_incidents",
    "add_labels",
    "add_legend",
    "add_marked_areas",
    "add_outlines",
    "add_pin",
    "add_stations",
    "base_map",
    "choropleth",
    "class_breaks",
    "esc",
    "has_tiles",
    "plain",
    "station_icon",
    "to_display",
    "tooltip_html",
]


class _RenderedText:
    """Stands in for the Jinja2 template of an ``Element`` that holds already rendered text.

    Renders to the text as Jinja2 would render a template with no tags (line ends made one
    newline, a last newline dropped), without reading any tag in it.
    """

    def __init__(self, text: str) -> None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.text = text[:-1] if text.endswith("\n") else text

    def render(self, *args: object, **kwargs: object) -> str:
        return self.text


def _keep_rendered_text() -> None:
    """Make branca's wrappers of rendered map pieces plain text (see the module docstring).

    An ``Element`` given a template string from inside a ``render`` method is such a wrapper
    (branca's and folium's ``render`` methods create them, and nothing else does): it keeps the
    text as it is, also when a cached map is copied or unpickled. An ``Element`` made elsewhere
    with a template (branca's ``Div``) still compiles it. Installed once; the original
    ``__init__`` is the new one's ``__wrapped__``.
    """
    element = branca.element.Element
    if hasattr(element.__init__, "__wrapped__"):
        return  # installed already (this module imported again)
    original_init, original_setstate = element.__init__, element.__setstate__

    def init(
        self: branca.element.Element,
        template: str | None = None,
        template_name: str | None = None,
    ) -> None:
        rendered = template is not None and sys._getframe(1).f_code.co_name == "render"
        original_init(self, None if rendered else template, template_name)
        if rendered and template is not None:
            self.__dict__["_rendered_text"] = template  # kept for a copy or an unpickling
            self.__dict__["_template"] = _RenderedText(template)

    def setstate(self: branca.element.Element, state: dict[str, Any]) -> None:
        original_setstate(self, state)
        if state.get("_rendered_text") is not None:
            self.__dict__["_template"] = _RenderedText(state["_rendered_text"])

    init.__wrapped__ = original_init  # type: ignore[attr-defined]
    element.__init__ = init  # type: ignore[method-assign]
    element.__setstate__ = setstate  # type: ignore[method-assign]


_keep_rendered_text()

#: Leaflet and its plugins are served from dashboard/static (no CDN needed; see its README).
STATIC_URL = "/app/static/vendor"
folium.Map.default_js = [
    ("jquery", f"{STATIC_URL}/jquery/jquery.min.js"),  # folium popups use $()
    ("leaflet", f"{STATIC_URL}/leaflet/leaflet.js"),
]
folium.Map.default_css = [("leaflet_css", f"{STATIC_URL}/leaflet/leaflet.css")]
MarkerCluster.default_js = [
    ("markerclusterjs", f"{STATIC_URL}/markercluster/leaflet.markercluster.js")
]
MarkerCluster.default_css = [
    ("markerclustercss", f"{STATIC_URL}/markercluster/MarkerCluster.css"),
    ("markerclusterdefaultcss", f"{STATIC_URL}/markercluster/MarkerCluster.Default.css"),
]

SIMPLIFY_M = 5.0
MAX_MARKERS = 2_000
AGGREGATE_CELL_M = 250.0
MAX_CELLS = 3_000
CHICAGO_CENTER = (41.84, -87.68)
#: Sequential classes, low to high (ColorBrewer YlOrRd 5: colour-blind and print safe).
SEQUENTIAL = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
#: Categorical colours (Okabe-Ito: distinguishable with the common colour-vision deficiencies).
CATEGORICAL = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#999999",
)
#: Deepest zoom of a map without tiles (the tiles' 19 otherwise).
OFFLINE_MAX_ZOOM = 19
#: Zoom level from which each kind of area label is drawn.
LABEL_MIN_ZOOM = {"district": 10, "sector": 12, "beat": 13}


def esc(value: object) -> str:
    """Return `value` as HTML-escaped text (``None`` -> empty)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True)


_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()<>#+-.!|~$"})


def plain(text: object) -> str:
    """Return `text` with Markdown and HTML characters escaped, to show it literally.

    For text from users or data shown through Streamlit's Markdown (``st.info``,
    ``st.markdown``...), where :func:`esc` alone would still render links and images.
    """
    return str(text).translate(_MARKDOWN)


def to_display(layer: gpd.GeoDataFrame, *, simplify_m: float = SIMPLIFY_M) -> gpd.GeoDataFrame:
    """Return `layer` simplified in its metric CRS and reprojected to WGS84 for drawing."""
    out = layer.copy()
    if out.crs is not None and out.crs.is_projected and simplify_m > 0:
        out["geometry"] = out.geometry.simplify(simplify_m, preserve_topology=True)
    return out.to_crs(schema.WGS84)


def base_map(layer: gpd.GeoDataFrame | None = None, *, zoom: int = 11) -> folium.Map:
    """Return an empty map fitted to `layer` (or centred on Chicago).

    Tiles follow ``BEATS_TILE_URL`` (:func:`geodata.settings.tile_settings`); without tiles the
    map has a plain background and its outlines and labels.
    """
    tiles, attribution = settings.tile_settings()
    fmap = folium.Map(
        location=CHICAGO_CENTER,
        zoom_start=zoom,
        tiles=tiles,
        attr=attribution,
        control_scale=True,
        prefer_canvas=True,
    )
    fmap.add_child(_MapStyle(offline=tiles is None))
    if layer is not None and len(layer):
        xmin, ymin, xmax, ymax = layer.to_crs(schema.WGS84).total_bounds
        fmap.fit_bounds([[ymin, xmin], [ymax, xmax]])
    return fmap


#: Place context of a map without tiles: districts, stations (or None), the district word.
Context = tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, str]


def has_tiles() -> bool:
    """Return True when maps get background tiles (``BEATS_TILE_URL`` is not ``none``)."""
    return settings.tile_settings()[0] is not None


def _place_names(districts: gpd.GeoDataFrame, stations: gpd.GeoDataFrame | None) -> dict[str, str]:
    """Return a place name per district: its station's, else the layer's unless just a number.

    A district layer's name that only repeats the number ("1ST") names no place.
    """
    names: dict[str, str] = {}
    if schema.DISTRICT_NAME in districts.columns:
        for district, name in zip(
            districts[schema.DISTRICT], districts[schema.DISTRICT_NAME], strict=True
        ):
            text = "" if pd.isna(name) else str(name).strip()
            if re.sub(r"(?i)\d+(st|nd|rd|th)?|district|precinct|\W", "", text):
                names[str(district)] = text
    if stations is not None and schema.DISTRICT in stations.columns:
        for district, name in zip(
            stations[schema.DISTRICT], stations[schema.STATION_NAME], strict=True
        ):
            if not pd.isna(district) and not pd.isna(name) and str(name).strip():
                names[str(district)] = str(name).strip()
    return names


def add_context(
    fmap: folium.Map,
    districts: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame | None = None,
    *,
    word: str = "District",
    drawn_station_ids: Collection[str] = (),
    force: bool = False,
) -> folium.Map:
    """Draw place context on a map without background tiles: named district outlines, stations.

    With tiles (:func:`has_tiles`) the tiles carry the context and nothing is drawn unless
    `force`. Offline, each district gets a thin dashed outline and a label that is always shown,
    ``"District 12 · Near West"`` (the name of its station, or of the layer when it is more than
    a number), and `stations` are marked. Everything comes from the store's own layers, so it
    works without any network.

    Parameters
    ----------
    districts
        District (precinct) polygons with ``district`` and optionally ``district_name``.
    stations
        Stations to mark (None or empty: none); their names name the districts.
    word
        The department's word for a district (``Precinct`` in Seattle).
    drawn_station_ids
        Stations the map already marks: they still name their district, but are not drawn twice.
    """
    if has_tiles() and not force:
        return fmap
    names = _place_names(districts, stations)
    display = to_display(districts, simplify_m=SIMPLIFY_M * 4)
    folium.GeoJson(
        display[["geometry"]].to_json(),
        name=f"{word}s (place context)",
        style_function=lambda _: {
            "fill": False,
            "color": "#6b6b6b",
            "weight": 1.5,
            "dashArray": "6 4",
        },
        interactive=False,
    ).add_to(fmap)
    group = folium.FeatureGroup(name=f"{word} names", control=False)
    for district, point in zip(
        display[schema.DISTRICT].astype(str),
        display.geometry.representative_point(),
        strict=True,
    ):
        place = names.get(district)
        text = f"{word} {district}" + (f" · {place}" if place else "")
        folium.Marker(
            [point.y, point.x],
            icon=folium.DivIcon(
                html=f'<div class="bw-label-text bw-context-text">{esc(text)}</div>',
                icon_size=(0, 0),
                class_name="bw-label bw-label-context",
            ),
            interactive=False,
            keyboard=False,
        ).add_to(group)
    group.add_to(fmap)
    add_legend(
        fmap,
        "Place context (no map tiles)",
        [("#6b6b6b", f"{word} outline and name", "dash")],
    )
    if stations is not None and len(stations):
        drawn = {str(i) for i in drawn_station_ids}
        others = stations[~stations[schema.STATION_ID].isin(drawn)]
        if len(others):
            add_stations(fmap, others)
    return fmap


def tooltip_html(row: pd.Series, fields: Sequence[tuple[str, str]]) -> str:
    """Return an escaped ``<b>label</b>: value`` tooltip of `row`'s (column, label) `fields`."""
    return "<br>".join(f"<b>{esc(label)}</b>: {esc(row.get(col))}" for col, label in fields)


def class_breaks(vmax: float, n: int = len(SEQUENTIAL), *, integer: bool = True) -> list[float]:
    """Return ``n + 1`` round class edges from 0 to at least `vmax` (equal steps of 1, 2, 2.5, 5).

    Examples
    --------
    >>> class_breaks(23)
    [0, 5, 10, 15, 20, 25]
    """
    vmax = float(vmax) if vmax and vmax > 0 else 1.0
    raw = vmax / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-12))
    if integer:
        step = max(1, math.ceil(step))
        return [i * step for i in range(n + 1)]
    return [round(i * step, 10) for i in range(n + 1)]


def _class_labels(edges: Sequence[float], *, integer: bool) -> list[str]:
    labels = []
    for i, (low, high) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2
        if integer:
            top = int(high) if last else int(high) - 1
            labels.append(f"{int(low):,}" if top <= low else f"{int(low):,}–{top:,}")
        else:
            labels.append(f"{low:g}–{high:g}")
    return labels


def choropleth(
    fmap: folium.Map,
    areas: gpd.GeoDataFrame,
    value: str,
    *,
    id_column: str = schema.BEAT,
    fields: Sequence[tuple[str, str]] = (),
    name: str = "Incidents",
    unit: str = "incidents per beat",
    colors: Sequence[str] = SEQUENTIAL,
    highlight: Sequence[str] = (),
    vmax: float | None = None,
    label_level: str | None = "beat",
) -> folium.Map:
    """Draw `areas` in classes of `value`, with a legend, labels and escaped tooltips.

    Parameters
    ----------
    fmap
        The map to draw on.
    areas
        Polygons in any CRS with `id_column` and `value`.
    value
        Numeric column that sets the colour.
    id_column
        Identifier shown first in the tooltip and drawn as the area's label.
    fields
        ``(column, label)`` pairs shown in the tooltip after the id and value.
    name
        Layer name in the layer control and title of the legend section.
    unit
        What one value counts, shown in the legend (e.g. ``incidents per beat``).
    colors
        One colour per class, low to high (default :data:`SEQUENTIAL`).
    highlight
        Ids drawn with a thick outline (e.g. the selected beat).
    vmax
        Top of the colour scale (default: the largest value), so maps drawn side by side can
        share one scale.
    label_level
        Kind of area for the labels (a key of :data:`LABEL_MIN_ZOOM`), or None for no labels.
    """
    display = to_display(areas)
    values = pd.to_numeric(display[value], errors="coerce").fillna(0)
    if vmax is None or vmax <= 0:
        vmax = float(values.max()) if len(values) and values.max() > 0 else 1.0
    integer = bool(np.allclose(values, np.round(values)))
    edges = class_breaks(vmax, len(colors), integer=integer)
    step = edges[1] - edges[0]
    classes = np.minimum((values.to_numpy(float) // step).astype(int), len(colors) - 1)
    chosen = set(highlight)
    rows = [(id_column, id_column.title()), (value, name), *fields]
    display["_tip"] = [tooltip_html(r, rows) for _, r in display.iterrows()]
    display["_fill"] = [colors[max(c, 0)] for c in classes]
    display["_weight"] = [3.5 if i in chosen else 0.8 for i in display[id_column]]
    keep = [id_column, "_tip", "_fill", "_weight", "geometry"]
    folium.GeoJson(
        display[keep].to_json(),
        name=name,
        style_function=lambda f: {
            "fillColor": f["properties"]["_fill"],
            "color": "#1f1f1f",
            "weight": f["properties"]["_weight"],
            "fillOpacity": 0.7,
        },
        highlight_function=lambda f: {"weight": 3, "color": "#08519c"},
        tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False),
    ).add_to(fmap)
    items = [
        (color, label, "box")
        for color, label in zip(colors, _class_labels(edges, integer=integer), strict=True)
    ]
    if chosen:
        items.append(("#1f1f1f", "selected: thick outline", "line"))
    add_legend(fmap, f"{name} ({unit})", items)
    if label_level:
        add_labels(fmap, areas, id_column, level=label_level)
    return fmap


def add_outlines(
    fmap: folium.Map,
    areas: gpd.GeoDataFrame,
    *,
    name: str,
    color: str = "#252525",
    weight: float = 2.0,
    label_column: str | None = None,
    label_level: str | None = None,
    dash: str | None = None,
) -> folium.Map:
    """Draw area outlines (sectors, districts) without fill, listed in the legend.

    With `label_column` the outlines get an escaped tooltip and a text label per area, shown
    from the zoom of `label_level` (a key of :data:`LABEL_MIN_ZOOM`; default: the column's
    name when it is ``beat``, ``sector`` or ``district``).
    """
    if label_level is None and label_column in LABEL_MIN_ZOOM:
        label_level = label_column
    display = to_display(areas, simplify_m=SIMPLIFY_M * 2)
    cols = [c for c in [label_column] if c] + ["geometry"]
    tooltip = folium.GeoJsonTooltip(fields=[label_column], aliases=[name]) if label_column else None
    display = display[cols].copy()
    if label_column:
        display[label_column] = display[label_column].map(esc)
    folium.GeoJson(
        display.to_json(),
        name=name,
        tooltip=tooltip,
        style_function=lambda _: {
            "fill": False,
            "color": color,
            "weight": weight,
            "dashArray": dash,
        },
    ).add_to(fmap)
    add_legend(fmap, None, [(color, name, "dash" if dash else "line")])
    if label_column and label_level:
        add_labels(fmap, areas, label_column, level=label_level)
    return fmap


def add_marked_areas(
    fmap: folium.Map,
    geojson: str,
    *,
    name: str,
    color: str,
    fill: str,
    tooltip: str | folium.GeoJsonTooltip,
    legend: str,
) -> folium.Map:
    """Draw areas to point out (hotspots, units that change beat): a thick edge, a light fill.

    `geojson` is the areas as GeoJSON text (in display coordinates); `legend` labels them in
    the map's legend.
    """
    folium.GeoJson(
        geojson,
        name=name,
        style_function=lambda _: {
            "color": color,
            "weight": 2.5,
            "fillColor": fill,
            "fillOpacity": 0.25,
        },
        tooltip=tooltip,
    ).add_to(fmap)
    add_legend(fmap, None, [(fill, legend, "box")])
    return fmap


def station_icon(label: str = "P", color: str = "#08306b") -> folium.DivIcon:
    """Return a badge icon drawn in HTML/CSS (no image files, so it renders offline)."""
    style = (
        f"background:{color};color:#fff;border:2px solid #fff;border-radius:50%;width:26px;"
        "height:26px;line-height:22px;text-align:center;font:bold 14px sans-serif;"
        "box-shadow:0 0 3px #000"
    )
    return folium.DivIcon(
        html=f'<div style="{style}">{esc(label)}</div>',
        icon_size=(26, 26),
        icon_anchor=(13, 13),
        class_name="station-icon",
    )


def add_stations(
    fmap: folium.Map, stations: gpd.GeoDataFrame, *, name: str = "Stations"
) -> folium.Map:
    """Mark police stations with escaped popups (name, address, phone)."""
    group = folium.FeatureGroup(name=name)
    for _, row in to_display(stations, simplify_m=0).iterrows():
        popup = (
            f"<b>{esc(row.get(schema.STATION_NAME))} station</b><br>"
            f"{esc(row.get(schema.STATION_ADDRESS))}<br>"
            f"Phone: {esc(row.get(schema.STATION_PHONE)) or 'not listed'}"
        )
        folium.Marker(
            [row.geometry.y, row.geometry.x],
            popup=folium.Popup(popup, max_width=260),
            tooltip=esc(f"{row.get(schema.STATION_NAME)} station"),
            icon=station_icon(),
        ).add_to(group)
    group.add_to(fmap)
    add_legend(fmap, None, [("#08306b", "Police station", "badge")])
    return fmap


def add_pin(fmap: folium.Map, lat: float, lon: float, label: str) -> folium.Map:
    """Mark a found address with a pin (drawn in HTML/CSS, so it renders offline)."""
    style = (
        "width:18px;height:18px;border-radius:50% 50% 50% 0;background:#000;"
        "border:3px solid #fff;transform:rotate(-45deg);box-shadow:0 0 4px #000"
    )
    folium.Marker(
        [lat, lon],
        tooltip=esc(f"Found: {label}"),
        icon=folium.DivIcon(
            html=f'<div style="{style}" title="{esc(label)}"></div>',
            icon_size=(24, 24),
            icon_anchor=(12, 24),
            class_name="found-pin",
        ),
    ).add_to(fmap)
    add_legend(fmap, None, [("#000000", "Address found", "pin")])
    return fmap


def add_incidents(
    fmap: folium.Map,
    incidents: pd.DataFrame,
    *,
    max_markers: int = MAX_MARKERS,
    cell_size_m: float = AGGREGATE_CELL_M,
    name: str = "Incidents",
) -> folium.Map:
    """Draw incidents: clustered markers up to `max_markers`, grid-cell counts above.

    Parameters
    ----------
    incidents
        Canonical incidents with ``lon``/``lat`` and ``x``/``y``.
    max_markers
        Largest number of individual markers drawn; more points are aggregated.
    cell_size_m
        Size of the aggregation cells (analysis CRS metres).
    """
    located = incidents.dropna(subset=[schema.LON, schema.LAT])
    if len(located) <= max_markers:
        cluster = MarkerCluster(name=name)
        for row in located.itertuples(index=False):
            tip = f"{esc(getattr(row, schema.OFFENSE, ''))} — {esc(getattr(row, schema.BLOCK, ''))}"
            folium.CircleMarker(
                [getattr(row, schema.LAT), getattr(row, schema.LON)],
                radius=4,
                weight=1,
                fill=True,
                fill_opacity=0.8,
                tooltip=tip,
            ).add_to(cluster)
        cluster.add_to(fmap)
        add_legend(
            fmap,
            None,
            [("#3388ff", "Incident (a numbered bubble groups nearby incidents)", "circle")],
        )
        return fmap
    while True:  # coarsen until the map carries at most MAX_CELLS circles
        cells = (
            located.assign(
                _cx=np.floor(located[schema.X] / cell_size_m),
                _cy=np.floor(located[schema.Y] / cell_size_m),
            )
            .groupby(["_cx", "_cy"])
            .agg(n=(schema.LON, "size"), lon=(schema.LON, "mean"), lat=(schema.LAT, "mean"))
            .reset_index()
        )
        if len(cells) <= MAX_CELLS:
            break
        cell_size_m *= 2
    group = folium.FeatureGroup(name=f"{name} ({cell_size_m:.0f} m cells)")
    vmax = float(cells["n"].max())
    for row in cells.itertuples(index=False):
        folium.CircleMarker(
            [row.lat, row.lon],
            radius=3 + 9 * np.sqrt(row.n / vmax),
            weight=0,
            fill=True,
            fill_color="#b30000",
            fill_opacity=0.55,
            tooltip=f"{int(row.n)} incidents",
        ).add_to(group)
    group.add_to(fmap)
    largest = int(vmax)
    add_legend(
        fmap,
        f"{name}: {len(located):,} incidents in {cell_size_m:.0f} m cells",
        [
            ("#b30000", f"circle area grows with the count (largest {largest:,})", "circle"),
        ],
    )
    return fmap


_SWATCH = {
    "box": "display:inline-block;width:18px;height:14px;border:1px solid #333;background:{c}",
    "line": "display:inline-block;width:18px;height:0;border-top:3px solid {c};margin-bottom:4px",
    "dash": "display:inline-block;width:18px;height:0;border-top:3px dashed {c};margin-bottom:4px",
    "circle": "display:inline-block;width:12px;height:12px;border-radius:50%;background:{c};"
    "opacity:.8",
    "badge": "display:inline-block;width:16px;height:16px;border-radius:50%;background:{c};"
    "color:#fff;font:bold 11px sans-serif;text-align:center;line-height:16px",
    "pin": "display:inline-block;width:11px;height:11px;border-radius:50% 50% 50% 0;"
    "background:{c};transform:rotate(-45deg)",
}


class MapControl(MacroElement):
    """A box of fixed HTML in a corner of a Leaflet map, drawn by the map's script (offline).

    Parameters
    ----------
    html
        The box's content, already escaped.
    name
        The element's name in the page's script.
    position
        The corner: ``topleft``, ``topright``, ``bottomleft`` or ``bottomright``.
    css_class
        The box's class.
    aria_label
        With a label, the box is a labelled region for screen readers and clicks in it do not
        reach the map.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function() {
            var legend = L.control({position: {{ this.position|tojson }}});
            legend.onAdd = function() {
                var box = L.DomUtil.create("div", {{ this.css_class|tojson }});
                {%- if this.aria_label %}
                box.setAttribute("role", "region");
                box.setAttribute("aria-label", {{ this.aria_label|tojson }});
                {%- endif %}
                box.innerHTML = {{ this.html_json }};
                {%- if this.aria_label %}
                L.DomEvent.disableClickPropagation(box);
                {%- endif %}
                return box;
            };
            legend.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        html: str,
        *,
        name: str,
        position: str,
        css_class: str,
        aria_label: str | None = None,
    ) -> None:
        super().__init__()
        self._name = name
        self._html = html
        self.position = position
        self.css_class = css_class
        self.aria_label = aria_label

    @property
    def html(self) -> str:
        """The box's content."""
        return self._html

    @property
    def html_json(self) -> str:
        """The content as a JavaScript string literal."""
        # JSON string inside a <script>: no "</" may close the script element
        return json.dumps(self.html).replace("</", "<\\/")


class _Legend(MapControl):
    """One legend box per map, bottom right; sections are added by the layers that draw."""

    def __init__(self) -> None:
        super().__init__(
            "",
            name="BeatwiseLegend",
            position="bottomright",
            css_class="bw-legend",
            aria_label="Map legend",
        )
        self.sections: list[tuple[str | None, list[tuple[str, str, str]]]] = []

    @property
    def html(self) -> str:
        """The legend's title, then each section's heading and rows."""
        parts = ['<div class="bw-legend-title">Legend</div>']
        for title, items in self.sections:
            if title:
                parts.append(f'<div class="bw-legend-head">{esc(title)}</div>')
            for color, label, shape in items:
                style = _SWATCH.get(shape, _SWATCH["box"]).format(c=esc(color))
                badge = "P" if shape == "badge" else ""
                parts.append(
                    f'<div class="bw-legend-row"><span style="{style}" aria-hidden="true">'
                    f"{badge}</span> {esc(label)}</div>"
                )
        return "".join(parts)


def _legend_of(fmap: folium.Map) -> _Legend:
    for child in fmap._children.values():
        if isinstance(child, _Legend):
            return child
    legend = _Legend()
    fmap.add_child(legend)
    return legend


def add_legend(
    fmap: folium.Map, title: str | None, items: Sequence[tuple[str, str, str]]
) -> folium.Map:
    """Add a section to the map's legend: `title` (or None) and ``(colour, label, shape)`` items.

    `shape` is one of ``box`` (a fill), ``line``, ``dash``, ``circle``, ``badge`` or ``pin``.
    Text is escaped. Drawn by Leaflet in the page (works offline).
    """
    legend = _legend_of(fmap)
    entry = (title, [(str(c), str(label), str(shape)) for c, label, shape in items])
    if entry not in legend.sections:
        legend.sections.append(entry)
    return fmap


def add_labels(
    fmap: folium.Map,
    areas: gpd.GeoDataFrame,
    column: str,
    *,
    level: str = "beat",
    prefix: str = "",
) -> folium.Map:
    """Write each area's `column` (escaped) at a point inside it, shown from its level's zoom.

    Parameters
    ----------
    areas
        Polygons in any CRS.
    level
        ``beat``, ``sector`` or ``district`` (:data:`LABEL_MIN_ZOOM`): the labels appear from
        that zoom on, so a city-wide view is not covered in overlapping numbers.
    prefix
        Text before the id (e.g. ``"Sector "``).
    """
    display = to_display(areas, simplify_m=0)
    group = folium.FeatureGroup(name=f"{level.title()} labels", control=False)
    for text, point in zip(
        display[column].astype(str), display.geometry.representative_point(), strict=True
    ):
        folium.Marker(
            [point.y, point.x],
            icon=folium.DivIcon(
                html=f'<div class="bw-label-text">{esc(prefix)}{esc(text)}</div>',
                icon_size=(0, 0),
                class_name=f"bw-label bw-label-{esc(level)}",
            ),
            interactive=False,
            keyboard=False,
        ).add_to(group)
    group.add_to(fmap)
    return fmap


class _MapStyle(MacroElement):
    """Label and legend CSS, zoom-dependent label levels, and the plain offline background."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function() {
            if (!document.getElementById("bw-map-style")) {
                var style = document.createElement("style");
                style.id = "bw-map-style";
                style.textContent = {{ this.css_json }};
                document.head.appendChild(style);
            }
            var map = {{ this._parent.get_name() }};
            var levels = {{ this.levels_json }};
            function show() {
                var box = map.getContainer();
                for (var level in levels) {
                    box.classList.toggle("bw-show-" + level, map.getZoom() >= levels[level]);
                }
            }
            {% if this.offline %}
            map.getContainer().classList.add("bw-offline");
            // no tile layer sets the zoom range, and marker clusters need one ("Map has no
            // maxZoom specified" stopped the whole map)
            map.setMaxZoom({{ this.max_zoom }});
            {% endif %}
            map.on("zoomend", show);
            map.whenReady(show);
        })();
        {% endmacro %}
        """
    )

    def __init__(self, *, offline: bool) -> None:
        super().__init__()
        self._name = "BeatwiseMapStyle"
        self.offline = offline
        self.max_zoom = OFFLINE_MAX_ZOOM
        self.levels_json = json.dumps(LABEL_MIN_ZOOM)
        rules = [
            ".bw-label{width:0;height:0;}",
            ".bw-label-text{display:none;transform:translate(-50%,-50%);white-space:nowrap;"
            "font:bold 13px Arial,sans-serif;color:#111;text-shadow:0 0 3px #fff,0 0 3px #fff,"
            "0 0 2px #fff;pointer-events:none;}",
            ".bw-label-district .bw-label-text{font-size:16px;}",
            ".bw-legend{background:#fff;color:#111;padding:6px 9px;border:1px solid #555;"
            "border-radius:4px;font:12px Arial,sans-serif;line-height:17px;max-width:230px;"
            "opacity:.93;}",
            ".bw-legend-title{font-weight:bold;}",
            ".bw-legend-head{font-weight:bold;margin-top:4px;}",
            ".bw-offline{background:#f2f2ef !important;}",
            ".bw-label-context .bw-context-text{display:block;font:italic bold 12px Arial,"
            "sans-serif;color:#3a3a3a;}",
        ]
        rules += [
            f".bw-show-{level} .bw-label-{level} .bw-label-text{{display:block;}}"
            for level in LABEL_MIN_ZOOM
        ]
        self.css_json = json.dumps("".join(rules))
