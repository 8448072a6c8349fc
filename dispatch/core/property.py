"""A compound's security team on an incident: the offer, the join, its status answers.

Pure decisions over an :class:`~dispatch.models.Incident` and its
:class:`~dispatch.core.compounds.Compound`: :func:`offer` says whether the team can be
offered to the dispatcher and why not; :func:`join` (a dispatcher's approval, or a plan's
automatic join), :func:`answer` (the team's own status) and :func:`release` return the new
incident snapshot or raise :class:`~dispatch.errors.ConflictError` (409) naming the refused
transition.

The team's answers, in order: ``accepted`` (only from ``joined``), ``on_scene``,
``holding`` (holding the scene / guiding the police in), ``handed_over`` (to the police),
``closed`` (with an outcome). Its access to the incident ends when the incident closes, the
team closes its part, or a dispatcher releases it (:func:`team_active`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dispatch.core.compounds import Compound, property_may_see
from dispatch.errors import ConflictError
from dispatch.models import Incident, IncidentStatus, PropertyJoin, PropertyStatus

_S = PropertyStatus
# What the team may answer from each status.
TEAM_TRANSITIONS: dict[PropertyStatus, frozenset[PropertyStatus]] = {
    _S.JOINED: frozenset({_S.ACCEPTED}),
    _S.ACCEPTED: frozenset({_S.ON_SCENE, _S.HOLDING, _S.HANDED_OVER, _S.CLOSED}),
    _S.ON_SCENE: frozenset({_S.HOLDING, _S.HANDED_OVER, _S.CLOSED}),
    _S.HOLDING: frozenset({_S.ON_SCENE, _S.HANDED_OVER, _S.CLOSED}),
    _S.HANDED_OVER: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
    _S.RELEASED: frozenset(),
}
TEAM_ANSWERS = frozenset({_S.ACCEPTED, _S.ON_SCENE, _S.HOLDING, _S.HANDED_OVER, _S.CLOSED})
ENDED = frozenset({_S.CLOSED, _S.RELEASED})


@dataclass(frozen=True, slots=True)
class Offer:
    """Whether the compound's team can be offered for an incident (``reason`` if not)."""

    compound_id: str | None
    offerable: bool
    reason: str


def offer(incident: Incident, compound: Compound | None) -> Offer:
    """Whether to offer ``compound``'s team (the incident's compound) to the dispatcher."""
    cid = incident.compound_id
    if cid is None or compound is None:
        return Offer(cid, False, "the incident is in no known compound")
    if incident.status is IncidentStatus.CLOSED:
        return Offer(cid, False, f"incident {incident.id} is closed")
    if not property_may_see(incident.call_types):
        return Offer(cid, False, "a call type of the incident is not on the compound list")
    if not compound.members:
        return Offer(cid, False, f"compound {cid} has no security team members")
    if team_active(incident):
        return Offer(cid, False, "the compound's team is already joined")
    return Offer(cid, True, "the compound's team can be joined")


def team_active(incident: Incident) -> bool:
    """Whether the property team may still see and answer the incident."""
    join = incident.property_join
    return (
        join is not None
        and join.status not in ENDED
        and incident.status is not IncidentStatus.CLOSED
    )


def join(
    incident: Incident,
    compound: Compound | None,
    *,
    now: datetime,
    actor: str,
    task: str | None = None,
    automatic: bool = False,
) -> Incident:
    """The incident with the compound's team joined (version + 1).

    Raises:
        ConflictError: the team cannot be offered (closed, excluded type, no team, joined).
    """
    decided = offer(incident, compound)
    if not decided.offerable or compound is None:
        raise ConflictError(f"cannot join the property team: {decided.reason}")
    record = PropertyJoin(
        compound_id=compound.id,
        joined_at=now,
        joined_by=actor,
        automatic=automatic,
        task=task,
        updated_at=now,
    )
    return incident.model_copy(
        update={"version": incident.version + 1, "property_join": record, "updated_at": now}
    )


def answer(
    incident: Incident, status: PropertyStatus, *, now: datetime, outcome: str | None = None
) -> Incident:
    """The incident with the team's status answer applied (version + 1).

    Raises:
        ConflictError: no active join, or the transition is not allowed.
        ValueError: ``closed`` without an outcome, or a status the team does not answer.
    """
    if status not in TEAM_ANSWERS:
        raise ValueError(f"status: a team answers only {sorted(s.value for s in TEAM_ANSWERS)}")
    join_ = incident.property_join
    if join_ is None or not team_active(incident):
        raise ConflictError(f"the property team is not active on incident {incident.id}")
    if status not in TEAM_TRANSITIONS[join_.status]:
        raise ConflictError(f"status: cannot go from {join_.status.value} to {status.value}")
    if status is _S.CLOSED and not (outcome and outcome.strip()):
        raise ValueError("outcome: closing the team's part needs an outcome")
    first = join_.first_contact_at
    if first is None and status in (_S.ON_SCENE, _S.HOLDING, _S.HANDED_OVER):
        first = now
    updated = join_.model_copy(
        update={
            "status": status,
            "updated_at": now,
            "first_contact_at": first,
            "outcome": outcome if status is _S.CLOSED else join_.outcome,
        }
    )
    return incident.model_copy(
        update={"version": incident.version + 1, "property_join": updated, "updated_at": now}
    )


def release(incident: Incident, *, now: datetime) -> Incident:
    """The incident with the team released by a dispatcher (version + 1).

    Raises:
        ConflictError: the team is not joined, or already ended.
    """
    join_ = incident.property_join
    if join_ is None or join_.status in ENDED:
        raise ConflictError(f"the property team is not active on incident {incident.id}")
    updated = join_.model_copy(update={"status": _S.RELEASED, "updated_at": now})
    return incident.model_copy(
        update={"version": incident.version + 1, "property_join": updated, "updated_at": now}
    )


@dataclass(frozen=True, slots=True)
class PropertyCounts:
    """Figures for the records (issue 15): joined incidents, time to first contact, share
    closed by the team without a police unit."""

    joined: int
    first_contact_s: tuple[float, ...]
    resolved_without_police: int


def counts(incidents: list[Incident]) -> PropertyCounts:
    """The property figures over ``incidents`` (pure: the records helper calls it)."""
    joined = [i for i in incidents if i.property_join is not None]
    firsts = tuple(
        (j.first_contact_at - j.joined_at).total_seconds()
        for i in joined
        if (j := i.property_join) is not None and j.first_contact_at is not None
    )
    alone = sum(
        1
        for i in joined
        if i.property_join is not None
        and i.property_join.status is _S.CLOSED
        and not any(a.agency.value == "police" for a in i.assignments)
    )
    return PropertyCounts(joined=len(joined), first_contact_s=firsts, resolved_without_police=alone)
