"""Console benchmark: does the dispatcher console keep up with 2,000 units at 1 Hz and a busy day?

One real service (``python -m yishao serve`` on the demo road graph), Debian's Chromium
driven by Playwright showing the console (``/``, 1600x900, an EMS dispatcher), and the load:

- ``--units`` (2,000) units registered over REST, each moving about 10 m/s and reporting a fix
  every second. The fixes go straight onto the service's positions stream (``XADD``, as the
  terminal handler does after validating a fix): this measures the screen, not the terminals'
  sockets (``benchmarks/fanout.py --mode positions`` measures those). The service's feed sends
  the console one ``positions`` frame a second with every unit that moved.
- ``--incidents`` (300) calls landed over REST before the run (a busy day's open incidents,
  each with its recommendation), then one more call every ``--call-every-s`` (2 s).

Two phases in the same browser and the same run: a **baseline** (``--baseline-s``, the same
console with the same incidents and units, but no fixes arriving) and the **load**
(``--duration``, default 600 s). For each: frame intervals from ``requestAnimationFrame``
(p50 / p95 / p99 / max, frames over 50 ms), long tasks (PerformanceObserver ``longtask``:
count, total, longest), the JS heap and DOM node count (CDP ``Performance.getMetrics``) at the
start, the end and their peak, the position frames the page applied and the time it spent
moving markers. Ratios load / baseline are printed; ``--json`` writes everything to stdout.

Run by hand (bounded by ``--duration``; loopback only; its own Redis DB, flushed before and
after; db 0 and 15 are refused)::

    .venv/bin/python benchmarks/console.py                       # 10 minutes of load
    .venv/bin/python benchmarks/console.py --duration 60 --baseline-s 20
    .venv/bin/python benchmarks/console.py --redis-url redis://127.0.0.1:6379/12 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import (
    ROOT,
    Service,
    machine_busy_seconds,
    percentile,
    redis_url_problem,
    rss_bytes,
    start_service,
    stop_services,
    wait_healthy,
)
from _common import mint_token as token
from redis.asyncio import Redis

from dispatch.constants import Keys
from dispatch.models import Agency, Role

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--enable-precise-memory-info",
]
AGENCIES = [
    (Agency.TRAFFIC, "traffic_police_car", "122"),
    (Agency.EMS, "ambulance", "120"),
    (Agency.FIRE, "fire_engine", "119"),
    (Agency.POLICE, "patrol_car", None),
]
CALL_TYPES = {"122": "traffic_accident", "120": "critical_patient", "119": "fire"}

# In-page probes: frame intervals and long tasks, reset at the start of each phase.
PROBE = """
(() => {
  const p = (window.__bench = { frames: [], longtasks: [], t0: performance.now() });
  let last = null;
  const loop = (t) => {
    if (last !== null) window.__bench.frames.push(t - last);
    last = t;
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__bench.longtasks.push(e.duration);
    }).observe({ type: "longtask", buffered: false });
  } catch (e) { p.noLongtask = String(e); }
})();
"""


def graph_nodes(graph: Path) -> list[tuple[float, float]]:
    """(lat, lon) of every node of the graph: calls and units start on the roads."""
    from routing.graph import load

    g = load(graph)
    return list(zip(g.node_lat.tolist(), g.node_lon.tolist(), strict=True))


def box_of(nodes: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    lats, lons = [p[0] for p in nodes], [p[1] for p in nodes]
    return min(lons), min(lats), max(lons), max(lats)


class Fleet:
    """Units drifting about the map at ~10 m/s, bouncing at the edges (seeded)."""

    def __init__(self, n: int, nodes: list[tuple[float, float]], seed: int) -> None:
        rng = random.Random(seed)
        self.box = box_of(nodes)
        self.ids = [f"B{i:04d}" for i in range(n)]
        self.pos = [list(rng.choice(nodes)) for _ in range(n)]
        self.vel = []
        for _ in range(n):
            heading = rng.uniform(0, 2 * math.pi)
            speed = rng.uniform(5, 15) / 111_000  # degrees per second, roughly
            self.vel.append([math.cos(heading) * speed, math.sin(heading) * speed])
        self.agency = [AGENCIES[i % len(AGENCIES)] for i in range(n)]

    def step(self) -> None:
        w, s, e, n = self.box
        for p, v in zip(self.pos, self.vel, strict=True):
            p[0] += v[0]
            p[1] += v[1]
            if not s <= p[0] <= n:
                v[0] = -v[0]
                p[0] = min(max(p[0], s), n)
            if not w <= p[1] <= e:
                v[1] = -v[1]
                p[1] = min(max(p[1], w), e)


async def register(url: str, fleet: Fleet) -> None:
    admin = {"Authorization": f"Bearer {token(Role.ADMIN, Agency.POLICE, 'bench-admin')}"}
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=url, headers=admin, timeout=30) as http:

        async def put(i: int) -> None:
            agency, utype, _centre = fleet.agency[i]
            lat, lon = fleet.pos[i]
            body = {"id": fleet.ids[i], "agency": agency.value, "type": utype, "lat": lat,
                    "lon": lon, "station": f"S{i % 40:02d}"}  # fmt: skip
            async with gate:
                r = await http.put(f"/api/units/{fleet.ids[i]}", json=body)
            r.raise_for_status()

        await asyncio.gather(*(put(i) for i in range(len(fleet.ids))))


async def post_call(
    http: httpx.AsyncClient, n: int, rng: random.Random, nodes: list[tuple[float, float]]
) -> None:
    centre = rng.choice(["122", "120", "119"])
    agency = {"122": Agency.TRAFFIC, "120": Agency.EMS, "119": Agency.FIRE}[centre]
    lat, lon = rng.choice(nodes)
    body = {
        "call_id": f"bench-{n}",
        "centre": centre,
        "call_type": CALL_TYPES[centre],
        "lat": lat,
        "lon": lon,
        "received_at": datetime.now(UTC).isoformat(),
        "address": f"测试地址 {n} 号",
    }
    headers = {"Authorization": f"Bearer {token(Role.DISPATCHER, agency, f'bench-{centre}')}"}
    r = await http.post("/api/calls", json=body, headers=headers)
    r.raise_for_status()


async def feed_positions(r: Redis, fleet: Fleet, stop: asyncio.Event) -> int:
    """One fix per unit per second onto the positions stream; returns fixes written."""
    stream = Keys().position_stream
    sent = 0
    next_t = time.monotonic()
    while not stop.is_set():
        fleet.step()
        at = datetime.now(UTC).isoformat()
        async with r.pipeline(transaction=False) as pipe:
            for uid, (lat, lon) in zip(fleet.ids, fleet.pos, strict=True):
                pos = orjson.dumps({"lat": lat, "lon": lon, "at": at, "speed_kph": 36.0})
                pipe.xadd(stream, {"unit_id": uid, "position": pos}, maxlen=200_000,
                          approximate=True)  # fmt: skip
            await pipe.execute()
        sent += len(fleet.ids)
        next_t += 1.0
        await asyncio.sleep(max(0.0, next_t - time.monotonic()))
    return sent


async def calls_during(
    url: str, nodes: list[tuple[float, float]], every_s: float, start_n: int, stop: asyncio.Event
) -> int:
    rng = random.Random(99)
    n = start_n
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while not stop.is_set():
            await post_call(http, n, rng, nodes)
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
    return n - start_n


def top_functions(profile: dict[str, Any], n: int) -> list[tuple[str, float]]:
    """Self time (ms) per function of a CDP CPU profile, largest first."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    deltas = profile.get("timeDeltas", [])
    self_ms: dict[str, float] = {}
    for sample, dt in zip(profile.get("samples", []), deltas, strict=False):
        frame = nodes[sample]["callFrame"]
        where = f"{frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber']}"
        name = f"{frame['functionName'] or '(anon)'} {where}"
        self_ms[name] = self_ms.get(name, 0.0) + dt / 1000
    return sorted(((k, round(v, 1)) for k, v in self_ms.items()), key=lambda kv: -kv[1])[:n]


def stat(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


async def metrics(cdp: Any) -> dict[str, float]:
    got = await cdp.send("Performance.getMetrics")
    return {m["name"]: m["value"] for m in got["metrics"]}


async def phase(page: Any, cdp: Any, seconds: float, label: str, svc: Service) -> dict[str, Any]:
    await page.evaluate("() => { window.__bench.frames = []; window.__bench.longtasks = []; }")
    stats0 = await page.evaluate("window.yishao.stats()")
    m0 = await metrics(cdp)
    heap_peak, nodes_peak = m0["JSHeapUsedSize"], m0["Nodes"]
    busy0, t0 = machine_busy_seconds(), time.monotonic()
    svc_cpu0 = svc.cpu_seconds()
    samples = []
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(min(10.0, max(0.5, seconds - (time.monotonic() - t0))))
        m = await metrics(cdp)
        heap_peak = max(heap_peak, m["JSHeapUsedSize"])
        nodes_peak = max(nodes_peak, m["Nodes"])
        samples.append(round(m["JSHeapUsedSize"] / 2**20, 1))
        print(f"  {label}: {time.monotonic() - t0:5.0f} s heap {samples[-1]} MB", file=sys.stderr)
    elapsed = time.monotonic() - t0
    bench = await page.evaluate(
        "({frames: window.__bench.frames, longtasks: window.__bench.longtasks})"
    )
    stats1 = await page.evaluate("window.yishao.stats()")
    m1 = await metrics(cdp)
    frames, longtasks = bench["frames"], bench["longtasks"]
    draw_frames = stats1["draw"]["frames"] - stats0["draw"]["frames"]
    draw_ms = stats1["draw"]["moveMs"] - stats0["draw"]["moveMs"]
    return {
        "seconds": round(elapsed, 1),
        "fps": round(len(frames) / elapsed, 1),
        "frame_ms": stat(frames),
        "frames_over_50ms": sum(1 for f in frames if f > 50),
        "longtasks": {**stat(longtasks), "total_ms": round(sum(longtasks), 0)},
        "longtask_share": round(sum(longtasks) / (elapsed * 1000), 3),
        "heap_mb": {
            "start": round(m0["JSHeapUsedSize"] / 2**20, 1),
            "end": round(m1["JSHeapUsedSize"] / 2**20, 1),
            "peak": round(heap_peak / 2**20, 1),
            "samples": samples,
        },
        "dom_nodes": {"start": int(m0["Nodes"]), "end": int(m1["Nodes"]), "peak": int(nodes_peak)},
        "position_frames": stats1["frames"] - stats0["frames"],
        "events": stats1["events"] - stats0["events"],
        "marker_move_ms_per_frame": round(draw_ms / draw_frames, 2) if draw_frames else 0.0,
        "script_s": round(m1["ScriptDuration"] - m0["ScriptDuration"], 1),
        "layout_s": round(m1["LayoutDuration"] - m0["LayoutDuration"], 1),
        "machine_busy_cores": round((machine_busy_seconds() - busy0) / elapsed, 2),
        "service_cpu_cores": round((svc.cpu_seconds() - svc_cpu0) / elapsed, 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    graph = args.graph or _demo_graph()
    nodes = graph_nodes(graph)
    r = Redis.from_url(args.redis_url)
    await r.flushdb()
    log = Path(args.log) if args.log else None
    svc = start_service("console-bench", args.redis_url, log_level="warning", log_path=log,
                        extra_env={"YISHAO_GRAPH": str(graph)})  # fmt: skip
    try:
        await wait_healthy([svc], 60)
        fleet = Fleet(args.units, nodes, args.seed)
        print(f"registering {args.units} units ...", file=sys.stderr)
        await register(svc.url, fleet)
        print(f"landing {args.incidents} calls ...", file=sys.stderr)
        rng = random.Random(args.seed)
        async with httpx.AsyncClient(base_url=svc.url, timeout=30) as http:
            gate = asyncio.Semaphore(8)

            async def one(n: int) -> None:
                async with gate:
                    await post_call(http, n, rng, nodes)

            await asyncio.gather(*(one(n) for n in range(args.incidents)))
        await asyncio.sleep(3)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            ctx = await browser.new_context(viewport={"width": 1600, "height": 900})
            await ctx.add_init_script(PROBE)
            page = await ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            cdp = await ctx.new_cdp_session(page)
            await cdp.send("Performance.enable")
            tok = token(Role.DISPATCHER, Agency.EMS, "bench-console")
            await page.goto(f"{svc.url}/#token={tok}")
            await page.wait_for_function("window.yishao && window.yishao.link() === 'live'",
                                         timeout=60_000)  # fmt: skip
            await page.wait_for_function(
                "(n) => window.yishao.stats().units >= n", arg=args.units, timeout=60_000
            )
            open_rows = await page.evaluate("document.querySelectorAll('#queue .row').length")
            # Select one incident so its detail panel (timeline, ack board) is redrawn too.
            await page.locator("#queue").focus()
            await page.keyboard.press("ArrowDown")
            print(f"baseline {args.baseline_s:.0f} s ({open_rows} incidents on screen) ...",
                  file=sys.stderr)  # fmt: skip
            baseline = await phase(page, cdp, args.baseline_s, "baseline", svc)
            stop = asyncio.Event()
            feeder = asyncio.create_task(feed_positions(r, fleet, stop))
            caller = asyncio.create_task(
                calls_during(svc.url, nodes, args.call_every_s, args.incidents, stop)
            )
            print(f"load {args.duration:.0f} s ...", file=sys.stderr)
            if args.profile:
                await cdp.send("Profiler.enable")
                await cdp.send("Profiler.start")
            try:
                load = await phase(page, cdp, args.duration, "load", svc)
                if args.profile:
                    prof = (await cdp.send("Profiler.stop"))["profile"]
                    load["profile_top"] = top_functions(prof, 20)
            finally:
                stop.set()
                fixes = await feeder
                calls = await caller
            await page.screenshot(path=str(ROOT / "var" / "console-bench.png"))
            await browser.close()
        return {
            "units": args.units,
            "incidents_at_start": args.incidents,
            "incidents_on_screen": open_rows,
            "calls_during_load": calls,
            "fixes_sent": fixes,
            "baseline": baseline,
            "load": load,
            "page_errors": errors[:20],
            "service_rss_mb": round(rss_bytes(svc.proc.pid) / 2**20, 1),
        }
    finally:
        stop_services([svc])
        await r.flushdb()
        await r.aclose()


def _demo_graph() -> Path:
    cached = ROOT / "var" / "shanghai_center.osm.graph.npz"
    if cached.is_file():
        return cached
    from routing import build_graph_file, sample_graph_path

    (ROOT / "var").mkdir(exist_ok=True)
    source = sample_graph_path()
    return build_graph_file(source, ROOT / "var" / f"{source.name}.graph.npz")


def report(res: dict[str, Any]) -> None:
    b, ld = res["baseline"], res["load"]

    def ratio(x: float, y: float) -> str:
        return f"x{x / y:.2f}" if y else "—"

    rows = [
        ("fps", b["fps"], ld["fps"]),
        ("frame p50 ms", b["frame_ms"]["p50"], ld["frame_ms"]["p50"]),
        ("frame p95 ms", b["frame_ms"]["p95"], ld["frame_ms"]["p95"]),
        ("frame p99 ms", b["frame_ms"]["p99"], ld["frame_ms"]["p99"]),
        ("frame max ms", b["frame_ms"]["max"], ld["frame_ms"]["max"]),
        ("frames > 50 ms", b["frames_over_50ms"], ld["frames_over_50ms"]),
        ("long tasks", b["longtasks"]["n"], ld["longtasks"]["n"]),
        ("long task longest ms", b["longtasks"].get("max", 0), ld["longtasks"].get("max", 0)),
        ("long task share of time", b["longtask_share"], ld["longtask_share"]),
        ("heap end MB", b["heap_mb"]["end"], ld["heap_mb"]["end"]),
        ("heap peak MB", b["heap_mb"]["peak"], ld["heap_mb"]["peak"]),
        ("DOM nodes end", b["dom_nodes"]["end"], ld["dom_nodes"]["end"]),
        ("script s", b["script_s"], ld["script_s"]),
        ("machine busy (cores)", b["machine_busy_cores"], ld["machine_busy_cores"]),
    ]
    print(f"console: {res['units']} units at 1 Hz, {res['incidents_on_screen']} incidents on "
          f"screen, +{res['calls_during_load']} calls during {ld['seconds']:.0f} s")  # fmt: skip
    print(f"{'':26} {'baseline':>10} {'load':>10} {'ratio':>8}")
    for name, x, y in rows:
        print(f"{name:26} {x:>10} {y:>10} {ratio(float(y), float(x)):>8}")
    print(f"position frames applied: {ld['position_frames']} in {ld['seconds']:.0f} s "
          f"(sent one a second); marker moves {ld['marker_move_ms_per_frame']} ms per drawn "
          f"frame; heap samples (MB): {ld['heap_mb']['samples']}")  # fmt: skip
    for name, ms in ld.get("profile_top", []):
        print(f"  {ms:9.1f} ms  {name}")
    print(f"service CPU {ld['service_cpu_cores']} cores, RSS {res['service_rss_mb']} MB; "
          f"page errors: {len(res['page_errors'])} {res['page_errors'][:3]}")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    p.add_argument("--units", type=int, default=2000)
    p.add_argument("--incidents", type=int, default=300)
    p.add_argument("--call-every-s", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    p.add_argument("--baseline-s", type=float, default=60.0)
    p.add_argument("--graph", type=Path, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--log", default=None, help="keep the service's log here")
    p.add_argument("--json", action="store_true")
    p.add_argument("--profile", action="store_true", help="CPU-profile the page during the load")
    args = p.parse_args()
    problem = redis_url_problem(args.redis_url)
    if problem:
        p.error(problem)
    res = asyncio.run(run(args))
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        report(res)


if __name__ == "__main__":
    main()
