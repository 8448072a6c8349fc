"""Units, hospitals and duty rosters in Redis (the adapters around the pure core's records)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatch.codec import validation_reason
from dispatch.constants import Keys
from dispatch.core.rosters import Duty, RosterEntry, RotationRule, duty_day, on_duty
from dispatch.errors import ConflictError, InvalidInputError, NotFoundError
from dispatch.events import EventType, HospitalsUpdated, RosterUpdated, UnitUpdated
from dispatch.infra.store import Store, Tx
from dispatch.models import (
    ID_PATTERN,
    Agency,
    Hospital,
    Latitude,
    Longitude,
    Position,
    Unit,
    UnitStatus,
    UnitType,
)


class FleetUnit(BaseModel):
    """A unit as a fleet file gives it: where it is based and, by default, where it is now."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    agency: Agency
    type: UnitType
    lat: Latitude
    lon: Longitude
    station: str | None = Field(None, max_length=120)
    callsign: str | None = Field(None, max_length=40)
    status: UnitStatus = UnitStatus.AVAILABLE


def parse_fleet(data: Any) -> list[FleetUnit]:
    """Validate a fleet file (a JSON list of units); InvalidInputError names the bad entry."""
    if not isinstance(data, list):
        raise InvalidInputError("a fleet file is a JSON list of units")
    out: list[FleetUnit] = []
    seen: set[str] = set()
    for n, item in enumerate(data):
        try:
            unit = FleetUnit.model_validate(item)
        except ValidationError as exc:
            raise InvalidInputError(f"unit [{n}]: {validation_reason(exc)}") from exc
        if unit.id in seen:
            raise InvalidInputError(f"unit [{n}]: id {unit.id} appears twice")
        seen.add(unit.id)
        out.append(unit)
    return out


def parse_hospitals(data: Any) -> list[Hospital]:
    """Validate a hospitals file (a JSON list). Raises InvalidInputError naming the bad entry."""
    if not isinstance(data, list):
        raise InvalidInputError("a hospitals file is a JSON list")
    out: list[Hospital] = []
    for n, item in enumerate(data):
        try:
            out.append(Hospital.model_validate(item))
        except ValidationError as exc:
            raise InvalidInputError(f"hospital [{n}]: {validation_reason(exc)}") from exc
    return out


def stage_unit(tx: Tx, keys: Keys, unit: Unit) -> None:
    """Write a unit as part of ``tx`` and bump the fleet's version (every unit write must)."""
    tx.put(keys.unit(unit.id), unit, unit.version)
    tx.hincrby(keys.fleet_version, "v")


class Fleet:
    """Reads and writes units, hospitals and rosters; every change is one event.

    Ranking reads the whole fleet for every incident; parsing hundreds of unit records each
    time cost more than the road search itself. The unit records are cached per instance
    and re-read only when the fleet version (bumped by every unit write) has moved; the
    positions, which change every second, are always read fresh.
    """

    def __init__(self, store: Store, *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self._cached: tuple[str, list[Unit]] | None = None

    # -- units ---------------------------------------------------------------------
    async def get_unit(self, unit_id: str) -> Unit:
        unit = await self.store.get(Unit, self.store.keys.unit(unit_id))
        if unit is None:
            raise NotFoundError(f"no unit {unit_id}")
        fix = await self.store.position(unit_id)
        return unit if fix is None else unit.model_copy(update={"position": fix})

    async def units(self, *, agency: Agency | None = None) -> list[Unit]:
        """Every unit, with its latest position from the terminals' fixes."""
        keys = self.store.keys
        version = await self.store.fleet_version()
        if self._cached is not None and self._cached[0] == version:
            every = self._cached[1]
        else:
            ids = await self.store.members(keys.unit_index)
            found = await self.store.get_many(Unit, [keys.unit(i) for i in ids])
            every = [u for u in found if u is not None]
            self._cached = (version, every)
        units = [u for u in every if agency is None or u.agency is agency]
        if not units:
            return units
        fixes = await self.store.positions([u.id for u in units])
        return [
            u if fix is None else u.model_copy(update={"position": fix})
            for u, fix in zip(units, fixes, strict=True)
        ]

    async def position(self, unit_id: str) -> Position | None:
        """The unit's latest fix (from its terminal, else where it was loaded)."""
        fix = await self.store.position(unit_id)
        if fix is not None:
            return fix
        unit = await self.store.get(Unit, self.store.keys.unit(unit_id))
        return None if unit is None else unit.position

    async def put_unit(self, spec: FleetUnit, *, actor: str) -> Unit:
        """Create or redefine a unit. A live unit keeps its status, position and incident."""
        keys = self.store.keys

        async def attempt() -> Unit:
            current = await self.store.get(Unit, keys.unit(spec.id))
            now = self.clock()
            if current is None:
                unit = Unit(
                    id=spec.id,
                    agency=spec.agency,
                    type=spec.type,
                    callsign=spec.callsign,
                    station=spec.station,
                    station_lat=spec.lat,
                    station_lon=spec.lon,
                    status=spec.status,
                    position=Position(lat=spec.lat, lon=spec.lon, at=now),
                    version=1,
                )
            else:
                unit = current.model_copy(
                    update={
                        "agency": spec.agency,
                        "type": spec.type,
                        "callsign": spec.callsign,
                        "station": spec.station,
                        "station_lat": spec.lat,
                        "station_lon": spec.lon,
                        "version": current.version + 1,
                    }
                )
            tx = self.store.tx()
            tx.expect_version(keys.unit(spec.id), 0 if current is None else current.version)
            stage_unit(tx, keys, unit)
            tx.sadd(keys.unit_index, spec.id)
            tx.event(EventType.UNIT_UPDATED, UnitUpdated(unit=unit), actor=actor, ts=now)
            await self.store.commit(tx)
            return unit

        return await self.store.retry(attempt, what=f"unit {spec.id}")

    # -- hospitals -----------------------------------------------------------------
    async def put_hospitals(self, hospitals: Sequence[Hospital], *, actor: str) -> None:
        keys = self.store.keys
        tx = self.store.tx()
        for h in hospitals:
            tx.put(keys.hospital(h.id), h, 1)
            tx.sadd(keys.hospital_index, h.id)
        tx.event(
            EventType.HOSPITALS_UPDATED,
            HospitalsUpdated(hospitals=list(hospitals)),
            actor=actor,
            ts=self.clock(),
        )
        await self.store.commit(tx)

    async def hospitals(self) -> list[Hospital]:
        ids = await self.store.members(self.store.keys.hospital_index)
        found = await self.store.get_many(Hospital, [self.store.keys.hospital(i) for i in ids])
        return [h for h in found if h is not None]

    # -- rosters -------------------------------------------------------------------
    async def put_roster(
        self, entries: Sequence[RosterEntry], rules: Sequence[RotationRule], *, actor: str
    ) -> None:
        """Add or replace roster entries (by date and agency) and rules (by agency and start)."""
        keys = self.store.keys
        tx = self.store.tx()
        if entries:
            tx.hset(
                keys.roster_entries,
                {f"{e.date.isoformat()}:{e.agency.value}": e.model_dump_json() for e in entries},
            )
        if rules:
            tx.hset(
                keys.roster_rules,
                {f"{r.agency.value}:{r.start.isoformat()}": r.model_dump_json() for r in rules},
            )
        tx.event(
            EventType.ROSTER_UPDATED,
            RosterUpdated(entries=list(entries), rules=list(rules)),
            actor=actor,
            ts=self.clock(),
        )
        await self.store.commit(tx)

    async def duty(self, day: date | None = None) -> tuple[date, dict[Agency, Duty]]:
        """Who is on duty on ``day`` (default: the duty day now, shift change 08:00 Shanghai)."""
        day = day or duty_day(self.clock())
        raw_entries, raw_rules = await self.store.roster(day, [a.value for a in Agency])
        entries = [RosterEntry.model_validate_json(r) for r in raw_entries]
        rules = [RotationRule.model_validate_json(r) for r in raw_rules]
        try:
            return day, on_duty(day, entries, rules)
        except ValueError as exc:
            raise ConflictError(f"roster for {day} is ambiguous: {exc}") from exc
