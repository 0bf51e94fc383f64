"""Map reported offense types to a small set of categories and a sensitive flag."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geodata import schema
from geodata.errors import InputError

__all__ = ["DEFAULT_CATEGORIES_PATH", "OffenseCategories", "load_categories"]

DEFAULT_CATEGORIES_PATH = Path(__file__).with_name("offense_categories.toml")


@dataclass(frozen=True)
class OffenseCategories:
    """An editable offense -> category mapping and the rules that mark a row sensitive."""

    category_of: dict[str, str]
    default_category: str = "other"
    sensitive_offenses: frozenset[str] = field(default_factory=frozenset)
    sensitive_description: tuple[str, ...] = ()

    def categorize(
        self,
        offense: pd.Series,
        description: pd.Series | None = None,
        domestic: pd.Series | None = None,
    ) -> tuple[pd.Series, pd.Series]:
        """Return the category and the sensitive flag of each row.

        Parameters
        ----------
        offense
            Offense as reported (e.g. Chicago's ``Primary Type``).
        description
            Free-text offense description; matched against ``sensitive_description``.
        domestic
            Domestic-incident flag; a true value makes the row sensitive.

        Returns
        -------
        tuple of Series
            ``category`` (string) and ``is_sensitive`` (bool), aligned with `offense`.
        """
        key = offense.astype("string").str.strip().str.upper()
        category = key.map(self.category_of).fillna(self.default_category).astype("string")
        sensitive = key.isin(self.sensitive_offenses).to_numpy(dtype=bool, na_value=False)
        if description is not None and self.sensitive_description:
            pattern = "|".join(f"(?:{p})" for p in self.sensitive_description)
            hits = description.astype("string").str.contains(pattern, flags=re.IGNORECASE)
            sensitive |= hits.to_numpy(dtype=bool, na_value=False)
        if domestic is not None:
            sensitive |= domestic.astype("boolean").to_numpy(dtype=bool, na_value=False)
        return category, pd.Series(np.asarray(sensitive, dtype=bool), index=offense.index)


def load_categories(path: str | Path | None = None) -> OffenseCategories:
    """Read an offense-category TOML file (default: the bundled one).

    Parameters
    ----------
    path
        A TOML file with ``default_category``, ``[categories]`` (category -> list of offenses)
        and ``[sensitive]`` (``offenses`` and ``sensitive_description`` regexes).

    Returns
    -------
    OffenseCategories

    Raises
    ------
    InputError
        If the file cannot be parsed, names an unknown category or lists an offense twice.
    """
    path = Path(path) if path is not None else DEFAULT_CATEGORIES_PATH
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        msg = f"{path}: cannot read offense categories: {err}"
        raise InputError(msg, path=str(path)) from err
    default = config.get("default_category", "other")
    category_of: dict[str, str] = {}
    for category, offenses in config.get("categories", {}).items():
        if category not in schema.CATEGORIES:
            msg = f"{path}: unknown category {category!r}; expected one of {schema.CATEGORIES}"
            raise InputError(msg, path=str(path))
        for offense in offenses:
            key = str(offense).strip().upper()
            if key in category_of and category_of[key] != category:
                msg = (
                    f"{path}: offense {offense!r} is listed under both "
                    f"{category_of[key]!r} and {category!r}"
                )
                raise InputError(msg, path=str(path))
            category_of[key] = category
    sensitive = config.get("sensitive", {})
    patterns = tuple(sensitive.get("sensitive_description", ()))
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            msg = f"{path}: sensitive_description {pattern!r} is not a valid regex: {err}"
            raise InputError(msg, path=str(path)) from err
    return OffenseCategories(
        category_of=category_of,
        default_category=default,
        sensitive_offenses=frozenset(str(o).strip().upper() for o in sensitive.get("offenses", ())),
        sensitive_description=patterns,
    )
