"""An incident's final record, folded from its events: NFPA 1225/1710 intervals and the rest.

Intervals (seconds), per agency and for the incident as a whole (its first unit):

- call processing: the first call received to the agency's first unit assigned;
- turnout: that first assignment to the agency's first unit en route;
- travel: first en route to the agency's first unit on scene;
- total: first call received to first unit on scene.

An interval is None when either end never happened (a unit cancelled before it moved).

Green wave: a unit is protected when its scene leg's ``greenwave.planned`` says ``active`` or
a ``greenwave.enabled`` names it. Its planned no-priority ETA is the ``duration_s`` of the
first ``route.planned`` of its scene leg (the router's time with every signal's delay in it);
time saved = that ETA minus its travel (its first en route to its first on scene). The
incident's time saved is that of its first protected unit on scene (None if none measured).

Property team: from ``property.joined`` (the join, its time, automatic or not) and
``property.status`` (the team's answers): join to first answer, and join to first contact
(on scene, holding or handed over). No event records an offer: "in a compound" (the incident
lies in a known compound, so its team could be offered) stands for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

INTERVALS = ("call_processing_s", "turnout_s", "travel_s", "total_s")
# A coarse grid cell (about 2 km) names the area of an incident without a gazetteer.
AREA_CELL_DEG = 0.02


@dataclass(frozen=True)
class LoggedEvent:
    """An archived event, as the fold reads it (``data`` is the parsed payload)."""

    type: str
    ts: datetime
    actor: str
    data: Mapping[str, Any]


@dataclass
class AgencyTimes:
    first_assigned_at: datetime | None = None
    first_en_route_at: datetime | None = None
    first_on_scene_at: datetime | None = None


@dataclass(frozen=True)
class Intervals:
    call_processing_s: float | None
    turnout_s: float | None
    travel_s: float | None
    total_s: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in INTERVALS}


def _gap(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a).total_seconds(), 3)


def intervals(first_call_at: datetime | None, t: AgencyTimes) -> Intervals:
    """The four intervals from a first call and one agency's (or the incident's) first times."""
    return Intervals(
        call_processing_s=_gap(first_call_at, t.first_assigned_at),
        turnout_s=_gap(t.first_assigned_at, t.first_en_route_at),
        travel_s=_gap(t.first_en_route_at, t.first_on_scene_at),
        total_s=_gap(first_call_at, t.first_on_scene_at),
    )


@dataclass
class IncidentRecord:
    """Everything a district keeps of one closed incident."""

    incident_id: str
    exercise: bool
    first_call_at: datetime | None
    closed_at: datetime | None
    call_type: str | None
    area: str | None
    agencies: list[str]
    by_agency: dict[str, Intervals]
    overall: Intervals
    calls: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    whistle: dict[str, Any] | None = None
    greenwave: dict[str, int] = field(default_factory=dict)
    hospitals: list[str] = field(default_factory=list)
    greenwave_units: list[dict[str, Any]] = field(default_factory=list)
    greenwave_saved_s: float | None = None
    compound_id: str | None = None
    property_team: dict[str, Any] | None = None

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def property_gap(self, name: str) -> float | None:
        """``join_to_answer_s`` or ``join_to_contact_s`` of the property team (None if not)."""
        value = (self.property_team or {}).get(name)
        return None if value is None else float(value)

    def as_json(self) -> dict[str, Any]:
        """The record as JSON-ready data (times ISO 8601)."""
        return {
            "incident_id": self.incident_id,
            "exercise": self.exercise,
            "first_call_at": _iso(self.first_call_at),
            "closed_at": _iso(self.closed_at),
            "call_type": self.call_type,
            "area": self.area,
            "agencies": self.agencies,
            "intervals": self.overall.as_dict(),
            "by_agency": {a: i.as_dict() for a, i in self.by_agency.items()},
            "calls": self.calls,
            "units": self.units,
            "timeline": self.timeline,
            "whistle": self.whistle,
            "greenwave": self.greenwave,
            "hospitals": self.hospitals,
            "greenwave_units": self.greenwave_units,
            "greenwave_saved_s": self.greenwave_saved_s,
            "compound_id": self.compound_id,
            "property": self.property_team,
        }


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _parse_ts(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, str) and raw:
        return datetime.fromisoformat(raw)
    return None


def area_of(lat: float, lon: float) -> str:
    """The grid cell of a point, e.g. ``31.22,121.46``."""
    cell = AREA_CELL_DEG
    return f"{(lat // cell) * cell:.2f},{(lon // cell) * cell:.2f}"


def fold_incident(incident_id: str, events: Iterable[LoggedEvent]) -> IncidentRecord:
    """Fold an incident's events (oldest first) into its final record."""
    incident: Mapping[str, Any] = {}
    unit_agency: dict[str, str] = {}
    units: dict[str, dict[str, Any]] = {}
    times: dict[str, AgencyTimes] = {}
    first_calls: list[datetime] = []
    closed_at: datetime | None = None
    whistle: dict[str, Any] | None = None
    escalations = 0
    greenwave = {"planned": 0, "requests": 0, "granted": 0, "rejected": 0}
    hospitals: list[str] = []
    timeline: list[dict[str, Any]] = []
    planned_eta: dict[str, float] = {}
    protected: set[str] = set()
    unit_en_route: dict[str, datetime] = {}
    unit_on_scene: dict[str, datetime] = {}
    team: dict[str, Any] | None = None
    for ev in events:
        d = ev.data
        timeline.append({"at": ev.ts.isoformat(), "type": ev.type, "actor": ev.actor})
        if isinstance(d.get("incident"), Mapping) and "calls" in d["incident"]:
            incident = d["incident"]
        if ev.type in ("incident.created", "incident.merged") and isinstance(
            d.get("call"), Mapping
        ):
            received = _parse_ts(d["call"].get("received_at"))
            if received is not None:
                first_calls.append(received)
        if ev.type == "incident.closed":
            closed_at = ev.ts
        elif ev.type == "assignment.created":
            unit_id, agency = str(d.get("unit_id")), str(d.get("agency"))
            unit_agency[unit_id] = agency
            units.setdefault(unit_id, {"agency": agency, "unit_type": d.get("unit_type")})
            units[unit_id].setdefault("status_times", {})["dispatched"] = ev.ts.isoformat()
            t = times.setdefault(agency, AgencyTimes())
            if t.first_assigned_at is None:
                t.first_assigned_at = ev.ts
            hospital = d.get("hospital")
            if isinstance(hospital, Mapping) and hospital.get("id"):
                hospitals.append(str(hospital["id"]))
        elif ev.type == "unit.status":
            unit_id, status = str(d.get("unit_id")), str(d.get("status"))
            if unit_id in units:
                units[unit_id]["status_times"].setdefault(status, ev.ts.isoformat())
            if status == "en_route":
                unit_en_route.setdefault(unit_id, ev.ts)
            elif status == "on_scene":
                unit_on_scene.setdefault(unit_id, ev.ts)
            agency_of = unit_agency.get(unit_id)
            if agency_of is not None:
                t = times[agency_of]
                if status == "en_route" and t.first_en_route_at is None:
                    t.first_en_route_at = ev.ts
                # On scene without reporting en route leaves travel unknown, not zero.
                if status == "on_scene" and t.first_on_scene_at is None:
                    t.first_on_scene_at = ev.ts
        elif ev.type == "whistle.sounded":
            whistle = {"sounded_at": ev.ts.isoformat(), "acks": [], "all_acked_at": None}
        elif ev.type == "whistle.ack" and whistle is not None:
            summons = d.get("summons") or {}
            whistle["acks"].append(
                {
                    "agency": summons.get("agency"),
                    "at": ev.ts.isoformat(),
                    "after_s": d.get("after_s"),
                }
            )
        elif ev.type == "whistle.alert":
            escalations += 1
        elif ev.type == "whistle.closed" and whistle is not None:
            whistle["all_acked_at"] = ev.ts.isoformat()
        elif ev.type == "route.planned":
            route = d.get("route")
            if d.get("leg") == "scene" and isinstance(route, Mapping):
                duration = route.get("duration_s")
                if isinstance(duration, int | float):
                    planned_eta.setdefault(str(d.get("unit_id")), float(duration))
        elif ev.type == "greenwave.planned":
            # Every leg gets a plan; only an active one is a green wave.
            if d.get("active") is True:
                greenwave["planned"] += 1
                if d.get("leg") == "scene":
                    protected.add(str(d.get("unit_id")))
        elif ev.type == "greenwave.enabled":
            protected.update(str(u) for u in d.get("units") or [])
        elif ev.type == "property.joined" and isinstance(d.get("join"), Mapping):
            joined = d["join"]
            team = {
                "compound_id": joined.get("compound_id"),
                "joined_at": _iso(_parse_ts(joined.get("joined_at")) or ev.ts),
                "automatic": bool(joined.get("automatic")),
                "answered_at": None,
                "contact_at": None,
                "status": joined.get("status") or "joined",
                "outcome": None,
            }
        elif ev.type in ("property.status", "property.released") and team is not None:
            status = str(d.get("status") or (d.get("join") or {}).get("status") or "")
            if ev.type == "property.released":
                status = "released"
            team["status"] = status
            if ev.type == "property.status" and team["answered_at"] is None:
                team["answered_at"] = ev.ts.isoformat()
            if status in ("on_scene", "holding", "handed_over") and team["contact_at"] is None:
                team["contact_at"] = ev.ts.isoformat()
            if d.get("outcome"):
                team["outcome"] = d.get("outcome")
        elif ev.type in ("greenwave.request", "greenwave.status"):
            if ev.type == "greenwave.request":
                greenwave["requests"] += 1
            decided = d.get("status")
            if decided == "granted":
                greenwave["granted"] += 1
            elif decided == "rejected":
                greenwave["rejected"] += 1
    if whistle is not None:
        whistle["escalations"] = escalations
    calls = list(incident.get("calls") or [])
    if not first_calls:
        first_calls = [t for t in (_parse_ts(c.get("received_at")) for c in calls) if t]
    first_call_at = min(first_calls) if first_calls else None
    overall = AgencyTimes(
        first_assigned_at=_earliest(t.first_assigned_at for t in times.values()),
        first_en_route_at=_earliest(t.first_en_route_at for t in times.values()),
        first_on_scene_at=_earliest(t.first_on_scene_at for t in times.values()),
    )
    gw_units: list[dict[str, Any]] = []
    saved_of: dict[str, float] = {}
    for unit_id in sorted(protected, key=lambda u: (unit_on_scene.get(u) is None, u)):
        eta, start, end = (
            planned_eta.get(unit_id),
            unit_en_route.get(unit_id),
            unit_on_scene.get(unit_id),
        )
        travel = _gap(start, end)
        saved = None if eta is None or travel is None else round(eta - travel, 3)
        if saved is not None:
            saved_of[unit_id] = saved
        gw_units.append({"unit_id": unit_id, "planned_eta_s": eta, "travel_s": travel,
                         "saved_s": saved, "on_scene_at": _iso(end)})  # fmt: skip
    first_saved = saved_of[min(saved_of, key=lambda u: unit_on_scene[u])] if saved_of else None
    if team is not None:
        joined_at = _parse_ts(team["joined_at"])
        team["join_to_answer_s"] = _gap(joined_at, _parse_ts(team["answered_at"]))
        team["join_to_contact_s"] = _gap(joined_at, _parse_ts(team["contact_at"]))
    call_types = list(incident.get("call_types") or [])
    lat, lon = incident.get("lat"), incident.get("lon")
    return IncidentRecord(
        incident_id=incident_id,
        exercise=any(bool(c.get("exercise")) for c in calls),
        first_call_at=first_call_at,
        closed_at=closed_at,
        call_type=str(call_types[0]) if call_types else None,
        area=area_of(float(lat), float(lon)) if lat is not None and lon is not None else None,
        agencies=[str(a) for a in incident.get("agencies") or sorted(times)],
        by_agency={a: intervals(first_call_at, t) for a, t in sorted(times.items())},
        overall=intervals(first_call_at, overall),
        calls=[dict(c) for c in calls],
        units=units,
        timeline=timeline,
        whistle=whistle,
        greenwave=greenwave,
        hospitals=hospitals,
        greenwave_units=gw_units,
        greenwave_saved_s=first_saved,
        compound_id=str(incident["compound_id"]) if incident.get("compound_id") else None,
        property_team=team,
    )


def _earliest(values: Iterable[datetime | None]) -> datetime | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None
