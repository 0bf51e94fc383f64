"""Meeting recurrence: local wall times, RFC 5545 rules (validate, expand, describe)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil import rrule as du_rrule

from geodata.meetings.model import (
    MeetingError,
)

__all__ = [
    "REPEATS",
    "WEEKDAYS",
    "RulePick",
    "build_rule",
    "describe_rule",
    "expand_rule",
    "meeting_end",
    "pick_from_rule",
    "validate_rrule",
]

_ALLOWED_PARTS = {
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "BYWEEKNO",
    "BYYEARDAY",
    "WKST",
}
_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
#: The whole numbers a rule part may hold, as RFC 5545 bounds them (0 is never one of them).
_NUMBER_PARTS = {
    "INTERVAL": (1, 1000),
    "COUNT": (1, 100_000),
    "BYMONTH": (1, 12),
    "BYMONTHDAY": (-31, 31),
    "BYSETPOS": (-366, 366),
    "BYWEEKNO": (-53, 53),
    "BYYEARDAY": (-366, 366),
}


def _zone(tzid: str) -> ZoneInfo:
    return ZoneInfo(tzid)


def _is_gap(local: datetime, tz: ZoneInfo) -> bool:
    """Return True if the naive local time `local` does not exist in `tz` (spring forward)."""
    aware = local.replace(tzinfo=tz)
    back = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return back != local


def _to_local_naive(value: datetime | date, tz: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time())
    if value.tzinfo is not None:
        return value.astimezone(tz).replace(tzinfo=None)
    return value


def _aware(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz)


def _parse_parts(rule: str) -> dict[str, str]:
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    parts: dict[str, str] = {}
    for chunk in filter(None, text.split(";")):
        if "=" not in chunk:
            msg = f"'{chunk}' is not NAME=VALUE"
            raise ValueError(msg)
        name, value = chunk.split("=", 1)
        name = name.strip().upper()
        if name in parts:
            msg = f"{name} appears twice"
            raise ValueError(msg)
        parts[name] = value.strip().upper()
    return parts


def _check_numbers(rule: str, parts: dict[str, str]) -> None:
    """Refuse a rule part that is not a list of whole numbers in its range (INTERVAL=0 too).

    A rule with ``INTERVAL=0`` never moves past its start and would be expanded for ever; a
    negative one makes the expansion fail: both are the user's typing, refused by name.
    """
    for name, (low, high) in _NUMBER_PARTS.items():
        if name not in parts:
            continue
        values = parts[name].split(",") if name.startswith("BY") else [parts[name]]
        for value in values:
            number = int(value) if re.fullmatch(r"[+-]?\d{1,7}", value.strip()) else None
            if number is None or number == 0 or not low <= number <= high:
                span = f"{low} to {high}" if low > 0 else f"{low} to {high}, not 0"
                text = f"'{rule}': {name}={parts[name]}: must be whole numbers from {span}"
                if name == "INTERVAL":
                    text = f"'{rule}': INTERVAL={parts[name]}: must be a whole number from 1 up"
                raise MeetingError({"rrule": text})


def meeting_end(start: datetime, minutes: int) -> datetime:
    """Return when a meeting of `minutes` that begins at `start` (aware) ends, in its zone.

    The minutes are real ones: a 60-minute meeting at 01:30 on the autumn night the clocks go
    back ends at 01:30 standard time, an hour later, not at 02:30 (two hours) as wall-clock
    arithmetic on an aware datetime would have it.
    """
    return (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(start.tzinfo)


def validate_rrule(rule: str, dtstart: datetime, tzid: str) -> str:
    """Return the canonical form of an RFC 5545 RRULE, or raise :class:`MeetingError`.

    The time of day comes from the start, so ``BYHOUR``/``BYMINUTE``/``BYSECOND`` and sub-daily
    frequencies are refused; ``UNTIL`` is converted to UTC (``...Z``), as RFC 5545 requires with
    a ``TZID`` start.

    Parameters
    ----------
    rule
        E.g. ``FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU`` (second Tuesday of every other month).
    dtstart
        The series start, naive local wall time.
    tzid
        IANA time zone of the start.
    """
    tz = _zone(tzid)
    try:
        parts = _parse_parts(rule)
    except ValueError as err:
        raise MeetingError({"rrule": f"'{rule}' is not a valid RRULE: {err}"}) from err
    unknown = sorted(set(parts) - _ALLOWED_PARTS)
    if unknown:
        text = f"'{rule}': {', '.join(unknown)} not allowed (the time of day comes from the start)"
        raise MeetingError({"rrule": text})
    if parts.get("FREQ") not in _FREQS:
        text = f"'{rule}': FREQ must be one of {', '.join(_FREQS)}"
        raise MeetingError({"rrule": text})
    if "COUNT" in parts and "UNTIL" in parts:
        raise MeetingError({"rrule": f"'{rule}': COUNT and UNTIL cannot both be given"})
    _check_numbers(rule, parts)
    if "UNTIL" in parts:
        until = parts["UNTIL"]
        try:
            if until.endswith("Z"):
                until_utc = datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            elif "T" in until:
                local = datetime.strptime(until, "%Y%m%dT%H%M%S")
                until_utc = local.replace(tzinfo=tz).astimezone(UTC)
            else:
                day = datetime.strptime(until, "%Y%m%d")
                until_utc = (day + timedelta(days=1, seconds=-1)).replace(tzinfo=tz)
                until_utc = until_utc.astimezone(UTC)
        except ValueError as err:
            text = f"'{rule}': UNTIL={until} is not a date (YYYYMMDD or YYYYMMDDTHHMMSSZ)"
            raise MeetingError({"rrule": text}) from err
        if until_utc < _aware(dtstart, tz).astimezone(UTC):
            text = f"'{rule}': UNTIL {until_utc:%Y-%m-%d} is before the start {dtstart:%Y-%m-%d}"
            raise MeetingError({"rrule": text})
        parts["UNTIL"] = until_utc.strftime("%Y%m%dT%H%M%SZ")
    canonical = ";".join(f"{k}={v}" for k, v in parts.items())
    try:
        rule_obj = du_rrule.rrulestr(f"RRULE:{canonical}", dtstart=_aware(dtstart, tz))
        # the first occurrence only: count() would walk an endless rule to the year 9999
        first = next(iter(rule_obj), None)
    except (ValueError, TypeError, IndexError, OverflowError) as err:
        raise MeetingError({"rrule": f"'{rule}' is not a valid RRULE: {err}"}) from err
    if first is None:
        raise MeetingError({"rrule": f"'{rule}' produces no meeting at all"})
    return canonical


def _rule(rule: str, dtstart: datetime, tz: ZoneInfo) -> du_rrule.rrule:
    return du_rrule.rrulestr(f"RRULE:{rule}", dtstart=_aware(dtstart, tz))


def expand_rule(
    rule: str,
    dtstart: datetime,
    start: datetime,
    end: datetime,
    *,
    tzid: str,
) -> list[datetime]:
    """Return the occurrence starts of a rule in ``[start, end)`` as tz-aware local datetimes.

    Occurrences keep the start's local wall time (18:30 stays 18:30 across daylight saving).

    Parameters
    ----------
    rule
        Canonical RRULE (see :func:`validate_rrule`).
    dtstart
        Naive local start of the series (its first occurrence).
    start, end
        Window; naive values are local times.
    tzid
        IANA time zone of the series.
    """
    tz = _zone(tzid)
    lo = _aware(_to_local_naive(start, tz), tz)
    hi = _aware(_to_local_naive(end, tz), tz)
    hits = _rule(rule, dtstart, tz).between(lo, hi, inc=True)
    return [h for h in hits if lo <= h < hi]


def _first_occurrence(rule: str, dtstart: datetime, tz: ZoneInfo) -> datetime | None:
    hit = _rule(rule, dtstart, tz).after(_aware(dtstart, tz), inc=True)
    return None if hit is None else hit.replace(tzinfo=None)


_ORD = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th", -1: "last"}
_DAYS = {
    "MO": "Monday",
    "TU": "Tuesday",
    "WE": "Wednesday",
    "TH": "Thursday",
    "FR": "Friday",
    "SA": "Saturday",
    "SU": "Sunday",
}


def describe_rule(rule: str) -> str:
    """Return a short English description of a rule (``every 2 months, 2nd Tuesday``)."""
    try:
        parts = _parse_parts(rule)
    except ValueError:
        return rule
    unit = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}.get(
        parts.get("FREQ", ""), "?"
    )
    interval = int(parts.get("INTERVAL", "1") or 1)
    if unit == "month" and interval == 3:
        text = "quarterly"
    elif unit == "month" and interval == 2:
        text = "every other month"
    else:
        text = f"every {unit}" if interval == 1 else f"every {interval} {unit}s"
    days = []
    for token in filter(None, parts.get("BYDAY", "").split(",")):
        n, day = token[:-2], token[-2:]
        name = _DAYS.get(day, day)
        days.append(f"{_ORD.get(int(n), n + 'th')} {name}" if n else name)
    if days:
        text += ", " + " and ".join(days)
    if "BYMONTHDAY" in parts:
        text += f", day {parts['BYMONTHDAY']}"
    if "UNTIL" in parts:
        text += f", until {parts['UNTIL'][:4]}-{parts['UNTIL'][4:6]}-{parts['UNTIL'][6:8]}"
    if "COUNT" in parts:
        text += f", {parts['COUNT']} times"
    return text


# --- the editor's recurrence picker -------------------------------------------------------
#: The picker's repetitions: label -> (FREQ, INTERVAL).
REPEATS: dict[str, tuple[str, int]] = {
    "weekly": ("WEEKLY", 1),
    "every other week": ("WEEKLY", 2),
    "monthly": ("MONTHLY", 1),
    "every other month": ("MONTHLY", 2),
    "quarterly": ("MONTHLY", 3),
    "yearly": ("YEARLY", 1),
}
#: Weekday codes of RFC 5545, Monday first.
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class RulePick:
    """A recurrence as the editor's picker shows it (see :func:`build_rule`).

    Parameters
    ----------
    repeat
        A key of :data:`REPEATS` (``"every other month"``).
    weekday
        ``MO`` .. ``SU``; None: the weekday (weekly) or day of the month (monthly) of the start.
    week
        For monthly/quarterly/yearly rules: 1-4 for the n-th `weekday` of the month, -1 for the
        last; None: every `weekday` (weekly) or the start's day of the month.
    skip_months
        Months (1-12) without a meeting (e.g. ``(12,)``: none in December).
    until
        Last day with a meeting (local date), or None.
    """

    repeat: str
    weekday: str | None = None
    week: int | None = None
    skip_months: tuple[int, ...] = ()
    until: date | None = None


def build_rule(pick: RulePick) -> str:
    """Return the RRULE of a picker choice (validate it with :func:`validate_rrule`).

    Examples
    --------
    >>> build_rule(RulePick("every other month", weekday="TU", week=2))
    'FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU'
    >>> build_rule(RulePick("monthly", weekday="WE", week=-1, skip_months=(7, 12)))
    'FREQ=MONTHLY;BYDAY=-1WE;BYMONTH=1,2,3,4,5,6,8,9,10,11'
    """
    if pick.repeat not in REPEATS:
        raise MeetingError({"rrule": f"{pick.repeat!r} is not one of {', '.join(REPEATS)}"})
    freq, interval = REPEATS[pick.repeat]
    parts = [f"FREQ={freq}"] + ([f"INTERVAL={interval}"] if interval > 1 else [])
    if pick.weekday is not None:
        if pick.weekday not in WEEKDAYS:
            raise MeetingError({"rrule": f"{pick.weekday!r} is not a weekday ({WEEKDAYS})"})
        week = "" if freq == "WEEKLY" or pick.week is None else str(pick.week)
        parts.append(f"BYDAY={week}{pick.weekday}")
    skipped = sorted(set(pick.skip_months))
    if skipped:
        if not set(skipped) <= set(range(1, 13)) or len(skipped) == 12:
            raise MeetingError({"rrule": f"cannot skip months {skipped}"})
        parts.append("BYMONTH=" + ",".join(str(m) for m in range(1, 13) if m not in skipped))
    if pick.until is not None:
        parts.append(f"UNTIL={pick.until:%Y%m%d}")
    return ";".join(parts)


def pick_from_rule(rule: str, *, tzid: str) -> RulePick | None:
    """Return the picker choice that gives `rule`, or None when the picker cannot show it.

    The inverse of :func:`build_rule` on its canonical output (``UNTIL`` in UTC is read back
    as the local date); rules with other parts (``COUNT``, ``BYMONTHDAY``, several days) are
    shown as typed rule text instead.
    """
    try:
        parts = _parse_parts(rule)
    except ValueError:
        return None
    if set(parts) - {"FREQ", "INTERVAL", "BYDAY", "BYMONTH", "UNTIL"}:
        return None
    key = (parts.get("FREQ", ""), int(parts.get("INTERVAL", "1") or 1))
    repeat = next((name for name, value in REPEATS.items() if value == key), None)
    if repeat is None:
        return None
    weekday = week = None
    if "BYDAY" in parts:
        token = parts["BYDAY"]
        weekday, number = token[-2:], token[:-2]
        if weekday not in WEEKDAYS or "," in token:
            return None
        if number:
            if key[0] == "WEEKLY" or number not in {"1", "2", "3", "4", "-1"}:
                return None
            week = int(number)
    skip: tuple[int, ...] = ()
    if "BYMONTH" in parts:
        try:
            kept = {int(m) for m in parts["BYMONTH"].split(",")}
        except ValueError:
            return None
        skip = tuple(m for m in range(1, 13) if m not in kept)
    until = None
    if "UNTIL" in parts:
        text = parts["UNTIL"]
        try:
            if text.endswith("Z"):
                moment = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                until = moment.astimezone(_zone(tzid)).date()
            else:
                until = datetime.strptime(text[:8], "%Y%m%d").date()
        except ValueError:
            return None
    return RulePick(repeat, weekday=weekday, week=week, skip_months=skip, until=until)
