"""``/ws``: the websocket edge of the hub. Authentication, client messages and close codes.

Authenticate by offering the subprotocols ``["yishao", "yishao.token.<T>"]`` (what a browser
does: the token stays out of every URL and log), or by sending ``{"type": "auth", "token": T,
"last_id": ID}`` as the first message (within ``YISHAO_WS_AUTH_TIMEOUT_S``); ``/ws?token=T``
still works for scripts (the access log scrubs it). A browser ``Origin`` must be the service's
own or listed in ``YISHAO_WS_ORIGINS``. ``last_id`` may be a query parameter. The server
sends ``resync`` if it cannot replay from ``last_id``, ``ready`` (``id`` = the position the
client is at), the missed events, and then live events. Every server message is
``{type, id, ts, data}``; event messages also carry ``incident_id`` and ``actor``, and their
``id`` is the event-log id to resume from (so is the ``id`` of ``ready`` and ``heartbeat``;
control messages have ``id`` null).

Client messages (each validated; a bad one gets ``error``, the connection stays):

- ``{"type": "subscribe", "agencies"?, "incidents"?, "bbox"?, "intersections"?, "compounds"?}``
  replaces the client's filter (``subscribed``); beyond a signal or property token's scope: 4403.
- ``{"type": "ack", "whistle_id": ...}``: a coordinator acks a summons (``ack.ok`` / ``error``).
- ``{"type": "ping"}`` -> ``pong``.

``?wire=j2735`` (default ``json``): the session also gets a binary frame holding a UPER
SignalRequestMessage after each green-wave event, and may send binary frames holding UPER
SignalStatusMessages (answered ``ssm.ok`` or ``error``); see :mod:`dispatch.api.ws_j2735`.

Any message may carry ``ref`` (echoed in the reply). Close codes:

====  =============================================================================
4401  token missing, bad, expired or revoked (also when it expires or is revoked while
      connected)
4403  the role may not send this message type, a subscription beyond its scope, or a
      browser origin not allowed
4400  an unknown ``wire`` (after an ``error`` frame ``bad_wire``)
4429  too many failed sign-ins from this address: locked out for a while
4408  the client fell behind (its queue or replay buffer overflowed): reload
      ``GET /api/snapshot`` and reconnect with its ``event_id`` as ``last_id``
1011  the service failed; 1013 the hub is not ready (Redis down at start): retry
====  =============================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Literal

import orjson
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from dispatch.api import views
from dispatch.api.ws_j2735 import WIRE_J2735, WIRE_JSON, WIRES, J2735Wire
from dispatch.core import policy
from dispatch.core.audience import Subscription
from dispatch.core.policy import Action, Target
from dispatch.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    StoreError,
    YishaoError,
)
from dispatch.interop.errors import StandardsMissingError
from dispatch.interop.j2735 import codec
from dispatch.interop.schemas import resolve_standards_dir
from dispatch.models import Principal, Role, Unit
from dispatch.push.frames import frame
from dispatch.push.hub import Client, CloseReason, Hub
from dispatch.services import Services

log = logging.getLogger(__name__)

router = APIRouter()

CLOSE_CODES: dict[CloseReason, int] = {
    CloseReason.SLOW: 4408,
    CloseReason.EXPIRED: 4401,
    CloseReason.FORBIDDEN: 4403,
}
CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_LOCKED_OUT = 4429
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_TRY_AGAIN = 1013
CLOSE_INTERNAL = 1011
_ERROR_CODES: list[tuple[type[YishaoError], str]] = [
    (ForbiddenError, "forbidden"),
    (AuthError, "unauthorized"),
    (NotFoundError, "not_found"),
    (ConflictError, "conflict"),
    (StoreError, "unavailable"),
]


class ClientMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    ref: str | None = Field(None, max_length=64, description="echoed in the reply")


class AuthMessage(ClientMessage):
    type: Literal["auth"]
    token: str = Field(max_length=8192)
    last_id: str | None = Field(None, max_length=64)


class SubscribeMessage(ClientMessage, Subscription):
    type: Literal["subscribe"]


class AckMessage(ClientMessage):
    type: Literal["ack"]
    whistle_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}$")


class PingMessage(ClientMessage):
    type: Literal["ping"]


class OutOfScope(ForbiddenError):
    """A role or scope violation: the session ends with 4403 (not just an ``error`` reply)."""


def install_handlers(hub: Hub, svc: Services) -> None:
    """Register the built-in client messages (``subscribe``, ``ack``, ``ping``)."""

    @hub.on("subscribe", SubscribeMessage)
    async def subscribe(client: Client, msg: SubscribeMessage) -> None:
        wanted = Subscription.model_validate(msg.model_dump(exclude={"type", "ref"}))
        try:
            client.audience.subscribe(wanted)
        except ForbiddenError as exc:
            raise OutOfScope(str(exc)) from exc
        client.reply("subscribed", wanted.model_dump(mode="json", exclude_none=True), ref=msg.ref)

    @hub.on("ack", AckMessage, action=Action.ACK_WHISTLE)
    async def ack(client: Client, msg: AckMessage) -> None:
        current = await svc.whistles.get(msg.whistle_id)
        summons = tuple((s.coordinator, s.agency) for s in current.summons)
        decision = policy.decide(client.principal, Action.ACK_WHISTLE, Target(summons=summons))
        if not decision.allowed:
            raise ForbiddenError(decision.reason)
        whistle = await svc.whistles.ack(msg.whistle_id, client.principal)
        mine = [s for s in whistle.summons if s.coordinator == client.principal.sub]
        client.reply(
            "ack.ok",
            {"whistle_id": whistle.id, "summons": [s.model_dump(mode="json") for s in mine]},
            ref=msg.ref,
        )

    @hub.on("ping", PingMessage)
    async def ping(client: Client, msg: PingMessage) -> None:
        client.reply("pong", {"position": client.hub.position}, ref=msg.ref)


def _error(code: str, message: str, *, ref: str | None = None, **extra: Any) -> str:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    if ref is not None:
        body["ref"] = ref
    return frame("error", body)


def _ref(obj: Any) -> str | None:
    ref = obj.get("ref") if isinstance(obj, dict) else None
    return ref if isinstance(ref, str) and len(ref) <= 64 else None


async def handle_text(client: Client, text: str) -> None:
    """Validate one client message and run its handler; every failure becomes a reply."""
    hub = client.hub
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        client.offer(_error("bad_json", "messages are JSON objects with a string 'type'"))
        return
    ref = _ref(obj)
    kind = obj.get("type") if isinstance(obj, dict) else None
    if not isinstance(kind, str):
        client.offer(_error("bad_message", "messages are JSON objects with a string 'type'"))
        return
    handler = hub.handlers.get(kind)
    if handler is None:
        client.offer(
            _error(
                "unknown_type",
                f"unknown message type {kind[:64]!r}",
                ref=ref,
                known=sorted(hub.handlers),
            )
        )
        return
    admitted = handler.admits(client.principal)
    if not admitted.allowed:
        client.close(CloseReason.FORBIDDEN, f"{kind}: {admitted.reason}")
        return
    try:
        msg = handler.model.model_validate(obj)
    except ValidationError as exc:
        problems = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()[:10]
        ]
        client.offer(_error("invalid", f"invalid {kind} message", ref=ref, errors=problems))
        return
    try:
        await handler.handle(client, msg)
    except OutOfScope as exc:
        client.close(CloseReason.FORBIDDEN, str(exc))
    except YishaoError as exc:
        code = next((c for t, c in _ERROR_CODES if isinstance(exc, t)), "error")
        client.offer(_error(code, str(exc), ref=ref))
    except Exception as exc:  # noqa: BLE001 - logged (rate-limited); the socket must live
        _log_failure(kind, exc)
        client.offer(_error("internal", f"the {kind} message could not be handled", ref=ref))


# A failure that hits every message (Redis gone) must not write a traceback per message:
# one full traceback per message type and error type a minute, then a count.
_LOG_EVERY_S = 60.0
_last_logged: dict[tuple[str, str], float] = {}
_suppressed: dict[tuple[str, str], int] = {}


def _log_failure(kind: str, exc: Exception) -> None:
    key = (kind, type(exc).__name__)
    now = time.monotonic()
    if now - _last_logged.get(key, -_LOG_EVERY_S) >= _LOG_EVERY_S:
        skipped = _suppressed.pop(key, 0)
        _last_logged[key] = now
        log.error(
            "handler of %s failed (%d similar failures not logged)", kind, skipped, exc_info=exc
        )
    else:
        _suppressed[key] = _suppressed.get(key, 0) + 1


async def _authenticate(
    websocket: WebSocket, svc: Services, hub: Hub
) -> tuple[Principal, str | None] | None:
    """The caller's principal and ``last_id``: the token from the ``yishao.token.<T>``
    subprotocol, a first ``auth`` message, or (kept for scripts; scrubbed from the access
    log) the ``token`` query parameter.

    Closes with 4401 (4429 when the address is locked out) and returns None when the token is
    missing, bad, expired or revoked.
    """
    token = _subprotocol_token(websocket) or websocket.query_params.get("token")
    last_id = websocket.query_params.get("last_id")
    deadline = time.monotonic() + hub.config.auth_timeout_s
    while token is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            await _close(websocket, CLOSE_UNAUTHORIZED, "no auth message in time", hub)
            return None
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout=remaining)
        except TimeoutError:
            continue
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        obj: Any = None
        with contextlib.suppress(orjson.JSONDecodeError, TypeError):
            obj = orjson.loads(text) if text is not None else None
        try:
            auth = AuthMessage.model_validate(obj)
        except ValidationError:
            await websocket.send_text(
                _error("auth_required", 'first send {"type": "auth", "token": ...}', ref=_ref(obj))
            )
            continue
        token, last_id = auth.token, auth.last_id if auth.last_id is not None else last_id
    client = websocket.client.host if websocket.client else "unknown"
    try:
        return await svc.access.authenticate(token, client=client), last_id
    except RateLimitedError as exc:
        await _close(websocket, CLOSE_LOCKED_OUT, str(exc), hub)
        return None
    except AuthError as exc:
        await _close(websocket, CLOSE_UNAUTHORIZED, str(exc), hub)
        return None


SUBPROTOCOL = "yishao"
_TOKEN_PROTOCOL = "yishao.token."


def _subprotocol_token(websocket: WebSocket) -> str | None:
    """A browser cannot set headers on a websocket: it may offer ``["yishao",
    "yishao.token.<T>"]`` as subprotocols, which no access log records."""
    for offered in websocket.scope.get("subprotocols", []):
        if isinstance(offered, str) and offered.startswith(_TOKEN_PROTOCOL):
            return offered[len(_TOKEN_PROTOCOL) :]
    return None


def origin_allowed(websocket: WebSocket, allowed: str) -> bool:
    """Whether a browser's ``Origin`` may open a socket (cross-site websocket hijacking).

    No ``Origin``: not a browser (a terminal, a gateway, a script): allowed. ``allowed`` is
    the ``YISHAO_WS_ORIGINS`` setting: ``*`` any; else a comma-separated list of origins,
    to which the service's own origin (the ``Host`` it was reached by) is always added.
    """
    origin = websocket.headers.get("origin")
    if origin is None or allowed.strip() == "*":
        return True
    host = websocket.headers.get("host", "")
    own = {f"http://{host}", f"https://{host}"}
    listed = {o.strip().rstrip("/") for o in allowed.split(",") if o.strip()}
    return origin.rstrip("/") in own | listed


async def _close(websocket: WebSocket, code: int, reason: str, hub: Hub) -> None:
    if websocket.application_state is not WebSocketState.CONNECTED:
        return
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
        await asyncio.wait_for(
            websocket.close(code=code, reason=reason[:120]), timeout=hub.config.close_timeout_s
        )


async def _prime(svc: Services, client: Client) -> None:
    """What the role rule must know before the first event: summoned incidents, the unit's job."""
    role, sub = client.principal.role, client.principal.sub
    if role is Role.COORDINATOR:
        for whistle in await svc.whistles.open_whistles():
            if any(s.coordinator == sub for s in whistle.summons):
                client.audience.summoned.add(whistle.incident_id)
    elif role is Role.TERMINAL:
        unit = await svc.store.get(Unit, svc.store.keys.unit(sub))
        if unit is not None:
            client.audience.assigned_incident = unit.incident_id
    elif role is Role.PROPERTY:
        # The joined incidents it may see now, so the event that ends its access reaches it.
        seen = await views.readable(
            svc, client.principal, await svc.store.open_incidents(), what="websocket session"
        )
        client.audience.property_open.update(i.id for i in seen)


async def _send_loop(
    websocket: WebSocket,
    client: Client,
    last_id: str | None,
    svc: Services,
    wire: J2735Wire | None = None,
) -> None:
    async def send(text: str) -> None:
        await websocket.send_text(text)
        extra = wire.srm_for(text) if wire is not None else None
        if isinstance(extra, bytes):
            await websocket.send_bytes(extra)
        elif extra is not None:
            await websocket.send_text(extra)

    await _prime(svc, client)
    await client.hub.catch_up(client, last_id, send)
    queue = client.queue
    while True:
        message = await queue.get()
        try:
            await send(message)
        except RuntimeError as exc:
            # uvicorn closed the socket itself (the server is shutting down) and refuses
            # sends after its close: the session is over, not failed.
            if "after sending 'websocket.close'" in str(exc):
                return
            raise


async def _receive_loop(
    websocket: WebSocket, client: Client, svc: Services, wire: J2735Wire | None = None
) -> None:
    while client.reason is None:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            await handle_text(client, text)
        elif wire is not None:
            await handle_ssm(client, wire, message.get("bytes") or b"", svc)
        else:
            client.offer(
                _error("bad_message", "send text frames of JSON (binary SSMs need ?wire=j2735)")
            )


async def handle_ssm(client: Client, wire: J2735Wire, data: bytes, svc: Services) -> None:
    """Apply a binary SSM frame; like :func:`handle_text`, every failure becomes a reply."""
    try:
        await wire.on_ssm(client, data, greenwave=svc.greenwave, now=svc.clock())
    except YishaoError as exc:
        code = next((c for t, c in _ERROR_CODES if isinstance(exc, t)), "error")
        client.offer(_error(code, str(exc)))
    except Exception as exc:  # noqa: BLE001 - logged (rate-limited); the socket must live
        _log_failure("SignalStatusMessage", exc)
        client.offer(_error("internal", "the SignalStatusMessage could not be handled"))


async def _wire(websocket: WebSocket, svc: Services, hub: Hub) -> J2735Wire | bool | None:
    """The session's ``wire`` (query parameter): None for JSON, the J2735 codec, or False
    once the socket is closed (an unknown wire 4400; the standards missing 1011)."""
    asked = websocket.query_params.get("wire", WIRE_JSON)
    if asked == WIRE_JSON:
        return None
    if asked != WIRE_J2735:
        await websocket.send_text(
            _error("bad_wire", f"wire must be one of {', '.join(WIRES)}, not {asked[:32]!r}")
        )
        await _close(websocket, CLOSE_BAD_REQUEST, "unknown wire", hub)
        return False
    standards = resolve_standards_dir(svc.settings.standards_dir)
    try:
        # Compiling the ASN.1 module takes about a second, once per process.
        await asyncio.to_thread(codec, standards)
    except StandardsMissingError as exc:
        await websocket.send_text(_error("unavailable", f"J2735 unavailable: {exc}"))
        await _close(websocket, CLOSE_INTERNAL, "J2735 unavailable", hub)
        return False
    return J2735Wire(intersections=svc.j2735_intersections, standards=standards)


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    """The one push endpoint (see the module docstring for the protocol and close codes)."""
    svc: Services = websocket.app.state.services
    hub = svc.hub
    if not origin_allowed(websocket, svc.settings.ws_origins):
        # Refused before the handshake completes: the browser sees a failed connection.
        await websocket.close(CLOSE_FORBIDDEN_ORIGIN)
        return
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    auth = await _authenticate(websocket, svc, hub)
    if auth is None:
        return
    principal, last_id = auth
    wire = await _wire(websocket, svc, hub)
    if wire is False:
        return
    assert wire is None or isinstance(wire, J2735Wire)
    try:
        await asyncio.wait_for(hub.ready.wait(), timeout=hub.config.auth_timeout_s)
    except TimeoutError:
        await _close(websocket, CLOSE_TRY_AGAIN, "event log unavailable; retry", hub)
        return
    client = hub.attach(principal)
    tasks = [
        asyncio.create_task(_send_loop(websocket, client, last_id, svc, wire)),
        asyncio.create_task(_receive_loop(websocket, client, svc, wire)),
        asyncio.create_task(client.done.wait()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        hub.detach(client)
    failures = [
        r
        for r in results
        if isinstance(r, BaseException)
        and not isinstance(r, asyncio.CancelledError | WebSocketDisconnect | OSError)
    ]
    for exc in failures:
        log.error("websocket session of %s failed", principal.sub, exc_info=exc)
    code = CLOSE_CODES.get(client.reason) if client.reason else None
    if code is None and failures:
        code = CLOSE_INTERNAL
    if code is not None:
        await _close(websocket, code, client.detail or (client.reason or "error"), hub)
