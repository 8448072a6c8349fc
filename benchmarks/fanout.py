"""Websocket fan-out benchmark: events on ``{yishao}:events`` to console and coordinator screens.

For one, then two real service processes (``python -m dispatch.cli serve``, clients split across
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

Hook for positions (issue 5, part 2): ``Load.extra_producers`` takes more coroutines run during
the steady phase (e.g. 2,000 units at 1 Hz posting ``position`` messages from terminal
sockets), and ``Screens.on_message`` is where position frames would be timed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import random
import socket
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
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dispatch.auth import mint  # noqa: E402
from dispatch.constants import Keys  # noqa: E402
from dispatch.models import Agency, Role  # noqa: E402

SECRET = "bench-fanout-secret-0123456789abcdefghij"  # 40 characters
assert len(SECRET) == 40
KEYS = Keys()
TICK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def token(role: Role, agency: Agency, sub: str) -> str:
    return mint(SECRET, role=role, agency=agency, sub=sub, ttl_s=3600)


# -- service processes ------------------------------------------------------------------------
@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def start_services(n: int, redis_url: str, log_level: str) -> list[Service]:
    out = []
    for i in range(n):
        port = free_port()
        env = {
            **os.environ,
            "YISHAO_ENV": "test",
            "YISHAO_SECRET": SECRET,
            "YISHAO_REDIS_URL": redis_url,
            "YISHAO_INSTANCE": f"bench-{i}",
        }
        env.pop("YISHAO_GRAPH", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dispatch.cli", "serve", "--port", str(port),
             "--log-level", log_level],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=None if log_level in {"info", "debug"} else subprocess.DEVNULL,
        )  # fmt: skip
        out.append(Service(proc, port))
    deadline = time.monotonic() + 60
    for svc in out:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{svc.url}/api/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or svc.proc.poll() is not None:
                stop_services(out)
                raise RuntimeError(f"service on {svc.port} did not start")
            time.sleep(0.1)
    return out


def stop_services(services: list[Service]) -> None:
    for svc in services:
        if svc.proc.poll() is None:
            svc.proc.terminate()
    for svc in services:
        try:
            svc.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            svc.proc.kill()
            svc.proc.wait()


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

    def on_message(self, raw: str | bytes, coordinator: str | None) -> None:
        now = time.time()
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
                url, compression=None, proxy=None, open_timeout=30, max_queue=256
            ) as ws:
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


def console_worker(urls: list[str], ready: Any, stop: Any, results: Any) -> None:
    """A process of console sockets (the receiving side needs more than one core's worth of
    Python at high rates); reports its screens' figures when ``stop`` is set."""

    async def go() -> None:
        screens = Screens(counting=True)
        started = [asyncio.Event() for _ in urls]
        tasks = [
            asyncio.create_task(screens.run(u, None, e)) for u, e in zip(urls, started, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), timeout=60)
        ready.put(len(urls))
        # A process-wide event, not an asyncio one: wait for it on a thread.
        await asyncio.to_thread(stop.wait)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put(
            {
                "latencies": screens.latencies,
                "messages": screens.messages,
                "bytes": screens.bytes,
                "cut": screens.cut,
            }
        )

    asyncio.run(go())


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
            r = await http.post(url, headers=ems)
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


async def run_config(args: argparse.Namespace, instances: int) -> dict[str, Any]:
    redis = Redis.from_url(args.redis_url)
    await redis.flushdb()
    services = start_services(instances, args.redis_url, args.log_level)
    screens = Screens()
    tasks: list[asyncio.Task[None]] = []
    procs: list[Any] = []
    try:
        incident_ids = await prepare_whistles(services, args.whistles)
        duty = await on_duty(services[0])
        coordinators = duty + [
            f"coord-{a}-{i}" for a in ("traffic", "ems", "fire") for i in range(20)
        ]
        coordinators = list(dict.fromkeys(coordinators))[: args.coordinators]
        agencies = {"traffic": Agency.TRAFFIC, "ems": Agency.EMS, "fire": Agency.FIRE}
        started: list[asyncio.Event] = []
        urls = []
        for i in range(args.consoles):
            svc = services[i % instances]
            tok = token(Role.DISPATCHER, random.choice(list(agencies.values())), f"console-{i}")
            urls.append(f"ws://127.0.0.1:{svc.port}/ws?token={tok}")
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
        for i, name in enumerate(coordinators):
            svc = services[i % instances]
            tok = token(Role.COORDINATOR, agencies[name.split("-")[1]], name)
            ev = asyncio.Event()
            started.append(ev)
            url = f"ws://127.0.0.1:{svc.port}/ws?token={tok}"
            tasks.append(asyncio.create_task(screens.run(url, name, ev)))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), timeout=60)
        await asyncio.sleep(0.5)
        cpu0 = [s.cpu_s() for s in services]
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
        cpu = [(s.cpu_s() - c) / elapsed * 100 for s, c in zip(services, cpu0, strict=True)]
        rss = [s.rss_mb() for s in services]
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
                "p50": pct(lat, 0.5) * 1000,
                "p99": pct(lat, 0.99) * 1000,
                "max": max(lat, default=float("nan")) * 1000,
            },
            "closed": screens.cut,
            "summons_ms": {
                "n": len(whistle_lat),
                "p50": pct(whistle_lat, 0.5) * 1000,
                "p99": pct(whistle_lat, 0.99) * 1000,
                "max": max(whistle_lat, default=float("nan")) * 1000,
            },
            "service_cpu_pct": [round(c, 1) for c in cpu],
            "service_rss_mb": [round(r, 1) for r in rss],
        }
        return result
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stop_services(services)
        await redis.flushdb()
        await redis.aclose()


def show(r: dict[str, Any]) -> str:
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
    p.add_argument("--coordinators", type=int, default=50)
    p.add_argument("--rate", type=float, default=500.0, help="events per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of steady load")
    p.add_argument("--whistles", type=int, default=50)
    p.add_argument("--client-procs", type=int, default=2, help="processes for console sockets")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    args = p.parse_args()
    host = args.redis_url.split("//", 1)[1].split("/", 1)
    db = host[1] if len(host) > 1 else "0"
    if host[0].split(":")[0] not in {"127.0.0.1", "localhost"} or db in {"", "0", "15"}:
        p.error("loopback Redis only, and never db 0 or 15")
    if not 1 <= args.duration <= 120 or not 0 <= args.consoles <= 2000:
        p.error("bounded runs only: --duration 1..120, --consoles 0..2000")
    results = []
    for n in [int(x) for x in args.instances.split(",") if x]:
        r = asyncio.run(run_config(args, n))
        results.append(r)
        print(show(r), file=sys.stderr if args.json else sys.stdout, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
