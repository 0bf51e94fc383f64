"""How the Data page reads an uploaded export: the department's mapping, the boxes over it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from geodata.calls import CallMapping
from geodata.errors import InputError
from geodata.readers import ColumnMapping, merge_mapping

if TYPE_CHECKING:
    from geodata.calls import CallsReport
    from geodata.department import Department
    from geodata.ingest import IngestReport
    from geodata.store import IncidentStore

__all__ = ["import_upload"]

_Mapping = TypeVar("_Mapping", ColumnMapping, CallMapping)


def import_upload(
    store: IncidentStore,
    department: Department,
    path: Path,
    *,
    calls: bool = False,
    mapping_path: Path | None = None,
    crs: str | None = None,
    date_format: str | None = None,
) -> IngestReport | CallsReport:
    """Ingest an uploaded export (calls for service with `calls`, else incident reports).

    Incidents are read with the department's column mapping, with an uploaded mapping file over
    it; calls with the uploaded mapping, else the department's calls mapping. A CRS or a date
    format typed in the form's boxes replaces the mapping's.

    Raises
    ------
    InputError
        For calls with no mapping to read them, and whatever the ingest refuses.
    """
    # here, as the page did: the ingest's imports are paid for an import, not every page view
    from geodata.calls import ingest_calls
    from geodata.ingest import ingest_file

    def with_boxes(mapping: _Mapping) -> _Mapping:
        return replace(
            mapping, crs=crs or mapping.crs, date_format=date_format or mapping.date_format
        )

    if calls:
        source = mapping_path or department.call_mapping
        if source is None:
            msg = (
                "calls for service need a column mapping (which column is the call id, the "
                "received, dispatched, arrived and closed times...): choose one in the Column "
                "mapping box"
            )
            raise InputError(msg)
        return ingest_calls(path, store, mapping=with_boxes(CallMapping.from_file(source)))
    mapping = department.column_mapping()
    if mapping_path is not None:
        mapping = merge_mapping(mapping, mapping_path)
    return ingest_file(path, store, mapping=with_boxes(mapping))
