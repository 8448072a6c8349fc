"""Public messages and state records: every one a pydantic model with a JSON Schema.

Enums are ``StrEnum`` so that they travel as plain strings in stream fields, JSON
and logs. Times are timezone-aware ``datetime``; units are in the field names.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, field_validator

from dispatch.core.dead import Cut
from dispatch.errors import ForbiddenError

CALL_SCHEMA_VERSION: Literal[1] = 1


class Centre(StrEnum):
    """The call-taking centres: traffic police, ambulance, fire."""

    TRAFFIC = "122"
    EMS = "120"
    FIRE = "119"


class Agency(StrEnum):
    POLICE = "police"
    TRAFFIC = "traffic"
    EMS = "ems"
    FIRE = "fire"
    PROPERTY = "property"


CENTRE_AGENCY: dict[Centre, Agency] = {
    Centre.TRAFFIC: Agency.TRAFFIC,
    Centre.EMS: Agency.EMS,
    Centre.FIRE: Agency.FIRE,
}
AGENCY_CENTRE: dict[Agency, Centre] = {a: c for c, a in CENTRE_AGENCY.items()}
# The three agencies whose coordinators the whistle summons.
WHISTLE_AGENCIES: tuple[Agency, ...] = (Agency.TRAFFIC, Agency.EMS, Agency.FIRE)


class CallType(StrEnum):
    TRAFFIC_ACCIDENT = "traffic_accident"
    TRAFFIC_ACCIDENT_ENTRAPMENT = "traffic_accident_entrapment"
    DROWNING = "drowning"
    FALL_FROM_HEIGHT = "fall_from_height"
    CRITICAL_PATIENT = "critical_patient"
    FIRE = "fire"
    NATURAL_DISASTER = "natural_disaster"
    FIGHT = "fight"
    DISPUTE = "dispute"
    LABOUR_DISPUTE = "labour_dispute"
    THEFT = "theft"
    NOISE = "noise"
    OTHER = "other"


class Role(StrEnum):
    DISPATCHER = "dispatcher"
    COORDINATOR = "coordinator"
    TERMINAL = "terminal"
    SIGNAL = "signal"
    PROPERTY = "property"
    OBSERVER = "observer"
    ADMIN = "admin"
    # A mediation body's account (token scope = mediation body ids): its referrals only.
    MEDIATOR = "mediator"


class IncidentStatus(StrEnum):
    OPEN = "open"
    DISPATCHED = "dispatched"
    ON_SCENE = "on_scene"
    CLOSED = "closed"


class UnitType(StrEnum):
    PATROL_CAR = "patrol_car"
    TRAFFIC_POLICE_CAR = "traffic_police_car"
    AMBULANCE = "ambulance"
    FIRE_ENGINE = "fire_engine"
    FIRE_RESCUE = "fire_rescue"
    LADDER = "ladder"
    PROPERTY_SECURITY = "property_security"
    MEDIATOR = "mediator"


class UnitStatus(StrEnum):
    AVAILABLE = "available"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    TRANSPORTING = "transporting"
    AT_HOSPITAL = "at_hospital"
    RETURNING = "returning"
    OUT_OF_SERVICE = "out_of_service"


# Units in these states can take a new assignment.
ASSIGNABLE_STATUSES = frozenset({UnitStatus.AVAILABLE, UnitStatus.RETURNING})

_PHONE_KEEP = re.compile(r"\d")


def mask_phone(phone: str | None) -> str | None:
    """Mask a phone number for logs and screens: keep the first three and last two digits.

    >>> mask_phone("13912345678")
    '139******78'
    """
    if phone is None:
        return None
    digits = [c for c in phone if _PHONE_KEEP.match(c)]
    if len(digits) <= 5:
        return "*" * len(digits)
    return "".join(digits[:3]) + "*" * (len(digits) - 5) + "".join(digits[-2:])


# In free text a caller or call-taker types: resident ID numbers (17 digits and a check digit
# or X), mobile numbers (11 digits from 1, +86 allowed) and other runs of 7+ digits
# (landlines), each with the usual separators.
_ID_NUMBER = re.compile(r"(?<![\dA-Za-z])\d{6}(?:19|20)\d{2}\d{7}[\dXx](?![\dA-Za-z])")
_DIGIT_RUN = re.compile(r"(?<![\d])(?:\+?86[ -]?)?\d(?:[ -]?\d){6,}(?![\d])")


def mask_pii(text: str | None) -> str | None:
    """Mask ID and phone numbers typed into free text (descriptions, addresses) for screens.

    >>> mask_pii("caller 139 1234 5678 says ID 330183199001011234")
    'caller 139******78 says ID 330183********1234'
    """
    if text is None:
        return None
    masked = _ID_NUMBER.sub(lambda m: m.group(0)[:6] + "*" * 8 + m.group(0)[-4:], text)
    return _DIGIT_RUN.sub(lambda m: mask_phone(m.group(0)) or "", masked)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a UTC offset (ISO 8601, e.g. 2026-11-29T20:15:00+08:00)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
# Strict: a JSON number (an integer is fine), never a string or a boolean coerced into one.
Latitude = Annotated[float, Strict(), Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Strict(), Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
_ID_PATTERN = ID_PATTERN


class CallEvent(BaseModel):
    """One call as a centre's call-taking system reports it (schema version 1).

    On the ``yishao:calls`` stream every field is a flat string; ``severity`` and
    ``schema_version`` are decimal strings and ``received_at`` ISO 8601 with offset.
    ``(centre, call_id)`` is the idempotency key: a call seen before changes nothing.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    schema_version: Literal[1] = CALL_SCHEMA_VERSION
    call_id: str = Field(pattern=_ID_PATTERN, description="The centre's own call id")
    centre: Centre
    call_type: CallType
    lat: Latitude
    lon: Longitude
    received_at: AwareDatetime
    address: str | None = Field(None, max_length=500)
    description: str | None = Field(None, max_length=4000)
    caller_phone: str | None = Field(None, pattern=r"^\+?[0-9][0-9 \-]{2,31}$")
    severity: Annotated[int, Strict()] | None = Field(None, ge=1, le=5)
    # A drill's call: its incident is an exercise, kept apart from real ones in the figures.
    exercise: Annotated[bool, Strict()] = False

    @property
    def key(self) -> str:
        """The idempotency key ``centre:call_id``."""
        return f"{self.centre.value}:{self.call_id}"

    @field_validator("address", "description", "caller_phone", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def to_fields(self) -> dict[str, str]:
        """Flat string fields for a stream entry (absent optionals are left out)."""
        out: dict[str, str] = {}
        for name, value in self.model_dump(mode="json", exclude_none=True).items():
            if isinstance(value, bool):
                if value:
                    out[name] = "true"
                continue
            out[name] = str(value)
        return out

    def masked(self) -> dict[str, Any]:
        """A dict safe for logs: the caller's phone masked."""
        data = self.model_dump(mode="json")
        data["caller_phone"] = mask_phone(self.caller_phone)
        return data


class Principal(BaseModel):
    """Who is calling: the claims of a verified token."""

    sub: str = Field(min_length=1, max_length=128)
    role: Role
    agency: Agency
    # Optional scope: the intersections a signal controller serves, the compounds a
    # property team covers, the unit a terminal drives.
    scope: list[str] = Field(default_factory=list, max_length=10_000)
    exp: int
    iat: int
    # The token's own id: what revoking one token names.
    jti: str = Field("", max_length=64)

    def require(self, *roles: Role) -> None:
        """Raise ForbiddenError unless this principal has one of ``roles`` (admin always may)."""
        if self.role is Role.ADMIN or self.role in roles:
            return
        allowed = ", ".join(r.value for r in roles)
        raise ForbiddenError(f"role {self.role.value} may not do this (needs {allowed})")


class CallRecord(BaseModel):
    """A call as kept on its incident: the caller's phone, and any ID or phone number typed
    into the description or address, masked for every screen (the raw call stays on the
    calls stream, which only intake reads)."""

    call_id: str
    centre: Centre
    call_type: CallType
    lat: float
    lon: float
    received_at: datetime
    address: str | None = None
    description: str | None = None
    caller_phone_masked: str | None = None
    severity: int | None = None
    stream_id: str | None = None
    exercise: bool = False

    @classmethod
    def from_call(cls, call: CallEvent, stream_id: str | None = None) -> CallRecord:
        return cls(
            call_id=call.call_id,
            centre=call.centre,
            call_type=call.call_type,
            lat=call.lat,
            lon=call.lon,
            received_at=call.received_at,
            address=mask_pii(call.address),
            description=mask_pii(call.description),
            caller_phone_masked=mask_phone(call.caller_phone),
            severity=call.severity,
            stream_id=stream_id,
            exercise=call.exercise,
        )

    @property
    def key(self) -> str:
        return f"{self.centre.value}:{self.call_id}"


class TimelineEntry(BaseModel):
    at: datetime
    type: str
    actor: str
    text: str


class UnitNeed(BaseModel):
    """How many units of one type one agency sends."""

    model_config = ConfigDict(frozen=True)

    agency: Agency
    unit_type: UnitType
    count: int = Field(ge=1)


class Assignment(BaseModel):
    unit_id: str
    agency: Agency
    unit_type: UnitType
    assigned_at: datetime
    assigned_by: str
    eta_s: float | None = None
    distance_m: float | None = None
    hospital_id: str | None = None
    status: UnitStatus = UnitStatus.DISPATCHED


class PropertyStatus(StrEnum):
    """A compound's security team on an incident: joined by a dispatcher, then its own
    status answers; released by a dispatcher (its access ends)."""

    JOINED = "joined"
    ACCEPTED = "accepted"
    ON_SCENE = "on_scene"
    HOLDING = "holding"
    HANDED_OVER = "handed_over"
    CLOSED = "closed"
    RELEASED = "released"


class PropertyJoin(BaseModel):
    """The property team's part in an incident."""

    compound_id: str
    status: PropertyStatus = PropertyStatus.JOINED
    joined_at: datetime
    joined_by: str
    automatic: bool = False
    task: str | None = Field(None, max_length=500)
    first_contact_at: datetime | None = None
    updated_at: datetime
    outcome: str | None = Field(None, max_length=500)


class Incident(BaseModel):
    """One emergency, possibly reported to several centres, and everything done about it."""

    id: str
    version: int = 0
    status: IncidentStatus = IncidentStatus.OPEN
    calls: list[CallRecord] = Field(default_factory=list)
    call_types: list[CallType] = Field(default_factory=list)
    lat: float
    lon: float
    address: str | None = None
    severity: int | None = None
    centres: list[Centre] = Field(default_factory=list)
    agencies: list[Agency] = Field(default_factory=list)
    needs: list[UnitNeed] = Field(default_factory=list)
    whistle_eligible: bool = False
    priority: int = Field(3, ge=1, le=5)
    created_at: datetime
    updated_at: datetime
    last_call_at: datetime
    assignments: list[Assignment] = Field(default_factory=list)
    whistle_id: str | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    # Involved agencies that asked the lead agency to close the incident.
    close_requests: list[Agency] = Field(default_factory=list)
    # The residential compound the incident is in (decided at intake), and its property
    # team's part in it once a dispatcher joined the team (issue 15).
    compound_id: str | None = None
    property_join: PropertyJoin | None = None

    @property
    def call_ids(self) -> list[str]:
        return [c.key for c in self.calls]

    def summary(self) -> IncidentSummary:
        """What a summoned coordinator sees first (no calls, no callers)."""
        return IncidentSummary(
            id=self.id,
            call_types=[t.value for t in self.call_types],
            centres=[c.value for c in self.centres],
            lat=self.lat,
            lon=self.lon,
            address=self.address,
            severity=self.severity,
            priority=self.priority,
            agencies=[a.value for a in self.agencies],
        )


class IncidentSummary(BaseModel):
    """An incident as a summons shows it: what, where, how serious, who is involved."""

    id: str
    call_types: list[str]
    centres: list[str]
    lat: float
    lon: float
    address: str | None
    severity: int | None
    priority: int
    agencies: list[str]


class Event(BaseModel):
    """One entry of the event log ``{yishao}:events``: the audit trail and the push source."""

    id: str = Field(description="Stream id of the event (empty until committed)")
    type: str
    incident_id: str | None = None
    actor: str
    ts: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class DeadLetter(BaseModel):
    """An entry of ``yishao:calls:dead``: the original fields, why, and when."""

    id: str
    source_id: str
    reason: str
    failed_at: datetime
    deliveries: int = 0
    fields: dict[str, str]
    # Fields shortened to keep the dead stream bounded: original size in bytes and SHA-256.
    truncated: dict[str, Cut] = Field(default_factory=dict)


class Position(BaseModel):
    lat: Latitude
    lon: Longitude
    at: datetime
    speed_kph: float | None = Field(None, ge=0, le=400)
    heading_deg: float | None = Field(None, ge=0, lt=360)


class Unit(BaseModel):
    """A response unit (car, ambulance, engine, security team)."""

    id: str = Field(pattern=_ID_PATTERN)
    agency: Agency
    type: UnitType
    callsign: str | None = Field(None, max_length=40)
    station: str | None = Field(None, max_length=120)
    station_lat: Latitude | None = None
    station_lon: Longitude | None = None
    status: UnitStatus = UnitStatus.AVAILABLE
    position: Position | None = None
    incident_id: str | None = None
    version: int = 0


class Hospital(BaseModel):
    id: str = Field(pattern=_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    lat: Latitude
    lon: Longitude
    accepting: bool = True


class HealthReport(BaseModel):
    """``/api/health`` and ``/api/health/ready``: ``ok`` only when every check passes.

    ``checks`` names each thing looked at (``redis``, ``graph``, ``intake``, ...) and whether
    it passed; ``reasons`` says why the instance is not ready (empty when it is).
    """

    status: Literal["ok", "degraded"]
    redis: bool
    instance: str
    consumer_group: str
    pending: int | None = None
    lag: int | None = None
    graph: str | None = None
    detail: str | None = None
    ready: bool = False
    checks: dict[str, bool] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    lag_alarm: bool = False
    # Event-log entries not yet in PostgreSQL (None without an archive).
    archive_lag: int | None = None


class Liveness(BaseModel):
    """``/api/health/live``: the process answers (it says nothing about Redis)."""

    status: Literal["alive"] = "alive"
    instance: str


SCHEMAS: dict[str, type[BaseModel]] = {
    "call": CallEvent,
    "incident": Incident,
    "event": Event,
    "dead-letter": DeadLetter,
    "unit": Unit,
    "hospital": Hospital,
    "position": Position,
    "health": HealthReport,
}
