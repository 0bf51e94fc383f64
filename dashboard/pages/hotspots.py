"""Placeholder page: filled in by its issue."""

import streamlit as st

st.title("hotspots")
st.info("This page is being built.")
