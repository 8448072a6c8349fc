"""The standards' own schemas: loaded in place, with exactly the documented loader fixes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import yaml

from dispatch.interop.errors import InvalidCapError, InvalidEidoError
from dispatch.interop.schemas import CAP_ROOT, CapSchema, EidoSchema


def test_loader_mends_exactly_the_two_defects_provenance_names(eido: EidoSchema) -> None:
    fixes = [f for f in eido.fixes.applied if f.startswith("openapi.yaml")]
    assert len(fixes) == 2, fixes
    assert "AgentType" in fixes[0] and "minItems" in fixes[0] and "'1,' -> 1" in fixes[0]
    assert "NIEMComponents//j.yaml" in fixes[1] and "'NIEMComponents/j.yaml#" in fixes[1]


def test_the_unmended_schema_cannot_validate_an_agent(standards: Path, nena_sample: Any) -> None:
    """Why the fix is needed: as published, ``minItems: "1,"`` breaks validation outright."""
    main = standards / "eido" / "openapi.yaml"
    raw = yaml.safe_load(main.read_text(encoding="utf-8"))
    uri = main.as_uri()
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        uri, referencing.jsonschema.DRAFT4.create_resource(raw)
    )
    validator = jsonschema.Draft4Validator(
        {"$ref": f"{uri}#/components/schemas/EmergencyIncidentDataObjectType"}, registry=registry
    )
    with pytest.raises(TypeError):
        list(validator.iter_errors(nena_sample))


def test_nena_sample_validates_once_mended(eido: EidoSchema, nena_sample: Any) -> None:
    assert eido.complaints(nena_sample) == []


def test_complaints_name_the_field_and_never_quote_the_value(
    eido: EidoSchema, nena_sample: Any
) -> None:
    bad = copy.deepcopy(nena_sample)
    bad["callComponent"][0]["callStartTimestamp"] = "13912345678"
    bad["callComponent"][0]["direction"] = "sideways-13912345678"
    del bad["agencyComponent"]
    bad["agentComponent"][0]["agentRoleRegistryText"] = []
    found = eido.complaints(bad)
    text = " ".join(found)
    assert "13912345678" not in text
    assert "callComponent[0].callStartTimestamp: must be a valid date-time" in found
    assert any(f.startswith("callComponent[0].direction: must be one of") for f in found)
    assert "(root): missing required field agencyComponent" in found
    assert "agentComponent[0].agentRoleRegistryText: violates minItems 1" in found
    with pytest.raises(InvalidEidoError) as info:
        eido.validate(bad)
    assert info.value.field in {c.split(":")[0] for c in found}


def test_niem_components_are_read_when_a_document_reaches_them(
    eido: EidoSchema, nena_sample: Any
) -> None:
    person = copy.deepcopy(nena_sample)
    person["personComponent"][0]["ncPersonComponent"] = {"birthDate": [{"date": "1990-01-01"}]}
    found = eido.complaints(person)
    # nc.yaml says a date is an array of niem-xs dates: the NIEM file was loaded and applied.
    assert found == [
        "personComponent[0].ncPersonComponent.birthDate[0].date: must be of type array"
    ]


def test_a_reference_outside_the_folder_is_never_read(eido: EidoSchema) -> None:
    with pytest.raises(referencing.exceptions.NoSuchResource):
        eido._retrieve("file:///etc/passwd")


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_oasis_examples_validate(cap: CapSchema, standards: Path, n: int) -> None:
    assert cap.complaints((standards / "cap" / f"ex{n}.xml").read_bytes()) == []


def test_cap_root_must_be_alert(cap: CapSchema) -> None:
    lone = b'<value xmlns="urn:oasis:names:tc:emergency:cap:1.2">x</value>'
    assert cap.schema.is_valid(lone)  # what the XSD alone would let through
    with pytest.raises(InvalidCapError, match="root element must be"):
        cap.validate(lone)
    assert CAP_ROOT.endswith("}alert")


def test_cap_sent_pattern_refuses_z_and_fractions(cap: CapSchema, standards: Path) -> None:
    good = (standards / "cap" / "ex1.xml").read_bytes()
    import re

    sent = re.search(rb"<sent>([^<]+)</sent>", good)
    assert sent is not None
    for wrong in (b"2026-12-02T06:39:01Z", b"2026-12-02T14:39:01.5+08:00"):
        assert cap.complaints(good.replace(sent.group(1), wrong)), wrong
    assert cap.complaints(good.replace(sent.group(1), b"2026-12-02T14:39:01+08:00")) == []
