"""Read, normalise and check beat, district and station layers; derive sectors and neighbours."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geodata import schema
from geodata.errors import BoundaryError, InputError

if TYPE_CHECKING:
    from geodata.department import Department, Level

__all__ = [
    "BoundaryReport",
    "analysis_crs_for",
    "beat_neighbours",
    "check_beats",
    "dissolve_districts",
    "dissolve_sectors",
    "read_beats",
    "read_districts",
    "read_stations",
]

_BEAT_COLUMNS = ("beat_num", "beat", "beat_id", "beatnum", "beat_no", "name")
_SECTOR_COLUMNS = ("sector", "sector_id", "sector_num", "sect")
_DISTRICT_COLUMNS = (
    "district",
    "dist_num",
    "district_id",
    "precinct",
    "precinct_id",
    "dist",
    "district_num",
    "area",
    "division",
)
_DISTRICT_NAME_COLUMNS = ("dist_label", "district_name", "precinct_name", "label", "name")


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


def _find(columns: list[str], candidates: tuple[str, ...], explicit: str | None) -> str | None:
    if explicit is not None:
        return explicit
    by_norm = {_norm(c): c for c in columns}
    for candidate in candidates:
        if candidate in by_norm:
            return by_norm[candidate]
    return None


def _read_layer(path: str | Path, crs: str | None = None) -> gpd.GeoDataFrame:
    """Read a polygon or point layer; `crs` is its CRS when the file records none."""
    import pyogrio.errors  # here: loading GDAL costs every importer of this module 0.1 s

    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such file"
        raise InputError(msg, path=str(path))
    try:
        if path.suffix.lower() in {".parquet", ".geoparquet"}:
            layer = gpd.read_parquet(path)
        else:
            layer = gpd.read_file(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as err:
        msg = f"{path}: cannot read the boundary layer: {err}"
        raise InputError(msg, path=str(path)) from err
    if layer.crs is None and crs:
        try:
            return layer.set_crs(crs)
        except pyproj.exceptions.CRSError as err:
            msg = f"{path}: {crs!r} is not a CRS ({err})"
            raise InputError(msg, path=str(path)) from err
    if layer.crs is None:
        msg = f"{path}: the boundary layer has no CRS (its coordinate system is not recorded)"
        if path.suffix.lower() == ".shp":
            msg += f"; a shapefile keeps it in {path.with_suffix('.prj').name}, next to it"
        msg += (
            "; save the layer again with its coordinate system (e.g. from QGIS), or name it: "
            "crs under [beats] in the department profile, --beats-crs for the ingest command, "
            "--crs for check-beats"
        )
        raise BoundaryError(msg)
    return layer


def _require_polygons(layer: gpd.GeoDataFrame, path: str | Path, kind: str) -> None:
    """Raise BoundaryError unless `layer` has features, each with a polygon geometry."""
    if len(layer) == 0:
        msg = f"{path}: the {kind} layer has no features"
        raise BoundaryError(msg)
    geometry = layer.geometry
    missing = geometry.isna().to_numpy() | geometry.is_empty.to_numpy(dtype=bool, na_value=True)
    if missing.any():
        rows = (np.flatnonzero(missing) + 1).tolist()
        msg = (
            f"{path}: {len(rows)} feature(s) of the {kind} layer have no geometry "
            f"(features {rows[:10]}); nothing was stored"
        )
        raise BoundaryError(msg)
    kinds = sorted(set(geometry.geom_type) - {"Polygon", "MultiPolygon"})
    if kinds:
        msg = (
            f"{path}: the {kind} layer holds {', '.join(kinds)} geometries; {kind}s must be "
            "polygons (is this the right file?)"
        )
        raise BoundaryError(msg)


def _id_width(values: pd.Series) -> int:
    text = values.dropna().astype(str).str.strip()
    digits = text[text.str.fullmatch(r"\d+(\.0+)?")]
    if digits.empty:
        return 0
    return int(digits.map(lambda s: len(str(int(float(s))))).max())


def analysis_crs_for(layer: gpd.GeoDataFrame, department: Department | None = None) -> str:
    """Return the projected CRS (metres) to analyse `layer` in.

    The department's ``analysis_crs`` when its profile sets one; otherwise the NAD83 UTM zone
    of the layer's centroid (pyproj's ``estimate_utm_crs``), e.g. UTM 10N for Seattle; outside
    North America the WGS 84 UTM zone.
    """
    if department is not None and department.analysis_crs:
        return department.analysis_crs
    lonlat = layer.to_crs(schema.WGS84)
    try:
        crs = lonlat.estimate_utm_crs(datum_name="NAD83")
    except RuntimeError:  # outside North America: the WGS 84 UTM zone
        crs = lonlat.estimate_utm_crs()
    return f"EPSG:{crs.to_epsg()}"


def _parent_from_layer(beats: gpd.GeoDataFrame, level: Level, source: str | Path) -> pd.Series:
    """Return, for each beat, the id of the `level` polygon that covers most of it."""
    if level.layer is None:  # a department profile refuses parent = 'layer' without a layer
        msg = f"{source}: the {level.singular} level is found by a layer, but names no layer file"
        raise InputError(msg, path=str(source))
    layer = _read_layer(level.layer)
    columns = [c for c in layer.columns if c != layer.geometry.name]
    id_col = level.layer_column or _find(columns, _DISTRICT_COLUMNS + _SECTOR_COLUMNS, None)
    if id_col is None or id_col not in layer.columns:
        msg = f"{level.layer}: no id column for the {level.singular} layer; columns: {columns}"
        raise InputError(msg, path=str(level.layer), column=level.layer_column)
    crs = beats.estimate_utm_crs() if not beats.crs.is_projected else beats.crs
    parents = gpd.GeoDataFrame(
        {"_parent": [level.normalize(v) for v in layer[id_col]]},
        geometry=layer.geometry.values,
        crs=layer.crs,
    ).to_crs(crs)
    pieces = gpd.overlay(
        beats[["_row", "geometry"]].to_crs(crs), parents, how="intersection", keep_geom_type=True
    )
    if pieces.empty:
        msg = f"{source}: no beat overlaps any polygon of {level.layer}"
        raise BoundaryError(msg)
    pieces["_area"] = pieces.geometry.area
    best = pieces.sort_values("_area", ascending=False).drop_duplicates("_row")
    return best.set_index("_row")["_parent"].reindex(beats["_row"]).astype("string").to_numpy()


def _parent_ids(
    layer: gpd.GeoDataFrame,
    beats: gpd.GeoDataFrame,
    level: Level,
    path: str | Path,
) -> pd.Series:
    """Return the id at `level` of every beat of `beats`, found as the profile says."""
    if level.parent == "prefix":
        return beats[schema.BEAT].str.slice(0, level.length).astype("string")
    if level.parent == "layer":
        return pd.Series(_parent_from_layer(beats, level, path), index=beats.index)
    columns = [c for c in layer.columns if c != layer.geometry.name]
    if level.column is None:  # not declared: detect it, as without a profile
        candidates = _SECTOR_COLUMNS if level.key == schema.SECTOR else _DISTRICT_COLUMNS
        found = _find(columns, candidates, None)
        if found is None:
            return pd.Series(pd.NA, index=beats.index, dtype="string")
        return pd.Series([level.normalize(v) for v in layer[found]], index=beats.index)
    if level.column not in layer.columns:
        msg = (
            f"{path}: the {level.singular} column {level.column!r} named by the department "
            f"profile is not in the beat layer; columns: {columns}"
        )
        raise InputError(msg, path=str(path), column=level.column)
    return pd.Series([level.normalize(v) for v in layer[level.column]], index=beats.index)


def read_beats(
    path: str | Path,
    *,
    beat_column: str | None = None,
    sector_column: str | None = None,
    district_column: str | None = None,
    analysis_crs: str | None = None,
    department: Department | None = None,
    layer_crs: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a beat layer into canonical columns ``beat``, ``sector``, ``district``, ``geometry``.

    With a `department`, ids are normalised by its profile and each parent level is found as
    the profile says (a beat-layer column, a polygon layer or a prefix of the beat id). Without
    one, columns are auto-detected and numeric ids are zero-padded to the widest id of the
    layer. A sector number that repeats across districts (Chicago's sector 1 of every district)
    is prefixed with its district, so Chicago beat 1713 is in sector ``171`` of district ``17``.
    A beat drawn in several pieces becomes one row with a MultiPolygon; one id given to pieces
    with different parents is kept in ``attrs["conflicting_ids"]`` (see :func:`check_beats`).

    Parameters
    ----------
    path
        GeoJSON, GeoPackage, Shapefile or GeoParquet of beat polygons.
    beat_column, sector_column, district_column
        Source columns; auto-detected (``BEAT_NUM``/``beat``, ``SECTOR``, ``DISTRICT``/
        ``precinct``...) when None.
    analysis_crs
        Projected CRS in metres for the result; None: the department's, else the layer's UTM
        zone.
    department
        The department profile whose hierarchy and id rules apply.
    layer_crs
        The layer's CRS when the file records none (default: the profile's ``[beats] crs``).

    Returns
    -------
    GeoDataFrame
        One row per beat, sorted by beat id, in `analysis_crs`.

    Raises
    ------
    InputError
        If the file cannot be read or no beat column can be found.
    """
    if layer_crs is None and department is not None:
        layer_crs = department.beats_crs
    layer = _read_layer(path, layer_crs)
    _require_polygons(layer, path, "beat")
    columns = [c for c in layer.columns if c != layer.geometry.name]
    beat_col: str | None
    if department is not None:
        beats = _beats_by_profile(layer, department, path, beat_column)
        beat_col = department.beat_column or beat_column or schema.BEAT
        qualify = department.has_level(schema.SECTOR) and department.level(schema.SECTOR).qualify
    else:
        beat_col = _find(columns, _BEAT_COLUMNS, beat_column)
        sector_col = _find(columns, _SECTOR_COLUMNS, sector_column)
        district_col = _find(columns, _DISTRICT_COLUMNS, district_column)
        if beat_col is None or beat_col not in layer.columns:
            msg = (
                f"{path}: no beat id column found (looked for {_BEAT_COLUMNS}); columns: {columns}"
            )
            raise InputError(msg, path=str(path), column="beat")
        district_width = _id_width(layer[district_col]) if district_col else 0
        beat_width = _id_width(layer[beat_col])
        beats = gpd.GeoDataFrame(
            {
                schema.BEAT: [schema.normalize_id(v, beat_width) for v in layer[beat_col]],
                schema.DISTRICT: [
                    schema.normalize_id(v, district_width) for v in layer[district_col]
                ]
                if district_col
                else None,
                schema.SECTOR: [schema.normalize_id(v) for v in layer[sector_col]]
                if sector_col
                else None,
            },
            geometry=layer.geometry.values,
            crs=layer.crs,
        )
        qualify = False
    for column in (schema.BEAT, schema.SECTOR, schema.DISTRICT):
        beats[column] = beats[column].astype("string")
    sectors = beats.dropna(subset=[schema.SECTOR, schema.DISTRICT])
    repeats = len(sectors) and sectors.groupby(schema.SECTOR)[schema.DISTRICT].nunique().max() > 1
    if qualify or repeats:
        beats[schema.SECTOR] = beats[schema.DISTRICT] + beats[schema.SECTOR]
    if beats[schema.BEAT].isna().any():
        rows = (np.flatnonzero(beats[schema.BEAT].isna()) + 1).tolist()
        msg = f"{path}: features {rows} have no beat id in column {beat_col!r}"
        raise InputError(msg, path=str(path), line=rows[0], column=beat_col)
    conflicts = _conflicting_ids(beats)
    target = analysis_crs or analysis_crs_for(beats, department)
    beats = beats.to_crs(target)
    beats = beats.dissolve(by=schema.BEAT, aggfunc="first", as_index=False)
    beats.attrs["conflicting_ids"] = conflicts
    beats = beats[[schema.BEAT, schema.SECTOR, schema.DISTRICT, "geometry"]]
    for column in (schema.BEAT, schema.SECTOR, schema.DISTRICT):
        beats[column] = beats[column].astype("string")
    beats.attrs["source"] = str(path)
    beats.attrs["pieces"] = len(layer)
    return beats.sort_values(schema.BEAT).reset_index(drop=True)


def _beats_by_profile(
    layer: gpd.GeoDataFrame, department: Department, path: str | Path, beat_column: str | None
) -> gpd.GeoDataFrame:
    """Return the canonical beat columns of `layer` as `department`'s profile declares them."""
    columns = [c for c in layer.columns if c != layer.geometry.name]
    beat_col = beat_column or department.beat_column or _find(columns, _BEAT_COLUMNS, None)
    if beat_col is None or beat_col not in layer.columns:
        msg = (
            f"{path}: the beat id column {beat_col!r} of {department.name}'s profile is not in "
            f"the beat layer; columns: {columns}"
        )
        raise InputError(msg, path=str(path), column=beat_col or "beat")
    beats = gpd.GeoDataFrame(
        {
            "_row": np.arange(len(layer)),
            schema.BEAT: department.normalize_ids(schema.BEAT, layer[beat_col]).to_numpy(),
        },
        geometry=layer.geometry.values,
        crs=layer.crs,
    )
    # the top level first: a prefix rule of the sector may need the district
    for key in (schema.DISTRICT, schema.SECTOR):
        if department.has_level(key):
            beats[key] = _parent_ids(layer, beats, department.level(key), path)
        else:
            beats[key] = pd.Series(pd.NA, index=beats.index, dtype="string")
    return beats.drop(columns="_row")


def _conflicting_ids(beats: gpd.GeoDataFrame) -> list[dict[str, object]]:
    """Return beat ids given to several features with different sectors or districts."""
    parents = beats[[schema.BEAT, schema.SECTOR, schema.DISTRICT]].astype(object)
    parents = parents.fillna("")
    distinct = parents.drop_duplicates()
    counts = distinct.groupby(schema.BEAT).size()
    out = []
    for beat in counts[counts > 1].index:
        rows = distinct[distinct[schema.BEAT] == beat]
        out.append(
            {
                "beat": beat,
                "sectors": sorted(set(rows[schema.SECTOR]) - {""}),
                "districts": sorted(set(rows[schema.DISTRICT]) - {""}),
            }
        )
    return out


def read_districts(
    path: str | Path,
    *,
    district_column: str | None = None,
    name_column: str | None = None,
    width: int | None = None,
    analysis_crs: str | None = None,
    department: Department | None = None,
) -> gpd.GeoDataFrame:
    """Read a district (precinct) layer into ``district``, ``district_name``, ``geometry``.

    Pieces of the same district are dissolved into one row (Chicago's district 31 comes in three).

    Parameters
    ----------
    path
        The polygon layer of the department's top level.
    district_column, name_column
        Id and name columns; default the profile's, else auto-detected.
    width
        Zero-padding width of numeric ids; default the profile's, else the widest id.
    analysis_crs
        Projected CRS of the result; default the profile's, else the layer's UTM zone.
    department
        The department profile.
    """
    layer = _read_layer(path)
    _require_polygons(layer, path, "district")
    columns = [c for c in layer.columns if c != layer.geometry.name]
    level = (
        department.level(schema.DISTRICT)
        if department is not None and department.has_level(schema.DISTRICT)
        else None
    )
    if level is not None:
        district_column = district_column or level.layer_column
        name_column = name_column or level.name_column
    district_col = _find(columns, _DISTRICT_COLUMNS, district_column)
    if district_col is None or district_col not in layer.columns:
        msg = f"{path}: no district column found; columns: {columns}"
        raise InputError(msg, path=str(path), column=district_column or "district")
    name_col = name_column or _find(
        [c for c in columns if c != district_col], _DISTRICT_NAME_COLUMNS, None
    )
    if width is None:
        width = level.width if level is not None else _id_width(layer[district_col])
    districts = gpd.GeoDataFrame(
        {
            schema.DISTRICT: [schema.normalize_id(v, width) for v in layer[district_col]],
            schema.DISTRICT_NAME: layer[name_col].astype(str) if name_col else None,
        },
        geometry=layer.geometry.values,
        crs=layer.crs,
    )
    districts = districts.to_crs(analysis_crs or analysis_crs_for(districts, department))
    districts = districts.dissolve(by=schema.DISTRICT, aggfunc="first", as_index=False)
    return districts.sort_values(schema.DISTRICT).reset_index(drop=True)


def dissolve_sectors(beats: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return one polygon per sector with its district and the number and list of its beats."""
    grouped = beats.dropna(subset=[schema.SECTOR])
    sectors = grouped.dissolve(by=schema.SECTOR, aggfunc={schema.DISTRICT: "first"}, as_index=False)
    members = grouped.groupby(schema.SECTOR)[schema.BEAT].agg(list)
    sectors["beats"] = sectors[schema.SECTOR].map(members)
    sectors["n_beats"] = sectors["beats"].map(len)
    return sectors.sort_values(schema.SECTOR).reset_index(drop=True)


def dissolve_districts(beats: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return one polygon per district dissolved from the beats, with beat and sector counts."""
    grouped = beats.dropna(subset=[schema.DISTRICT])
    districts = grouped.dissolve(by=schema.DISTRICT, as_index=False)[[schema.DISTRICT, "geometry"]]
    counts = grouped.groupby(schema.DISTRICT).agg(
        n_beats=(schema.BEAT, "size"), n_sectors=(schema.SECTOR, "nunique")
    )
    return districts.merge(counts, left_on=schema.DISTRICT, right_index=True)


def beat_neighbours(beats: gpd.GeoDataFrame, *, min_shared_m: float = 10.0) -> pd.DataFrame:
    """Return pairs of beats that share a boundary of at least `min_shared_m` metres.

    Beats that only touch at a corner are not neighbours (rook contiguity). Boundaries are
    compared within 0.5 m, which absorbs digitising slivers.

    Returns
    -------
    DataFrame
        Columns ``beat``, ``neighbour``, ``shared_m``; each pair appears in both directions.
    """
    geoms = beats.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=0.5)
    keep = left < right
    left, right = left[keep], right[keep]
    # the 0.5 m buffer also catches 0.5 m of the edges leaving each end of the shared stretch
    shared = shapely.length(
        shapely.intersection(shapely.boundary(geoms[left]), shapely.buffer(geoms[right], 0.5))
    )
    shared = np.maximum(shared - 1.0, 0.0)
    ok = shared >= min_shared_m
    ids = beats[schema.BEAT].to_numpy()
    pairs = pd.DataFrame(
        {"beat": ids[left[ok]], "neighbour": ids[right[ok]], "shared_m": shared[ok]}
    )
    both = pd.concat([pairs, pairs.rename(columns={"beat": "neighbour", "neighbour": "beat"})])
    return both.sort_values(["beat", "neighbour"]).reset_index(drop=True)


@dataclass
class BoundaryReport:
    """Problems found in a beat layer; nothing is repaired."""

    n_beats: int
    invalid: pd.DataFrame = field(default_factory=pd.DataFrame)
    overlaps: pd.DataFrame = field(default_factory=pd.DataFrame)
    gaps: pd.DataFrame = field(default_factory=pd.DataFrame)
    without_sector: list[str] = field(default_factory=list)
    without_district: list[str] = field(default_factory=list)
    multipart: list[str] = field(default_factory=list)
    #: Ids given to features with different parents: ``beat``, ``sectors``, ``districts``.
    duplicate_ids: list[dict[str, object]] = field(default_factory=list)

    @property
    def is_clean(self) -> bool:
        """Return True when no invalid polygon, overlap, gap or missing sector was found."""
        return (
            self.invalid.empty
            and self.overlaps.empty
            and self.gaps.empty
            and not self.without_sector
            and not self.without_district
            and not self.duplicate_ids
        )

    def summary(self) -> dict[str, object]:
        """Return the report as JSON-ready counts and ids."""
        return {
            "n_beats": self.n_beats,
            "invalid": self.invalid.to_dict("records"),
            "overlaps": len(self.overlaps),
            "overlap_area_m2": float(self.overlaps["area_m2"].sum()) if len(self.overlaps) else 0,
            "gaps": len(self.gaps),
            "gap_area_m2": float(self.gaps["area_m2"].sum()) if len(self.gaps) else 0.0,
            "without_sector": self.without_sector,
            "without_district": self.without_district,
            "multipart": self.multipart,
            "duplicate_ids": self.duplicate_ids,
        }


def check_beats(
    beats: gpd.GeoDataFrame, *, min_overlap_m2: float = 1.0, min_gap_m2: float = 1.0
) -> BoundaryReport:
    """Report a beat layer's problems; nothing is repaired.

    Invalid polygons, overlaps, gaps, beats without sector or district, and ids that
    :func:`read_beats` found on features with different parents (``duplicate_ids``).

    Parameters
    ----------
    beats
        Canonical beats (see :func:`read_beats`) in a projected CRS in metres.
    min_overlap_m2, min_gap_m2
        Overlaps and enclosed gaps smaller than these are digitising noise and not reported.

    Returns
    -------
    BoundaryReport
    """
    if beats.crs is None or not beats.crs.is_projected:
        msg = "check_beats needs beats in a projected CRS in metres (see read_beats)"
        raise BoundaryError(msg)
    geoms = beats.geometry.to_numpy()
    ids = beats[schema.BEAT].to_numpy()
    valid = shapely.is_valid(geoms)
    invalid = pd.DataFrame(
        {
            "beat": ids[~valid],
            "reason": [shapely.is_valid_reason(g) for g in geoms[~valid]],
        }
    )
    fixed = np.where(valid, geoms, shapely.make_valid(geoms))
    tree = shapely.STRtree(fixed)
    left, right = tree.query(fixed, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    area = shapely.area(shapely.intersection(fixed[left], fixed[right]))
    big = area >= min_overlap_m2
    overlaps = pd.DataFrame(
        {"beat": ids[left[big]], "other": ids[right[big]], "area_m2": area[big]}
    )
    union = shapely.union_all(fixed)
    holes = []
    for polygon in getattr(union, "geoms", [union]):
        for ring in polygon.interiors:
            hole = shapely.Polygon(ring)
            if hole.area >= min_gap_m2:
                holes.append(hole)
    gaps = gpd.GeoDataFrame({"area_m2": [h.area for h in holes]}, geometry=holes, crs=beats.crs)
    return BoundaryReport(
        n_beats=len(beats),
        invalid=invalid,
        overlaps=overlaps,
        gaps=pd.DataFrame(gaps),
        without_sector=sorted(beats.loc[beats[schema.SECTOR].isna(), schema.BEAT]),
        without_district=sorted(beats.loc[beats[schema.DISTRICT].isna(), schema.BEAT]),
        multipart=sorted(ids[shapely.get_num_geometries(geoms) > 1].tolist()),
        duplicate_ids=list(beats.attrs.get("conflicting_ids", [])),
    )


def read_stations(
    path: str | Path,
    *,
    district_width: int | None = None,
    analysis_crs: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """Read police stations (CSV with lat/lon, or a point layer) into canonical columns.

    ``station_id`` is the district it serves (normalised like beat-layer districts) or ``HQ``
    for a headquarters row. Missing phone numbers stay empty, never invented.

    Parameters
    ----------
    path
        CSV with LATITUDE/LONGITUDE columns, or a point layer.
    district_width
        Zero-padding width of numeric district ids (default: the widest id in the file).
    analysis_crs
        Projected CRS of the result (default: the UTM zone of the stations).
    columns
        Canonical column -> source column (a department profile's ``[stations.columns]``);
        the others are auto-detected.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            msg = f"{path}: cannot read stations: {err}"
            raise InputError(msg, path=str(path)) from err
        by_norm = {_norm(c): c for c in table.columns}
        lat, lon = by_norm.get("latitude"), by_norm.get("longitude")
        if lat is None or lon is None:
            msg = f"{path}: stations need LATITUDE and LONGITUDE columns; found {list(table)}"
            raise InputError(msg, path=str(path), line=1, column="LATITUDE")
        bad = pd.to_numeric(table[lat], errors="coerce").isna()
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2
            msg = (
                f"{path}, line {line}, column {lat!r}: {table[lat][bad].iloc[0]!r} is not a number"
            )
            raise InputError(msg, path=str(path), line=line, column=lat)
        layer = gpd.GeoDataFrame(
            table,
            geometry=gpd.points_from_xy(table[lon].astype(float), table[lat].astype(float)),
            crs=schema.WGS84,
        )
    else:
        layer = _read_layer(path).to_crs(schema.WGS84)
        by_norm = {_norm(c): c for c in layer.columns}

    explicit = {k: _norm(v) for k, v in (columns or {}).items()}

    def get(*names: str) -> pd.Series:
        given = [explicit[n] for n in names if n in explicit]
        for name in given[:1] or names:
            if name in by_norm:
                return layer[by_norm[name]].astype("string").str.strip()
        return pd.Series("", index=layer.index, dtype="string")

    district = get("district", "precinct", "dist_num")
    if district_width is None:
        district_width = _id_width(district)
    station_id = district.map(
        lambda v: (
            "HQ"
            if str(v).strip().lower() == "headquarters"
            else schema.normalize_id(v, district_width)
        )
    )
    stations = gpd.GeoDataFrame(
        {
            schema.STATION_ID: station_id.astype("string"),
            schema.DISTRICT: station_id.where(station_id != "HQ").astype("string"),
            schema.STATION_NAME: get("district_name", "name", "station_name"),
            schema.STATION_ADDRESS: get("address", "street_address"),
            "city": get("city"),
            "state": get("state"),
            "zip": get("zip", "zip_code", "postal_code"),
            schema.STATION_PHONE: get("phone", "telephone"),
            "fax": get("fax"),
            "tty": get("tty"),
            "website": get("website", "url"),
            schema.LON: layer.geometry.x,
            schema.LAT: layer.geometry.y,
        },
        geometry=layer.geometry.values,
        crs=schema.WGS84,
    )
    stations = stations.to_crs(analysis_crs or analysis_crs_for(stations))
    return stations.sort_values(schema.STATION_ID).reset_index(drop=True)
