"""Browser fixtures: the real service (``yishao serve`` subprocesses, restartable), a real Redis,
Debian's Chromium driven by Playwright, and a small world (units a minute from a busy junction).

Every page opened through :func:`pages` records console errors and page errors; the test fails
if any appeared (a test that kills the service declares the outage, during which the browser's
own "connection refused" messages are expected). Screenshots go to ``var/screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright
from redis.asyncio import Redis

from dispatch.auth import mint
from dispatch.core.rosters import duty_day
from dispatch.models import Agency, Role
from routing import Router, build_graph_file, sample_graph_path
from routing.graph import haversine_m
from tests.utils import MS, TEST_SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "web" / "dist"
SHOTS = ROOT / "var" / "screenshots"
CHROMIUM = Path(os.environ.get("YISHAO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
ACK_TIMEOUT_S = 6
# What the browser itself logs when the service is down (expected only during a declared outage).
OUTAGE_NOISE = re.compile(
    r"ERR_CONNECTION_REFUSED|WebSocket connection to .* failed|Failed to load resource"
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session", autouse=True)
def _built_pages_and_browser() -> None:
    if not (DIST / "index.html").is_file():
        pytest.fail("the pages are not built: run `make web` (make test does)", pytrace=False)
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make setup` (Debian's chromium)", pytrace=False)


# -- the world ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    scene: tuple[float, float]
    units: list[dict[str, Any]]
    hospitals: list[dict[str, Any]]
    roster: dict[str, Any]


@pytest.fixture(scope="session")
def browser_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        source = sample_graph_path()
    except FileNotFoundError as exc:
        pytest.skip(f"no real OSM map: {exc}")
    return build_graph_file(source, tmp_path_factory.mktemp("browser-graph") / "map.npz")


@pytest.fixture(scope="session")
def browser_router(browser_graph: Path) -> Router:
    return Router.from_file(browser_graph)


def _busy_junction(router: Router) -> tuple[float, float]:
    g = router.graph
    idx = np.flatnonzero(g.node_signal)
    lat, lon = g.node_lat[idx], g.node_lon[idx]
    counts = [int((haversine_m(lat, lon, lat[k], lon[k]) < 500).sum()) for k in range(len(idx))]
    best = int(idx[int(np.argmax(counts))])
    return float(g.node_lat[best]), float(g.node_lon[best])


def _starts(router: Router, scene: tuple[float, float], n: int) -> list[tuple[float, float]]:
    """Nodes 40-100 s of driving from the scene whose route crosses 3+ signals, 300 m apart."""
    g = router.graph
    points = list(zip(g.node_lat.tolist(), g.node_lon.tolist(), strict=True))
    times = router.travel_times_to(scene, points)
    found: list[tuple[float, float]] = []
    order = np.argsort(np.abs(times.duration_s - 70))
    for i in order.tolist():
        if not 40 <= times.duration_s[i] <= 100:
            continue
        p = points[i]
        if len(router.route(p, scene).signals) < 3:
            continue
        if all(float(haversine_m(p[0], p[1], q[0], q[1])) > 300 for q in found):
            found.append(p)
        if len(found) == n:
            break
    return found


@pytest.fixture(scope="session")
def world(browser_router: Router) -> World:
    scene = _busy_junction(browser_router)
    starts = _starts(browser_router, scene, 4)
    if len(starts) < 4:
        pytest.skip("this map has no signalised junction with stations a minute away")
    plan = [
        ("TB01", Agency.TRAFFIC, ["traffic_police_car"]),
        ("EMS01", Agency.EMS, ["ambulance", "ambulance"]),
        ("FS01", Agency.FIRE, ["fire_rescue", "fire_engine"]),
        ("PS01", Agency.POLICE, ["patrol_car"]),
    ]
    units: list[dict[str, Any]] = []
    for (station, agency, types), (lat, lon) in zip(plan, starts, strict=True):
        for k, utype in enumerate(types, start=1):
            uid = f"{station}-{k}"
            units.append(
                {
                    "id": uid,
                    "agency": agency.value,
                    "type": utype,
                    "lat": lat,
                    "lon": lon,
                    "station": station,
                    "callsign": uid,
                }
            )
    hospital = {"id": "H01", "name": "仁济医院", "lat": starts[3][0], "lon": starts[3][1]}
    day = duty_day(datetime.now(UTC)).isoformat()
    rules = [
        {"agency": a, "names": [f"{a}-coord-{k}" for k in (1, 2, 3)], "start": day}
        for a in ("traffic", "ems", "fire")
    ]
    return World(scene=scene, units=units, hospitals=[hospital], roster={"rules": rules})


def token(role: str, agency: str, sub: str, scope: list[str] | None = None) -> str:
    return mint(
        TEST_SECRET, role=Role(role), agency=Agency(agency), sub=sub, ttl_s=3600, scope=scope or []
    )


def bearer(role: str, agency: str, sub: str, scope: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, agency, sub, scope)}"}


def admin() -> dict[str, str]:
    return bearer("admin", "police", "test-admin")


# -- the service --------------------------------------------------------------------------------
@dataclass
class ServiceProc:
    """One ``yishao serve`` process on a fixed port (so a restart comes back at the same URL)."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "yishao", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60_000 * MS
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"service did not come up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None


def service_env(redis_url: str, graph: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "YISHAO_ENV": "test",
        "YISHAO_SECRET": TEST_SECRET,
        "YISHAO_REDIS_URL": redis_url,
        "YISHAO_GRAPH": str(graph),
        "YISHAO_WHISTLE_ACK_TIMEOUT_S": str(ACK_TIMEOUT_S),
        "YISHAO_TIMER_POLL_MS": "100",
        "YISHAO_INTAKE_BLOCK_MS": "100",
        "YISHAO_AUTO_WHISTLE": "false",
        "YISHAO_WS_HEARTBEAT_S": "2",
        **extra,
    }


@contextmanager
def running(env: dict[str, str], log: Path) -> Iterator[ServiceProc]:
    svc = ServiceProc(env=env, log=log)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


def seed(url: str, world: World) -> None:
    """Units, hospitals and today's roster, as an admin over REST."""
    with httpx.Client(base_url=url, headers=admin(), timeout=30) as http:
        for unit in world.units:
            r = http.put(f"/api/units/{unit['id']}", json=unit)
            assert r.status_code == 200, r.text
        r = http.put("/api/hospitals", json=world.hospitals)
        assert r.status_code == 200, r.text
        r = http.put("/api/rosters", json=world.roster)
        assert r.status_code == 204, r.text


@pytest.fixture
def service(
    redis: Redis, redis_url: str, browser_graph: Path, world: World, tmp_path: Path
) -> Iterator[ServiceProc]:
    """A seeded service against the test database (flushed by the ``redis`` fixture)."""
    with running(service_env(redis_url, browser_graph), tmp_path / "service.log") as svc:
        seed(svc.url, world)
        yield svc


def call(
    centre: str, call_id: str, call_type: str, lat: float, lon: float, **extra: Any
) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "centre": centre,
        "call_type": call_type,
        "lat": lat,
        "lon": lon,
        "received_at": datetime.now(UTC).isoformat(),
        **extra,
    }


def s(seconds: float) -> float:
    """Playwright timeouts in ms, scaled like every test timeout (YISHAO_TEST_MS)."""
    return seconds * 1000 * MS * 1000


async def wait_js(page: Page, expression: str, arg: Any = None, timeout_s: float = 20) -> Any:
    handle = await page.wait_for_function(expression, arg=arg, timeout=s(timeout_s))
    return await handle.json_value()


async def rest(method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.request(method, url, headers=headers, json=body)
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


# -- the browser ----------------------------------------------------------------------------------
class PageErrors:
    """Console errors and page errors of every page of a test, with declared outages."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.expected: list[re.Pattern[str]] = []

    def console(self, where: str, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        if any(p.search(msg.text) for p in self.expected):
            return
        self.errors.append(f"{where}: console error: {msg.text}")

    def page_error(self, where: str, exc: Exception) -> None:
        self.errors.append(f"{where}: page error: {exc}")

    @contextmanager
    def expecting(self, pattern: re.Pattern[str] = OUTAGE_NOISE) -> Iterator[None]:
        """Within the block, the browser's own log lines matching ``pattern`` are expected
        (the service down, a refused token): the page must still not fail."""
        self.expected.append(pattern)
        try:
            yield
        finally:
            self.expected.remove(pattern)


@dataclass
class Pages:
    browser: Browser
    errors: PageErrors
    shots: Path
    contexts: list[BrowserContext] = field(default_factory=list)

    async def open(
        self,
        url: str,
        *,
        width: int = 1600,
        height: int = 900,
        name: str = "page",
        **context: Any,
    ) -> Page:
        # The tests' own waits evaluate script strings, which the pages' Content-Security-
        # Policy forbids (no 'unsafe-eval'); test_pages_run_under_their_own_csp opens the
        # pages with the policy enforced.
        context.setdefault("bypass_csp", True)
        ctx = await self.browser.new_context(
            viewport={"width": width, "height": height},
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            **context,
        )
        self.contexts.append(ctx)
        page = await ctx.new_page()
        page.on("console", lambda m: self.errors.console(name, m))
        page.on("pageerror", lambda e: self.errors.page_error(name, e))
        page.set_default_timeout(20_000 * MS * 1000)
        await page.goto(url)
        return page

    async def close(self) -> None:
        """Close every page (before stopping a service the test started itself)."""
        contexts, self.contexts = self.contexts, []
        for ctx in contexts:
            await ctx.close()

    async def shot(self, page: Page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await page.screenshot(path=str(path))
        return path


@pytest.fixture
async def pages(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pages]:
    errors = PageErrors()
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        p = Pages(browser=browser, errors=errors, shots=SHOTS)
        try:
            yield p
        finally:
            for ctx in p.contexts:
                await ctx.close()
            await browser.close()
    # Also keep the screenshots with this test's own output.
    for png in SHOTS.glob(f"{request.node.name.split('[')[0]}*.png"):
        shutil.copy(png, tmp_path / png.name)
    assert not errors.errors, "\n".join(errors.errors)
