"""Offline "find my beat": turn a typed block address or coordinates into a location.

No geocoding service is reachable from a police network's analysis machine (nor from this
product's CI), so addresses are matched against a *block gazetteer* built from the data itself:
every hundred-block seen in the incidents (Chicago writes ``012XX W MADISON ST``) with the median
position of its incidents. A typed ``1234 w madison street`` becomes ``012XX W MADISON ST``.
Seattle writes ``8XX BLOCK OF NW 95TH ST``: the words naming the block are dropped, so the block
and a typed ``812 Northwest 95th Street`` share the key ``008XX NW 95TH ST``.
Coordinates typed as ``41.8819, -87.6278`` (lat, lon) are used as they are.

One answer everywhere
---------------------
:func:`find_beat` is the only "which beat am I in": it geocodes the query to a point (the
block's position in the gazetteer, or the typed or clicked coordinates) and asks
:meth:`geodata.join.BeatIndex.beat_at`, the same boundary rule as the incident join. The analyst
app, the community app and ``geodata meetings find`` all call it with the gazetteer of
:meth:`BlockGazetteer.from_store` (the community app reads the copy published with the
extract), so an address gets the same beat in every one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import pyproj

from geodata import schema

if TYPE_CHECKING:
    from geodata.join import BeatIndex
    from geodata.store import IncidentStore

__all__ = [
    "GAZETTEER_COLUMNS",
    "BlockGazetteer",
    "FoundBeat",
    "Located",
    "block_as_address",
    "find_beat",
    "normalize_block",
    "parse_coordinates",
]

#: Columns of a gazetteer table (what the publish step writes; no incident counts).
GAZETTEER_COLUMNS = (schema.BLOCK, "lon", "lat", "x", "y")

_SUFFIXES = {
    "STREET": "ST",
    "AVENUE": "AVE",
    "AV": "AVE",
    "BOULEVARD": "BLVD",
    "ROAD": "RD",
    "DRIVE": "DR",
    "PLACE": "PL",
    "COURT": "CT",
    "PARKWAY": "PKWY",
    "TERRACE": "TER",
    "LANE": "LN",
    "HIGHWAY": "HWY",
    "EXPRESSWAY": "EXPY",
    "SQUARE": "SQ",
    "CIRCLE": "CIR",
}
_DIRECTIONS = {"NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W"}
#: Compound directions, abbreviated only where a direction stands: first in the street
#: (``NORTHWEST 95TH ST``) or last after its type (``35TH AVE NORTHEAST``); Chicago's
#: ``N NORTHWEST HWY`` is a street named Northwest and keeps its name.
_COMPOUND_DIRECTIONS = {"NORTHEAST": "NE", "NORTHWEST": "NW", "SOUTHEAST": "SE", "SOUTHWEST": "SW"}
_SUFFIX_SET = frozenset(_SUFFIXES.values())
#: Abbreviated directions, kept in capitals when a block is written back as an address.
_DIRECTION_ABBREVIATIONS = frozenset([*_DIRECTIONS.values(), *_COMPOUND_DIRECTIONS.values()])
#: Words naming the block itself between its number and its street (Seattle writes
#: ``8XX BLOCK OF NW 95TH ST``; a typed ``800 blk of ...`` or ``800 block ...`` means the same).
_BLOCK_WORDS = frozenset({"BLOCK", "BLK"})
#: A dotted compound direction (``N.W.``, ``S. E.``), joined before punctuation is dropped.
_DOTTED_DIRECTION = re.compile(r"\b([NS])\.\s*([EW])\b\.?")
_COORDS = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[,;\s]\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Located:
    """A located query: WGS84 and analysis-CRS coordinates and what it matched."""

    lon: float
    lat: float
    x: float
    y: float
    matched: str
    how: str  # "coordinates", "block" or "street"


def parse_coordinates(text: str) -> tuple[float, float] | None:
    """Return ``(lat, lon)`` if `text` is a coordinate pair, else None.

    ``lat, lon`` is the default order; a pair whose first value cannot be a latitude
    (``-87.63`` can, ``-187.6`` cannot) is read as ``lon, lat``. When both values could be
    latitudes the order is ambiguous and ``lat, lon`` is assumed: :meth:`BlockGazetteer.locate`
    swaps such a pair when only the swapped reading falls in its area.
    """
    match = _COORDS.match(text or "")
    if not match:
        return None
    a, b = float(match.group(1)), float(match.group(2))
    if abs(a) <= 90 and abs(b) <= 180:
        if abs(b) <= 90 < abs(a):
            return b, a
        return a, b
    if abs(b) <= 90 and abs(a) <= 180:
        return b, a
    return None


def normalize_block(text: str) -> str | None:
    """Return the hundred-block key of an address (``1234 W Madison St`` -> ``012XX W MADISON ST``).

    Already-generalised blocks (``012XX W MADISON ST``, ``12XX W Madison``) are normalised the
    same way, and so is Chicago's zero-hundred block written with one ``X`` (``0000X S STATE ST``
    -> ``000XX S STATE ST``). The words naming the block (Seattle's ``8XX BLOCK OF NW 95TH ST``,
    a typed ``800 blk of``) are dropped, so ``812 NW 95th St`` and Seattle's block share the key
    ``008XX NW 95TH ST``. Direction words are abbreviated (``NORTH`` -> ``N``; ``NORTHWEST`` or
    ``N.W.`` -> ``NW`` where a direction stands: first, or last after the street type, so
    Chicago's ``N NORTHWEST HWY`` keeps its name) and street types shortened (``STREET`` -> ``ST``).

    Parameters
    ----------
    text
        A typed address or a block as a source writes it.

    Returns
    -------
    str or None
        The key ``NNNXX STREET``, or None when `text` has no house or block number or no street.
    """
    upper = _DOTTED_DIRECTION.sub(r"\1\2", (text or "").upper())
    words = re.sub(r"[^0-9A-Z ]+", " ", upper).split()
    if not words:
        return None
    number = words[0]
    match = re.fullmatch(r"(\d+)(X{1,2})?", number)
    if not match:
        return None
    digits, xs = int(match.group(1)), match.group(2) or ""
    hundreds = digits // 10 ** (2 - len(xs))  # 1234 -> 12, 012XX -> 12, 0000X -> 0
    rest = _drop_block_words(words[1:])
    rest = [_DIRECTIONS.get(w, w) for w in rest]
    rest = [_SUFFIXES.get(w, w) for w in rest]
    rest = [
        _COMPOUND_DIRECTIONS[w]
        if w in _COMPOUND_DIRECTIONS
        and (i == 0 or (i == len(rest) - 1 and rest[i - 1] in _SUFFIX_SET))
        else w
        for i, w in enumerate(rest)
    ]
    if not rest:
        return None
    return f"{hundreds:03d}XX " + " ".join(rest)


def _drop_block_words(words: list[str]) -> list[str]:
    """Return `words` (after the number) without a leading ``BLOCK``, ``BLK`` or ``BLOCK OF``.

    The word stays when nothing but a street type would follow it (a street named ``BLOCK ST``).
    """
    if not words or words[0] not in _BLOCK_WORDS:
        return words
    rest = words[2:] if words[1:2] == ["OF"] else words[1:]
    if not rest or (len(rest) == 1 and _SUFFIXES.get(rest[0], rest[0]) in _SUFFIX_SET):
        return words
    return rest


def block_as_address(block: str) -> str:
    """Return a block key written as an address (``086XX ISLAND DR S`` -> ``8600 Island Dr S``).

    The house number is the block's first (``1`` for the zero-hundred block), directions stay
    abbreviated in capitals and numbered streets read ``95th``; :func:`normalize_block` of the
    result is `block` again. Used for the example of the "not found" hint, so every department
    is shown an address of its own data.

    Parameters
    ----------
    block
        A key of :func:`normalize_block`.

    Returns
    -------
    str
        The address.
    """
    number, _, street = block.partition(" ")
    hundreds = int(number.rstrip("X") or 0)
    words = []
    for word in street.split():
        if word in _DIRECTION_ABBREVIATIONS:
            words.append(word)
        elif word[:1].isdigit():
            words.append(word.lower())
        else:
            words.append(word.capitalize())
    return " ".join([str(hundreds * 100 or 1), *words])


def _street_key(block: str) -> str:
    return block.split(" ", 1)[1] if " " in block else block


class BlockGazetteer:
    """Block -> position lookup built from located incidents (or any frame with blocks).

    Parameters
    ----------
    blocks
        One row per block: ``block``, ``lon``, ``lat``, ``x``, ``y``, ``n``.
    crs
        The CRS of ``x``/``y``.
    """

    def __init__(self, blocks: pd.DataFrame, crs: str) -> None:
        self.blocks = blocks.set_index(schema.BLOCK)
        self.crs = crs
        self._to_xy = pyproj.Transformer.from_crs(schema.WGS84, crs, always_xy=True)
        streets = self.blocks.index.to_series().map(_street_key)
        self._by_street = {k: v.index.tolist() for k, v in streets.groupby(streets)}

    @classmethod
    def from_incidents(cls, incidents: pd.DataFrame, crs: str) -> BlockGazetteer:
        """Return the gazetteer of every block in `incidents` at its incidents' median position."""
        located = incidents.dropna(subset=[schema.BLOCK, schema.LON, schema.LAT])
        keys = located[schema.BLOCK].astype(str).map(normalize_block)
        located = located.assign(**{schema.BLOCK: keys}).dropna(subset=[schema.BLOCK])
        blocks = (
            located.groupby(schema.BLOCK)
            .agg(
                lon=(schema.LON, "median"),
                lat=(schema.LAT, "median"),
                x=(schema.X, "median"),
                y=(schema.Y, "median"),
                n=(schema.LON, "size"),
            )
            .reset_index()
        )
        return cls(blocks, crs)

    @classmethod
    def from_store(cls, store: IncidentStore) -> BlockGazetteer:
        """Return the gazetteer of a store: every block of its non-sensitive incidents.

        Incidents flagged sensitive or domestic are left out, so the table can be published
        with the community extract without saying where such an incident happened. Every app
        and command builds its gazetteer here (the community app reads the published copy).
        """
        columns = [schema.BLOCK, schema.X, schema.Y, schema.LON, schema.LAT]
        columns += [schema.IS_SENSITIVE, schema.DOMESTIC]
        incidents = store.load_incidents(columns=columns)
        hidden = incidents[schema.IS_SENSITIVE].fillna(False).astype(bool) | incidents[
            schema.DOMESTIC
        ].fillna(False).astype(bool)
        return cls.from_incidents(incidents[~hidden.to_numpy()], store.analysis_crs)

    def to_frame(self) -> pd.DataFrame:
        """Return the table of blocks and positions (:data:`GAZETTEER_COLUMNS`), for publishing."""
        return self.blocks.reset_index()[list(GAZETTEER_COLUMNS)]

    @classmethod
    def from_frame(cls, blocks: pd.DataFrame, crs: str) -> BlockGazetteer:
        """Return the gazetteer of a table written by :meth:`to_frame`."""
        missing = sorted(set(GAZETTEER_COLUMNS) - set(blocks.columns))
        if missing:
            msg = f"a block gazetteer needs {list(GAZETTEER_COLUMNS)}; missing {missing}"
            raise ValueError(msg)
        return cls(blocks[list(GAZETTEER_COLUMNS)].reset_index(drop=True), crs)

    def __len__(self) -> int:
        return len(self.blocks)

    def locate(self, text: str) -> Located | None:
        """Return the location of a typed address, block or coordinate pair, or None.

        An exact block wins; otherwise the nearest hundred-block on the same street (so
        ``1250 W Madison`` finds ``012XX W MADISON ST`` even if only ``013XX`` was seen).
        """
        coords = parse_coordinates(text)
        if coords is not None:
            lat, lon = coords
            if not self._covers(lon, lat) and self._covers(lat, lon):  # typed as "lon, lat"
                lat, lon = lon, lat
            x, y = self._to_xy.transform(lon, lat)
            return Located(lon, lat, float(x), float(y), f"{lat:.5f}, {lon:.5f}", "coordinates")
        key = normalize_block(text)
        if key is None:
            return None
        if key in self.blocks.index:
            return self._located(key, "block")
        street = _street_key(key)
        candidates = self._by_street.get(street)
        if not candidates:  # tolerate a missing suffix: "W MADISON" matches "W MADISON ST"
            options = [s for s in self._by_street if s.startswith(street + " ") or s == street]
            if len(options) != 1:
                return None
            candidates = self._by_street[options[0]]
        wanted = int(key[:3])
        best = min(candidates, key=lambda b: abs(int(b[:3]) - wanted))
        return self._located(best, "street")

    def _covers(self, lon: float, lat: float) -> bool:
        """Return True when (lon, lat) lies within the blocks' extent plus about 5 km."""
        pad = 0.05
        return bool(
            self.blocks["lon"].min() - pad <= lon <= self.blocks["lon"].max() + pad
            and self.blocks["lat"].min() - pad <= lat <= self.blocks["lat"].max() + pad
        )

    def _located(self, block: str, how: str) -> Located:
        row = self.blocks.loc[block]
        return Located(
            float(row["lon"]), float(row["lat"]), float(row["x"]), float(row["y"]), block, how
        )

    def suggestions(self, prefix: str, limit: int = 10) -> list[str]:
        """Return up to `limit` known blocks on streets starting like `prefix`."""
        key = normalize_block(prefix)
        street = _street_key(key) if key else (prefix or "").upper().strip()
        hits = [b for b in self.blocks.index if _street_key(b).startswith(street)]
        return sorted(hits)[:limit] if hits else []

    def example_address(self) -> str | None:
        """Return an address of this gazetteer's own data, for the "not found" hint.

        The middle block of the street with the most known blocks (ties: the first street
        alphabetically), written as :func:`block_as_address`: ``8200 Aurora Ave N`` for the
        bundled Seattle store, ``5200 S Michigan Ave`` for ``geodata init``'s Chicago one.
        Only block names are read, so the analyst apps' gazetteer and the published copy
        (which has no incident counts) give the same example.

        Returns
        -------
        str or None
            The address, or None for an empty gazetteer.
        """
        if not self._by_street:
            return None
        street = min(self._by_street, key=lambda s: (-len(self._by_street[s]), s))
        blocks = sorted(self._by_street[street])
        return block_as_address(blocks[len(blocks) // 2])


@dataclass(frozen=True)
class FoundBeat:
    """The answer to "which beat am I in": where the query was placed and the beat there."""

    query: str
    located: Located | None
    beat: str | None
    #: An address of the department's own data for the "not found" hint
    #: (:meth:`BlockGazetteer.example_address`); None gives the hint without an example.
    example: str | None = None

    @property
    def message(self) -> str:
        """Return the answer in the user's words."""
        if self.located is None:
            example = f" (e.g. {self.example})" if self.example else ""
            return (
                f"No block or coordinates recognised in “{self.query}”; type a house number "
                f"and street{example} or a latitude, longitude."
            )
        how = {
            "block": "block",
            "street": "nearest known block on that street",
            "coordinates": "point",
            "click": "point on the map",
        }.get(self.located.how, self.located.how)
        if self.beat is None:
            return f"{self.located.matched} ({how}) is outside every beat."
        return f"{self.located.matched} ({how}) is in beat {self.beat}."


def find_beat(
    query: str | tuple[float, float],
    *,
    gazetteer: BlockGazetteer,
    index: BeatIndex,
) -> FoundBeat:
    """Return the beat of a typed address, block, ``"lat, lon"`` text or ``(lat, lon)`` pair.

    The query is placed on a point (the block's gazetteer position, or the coordinates) and
    the beat is :meth:`geodata.join.BeatIndex.beat_at` of that point: the same boundary rule
    as the incident join, for every app and command.

    Parameters
    ----------
    query
        Typed text, or a ``(lat, lon)`` pair such as a map click.
    gazetteer
        The block gazetteer (:meth:`BlockGazetteer.from_store` or its published copy).
    index
        The beat index of the beat outlines.

    Returns
    -------
    FoundBeat
        ``located`` is None when nothing in the text was recognised; ``beat`` is None when the
        point lies in no beat.
    """
    if isinstance(query, tuple):
        lat, lon = float(query[0]), float(query[1])
        x, y = gazetteer._to_xy.transform(lon, lat)
        located: Located | None = Located(
            lon, lat, float(x), float(y), f"{lat:.5f}, {lon:.5f}", "click"
        )
        assert located is not None
        text = located.matched
    else:
        text = str(query)
        located = gazetteer.locate(text)
    if located is None:
        return FoundBeat(text, None, None, gazetteer.example_address())
    return FoundBeat(text, located, index.beat_at(located.lon, located.lat))
