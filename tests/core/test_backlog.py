"""The overload decisions as tables: readiness, the lag alarm's hysteresis, backpressure."""

from __future__ import annotations

import pytest

from dispatch.core.backlog import (
    AlarmChange,
    Backlog,
    BacklogLimits,
    alarm_change,
    readiness,
    refuse_calls,
)

LIMITS = BacklogLimits(alarm=100, hard=1000)


@pytest.mark.parametrize(
    ("redis_ok", "graph_ok", "backlog", "ready", "reason"),
    [
        (True, True, Backlog(0, 0), True, None),
        (True, True, Backlog(None, None), True, None),
        (True, True, Backlog(40, 60), True, None),
        (True, True, Backlog(40, 61), False, "intake backlog 101 over 100"),
        (False, True, None, False, "redis unreachable"),
        (True, False, Backlog(0, 0), False, "no road graph loaded"),
        (True, True, None, False, "intake backlog unreadable"),
    ],
)
def test_readiness(
    redis_ok: bool, graph_ok: bool, backlog: Backlog | None, ready: bool, reason: str | None
) -> None:
    state = readiness(redis_ok=redis_ok, graph_ok=graph_ok, backlog=backlog, limits=LIMITS)
    assert state.ready is ready
    assert (reason in state.reasons) if reason else state.reasons == ()
    assert set(state.checks) == {"redis", "graph", "intake"}


@pytest.mark.parametrize(
    ("raised", "size", "change"),
    [
        (False, 100, AlarmChange.KEEP),
        (False, 101, AlarmChange.RAISE),
        (True, 101, AlarmChange.KEEP),
        (True, 90, AlarmChange.KEEP),  # under the alarm, not yet under 80 %: no flapping
        (True, 79, AlarmChange.CLEAR),
        (False, 0, AlarmChange.KEEP),
    ],
)
def test_alarm_hysteresis(raised: bool, size: int, change: AlarmChange) -> None:
    assert alarm_change(raised, Backlog(0, size), LIMITS) is change


def test_refuse_at_the_hard_limit_only() -> None:
    assert not refuse_calls(Backlog(500, 499), LIMITS)
    assert refuse_calls(Backlog(500, 500), LIMITS)


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        BacklogLimits(alarm=10, hard=5)
    with pytest.raises(ValueError):
        BacklogLimits(alarm=10, hard=50, clear=11)
