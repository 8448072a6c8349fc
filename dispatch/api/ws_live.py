"""Vehicle terminals and signal controllers over the websocket.

Terminals (role ``terminal``, token subject = unit id) send ``position`` about once a second
and ``status`` changes; signal controllers (role ``signal``, token scope = intersection ids)
send ``signal_status`` for the requests they hold. (Screens get the positions back from
:class:`dispatch.push.feed.PositionFeed`.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import Field

from dispatch.api.ws import ClientMessage, OutOfScope
from dispatch.core import policy
from dispatch.core.policy import Action, Target
from dispatch.flow.fleet import Fleet
from dispatch.flow.greenwave import GreenWave, SignalReport
from dispatch.flow.track import Tracking
from dispatch.models import AwareDatetime, Latitude, Longitude, Position, UnitStatus
from dispatch.push.hub import Client, Hub
from routing.arbiter import SignalStatus

log = logging.getLogger(__name__)


class PositionMessage(ClientMessage):
    type: Literal["position"]
    lat: Latitude
    lon: Longitude
    speed_kph: float | None = Field(None, ge=0, le=400)
    heading_deg: float | None = Field(None, ge=0, lt=360)
    at: AwareDatetime | None = Field(None, description="fix time; the server's clock if absent")


class StatusMessage(ClientMessage):
    type: Literal["status"]
    status: UnitStatus


class SignalStatusMessage(ClientMessage):
    type: Literal["signal_status"]
    intersection_id: int
    request_id: str = Field(min_length=1, max_length=200)
    status: Literal["served", "rejected"]
    reason: str = Field("", max_length=500)


CLIENT_MESSAGES = {
    "position": PositionMessage,
    "status": StatusMessage,
    "signal_status": SignalStatusMessage,
}


def install_live_handlers(
    hub: Hub,
    *,
    tracking: Tracking,
    greenwave: GreenWave,
    fleet: Fleet,
    clock: Callable[[], datetime],
) -> None:
    """Register ``position``, ``status`` (terminals) and ``signal_status`` (controllers)."""
    known_units: set[str] = set()

    async def unit_of(client: Client, action: Action) -> str:
        """The terminal's own unit, once checked against the policy (its agency is the
        token's); the check is cached per unit: a unit does not change agency while driving."""
        unit_id = client.principal.sub
        if unit_id not in known_units:
            unit = await fleet.get_unit(unit_id)  # NotFoundError -> error reply
            decision = policy.decide(client.principal, action, Target(units=(unit,)))
            if not decision.allowed:
                raise OutOfScope(decision.reason)
            known_units.add(unit_id)
        return unit_id

    @hub.on("position", PositionMessage, action=Action.TERMINAL_POSITION)
    async def on_position(client: Client, msg: PositionMessage) -> None:
        unit_id = await unit_of(client, Action.TERMINAL_POSITION)
        fix = Position(
            lat=msg.lat,
            lon=msg.lon,
            at=msg.at or clock(),
            speed_kph=msg.speed_kph,
            heading_deg=msg.heading_deg,
        )
        result = await tracking.handle(unit_id, fix)
        client.reply(
            "position.ok",
            {"eta_s": result.eta_s, "rerouted": result.rerouted, "sent": result.sent},
            ref=msg.ref,
        )

    @hub.on("status", StatusMessage, action=Action.TERMINAL_STATUS)
    async def on_status(client: Client, msg: StatusMessage) -> None:
        unit_id = await unit_of(client, Action.TERMINAL_STATUS)
        unit = await tracking.set_status(unit_id, msg.status, actor=f"unit:{unit_id}")
        client.reply("status.ok", {"unit_id": unit_id, "status": unit.status}, ref=msg.ref)

    @hub.on("signal_status", SignalStatusMessage, action=Action.SIGNAL_STATUS)
    async def on_signal_status(client: Client, msg: SignalStatusMessage) -> None:
        target = Target(intersection_id=str(msg.intersection_id))
        allowed = policy.decide(client.principal, Action.SIGNAL_STATUS, target)
        if not allowed.allowed:
            raise OutOfScope(allowed.reason)
        decision = await greenwave.report(
            SignalReport(
                intersection_id=msg.intersection_id,
                request_id=msg.request_id,
                status=SignalStatus(msg.status),
                reason=msg.reason,
            ),
            actor=f"signal:{client.principal.sub}",
        )
        client.reply(
            "signal_status.ok",
            {"request_id": msg.request_id, "status": decision.status},
            ref=msg.ref,
        )
