"""The live map's feed: every fix off the positions stream, one frame per interval to screens.

Screens (dispatcher, observer, admin) get one ``positions`` frame per interval carrying only
the units that moved, never one message per fix per screen; a screen with an agency or bbox
filter gets its own cut of the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from dispatch.core.audience import sees_everything
from dispatch.errors import StoreError
from dispatch.flow.fleet import Fleet
from dispatch.infra.store import Store
from dispatch.models import Position
from dispatch.push.frames import frame
from dispatch.push.hub import Hub

log = logging.getLogger(__name__)


def position_entry(fields: dict[bytes, bytes]) -> tuple[str, Position, float | None]:
    """Decode a positions-stream entry: unit id, fix, ETA (if driving a leg)."""
    unit_id = fields[b"unit_id"].decode()
    pos = Position.model_validate(orjson.loads(fields[b"position"]))
    eta = float(fields[b"eta_s"]) if b"eta_s" in fields else None
    return unit_id, pos, eta


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
                entries = await self.store.read_positions(last, count=2000, block_ms=500)
            except StoreError as exc:
                log.warning("position feed: %s", exc)
                await _pause(stop, 1.0)
                continue
            for entry_id, fields in entries:
                last = entry_id
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
            with contextlib.suppress(StoreError):
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
            who = client.principal
            if not sees_everything(who.role, who.agency) or not client.live:
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
