"""Intake benchmark: calls through ``yishao serve`` to committed incidents, on this machine.

What it measures, in one run and against one Redis:

1. The ceiling: raw ``XADD`` rate from Python (redis.asyncio), one awaited XADD at a time and
   pipelined 16 deep, plus ``XREADGROUP 100`` + ``XACK`` on the same payload.
2. For one, then two real service processes (``python -m yishao serve``):
   - latency from ``XADD`` on ``yishao:calls`` to reading the incident's event on
     ``{yishao}:events`` with a paced producer (100 calls/s, then 500 calls/s): p50/p99/max;
   - throughput: a burst of N calls (each at its own spot on a ~1 km grid around Fuyang, so no
     call merges), timed from the first XADD until N ``incident.created`` events are committed;
   - CPU seconds used by each instance process and by Redis in each phase.

Run by hand (bounded in count and time, loopback only, its own Redis DB, flushed before/after)::

    .venv/bin/python benchmarks/intake.py                 # full run, about 3-4 minutes
    .venv/bin/python benchmarks/intake.py --quick         # about 1 minute
    .venv/bin/python benchmarks/intake.py --json > out.json   # JSON on stdout, tables on stderr
    .venv/bin/python benchmarks/intake.py --profile       # cProfile of one in-process Intake

Goal (issue): at least 1,000 calls/s per instance, p99 under 20 ms at 100 calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import math
import os
import platform
import pstats
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _common import (
    Service,
    Stat,
    as_str,
    check_redis_url,
    consumer_names,
    cpu_delta,
    cpu_snapshot,
    last_entry_id,
    other_cpu_seconds,
    redis_cpu_seconds,
    run_async,
    start_service,
    stop_services,
    tail_stream,
    wait_healthy,
)
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from dispatch.codec import call_from_fields
from dispatch.constants import CONSUMER_GROUP, Keys

DEFAULT_URL = "redis://127.0.0.1:6379/14"
SCRATCH_STREAM = "bench:scratch:xadd"
GOAL_RATE_PER_INSTANCE = 1000.0
INTAKE_EVENTS = {b"incident.created", b"incident.merged"}
GOAL_P99_MS = 20.0

# A ~1 km grid centred on Fuyang (富阳), Hangzhou: 0.009 deg of latitude is 1.00 km and
# 0.0104 deg of longitude is 1.00 km at 30 deg N. The merge radius is 300 m and the merge
# cells are 300 m, so no two calls share a guard cell or merge.
CENTRE_LAT, CENTRE_LON = 30.05, 119.95
STEP_LAT, STEP_LON = 0.009, 0.0104
GRID_SIDE = 200  # 40,000 spots: 1.8 deg x 2.1 deg, the Hangzhou area

# (centre, call type, severity) cycled through: realistic mix of the three centres.
CALL_MIX: tuple[tuple[str, str, str], ...] = (
    ("122", "traffic_accident", "2"),
    ("120", "critical_patient", "4"),
    ("119", "fire", "3"),
    ("122", "traffic_accident_entrapment", "4"),
    ("120", "fall_from_height", "3"),
    ("119", "natural_disaster", "2"),
)
ROADS = ("富春街道 金桥北路", "银湖街道 高科路", "东洲街道 江滨东大道", "春江街道 320国道")


# --------------------------------------------------------------------------------------------
# Calls
# --------------------------------------------------------------------------------------------
class CallFactory:
    """Flat string fields for ``yishao:calls`` entries, each call at its own grid spot."""

    def __init__(self) -> None:
        self.next_spot = 0

    def make(self, prefix: str, n: int) -> tuple[str, dict[str, str]]:
        spot = self.next_spot
        self.next_spot += 1
        if spot >= GRID_SIDE * GRID_SIDE:
            raise RuntimeError("grid exhausted: lower --calls")
        row, col = divmod(spot, GRID_SIDE)
        lat = CENTRE_LAT + (row - GRID_SIDE // 2) * STEP_LAT
        lon = CENTRE_LON + (col - GRID_SIDE // 2) * STEP_LON
        centre, call_type, severity = CALL_MIX[n % len(CALL_MIX)]
        call_id = f"{prefix}-{n:06d}"
        fields = {
            "schema_version": "1",
            "call_id": call_id,
            "centre": centre,
            "call_type": call_type,
            "lat": f"{lat:.6f}",
            "lon": f"{lon:.6f}",
            "received_at": datetime.now(UTC).isoformat(),
            "address": f"{ROADS[n % len(ROADS)]} {n % 900 + 1}号",
            "caller_phone": f"139{n % 100_000_000:08d}",
            "severity": severity,
        }
        return call_id, fields


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class Ceiling:
    xadd_seq_per_s: float = 0.0
    xadd_pipe16_per_s: float = 0.0
    readgroup_ack_per_s: float = 0.0
    payload_bytes: int = 0


@dataclass
class Latency:
    rate_target: float
    sent: int = 0
    received: int = 0
    send_rate: float = 0.0
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    cpu_s: dict[str, float] = field(default_factory=dict)


@dataclass
class Burst:
    calls: int
    committed: int = 0
    seconds: float = math.nan
    calls_per_s: float = math.nan
    steady_calls_per_s: float = math.nan  # between 10 % and 90 % committed
    produce_seconds: float = math.nan
    timed_out: bool = False
    # Seconds after the last commit until every consumer group of the event log (the
    # reactor) had caught up; None when there is none or it did not catch up in 60 s.
    event_consumers_idle_after_s: float | None = None
    cpu_s: dict[str, float] = field(default_factory=dict)
    per_instance_created: dict[str, int] = field(default_factory=dict)


@dataclass
class ConfigResult:
    instances: int
    latencies: list[Latency] = field(default_factory=list)
    burst: Burst | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    cpu_total_s: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    started_at: str
    redis_url: str
    machine: dict[str, Any]
    ceiling: Ceiling = field(default_factory=Ceiling)
    configs: list[ConfigResult] = field(default_factory=list)
    goals: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Processes and CPU
# --------------------------------------------------------------------------------------------
def created_logged(inst: Service) -> int:
    """How many ``created incident`` lines an instance logged (its share of the work)."""
    try:
        with open(inst.log_path or "", encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if " created incident " in line)
    except OSError:
        return -1


async def wait_ready(instances: list[Service], r: Redis, keys: Keys, limit_s: float) -> None:
    """Every /api/health answers and every instance is a consumer of the group."""

    async def all_consuming() -> bool:
        names = await consumer_names(r, keys.calls, CONSUMER_GROUP)
        return {i.name for i in instances} <= names

    await wait_healthy(instances, limit_s, all_consuming)


class CpuMeter:
    """CPU seconds of each instance, of Redis (INFO cpu) and of this process, per phase."""

    def __init__(self, instances: list[Service], r: Redis) -> None:
        self.instances = instances
        self.r = r

    async def snapshot(self) -> dict[str, float]:
        return await cpu_snapshot(self.r, {i.name: i.proc.pid for i in self.instances})

    @staticmethod
    def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
        return cpu_delta(a, b, 3)


# --------------------------------------------------------------------------------------------
# Ceiling
# --------------------------------------------------------------------------------------------
async def measure_ceiling(r: Redis, count: int, fields: dict[str, str]) -> Ceiling:
    """The median of three rounds of :func:`_ceiling_once` (the machine is shared and noisy)."""
    rounds = [await _ceiling_once(r, count, fields) for _ in range(3)]

    def med(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    return Ceiling(
        xadd_seq_per_s=med([c.xadd_seq_per_s for c in rounds]),
        xadd_pipe16_per_s=med([c.xadd_pipe16_per_s for c in rounds]),
        readgroup_ack_per_s=med([c.readgroup_ack_per_s for c in rounds]),
        payload_bytes=rounds[0].payload_bytes,
    )


async def _ceiling_once(r: Redis, count: int, fields: dict[str, str]) -> Ceiling:
    payload = sum(len(k.encode()) + len(v.encode()) for k, v in fields.items())
    flds: Any = fields
    await r.delete(SCRATCH_STREAM)
    # Warm the connection and the stream.
    for _ in range(100):
        await r.xadd(SCRATCH_STREAM, flds)
    seq_n = max(count // 4, 1000)
    t0 = time.perf_counter()
    for _ in range(seq_n):
        await r.xadd(SCRATCH_STREAM, flds)
    seq = seq_n / (time.perf_counter() - t0)

    pipe_n = (count // 16) * 16
    t0 = time.perf_counter()
    for _ in range(pipe_n // 16):
        async with r.pipeline(transaction=False) as pipe:
            for _ in range(16):
                pipe.xadd(SCRATCH_STREAM, flds)
            await pipe.execute()
    piped = pipe_n / (time.perf_counter() - t0)

    await r.xgroup_create(SCRATCH_STREAM, "bench", id="0")
    t0 = time.perf_counter()
    read = 0
    while True:
        resp: Any = await r.xreadgroup("bench", "b1", {SCRATCH_STREAM: ">"}, count=100)
        entries = resp[0][1] if resp else []
        if not entries:
            break
        await r.xack(SCRATCH_STREAM, "bench", *[e[0] for e in entries])
        read += len(entries)
    rg = read / (time.perf_counter() - t0)
    await r.delete(SCRATCH_STREAM)
    return Ceiling(
        xadd_seq_per_s=round(seq), xadd_pipe16_per_s=round(piped), readgroup_ack_per_s=round(rg),
        payload_bytes=payload,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Latency: a paced producer and a reader of the event log
# --------------------------------------------------------------------------------------------
async def measure_latency(
    url: str,
    r: Redis,
    keys: Keys,
    factory: CallFactory,
    *,
    prefix: str,
    rate: float,
    seconds: float,
    meter: CpuMeter,
    drain_timeout: float = 10.0,
) -> Latency:
    result = Latency(rate_target=rate)
    count = max(1, int(rate * seconds))
    calls = [factory.make(prefix, n) for n in range(count)]
    wanted = {cid for cid, _ in calls}
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    start_id = await last_entry_id(r, keys.events)
    reader_conn = Redis.from_url(url)
    producer = Redis.from_url(url)
    stop = asyncio.Event()

    async def reader() -> None:
        async for now, entries in tail_stream(reader_conn, keys.events, start_id, stop):
            for _entry_id, raw in entries:
                if raw.get(b"type") not in INTAKE_EVENTS:
                    continue  # e.g. the reactor's incident.recommended
                data = orjson.loads(raw.get(b"data", b"{}"))
                cid = (data.get("call") or {}).get("call_id")
                if cid in wanted and cid not in got:
                    got[cid] = now
            if len(got) >= count:
                return

    try:
        await producer.ping()
        await reader_conn.ping()
        reading = asyncio.create_task(reader())
        before = await meter.snapshot()
        t0 = time.perf_counter()
        for i, (cid, flds) in enumerate(calls):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[cid] = time.perf_counter()
            await producer.xadd(keys.calls, flds)  # type: ignore[arg-type]
        send_s = time.perf_counter() - t0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reading), timeout=drain_timeout)
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reading, timeout=2)
        after = await meter.snapshot()
    finally:
        stop.set()
        await reader_conn.aclose()
        await producer.aclose()
    lat = sorted((got[c] - sent[c]) * 1000 for c in got if c in sent)
    result.sent = len(sent)
    result.received = len(lat)
    result.send_rate = round(len(sent) / send_s, 1) if send_s > 0 else math.nan
    stat = Stat.of(lat)
    result.p50_ms, result.p90_ms = stat.p50_ms, stat.p90_ms
    result.p99_ms, result.max_ms = stat.p99_ms, stat.max_ms
    result.cpu_s = CpuMeter.delta(before, after)
    return result


# --------------------------------------------------------------------------------------------
# Throughput: a burst, timed to the last committed event
# --------------------------------------------------------------------------------------------
async def measure_burst(
    url: str,
    r: Redis,
    keys: Keys,
    factory: CallFactory,
    instances: list[Service],
    meter: CpuMeter,
    *,
    calls: int,
    limit_s: float,
    prefix: str,
) -> Burst:
    result = Burst(calls=calls)
    entries = [factory.make(prefix, n)[1] for n in range(calls)]
    # The call index is written by the same Lua commit as the incident and its event; the event
    # log itself also carries other instances' workers' events (the reactor's), so count this.
    base = int(await r.hlen(keys.call_index))
    logged_before = {i.name: created_logged(i) for i in instances}
    target = base + calls
    samples: list[tuple[float, int]] = []
    produced_at = math.nan

    async def produce() -> None:
        nonlocal produced_at
        for start in range(0, len(entries), 500):
            async with r.pipeline(transaction=False) as pipe:
                for flds in entries[start : start + 500]:
                    pipe.xadd(keys.calls, flds)  # type: ignore[arg-type]
                await pipe.execute()
        produced_at = time.perf_counter()

    poll = Redis.from_url(url)
    try:
        before = await meter.snapshot()
        t0 = time.perf_counter()
        producing = asyncio.create_task(produce())
        deadline = t0 + limit_s
        done = base
        while time.perf_counter() < deadline:
            try:
                done = int(await poll.hlen(keys.call_index))
            except RedisError as exc:  # a stalled machine: keep polling until the deadline
                samples.append((time.perf_counter(), done - base))
                await asyncio.sleep(0.1)
                print(f"poll: {exc}", file=sys.stderr)
                continue
            samples.append((time.perf_counter(), done - base))
            if done >= target:
                break
            await asyncio.sleep(0.01)
        t1 = time.perf_counter()
        await producing
        after = await meter.snapshot()
        # Other consumers of the event log (the reactor) may still be working through it.
        if await _wait_event_groups_idle(poll, keys, 60.0):
            result.event_consumers_idle_after_s = round(time.perf_counter() - t1, 3)
    finally:
        await poll.aclose()
    result.committed = done - base
    result.timed_out = done < target
    result.seconds = round(t1 - t0, 3)
    result.calls_per_s = round(result.committed / (t1 - t0), 1)
    result.produce_seconds = round(produced_at - t0, 3)
    lo = _first_at(samples, 0.1 * calls)
    hi = _first_at(samples, 0.9 * calls)
    if lo is not None and hi is not None and hi[0] > lo[0]:
        result.steady_calls_per_s = round((hi[1] - lo[1]) / (hi[0] - lo[0]), 1)
    result.cpu_s = CpuMeter.delta(before, after)
    logged_after = {i.name: created_logged(i) for i in instances}
    result.per_instance_created = {k: logged_after[k] - logged_before[k] for k in logged_before}
    return result


async def _wait_event_groups_idle(r: Redis, keys: Keys, limit_s: float) -> bool:
    """True once every consumer group of the event log is caught up (False: none, or late)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            groups: Any = await r.xinfo_groups(keys.events)
        except Exception:
            return False
        if not groups:
            return False
        if all(int(g.get("pending") or 0) == 0 and int(g.get("lag") or 0) == 0 for g in groups):
            return True
        await asyncio.sleep(0.02)
    return False


def _first_at(samples: list[tuple[float, int]], level: float) -> tuple[float, int] | None:
    return next((s for s in samples if s[1] >= level), None)


# --------------------------------------------------------------------------------------------
# One configuration: K instances
# --------------------------------------------------------------------------------------------
async def run_config(
    k: int, args: argparse.Namespace, r: Redis, keys: Keys, log_dir: Path, console: Console
) -> ConfigResult:
    result = ConfigResult(instances=k)
    await r.flushdb()
    factory = CallFactory()
    instances: list[Service] = []
    try:
        for n in range(k):
            name = f"bench-{n + 1}"
            instances.append(
                start_service(
                    name, args.redis_url, log_level=args.log_level,
                    log_path=log_dir / f"{name}.log",
                    extra_env={"PYTHONUNBUFFERED": "0"},  # any non-empty value: unbuffered
                )
            )  # fmt: skip
        meter = CpuMeter(instances, r)
        await wait_ready(instances, r, keys, limit_s=30)
        start_cpu = await meter.snapshot()
        console.log(f"{k} instance(s) ready: " + ", ".join(f"{i.name}:{i.port}" for i in instances))

        # Warm-up: first calls pay for script loading, imports and connection set-up.
        warm = await measure_latency(
            args.redis_url, r, keys, factory, prefix=f"W{k}", rate=200, seconds=0.5, meter=meter
        )
        console.log(f"  warm-up: {warm.received}/{warm.sent} committed")

        for rate in args.rates:
            secs = args.latency_seconds if rate <= 100 else args.latency_seconds_fast
            console.log(f"  latency at {rate:.0f} calls/s for {secs:.0f} s ...")
            lat = await measure_latency(
                args.redis_url, r, keys, factory,
                prefix=f"L{k}r{int(rate)}", rate=rate, seconds=secs, meter=meter,
            )  # fmt: skip
            result.latencies.append(lat)
            console.log(
                f"    p50 {lat.p50_ms} ms, p99 {lat.p99_ms} ms, max {lat.max_ms} ms "
                f"({lat.received}/{lat.sent})"
            )
            await _wait_idle(r, keys, limit_s=30)

        console.log(f"  burst of {args.calls} calls ...")
        result.burst = await measure_burst(
            args.redis_url, r, keys, factory, instances, meter,
            calls=args.calls, limit_s=args.burst_timeout, prefix=f"B{k}",
        )  # fmt: skip
        b = result.burst
        console.log(
            f"    {b.committed}/{b.calls} in {b.seconds} s: {b.calls_per_s} calls/s"
            + (" (TIMED OUT)" if b.timed_out else "")
        )
        if not b.timed_out:
            await _wait_idle(r, keys, limit_s=30)
        result.checks = await _checks(r, keys, factory, instances)
        end_cpu = await meter.snapshot()
        result.cpu_total_s = CpuMeter.delta(start_cpu, end_cpu)
        for inst in instances:
            if inst.proc.poll() is not None:
                result.checks[f"{inst.name} exited early"] = inst.proc.returncode
    finally:
        for inst, code in zip(instances, stop_services(instances), strict=True):
            if code not in (0, None, -signal.SIGTERM):
                console.log(f"  {inst.name} exit code {code} (log: {inst.log_path})")
        await r.flushdb()
    return result


async def _wait_idle(r: Redis, keys: Keys, limit_s: float) -> bool:
    """Wait until the group has no lag and nothing pending."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        groups: Any = await r.xinfo_groups(keys.calls)
        g = next((g for g in groups if as_str(g["name"]) == CONSUMER_GROUP), None)
        if g is not None and int(g.get("pending") or 0) == 0 and int(g.get("lag") or 0) == 0:
            return True
        await asyncio.sleep(0.05)
    return False


async def _checks(
    r: Redis, keys: Keys, factory: CallFactory, instances: list[Service]
) -> dict[str, Any]:
    groups: Any = await r.xinfo_groups(keys.calls)
    g: dict[str, Any] = next((g for g in groups if as_str(g["name"]) == CONSUMER_GROUP), {})
    calls_total = int(await r.xlen(keys.calls))
    types: dict[str, int] = {}
    last = "-"
    while True:
        chunk: Any = await r.xrange(keys.events, min=last, count=5000)
        if last != "-":
            chunk = chunk[1:]
        if not chunk:
            break
        for entry_id, raw in chunk:
            t = as_str(raw.get(b"type", b""))
            types[t] = types.get(t, 0) + 1
            last = as_str(entry_id)
    created = types.pop("incident.created", 0)
    merged = types.pop("incident.merged", 0)
    return {
        "calls_on_stream": calls_total,
        "incident.created": created,
        "incident.merged": merged,
        "call_index": int(await r.hlen(keys.call_index)),
        "dead_letters": int(await r.xlen(keys.calls_dead)),
        "pending": int(g.get("pending") or 0),
        "lag": g.get("lag"),
        "other_events": types,
        "all_committed": created == calls_total and merged == 0,
    }


# --------------------------------------------------------------------------------------------
# In-process profile (cProfile around one Intake, as the tests build it)
# --------------------------------------------------------------------------------------------
async def run_profile(args: argparse.Namespace, r: Redis, keys: Keys, console: Console) -> None:
    from dispatch.core.merge import MergePolicy
    from dispatch.core.plans import PlanTable
    from dispatch.flow.intake import Intake
    from dispatch.flow.merge import JointIntake
    from dispatch.infra.store import Store

    n = args.calls
    factory = CallFactory()
    plans = PlanTable.load()

    def clock() -> datetime:
        return datetime.now(UTC)

    async def one_run(label: str, profiler: cProfile.Profile | None) -> float:
        await r.flushdb()
        store = Store(r, keys)
        await store.ensure_group()
        handler = JointIntake(store, plans, policy=MergePolicy(), clock=clock)
        intake = Intake(store, handler, consumer="profile", clock=clock, batch=100, block_ms=1)
        entries = [factory.make(label, i)[1] for i in range(n)]
        for start in range(0, n, 1000):
            async with r.pipeline(transaction=False) as pipe:
                for flds in entries[start : start + 1000]:
                    pipe.xadd(keys.calls, flds)  # type: ignore[arg-type]
                await pipe.execute()
        redis0 = await redis_cpu_seconds(r)
        c0, t0 = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        while await intake.step(block_ms=1):
            pass
        if profiler is not None:
            profiler.disable()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        redis_cpu = await redis_cpu_seconds(r) - redis0
        console.log(
            f"{label}: {intake.stats.processed} calls in {dt:.2f} s = "
            f"{intake.stats.processed / dt:.0f} calls/s; Python CPU {dc / n * 1e6:.0f} us/call, "
            f"Redis CPU {redis_cpu / n * 1e6:.0f} us/call"
        )
        return dt

    await one_run("plain", None)
    prof = cProfile.Profile()
    await one_run("cprofile", prof)
    await r.flushdb()
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(args.profile_top)
        console.print(buf.getvalue(), markup=False, highlight=False)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------
def render(report: Report, console: Console) -> None:
    c = report.ceiling
    m = report.machine
    console.print(
        f"{m['cpus']} CPUs, Python {m['python']}, Redis {m['redis']} ({report.redis_url}), "
        f"bench loop {m['bench_loop']}, load average at start {m['loadavg_at_start']}"
    )
    t = Table(title="Redis ceiling from Python (redis.asyncio, same run)")
    t.add_column("measure")
    t.add_column("per second", justify="right")
    t.add_row("XADD, one awaited at a time", f"{c.xadd_seq_per_s:,.0f}")
    t.add_row("XADD, pipelined 16 deep", f"{c.xadd_pipe16_per_s:,.0f}")
    t.add_row("XREADGROUP 100 + XACK (entries)", f"{c.readgroup_ack_per_s:,.0f}")
    t.add_row("call payload (bytes of fields)", f"{c.payload_bytes}")
    console.print(t)

    t = Table(title="Intake: XADD -> committed incident event (real `yishao serve` processes)")
    for col in ("instances", "measure", "value", "vs ceiling / goal"):
        t.add_column(col, justify="right" if col != "measure" else "left")
    for cfg in report.configs:
        k = str(cfg.instances)
        for lat in cfg.latencies:
            goal = ""
            if lat.rate_target <= 100:
                goal = "OK" if lat.p99_ms < GOAL_P99_MS else f"FAIL (goal p99 < {GOAL_P99_MS} ms)"
            noise = other_cpu_seconds(lat.cpu_s)
            t.add_row(
                k,
                f"latency at {lat.rate_target:.0f}/s (sent {lat.send_rate}/s, "
                f"{lat.received}/{lat.sent} seen)",
                f"p50 {lat.p50_ms} / p90 {lat.p90_ms} / p99 {lat.p99_ms} / max {lat.max_ms} ms",
                goal + f" (other processes: {noise:.1f} CPU s)",
            )
        b = cfg.burst
        if b is not None:
            per = b.calls_per_s / cfg.instances
            ratio_seq = b.calls_per_s / c.xadd_seq_per_s if c.xadd_seq_per_s else math.nan
            ratio_pipe = b.calls_per_s / c.xadd_pipe16_per_s if c.xadd_pipe16_per_s else math.nan
            t.add_row(
                k,
                f"burst {b.committed:,}/{b.calls:,} calls" + (" TIMED OUT" if b.timed_out else ""),
                f"{b.calls_per_s:,.0f} calls/s ({per:,.0f}/instance; steady "
                f"{b.steady_calls_per_s:,.0f}/s) in {b.seconds} s",
                f"{ratio_seq:.1%} of XADD seq, {ratio_pipe:.1%} of pipelined; "
                + ("OK" if per >= GOAL_RATE_PER_INSTANCE else "FAIL (goal 1,000/instance)"),
            )
            cpu = ", ".join(f"{name} {sec:.1f}" for name, sec in b.cpu_s.items())
            t.add_row(k, "burst CPU seconds", cpu, _cpu_per_call(b))
            noise = other_cpu_seconds(b.cpu_s) / b.seconds if b.seconds else math.nan
            t.add_row(
                k,
                "other processes on the machine during the burst",
                f"{noise:.2f} cores busy",
                "WARNING: shared machine, figures low" if noise > 0.25 else "quiet",
            )
            idle = b.event_consumers_idle_after_s
            t.add_row(
                k,
                "event-log consumers (reactor) caught up",
                "no such group / not within 60 s" if idle is None else f"{idle} s after",
                "",
            )
            if b.per_instance_created:
                t.add_row(
                    k,
                    "burst share (created, from logs)",
                    ", ".join(f"{n} {v:,}" for n, v in b.per_instance_created.items()),
                    "",
                )
        cpu = ", ".join(f"{name} {sec:.1f}" for name, sec in cfg.cpu_total_s.items())
        t.add_row(k, "CPU seconds, whole config", cpu, "")
        ok = cfg.checks.get("all_committed")
        t.add_row(
            k,
            "checks",
            ", ".join(f"{n}={v}" for n, v in cfg.checks.items() if n != "all_committed"),
            "OK" if ok else "MISMATCH",
        )
    console.print(t)
    g = report.goals
    console.print(
        f"Goals: >= {GOAL_RATE_PER_INSTANCE:,.0f} calls/s per instance: "
        f"{'MET' if g.get('throughput_met') else 'NOT MET'}; "
        f"p99 < {GOAL_P99_MS:.0f} ms at 100 calls/s: "
        + {True: "MET", False: "NOT MET", None: "not measured"}[g.get("latency_met")]
    )


def _cpu_per_call(b: Burst) -> str:
    if not b.committed:
        return ""
    inst = sum(v for k, v in b.cpu_s.items() if k.startswith("bench-"))
    red = b.cpu_s.get("redis-server", 0.0)
    return (
        f"instances {inst / b.committed * 1e6:,.0f} us/call, "
        f"redis {red / b.committed * 1e6:,.0f} us/call"
    )


def goals(report: Report) -> dict[str, Any]:
    one = next((c for c in report.configs if c.instances == 1), None)
    rate1 = one.burst.calls_per_s if one and one.burst else math.nan
    p99 = [lat.p99_ms for c in report.configs for lat in c.latencies if lat.rate_target == 100]
    return {
        "calls_per_s_one_instance": rate1,
        "throughput_met": bool(rate1 >= GOAL_RATE_PER_INSTANCE),
        "p99_ms_at_100": p99,
        "latency_met": (all(p < GOAL_P99_MS for p in p99) if p99 else None),
    }


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--redis-url", default=os.environ.get("YISHAO_BENCH_REDIS_URL", DEFAULT_URL))
    p.add_argument("--calls", type=int, default=None, help="burst size (default 20000; quick 2000)")
    p.add_argument("--quick", action="store_true", help="small burst, short latency phases")
    p.add_argument("--instances", default="1,2", help="configurations to run, e.g. 1,2")
    p.add_argument("--rates", default="100,500", help="paced latency rates, calls/s")
    p.add_argument("--burst-timeout", type=float, default=None, help="seconds per burst")
    p.add_argument("--log-level", default="info", help="the instances' log level (as deployed)")
    p.add_argument("--json", action="store_true", help="JSON on stdout; tables go to stderr")
    p.add_argument("--profile", action="store_true", help="cProfile one in-process Intake")
    p.add_argument("--profile-top", type=int, default=30)
    args = p.parse_args(argv)
    args.rates = [float(x) for x in str(args.rates).split(",") if x.strip()]
    args.instances = [int(x) for x in str(args.instances).split(",") if x.strip()]
    if args.calls is None:
        args.calls = 2000 if args.quick else 20_000
    args.calls = max(1, min(args.calls, GRID_SIDE * GRID_SIDE - 20_000))
    if args.burst_timeout is None:
        args.burst_timeout = 60.0 if args.quick else 150.0
    args.latency_seconds = 5.0 if args.quick else 15.0
    args.latency_seconds_fast = 3.0 if args.quick else 8.0
    check_redis_url(args.redis_url)
    return args


async def amain(args: argparse.Namespace, console: Console, log_dir: Path) -> Report:
    keys = Keys()
    r = Redis.from_url(args.redis_url)
    info: Any = await r.info("server")
    report = Report(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        redis_url=args.redis_url,
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "redis": info.get("redis_version"),
            "bench_loop": type(asyncio.get_running_loop()).__module__,
            "calls": args.calls,
            "quick": args.quick,
            "instance_log_level": args.log_level,
            "loadavg_at_start": _loadavg(),
        },
    )
    sample = CallFactory().make("S", 0)[1]
    call_from_fields({k.encode(): v.encode() for k, v in sample.items()})  # valid by the codec
    try:
        await r.flushdb()
        if args.profile:
            await run_profile(args, r, keys, console)
            return report
        console.log("measuring the Redis ceiling ...")
        report.ceiling = await measure_ceiling(r, 8000 if args.quick else 40_000, sample)
        console.log(
            f"  XADD {report.ceiling.xadd_seq_per_s:,.0f}/s one at a time, "
            f"{report.ceiling.xadd_pipe16_per_s:,.0f}/s pipelined 16"
        )
        for k in args.instances:
            console.rule(f"{k} instance(s)")
            report.configs.append(await run_config(k, args, r, keys, log_dir, console))
        report.goals = goals(report)
    finally:
        await r.flushdb()
        await r.aclose()
    return report


def _loadavg() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=args.json, width=None if sys.stderr.isatty() else 150)
    with tempfile.TemporaryDirectory(prefix="yishao-bench-") as tmp:
        # Instance logs go to a temporary directory unless YISHAO_BENCH_LOG_DIR keeps them.
        log_dir = Path(os.environ.get("YISHAO_BENCH_LOG_DIR", tmp))
        log_dir.mkdir(parents=True, exist_ok=True)
        report = run_async(amain(args, console, log_dir))
    if args.profile:
        return 0
    render(report, console)
    if args.json:
        sys.stdout.write(json.dumps(asdict(report), indent=2, ensure_ascii=False, default=str))
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
