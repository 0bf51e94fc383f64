"""Audit log (admins): who did what and when, filtered by time, user and action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard import auth
from geodata import audit, users

engine = auth.database()

st.title("Audit log")
st.caption(
    "Append-only: sign-ins, failed sign-ins, sign-outs, imports, publications, plan saves, "
    "meeting edits, downloads and account changes. Times in UTC. "
    "Command line: `python -m geodata audit --since 2026-01-01 --user NAME --json`."
)
c1, c2, c3 = st.columns(3)
since = c1.date_input("Since", value=datetime.now(UTC).date() - timedelta(days=30))
user = c2.text_input("User")
action = c3.selectbox("Action", ["all", *audit.ACTIONS])
events = audit.read_events(
    engine,
    since=since if isinstance(since, type(datetime.now(UTC).date())) else None,
    user=user.strip() or None,
    action=None if action == "all" else action,
    limit=5000,
)
st.metric("Events", f"{len(events):,}")
if events.empty:
    st.info("No events match.")
else:
    st.dataframe(
        events.assign(
            detail=events["detail"].map(lambda d: ", ".join(f"{k}: {v}" for k, v in d.items()))
        ),
        hide_index=True,
        width="stretch",
    )
    auth.download_button(
        "Download these events (CSV)",
        audit.events_csv(events),
        file_name=f"audit_since_{since}.csv",
        mime="text/csv",
        permission=users.Permission.VIEW_AUDIT,
    )
