"""Dispatch benchmark: from ``XADD`` of a qualifying call to the recommendation and whistle.

For each road graph (the Shanghai centre extract and a 50k-node synthetic city) it starts a real
``python -m yishao serve`` process with ``YISHAO_AUTO_WHISTLE=true``, loads a fleet of
units (300 by default, seeded, spread over the graph's nodes) and a duty roster over REST, then
sends whistle-eligible calls (drowning / critical_patient from 120, traffic_accident_entrapment
from 119) paced on ``yishao:calls`` and reads ``{yishao}:events`` with a blocking ``XREAD``.
Per call it measures, on one clock (``time.perf_counter``, from just before the ``XADD`` to the
read of the event):

- ``incident.created``      (intake: call -> incident)
- ``incident.recommended``  (reactor: the ranking of the needed agencies' units)
- ``whistle.sounded``       (reactor: the automatic whistle, same commit as the summonses)
- the last ``whistle.summons`` (one per rostered agency: traffic, EMS, fire)

and splits the time into steps with the Redis entry ids (commit time, ms) and the events' own
``ts`` (the service clock when it decided), so the report says where the time goes. Beside it,
an in-process baseline: ``Router.travel_times_to`` for the same incidents and the same unit
positions (the ranking's core), so the service's overhead around it shows as a ratio.

Run by hand from the repository root (bounded in count and time, loopback only, its own Redis
DB flushed before and after)::

    .venv/bin/python benchmarks/dispatch.py                      # both graphs, ~2 min
    .venv/bin/python benchmarks/dispatch.py --graphs synthetic --calls 100
    .venv/bin/python benchmarks/dispatch.py --json out.json      # also write the figures as JSON
    .venv/bin/python benchmarks/dispatch.py --py-spy             # also profile the service
                                                                 # (py-spy in the venv; slows it)

Goal (issue): p99 under 50 ms from the XADD to the recommendation and whistle events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from _common import (
    ROOT,
    Service,
    Stat,
    as_str,
    check_redis_url,
    consumer_names,
    cpu_delta,
    cpu_snapshot,
    group_names,
    http_json,
    last_entry_id,
    mint_token,
    other_cpu_seconds,
    start_service,
    stop_services,
    tail_stream,
    wait_healthy,
)
from redis.asyncio import Redis

from dispatch.constants import CONSUMER_GROUP, REACTOR_GROUP, Keys
from dispatch.models import Agency, Role
from routing import Router, build_graph_file
from routing.build import shared_osm_dir
from routing.graph import RoadGraph, haversine_m, save
from routing.synthetic import synthetic_city

DEFAULT_URL = "redis://127.0.0.1:6379/12"
GOAL_P99_MS = 50.0
INSTANCE = "bench-dispatch"
MERGE_DISTANCE_M = 300.0  # the service's default merge radius: calls farther apart never merge
MIN_SPACING_M = 1.3 * MERGE_DISTANCE_M  # call spots are never closer than this

# Share of the fleet per (agency, unit type); scaled to --units.
FLEET_MIX: tuple[tuple[str, str, int], ...] = (
    ("traffic", "traffic_police_car", 60),
    ("ems", "ambulance", 90),
    ("fire", "fire_engine", 45),
    ("fire", "fire_rescue", 30),
    ("fire", "ladder", 15),
    ("police", "patrol_car", 60),
)
# Whistle-eligible calls from the two centres that sound it (centre, call type, severity).
CALL_MIX: tuple[tuple[str, str, str], ...] = (
    ("120", "drowning", "3"),
    ("120", "critical_patient", "4"),
    ("119", "traffic_accident_entrapment", "3"),
)
ROSTER: dict[str, Any] = {
    "rules": [
        {"agency": "traffic", "names": ["tr-coord-li", "tr-coord-wang"], "start": "2024-01-01"},
        {"agency": "ems", "names": ["ems-coord-zhao", "ems-coord-chen"], "start": "2024-01-01"},
        {"agency": "fire", "names": ["fire-coord-sun", "fire-coord-zhou"], "start": "2024-01-01"},
    ]
}
SUMMONSES_PER_WHISTLE = len(ROSTER["rules"])
STAGES = ("incident.created", "incident.recommended", "whistle.sounded", "last whistle.summons")
_GRAPH_LOG = re.compile(r"road graph (\S+): (\d+) nodes, (\d+) signals, loaded in ([\d.]+) s")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def tree_state() -> str:
    """The commit under test and how many tracked files differ from it (the tree may be live)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "dispatch", "routing"],
            cwd=ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.split()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    changed = [f for f in dirty if f.endswith(".py")]
    return f"{head}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def _ms_of_id(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


# --------------------------------------------------------------------------------------------
# Graphs, units, call spots
# --------------------------------------------------------------------------------------------
@dataclass
class GraphCase:
    name: str
    path: Path
    prepare_s: float
    nodes: int
    edges: int
    signals: int


def prepare_graphs(names: Sequence[str], folder: Path, side: int, seed: int) -> list[GraphCase]:
    out: list[GraphCase] = []
    for name in names:
        t0 = time.perf_counter()
        graph: RoadGraph
        if name == "shanghai":
            osm_dir = shared_osm_dir()
            source = osm_dir / "shanghai_center.osm" if osm_dir else None
            if source is None or not source.is_file():
                print("Shanghai extract absent (../shared/data/osm): skipped")
                continue
            path = build_graph_file(source, folder / "shanghai_center.npz")
        elif name == "synthetic":
            path = save(synthetic_city(side, seed=seed), folder / f"synthetic_{side}.npz")
        else:
            raise SystemExit(f"unknown graph {name!r} (shanghai, synthetic)")
        prepare_s = time.perf_counter() - t0
        from routing.graph import load

        graph = load(path)
        out.append(
            GraphCase(
                name=name,
                path=path,
                prepare_s=round(prepare_s, 2),
                nodes=graph.node_count,
                edges=graph.edge_count,
                signals=graph.signal_count,
            )
        )
        del graph
    return out


def fleet_for(graph: RoadGraph, count: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``count`` units on distinct random nodes, agencies and types in FLEET_MIX's shares."""
    total = sum(n for _, _, n in FLEET_MIX)
    kinds: list[tuple[str, str]] = []
    for agency, unit_type, share in FLEET_MIX:
        kinds += [(agency, unit_type)] * max(1, round(count * share / total))
    kinds = (kinds * 2)[:count]
    nodes = rng.choice(graph.node_count, size=count, replace=False)
    units = []
    for n, ((agency, unit_type), node) in enumerate(zip(kinds, nodes, strict=True)):
        units.append(
            {
                "id": f"{agency[:3].upper()}-{unit_type[:4]}-{n:03d}",
                "agency": agency,
                "type": unit_type,
                "lat": round(float(graph.node_lat[node]), 7),
                "lon": round(float(graph.node_lon[node]), 7),
                "station": f"station-{n // 4:03d}",
                "callsign": f"{agency}-{n:03d}",
            }
        )
    return units


def call_spots(
    graph: RoadGraph, count: int, rng: np.random.Generator, spacing_m: float
) -> tuple[list[tuple[float, float]], float]:
    """``count`` graph nodes pairwise at least ``spacing_m`` apart (seeded greedy pick).

    A small extract cannot hold 200 spots 1 km apart: the spacing then steps down, never below
    ``MIN_SPACING_M`` (well outside the merge radius), and the spacing used is returned.

    Raises:
        ValueError: not even that spacing fits ``count`` spots.
    """
    order = rng.permutation(graph.node_count)
    lat, lon = graph.node_lat[order], graph.node_lon[order]
    spacing = spacing_m
    while True:
        chosen: list[int] = []
        clat = np.empty(count)
        clon = np.empty(count)
        for i in range(order.shape[0]):
            k = len(chosen)
            if k and float(np.min(haversine_m(clat[:k], clon[:k], lat[i], lon[i]))) < spacing:
                continue
            chosen.append(i)
            clat[k], clon[k] = lat[i], lon[i]
            if len(chosen) == count:
                return [(float(a), float(b)) for a, b in zip(clat, clon, strict=True)], spacing
        if spacing * 0.9 < MIN_SPACING_M:
            raise ValueError(f"cannot place {count} calls {spacing:.0f} m apart: lower --calls")
        spacing *= 0.9


# --------------------------------------------------------------------------------------------
# In-process baseline: the ranking's core
# --------------------------------------------------------------------------------------------
@dataclass
class Baseline:
    load_ms: float
    origins: int
    travel_times_to: Stat
    unreachable: int


def baseline(
    path: Path, spots: Sequence[tuple[float, float]], units: Sequence[dict[str, Any]]
) -> Baseline:
    t0 = time.perf_counter()
    router = Router.from_file(path)
    load_ms = (time.perf_counter() - t0) * 1000
    origins = [(float(u["lat"]), float(u["lon"])) for u in units]
    for spot in spots[:3]:  # warm caches, as the service's warm-up calls do
        router.travel_times_to(spot, origins)
    times: list[float] = []
    unreachable = 0
    for spot in spots:
        t0 = time.perf_counter()
        res = router.travel_times_to(spot, origins)
        times.append((time.perf_counter() - t0) * 1000)
        unreachable += int(np.sum(~np.isfinite(res.duration_s)))
    del router
    gc.collect()
    return Baseline(
        load_ms=round(load_ms, 1),
        origins=len(origins),
        travel_times_to=Stat.of(times),
        unreachable=unreachable,
    )


# --------------------------------------------------------------------------------------------
# The service process
# --------------------------------------------------------------------------------------------
def start_dispatch_service(redis_url: str, graph: Path, log_dir: Path, log_level: str) -> Service:
    """The service on ``graph`` with the automatic whistle, logging to ``serve-<graph>.log``."""
    return start_service(
        INSTANCE, redis_url, log_level=log_level, log_path=log_dir / f"serve-{graph.stem}.log",
        extra_env={"YISHAO_GRAPH": str(graph), "YISHAO_AUTO_WHISTLE": "true"},
    )  # fmt: skip


async def wait_ready(svc: Service, r: Redis, keys: Keys, limit_s: float) -> None:
    """Health ok with the graph loaded, the intake consumer and the reactor group in place."""

    async def consuming() -> bool:
        consumers = await consumer_names(r, keys.calls, CONSUMER_GROUP)
        return INSTANCE in consumers and REACTOR_GROUP in await group_names(r, keys.events)

    await wait_healthy([svc], limit_s, consuming)


async def reactor_idle(r: Redis, keys: Keys, limit_s: float) -> None:
    """Wait until the reactor has read and acknowledged everything on the event log."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        groups: Any = await r.xinfo_groups(keys.events)
        last_id = await last_entry_id(r, keys.events)
        for g in groups:
            if (
                as_str(g["name"]) == REACTOR_GROUP
                and int(g["pending"]) == 0
                and as_str(g["last-delivered-id"]) == last_id
            ):
                return
        await asyncio.sleep(0.05)
    raise TimeoutError("the reactor did not catch up with the event log")


# --------------------------------------------------------------------------------------------
# The measured run
# --------------------------------------------------------------------------------------------
@dataclass
class Track:
    """What the reader saw of one incident."""

    created: float | None = None
    call_id: str | None = None
    created_id_ms: int | None = None
    recommended: float | None = None
    recommended_id_ms: int | None = None
    recommended_ts_ms: float | None = None
    sounded: float | None = None
    sounded_id_ms: int | None = None
    sounded_ts_ms: float | None = None
    summons: list[float] = field(default_factory=list)

    def done(self) -> bool:
        return self.sounded is not None and len(self.summons) >= SUMMONSES_PER_WHISTLE


@dataclass
class GraphResult:
    graph: str
    nodes: int
    edges: int
    signals: int
    prepare_s: float
    service_graph_log: str
    service_graph_load_s: float | None
    service_ready_s: float
    units: int
    units_load_s: float
    calls: int
    rate: float
    spacing_m: float
    baseline: Baseline
    stages: dict[str, Stat]
    steps: dict[str, Stat]
    event_bytes: dict[str, int]
    checks: dict[str, Any]
    cpu_s: dict[str, float]
    profile_top: list[tuple[str, float]] = field(default_factory=list)
    profile_self: list[tuple[str, float]] = field(default_factory=list)


def make_call(call_id: str, n: int, spot: tuple[float, float]) -> dict[str, str]:
    centre, call_type, severity = CALL_MIX[n % len(CALL_MIX)]
    return {
        "schema_version": "1",
        "call_id": call_id,
        "centre": centre,
        "call_type": call_type,
        "lat": f"{spot[0]:.7f}",
        "lon": f"{spot[1]:.7f}",
        "received_at": datetime.now(UTC).isoformat(),
        "address": f"benchmark spot {n}",
        "caller_phone": f"139{n % 100_000_000:08d}",
        "severity": severity,
    }


async def run_calls(
    url: str,
    keys: Keys,
    spots: Sequence[tuple[float, float]],
    *,
    prefix: str,
    rate: float,
    drain_s: float,
) -> tuple[dict[str, tuple[float, int]], dict[str, Track], Counter[str], dict[str, list[int]]]:
    """Send one call per spot at ``rate``/s; read the event log until every whistle is in.

    Returns ``(sent, tracks, types, sizes)``: call id -> (perf_counter before XADD, XADD id ms),
    incident id -> what was seen, event type counts, data bytes per event type.
    """
    sent: dict[str, tuple[float, int]] = {}
    tracks: dict[str, Track] = {}
    types: Counter[str] = Counter()
    sizes: dict[str, list[int]] = {}
    wanted = {f"{prefix}-{n:05d}" for n in range(len(spots))}
    producer = Redis.from_url(url)
    reader_conn = Redis.from_url(url)
    stop = asyncio.Event()
    start_id = await last_entry_id(reader_conn, keys.events)

    def finished() -> bool:
        mine = [t for t in tracks.values() if t.call_id in wanted]
        return len(mine) >= len(wanted) and all(t.done() for t in mine)

    async def reader() -> None:
        async for now, entries in tail_stream(reader_conn, keys.events, start_id, stop):
            for entry_id, raw in entries:
                cursor = as_str(entry_id)
                kind = as_str(raw.get(b"type", b""))
                types[kind] += 1
                sizes.setdefault(kind, []).append(len(raw.get(b"data", b"")))
                incident = as_str(raw.get(b"incident_id", b""))
                if not incident:
                    continue
                t = tracks.setdefault(incident, Track())
                id_ms = _ms_of_id(cursor)
                ts_ms = datetime.fromisoformat(as_str(raw[b"ts"])).timestamp() * 1000
                if kind == "incident.created":
                    t.created, t.created_id_ms = now, id_ms
                    data = orjson.loads(raw.get(b"data", b"{}"))
                    t.call_id = (data.get("call") or {}).get("call_id")
                elif kind == "incident.recommended" and t.recommended is None:
                    t.recommended, t.recommended_id_ms, t.recommended_ts_ms = now, id_ms, ts_ms
                elif kind == "whistle.sounded":
                    t.sounded, t.sounded_id_ms, t.sounded_ts_ms = now, id_ms, ts_ms
                elif kind == "whistle.summons":
                    t.summons.append(now)
            if finished():
                return

    reading = asyncio.create_task(reader())
    try:
        await producer.ping()
        t0 = time.perf_counter()
        for n, spot in enumerate(spots):
            delay = t0 + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            call_id = f"{prefix}-{n:05d}"
            fields: Any = make_call(call_id, n, spot)
            before = time.perf_counter()
            entry_id = await producer.xadd(keys.calls, fields)
            sent[call_id] = (before, _ms_of_id(as_str(entry_id)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reading), timeout=drain_s)
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(reading, timeout=2)
        await producer.aclose()
        await reader_conn.aclose()
    return sent, tracks, types, sizes


def summarise(
    sent: dict[str, tuple[float, int]], tracks: dict[str, Track]
) -> tuple[dict[str, Stat], dict[str, Stat], dict[str, int]]:
    stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
    step_ms: dict[str, list[float]] = {}
    by_call = {t.call_id: t for t in tracks.values() if t.call_id in sent}

    def step(name: str, value: float | None) -> None:
        if value is not None:
            step_ms.setdefault(name, []).append(value)

    missing = Counter[str]()
    for call_id, (t_sent, xadd_ms) in sent.items():
        t = by_call.get(call_id)
        if t is None or t.created is None:
            missing["incident.created"] += 1
            continue
        stage_ms["incident.created"].append((t.created - t_sent) * 1000)
        for name, at in (
            ("incident.recommended", t.recommended),
            ("whistle.sounded", t.sounded),
            ("last whistle.summons", max(t.summons) if t.summons else None),
        ):
            if at is None:
                missing[name] += 1
            else:
                stage_ms[name].append((at - t_sent) * 1000)
        if t.summons and len(t.summons) < SUMMONSES_PER_WHISTLE:
            missing["a whistle.summons"] += 1
        # Steps, on the wall clock at ms resolution: Redis entry ids are commit times, an
        # event's ts is the service's clock when it decided (before the commit).
        assert t.created_id_ms is not None
        step("1 XADD -> incident committed (intake)", t.created_id_ms - xadd_ms)
        if t.recommended_ts_ms is not None and t.recommended_id_ms is not None:
            step(
                "2 -> reactor ranked (read, incident, fleet, travel times, rank)",
                t.recommended_ts_ms - t.created_id_ms,
            )
            step(
                "3 -> recommendation committed (encode, Lua)",
                t.recommended_id_ms - t.recommended_ts_ms,
            )
            if t.sounded_ts_ms is not None and t.sounded_id_ms is not None:
                step(
                    "4 -> whistle decided (incident, roster)", t.sounded_ts_ms - t.recommended_id_ms
                )
                step(
                    "5 -> whistle committed (2nd ranking, encode, Lua)",
                    t.sounded_id_ms - t.sounded_ts_ms,
                )
        if t.sounded is not None and t.sounded_id_ms is not None:
            wall_at_read = time.time() * 1000 - (time.perf_counter() - t.sounded) * 1000
            step("6 whistle committed -> read by this benchmark", wall_at_read - t.sounded_id_ms)
    stats = {k: Stat.of(v) for k, v in stage_ms.items()}
    steps = {k: Stat.of(v) for k, v in sorted(step_ms.items())}
    return stats, steps, dict(missing)


def start_py_spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        print("py-spy is not in the venv (pip install py-spy): no profile")
        return None
    return subprocess.Popen(
        [str(exe), "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
         "--output", str(out), "--duration", str(max(1, math.ceil(seconds))), "--threads"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def read_profile(path: Path, top: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Inclusive and self shares (% of busy samples) per function from py-spy's raw stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return [], []
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith("thread (")]
        if not frames:
            continue
        n = int(count)
        total += n
        for name in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            inclusive[name] += n
        own[re.sub(r":\d+\)$", ")", frames[-1])] += n
    if not total:
        return [], []
    pct = 100.0 / total
    return (
        [(k, round(v * pct, 1)) for k, v in inclusive.most_common(top)],
        [(k, round(v * pct, 1)) for k, v in own.most_common(top)],
    )


async def bench_graph(case: GraphCase, args: argparse.Namespace, log_dir: Path) -> GraphResult:
    from routing.graph import load

    rng = np.random.default_rng(args.seed)
    graph = load(case.path)
    units = fleet_for(graph, args.units, rng)
    spots, spacing = call_spots(graph, args.warmup + args.calls, rng, args.spacing_m)
    del graph
    base = baseline(case.path, spots, units)
    print(
        f"  baseline travel_times_to, {base.origins} origins: p50 {base.travel_times_to.p50_ms} "
        f"ms, p99 {base.travel_times_to.p99_ms} ms (router load {base.load_ms} ms)"
    )

    keys = Keys()
    r = Redis.from_url(args.redis_url)
    await r.flushdb()
    svc: Service | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.perf_counter()
        svc = start_dispatch_service(args.redis_url, case.path, log_dir, args.log_level)
        await wait_ready(svc, r, keys, limit_s=120)
        ready_s = time.perf_counter() - t0
        found = _GRAPH_LOG.search(svc.log_text())
        graph_log = found.group(0) if found else "(no graph line in the service log)"
        print(f"  service ready in {ready_s:.2f} s; log: {graph_log}")

        token = mint_token(Role.ADMIN, Agency.POLICE, "bench")
        base_url = f"http://127.0.0.1:{svc.port}/api"
        t0 = time.perf_counter()
        for unit in units:
            status, body = await asyncio.to_thread(
                http_json, "PUT", f"{base_url}/units/{unit['id']}", unit, token
            )
            if status != 200:
                raise RuntimeError(f"PUT unit {unit['id']}: {status} {body}")
        units_load_s = time.perf_counter() - t0
        status, body = await asyncio.to_thread(
            http_json, "PUT", f"{base_url}/rosters", ROSTER, token
        )
        if status != 204:
            raise RuntimeError(f"PUT rosters: {status} {body}")
        status, duty = await asyncio.to_thread(
            http_json, "GET", f"{base_url}/rosters/today", None, token
        )
        if status != 200 or duty.get("missing"):
            raise RuntimeError(f"roster not in force: {status} {duty}")
        print(f"  {len(units)} units loaded over REST in {units_load_s:.2f} s; roster in force")
        await reactor_idle(r, keys, limit_s=30)

        # Warm-up: first calls pay for imports, pydantic schema builds and thread start.
        await run_calls(
            args.redis_url, keys, spots[: args.warmup], prefix="warm", rate=args.rate, drain_s=15
        )
        await reactor_idle(r, keys, limit_s=30)

        measured = spots[args.warmup :]
        send_s = len(measured) / args.rate
        if args.py_spy:
            spy = start_py_spy(svc.proc.pid, log_dir / f"py-spy-{case.name}.txt", send_s + 1)
        before = await cpu_snapshot(r, {"service": svc.proc.pid})
        sent, tracks, types, sizes = await run_calls(
            args.redis_url, keys, measured, prefix="call", rate=args.rate, drain_s=args.drain_s
        )
        after = await cpu_snapshot(r, {"service": svc.proc.pid})
        cpu = cpu_delta(before, after, 2)
        cpu["other processes"] = other_cpu_seconds(cpu)
        profile_top: list[tuple[str, float]] = []
        profile_self: list[tuple[str, float]] = []
        if spy is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(spy.wait, 30)
            profile_top, profile_self = read_profile(
                log_dir / f"py-spy-{case.name}.txt", args.profile_top
            )

        stages, steps, missing = summarise(sent, tracks)
        logged = svc.log_text()
        checks: dict[str, Any] = {
            "calls sent": len(sent),
            "missing events": missing,
            "incident.merged (expected 0)": types.get("incident.merged", 0),
            "whistle.alert (no one on duty; expected 0)": types.get("whistle.alert", 0),
            "service warnings/errors logged": sum(
                1 for line in logged.splitlines() if " WARNING " in line or " ERROR " in line
            ),
        }
        return GraphResult(
            graph=case.name,
            nodes=case.nodes,
            edges=case.edges,
            signals=case.signals,
            prepare_s=case.prepare_s,
            service_graph_log=graph_log,
            service_graph_load_s=float(found.group(4)) if found else None,
            service_ready_s=round(ready_s, 2),
            units=len(units),
            units_load_s=round(units_load_s, 2),
            calls=len(measured),
            rate=args.rate,
            spacing_m=round(spacing),
            baseline=base,
            stages=stages,
            steps=steps,
            event_bytes={k: int(np.median(v)) for k, v in sorted(sizes.items())},
            checks=checks,
            cpu_s=cpu,
            profile_top=profile_top,
            profile_self=profile_self,
        )
    finally:
        if spy is not None and spy.poll() is None:
            spy.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(spy.wait, 5)
        if svc is not None:
            (code,) = await asyncio.to_thread(stop_services, [svc])
            if code not in (0, None, -signal.SIGTERM):
                print(f"  service exited with {code}; log {svc.log_path}")
        with contextlib.suppress(Exception):
            await r.flushdb()
        await r.aclose()


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def report(results: Sequence[GraphResult]) -> None:
    for res in results:
        b = res.baseline.travel_times_to
        print(
            f"\n== {res.graph}: {res.nodes:,} nodes, {res.edges:,} edges, {res.signals:,} signals "
            f"(prepared in {res.prepare_s} s)"
        )
        print(f"service: {res.service_graph_log}; ready {res.service_ready_s} s after start")
        print(
            f"{res.units} units ({res.units_load_s} s over REST), {res.calls} calls at "
            f"{res.rate:g}/s, spots >= {res.spacing_m:.0f} m apart"
        )
        print(f"\n{'from XADD to (ms)':34} {'n':>5} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}"
              f" {'p50/base':>9} {'p99/base':>9}")  # fmt: skip
        rows = [(f"baseline travel_times_to ({res.baseline.origins})", b, False)]
        rows += [(name, res.stages[name], True) for name in STAGES]
        for name, s, ratio in rows:
            r50 = f"x{s.p50_ms / b.p50_ms:.1f}" if ratio and b.p50_ms > 0 else ""
            r99 = f"x{s.p99_ms / b.p99_ms:.1f}" if ratio and b.p99_ms > 0 else ""
            print(
                f"{name:34} {s.n:5d} {s.p50_ms:8.2f} {s.p90_ms:8.2f} {s.p99_ms:8.2f} "
                f"{s.max_ms:8.2f} {r50:>9} {r99:>9}"
            )
        print("\nwhere the time goes (wall clock, ms resolution: Redis entry ids and event ts)")
        for name, s in res.steps.items():
            print(f"  {name:64} p50 {s.p50_ms:7.1f}  p99 {s.p99_ms:7.1f}  max {s.max_ms:7.1f}")
        sizes = ", ".join(f"{k} {v:,}" for k, v in res.event_bytes.items())
        print(f"event data bytes (median): {sizes}")
        print(
            "CPU seconds in the measured phase: "
            + ", ".join(f"{k} {v}" for k, v in res.cpu_s.items())
        )
        print("checks: " + "; ".join(f"{k}: {v}" for k, v in res.checks.items()))
        if res.profile_top:
            print("py-spy, service process, % of busy samples (inclusive):")
            for name, pct in res.profile_top:
                print(f"  {pct:5.1f}  {name}")
            print("py-spy (self):")
            for name, pct in res.profile_self:
                print(f"  {pct:5.1f}  {name}")
    print(f"\nGoal: p99 < {GOAL_P99_MS:g} ms from XADD to the recommendation and whistle events")
    for res in results:
        worst = max(res.stages[s].p99_ms for s in STAGES[1:])
        verdict = "met" if worst < GOAL_P99_MS else "NOT met"
        print(f"  {res.graph:10} worst p99 {worst:8.2f} ms: {verdict}")


async def amain(args: argparse.Namespace) -> list[GraphResult]:
    results: list[GraphResult] = []
    with tempfile.TemporaryDirectory(prefix="yishao-dispatch-bench-") as tmp:
        folder = Path(tmp)
        log_dir = Path(os.environ.get("YISHAO_BENCH_LOG_DIR") or folder)
        await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
        cases = await asyncio.to_thread(prepare_graphs, args.graphs, folder, args.side, args.seed)
        for case in cases:
            print(f"\n-- {case.name}: {case.nodes:,} nodes (prepared in {case.prepare_s} s)")
            started = time.monotonic()
            results.append(
                await asyncio.wait_for(bench_graph(case, args, log_dir), timeout=args.limit_s)
            )
            print(f"  done in {time.monotonic() - started:.0f} s")
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--graphs", type=lambda s: [g for g in s.split(",") if g],
                        default=["shanghai", "synthetic"], help="shanghai,synthetic")  # fmt: skip
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--calls", type=int, default=200, help="measured calls per graph")
    parser.add_argument("--warmup", type=int, default=6, help="calls before measuring")
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second")
    parser.add_argument("--spacing-m", type=float, default=1000.0,
                        help="wanted spacing of call spots (smaller on a small graph)")  # fmt: skip
    parser.add_argument("--side", type=int, default=224, help="synthetic grid side (50,176 nodes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--redis-url", default=DEFAULT_URL)
    parser.add_argument("--log-level", default="info", help="the service's (info as deployed)")
    parser.add_argument("--drain-s", type=float, default=30.0, help="wait for late events")
    parser.add_argument("--limit-s", type=float, default=300.0, help="time limit per graph")
    parser.add_argument("--py-spy", action="store_true", help="profile the service (slows it)")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    check_redis_url(args.redis_url)
    if not (0 < args.rate <= 200 and 0 < args.calls <= 2000 and 0 < args.units <= 5000):
        raise SystemExit("--rate, --calls or --units out of the benchmark's bounds")
    print(f"service code: {tree_state()}")
    try:
        results = asyncio.run(amain(args))
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc
    report(results)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2, default=str))


if __name__ == "__main__":
    main()
