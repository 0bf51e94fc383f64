"""Hotspots: pick an area, period, category and method; see hotspot polygons, table, backtest."""

from __future__ import annotations

import streamlit as st

from analysis import evaluate, forecast, hotspots
from dashboard import calls_panel, data
from dashboard import hotspot_data as hd
from dashboard.map_clicks import show_map
from geodata import schema
from geodata.errors import InputError, StoreError

store = data.get_store()
root, token = str(store.root), data.store_token(store)
st.title("Hotspots")
calls_panel.stop_without_incidents(root, token)
METHOD_WORDS = {
    "dbscan": "DBSCAN (density clusters)",
    "hdbscan": "HDBSCAN (fast_hdbscan)",
    "kde": "Kernel density (KDE)",
    "gistar": "Getis-Ord Gi*",
}
METHODS = {METHOD_WORDS[m]: m for m in hotspots.HOTSPOT_METHODS}

c1, c2, c3, c4 = st.columns([1, 1, 2, 1])
level = c1.selectbox(
    "Area",
    list(hd.LEVELS),
    format_func=lambda lv: data.label(root, token, lv, title=True),
    key="hotspots_level",
)
level_word = data.label(root, token, level)
area_id = c2.selectbox(
    level_word.capitalize(), hd.area_ids(root, token, level), key="hotspots_area"
)
picked = data.period_input(c3, root, token)
category = c4.selectbox("Category", ["all", *schema.CATEGORIES])
method_label = st.radio("Method", list(METHODS), horizontal=True, key="hotspots_method")
method = METHODS[method_label]
params: dict[str, object] = {}
p1, p2, p3 = st.columns(3)
if method == "dbscan":
    params["eps_m"] = p1.slider("Radius eps (m)", 50, 400, 150, 10)
    auto = p2.checkbox("Scaled min_samples (rule)", value=True)
    if not auto:
        params["min_samples"] = int(p3.number_input("min_samples", 2, 10_000, 25))
elif method == "kde":
    auto = p1.checkbox("Automatic bandwidth (rule)", value=True)
    if not auto:
        params["bandwidth_m"] = float(p2.slider("Bandwidth (m)", 25, 500, 150, 25))
    cells: list[str | int] = ["auto", 10, 20, 50]
    cell = p3.select_slider("Cell (m)", cells, "auto")  # auto: bandwidth / 10
    params["cell_size_m"] = "auto" if cell == "auto" else float(cell)
elif method == "gistar":
    params["cell_size_m"] = float(p1.select_slider("Cell (m)", [100, 150, 200, 250], 150))

if picked is None:
    st.info("Pick the last day of the period.")
    st.stop()
period = picked
if note := data.dataset_label(root, token, period):
    st.warning(note)
try:
    run = hd.hotspot_run(
        root,
        token,
        method,
        level,
        area_id,
        period,
        None if category == "all" else category,
        tuple(sorted(params.items())),
    )
except hotspots.TooManyIncidentsError as err:  # says itself what to choose instead
    st.error(f"{err}.")
    st.stop()
except (ValueError, InputError, StoreError) as err:
    st.error(f"{err}. Try a longer period, another category or another area.")
    st.stop()

if run.n_incidents == 0:
    what = "incidents" if category == "all" else f"{category} incidents"
    st.info(f"No {what} in this period ({period}) in {level_word} {area_id}: no hotspots to find.")
    st.stop()
st.caption(f"{method_label}, {level_word} {area_id}, {period}: {run.summary}.")
FORECASTS = {
    "Where it happened (naive)": "naive",
    "Near-repeat (prospective)": "prospective",
    "Learned (Poisson boosting)": "gbm",
}
f1, f2, f3 = st.columns([1, 2, 1])
show_forecast = f1.checkbox("Forecast layer", value=False, key="hotspots_forecast")
forecast_run = None
if show_forecast:
    default = next(k for k, v in FORECASTS.items() if v == forecast.DEFAULT_METHOD)
    forecast_label = f2.selectbox(
        "Forecast method", list(FORECASTS), index=list(FORECASTS).index(default)
    )
    horizon = f3.selectbox("Next", [7, 1], format_func=lambda d: f"{d} day{'s' * (d > 1)}")
    try:
        forecast_run = hd.forecast_run(
            root, token, FORECASTS[forecast_label], level, area_id, period.end, horizon
        )
    except ValueError as err:
        st.warning(f"No forecast: {err}.")
    else:
        st.caption(f"Forecast from the year before {period.end}: {forecast_run.summary}.")
surface = {"kde": "Density (incidents/km²)", "gistar": "Gi* z-score (z > 0)"}.get(method, "")
show_map(
    hd.hotspot_map(
        run,
        label=surface or "Surface",
        forecast_layer=forecast_run,
        context=data.map_context(root, token),
    ),
    height=520,
    key=f"hotspot_map_{method}_{level}_{area_id}",
)
st.caption(
    "Hotspot polygons: concave hulls of the clusters' locations, buffered 25 m (DBSCAN/HDBSCAN); "
    "the densest 5% of cells (KDE); FDR-significant hot cells (Gi*). Surfaces are aggregated to "
    "at most 3,000 cells. Methods and defaults: docs/hotspots.md."
)
if method == "gistar" and run.polygons.empty and len(run.surface):
    st.info(
        "Gi*: the surface shows every cell with z > 0, but none is significant once the "
        "test is corrected for the number of cells (false discovery rate 5%): no hotspot "
        "here. A longer period or a larger area gives the test more incidents to go on."
    )
st.dataframe(run.table, hide_index=True, width="stretch")
if len(run.polygons):
    e1, e2 = st.columns(2)
    stem = f"hotspots_{method}_{level}_{area_id}_{period.first}_{period.last}"
    e1.download_button(
        "Hotspots (GeoJSON)",
        hotspots.export_hotspots(run.polygons, "geojson"),
        file_name=f"{stem}.geojson",
        mime="application/geo+json",
    )
    e2.download_button(
        "Hotspots (CSV)",
        hotspots.export_hotspots(run.polygons, "csv"),
        file_name=f"{stem}.csv",
        mime="text/csv",
    )
if forecast_run is not None:
    f1, f2 = st.columns(2)
    stem = f"forecast_{forecast_run.method}_{level}_{area_id}_{forecast_run.first_day}"
    for column, (kind, (text, name, mime)) in zip(
        (f1, f2), hd.export_files(forecast_run.cells, stem).items(), strict=True
    ):
        column.download_button(f"Forecast ({kind})", text, file_name=name, mime=mime)

with st.expander("Near-repeat: Knox test (pairs close in space and time)"):
    knox = hd.near_repeat(
        root, token, level, area_id, period, None if category == "all" else category
    )
    st.dataframe(knox, hide_index=True, width="stretch")
    st.caption(
        "Pairs within the distance and time, observed vs expected if times were independent "
        "of places (99 shuffles); ratio > 1 with a small p: near-repeats."
    )

with st.expander("How well do the methods predict? (rolling backtest on the whole store)"):
    chosen = st.multiselect("Methods", evaluate.METHODS[1:], default=["kde", "gistar", "dbscan"])
    if st.button("Run the backtest", key="hotspots_backtest"):
        bar = st.progress(0.0, text="Backtest...")

        def _progress(share: float, text: str) -> None:
            bar.progress(min(share, 1.0), text=text)

        table = hd.evaluation_table(root, token, tuple(chosen), _progress=_progress)
        bar.empty()
        st.dataframe(table, hide_index=True, width="stretch")
        st.caption(
            "PAI = hit rate / area share; PEI* = hits / the most the same area could catch; "
            "RRI = test over training hits, relative to totals. Naive = last period's counts."
        )
