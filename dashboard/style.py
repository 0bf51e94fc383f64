"""Page styling shared by both apps: contrast that passes WCAG AA, and an accessible navigation.

Streamlit draws captions in a grey (about 4:1 on white) below the 4.5:1 that WCAG AA asks of
small text, and its grouped sidebar navigation puts section headers inside the ``<ul>`` of page
links, which screen readers announce wrongly (axe-core: ``list``, ``listitem``). The apps call
:func:`apply_contrast` and draw their navigation with :func:`sidebar_navigation` instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import streamlit as st

__all__ = ["CONTRAST_CSS", "apply_contrast", "sidebar_navigation"]

#: Fixed CSS (no data in it): darker caption and help text.
CONTRAST_CSS = """<style>
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p,
[data-testid="stWidgetLabel"] small { color: #3d3d47 !important; opacity: 1 !important; }
</style>"""


def apply_contrast() -> None:
    """Add :data:`CONTRAST_CSS` to the page."""
    st.html(CONTRAST_CSS)


def sidebar_navigation(groups: Mapping[str, Sequence[st.Page]]) -> st.Page:
    """Return the page to run, drawing grouped page links in the sidebar.

    The links are ``st.page_link`` elements under a heading per group, so URLs, icons and
    groups stay as with ``st.navigation``'s own menu, with markup that assistive technology
    reads correctly.
    """
    navigation = st.navigation(dict(groups), position="hidden")
    with st.sidebar:
        st.markdown("**Beatwise**")
        for group, pages in groups.items():
            shown = [page for page in pages if page.visibility != "hidden"]
            if shown:
                st.markdown(f"**{group}**")
            for page in shown:
                st.page_link(page)
    return navigation
