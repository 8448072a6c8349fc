"""Call events: parsing stream fields, reasons for refusals, and hostile input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.codec import call_from_fields
from dispatch.errors import InvalidCallError
from dispatch.models import CallEvent, CallRecord, CallType, Centre, mask_phone, mask_pii

GOOD = {
    "call_id": "120-20261129-0042",
    "centre": "120",
    "call_type": "critical_patient",
    "lat": "30.0495",
    "lon": "119.9601",
    "received_at": "2026-11-29T20:15:00+08:00",
    "address": "富春街道 金桥北路 12号",
    "caller_phone": "13912345678",
    "severity": "4",
}


def test_good_call_parses_from_flat_strings() -> None:
    call = call_from_fields({k.encode(): v.encode() for k, v in GOOD.items()})
    assert call.centre is Centre.EMS
    assert call.call_type is CallType.CRITICAL_PATIENT
    assert call.severity == 4
    assert call.key == "120:120-20261129-0042"
    assert call.received_at.utcoffset() is not None


def test_round_trip_through_fields() -> None:
    call = call_from_fields(GOOD)
    assert call_from_fields(call.to_fields()) == call


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"centre": "110"}, "centre"),
        ({"call_type": "alien_landing"}, "call_type"),
        ({"lat": "91"}, "lat"),
        ({"lon": "nan"}, "lon"),
        ({"received_at": "2026-11-29T20:15:00"}, "UTC offset"),
        ({"received_at": "yesterday"}, "received_at"),
        ({"severity": "9"}, "severity"),
        ({"call_id": ""}, "call_id"),
        ({"call_id": "a b"}, "call_id"),
        ({"caller_phone": "call me maybe"}, "caller_phone"),
        ({"schema_version": "2"}, "schema_version"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_fields_are_refused_with_the_field_named(change: dict[str, str], needle: str) -> None:
    fields = {**GOOD, **change}
    with pytest.raises(InvalidCallError) as info:
        call_from_fields(fields)
    assert needle in info.value.reason


def test_missing_field_is_named() -> None:
    fields = dict(GOOD)
    del fields["lat"]
    with pytest.raises(InvalidCallError, match="lat"):
        call_from_fields(fields)


def test_reason_never_echoes_the_phone() -> None:
    fields = {**GOOD, "severity": "banana"}
    with pytest.raises(InvalidCallError) as info:
        call_from_fields(fields)
    assert "13912345678" not in info.value.reason


def test_non_utf8_is_refused() -> None:
    with pytest.raises(InvalidCallError, match="UTF-8"):
        call_from_fields({**GOOD, "address": b"\xff\xfe"})  # type: ignore[dict-item]


@given(st.dictionaries(st.binary(max_size=20), st.binary(max_size=200), max_size=40))
@settings(max_examples=300, deadline=None)
def test_hostile_entries_only_ever_raise_invalid_call(raw: dict[bytes, bytes]) -> None:
    try:
        call = call_from_fields(raw)  # type: ignore[arg-type]
    except InvalidCallError as exc:
        assert exc.reason
    else:
        assert isinstance(call, CallEvent)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13912345678", "139******78"),
        ("+86 139 1234 5678", "861********78"),
        ("110", "***"),
        (None, None),
    ],
)
def test_mask_phone(phone: str | None, masked: str | None) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("caller 139 1234 5678 says", "caller 139******78 says"),
        ("ID 330183199001011234 on the card", "ID 330183********1234 on the card"),
        ("ID 33018319900101123X", "ID 330183********123X"),
        ("landline 0571-88886666", "landline 057*******66"),
        ("bus 301, km 12, room 1203, plate 浙A12345", "bus 301, km 12, room 1203, plate 浙A12345"),
        (None, None),
    ],
)
def test_numbers_typed_into_free_text_are_masked(text: str | None, masked: str | None) -> None:
    assert mask_pii(text) == masked


def test_a_call_record_never_keeps_a_typed_number() -> None:
    call = CallEvent(
        call_id="P1",
        centre=Centre.EMS,
        call_type=CallType.CRITICAL_PATIENT,
        lat=30.05,
        lon=119.96,
        received_at=datetime(2026, 11, 29, 20, 15, tzinfo=UTC),
        description="son says call him on 13912345678",
        address="Building 3, tel 0571 8888 6666",
    )
    record = CallRecord.from_call(call)
    assert "13912345678" not in (record.description or "")
    assert "8888" not in (record.address or "")
