"""Compute layer: pure functions and estimators on (Geo)DataFrames; no Streamlit, no paths."""
