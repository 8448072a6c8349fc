"""Who is calling: tokens verified, revocations honoured, repeated failures locked out.

Every REST request and websocket session is authenticated here. A token must be well
signed, unexpired, not longer-lived than the deployment allows (:func:`dispatch.auth.verify`)
and not revoked: revocations (one token by its id, or every token of a subject or a role
issued up to a moment) live in Redis, so they hold on every instance, and each is an event
(``token.revoked``) on which every instance's push hub closes the sockets it ends.

An address that fails authentication ``auth_failures_max`` times within
``auth_failure_window_s`` is locked out (429 with Retry-After) for ``auth_lockout_s``; the
lockout is written to the audit log (``auth.lockout``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from dispatch.auth import Revocation, revocation_fields, verify
from dispatch.errors import AuthError, RateLimitedError, StoreError
from dispatch.events import AuthLockout, EventType, TokenRevoked
from dispatch.infra.store import Store
from dispatch.models import Principal
from dispatch.settings import Settings

log = logging.getLogger(__name__)


class Access:
    """Authenticates callers and keeps the revocation list."""

    def __init__(self, store: Store, settings: Settings, *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    async def authenticate(self, token: str, *, client: str) -> Principal:
        """The verified, unrevoked principal of ``token`` presented from address ``client``.

        Raises:
            RateLimitedError: the address is locked out.
            AuthError: the token is not good (the failure is counted).
        """
        keys = self.store.keys
        locked_s = await self.store.held_for(keys.auth_lock(client))
        if locked_s:
            raise RateLimitedError(
                f"too many failed sign-ins from {client}; try again in {locked_s} s",
                retry_after_s=locked_s,
            )
        try:
            who = verify(self.settings.secret, token, max_ttl_s=self.settings.token_max_ttl_s)
            if await self.revoked(who):
                raise AuthError("token revoked")
        except AuthError:
            await self._failed(client)
            raise
        return who

    async def revoked(self, who: Principal) -> bool:
        """Whether a revocation covers ``who``'s token (one round trip)."""
        raws = await self.store.hash_fields(self.store.keys.revoked, revocation_fields(who))
        return any(Revocation.model_validate_json(r).covers(who) for r in raws if r is not None)

    async def revoke(self, revocation: Revocation, *, actor: str) -> Revocation:
        """Record a revocation (replacing one of the same key) and announce it."""
        keys = self.store.keys
        tx = self.store.tx()
        tx.hset(keys.revoked, {revocation.field(): revocation.model_dump_json()})
        tx.event(
            EventType.TOKEN_REVOKED,
            TokenRevoked(revocation=revocation),
            actor=actor,
            ts=self.clock(),
        )
        await self.store.commit(tx)
        log.warning("tokens revoked by %s: %s", actor, revocation.field())
        return revocation

    async def _failed(self, client: str) -> None:
        keys = self.store.keys
        s = self.settings
        try:
            count = await self.store.count_failure(
                keys.auth_failures(client), window_s=s.auth_failure_window_s
            )
            if count < s.auth_failures_max:
                return
            await self.store.hold(keys.auth_lock(client), seconds=s.auth_lockout_s)
            now = self.clock()
            tx = self.store.tx()
            tx.event(
                EventType.AUTH_LOCKOUT,
                AuthLockout(
                    client=client,
                    failures=count,
                    until=now + timedelta(seconds=s.auth_lockout_s),
                ),
                actor=f"client:{client}",
                ts=now,
            )
            await self.store.commit(tx)
            log.warning("sign-ins from %s locked out after %d failures", client, count)
        except StoreError as exc:
            # Counting failures must never turn a 401 into a 503.
            log.warning("could not count a failed sign-in from %s: %s", client, exc)
