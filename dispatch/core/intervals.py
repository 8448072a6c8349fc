"""An incident's final record, folded from its events: NFPA 1225/1710 intervals and the rest.

Intervals (seconds), per agency and for the incident as a whole (its first unit):

- call processing: the first call received to the agency's first unit assigned;
- turnout: that first assignment to the agency's first unit en route;
- travel: first en route to the agency's first unit on scene;
- total: first call received to first unit on scene.

An interval is None when either end never happened (a unit cancelled before it moved).
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
        elif ev.type == "greenwave.planned":
            greenwave["planned"] += 1
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
    )


def _earliest(values: Iterable[datetime | None]) -> datetime | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None
