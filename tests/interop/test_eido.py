"""EIDO both ways: every export validates against NENA's schema; EIDOs in become calls."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatch.interop.eido import (
    APCO_BY_CALL_TYPE,
    Origin,
    dangling_references,
    eido_calls,
    incident_to_eido,
    location_from_pidf,
    pidf_point,
)
from dispatch.interop.errors import InvalidEidoError
from dispatch.interop.schemas import EidoSchema
from dispatch.models import CallType, Centre, Incident, IncidentStatus
from tests.interop.conftest import T0, joint_incident

ORIGIN = Origin(domain="pudong.yishao.local")
GEODETIC = pidf_point(39.7459, -75.5466, entity="pres:caller@state.pa.us", at=T0)


def test_joint_incident_exports_as_a_valid_eido(eido: EidoSchema) -> None:
    document = incident_to_eido(joint_incident(), origin=ORIGIN)
    assert eido.complaints(document) == []
    assert dangling_references(document) == []
    assert document["$id"] == "urn:emergency:uid:incidentid:YS-20261202-000001:pudong.yishao.local"
    assert len(document["callComponent"]) == 2
    assert {r["emergencyResourceName"] for r in document["emergencyResourceComponent"]} == {
        "E-12",
        "AMB-07",
    }
    assert document["incidentComponent"]["incidentCommonPriorityNumber"] == 1
    assert len(document["notesComponent"]) == 2
    # The caller's number is never exported (the incident keeps only the masked one).
    assert "13912345678" not in str(document) and "139******78" not in str(document)


@pytest.mark.parametrize("status", list(IncidentStatus))
def test_every_status_and_a_bare_incident_validate(
    eido: EidoSchema, status: IncidentStatus
) -> None:
    bare = Incident(
        id="YS-20261202-000009",
        status=status,
        lat=32.06,
        lon=118.79,
        created_at=T0,
        updated_at=T0,
        last_call_at=T0,
    )
    document = incident_to_eido(bare, origin=ORIGIN)
    assert eido.complaints(document) == []
    assert dangling_references(document) == []


def test_incident_types_are_apco_registry_codes(standards: Path) -> None:
    apco = yaml.safe_load((standards / "eido" / "NIEMComponents" / "apco.yaml").read_text())
    codes = set(apco["components"]["schemas"]["apcoIncidentCategoryCodeSimpleType"]["enum"])
    assert set(CallType) == set(APCO_BY_CALL_TYPE)
    assert set(APCO_BY_CALL_TYPE.values()) <= codes


def test_export_comes_back_as_the_same_calls(eido: EidoSchema) -> None:
    incident = joint_incident()
    calls = eido_calls(incident_to_eido(incident, origin=ORIGIN))
    assert [c.call.centre for c in calls] == [Centre.TRAFFIC, Centre.EMS]
    assert [c.call.call_type for c in calls] == [r.call_type for r in incident.calls]
    assert [c.call.received_at for c in calls] == [r.received_at for r in incident.calls]
    assert [c.call.severity for c in calls] == [4, 5]
    for c in calls:
        assert (c.call.lat, c.call.lon) == pytest.approx((incident.lat, incident.lon), abs=1e-6)
        assert c.call.address == incident.address
    assert len({c.key for c in calls}) == 2
    assert calls[0].call.call_id == "urn:emergency:uid:callid:122-122-0001:pudong.yishao.local"


def _with_geodetic_location(sample: dict[str, Any]) -> dict[str, Any]:
    """NENA's sample plus a PIDF-LO point for the caller (the sample itself has only a civic
    address and a location reference URL)."""
    doc = copy.deepcopy(sample)
    doc["locationComponent"].append(
        {
            "$id": "123e4567-f00d-12d3-a456-426614174000",
            "lastUpdateTimeStamp": "2021-04-30T14:40:10.0-04:00",
            "updatedByAgencyReference": {"$ref": "state.pa.us"},
            "locationTypeDescriptionRegistryText": "Caller",
            "locationByValue": GEODETIC,
        }
    )
    doc["callComponent"][0]["locationReference"].append(
        {"$ref": "123e4567-f00d-12d3-a456-426614174000"}
    )
    return doc


def test_nena_sample_converts_into_a_call(eido: EidoSchema, nena_sample: Any) -> None:
    document = _with_geodetic_location(nena_sample)
    assert eido.complaints(document) == []
    [taken] = eido_calls(document, centre=Centre.EMS)
    call = taken.call
    assert taken.key == (
        "urn:emergency:uid:incidentid:a56e556d871:bcf.state.pa.us|"
        "urn:emergency:uid:callid:a56e556d871:bcf.state.pa.us"
    )
    assert call.call_id == "urn:emergency:uid:callid:a56e556d871:bcf.state.pa.us"
    assert call.centre is Centre.EMS and call.call_type is CallType.OTHER
    assert call.received_at == datetime(2021, 4, 30, 18, 40, tzinfo=UTC)
    assert (call.lat, call.lon) == pytest.approx((39.7459, -75.5466))
    assert call.address == "42 W Cellular Street, Wilmington, DE, US"
    assert call.caller_phone == "8195551212"  # the tel: URI of the callback component
    assert call.description == "This is an example text."  # its EmergencyCallData.Comment


def test_nena_sample_as_published_is_refused_for_want_of_coordinates(nena_sample: Any) -> None:
    with pytest.raises(InvalidEidoError) as info:
        eido_calls(nena_sample, centre=Centre.EMS)
    assert info.value.field == "callComponent[0].locationReference"
    assert "only a civic address" in str(info.value)


def test_dangling_reference_is_refused_naming_it(nena_sample: Any) -> None:
    document = _with_geodetic_location(nena_sample)
    document["callComponent"][0]["personReference"] = [{"$ref": "nobody"}]
    assert dangling_references(document) == ["callComponent[0].personReference[0]"]
    with pytest.raises(InvalidEidoError) as info:
        eido_calls(document, centre=Centre.EMS)
    assert info.value.field == "callComponent[0].personReference[0]"


def test_centre_follows_the_owning_agency_then_the_incident_type() -> None:
    document = incident_to_eido(joint_incident(), origin=ORIGIN)
    del document["callComponent"]
    # Without calls, the incident itself is the call: its owner is traffic police (122).
    [taken] = eido_calls(document)
    assert taken.call.centre is Centre.TRAFFIC
    assert taken.key.endswith("|")
    assert taken.call.call_type is CallType.TRAFFIC_ACCIDENT_ENTRAPMENT
    for agency in document["agencyComponent"]:
        agency["incidentOwningAgencyIndicator"] = False
    assert eido_calls(document)[0].call.centre is Centre.FIRE  # entrapment: the 119 job


def test_foreign_apco_code_maps_to_our_call_type(nena_sample: Any) -> None:
    document = _with_geodetic_location(nena_sample)
    document["incidentComponent"] = {
        "$id": "inc-1",
        "lastUpdateTimeStamp": "2021-04-30T14:43:49.439-04:00",
        "updatedByAgencyReference": {"$ref": "state.pa.us"},
        "incidentTypeCommonRegistryText": "FSTRU",
    }
    assert eido_calls(document)[0].call.call_type is CallType.FIRE
    assert eido_calls(document)[0].call.centre is Centre.FIRE


def test_pidf_with_a_dtd_is_refused() -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><presence>&a;</presence>'
    with pytest.raises(InvalidEidoError, match="DTD"):
        location_from_pidf(bomb, where="locationComponent[0].locationByValue")


def test_pidf_reads_points_in_circles_and_refuses_impossible_ones() -> None:
    circle = (
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gml="http://www.opengis.net/gml"'
        ' xmlns:gs="http://www.opengis.net/pidflo/1.0"><gs:Circle srsName="urn:ogc:def:crs:EPSG'
        '::4326"><gml:pos>31.2 121.5</gml:pos><gs:radius uom="urn:ogc:def:uom:EPSG::9001">'
        "30</gs:radius></gs:Circle></presence>"
    )
    assert location_from_pidf(circle, where="x") == ((31.2, 121.5), None)
    with pytest.raises(InvalidEidoError, match="outside WGS 84"):
        location_from_pidf(circle.replace("31.2 121.5", "131.2 121.5"), where="x")
    assert location_from_pidf("not xml at all", where="x") == (None, None)
