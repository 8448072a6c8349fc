"""Arbitration between priority requests at one intersection (J2735 SSM statuses).

Pure: :meth:`Arbiter.decide` takes the intersection's snapshot (which the service keeps in
Redis), one incoming message and the clock, and returns the next snapshot. Every call re-solves
the active requests greedily in priority order, so:

* two granted windows on conflicting movements never overlap (a clearance gap included);
* a request is only ever shifted or rejected because of one of equal or higher priority
  (higher importance, or equal importance received earlier) - never by a lower one;
* movements that can share a green (same inbound leg, or opposing straight-through) may both be
  granted in overlapping windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .greenwave import ApproachLabel, RequestType, SignalRequest


class SignalStatus(StrEnum):
    """Status of a request at the intersection (J2735 PrioritizationResponseStatus, plus ends)."""

    REQUESTED = "requested"
    PROCESSING = "processing"
    GRANTED = "granted"
    REJECTED = "rejected"
    SERVED = "served"
    CANCELLED = "cancelled"


_ACTIVE = frozenset(
    {SignalStatus.REQUESTED, SignalStatus.PROCESSING, SignalStatus.GRANTED, SignalStatus.REJECTED}
)
_OPPOSITE = {ApproachLabel.N: ApproachLabel.S, ApproachLabel.S: ApproachLabel.N,
             ApproachLabel.E: ApproachLabel.W, ApproachLabel.W: ApproachLabel.E}  # fmt: skip


class SignalDecision(BaseModel):
    """The intersection's answer to one request."""

    model_config = ConfigDict(frozen=True)

    request: SignalRequest
    status: SignalStatus
    received_order: int = Field(ge=0, description="arrival rank at this intersection (tie-break)")
    granted_from: datetime | None = None
    granted_to: datetime | None = None
    shift_s: float = Field(
        default=0.0, ge=0, description="how much later than asked the green starts"
    )
    reason: str = ""
    decided_at: datetime
    # The controller's own word (it served it, or could not do it safely): final, never
    # re-solved. The arbiter's own rejections (a conflict) are re-solved as others free up.
    final: bool = False


class IntersectionState(BaseModel):
    """Snapshot of every decision at one intersection; what the service stores."""

    model_config = ConfigDict(frozen=True)

    intersection_id: int
    version: int = Field(
        default=0, ge=0, description="bumped on every decide(); for compare-and-set"
    )
    decisions: list[SignalDecision] = Field(default_factory=list)


class ArbiterConfig(BaseModel):
    """Tuning of the arbiter."""

    model_config = ConfigDict(frozen=True)

    max_shift_s: float = Field(
        default=20.0, ge=0, description="latest a green may start after the window asked"
    )
    clearance_s: float = Field(
        default=4.0, ge=0, description="yellow + all-red between conflicting greens"
    )
    retain_s: float = Field(
        default=300.0, ge=0, description="how long finished decisions stay in the snapshot"
    )


def movements_conflict(a: SignalRequest, b: SignalRequest) -> bool:
    """Whether two requested movements need different greens.

    Same inbound leg: one approach green serves both. Opposing legs both going straight: one
    through phase serves both. Anything else (crossing, or a turn across the other) conflicts.
    """
    if a.inbound.label == b.inbound.label:
        return False
    a_straight = a.outbound.label == _OPPOSITE[a.inbound.label]
    b_straight = b.outbound.label == _OPPOSITE[b.inbound.label]
    return not (a_straight and b_straight and a.inbound.label == _OPPOSITE[b.inbound.label])


def _window(request: SignalRequest) -> tuple[datetime, datetime]:
    return request.arrive_from, request.arrive_to + timedelta(seconds=request.hold_s)


class Arbiter:
    """Decides between requests at one intersection.

    Args:
        config: shift, clearance and retention settings.
    """

    def __init__(self, config: ArbiterConfig | None = None) -> None:
        self.config = config or ArbiterConfig()

    def decide(
        self, state: IntersectionState, incoming: SignalRequest, *, now: datetime
    ) -> IntersectionState:
        """Apply one request / update / cancel and re-solve the intersection.

        Args:
            state: current snapshot (use ``IntersectionState(intersection_id=...)`` for none).
            incoming: the message; its ``intersection_id`` must match.
            now: the clock.

        Returns:
            The next snapshot (``version`` + 1). Compare decisions by ``request.request_id`` to
            find what changed and needs an SSM.

        Raises:
            ValueError: the message is for another intersection.
        """
        if incoming.intersection_id != state.intersection_id:
            raise ValueError(
                f"request for {incoming.intersection_id} sent to {state.intersection_id}"
            )
        decisions = {d.request.request_id: d for d in state.decisions}
        previous = decisions.get(incoming.request_id)
        if previous is not None and incoming.sequence < previous.request.sequence:
            return state.model_copy(update={"version": state.version + 1})  # stale, out of order
        order = (
            previous.received_order
            if previous
            else max((d.received_order for d in state.decisions), default=-1) + 1
        )
        if incoming.request_type is RequestType.CANCEL:
            status, reason = SignalStatus.CANCELLED, "cancelled by requester"
        else:
            status, reason = SignalStatus.REQUESTED, ""
        decisions[incoming.request_id] = SignalDecision(
            request=incoming, status=status, received_order=order, reason=reason, decided_at=now
        )
        return self.resolve(
            state.model_copy(update={"decisions": list(decisions.values())}), now=now
        )

    def resolve(self, state: IntersectionState, *, now: datetime) -> IntersectionState:
        """Re-solve a snapshot at ``now``: expire finished windows, then grant in priority order.

        Args:
            state: the snapshot.
            now: the clock.

        Returns:
            The next snapshot (``version`` + 1).
        """
        retain = timedelta(seconds=self.config.retain_s)
        kept: list[SignalDecision] = []
        pending: list[SignalDecision] = []
        for d in state.decisions:
            end = (
                d.granted_to
                if d.status is SignalStatus.GRANTED and d.granted_to
                else _window(d.request)[1]
            )
            if d.final:
                if now - d.decided_at <= retain:
                    kept.append(d)
                continue
            if d.status in _ACTIVE and end < now:
                d = d.model_copy(update={
                    "status": SignalStatus.SERVED
                    if d.status is SignalStatus.GRANTED
                    else SignalStatus.REJECTED,
                    "decided_at": now,
                    "reason": d.reason or "window passed",
                })  # fmt: skip
            if d.status in _ACTIVE:
                pending.append(d)
            elif now - d.decided_at <= retain:
                kept.append(d)
        pending.sort(key=lambda d: (-d.request.importance, d.received_order, d.request.request_id))
        granted: list[SignalDecision] = []
        for d in pending:
            decision = self._place(d, granted, now=now)
            if decision.status is SignalStatus.GRANTED:
                granted.append(decision)
            kept.append(decision)
        kept.sort(key=lambda d: d.received_order)
        return state.model_copy(update={"decisions": kept, "version": state.version + 1})

    def _place(
        self, d: SignalDecision, granted: Sequence[SignalDecision], *, now: datetime
    ) -> SignalDecision:
        start, end = _window(d.request)
        gap = timedelta(seconds=self.config.clearance_s)
        blockers = [
            (g, g.granted_from, g.granted_to)
            for g in granted
            if g.granted_from is not None
            and g.granted_to is not None
            and movements_conflict(g.request, d.request)
        ]
        # Candidate starts: as asked, or just after a blocking green plus clearance.
        shifts = sorted(
            {0.0}
            | {
                (g_to + gap - start).total_seconds()
                for _, _, g_to in blockers
                if g_to + gap > start
            }
        )
        for shift in shifts:
            if shift > self.config.max_shift_s:
                break
            lo, hi = start + timedelta(seconds=shift), end + timedelta(seconds=shift)
            if all(hi + gap <= g_from or g_to + gap <= lo for _, g_from, g_to in blockers):
                changed = d.status is not SignalStatus.GRANTED or d.granted_from != lo
                reason = f"shifted {shift:.0f} s for higher priority" if shift > 0 else ""
                return d.model_copy(
                    update={
                        "status": SignalStatus.GRANTED,
                        "granted_from": lo,
                        "granted_to": hi,
                        "shift_s": shift,
                        "reason": reason,
                        "decided_at": now if changed else d.decided_at,
                    }
                )
        top = max((g for g, _, _ in blockers), key=lambda g: g.request.importance)
        return d.model_copy(
            update={
                "status": SignalStatus.REJECTED,
                "granted_from": None,
                "granted_to": None,
                "shift_s": 0.0,
                "reason": f"conflicts with {top.request.request_id} "
                f"(importance {top.request.importance})",
                "decided_at": now if d.status is not SignalStatus.REJECTED else d.decided_at,
            }
        )
