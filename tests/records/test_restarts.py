"""Archive through a restart of PostgreSQL (our own cluster on a free port, stopped and
started mid-stream), the final record on close, and the audit commands."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from dispatch.cli import app as cli
from dispatch.infra.store import Store
from dispatch.records import db
from dispatch.records.archive import Archiver
from tests.conftest import FakeClock
from tests.utils import TEST_SECRET

BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL cluster run by Debian's pg_ctl as the postgres user."""

    def __init__(self, root: Path) -> None:
        self.bin = BIN[-1]
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/yishao"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "start",
                  "-l", str(self.data / "log"))  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not BIN or (shutil.which("runuser") is None and os.geteuid() == 0):
        pytest.skip("no Debian PostgreSQL binaries to run a cluster of our own")
    # Outside pytest's own temp tree: that is private to root, and postgres must enter.
    root = Path(tempfile.mkdtemp(prefix="yishao-pg-"))
    os.chmod(root, 0o777)
    c = Cluster(root)
    try:
        c.init()
        c.start()
        yield c
        c.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _log(store: Store, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        tx = store.tx()
        tx.raw_event("test.event", {"n": i}, actor="test", ts=T0, incident_id="i")
        await store.commit(tx)


async def test_archive_through_a_postgres_restart(
    store: Store, cluster: Cluster, clock: FakeClock
) -> None:
    await db.ensure_database(cluster.url)
    await asyncio.to_thread(db.upgrade, cluster.url)
    pool = await db.open_pool(cluster.url)
    archiver = Archiver(store, pool, consumer="a1", clock=clock, keep_s=0, batch=10,
                        block_ms=20, reclaim_idle_ms=200, trim_every_s=0.05)  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(archiver.run(stop))

    async def archived() -> int:
        try:
            return int(await pool.fetchval("SELECT count(*) FROM audit_events"))
        except (*db.PG_ERRORS,):
            return -1

    async def until(n: int) -> None:
        for _ in range(400):
            if await archived() == n and await archiver.lag() == 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"archived {await archived()} of {n}")

    try:
        await _log(store, 30)
        await until(30)
        await asyncio.to_thread(cluster.stop)
        await _log(store, 30, start=30)  # the service goes on; the archive waits
        await asyncio.sleep(0.5)
        assert await archiver.lag() == 30
        assert len(await store.event_entries("-", "+", count=1000)) == 30  # none trimmed
        await asyncio.to_thread(cluster.start)
        await until(60)
    finally:
        stop.set()
        await task
    rows = await pool.fetch("SELECT (data::jsonb->>'n')::int AS n FROM audit_events ORDER BY seq")
    assert sorted(r["n"] for r in rows) == list(range(60))
    await pool.close()
    await archiver.trim()
    assert await store.event_entries("-", "+", count=1000) == []
    env = {"YISHAO_DATABASE_URL": cluster.url}
    result = await invoke(["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "60 rows" in result.output


async def invoke(args: list[str], *, env: dict[str, str]) -> Result:
    """Run a ``yishao`` command as a script would (off the loop: it runs its own)."""
    # Production is the default environment: say this is a test, with the tests' secret.
    env = {"YISHAO_ENV": "test", "YISHAO_SECRET": TEST_SECRET, **env}
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)


def _incident(closed: bool) -> dict[str, object]:
    call = {"call_id": "c1", "centre": "119", "call_type": "fire", "lat": 31.2, "lon": 121.4,
            "received_at": T0.isoformat()}  # fmt: skip
    return {"id": "i9", "calls": [call], "call_types": ["fire"], "lat": 31.2, "lon": 121.4,
            "agencies": ["fire"], "status": "closed" if closed else "open"}  # fmt: skip


async def test_close_writes_the_final_record_and_verify_names_a_bad_row(
    store: Store, pool: asyncpg.Pool, database_url: str, clock: FakeClock
) -> None:
    opened = _incident(False)
    steps = [
        (0, "incident.created", {"incident": opened, "call": opened["calls"][0]}),  # type: ignore[index]
        (30, "assignment.created", {"unit_id": "F1", "agency": "fire", "unit_type": "fire_engine"}),
        (90, "unit.status", {"unit_id": "F1", "status": "en_route", "previous": "dispatched"}),
        (300, "unit.status", {"unit_id": "F1", "status": "on_scene", "previous": "en_route"}),
        (900, "incident.closed", {"incident": _incident(True), "reason": "out"}),
    ]  # fmt: skip
    for s, type, data in steps:
        tx = store.tx()
        tx.raw_event(type, data, actor="t", ts=T0 + timedelta(seconds=s), incident_id="i9")
        await store.commit(tx)
    archiver = Archiver(store, pool, consumer="a1", clock=clock)
    await archiver.consumer.ensure_group()
    await archiver.consumer.step(block_ms=20)
    rec = await pool.fetchrow("SELECT * FROM incident_records WHERE incident_id = 'i9'")
    assert rec is not None
    assert (rec["call_processing_s"], rec["turnout_s"], rec["travel_s"], rec["total_s"]) == (
        30,
        60,
        210,
        300,
    )
    assert rec["exercise"] is False
    per = await pool.fetch("SELECT agency, total_s FROM incident_agency_intervals")
    assert [(r["agency"], r["total_s"]) for r in per] == [("fire", 300)]

    env = {"YISHAO_DATABASE_URL": database_url}
    assert (await invoke(["db", "current"], env=env)).output.strip() == "0004"
    assert (await invoke(["audit", "verify"], env=env)).exit_code == 0
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        await conn.execute("UPDATE audit_events SET actor = 'someone else' WHERE seq = 3")
        await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        bad = await conn.fetchval("SELECT event_id FROM audit_events WHERE seq = 3")
    result = await invoke(["audit", "verify"], env=env)
    assert result.exit_code == 1
    assert f"seq 3 (event {bad})" in result.output

    assert (await invoke(["audit", "prune"], env=env)).exit_code == 2  # forever: refused
    env["YISHAO_AUDIT_RETENTION_DAYS"] = "365"
    result = await invoke(["audit", "prune"], env=env)
    assert result.exit_code == 0 and "pruned 0 rows" in result.output  # all younger than a year
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        await conn.execute("UPDATE audit_events SET at = at - interval '400 days' WHERE seq <= 2")
        await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
    result = await invoke(["audit", "prune"], env=env)
    assert "pruned 2 rows" in result.output
    assert await pool.fetchval("SELECT min(seq) FROM audit_events") == 3
