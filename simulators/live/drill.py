"""One live drill: set-up over REST, the drill's websockets, the field's heartbeat, the calls.

:class:`_Drill` is the field and the joint console of a drill in one asyncio process, talking
to the service only as its real clients do (see :mod:`simulators.live`); the parts it wires
together are pure or single-purpose: :class:`Console` (the dispatchers),
:class:`Coordinators`, :class:`SignalField` (the 122 gateway's controllers), one
:class:`UnitSim` per unit (its terminal), and :func:`build_report` afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError

from dispatch.core.assign import LegKind
from dispatch.core.rosters import duty_day
from dispatch.models import CENTRE_AGENCY, Agency, Incident, Role, UnitStatus
from routing import Route, Router

from ..calls import ScheduledCall, generate_calls
from ..clock import SimClock
from ..coordinators import CoordinatorSim
from ..errors import LiveError
from ..fleet import SimFleet, fleet_json, generate_fleet, hospitals_json
from ..html import render_html
from ..patients import takes_patient
from ..places import PlaceFinder
from ..scenarios import Scenario
from ..signals import HOURLY_FLOW, PriorityReport, make_timings
from ..vehicles import PositionReport
from .config import LiveConfig
from .console import Console, PostedCall
from .coordinators import Coordinators
from .field import FieldClock, SignalField
from .net import Message, Session, Tokens, ws_base
from .report import LiveDrillReport, build_report
from .units import UnitSim

__all__ = ["drill_id_for", "plan_live", "report_url", "run_live"]

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
_ADMIN = "drill-admin"


def drill_id_for(scenario: Scenario, seed: int, started: datetime) -> str:
    """``<scenario>-s<seed>-live-<UTC yyyymmddThhmmss>`` (the service's report id pattern)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", scenario.name).strip("-.") or "drill"
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{name[:30]}-s{seed}-live-{stamp}"


def plan_live(
    router: Router, scenario: Scenario, seed: int, *, day: datetime
) -> tuple[SimFleet, list[ScheduledCall]]:
    """The fleet and the calls of a live drill: the same seed gives the same of both.

    Args:
        day: when the drill runs (the roster rotation starts on its duty day).
    """
    fleet = generate_fleet(router, seed=seed, day=duty_day(day))
    calls = generate_calls(scenario, PlaceFinder(router), SimClock(scenario.start), seed=seed)
    return fleet, calls


class _Drill:
    """One live run (see the module docstring); :meth:`run` does it all."""

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        router: Router,
        scenario: Scenario,
        seed: int,
        call_speedup: float,
        duration_s: float | None,
        progress: Progress | None,
        config: LiveConfig,
        fleet: SimFleet | None,
    ) -> None:
        if call_speedup <= 0:
            raise ValueError("call_speedup must be positive")
        self.url = url.rstrip("/")
        self.router = router
        self.scenario = scenario
        self.seed = seed
        self.call_speedup = call_speedup
        self.duration_s = duration_s
        self.progress = progress
        self.cfg = config
        self.tokens = Tokens(secret, ttl_s=config.token_ttl_s)
        self.started = datetime.now(UTC)
        self.clock = FieldClock(self.started)
        self.t0 = time.time()
        self.drill_id = drill_id_for(scenario, seed, self.started)
        self.tag = "L" + self.started.strftime("%H%M%S") + f"{seed % 1000:03d}"
        planned_fleet, self.calls = plan_live(router, scenario, seed, day=self.started)
        self.fleet = fleet or planned_fleet
        g = router.graph
        self.signal_nodes = frozenset(int(x) for x in g.node_osmid[g.node_signal].tolist())
        self.timings = make_timings(g, seed=seed)
        self._scenario_clock = SimClock(scenario.start)
        self._flow_memo: dict[float, float] = {}
        self.field = SignalField(
            self.timings, self.clock, self._flow_factor, max_extension_s=config.max_extension_s
        )
        delay = router.profile.signal_delay_s
        self.units = {
            u.id: UnitSim(
                u,
                seed=seed,
                config=config.model,
                crew_time_scale=config.crew_time_scale,
                signal_nodes=self.signal_nodes,
                signal_delay_s=delay,
                parked_fix_s=config.parked_fix_s,
                takes_patient=self._takes_patient,
            )
            for u in self.fleet.units
        }
        names = [n for rule in self.fleet.roster for n in rule.names]
        self.coordinators = Coordinators(
            {n: CoordinatorSim(n, scenario.coordinators, seed=seed) for n in dict.fromkeys(names)},
            silent=config.silent_coordinators,
            now_s=self.now_s,
        )
        self.sessions: dict[str, Session] = {}
        self.terminals: dict[str, Session] = {}
        self.gateway: Session | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # The sessions' own tasks: always running, not work in progress.
        self._background: set[asyncio.Task[Any]] = set()
        self.fatal: LiveError | None = None
        self._http: httpx.AsyncClient | None = None
        self._console: Console | None = None
        self._admin = self.tokens.bearer(Role.ADMIN, Agency.POLICE, _ADMIN)

    # -- time ------------------------------------------------------------------------------------

    def now_s(self) -> float:
        return time.time() - self.t0

    def _takes_patient(self, incident_id: str) -> bool:
        # The crew knows its incident as the console last saw it; when in doubt it transports.
        found = self._console.incidents.get(incident_id) if self._console else None
        if found is None or not found.incident:
            return True
        try:
            return takes_patient(Incident.model_validate(found.incident))
        except ValidationError:
            return True

    def _flow_factor(self, t: float) -> float:
        # The field runs in real time from the scenario's start hour (its traffic level).
        factor = self._flow_memo.get(t)
        if factor is None:
            hour = int(self._scenario_clock.hour_of_day(t)) % 24
            factor = self._flow_memo[t] = HOURLY_FLOW[hour]
        return factor

    def _say(self, fraction: float, label: str) -> None:
        if self.progress is not None:
            self.progress(min(max(fraction, 0.0), 1.0), label)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("live drill task failed: %r", task.exception())

    # -- REST ------------------------------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        assert self._http is not None
        return self._http

    @property
    def console(self) -> Console:
        assert self._console is not None
        return self._console

    async def _setup(self) -> dict[str, str]:
        """Units, hospitals, roster; returns units whose status must be reset to available."""
        try:
            health = await self.http.get("/api/health")
        except httpx.HTTPError as exc:
            raise LiveError(f"service at {self.url} unreachable: {exc}") from exc
        if health.status_code != 200:
            raise LiveError(f"service health: HTTP {health.status_code}")
        graph = health.json().get("graph")
        if graph is None:
            raise LiveError("the service has no road graph loaded (set YISHAO_GRAPH)")
        busy: dict[str, str] = {}
        gate = asyncio.Semaphore(8)

        async def put(body: dict[str, Any]) -> None:
            async with gate:
                r = await self.http.put(f"/api/units/{body['id']}", json=body, headers=self._admin)
            if r.status_code != 200:
                raise LiveError(f"PUT /api/units/{body['id']}: {r.status_code} {r.text[:200]}")
            if r.json().get("status") != UnitStatus.AVAILABLE.value:
                busy[body["id"]] = str(r.json().get("status"))

        await asyncio.gather(*(put(body) for body in fleet_json(self.fleet)))
        r = await self.http.put(
            "/api/hospitals", json=hospitals_json(self.fleet), headers=self._admin
        )
        if r.status_code != 200:
            raise LiveError(f"PUT /api/hospitals: {r.status_code} {r.text[:200]}")
        roster = {"rules": [rule.model_dump(mode="json") for rule in self.fleet.roster]}
        r = await self.http.put("/api/rosters", json=roster, headers=self._admin)
        if r.status_code != 204:
            raise LiveError(f"PUT /api/rosters: {r.status_code} {r.text[:200]}")
        return busy

    # -- sockets ---------------------------------------------------------------------------------

    def _session(self, name: str, token: str, handler: Callable[[Message], None]) -> Session:
        s = Session(ws_base(self.url), token, name, handler)
        self.sessions[name] = s
        return s

    async def _open(self) -> None:
        t = self.tokens
        self._session(
            "console",
            t.get(Role.DISPATCHER, Agency.EMS, "drill-joint-console"),
            self.console.on_event,
        )
        self.gateway = self._session(
            "gateway-122",
            t.get(Role.SIGNAL, Agency.TRAFFIC, "drill-gateway-122", ("*",)),
            self._on_gateway,
        )
        for rule in self.fleet.roster:
            for name in rule.names:
                if f"coord:{name}" not in self.sessions:
                    session = self._session(
                        f"coord:{name}",
                        t.get(Role.COORDINATOR, rule.agency, name),
                        self.coordinators.handler(name),
                    )
                    self.coordinators.attach(name, session)
        for unit in self.fleet.units:
            self.terminals[unit.id] = self._session(
                f"unit:{unit.id}",
                t.get(Role.TERMINAL, unit.agency, unit.id),
                self._terminal_handler(unit.id),
            )
        for s in self.sessions.values():
            self._spawn(self._guard(s))
        try:
            await asyncio.wait_for(
                asyncio.gather(*(s.ready.wait() for s in self.sessions.values())),
                timeout=self.cfg.connect_timeout_s,
            )
        except TimeoutError as exc:
            late = [n for n, s in self.sessions.items() if not s.ready.is_set()]
            raise LiveError(f"websockets not ready in time: {late[:5]}") from exc

    async def _guard(self, session: Session) -> None:
        try:
            await session.run()
        except LiveError as exc:
            log.error("%s", exc)
            self.fatal = exc

    # -- the console -----------------------------------------------------------------------------

    def _on_gateway(self, msg: Message) -> None:
        kind = str(msg.get("type"))
        if not kind.startswith("greenwave."):
            return
        self.field.on_event(kind, str(msg.get("ts")), msg.get("data") or {}, self.now_s())
        reports = self.field.outbox()
        if reports:
            self._spawn(self._report_signals(reports))

    async def _report_signals(self, reports: list[PriorityReport]) -> None:
        assert self.gateway is not None
        for rep in reports:
            await self.gateway.send(
                {
                    "type": "signal_status",
                    "intersection_id": rep.intersection_id,
                    "request_id": rep.request_id,
                    "status": rep.status,
                    "reason": rep.reason[:500],
                }
            )

    def _terminal_handler(self, unit_id: str) -> Callable[[Message], None]:
        def handle(msg: Message) -> None:
            kind = msg.get("type")
            data = msg.get("data") or {}
            incident_id = msg.get("incident_id")
            if data.get("unit_id") != unit_id or not isinstance(incident_id, str):
                return
            sim = self.units[unit_id]
            if kind == "assignment.created":
                sim.assigned(incident_id, self.now_s())
            elif kind == "route.planned":
                try:
                    leg = LegKind(str(data.get("leg")))
                except ValueError:
                    return
                route = Route.model_validate(data["route"])
                sim.route_planned(incident_id, leg, route, self.now_s())

        return handle

    async def _send_unit(self, unit_id: str, out: PositionReport | UnitStatus) -> None:
        session = self.terminals[unit_id]
        if isinstance(out, UnitStatus):
            await session.send({"type": "status", "status": out.value})
            return
        await session.send(
            {
                "type": "position",
                "lat": round(out.lat, 7),
                "lon": round(out.lon, 7),
                "speed_kph": round(min(out.speed_kph, 399.0), 2),
                "heading_deg": round(out.heading_deg, 2) % 360.0,
                "at": self.clock.at(out.at_s).isoformat(),
            }
        )

    async def _ticker(self, stop: asyncio.Event) -> None:
        """The field's 1 Hz heartbeat: vehicles drive second ``s - 1`` once second ``s`` began."""
        s = math.ceil(self.now_s())
        while not stop.is_set():
            wait = s - self.now_s()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                if stop.is_set():
                    return
            for unit_id in sorted(self.units):
                for out in self.units[unit_id].step(float(s - 1), self.field.lookup):
                    await self._send_unit(unit_id, out)
            reports = self.field.poll(float(s))
            if reports:
                await self._report_signals(reports)
            s += 1

    # -- calls -----------------------------------------------------------------------------------

    def _call_plan(self) -> list[ScheduledCall]:
        end_s = self.scenario.duration_h * 3600.0
        out = [c for c in self.calls if c.at_s < end_s]
        if self.duration_s is not None:
            out = [c for c in out if c.at_s / self.call_speedup <= self.duration_s]
        return out

    async def _post_calls(self, plan: list[ScheduledCall], start_s: float) -> None:
        total = max(len(plan), 1)
        for n, sc in enumerate(plan, start=1):
            due = start_s + sc.at_s / self.call_speedup
            wait = due - self.now_s()
            if wait > 0:
                await asyncio.sleep(wait)
            now = datetime.now(UTC).astimezone(self.scenario.start.tzinfo)
            call = sc.call.model_copy(
                # A drill's calls are exercises: kept apart from real incidents in the record.
                update={
                    "call_id": f"{self.tag}-{sc.call.call_id}",
                    "received_at": now,
                    "exercise": True,
                }
            )
            key = f"{call.centre.value}:{call.call_id}"
            self.console.posted[key] = PostedCall(sc, key, now, self.now_s())
            r = await self.http.post(
                "/api/calls",
                json=call.model_dump(mode="json", exclude_none=True),
                headers=self.console.dispatcher(CENTRE_AGENCY[call.centre]),
            )
            if r.status_code != 202:
                log.warning("call %s refused: %s %s", key, r.status_code, r.text[:200])
            self._say(0.8 * n / total, f"call {n}/{total} ({sc.source})")

    def _busy(self) -> bool:
        if any(u.busy for u in self.units.values()):
            return True
        if self.coordinators.busy:
            return True
        return bool(self._tasks - self._background)

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> LiveDrillReport:
        async with httpx.AsyncClient(base_url=self.url, timeout=self.cfg.http_timeout_s) as http:
            self._http = http
            self._console = Console(
                http,
                self.tokens,
                self.cfg,
                admin=self._admin,
                clock=self.clock,
                now_s=self.now_s,
                spawn=self._spawn,
            )
            self._say(0.0, "set-up")
            busy = await self._setup()
            await self._open()
            for unit_id in sorted(busy):
                await self._send_unit(unit_id, UnitStatus.AVAILABLE)
            stop = asyncio.Event()
            ticker = asyncio.create_task(self._ticker(stop))
            coords = asyncio.create_task(self.coordinators.run(stop))
            self._background = set(self._tasks)
            plan = self._call_plan()
            try:
                await self._post_calls(plan, self.now_s())
                last_call_s = self.now_s()
                self._say(0.8, "waiting for the units to finish")
                deadline = last_call_s + self.cfg.drain_s
                while self.now_s() < deadline and self.fatal is None:
                    if self.now_s() - last_call_s >= self.cfg.settle_s and not self._busy():
                        break
                    await asyncio.sleep(0.5)
                if self.fatal is not None:
                    raise self.fatal
            finally:
                stop.set()
                await asyncio.gather(ticker, coords, return_exceptions=True)
            end_s = self.now_s()
            for unit_id, sim in sorted(self.units.items()):
                if sim.busy:  # cut off by the drain bound: hand the unit back
                    await self._send_unit(unit_id, UnitStatus.AVAILABLE)
            final = self.field.finish(end_s)
            if final:
                await self._report_signals(final)
            await asyncio.sleep(0.5)
            self._say(0.9, "collecting whistles")
            await self._collect()
            for s in self.sessions.values():
                await s.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._say(0.93, "re-driving without green wave")
            report = build_report(
                drill_id=self.drill_id,
                router=self.router,
                scenario=self.scenario,
                seed=self.seed,
                start=self.started.astimezone(self.scenario.start.tzinfo),
                duration_h=round(
                    min((plan[-1].at_s if plan else 0.0), self.scenario.duration_h * 3600.0)
                    / 3600.0,
                    4,
                ),
                calls=len(plan),
                incidents=list(self.console.incidents.values()),
                legs=[leg for u in self.units.values() for leg in u.legs],
                field_=self.field,
                timings=self.timings,
                flow_factor=self._flow_factor,
                signal_delay_s=self.router.profile.signal_delay_s,
                max_drive_s=self.cfg.model.max_drive_s,
                bluelight=self.cfg.model.bluelight,
            )
            self._say(0.97, "uploading the report")
            await self._upload(report)
            self._say(1.0, "done")
            return report

    async def _collect(self) -> None:
        for found in self.console.incidents.values():
            r = await self.http.get(f"/api/incidents/{found.incident_id}", headers=self._admin)
            if r.status_code == 200:
                found.incident = r.json()
                found.whistle_id = found.whistle_id or found.incident.get("whistle_id")
            if found.whistle_id:
                w = await self.http.get(f"/api/whistles/{found.whistle_id}", headers=self._admin)
                if w.status_code == 200:
                    found.whistle = w.json()

    async def _upload(self, report: LiveDrillReport) -> None:
        page = render_html(report)
        body = {
            "summary": report.summary.model_dump(mode="json"),
            "report": report.model_dump(mode="json"),
            "html": page,
        }
        r = await self.http.put(f"/api/reports/{report.drill_id}", json=body, headers=self._admin)
        if r.status_code != 200:
            raise LiveError(f"report upload: {r.status_code} {r.text[:200]}")


async def run_live(
    *,
    url: str,
    secret: str,
    router: Router,
    scenario: Scenario,
    seed: int,
    call_speedup: float,
    duration_s: float | None,
    progress: Progress | None = None,
    config: LiveConfig | None = None,
    fleet: SimFleet | None = None,
) -> LiveDrillReport:
    """Run a scenario live against the service at ``url`` and upload its report.

    Args:
        url: the service's base URL (``http://host:port``).
        secret: the service's ``YISHAO_SECRET`` (the drill mints its clients' tokens).
        router: the same road graph the service loaded (signal ids and routes must agree).
        scenario: what happens.
        seed: the same seed gives the same calls, fleet, signal plans and human delays.
        call_speedup: bends the scenario's call clock only: calls arrive this many times
            faster than the scenario has them (60: an hour of calls per minute). Vehicles,
            signals and coordinators run in real time; the crews' times follow
            ``config.crew_time_scale``.
        duration_s: stop posting calls after this many wall seconds (None: the whole scenario).
        progress: called with ``(fraction, label)``.
        config: tuning (:class:`LiveConfig`).
        fleet: units, hospitals and roster; default generated from the map with ``seed``.

    Returns:
        The report (``mode == "live"``), as uploaded to ``/api/reports/{drill_id}``.

    Raises:
        LiveError: the service is unreachable, refused the set-up, or a socket could not
            (re)connect.
        ScenarioError: a scenario place cannot be resolved on this map.
        ValueError: ``call_speedup`` not positive.
    """
    drill = _Drill(
        url=url,
        secret=secret,
        router=router,
        scenario=scenario,
        seed=seed,
        call_speedup=call_speedup,
        duration_s=duration_s,
        progress=progress,
        config=config or LiveConfig(),
        fleet=fleet,
    )
    return await drill.run()


def report_url(url: str, secret: str, drill_id: str, *, ttl_s: int = 7 * 24 * 3600) -> str:
    """The report page's address with an observer token (valid ``ttl_s``)."""
    token = Tokens(secret, ttl_s=ttl_s).get(Role.OBSERVER, Agency.POLICE, "drill-report")
    return f"{url.rstrip('/')}/reports/{drill_id}?token={token}"
