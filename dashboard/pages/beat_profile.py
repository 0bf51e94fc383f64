"""Placeholder page: filled in by its issue."""

import streamlit as st

st.title("beat_profile")
st.info("This page is being built.")
