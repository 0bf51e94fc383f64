"""Entry point and router of the analyst dashboard: ``streamlit run dashboard/app.py``.

Every run first checks the session (:func:`dashboard.auth.signed_in_user`): signed out, only the
sign-in form is shown and no page code runs. Signed in, the navigation lists the pages the user's
roles allow; a page they do not allow is registered under its usual URL as a hidden page that
shows only a refusal, so typing its address never runs the page itself.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

st.set_page_config(
    page_title="Beatwise — beat planning and crime analysis",
    page_icon=":material/map:",
    layout="wide",
)

from dashboard import auth, style  # noqa: E402 - after set_page_config
from dashboard.navigation import PAGE_SPECS  # noqa: E402

style.apply_contrast()
PAGES = Path(__file__).resolve().parent / "views"


# signed out: the sign-in form under every address, and the run stops here
user = auth.signed_in_user(spec.url_path for spec in PAGE_SPECS)

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
            url_path=spec.url_path,
            visibility="hidden",
        )
        refused.append(page)
    by_path[spec.url_path] = page
if home is None:
    sections["Account"] = [st.Page(auth.refusal("any page"), title="No access", default=True)]
sections.setdefault(next(iter(sections)), []).extend(refused)
navigation = style.sidebar_navigation(sections)  # draws the visible pages' links
auth.sidebar(user)
if (wanted := auth.requested_page()) in by_path and by_path[wanted].url_path:
    st.switch_page(by_path[wanted])  # the address typed before signing in
navigation.run()
