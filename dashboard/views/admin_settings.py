"""Settings (admins): the department, sessions, sign-in and storage this installation uses."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from dashboard import auth, data
from geodata import settings

store = data.get_store()
meta = store.meta()
failures, lock_minutes = settings.lockout()
idle_s = settings.idle_timeout_s()

st.title("Settings")
st.caption(
    "Set by the server's environment (see the README, 'Accounts and sign-in'); changing them "
    "needs a restart of the app."
)
rows = [
    ("Department time zone", meta.get("timezone"), "from the incident store"),
    ("Analysis CRS", meta.get("analysis_crs"), "from the incident store"),
    ("Beat layer", meta.get("beats_source"), "python -m geodata ingest --beats"),
    ("Idle timeout", f"{idle_s / 60:g} minutes", "BEATS_IDLE_TIMEOUT_S (seconds)"),
    (
        "Lockout",
        f"{failures} failed sign-ins lock an account for {lock_minutes:g} minutes",
        "BEATS_LOCKOUT_FAILURES, BEATS_LOCKOUT_MINUTES",
    ),
    (
        "Single sign-on (OpenID Connect)",
        "configured" if auth.sso_configured() else "not configured",
        "[auth] in .streamlit/secrets.toml",
    ),
    (
        "Database",
        sa.make_url(settings.database_url()).render_as_string(hide_password=True),
        "DATABASE_URL",
    ),
    ("Incident store", str(store.root), "BEATS_DATA_DIR"),
    ("Community extract", str(settings.public_dir()), "BEATS_PUBLIC_DIR"),
]
st.dataframe(
    pd.DataFrame(rows, columns=["setting", "value", "where it is set"]),
    hide_index=True,
    width="stretch",
)
