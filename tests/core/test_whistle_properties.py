"""Property test: any interleaving of acks, timer firings (late, early, twice) and a close."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dispatch.core.rosters import Duty, DutySource
from dispatch.core.whistle import (
    CancelTimer,
    Effect,
    EnableGreenWave,
    ScheduleTimer,
    Summon,
    SummonsStatus,
    Tier,
    Whistle,
    ack,
    close,
    on_timeout,
    sound,
    summons_id,
)
from dispatch.errors import ConflictError
from dispatch.models import WHISTLE_AGENCIES, Agency, Centre, Incident

T0 = datetime(2026, 11, 29, 12, 15, tzinfo=UTC)
TIMEOUT_S = 30.0
W = "W-9"
# Primaries twice: they are summoned from the start, so their acks are the common case.
PEOPLE = [f"{a.value}-{t}" for a in WHISTLE_AGENCIES for t in ("p", "p", "b")] + ["stranger"]
SUMMONS_IDS = [summons_id(W, a, t) for a in WHISTLE_AGENCIES for t in Tier] + ["W-0:ems:primary"]

_ACK = st.tuples(st.just("ack"), st.sampled_from(PEOPLE))
# Advance the clock, then the adapter fires whatever is due, in a drawn order.
_TICK = st.tuples(
    st.just("tick"), st.floats(min_value=0, max_value=45), st.randoms(use_true_random=False)
)
# A spurious or duplicate firing of any timer, now.
_FIRE = st.tuples(st.just("fire"), st.sampled_from(SUMMONS_IDS))
_CLOSE = st.tuples(st.just("close"))
# Weighted by a die: acks half the time so several agencies ack in most runs (where a second
# green wave could slip out), a close rarely since nothing but no-ops can follow it.
action = st.integers(0, 19).flatmap(
    lambda roll: _CLOSE if roll == 0 else _ACK if roll <= 10 else _TICK if roll <= 15 else _FIRE
)


class Adapter:
    """What the real adapter does with effects, reduced to bookkeeping."""

    def __init__(self) -> None:
        self.timers: dict[str, tuple[str, datetime]] = {}
        self.effects: list[Effect] = []

    def apply(self, effects: list[Effect]) -> None:
        self.effects += effects
        for e in effects:
            if isinstance(e, ScheduleTimer):
                self.timers[e.timer_id] = (e.summons_id, e.due)
            elif isinstance(e, CancelTimer):
                self.timers.pop(e.timer_id, None)

    def due(self, now: datetime) -> list[tuple[str, str]]:
        return sorted((tid, sid) for tid, (sid, due) in self.timers.items() if due <= now)


@settings(max_examples=400, deadline=None)
# Pinned: a primary who acks after escalation (the backup must stand down), then another
# agency acks (the green wave must not be enabled again).
@example(
    present=(True, True, True),
    backups=True,
    actions=[
        ("tick", 30.0, random.Random(0)),
        ("ack", "traffic-p"),
        ("ack", "ems-p"),
        ("tick", 45.0, random.Random(0)),
    ],
)
@given(
    # One coin per agency: every subset, the full roster most often, the empty one rarely.
    present=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    backups=st.booleans(),
    actions=st.lists(action, min_size=3, max_size=60),
)
def test_any_interleaving(
    present: tuple[bool, bool, bool], backups: bool, actions: list[tuple[object, ...]]
) -> None:
    on_duty = {a for a, here in zip(WHISTLE_AGENCIES, present, strict=True) if here}
    duty = {
        a: Duty(
            agency=a,
            primary=f"{a.value}-p",
            backup=f"{a.value}-b" if backups else None,
            source=DutySource.RULE,
        )
        for a in on_duty
    }
    incident = Incident(
        id="I-1",
        lat=30.0,
        lon=120.0,
        created_at=T0,
        updated_at=T0,
        last_call_at=T0,
        whistle_eligible=True,
    )
    whistle, effects = sound(
        whistle_id=W,
        incident=incident,
        sounded_by="d",
        centre=Centre.FIRE,
        duty=duty,
        now=T0,
        ack_timeout_s=TIMEOUT_S,
    )
    adapter = Adapter()
    adapter.apply(effects)
    now = T0
    traffic_acked = False

    def fire(w: Whistle, sid: str) -> Whistle:
        new, eff = on_timeout(w, summons_id=sid, now=now)
        adapter.apply(eff)
        return new

    for act in actions:
        covered_before = whistle.acked_agencies()
        escalations_before = len(whistle.escalations)
        effects_before = len(adapter.effects)
        match act:
            case ("ack", str() as who):
                try:
                    whistle, eff = ack(whistle, coordinator=who, now=now)
                except ConflictError:
                    # Only a closed whistle or someone never summoned is refused.
                    assert whistle.closed_at is not None or all(
                        s.coordinator != who for s in whistle.summons
                    )
                    continue
                adapter.apply(eff)
                traffic_acked = traffic_acked or Agency.TRAFFIC in whistle.acked_agencies()
            case ("tick", float() as step_s, random.Random() as rnd):
                now += timedelta(seconds=step_s)
                due = adapter.due(now)
                rnd.shuffle(due)
                for tid, sid in due:
                    adapter.timers.pop(tid, None)
                    whistle = fire(whistle, sid)
            case ("fire", str() as sid):
                whistle = fire(whistle, sid)
            case ("close",):
                whistle, eff = close(whistle, now=now)
                adapter.apply(eff)
            case _:
                raise AssertionError(f"unexpected action {act!r}")
        # Once an agency has acked, nobody of it is summoned or escalated again.
        for escalation in whistle.escalations[escalations_before:]:
            assert escalation.agency not in covered_before, escalation
        for effect in adapter.effects[effects_before:]:
            if isinstance(effect, Summon):
                assert effect.summons.agency not in covered_before, effect

    # Drain: let every remaining timer come due and fire, as the adapter eventually would.
    for _ in range(10):
        if not adapter.timers:
            break
        now += timedelta(seconds=TIMEOUT_S)
        for tid, sid in adapter.due(now):
            adapter.timers.pop(tid, None)
            whistle = fire(whistle, sid)
    assert not adapter.timers

    greenwaves = [e for e in adapter.effects if isinstance(e, EnableGreenWave)]
    assert len(greenwaves) <= 1
    assert (len(greenwaves) == 1) is traffic_acked is (whistle.greenwave_enabled_at is not None)
    final = {
        SummonsStatus.ACKED,
        SummonsStatus.ESCALATED,
        SummonsStatus.EXPIRED,
        SummonsStatus.STOOD_DOWN,
    }
    for s in whistle.summons:
        assert s.status in final, s
        if s.status == SummonsStatus.STOOD_DOWN:
            # Stood down only because a colleague covered the agency, or the whistle was closed.
            assert s.agency in whistle.acked_agencies() or whistle.closed_at is not None
        if s.status == SummonsStatus.ESCALATED:
            assert whistle.summons_by_id(summons_id(W, s.agency, Tier.BACKUP)) is not None
    # Each on-duty primary summoned once, each backup at most once, nobody else.
    summoned = [e.summons.id for e in adapter.effects if isinstance(e, Summon)]
    assert len(summoned) == len(set(summoned))
    assert {summons_id(W, a, Tier.PRIMARY) for a in on_duty} <= set(summoned)
    assert set(summoned) == {s.id for s in whistle.summons}
    assert all(s.agency in on_duty for s in whistle.summons)
    if not backups:
        assert all(s.tier == Tier.PRIMARY for s in whistle.summons)
