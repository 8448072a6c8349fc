"""Fixtures of the standards tests: the shared standards folder, read in place."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dispatch.interop.schemas import (
    CapSchema,
    EidoSchema,
    cap_schema,
    eido_schema,
    resolve_standards_dir,
)
from dispatch.models import (
    Agency,
    Assignment,
    CallEvent,
    CallRecord,
    CallType,
    Centre,
    Incident,
    IncidentStatus,
    TimelineEntry,
    UnitStatus,
    UnitType,
)

STANDARDS = resolve_standards_dir()
T0 = datetime(2026, 12, 2, 6, 39, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def standards() -> Path:
    if not (STANDARDS / "PROVENANCE.md").is_file():
        pytest.skip(f"shared standards folder {STANDARDS} is absent")
    return STANDARDS


@pytest.fixture(scope="session")
def eido(standards: Path) -> EidoSchema:
    return eido_schema(standards)


@pytest.fixture(scope="session")
def cap(standards: Path) -> CapSchema:
    return cap_schema(standards)


@pytest.fixture
def nena_sample(standards: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (standards / "eido" / "sample-call-transfer.json").read_text(encoding="utf-8")
    )
    return data


def joint_incident() -> Incident:
    """A crash with a trapped driver reported to 122 and 120, engines and an ambulance sent."""
    crash = CallEvent(
        call_id="122-0001",
        centre=Centre.TRAFFIC,
        call_type=CallType.TRAFFIC_ACCIDENT_ENTRAPMENT,
        lat=31.2304,
        lon=121.4737,
        received_at=T0,
        address="黄浦区南京东路 100 号",
        description="两车相撞，司机被困",
        caller_phone="13912345678",
        severity=4,
    )
    patient = CallEvent(
        call_id="120-0042",
        centre=Centre.EMS,
        call_type=CallType.CRITICAL_PATIENT,
        lat=31.2306,
        lon=121.4735,
        received_at=T0 + timedelta(seconds=40),
        severity=5,
    )
    return Incident(
        id="YS-20261202-000001",
        version=4,
        status=IncidentStatus.DISPATCHED,
        calls=[CallRecord.from_call(crash, "1-0"), CallRecord.from_call(patient, "2-0")],
        call_types=[crash.call_type, patient.call_type],
        lat=crash.lat,
        lon=crash.lon,
        address=crash.address,
        severity=5,
        centres=[Centre.TRAFFIC, Centre.EMS],
        agencies=[Agency.TRAFFIC, Agency.EMS, Agency.FIRE],
        priority=1,
        whistle_eligible=True,
        created_at=T0,
        updated_at=T0 + timedelta(minutes=2),
        last_call_at=T0 + timedelta(seconds=40),
        assignments=[
            Assignment(
                unit_id="E-12",
                agency=Agency.FIRE,
                unit_type=UnitType.FIRE_RESCUE,
                assigned_at=T0 + timedelta(seconds=70),
                assigned_by="fire-disp-3",
                eta_s=310.0,
            ),
            Assignment(
                unit_id="AMB-07",
                agency=Agency.EMS,
                unit_type=UnitType.AMBULANCE,
                assigned_at=T0 + timedelta(seconds=75),
                assigned_by="ems-disp-1",
                status=UnitStatus.EN_ROUTE,
            ),
        ],
        timeline=[
            TimelineEntry(at=T0, type="incident.created", actor="intake", text="122 call"),
            TimelineEntry(
                at=T0 + timedelta(seconds=40), type="call.merged", actor="intake", text="120 call"
            ),
        ],
    )
