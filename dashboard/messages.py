"""Errors in the users' words: library messages without command-line flags or file paths.

Library errors are written for the command line (``give one with --crs``) and name the files
they read (a temporary copy of an upload). A page shows them through :func:`user_message`,
which rewords what it knows and otherwise names flags as the page's fields and files as the
file the user chose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["user_message"]

_FLAG = re.compile(r"--([a-z][a-z-]*)")
_TEMP_PATH = re.compile(r"(?:/(?:tmp|var|private)/|[A-Za-z]:\\)\S*?(?=[,:;]?(?:\s|$))")


def user_message(
    err: Exception,
    *,
    known: Sequence[tuple[re.Pattern[str], str]] = (),
    fields: Mapping[str, str] | None = None,
    path: str | None = None,
    file_name: str = "the uploaded file",
) -> str:
    """Return `err` as a page should say it.

    Parameters
    ----------
    known
        ``(pattern, words)`` pairs: the first pattern found in the message gives the answer,
        ``words`` formatted with the pattern's groups.
    fields
        Flag -> the page's words for it (``{"crs": "the CRS box"}``); other flags lose their
        dashes (``--beats`` -> "beats").
    path
        A temporary path to replace with `file_name` wherever it appears.
    file_name
        The name the user knows the file by (the upload's own name).
    """
    text = str(err)
    for pattern, words in known:
        match = pattern.search(text)
        if match:
            return words.format(*match.groups())
    if path:
        text = text.replace(str(path), file_name)
    text = _TEMP_PATH.sub(file_name, text)
    names = dict(fields or {})
    text = re.sub(r"give one with --crs", "type one in the CRS box", text)
    return _FLAG.sub(lambda m: names.get(m.group(1), m.group(1).replace("-", " ")), text)
