"""Saved beat plans in the database, and plan export to GeoJSON / GeoPackage.

A plan is stored with its name, author, creation time, parameters, measures, the beats as
GeoJSON (WGS84, so any GIS reads it) and, for proposals, the unit assignments. The table is
created by the ``plans`` branch of the Alembic revisions (:func:`geodata.db.upgrade`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from geodata import schema
from geodata.errors import InputError, StoreError
from geodata.exports import prepare_output

__all__ = [
    "SavedPlan",
    "export_plan",
    "list_plans",
    "load_plan",
    "plan_bytes",
    "plans_table",
    "save_plan",
]

_metadata = sa.MetaData()
#: The table created by revision ``p0001_plans``.
plans_table = sa.Table(
    "beat_plans",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("author", sa.String(200), nullable=False, server_default=""),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("district", sa.String(16), nullable=True),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("measures", sa.JSON, nullable=False),
    sa.Column("crs", sa.String(64), nullable=False),
    sa.Column("geometry", sa.Text, nullable=False),
    sa.Column("assignments", sa.JSON, nullable=True),
)

_PLAN_COLUMNS = (schema.BEAT, schema.SECTOR, schema.DISTRICT)


@dataclass(frozen=True)
class SavedPlan:
    """A plan read back from the database."""

    id: int
    name: str
    author: str
    created: datetime
    district: str | None
    parameters: dict
    measures: dict
    plan: gpd.GeoDataFrame
    assignments: dict | None


def _plan_geojson(plan: gpd.GeoDataFrame) -> str:
    cols = [c for c in _PLAN_COLUMNS if c in plan.columns]
    out = plan[[*cols, "geometry"]].copy()
    for c in cols:
        out[c] = out[c].astype("string")
    return out.to_crs(schema.WGS84).to_json(drop_id=True)


def save_plan(
    engine: Engine,
    plan: gpd.GeoDataFrame,
    *,
    name: str,
    author: str = "",
    parameters: dict | None = None,
    measures: dict | None = None,
    assignments: dict | None = None,
    created: datetime | None = None,
) -> int:
    """Store `plan` and return its id.

    Parameters
    ----------
    engine
        A database migrated with :func:`geodata.db.upgrade`.
    plan
        The beats (``beat``, optional ``sector``/``district``) in a projected CRS.
    name, author
        Shown in the list of saved plans; `name` must not be empty.
    parameters, measures
        JSON-serialisable dicts (how the plan was made; its evaluation summary).
    assignments
        Optional ``{unit: beat}`` of a proposal.
    created
        Creation time (default: now, UTC).

    Raises
    ------
    InputError
        If the name is empty or the plan has no ``beat`` column or no CRS.
    """
    if not name or not name.strip():
        msg = "a saved plan needs a name"
        raise InputError(msg, column="name")
    if schema.BEAT not in plan.columns or plan.crs is None:
        msg = "the plan needs a 'beat' column and a CRS"
        raise InputError(msg, column=schema.BEAT)
    districts = (
        plan[schema.DISTRICT].dropna().astype(str).unique() if schema.DISTRICT in plan else []
    )
    row = {
        "name": name.strip()[:200],
        "author": (author or "").strip()[:200],
        "created": created or datetime.now(UTC),
        "district": str(districts[0]) if len(districts) == 1 else None,
        "parameters": json.loads(json.dumps(parameters or {}, default=str)),
        "measures": json.loads(json.dumps(measures or {}, default=str)),
        "crs": plan.crs.to_string(),
        "geometry": _plan_geojson(plan),
        "assignments": json.loads(json.dumps(assignments, default=str)) if assignments else None,
    }
    with engine.begin() as conn:
        result = conn.execute(sa.insert(plans_table).values(**row))
        key = result.inserted_primary_key
        if key is None:  # every supported database returns the new row's id
            msg = "the database did not return the saved plan's id"
            raise StoreError(msg)
        return int(key[0])


def load_plan(engine: Engine, plan_id: int) -> SavedPlan:
    """Return the saved plan `plan_id`, its beats back in the CRS it was saved in.

    Raises
    ------
    StoreError
        If there is no such plan.
    """
    with engine.connect() as conn:
        query = sa.select(plans_table).where(plans_table.c.id == plan_id)
        row = conn.execute(query).mappings().first()
    if row is None:
        msg = f"no saved plan with id {plan_id}"
        raise StoreError(msg)
    plan = gpd.read_file(row["geometry"]).set_crs(schema.WGS84, allow_override=True)
    plan = plan.to_crs(row["crs"])
    created = row["created"]
    if created.tzinfo is None:  # SQLite drops the zone; times are stored in UTC
        created = created.replace(tzinfo=UTC)
    return SavedPlan(
        id=int(row["id"]),
        name=row["name"],
        author=row["author"],
        created=created,
        district=row["district"],
        parameters=dict(row["parameters"]),
        measures=dict(row["measures"]),
        plan=plan,
        assignments=row["assignments"],
    )


def list_plans(engine: Engine) -> pd.DataFrame:
    """Return the saved plans (id, name, author, created, district), newest first."""
    cols = [plans_table.c[c] for c in ("id", "name", "author", "created", "district")]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*cols).order_by(plans_table.c.id.desc())).all()
    return pd.DataFrame(rows, columns=["id", "name", "author", "created", "district"])


def export_plan(plan: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write `plan` to GeoJSON (``.geojson``/``.json``, WGS84) or GeoPackage (``.gpkg``).

    Raises
    ------
    InputError
        If the extension is neither.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in {".geojson", ".json", ".gpkg"}:
        prepare_output(path)
    cols = [c for c in _PLAN_COLUMNS if c in plan.columns]
    out = plan[[*cols, "geometry"]].copy()
    for c in cols:
        out[c] = out[c].astype(str)
    if suffix in {".geojson", ".json"}:
        path.write_text(out.to_crs(schema.WGS84).to_json(drop_id=True), encoding="utf-8")
    elif suffix == ".gpkg":
        if path.exists():
            path.unlink()
        out.to_file(path, driver="GPKG", layer="beats")
    else:
        msg = f"{path}: export to .geojson or .gpkg, not {suffix or 'no extension'!r}"
        raise InputError(msg, path=str(path))
    return path


def plan_bytes(plan: gpd.GeoDataFrame, fmt: str) -> bytes:
    """Return `plan` as the bytes of a ``geojson`` or ``gpkg`` file (for downloads)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = export_plan(plan, Path(tmp) / f"plan.{fmt}")
        return path.read_bytes()
