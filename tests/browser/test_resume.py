"""The console through a service restart: it says plainly it is offline, reconnects by itself
with ``last_id``, and ends up having applied every event of the log once, in order, including
those committed by another instance while its own was down."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect
from redis.asyncio import Redis

from dispatch.constants import Keys
from tests.browser.conftest import (
    Pages,
    ServiceProc,
    World,
    bearer,
    call,
    rest,
    s,
    seed,
    service_env,
    token,
    wait_js,
)


async def test_console_resumes_after_a_restart_with_nothing_missed(
    redis: Redis,
    redis_url: str,
    browser_graph: Path,
    world: World,
    tmp_path: Path,
    pages: Pages,
) -> None:
    env = service_env(redis_url, browser_graph)
    # A: the console's instance, killed and restarted. B: another instance that keeps the
    # service going meanwhile (calls land and are committed while A is down).
    a = ServiceProc(env=env, log=tmp_path / "a.log")
    b = ServiceProc(env=env, log=tmp_path / "b.log")
    a.start()
    b.start()
    try:
        seed(a.url, world)
        lat, lon = world.scene
        ems = bearer("dispatcher", "ems", "console-120")
        page = await pages.open(f"{a.url}/#token={token('dispatcher', 'ems', 'c')}", name="console")
        await expect(page.locator("#link-state.link-live")).to_be_visible(timeout=s(20))
        await wait_js(page, "Number(document.querySelector('#map').dataset.roads || 0) > 100")
        await rest("POST", f"{a.url}/api/calls", ems, call("120", "R-1", "drowning", lat, lon))
        await expect(page.locator("#queue .row")).to_have_count(1, timeout=s(15))

        with pages.errors.expecting():
            a.stop(kill=True)
            await expect(page.locator("#link-banner.banner-offline")).to_be_visible(timeout=s(30))
            await expect(page.locator("#link-state.link-offline")).to_be_visible()
            await pages.shot(page, "test_console_resumes-offline")
            # While A is down: a merged call, two new incidents and a whistle, through B.
            await rest("POST", f"{b.url}/api/calls", ems, call("120", "R-2", "drowning", lat, lon))
            for n, dlat in enumerate((0.01, -0.01), start=3):
                body = call("120", f"R-{n}", "critical_patient", lat + dlat, lon)
                await rest("POST", f"{b.url}/api/calls", ems, body)

            async def three_open() -> bool:
                found = await rest("GET", f"{b.url}/api/incidents?status=open", ems)
                return len(found) == 3

            for _ in range(100):
                if await three_open():
                    break
                await page.wait_for_timeout(100)
            first = (await rest("GET", f"{b.url}/api/incidents?limit=10", ems))[-1]["id"]
            await rest("POST", f"{b.url}/api/incidents/{first}/whistle", ems, {})
            a.start()
            await expect(page.locator("#link-state.link-live")).to_be_visible(timeout=s(30))
        await expect(page.locator("#link-banner")).to_be_hidden()
        await expect(page.locator("#queue .row")).to_have_count(3, timeout=s(15))

        # Every event of the log after the console's snapshot, each once, in log order.
        keys = Keys()
        last = (await redis.xrevrange(keys.events, count=1))[0][0].decode()
        await wait_js(
            page,
            """(id) => {
                const [am, as] = window.yishao.lastId().split("-").map(Number);
                const [bm, bs] = id.split("-").map(Number);
                return am > bm || (am === bm && as >= bs);
            }""",
            last,
            timeout_s=15,
        )
        seen = await page.evaluate("window.yishao.console.seenIds")
        snapshots = await page.evaluate("window.yishao.console.snapshots")
        assert len(snapshots) == 1, "a resync: the restart should have resumed, not reloaded"
        # (Up to the last event the page applied: the whistle's timers keep adding events.)
        logged = [
            entry_id.decode()
            for entry_id, _ in await redis.xrange(keys.events, min=f"({snapshots[0]}", max=seen[-1])
        ]
        assert seen == logged
        assert len(set(seen)) == len(seen)
        # The whistle sounded while A was down shows on the console now.
        await page.click(f"#queue .row[data-id='{first}']")
        # (three primaries, and their backups once the ack timeout has passed)
        await expect(page.locator("#ack-board li.summons").nth(2)).to_be_visible(timeout=s(10))
        await expect(page.locator("#f-incidents .value")).to_have_text("3", timeout=s(10))
        await page.wait_for_timeout(1500)  # the map's zoom to the incident, and its roads
        await pages.shot(page, "test_console_resumes-after")
    finally:
        await pages.close()
        a.stop()
        b.stop()
