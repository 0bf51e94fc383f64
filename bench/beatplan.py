"""Benchmark: balanced beat proposals per Chicago district and city-wide (nested in districts).

For every district of the bundled Chicago data: build the 300 m units, propose as many beats as
the district has now (free mode, seed 0), and report the workload CV of the current beats
(rebuilt from the same units) and of the proposal, the cut, contiguity, the median
Polsby-Popper of both, and the seconds. The district proposals together form the city-wide
plan, evaluated against the current beats (rebuilt from the units and as drawn). Usage::

    .venv/bin/python -m bench.beatplan [--store DIR] [--districts 11 09]
        [--cell-size-m 300] [--minimal-change] [--all] [--json FILE]

The workload period is that of ``plan propose``: the last 12 months the store holds
(:func:`analysis.inputs.planning_period`), or every stored record with ``--all``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import cast

import numpy as np
import pandas as pd

from analysis import beatplan
from analysis.inputs import load_daily_counts, load_planning_inputs, open_store, planning_period
from geodata import schema
from geodata.jsonable import jsonable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store")
    parser.add_argument("--districts", nargs="*")
    parser.add_argument("--cell-size-m", type=float, default=300.0)
    parser.add_argument("--minimal-change", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    parser.add_argument(
        "--apportion",
        action="store_true",
        help="share the city's beats among districts by workload (else each keeps its count)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every stored record (default: the last 12 months, as plan propose)",
    )
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"load before: {os.getloadavg()}")
    store = open_store(args.store)
    period = None if args.all else planning_period(load_daily_counts(store))
    print(f"workload period: {period or 'every stored record'}")
    inputs = load_planning_inputs(store, period)
    beats, incidents, stations = inputs.beats, inputs.incidents, inputs.stations
    print(f"incidents: {len(incidents):,} (workload {incidents['workload'].sum():,.0f})")
    districts = args.districts or sorted(beats[schema.DISTRICT].astype(str).unique())
    quota = None
    if args.apportion:
        units_all = beatplan.build_units(
            beats, incidents, cell_size_m=args.cell_size_m, districts=districts
        )
        by_district = units_all.frame.groupby(schema.DISTRICT)["workload"].sum()
        n_total = int(units_all.frame.groupby(schema.DISTRICT)[schema.BEAT].nunique().sum())
        quota = beatplan.apportion_beats(by_district, n_total)
        print(f"beats per district by workload: {quota.to_dict()}")
    rows, current_plans, proposed_plans = [], [], []
    for district in districts:
        k = int((beats[schema.DISTRICT] == district).sum())
        t0 = time.perf_counter()
        units = beatplan.build_units(
            beats, incidents, cell_size_m=args.cell_size_m, districts=[district]
        )
        k_units = units.frame[schema.BEAT].nunique()
        if k_units < 2 and (quota is None or quota[district] < 2):
            print(f"district {district}: {k} beat(s), {k_units} in units: skipped")
            continue
        prop = beatplan.propose_beats(
            beats,
            incidents,
            district=district,
            n_beats=int(quota[district]) if quota is not None else k_units,
            search=beatplan.SearchOptions(
                minimal_change=args.minimal_change, random_state=args.seed
            ),
            stations=stations,
            units=units,
        )
        seconds = time.perf_counter() - t0
        out = prop.to_dict()
        # both jsonable summaries: dicts
        c = cast("dict[str, object]", out["current"])
        p = cast("dict[str, object]", out["proposed"])
        row = {
            "district": district,
            "beats": k,
            "units": out["units"],
            "cv_current": c["workload_cv"],
            "cv_proposed": p["workload_cv"],
            "cv_cut_pct": out["workload_cv_cut_pct"],
            "maxmin_current": c["max_min_ratio"],
            "maxmin_proposed": p["max_min_ratio"],
            "pp_current": c["median_polsby_popper"],
            "pp_proposed": p["median_polsby_popper"],
            "contiguous": p["contiguous"],
            "units_moved": out["units_moved"],
            "seconds": round(seconds, 2),
        }
        rows.append(row)
        print(
            f"district {district}: {k} beats, {row['units']} units, CV {row['cv_current']:.3f} -> "
            f"{row['cv_proposed']:.3f} ({row['cv_cut_pct']:.0f}% cut), PP "
            f"{row['pp_current']:.3f} -> {row['pp_proposed']:.3f}, contiguous "
            f"{row['contiguous']}, {seconds:.1f} s",
            flush=True,
        )
        current_plans.append(prop.current_plan)
        proposed_plans.append(prop.proposed_plan)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    city_current = beatplan.evaluate_plan(
        pd.concat(current_plans).set_crs(beats.crs, allow_override=True), incidents
    )
    city_proposed = beatplan.evaluate_plan(
        pd.concat(proposed_plans).set_crs(beats.crs, allow_override=True), incidents
    )
    city_drawn = beatplan.evaluate_plan(beats, incidents)
    city = {}
    for name, ev in (
        ("current as drawn", city_drawn),
        ("current from units", city_current),
        ("proposed", city_proposed),
    ):
        s = ev.summary
        city[name] = {
            k: s[k]
            for k in (
                "n_beats",
                "workload_cv",
                "max_min_ratio",
                "gini",
                "median_polsby_popper",
                "contiguous",
                "n_split_beats",
            )
        }
        print(f"city, {name}: {city[name]}")
    # evaluate_plan's workload_cv is a float (coefficient_of_variation)
    cv_before = cast(float, city["current from units"]["workload_cv"])
    cv_after = cast(float, city["proposed"]["workload_cv"])
    cut = (cv_before - cv_after) / cv_before * 100
    summary = {
        "districts": len(rows),
        "districts_meeting_target": int(
            (
                (table["cv_cut_pct"] >= 43)
                & table["contiguous"]
                & (table["pp_proposed"] >= table["pp_current"])
                & (table["seconds"] < 60)
            ).sum()
        ),
        "median_cv_cut_pct": float(np.median(table["cv_cut_pct"])),
        "max_seconds": float(table["seconds"].max()),
        "total_seconds": float(table["seconds"].sum()),
        "city_cv_cut_pct": cut,
    }
    print(f"summary: {summary}")
    print(f"load after: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                jsonable({"districts": rows, "city": city, "summary": summary}, digits=6),
                handle,
                indent=2,
            )


if __name__ == "__main__":
    main()
