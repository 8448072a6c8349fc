"""Duty rosters: who is the on-duty and backup coordinator of each agency on a given duty day.

Explicit dated entries win over rotation rules; an agency with neither is simply absent from
:func:`on_duty`, so a gap in the roster shows up (the whistle alerts the sounding centre) rather
than being papered over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from dispatch.core.kpis import DEFAULT_TIMEZONE
from dispatch.errors import InvalidInputError
from dispatch.models import Agency

# A coordinator as named in tokens (the token subject): no spaces, so it cannot be confused
# with a display name.
Subject = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\S{1,128}$")]


class RosterError(InvalidInputError):
    """A roster file or roster data that cannot be used; the message says where and why."""


class DutySource(StrEnum):
    ENTRY = "entry"
    RULE = "rule"


class RosterEntry(BaseModel):
    """One agency's coordinators for one duty day, set by hand (overrides any rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: dt.date
    agency: Agency
    primary: Subject
    backup: Subject

    @model_validator(mode="after")
    def _distinct(self) -> RosterEntry:
        if self.primary == self.backup:
            raise ValueError("primary and backup must be different people")
        return self


class RotationRule(BaseModel):
    """A daily rotation: on day ``start + k`` the primary is ``names[k % n]``, the backup the next.

    A rule applies from ``start`` on; a later rule of the same agency takes over from its own start.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    agency: Agency
    names: list[Subject] = Field(min_length=1)
    start: date

    @model_validator(mode="after")
    def _unique_names(self) -> RotationRule:
        if len(set(self.names)) != len(self.names):
            raise ValueError("names must not repeat")
        return self

    def duty(self, day: date) -> Duty:
        """Who is on duty on ``day`` under this rule (``day`` must not be before ``start``).

        Raises:
            ValueError: ``day`` is before the rule's start.
        """
        if day < self.start:
            raise ValueError(f"rule for {self.agency.value} starts {self.start}, after {day}")
        n = len(self.names)
        k = (day - self.start).days % n
        # With one name there is no one else to fall back on; say so instead of naming the
        # same person twice (the whistle would "escalate" to the one who did not answer).
        backup = self.names[(k + 1) % n] if n > 1 else None
        return Duty(
            agency=self.agency, primary=self.names[k], backup=backup, source=DutySource.RULE
        )


class Duty(BaseModel):
    """The coordinators of one agency on one duty day."""

    model_config = ConfigDict(frozen=True)

    agency: Agency
    primary: str
    backup: str | None
    source: DutySource


class RosterFile(BaseModel):
    """The object form of a roster file: ``{"entries": [...], "rules": [...]}``."""

    model_config = ConfigDict(extra="forbid")

    entries: list[RosterEntry] = Field(default_factory=list)
    rules: list[RotationRule] = Field(default_factory=list)


def on_duty(
    day: date, entries: Sequence[RosterEntry], rules: Sequence[RotationRule]
) -> dict[Agency, Duty]:
    """The coordinators of every agency that has someone on ``day``.

    Args:
        day: the duty day (see :func:`duty_day`).
        entries: explicit entries; the one for ``day`` and an agency wins over any rule.
        rules: rotations; per agency the rule with the latest ``start`` not after ``day`` applies.

    Returns:
        Agency -> duty. Agencies with no entry and no applicable rule are absent.

    Raises:
        RosterError: two entries for the same day and agency, or two rules of one agency
            with the same start (the roster is ambiguous and guessing would summon the wrong
            person).
    """
    result: dict[Agency, Duty] = {}
    chosen: dict[Agency, RotationRule] = {}
    for rule in rules:
        if rule.start > day:
            continue
        current = chosen.get(rule.agency)
        if current is not None and current.start == rule.start:
            raise RosterError(f"two rotation rules for {rule.agency.value} start on {rule.start}")
        if current is None or rule.start > current.start:
            chosen[rule.agency] = rule
    for agency, rule in chosen.items():
        result[agency] = rule.duty(day)
    seen: set[Agency] = set()
    for entry in entries:
        if entry.date != day:
            continue
        if entry.agency in seen:
            raise RosterError(f"two roster entries for {entry.agency.value} on {day}")
        seen.add(entry.agency)
        result[entry.agency] = Duty(
            agency=entry.agency, primary=entry.primary, backup=entry.backup, source=DutySource.ENTRY
        )
    return dict(sorted(result.items()))


def parse_roster_file(data: Any) -> tuple[list[RosterEntry], list[RotationRule]]:
    """Validate a parsed roster JSON document.

    Accepts a list of entries ``[{"date", "agency", "primary", "backup"}, ...]`` or an object
    ``{"entries": [...], "rules": [{"agency", "names", "start"}, ...]}``.

    Args:
        data: the result of ``json.loads`` on the file.

    Returns:
        ``(entries, rules)``.

    Raises:
        RosterError: wrong shape, a bad field (the message gives its path, e.g.
            ``entries[2].date``), or a duplicate entry (same date and agency) or rule (same
            agency and start).
    """
    if isinstance(data, list):
        data = {"entries": data}
    if not isinstance(data, Mapping):
        raise RosterError(
            f"a roster file is a list of entries or an object with entries/rules, "
            f"not {type(data).__name__}"
        )
    try:
        parsed = RosterFile.model_validate(data)
    except ValidationError as exc:
        raise RosterError(
            "invalid roster: " + "; ".join(_describe(e) for e in exc.errors())
        ) from exc
    seen_entries: set[tuple[date, Agency]] = set()
    for index, entry in enumerate(parsed.entries):
        key = (entry.date, entry.agency)
        if key in seen_entries:
            raise RosterError(
                f"entries[{index}]: a second entry for {entry.agency.value} on {entry.date}"
            )
        seen_entries.add(key)
    seen_rules: set[tuple[Agency, date]] = set()
    for index, rule in enumerate(parsed.rules):
        rule_key = (rule.agency, rule.start)
        if rule_key in seen_rules:
            raise RosterError(
                f"rules[{index}]: a second rule for {rule.agency.value} starting {rule.start}"
            )
        seen_rules.add(rule_key)
    return parsed.entries, parsed.rules


def duty_day(now: datetime, *, tz: str = DEFAULT_TIMEZONE, change_hour: int = 8) -> date:
    """The duty day ``now`` falls in, when the shift changes at ``change_hour`` local time.

    At 07:59 Shanghai time on 30 November the night shift of 29 November is still on; at 08:00
    the 30 November shift takes over.

    Args:
        now: an aware datetime.
        tz: IANA time zone of the duty roster.
        change_hour: local hour (0..23) at which a duty day begins.

    Returns:
        The calendar date of the duty day.

    Raises:
        ValueError: ``now`` is naive, ``change_hour`` is out of range, or ``tz`` is unknown.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not 0 <= change_hour <= 23:
        raise ValueError(f"change_hour must be 0..23, not {change_hour}")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc
    local = now.astimezone(zone)
    day = local.date()
    return day - timedelta(days=1) if local.hour < change_hour else day


def _describe(err: Mapping[str, Any]) -> str:
    path = ""
    for part in err.get("loc", ()):
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{path or 'roster'}: {err.get('msg', 'invalid')}"
