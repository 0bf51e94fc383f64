"""Scratch folders of an ingest in the system's temporary folder, and the sweep of dead ones.

An ingest of a large file keeps some of its working state on disk: the ids it has read
(:mod:`geodata._idspill`), its rejected rows (:mod:`geodata.rejections`), a Dask worker's part
of a file (:mod:`geodata.distributed_ingest`). Each lives in a folder of its own that the
ingest deletes when it is done. A killed ingest cannot, so every folder is named
``beatwise-<kind>-<pid>-<random>``; the first scratch folder a process makes sweeps the
folders whose process is gone and which nothing has touched for :data:`STALE_AFTER_S` seconds
(both: a process id of another machine or container sharing the folder may look dead here).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["STALE_AFTER_S", "scratch_folder", "sweep_dead"]

#: A dead process's folder is swept once nothing has touched it for this long (6 hours).
STALE_AFTER_S = 6 * 3600.0

_NAME = re.compile(r"^beatwise-[a-z]+-(\d+)-")
_swept = threading.Event()


def scratch_folder(kind: str, parent: Path | None = None) -> Path:
    """Create and return a new scratch folder ``beatwise-<kind>-<pid>-...`` for this process.

    Parameters
    ----------
    kind
        Lowercase letters naming what the folder holds (``ids``, ``rejected``, ``part``).
    parent
        Where to make it (default: the system's temporary folder).
    """
    if not kind.isalpha() or not kind.islower():
        msg = f"kind must be lowercase letters, got {kind!r}"
        raise ValueError(msg)
    if not _swept.is_set():
        _swept.set()
        sweep_dead(parent)
    return Path(tempfile.mkdtemp(prefix=f"beatwise-{kind}-{os.getpid()}-", dir=parent))


def sweep_dead(parent: Path | None = None, *, now: float | None = None) -> list[Path]:
    """Delete the scratch folders under `parent` left by processes that are gone; return them.

    A folder is deleted when its process id names no running process and neither it nor its
    files changed in the last :data:`STALE_AFTER_S` seconds. Folders that cannot be read or
    deleted (another user's) are left as they are.
    """
    root = Path(parent or tempfile.gettempdir())
    moment = time.time() if now is None else now
    swept: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return swept
    for folder in entries:
        match = _NAME.match(folder.name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            touched = max([folder.stat().st_mtime, *(f.stat().st_mtime for f in folder.iterdir())])
        except OSError:
            continue
        if moment - touched < STALE_AFTER_S:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            swept.append(folder)
    return swept


def _alive(pid: int) -> bool:
    """Whether `pid` names a running process (one of another user counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs as another user
        return True
    return True
