"""Entry point and router of the analyst dashboard: ``streamlit run dashboard/app.py``."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

st.set_page_config(
    page_title="Beatwise — beat planning and crime analysis",
    page_icon=":material/map:",
    layout="wide",
)

from dashboard import style  # noqa: E402 - after the path fix above

style.apply_contrast()
PAGES = Path(__file__).resolve().parent / "views"

navigation = style.sidebar_navigation(
    {
        "Analysis": [
            st.Page(PAGES / "overview.py", title="Overview", icon=":material/map:", default=True),
            st.Page(PAGES / "beat_profile.py", title="Beat profile", icon=":material/assignment:"),
            st.Page(PAGES / "sector_review.py", title="Sector review", icon=":material/explore:"),
            st.Page(
                PAGES / "hotspots.py", title="Hotspots", icon=":material/local_fire_department:"
            ),
            st.Page(PAGES / "calls.py", title="Calls for service", icon=":material/call:"),
        ],
        "Planning": [
            st.Page(
                PAGES / "beat_planning.py", title="Beat planning", icon=":material/architecture:"
            ),
        ],
        "Community": [
            st.Page(PAGES / "meetings.py", title="Meetings", icon=":material/event:"),
            st.Page(
                PAGES / "meeting_editor.py", title="Edit meetings", icon=":material/edit_calendar:"
            ),
        ],
        "Data": [
            st.Page(PAGES / "data_quality.py", title="Data and import", icon=":material/database:"),
        ],
    }
)
navigation.run()
