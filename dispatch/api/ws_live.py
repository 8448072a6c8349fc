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
from dispatch.core.audience import ALL_INTERSECTIONS
from dispatch.flow.fleet import Fleet
from dispatch.flow.greenwave import GreenWave, SignalReport
from dispatch.flow.track import Tracking
from dispatch.models import AwareDatetime, Latitude, Longitude, Position, Role, UnitStatus
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

    async def unit_of(client: Client) -> str:
        unit_id = client.principal.sub
        if unit_id not in known_units:
            await fleet.get_unit(unit_id)  # NotFoundError -> error reply
            known_units.add(unit_id)
        return unit_id

    @hub.on("position", PositionMessage, roles=[Role.TERMINAL])
    async def on_position(client: Client, msg: PositionMessage) -> None:
        unit_id = await unit_of(client)
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

    @hub.on("status", StatusMessage, roles=[Role.TERMINAL])
    async def on_status(client: Client, msg: StatusMessage) -> None:
        unit_id = await unit_of(client)
        unit = await tracking.set_status(unit_id, msg.status, actor=f"unit:{unit_id}")
        client.reply("status.ok", {"unit_id": unit_id, "status": unit.status}, ref=msg.ref)

    @hub.on("signal_status", SignalStatusMessage, roles=[Role.SIGNAL])
    async def on_signal_status(client: Client, msg: SignalStatusMessage) -> None:
        scope = client.principal.scope
        if str(msg.intersection_id) not in scope and ALL_INTERSECTIONS not in scope:
            raise OutOfScope(f"intersection {msg.intersection_id} is not in your scope")
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
