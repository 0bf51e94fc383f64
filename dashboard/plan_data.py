"""Loaders and view helpers of the beat planning page (cached by store version)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal, cast

import folium
import geopandas as gpd
import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from analysis import beatplan, inputs
from analysis.inputs import Period
from dashboard import calls_data, data, maps, messages
from geodata import db, schema, settings
from geodata.jsonable import jsonable
from geodata.plans import list_plans, plan_bytes, save_plan
from geodata.store import IncidentStore

__all__ = [
    "WORKLOADS",
    "Basis",
    "beat_table",
    "current_evaluation",
    "default_workload_days",
    "district_units",
    "get_engine",
    "measures_table",
    "plan_map",
    "planning_inputs",
    "propose",
    "resolve_workload",
    "save",
    "saved_plans",
    "user_message",
    "workload_kinds",
    "workload_range",
]


#: The workload bases a plan can balance, in the page's words (``plan --workload``).
WORKLOADS = {
    "auto": "Automatic (calls when stored)",
    "calls": "Officer-hours of calls",
    "incidents": "Weighted incidents",
}


@dataclass(frozen=True)
class Basis:
    """What a plan balances: officer-hours of calls (with an allowance) or weighted incidents.

    Attributes
    ----------
    kind
        ``"calls"`` or ``"incidents"`` (as ``python -m analysis plan --workload``).
    allowance
        With calls: self-initiated and administrative time as a share of call time.
    """

    kind: Literal["incidents", "calls"] = "incidents"
    allowance: float = 0.0

    @property
    def unit(self) -> str:
        """Return what one unit of workload is, for map legends and captions."""
        return "officer-hours" if self.kind == "calls" else "weighted incidents"

    @property
    def records(self) -> str:
        """Return the records the workload is made of."""
        return "calls" if self.kind == "calls" else "incidents"


def workload_kinds(root: str, token: str) -> list[str]:
    """Return the workload bases the store can give (``calls``, ``incidents``), calls first."""
    kinds = ["calls"] if calls_data.has_calls(root, token) else []
    return kinds + (["incidents"] if data.has_incidents(root, token) else [])


def resolve_workload(chosen: str, kinds: list[str]) -> Literal["incidents", "calls"]:
    """Return the basis `chosen` names among the store's `kinds` (:func:`workload_kinds`).

    ``auto`` is calls when the store holds them, as ``plan --workload auto``
    (:func:`analysis.inputs.resolve_workload`).
    """
    return inputs.resolve_workload(chosen, has_calls="calls" in kinds)


def default_workload_days(
    root: str, token: str, basis: Basis, first: date, last: date
) -> tuple[date, date]:
    """Return the workload period the page starts with, within the offered `first`..`last`.

    Incidents: :func:`analysis.inputs.planning_period`, the last 12 months the store holds (the
    default of ``plan evaluate`` and ``plan propose``); calls: every offered day (the commands
    keep every call unless a period is given).
    """
    if basis.kind == "calls":
        return first, last
    period = inputs.planning_period(data.daily_counts(root, token))
    if period is None:
        return first, last
    return max(first, period.first), min(last, period.last)


def workload_range(root: str, token: str, basis: Basis) -> tuple[date, date, str | None]:
    """Return the days the workload period can span for `basis`, and a note on older records."""
    if basis.kind == "calls":
        first, last = calls_data.calls_range(root, token)
        return first, last, None
    return data.dense_date_range(root, token)


@st.cache_data(show_spinner="Loading the records and computing workload...")
def planning_inputs(
    root: str, token: str, period: Period | None = None, basis: Basis | None = None
) -> inputs.PlanningInputs:
    """Return beats, stations and the workload points over `period` (None: all data).

    The same :func:`analysis.inputs.load_planning_inputs` as ``python -m analysis plan``:
    weighted incidents, or officer-hours of calls (`basis`; default: incidents).
    """
    del token
    basis = basis or Basis()
    return inputs.load_planning_inputs(
        IncidentStore(root), period, workload=basis.kind, allowance=basis.allowance
    )


@st.cache_data(show_spinner=False)
def current_evaluation(
    root: str,
    token: str,
    district: str,
    period: Period | None = None,
    basis: Basis | None = None,
) -> beatplan.PlanEvaluation:
    """Return the evaluation of the district's current beats (their real polygons).

    As ``python -m analysis plan evaluate --district``: the records are those the join put in
    the district's beats (so a record on the district's edge counts where it was stored).
    """
    loaded = planning_inputs(root, token, period, basis)
    return beatplan.evaluate_district(
        loaded.beats, loaded.incidents, district, stations=loaded.stations
    )


@st.cache_data(show_spinner=False)
def district_units(
    root: str,
    token: str,
    district: str,
    cell_size_m: float,
    period: Period | None = None,
    basis: Basis | None = None,
) -> beatplan.Units:
    """Return the planning units of `district` with the workload of `period`."""
    loaded = planning_inputs(root, token, period, basis)
    return beatplan.build_units(
        loaded.beats, loaded.incidents, cell_size_m=cell_size_m, districts=[district]
    )


def propose(
    root: str,
    token: str,
    *,
    district: str,
    n_beats: int,
    minimal_change: bool,
    target_cv: float,
    seed: int,
    cell_size_m: float,
    period: Period | None = None,
    basis: Basis | None = None,
    progress: beatplan.Progress | None = None,
) -> beatplan.Proposal:
    """Return a proposal for `district` (not cached: the page keeps it in session state)."""
    loaded = planning_inputs(root, token, period, basis)
    units = district_units(root, token, district, cell_size_m, period, basis)
    return beatplan.propose_beats(
        loaded.beats,
        loaded.incidents,
        district=district,
        n_beats=n_beats,
        search=beatplan.SearchOptions(
            cell_size_m=cell_size_m,
            minimal_change=minimal_change,
            target_cv=target_cv,
            random_state=seed,
        ),
        stations=loaded.stations,
        units=units,
        progress=progress,
    )


def plan_map(
    plan: gpd.GeoDataFrame,
    evaluation: beatplan.PlanEvaluation,
    *,
    stations: gpd.GeoDataFrame | None = None,
    moved: gpd.GeoDataFrame | None = None,
    vmax: float | None = None,
    unit: str = "weighted incidents",
) -> folium.Map:
    """Return a map of `plan` coloured by workload; `moved` units outlined in red.

    `vmax` is the top of the colour scale (give both maps of a comparison the same one);
    `unit` names the workload in the legend (:attr:`Basis.unit`).
    """
    areas = plan.merge(
        evaluation.beats[[schema.BEAT, "workload", "share", "polsby_popper"]], on=schema.BEAT
    )
    areas["share"] = (areas["share"] * 100).round(1).astype(str) + "%"
    areas["polsby_popper"] = areas["polsby_popper"].round(3)
    areas["workload"] = areas["workload"].round(1)
    fmap = maps.base_map(areas)
    maps.choropleth(
        fmap,
        areas,
        "workload",
        name="Workload",
        unit=f"{unit} per beat",
        vmax=vmax,
        fields=[(schema.SECTOR, "Sector"), ("share", "Share"), ("polsby_popper", "Polsby-Popper")],
    )
    if moved is not None and len(moved):
        shape = moved.dissolve()[["geometry"]]
        maps.add_marked_areas(
            fmap,
            maps.to_display(shape).to_json(),
            name="Units that change beat",
            color="#d7191c",
            fill="#d7191c",
            tooltip="Changes beat",
            legend="Units that change beat",
        )
    if stations is not None and len(stations):
        district = plan[schema.DISTRICT].dropna().unique()
        maps.add_stations(fmap, stations[stations[schema.DISTRICT].isin(district)])
    return fmap


_MEASURES = {
    "n_beats": "Beats",
    "workload_cv": "Workload CV",
    "max_min_ratio": "Max / min workload",
    "gini": "Gini",
    "median_polsby_popper": "Median Polsby-Popper",
    "median_convex_hull_ratio": "Median convex hull ratio",
    "n_split_beats": "Beats in several pieces",
    "mean_dist_centre_m": "Mean distance to beat centre (m)",
    "mean_dist_station_m": "Mean distance to station (m)",
    "n_sectors": "Sectors",
    "sector_workload_cv": "Sector workload CV",
    "incidents_changing_beat": "Incidents that change beat",
}


def measures_table(proposal: beatplan.Proposal) -> pd.DataFrame:
    """Return the before/after measures of `proposal` with readable names."""
    table = proposal.comparison.copy()
    table["measure"] = table["measure"].map(_MEASURES).fillna(table["measure"])
    extra = pd.DataFrame(
        [
            {
                "measure": "Contiguous (every beat one piece)",
                "before": float(bool(proposal.current.summary["contiguous"])),
                "after": float(bool(proposal.proposed.summary["contiguous"])),
                "change": float("nan"),
                "change_pct": float("nan"),
            },
            {
                "measure": "Units that change beat",
                "before": float(len(proposal.units)),
                "after": float(proposal.units["moved"].sum()),
                "change": float("nan"),
                "change_pct": float("nan"),
            },
        ]
    )
    return pd.concat([table, extra], ignore_index=True).rename(
        columns={
            "measure": "Measure",
            "before": "Current",
            "after": "Proposed",
            "change": "Change",
            "change_pct": "Change %",
        }
    )


def beat_table(evaluation: beatplan.PlanEvaluation, basis: Basis | None = None) -> pd.DataFrame:
    """Return the per-beat measures for display (``incidents`` named ``calls`` for calls)."""
    cols = [
        schema.BEAT,
        schema.SECTOR,
        "workload",
        "share",
        "incidents",
        "area_km2",
        "polsby_popper",
        "convex_hull_ratio",
        "contiguous",
        "mean_dist_centre_m",
    ]
    table = evaluation.beats[[c for c in cols if c in evaluation.beats.columns]].round(3)
    if basis is not None and basis.kind == "calls":
        table = table.rename(columns={"workload": "officer_hours", "incidents": "calls"})
    return table


_MESSAGES = (
    (
        re.compile(r"number of beats must be between 1 and (\d+) for district (\S+), got (\d+)"),
        "District {1} can be divided into at most {0} beats with unit cells of this size (you "
        "asked for {2}): choose fewer beats, or smaller unit cells under Advanced.",
    ),
    (
        re.compile(r"minimal change keeps the district's (\d+) beats, and (\d+) beats were asked"),
        "“Minimal change” keeps the district's {0} beats and you asked for {1}: choose {0} "
        "beats, or switch the mode to “Redraw” to draw a new number of beats.",
    ),
)


def user_message(err: Exception) -> str:
    """Return a planning error in the planner's words (:func:`dashboard.messages.user_message`)."""
    return messages.user_message(err, known=_MESSAGES)


@st.cache_resource(show_spinner=False)
def get_engine(url: str) -> Engine:
    """Return the database engine, migrated to the newest revisions."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    return engine


def save(proposal: beatplan.Proposal, *, name: str, author: str) -> int:
    """Save the proposed plan in the database; return its id."""
    engine = get_engine(settings.database_url())
    return save_plan(
        engine,
        proposal.proposed_plan,
        name=name,
        author=author,
        parameters=proposal.parameters,
        # jsonable returns a dict as a dict
        measures=cast("dict[str, object]", jsonable(proposal.proposed.summary, digits=6)),
        assignments=dict(
            zip(proposal.units[beatplan.UNIT].astype(str), proposal.units["proposed"], strict=False)
        ),
    )


def export(proposal: beatplan.Proposal, fmt: str) -> bytes:
    """Return the proposed plan as GeoJSON or GeoPackage bytes."""
    return plan_bytes(proposal.proposed_plan, fmt)


def saved_plans() -> pd.DataFrame:
    """Return the plans saved in the database, newest first."""
    return list_plans(get_engine(settings.database_url()))
