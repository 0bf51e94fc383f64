"""Data layer: read, validate, join to beats and store incidents, boundaries and meetings."""
