"""Duty rosters: rotation arithmetic, explicit entries, file parsing, the duty day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from dispatch.core.rosters import (
    DutySource,
    RosterEntry,
    RosterError,
    RotationRule,
    duty_day,
    on_duty,
    parse_roster_file,
)
from dispatch.models import Agency

A = Agency
SHANGHAI = timezone(timedelta(hours=8))


def rule(agency: Agency, names: list[str], start: date) -> RotationRule:
    return RotationRule(agency=agency, names=names, start=start)


@pytest.mark.parametrize(
    ("start", "day", "primary", "backup"),
    [
        (date(2026, 11, 1), date(2026, 11, 1), "a", "b"),
        (date(2026, 11, 1), date(2026, 11, 2), "b", "c"),
        (date(2026, 11, 1), date(2026, 11, 3), "c", "a"),
        (date(2026, 11, 1), date(2026, 11, 30), "c", "a"),  # day 29
        (date(2026, 11, 1), date(2026, 12, 1), "a", "b"),  # month boundary: day 30
        (date(2026, 11, 1), date(2026, 12, 31), "a", "b"),  # day 60
        (date(2026, 11, 1), date(2027, 1, 1), "b", "c"),  # year boundary: day 61
        (date(2028, 2, 28), date(2028, 2, 29), "b", "c"),  # leap day
        (date(2028, 2, 28), date(2028, 3, 1), "c", "a"),
        (date(2027, 2, 28), date(2027, 3, 1), "b", "c"),  # no leap day
    ],
)
def test_rotation(start: date, day: date, primary: str, backup: str) -> None:
    duty = on_duty(day, [], [rule(A.EMS, ["a", "b", "c"], start)])
    assert duty[A.EMS].primary == primary
    assert duty[A.EMS].backup == backup
    assert duty[A.EMS].source == DutySource.RULE


def test_single_name_rotation_has_no_backup() -> None:
    duty = on_duty(date(2026, 12, 5), [], [rule(A.FIRE, ["solo"], date(2026, 1, 1))])
    assert duty[A.FIRE].primary == "solo" and duty[A.FIRE].backup is None


def test_entry_wins_and_missing_agency_is_visible() -> None:
    day = date(2026, 11, 29)
    entries = [
        RosterEntry(date=day, agency=A.EMS, primary="e-hand", backup="e-hand2"),
        RosterEntry(date=day + timedelta(days=1), agency=A.TRAFFIC, primary="x", backup="y"),
    ]
    rules = [
        rule(A.EMS, ["e1", "e2"], date(2026, 11, 1)),
        rule(A.FIRE, ["f1", "f2"], date(2026, 11, 1)),
        rule(A.TRAFFIC, ["t1", "t2"], day + timedelta(days=1)),  # not started yet
    ]
    duty = on_duty(day, entries, rules)
    assert set(duty) == {A.EMS, A.FIRE}
    assert duty[A.EMS].primary == "e-hand" and duty[A.EMS].source == DutySource.ENTRY
    assert duty[A.FIRE].primary == "f1"


def test_later_rule_takes_over() -> None:
    rules = [
        rule(A.EMS, ["new1", "new2"], date(2026, 12, 1)),
        rule(A.EMS, ["a", "b"], date(2026, 1, 1)),
    ]
    assert on_duty(date(2026, 11, 30), [], rules)[A.EMS].primary in {"a", "b"}
    assert on_duty(date(2026, 12, 1), [], rules)[A.EMS].primary == "new1"


def test_ambiguous_roster_is_refused() -> None:
    day = date(2026, 11, 29)
    entries = [
        RosterEntry(date=day, agency=A.EMS, primary="a", backup="b"),
        RosterEntry(date=day, agency=A.EMS, primary="c", backup="d"),
    ]
    with pytest.raises(RosterError, match="two roster entries"):
        on_duty(day, entries, [])
    rules = [rule(A.EMS, ["a"], day), rule(A.EMS, ["b"], day)]
    with pytest.raises(RosterError, match="two rotation rules"):
        on_duty(day, [], rules)


def test_parse_list_form() -> None:
    entries, rules = parse_roster_file(
        [{"date": "2026-11-29", "agency": "ems", "primary": "wang.li", "backup": "zhao.min"}]
    )
    assert rules == []
    assert entries == [
        RosterEntry(date=date(2026, 11, 29), agency=A.EMS, primary="wang.li", backup="zhao.min")
    ]


def test_parse_object_form() -> None:
    entries, rules = parse_roster_file(
        {
            "entries": [{"date": "2026-11-29", "agency": "fire", "primary": "p", "backup": "q"}],
            "rules": [{"agency": "traffic", "names": ["t1", "t2", "t3"], "start": "2026-11-01"}],
        }
    )
    assert len(entries) == 1
    assert rules == [rule(A.TRAFFIC, ["t1", "t2", "t3"], date(2026, 11, 1))]


GOOD_ENTRY = {"date": "2026-11-29", "agency": "ems", "primary": "a", "backup": "b"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("ems", "not str"),
        (42, "not int"),
        ([{**GOOD_ENTRY, "date": "2026-13-01"}], r"entries\[0\]\.date"),
        ([GOOD_ENTRY, {**GOOD_ENTRY, "agency": "army"}], r"entries\[1\]\.agency"),
        ([{**GOOD_ENTRY, "primary": ""}], r"entries\[0\]\.primary"),
        ([{**GOOD_ENTRY, "primary": "wang li"}], r"entries\[0\]\.primary"),
        ([{**GOOD_ENTRY, "backup": "a"}], "different people"),
        ([{k: v for k, v in GOOD_ENTRY.items() if k != "backup"}], r"entries\[0\]\.backup"),
        ([{**GOOD_ENTRY, "shift": "night"}], r"entries\[0\]\.shift"),
        ([GOOD_ENTRY, GOOD_ENTRY], r"entries\[1\]: a second entry for ems on 2026-11-29"),
        ({"entries": [], "rota": []}, "rota"),
        ({"rules": [{"agency": "ems", "names": [], "start": "2026-11-01"}]}, r"rules\[0\]\.names"),
        ({"rules": [{"agency": "ems", "names": ["a", "a"], "start": "2026-11-01"}]}, "repeat"),
        (
            {
                "rules": [
                    {"agency": "ems", "names": ["a"], "start": "2026-11-01"},
                    {"agency": "ems", "names": ["b"], "start": "2026-11-01"},
                ]
            },
            r"rules\[1\]: a second rule for ems",
        ),
    ],
)
def test_parse_errors(data: Any, message: str) -> None:
    with pytest.raises(RosterError, match=message):
        parse_roster_file(data)


@pytest.mark.parametrize(
    ("now", "change_hour", "expected"),
    [
        (datetime(2026, 11, 30, 7, 59, 59, tzinfo=SHANGHAI), 8, date(2026, 11, 29)),
        (datetime(2026, 11, 30, 8, 0, tzinfo=SHANGHAI), 8, date(2026, 11, 30)),
        # The same instants in UTC: 23:59:59 and 00:00 UTC.
        (datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC), 8, date(2026, 11, 29)),
        (datetime(2026, 11, 30, 0, 0, tzinfo=UTC), 8, date(2026, 11, 30)),
        # New Year's morning still belongs to the old year's night shift.
        (datetime(2027, 1, 1, 7, 0, tzinfo=SHANGHAI), 8, date(2026, 12, 31)),
        (datetime(2027, 3, 1, 7, 0, tzinfo=SHANGHAI), 8, date(2027, 2, 28)),
        (datetime(2026, 11, 30, 0, 0, tzinfo=SHANGHAI), 0, date(2026, 11, 30)),
        (datetime(2026, 11, 29, 23, 59, tzinfo=SHANGHAI), 0, date(2026, 11, 29)),
    ],
)
def test_duty_day(now: datetime, change_hour: int, expected: date) -> None:
    assert duty_day(now, change_hour=change_hour) == expected


def test_duty_day_other_zone() -> None:
    now = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 11:00 Shanghai, 04:00 Berlin
    assert duty_day(now) == date(2026, 11, 30)
    assert duty_day(now, tz="Europe/Berlin") == date(2026, 11, 29)


@pytest.mark.parametrize(
    ("now", "kwargs", "message"),
    [
        (datetime(2026, 11, 30, 8, 0), {}, "aware"),
        (datetime(2026, 11, 30, 8, 0, tzinfo=SHANGHAI), {"change_hour": 24}, "0..23"),
        (datetime(2026, 11, 30, 8, 0, tzinfo=SHANGHAI), {"tz": "Mars/Olympus"}, "time zone"),
    ],
)
def test_duty_day_errors(now: datetime, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        duty_day(now, **kwargs)
