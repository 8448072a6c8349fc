"""Green-wave planning: signal priority requests from a route, re-timed as the vehicle moves.

Pure functions, no I/O: the clock and the vehicle's position are arguments. Messages follow SAE
J2735 SignalRequestMessage (request id, intersection, request type, inbound/outbound approach,
ETA, duration, requester role, importance); statuses follow SignalStatusMessage.

Approach labels name the *side of the intersection*: a vehicle driving north (bearing 0) enters
from the south leg (``inbound.label == "S"``) and, going on north, leaves by the north leg
(``outbound.label == "N"``).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .router import Route


class RequestType(StrEnum):
    """J2735 PriorityRequestType, reduced to what we send."""

    REQUEST = "request"
    UPDATE = "update"
    CANCEL = "cancel"


class VehicleRole(StrEnum):
    """J2735 BasicVehicleRole values for the agencies we dispatch."""

    POLICE = "police"
    FIRE = "fire"
    AMBULANCE = "ambulance"


# The J2735 role each responding agency's vehicles request priority as. Traffic police and
# property security teams ask as police; keyed by agency name so routing needs no dispatch types.
ROLE_BY_AGENCY: Mapping[str, VehicleRole] = {
    "police": VehicleRole.POLICE,
    "traffic": VehicleRole.POLICE,
    "ems": VehicleRole.AMBULANCE,
    "fire": VehicleRole.FIRE,
    "property": VehicleRole.POLICE,
}


class ApproachLabel(StrEnum):
    """Coarse leg of an intersection."""

    N = "N"
    E = "E"
    S = "S"
    W = "W"


class Approach(BaseModel):
    """One leg of an intersection, as travelled by the vehicle."""

    model_config = ConfigDict(frozen=True)

    bearing_deg: float = Field(description="compass direction of travel on this leg")
    label: ApproachLabel = Field(description="side of the intersection the leg is on")


class Requester(BaseModel):
    """Who asks for priority."""

    model_config = ConfigDict(frozen=True)

    agency: str = Field(description="e.g. '119' fire, '120' EMS, '122' traffic police")
    unit_id: str
    role: VehicleRole
    incident_priority: int = Field(ge=1, le=5, description="1 = most urgent")


class SignalRequest(BaseModel):
    """One priority request for one intersection (J2735 SRM SignalRequestPackage)."""

    model_config = ConfigDict(frozen=True)

    request_id: str = Field(description="stable per unit and intersection across updates")
    sequence: int = Field(ge=0, description="increases with every message for this request")
    intersection_id: int = Field(description="OSM node id of the signal")
    request_type: RequestType
    inbound: Approach
    outbound: Approach
    eta: datetime = Field(description="expected arrival at the stop line")
    arrive_from: datetime = Field(description="earliest expected arrival")
    arrive_to: datetime = Field(description="latest expected arrival")
    hold_s: float = Field(ge=0, description="green kept after arrive_to for the vehicle to clear")
    requester: Requester
    importance: int = Field(ge=0, le=14, description="J2735 RequestImportanceLevel, 14 highest")
    sent_at: datetime


class GreenWaveConfig(BaseModel):
    """Tuning of windows and holds."""

    model_config = ConfigDict(frozen=True)

    min_margin_s: float = Field(default=3.0, ge=0, description="window half-width at the vehicle")
    margin_s_per_km: float = Field(default=4.0, ge=0, description="widening per km still to drive")
    early_share: float = Field(
        default=0.4,
        ge=0,
        le=1,
        description="part of the margin before the ETA (vehicles run late more than early)",
    )
    max_margin_s: float = Field(default=60.0, ge=0)
    hold_s: float = Field(default=6.0, ge=0)
    max_off_route_m: float = Field(
        default=80.0, gt=0, description="farther than this the vehicle has left the route"
    )
    retime_s: float = Field(
        default=2.0, ge=0, description="an ETA change smaller than this is not worth an update"
    )
    # 0 (off) until a gain is shown: in SUMO (benchmarks/sumo_strategies.py, moderate demand,
    # seed 11, 24 vehicles, travel / cross / messages against the same baseline) retime_s 2
    # gave -8.0% / +12.6% / 15,531; share 0.25: -1.8% / +18.1% / 12,515; retime_s 1: -1.9% /
    # +16.3% / 27,201; retime_s 4: -6.1% / +15.1% / 9,528. One seed's spread is wider than
    # these differences, so none is a finding yet.
    retime_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="... nor one smaller than this share of the signal's window",
    )


class PlannedSignal(BaseModel):
    """A signal of the plan, with its place along the route."""

    model_config = ConfigDict(frozen=True)

    intersection_id: int
    route_eta_s: float = Field(description="seconds from departure along the route")
    distance_m: float
    inbound: Approach
    outbound: Approach
    sequence: int
    active: bool = Field(description="False once cancelled (passed or dropped)")


class GreenWavePlan(BaseModel):
    """The state of one vehicle's green wave: what a re-plan needs (store it between fixes)."""

    model_config = ConfigDict(frozen=True)

    requester: Requester
    route: Route
    departure: datetime
    progress_s: float = Field(description="route time already covered at the last fix")
    signals: list[PlannedSignal]


class PlanUpdate(BaseModel):
    """Result of planning or re-planning: the new state and the messages to send."""

    model_config = ConfigDict(frozen=True)

    plan: GreenWavePlan
    requests: list[SignalRequest]
    off_route_m: float = Field(default=0.0, description="distance of the fix from the route")


def approach_label(bearing_deg: float, *, inbound: bool) -> ApproachLabel:
    """Leg of the intersection for a direction of travel.

    Args:
        bearing_deg: compass direction of travel.
        inbound: True for the leg the vehicle enters by (the side it comes *from*).

    Returns:
        N, E, S or W.
    """
    side = (bearing_deg + 180.0) % 360.0 if inbound else bearing_deg % 360.0
    return (ApproachLabel.N, ApproachLabel.E, ApproachLabel.S, ApproachLabel.W)[
        int(((side + 45.0) % 360.0) // 90.0)
    ]


def importance_for(role: VehicleRole, incident_priority: int) -> int:
    """J2735 importance (0..14) from the incident's priority (1 most urgent) and the role.

    Life-threat roles (fire, ambulance) get one level over police at the same incident priority,
    so two units of one incident do not tie.
    """
    base = 14 - 2 * (incident_priority - 1) - 1
    return max(0, min(14, base + (1 if role in (VehicleRole.FIRE, VehicleRole.AMBULANCE) else 0)))


def _request_id(requester: Requester, intersection_id: int) -> str:
    return f"{requester.agency}:{requester.unit_id}:{intersection_id}"


def _message(
    plan: GreenWavePlan,
    signal: PlannedSignal,
    kind: RequestType,
    *,
    now: datetime,
    ahead_s: float,
    ahead_m: float,
    config: GreenWaveConfig,
) -> SignalRequest:
    margin = min(
        config.min_margin_s + config.margin_s_per_km * max(ahead_m, 0.0) / 1000.0,
        config.max_margin_s,
    )
    eta = now + timedelta(seconds=max(ahead_s, 0.0))
    return SignalRequest(
        request_id=_request_id(plan.requester, signal.intersection_id),
        sequence=signal.sequence,
        intersection_id=signal.intersection_id,
        request_type=kind,
        inbound=signal.inbound,
        outbound=signal.outbound,
        eta=eta,
        arrive_from=eta - timedelta(seconds=margin * config.early_share),
        arrive_to=eta + timedelta(seconds=margin * (1.0 - config.early_share)),
        hold_s=config.hold_s,
        requester=plan.requester,
        importance=importance_for(plan.requester.role, plan.requester.incident_priority),
        sent_at=now,
    )


def _planned(route: Route) -> list[PlannedSignal]:
    out: list[PlannedSignal] = []
    seen: set[int] = set()
    for sig in route.signals:
        # Request ids are per unit and intersection: a route crossing one signal twice asks
        # once (for the first pass), rather than sending two requests under one id.
        if sig.node_id in seen:
            continue
        seen.add(sig.node_id)
        out.append(
            PlannedSignal(
                intersection_id=sig.node_id,
                route_eta_s=sig.eta_s,
                distance_m=sig.distance_m,
                inbound=Approach(
                    bearing_deg=sig.inbound_bearing_deg,
                    label=approach_label(sig.inbound_bearing_deg, inbound=True),
                ),
                outbound=Approach(
                    bearing_deg=sig.outbound_bearing_deg,
                    label=approach_label(sig.outbound_bearing_deg, inbound=False),
                ),
                sequence=0,
                active=True,
            )
        )
    return out


def plan_green_wave(
    route: Route,
    *,
    departure: datetime,
    requester: Requester,
    config: GreenWaveConfig | None = None,
) -> PlanUpdate:
    """One ``request`` per signal on a route, timed from the departure.

    Args:
        route: the route the vehicle will drive.
        departure: when it leaves the route's origin (timezone-aware recommended).
        requester: who asks.
        config: window tuning.

    Returns:
        The plan state and the requests, in route order.
    """
    cfg = config or GreenWaveConfig()
    plan = GreenWavePlan(
        requester=requester,
        route=route,
        departure=departure,
        progress_s=0.0,
        signals=_planned(route),
    )
    messages = [
        _message(
            plan,
            sig,
            RequestType.REQUEST,
            now=departure,
            ahead_s=sig.route_eta_s,
            ahead_m=sig.distance_m,
            config=cfg,
        )
        for sig in plan.signals
    ]
    return PlanUpdate(plan=plan, requests=messages)


def _route_profile(route: Route) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-vertex (x, y) in local metres, cumulative route time and distance at each vertex."""
    coords = np.asarray(route.coordinates, dtype=np.float64)
    lat0 = float(np.mean(coords[:, 1]))
    xy = np.stack(
        [
            np.radians(coords[:, 0]) * np.cos(np.radians(lat0)) * 6_371_008.8,
            np.radians(coords[:, 1]) * 6_371_008.8,
        ],
        axis=-1,
    )
    seg = np.hypot(*(xy[1:] - xy[:-1]).T)
    time_at = np.zeros(coords.shape[0])
    dist_at = np.zeros(coords.shape[0])
    # Time and distance grow linearly with polyline length inside each edge.
    for edge, nxt in zip(route.edges, [*route.edges[1:], None], strict=True):
        lo = edge.start_index
        hi = nxt.start_index if nxt is not None else coords.shape[0] - 1
        poly = seg[lo:hi]
        total = float(poly.sum())
        share = np.cumsum(poly) / total if total > 0 else np.ones(hi - lo)
        time_at[lo + 1 : hi + 1] = time_at[lo] + share * edge.duration_s
        dist_at[lo + 1 : hi + 1] = dist_at[lo] + share * edge.length_m
    return xy, time_at, dist_at, coords


class _RouteGeometry:
    """What :func:`locate_on_route` needs of a route, computed once per :class:`Route` object.

    A vehicle is re-planned every few seconds on the same route (a re-plan's plan keeps the
    same ``Route`` object), and rebuilding the profile was most of a re-plan's cost. All arrays
    are read-only; the values are exactly those :func:`_route_profile` gives.
    """

    __slots__ = ("a", "ab", "coords", "cos_lat0", "dist_at", "length2", "time_at", "xy")

    def __init__(self, route: Route) -> None:
        xy, time_at, dist_at, coords = _route_profile(route)
        lat0 = float(np.mean(coords[:, 1]))
        self.cos_lat0 = np.cos(np.radians(lat0))
        self.xy, self.time_at, self.dist_at, self.coords = xy, time_at, dist_at, coords
        self.a = xy[:-1]
        self.ab = xy[1:] - self.a
        self.length2 = np.maximum(np.einsum("ij,ij->i", self.ab, self.ab), 1e-12)
        for arr in (xy, time_at, dist_at, coords, self.ab, self.length2):
            arr.setflags(write=False)


# id(route) -> (weak reference to it, its geometry). The weak reference's callback drops the
# entry when the route is freed, so an id reused by a later object never finds a stale entry
# (and a lookup checks the referent as well). Routes are frozen models: their polyline and
# edges are not expected to change in place; a changed route must be a new object.
_GEOMETRY: dict[int, tuple[weakref.ref[Route], _RouteGeometry]] = {}


def _route_geometry(route: Route) -> _RouteGeometry:
    key = id(route)
    hit = _GEOMETRY.get(key)
    if hit is not None and hit[0]() is route:
        return hit[1]
    geometry = _RouteGeometry(route)

    def forget(ref: weakref.ref[Route], key: int = key) -> None:
        entry = _GEOMETRY.get(key)
        if entry is not None and entry[0] is ref:
            del _GEOMETRY[key]

    _GEOMETRY[key] = (weakref.ref(route, forget), geometry)
    return geometry


def locate_on_route(
    route: Route, position: tuple[float, float], *, min_progress_s: float = 0.0
) -> tuple[float, float, float]:
    """Project a live ``(lat, lon)`` fix onto a route's polyline.

    Args:
        route: the route.
        position: the fix.
        min_progress_s: only segments at or after this route time are candidates (a vehicle
            does not drive backwards; this keeps a route that passes a place twice unambiguous).

    Returns:
        ``(route_time_s, route_distance_m, distance_from_route_m)`` at the projected point.
    """
    if len(route.coordinates) < 2:
        return 0.0, 0.0, 0.0
    geo = _route_geometry(route)
    time_at, dist_at = geo.time_at, geo.dist_at
    p = np.array([np.radians(position[1]) * geo.cos_lat0, np.radians(position[0])]) * 6_371_008.8
    a, ab = geo.a, geo.ab
    t = np.clip(np.einsum("ij,ij->i", p - a, ab) / geo.length2, 0.0, 1.0)
    foot = a + ab * t[:, None]
    dist = np.hypot(*(foot - p).T)
    dist[time_at[1:] < min_progress_s] = np.inf  # segments wholly behind the last known progress
    k = int(np.argmin(dist)) if np.isfinite(dist).any() else len(dist) - 1
    route_time = float(time_at[k] + t[k] * (time_at[k + 1] - time_at[k]))
    route_dist = float(dist_at[k] + t[k] * (dist_at[k + 1] - dist_at[k]))
    return max(route_time, min_progress_s), route_dist, float(dist[k])


def replan_from_position(
    plan: GreenWavePlan,
    *,
    position: tuple[float, float],
    now: datetime,
    config: GreenWaveConfig | None = None,
) -> PlanUpdate:
    """Re-time a plan from a live fix: ``update`` signals ahead, ``cancel`` those passed.

    Args:
        plan: the current state (from :func:`plan_green_wave` or an earlier re-plan).
        position: ``(lat, lon)`` of the vehicle now.
        now: the clock at the fix.
        config: window tuning.

    Returns:
        The new state and the messages. ``off_route_m`` says how far the fix was from the route;
        beyond ``config.max_off_route_m`` no update is sent (the caller should re-route and use
        :func:`replan_for_new_route`), only cancels for signals already passed.
    """
    cfg = config or GreenWaveConfig()
    progress_s, progress_m, off_m = locate_on_route(
        plan.route, position, min_progress_s=plan.progress_s
    )
    on_route = off_m <= cfg.max_off_route_m
    if not on_route:
        progress_s, progress_m = plan.progress_s, 0.0
    messages: list[SignalRequest] = []
    signals: list[PlannedSignal] = []
    state = plan.model_copy(update={"progress_s": progress_s})
    for sig in plan.signals:
        if not sig.active:
            signals.append(sig)
            continue
        if sig.route_eta_s <= progress_s:
            kind = RequestType.CANCEL
        elif on_route:
            kind = RequestType.UPDATE
        else:
            signals.append(sig)
            continue
        new = sig.model_copy(
            update={"sequence": sig.sequence + 1, "active": kind is RequestType.UPDATE}
        )
        signals.append(new)
        messages.append(
            _message(
                state,
                new,
                kind,
                now=now,
                ahead_s=sig.route_eta_s - progress_s,
                ahead_m=sig.distance_m - progress_m,
                config=cfg,
            )
        )
    return PlanUpdate(
        plan=state.model_copy(update={"signals": signals}), requests=messages, off_route_m=off_m
    )


def replan_for_new_route(
    plan: GreenWavePlan, new_route: Route, *, now: datetime, config: GreenWaveConfig | None = None
) -> PlanUpdate:
    """Switch a vehicle to a new route (re-routed from where it is now).

    Signals on both routes (same intersection, legs possibly changed) get ``update``;
    signals only on the old route get ``cancel``; signals only on the new one get ``request``.

    Args:
        plan: the current state.
        new_route: the route from the vehicle's current position.
        now: the clock; the new route is taken to start now.
        config: window tuning.

    Returns:
        The new state (its departure is ``now``) and the messages.
    """
    cfg = config or GreenWaveConfig()
    # Keyed by intersection: the request id is per unit and intersection, so a controller that
    # already holds one for this unit gets an update (new legs and times), never a duplicate.
    old = {s.intersection_id: s for s in plan.signals if s.active}
    state = GreenWavePlan(
        requester=plan.requester, route=new_route, departure=now, progress_s=0.0, signals=[]
    )
    signals: list[PlannedSignal] = []
    messages: list[SignalRequest] = []
    seen: set[int] = set()
    for sig in _planned(new_route):
        if (
            sig.intersection_id in seen
        ):  # a route crossing one signal twice: one request covers the first pass
            continue
        seen.add(sig.intersection_id)
        previous = old.get(sig.intersection_id)
        kind = RequestType.REQUEST
        if previous is not None:
            sig = sig.model_copy(update={"sequence": previous.sequence + 1})
            kind = RequestType.UPDATE
        signals.append(sig)
        messages.append(
            _message(
                state,
                sig,
                kind,
                now=now,
                ahead_s=sig.route_eta_s,
                ahead_m=sig.distance_m,
                config=cfg,
            )
        )
    for intersection_id, sig in old.items():
        if intersection_id in seen:
            continue
        gone = sig.model_copy(update={"sequence": sig.sequence + 1, "active": False})
        messages.append(
            _message(plan, gone, RequestType.CANCEL, now=now, ahead_s=0.0, ahead_m=0.0, config=cfg)
        )
    return PlanUpdate(plan=state.model_copy(update={"signals": signals}), requests=messages)


def cancel_requests(
    plan: GreenWavePlan,
    *,
    now: datetime,
    only: set[int] | None = None,
    config: GreenWaveConfig | None = None,
) -> list[SignalRequest]:
    """``cancel`` messages for the plan's active signals (all, or those in ``only``).

    Used when a vehicle stops needing priority: it arrived, or its assignment ended.
    """
    cfg = config or GreenWaveConfig()
    out: list[SignalRequest] = []
    for sig in plan.signals:
        if not sig.active or (only is not None and sig.intersection_id not in only):
            continue
        gone = sig.model_copy(update={"sequence": sig.sequence + 1, "active": False})
        out.append(
            _message(plan, gone, RequestType.CANCEL, now=now, ahead_s=0.0, ahead_m=0.0, config=cfg)
        )
    return out


def active_requests(plan: GreenWavePlan) -> Sequence[PlannedSignal]:
    """Signals of the plan still wanting priority."""
    return [s for s in plan.signals if s.active]


def outgoing(
    requests: Sequence[SignalRequest],
    sent_eta: Mapping[str, float],
    *,
    retime_s: float,
    retime_share: float = 0.0,
) -> tuple[list[SignalRequest], dict[str, float]]:
    """The messages worth sending to signal controllers, and what they then hold.

    A controller needs to hear of a re-timing only when it matters, not once a second: a
    cancel goes only where a request was sent; a signal not asked yet gets a ``request``; an
    ``update`` goes only when its ETA moved by more than ``retime_s`` and by more than
    ``retime_share`` of its arrival window (windows widen with the distance still to drive;
    measured in SUMO, a share > 0 saves messages but costs the vehicle and the cross street).

    Args:
        requests: a plan's or re-plan's messages (any mix of request, update and cancel).
        sent_eta: intersection id (as text) -> ETA (epoch seconds) last sent there.
        retime_s: the smallest ETA change worth an update.
        retime_share: the smallest change worth an update, as a share of the window
            (``arrive_to - arrive_from``).

    Returns:
        The messages to send, in order, and the new intersection -> ETA map.
    """
    sent = dict(sent_eta)
    out: list[SignalRequest] = []
    for message in requests:
        key = str(message.intersection_id)
        eta = message.eta.timestamp()
        if message.request_type is RequestType.CANCEL:
            if key in sent:
                out.append(message)
                del sent[key]
            continue
        if key not in sent:
            out.append(message.model_copy(update={"request_type": RequestType.REQUEST}))
        elif abs(sent[key] - eta) > max(retime_s, retime_share * _window_s(message)):
            out.append(message)
        else:
            continue
        sent[key] = eta
    return out, sent


def _window_s(message: SignalRequest) -> float:
    return (message.arrive_to - message.arrive_from).total_seconds()
