"""Map reported offense types to a small set of categories and a sensitive flag.

Offense vocabularies live in ``geodata/vocabularies/``: ``chicago.toml`` (Chicago's primary
types), ``nibrs.toml`` (FBI NIBRS offense codes and names) and ``ucr.toml`` (UCR Part I/II).
A department profile names its vocabulary; :func:`detect_vocabulary` guesses one from the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geodata import schema
from geodata.errors import InputError
from geodata.tomlfiles import read_toml

__all__ = [
    "DEFAULT_CATEGORIES_PATH",
    "VOCABULARIES_DIR",
    "OffenseCategories",
    "detect_vocabulary",
    "list_vocabularies",
    "load_categories",
    "load_vocabulary",
    "unmapped_offenses",
]

#: The bundled offense vocabularies, one TOML file each.
VOCABULARIES_DIR = Path(__file__).resolve().parent / "vocabularies"
#: The vocabulary used when none is named (the bundled Chicago store's).
DEFAULT_CATEGORIES_PATH = VOCABULARIES_DIR / "chicago.toml"


@dataclass(frozen=True)
class OffenseCategories:
    """An editable offense -> category mapping and the rules that mark a row sensitive."""

    category_of: dict[str, str]
    default_category: str = "other"
    sensitive_offenses: frozenset[str] = field(default_factory=frozenset)
    sensitive_description: tuple[str, ...] = ()
    #: The vocabulary's name (``nibrs``) and its offense codes (keys of `category_of` too).
    name: str | None = None
    codes: frozenset[str] = field(default_factory=frozenset)

    def keys(self, offense: pd.Series, codes: pd.Series | None = None) -> pd.Series:
        """Return the upper-cased key each row is matched on: its offense, else its code."""
        key = offense.astype("string").str.strip().str.upper()
        if codes is not None:
            code = codes.astype("string").str.strip().str.upper()
            key = key.where(key.isin(self.category_of.keys()), code).fillna(key)
        return key

    def categorize(
        self,
        offense: pd.Series,
        description: pd.Series | None = None,
        domestic: pd.Series | None = None,
        codes: pd.Series | None = None,
    ) -> tuple[pd.Series, pd.Series]:
        """Return the category and the sensitive flag of each row.

        Parameters
        ----------
        offense
            Offense as reported (e.g. Chicago's ``Primary Type``, a NIBRS offense name).
        description
            Free-text offense description; matched against ``sensitive_description``.
        domestic
            Domestic-incident flag; a true value makes the row sensitive.
        codes
            Offense codes (e.g. NIBRS ``23H``), used where the offense itself is not listed.

        Returns
        -------
        tuple of Series
            ``category`` (string) and ``is_sensitive`` (bool), aligned with `offense`.
        """
        key = self.keys(offense, codes)
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
    if not path.exists() and not path.suffix and (VOCABULARIES_DIR / f"{path}.toml").exists():
        path = VOCABULARIES_DIR / f"{path}.toml"
    config = read_toml(path, "offense categories")
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
    flagged = {str(o).strip().upper() for o in sensitive.get("offenses", ())}
    codes: set[str] = set()
    for code, entry in config.get("offenses", {}).items():
        if not isinstance(entry, dict) or entry.get("category") not in schema.CATEGORIES:
            msg = (
                f"{path}: offense {code!r} needs a category, one of {schema.CATEGORIES}; "
                f"got {entry!r}"
            )
            raise InputError(msg, path=str(path), column=f"offenses.{code}")
        names = [code, entry.get("name", ""), *entry.get("aliases", ())]
        keys = [str(n).strip().upper() for n in names if str(n).strip()]
        for key in keys:
            if key in category_of and category_of[key] != entry["category"]:
                msg = (
                    f"{path}: {key!r} is listed under both {category_of[key]!r} and "
                    f"{entry['category']!r}"
                )
                raise InputError(msg, path=str(path), column=f"offenses.{code}")
            category_of[key] = entry["category"]
            if entry.get("sensitive", False):
                flagged.add(key)
        codes.add(keys[0])
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
        sensitive_offenses=frozenset(flagged),
        sensitive_description=patterns,
        name=config.get("vocabulary", path.stem),
        codes=frozenset(codes),
    )


def list_vocabularies() -> list[str]:
    """Return the names of the bundled offense vocabularies."""
    return sorted(p.stem for p in VOCABULARIES_DIR.glob("*.toml"))


def load_vocabulary(name_or_path: str | Path | None) -> OffenseCategories:
    """Return a bundled vocabulary by name (``nibrs``) or one read from a TOML path.

    None gives the default (Chicago's) vocabulary, as :func:`load_categories` does.
    """
    if name_or_path is None:
        return load_categories()
    path = Path(name_or_path)
    if not path.exists() and (VOCABULARIES_DIR / f"{name_or_path}.toml").exists():
        path = VOCABULARIES_DIR / f"{name_or_path}.toml"
    if not path.exists():
        msg = (
            f"{name_or_path!r} is neither an offense vocabulary file nor a bundled vocabulary "
            f"(bundled: {', '.join(list_vocabularies())})"
        )
        raise InputError(msg, path=str(name_or_path))
    return load_categories(path)


def detect_vocabulary(
    offense: pd.Series, codes: pd.Series | None = None, *, min_share: float = 0.5
) -> str | None:
    """Return the bundled vocabulary that names most rows, or None below `min_share`.

    Parameters
    ----------
    offense, codes
        The offense column and (optionally) the offense-code column of an export.
    min_share
        Share of non-empty rows the best vocabulary must match.
    """
    present = offense.notna() | (codes.notna() if codes is not None else False)
    n = int(present.sum())
    if n == 0:
        return None
    best, best_share = None, 0.0
    for name in list_vocabularies():
        vocabulary = load_vocabulary(name)
        matched = vocabulary.keys(offense, codes).isin(vocabulary.category_of.keys())
        share = float(matched[present].mean())
        if share > best_share:
            best, best_share = name, share
    return best if best_share >= min_share else None


def unmapped_offenses(
    offense: pd.Series,
    categories: OffenseCategories,
    codes: pd.Series | None = None,
    *,
    top: int = 10,
) -> dict[str, object]:
    """Return how many rows the vocabulary does not name, and the most frequent such values.

    Returns
    -------
    dict
        ``vocabulary``, ``rows``, ``share`` (of all rows; 0.0 for none) and ``top``: a list of
        ``{"offense": value, "rows": n}``, most frequent first (empty offenses as ``""``).
    """
    keys = categories.keys(offense, codes)
    unmapped = ~keys.isin(categories.category_of.keys()).to_numpy(dtype=bool, na_value=False)
    values = offense[unmapped].astype("string").str.strip().fillna("")
    counts = values.value_counts().head(top)
    return {
        "vocabulary": categories.name,
        "rows": int(unmapped.sum()),
        "share": float(unmapped.mean()) if len(offense) else 0.0,
        "top": [{"offense": str(k), "rows": int(v)} for k, v in counts.items()],
    }
