"""The whistle state machine, stepped with a fake clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from dispatch.core.rosters import Duty, DutySource
from dispatch.core.whistle import (
    AlertCentre,
    CancelTimer,
    Effect,
    EnableGreenWave,
    ScheduleTimer,
    StandDown,
    Summon,
    SummonsStatus,
    Tier,
    Whistle,
    ack,
    close,
    on_timeout,
    sound,
    summons_id,
    timer_id,
)
from dispatch.errors import ConflictError, ForbiddenError
from dispatch.models import Agency, Centre, Incident, IncidentStatus

A = Agency
TIMEOUT_S = 30.0
W = "W-1"


def incident(
    t0: datetime, *, eligible: bool = True, status: IncidentStatus = IncidentStatus.OPEN
) -> Incident:
    return Incident(
        id="I-7",
        lat=30.05,
        lon=119.96,
        created_at=t0,
        updated_at=t0,
        last_call_at=t0,
        whistle_eligible=eligible,
        status=status,
    )


def duty(*agencies: Agency, backups: bool = True) -> dict[Agency, Duty]:
    return {
        a: Duty(
            agency=a,
            primary=f"{a.value}-p",
            backup=f"{a.value}-b" if backups else None,
            source=DutySource.RULE,
        )
        for a in agencies
    }


ALL = (A.TRAFFIC, A.EMS, A.FIRE)


def sounded(t0: datetime, *, agencies: Sequence[Agency] = ALL, backups: bool = True) -> Whistle:
    whistle, _ = sound(
        whistle_id=W,
        incident=incident(t0),
        sounded_by="disp-120",
        centre=Centre.EMS,
        duty=duty(*agencies, backups=backups),
        now=t0,
        ack_timeout_s=TIMEOUT_S,
    )
    return whistle


def kinds(effects: Sequence[Effect]) -> list[str]:
    return [e.kind for e in effects]


def sid(agency: Agency, tier: Tier = Tier.PRIMARY) -> str:
    return summons_id(W, agency, tier)


def status(whistle: Whistle, agency: Agency, tier: Tier = Tier.PRIMARY) -> SummonsStatus:
    s = whistle.summons_by_id(sid(agency, tier))
    assert s is not None
    return s.status


def test_sound_summons_everyone_at_once(t0: datetime) -> None:
    whistle, effects = sound(
        whistle_id=W,
        incident=incident(t0),
        sounded_by="disp-119",
        centre=Centre.FIRE,
        duty=duty(*ALL),
        now=t0,
        ack_timeout_s=TIMEOUT_S,
    )
    assert kinds(effects) == ["summon"] * 3 + ["schedule_timer"] * 3
    summons = [e.summons for e in effects if isinstance(e, Summon)]
    assert [s.agency for s in summons] == list(ALL)
    assert [s.coordinator for s in summons] == ["traffic-p", "ems-p", "fire-p"]
    assert all(s.summoned_at == t0 and s.tier == Tier.PRIMARY for s in summons)
    timers = [e for e in effects if isinstance(e, ScheduleTimer)]
    assert {t.due for t in timers} == {t0 + timedelta(seconds=30)}
    assert [t.timer_id for t in timers] == [timer_id(s.id) for s in summons]
    assert whistle.sounding_centre == Centre.FIRE
    assert whistle.forced is False and whistle.reason is None
    assert not whistle.settled


def test_sound_is_deterministic(t0: datetime) -> None:
    assert sounded(t0) == sounded(t0)


def test_sound_with_agency_off_duty_alerts_at_once(t0: datetime) -> None:
    whistle, effects = sound(
        whistle_id=W,
        incident=incident(t0),
        sounded_by="disp-120",
        centre=Centre.EMS,
        duty=duty(A.EMS, A.FIRE),
        now=t0,
        ack_timeout_s=TIMEOUT_S,
    )
    assert kinds(effects) == [
        "summon",
        "summon",
        "schedule_timer",
        "schedule_timer",
        "alert_centre",
    ]
    alert = effects[-1]
    assert isinstance(alert, AlertCentre)
    assert alert.centre == Centre.EMS and "no traffic coordinator" in alert.text
    assert [e.kind for e in whistle.escalations] == ["no_duty"]


@pytest.mark.parametrize(
    ("centre", "eligible", "forced", "reason", "error", "message"),
    [
        (Centre.TRAFFIC, True, False, None, ForbiddenError, "only 120 and 119"),
        (Centre.TRAFFIC, True, True, "big crash", ForbiddenError, "only 120 and 119"),
        (Centre.EMS, False, False, None, ConflictError, "not whistle-eligible"),
        (Centre.FIRE, False, True, None, ConflictError, "needs a reason"),
        (Centre.FIRE, False, True, "   ", ConflictError, "needs a reason"),
        (Centre.FIRE, True, True, "", ConflictError, "needs a reason"),
    ],
)
def test_sound_refused(
    t0: datetime,
    centre: Centre,
    eligible: bool,
    forced: bool,
    reason: str | None,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        sound(
            whistle_id=W,
            incident=incident(t0, eligible=eligible),
            sounded_by="d",
            centre=centre,
            duty=duty(*ALL),
            now=t0,
            ack_timeout_s=TIMEOUT_S,
            forced=forced,
            reason=reason,
        )


def test_forced_with_reason(t0: datetime) -> None:
    whistle, effects = sound(
        whistle_id=W,
        incident=incident(t0, eligible=False),
        sounded_by="d",
        centre=Centre.FIRE,
        duty=duty(*ALL),
        now=t0,
        ack_timeout_s=TIMEOUT_S,
        forced=True,
        reason=" chemical tanker on the bridge ",
    )
    assert whistle.forced and whistle.reason == "chemical tanker on the bridge"
    assert kinds(effects).count("summon") == 3


def test_sound_refused_on_closed_or_already_sounded(t0: datetime) -> None:
    for inc, message in [
        (incident(t0, status=IncidentStatus.CLOSED), "closed"),
        (incident(t0).model_copy(update={"whistle_id": "W-0"}), "already has whistle W-0"),
    ]:
        with pytest.raises(ConflictError, match=message):
            sound(
                whistle_id=W,
                incident=inc,
                sounded_by="d",
                centre=Centre.EMS,
                duty=duty(*ALL),
                now=t0,
                ack_timeout_s=TIMEOUT_S,
            )
    with pytest.raises(ValueError, match="positive"):
        sound(
            whistle_id=W,
            incident=incident(t0),
            sounded_by="d",
            centre=Centre.EMS,
            duty=duty(*ALL),
            now=t0,
            ack_timeout_s=0,
        )


@pytest.mark.parametrize(
    ("after_s", "escalates"),
    [(0, False), (29.999, False), (30, True), (30.001, True), (95, True)],
)
def test_escalation_at_deadline_not_before(t0: datetime, after_s: float, escalates: bool) -> None:
    whistle = sounded(t0)
    now = t0 + timedelta(seconds=after_s)
    new, effects = on_timeout(whistle, summons_id=sid(A.EMS), now=now)
    if not escalates:
        # An early firing (a clock ahead of ours) re-arms the timer for the deadline.
        assert new == whistle
        assert effects == [
            ScheduleTimer(
                timer_id=timer_id(sid(A.EMS)),
                whistle_id=W,
                summons_id=sid(A.EMS),
                due=t0 + timedelta(seconds=30),
            )
        ]
        return
    assert kinds(effects) == ["summon", "schedule_timer", "alert_centre"]
    backup = effects[0]
    assert isinstance(backup, Summon)
    assert backup.summons.coordinator == "ems-b" and backup.summons.tier == Tier.BACKUP
    assert backup.summons.id == sid(A.EMS, Tier.BACKUP)
    # The backup gets a full timeout from when it is actually summoned, even if the timer was late.
    assert backup.summons.deadline == now + timedelta(seconds=30)
    alert = effects[2]
    assert isinstance(alert, AlertCentre) and alert.centre == Centre.EMS
    assert "ems primary coordinator ems-p did not ack" in alert.text and "ems-b" in alert.text
    assert status(new, A.EMS) == SummonsStatus.ESCALATED
    assert status(new, A.EMS, Tier.BACKUP) == SummonsStatus.PENDING
    assert status(new, A.FIRE) == SummonsStatus.PENDING
    assert [e.kind for e in new.escalations] == ["backup_summoned"]


def test_backup_ack_then_late_timers_ignored(t0: datetime) -> None:
    w = sounded(t0)
    w, _ = on_timeout(w, summons_id=sid(A.FIRE), now=t0 + timedelta(seconds=30))
    w, effects = ack(w, coordinator="fire-b", now=t0 + timedelta(seconds=41))
    assert effects == [CancelTimer(timer_id=timer_id(sid(A.FIRE, Tier.BACKUP)))]
    assert status(w, A.FIRE, Tier.BACKUP) == SummonsStatus.ACKED
    assert status(w, A.FIRE) == SummonsStatus.ESCALATED
    # The backup's timer fires anyway (cancel lost), and the primary's fires a second time.
    for late in (sid(A.FIRE, Tier.BACKUP), sid(A.FIRE)):
        again, effects = on_timeout(w, summons_id=late, now=t0 + timedelta(seconds=90))
        assert (again, effects) == (w, [])
    # A stale timer for a summons this whistle never had.
    assert on_timeout(w, summons_id="W-0:fire:primary", now=t0) == (w, [])


def test_backup_not_acking_expires_without_further_escalation(t0: datetime) -> None:
    w = sounded(t0)
    w, _ = on_timeout(w, summons_id=sid(A.EMS), now=t0 + timedelta(seconds=30))
    w, effects = on_timeout(w, summons_id=sid(A.EMS, Tier.BACKUP), now=t0 + timedelta(seconds=60))
    assert kinds(effects) == ["alert_centre"]
    assert status(w, A.EMS, Tier.BACKUP) == SummonsStatus.EXPIRED
    assert [e.kind for e in w.escalations] == ["backup_summoned", "expired"]
    assert on_timeout(w, summons_id=sid(A.EMS, Tier.BACKUP), now=t0 + timedelta(seconds=99)) == (
        w,
        [],
    )


def test_primary_without_backup_expires(t0: datetime) -> None:
    w = sounded(t0, backups=False)
    w, effects = on_timeout(w, summons_id=sid(A.TRAFFIC), now=t0 + timedelta(seconds=30))
    assert kinds(effects) == ["alert_centre"]
    assert status(w, A.TRAFFIC) == SummonsStatus.EXPIRED
    assert [e.kind for e in w.escalations] == ["no_backup"]


def test_primary_ack_after_escalation_counts_and_stands_backup_down(t0: datetime) -> None:
    w = sounded(t0)
    w, _ = on_timeout(w, summons_id=sid(A.TRAFFIC), now=t0 + timedelta(seconds=30))
    w, effects = ack(w, coordinator="traffic-p", now=t0 + timedelta(seconds=35))
    assert kinds(effects) == ["cancel_timer", "stand_down", "enable_greenwave"]
    assert effects[0] == CancelTimer(timer_id=timer_id(sid(A.TRAFFIC, Tier.BACKUP)))
    stand_down = effects[1]
    assert isinstance(stand_down, StandDown) and stand_down.summons.coordinator == "traffic-b"
    assert status(w, A.TRAFFIC) == SummonsStatus.ACKED
    assert status(w, A.TRAFFIC, Tier.BACKUP) == SummonsStatus.STOOD_DOWN
    # The stood-down backup acks anyway: nothing happens, no second green wave.
    assert ack(w, coordinator="traffic-b", now=t0 + timedelta(seconds=36)) == (w, [])


def test_traffic_ack_enables_green_wave_exactly_once(t0: datetime) -> None:
    w = sounded(t0)
    w, effects = ack(w, coordinator="ems-p", now=t0 + timedelta(seconds=3))
    assert EnableGreenWave not in {type(e) for e in effects}
    w, effects = ack(w, coordinator="traffic-p", now=t0 + timedelta(seconds=5))
    assert effects == [
        CancelTimer(timer_id=timer_id(sid(A.TRAFFIC))),
        EnableGreenWave(whistle_id=W, incident_id="I-7"),
    ]
    assert w.greenwave_enabled_at == t0 + timedelta(seconds=5)
    # Duplicate ack: idempotent, no effects.
    assert ack(w, coordinator="traffic-p", now=t0 + timedelta(seconds=6)) == (w, [])
    # Another agency acking afterwards does not enable it again.
    w, effects = ack(w, coordinator="fire-p", now=t0 + timedelta(seconds=7))
    assert effects == [CancelTimer(timer_id=timer_id(sid(A.FIRE)))]
    assert w.greenwave_enabled_at == t0 + timedelta(seconds=5)


def test_ack_by_stranger_is_a_conflict(t0: datetime) -> None:
    with pytest.raises(ConflictError, match="no summons"):
        ack(sounded(t0), coordinator="ems-b", now=t0)  # the backup is not summoned yet
    with pytest.raises(ConflictError, match="no summons"):
        ack(sounded(t0), coordinator="nobody", now=t0)


def test_all_acked_is_settled(t0: datetime) -> None:
    w = sounded(t0)
    for who in ("fire-p", "ems-p", "traffic-p"):
        w, _ = ack(w, coordinator=who, now=t0 + timedelta(seconds=10))
    assert w.settled
    assert w.acked_agencies() == frozenset(ALL)


def test_close_cancels_pending(t0: datetime) -> None:
    w = sounded(t0)
    w, _ = ack(w, coordinator="fire-p", now=t0 + timedelta(seconds=1))
    w, effects = close(w, now=t0 + timedelta(seconds=2))
    assert kinds(effects) == ["cancel_timer", "stand_down"] * 2
    assert w.closed_at == t0 + timedelta(seconds=2) and w.settled
    assert close(w, now=t0 + timedelta(seconds=3)) == (w, [])
    assert on_timeout(w, summons_id=sid(A.EMS), now=t0 + timedelta(seconds=30)) == (w, [])
    with pytest.raises(ConflictError, match="closed"):
        ack(w, coordinator="ems-p", now=t0 + timedelta(seconds=4))


def test_whistle_round_trips_through_json(t0: datetime) -> None:
    w = sounded(t0)
    w, _ = on_timeout(w, summons_id=sid(A.EMS), now=t0 + timedelta(seconds=30))
    assert Whistle.model_validate_json(w.model_dump_json()) == w
