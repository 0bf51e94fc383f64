"""Entry point and router of the analyst dashboard: ``streamlit run dashboard/app.py``.

Every run first checks the session (:func:`dashboard.auth.signed_in_user`): signed out, only the
sign-in form is shown and no page code runs. Signed in, the navigation lists the pages the user's
roles allow; a page they do not allow is registered under its usual URL as a hidden page that
shows only a refusal, so typing its address never runs the page itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import streamlit as st

st.set_page_config(
    page_title="Beatwise — beat planning and crime analysis",
    page_icon=":material/map:",
    layout="wide",
)

from dashboard import auth, style  # noqa: E402 - after set_page_config
from geodata import users  # noqa: E402

style.apply_contrast()
PAGES = Path(__file__).resolve().parent / "views"


class PageSpec(NamedTuple):
    """One page of the navigation and the permission it needs."""

    section: str
    file: str
    title: str
    icon: str
    permission: str


#: Every page, in menu order; the first page the user may open is the home page.
PAGE_SPECS = (
    PageSpec("Analysis", "overview.py", "Overview", ":material/map:", users.VIEW_ANALYSIS),
    PageSpec(
        "Analysis", "beat_profile.py", "Beat profile", ":material/assignment:", users.VIEW_ANALYSIS
    ),
    PageSpec(
        "Analysis", "sector_review.py", "Sector review", ":material/explore:", users.VIEW_ANALYSIS
    ),
    PageSpec(
        "Analysis",
        "hotspots.py",
        "Hotspots",
        ":material/local_fire_department:",
        users.VIEW_ANALYSIS,
    ),
    PageSpec("Analysis", "calls.py", "Calls for service", ":material/call:", users.VIEW_ANALYSIS),
    PageSpec(
        "Planning",
        "beat_planning.py",
        "Beat planning",
        ":material/architecture:",
        users.VIEW_ANALYSIS,
    ),
    PageSpec("Community", "meetings.py", "Meetings", ":material/event:", users.VIEW_MEETINGS),
    PageSpec(
        "Community",
        "meeting_editor.py",
        "Edit meetings",
        ":material/edit_calendar:",
        users.EDIT_MEETINGS,
    ),
    PageSpec("Data", "data_quality.py", "Data and import", ":material/database:", users.IMPORT),
    PageSpec("Admin", "admin_users.py", "Users", ":material/group:", users.MANAGE_USERS),
    PageSpec("Admin", "admin_audit.py", "Audit log", ":material/policy:", users.VIEW_AUDIT),
    PageSpec("Admin", "admin_publish.py", "Publish", ":material/public:", users.PUBLISH),
    PageSpec("Admin", "admin_settings.py", "Settings", ":material/settings:", users.SETTINGS),
)

# signed out: the sign-in form under every address, and the run stops here
user = auth.signed_in_user(Path(spec.file).stem for spec in PAGE_SPECS)

sections: dict[str, list[st.Page]] = {}
refused: list[st.Page] = []
by_path: dict[str, st.Page] = {}
home = next((s for s in PAGE_SPECS if user.can(s.permission)), None)
for spec in PAGE_SPECS:
    if user.can(spec.permission):
        page = st.Page(PAGES / spec.file, title=spec.title, icon=spec.icon, default=spec is home)
        sections.setdefault(spec.section, []).append(page)
    else:
        page = st.Page(
            auth.refusal(spec.title),
            title=spec.title,
            url_path=Path(spec.file).stem,
            visibility="hidden",
        )
        refused.append(page)
    by_path[Path(spec.file).stem] = page
if home is None:
    sections["Account"] = [st.Page(auth.refusal("any page"), title="No access", default=True)]
sections.setdefault(next(iter(sections)), []).extend(refused)
navigation = style.sidebar_navigation(sections)  # draws the visible pages' links
auth.sidebar(user)
if (wanted := auth.requested_page()) in by_path and by_path[wanted].url_path:
    st.switch_page(by_path[wanted])  # the address typed before signing in
navigation.run()
