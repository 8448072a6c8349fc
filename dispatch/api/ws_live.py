"""Vehicle terminals and signal controllers over the websocket, and the live-map feed.

Terminals (role ``terminal``, token subject = unit id) send ``position`` about once a second
and ``status`` changes; signal controllers (role ``signal``, token scope = intersection ids)
send ``signal_status`` for the requests they hold. Screens (dispatcher, observer, admin) get
one ``positions`` frame per interval carrying only the units that moved, never one message
per fix per screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field
from redis.exceptions import RedisError

from dispatch.api.ws import ClientMessage, OutOfScope
from dispatch.core.audience import ALL_INTERSECTIONS, SEE_ALL
from dispatch.flow.fleet import Fleet
from dispatch.flow.greenwave import SignalDesk, SignalReport
from dispatch.flow.track import PositionDesk, position_entry
from dispatch.infra.store import Store
from dispatch.models import AwareDatetime, Latitude, Longitude, Position, Role, UnitStatus
from dispatch.push.hub import Client, Hub, frame
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
    hub: Hub, *, positions: PositionDesk, signals: SignalDesk, fleet: Fleet, clock: Any
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
        result = await positions.handle(unit_id, fix)
        client.reply(
            "position.ok",
            {"eta_s": result.eta_s, "rerouted": result.rerouted, "sent": result.sent},
            ref=msg.ref,
        )

    @hub.on("status", StatusMessage, roles=[Role.TERMINAL])
    async def on_status(client: Client, msg: StatusMessage) -> None:
        unit_id = await unit_of(client)
        unit = await positions.set_status(unit_id, msg.status, actor=f"unit:{unit_id}")
        client.reply("status.ok", {"unit_id": unit_id, "status": unit.status}, ref=msg.ref)

    @hub.on("signal_status", SignalStatusMessage, roles=[Role.SIGNAL])
    async def on_signal_status(client: Client, msg: SignalStatusMessage) -> None:
        scope = client.principal.scope
        if str(msg.intersection_id) not in scope and ALL_INTERSECTIONS not in scope:
            raise OutOfScope(f"intersection {msg.intersection_id} is not in your scope")
        decision = await signals.report(
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


class PositionFeed:
    """Reads every fix from the positions stream and sends screens one frame per interval."""

    def __init__(self, store: Store, hub: Hub, fleet: Fleet, *, interval_s: float = 1.0) -> None:
        self.store = store
        self.hub = hub
        self.fleet = fleet
        self.interval_s = interval_s
        self.frames = 0
        self._moved: dict[str, dict[str, Any]] = {}
        self._agency: dict[str, str] = {}

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self._read(stop), self._flush_loop(stop))

    async def _read(self, stop: asyncio.Event) -> None:
        last = "$"
        while not stop.is_set():
            try:
                resp: Any = await self.store.redis.xread(
                    {self.store.keys.position_stream: last}, count=2000, block=500
                )
            except RedisError as exc:
                log.warning("position feed: %s", exc)
                await _pause(stop, 1.0)
                continue
            for _stream, entries in resp or []:
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    try:
                        unit_id, pos, eta = position_entry(fields)
                    except (KeyError, ValueError):
                        continue
                    # Six decimals is 0.1 m; absent fields are left out: the frame goes to
                    # every screen each second, so its size is the feed's cost.
                    unit: dict[str, Any] = {
                        "unit_id": unit_id,
                        "lat": round(pos.lat, 6),
                        "lon": round(pos.lon, 6),
                        "at": pos.at,
                    }
                    if pos.speed_kph is not None:
                        unit["speed_kph"] = round(pos.speed_kph, 1)
                    if pos.heading_deg is not None:
                        unit["heading_deg"] = round(pos.heading_deg)
                    if eta is not None:
                        unit["eta_s"] = eta
                    self._moved[unit_id] = unit

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _pause(stop, self.interval_s)
            with contextlib.suppress(RedisError):
                await self.flush()

    async def flush(self) -> int:
        """Send the units that moved since the last frame; returns how many screens got one."""
        if not self._moved:
            return 0
        moved, self._moved = self._moved, {}
        if any(u not in self._agency for u in moved):
            self._agency = {u.id: u.agency.value for u in await self.fleet.units()}
        units = list(moved.values())
        shared = frame("positions", {"units": units}, ts=datetime.now(UTC).isoformat())
        sent = 0
        for client in self.hub.clients:
            if client.principal.role not in SEE_ALL or not client.live:
                continue
            flt = client.audience.filter
            if flt.agencies is None and flt.bbox is None:
                sent += client.offer(shared)
                continue
            mine = [u for u in units if _passes(u, flt.agencies, flt.bbox, self._agency)]
            if mine:
                sent += client.offer(frame("positions", {"units": mine}))
        self.frames += 1
        return sent


def _passes(
    unit: dict[str, Any],
    agencies: frozenset[str] | None,
    bbox: tuple[float, float, float, float] | None,
    agency_of: dict[str, str],
) -> bool:
    if agencies is not None and agency_of.get(unit["unit_id"]) not in agencies:
        return False
    if bbox is not None:
        w, s, e, n = bbox
        return bool(w <= unit["lon"] <= e and s <= unit["lat"] <= n)
    return True


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
