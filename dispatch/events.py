"""The event log's vocabulary: every event type, and the pydantic model of its payload.

Each committed change appends events to ``{yishao}:events`` (``Tx.event``); the payload is
one of the models below, serialised as the event's ``data``. Screens, terminals, signal
controllers and the archive read the same shapes; ``yishao schema events`` prints the JSON
Schema of every payload, keyed by event type.

Fields a payload lists in ``omit_if_none`` are left out when they do not apply
(``incident.created`` has ``call`` for a new call and ``split_from`` for a split, never both);
every other field is always present, ``null`` when unknown.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from dispatch.auth import Revocation
from dispatch.core.assign import LegKind
from dispatch.core.pivot_plan import PlanRecord, Posting
from dispatch.core.recommend import Recommendations
from dispatch.core.referrals import Referral
from dispatch.core.rosters import RosterEntry, RotationRule
from dispatch.core.whistle import Summons, Whistle
from dispatch.models import (
    Agency,
    CallRecord,
    Centre,
    Hospital,
    Incident,
    IncidentSummary,
    PropertyJoin,
    PropertyStatus,
    Unit,
    UnitStatus,
    UnitType,
)
from routing import Route
from routing.arbiter import SignalDecision, SignalStatus
from routing.greenwave import PlannedSignal, Requester, SignalRequest


class EventType(StrEnum):
    """Every event the service appends to its log, by step of a call's way."""

    # joint intake and the incident's life
    INCIDENT_CREATED = "incident.created"
    INCIDENT_MERGED = "incident.merged"
    INCIDENT_SPLIT = "incident.split"
    INCIDENT_UPDATED = "incident.updated"
    INCIDENT_CLOSED = "incident.closed"
    INCIDENT_CLOSE_REQUESTED = "incident.close_requested"
    # a call id seen again with different content: the first (in stream order) stands
    CALL_CONFLICT = "call.conflict"
    # recommendation
    INCIDENT_RECOMMENDED = "incident.recommended"
    # the whistle
    WHISTLE_SOUNDED = "whistle.sounded"
    WHISTLE_SUMMONS = "whistle.summons"
    WHISTLE_ACK = "whistle.ack"
    WHISTLE_ALERT = "whistle.alert"
    WHISTLE_STAND_DOWN = "whistle.stand_down"
    WHISTLE_CLOSED = "whistle.closed"
    # assignment and routes
    ASSIGNMENT_CREATED = "assignment.created"
    ASSIGNMENT_RELEASED = "assignment.released"
    ROUTE_PLANNED = "route.planned"
    # green wave
    GREENWAVE_PLANNED = "greenwave.planned"
    GREENWAVE_ENABLED = "greenwave.enabled"
    GREENWAVE_ACTIVATED = "greenwave.activated"
    GREENWAVE_REQUEST = "greenwave.request"
    GREENWAVE_UPDATE = "greenwave.update"
    GREENWAVE_CANCEL = "greenwave.cancel"
    GREENWAVE_STATUS = "greenwave.status"
    # alerts to the public (CAP 1.2)
    CAP_ISSUED = "cap.issued"
    CAP_UPDATED = "cap.updated"
    CAP_CANCELLED = "cap.cancelled"
    # access: audited, seen by admins only
    TOKEN_REVOKED = "token.revoked"
    AUTH_LOCKOUT = "auth.lockout"
    # the service's own health: the intake backlog passed its alarm threshold, or fell back
    INTAKE_LAG_ALARM = "intake.lag_alarm"
    INTAKE_LAG_CLEARED = "intake.lag_cleared"
    # units and reference data
    UNIT_STATUS = "unit.status"
    UNIT_UPDATED = "unit.updated"
    HOSPITALS_UPDATED = "hospitals.updated"
    ROSTER_UPDATED = "roster.updated"
    # compounds and their property teams (issue 15)
    COMPOUNDS_UPDATED = "compounds.updated"
    PROPERTY_JOINED = "property.joined"
    PROPERTY_STATUS = "property.status"
    PROPERTY_RELEASED = "property.released"
    # every read and action of a property account: the audit, admins only
    PROPERTY_ACCESS = "property.access"
    # referral of disputes to mediation (issue 15)
    REFERRAL_CREATED = "referral.created"
    REFERRAL_UPDATED = "referral.updated"
    REFERRAL_REPEAT_CALL = "referral.repeat_call"
    # pivot posts (issue 16): a plan put in force, a police unit posted at a post or released
    PIVOT_PLAN_STORED = "pivots.plan_stored"
    PIVOT_UNIT_POSTED = "pivots.unit_posted"
    PIVOT_UNIT_RELEASED = "pivots.unit_released"
    PIVOT_POSTING_EXPIRED = "pivots.posting_expired"


# Audit of access: pushed to admins only.
ADMIN_EVENTS = frozenset(
    {EventType.TOKEN_REVOKED, EventType.AUTH_LOCKOUT, EventType.PROPERTY_ACCESS}
)
# The green-wave messages a signal controller receives.
SIGNAL_EVENTS = frozenset(
    {
        EventType.GREENWAVE_REQUEST,
        EventType.GREENWAVE_UPDATE,
        EventType.GREENWAVE_CANCEL,
        EventType.GREENWAVE_STATUS,
    }
)


class Payload(BaseModel):
    """Base of every event payload."""

    model_config = ConfigDict(frozen=True)
    # Optional fields that are left out, rather than null, when they do not apply.
    omit_if_none: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> str:
        """The event's ``data`` as JSON (see ``omit_if_none``)."""
        absent = {name for name in self.omit_if_none if getattr(self, name) is None}
        return self.model_dump_json(exclude=absent or None)


class IncidentCreated(Payload):
    omit_if_none = frozenset({"call", "split_from"})

    incident: Incident
    call: CallRecord | None = None
    split_from: str | None = None


class IncidentMerged(Payload):
    incident: Incident
    call: CallRecord
    reason: str
    distance_m: float
    gap_s: float


class CallConflict(Payload):
    """A second entry with a call id already committed, whose content differs: it was not
    applied (the first, in stream order, stands); ``fields`` names what differs."""

    call_key: str
    kept_stream_id: str | None
    stream_id: str | None
    fields: list[str]
    rejected: CallRecord


class IncidentSplit(Payload):
    incident: Incident
    call_key: str
    new_incident_id: str


class IncidentUpdated(Payload):
    incident: Incident
    change: str


class IncidentClosed(Payload):
    incident: Incident
    reason: str
    released: list[str] = Field(default_factory=list)


class IncidentCloseRequested(Payload):
    incident: Incident
    agency: Agency
    reason: str


class IncidentRecommended(Payload):
    version: int
    recommendations: Recommendations


class WhistleSounded(Payload):
    whistle: Whistle
    incident: IncidentSummary
    centre: Centre


class WhistleSummons(Payload):
    whistle_id: str
    summons: Summons
    incident: IncidentSummary
    recommended: Recommendations | None = None


class WhistleAck(Payload):
    whistle_id: str
    summons: Summons
    after_s: float


class WhistleAlert(Payload):
    whistle_id: str
    centre: Centre
    text: str


class WhistleStandDown(Payload):
    whistle_id: str
    summons: Summons


class WhistleClosed(Payload):
    whistle_id: str


class AssignmentCreated(Payload):
    unit_id: str
    agency: Agency
    unit_type: UnitType
    eta_s: float
    distance_m: float
    hospital: Hospital | None = None


class AssignmentReleased(Payload):
    unit_id: str
    status: UnitStatus
    reason: str


class RoutePlanned(Payload):
    omit_if_none = frozenset({"reason"})

    unit_id: str
    leg: LegKind
    route: Route
    reason: str | None = None


class GreenWavePlanned(Payload):
    unit_id: str
    leg: LegKind
    active: bool
    departure: datetime
    signals: list[PlannedSignal]
    requester: Requester


class GreenWaveEnabled(Payload):
    omit_if_none = frozenset({"whistle_id"})

    units: list[str]
    whistle_id: str | None = None


class GreenWaveActivated(Payload):
    unit_id: str
    signals: list[PlannedSignal]


class SignalDecisionEvent(Payload):
    """A request, update, cancel or a changed decision at one intersection."""

    intersection_id: int
    request_id: str
    unit_id: str
    incident_id: str | None
    request: SignalRequest
    status: SignalStatus
    granted_from: datetime | None
    granted_to: datetime | None
    shift_s: float
    reason: str

    @classmethod
    def of(cls, decision: SignalDecision, *, incident_id: str | None) -> SignalDecisionEvent:
        request = decision.request
        return cls(
            intersection_id=request.intersection_id,
            request_id=request.request_id,
            unit_id=request.requester.unit_id,
            incident_id=incident_id,
            request=request,
            status=decision.status,
            granted_from=decision.granted_from,
            granted_to=decision.granted_to,
            shift_s=decision.shift_s,
            reason=decision.reason,
        )


class CapMessageEvent(Payload):
    """One CAP message of an alert thread (its XML is served at ``/cap/alerts/...``)."""

    alert_id: str
    identifier: str
    msg_type: str
    status: str
    headline: str
    headline_en: str
    expires: datetime
    references: list[str]


class TokenRevoked(Payload):
    revocation: Revocation


class AuthLockout(Payload):
    client: str
    failures: int
    until: datetime


class IntakeLag(Payload):
    """The intake group's backlog when the lag alarm was raised or cleared."""

    backlog: int
    pending: int | None
    lag: int | None
    threshold: int
    instance: str


class UnitStatusChanged(Payload):
    unit_id: str
    status: UnitStatus
    previous: UnitStatus


class UnitUpdated(Payload):
    unit: Unit


class PivotPlanStored(Payload):
    record: PlanRecord = Field(description="the plan now in force (its posts: GET the plan)")


class PivotPosting(Payload):
    posting: Posting = Field(description="the unit and the post it stands at (or stood at)")
    reason: str | None = Field(None, description="why a posting was released")


class PivotPostingExpired(Payload):
    posting: Posting = Field(description="the posting that ended with its post")
    reason: Literal["hours_ended", "post_retired"] = Field(
        description="hours_ended: the post's hours are over; post_retired: the plan in force "
        "no longer has the post (a new plan retired or moved it)"
    )


class HospitalsUpdated(Payload):
    hospitals: list[Hospital]


class RosterUpdated(Payload):
    entries: list[RosterEntry]
    rules: list[RotationRule]


class CompoundsUpdated(Payload):
    ids: list[str] = Field(description="the compounds written (loaded or put)")
    source: str = Field(description="'load' (a file) or 'put' (REST)")


class PropertyJoined(Payload):
    incident: Incident = Field(description="the incident with its property_join")
    join: PropertyJoin


class PropertyStatusChanged(Payload):
    incident: Incident
    join: PropertyJoin
    status: PropertyStatus
    outcome: str | None = None


class PropertyReleased(Payload):
    incident: Incident
    join: PropertyJoin


class PropertyAccess(Payload):
    """One read or action of a property account (the actor is its token subject)."""

    what: str = Field(description="route or message, e.g. 'GET /api/incidents/{id}'")
    compounds: list[str] = Field(description="the token's scope")
    allowed: bool
    count: int | None = Field(None, description="objects returned, for list reads")


class ReferralChanged(Payload):
    """A referral created or moved on (``referral.created``, ``referral.updated``)."""

    referral: Referral


class ReferralRepeatCall(Payload):
    referral: Referral
    call_key: str
    incident_id: str = Field(description="the incident the repeat call landed on")


PAYLOADS: dict[EventType, type[Payload]] = {
    EventType.INCIDENT_CREATED: IncidentCreated,
    EventType.INCIDENT_MERGED: IncidentMerged,
    EventType.INCIDENT_SPLIT: IncidentSplit,
    EventType.CALL_CONFLICT: CallConflict,
    EventType.INCIDENT_UPDATED: IncidentUpdated,
    EventType.INCIDENT_CLOSED: IncidentClosed,
    EventType.INCIDENT_CLOSE_REQUESTED: IncidentCloseRequested,
    EventType.INCIDENT_RECOMMENDED: IncidentRecommended,
    EventType.WHISTLE_SOUNDED: WhistleSounded,
    EventType.WHISTLE_SUMMONS: WhistleSummons,
    EventType.WHISTLE_ACK: WhistleAck,
    EventType.WHISTLE_ALERT: WhistleAlert,
    EventType.WHISTLE_STAND_DOWN: WhistleStandDown,
    EventType.WHISTLE_CLOSED: WhistleClosed,
    EventType.ASSIGNMENT_CREATED: AssignmentCreated,
    EventType.ASSIGNMENT_RELEASED: AssignmentReleased,
    EventType.ROUTE_PLANNED: RoutePlanned,
    EventType.GREENWAVE_PLANNED: GreenWavePlanned,
    EventType.GREENWAVE_ENABLED: GreenWaveEnabled,
    EventType.GREENWAVE_ACTIVATED: GreenWaveActivated,
    EventType.GREENWAVE_REQUEST: SignalDecisionEvent,
    EventType.GREENWAVE_UPDATE: SignalDecisionEvent,
    EventType.GREENWAVE_CANCEL: SignalDecisionEvent,
    EventType.GREENWAVE_STATUS: SignalDecisionEvent,
    EventType.CAP_ISSUED: CapMessageEvent,
    EventType.CAP_UPDATED: CapMessageEvent,
    EventType.CAP_CANCELLED: CapMessageEvent,
    EventType.TOKEN_REVOKED: TokenRevoked,
    EventType.AUTH_LOCKOUT: AuthLockout,
    EventType.INTAKE_LAG_ALARM: IntakeLag,
    EventType.INTAKE_LAG_CLEARED: IntakeLag,
    EventType.UNIT_STATUS: UnitStatusChanged,
    EventType.UNIT_UPDATED: UnitUpdated,
    EventType.HOSPITALS_UPDATED: HospitalsUpdated,
    EventType.ROSTER_UPDATED: RosterUpdated,
    EventType.COMPOUNDS_UPDATED: CompoundsUpdated,
    EventType.PROPERTY_JOINED: PropertyJoined,
    EventType.PROPERTY_STATUS: PropertyStatusChanged,
    EventType.PROPERTY_RELEASED: PropertyReleased,
    EventType.PROPERTY_ACCESS: PropertyAccess,
    EventType.REFERRAL_CREATED: ReferralChanged,
    EventType.REFERRAL_UPDATED: ReferralChanged,
    EventType.REFERRAL_REPEAT_CALL: ReferralRepeatCall,
    EventType.PIVOT_PLAN_STORED: PivotPlanStored,
    EventType.PIVOT_UNIT_POSTED: PivotPosting,
    EventType.PIVOT_UNIT_RELEASED: PivotPosting,
    EventType.PIVOT_POSTING_EXPIRED: PivotPostingExpired,
}


def parse_payload(type: EventType, data: Any) -> Payload:
    """Validate an event's ``data`` as its type's payload (for readers that want models).

    Raises:
        pydantic.ValidationError: the data is not that payload.
    """
    return PAYLOADS[type].model_validate(data)


def payload_schemas() -> dict[str, Any]:
    """The JSON Schema of every payload, keyed by event type (``yishao schema events``)."""
    return {t.value: PAYLOADS[t].model_json_schema() for t in EventType}
