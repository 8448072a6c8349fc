"""Dispute referrals through the real service: consent and body named when refused, dispute
types only, the mediation body's scoped updates with refused transitions (409), and a repeat
call from the same place linked to the referral."""

from __future__ import annotations

from typing import Any

import httpx

from dispatch.models import Agency, Role
from tests.push._helpers import T, bearer, tok
from tests.push.test_property import call, ems, incident_of, police
from tests.utils import ServerThread, wait_for


def mediator(body: str = "town-mediation") -> dict[str, str]:
    return bearer(tok(Role.MEDIATOR, Agency.POLICE, f"m-{body}", scope=[body]))


async def test_referral_lifecycle_and_repeat_calls(server: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=T) as http:
        for c in (call("D1", "dispute", 31.25, 121.45), call("T1", "theft", 31.30, 121.50)):
            assert (await http.post("/api/calls", json=c, headers=ems())).status_code == 202
        dispute = await incident_of(http, "120:D1")
        theft = await incident_of(http, "120:T1")
        path = f"/api/incidents/{dispute['id']}/referrals"

        async def refer(
            body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> httpx.Response:
            return await http.post(path, json=body, headers=headers or police())

        no_consent = await refer({"body": "town-mediation"})
        assert no_consent.status_code == 422 and "consent" in no_consent.text
        assert (await refer({"body": "town-mediation", "consent": False})).status_code == 422
        unknown = await refer({"body": "court", "consent": True})
        assert unknown.status_code == 422 and "body" in unknown.text
        assert (await refer({"consent": True})).status_code == 422
        not_dispute = await http.post(
            f"/api/incidents/{theft['id']}/referrals",
            json={"body": "town-mediation", "consent": True},
            headers=police(),
        )
        assert not_dispute.status_code == 409 and "not a dispute" in not_dispute.text
        assert (await refer({"body": "town-mediation", "consent": True}, ems())).status_code == 403
        made = await refer({"body": "town-mediation", "consent": True, "topic": "neighbours"})
        assert made.status_code == 201, made.text
        referral = made.json()
        assert referral["status"] == "referred" and referral["overdue"] is False
        assert referral["body_name"] == "Town people's mediation committee"
        rid = referral["id"]
        # The body sees its own referrals; another body neither sees nor updates them.
        mine = (await http.get("/api/referrals", headers=mediator())).json()
        assert [r["id"] for r in mine] == [rid]
        other = mediator("labour-arbitration")
        assert (await http.get("/api/referrals", headers=other)).json() == []
        assert (await http.get(f"/api/referrals/{rid}", headers=other)).status_code == 403
        status = f"/api/referrals/{rid}/status"
        assert (
            await http.post(status, json={"status": "accepted"}, headers=other)
        ).status_code == 403
        assert (
            await http.post(status, json={"status": "accepted"}, headers=police())
        ).status_code == 403
        early = await http.post(status, json={"status": "resolved"}, headers=mediator())
        assert early.status_code == 409 and "referred to resolved" in early.text
        for step in ("accepted", "in_mediation"):
            r = await http.post(status, json={"status": step}, headers=mediator())
            assert r.status_code == 200 and r.json()["status"] == step
        assert (
            await http.post(status, json={"status": "accepted"}, headers=mediator())
        ).status_code == 409
        # A repeat call from the same place about the same dispute is linked and counted;
        # one from elsewhere is not.
        for c in (call("D2", "dispute", 31.2503, 121.4502), call("D3", "dispute", 31.27, 121.45)):
            assert (await http.post("/api/calls", json=c, headers=ems())).status_code == 202
        await incident_of(http, "120:D3")

        async def linked() -> bool:
            r = (await http.get(f"/api/referrals/{rid}", headers=police())).json()
            return bool(r["repeat_calls"] == ["120:D2"])

        await wait_for(linked, timeout_s=10)
        done = await http.post(
            status, json={"status": "resolved", "note": "agreement signed"}, headers=mediator()
        )
        assert done.status_code == 200 and [s["status"] for s in done.json()["steps"]] == [
            "referred", "accepted", "in_mediation", "resolved"
        ]  # fmt: skip
        assert (
            await http.post(status, json={"status": "failed"}, headers=mediator())
        ).status_code == 409
        listed = (await http.get("/api/referrals?status=resolved", headers=police())).json()
        assert [r["id"] for r in listed] == [rid]
        assert (await http.get("/api/referrals?overdue=true", headers=police())).json() == []
        trail = (await http.get(f"/api/incidents/{dispute['id']}/events", headers=ems())).json()
        kinds = [e["type"] for e in trail]
        assert kinds.count("referral.updated") == 3 and "referral.repeat_call" in kinds
