"""Crashes and clusters: a service process killed with SIGKILL, and a real Redis Cluster."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot

from dispatch.constants import CONSUMER_GROUP, Keys
from dispatch.core.merge import MergePolicy
from dispatch.core.plans import PlanTable
from dispatch.flow.intake import Intake
from dispatch.flow.merge import JointIntake
from dispatch.infra.store import Store
from dispatch.models import CallEvent, CallType, Centre
from tests.conftest import FakeClock
from tests.utils import MS, TEST_SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def spread_call(n: int, clock: FakeClock) -> CallEvent:
    return CallEvent(
        call_id=f"K{n:05d}",
        centre=Centre.TRAFFIC,
        call_type=CallType.TRAFFIC_ACCIDENT,
        lat=30.0 + (n % 60) * 0.01,
        lon=119.5 + (n // 60) * 0.01,
        received_at=clock.now,
    )


def start_service(redis_url: str, name: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "YISHAO_ENV": "test",
        "YISHAO_SECRET": TEST_SECRET,
        "YISHAO_REDIS_URL": redis_url,
        "YISHAO_INSTANCE": name,
        "YISHAO_RECLAIM_IDLE_MS": "500",
        "YISHAO_INTAKE_BLOCK_MS": "50",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "yishao",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20_000 * MS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("service did not start")


async def test_sigkill_mid_stream_loses_no_call_and_duplicates_none(
    redis: Redis, redis_url: str, keys: Keys
) -> None:
    clock = FakeClock()
    total = 1500
    first, _ = start_service(redis_url, "doomed")
    second = None
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(total):
                pipe.xadd(keys.calls, spread_call(n, clock).to_fields())  # type: ignore[arg-type]
            await pipe.execute()
        deadline = time.monotonic() + 30_000 * MS
        while await redis.xlen(keys.events) < 100:
            assert time.monotonic() < deadline, "first instance processed nothing"
            await asyncio.sleep(0.005)
        first.send_signal(signal.SIGKILL)  # no shutdown, no acks for what it held
        first.wait()
        done_by_first = await redis.xlen(keys.events)
        assert done_by_first < total, "killed too late to prove anything"
        second, _ = start_service(redis_url, "survivor")
        deadline = time.monotonic() + 60_000 * MS
        while True:
            pending = (await redis.xpending(keys.calls, CONSUMER_GROUP))["pending"]
            groups = await redis.xinfo_groups(keys.calls)
            lag = int(groups[0]["lag"] or 0)
            if await redis.hlen(keys.call_index) == total and pending == 0 and lag == 0:
                break
            assert time.monotonic() < deadline, f"stuck: pending={pending} lag={lag}"
            await asyncio.sleep(0.05)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
    created = [
        raw for _, raw in await redis.xrange(keys.events) if raw[b"type"] == b"incident.created"
    ]
    assert len(created) == total  # every call once: none lost, none twice
    assert len({raw[b"incident_id"] for raw in created}) == total


# -- Redis Cluster ---------------------------------------------------------------


def cluster_ports(n: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free and valid too."""
    import random
    import socket

    rng = random.Random()
    out: list[int] = []
    while len(out) < n:
        port = rng.randrange(20_000, 45_000)
        try:
            for p in (port, port + 10_000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        if port not in out:
            out.append(port)
    return out


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[str]:
    """Three master nodes on free ports, made into a cluster with redis-cli."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server / redis-cli not installed")
    ports = cluster_ports(3)
    procs = []
    for port in ports:
        node_dir = tmp_path / str(port)
        node_dir.mkdir()
        procs.append(
            subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(node_dir),
                ],
                stdout=subprocess.DEVNULL,
            )
        )
    try:
        for port in ports:
            for _ in range(100):
                if (
                    subprocess.run(
                        ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
                    ).stdout.strip()
                    == "PONG"
                ):
                    break
                time.sleep(0.05)
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for _ in range(200):
            info = subprocess.run(
                ["redis-cli", "-p", str(ports[0]), "cluster", "info"],
                capture_output=True,
                text=True,
            ).stdout
            if "cluster_state:ok" in info:
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def test_state_keys_share_one_slot_and_inputs_do_not_need_to() -> None:
    keys = Keys()
    state = [
        keys.events,
        keys.incident("YS-1"),
        keys.incident_events("YS-1"),
        keys.call_index,
        keys.open_incidents,
        keys.open_geo,
        keys.open_geo_bucket(1_000_000),
        keys.cell_versions,
        keys.incident_index,
        keys.timers,
        keys.unit("U1"),
        keys.whistle("W1"),
        keys.intake_errors,
    ]
    assert len({key_slot(k.encode()) for k in state}) == 1
    # Another district's deployment lands elsewhere: that is how a cluster spreads load.
    assert key_slot(Keys("hangzhou-xihu").events.encode()) != key_slot(keys.events.encode())


async def test_intake_and_commit_work_on_a_real_cluster(redis_cluster: str) -> None:
    client = RedisCluster.from_url(redis_cluster)
    try:
        keys = Keys()
        store = Store(client, keys)
        clock = FakeClock()
        handler = JointIntake(store, PlanTable.load(), policy=MergePolicy(), clock=clock)
        intake = Intake(
            store, handler, consumer="c1", clock=clock, block_ms=10, reclaim_idle_ms=100
        )
        await intake.ensure_group()
        for n in range(30):
            await store.add_call(spread_call(n, clock))
        # A second report of call 0's emergency to 120, 50 m away: merges across centres.
        first = spread_call(0, clock)
        await store.add_call(
            first.model_copy(
                update={"call_id": "E1", "centre": Centre.EMS, "lat": first.lat + 0.0004}
            )
        )
        await store.add_call(first)  # the same call again: a duplicate
        while await intake.step(block_ms=10):
            pass
        assert await client.hlen(keys.call_index) == 31
        events = await store.events_after("0")
        assert [e.type for e in events].count("incident.created") == 30
        assert [e.type for e in events].count("incident.merged") == 1
        assert intake.stats.duplicates == 1
        incident_id = await store.incident_for_call("120:E1")
        assert incident_id == await store.incident_for_call(first.key)
        assert len(await store.events_for_incident(incident_id or "")) == 2
    finally:
        await client.aclose()
