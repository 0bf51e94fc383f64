"""Community app: ``streamlit run dashboard/community_app.py --server.port 8502``.

A separate, public app for neighborhood meetings. It reads only the published extract
(``python -m geodata publish``) and the meetings database, never the analyst store; see
:mod:`dashboard.community_data` and docs/community.md.

It runs exactly one page through ``st.navigation``, and the analyst pages live in
``dashboard/views`` (not ``pages/``, which Streamlit would discover on its own), so they are
neither listed nor reachable by URL from this app.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

st.set_page_config(page_title="Your beat — community safety map", page_icon="🏘️", layout="wide")
# Projector-friendly: large type everywhere (fixed CSS, no data in it).
st.markdown(
    """<style>
html, body, [data-testid="stAppViewContainer"] { font-size: 20px; }
[data-testid="stMarkdownContainer"] p,
[data-testid="stMarkdownContainer"] li { font-size: 1.2rem !important; }
[data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p { font-size: 3rem !important; }
[data-testid="stMetricLabel"] p { font-size: 1.2rem !important; }
[data-testid="stWidgetLabel"] p { font-size: 1.2rem !important; }
[data-testid="stTextInputRootElement"] input, [data-testid="stSelectbox"] div
  { font-size: 1.2rem !important; }
[data-testid="stTable"] td, [data-testid="stTable"] th { font-size: 1.15rem !important; }
h1 { font-size: 2.6rem !important; } h2, h3 { font-size: 1.9rem !important; }
.card { border: 2px solid #08306b; border-radius: 10px; padding: 0.6rem 1rem; font-size: 1.25rem; }
</style>""",
    unsafe_allow_html=True,
)

from dashboard import style  # noqa: E402 - after the path fix above

style.apply_contrast()
PAGE = Path(__file__).resolve().parent / "community_page.py"
st.navigation(
    [st.Page(PAGE, title="Your beat", icon=":material/home:", default=True)], position="hidden"
).run()
