"""Today's figures for the console strip: incidents, whistles, arrivals, green-wave signals.

Computed from the event log itself, read once from local midnight and then incrementally from
where the last request stopped, so a busy day costs the new events only. Each instance keeps
its own tally (they agree: they read the same log).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import orjson
from pydantic import BaseModel, Field

from dispatch.core.kpis import DEFAULT_TIMEZONE
from dispatch.infra.store import Store

LOCAL_TZ = ZoneInfo(DEFAULT_TIMEZONE)
_PAGE = 2000
# Stream ids follow Redis's clock, event timestamps the service's: start reading a little early.
_CLOCK_SLACK_MS = 120_000
_GRANTED = frozenset({"granted", "served"})


class TodayFigures(BaseModel):
    day: date = Field(description="local (Asia/Shanghai) calendar day")
    since: datetime
    incidents: int = Field(description="incidents opened today")
    open_incidents: int = Field(description="incidents open now (any day)")
    whistles: int = Field(description="whistles sounded today")
    assignments: int
    arrivals: int = Field(description="units that reported on scene for an assignment of today")
    mean_arrival_s: float | None = Field(description="assignment to on-scene, mean over arrivals")
    signals_granted: int = Field(description="green-wave requests granted (distinct)")
    signals_served: int = Field(description="... of which the controller reported served")
    saved_s_estimate: float = Field(
        description="signals served x the router's expected delay per signal"
    )
    events_read: int


@dataclass
class _Tally:
    day: date
    since: datetime
    cursor: str
    incidents: int = 0
    whistles: int = 0
    assignments: int = 0
    arrival_sum_s: float = 0.0
    arrivals: int = 0
    granted: set[str] = field(default_factory=set)
    served: set[str] = field(default_factory=set)
    assigned_at: dict[tuple[str, str], datetime] = field(default_factory=dict)
    events: int = 0


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


class FiguresDesk:
    """Keeps today's tally; :meth:`today` brings it up to date and returns the figures."""

    def __init__(
        self, store: Store, *, clock: Callable[[], datetime], signal_delay_s: float
    ) -> None:
        self.store = store
        self.clock = clock
        self.signal_delay_s = signal_delay_s
        self._tally: _Tally | None = None
        self._lock = asyncio.Lock()

    def _fresh(self, now: datetime) -> _Tally:
        local = now.astimezone(LOCAL_TZ)
        midnight = datetime.combine(local.date(), time(0), tzinfo=LOCAL_TZ)
        start_ms = max(0, int(midnight.timestamp() * 1000) - _CLOCK_SLACK_MS)
        return _Tally(day=local.date(), since=midnight, cursor=f"{start_ms}-0")

    async def today(self) -> TodayFigures:
        async with self._lock:
            now = self.clock()
            tally = self._tally
            if tally is None or now.astimezone(LOCAL_TZ).date() != tally.day:
                tally = self._tally = self._fresh(now)
            await self._read(tally)
            open_now = await self.store.count(self.store.keys.open_incidents)
        return TodayFigures(
            day=tally.day,
            since=tally.since,
            incidents=tally.incidents,
            open_incidents=open_now,
            whistles=tally.whistles,
            assignments=tally.assignments,
            arrivals=tally.arrivals,
            mean_arrival_s=tally.arrival_sum_s / tally.arrivals if tally.arrivals else None,
            signals_granted=len(tally.granted),
            signals_served=len(tally.served),
            saved_s_estimate=len(tally.served) * self.signal_delay_s,
            events_read=tally.events,
        )

    async def _read(self, tally: _Tally) -> None:
        while True:
            low = f"({tally.cursor}" if tally.events else tally.cursor
            entries = await self.store.event_entries(low, "+", count=_PAGE)
            if not entries:
                return
            for entry_id, raw in entries:
                tally.cursor = _text(entry_id)
                tally.events += 1
                self._count(tally, raw)
            if len(entries) < _PAGE:
                return

    def _count(self, tally: _Tally, raw: dict[bytes, bytes]) -> None:
        ts_text = _text(raw.get(b"ts"))
        try:
            ts = datetime.fromisoformat(ts_text)
        except ValueError:
            return
        if ts < tally.since:
            return
        kind = _text(raw.get(b"type"))
        incident_id = _text(raw.get(b"incident_id"))
        if kind in ("incident.created", "incident.split"):
            tally.incidents += 1
            return
        if kind == "whistle.sounded":
            tally.whistles += 1
            return
        if not (kind.startswith(("assignment.", "unit.status", "greenwave."))):
            return
        try:
            data = orjson.loads(raw.get(b"data", b"{}"))
        except orjson.JSONDecodeError:
            return
        if not isinstance(data, dict):
            return
        unit_id = str(data.get("unit_id") or "")
        if kind == "assignment.created" and unit_id:
            tally.assignments += 1
            tally.assigned_at[(incident_id, unit_id)] = ts
        elif kind == "unit.status" and data.get("status") == "on_scene" and unit_id:
            started = tally.assigned_at.pop((incident_id, unit_id), None)
            if started is not None:
                tally.arrivals += 1
                tally.arrival_sum_s += max(0.0, (ts - started) / timedelta(seconds=1))
        elif kind.startswith("greenwave.") and data.get("status") in _GRANTED:
            request_id = str(data.get("request_id") or "")
            if request_id:
                tally.granted.add(request_id)
                if data.get("status") == "served":
                    tally.served.add(request_id)
