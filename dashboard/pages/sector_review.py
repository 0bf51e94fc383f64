"""Placeholder page: filled in by its issue."""

import streamlit as st

st.title("sector_review")
st.info("This page is being built.")
