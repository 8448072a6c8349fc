"""EIDOs from other centres onto the call intake stream, each call exactly once.

A call an EIDO reports goes through :meth:`Store.add_call`, so it is validated, merged and
dead-lettered like any call. The hash ``{ns}:eido:received`` remembers, per
``<EIDO id>|<call id>``, the stream entry it became: posting an EIDO again adds nothing.

Exactly once despite a crash: a call is first *claimed* (a commit that only succeeds if no one
holds the key), then added, then the claim is replaced by the stream id. A claim older than
``claim_timeout_s`` is taken to be a dead process's and may be taken over; were that process
only slow, the call would reach the stream twice and intake's own ``(centre, call_id)``
idempotency would still make it one call of one incident.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dispatch.errors import StoreError
from dispatch.infra.store import Store, VersionConflict
from dispatch.interop.eido import EidoCall

_CLAIM = "claim:"


class Outcome(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"
    PENDING = "pending"


@dataclass(frozen=True)
class Taken:
    """What became of one call of an EIDO."""

    key: str
    call_key: str
    outcome: Outcome
    stream_id: str | None


class EidoIntake:
    """Adds the calls of EIDOs to the intake stream, once per EIDO call.

    Args:
        store: the state store.
        clock: the time source (claims age by it).
        claim_timeout_s: after this a claim is a dead process's.
    """

    def __init__(
        self, store: Store, *, clock: Callable[[], datetime], claim_timeout_s: float = 30.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.claim_timeout_s = claim_timeout_s

    async def take(self, calls: Sequence[EidoCall]) -> list[Taken]:
        """Add each call not seen before; say what became of each.

        Raises:
            StoreError: Redis failed (the calls not yet added stay unclaimed: post again).
        """
        return [await self._one(call) for call in calls]

    def _claim(self) -> str:
        return f"{_CLAIM}{self.clock().timestamp()!r}:{secrets.token_hex(4)}"

    async def _one(self, item: EidoCall) -> Taken:
        index = self.store.keys.eido_received
        claim = self._claim()
        try:
            await self.store.commit(
                self.store.tx().expect_absent(index, item.key).hset(index, {item.key: claim})
            )
        except VersionConflict as conflict:
            held = conflict.current
            if not held.startswith(_CLAIM):
                return Taken(item.key, item.call.key, Outcome.DUPLICATE, held)
            if not self._stale(held):
                return Taken(item.key, item.call.key, Outcome.PENDING, None)
            try:
                await self.store.commit(
                    self.store.tx()
                    .expect_field(index, item.key, held)
                    .hset(index, {item.key: claim})
                )
            except VersionConflict:
                return Taken(item.key, item.call.key, Outcome.PENDING, None)
        try:
            stream_id = await self.store.add_call(item.call)
        except StoreError:
            await self._release(item.key, claim)
            raise
        # Taken over meanwhile (VersionConflict): the call is on the stream all the same.
        with contextlib.suppress(VersionConflict):
            await self.store.commit(
                self.store.tx()
                .expect_field(index, item.key, claim)
                .hset(index, {item.key: stream_id})
            )
        return Taken(item.key, item.call.key, Outcome.QUEUED, stream_id)

    def _stale(self, held: str) -> bool:
        try:
            at = float(held[len(_CLAIM) :].split(":", 1)[0])
        except ValueError:
            return True
        return self.clock().timestamp() - at > self.claim_timeout_s

    async def _release(self, key: str, claim: str) -> None:
        index = self.store.keys.eido_received
        # If even this fails, the claim ages out and posting again takes it over.
        with contextlib.suppress(VersionConflict, StoreError):
            await self.store.commit(
                self.store.tx().expect_field(index, key, claim).hdel(index, key)
            )
