"""Placeholder page: filled in by its issue."""

import streamlit as st

st.title("beat_planning")
st.info("This page is being built.")
