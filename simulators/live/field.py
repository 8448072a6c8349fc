"""The live drill's signals: the controllers behind the 122 gateway, and the field clock.

Pure and step-able like the batch models it wraps (no sockets, no clock of its own): the live
drill (:mod:`simulators.live.drill`) feeds it the service's ``greenwave.*`` events with the
field second they arrived at and sends what it returns. Field seconds count from the drill's
start on the wall clock (:class:`FieldClock`); the signal controllers, the vehicles and the
service all live on that one real clock.

:class:`SignalField` holds one :class:`SignalController` per signal node (made when first
touched, in the plan's state of that second), what the gateway heard (grants, cancels), the
reports it owes the service, and an independent check that no two conflicting grants overlapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from routing.arbiter import movements_conflict
from routing.greenwave import SignalRequest

from ..signals import (
    Axis,
    FlowFactor,
    PriorityCancel,
    PriorityGrant,
    PriorityReport,
    SignalController,
    SignalTiming,
    SignalView,
    axis_for,
)


@dataclass(frozen=True, slots=True)
class FieldClock:
    """Field seconds <-> datetimes. ``epoch`` is second 0 (the drill's start, timezone-aware)."""

    epoch: datetime

    def at(self, seconds: float) -> datetime:
        return self.epoch + timedelta(seconds=seconds)

    def seconds(self, when: datetime) -> float:
        return (when - self.epoch).total_seconds()


def parse_ts(text: str) -> datetime:
    """An ISO 8601 timestamp as the service sends it (``Z`` accepted)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------------- signals


@dataclass(frozen=True, slots=True)
class RequestNote:
    """Something the gateway learned about one request (for the per-leg accounting)."""

    at_s: float
    unit_id: str
    request_id: str
    intersection_id: int
    kind: Literal["requested", "granted", "rejected"]


@dataclass(frozen=True, slots=True)
class GrantConflict:
    """Two conflicting movements granted overlapping windows at one intersection (a bug)."""

    intersection_id: int
    first: str
    second: str
    at_s: float


@dataclass(slots=True)
class _Granted:
    request: SignalRequest
    green_from: datetime
    green_to: datetime


def _fallback_timing(intersection_id: int) -> SignalTiming:
    # Only for a signal the drill's graph does not know (the service runs another graph):
    # a plain 90 s plan keeps the vehicle driving instead of failing the drill.
    return SignalTiming(
        intersection_id=intersection_id,
        major_axis=Axis.NS,
        cycle_s=90,
        major_green_s=45,
        minor_green_s=35,
        offset_s=0,
        major_flow_vps=0.1,
        minor_flow_vps=0.08,
    )


class SignalField:
    """Every signal controller of the map and the 122 gateway's view of the green wave.

    The gateway passes grants and cancels through; the controllers bound priority themselves
    (maximum extension, recovery green: see :class:`SignalController`), so a stopped vehicle
    whose windows keep sliding cannot hold a street green for ever, and two vehicles held at
    each other's junctions do not wait on each other. A request a controller gives up on is
    reported ``rejected`` ("max extension reached"); a later grant for it is judged afresh.

    Args:
        timings: OSM node id -> fixed-time plan (``make_timings`` over the router's graph).
        clock: field clock (to read the service's datetimes).
        flow_factor: share of peak traffic at a field second.
        max_extension_s: the controllers' maximum priority extension past a planned green end.
    """

    def __init__(
        self,
        timings: Mapping[int, SignalTiming],
        clock: FieldClock,
        flow_factor: FlowFactor,
        *,
        max_extension_s: int = 30,
    ) -> None:
        self.max_extension_s = max_extension_s
        self.timings = dict(timings)
        self.clock = clock
        self.flow_factor = flow_factor
        self.controllers: dict[int, SignalController] = {}
        self.unknown: set[int] = set()
        self.notes: list[RequestNote] = []
        self.served_grants: list[PriorityGrant] = []
        self.conflicts: list[GrantConflict] = []
        self.received_grants = 0
        self.served = 0
        self.rejected_by_controller = 0
        self._last_grant: dict[tuple[int, str], PriorityGrant] = {}
        self._held: dict[int, dict[str, _Granted]] = {}
        self._dirty: set[int] = set()
        self._batch_ts: str | None = None
        self._outbox: list[PriorityReport] = []

    # -- the world the vehicles see ----------------------------------------------------------

    def controller(self, iid: int, now_s: float) -> SignalController:
        ctrl = self.controllers.get(iid)
        if ctrl is None:
            timing = self.timings.get(iid)
            if timing is None:
                self.unknown.add(iid)
                timing = self.timings[iid] = _fallback_timing(iid)
            ctrl = SignalController(
                timing,
                now_s=now_s,
                flow_factor=self.flow_factor,
                max_extension_s=self.max_extension_s,
            )
            self.controllers[iid] = ctrl
        return ctrl

    def lookup(self, iid: int, at_s: float) -> SignalView:
        """The signal as shown during second ``floor(at_s)`` (a vehicle's ``SignalLookup``)."""
        ctrl = self.controller(iid, at_s)
        ctrl.advance(at_s)
        self._take(ctrl)
        return ctrl.view()

    # -- the gateway ---------------------------------------------------------------------------

    def on_event(self, kind: str, ts: str, data: Mapping[str, Any], now_s: float) -> None:
        """Take one ``greenwave.*`` event the gateway received at field second ``now_s``."""
        # The events of one commit share their ``ts``: check the grants only once a commit is
        # complete (a commit may grant one request and shift another in the next event).
        if ts != self._batch_ts:
            self.check_conflicts(now_s)
            self._batch_ts = ts
        try:
            request = SignalRequest.model_validate(data["request"])
            status = str(data["status"])
        except (KeyError, ValueError):
            return
        iid, rid = request.intersection_id, request.request_id
        unit_id = request.requester.unit_id
        if kind == "greenwave.request":
            self.notes.append(RequestNote(now_s, unit_id, rid, iid, "requested"))
        held = self._held.setdefault(iid, {})
        if status == "granted" and data.get("granted_from") and data.get("granted_to"):
            green_from = parse_ts(str(data["granted_from"]))
            green_to = parse_ts(str(data["granted_to"]))
            before = held.get(rid)
            held[rid] = _Granted(request, green_from, green_to)
            self._dirty.add(iid)
            if before is None or (before.green_from, before.green_to) != (green_from, green_to):
                self.notes.append(RequestNote(now_s, unit_id, rid, iid, "granted"))
                self.received_grants += 1
                shift = float(data.get("shift_s") or 0.0)
                grant = PriorityGrant(
                    request_id=rid,
                    intersection_id=iid,
                    axis=axis_for(request.inbound.label),
                    inbound=request.inbound.label,
                    outbound=request.outbound.label,
                    green_from_s=self.clock.seconds(green_from),
                    green_to_s=self.clock.seconds(green_to),
                    eta_s=self.clock.seconds(request.eta) + shift,
                    importance=request.importance,
                )
                self._last_grant[(iid, rid)] = grant
                ctrl = self.controller(iid, now_s)
                ctrl.receive(grant, now_s)
                self._take(ctrl)
            return
        if status == "rejected":
            self.notes.append(RequestNote(now_s, unit_id, rid, iid, "rejected"))
        if rid in held and status in ("cancelled", "rejected", "served"):
            del held[rid]
            if status != "served":
                ctrl = self.controller(iid, now_s)
                ctrl.receive(PriorityCancel(request_id=rid, intersection_id=iid), now_s)
                self._take(ctrl)

    def check_conflicts(self, now_s: float) -> None:
        """Record every pair of conflicting grants whose windows overlap (should never be)."""
        for iid in sorted(self._dirty):
            live = sorted(self._held.get(iid, {}).items())
            for i, (rid_a, a) in enumerate(live):
                for rid_b, b in live[i + 1 :]:
                    if (
                        movements_conflict(a.request, b.request)
                        and a.green_from < b.green_to
                        and b.green_from < a.green_to
                    ):
                        self.conflicts.append(GrantConflict(iid, rid_a, rid_b, now_s))
        self._dirty.clear()

    def poll(self, now_s: float) -> list[PriorityReport]:
        """Advance controllers holding grants to ``now_s``; the reports owed to the service."""
        for ctrl in self.controllers.values():
            ctrl.advance(now_s)
            self._take(ctrl)
        out, self._outbox = self._outbox, []
        return out

    def outbox(self) -> list[PriorityReport]:
        """Reports produced since the last call, without advancing any controller."""
        out, self._outbox = self._outbox, []
        return out

    def finish(self, now_s: float) -> list[PriorityReport]:
        """End of the drill: last reports, perturbation episodes closed."""
        out = self.poll(now_s)
        self.check_conflicts(now_s)
        for ctrl in self.controllers.values():
            ctrl.finish()
            for rep in ctrl.data_to_send():
                self._account(rep)
        return out

    def _take(self, ctrl: SignalController) -> None:
        for rep in ctrl.data_to_send():
            self._account(rep)
            if rep.status in ("served", "rejected"):
                self._outbox.append(rep)

    def _account(self, rep: PriorityReport) -> None:
        if rep.status == "rejected":
            self.rejected_by_controller += 1
            unit_id = rep.request_id.split(":")[1] if rep.request_id.count(":") >= 2 else ""
            self.notes.append(
                RequestNote(rep.at_s, unit_id, rep.request_id, rep.intersection_id, "rejected")
            )
        if rep.status != "served":
            return
        self.served += 1
        grant = self._last_grant.get((rep.intersection_id, rep.request_id))
        if grant is not None:
            self.served_grants.append(grant)
