"""Beat planning: measure the current beats, propose balanced ones, compare, save, export."""

from __future__ import annotations

from typing import cast

import streamlit as st

from analysis.beatplan import Proposal
from analysis.inputs import Period
from dashboard import auth, calls_panel, data, state
from dashboard import plan_data as pl
from dashboard.map_clicks import show_map
from geodata import audit, schema, users
from geodata.errors import InputError

store = data.get_store()
root, token = str(store.root), data.store_token(store)
SAVED_KEY = "plan_saved_message"
BEAT = data.label(root, token, "beat")  # the department's own words
BEATS = data.label(root, token, "beat", plural=True)
DISTRICT = data.label(root, token, "district")

st.title("Beat planning")
kinds = pl.workload_kinds(root, token)
if not kinds:  # neither incident reports nor calls: say so and stop
    calls_panel.stop_without_incidents(root, token)
b1, b2 = st.columns([3, 2])
chosen_kind = kinds[0]  # one kind of record: nothing to choose
if len(kinds) > 1:
    chosen_kind = b1.radio(
        "Workload",
        ["auto", *kinds],
        format_func=pl.WORKLOADS.__getitem__,
        horizontal=True,
        key="plan_workload",
        help="What the beats balance: the officer time calls for service take, or incidents "
        "weighted by category. Automatic uses the calls when the store holds them.",
    )
kind = pl.resolve_workload(chosen_kind, kinds)
allowance_pct = 0.0
if kind == "calls":
    allowance_pct = b2.number_input(
        "Allowance for other work (%)",
        min_value=0.0,
        max_value=300.0,
        value=0.0,
        step=5.0,
        help="Self-initiated and administrative time, as a share of the time calls take "
        "(50 adds half again to every call's officer time).",
    )
top_word = data.label(root, token, "district")
basis = pl.Basis(kind, float(allowance_pct) / 100.0)
first_day, last_day, older_note = pl.workload_range(root, token, basis)
if kind == "calls":
    st.caption(
        "Workload = officer-hours of calls for service: each call's time on task (arrival, "
        "else dispatch, to close) x the officers sent, plus the allowance. Proposals redraw "
        f"one {top_word} from grid cells; see docs/planning.md."
    )
else:
    st.caption(
        "Workload = incidents weighted by category (analysis/workload_weights.toml) over the "
        f"workload period. Proposals redraw one {top_word} from grid cells; see docs/planning.md."
    )
every = st.checkbox(
    f"Every stored record ({basis.records} of all days)",
    key="plan_every_record",
    help="Measure the workload over everything stored instead of the period below.",
)
default_days = pl.default_workload_days(root, token, basis, first_day, last_day)
chosen = st.date_input(
    "Workload period",
    value=default_days,
    min_value=first_day,
    max_value=last_day,
    disabled=every,
    help=f"The {basis.records} of these days make the workload (default: "
    + ("every call stored)." if kind == "calls" else "the last 12 months the store holds)."),
)
if older_note:  # late-reported old incidents, outside the offered dates
    st.caption(older_note)
if not every and (not isinstance(chosen, tuple) or len(chosen) != 2):
    st.info("Pick the last day of the workload period.")
    st.stop()
period = None if every or chosen == (first_day, last_day) else Period.of(*chosen)
# a chosen period that only sample data covers; "everything" mixes dense and sample data
if kind == "incidents" and period is not None and (note := data.dataset_label(root, token, period)):
    st.warning(note)
inputs = pl.planning_inputs(root, token, period, basis)
if inputs.incidents.empty:
    st.info(
        f"No {basis.records} in this period: there is no workload to plan with. Pick other days."
    )
    st.stop()
beats = inputs.beats
districts = sorted(beats[schema.DISTRICT].dropna().unique())
c1, c2, c3, c4 = st.columns(4)
wanted = st.session_state.get(state.DISTRICT)
district = c1.selectbox(
    data.label(root, token, "district", title=True),
    districts,
    index=districts.index(wanted) if wanted in districts else 0,
)
st.session_state[state.DISTRICT] = district
n_current = int((beats[schema.DISTRICT] == district).sum())
n_beats = c2.number_input(
    f"{data.label(root, token, 'beat', plural=True, title=True)} (K)",
    min_value=1,
    max_value=40,
    value=n_current,
    step=1,
)
mode = c3.radio("Mode", ["Redraw", "Minimal change"], horizontal=True)
target_cv = c4.number_input("Target workload CV", 0.01, 1.0, 0.10, 0.01, format="%.2f")
with st.expander("Advanced"):
    a1, a2 = st.columns(2)
    seed = int(a1.number_input("Random seed", min_value=0, value=0, step=1))
    cell = float(a2.select_slider("Unit cell (m)", [200, 250, 300, 400, 500], value=300))

current = pl.current_evaluation(root, token, district, period, basis)
s = current.summary
m = st.columns(5)
m[0].metric(f"Current {BEATS}", cast(int, s["n_beats"]))  # evaluate_plan counts the beats
m[1].metric("Workload CV", f"{s['workload_cv']:.3f}")
m[2].metric("Max / min", f"{s['max_min_ratio']:.2f}")
m[3].metric("Median Polsby-Popper", f"{s['median_polsby_popper']:.3f}")
m[4].metric("Contiguous", "yes" if s["contiguous"] else f"no ({s['n_split_beats']} split)")
st.caption(
    f"Workload in {basis.unit}: {s['workload_total']:,.1f} in all, from "
    f"{s['incidents']:,} {basis.records}."
)
if len(kinds) > 1:  # both kinds of record: the other measure too, as plan evaluate prints it
    other = pl.Basis("incidents" if kind == "calls" else "calls", basis.allowance)
    o = pl.current_evaluation(root, token, district, period, other).summary
    n = st.columns(5)
    n[0].metric(f"Workload CV ({other.unit})", f"{o['workload_cv']:.3f}")
    n[1].metric(f"Max / min ({other.unit})", f"{o['max_min_ratio']:.2f}")
st.caption(
    f"Measured on the {BEATS} as drawn. The comparison below rebuilds the current {BEATS} from "
    "the same grid units as the proposal, so both are measured alike (staircase edges included)."
)

if st.button(f"Propose {BEATS}", type="primary"):
    problem = None
    if int(n_beats) < 2:
        problem = (
            f"One {BEAT} would be the whole {DISTRICT}, so there is nothing to balance: "
            f"choose 2 or more {BEATS}."
        )
    else:
        with st.status(f"Proposing {BEATS}...", expanded=True) as status:
            bar = st.progress(0.0, text="building units")

            def _progress(message: str, share: float) -> None:
                bar.progress(min(share, 1.0), text=message)

            try:
                made = pl.propose(
                    root,
                    token,
                    district=district,
                    n_beats=int(n_beats),
                    minimal_change=mode == "Minimal change",
                    target_cv=float(target_cv),
                    seed=seed,
                    cell_size_m=cell,
                    period=period,
                    basis=basis,
                    progress=_progress,
                )
            except (InputError, ValueError) as err:
                status.update(label="No proposal", state="error", expanded=False)
                problem = pl.user_message(err)
            else:
                st.session_state[state.PLAN_PROPOSAL] = made
                st.session_state[state.PLAN_PROPOSAL_KEY] = (token, period, basis)
                status.update(label="Proposal ready", state="complete", expanded=False)
    if problem:  # an impossible request: say why, and take the previous proposal off screen
        st.session_state.pop(state.PLAN_PROPOSAL, None)
        st.error(problem)

if saved := st.session_state.pop(SAVED_KEY, None):
    st.success(saved)
with st.expander("Saved plans"):
    saved = pl.saved_plans().rename(columns={"district": data.label(root, token, "district")})
    st.dataframe(saved, hide_index=True, width="stretch")

proposal: Proposal | None = st.session_state.get(state.PLAN_PROPOSAL)
if st.session_state.get(state.PLAN_PROPOSAL_KEY) != (token, period, basis):
    proposal = None  # made from other data, another workload period or another workload
if proposal is None or proposal.parameters["district"] != district:
    show_map(
        pl.plan_map(
            beats[beats[schema.DISTRICT] == district],
            current,
            stations=inputs.stations,
            unit=basis.unit,
        ),
        height=480,
        key=f"plan_current_{district}",
    )
    st.dataframe(pl.beat_table(current, basis), hide_index=True, width="stretch")
    st.stop()

moved = proposal.units[proposal.units["moved"]]
top = max(proposal.current.beats["workload"].max(), proposal.proposed.beats["workload"].max())
map_columns = (
    ("Current (rebuilt from the same units)", proposal.current_plan, proposal.current, "current"),
    (
        f"Proposed ({proposal.parameters['n_beats']} {BEATS})",
        proposal.proposed_plan,
        proposal.proposed,
        "proposed",
    ),
)
for column, (title, plan, summary, key) in zip(st.columns(2), map_columns, strict=True):
    with column:
        st.subheader(title)
        show_map(
            pl.plan_map(plan, summary, moved=moved, vmax=top, unit=basis.unit),
            height=460,
            key=f"plan_map_{key}",
        )
st.caption(
    f"Red: the {len(moved)} of {len(proposal.units)} units that change {BEAT}. Both maps "
    f"share one colour scale ({basis.unit} 0 to {top:.0f}); hover a {BEAT} for its share and "
    "compactness."
)
st.dataframe(pl.measures_table(proposal), hide_index=True, width="stretch")
st.dataframe(pl.beat_table(proposal.proposed, basis), hide_index=True, width="stretch")

if not auth.can(users.Permission.SAVE_PLAN):
    st.stop()  # read-only roles (commander): no save, no export
with st.form("save_plan"):
    f1, f2 = st.columns(2)
    name = f1.text_input("Plan name", value=f"{DISTRICT.capitalize()} {district} proposal")
    author = auth.require_user().username  # the signed-in user, never typed
    f2.text_input("Author", value=author, disabled=True)
    if st.form_submit_button("Save plan"):
        try:
            plan_id = pl.save(proposal, name=name, author=author)
        except InputError as err:
            st.error(pl.user_message(err))
        else:  # run again so that "Saved plans" above lists it
            auth.record(audit.PLAN_SAVE, f"plan {plan_id}", {"name": name, **proposal.parameters})
            st.session_state[SAVED_KEY] = f"Saved as plan {plan_id}: {name}"
            st.rerun()
downloads = (
    ("GeoJSON", "geojson", "application/geo+json"),
    ("GeoPackage", "gpkg", "application/geopackage+sqlite3"),
)
for container, (label, fmt, mime) in zip(st.columns(2), downloads, strict=True):
    auth.download_button(
        f"Download {label}",
        pl.export(proposal, fmt),
        file_name=f"district_{district}_plan.{fmt}",
        mime=mime,
        container=container,
    )
