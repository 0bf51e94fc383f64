"""Folium maps: the only place geometries go to WGS84, and every label is HTML-escaped.

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
from collections.abc import Sequence

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.colormap import LinearColormap
from folium.plugins import MarkerCluster

from geodata import schema

__all__ = [
    "MAX_MARKERS",
    "SIMPLIFY_M",
    "add_incidents",
    "add_outlines",
    "add_stations",
    "base_map",
    "choropleth",
    "esc",
    "plain",
    "station_icon",
    "to_display",
    "tooltip_html",
]

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
    """Return an empty map fitted to `layer` (or centred on Chicago)."""
    fmap = folium.Map(
        location=CHICAGO_CENTER,
        zoom_start=zoom,
        tiles="OpenStreetMap",
        control_scale=True,
        prefer_canvas=True,
    )
    if layer is not None and len(layer):
        xmin, ymin, xmax, ymax = layer.to_crs(schema.WGS84).total_bounds
        fmap.fit_bounds([[ymin, xmin], [ymax, xmax]])
    return fmap


def tooltip_html(row: pd.Series, fields: Sequence[tuple[str, str]]) -> str:
    """Return an escaped ``<b>label</b>: value`` tooltip of `row`'s (column, label) `fields`."""
    return "<br>".join(f"<b>{esc(label)}</b>: {esc(row.get(col))}" for col, label in fields)


def choropleth(
    fmap: folium.Map,
    areas: gpd.GeoDataFrame,
    value: str,
    *,
    id_column: str = schema.BEAT,
    fields: Sequence[tuple[str, str]] = (),
    name: str = "Incidents",
    colors: Sequence[str] = ("#fff5eb", "#fd8d3c", "#7f2704"),
    highlight: Sequence[str] = (),
    vmax: float | None = None,
) -> folium.Map:
    """Draw `areas` coloured by `value`, with escaped tooltips built from `fields`.

    Parameters
    ----------
    fmap
        The map to draw on.
    areas
        Polygons in any CRS with `id_column` and `value`.
    value
        Numeric column that sets the colour.
    id_column
        Identifier shown first in the tooltip.
    fields
        ``(column, label)`` pairs shown in the tooltip after the id and value.
    name
        Layer name in the layer control.
    colors
        Colour ramp from low to high.
    highlight
        Ids drawn with a thick outline (e.g. the selected beat).
    vmax
        Top of the colour scale (default: the largest value), so maps drawn side by side can
        share one scale.
    """
    display = to_display(areas)
    values = pd.to_numeric(display[value], errors="coerce").fillna(0)
    if vmax is None or vmax <= 0:
        vmax = float(values.max()) if len(values) and values.max() > 0 else 1.0
    # the colour scale is computed here, but drawn by the page (branca's legend needs d3 from a CDN)
    cmap = LinearColormap(list(colors), vmin=0, vmax=vmax, caption=f"{name}")
    chosen = set(highlight)
    rows = [(id_column, id_column.title()), (value, name), *fields]
    display["_tip"] = [tooltip_html(r, rows) for _, r in display.iterrows()]
    display["_fill"] = [cmap(v) for v in values]
    display["_weight"] = [3.5 if i in chosen else 0.6 for i in display[id_column]]
    keep = [id_column, "_tip", "_fill", "_weight", "geometry"]
    folium.GeoJson(
        display[keep].to_json(),
        name=name,
        style_function=lambda f: {
            "fillColor": f["properties"]["_fill"],
            "color": "#1f1f1f",
            "weight": f["properties"]["_weight"],
            "fillOpacity": 0.65,
        },
        highlight_function=lambda f: {"weight": 3, "color": "#08519c"},
        tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False),
    ).add_to(fmap)
    return fmap


def add_outlines(
    fmap: folium.Map,
    areas: gpd.GeoDataFrame,
    *,
    name: str,
    color: str = "#252525",
    weight: float = 2.0,
    label_column: str | None = None,
) -> folium.Map:
    """Draw area outlines (sectors, districts) without fill, optionally with an escaped tooltip."""
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
        style_function=lambda _: {"fill": False, "color": color, "weight": weight},
    ).add_to(fmap)
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
    return fmap
