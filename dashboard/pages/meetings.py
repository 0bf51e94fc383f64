"""Placeholder page: filled in by its issue."""

import streamlit as st

st.title("meetings")
st.info("This page is being built.")
