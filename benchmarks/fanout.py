"""Websocket fan-out benchmark: events on ``{yishao}:events`` to console and coordinator screens.

For one, then two real service processes (``python -m yishao serve``, clients split across
them), with N console sockets (dispatchers, everything) and M coordinator sockets:

- a steady producer ``XADD``s ~200-byte ``incident.updated``-like events straight to the event
  log at ``--rate`` per second (send time embedded in ``data.sent``); every console receipt is
  timed: event-to-screen latency p50/p99/max, messages and bytes per second received,
  consoles cut (4408) if any;
- at the same time, ``--whistles`` whistles are sounded through REST
  (``POST /api/incidents/{id}/whistle`` on eligible incidents created from 120 drowning calls
  through ``POST /api/calls``): latency from the POST to the receipt of ``whistle.summons`` by
  all three on-duty coordinators, p50/p99/max;
- CPU (percent of one core) and RSS of each service process over the steady phase.

Run by hand (bounded: ``--duration`` seconds per configuration; loopback only; its own Redis DB,
flushed before, between and after; db 0 and 15 are refused)::

    .venv/bin/python benchmarks/fanout.py                      # 200 + 50 sockets, 500 ev/s, 1 and 2
    .venv/bin/python benchmarks/fanout.py --rate 100 --instances 1
    .venv/bin/python benchmarks/fanout.py --json > fanout.json

Clients connect without permessage-deflate (``compression=None``), as a console that wants
low latency should; with deflate each message is compressed once per client.

Positions mode (``--mode positions``; helpers in ``benchmarks/_fanout_positions.py``): ``--units``
(2,000) units registered through ``PUT /api/units/{id}``, one terminal websocket each spread
over ``--terminal-procs`` processes, each sending ``position`` at 1 Hz (seeded jitter, ``at``
with +08:00); consoles time every unit entry of every ``positions`` frame (receipt - ``at``,
also minus ``--frame-s``); whistles as above; service CPU/RSS, Redis CPU (``INFO cpu``), the
clients' and the whole machine's CPU ("other processes" = the rest: a busy shared box shows
there). ``--graph`` sets YISHAO_GRAPH, ``--py-spy DIR`` records the services (raw stacks),
``YISHAO_BENCH_LOG_DIR`` keeps the services' logs::

    .venv/bin/python benchmarks/fanout.py --mode positions --instances 1,2 --duration 20

Hook for positions (issue 5, part 2): ``Load.extra_producers`` takes more coroutines run during
the steady phase (e.g. 2,000 units at 1 Hz posting ``position`` messages from terminal
sockets), and ``Screens.on_message`` is where position frames would be timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import (
    Service,
    free_port,
    percentile_high,
    proc_stat_cpu,
    redis_cpu_seconds,
    redis_url_problem,
    rss_bytes,
    run_async,
    start_service,
    stop_services,
    wait_healthy,
)
from _common import mint_token as token
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from benchmarks._fanout_positions import (
    HIST_MS,
    PositionTiming,
    hist_pct,
    merge_hist,
    register_units,
    terminal_worker,
    unit_id,
)
from dispatch.constants import Keys
from dispatch.models import Agency, Role

KEYS = Keys()
AGENCIES = {"traffic": Agency.TRAFFIC, "ems": Agency.EMS, "fire": Agency.FIRE}


# -- service processes ------------------------------------------------------------------------
def rss_mb(svc: Service) -> float:
    return rss_bytes(svc.proc.pid) / 2**20


def launch_services(n: int, redis_url: str, log_level: str, env: dict[str, str]) -> list[Service]:
    """``n`` services, not waited for. Their logs go to ``YISHAO_BENCH_LOG_DIR`` if set, else
    stderr to the terminal at info/debug level (and nowhere otherwise)."""
    log_dir = os.environ.get("YISHAO_BENCH_LOG_DIR")
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        port = free_port()
        path = Path(log_dir) / f"fanout-{n}x-{i}-{port}.log" if log_dir else None
        out.append(
            start_service(
                f"bench-{i}", redis_url, port=port, log_level=log_level, log_path=path,
                extra_env=env, stderr_to_terminal=log_level in {"info", "debug"},
            )
        )  # fmt: skip
    return out


async def start_services(
    n: int,
    redis_url: str,
    log_level: str,
    *,
    graph: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> list[Service]:
    """``n`` healthy services (stopped again if they do not come up)."""
    env = dict(extra_env or {})
    if graph is not None:
        env["YISHAO_GRAPH"] = str(graph)
    out = launch_services(n, redis_url, log_level, env)
    try:
        await wait_healthy(out, 120 if graph is not None else 60)
    except (RuntimeError, TimeoutError):
        stop_services(out, timeout=15)
        raise
    return out


# -- screens ----------------------------------------------------------------------------------
@dataclass
class Screens:
    """The client side: console and coordinator sockets and what they received."""

    latencies: list[float] = field(default_factory=list)
    messages: int = 0
    bytes: int = 0
    cut: dict[int, int] = field(default_factory=dict)
    # incident id -> coordinator -> receipt time of its whistle.summons
    summons: dict[str, dict[str, float]] = field(default_factory=dict)
    summons_waiters: dict[str, asyncio.Event] = field(default_factory=dict)
    counting: bool = False
    # Positions mode: frames timed, and every message counted, inside [window[0], window[1]].
    positions: PositionTiming | None = None
    window: Any = None
    all_messages: int = 0
    all_bytes: int = 0

    def on_message(self, raw: str | bytes, coordinator: str | None) -> None:
        now = time.time()
        if self.window is not None and self.window[0] <= now <= self.window[1]:
            self.all_messages += 1
            self.all_bytes += len(raw)
            if self.positions is not None and raw[:20] in (
                '{"type":"positions",',
                b'{"type":"positions",',
            ):
                self.positions.on_frame(raw if isinstance(raw, str) else raw.decode(), now)
                return
        if raw[:20] in ('{"type":"positions",', b'{"type":"positions",'):
            return  # outside the window: not parsed
        msg = orjson.loads(raw)
        kind = msg["type"]
        if kind == "incident.updated":
            if self.counting:
                self.latencies.append(now - msg["data"]["sent"])
                self.messages += 1
                self.bytes += len(raw)
        elif kind == "whistle.summons" and coordinator is not None:
            got = self.summons.setdefault(msg["incident_id"], {})
            got[coordinator] = now
            if len(got) >= 3 and msg["incident_id"] in self.summons_waiters:
                self.summons_waiters[msg["incident_id"]].set()

    async def run(self, url: str, coordinator: str | None, started: asyncio.Event) -> None:
        try:
            async with connect(
                url, compression=None, proxy=None, open_timeout=60, max_queue=256,
                max_size=8 * 2**20,
            ) as ws:  # fmt: skip
                await self._ready(ws)
                started.set()
                async for raw in ws:
                    self.on_message(raw, coordinator)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            self.cut[code] = self.cut.get(code, 0) + 1
            started.set()

    @staticmethod
    async def _ready(ws: ClientConnection) -> None:
        while orjson.loads(await ws.recv())["type"] != "ready":
            pass


def console_worker(
    urls: list[str], ready: Any, stop: Any, results: Any, window: Any = None
) -> None:
    """A process of console sockets (the receiving side needs more than one core's worth of
    Python at high rates); reports its screens' figures when ``stop`` is set."""

    async def go() -> None:
        screens = Screens(counting=True)
        if window is not None:
            screens.window, screens.positions = window, PositionTiming()
        cpu = [0.0, 0.0]
        started = [asyncio.Event() for _ in urls]
        tasks = [
            asyncio.create_task(screens.run(u, None, e)) for u, e in zip(urls, started, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), timeout=60)
        ready.put(len(urls))
        # A process-wide event, not an asyncio one: wait for it on a thread.
        while not stop.is_set():
            await asyncio.sleep(0.1)
            now = time.time()
            if window is None or not window[0]:
                continue
            if not cpu[0] and now >= window[0]:
                cpu[0] = time.process_time()
            if not cpu[1] and now >= window[1]:
                cpu[1] = time.process_time()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put(
            {
                "latencies": screens.latencies,
                "messages": screens.messages,
                "bytes": screens.bytes,
                "cut": screens.cut,
                "all_messages": screens.all_messages,
                "all_bytes": screens.all_bytes,
                "positions": screens.positions.figures() if screens.positions else None,
                "cpu_s_window": cpu[1] - cpu[0] if cpu[0] and cpu[1] else float("nan"),
            }
        )

    run_async(go(), uvloop=window is not None)  # the events mode has always run on asyncio's


# -- load -------------------------------------------------------------------------------------
@dataclass
class Load:
    rate: float
    duration_s: float
    extra_producers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def produce(redis: Redis, rate: float, duration_s: float) -> int:
    """XADD incident.updated-like events at a steady ``rate`` (batched every 10 ms)."""
    sent = 0
    start = time.monotonic()
    pad = "x" * 60
    while (elapsed := time.monotonic() - start) < duration_s:
        due = int(elapsed * rate) - sent
        if due > 0:
            async with redis.pipeline(transaction=False) as pipe:
                for _ in range(due):
                    n = sent
                    data = {
                        "sent": time.time(),
                        "n": n,
                        "status": "dispatched",
                        "version": n,
                        "note": pad,
                    }
                    pipe.xadd(
                        KEYS.events,
                        {
                            "type": "incident.updated",
                            "incident_id": f"BENCH-{n % 50}",
                            "actor": "bench",
                            "ts": datetime.now(UTC).isoformat(),
                            "data": orjson.dumps(data),
                        },
                        maxlen=200_000,
                        approximate=True,
                    )
                    sent += 1
                await pipe.execute()
        await asyncio.sleep(0.01)
    return sent


async def prepare_whistles(services: list[Service], count: int) -> list[str]:
    """A roster, and ``count`` whistle-eligible incidents from 120 drowning calls."""
    admin = {"Authorization": f"Bearer {token(Role.ADMIN, Agency.POLICE, 'bench-admin')}"}
    ems = {"Authorization": f"Bearer {token(Role.DISPATCHER, Agency.EMS, 'bench-120')}"}
    roster = {
        "rules": [
            {"agency": a, "names": [f"coord-{a}-{i}" for i in range(20)], "start": "2020-01-01"}
            for a in ("traffic", "ems", "fire")
        ]
    }
    async with httpx.AsyncClient(base_url=services[0].url, timeout=30) as http:
        r = await http.put("/api/rosters", json=roster, headers=admin)
        r.raise_for_status()
        now = datetime.now(UTC).isoformat()
        for i in range(count):
            call = {
                "call_id": f"120-B{i:04d}",
                "centre": "120",
                "call_type": "drowning",
                # ~1.1 km apart: no two merge.
                "lat": 30.0 + 0.01 * (i // 10),
                "lon": 120.0 + 0.01 * (i % 10),
                "received_at": now,
                "severity": 5,
            }
            (await http.post("/api/calls", json=call, headers=ems)).raise_for_status()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = await http.get("/api/incidents", params={"limit": count}, headers=admin)
            ids = [i["id"] for i in got.json()]
            if len(ids) >= count:
                return ids
            await asyncio.sleep(0.2)
    raise RuntimeError("incidents were not created in time")


async def sound_whistles(
    services: list[Service], screens: Screens, incident_ids: list[str], spacing_s: float
) -> list[float]:
    ems = {"Authorization": f"Bearer {token(Role.DISPATCHER, Agency.EMS, 'bench-120')}"}
    out: list[float] = []
    async with httpx.AsyncClient(timeout=30) as http:
        for n, incident_id in enumerate(incident_ids):
            waiter = screens.summons_waiters.setdefault(incident_id, asyncio.Event())
            url = f"{services[n % len(services)].url}/api/incidents/{incident_id}/whistle"
            t0 = time.time()
            try:
                r = await http.post(url, headers=ems)
            except httpx.HTTPError as exc:
                print(f"whistle {incident_id}: {type(exc).__name__} {exc}", file=sys.stderr)
                out.append(float("inf"))
                continue
            if r.status_code != 201:
                print(f"whistle {incident_id}: {r.status_code} {r.text}", file=sys.stderr)
                out.append(float("inf"))
                continue
            try:
                await asyncio.wait_for(waiter.wait(), timeout=10)
            except TimeoutError:
                out.append(float("inf"))
                continue
            out.append(max(screens.summons[incident_id].values()) - t0)
            await asyncio.sleep(spacing_s)
    return out


async def on_duty(service: Service) -> list[str]:
    admin = {"Authorization": f"Bearer {token(Role.ADMIN, Agency.POLICE, 'bench-admin')}"}
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{service.url}/api/rosters/today", headers=admin)
        r.raise_for_status()
        return [d["primary"] for d in r.json()["duty"]]


async def coordinator_names(services: list[Service], count: int) -> list[str]:
    """``count`` coordinators: the ones on duty first, then the rest of the roster."""
    duty = await on_duty(services[0])
    names = duty + [f"coord-{a}-{i}" for a in ("traffic", "ems", "fire") for i in range(20)]
    return list(dict.fromkeys(names))[:count]


def console_urls(
    services: list[Service], count: int, choose: Callable[[list[Agency]], Agency]
) -> list[str]:
    """Websocket URLs of ``count`` dispatcher consoles, round robin over the services, each of
    the agency ``choose`` picks."""
    urls = []
    for i in range(count):
        svc = services[i % len(services)]
        tok = token(Role.DISPATCHER, choose(list(AGENCIES.values())), f"console-{i}")
        urls.append(f"ws://127.0.0.1:{svc.port}/ws?token={tok}")
    return urls


async def open_coordinators(
    screens: Screens,
    services: list[Service],
    coordinators: list[str],
    tasks: list[asyncio.Task[None]],
) -> None:
    """One socket per coordinator (round robin over the services), its task added to
    ``tasks``; returns once every one is ready."""
    started: list[asyncio.Event] = []
    for i, name in enumerate(coordinators):
        svc = services[i % len(services)]
        tok = token(Role.COORDINATOR, AGENCIES[name.split("-")[1]], name)
        ev = asyncio.Event()
        started.append(ev)
        url = f"ws://127.0.0.1:{svc.port}/ws?token={tok}"
        tasks.append(asyncio.create_task(screens.run(url, name, ev)))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), timeout=60)


def summons_figures(whistle_lat: list[float]) -> dict[str, float]:
    """Whistle POST -> all three coordinators' summons: n, p50, p99, max in ms."""
    return {
        "n": len(whistle_lat),
        "p50": percentile_high(whistle_lat, 50) * 1000,
        "p99": percentile_high(whistle_lat, 99) * 1000,
        "max": max(whistle_lat, default=float("nan")) * 1000,
    }


async def close_all(tasks: list[asyncio.Task[None]], services: list[Service], redis: Redis) -> None:
    """Cancel the coordinator sockets, stop the services, flush and close the benchmark's Redis."""
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stop_services(services, timeout=15)
    await redis.flushdb()
    await redis.aclose()


async def run_config(args: argparse.Namespace, instances: int) -> dict[str, Any]:
    redis = Redis.from_url(args.redis_url)
    await redis.flushdb()
    services = await start_services(instances, args.redis_url, args.log_level)
    screens = Screens()
    tasks: list[asyncio.Task[None]] = []
    procs: list[Any] = []
    try:
        incident_ids = await prepare_whistles(services, args.whistles)
        coordinators = await coordinator_names(services, args.coordinators)
        urls = console_urls(services, args.consoles, random.choice)
        ctx = mp.get_context("spawn")
        ready_q, results_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        procs = [
            ctx.Process(
                target=console_worker, args=(urls[k :: args.client_procs], ready_q, stop, results_q)
            )
            for k in range(args.client_procs)
        ]
        for proc in procs:
            proc.start()
        loop = asyncio.get_running_loop()
        for _ in procs:
            await loop.run_in_executor(None, ready_q.get, True, 90)
        await open_coordinators(screens, services, coordinators, tasks)
        # Consoles that stop reading (a frozen browser tab): the hub must cut them, and the
        # others' latency must not suffer (compare a run with --stalled 0).
        stalled = [
            await connect(url, max_queue=1, compression=None, proxy=None, open_timeout=30)
            for url in console_urls(services, args.stalled, random.choice)
        ]
        await asyncio.sleep(0.5)
        cpu0 = [s.cpu_seconds() for s in services]
        t0 = time.monotonic()
        load = Load(args.rate, args.duration)
        producer = asyncio.create_task(produce(redis, load.rate, load.duration_s))
        extra = [asyncio.create_task(p()) for p in load.extra_producers]
        spacing = max(0.0, args.duration * 0.8 / max(1, args.whistles) - 0.01)
        whistle_lat = await sound_whistles(services, screens, incident_ids, spacing)
        produced = await producer
        for t in extra:
            await t
        await asyncio.sleep(1.0)  # let the tail arrive
        elapsed = time.monotonic() - t0
        cpu = [(s.cpu_seconds() - c) / elapsed * 100 for s, c in zip(services, cpu0, strict=True)]
        rss = [rss_mb(s) for s in services]
        stop.set()
        for _ in procs:
            part = await loop.run_in_executor(None, results_q.get, True, 60)
            screens.latencies.extend(part["latencies"])
            screens.messages += part["messages"]
            screens.bytes += part["bytes"]
            for code, n in part["cut"].items():
                screens.cut[code] = screens.cut.get(code, 0) + n
        for proc in procs:
            proc.join(timeout=10)
        stalled_cut = 0
        for ws in stalled:
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=0.5)
            except ConnectionClosed as closed:
                stalled_cut += closed.rcvd is not None and closed.rcvd.code == 4408
            except TimeoutError:
                await ws.close()
        expected = produced * (args.consoles - sum(screens.cut.values()))
        lat = screens.latencies
        result = {
            "instances": instances,
            "consoles": args.consoles,
            "client_procs": args.client_procs,
            "coordinators": len(coordinators),
            "rate_per_s": args.rate,
            "duration_s": args.duration,
            "events_produced": produced,
            "console_messages": screens.messages,
            "console_messages_expected": expected,
            "messages_per_s": screens.messages / elapsed,
            "bytes_per_s": screens.bytes / elapsed,
            "latency_ms": {
                "p50": percentile_high(lat, 50) * 1000,
                "p99": percentile_high(lat, 99) * 1000,
                "max": max(lat, default=float("nan")) * 1000,
            },
            "closed": screens.cut,
            "stalled": args.stalled,
            "stalled_cut_4408": stalled_cut,
            "summons_ms": summons_figures(whistle_lat),
            "service_cpu_pct": [round(c, 1) for c in cpu],
            "service_rss_mb": [round(r, 1) for r in rss],
        }
        return result
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        await close_all(tasks, services, redis)


# -- positions mode ---------------------------------------------------------------------------
def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    parts = proc_stat_cpu()
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def _start_py_spy(services: list[Service], out_dir: Path, seconds: float) -> list[Any]:
    """``py-spy record`` each service for the measuring window (flamegraph + raw stacks)."""
    spy = Path(sys.executable).with_name("py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for n, svc in enumerate(services):
        for fmt, ext in (("raw", "txt"),):
            procs.append(
                subprocess.Popen(
                    [
                        str(spy),
                        "record",
                        "-p",
                        str(svc.proc.pid),
                        "-d",
                        str(int(seconds)),
                        "-r",
                        "50",
                        "--nonblocking",
                        "-f",
                        fmt,
                        "-o",
                        str(out_dir / f"service-{len(services)}x-{n}.{ext}"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    return procs


async def run_positions(args: argparse.Namespace, instances: int) -> dict[str, Any]:
    """2,000 terminals at 1 Hz, consoles timing position frames, whistles at the same time."""
    redis = Redis.from_url(args.redis_url)
    await redis.flushdb()
    frame_s = args.frame_s
    extra_env = {"YISHAO_POSITION_FRAME_S": str(frame_s)}
    services = await start_services(
        instances, args.redis_url, args.log_level, graph=args.graph, extra_env=extra_env
    )
    screens = Screens()
    tasks: list[asyncio.Task[None]] = []
    procs: list[Any] = []
    spies: list[Any] = []
    try:
        admin_tok = token(Role.ADMIN, Agency.POLICE, "bench-admin")
        reg_s = await register_units(services[0].url, admin_tok, args.units, args.seed)
        incident_ids = await prepare_whistles(services, args.whistles)
        coordinators = await coordinator_names(services, args.coordinators)
        urls = console_urls(services, args.consoles, random.Random(args.seed).choice)
        ctx = mp.get_context("spawn")
        window = ctx.Array("d", 2, lock=False)  # consoles: [start, end]
        times = ctx.Array("d", 3, lock=False)  # terminals: [go, start, end]
        ready_q, results_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        term_q, term_results = ctx.Queue(), ctx.Queue()
        consoles = [
            ctx.Process(
                target=console_worker,
                args=(urls[k :: args.client_procs], ready_q, stop, results_q, window),
            )
            for k in range(args.client_procs)
        ]
        procs.extend(consoles)
        for proc in consoles:
            proc.start()
        loop = asyncio.get_running_loop()
        for _ in consoles:
            await loop.run_in_executor(None, ready_q.get, True, 120)
        t_conn = time.monotonic()
        units = []
        for i in range(args.units):
            svc = services[i % instances]
            tok = token(Role.TERMINAL, Agency.EMS, unit_id(i))
            units.append((i, f"ws://127.0.0.1:{svc.port}/ws?token={tok}"))
        terminals = [
            ctx.Process(
                target=terminal_worker,
                args=(units[k :: args.terminal_procs], args.seed, times, term_q, term_results),
            )
            for k in range(args.terminal_procs)
        ]
        procs.extend(terminals)
        for proc in terminals:
            proc.start()
        connected = failed = 0
        for _ in terminals:
            _tag, ok, bad = await loop.run_in_executor(None, term_q.get, True, 180)
            connected, failed = connected + ok, failed + bad
        connect_s = time.monotonic() - t_conn
        await open_coordinators(screens, services, coordinators, tasks)
        rss_idle = [rss_mb(s) for s in services]
        # Go: units start within the next second; measure after the warm-up.
        go = time.time() + 0.5
        start, end = go + args.warmup, go + args.warmup + args.duration
        window[0], window[1] = start, end
        times[1], times[2] = start, end
        times[0] = go
        producer = (
            asyncio.create_task(produce(redis, args.rate, end - time.time()))
            if args.rate > 0
            else None
        )
        await asyncio.sleep(max(0.0, start - time.time()))
        cpu0 = [s.cpu_seconds() for s in services]
        rcpu0 = await redis_cpu_seconds(redis)
        mcpu0 = _machine_cpu()
        main0 = time.process_time()
        t0 = time.monotonic()
        if args.py_spy:
            spies = _start_py_spy(services, Path(args.py_spy), args.duration)
        spacing = max(0.0, args.duration * 0.8 / max(1, args.whistles) - 0.01)
        whistle_lat = await sound_whistles(services, screens, incident_ids, spacing)
        rss_peak = [0.0] * len(services)
        while time.time() < end:
            rss_peak = [max(p, rss_mb(s)) for p, s in zip(rss_peak, services, strict=True)]
            await asyncio.sleep(min(0.5, max(0.0, end - time.time())))
        elapsed = time.monotonic() - t0
        cpu = [(s.cpu_seconds() - c) / elapsed * 100 for s, c in zip(services, cpu0, strict=True)]
        redis_cpu = (await redis_cpu_seconds(redis) - rcpu0) / elapsed * 100
        mcpu1 = _machine_cpu()
        machine_pct = (mcpu1[0] - mcpu0[0]) / max(1, mcpu1[1] - mcpu0[1]) * 100 * os.cpu_count()
        main_cpu = (time.process_time() - main0) / elapsed * 100
        rss = [rss_mb(s) for s in services]
        rss_peak = [max(p, r) for p, r in zip(rss_peak, rss, strict=True)]
        produced = await producer if producer is not None else 0
        term: list[dict[str, Any]] = [
            await loop.run_in_executor(None, term_results.get, True, 60) for _ in terminals
        ]
        await asyncio.sleep(0.5)
        stop.set()
        parts = [await loop.run_in_executor(None, results_q.get, True, 60) for _ in consoles]
        for proc in procs:
            proc.join(timeout=10)
        for spy in spies:
            spy.wait(timeout=30)
        hist = [0] * HIST_MS
        ack_hist = [0] * HIST_MS
        frames = entries = pbytes = all_msgs = all_bytes = 0
        pmax = 0.0
        frame_units: list[int] = []
        cut: dict[int, int] = {}
        for part in parts:
            pos = part["positions"]
            merge_hist(hist, pos["hist"])
            frames += pos["frames"]
            entries += pos["entries"]
            pbytes += pos["bytes"]
            pmax = max(pmax, pos["max_ms"])
            frame_units.extend(pos["frame_units"])
            all_msgs += part["all_messages"]
            all_bytes += part["all_bytes"]
            for code, n in part["cut"].items():
                cut[code] = cut.get(code, 0) + n
        sent = sum(t["sent_in_window"] for t in term)
        for t in term:
            merge_hist(ack_hist, t["ack_hist"])
        p50, p99 = hist_pct(hist, 0.5), hist_pct(hist, 0.99)
        result = {
            "mode": "positions",
            "instances": instances,
            "graph": str(args.graph) if args.graph else None,
            "units": args.units,
            "terminals_connected": connected,
            "terminals_failed": failed,
            "terminal_procs": args.terminal_procs,
            "consoles": args.consoles,
            "client_procs": args.client_procs,
            "coordinators": len(coordinators),
            "frame_s": frame_s,
            "duration_s": args.duration,
            "setup_s": {"register_units": round(reg_s, 1), "connect": round(connect_s, 1)},
            "fixes_sent_per_s": sent / elapsed,
            "fix_ack_ms": {
                "p50": hist_pct(ack_hist, 0.5),
                "p99": hist_pct(ack_hist, 0.99),
                "n": sum(ack_hist),
            },
            "terminal_errors": {k: v for t in term for k, v in t["error_codes"].items()},
            "terminal_closed": {str(k): v for t in term for k, v in t["closed"].items()},
            "events_produced": produced,
            "position_frames": frames,
            "frame_units_median": float(percentile_high(frame_units, 50)) if frame_units else 0,
            "frame_kb_mean": pbytes / max(1, frames) / 1024,
            "position_entries": entries,
            "position_entries_expected": round(sent * (args.consoles - sum(cut.values()))),
            "position_ms": {
                "p50": p50,
                "p99": p99,
                "max": pmax,
                "p50_minus_frame": p50 - frame_s * 1000,
                "p99_minus_frame": p99 - frame_s * 1000,
            },
            "console_messages_per_s": all_msgs / elapsed,
            "console_bytes_per_s": all_bytes / elapsed,
            "closed": cut,
            "summons_ms": summons_figures(whistle_lat),
            "service_cpu_pct": [round(c, 1) for c in cpu],
            "service_rss_mb": [round(r, 1) for r in rss],
            "service_rss_idle_mb": [round(r, 1) for r in rss_idle],
            "service_rss_peak_mb": [round(r, 1) for r in rss_peak],
            "redis_cpu_pct": round(redis_cpu, 1),
            "client_cpu_pct": {
                "terminals": round(sum(t["cpu_s_window"] for t in term) / elapsed * 100, 1),
                "consoles": round(sum(p["cpu_s_window"] for p in parts) / elapsed * 100, 1),
                "main": round(main_cpu, 1),
            },
            "machine_cpu_pct": round(machine_pct, 1),
        }
        ours = sum(cpu) + redis_cpu + sum(result["client_cpu_pct"].values())
        # Whatever else ran on the box (colleagues' jobs): read it before comparing runs.
        result["other_cpu_pct"] = round(machine_pct - ours, 1)
        return result
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.terminate()
        stop_procs(procs)
        await close_all(tasks, services, redis)


def stop_procs(procs: list[Any]) -> None:
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)


def show_positions(r: dict[str, Any]) -> str:
    lat, sm, ack = r["position_ms"], r["summons_ms"], r["fix_ack_ms"]
    return (
        f"{r['instances']} instance(s), graph {r['graph'] or 'none'}, {r['units']} terminals "
        f"({r['terminals_connected']} connected, {r['terminals_failed']} failed), "
        f"{r['consoles']} consoles + {r['coordinators']} coordinators, frame {r['frame_s']} s, "
        f"{r['duration_s']:.0f} s measured\n"
        f"  terminals: {r['fixes_sent_per_s']:,.0f} fixes/s, position.ok p50 {ack['p50']:.0f} ms "
        f"p99 {ack['p99']:.0f} ms, errors {r['terminal_errors']}, closed {r['terminal_closed']}\n"
        f"  consoles: {r['position_frames']:,} frames (median {r['frame_units_median']:.0f} units, "
        f"{r['frame_kb_mean']:.0f} KB), entries {r['position_entries']:,}/"
        f"{r['position_entries_expected']:,}, {r['console_messages_per_s']:,.0f} msg/s, "
        f"{r['console_bytes_per_s'] / 1e6:.2f} MB/s, closed {r['closed']}\n"
        f"  position-to-screen p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, "
        f"max {lat['max']:.0f} ms; minus the frame interval: p50 {lat['p50_minus_frame']:.0f} ms, "
        f"p99 {lat['p99_minus_frame']:.0f} ms\n"
        f"  summons (POST -> all 3 coordinators): n={sm['n']} p50 {sm['p50']:.1f} ms, "
        f"p99 {sm['p99']:.1f} ms, max {sm['max']:.1f} ms\n"
        f"  service CPU {r['service_cpu_pct']} % of a core, RSS {r['service_rss_mb']} MB "
        f"(idle {r['service_rss_idle_mb']}, peak {r['service_rss_peak_mb']}), "
        f"Redis CPU {r['redis_cpu_pct']} %\n"
        f"  clients CPU {r['client_cpu_pct']} %, whole machine {r['machine_cpu_pct']} % "
        f"(of {os.cpu_count()} cores), other processes {r['other_cpu_pct']} %"
    )


def show(r: dict[str, Any]) -> str:
    if r.get("mode") == "positions":
        return show_positions(r)
    lat, sm = r["latency_ms"], r["summons_ms"]
    return (
        f"{r['instances']} instance(s), {r['consoles']} consoles + {r['coordinators']} "
        f"coordinators, {r['rate_per_s']:.0f} ev/s for {r['duration_s']:.0f} s\n"
        f"  console: {r['console_messages']:,}/{r['console_messages_expected']:,} msgs, "
        f"{r['messages_per_s']:,.0f} msg/s, {r['bytes_per_s'] / 1e6:.2f} MB/s, "
        f"latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms, "
        f"closed {r['closed']}\n"
        f"  summons (POST -> all 3 coordinators): n={sm['n']} p50 {sm['p50']:.1f} ms, "
        f"p99 {sm['p99']:.1f} ms, max {sm['max']:.1f} ms\n"
        f"  service CPU {r['service_cpu_pct']} % of a core, RSS {r['service_rss_mb']} MB"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    p.add_argument("--instances", default="1,2", help="comma-separated, e.g. 1,2")
    p.add_argument("--consoles", type=int, default=200)
    p.add_argument("--stalled", type=int, default=0, help="events mode: consoles that never read")
    p.add_argument("--coordinators", type=int, default=50)
    p.add_argument("--mode", choices=["events", "positions"], default="events")
    p.add_argument(
        "--rate", type=float, default=None,
        help="events per second (default 500 in events mode, 0 in positions mode)",
    )  # fmt: skip
    p.add_argument("--units", type=int, default=2000, help="positions mode: terminals")
    p.add_argument("--terminal-procs", type=int, default=3, help="processes for terminals")
    p.add_argument("--frame-s", type=float, default=1.0, help="YISHAO_POSITION_FRAME_S")
    p.add_argument("--warmup", type=float, default=5.0, help="positions mode: seconds")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--graph", type=Path, default=None, help="YISHAO_GRAPH for the services")
    p.add_argument("--py-spy", default=None, help="directory: py-spy record the services")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of steady load")
    p.add_argument("--whistles", type=int, default=50)
    p.add_argument("--client-procs", type=int, default=2, help="processes for console sockets")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    args = p.parse_args()
    problem = redis_url_problem(args.redis_url)
    if problem is not None:
        p.error(problem)
    if not 1 <= args.duration <= 120 or not 0 <= args.consoles <= 2000:
        p.error("bounded runs only: --duration 1..120, --consoles 0..2000")
    if not 0 <= args.units <= 5000 or not 0 <= args.warmup <= 30:
        p.error("bounded runs only: --units 0..5000, --warmup 0..30")
    if args.rate is None:
        args.rate = 500.0 if args.mode == "events" else 0.0
    runner = run_positions if args.mode == "positions" else run_config
    results = []
    for n in [int(x) for x in args.instances.split(",") if x]:
        r = asyncio.run(runner(args, n))
        results.append(r)
        print(show(r), file=sys.stderr if args.json else sys.stdout, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
