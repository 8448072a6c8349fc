"""The SUMO signal gateway: a ``signal`` client of the service that serves green-wave grants at
SUMO's traffic lights.

It plays the 122 signal gateway of a live drill (``simulators.live``) against SUMO: one
websocket (role ``signal``, scope ``*`` or a list of intersection ids), the service's
``greenwave.request|update|cancel|status`` events in, ``signal_status`` (``served`` /
``rejected``) out.

* :class:`GatewayCore` (pure, no socket, no TraCI): turns events into :class:`Grant` /
  :class:`Cancel` for the light of each intersection (the mapping of
  :mod:`simulators.sumo.network`: intersection id -> SUMO light and link indices of the
  requested movement) and the lights' reports into ``signal_status`` messages.
* :class:`SumoGateway` (the adapter): the websocket (resuming from its last event id after a
  drop) and the light controllers over TraCI, driven from a SUMO run loop::

      gateway = SumoGateway(url, token, network, lights, time=SimTime(epoch))
      await gateway.start()
      while running:
          conn.simulationStep()
          clock.set(conn.simulation.getTime())  # only when the service follows SUMO's clock
          gateway.step()        # events received so far -> lights; lights -> reports
          await gateway.flush() # reports sent; the reader gets its turn

**Two clocks.** The service stamps windows with its clock; the gateway reads them as SUMO
seconds through :class:`SimTime` (``epoch`` = the service time of SUMO second 0). In a real-time
run the service keeps the wall clock and SUMO is paced to it (one step per second of wall time,
``epoch`` = the wall time SUMO started). In a faster-than-real-time run the service must follow
SUMO instead: build it with ``create_app(settings, clock=SumoClock(epoch))`` and ``set`` the clock
after every step, so that a window the arbiter grants and the second SUMO shows it are one time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from dispatch.auth import mint
from dispatch.models import Agency, Role
from routing.greenwave import SignalRequest

from ._traci import TraciLights
from .controller import Cancel, Grant, LightController, Report
from .network import MapStatus, SignalMap, SumoNetwork

log = logging.getLogger(__name__)

Message = dict[str, Any]
GATEWAY_SUB = "sumo-gateway-122"
CLOSE_UNAUTHORIZED = 4401
_GREENWAVE = frozenset(
    {"greenwave.request", "greenwave.update", "greenwave.cancel", "greenwave.status"}
)
_ENDED = frozenset({"cancelled", "rejected", "served"})


@dataclass(frozen=True, slots=True)
class SimTime:
    """Service datetimes <-> SUMO seconds. ``epoch`` is the service time of SUMO second 0."""

    epoch: datetime

    def to_s(self, when: datetime) -> float:
        return (when - self.epoch).total_seconds()

    def at(self, seconds: float) -> datetime:
        return self.epoch + timedelta(seconds=seconds)


class SumoClock:
    """The service's clock when it follows SUMO: ``epoch`` + the last SUMO time ``set``.

    Thread-safe to read (the service may run in another thread); only the SUMO loop sets it, so
    the service never calls into TraCI (libsumo is not thread-safe).
    """

    def __init__(self, epoch: datetime, now_s: float = 0.0) -> None:
        if epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        self.epoch = epoch
        self._now_s = now_s
        self._lock = threading.Lock()

    def set(self, now_s: float) -> None:
        """SUMO is at ``now_s``; time never goes back."""
        with self._lock:
            self._now_s = max(self._now_s, now_s)

    def seconds(self) -> float:
        with self._lock:
            return self._now_s

    def __call__(self) -> datetime:
        return self.epoch + timedelta(seconds=self.seconds())


def gateway_token(
    secret: str,
    *,
    scope: Iterable[str] = ("*",),
    sub: str = GATEWAY_SUB,
    ttl_s: int = 24 * 3600,
) -> str:
    """A ``signal`` token of the 122 agency for the gateway (scope ``*``: every intersection)."""
    return mint(
        secret, role=Role.SIGNAL, agency=Agency.TRAFFIC, sub=sub, ttl_s=ttl_s, scope=tuple(scope)
    )


# ------------------------------------------------------------------------------------ the core


@dataclass(frozen=True, slots=True)
class Held:
    """What the gateway holds for one request."""

    request_id: str
    intersection_id: int
    tls_id: str
    grant: Grant


class GatewayCore:
    """Events in, grants and cancels to the lights, ``signal_status`` messages out.

    Args:
        signals: intersection id -> its map (``SumoNetwork.signals``).
        time: how service datetimes read as SUMO seconds.
        controller_for: the light controller of a SUMO light id (made on first use).
    """

    def __init__(
        self,
        signals: Mapping[int, SignalMap],
        time: SimTime,
        controller_for: Callable[[str], LightController],
    ) -> None:
        self.signals = signals
        self.time = time
        self.controller_for = controller_for
        self.held: dict[str, Held] = {}
        self.touched: set[str] = set()  # lights with a controller
        self.received = 0
        self.granted = 0
        self.ignored = 0
        self.reports: list[Report] = []  # every report, for a drill's accounting
        self.released: set[str] = set()  # requests whose vehicle crossed the stop line
        self._outbox: list[Message] = []

    def on_event(self, message: Message, now_s: float) -> None:
        """Take one server message at SUMO time ``now_s`` (non-green-wave ones are ignored)."""
        kind = message.get("type")
        if kind not in _GREENWAVE:
            return
        data = message.get("data") or {}
        try:
            request = SignalRequest.model_validate(data["request"])
            status = str(data["status"])
        except (KeyError, TypeError, ValidationError):
            self.ignored += 1
            return
        self.received += 1
        rid = request.request_id
        if status == "granted" and data.get("granted_from") and data.get("granted_to"):
            self._grant(request, data, now_s)
        elif status in _ENDED and rid in self.held:
            # Cancelled by the vehicle, withdrawn by the arbiter, or expired there.
            held = self.held.pop(rid)
            self.controller_for(held.tls_id).receive(Cancel(request_id=rid), now_s)

    def passed(
        self, tls_id: str, request_ids: Iterable[str], now_s: float, *, within_s: float = 30.0
    ) -> int:
        """The vehicle of ``request_ids`` crossed a stop line of ``tls_id`` (the light's own
        detector saw it): its holds there end now, not when the service's cancel comes (the
        vehicle's next fix, once it is past the signal node); a re-timed grant that comes
        before that cancel is not held again. Only grants whose ETA is within ``within_s`` of
        now are released (this passage, not a later one of a route that comes back).

        Returns:
            How many holds were released.
        """
        n = 0
        for rid in request_ids:
            held = self.held.get(rid)
            if held is None or held.tls_id != tls_id or abs(held.grant.eta_s - now_s) > within_s:
                continue
            del self.held[rid]
            self.released.add(rid)
            self.controller_for(tls_id).receive(Cancel(request_id=rid), now_s)
            n += 1
        return n

    def _grant(self, request: SignalRequest, data: Mapping[str, Any], now_s: float) -> None:
        rid, iid = request.request_id, request.intersection_id
        if rid in self.released:
            return  # its vehicle is past the light: the service's cancel is on its way
        sig = self.signals.get(iid)
        if sig is None or sig.status is MapStatus.UNMAPPED:
            why = sig.reason if sig is not None else "not a signal of the SUMO network's graph"
            self._answer(iid, rid, "rejected", f"no SUMO light for intersection {iid}: {why}")
            return
        move = sig.movement_for(request.inbound.bearing_deg, request.outbound.bearing_deg)
        if move is None or move.tls_id is None:
            self._answer(iid, rid, "rejected", f"movement not mapped at {iid}")
            return
        if move.scope == "inside":
            # The movement starts inside a joined junction: its light was met on entering it.
            self._answer(
                iid, rid, "served", f"inside joined junction of light {move.tls_id}: no own light"
            )
            return
        try:
            granted_from = datetime.fromisoformat(str(data["granted_from"]).replace("Z", "+00:00"))
            granted_to = datetime.fromisoformat(str(data["granted_to"]).replace("Z", "+00:00"))
        except ValueError:
            self.ignored += 1
            return
        shift = float(data.get("shift_s") or 0.0)
        grant = Grant(
            request_id=rid,
            intersection_id=iid,
            links=tuple(move.links),
            green_from_s=self.time.to_s(granted_from),
            green_to_s=self.time.to_s(granted_to),
            eta_s=self.time.to_s(request.eta) + shift,
            importance=request.importance,
        )
        previous = self.held.get(rid)
        if previous is not None and previous.tls_id != move.tls_id:
            self.controller_for(previous.tls_id).receive(Cancel(request_id=rid), now_s)
        self.held[rid] = Held(rid, iid, move.tls_id, grant)
        self.touched.add(move.tls_id)
        self.granted += 1
        self.controller_for(move.tls_id).receive(grant, now_s)

    def collect(self, controllers: Iterable[LightController]) -> list[Message]:
        """The ``signal_status`` messages owed: the lights' reports and the gateway's own."""
        for ctrl in controllers:
            for rep in ctrl.data_to_send():
                self.reports.append(rep)
                if rep.status == "cancelled":
                    continue
                held = self.held.get(rep.request_id)
                if held is not None and held.tls_id == rep.tls_id:
                    del self.held[rep.request_id]
                self._answer(rep.intersection_id, rep.request_id, rep.status, rep.reason)
        out, self._outbox = self._outbox, []
        return out

    def _answer(self, iid: int, rid: str, status: str, reason: str) -> None:
        self._outbox.append(
            {
                "type": "signal_status",
                "intersection_id": iid,
                "request_id": rid,
                "status": status,
                "reason": reason[:500],
            }
        )


# ---------------------------------------------------------------------------------- the socket


class GatewayError(RuntimeError):
    """The gateway cannot go on: the service refused its token or stayed unreachable."""


class _Socket:
    """One websocket client of ``/ws`` that resumes from its last event id after a drop."""

    def __init__(self, url: str, token: str, on_message: Callable[[Message], None]) -> None:
        self.url = url
        self.token = token
        self.on_message = on_message
        self.ready = asyncio.Event()
        self.last_id: str | None = None
        self.connects = 0
        self.errors: list[Message] = []
        self._ws: ClientConnection | None = None
        self._closing = False

    async def run(self, *, retries: int = 20) -> None:
        failures = 0
        while not self._closing:
            query = f"?token={quote(self.token)}"
            if self.last_id is not None:
                query += f"&last_id={quote(self.last_id)}"
            code: int | None = None
            try:
                async with connect(
                    self.url + query, compression=None, proxy=None, open_timeout=15, max_size=2**24
                ) as ws:
                    self._ws = ws
                    self.connects += 1
                    failures = 0
                    async for raw in ws:
                        self._take(raw)
                    code = ws.close_code
            except InvalidStatus as exc:
                raise GatewayError(f"websocket refused: {exc}") from exc
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as exc:
                if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
                    code = exc.rcvd.code
                log.info("sumo gateway: connection lost (%s)", exc)
            finally:
                self._ws = None
            if self._closing:
                return
            if code == CLOSE_UNAUTHORIZED:
                raise GatewayError("token refused by the service (4401)")
            failures += 1
            if failures > retries:
                raise GatewayError(f"could not reconnect after {retries} tries")
            await asyncio.sleep(min(0.2 * failures, 2.0))

    def _take(self, raw: str | bytes) -> None:
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
        event_id = msg.get("id")
        if isinstance(event_id, str) and event_id and kind not in ("ready", "resync"):
            self.last_id = event_id
        self.on_message(msg)

    async def send(self, message: Message) -> bool:
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


class SumoGateway:
    """The gateway over a running SUMO simulation (see the module docstring).

    Args:
        url: the service's ``ws://host:port/ws``.
        token: a ``signal`` token (:func:`gateway_token`).
        network: the built network (its signal mapping).
        lights: the light controllers over the simulation's TraCI connection.
        time: service datetimes <-> SUMO seconds.
    """

    def __init__(
        self,
        url: str,
        token: str,
        network: SumoNetwork,
        lights: TraciLights,
        *,
        time: SimTime,
    ) -> None:
        self.lights = lights
        self.core = GatewayCore(network.signals, time, lights.controller)
        self.socket = _Socket(url, token, self._received)
        self.sent: list[Message] = []
        self.unsent: list[Message] = []
        self.acks: list[Message] = []  # the service's signal_status.ok replies
        self._inbox: deque[Message] = deque()
        self._task: asyncio.Task[None] | None = None

    def _received(self, msg: Message) -> None:
        kind = msg.get("type")
        if kind in _GREENWAVE:
            self._inbox.append(msg)
        elif kind == "signal_status.ok":
            self.acks.append(msg)

    async def start(self, *, timeout_s: float = 15.0) -> None:
        """Connect and wait until the service says ``ready``.

        Raises:
            GatewayError: refused, or not ready in time.
        """
        self._task = asyncio.create_task(self.socket.run())
        ready = asyncio.create_task(self.socket.ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if self._task in done:
            ready.cancel()
            self._task.result()  # raises the socket's error
            raise GatewayError("websocket closed before ready")
        if ready not in done:
            ready.cancel()
            raise GatewayError(f"service not ready within {timeout_s:.0f} s")

    def step(self) -> list[Message]:
        """After a simulation step: take the events received, run the lights, queue reports.

        Returns:
            The ``signal_status`` messages queued by this step.
        """
        now = self.lights.now_s()
        while self._inbox:
            self.core.on_event(self._inbox.popleft(), now)
        self.lights.step()
        out = self.core.collect(self.lights.controllers.values())
        self.unsent.extend(out)
        return out

    async def flush(self) -> None:
        """Send the queued reports (kept for the next flush while disconnected)."""
        pending, self.unsent = self.unsent, []
        for n, msg in enumerate(pending):
            if not await self.socket.send(msg):
                self.unsent = pending[n:] + self.unsent
                break
            self.sent.append(msg)
        await asyncio.sleep(0)

    async def close(self) -> None:
        await self.socket.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, GatewayError):
                await self._task
