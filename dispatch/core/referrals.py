"""Referral of disputes to mediation: the bodies, the referral's lifecycle, overdue, repeat calls.

Pure. A dispute-type incident (:data:`DISPUTE_TYPES`) is referred (:func:`refer`) to a
mediation body of a configurable list (:func:`parse_bodies`) with the parties' consent
recorded; the body moves it on (:func:`advance`) along :data:`TRANSITIONS`:
``referred -> accepted -> in_mediation -> resolved | failed`` (``failed`` from any open state:
back to the police or a court). A referral still open after its due time is overdue
(:func:`is_overdue`). A new dispute call within the repeat window and distance of a referred
incident, of the same call type, is a repeat call (:func:`repeat_of`) linked to the referral
(:func:`link_repeat`) and counted (:func:`counts`).

Errors: :class:`ReferralRefused` (``ValueError``, 422, names the field), and
:class:`~dispatch.errors.ConflictError` (409) for a refused transition or a non-dispute
incident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from dispatch.core.compounds import distance_m
from dispatch.errors import ConflictError
from dispatch.models import ID_PATTERN, CallType, Incident, IncidentStatus

DISPUTE_TYPES: frozenset[CallType] = frozenset({CallType.DISPUTE, CallType.LABOUR_DISPUTE})
# A call stamped a little before the referral but taken in after it (the call-taking system's
# clock, the queue) is still a repeat: only calls reaching intake after the referral are asked.
REPEAT_SLACK = timedelta(minutes=5)


class ReferralRefused(ValueError):
    """A referral request that cannot be taken as given; the message starts with the field."""


class ReferralStatus(StrEnum):
    REFERRED = "referred"
    ACCEPTED = "accepted"
    IN_MEDIATION = "in_mediation"
    RESOLVED = "resolved"
    FAILED = "failed"


class DisputeTopic(StrEnum):
    NEIGHBOURS = "neighbours"
    PROPERTY_MANAGEMENT = "property_management"
    LABOUR = "labour"
    CONSUMER = "consumer"
    OTHER = "other"


_R = ReferralStatus
TRANSITIONS: dict[ReferralStatus, frozenset[ReferralStatus]] = {
    _R.REFERRED: frozenset({_R.ACCEPTED, _R.FAILED}),
    _R.ACCEPTED: frozenset({_R.IN_MEDIATION, _R.FAILED}),
    _R.IN_MEDIATION: frozenset({_R.RESOLVED, _R.FAILED}),
    _R.RESOLVED: frozenset(),
    _R.FAILED: frozenset(),
}
FINAL = frozenset({_R.RESOLVED, _R.FAILED})


class MediationBody(BaseModel):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)


def parse_bodies(spec: str) -> dict[str, MediationBody]:
    """``"id=name;id=name"`` as bodies by id.

    Raises:
        ReferralRefused: an entry without ``=`` or a bad id.
    """
    out: dict[str, MediationBody] = {}
    for part in (p.strip() for p in spec.split(";")):
        if not part:
            continue
        body_id, sep, name = part.partition("=")
        if not sep:
            raise ReferralRefused(f"mediation_bodies: {part!r} is not id=name")
        try:
            body = MediationBody(id=body_id.strip(), name=name.strip())
        except ValueError as exc:
            raise ReferralRefused(f"mediation_bodies: {part!r}: {exc}") from exc
        out[body.id] = body
    return out


def bodies_from_list(data: Any) -> dict[str, MediationBody]:
    """A JSON list of ``{"id", "name"}`` as bodies by id. Raises ReferralRefused."""
    if not isinstance(data, list):
        raise ReferralRefused("mediation_file: not a JSON list of {id, name}")
    try:
        bodies = [MediationBody.model_validate(item) for item in data]
    except ValueError as exc:
        raise ReferralRefused(f"mediation_file: {exc}") from exc
    return {b.id: b for b in bodies}


class ReferralStep(BaseModel):
    status: ReferralStatus
    at: datetime
    by: str
    note: str | None = None


class Referral(BaseModel):
    """One dispute referred to one mediation body."""

    id: str
    version: int = 1
    incident_id: str
    body: str
    topic: DisputeTopic = DisputeTopic.OTHER
    consent: bool
    consent_note: str | None = None
    referred_by: str
    referred_at: datetime
    due_at: datetime
    status: ReferralStatus = ReferralStatus.REFERRED
    steps: list[ReferralStep] = Field(default_factory=list)
    # Where and what the dispute is, for repeat-call linking.
    lat: float
    lon: float
    call_types: list[CallType]
    repeat_calls: list[str] = Field(
        default_factory=list, description="call keys of repeat calls linked to it"
    )


def refer(
    incident: Incident,
    *,
    referral_id: str,
    body: str,
    consent: bool | None,
    bodies: Mapping[str, MediationBody],
    now: datetime,
    by: str,
    due_after: timedelta,
    topic: DisputeTopic = DisputeTopic.OTHER,
    note: str | None = None,
) -> Referral:
    """A new referral of ``incident`` to ``body``.

    Raises:
        ReferralRefused: ``consent`` is not true, or ``body`` is not a known mediation body.
        ConflictError: the incident is not a dispute, or it is closed.
    """
    if consent is not True:
        raise ReferralRefused("consent: the parties' consent (true) is required to refer")
    if body not in bodies:
        known = ", ".join(sorted(bodies)) or "none configured"
        raise ReferralRefused(f"body: {body!r} is not a mediation body (known: {known})")
    disputes = [t for t in incident.call_types if t in DISPUTE_TYPES]
    if not disputes:
        raise ConflictError(f"incident {incident.id} is not a dispute; only disputes are referred")
    if incident.status is IncidentStatus.CLOSED:
        raise ConflictError(f"incident {incident.id} is closed")
    return Referral(
        id=referral_id,
        incident_id=incident.id,
        body=body,
        topic=topic,
        consent=True,
        consent_note=note,
        referred_by=by,
        referred_at=now,
        due_at=now + due_after,
        steps=[ReferralStep(status=_R.REFERRED, at=now, by=by, note=note)],
        lat=incident.lat,
        lon=incident.lon,
        call_types=disputes,
    )


def advance(
    referral: Referral, status: ReferralStatus, *, now: datetime, by: str, note: str | None = None
) -> Referral:
    """The referral moved to ``status`` (version + 1).

    Raises:
        ConflictError: the transition is not allowed (e.g. resolved from referred, anything
            after resolved or failed).
    """
    if status not in TRANSITIONS[referral.status]:
        raise ConflictError(
            f"status: referral {referral.id} cannot go from {referral.status.value} to "
            f"{status.value}"
        )
    return referral.model_copy(
        update={
            "version": referral.version + 1,
            "status": status,
            "steps": [*referral.steps, ReferralStep(status=status, at=now, by=by, note=note)],
        }
    )


def is_overdue(referral: Referral, now: datetime) -> bool:
    return referral.status not in FINAL and now > referral.due_at


def repeat_of(
    call_type: CallType,
    lat: float,
    lon: float,
    at: datetime,
    referrals: Iterable[Referral],
    *,
    window: timedelta,
    radius_m: float,
) -> Referral | None:
    """The referral a new call is a repeat of: same dispute call type, within ``radius_m`` of
    the referred incident and ``window`` after the referral (the nearest in time wins)."""
    if call_type not in DISPUTE_TYPES:
        return None
    best: Referral | None = None
    for r in referrals:
        start = r.referred_at - REPEAT_SLACK
        if call_type not in r.call_types or not (start <= at <= r.referred_at + window):
            continue
        if distance_m(lat, lon, r.lat, r.lon) > radius_m:
            continue
        if best is None or r.referred_at > best.referred_at:
            best = r
    return best


def link_repeat(referral: Referral, call_key: str) -> Referral | None:
    """The referral with the repeat call linked (None: already linked)."""
    if call_key in referral.repeat_calls:
        return None
    return referral.model_copy(
        update={"version": referral.version + 1, "repeat_calls": [*referral.repeat_calls, call_key]}
    )


@dataclass(frozen=True, slots=True)
class ReferralCounts:
    """Figures for the records: referrals by status, overdue ones, repeat calls linked, and
    referrals with at least one repeat call."""

    by_status: Mapping[str, int]
    overdue: int
    repeat_calls: int
    with_repeats: int
    total: int


def counts(referrals: Sequence[Referral], now: datetime) -> ReferralCounts:
    by_status = {s.value: 0 for s in ReferralStatus}
    for r in referrals:
        by_status[r.status.value] += 1
    return ReferralCounts(
        by_status=by_status,
        overdue=sum(1 for r in referrals if is_overdue(r, now)),
        repeat_calls=sum(len(r.repeat_calls) for r in referrals),
        with_repeats=sum(1 for r in referrals if r.repeat_calls),
        total=len(referrals),
    )
