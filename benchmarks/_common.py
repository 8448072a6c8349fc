"""Helpers shared by the hand-run benchmarks (``intake.py``, ``dispatch.py``, ``fanout.py``,
``routing.py``): the service processes they start, the guard on their Redis URL and the CPU,
memory and latency figures they take.

A benchmark imports it as ``from _common import ...`` (a script's own folder, ``benchmarks/``,
is ``sys.path[0]``). Importing it puts the repository root first on ``sys.path``, so that
``dispatch`` and ``routing`` are the packages and not ``benchmarks/dispatch.py`` or
``benchmarks/routing.py``; ruff's import order (third-party sections before first-party) keeps
this import ahead of the ``dispatch`` and ``routing`` ones. Nothing here imports ``dispatch`` at
module level (``mint_token`` does, when called), so ``routing.py`` loads none of the service.

- Paths and guards: :data:`ROOT`, :func:`put_repo_root_first`, :func:`redis_url_problem`,
  :func:`check_redis_url`, :data:`BENCH_SECRET`, :func:`mint_token`.
- Service processes: :class:`Service`, :func:`start_service`, :func:`wait_healthy`,
  :func:`stop_services`, :func:`free_port`, :func:`http_json`, :func:`health`.
- Figures: :func:`percentile`, :func:`percentile_high`, :class:`Stat`, :func:`cpu_seconds`,
  :func:`proc_stat_cpu`, :func:`machine_busy_seconds`, :func:`redis_cpu_seconds`,
  :func:`cpu_snapshot`, :func:`cpu_delta`, :func:`other_cpu_seconds`, :func:`rss_bytes`.
- Redis and asyncio odds: :func:`as_str`, :func:`last_entry_id`, :func:`consumer_names`,
  :func:`group_names`, :func:`run_async`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from dispatch.models import Agency, Role

T = TypeVar("T")

ROOT: Final[Path] = Path(__file__).resolve().parent.parent
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
FORBIDDEN_DBS: Final = frozenset({0, 15})  # 0: demos and `make run`; 15: the test suite
BENCH_SECRET: Final = "bench-only-secret-0123456789abcdefghijkl"  # 40 chars, never a real one
MACHINE: Final = "machine (all processes)"  # the key of the whole machine in a CPU snapshot
_TICKS: Final = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# Paths and guards
# --------------------------------------------------------------------------------------------
def put_repo_root_first() -> None:
    """Make the repository root ``sys.path[0]`` (moving it there if it is further down).

    A script's own folder comes first otherwise, and ``benchmarks/dispatch.py`` and
    ``benchmarks/routing.py`` would shadow the ``dispatch`` and ``routing`` packages.
    """
    root = str(ROOT)
    while root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)


put_repo_root_first()


def redis_url_problem(url: str) -> str | None:
    """Why a benchmark must not use (and flush) the Redis at ``url``; None when it may.

    Only ``redis://`` on loopback, and never database 0 (demos, ``make run``) or 15 (the
    tests), whether the database is the path or a ``?db=`` query (which redis-py prefers).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis" or (parts.hostname or "") not in LOOPBACK:
        return f"refusing {url!r}: loopback redis:// only"
    query = urllib.parse.parse_qs(parts.query)
    raw = query["db"][0] if query.get("db") else (parts.path.replace("/", "") or "0")
    try:
        db = int(raw)
    except ValueError:
        return f"refusing {url!r}: database {raw!r} is not a number"
    if db in FORBIDDEN_DBS:
        return f"refusing Redis db {db}: 0 is the demo's, 15 the tests' (never flushed here)"
    return None


def check_redis_url(url: str) -> None:
    """Exit with :func:`redis_url_problem`'s reason when ``url`` is not the benchmark's to use."""
    problem = redis_url_problem(url)
    if problem is not None:
        raise SystemExit(problem)


def mint_token(role: Role, agency: Agency, sub: str, ttl_s: int = 3600) -> str:
    """A bearer token signed with :data:`BENCH_SECRET`, the secret every benchmark's service
    gets from :func:`start_service`."""
    from dispatch.auth import mint

    return mint(BENCH_SECRET, role=role, agency=agency, sub=sub, ttl_s=ttl_s)


# --------------------------------------------------------------------------------------------
# Service processes
# --------------------------------------------------------------------------------------------
@dataclass
class Service:
    """One ``python -m yishao serve`` process listening on ``127.0.0.1:port``."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU seconds so far (nan once it is gone)."""
        return cpu_seconds(self.proc.pid)

    def log_text(self) -> str:
        """Its log so far ("" without a log file)."""
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(
    redis_url: str, instance: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment without any ``YISHAO_*`` (a benchmark sets its own), plus
    test mode, :data:`BENCH_SECRET`, the Redis URL, the instance name and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YISHAO_")}
    env.update(
        {
            "YISHAO_ENV": "test",
            "YISHAO_SECRET": BENCH_SECRET,
            "YISHAO_REDIS_URL": redis_url,
            "YISHAO_INSTANCE": instance,
        }
    )
    env.update(extra or {})
    return env


def start_service(
    name: str,
    redis_url: str,
    *,
    log_level: str,
    port: int | None = None,
    log_path: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    stderr_to_terminal: bool = False,
) -> Service:
    """Start ``python -m yishao serve`` on loopback ``port`` (a free one by default) as
    instance ``name``.

    With ``log_path`` its stdout and stderr go to that file (truncated first); without it,
    stdout is discarded and stderr goes to this terminal if ``stderr_to_terminal``, else
    nowhere. It does not wait: see :func:`wait_healthy`.
    """
    port = free_port() if port is None else port
    cmd = [sys.executable, "-m", "yishao", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", log_level]  # fmt: skip
    env = service_env(redis_url, name, extra_env)
    if log_path is not None:
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
    else:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=None if stderr_to_terminal else subprocess.DEVNULL,
        )  # fmt: skip
    return Service(name=name, port=port, proc=proc, log_path=log_path)


def stop_services(services: Sequence[Service], timeout: float = 10.0) -> list[int | None]:
    """SIGTERM every live service, wait up to ``timeout`` s in all, SIGKILL what is left.

    Returns the exit codes, in order (``-SIGTERM`` is a normal stop).
    """
    for svc in services:
        if svc.proc.poll() is None:
            svc.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for svc in services:
        try:
            svc.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            svc.proc.kill()
            svc.proc.wait(timeout=5)
    return [svc.proc.returncode for svc in services]


def http_json(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 5.0
) -> tuple[int, Any]:
    """One HTTP request with an optional JSON body and bearer token (urllib, blocking).

    Returns ``(status, decoded JSON or None)``; on an HTTP error status, ``(status, body text)``.
    Raises OSError (no answer) or ValueError (not JSON).
    """
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def health(port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """The service's ``/api/health`` report, or None when it does not answer 200 with JSON."""
    try:
        status, body = http_json("GET", f"http://127.0.0.1:{port}/api/health", timeout=timeout)
    except (OSError, ValueError):
        return None
    return body if status == 200 and isinstance(body, dict) else None


async def wait_healthy(
    services: Sequence[Service],
    limit_s: float,
    ready: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """Poll until every service's health says ``ok`` and ``ready()`` (if given) is true.

    Raises:
        RuntimeError: a service exited (with the tail of its log).
        TimeoutError: not ready within ``limit_s`` seconds.
    """
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        for svc in services:
            if svc.proc.poll() is not None:
                tail = svc.log_text()[-2000:]
                raise RuntimeError(f"{svc.name} exited with {svc.proc.returncode}:\n{tail}")
        reports = [await asyncio.to_thread(health, svc.port) for svc in services]
        if all(h is not None and h.get("status") == "ok" for h in reports) and (
            ready is None or await ready()
        ):
            return
        await asyncio.sleep(0.1)
    tails = "".join(f"\n{svc.name}:\n{svc.log_text()[-2000:]}" for svc in services)
    raise TimeoutError(f"services not ready after {limit_s:.0f} s{tails}")


# --------------------------------------------------------------------------------------------
# Figures: percentiles, CPU, memory
# --------------------------------------------------------------------------------------------
def percentile(values: Iterable[float], p: float) -> float:
    """Nearest-rank ``p`` percentile (0-100): the smallest value with at least p % of the
    values at or below it; nan when there are none."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def percentile_high(values: Iterable[float], p: float) -> float:
    """The sorted values' element at index ``floor(p / 100 * n)`` (the last one at most); nan
    when there are none. One rank above :func:`percentile` when ``p / 100 * n`` is whole:
    ``fanout.py``'s figures have always been taken this way."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass
class Stat:
    """p50 / p90 / p99 / max of latencies in ms (nearest rank, rounded to 0.01 ms)."""

    n: int = 0
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan

    @classmethod
    def of(cls, ms: Sequence[float]) -> Stat:
        return cls(
            n=len(ms),
            p50_ms=round(percentile(ms, 50), 2),
            p90_ms=round(percentile(ms, 90), 2),
            p99_ms=round(percentile(ms, 99), 2),
            max_ms=round(max(ms), 2) if ms else math.nan,
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (its threads included), from
    ``/proc/<pid>/stat``; nan when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        # Fields after "(comm)": state is index 0, utime is field 14 (index 11), stime 15 (12).
        return (int(rest[11]) + int(rest[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return math.nan


def proc_stat_cpu() -> list[int]:
    """The whole machine's jiffies per CPU state (user, nice, system, idle, iowait, irq,
    softirq, steal, guest, guest_nice): the first line of ``/proc/stat``. Raises OSError."""
    with open("/proc/stat", encoding="ascii") as f:
        return [int(x) for x in f.readline().split()[1:]]


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (every process, every core), from /proc/stat:
    all but idle, iowait and steal (guest time is inside user already); nan if unreadable."""
    try:
        parts = proc_stat_cpu()
    except (OSError, ValueError):
        return math.nan
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
    steal = parts[7] if len(parts) > 7 else 0
    return (sum(parts[:8]) - idle - steal) / _TICKS


async def redis_cpu_seconds(r: Redis) -> float:
    """The Redis server's user + system CPU seconds so far (``INFO cpu``)."""
    info: Any = await r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def cpu_snapshot(r: Redis, pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process, of ``redis-server``, of this process
    (``bench (this process)``) and of the whole machine (:data:`MACHINE`)."""
    out = {name: cpu_seconds(pid) for name, pid in pids.items()}
    out["redis-server"] = await redis_cpu_seconds(r)
    out["bench (this process)"] = time.process_time()
    out[MACHINE] = machine_busy_seconds()
    return out


def cpu_delta(
    before: Mapping[str, float], after: Mapping[str, float], ndigits: int
) -> dict[str, float]:
    """CPU seconds per name between two :func:`cpu_snapshot` results, rounded."""
    return {k: round(after[k] - before[k], ndigits) for k in before}


def other_cpu_seconds(cpu: Mapping[str, float]) -> float:
    """CPU seconds of processes other than ours in a phase (:data:`MACHINE` minus every other
    entry of a :func:`cpu_delta`): the noise of a shared machine."""
    ours = sum(v for k, v in cpu.items() if k != MACHINE)
    return round(cpu.get(MACHINE, math.nan) - ours, 2)


def rss_bytes(pid: int | str = "self") -> float:
    """Resident set size in bytes (``VmRSS`` of ``/proc/<pid>/status``); nan without one.
    Raises OSError when the process is gone."""
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return math.nan


# --------------------------------------------------------------------------------------------
# Redis and asyncio odds
# --------------------------------------------------------------------------------------------
def as_str(value: bytes | str) -> str:
    """A Redis reply field as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


async def last_entry_id(r: Redis, stream: str) -> str:
    """The id of the stream's newest entry, ``0-0`` when it is empty or absent."""
    last: Any = await r.xrevrange(stream, count=1)
    return as_str(last[0][0]) if last else "0-0"


async def tail_stream(
    r: Redis, stream: str, start_id: str, stop: asyncio.Event
) -> AsyncIterator[tuple[float, list[Any]]]:
    """Batches of up to 1,000 entries after ``start_id`` (blocking ``XREAD``, 100 ms at a
    time) until ``stop`` is set, each with ``time.perf_counter()`` taken as it arrived."""
    cursor = start_id
    while not stop.is_set():
        resp: Any = await r.xread({stream: cursor}, count=1000, block=100)
        if not resp:
            continue
        now = time.perf_counter()
        entries = resp[0][1]
        cursor = as_str(entries[-1][0])
        yield now, entries


async def consumer_names(r: Redis, stream: str, group: str) -> set[str]:
    """The consumers of ``group`` on ``stream`` (empty while the group does not exist)."""
    try:
        consumers: Any = await r.xinfo_consumers(stream, group)
    except Exception:
        return set()
    return {as_str(c["name"]) for c in consumers}


async def group_names(r: Redis, stream: str) -> set[str]:
    """The consumer groups of ``stream`` (empty while the stream does not exist)."""
    try:
        groups: Any = await r.xinfo_groups(stream)
    except Exception:
        return set()
    return {as_str(g["name"]) for g in groups}


def run_async(coro: Coroutine[Any, Any, T], *, uvloop: bool = True) -> T:
    """Run ``coro`` to completion on a new event loop: uvloop's when asked and installed,
    asyncio's otherwise."""
    if uvloop:
        try:
            import uvloop as _uvloop
        except ImportError:
            pass
        else:
            return _uvloop.run(coro)
    return asyncio.run(coro)
