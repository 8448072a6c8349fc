"""UPER SignalRequestMessage / SignalStatusMessage (SAE J2735 as ISO TS 19091 ed.2 defines it).

Pure functions: :func:`encode_srm` / :func:`decode_srm` between
:class:`routing.greenwave.SignalRequest` and bytes, :func:`encode_ssm` / :func:`decode_ssm`
between the arbiter's :class:`routing.arbiter.SignalDecision` and bytes. The clock is an
argument (J2735 times are minute-of-the-year and milliseconds, so decoding needs to know the
year). asn1tools encodes with ``check_constraints=True``: a value outside the ASN.1 ranges
raises :class:`J2735Error` instead of silently wrapping.

What J2735 cannot carry, and what the mapping does about it:

* IntersectionID is 16 bits (a region adds 16 more) and ApproachID is a leg number of the
  intersection's own MAP; Yishao's intersections are OSM node ids with N/E/S/W legs. An
  :class:`IntersectionMap` holds the road authority's numbering (``DEFAULT_APPROACHES`` is the
  convention N=1, E=2, S=3, W=4 where a MAP says nothing else).
* RequestID is 8 bits and VehicleID 32: both are stable hashes of Yishao's string ids
  (:func:`wire_request_key`); the unit is also named in the requestor's ``name``
  (``agency:unit_id``), so a decoded SRM rebuilds Yishao's request id exactly.
* A request's window travels as its start and duration (milliseconds, at most 65.535 s):
  a decoded request has ``hold_s = 0`` and ``arrive_to`` at the end of the asked green, which
  the arbiter treats the same. ``eta`` and ``incident_priority`` are reconstructed.
* MsgCount is 7 bits: the decoded ``sequence`` is the count itself; :func:`unwrap_msg_count`
  turns it back into an increasing sequence given the last one seen.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asn1tools

from dispatch.interop.errors import J2735Error, StandardsMissingError
from routing.arbiter import SignalDecision, SignalStatus
from routing.greenwave import (
    Approach,
    ApproachLabel,
    Requester,
    RequestType,
    SignalRequest,
    VehicleRole,
    importance_for,
)

ASN1_FILE = Path("j2735") / "ISO-TS-19091-addgrp-C-2018.asn"

# The DSRC module imports a few types from ETSI ITS-Container (TS 102 894-2, CDD v1.x) and one
# from ISO 24534-3. Their definitions are restated here, exactly as those modules give them,
# because those modules are not among the shared standards.
IMPORT_STANDINS = """
ITS-Container { itu-t (0) identified-organization (4) etsi (0) itsDomain (5) wg1 (1) ts (102894)
  cdd (2) version (2) }
DEFINITIONS AUTOMATIC TAGS ::= BEGIN
StationID ::= INTEGER (0..4294967295)
Latitude ::= INTEGER {oneMicrodegreeNorth (10), oneMicrodegreeSouth (-10),
  unavailable (900000001)} (-900000000..900000001)
Longitude ::= INTEGER {oneMicrodegreeEast (10), oneMicrodegreeWest (-10),
  unavailable (1800000001)} (-1800000000..1800000001)
Altitude ::= SEQUENCE { altitudeValue AltitudeValue, altitudeConfidence AltitudeConfidence }
AltitudeValue ::= INTEGER {referenceEllipsoidSurface (0), oneCentimeter (1),
  unavailable (800001)} (-100000..800001)
AltitudeConfidence ::= ENUMERATED { alt-000-01 (0), alt-000-02 (1), alt-000-05 (2),
  alt-000-10 (3), alt-000-20 (4), alt-000-50 (5), alt-001-00 (6), alt-002-00 (7),
  alt-005-00 (8), alt-010-00 (9), alt-020-00 (10), alt-050-00 (11), alt-100-00 (12),
  alt-200-00 (13), outOfRange (14), unavailable (15) }
DeltaAltitude ::= INTEGER {oneCentimeterUp (1), oneCentimeterDown (-1),
  unavailable (12800)} (-12700..12800)
VehicleMass ::= INTEGER {hundredKg (1), unavailable (1024)} (1..1024)
END

ElectronicRegistrationIdentificationVehicleDataModule { iso(1) standard(0) iso24534 (24534)
  vehicleData (1) version1 (1) }
DEFINITIONS AUTOMATIC TAGS ::= BEGIN
Iso3833VehicleType ::= INTEGER (0..255)
END
"""

DEFAULT_APPROACHES: Mapping[ApproachLabel, int] = {
    ApproachLabel.N: 1,
    ApproachLabel.E: 2,
    ApproachLabel.S: 3,
    ApproachLabel.W: 4,
}
_SIDE_DEG = {ApproachLabel.N: 0.0, ApproachLabel.E: 90.0, ApproachLabel.S: 180.0,
             ApproachLabel.W: 270.0}  # fmt: skip
_REQUEST_TYPE = {
    RequestType.REQUEST: "priorityRequest",
    RequestType.UPDATE: "priorityRequestUpdate",
    RequestType.CANCEL: "priorityCancellation",
}
_REQUEST_TYPE_BACK = {v: k for k, v in _REQUEST_TYPE.items()}
_ROLE = {VehicleRole.POLICE: "police", VehicleRole.FIRE: "fire",
         VehicleRole.AMBULANCE: "ambulance"}  # fmt: skip
_ROLE_BACK = {v: k for k, v in _ROLE.items()}
# SignalStatus -> PrioritizationResponseStatus. Finished requests (served, cancelled) have no
# J2735 status: a controller simply stops listing them, and so does an encoded SSM.
_STATUS = {
    SignalStatus.REQUESTED: "requested",
    SignalStatus.PROCESSING: "processing",
    SignalStatus.GRANTED: "granted",
    SignalStatus.REJECTED: "rejected",
}
_STATUS_BACK: Mapping[str, SignalStatus | None] = {
    "requested": SignalStatus.REQUESTED,
    "processing": SignalStatus.PROCESSING,
    "watchOtherTraffic": SignalStatus.PROCESSING,
    "granted": SignalStatus.GRANTED,
    "rejected": SignalStatus.REJECTED,
    "maxPresence": SignalStatus.REJECTED,
    "reserviceLocked": SignalStatus.REJECTED,
    "unknown": None,
}
MAX_DSECOND_MS = 65535
MAX_NAME = 63


@dataclass(frozen=True)
class WireIntersection:
    """How one intersection is numbered on the air (from its MAP / the road authority)."""

    id: int
    region: int | None = None
    approaches: Mapping[ApproachLabel, int] = field(default_factory=lambda: DEFAULT_APPROACHES)


class IntersectionMap:
    """OSM signal node <-> J2735 IntersectionReferenceID and approach numbers.

    Args:
        table: node id -> its :class:`WireIntersection`.
    """

    def __init__(self, table: Mapping[int, WireIntersection]) -> None:
        self._by_node = dict(table)
        self._by_wire = {(w.region, w.id): node for node, w in self._by_node.items()}
        if len(self._by_wire) != len(self._by_node):
            raise ValueError("two nodes share one J2735 intersection reference")

    def wire(self, node_id: int) -> WireIntersection:
        """Raises J2735Error for a node without a J2735 number."""
        try:
            return self._by_node[node_id]
        except KeyError:
            raise J2735Error(f"intersection {node_id} has no J2735 IntersectionID") from None

    def node(self, region: int | None, intersection_id: int) -> int:
        """Raises J2735Error for a reference that names no known intersection."""
        try:
            return self._by_wire[(region, intersection_id)]
        except KeyError:
            raise J2735Error(
                f"no intersection {intersection_id} (region {region}) is known"
            ) from None


class DerivedIntersections(IntersectionMap):
    """The numbering used when the road authority gives none: a node id below 2**32 is
    ``region = node >> 16`` (omitted when 0) and ``id = node & 0xFFFF``; larger ids (most
    newer OSM nodes) have no J2735 number this way."""

    def __init__(self) -> None:
        super().__init__({})

    def wire(self, node_id: int) -> WireIntersection:
        if not 0 <= node_id < 2**32:
            raise J2735Error(f"intersection {node_id} has no J2735 IntersectionID")
        region = node_id >> 16
        return WireIntersection(id=node_id & 0xFFFF, region=region or None)

    def node(self, region: int | None, intersection_id: int) -> int:
        if region == 0:
            raise J2735Error(f"no intersection {intersection_id} (region 0) is known")
        return ((region or 0) << 16) | intersection_id


def intersections_from_list(items: Any) -> IntersectionMap:
    """The road authority's numbering from ``[{"node", "id", "region"?, "approaches"?}]``
    (``approaches``: ``{"N": 1, "E": 2, ...}``, default :data:`DEFAULT_APPROACHES`).

    Raises:
        ValueError: not such a list, a number out of J2735's ranges, or a duplicate.
    """
    if not isinstance(items, list):
        raise ValueError("not a JSON list of {node, id, region?, approaches?}")
    table: dict[int, WireIntersection] = {}
    for n, item in enumerate(items):
        try:
            node, wire_id = int(item["node"]), int(item["id"])
            region = item.get("region")
            legs = item.get("approaches")
            approaches = (
                DEFAULT_APPROACHES
                if legs is None
                else {ApproachLabel(k): int(v) for k, v in dict(legs).items()}
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"entry {n}: {exc!r}") from exc
        if not 0 <= wire_id <= 65535 or (region is not None and not 0 <= int(region) <= 65535):
            raise ValueError(f"entry {n}: id and region are 0..65535")
        if any(not 0 <= v <= 15 for v in approaches.values()):
            raise ValueError(f"entry {n}: approach numbers are 0..15")
        if node in table:
            raise ValueError(f"entry {n}: node {node} listed twice")
        table[node] = WireIntersection(
            id=wire_id, region=None if region is None else int(region), approaches=approaches
        )
    return IntersectionMap(table)


def wire_station_id(agency: str, unit_id: str) -> int:
    """The 32-bit StationID a unit's messages carry (a stable hash of ``agency:unit_id``)."""
    return zlib.crc32(f"{agency}:{unit_id}".encode())


def wire_request_key(request: SignalRequest) -> tuple[int, int]:
    """``(StationID, RequestID)`` of a request: how an SSM names it back."""
    return (
        wire_station_id(request.requester.agency, request.requester.unit_id),
        zlib.crc32(request.request_id.encode()) & 0xFF,
    )


def unwrap_msg_count(count: int, last_sequence: int | None) -> int:
    """The sequence a 7-bit MsgCount stands for: the smallest one >= ``last_sequence`` with
    that remainder (a repeat of the last message maps onto it)."""
    if last_sequence is None:
        return count
    base = last_sequence - last_sequence % 128 + count
    return base if base >= last_sequence else base + 128


# -- time ------------------------------------------------------------------------------------------
def _year_start(year: int) -> datetime:
    return datetime(year, 1, 1, tzinfo=UTC)


def to_minute_ms(ts: datetime) -> tuple[int, int]:
    """``(MinuteOfTheYear, DSecond)`` of a time (UTC; DSecond in milliseconds)."""
    utc = ts.astimezone(UTC)
    delta = utc - _year_start(utc.year)
    minute = int(delta.total_seconds() // 60)
    ms = round((delta - timedelta(minutes=minute)).total_seconds() * 1000)
    if ms >= 60_000:  # rounding up to the next minute
        minute, ms = minute + 1, ms - 60_000
    return minute, ms


def from_minute_ms(minute: int, ms: int, *, now: datetime) -> datetime:
    """The time nearest ``now`` with this minute of the year and millisecond."""
    utc = now.astimezone(UTC)
    candidates = [
        _year_start(y) + timedelta(minutes=minute, milliseconds=ms)
        for y in (utc.year - 1, utc.year, utc.year + 1)
    ]
    return min(candidates, key=lambda c: abs((c - utc).total_seconds()))


# -- the compiled module ---------------------------------------------------------------------------
def published_asn1(standards: Path) -> str:
    """The ISO TS 19091 module and the import stand-ins, as ``yishao schema j2735`` prints them.

    Raises:
        StandardsMissingError: the module file is absent.
    """
    path = standards / ASN1_FILE
    if not path.is_file():
        raise StandardsMissingError(f"ISO TS 19091 ASN.1 module not found at {path}")
    header = (
        "-- Stand-ins written by Yishao for the types the module imports from ETSI\n"
        "-- ITS-Container (TS 102 894-2) and ISO 24534-3, restated as those modules define them.\n"
    )
    return path.read_text(encoding="utf-8") + "\n" + header + IMPORT_STANDINS


@functools.cache
def codec(standards: Path) -> Any:
    """The module compiled for UPER (about a second; once per folder and process)."""
    try:
        return asn1tools.compile_string(published_asn1(standards), "uper")
    except asn1tools.ParseError as exc:  # pragma: no cover - the shared file is fixed
        raise StandardsMissingError(f"cannot compile {standards / ASN1_FILE}: {exc}") from exc


def _encode(spec: Any, type_name: str, value: Mapping[str, Any]) -> bytes:
    try:
        return cast(bytes, spec.encode(type_name, value, check_constraints=True))
    except asn1tools.Error as exc:
        raise J2735Error(f"cannot encode {type_name}: {exc}") from exc


def _decode(spec: Any, type_name: str, data: bytes) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], spec.decode(type_name, data, check_constraints=True))
    except (asn1tools.Error, IndexError, ValueError) as exc:
        raise J2735Error(f"not a valid UPER {type_name}: {exc}") from exc


# -- SignalRequestMessage --------------------------------------------------------------------------
def srm_value(
    requests: Sequence[SignalRequest], *, intersections: IntersectionMap
) -> dict[str, Any]:
    """The asn1tools value of one SRM carrying ``requests`` (one requester, 1..32 requests).

    Raises:
        J2735Error: no requests, several requesters, too many, or an unmapped intersection.
    """
    if not 1 <= len(requests) <= 32:
        raise J2735Error(f"an SRM carries 1 to 32 requests, not {len(requests)}")
    requester = requests[0].requester
    if any(r.requester != requester for r in requests):
        raise J2735Error("one SRM speaks for one requester")
    name = f"{requester.agency}:{requester.unit_id}"
    if len(name) > MAX_NAME or not name.isascii():
        raise J2735Error(f"requestor name must be 1..{MAX_NAME} ASCII characters")
    sent = max(r.sent_at for r in requests)
    minute, ms = to_minute_ms(sent)
    packages = []
    for r in requests:
        wire = intersections.wire(r.intersection_id)
        start_minute, start_ms = to_minute_ms(r.arrive_from)
        end = r.arrive_to + timedelta(seconds=r.hold_s)
        duration_ms = round((end - r.arrive_from).total_seconds() * 1000)
        reference: dict[str, Any] = {"id": wire.id}
        if wire.region is not None:
            reference["region"] = wire.region
        packages.append(
            {
                "request": {
                    "id": reference,
                    "requestID": wire_request_key(r)[1],
                    "requestType": _REQUEST_TYPE[r.request_type],
                    "inBoundLane": ("approach", wire.approaches[r.inbound.label]),
                    "outBoundLane": ("approach", wire.approaches[r.outbound.label]),
                },
                "minute": start_minute,
                "second": start_ms,
                # A longer window is cut at the field's limit rather than refused.
                "duration": max(0, min(duration_ms, MAX_DSECOND_MS)),
            }
        )
    return {
        "timeStamp": minute,
        "second": ms,
        "sequenceNumber": max(r.sequence for r in requests) % 128,
        "requests": packages,
        "requestor": {
            "id": ("stationID", wire_station_id(requester.agency, requester.unit_id)),
            "type": {
                "role": _ROLE[requester.role],
                "request": _importance_name(requests[0].importance),
            },
            "name": name,
        },
    }


def _importance_name(level: int) -> str:
    return "requestImportanceLevelUnKnown" if level == 0 else f"requestImportanceLevel{level}"


def _importance_level(name: str) -> int:
    if name.startswith("requestImportanceLevel") and name[22:].isdigit():
        return int(name[22:])
    return 0


def encode_srm(
    requests: Sequence[SignalRequest], *, intersections: IntersectionMap, standards: Path
) -> bytes:
    """UPER bytes of one SRM for ``requests`` (see :func:`srm_value`)."""
    return _encode(
        codec(standards),
        "SignalRequestMessage",
        srm_value(requests, intersections=intersections),
    )


def _side(wire: WireIntersection, point: Any) -> ApproachLabel:
    kind, number = point
    if kind != "approach":
        raise J2735Error(f"only approach numbers are understood, not a {kind}")
    for label, n in wire.approaches.items():
        if n == number:
            return label
    raise J2735Error(f"approach {number} is not a leg Yishao knows at intersection {wire.id}")


def _incident_priority(role: VehicleRole, importance: int) -> int:
    """The incident priority (1..5) that :func:`importance_for` maps to ``importance``."""
    return min(range(1, 6), key=lambda p: abs(importance_for(role, p) - importance))


def decode_srm(
    data: bytes, *, intersections: IntersectionMap, standards: Path, now: datetime
) -> list[SignalRequest]:
    """Yishao requests from SRM bytes (see the module docstring for what is reconstructed).

    Raises:
        J2735Error: not a valid SRM, an unknown intersection or leg, or a requester role or
            name Yishao does not serve.
    """
    value = _decode(codec(standards), "SignalRequestMessage", data)
    requestor = value["requestor"]
    name = requestor.get("name", "")
    agency, sep, unit_id = name.partition(":")
    if not sep or not unit_id:
        raise J2735Error("requestor name must be 'agency:unit_id'")
    role_name = requestor.get("type", {}).get("role")
    role = _ROLE_BACK.get(role_name or "")
    if role is None:
        raise J2735Error(f"requestor role {role_name} is not an emergency role Yishao serves")
    importance = _importance_level(requestor["type"].get("request", ""))
    requester = Requester(
        agency=agency,
        unit_id=unit_id,
        role=role,
        incident_priority=_incident_priority(role, importance),
    )
    sent_at = from_minute_ms(value.get("timeStamp", to_minute_ms(now)[0]), value["second"], now=now)
    out: list[SignalRequest] = []
    for package in value.get("requests", []):
        request = package["request"]
        reference = request["id"]
        node = intersections.node(reference.get("region"), reference["id"])
        wire = intersections.wire(node)
        inbound = _side(wire, request["inBoundLane"])
        outbound = _side(wire, request.get("outBoundLane", request["inBoundLane"]))
        if "minute" in package and "second" in package:
            start = from_minute_ms(package["minute"], package["second"], now=now)
        else:
            start = sent_at
        end = start + timedelta(milliseconds=package.get("duration", 0))
        out.append(
            SignalRequest(
                request_id=f"{agency}:{unit_id}:{node}",
                sequence=value.get("sequenceNumber", 0),
                intersection_id=node,
                request_type=_REQUEST_TYPE_BACK.get(request["requestType"], RequestType.REQUEST),
                inbound=Approach(bearing_deg=(_SIDE_DEG[inbound] + 180.0) % 360.0, label=inbound),
                outbound=Approach(bearing_deg=_SIDE_DEG[outbound], label=outbound),
                eta=start + (end - start) * 0.4,
                arrive_from=start,
                arrive_to=end,
                hold_s=0.0,
                requester=requester,
                importance=importance,
                sent_at=sent_at,
            )
        )
    return out


# -- SignalStatusMessage ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WireStatus:
    """One request's status as an SSM states it."""

    intersection_id: int
    station_id: int
    request_number: int
    msg_count: int
    status: SignalStatus | None
    wire_status: str
    role: VehicleRole | None
    window_from: datetime | None
    window_to: datetime | None


def ssm_value(
    decisions: Sequence[SignalDecision],
    *,
    intersections: IntersectionMap,
    now: datetime,
    sequence: int,
) -> dict[str, Any] | None:
    """The asn1tools value of an SSM listing the active decisions (None if none is active).

    Args:
        decisions: the arbiter's decisions, of one or more intersections.
        intersections: the J2735 numbering.
        now: when the message is sent.
        sequence: the controller's message counter (taken modulo 128).
    """
    by_node: dict[int, list[dict[str, Any]]] = {}
    for d in decisions:
        wire_status = _STATUS.get(d.status)
        if wire_status is None:
            continue
        r = d.request
        wire = intersections.wire(r.intersection_id)
        station, number = wire_request_key(r)
        start, end = (
            (d.granted_from, d.granted_to)
            if d.granted_from and d.granted_to
            else (
                r.arrive_from,
                r.arrive_to + timedelta(seconds=r.hold_s),
            )
        )
        minute, ms = to_minute_ms(start)
        duration_ms = round((end - start).total_seconds() * 1000)
        packages = by_node.setdefault(r.intersection_id, [])
        if len(packages) >= 32:
            raise J2735Error(f"more than 32 active requests at intersection {r.intersection_id}")
        packages.append(
            {
                "requester": {
                    "id": ("stationID", station),
                    "request": number,
                    "sequenceNumber": r.sequence % 128,
                    "role": _ROLE[r.requester.role],
                },
                "inboundOn": ("approach", wire.approaches[r.inbound.label]),
                "outboundOn": ("approach", wire.approaches[r.outbound.label]),
                "minute": minute,
                "second": ms,
                "duration": max(0, min(duration_ms, MAX_DSECOND_MS)),
                "status": wire_status,
            }
        )
    if not by_node:
        return None
    if len(by_node) > 32:
        raise J2735Error("an SSM covers at most 32 intersections")
    minute, ms = to_minute_ms(now)
    status = []
    for node, packages in by_node.items():
        wire = intersections.wire(node)
        reference: dict[str, Any] = {"id": wire.id}
        if wire.region is not None:
            reference["region"] = wire.region
        status.append({"sequenceNumber": sequence % 128, "id": reference, "sigStatus": packages})
    return {"timeStamp": minute, "second": ms, "sequenceNumber": sequence % 128, "status": status}


def encode_ssm(
    decisions: Sequence[SignalDecision],
    *,
    intersections: IntersectionMap,
    standards: Path,
    now: datetime,
    sequence: int,
) -> bytes | None:
    """UPER bytes of the SSM for ``decisions`` (None when none is active; see
    :func:`ssm_value`)."""
    value = ssm_value(decisions, intersections=intersections, now=now, sequence=sequence)
    if value is None:
        return None
    return _encode(codec(standards), "SignalStatusMessage", value)


def decode_ssm(
    data: bytes, *, intersections: IntersectionMap, standards: Path, now: datetime
) -> list[WireStatus]:
    """Every request status an SSM states.

    Match ``(station_id, request_number)`` against :func:`wire_request_key` of the requests
    sent to find which one each status is about.

    Raises:
        J2735Error: not a valid SSM, or an unknown intersection.
    """
    value = _decode(codec(standards), "SignalStatusMessage", data)
    out: list[WireStatus] = []
    for status in value["status"]:
        reference = status["id"]
        node = intersections.node(reference.get("region"), reference["id"])
        for package in status["sigStatus"]:
            requester = package.get("requester")
            if requester is None:
                continue  # a status for nobody in particular says nothing about our requests
            kind, station = requester["id"]
            if kind != "stationID":
                station = int.from_bytes(station, "big")
            window_from = window_to = None
            if "minute" in package and "second" in package:
                window_from = from_minute_ms(package["minute"], package["second"], now=now)
                window_to = window_from + timedelta(milliseconds=package.get("duration", 0))
            out.append(
                WireStatus(
                    intersection_id=node,
                    station_id=station,
                    request_number=requester["request"],
                    msg_count=requester["sequenceNumber"],
                    status=_STATUS_BACK.get(package["status"]),
                    wire_status=package["status"],
                    role=_ROLE_BACK.get(requester.get("role", "")),
                    window_from=window_from,
                    window_to=window_to,
                )
            )
    return out
