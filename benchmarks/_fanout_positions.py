"""Positions mode of ``benchmarks/fanout.py``: simulated unit terminals and position-frame timing.

- :func:`register_units`: ``PUT /api/units/{id}`` (admin token) for N units around Shanghai.
- :func:`terminal_worker`: a client process holding one terminal websocket per unit (token role
  ``terminal``, sub = unit id); each sends ``position`` at 1 Hz with seeded jitter, moving
  slowly along a straight line, ``at`` = send time (ISO, +08:00); ``position.ok`` replies are
  timed (send -> ack round trip).
- :class:`PositionTiming`: console side; for every unit entry of every ``positions`` frame,
  latency = receipt time - the fix's ``at`` (same machine clock), kept as a 1 ms histogram.

Everything is bounded: a wall-clock deadline ends every loop; sockets close on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import resource
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

SHANGHAI = timezone(timedelta(hours=8))
CENTRE = (31.23, 121.47)
HIST_MS = 60_000  # histogram buckets of 1 ms; slower entries go to the last one
UNIT_KINDS = (("ems", "ambulance"), ("traffic", "traffic_police_car"), ("fire", "fire_engine"),
              ("police", "patrol_car"))  # fmt: skip


def unit_id(i: int) -> str:
    return f"SIM-{i:05d}"


def unit_start(i: int, seed: int) -> tuple[float, float, float, float]:
    """Start (lat, lon), heading (degrees) and speed (km/h) of simulated unit ``i``."""
    rnd = random.Random(seed * 1_000_003 + i)
    lat = CENTRE[0] + rnd.uniform(-0.08, 0.08)  # about +-9 km
    lon = CENTRE[1] + rnd.uniform(-0.09, 0.09)
    return lat, lon, rnd.uniform(0, 359.9), rnd.uniform(15, 60)


async def register_units(base_url: str, admin_token: str, n: int, seed: int) -> float:
    """Create ``n`` units through REST, 16 requests in flight; returns seconds taken."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    started = time.monotonic()
    sem = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as http:

        async def one(i: int) -> None:
            agency, utype = UNIT_KINDS[i % len(UNIT_KINDS)]
            lat, lon, _h, _s = unit_start(i, seed)
            body = {"id": unit_id(i), "agency": agency, "type": utype, "lat": lat, "lon": lon}
            async with sem:
                r = await http.put(f"/api/units/{unit_id(i)}", json=body)
            if r.status_code != 200:
                raise RuntimeError(f"PUT unit {unit_id(i)}: {r.status_code} {r.text[:200]}")

        await asyncio.gather(*(one(i) for i in range(n)))
    return time.monotonic() - started


# -- terminals ----------------------------------------------------------------------------------
def _proc_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def terminal_worker(
    units: list[tuple[int, str]],
    seed: int,
    times: Any,
    ready: Any,
    results: Any,
) -> None:
    """Hold one terminal socket per ``(index, url)``; send fixes from ``times[0]`` (go) until
    ``times[2]`` (a shared array, set by the parent once every process is connected).

    Puts ``("ready", connected, failed)`` on ``ready`` once every socket is open (or failed),
    then ``{...}`` figures on ``results`` when done. Acks are timed inside ``times[1:3]`` only.
    """
    window = _Window(times)
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # pragma: no cover
        run = asyncio.run

    async def go() -> None:
        acks = [0] * HIST_MS
        stats: dict[str, Any] = {"sent": 0, "sent_in_window": 0, "acked": 0, "errors": 0,
                                 "error_codes": {}, "closed": {}, "connect_failed": 0}  # fmt: skip
        opened = asyncio.Semaphore(50)  # handshakes in flight per process
        connected = 0
        all_open = asyncio.Event()
        pending = len(units)

        def one_done(ok: bool) -> None:
            nonlocal pending, connected
            pending -= 1
            connected += ok
            if pending == 0:
                all_open.set()

        async def unit(i: int, url: str) -> None:
            rnd = random.Random(seed * 7919 + i)
            lat, lon, heading, speed = unit_start(i, seed)
            dlat = math.cos(math.radians(heading)) / 111_320.0
            dlon = math.sin(math.radians(heading)) / (111_320.0 * math.cos(math.radians(lat)))
            sent_at: dict[str, float] = {}
            counted = False
            try:
                async with opened:
                    ws = await connect(url, compression=None, proxy=None, open_timeout=60,
                                       max_queue=64, ping_interval=None)  # fmt: skip
            except (OSError, TimeoutError, InvalidStatus, ConnectionClosed):
                stats["connect_failed"] += 1
                one_done(False)
                return
            try:
                while orjson.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "ready":
                    pass
                counted = True
                one_done(True)

                async def reader() -> None:
                    async for raw in ws:
                        msg = orjson.loads(raw)
                        kind = msg["type"]
                        if kind == "position.ok":
                            t0 = sent_at.pop(msg["data"].get("ref") or "", None)
                            if t0 is not None:
                                now = time.time()
                                if window[0] <= now <= window[1]:
                                    acks[min(int((now - t0) * 1000), HIST_MS - 1)] += 1
                                stats["acked"] += 1
                        elif kind == "error":
                            stats["errors"] += 1
                            code = msg["data"].get("code", "?")
                            stats["error_codes"][code] = stats["error_codes"].get(code, 0) + 1

                read_task = asyncio.create_task(reader())
                while not times[0]:  # noqa: ASYNC110 (set by another process: poll it)
                    await asyncio.sleep(0.05)
                # Seeded phase within the first second, then 1 Hz with +-100 ms jitter.
                await asyncio.sleep(max(0.0, times[0] - time.time()) + rnd.uniform(0, 1.0))
                seq = 0
                moved = 0.0
                while (now := time.time()) < window[1] and not read_task.done():
                    moved += speed / 3.6
                    if moved > 3000:  # turn back after 3 km: stay around the centre
                        moved, dlat, dlon = 0.0, -dlat, -dlon
                    lat += dlat * speed / 3.6
                    lon += dlon * speed / 3.6
                    seq += 1
                    ref = str(seq)
                    at = datetime.fromtimestamp(now, SHANGHAI).isoformat(timespec="microseconds")
                    sent_at[ref] = now
                    if len(sent_at) > 64:
                        sent_at.pop(next(iter(sent_at)))
                    await ws.send(
                        f'{{"type":"position","lat":{lat:.7f},"lon":{lon:.7f},"at":"{at}",'
                        f'"speed_kph":{speed:.1f},"heading_deg":{heading:.1f},"ref":"{ref}"}}'
                    )
                    stats["sent"] += 1
                    if window[0] <= now <= window[1]:
                        stats["sent_in_window"] += 1
                    await asyncio.sleep(
                        max(0.0, 1.0 + rnd.uniform(-0.1, 0.1) - (time.time() - now))
                    )
                await asyncio.sleep(0.5)  # the last acks
                read_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await read_task
            except (ConnectionClosed, TimeoutError) as exc:
                rcvd = getattr(exc, "rcvd", None)
                code = rcvd.code if rcvd else (1006 if isinstance(exc, ConnectionClosed) else 0)
                stats["closed"][code] = stats["closed"].get(code, 0) + 1
                if not counted:
                    counted = True
                    one_done(False)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 5)

        cpu0 = _proc_cpu_s()
        tasks = [asyncio.create_task(unit(i, u)) for i, u in units]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_open.wait(), timeout=120)
        ready.put(("ready", connected, len(units) - connected))
        cpu_go = None
        while not times[0]:  # noqa: ASYNC110 (set by another process: poll it)
            await asyncio.sleep(0.05)
        deadline = window[1] + 20
        while any(not t.done() for t in tasks) and time.time() < deadline:
            if cpu_go is None and time.time() >= window[0]:
                cpu_go = _proc_cpu_s()
            await asyncio.sleep(0.2)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stats["cpu_s_window"] = _proc_cpu_s() - (cpu_go if cpu_go is not None else cpu0)
        stats["ack_hist"] = acks
        results.put(stats)

    run(go())


class _Window:
    """``window[0]``, ``window[1]``: the measuring window from a shared ``[go, start, end]``."""

    def __init__(self, times: Any) -> None:
        self.times = times

    def __getitem__(self, i: int) -> float:
        return float(self.times[1 + i])


# -- consoles -----------------------------------------------------------------------------------
class PositionTiming:
    """Per-entry latency of ``positions`` frames, as a 1 ms histogram.

    Every console socket receives and decodes its frame (the websocket layer), but the JSON of
    one shared frame is parsed once per client process: the frame's head (type, id, ts: a
    microsecond timestamp unique per frame and instance) keys a small cache of its entries' fix
    times. Each console's latencies are still taken at its own receipt time.
    """

    def __init__(self) -> None:
        self.hist = [0] * HIST_MS
        self.entries = 0
        self.frames = 0
        self.bytes = 0
        self.max_ms = 0.0
        self.frame_units: list[int] = []
        self._frames: OrderedDict[tuple[str, int], list[float]] = OrderedDict()
        self._at: dict[str, float] = {}

    def fix_times(self, raw: str) -> list[float]:
        key = (raw[:96], len(raw))
        got = self._frames.get(key)
        if got is not None:
            return got
        msg = orjson.loads(raw)
        at_cache = self._at
        out = []
        for u in msg["data"]["units"]:
            at = u["at"]
            t = at_cache.get(at)
            if t is None:
                t = datetime.fromisoformat(at).timestamp()
                at_cache[at] = t
            out.append(t)
        if len(at_cache) > 50_000:
            at_cache.clear()
        self._frames[key] = out
        while len(self._frames) > 16:
            self._frames.popitem(last=False)
        self.frame_units.append(len(out))
        return out

    def on_frame(self, raw: str, now: float) -> None:
        hist, last = self.hist, HIST_MS - 1
        worst = 0.0
        times = self.fix_times(raw)
        for t in times:
            ms = (now - t) * 1000
            if ms > worst:
                worst = ms
            hist[min(int(ms), last) if ms > 0 else 0] += 1
        self.entries += len(times)
        self.frames += 1
        self.bytes += len(raw)
        self.max_ms = max(self.max_ms, worst)

    def figures(self) -> dict[str, Any]:
        return {"hist": self.hist, "entries": self.entries, "frames": self.frames,
                "bytes": self.bytes, "max_ms": self.max_ms,
                "frame_units": self.frame_units[-200:]}  # fmt: skip


def merge_hist(into: list[int], other: list[int]) -> None:
    for i, n in enumerate(other):
        if n:
            into[i] += n


def hist_pct(hist: list[int], q: float) -> float:
    """The ``q`` quantile of a 1 ms histogram, in ms (bucket upper edge); nan when empty."""
    total = sum(hist)
    if total == 0:
        return float("nan")
    want = q * total
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= want and n:
            return float(i + 1)
    return float(len(hist))
