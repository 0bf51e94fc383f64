"""Placeholder page: filled in by its issue."""

import streamlit as st

st.title("meeting_editor")
st.info("This page is being built.")
