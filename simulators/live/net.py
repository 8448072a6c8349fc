"""The live drill's wire: websocket sessions that resume from their last event, and tokens.

A :class:`Session` is one client of ``/ws`` (a terminal, the signal gateway, a coordinator, the
console). It connects with its token, hands every server message to its handler in order,
remembers the last event id and, when the connection drops, reconnects with ``last_id`` so no
event is lost (the service replays from its log). Handlers are plain functions: anything slow
they start as a task of their own, so a session never stops reading (a client that falls
behind is cut off with 4408).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from dispatch.auth import mint
from dispatch.models import Agency, Role

from ..errors import LiveError

log = logging.getLogger(__name__)

Message = dict[str, Any]
Handler = Callable[[Message], None]
# Control messages (no event id to resume from) and replies to the client's own messages.
_CONTROL = frozenset({"ready", "resync", "heartbeat", "subscribed", "pong", "error"})
CLOSE_UNAUTHORIZED = 4401


class Tokens:
    """Mints the drill's tokens from the service secret (one per principal, reused)."""

    def __init__(self, secret: str, *, ttl_s: int) -> None:
        self.secret = secret
        self.ttl_s = ttl_s
        self._cache: dict[tuple[Role, Agency, str, tuple[str, ...]], str] = {}

    def get(self, role: Role, agency: Agency, sub: str, scope: tuple[str, ...] = ()) -> str:
        key = (role, agency, sub, scope)
        token = self._cache.get(key)
        if token is None:
            token = mint(
                self.secret, role=role, agency=agency, sub=sub, ttl_s=self.ttl_s, scope=scope
            )
            self._cache[key] = token
        return token

    def bearer(self, role: Role, agency: Agency, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.get(role, agency, sub)}"}


def ws_base(url: str) -> str:
    """``http://host:port`` -> ``ws://host:port/ws``."""
    base = url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/ws"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + "/ws"
    return base + "/ws"


class Session:
    """One websocket client that resumes from its last event id after a drop.

    Args:
        url: ``ws://host:port/ws``.
        token: the client's bearer token.
        name: for logs.
        handler: called with every server message, in order (must not block).
        retries: reconnect attempts in a row before giving up.
    """

    def __init__(
        self, url: str, token: str, name: str, handler: Handler, *, retries: int = 20
    ) -> None:
        self.url = url
        self.token = token
        self.name = name
        self.handler = handler
        self.retries = retries
        self.ready = asyncio.Event()
        self.last_id: str | None = None
        self.connects = 0
        self.errors: list[Message] = []
        self._ws: ClientConnection | None = None
        self._closing = False

    async def run(self) -> None:
        """Read until :meth:`close`; reconnect (resuming) when the connection drops."""
        failures = 0
        while not self._closing:
            query = f"?token={quote(self.token)}"
            if self.last_id is not None:
                query += f"&last_id={quote(self.last_id)}"
            try:
                async with connect(
                    self.url + query, compression=None, proxy=None, open_timeout=15, max_size=2**24
                ) as ws:
                    self._ws = ws
                    self.connects += 1
                    failures = 0
                    async for raw in ws:
                        self._dispatch(raw)
                    code = ws.close_code
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as exc:
                code = exc.rcvd.code if isinstance(exc, ConnectionClosed) and exc.rcvd else None
                if isinstance(exc, InvalidStatus):
                    raise LiveError(f"{self.name}: websocket refused: {exc}") from exc
                log.info("%s: connection lost (%s)", self.name, exc)
            finally:
                self._ws = None
            if self._closing:
                return
            if code == CLOSE_UNAUTHORIZED:
                raise LiveError(f"{self.name}: token refused by the service (4401)")
            failures += 1
            if failures > self.retries:
                raise LiveError(f"{self.name}: could not reconnect after {self.retries} tries")
            await asyncio.sleep(min(0.2 * failures, 2.0))

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "ready":
            self.ready.set()
        elif kind == "error":
            self.errors.append(msg)
            log.debug("%s: error reply %s", self.name, msg.get("data"))
        event_id = msg.get("id")
        if isinstance(event_id, str) and event_id and kind not in ("ready", "resync"):
            self.last_id = event_id
        if kind not in _CONTROL:
            self.handler(msg)

    async def send(self, message: Message) -> bool:
        """Send one client message; False when not connected (the message is dropped)."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(orjson.dumps(message).decode())
        except ConnectionClosed:
            return False
        return True

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.close()
