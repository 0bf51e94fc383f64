"""Open the store a CLI command names (``--store DIR``), building the bundled default if needed."""

from __future__ import annotations

from geodata import settings
from geodata.ingest import build_sample_store
from geodata.store import IncidentStore

__all__ = ["open_store"]


def open_store(store_arg: str | None) -> IncidentStore:
    """Return the store at `store_arg` or the default one (built from the bundled data)."""
    store = IncidentStore(settings.store_dir(store_arg))
    if store_arg is None and (not store.exists() or not store.incident_files()):
        build_sample_store(store, settings.SAMPLES_DIR)
    return store
