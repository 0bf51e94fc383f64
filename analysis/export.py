"""Export map layers (forecast cells, hotspot polygons) as GeoJSON or formula-safe CSV text."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from geodata import schema
from geodata.errors import ParameterError
from geodata.exports import neutralize_formulas

__all__ = [
    "check_layer_path",
    "layer_csv",
    "layer_geojson",
    "write_layer",
]


def _plain_times(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if column != out.geometry.name and pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].map(lambda t: t.isoformat() if pd.notna(t) else None)
    return out


def layer_geojson(layer: gpd.GeoDataFrame) -> str:
    """Return a polygon layer as GeoJSON text in WGS84 (times as ISO 8601 strings)."""
    return _plain_times(layer.to_crs(schema.WGS84)).to_json(drop_id=True)


def layer_csv(layer: gpd.GeoDataFrame) -> str:
    """Return a polygon layer as CSV text: its attributes, the centre's lon/lat and WKT (WGS84).

    Text values are neutralised (:func:`geodata.exports.neutralize_formulas`).
    """
    wgs = layer.to_crs(schema.WGS84)
    centre = layer.geometry.representative_point().to_crs(schema.WGS84)
    table = pd.DataFrame(_plain_times(wgs).drop(columns=wgs.geometry.name))
    table[schema.LON] = centre.x.round(6).to_numpy()
    table[schema.LAT] = centre.y.round(6).to_numpy()
    table["wkt"] = wgs.geometry.to_wkt(rounding_precision=6).to_numpy()
    return neutralize_formulas(table).to_csv(index=False)


def check_layer_path(path: str | Path) -> None:
    """Raise a ParameterError (``out``) unless `path` ends in ``.geojson``, ``.json``, ``.csv``."""
    if Path(path).suffix.lower() not in {".geojson", ".json", ".csv"}:
        msg = f"{str(path)!r}: use a .geojson or .csv file name"
        raise ParameterError(msg, parameter="out")


def write_layer(layer: gpd.GeoDataFrame, path: str | Path) -> None:
    """Write a polygon layer to `path`: GeoJSON (``.geojson``/``.json``) or CSV (``.csv``)."""
    check_layer_path(path)
    csv = Path(path).suffix.lower() == ".csv"
    text = layer_csv(layer) if csv else layer_geojson(layer)
    Path(path).write_text(text, encoding="utf-8")
