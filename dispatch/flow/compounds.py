"""The compounds as stored: write them (a file's load, a REST put), read them, and keep the
:class:`~dispatch.core.compounds.CompoundIndex` intake locates incidents with.

Each compound is an object ``compound:{id}`` (version and JSON) listed in ``compounds``;
every write bumps ``compounds:version``, so a reader rebuilds its index only after a change
(one HGET per look-up otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from dispatch.core.compounds import DEFAULT_GATE_DISTANCE_M, Compound, CompoundIndex
from dispatch.events import CompoundsUpdated, EventType
from dispatch.infra.store import Store


class CompoundBook:
    """Reads and writes the compounds through the store."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        gate_distance_m: float = DEFAULT_GATE_DISTANCE_M,
    ) -> None:
        self.store = store
        self.clock = clock
        self.gate_distance_m = gate_distance_m
        self._cached: tuple[int, CompoundIndex] | None = None

    async def put(self, compounds: Sequence[Compound], *, actor: str, source: str) -> int:
        """Write (create or replace) ``compounds`` in one commit. Returns how many."""
        keys = self.store.keys
        tx = self.store.tx()
        for compound in compounds:
            version = await self.store.version(keys.compound(compound.id))
            tx.put(keys.compound(compound.id), compound, version + 1)
            tx.sadd(keys.compound_index, compound.id)
        tx.hincrby(keys.compounds_version, "v")
        tx.event(
            EventType.COMPOUNDS_UPDATED,
            CompoundsUpdated(ids=[c.id for c in compounds][:1000], source=source),
            actor=actor,
            ts=self.clock(),
        )
        await self.store.commit(tx)
        return len(compounds)

    async def get(self, compound_id: str) -> Compound | None:
        return await self.store.get(Compound, self.store.keys.compound(compound_id))

    async def all(self) -> list[Compound]:
        keys = self.store.keys
        ids = await self.store.members(keys.compound_index)
        found = await self.store.get_many(Compound, [keys.compound(i) for i in ids])
        return [c for c in found if c is not None]

    async def index(self) -> CompoundIndex:
        """The index of every compound, rebuilt only when a compound changed."""
        version = await self.store.version(self.store.keys.compounds_version)
        if self._cached is not None and self._cached[0] == version:
            return self._cached[1]
        built = CompoundIndex.of(await self.all(), gate_distance_m=self.gate_distance_m)
        self._cached = (version, built)
        return built

    async def locate(self, lat: float, lon: float) -> str | None:
        """The compound an incident at ``(lat, lon)`` is in, if any."""
        return (await self.index()).locate(lat, lon)
