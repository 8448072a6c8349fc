"""Live drills: a scenario played in real time against a running service, through its interfaces.

:func:`run_live` is the field and the joint console of a drill in one asyncio process, talking
to the service only as its real clients do:

* set-up over REST (an admin token minted from the secret): the seeded fleet's units, the
  hospitals, and rotation rules naming the simulated coordinators;
* calls from the scenario, posted (``POST /api/calls``) by each centre at their times
  compressed by ``speed``;
* the console (a dispatcher websocket) assigns the suggested units of each recommendation and,
  for a whistle incident reported to 120 or 119, sounds the whistle;
* coordinators (one websocket each) ack their summons after a human delay, or never (the
  scenario's silent share, plus any named silent): the service escalates to the backup;
* the 122 signal gateway (one websocket, scope ``*``) holds a :class:`SignalController` per
  signal, executes grants and cancels, and reports ``served`` / ``rejected``;
* terminals (one websocket per unit) drive each ``route.planned`` with :class:`VehicleSim` in
  real time against those same controllers, sending a fix a second and status changes.

Calls are compressed (speed 60: an hour of calls a minute); vehicles, signals and people run
in real time, as they would. Afterwards every drive is repeated offline without priority
(same route, same second, same fixed-time plans) and the report (the batch
:class:`DrillReport` model, ``mode = "live"``) is uploaded to ``PUT /api/reports/{id}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from dispatch.core.rosters import duty_day
from dispatch.models import CENTRE_AGENCY, Agency, Centre, Role, UnitStatus
from routing import Route, Router

from ._live_net import LiveError, Message, Session, Tokens, ws_base
from ._live_report import IncidentLog, LiveDrillReport, build_report
from ._live_world import FieldClock, SignalField, UnitSim, parse_ts
from .calls import ScheduledCall, generate_calls
from .clock import SimClock
from .coordinators import CoordinatorSim
from .drill import DrillConfig
from .fleet import SimFleet, fleet_json, generate_fleet, hospitals_json
from .html import render_html
from .places import PlaceFinder
from .report import DrillReport
from .scenarios import Scenario
from .signals import HOURLY_FLOW, PriorityReport, make_timings
from .vehicles import PositionReport

__all__ = ["LiveConfig", "LiveDrillReport", "LiveError", "drill_live_command", "run_live"]

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
_SOUNDING = (Centre.EMS, Centre.FIRE)
_ADMIN = "drill-admin"


class LiveConfig(BaseModel):
    """Tuning of a live drill (defaults: the batch model in real time)."""

    model_config = ConfigDict(frozen=True)

    model: DrillConfig = Field(
        default_factory=DrillConfig, description="turnout, on-scene and hand-over medians"
    )
    time_scale: float = Field(
        default=1.0, gt=0, description="multiplies turnout, time on scene and hand-over"
    )
    silent_coordinators: frozenset[str] = Field(
        default=frozenset(), description="coordinators who never ack (besides the silent share)"
    )
    drain_s: float = Field(
        default=1800.0, ge=0, description="after the last call, wait at most this for the field"
    )
    settle_s: float = Field(
        default=3.0, ge=0, description="after the last call, wait at least this for its events"
    )
    whistle_wait_s: float = Field(
        default=20.0,
        ge=0,
        description="a whistle incident only 122 heard of: 120/119 sound it after this",
    )
    redispatch_after_s: float = Field(default=30.0, gt=0)
    redispatch_tries: int = Field(default=5, ge=0)
    parked_fix_s: float = Field(default=5.0, gt=0, description="fix interval while waiting")
    max_extension_s: int = Field(
        default=30,
        ge=0,
        description="signal controllers: the most a green is held past its planned end",
    )
    token_ttl_s: int = Field(default=24 * 3600, ge=60)
    connect_timeout_s: float = Field(default=30.0, gt=0)
    http_timeout_s: float = Field(default=30.0, gt=0)


@dataclass(frozen=True, slots=True)
class PostedCall:
    scheduled: ScheduledCall
    key: str
    at: datetime
    at_s: float


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
        speed: float,
        duration_s: float | None,
        progress: Progress | None,
        config: LiveConfig,
        fleet: SimFleet | None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.url = url.rstrip("/")
        self.router = router
        self.scenario = scenario
        self.seed = seed
        self.speed = speed
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
                time_scale=config.time_scale,
                signal_nodes=self.signal_nodes,
                signal_delay_s=delay,
                parked_fix_s=config.parked_fix_s,
            )
            for u in self.fleet.units
        }
        names = [n for rule in self.fleet.roster for n in rule.names]
        self.coordinators = {
            n: CoordinatorSim(n, scenario.coordinators, seed=seed) for n in dict.fromkeys(names)
        }
        self.silenced: list[tuple[str, str]] = []
        self.acks_sent: list[tuple[str, str, float]] = []
        self.posted: dict[str, PostedCall] = {}
        self.incidents: dict[str, IncidentLog] = {}
        self.need_type: dict[tuple[str, str], str] = {}
        self.tries: dict[str, int] = {}
        self.sounded: set[str] = set()
        self.whistle_waits: set[str] = set()
        self.assign_errors: list[str] = []
        self.sessions: dict[str, Session] = {}
        self.terminals: dict[str, Session] = {}
        self.gateway: Session | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # The sessions' own tasks: always running, not work in progress.
        self._background: set[asyncio.Task[Any]] = set()
        self.fatal: LiveError | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._http: httpx.AsyncClient | None = None
        self._admin = self.tokens.bearer(Role.ADMIN, Agency.POLICE, _ADMIN)

    # -- time ------------------------------------------------------------------------------------

    def now_s(self) -> float:
        return time.time() - self.t0

    def _flow_factor(self, t: float) -> float:
        # The field runs in real time from the scenario's start hour (its traffic level).
        factor = self._flow_memo.get(t)
        if factor is None:
            hour = int(self._scenario_clock.hour_of_day(t)) % 24
            factor = self._flow_memo[t] = HOURLY_FLOW[hour]
        return factor

    def _event_s(self, msg: Message) -> float:
        ts = msg.get("ts")
        if isinstance(ts, str):
            with contextlib.suppress(ValueError):
                return self.clock.seconds(parse_ts(ts))
        return self.now_s()

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

    def _dispatcher(self, agency: Agency) -> dict[str, str]:
        return self.tokens.bearer(Role.DISPATCHER, agency, f"drill-{agency.value}-console")

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
            self._on_console,
        )
        self.gateway = self._session(
            "gateway-122",
            t.get(Role.SIGNAL, Agency.TRAFFIC, "drill-gateway-122", ("*",)),
            self._on_gateway,
        )
        for rule in self.fleet.roster:
            for name in rule.names:
                if f"coord:{name}" not in self.sessions:
                    self._session(
                        f"coord:{name}",
                        t.get(Role.COORDINATOR, rule.agency, name),
                        self._coordinator_handler(name),
                    )
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

    def _on_console(self, msg: Message) -> None:
        kind = str(msg.get("type"))
        data = msg.get("data") or {}
        incident_id = msg.get("incident_id")
        if not isinstance(incident_id, str):
            return
        if kind in ("incident.created", "incident.merged"):
            call = data.get("call") or {}
            posted = self.posted.get(f"{call.get('centre')}:{call.get('call_id')}")
            if posted is not None and incident_id not in self.incidents:
                self.incidents[incident_id] = IncidentLog(
                    incident_id=incident_id,
                    source=posted.scheduled.source,
                    first_call_at=posted.at,
                    first_call_s=posted.at_s,
                )
            if posted is not None:
                self.incidents[incident_id].calls += 1
        found = self.incidents.get(incident_id)
        if found is None:
            return
        if kind.startswith("incident.") and isinstance(data.get("incident"), dict):
            found.incident = data["incident"]
        if kind == "incident.recommended":
            self._spawn(self._dispatch(incident_id, data.get("recommendations") or {}))
        elif kind == "whistle.sounded" and found.whistle_id is None:
            found.whistle_id = str((data.get("whistle") or {}).get("id") or "") or None
            found.whistle_s = self._event_s(msg)
        elif kind == "whistle.alert":
            found.alerts += 1
        elif kind == "greenwave.enabled" and found.greenwave_s is None:
            found.greenwave_s = self._event_s(msg)

    def _lock(self, incident_id: str) -> asyncio.Lock:
        return self._locks.setdefault(incident_id, asyncio.Lock())

    async def _dispatch(self, incident_id: str, recs: dict[str, Any]) -> None:
        async with self._lock(incident_id):
            r = await self.http.get(f"/api/incidents/{incident_id}", headers=self._admin)
            if r.status_code != 200:
                return
            inc: dict[str, Any] = r.json()
            self.incidents[incident_id].incident = inc
            if inc.get("status") == "closed":
                return
            await self._maybe_whistle(inc)
            short = await self._assign(inc, recs)
        tries = self.tries.get(incident_id, 0)
        if short and tries < self.cfg.redispatch_tries:
            self.tries[incident_id] = tries + 1
            await asyncio.sleep(self.cfg.redispatch_after_s)
            again = await self.http.get(
                f"/api/incidents/{incident_id}/recommendations", headers=self._admin
            )
            if again.status_code == 200:
                await self._dispatch(incident_id, again.json())

    async def _assign(self, inc: dict[str, Any], recs: dict[str, Any]) -> bool:
        """Assign the suggested units the incident still needs; True when some need is unmet."""
        incident_id = str(inc["id"])
        have: dict[tuple[str, str], int] = {}
        for a in inc.get("assignments", []):
            unit_type = self.need_type.get((incident_id, a["unit_id"]), a["unit_type"])
            key = (a["agency"], unit_type)
            have[key] = have.get(key, 0) + 1
        unmet = {
            (n["agency"], n["unit_type"]): n["count"] - have.get((n["agency"], n["unit_type"]), 0)
            for n in inc.get("needs", [])
        }
        short = False
        log_ = self.incidents[incident_id]
        for rec in recs.get("agencies", []):
            # Each centre assigns its own units (the service refuses another agency's).
            headers = self._dispatcher(Agency(rec["agency"]))
            by_id = {c["unit_id"]: c for c in rec.get("candidates", [])}
            for unit_id in rec.get("suggested", []):
                cand = by_id.get(unit_id)
                if cand is None:
                    continue
                need = cand.get("substitute_for") or cand["unit_type"]
                key = (rec["agency"], need)
                if unmet.get(key, 0) <= 0:
                    continue
                r = await self.http.post(
                    f"/api/incidents/{incident_id}/assignments",
                    json={"unit_ids": [unit_id]},
                    headers=headers,
                )
                if r.status_code == 201:
                    unmet[key] -= 1
                    self.need_type[(incident_id, unit_id)] = need
                else:  # 409: already assigned (another console, an earlier recommendation)
                    self.assign_errors.append(f"{unit_id}: {r.status_code} {r.text[:200]}")
                    log.info(
                        "assign %s to %s: %s %s", unit_id, incident_id, r.status_code, r.text[:200]
                    )
            for miss in rec.get("missing", []):
                log_.missing.add(str(miss["unit_type"]))
        if any(v > 0 for v in unmet.values()):
            short = True
        else:
            log_.missing.clear()
        return short

    async def _maybe_whistle(self, inc: dict[str, Any]) -> None:
        incident_id = str(inc["id"])
        if not inc.get("whistle_eligible") or inc.get("whistle_id") or incident_id in self.sounded:
            return
        centres = [Centre(c) for c in inc.get("centres", [])]
        centre = next((c for c in centres if c in _SOUNDING), None)
        if centre is not None:
            await self._sound(incident_id, centre)
        elif incident_id not in self.whistle_waits:
            # Only 122 heard of it: the joint intake shows it to 120 (or 119), who sound it
            # unless their own caller gets through first.
            self.whistle_waits.add(incident_id)
            self._spawn(self._sound_later(incident_id))

    async def _sound_later(self, incident_id: str) -> None:
        await asyncio.sleep(self.cfg.whistle_wait_s)
        async with self._lock(incident_id):
            r = await self.http.get(f"/api/incidents/{incident_id}", headers=self._admin)
            if r.status_code != 200:
                return
            inc = r.json()
            if inc.get("whistle_id") or incident_id in self.sounded:
                return
            centres = [Centre(c) for c in inc.get("centres", [])]
            centre = next((c for c in centres if c in _SOUNDING), None)
            if centre is None:
                centre = Centre.EMS if "ems" in inc.get("agencies", []) else Centre.FIRE
            await self._sound(incident_id, centre)

    async def _sound(self, incident_id: str, centre: Centre) -> None:
        r = await self.http.post(
            f"/api/incidents/{incident_id}/whistle",
            json={},
            headers=self._dispatcher(CENTRE_AGENCY[centre]),
        )
        if r.status_code in (201, 409):  # 409: already sounded (the service's auto-whistle)
            self.sounded.add(incident_id)
        else:
            log.warning("whistle for %s: %s %s", incident_id, r.status_code, r.text[:200])

    # -- coordinators ----------------------------------------------------------------------------

    def _coordinator_handler(self, name: str) -> Callable[[Message], None]:
        def handle(msg: Message) -> None:
            kind = msg.get("type")
            data = msg.get("data") or {}
            summons = data.get("summons")
            if not isinstance(summons, dict) or summons.get("coordinator") != name:
                return
            if kind == "whistle.summons":
                if name in self.cfg.silent_coordinators:
                    self.silenced.append((name, str(summons.get("id"))))
                    return
                self.coordinators[name].summon(
                    whistle_id=str(data.get("whistle_id")),
                    summons_id=str(summons.get("id")),
                    now_s=self.now_s(),
                )
            elif kind == "whistle.stand_down":
                self.coordinators[name].stand_down(str(summons.get("id")))

        return handle

    async def _coordinator_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            now = self.now_s()
            for name, sim in self.coordinators.items():
                for due in sim.step(now):
                    await self.sessions[f"coord:{name}"].send(
                        {"type": "ack", "whistle_id": due.whistle_id}
                    )
                    self.acks_sent.append((name, due.whistle_id, now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.25)

    # -- the gateway and the terminals -----------------------------------------------------------

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
                route = Route.model_validate(data["route"])
                sim.route_planned(incident_id, str(data.get("leg")), route, self.now_s())

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
            out = [c for c in out if c.at_s / self.speed <= self.duration_s]
        return out

    async def _post_calls(self, plan: list[ScheduledCall], start_s: float) -> None:
        total = max(len(plan), 1)
        for n, sc in enumerate(plan, start=1):
            due = start_s + sc.at_s / self.speed
            wait = due - self.now_s()
            if wait > 0:
                await asyncio.sleep(wait)
            now = datetime.now(UTC).astimezone(self.scenario.start.tzinfo)
            call = sc.call.model_copy(
                update={"call_id": f"{self.tag}-{sc.call.call_id}", "received_at": now}
            )
            key = f"{call.centre.value}:{call.call_id}"
            self.posted[key] = PostedCall(sc, key, now, self.now_s())
            r = await self.http.post(
                "/api/calls",
                json=call.model_dump(mode="json", exclude_none=True),
                headers=self._dispatcher(CENTRE_AGENCY[call.centre]),
            )
            if r.status_code != 202:
                log.warning("call %s refused: %s %s", key, r.status_code, r.text[:200])
            self._say(0.8 * n / total, f"call {n}/{total} ({sc.source})")

    def _busy(self) -> bool:
        if any(u.busy for u in self.units.values()):
            return True
        if any(c.next_due_s() is not None for c in self.coordinators.values()):
            return True
        return bool(self._tasks - self._background)

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> LiveDrillReport:
        async with httpx.AsyncClient(base_url=self.url, timeout=self.cfg.http_timeout_s) as http:
            self._http = http
            self._say(0.0, "set-up")
            busy = await self._setup()
            await self._open()
            for unit_id in sorted(busy):
                await self._send_unit(unit_id, UnitStatus.AVAILABLE)
            stop = asyncio.Event()
            ticker = asyncio.create_task(self._ticker(stop))
            coords = asyncio.create_task(self._coordinator_loop(stop))
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
                incidents=list(self.incidents.values()),
                legs=[leg for u in self.units.values() for leg in u.legs],
                field_=self.field,
                timings=self.timings,
                flow_factor=self._flow_factor,
                signal_delay_s=self.router.profile.signal_delay_s,
                max_drive_s=self.cfg.model.max_drive_s,
            )
            self._say(0.97, "uploading the report")
            await self._upload(report)
            self._say(1.0, "done")
            return report

    async def _collect(self) -> None:
        for found in self.incidents.values():
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
    speed: float,
    duration_s: float | None,
    progress: Progress | None = None,
    config: LiveConfig | None = None,
    fleet: SimFleet | None = None,
) -> DrillReport:
    """Run a scenario live against the service at ``url`` and upload its report.

    Args:
        url: the service's base URL (``http://host:port``).
        secret: the service's ``YISHAO_SECRET`` (the drill mints its clients' tokens).
        router: the same road graph the service loaded (signal ids and routes must agree).
        scenario: what happens.
        seed: the same seed gives the same calls, fleet, signal plans and human delays.
        speed: call-time compression (60: an hour of calls per minute); the field runs in
            real time.
        duration_s: stop posting calls after this many wall seconds (None: the whole scenario).
        progress: called with ``(fraction, label)``.
        config: tuning (:class:`LiveConfig`).
        fleet: units, hospitals and roster; default generated from the map with ``seed``.

    Returns:
        The report (``mode == "live"``), as uploaded to ``/api/reports/{drill_id}``.

    Raises:
        LiveError: the service is unreachable, refused the set-up, or a socket could not
            (re)connect.
        ValueError: a scenario place cannot be resolved on this map; speed not positive.
    """
    drill = _Drill(
        url=url,
        secret=secret,
        router=router,
        scenario=scenario,
        seed=seed,
        speed=speed,
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


def drill_live_command(
    *,
    url: str,
    secret: str,
    scenario: Scenario,
    graph: Path | None,
    seed: int,
    speed: float,
    duration_s: float | None,
    out: Path | None = None,
    as_json: bool = False,
    config: LiveConfig | None = None,
) -> DrillReport:
    """``yishao drill --url``: run :func:`run_live` with a rich progress bar and print the result.

    Prints the summary (or the whole report with ``as_json``) on stdout and the report's
    address ``{url}/reports/{drill_id}?token=...`` on stderr.

    Raises:
        LiveError, ValueError: as :func:`run_live`; RoutingError / FileNotFoundError: no graph.
    """
    import json

    import typer
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from routing import sample_graph_path

    err = Console(stderr=True)
    with err.status("loading graph"):
        router = Router.from_file(graph or sample_graph_path())
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=as_json,
    ) as bar:
        task = bar.add_task(f"live drill {scenario.name}", total=1.0)

        def progress(fraction: float, label: str) -> None:
            bar.update(task, completed=fraction, description=f"live {scenario.name}: {label}")

        report = asyncio.run(
            run_live(
                url=url,
                secret=secret,
                router=router,
                scenario=scenario,
                seed=seed,
                speed=speed,
                duration_s=duration_s,
                progress=progress,
                config=config,
            )
        )
    if out is not None:
        out.write_text(render_html(report), encoding="utf-8")
    if as_json:
        typer.echo(report.model_dump_json())
    else:
        typer.echo(json.dumps(report.summary.model_dump(mode="json"), indent=2))
    err.print(f"report: {report_url(url, secret, report.drill_id)}")
    return report
