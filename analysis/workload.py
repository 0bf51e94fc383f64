"""Workload of incidents: counts weighted by category and priority, or time on task.

The weights live in an editable TOML file (``analysis/workload_weights.toml`` by default);
:func:`read_weights` reads it and :func:`incident_workload` turns incidents into one workload
value each, which beat planning sums over areas.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geodata import schema
from geodata.errors import InputError

__all__ = [
    "DEFAULT_WEIGHTS_PATH",
    "WORKLOAD",
    "WorkloadWeights",
    "incident_workload",
    "read_weights",
]

DEFAULT_WEIGHTS_PATH = Path(__file__).resolve().parent / "workload_weights.toml"
#: Column holding one incident's workload.
WORKLOAD = "workload"


@dataclass(frozen=True)
class WorkloadWeights:
    """Workload weights: per category, per priority, and optional time on task.

    Attributes
    ----------
    category
        Weight of each category (``violent`` ...).
    default_weight
        Weight of a category or priority that is not listed.
    priority
        Weight of each priority value (as text), applied when `priority_column` exists.
    priority_column
        Name of the priority column in the incidents.
    time_on_task_column
        Name of the time-on-task column (minutes), used when present and `use_time_on_task`.
    use_time_on_task
        Whether to use time on task when the incidents carry it.
    default_minutes
        Typical minutes per category, filling missing time-on-task values.
    source
        Where the weights came from (file path or ``"built-in"``).
    """

    category: dict[str, float] = field(default_factory=dict)
    default_weight: float = 1.0
    priority: dict[str, float] = field(default_factory=dict)
    priority_column: str = "priority"
    time_on_task_column: str = "time_on_task_min"
    use_time_on_task: bool = True
    default_minutes: dict[str, float] = field(default_factory=dict)
    source: str = "built-in"

    def to_dict(self) -> dict[str, object]:
        """Return the weights as a JSON-serialisable dict (stored with a plan's parameters)."""
        return {
            "category": dict(self.category),
            "default_weight": self.default_weight,
            "priority": dict(self.priority),
            "priority_column": self.priority_column,
            "time_on_task_column": self.time_on_task_column,
            "use_time_on_task": self.use_time_on_task,
            "default_minutes": dict(self.default_minutes),
            "source": self.source,
        }


def _number_table(table: object, path: Path, key: str) -> dict[str, float]:
    if not isinstance(table, dict):
        msg = f"{path}: [{key}] must be a table of name = number"
        raise InputError(msg, path=str(path), column=key)
    out: dict[str, float] = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            msg = f"{path}: [{key}] {name} = {value!r} is not a non-negative number"
            raise InputError(msg, path=str(path), column=key)
        out[str(name)] = float(value)
    return out


def read_weights(path: str | Path | None = None) -> WorkloadWeights:
    """Return the workload weights of a TOML file (default: ``analysis/workload_weights.toml``).

    Parameters
    ----------
    path
        The weights file; None reads the documented default.

    Raises
    ------
    InputError
        If the file is missing, not TOML, or a weight is not a non-negative number; the message
        names the file and the table.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS_PATH
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError as err:
        msg = f"{path}: no such workload weights file"
        raise InputError(msg, path=str(path)) from err
    except tomllib.TOMLDecodeError as err:
        msg = f"{path}: not valid TOML ({err})"
        raise InputError(msg, path=str(path)) from err
    default = raw.get("default_weight", 1.0)
    if isinstance(default, bool) or not isinstance(default, int | float) or default < 0:
        msg = f"{path}: default_weight = {default!r} is not a non-negative number"
        raise InputError(msg, path=str(path), column="default_weight")
    priority = dict(raw.get("priority", {}))
    priority_column = str(priority.pop("column", "priority"))
    tot = dict(raw.get("time_on_task", {}))
    minutes = tot.pop("default_minutes", {})
    return WorkloadWeights(
        category=_number_table(raw.get("category", {}), path, "category"),
        default_weight=float(default),
        priority=_number_table(priority, path, "priority"),
        priority_column=priority_column,
        time_on_task_column=str(tot.get("column", "time_on_task_min")),
        use_time_on_task=bool(tot.get("use", True)),
        default_minutes=_number_table(minutes, path, "time_on_task.default_minutes"),
        source=str(path),
    )


def incident_workload(incidents: pd.DataFrame, weights: WorkloadWeights | None = None) -> pd.Series:
    """Return the workload of each incident (same index as `incidents`).

    Weighted incidents: the category weight times the priority weight (when the incidents have
    the priority column). With a time-on-task column and ``use_time_on_task``: officer-hours,
    minutes / 60, missing minutes filled with the category's typical minutes.

    Parameters
    ----------
    incidents
        Canonical incidents with a ``category`` column.
    weights
        The weights; None reads the default file.

    Raises
    ------
    InputError
        If `incidents` has no ``category`` column.
    """
    if schema.CATEGORY not in incidents.columns:
        msg = f"incidents have no column {schema.CATEGORY!r}: workload needs the category"
        raise InputError(msg, column=schema.CATEGORY)
    weights = weights if weights is not None else read_weights()
    if weights.use_time_on_task and weights.time_on_task_column in incidents.columns:
        minutes = pd.to_numeric(incidents[weights.time_on_task_column], errors="coerce")
        category = incidents[schema.CATEGORY].astype("string").fillna("")
        fill = category.map(weights.default_minutes).astype("float64")
        fill = fill.fillna(float(np.mean(list(weights.default_minutes.values()) or [30.0])))
        return (minutes.fillna(fill) / 60.0).astype("float64").rename(WORKLOAD)
    values = _category_weights(incidents[schema.CATEGORY], weights)
    if weights.priority and weights.priority_column in incidents.columns:
        prio = _priority_keys(incidents[weights.priority_column])
        values = values * prio.map(weights.priority).astype("float64").fillna(
            weights.default_weight
        )
    return values.rename(WORKLOAD)


def _category_weights(category: pd.Series, weights: WorkloadWeights) -> pd.Series:
    """Return each incident's category weight (the default weight for other categories).

    The weight is looked up once per distinct category and spread with the factorised codes:
    no Python string is made per incident.
    """
    codes, uniques = pd.factorize(category)  # a missing category gets code -1
    keys = [*pd.Series(uniques).astype("string").fillna("").tolist(), ""]
    looked_up = pd.Series(keys, dtype="string").map(weights.category).astype("float64")
    per_key = looked_up.fillna(weights.default_weight).to_numpy()
    return pd.Series(per_key[codes], index=category.index, dtype="float64")


def _priority_keys(raw: pd.Series) -> pd.Series:
    """Return priorities as the TOML's keys: ``1``, ``1.0`` and ``" 1 "`` all become ``"1"``.

    CAD exports with a missing priority are read as floats (``1.0``), which must still match the
    key ``"1"``; non-numeric codes (``"P1"``) are kept as stripped text.
    """
    text = raw.astype("string").str.strip()
    number = pd.to_numeric(text, errors="coerce")
    whole = number.notna() & (number == number.round())
    keys = text.copy()
    keys[whole] = number[whole].astype("int64").astype(str)
    return keys
