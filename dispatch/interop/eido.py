"""NENA EIDO (NENA-STA-024 data, NENA-STA-021 JSON): an incident out, calls in. Pure.

:func:`incident_to_eido` exports an :class:`~dispatch.models.Incident` as an EIDO document;
:func:`eido_calls` reads an EIDO from another centre as the :class:`~dispatch.models.CallEvent`
it reports (one per call component; one for the incident when it has none), each with the key
that makes a repeated EIDO change nothing.

The JSON schema does not check what NENA leaves to registries, nor that the ``$ref`` links
between components resolve: :func:`dangling_references` checks the links, and the incident types
we emit are APCO ANS 2.103.1 codes, the list NIEM ships in ``NIEMComponents/apco.yaml``.
Locations travel as PIDF-LO (RFC 4119 / 5491) inside ``locationByValue``: a ``gml:pos`` (in a
Point, Circle, Ellipse, ...) gives the coordinates, a ``civicAddress`` the address text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

from pydantic import ValidationError

from dispatch.interop.errors import InvalidEidoError
from dispatch.models import (
    CENTRE_AGENCY,
    Agency,
    CallEvent,
    CallRecord,
    CallType,
    Centre,
    Incident,
    IncidentStatus,
    UnitStatus,
    UnitType,
)

EIDO_VERSION = "1.0"
JSONLD_CONTEXT = {"@vocab": "./JSON-LD_Contexts/EmergencyIncidentDataObjectType.jsonld"}
PIDF = "urn:ietf:params:xml:ns:pidf"
GP = "urn:ietf:params:xml:ns:pidf:geopriv10"
GML = "http://www.opengis.net/gml"
DM = "urn:ietf:params:xml:ns:pidf:data-model"
CA = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
COMMENT = "urn:ietf:params:xml:ns:EmergencyCallData:Comment"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{2,31}$")
MAX_DESCRIPTION = 4000

# Our call types as APCO ANS 2.103.1 common incident types (the codes of apco.yaml).
APCO_BY_CALL_TYPE: Mapping[CallType, str] = {
    CallType.TRAFFIC_ACCIDENT: "MVA",
    CallType.TRAFFIC_ACCIDENT_ENTRAPMENT: "ENTRAP",
    CallType.DROWNING: "DROWN",
    CallType.FALL_FROM_HEIGHT: "FALL",
    CallType.CRITICAL_PATIENT: "ALS",
    CallType.FIRE: "FUNK",
    CallType.NATURAL_DISASTER: "MAJORINC",
    CallType.FIGHT: "FIGHT",
    CallType.DISPUTE: "DISORD",
    CallType.LABOUR_DISPUTE: "CIVIL",
    CallType.THEFT: "LARCENY",
    CallType.NOISE: "NOISE",
    CallType.OTHER: "CITASST",
}
# APCO codes another centre may send, read as our call types (unlisted codes: other).
_CALL_TYPE_BY_APCO: dict[str, CallType] = {
    **{code: CallType.TRAFFIC_ACCIDENT for code in ("MVA", "MVAHR", "MVAINJY", "MVAUNK")},
    **{code: CallType.TRAFFIC_ACCIDENT_ENTRAPMENT for code in ("ENTRAP", "XTRACATE")},
    "DROWN": CallType.DROWNING,
    "FALL": CallType.FALL_FROM_HEIGHT,
    **{
        code: CallType.CRITICAL_PATIENT
        for code in (
            "ALS",
            "BLS",
            "CARDIAC",
            "STROKE",
            "SEIZURE",
            "PERUNCON",
            "RESP",
            "BLEEDING",
            "HEMRG",
            "TRAUMA",
            "TRAUMAP",
            "OD",
            "CHOKE",
            "DIABETIC",
            "BURN",
            "ALLERGIC",
            "CHESPAIN",
            "SICK",
            "PREG",
            "ELEC",
            "EXPOSURE",
        )
    },
    **{
        code: CallType.FIRE
        for code in (
            "FAIRC",
            "FAPT",
            "FARSON",
            "FBRUSH",
            "FELEC",
            "FFUEL",
            "FMARINE",
            "FOTHER",
            "FSMOKE",
            "FSTRU",
            "FTRAILER",
            "FTRAIN",
            "FTRASH",
            "FTRUCK",
            "FUNK",
            "FVEH",
        )
    },
    "MAJORINC": CallType.NATURAL_DISASTER,
    **{code: CallType.FIGHT for code in ("FIGHT", "ASSAULT")},
    **{code: CallType.DISPUTE for code in ("DISORD", "DVNA", "HARR")},
    "CIVIL": CallType.LABOUR_DISPUTE,
    **{code: CallType.THEFT for code in ("LARCENY", "SHOPLIFT", "BURGLARY", "VEHSTLN")},
    "NOISE": CallType.NOISE,
}
# IANA urn:emergency:service:responder sub-services for our agencies (EIDO agencyType).
AGENCY_TYPE: Mapping[Agency, str] = {
    Agency.POLICE: "police",
    Agency.TRAFFIC: "police",
    Agency.EMS: "ems",
    Agency.FIRE: "fire",
    Agency.PROPERTY: "security",
}
_CENTRE_BY_AGENCY_TYPE = {"police": Centre.TRAFFIC, "ems": Centre.EMS, "fire": Centre.FIRE}
# Which centre takes a call type when nothing else says (police matters go to 122 here,
# the only police-side centre Yishao has).
_CENTRE_BY_CALL_TYPE: Mapping[CallType, Centre] = {
    CallType.TRAFFIC_ACCIDENT: Centre.TRAFFIC,
    CallType.TRAFFIC_ACCIDENT_ENTRAPMENT: Centre.FIRE,
    CallType.DROWNING: Centre.FIRE,
    CallType.FALL_FROM_HEIGHT: Centre.EMS,
    CallType.CRITICAL_PATIENT: Centre.EMS,
    CallType.FIRE: Centre.FIRE,
    CallType.NATURAL_DISASTER: Centre.FIRE,
}
_RESOURCE_TYPE: Mapping[UnitType, str] = {
    UnitType.PATROL_CAR: "Law Enforcement Patrol",
    UnitType.TRAFFIC_POLICE_CAR: "Law Enforcement Patrol",
    UnitType.AMBULANCE: "Ambulance",
    UnitType.FIRE_ENGINE: "Engine",
    UnitType.FIRE_RESCUE: "Rescue",
    UnitType.LADDER: "Ladder",
    UnitType.PROPERTY_SECURITY: "Security",
    UnitType.MEDIATOR: "Other",
}
_UNIT_STATUS: Mapping[UnitStatus, str] = {
    UnitStatus.AVAILABLE: "Available",
    UnitStatus.DISPATCHED: "Dispatched",
    UnitStatus.EN_ROUTE: "Enroute",
    UnitStatus.ON_SCENE: "OnScene",
    UnitStatus.TRANSPORTING: "Transporting",
    UnitStatus.AT_HOSPITAL: "AtHospital",
    UnitStatus.RETURNING: "Returning",
    UnitStatus.OUT_OF_SERVICE: "OutOfService",
}
_INCIDENT_STATUS: Mapping[IncidentStatus, str] = {
    IncidentStatus.OPEN: "Open",
    IncidentStatus.DISPATCHED: "Dispatched",
    IncidentStatus.ON_SCENE: "OnScene",
    IncidentStatus.CLOSED: "Closed",
}
# NENA STA-023 call priority; our severity 5 is the most severe.
_PRIORITY_BY_SEVERITY = {5: "highest", 4: "high", 3: "normal", 2: "low", 1: "lowest"}
_SEVERITY_BY_PRIORITY = {v: k for k, v in _PRIORITY_BY_SEVERITY.items()}


@dataclass(frozen=True)
class Origin:
    """Who we are on the wire: the domain our EIDO and CAP identifiers are made under."""

    domain: str = "yishao.local"

    @property
    def element(self) -> str:
        """Our functional element (``issuingElementIdentification``)."""
        return f"cad.{self.domain}"

    @property
    def automaton(self) -> str:
        """The agent id of Yishao itself (it writes what no person typed)."""
        return f"yishao@{self.domain}"

    def agency_id(self, agency: Agency) -> str:
        return f"{agency.value}.{self.domain}"


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _ref(target: str) -> dict[str, str]:
    return {"$ref": target}


def pidf_point(lat: float, lon: float, *, entity: str, at: datetime) -> str:
    """A PIDF-LO document holding one WGS 84 point (RFC 5491 ``gml:Point``, EPSG 4326)."""
    ElementTree.register_namespace("", PIDF)
    for prefix, ns in (("gp", GP), ("gml", GML), ("dm", DM)):
        ElementTree.register_namespace(prefix, ns)
    presence = ElementTree.Element(f"{{{PIDF}}}presence", {"entity": entity})
    device = ElementTree.SubElement(presence, f"{{{DM}}}device", {"id": "incident"})
    geopriv = ElementTree.SubElement(device, f"{{{GP}}}geopriv")
    info = ElementTree.SubElement(geopriv, f"{{{GP}}}location-info")
    point = ElementTree.SubElement(
        info, f"{{{GML}}}Point", {"srsName": "urn:ogc:def:crs:EPSG::4326"}
    )
    ElementTree.SubElement(point, f"{{{GML}}}pos").text = f"{lat:.7f} {lon:.7f}"
    ElementTree.SubElement(geopriv, f"{{{GP}}}usage-rules")
    ElementTree.SubElement(geopriv, f"{{{GP}}}method").text = "Manual"
    ElementTree.SubElement(device, f"{{{DM}}}timestamp").text = _ts(at)
    return ElementTree.tostring(presence, encoding="unicode")


def _call_component_id(call: CallRecord, origin: Origin) -> str:
    return f"urn:emergency:uid:callid:{call.centre.value}-{call.call_id}:{origin.domain}"


def incident_to_eido(incident: Incident, *, origin: Origin) -> dict[str, Any]:
    """The incident as an EIDO document (``eidoVersion`` 1.0).

    Components: the owning and responding agencies, Yishao and the dispatchers as agents, the
    incident (APCO incident type, our call types as internal codes, status, priority), one call
    per call record, the incident location as PIDF-LO, one dispatch and one emergency resource
    per assignment, and the timeline as notes. Callers' numbers are not exported: the incident
    keeps only the masked number.
    """
    domain = origin.domain
    owner = origin.agency_id(_owner(incident))
    updated = _ts(incident.updated_at)
    incident_uid = f"urn:emergency:uid:incidentid:{incident.id}:{domain}"

    def prologue(component_id: str, at: str = updated) -> dict[str, Any]:
        return {
            "$id": component_id,
            "lastUpdateTimeStamp": at,
            "updatedByAgencyReference": _ref(owner),
            "updatedByAgentReference": _ref(origin.automaton),
        }

    agencies = list(dict.fromkeys([_owner(incident), *incident.agencies, *(
        a.agency for a in incident.assignments)]))  # fmt: skip
    agency_components = []
    for agency in agencies:
        roles = ["CallReceiving"] if agency in {CENTRE_AGENCY[c] for c in incident.centres} else []
        if any(a.agency is agency for a in incident.assignments):
            roles.append("Dispatching")
        agency_components.append(
            {
                **prologue(origin.agency_id(agency)),
                "agencyRoleDescriptionRegistryText": roles or ["Responding"],
                "agencyType": [AGENCY_TYPE[agency]],
                "incidentOwningAgencyIndicator": agency is _owner(incident),
            }
        )
    agents: dict[str, dict[str, Any]] = {
        origin.automaton: {
            **prologue(origin.automaton),
            "agentRoleRegistryText": ["Automated System"],
            "agencyReference": _ref(owner),
        }
    }
    for a in incident.assignments:
        agent_id = f"{a.assigned_by}@{domain}"
        agents.setdefault(
            agent_id,
            {
                **prologue(agent_id),
                "agentRoleRegistryText": ["Dispatching"],
                "agencyReference": _ref(origin.agency_id(a.agency)),
            },
        )
    location_id = f"urn:emergency:uid:locationid:{incident.id}:{domain}"
    location = {
        **prologue(location_id),
        "locationTypeDescriptionRegistryText": "Incident",
        "locationByValue": pidf_point(
            incident.lat,
            incident.lon,
            entity=f"pres:{incident.id}@{domain}",
            at=incident.updated_at,
        ),
    }
    if incident.address:
        location["locationDescriptionText"] = incident.address
    notes = [
        {
            **prologue(f"urn:emergency:uid:noteid:{incident.id}-{n}:{domain}", _ts(entry.at)),
            "notesActionComments": f"[{entry.type}] {entry.actor}: {entry.text}",
        }
        for n, entry in enumerate(incident.timeline, start=1)
    ]
    call_types = incident.call_types or [c.call_type for c in incident.calls] or [CallType.OTHER]
    incident_component: dict[str, Any] = {
        **prologue(f"urn:emergency:uid:incidentinfo:{incident.id}:{domain}"),
        "incidentTypeCommonRegistryText": APCO_BY_CALL_TYPE[call_types[0]],
        "incidentTypeInternalCode": ",".join(t.value for t in call_types),
        "incidentTypeInternalText": ", ".join(t.value.replace("_", " ") for t in call_types),
        "incidentStatusCommonRegistryText": [_INCIDENT_STATUS[incident.status]],
        "incidentStatusInternalText": [incident.status.value],
        "internalIncidentId": incident.id,
        "incidentPriorityInternalText": f"priority {incident.priority} (1 most urgent)",
        "incidentCommonPriorityNumber": incident.priority,
        "locationReference": [_ref(location_id)],
        "agentReference": [_ref(a) for a in agents],
    }
    if notes:
        incident_component["notesReference"] = [_ref(n["$id"]) for n in notes]
    calls = []
    for call in incident.calls:
        component: dict[str, Any] = {
            **prologue(_call_component_id(call, origin), _ts(call.received_at)),
            "callStateRegistryText": "callAnswered",
            "standardPrimaryCallType": "emergency",
            "localCallType": call.call_type.value,
            "direction": "incoming",
            "callStartTimestamp": _ts(call.received_at),
            "queueIdentifier": f"{call.centre.value}@{domain}",
            "agencyReference": [_ref(origin.agency_id(CENTRE_AGENCY[call.centre]))],
            "locationReference": [_ref(location_id)],
        }
        if call.severity is not None:
            component["priorityIdentifier"] = _PRIORITY_BY_SEVERITY[call.severity]
        calls.append(component)
    resources: list[dict[str, Any]] = []
    dispatches: list[dict[str, Any]] = []
    for a in incident.assignments:
        resource_id = f"urn:emergency:uid:resourceid:{a.unit_id}:{domain}"
        agent_id = f"{a.assigned_by}@{domain}"
        resources.append(
            {
                **prologue(resource_id, _ts(a.assigned_at)),
                "emergencyResourceTypeCommonRegistryText": _RESOURCE_TYPE[a.unit_type],
                "emergencyResourceTypeInternalText": a.unit_type.value,
                "emergencyResourceName": a.unit_id,
                "resourceAttributeRegistryText": [],
                "primaryUnitStatusRegistryText": _UNIT_STATUS[a.status],
                "secondaryUnitStatusRegistryText": [],
                "unitStatusInternal": [a.status.value],
                "agentReference": [_ref(agent_id)],
                "activeOnIncidentId": incident_uid,
            }
        )
        dispatches.append(
            {
                **prologue(
                    f"urn:emergency:uid:dispatchid:{incident.id}-{a.unit_id}:{domain}",
                    _ts(a.assigned_at),
                ),
                "agencyReference": _ref(origin.agency_id(a.agency)),
                "agentReference": _ref(agent_id),
                "emergencyResourceReference": [_ref(resource_id)],
            }
        )
    document: dict[str, Any] = {
        **prologue(incident_uid),
        "eidoVersion": EIDO_VERSION,
        "issuingElementIdentification": origin.element,
        "incidentComponent": incident_component,
        "agencyComponent": agency_components,
        "agentComponent": list(agents.values()),
        "locationComponent": [location],
    }
    for key, items in (
        ("callComponent", calls),
        ("dispatchComponent", dispatches),
        ("emergencyResourceComponent", resources),
        ("notesComponent", notes),
    ):
        if items:
            document[key] = items
    document["@context"] = dict(JSONLD_CONTEXT)
    return document


def _owner(incident: Incident) -> Agency:
    if incident.centres:
        return CENTRE_AGENCY[incident.centres[0]]
    return incident.agencies[0] if incident.agencies else Agency.POLICE


# -- links ---------------------------------------------------------------------------------------
def _walk_refs(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and len(node) == 1:
            yield path, target
            return
        for key, value in node.items():
            yield from _walk_refs(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_refs(value, f"{path}[{i}]")


def component_ids(document: Mapping[str, Any]) -> set[str]:
    """Every ``$id`` of the document's components (and of the document itself)."""
    found: set[str] = set()
    if isinstance(document.get("$id"), str):
        found.add(document["$id"])
    for value in document.values():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("$id"), str):
                found.add(item["$id"])
    return found


def dangling_references(document: Mapping[str, Any]) -> list[str]:
    """Fields whose ``{"$ref": ...}`` names no component of the document (``[]``: all resolve).

    Agents and agencies of other centres may be named without being described only where the
    EIDO itself says so; NENA requires every referenced component to be listed.
    """
    known = component_ids(document)
    return [path for path, target in _walk_refs(dict(document), "") if target not in known]


# -- EIDO in: calls ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EidoCall:
    """One call an EIDO reports, and the key that makes it idempotent."""

    key: str
    call: CallEvent


def _components(document: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = document.get(name)
    if isinstance(value, Mapping):  # incidentComponent is one object, the others are lists
        return [value]
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _by_id(document: Mapping[str, Any]) -> dict[str, tuple[str, Mapping[str, Any]]]:
    out: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for name, value in document.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Mapping) and isinstance(item.get("$id"), str):
                out[item["$id"]] = (name, item)
    return out


def _refs(component: Mapping[str, Any], field: str) -> list[str]:
    value = component.get(field)
    items = value if isinstance(value, list) else [value]
    return [i["$ref"] for i in items if isinstance(i, Mapping) and isinstance(i.get("$ref"), str)]


def _parse_xml(text: str, where: str) -> ElementTree.Element | None:
    # PIDF-LO and additional data never need a DTD; refusing one rules out entity expansion.
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise InvalidEidoError(f"{where}: XML with a DTD is not accepted", field=where)
    try:
        return ElementTree.fromstring(text.strip())
    except ElementTree.ParseError:
        return None


def location_from_pidf(text: str, *, where: str) -> tuple[tuple[float, float] | None, str | None]:
    """``((lat, lon) or None, civic address text or None)`` of a PIDF-LO document.

    Raises:
        InvalidEidoError: a coordinate outside WGS 84 ranges, or a DTD.
    """
    root = _parse_xml(text, where)
    if root is None:
        return None, None
    point: tuple[float, float] | None = None
    for pos in root.iter(f"{{{GML}}}pos"):
        parts = (pos.text or "").split()
        if len(parts) >= 2:
            try:
                lat, lon = float(parts[0]), float(parts[1])
            except ValueError:
                continue
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise InvalidEidoError(f"{where}: gml:pos outside WGS 84 ranges", field=where)
            point = (lat, lon)
            break
    address: str | None = None
    for civic in root.iter(f"{{{CA}}}civicAddress"):

        def part(tag: str, civic: ElementTree.Element = civic) -> str:
            found = civic.find(f"{{{CA}}}{tag}")
            return (found.text or "").strip() if found is not None else ""

        street = " ".join(p for p in (part("HNO"), part("PRD"), part("RD"), part("STS"),
                                      part("POD")) if p)  # fmt: skip
        pieces = [street, part("LOC"), part("A6"), part("A3"), part("A2"), part("A1"),
                  part("country")]  # fmt: skip
        address = ", ".join(p for p in pieces if p) or None
        break
    return point, address


def _comment_text(text: str, where: str) -> str | None:
    root = _parse_xml(text, where)
    if root is None:
        return None
    texts = [(c.text or "").strip() for c in root.iter(f"{{{COMMENT}}}Comment")]
    return " ".join(t for t in texts if t) or None


def _stable_call_id(*parts: str) -> str:
    for part in parts:
        if _ID.match(part):
            return part
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest()
    return f"eido-{digest}"


def _call_type(incident: Mapping[str, Any] | None, call: Mapping[str, Any] | None) -> CallType:
    candidates: list[Any] = []
    if call is not None:
        candidates.append(call.get("localCallType"))
    if incident is not None:
        internal = incident.get("incidentTypeInternalCode")
        candidates += internal.split(",") if isinstance(internal, str) else []
    for value in candidates:
        if isinstance(value, str) and value.strip() in CallType.__members__.values():
            return CallType(value.strip())
    if incident is not None:
        code = incident.get("incidentTypeCommonRegistryText")
        if isinstance(code, str) and code in _CALL_TYPE_BY_APCO:
            return _CALL_TYPE_BY_APCO[code]
    return CallType.OTHER


def _centre_of_agency(agency: Mapping[str, Any]) -> Centre | None:
    for kind in agency.get("agencyType") or []:
        head = str(kind).split(".")[0].lower()
        if head in _CENTRE_BY_AGENCY_TYPE:
            return _CENTRE_BY_AGENCY_TYPE[head]
    return None


def _centre(
    document: Mapping[str, Any],
    index: Mapping[str, tuple[str, Mapping[str, Any]]],
    call: Mapping[str, Any] | None,
    call_type: CallType,
    fallback: Centre | None,
) -> Centre:
    """The centre given, else the call's agency, the owning agency, the call type's."""
    if fallback is not None:
        return fallback
    candidates = [
        index[ref][1]
        for ref in (_refs(call, "agencyReference") if call is not None else [])
        if ref in index and index[ref][0] == "agencyComponent"
    ]
    candidates += [
        a
        for a in _components(document, "agencyComponent")
        if a.get("incidentOwningAgencyIndicator") is True
    ]
    for agency in candidates:
        found = _centre_of_agency(agency)
        if found is not None:
            return found
    if call_type in _CENTRE_BY_CALL_TYPE:
        return _CENTRE_BY_CALL_TYPE[call_type]
    raise InvalidEidoError(
        "agencyComponent: cannot tell which centre (122, 120, 119) takes this EIDO",
        field="agencyComponent",
    )


def _parse_time(value: Any, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEidoError(f"{where}: not an ISO 8601 time", field=where) from None
    if parsed.tzinfo is None:
        raise InvalidEidoError(f"{where}: must carry a UTC offset", field=where)
    return parsed


def eido_calls(document: Mapping[str, Any], *, centre: Centre | None = None) -> list[EidoCall]:
    """The calls an EIDO reports, ready for the intake stream.

    Call it on a document that passed the schema. Every call component becomes one call; an
    EIDO without calls becomes one call for its incident. Location: the first PIDF-LO with a
    ``gml:pos`` among the locations the call references, then the incident's, then any.

    Args:
        document: the EIDO.
        centre: the centre that takes the calls (default: the type of the call's agency, then
            of the owning agency, then the call type's usual centre).

    Returns:
        One :class:`EidoCall` per call, keyed ``<EIDO $id>|<call $id>``.

    Raises:
        InvalidEidoError: dangling references, no geodetic location, or a field Yishao's call
            schema refuses; ``field`` names it.
    """
    dangling = dangling_references(document)
    if dangling:
        raise InvalidEidoError(
            f"{dangling[0]}: refers to no component of this EIDO"
            + (f" (and {len(dangling) - 1} more)" if len(dangling) > 1 else ""),
            field=dangling[0],
            complaints=[f"{d}: refers to no component of this EIDO" for d in dangling],
        )
    eido_id = str(document.get("$id", ""))
    index = _by_id(document)
    incidents = _components(document, "incidentComponent")
    incident = incidents[0] if incidents else None
    calls = _components(document, "callComponent") or [None]  # type: ignore[list-item]
    out: list[EidoCall] = []
    for n, call in enumerate(calls):
        where = f"callComponent[{n}]" if call is not None else "incidentComponent"
        call_type = _call_type(incident, call)
        point, address, description = _located(document, index, incident, call, where)
        if point is None:
            raise InvalidEidoError(
                f"{where}.locationReference: no geodetic location (gml:pos in a PIDF-LO "
                "locationByValue); "
                + ("only a civic address was given" if address else "none was given"),
                field=f"{where}.locationReference",
            )
        received = _parse_time(
            call.get("callStartTimestamp")
            if call is not None
            else document.get("lastUpdateTimeStamp"),
            f"{where}.callStartTimestamp" if call is not None else "lastUpdateTimeStamp",
        )
        component_id = str(call.get("$id", "")) if call is not None else ""
        fields: dict[str, Any] = {
            "call_id": _stable_call_id(component_id, eido_id)
            if component_id
            else _stable_call_id(eido_id),
            "centre": _centre(document, index, call, call_type, centre),
            "call_type": call_type,
            "lat": point[0],
            "lon": point[1],
            "received_at": received,
            "address": address,
            "description": description,
            "caller_phone": _callback_number(index, call),
            "severity": _SEVERITY_BY_PRIORITY.get(str(call.get("priorityIdentifier")))
            if call is not None
            else None,
        }
        try:
            event = CallEvent.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(p) for p in first["loc"])
            raise InvalidEidoError(
                f"{where}: becomes a call whose {name} {first['msg'].lower()}", field=where
            ) from exc
        out.append(EidoCall(key=f"{eido_id}|{component_id}", call=event))
    return out


def _located(
    document: Mapping[str, Any],
    index: Mapping[str, tuple[str, Mapping[str, Any]]],
    incident: Mapping[str, Any] | None,
    call: Mapping[str, Any] | None,
    where: str,
) -> tuple[tuple[float, float] | None, str | None, str | None]:
    location_ids = [
        *(_refs(call, "locationReference") if call is not None else []),
        *(_refs(incident, "locationReference") if incident is not None else []),
        *(str(c.get("$id")) for c in _components(document, "locationComponent")),
    ]
    point: tuple[float, float] | None = None
    address: str | None = None
    texts: list[str] = []
    for location_id in dict.fromkeys(location_ids):
        kind, location = index.get(location_id, ("", {}))
        if kind != "locationComponent":
            continue
        by_value = location.get("locationByValue")
        if isinstance(by_value, str):
            found, civic = location_from_pidf(by_value, where=f"{where}.locationByValue")
            point = point or found
            address = address or civic
        text = location.get("locationDescriptionText")
        if isinstance(text, str) and text.strip():
            address = address or text.strip()
    if incident is not None and isinstance(incident.get("incidentTypeInternalText"), str):
        texts.append(incident["incidentTypeInternalText"])
    note_ids = [
        *(_refs(call, "notesReference") if call is not None else []),
        *(_refs(incident, "notesReference") if incident is not None else []),
    ]
    for note_id in dict.fromkeys(note_ids):
        kind, note = index.get(note_id, ("", {}))
        if kind == "notesComponent" and isinstance(note.get("notesActionComments"), str):
            texts.append(note["notesActionComments"])
    data_ids = _refs(call, "additionalDataReference") if call is not None else []
    for data_id in data_ids:
        kind, data = index.get(data_id, ("", {}))
        if kind == "additionalDataComponent" and isinstance(data.get("additionalDataByValue"), str):
            comment = _comment_text(data["additionalDataByValue"], f"{where}.additionalData")
            if comment:
                texts.append(comment)
    description = " | ".join(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if address is not None and len(address) > 500:
        address = address[:500]
    return point, address, description[:MAX_DESCRIPTION] or None


def _callback_number(
    index: Mapping[str, tuple[str, Mapping[str, Any]]],
    call: Mapping[str, Any] | None,
) -> str | None:
    refs = _refs(call, "callBackReference") if call is not None else []
    for ref in refs:
        kind, callback = index.get(ref, ("", {}))
        if kind != "callbackComponent":
            continue
        for uri in callback.get("callBackInformationUri") or []:
            if isinstance(uri, str) and uri.startswith("tel:"):
                number = uri[4:].split(";")[0]
                if _PHONE.match(number):
                    return number
    return None
