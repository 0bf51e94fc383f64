"""Placeholder page: filled in by its issue."""

import streamlit as st

st.title("data_quality")
st.info("This page is being built.")
