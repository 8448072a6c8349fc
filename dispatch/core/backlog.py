"""Intake backlog -> readiness, alarm and backpressure decisions (pure: no Redis, no clock).

The backlog of the intake group is what it still owes: entries delivered but not acknowledged
(``pending``) plus entries not yet delivered (``lag``). Past ``alarm`` the service is not ready
(load balancers send new work elsewhere) and raises the lag alarm, which clears only once the
backlog falls under ``clear`` (hysteresis, so a backlog hovering at the limit does not flap).
Past ``hard`` new calls are refused with a retry hint: they would wait longer in the queue than
the caller's system waits before trying another route.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AlarmChange(StrEnum):
    RAISE = "raise"
    CLEAR = "clear"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class BacklogLimits:
    """Thresholds in entries; ``clear`` <= ``alarm`` <= ``hard``."""

    alarm: int = 5_000
    hard: int = 50_000
    clear: int | None = None  # default: 80 % of alarm

    def __post_init__(self) -> None:
        if not 0 < self.alarm <= self.hard:
            raise ValueError("backlog limits need 0 < alarm <= hard")
        if self.clear is not None and not 0 <= self.clear <= self.alarm:
            raise ValueError("backlog clear must lie between 0 and alarm")

    @property
    def clear_below(self) -> int:
        return int(self.alarm * 0.8) if self.clear is None else self.clear


@dataclass(frozen=True, slots=True)
class Backlog:
    """One reading of the intake group (None: the group does not exist yet, or Redis hid lag)."""

    pending: int | None
    lag: int | None

    @property
    def size(self) -> int:
        """Entries owed; an unknown part counts as zero (a group not created yet owes nothing)."""
        return (self.pending or 0) + (self.lag or 0)


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether this instance should get traffic, and why not (empty reasons when ready)."""

    ready: bool
    reasons: tuple[str, ...]
    checks: dict[str, bool]


def readiness(
    *,
    redis_ok: bool,
    graph_ok: bool,
    backlog: Backlog | None,
    limits: BacklogLimits,
) -> Readiness:
    """Decide readiness from what was observed.

    Args:
        redis_ok: Redis answered.
        graph_ok: the road graph is loaded (or not required here).
        backlog: the intake group's reading (None when it could not be read).
        limits: the thresholds.
    """
    checks = {"redis": redis_ok, "graph": graph_ok}
    reasons: list[str] = []
    if not redis_ok:
        reasons.append("redis unreachable")
    if not graph_ok:
        reasons.append("no road graph loaded")
    if backlog is None:
        checks["intake"] = False
        if redis_ok:
            reasons.append("intake backlog unreadable")
    else:
        checks["intake"] = backlog.size <= limits.alarm
        if backlog.size > limits.alarm:
            reasons.append(f"intake backlog {backlog.size} over {limits.alarm}")
    return Readiness(ready=not reasons, reasons=tuple(reasons), checks=checks)


def alarm_change(raised: bool, backlog: Backlog, limits: BacklogLimits) -> AlarmChange:
    """Whether the lag alarm should be raised, cleared or left as it is."""
    if not raised and backlog.size > limits.alarm:
        return AlarmChange.RAISE
    if raised and backlog.size < limits.clear_below:
        return AlarmChange.CLEAR
    return AlarmChange.KEEP


def refuse_calls(backlog: Backlog, limits: BacklogLimits) -> bool:
    """Whether a new call should be refused (backpressure) rather than queued."""
    return backlog.size >= limits.hard
