"""J2735 on ``/ws``: UPER SRMs out to a signal controller, UPER SSMs in (``?wire=j2735``).

A session opened with ``wire=j2735`` keeps every JSON frame and gets, right after the JSON
frame of each ``greenwave.request|update|cancel|status`` event, one binary frame holding a
UPER SignalRequestMessage: what the arbiter now asks of the intersection (the service relays
the vehicle's request as an RSU would, with the window the arbiter granted). A granted
decision is a ``priorityRequest`` (``greenwave.request``) or ``priorityRequestUpdate``; a
later rejected or cancelled one a ``priorityCancellation``; a new request the arbiter did not
grant, and a served one, send nothing.

Binary frames from the client are UPER SignalStatusMessages (constraints checked). Each
status about a request the intersection holds is applied as a JSON ``signal_status`` would
be: J2735 ``granted`` ("prioritization is active") as ``served``, ``rejected`` /
``maxPresence`` / ``reserviceLocked`` as ``rejected``; other statuses (requested,
processing, watchOtherTraffic, unknown), statuses of requests Yishao does not hold and those
already finished are listed as ignored. The reply is ``ssm.ok`` ``{applied, ignored}``; a
frame that does not decode gets ``error`` (``bad_ssm``) and changes nothing; an SSM naming
an intersection beyond the token's scope closes the session with 4403 before anything is
applied, like the JSON message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from dispatch.core import policy
from dispatch.core.policy import Action, Target
from dispatch.flow.greenwave import GreenWave, SignalReport
from dispatch.interop.errors import J2735Error
from dispatch.interop.j2735 import (
    IntersectionMap,
    WireStatus,
    decode_ssm,
    encode_srm,
    wire_request_key,
)
from dispatch.push.frames import frame
from dispatch.push.hub import Client, CloseReason
from routing.arbiter import SignalStatus
from routing.greenwave import RequestType, SignalRequest

WIRE_JSON = "json"
WIRE_J2735 = "j2735"
WIRES = (WIRE_JSON, WIRE_J2735)

_PREFIX = '{"type":"greenwave.'
_EVENTS = frozenset(
    {"greenwave.request", "greenwave.update", "greenwave.cancel", "greenwave.status"}
)
_APPLIED: dict[str, SignalStatus] = {
    "granted": SignalStatus.SERVED,
    "rejected": SignalStatus.REJECTED,
    "maxPresence": SignalStatus.REJECTED,
    "reserviceLocked": SignalStatus.REJECTED,
}


def _error(code: str, message: str, **extra: Any) -> str:
    return frame("error", {"code": code, "message": message, **extra})


@dataclass(frozen=True)
class J2735Wire:
    """One session's J2735 codec: the intersection numbering and the standards folder."""

    intersections: IntersectionMap
    standards: Path

    def srm_for(self, text: str) -> bytes | str | None:
        """The binary SRM owed after an event frame (an ``error`` frame when the request
        cannot be put on the air, None when the frame owes none)."""
        if not text.startswith(_PREFIX):
            return None
        envelope = orjson.loads(text)
        kind = envelope.get("type")
        data = envelope.get("data") or {}
        if kind not in _EVENTS or not isinstance(data, dict):
            return None
        try:
            request = SignalRequest.model_validate(data.get("request"))
            status = SignalStatus(str(data.get("status")))
        except (ValidationError, ValueError):
            return None
        if status is SignalStatus.SERVED:
            return None
        if kind == "greenwave.request" and status is not SignalStatus.GRANTED:
            return None  # the controller never heard of it: nothing to withdraw
        if kind == "greenwave.cancel" or status is not SignalStatus.GRANTED:
            asked = request.model_copy(update={"request_type": RequestType.CANCEL})
        else:
            granted_from, granted_to = data.get("granted_from"), data.get("granted_to")
            update: dict[str, Any] = {
                "request_type": RequestType.REQUEST
                if kind == "greenwave.request"
                else RequestType.UPDATE
            }
            if granted_from and granted_to:
                start = datetime.fromisoformat(str(granted_from))
                end = datetime.fromisoformat(str(granted_to))
                update |= {"arrive_from": start, "arrive_to": end, "hold_s": 0.0}
                update["eta"] = min(max(request.eta, start), end)
            asked = request.model_copy(update=update)
        try:
            return encode_srm([asked], intersections=self.intersections, standards=self.standards)
        except J2735Error as exc:
            return _error(
                "j2735_unencodable",
                f"{kind} {envelope.get('id')} not sent as an SRM: {exc}",
                event_id=envelope.get("id"),
            )

    async def on_ssm(
        self, client: Client, data: bytes, *, greenwave: GreenWave, now: datetime
    ) -> None:
        """Apply one binary SSM frame from ``client`` (see the module docstring)."""
        admitted = policy.admits(client.principal, Action.SIGNAL_STATUS)
        if not admitted.allowed:
            client.close(CloseReason.FORBIDDEN, f"SignalStatusMessage: {admitted.reason}")
            return
        try:
            statuses = decode_ssm(
                data, intersections=self.intersections, standards=self.standards, now=now
            )
        except J2735Error as exc:
            client.offer(_error("bad_ssm", str(exc)))
            return
        # Every intersection checked before anything is applied: a refused SSM changes nothing.
        for node in sorted({s.intersection_id for s in statuses}):
            decision = policy.decide(
                client.principal, Action.SIGNAL_STATUS, Target(intersection_id=str(node))
            )
            if not decision.allowed:
                client.close(CloseReason.FORBIDDEN, decision.reason)
                return
        applied: list[dict[str, Any]] = []
        ignored: list[dict[str, Any]] = []
        for st in statuses:
            outcome = await self._apply(client, st, greenwave)
            (applied if "status" in outcome else ignored).append(outcome)
        client.reply("ssm.ok", {"applied": applied, "ignored": ignored})

    async def _apply(self, client: Client, st: WireStatus, greenwave: GreenWave) -> dict[str, Any]:
        about = {
            "intersection_id": st.intersection_id,
            "station_id": st.station_id,
            "request_number": st.request_number,
            "wire_status": st.wire_status,
        }
        target = _APPLIED.get(st.wire_status)
        if target is None:
            return {**about, "why": f"{st.wire_status} is not a controller's final word"}
        state = await greenwave.state(st.intersection_id)
        held = next(
            (
                d
                for d in state.decisions
                if wire_request_key(d.request) == (st.station_id, st.request_number)
            ),
            None,
        )
        if held is None:
            return {**about, "why": "no such request at this intersection"}
        rid = held.request.request_id
        if held.final:
            # SSMs repeat several times a second: a request already finished stays so.
            return {**about, "request_id": rid, "why": f"already {held.status.value}"}
        decision = await greenwave.report(
            SignalReport(
                intersection_id=st.intersection_id,
                request_id=rid,
                status=target,
                reason=f"SSM {st.wire_status}",
            ),
            actor=f"signal:{client.principal.sub}",
        )
        return {**about, "request_id": rid, "status": decision.status.value}
