"""Who sees which pushed event: the role rules and subscription filters of the websocket hub.

Pure logic, no I/O: :func:`view_of` reduces an event-log entry to the few facts the rules look
at (an :class:`EventView`, built once per event), and an :class:`Audience` (one per connected
client) answers :meth:`Audience.wants` with a handful of set look-ups, so the hub's fan-out
stays O(clients) with cheap work per client.

Role rules (a client's subscription can only narrow them, never widen):

- ``dispatcher`` (of a dispatching agency: police, 122, 120, 119), ``observer``, ``admin``:
  every event, but the access audit (``token.revoked``, ``auth.lockout``) goes to admins only;
  observers get the callers' words and numbers taken out (:func:`policy.redact_event_data`).
- ``coordinator``: ``whistle.summons`` addressed to them (``data.summons.coordinator`` is
  their token subject), then every event of an incident they were summoned to.
- ``terminal`` (token subject = unit id): events about their unit (``data.unit_id`` or
  ``data.unit.id``) and ``incident.*`` events of the incident the unit is assigned to.
- ``signal`` (token scope = intersection ids, or ``*`` for the 122 signal-control gateway that
  serves the whole district): only the green-wave messages ``greenwave.request``, ``.update``,
  ``.cancel`` and ``.status`` whose ``data.intersection_id`` is in scope.
- ``property`` (token scope = compound ids): need-to-know. Only :data:`PROPERTY_TYPES`
  (the incident's own changes and its team's join), of incidents whose ``compound_id`` is in
  scope, of a type on the compound list, while the team is joined and the incident open (the
  ``incident.closed`` that ends it still arrives); the hub sends them the least view
  (:func:`policy.property_event_data`).

Subscription filters, each optional (absent: no restriction): ``incidents`` (events of other
incidents, and events of none, are dropped); ``agencies`` (an event tied to agencies must share
one; agency-neutral events pass); ``bbox`` ``[west, south, east, north]`` (an event with a
known place must lie inside; events with no place pass); ``intersections`` and ``compounds``
(must contain the event's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dispatch.core import compounds as _compounds
from dispatch.core.policy import ALL_INTERSECTIONS, DISPATCHING
from dispatch.errors import ForbiddenError
from dispatch.models import Agency, CallType, Role

StreamKey = tuple[int, int]

SIGNAL_TYPES = frozenset(
    {"greenwave.request", "greenwave.update", "greenwave.cancel", "greenwave.status"}
)
# The access audit: admins only.
ADMIN_TYPES = frozenset({"token.revoked", "auth.lockout", "property.access"})
SEE_ALL = frozenset({Role.DISPATCHER, Role.OBSERVER, Role.ADMIN})
# What a property team is pushed (of its joined incidents).
PROPERTY_TYPES = frozenset(
    {
        "incident.created", "incident.merged", "incident.updated", "incident.closed",
        "property.joined", "property.status", "property.released",
    }
)  # fmt: skip
_TEAM_ENDED = frozenset({"closed", "released"})


def sees_everything(role: Role, agency: Agency) -> bool:
    """Dispatchers of a dispatching agency, observers and admins see every event."""
    if role is Role.DISPATCHER:
        return agency in DISPATCHING
    return role in SEE_ALL


_MAX_IDS = 2_000


def stream_key(stream_id: str) -> StreamKey:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``; ``"5"`` -> ``(5, 0)``.

    Raises:
        ValueError: not a stream id.
    """
    ms, sep, seq = stream_id.partition("-")
    key = (int(ms), int(seq) if sep else 0)
    if key[0] < 0 or key[1] < 0:
        raise ValueError(f"not a stream id: {stream_id!r}")
    return key


def key_text(key: StreamKey) -> str:
    return f"{key[0]}-{key[1]}"


@dataclass(frozen=True, slots=True)
class IncidentInfo:
    """What the filters need to know about an incident: where, which agencies, which compound."""

    lat: float | None = None
    lon: float | None = None
    agencies: frozenset[str] = frozenset()
    compound_id: str | None = None
    # For a property team: "open" (joined, eligible, open), "closed" (was so, now closed),
    # "never"; None: unknown (a summary without status).
    property_state: str | None = None

    def merged(self, newer: IncidentInfo) -> IncidentInfo:
        """``newer`` wins field by field where it knows something."""
        return IncidentInfo(
            lat=newer.lat if newer.lat is not None else self.lat,
            lon=newer.lon if newer.lon is not None else self.lon,
            agencies=newer.agencies or self.agencies,
            compound_id=newer.compound_id if newer.compound_id is not None else self.compound_id,
            property_state=newer.property_state
            if newer.property_state is not None
            else self.property_state,
        )


def incident_info(incident: Mapping[str, Any]) -> IncidentInfo:
    """Read an incident (the full record or a whistle's summary) as JSON-decoded data."""
    lat, lon = incident.get("lat"), incident.get("lon")
    agencies = incident.get("agencies")
    compound = incident.get("compound_id")
    return IncidentInfo(
        lat=float(lat) if isinstance(lat, int | float) else None,
        lon=float(lon) if isinstance(lon, int | float) else None,
        agencies=frozenset(str(a) for a in agencies) if isinstance(agencies, list) else frozenset(),
        compound_id=str(compound) if compound is not None else None,
        property_state=property_state(incident),
    )


def property_state(incident: Mapping[str, Any]) -> str | None:
    """See :attr:`IncidentInfo.property_state`."""
    status = incident.get("status")
    if not isinstance(status, str):
        return None
    join = incident.get("property_join")
    types = incident.get("call_types")
    try:
        eligible = isinstance(types, list) and _compounds.property_may_see(
            [CallType(t) for t in types]
        )
    except ValueError:
        eligible = False
    if not eligible or not isinstance(join, dict) or join.get("status") in _TEAM_ENDED:
        return "never"
    return "closed" if status == "closed" else "open"


def embedded_incident(data: Mapping[str, Any]) -> IncidentInfo | None:
    """The incident an event carries in ``data.incident``, if any."""
    inc = data.get("incident")
    return incident_info(inc) if isinstance(inc, dict) else None


@dataclass(frozen=True, slots=True)
class EventView:
    """The facts of one event that the role rules and filters look at (built once per event)."""

    id: str
    key: StreamKey
    type: str
    incident_id: str | None = None
    unit_id: str | None = None
    # For unit.updated: the incident the unit now serves (None: free).
    unit_incident: str | None = None
    intersection_id: str | None = None
    coordinator: str | None = None
    agencies: frozenset[str] = frozenset()
    lat: float | None = None
    lon: float | None = None
    compound_id: str | None = None
    property_state: str | None = None


def view_of(
    event_id: str,
    key: StreamKey,
    type: str,
    incident_id: str | None,
    data: Mapping[str, Any],
    known: IncidentInfo | None = None,
) -> EventView:
    """Reduce an event to an :class:`EventView`.

    Args:
        known: what the hub already knows of the event's incident (cache or store); the event's
            own ``data.incident`` wins over it.
    """
    info = known
    embedded = embedded_incident(data)
    if embedded is not None:
        info = embedded if info is None else info.merged(embedded)
    unit_id: str | None = None
    unit_incident: str | None = None
    agencies: set[str] = set(info.agencies) if info else set()
    lat = info.lat if info else None
    lon = info.lon if info else None
    raw_unit = data.get("unit_id")
    if isinstance(raw_unit, str):
        unit_id = raw_unit
    unit = data.get("unit")
    if isinstance(unit, dict):
        if isinstance(unit.get("id"), str):
            unit_id = unit["id"]
        if isinstance(unit.get("agency"), str):
            agencies.add(unit["agency"])
        raw_inc = unit.get("incident_id")
        unit_incident = raw_inc if isinstance(raw_inc, str) else None
        pos = unit.get("position")
        if isinstance(pos, dict) and isinstance(pos.get("lat"), int | float) and lat is None:
            lat, lon = float(pos["lat"]), float(pos.get("lon", 0.0))
    if isinstance(data.get("agency"), str):
        agencies.add(data["agency"])
    coordinator: str | None = None
    summons = data.get("summons")
    if isinstance(summons, dict):
        if isinstance(summons.get("coordinator"), str):
            coordinator = summons["coordinator"]
        if isinstance(summons.get("agency"), str):
            agencies.add(summons["agency"])
    intersection = data.get("intersection_id")
    return EventView(
        id=event_id,
        key=key,
        type=type,
        incident_id=incident_id,
        unit_id=unit_id,
        unit_incident=unit_incident,
        intersection_id=str(intersection) if intersection is not None else None,
        coordinator=coordinator,
        agencies=frozenset(agencies),
        lat=lat,
        lon=lon,
        compound_id=info.compound_id if info else None,
        property_state=info.property_state if info else None,
    )


BBox = tuple[float, float, float, float]


class Subscription(BaseModel):
    """A client's filter. Every field optional; each one given narrows what the client gets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agencies: list[Agency] | None = Field(None, max_length=len(Agency))
    incidents: list[str] | None = Field(None, max_length=_MAX_IDS)
    bbox: tuple[float, float, float, float] | None = Field(
        None, description="[west, south, east, north] in degrees"
    )
    intersections: list[str] | None = Field(None, max_length=_MAX_IDS)
    compounds: list[str] | None = Field(None, max_length=_MAX_IDS)

    @model_validator(mode="after")
    def _sane_bbox(self) -> Subscription:
        if self.bbox is not None:
            w, s, e, n = self.bbox
            if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
                raise ValueError("bbox must be [west, south, east, north] with west<=east, s<=n")
        return self


@dataclass(frozen=True, slots=True)
class Filter:
    """A :class:`Subscription` as sets, for cheap look-ups."""

    agencies: frozenset[str] | None = None
    incidents: frozenset[str] | None = None
    bbox: BBox | None = None
    intersections: frozenset[str] | None = None
    compounds: frozenset[str] | None = None

    @classmethod
    def of(cls, sub: Subscription) -> Filter:
        def s(values: Iterable[str] | None) -> frozenset[str] | None:
            return None if values is None else frozenset(values)

        return cls(
            agencies=s(None if sub.agencies is None else [a.value for a in sub.agencies]),
            incidents=s(sub.incidents),
            bbox=sub.bbox,
            intersections=s(sub.intersections),
            compounds=s(sub.compounds),
        )

    def passes(self, ev: EventView) -> bool:
        if self.incidents is not None and ev.incident_id not in self.incidents:
            return False
        if self.agencies is not None and ev.agencies and not (ev.agencies & self.agencies):
            return False
        if self.bbox is not None and ev.lat is not None and ev.lon is not None:
            w, s, e, n = self.bbox
            if not (w <= ev.lon <= e and s <= ev.lat <= n):
                return False
        if self.intersections is not None and ev.intersection_id not in self.intersections:
            return False
        return self.compounds is None or ev.compound_id in self.compounds


def check_scope(role: Role, scope: Iterable[str], sub: Subscription) -> None:
    """Refuse a subscription that asks for more than the token's scope covers.

    Raises:
        ForbiddenError: a signal controller naming intersections, or a property team naming
            compounds, outside its token scope.
    """
    allowed = set(scope)
    if role is Role.SIGNAL and sub.intersections is not None and ALL_INTERSECTIONS not in allowed:
        extra = set(sub.intersections) - allowed
        if extra:
            raise ForbiddenError(f"intersections outside your scope: {sorted(extra)[:10]}")
    if role is Role.PROPERTY and sub.compounds is not None:
        extra = set(sub.compounds) - allowed
        if extra:
            raise ForbiddenError(f"compounds outside your scope: {sorted(extra)[:10]}")


@dataclass(slots=True)
class Audience:
    """One client's role rule, its filter, and what its rule has learned from passing events.

    :meth:`wants` updates the learned state (a coordinator's summoned incidents, a terminal's
    current incident), so it must see every event the client is offered, in log order.
    """

    role: Role
    sub: str
    agency: Agency = Agency.POLICE
    scope: frozenset[str] = frozenset()
    filter: Filter = field(default_factory=Filter)
    summoned: set[str] = field(default_factory=set)
    assigned_incident: str | None = None
    property_open: set[str] = field(default_factory=set)

    def subscribe(self, sub: Subscription) -> None:
        """Replace the filter. Raises ForbiddenError beyond the token's scope."""
        check_scope(self.role, self.scope, sub)
        self.filter = Filter.of(sub)

    def wants(self, ev: EventView) -> bool:
        return self._role_allows(ev) and self.filter.passes(ev)

    def _role_allows(self, ev: EventView) -> bool:
        role = self.role
        if ev.type in ADMIN_TYPES:
            return role is Role.ADMIN
        if sees_everything(role, self.agency):
            return True
        if role is Role.COORDINATOR:
            if ev.type == "whistle.summons" and ev.coordinator == self.sub:
                if ev.incident_id:
                    self.summoned.add(ev.incident_id)
                return True
            if ev.incident_id is not None and ev.incident_id in self.summoned:
                if ev.type == "incident.closed":
                    self.summoned.discard(ev.incident_id)
                return True
            return False
        if role is Role.TERMINAL:
            if ev.unit_id == self.sub:
                if ev.type == "assignment.created":
                    self.assigned_incident = ev.incident_id
                elif ev.type == "unit.updated":
                    self.assigned_incident = ev.unit_incident
                return True
            return (
                ev.incident_id is not None
                and ev.incident_id == self.assigned_incident
                and ev.type.startswith("incident.")
            )
        if role is Role.SIGNAL:
            return ev.type in SIGNAL_TYPES and (
                ev.intersection_id in self.scope or ALL_INTERSECTIONS in self.scope
            )
        if role is Role.PROPERTY:
            if ev.type not in PROPERTY_TYPES:
                return False
            if ev.compound_id is None or ev.compound_id not in self.scope:
                return False
            if ev.property_state == "open":
                if ev.incident_id is not None:
                    self.property_open.add(ev.incident_id)
                return True
            # The event that ends the team's access (the incident's close, the release, the
            # team's own close) still arrives, once: that is how the terminal learns of it.
            if ev.incident_id is not None and ev.incident_id in self.property_open:
                self.property_open.discard(ev.incident_id)
                return True
            return False
        return False
