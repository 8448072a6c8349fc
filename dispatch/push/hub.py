"""The websocket fan-out hub: one event-log reader per instance, pushing to its own clients.

Every instance runs one :meth:`Hub.run` task doing a blocking ``XREAD`` on ``{ns}:events``
from the last id it has seen (not a consumer group: every instance needs every event). Each
event is decoded and serialised **once** (orjson, the stored ``data`` embedded verbatim) and
the same text is offered to every client whose :class:`~dispatch.core.audience.Audience`
wants it. Offering never awaits: each client has a bounded queue drained by its own sender
task, and a client whose queue is full is cut (:attr:`CloseReason.SLOW`) rather than allowed
to hold up the others or grow memory (the advice of python-websockets'
``docs/topics/broadcast.rst``; encode/broadcaster's subscriber queues are unbounded).

Resume: :meth:`Hub.attach` registers a client in *buffering* mode at the hub's current
position; :meth:`Hub.catch_up` replays ``(last_id, position]`` from Redis, then drains the
buffer skipping ids already covered, then switches the client live. Between the two no event
is lost (the buffer starts exactly where the replay ends) and none is sent twice.

The hub knows no close codes: it says *why* a client must go (:class:`CloseReason`) and
``dispatch.api.ws`` maps that to a code.

Extending (positions, signal controllers):

- client messages: ``hub.on("position", PositionMessage, roles=[Role.TERMINAL])(handler)``,
  with ``async def handler(client: Client, msg: PositionMessage) -> None``;
- server pushes that are not on the event log: :meth:`Hub.push` (a pre-serialised frame and a
  predicate over clients, e.g. batched position frames to every screen) or :meth:`Hub.publish`
  (an :class:`~dispatch.core.audience.EventView` so role rules and subscriptions apply).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from dispatch.auth import Revocation
from dispatch.core import policy
from dispatch.core.audience import (
    Audience,
    EventView,
    IncidentInfo,
    StreamKey,
    embedded_incident,
    incident_info,
    key_text,
    stream_key,
    view_of,
)
from dispatch.core.policy import ALLOW, Action, Decision
from dispatch.errors import StoreError
from dispatch.events import EventType
from dispatch.infra.store import Store, text
from dispatch.models import Principal, Role
from dispatch.push.frames import Decoded, decode_entry, frame, least_data, redacted
from dispatch.settings import HubConfig

log = logging.getLogger(__name__)

REVOKED = EventType.TOKEN_REVOKED.value

M = TypeVar("M", bound=BaseModel)
Sender = Callable[[str], Awaitable[None]]


class CloseReason(StrEnum):
    """Why the hub or a handler ends a client's session (the edge maps these to close codes)."""

    SLOW = "slow"  # its queue or replay buffer overflowed: reload and resume
    EXPIRED = "expired"  # its token expired while connected
    FORBIDDEN = "forbidden"  # it asked for what its role or scope does not allow
    GONE = "gone"  # the peer went away (no close frame to send)


@dataclass(frozen=True, slots=True)
class MessageHandler(Generic[M]):
    """How one client message type is validated and handled, and which action it is."""

    model: type[M]
    handle: Callable[[Client, M], Awaitable[None]]
    action: Action | None  # None: any authenticated client may send it (ping, subscribe)

    def admits(self, who: Principal) -> Decision:
        return ALLOW if self.action is None else policy.admits(who, self.action)


@dataclass
class HubStats:
    events: int = 0
    frames: int = 0
    cut: dict[str, int] = field(default_factory=dict)
    read_errors: int = 0


class Client:
    """One connected, authenticated websocket session as the hub sees it."""

    def __init__(self, hub: Hub, principal: Principal, *, client_id: int) -> None:
        self.hub = hub
        self.id = client_id
        self.principal = principal
        self.audience = Audience(
            role=principal.role,
            sub=principal.sub,
            agency=principal.agency,
            scope=frozenset(principal.scope),
        )
        self.queue: asyncio.Queue[str] = asyncio.Queue(hub.config.queue_size)
        # Events seen while the client replays; None once it is live.
        self.backlog: list[tuple[EventView, str]] | None = []
        self.start_key: StreamKey = hub.position_key
        self.reason: CloseReason | None = None
        self.detail = ""
        self.done = asyncio.Event()

    @property
    def live(self) -> bool:
        return self.backlog is None and self.reason is None

    def offer(self, text: str) -> bool:
        """Queue a frame without waiting; a full queue cuts the client. False if not queued."""
        if self.reason is not None:
            return False
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.hub.cut(self, CloseReason.SLOW, "fell behind")
            return False
        return True

    def reply(self, type: str, data: Any = None, *, ref: str | None = None) -> None:
        """Send a control message (``ack.ok``, ``error``, ...); ``ref`` echoes the request's."""
        body = dict(data or {})
        if ref is not None:
            body["ref"] = ref
        self.offer(frame(type, body))

    def close(self, reason: CloseReason, detail: str = "") -> None:
        self.hub.cut(self, reason, detail)


class Hub:
    """Reads the event log once per instance and fans each event out to this instance's clients."""

    def __init__(
        self, store: Store, *, config: HubConfig | None = None, instance: str = ""
    ) -> None:
        self.store = store
        self.config = config or HubConfig()
        self.instance = instance
        self.handlers: dict[str, MessageHandler[Any]] = {}
        self.stats = HubStats()
        self.ready = asyncio.Event()
        self.position_key: StreamKey = (0, 0)
        self._clients: dict[int, Client] = {}
        self._ids = itertools.count(1)
        self._places: OrderedDict[str, IncidentInfo] = OrderedDict()
        self._redacted: OrderedDict[str, str] = OrderedDict()
        self._least_data: OrderedDict[str, str] = OrderedDict()
        self._last_heartbeat = time.monotonic()

    # -- registry ------------------------------------------------------------------
    def on(
        self, type: str, model: type[M], *, action: Action | None = None
    ) -> Callable[[Callable[[Client, M], Awaitable[None]]], Callable[[Client, M], Awaitable[None]]]:
        """Register the handler of client messages ``{"type": type, ...}`` (decorator).

        ``model`` validates the whole message; ``action`` is what sending it asks for (a token
        the policy does not admit to it is refused with :attr:`CloseReason.FORBIDDEN`; the
        handler checks the object). A later registration replaces one.
        """

        def register(
            fn: Callable[[Client, M], Awaitable[None]],
        ) -> Callable[[Client, M], Awaitable[None]]:
            self.handlers[type] = MessageHandler(model, fn, action)
            return fn

        return register

    # -- clients -------------------------------------------------------------------
    @property
    def position(self) -> str:
        """The id of the last event this instance has fanned out."""
        return key_text(self.position_key)

    @property
    def clients(self) -> list[Client]:
        return list(self._clients.values())

    def attach(self, principal: Principal) -> Client:
        """Register a client, buffering events from the current position until it is live."""
        client = Client(self, principal, client_id=next(self._ids))
        self._clients[client.id] = client
        return client

    def detach(self, client: Client) -> None:
        self._clients.pop(client.id, None)
        if client.reason is None:
            client.reason = CloseReason.GONE
        client.backlog = None
        client.done.set()

    def cut(self, client: Client, reason: CloseReason, detail: str = "") -> None:
        """End a client's session: it stops receiving now; its connection closes it."""
        if client.reason is not None:
            return
        client.reason = reason
        client.detail = detail
        self._clients.pop(client.id, None)
        client.backlog = None
        # Free what it had queued; nothing more will be sent to it.
        while not client.queue.empty():
            client.queue.get_nowait()
        self.stats.cut[reason.value] = self.stats.cut.get(reason.value, 0) + 1
        client.done.set()
        log.info("client %s (%s) cut: %s %s", client.id, client.principal.sub, reason, detail)

    def push(self, text: str, where: Callable[[Client], bool] | None = None) -> int:
        """Offer a pre-serialised frame to every live client ``where`` accepts; returns how many.

        For messages that are not on the event log (batched positions to screens, ...): they
        are not replayed on resume and clients still replaying miss them.
        """
        sent = 0
        for client in list(self._clients.values()):
            if client.live and (where is None or where(client)) and client.offer(text):
                sent += 1
        self.stats.frames += sent
        return sent

    def publish(self, view: EventView, text: str) -> int:
        """Offer a frame to every live client whose role rule and subscription want ``view``."""
        return self.push(text, lambda c: c.audience.wants(view))

    # -- the reader ------------------------------------------------------------------
    async def start(self) -> None:
        """Take the stream's current end as the starting position."""
        self.position_key = await self.head()
        self.ready.set()

    async def head(self) -> StreamKey:
        """The id of the newest event ever added (``0-0`` before the first)."""
        info = await self.store.event_log_info()
        return (0, 0) if info is None else stream_key(text(info["last-generated-id"]))

    async def run(self, stop: asyncio.Event) -> None:
        """Read the event log until ``stop`` is set; Redis errors are logged and retried."""
        while not stop.is_set():
            try:
                if not self.ready.is_set():
                    await self.start()
                entries = await self.store.read_events(
                    self.position, count=self.config.read_batch, block_ms=self.config.block_ms
                )
                if entries:
                    await self._deliver([decode_entry(i, raw) for i, raw in entries])
                self._heartbeat()
            except StoreError as exc:
                self.stats.read_errors += 1
                log.warning("hub: event log read failed: %s; retrying in 1 s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def _deliver(self, batch: list[Decoded]) -> None:
        await self._learn_places(batch)
        # No await from here to the end: a client attaching now sees either none or all of
        # this batch in its buffer, and its start position is consistent with that.
        clients = list(self._clients.values())
        backlog_max = self.config.backlog_max
        for d in batch:
            view = self._view(d, learn=True)
            if d.type == REVOKED:
                self._revoke(d)
            for c in clients:
                if c.reason is not None:
                    continue
                if c.backlog is not None:
                    if len(c.backlog) >= backlog_max:
                        self.cut(c, CloseReason.SLOW, "replay buffer overflow")
                    else:
                        c.backlog.append((view, self.text_for(c, d)))
                elif c.audience.wants(view) and c.offer(self.text_for(c, d)):
                    self.stats.frames += 1
            self.position_key = d.key
            self.stats.events += 1

    def text_for(self, client: Client, d: Decoded) -> str:
        """The event's wire text for this client: as stored, or redacted for an observer
        (serialised once per event however many observers there are)."""
        if client.principal.role is Role.PROPERTY:
            return self._least(d)
        if client.principal.role is not Role.OBSERVER:
            return d.text
        cached = self._redacted.get(d.id)
        if cached is None:
            cached = redacted(d)
            self._redacted[d.id] = cached
            while len(self._redacted) > 1000:
                self._redacted.popitem(last=False)
        return cached

    def _least(self, d: Decoded) -> str:
        # A property team's least view, serialised once per event like the observers'.
        cached = self._least_data.get(d.id)
        if cached is None:
            cached = least_data(d)
            self._least_data[d.id] = cached
            while len(self._least_data) > 1000:
                self._least_data.popitem(last=False)
        return cached

    def _revoke(self, d: Decoded) -> None:
        """A revocation ends the sessions of every token it covers, on every instance."""
        try:
            revocation = Revocation.model_validate(d.data.get("revocation"))
        except ValidationError:
            log.warning("event %s: unreadable revocation; no session cut", d.id)
            return
        for c in list(self._clients.values()):
            if revocation.covers(c.principal):
                self.cut(c, CloseReason.EXPIRED, "token revoked")

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < self.config.heartbeat_s:
            return
        self._last_heartbeat = now
        wall = time.time()
        text = frame("heartbeat", {"instance": self.instance}, id=self.position)
        for c in list(self._clients.values()):
            if c.principal.exp <= wall:
                self.cut(c, CloseReason.EXPIRED, "token expired")
            elif c.live:
                c.offer(text)

    # -- incident places -------------------------------------------------------------
    def _view(self, d: Decoded, *, learn: bool) -> EventView:
        known = self._places.get(d.incident_id) if d.incident_id else None
        view = view_of(d.id, d.key, d.type, d.incident_id, d.data, known)
        if learn and d.incident_id:
            embedded = embedded_incident(d.data)
            if embedded is not None:
                self._remember(d.incident_id, embedded if known is None else known.merged(embedded))
            elif known is not None:
                self._places.move_to_end(d.incident_id)
        return view

    def _remember(self, incident_id: str, info: IncidentInfo) -> None:
        self._places[incident_id] = info
        self._places.move_to_end(incident_id)
        while len(self._places) > self.config.cache_size:
            self._places.popitem(last=False)

    async def _learn_places(self, batch: Iterable[Decoded]) -> None:
        """Read from the store the incidents of ``batch`` the cache does not know."""
        missing = {
            d.incident_id
            for d in batch
            if d.incident_id
            and d.incident_id not in self._places
            and embedded_incident(d.data) is None
        }
        if not missing:
            return
        ids = sorted(missing)
        keys = self.store.keys
        try:
            raws = await self.store.raw_many([keys.incident(i) for i in ids])
        except StoreError as exc:
            log.warning("hub: cannot read incidents for filtering: %s", exc)
            return
        for incident_id, raw in zip(ids, raws, strict=True):
            info = IncidentInfo()
            if raw is not None:
                with contextlib.suppress(orjson.JSONDecodeError):
                    record = orjson.loads(raw)
                    if isinstance(record, dict):
                        info = incident_info(record)
            self._remember(incident_id, info)

    # -- resume ------------------------------------------------------------------------
    async def retained(self, cursor: StreamKey) -> bool:
        """Whether every event after ``cursor`` is still in the log (nothing trimmed past it).

        False also for an id newer than any event ever added (another stream, a flushed
        database). An id just before the oldest entry counts as lost once anything has been
        trimmed: the log cannot tell a gap from no gap there, so the client resyncs.
        """
        info = await self.store.event_log_info()
        if info is None:
            return cursor == (0, 0)
        if cursor > stream_key(text(info["last-generated-id"])):
            return False
        added = info.get("entries-added")
        if added is not None and int(added) == int(info["length"]):
            return True  # nothing ever removed
        first = info.get("first-entry")
        if not first:
            return False
        return cursor >= stream_key(text(first[0]))

    async def catch_up(self, client: Client, last_id: str | None, send: Sender) -> None:
        """Bring an attached client from ``last_id`` to live, sending with ``send``.

        Sends ``resync`` when ``last_id`` is unknown or older than the retained log, then
        ``ready`` (its ``id`` the position the client is now at), then buffered events, and
        leaves the client live. Missed events are replayed in order, none twice.
        """
        floor = client.start_key
        replayed = 0
        resync = False
        if last_id is not None:
            try:
                cursor = stream_key(last_id)
            except ValueError:
                resync = True
            else:
                if not await self.retained(cursor):
                    resync = True
                elif cursor >= floor:
                    # This instance's reader is behind the client (it came from a faster
                    # instance): skip the buffered events it already has.
                    floor = cursor
                else:
                    replayed, resync = await self._replay(client, cursor, floor, send)
        if resync:
            await send(frame("resync", {"reason": "events missed beyond the retained log"}))
        await send(
            frame(
                "ready",
                {"instance": self.instance, "replayed": replayed, "resync": resync},
                id=key_text(floor),
            )
        )
        while client.backlog:
            batch, client.backlog = client.backlog, []
            for view, body in batch:
                if view.key > floor and client.audience.wants(view):
                    await send(body)
        if client.reason is None:
            client.backlog = None  # live from here: the reader offers to its queue

    async def _replay(
        self, client: Client, cursor: StreamKey, upto: StreamKey, send: Sender
    ) -> tuple[int, bool]:
        sent = 0
        while cursor < upto:
            entries = await self.store.event_entries(
                f"({key_text(cursor)}", key_text(upto), count=self.config.replay_page
            )
            # Checked after the read: if nothing was trimmed past the cursor by now, nothing
            # after it was trimmed before the read either (trimming only removes the oldest).
            if not await self.retained(cursor):
                return sent, True
            if not entries:
                break
            for entry_id, raw in entries:
                d = decode_entry(entry_id, raw)
                if d.incident_id and d.incident_id not in self._places:
                    await self._learn_places([d])
                view = self._view(d, learn=False)
                if client.reason is not None:
                    return sent, False
                if client.audience.wants(view):
                    await send(self.text_for(client, d))
                    sent += 1
                cursor = d.key
        return sent, False
