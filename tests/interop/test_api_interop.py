"""EIDO and CAP at the edge, through a real uvicorn server on a real Redis."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import feedparser
import httpx
import pytest
import redis as sync_redis

from dispatch.api import create_app
from dispatch.auth import mint
from dispatch.constants import Keys
from dispatch.interop.eido import dangling_references, pidf_point
from dispatch.interop.schemas import CAP_NS, CapSchema, EidoSchema
from dispatch.models import Agency, Role
from dispatch.settings import Settings
from tests.interop.conftest import T0
from tests.utils import TEST_SECRET, ServerThread, recently, wait_for

NS = {"cap": CAP_NS}
CALL = {
    "call_id": "122-0001",
    "centre": "122",
    "call_type": "traffic_accident",
    "lat": 31.2304,
    "lon": 121.4737,
    "received_at": recently(),
    "address": "黄浦区南京东路 100 号",
    "caller_phone": "13912345678",
    "severity": 4,
}


def token(role: Role, agency: Agency, sub: str = "someone") -> dict[str, str]:
    minted = mint(TEST_SECRET, role=role, agency=agency, sub=sub, ttl_s=6 * 3600)
    return {"Authorization": f"Bearer {minted}"}


DISPATCHER = token(Role.DISPATCHER, Agency.TRAFFIC, "traffic-disp-1")
EMS_DISPATCHER = token(Role.DISPATCHER, Agency.EMS, "ems-disp-1")
OBSERVER = token(Role.OBSERVER, Agency.POLICE)


@pytest.fixture
def server(settings: Settings, redis_url: str, standards: Path) -> Iterator[ServerThread]:
    sync_redis.Redis.from_url(redis_url).flushdb()
    with ServerThread(create_app(settings.model_copy(update={"standards_dir": standards}))) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


def calls_on_stream(redis_url: str) -> int:
    return int(sync_redis.Redis.from_url(redis_url).xlen(Keys().calls))


def incident_with(server: ServerThread, predicate: Any) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        async with httpx.AsyncClient() as c:
            got = await c.get(f"{server.url}/api/incidents", headers=EMS_DISPATCHER)
            return next((i for i in got.json() if predicate(i)), None)

    found: dict[str, Any] = asyncio.run(wait_for(find))
    return found


def reported_incident(server: ServerThread) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/api/calls", json=CALL, headers=DISPATCHER)
    assert r.status_code == 202, r.text
    return incident_with(server, lambda i: i["calls"])


# -- EIDO ------------------------------------------------------------------------------------------
def test_incident_exports_as_a_valid_eido(server: ServerThread, eido: EidoSchema) -> None:
    incident = reported_incident(server)
    r = httpx.get(f"{server.url}/api/incidents/{incident['id']}/eido", headers=OBSERVER)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    document = r.json()
    assert eido.complaints(document) == []
    assert dangling_references(document) == []
    assert document["incidentComponent"]["internalIncidentId"] == incident["id"]
    assert "13912345678" not in r.text
    missing = httpx.get(f"{server.url}/api/incidents/nope/eido", headers=OBSERVER)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("who", "status"),
    [
        (token(Role.COORDINATOR, Agency.FIRE), 403),
        (token(Role.TERMINAL, Agency.EMS), 403),
        (token(Role.SIGNAL, Agency.TRAFFIC), 403),
        (token(Role.DISPATCHER, Agency.FIRE), 200),
        (token(Role.ADMIN, Agency.POLICE), 200),
    ],
)
def test_who_may_read_eido(server: ServerThread, who: dict[str, str], status: int) -> None:
    incident = reported_incident(server)
    r = httpx.get(f"{server.url}/api/incidents/{incident['id']}/eido", headers=who)
    assert r.status_code == status, r.text


def _geodetic(sample: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(sample)
    doc["locationComponent"].append(
        {
            "$id": "loc-geodetic-1",
            "lastUpdateTimeStamp": "2021-04-30T14:40:10.0-04:00",
            "updatedByAgencyReference": {"$ref": "state.pa.us"},
            "locationTypeDescriptionRegistryText": "Caller",
            "locationByValue": pidf_point(31.2304, 121.4737, entity="pres:c@state.pa.us", at=T0),
        }
    )
    doc["callComponent"][0]["locationReference"].append({"$ref": "loc-geodetic-1"})
    # A call handed over now (the service refuses calls more than a week old as not live).
    doc["callComponent"][0]["callStartTimestamp"] = recently(5)
    return doc


def test_invalid_eido_gets_422_naming_the_field_and_no_call(
    server: ServerThread, redis_url: str, nena_sample: dict[str, Any]
) -> None:
    bad = _geodetic(nena_sample)
    bad["callComponent"][0]["callStartTimestamp"] = "+8613912345678"
    del bad["eidoVersion"]
    r = httpx.post(f"{server.url}/api/eido", json=bad, headers=EMS_DISPATCHER)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] in {"callComponent[0].callStartTimestamp", "(root)"}
    assert "callComponent[0].callStartTimestamp: must be a valid date-time" in body["complaints"]
    assert "(root): missing required field eidoVersion" in body["complaints"]
    assert "13912345678" not in r.text
    for raw, field in ((b"{not json", "(root)"), (b"[1, 2]", "(root)")):
        r = httpx.post(
            f"{server.url}/api/eido",
            content=raw,
            headers={**EMS_DISPATCHER, "content-type": "application/json"},
        )
        assert r.status_code == 422 and r.json()["field"] == field
    # Valid by the schema but without coordinates (NENA's sample as published).
    r = httpx.post(f"{server.url}/api/eido", json=nena_sample, headers=EMS_DISPATCHER)
    assert r.status_code == 422
    assert r.json()["field"] == "callComponent[0].locationReference"
    assert calls_on_stream(redis_url) == 0


def test_valid_eido_is_one_call_however_often_it_is_posted(
    server: ServerThread, redis_url: str, nena_sample: dict[str, Any]
) -> None:
    document = _geodetic(nena_sample)
    first = httpx.post(f"{server.url}/api/eido", json=document, headers=EMS_DISPATCHER)
    assert first.status_code == 202, first.text
    [taken] = first.json()["calls"]
    assert taken["outcome"] == "queued" and taken["stream_id"]
    assert taken["call_key"] == "120:urn:emergency:uid:callid:a56e556d871:bcf.state.pa.us"
    again = httpx.post(f"{server.url}/api/eido", json=document, headers=EMS_DISPATCHER)
    assert again.status_code == 200, again.text
    assert again.json()["calls"][0] == {**taken, "outcome": "duplicate"}
    assert calls_on_stream(redis_url) == 1
    incident = incident_with(server, lambda i: i["calls"])
    [call] = incident["calls"]
    assert call["call_id"] == "urn:emergency:uid:callid:a56e556d871:bcf.state.pa.us"
    assert call["centre"] == "120" and call["caller_phone_masked"] == "819*****12"
    assert call["description"] == "This is an example text."


@pytest.mark.parametrize(
    ("who", "query", "status"),
    [
        (OBSERVER, "", 403),
        (token(Role.COORDINATOR, Agency.EMS), "", 403),
        (token(Role.DISPATCHER, Agency.POLICE), "", 403),  # no call-taking centre
        (EMS_DISPATCHER, "?centre=119", 403),  # not its own centre
        (token(Role.ADMIN, Agency.POLICE), "?centre=119", 202),
    ],
)
def test_who_may_post_eido(
    server: ServerThread,
    redis_url: str,
    nena_sample: dict[str, Any],
    who: dict[str, str],
    query: str,
    status: int,
) -> None:
    r = httpx.post(f"{server.url}/api/eido{query}", json=_geodetic(nena_sample), headers=who)
    assert r.status_code == status, r.text
    assert calls_on_stream(redis_url) == (1 if status == 202 else 0)


# -- CAP -------------------------------------------------------------------------------------------
def test_issue_update_cancel_a_public_alert(
    server: ServerThread, cap: CapSchema, redis_url: str
) -> None:
    incident = reported_incident(server)
    base = f"{server.url}/api/incidents/{incident['id']}/cap"
    r = httpx.post(base, json={"msg_type": "Alert", "headline": "南京东路封闭"}, headers=DISPATCHER)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/cap+xml")
    cap.validate(r.content)
    alert_id = r.headers["x-yishao-alert-id"]
    location = r.headers["location"]
    assert location.endswith(f"/cap/alerts/{alert_id}/1")
    public = httpx.get(location)  # no token: a public warning
    assert public.status_code == 200 and public.content == r.content

    update = httpx.post(
        base,
        json={"msg_type": "Update", "headline": "南京东路仍封闭", "headline_en": "Still closed"},
        headers=DISPATCHER,
    )
    assert update.status_code == 201, update.text
    cap.validate(update.content)
    first = ElementTree.fromstring(r.content)
    ref = ",".join(
        first.findtext(f"cap:{f}", namespaces=NS) or "" for f in ("sender", "identifier", "sent")
    )
    assert ElementTree.fromstring(update.content).findtext("cap:references", namespaces=NS) == ref

    feed = feedparser.parse(httpx.get(f"{server.url}/cap/alerts.atom").content)
    assert not feed.bozo and [e.title for e in feed.entries] == ["南京东路仍封闭"]
    assert feed.entries[0].links[0].href.endswith(f"/cap/alerts/{alert_id}")

    cancel = httpx.post(
        base,
        json={"msg_type": "Cancel", "headline": "恢复通行", "alert_id": alert_id},
        headers=DISPATCHER,
    )
    assert cancel.status_code == 201, cancel.text
    cap.validate(cancel.content)
    latest = httpx.get(f"{server.url}/cap/alerts/{alert_id}")
    assert latest.content == cancel.content
    assert httpx.get(f"{server.url}/cap/alerts/{alert_id}/1").content == r.content
    late = httpx.post(
        base, json={"msg_type": "Update", "headline": "x", "alert_id": alert_id}, headers=DISPATCHER
    )
    assert late.status_code == 409

    # Need-to-know: a coordinator who was never summoned to the incident reads nothing of it.
    assert httpx.get(base, headers=token(Role.COORDINATOR, Agency.FIRE)).status_code == 403
    listed = httpx.get(base, headers=OBSERVER).json()
    assert [(a["alert_id"], a["state"], a["messages"]) for a in listed] == [
        (alert_id, "cancelled", 3)
    ]
    trail = httpx.get(
        f"{server.url}/api/incidents/{incident['id']}/events", headers=OBSERVER
    ).json()
    cap_events = [e for e in trail if e["type"].startswith("cap.")]
    assert [e["type"] for e in cap_events] == ["cap.issued", "cap.updated", "cap.cancelled"]
    assert cap_events[0]["actor"] == "traffic-disp-1"
    assert cap_events[2]["data"]["alert_id"] == alert_id


def test_drill_alerts_are_exercises(server: ServerThread, cap: CapSchema) -> None:
    incident = reported_incident(server)
    base = f"{server.url}/api/incidents/{incident['id']}/cap"
    r = httpx.post(
        base,
        json={"msg_type": "Alert", "headline": "演练：道路封闭", "status": "Exercise"},
        headers=DISPATCHER,
    )
    assert r.status_code == 201, r.text
    cap.validate(r.content)
    assert ElementTree.fromstring(r.content).findtext("cap:status", namespaces=NS) == "Exercise"
    mixed = httpx.post(
        base, json={"msg_type": "Update", "headline": "x", "status": "Actual"}, headers=DISPATCHER
    )
    assert mixed.status_code == 409


def test_bad_cap_requests_are_refused_clearly(server: ServerThread) -> None:
    incident = reported_incident(server)
    base = f"{server.url}/api/incidents/{incident['id']}/cap"
    missing = httpx.post(base, json={"msg_type": "Alert"}, headers=DISPATCHER)
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["headline"]
    orphan = httpx.post(base, json={"msg_type": "Update", "headline": "x"}, headers=DISPATCHER)
    assert orphan.status_code == 422 and "alert_id" in orphan.json()["detail"]
    nowhere = httpx.post(
        f"{server.url}/api/incidents/YS-nope/cap",
        json={"msg_type": "Alert", "headline": "x"},
        headers=DISPATCHER,
    )
    assert nowhere.status_code == 404
    for who in (OBSERVER, token(Role.COORDINATOR, Agency.FIRE)):
        denied = httpx.post(base, json={"msg_type": "Alert", "headline": "x"}, headers=who)
        assert denied.status_code == 403
    assert httpx.get(f"{server.url}/cap/alerts/YS-nope-A1").status_code == 404
    assert httpx.get(f"{server.url}/cap/alerts/bad%20id").status_code == 422


# -- the schemas, as an operator prints them -------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["eido", "cap", "j2735"])
def test_yishao_schema_prints_each_standard(name: str, standards: Path) -> None:
    env = {**os.environ, "YISHAO_STANDARDS_DIR": str(standards)}
    out = subprocess.run(
        [sys.executable, "-m", "yishao", "schema", name],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    ).stdout
    if name == "eido":
        schema = json.loads(out)
        assert schema["$ref"] == "#/components/schemas/EmergencyIncidentDataObjectType"
        agent = schema["components"]["schemas"]["AgentType"]["allOf"][1]
        assert agent["properties"]["agentRoleRegistryText"]["minItems"] == 1
    elif name == "cap":
        assert 'targetNamespace = "urn:oasis:names:tc:emergency:cap:1.2"' in out
    else:
        assert "SignalStatusMessage ::= SEQUENCE" in out and "StationID ::= INTEGER" in out
