"""The whistle (一哨群应) as a pure state machine.

A 120 or 119 dispatcher sounds the whistle for a serious incident: the on-duty coordinators of
traffic (122), EMS (120) and fire (119) are summoned at once and each must ack within a timeout.
A primary who does not ack is escalated to the backup and the sounding centre is alerted; a
backup who does not ack is marked expired and the centre alerted again. The traffic
coordinator's ack switches on green-wave signal protection for the incident's units.

Like the protocol objects of python-websockets, nothing here does I/O: :func:`sound`,
:func:`ack`, :func:`on_timeout` and :func:`close` take the current :class:`Whistle` and the
clock and return the new record plus a list of effects for the adapter to carry out (send the
summons, schedule or cancel a timer, alert a centre, enable the green wave). Identifiers are
derived from the whistle id, so replaying the same inputs gives the same outputs.

Summons lifecycle::

    pending ──ack──────────────► acked
       │
       └─deadline─► escalated (primary, backup summoned)   ──late ack──► acked
                    expired   (backup, or primary without backup) ──late ack──► acked
    pending ──another coordinator of the agency acked──► stood_down
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from dispatch.core.rosters import Duty
from dispatch.errors import ConflictError, ForbiddenError
from dispatch.models import (
    WHISTLE_AGENCIES,
    Agency,
    AwareDatetime,
    Centre,
    Incident,
    IncidentStatus,
)


class Tier(StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"


class SummonsStatus(StrEnum):
    PENDING = "pending"
    ACKED = "acked"
    ESCALATED = "escalated"
    EXPIRED = "expired"
    # The agency is covered by its other coordinator's ack: the pager stops, nothing is owed.
    STOOD_DOWN = "stood_down"


SETTLED = frozenset(
    {SummonsStatus.ACKED, SummonsStatus.ESCALATED, SummonsStatus.EXPIRED, SummonsStatus.STOOD_DOWN}
)


class Summons(BaseModel):
    """One coordinator called to one whistle. ``backup`` is who to call if this one does not ack."""

    model_config = ConfigDict(frozen=True)

    id: str
    agency: Agency
    coordinator: str
    tier: Tier
    backup: str | None = None
    summoned_at: AwareDatetime
    deadline: AwareDatetime
    acked_at: AwareDatetime | None = None
    status: SummonsStatus = SummonsStatus.PENDING


class Escalation(BaseModel):
    """Something the sounding centre was alerted about: a missed deadline or an empty roster."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    agency: Agency
    kind: Literal["no_duty", "backup_summoned", "no_backup", "expired"]
    summons_id: str | None
    text: str


class Whistle(BaseModel):
    """The whistle record: who sounded it, every summons and what happened since."""

    model_config = ConfigDict(frozen=True)

    id: str
    incident_id: str
    sounded_by: str
    sounding_centre: Centre
    sounded_at: AwareDatetime
    ack_timeout_s: float = Field(gt=0)
    forced: bool = False
    reason: str | None = None
    summons: tuple[Summons, ...] = ()
    escalations: tuple[Escalation, ...] = ()
    greenwave_enabled_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None

    def summons_by_id(self, summons_id: str) -> Summons | None:
        """The summons with this id, or ``None`` (a stale timer, another whistle's id)."""
        return next((s for s in self.summons if s.id == summons_id), None)

    def acked_agencies(self) -> frozenset[Agency]:
        """Agencies whose coordinator (primary or backup) has acked."""
        return frozenset(s.agency for s in self.summons if s.status == SummonsStatus.ACKED)

    @property
    def settled(self) -> bool:
        """No summons is waiting for an answer."""
        return all(s.status in SETTLED for s in self.summons)


# -- effects: what the adapter must do ---------------------------------------------------------


class Summon(BaseModel):
    """Page the coordinator of this summons."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["summon"] = "summon"
    whistle_id: str
    incident_id: str
    summons: Summons


class StandDown(BaseModel):
    """Tell a coordinator still being paged that a colleague acked and they are not needed."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["stand_down"] = "stand_down"
    whistle_id: str
    summons: Summons


class ScheduleTimer(BaseModel):
    """Call :func:`on_timeout` with ``summons_id`` at ``due`` (replace any timer of this id)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["schedule_timer"] = "schedule_timer"
    timer_id: str
    whistle_id: str
    summons_id: str
    due: AwareDatetime


class CancelTimer(BaseModel):
    """Drop the timer, if it has not fired (a late firing is harmless anyway)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["cancel_timer"] = "cancel_timer"
    timer_id: str


class AlertCentre(BaseModel):
    """Show an alert on the consoles of a centre."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["alert_centre"] = "alert_centre"
    whistle_id: str
    centre: Centre
    text: str


class EnableGreenWave(BaseModel):
    """Turn on green-wave signal protection for every unit of the incident."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["enable_greenwave"] = "enable_greenwave"
    whistle_id: str
    incident_id: str


Effect = Annotated[
    Summon | StandDown | ScheduleTimer | CancelTimer | AlertCentre | EnableGreenWave,
    Field(discriminator="kind"),
]

# Only the centres that dispatch the rescue itself sound the whistle; 122 is summoned by it.
SOUNDING_CENTRES = frozenset({Centre.EMS, Centre.FIRE})


def sounding_centre(incident: Incident) -> Centre | None:
    """The centre that sounds the whistle for an incident (and in whose name it is automatic).

    The first 120 or 119 centre that took one of its calls; when only 122 heard of it, the
    centre that dispatches the rescue, which joint intake shows it to: 120 when the plan sends
    an ambulance, else 119 when it sends fire. None when neither is involved.
    """
    for call in incident.calls:
        if call.centre in SOUNDING_CENTRES:
            return call.centre
    if Agency.EMS in incident.agencies:
        return Centre.EMS
    if Agency.FIRE in incident.agencies:
        return Centre.FIRE
    return None


def whistle_id_for(incident_id: str) -> str:
    """One whistle per incident: its id follows from the incident's."""
    return f"W-{incident_id}"


def summons_id(whistle_id: str, agency: Agency, tier: Tier) -> str:
    """The deterministic id of a summons (also its ack timer's payload)."""
    return f"{whistle_id}:{agency.value}:{tier.value}"


def timer_id(summons_id: str) -> str:
    """The id of the ack-deadline timer of a summons."""
    return f"whistle-ack:{summons_id}"


def sound(
    *,
    whistle_id: str,
    incident: Incident,
    sounded_by: str,
    centre: Centre,
    duty: Mapping[Agency, Duty],
    now: datetime,
    ack_timeout_s: float,
    forced: bool = False,
    reason: str | None = None,
) -> tuple[Whistle, list[Effect]]:
    """Sound the whistle: summon the primary coordinator of every whistle agency at once.

    Args:
        whistle_id: id for the new whistle (the caller allocates it).
        incident: the incident it is sounded for.
        sounded_by: the dispatcher (token subject).
        centre: the dispatcher's centre.
        duty: on-duty coordinators (``rosters.on_duty``); an agency missing here is alerted to
            the sounding centre at once instead of being summoned.
        now: the clock.
        ack_timeout_s: how long each coordinator has to ack.
        forced: sound it although the plan does not make the incident eligible.
        reason: why it was forced (required when ``forced``).

    Returns:
        The whistle and the effects: one ``Summon`` per agency on duty, one ``ScheduleTimer``
        per summons, one ``AlertCentre`` per agency with no one on duty.

    Raises:
        ForbiddenError: the centre is 122 (only 120 and 119 sound the whistle).
        ConflictError: the incident is closed, already has a whistle, or is not
            whistle-eligible and not forced; or forced without a reason.
        ValueError: ``ack_timeout_s`` is not positive.
    """
    if centre not in SOUNDING_CENTRES:
        raise ForbiddenError(f"centre {centre.value} cannot sound the whistle (only 120 and 119)")
    if incident.status == IncidentStatus.CLOSED:
        raise ConflictError(f"incident {incident.id} is closed")
    if incident.whistle_id is not None:
        raise ConflictError(f"incident {incident.id} already has whistle {incident.whistle_id}")
    reason = reason.strip() if reason is not None else None
    if forced and not reason:
        raise ConflictError("forcing the whistle needs a reason")
    if not forced and not incident.whistle_eligible:
        raise ConflictError(
            f"incident {incident.id} ({', '.join(t.value for t in incident.call_types)}) is not "
            f"whistle-eligible; force it with a reason"
        )
    if not ack_timeout_s > 0:
        raise ValueError("ack_timeout_s must be positive")
    deadline = now + timedelta(seconds=ack_timeout_s)
    summonses: list[Summons] = []
    escalations: list[Escalation] = []
    alerts: list[Effect] = []
    for agency in WHISTLE_AGENCIES:
        on_duty = duty.get(agency)
        if on_duty is None:
            text = (
                f"whistle {whistle_id}: no {agency.value} coordinator on duty; call them directly"
            )
            escalations.append(
                Escalation(at=now, agency=agency, kind="no_duty", summons_id=None, text=text)
            )
            alerts.append(AlertCentre(whistle_id=whistle_id, centre=centre, text=text))
            continue
        summonses.append(
            Summons(
                id=summons_id(whistle_id, agency, Tier.PRIMARY),
                agency=agency,
                coordinator=on_duty.primary,
                tier=Tier.PRIMARY,
                backup=on_duty.backup,
                summoned_at=now,
                deadline=deadline,
            )
        )
    whistle = Whistle(
        id=whistle_id,
        incident_id=incident.id,
        sounded_by=sounded_by,
        sounding_centre=centre,
        sounded_at=now,
        ack_timeout_s=ack_timeout_s,
        forced=forced,
        reason=reason,
        summons=tuple(summonses),
        escalations=tuple(escalations),
    )
    effects: list[Effect] = [
        Summon(whistle_id=whistle_id, incident_id=incident.id, summons=s) for s in summonses
    ]
    effects += [_schedule(whistle_id, s) for s in summonses]
    effects += alerts
    return whistle, effects


def ack(whistle: Whistle, *, coordinator: str, now: datetime) -> tuple[Whistle, list[Effect]]:
    """A coordinator acknowledges the summons.

    A late ack still counts: a primary after escalation or a backup after expiry covers the
    agency, and any other coordinator of that agency still being paged is stood down. A repeat
    ack, or an ack from a coordinator who was stood down, changes nothing.

    Args:
        whistle: the current record.
        coordinator: who acks (token subject).
        now: the clock.

    Returns:
        The new record and effects: ``CancelTimer`` for each settled timer, ``StandDown`` for a
        colleague still paged, ``EnableGreenWave`` the first time the traffic agency acks.

    Raises:
        ConflictError: the whistle is closed, or this coordinator was never summoned.
    """
    if whistle.closed_at is not None:
        raise ConflictError(f"whistle {whistle.id} is closed")
    mine = [s for s in whistle.summons if s.coordinator == coordinator]
    if not mine:
        raise ConflictError(f"{coordinator} has no summons on whistle {whistle.id}")
    covered = whistle.acked_agencies()
    # Answerable: not already acked or stood down, and the agency not yet covered by a colleague.
    answering = {
        s.id
        for s in mine
        if s.status in (SummonsStatus.PENDING, SummonsStatus.ESCALATED, SummonsStatus.EXPIRED)
        and s.agency not in covered
    }
    if not answering:
        return whistle, []
    newly_covered = {s.agency for s in mine if s.id in answering}
    effects: list[Effect] = []
    updated: list[Summons] = []
    for s in whistle.summons:
        if s.id in answering:
            if s.status == SummonsStatus.PENDING:
                effects.append(CancelTimer(timer_id=timer_id(s.id)))
            updated.append(s.model_copy(update={"status": SummonsStatus.ACKED, "acked_at": now}))
        elif s.agency in newly_covered and s.status == SummonsStatus.PENDING:
            stood_down = s.model_copy(update={"status": SummonsStatus.STOOD_DOWN})
            effects.append(CancelTimer(timer_id=timer_id(s.id)))
            effects.append(StandDown(whistle_id=whistle.id, summons=stood_down))
            updated.append(stood_down)
        else:
            updated.append(s)
    update: dict[str, object] = {"summons": tuple(updated)}
    if Agency.TRAFFIC in newly_covered and whistle.greenwave_enabled_at is None:
        update["greenwave_enabled_at"] = now
        effects.append(EnableGreenWave(whistle_id=whistle.id, incident_id=whistle.incident_id))
    return whistle.model_copy(update=update), effects


def on_timeout(whistle: Whistle, *, summons_id: str, now: datetime) -> tuple[Whistle, list[Effect]]:
    """An ack timer fired.

    Timers may fire late, twice, or for a summons that has since been acked: only a pending
    summons whose deadline has passed escalates. A timer that fires before the deadline (a
    clock ahead of ours) is re-scheduled for the deadline instead of being lost.

    Args:
        whistle: the current record.
        summons_id: the summons the timer belongs to.
        now: the clock.

    Returns:
        For a primary: it is escalated, its backup summoned with a fresh deadline
        (``Summon``, ``ScheduleTimer``) and the sounding centre alerted; without a backup it
        expires with an alert. For a backup: it expires and the centre is alerted again.
        Otherwise the record unchanged and no effects.
    """
    current = whistle.summons_by_id(summons_id)
    if whistle.closed_at is not None or current is None:
        return whistle, []
    if current.status != SummonsStatus.PENDING:
        return whistle, []
    if now < current.deadline:
        return whistle, [_schedule(whistle.id, current)]
    centre = whistle.sounding_centre
    who = f"{current.agency.value} {current.tier.value} coordinator {current.coordinator}"
    late = f"did not ack whistle {whistle.id} within {whistle.ack_timeout_s:g} s"
    effects: list[Effect] = []
    added: list[Summons] = []
    if current.tier == Tier.PRIMARY and current.backup is not None:
        status = SummonsStatus.ESCALATED
        backup = Summons(
            id=_summons_id(whistle.id, current.agency, Tier.BACKUP),
            agency=current.agency,
            coordinator=current.backup,
            tier=Tier.BACKUP,
            summoned_at=now,
            deadline=now + timedelta(seconds=whistle.ack_timeout_s),
        )
        added.append(backup)
        text = f"{who} {late}; summoning backup {backup.coordinator}"
        kind: Literal["backup_summoned", "no_backup", "expired"] = "backup_summoned"
        effects.append(
            Summon(whistle_id=whistle.id, incident_id=whistle.incident_id, summons=backup)
        )
        effects.append(_schedule(whistle.id, backup))
    elif current.tier == Tier.PRIMARY:
        status = SummonsStatus.EXPIRED
        text = (
            f"{who} {late} and no backup is on the roster; call the {current.agency.value} centre"
        )
        kind = "no_backup"
    else:
        status = SummonsStatus.EXPIRED
        text = f"{who} {late}; no one from {current.agency.value} has acked"
        kind = "expired"
    effects.append(AlertCentre(whistle_id=whistle.id, centre=centre, text=text))
    escalation = Escalation(
        at=now, agency=current.agency, kind=kind, summons_id=current.id, text=text
    )
    summonses = tuple(
        s.model_copy(update={"status": status}) if s.id == current.id else s
        for s in whistle.summons
    )
    new = whistle.model_copy(
        update={
            "summons": summonses + tuple(added),
            "escalations": (*whistle.escalations, escalation),
        }
    )
    return new, effects


def close(whistle: Whistle, *, now: datetime) -> tuple[Whistle, list[Effect]]:
    """Close the whistle (the incident is under control or closed): stop every pending timer.

    Pending summons are stood down so that no pager keeps ringing. Closing twice changes nothing.

    Returns:
        The closed record and ``CancelTimer`` / ``StandDown`` for each pending summons.
    """
    if whistle.closed_at is not None:
        return whistle, []
    effects: list[Effect] = []
    updated: list[Summons] = []
    for s in whistle.summons:
        if s.status == SummonsStatus.PENDING:
            s = s.model_copy(update={"status": SummonsStatus.STOOD_DOWN})
            effects.append(CancelTimer(timer_id=timer_id(s.id)))
            effects.append(StandDown(whistle_id=whistle.id, summons=s))
        updated.append(s)
    return whistle.model_copy(update={"summons": tuple(updated), "closed_at": now}), effects


def _schedule(whistle_id: str, s: Summons) -> ScheduleTimer:
    return ScheduleTimer(
        timer_id=timer_id(s.id), whistle_id=whistle_id, summons_id=s.id, due=s.deadline
    )


# ``on_timeout`` takes a keyword named ``summons_id``, which shadows the public helper inside it.
_summons_id = summons_id
