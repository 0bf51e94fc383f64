"""Cached loaders and map builders of the hotspots page.

Hotspots are computed by :func:`analysis.hotspots.fit_hotspots` on exactly the inputs of
``python -m analysis hotspots`` (same area selection, period, category and parameters), cached per
(store version, method, area, period, parameters). Density surfaces are aggregated to at most
``dashboard.maps.MAX_CELLS`` cells before they reach the map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st
from branca.colormap import LinearColormap

from analysis import evaluate, export, forecast, hotspots
from analysis.inputs import Period
from dashboard import data, maps
from geodata import schema

__all__ = [
    "FORECAST_COLOURS",
    "LEVELS",
    "NO_INCIDENTS",
    "ForecastRun",
    "HotspotRun",
    "add_forecast_layer",
    "area_ids",
    "evaluation_table",
    "export_files",
    "forecast_legend_html",
    "forecast_run",
    "hotspot_map",
    "hotspot_run",
    "near_repeat",
    "surface_cells",
]

#: Area levels offered by the page, with their beat-layer column.
LEVELS = {"sector": schema.SECTOR, "beat": schema.BEAT, "district": schema.DISTRICT}
#: What the page says when the area has no incident in the period.
NO_INCIDENTS = "No incidents in this period"


@dataclass
class HotspotRun:
    """What the page shows: polygons, their table, the surface cells and a summary line."""

    polygons: gpd.GeoDataFrame
    table: pd.DataFrame
    surface: gpd.GeoDataFrame
    area: gpd.GeoDataFrame
    n_incidents: int
    summary: str


@st.cache_data(show_spinner=False)
def area_ids(root: str, token: str, level: str) -> list[str]:
    """Return the ids of the beats, sectors or districts of the store, sorted."""
    beats = data.load_beats(root, token)
    return sorted(beats[LEVELS[level]].dropna().unique())


def surface_cells(
    score: np.ndarray,
    grid: hotspots.Grid,
    *,
    crs: object,
    max_cells: int = maps.MAX_CELLS,
    floor: float = 0.05,
    how: str = "mean",
) -> gpd.GeoDataFrame:
    """Return the cells of a surface worth drawing, coarsened until at most `max_cells` remain.

    Cells whose value is under `floor` times the maximum are dropped; blocks of f x f cells are
    merged (mean or max) with f = 1, 2, 3, ... until the rest fit.
    """
    values = np.asarray(score, dtype=float)
    factor = 1
    while True:
        rows, cols = values.shape[0] // factor, values.shape[1] // factor
        block = values[: rows * factor, : cols * factor].reshape(rows, factor, cols, factor)
        merged = block.max(axis=(1, 3)) if how == "max" else block.mean(axis=(1, 3))
        top = merged.max() if merged.size else 0.0
        keep = merged > floor * top if top > 0 else np.zeros(merged.shape, bool)
        if keep.sum() <= max_cells or rows <= 1:
            break
        factor += 1
    coarse = hotspots.Grid(grid.x0, grid.y0, grid.cell_size_m * factor, rows, cols)
    cells = coarse.cells(keep, crs)
    cells["value"] = merged[cells["row"], cells["col"]]
    return cells


@st.cache_data(show_spinner="Finding hotspots...", max_entries=64)
def hotspot_run(
    root: str,
    token: str,
    method: str,
    level: str,
    area_id: str,
    period: Period,
    category: str | None,
    params: tuple[tuple[str, object], ...] = (),
) -> HotspotRun:
    """Return the hotspots of an area and period, as the CLI computes them.

    An area with no located incident in the period gets an empty run (``n_incidents`` 0).
    """
    incidents = data.load_incidents(root, token, hotspots.HOTSPOT_COLUMNS, period)
    beats = data.load_beats(root, token)
    located, area = hotspots.area_incidents(
        incidents, beats, level=data.analysis_level(level), area_id=area_id, category=category
    )
    if located.empty:
        nothing = gpd.GeoDataFrame(geometry=gpd.GeoSeries(crs=area.crs))
        return HotspotRun(nothing, pd.DataFrame(), nothing, area, 0, NO_INCIDENTS)
    options: dict[str, Any] = dict(params)  # keyword arguments of fit_hotspots
    if method in {"gistar", "dbscan"}:  # both measure the area against the jurisdiction
        options["reference"] = hotspots.area_incidents(
            incidents, beats, level=None, area_id=None, category=category
        )
    model, polygons = hotspots.fit_hotspots(located, area, method, **options)
    if isinstance(model, hotspots.KDEHotspots):
        surface = surface_cells(model.density_, model.grid_, crs=area.crs)
    elif isinstance(model, hotspots.GiStarHotspots):
        z, grid = _crop(
            np.where(model.study_, np.clip(model.z_, 0, None), 0.0),
            model.grid_,
            area.total_bounds,
        )
        surface = surface_cells(
            z,
            grid,
            crs=area.crs,
            floor=0.0,
            how="max",
        )
    else:
        surface = gpd.GeoDataFrame({"value": []}, geometry=gpd.GeoSeries(crs=area.crs))
    fitted = {
        k.rstrip("_"): getattr(model, k)
        for k in (
            "min_samples_",
            "bandwidth_m_",
            "cell_size_m_",
            "min_cluster_size_",
            "n_noise_",
            "exact_",
        )
        if hasattr(model, k)
    }
    described = ", ".join(
        f"{k.replace('_', ' ')} {v:.0f}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}"
        for k, v in fitted.items()
    )
    noun = "hotspot" if len(polygons) == 1 else "hotspots"
    summary = f"{len(polygons)} {noun} from {len(located):,} incidents" + (
        f" ({described})" if described else ""
    )
    summary += _cap_note(model)
    table = pd.DataFrame(polygons.drop(columns="geometry"))
    dominant = hotspots.dominant_cluster_note(table, len(located))
    if dominant:
        summary += f". Note: {dominant}"
    return HotspotRun(polygons, table, surface, area, len(located), summary)


def _cap_note(model: object) -> str:
    """Return what the hotspot area cap changed (HDBSCAN), in words, or ""."""
    split, dropped = getattr(model, "n_split_", 0), getattr(model, "n_dropped_", 0)
    if not split and not dropped:
        return ""
    share = getattr(model, "max_area_share", None) or 0.0
    cap = f"{getattr(model, 'max_area_km2_', 0.0):.2f} km² ({share:.0%} of the area)"
    parts = []
    if split:
        parts.append(
            f"{split} cluster{'s' if split > 1 else ''} larger than {cap} "
            f"{'were' if split > 1 else 'was'} replaced by the denser "
            "clusters inside"
        )
    if dropped:
        parts.append(
            f"{dropped} cluster{'s' if dropped > 1 else ''} larger than {cap} with no denser "
            f"part {'were' if dropped > 1 else 'was'} left out"
        )
    return "; " + "; ".join(parts)


#: Most hotspot polygons drawn on one map (the table lists them all).
MAX_HOTSPOTS = 500


def _crop(
    score: np.ndarray, grid: hotspots.Grid, bounds: np.ndarray
) -> tuple[np.ndarray, hotspots.Grid]:
    """Return the part of a grid surface that covers `bounds` (xmin, ymin, xmax, ymax)."""
    c = grid.cell_size_m
    c0 = max(0, int((bounds[0] - grid.x0) // c))
    r0 = max(0, int((bounds[1] - grid.y0) // c))
    c1 = min(grid.n_cols, int((bounds[2] - grid.x0) // c) + 1)
    r1 = min(grid.n_rows, int((bounds[3] - grid.y0) // c) + 1)
    sub = hotspots.Grid(grid.x0 + c0 * c, grid.y0 + r0 * c, c, r1 - r0, c1 - c0)
    return score[r0:r1, c0:c1], sub


def _colour(values: pd.Series, colors: tuple[str, ...]) -> list[str]:
    vmax = float(values.max()) if len(values) and values.max() > 0 else 1.0
    cmap = LinearColormap(list(colors), vmin=0, vmax=vmax)
    return [cmap(float(v)) for v in values]


def hotspot_map(
    run: HotspotRun,
    *,
    label: str,
    forecast_layer: ForecastRun | None = None,
    context: maps.Context | None = None,
) -> folium.Map:
    """Return the map: the area's beats, the surface cells (if any) and the hotspot polygons.

    With `forecast_layer`, its top cells are drawn too, under the hotspots, with a legend. With
    `context` (districts, stations, the district word), a map without tiles gets named district
    outlines and stations (:func:`dashboard.maps.add_context`).
    """
    fmap = maps.base_map(run.area, zoom=13)
    if context is not None:
        districts, stations, word = context
        maps.add_context(fmap, districts, stations, word=word)
    if forecast_layer is not None:
        add_forecast_layer(fmap, forecast_layer)
    maps.add_outlines(
        fmap, run.area, name="Beats", color="#525252", weight=1.2, label_column=schema.BEAT
    )
    if len(run.surface):
        cells = maps.to_display(run.surface, simplify_m=0)
        cells["_fill"] = _colour(cells["value"], ("#ffffb2", "#fd8d3c", "#bd0026"))
        cells["_tip"] = [f"{maps.esc(label)}: {v:,.1f}" for v in cells["value"]]
        folium.GeoJson(
            cells[["_fill", "_tip", "geometry"]].to_json(),
            name=label,
            style_function=lambda f: {
                "fillColor": f["properties"]["_fill"],
                "weight": 0,
                "fillOpacity": 0.55,
            },
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False),
        ).add_to(fmap)
        low, high = float(cells["value"].min()), float(cells["value"].max())
        maps.add_legend(
            fmap,
            f"Surface: {label}",
            [
                ("#ffffb2", f"low ({low:,.1f})", "box"),
                ("#fd8d3c", f"middle ({(low + high) / 2:,.1f})", "box"),
                ("#bd0026", f"high ({high:,.1f})", "box"),
            ],
        )
    if len(run.polygons):
        # a bounded map whatever the parameters: at most MAX_HOTSPOTS polygons, the largest
        ranked = run.polygons
        if len(ranked) > MAX_HOTSPOTS:
            key = next(
                c for c in ("n_incidents", "density_per_km2", "z", "area_km2") if c in ranked
            )
            ranked = ranked.sort_values(key, ascending=False, kind="stable").head(MAX_HOTSPOTS)
        shown = maps.to_display(ranked, simplify_m=0)
        columns = [c for c in shown.columns if c != "geometry"]
        fields = [(c, c) for c in columns]
        shown["_tip"] = [maps.tooltip_html(row, fields) for _, row in shown.iterrows()]
        maps.add_marked_areas(
            fmap,
            shown[["_tip", "geometry"]].to_json(),
            name="Hotspots",
            color="#67000d",
            fill="#ef3b2c",
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False),
            legend="Hotspot (outlined area)",
        )
    folium.LayerControl(collapsed=True).add_to(fmap)
    return fmap


@st.cache_data(show_spinner=False, max_entries=8)
def evaluation_table(
    root: str,
    token: str,
    methods: tuple[str, ...],
    _progress: Callable[[float, str], None] | None = None,
) -> pd.DataFrame:
    """Return the backtest summary of `methods` on the whole store (as ``analysis evaluate``)."""
    incidents = data.load_incidents(root, token, (schema.X, schema.Y, schema.OCCURRED_AT))
    results = evaluate.rolling_backtest(
        incidents, data.load_beats(root, token), methods=methods, progress=_progress
    )
    summary = evaluate.summarize_backtest(results)
    keep = ["segment", "horizon", "coverage", "method", "cutoffs"]
    for m in ("hit_rate", "pai", "pei_star", "rri"):
        keep += [f"{m}_mean", f"{m}_sd"]
    return summary[keep]


@st.cache_data(show_spinner="Counting near-repeat pairs...", max_entries=32)
def near_repeat(
    root: str, token: str, level: str, area_id: str, period: Period, category: str | None
) -> pd.DataFrame:
    """Return the Knox near-repeat table of an area and period (99 shuffles, seed 0)."""
    incidents = data.load_incidents(root, token, hotspots.HOTSPOT_COLUMNS, period)
    located, _ = hotspots.area_incidents(
        incidents,
        data.load_beats(root, token),
        level=data.analysis_level(level),
        area_id=area_id,
        category=category,
    )
    return hotspots.knox_table(located, permutations=99, random_state=0)


#: Fill of the forecast's top cells by share of the city's study cells (hottest first).
FORECAST_COLOURS = {0.01: "#54278f", 0.02: "#807dba", 0.05: "#bcbddc"}


@dataclass
class ForecastRun:
    """A forecast for the page: the area's top cells, the method, the period and its total."""

    cells: gpd.GeoDataFrame
    method: str
    first_day: date
    horizon_days: int
    expected_total: float
    summary: str


@st.cache_data(show_spinner="Forecasting...", max_entries=16)
def forecast_run(
    root: str,
    token: str,
    method: str,
    level: str,
    area_id: str,
    first_day: date,
    horizon_days: int,
) -> ForecastRun:
    """Return the forecast from `first_day` (fitted on the year before it), as the CLI makes it.

    The cells are the city's study cells whose centre is in the area; ``top_share`` ranks them
    among the whole city's cells (``python -m analysis forecast --method M --LEVEL ID``).
    """
    incidents = data.load_incidents(
        root,
        token,
        (schema.X, schema.Y, schema.OCCURRED_AT),
        Period(first_day - timedelta(days=365 + 91), first_day - timedelta(days=1)),
    )
    beats = data.load_beats(root, token)
    located = incidents.dropna(subset=[schema.X, schema.Y])
    if located.empty:
        msg = "no located incidents in the year before the forecast"
        raise ValueError(msg)
    _, cells = forecast.forecast_cells(
        located, beats, method, horizon_days=horizon_days, cutoff=pd.Timestamp(first_day)
    )
    area = beats[beats[LEVELS[level]] == area_id]
    inside = cells.geometry.representative_point().within(area.union_all())
    cells = cells[inside.to_numpy()].reset_index(drop=True)
    cells["first_day"] = first_day.isoformat()
    cells["horizon_days"] = horizon_days
    total = float(cells["expected"].sum())
    top = int(cells["top_share"].notna().sum())
    summary = (
        f"{total:,.1f} incidents expected in {level} {area_id} from {first_day} over "
        f"{horizon_days} day{'s' if horizon_days > 1 else ''}; {top} of its {len(cells):,} "
        "cells are in the city's top 5%"
    )
    return ForecastRun(cells, method, first_day, horizon_days, total, summary)


def add_forecast_layer(fmap: folium.Map, run: ForecastRun) -> folium.Map:
    """Draw the forecast's top 1/2/5% cells (purple shades, escaped tooltips) and its legend."""
    top = run.cells[run.cells["top_share"].notna()]
    if len(top):
        shown = maps.to_display(top, simplify_m=0)
        shown["_fill"] = [FORECAST_COLOURS.get(float(v), "#bcbddc") for v in shown["top_share"]]
        shown["_tip"] = [
            maps.tooltip_html(
                pd.Series(
                    {
                        "e": f"{r.expected:.2f}",
                        "r": f"{int(r.rank):,}",
                        "t": f"top {r.top_share:.0%} of the city",
                    }
                ),
                [("e", "Expected incidents"), ("r", "Rank in the city"), ("t", "Cell")],
            )
            for r in shown.itertuples()
        ]
        folium.GeoJson(
            shown[["_fill", "_tip", "geometry"]].to_json(),
            name=f"Forecast ({run.method}, next {run.horizon_days} d)",
            style_function=lambda f: {
                "fillColor": f["properties"]["_fill"],
                "color": "#3f007d",
                "weight": 0.5,
                "fillOpacity": 0.6,
            },
            tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False),
        ).add_to(fmap)
    fmap.add_child(
        maps.MapControl(
            forecast_legend_html(run),
            name="ForecastLegend",
            position="bottomleft",
            css_class="forecast-legend",
        )
    )
    return fmap


def forecast_legend_html(run: ForecastRun) -> str:
    """Return the map legend of the forecast layer (a fixed box, text escaped)."""
    rows = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;background:{colour};'
        f"margin-right:6px;vertical-align:middle\"></span>top {share:.0%} of the city's cells</div>"
        for share, colour in FORECAST_COLOURS.items()
    )
    title = maps.esc(
        f"Forecast: {run.method}, {run.first_day} + {run.horizon_days} d (expected incidents)"
    )
    return (
        '<div id="forecast-legend" style="background:white;padding:6px 8px;'
        'border:1px solid #999;font:12px sans-serif">'
        f"<b>{title}</b>{rows}</div>"
    )


def export_files(layer: gpd.GeoDataFrame, stem: str) -> dict[str, tuple[str, str, str]]:
    """Return ``{label: (text, file name, mime)}`` of a layer as GeoJSON and formula-safe CSV."""
    return {
        "GeoJSON": (export.layer_geojson(layer), f"{stem}.geojson", "application/geo+json"),
        "CSV": (export.layer_csv(layer), f"{stem}.csv", "text/csv"),
    }
