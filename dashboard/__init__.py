"""Streamlit presentation layer: thin pages over ``analysis`` and ``geodata``."""
