"""The coordinator's page in Chromium against the real service: a summons rings (the audio
element plays, after the first tap as autoplay rules require) and acks in one tap; an unacked
summons escalates and the backup's page rings with the reason; a page cut off during a summons
shows it, ringing, when it reconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import Page, expect
from redis.asyncio import Redis

from tests.browser.conftest import (
    ACK_TIMEOUT_S,
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


def ems() -> dict[str, str]:
    return bearer("dispatcher", "ems", "console-120")


PHONE = {"width": 390, "height": 844}


async def coordinator_page(pages: Pages, url: str, agency: str, sub: str) -> Page:
    page = await pages.open(
        f"{url}/coordinator#token={token('coordinator', agency, sub)}", name=sub, **PHONE
    )
    await expect(page.locator("#link-state.link-live")).to_be_visible(timeout=s(20))
    # The first tap of the shift: the page may make sound from now on.
    await page.click("#start-shift")
    await expect(page.locator("#start-shift")).to_have_count(0)
    await expect(page.locator("#on-watch")).to_be_visible()
    return page


async def sound_whistle(url: str, world: World, call_id: str) -> str:
    lat, lon = world.scene
    await rest("POST", f"{url}/api/calls", ems(), call("120", call_id, "drowning", lat, lon))
    for _ in range(100):
        found = await rest("GET", f"{url}/api/incidents", ems())
        if found:
            break
        await _pause(0.1)
    incident_id = found[0]["id"]
    whistle = await rest("POST", f"{url}/api/incidents/{incident_id}/whistle", ems(), {})
    return str(whistle["id"])


async def _pause(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def ringing(page: Page) -> bool:
    """The page says it rings and its audio element is actually playing (time moves on)."""
    before = await page.evaluate("document.getElementById('ring').currentTime")
    await page.wait_for_timeout(400)
    state = await page.evaluate(
        """() => {
            const ring = document.getElementById('ring');
            return {paused: ring.paused, t: ring.currentTime, on: window.yishao.ringing()};
        }"""
    )
    return bool(state["on"] and not state["paused"] and state["t"] != before)


async def test_summons_rings_and_one_tap_acks(
    service: ServiceProc, world: World, pages: Pages
) -> None:
    page = await coordinator_page(pages, service.url, "traffic", "traffic-coord-1")
    await expect(page.locator("#duty .me")).to_have_count(1)  # primary today
    whistle_id = await sound_whistle(service.url, world, "C-1")
    await expect(page.locator("#ack-button")).to_be_visible(timeout=s(10))
    assert await ringing(page)
    await expect(page.locator("#summons-type")).to_have_text("溺水")
    await expect(page.locator("#others li")).to_have_count(3)
    await expect(page.locator("#my-countdown")).to_contain_text(":")
    await pages.shot(page, "test_summons_rings-ringing")

    await page.click("#ack-button")
    await expect(page.locator("#ack-button")).to_have_count(0, timeout=s(10))
    whistle = await rest("GET", f"{service.url}/api/whistles/{whistle_id}", ems())
    mine = next(x for x in whistle["summons"] if x["coordinator"] == "traffic-coord-1")
    assert mine["status"] == "acked" and mine["acked_at"]
    assert not await page.evaluate("window.yishao.ringing()")
    assert await page.evaluate("document.getElementById('ring').paused")
    # After the ack: the incident's timeline, live, and (for 122) the green-wave requests.
    await expect(page.locator("#timeline li").first).to_be_visible(timeout=s(10))
    await expect(page.locator("#greenwave-list")).to_be_visible()
    await rest(
        "POST",
        f"{service.url}/api/whistles/{whistle_id}/ack",
        bearer("coordinator", "fire", "fire-coord-1"),
    )
    await expect(page.locator("#others li.s-acked")).to_have_count(2, timeout=s(10))
    await pages.shot(page, "test_summons_rings-acked")


async def test_unacked_summons_escalates_and_the_backup_rings(
    service: ServiceProc, world: World, pages: Pages
) -> None:
    primary = await coordinator_page(pages, service.url, "ems", "ems-coord-1")
    backup = await coordinator_page(pages, service.url, "ems", "ems-coord-2")
    whistle_id = await sound_whistle(service.url, world, "C-2")
    await expect(primary.locator("#ack-button")).to_be_visible(timeout=s(10))
    assert await ringing(primary)
    assert not await backup.evaluate("window.yishao.ringing()")
    # The primary does not ack: after the timeout the backup is summoned, and told why.
    await expect(backup.locator("#ack-button")).to_be_visible(timeout=s(ACK_TIMEOUT_S + 10))
    await expect(backup.locator("#escalated-note")).to_contain_text("ems-coord-1")
    assert await ringing(backup)
    await expect(primary.locator(f"[data-whistle='{whistle_id}']")).to_have_attribute(
        "data-status", "escalated"
    )
    await pages.shot(backup, "test_unacked_summons-backup-ringing")
    await backup.click("#ack-button")
    await expect(backup.locator("#ack-button")).to_have_count(0, timeout=s(10))
    # The agency is covered: the primary's pager stops too.
    await wait_js(primary, "!window.yishao.ringing()")
    await expect(primary.locator("#ack-button")).to_have_count(0)


async def test_summons_while_cut_off_shows_on_reconnect(
    redis: Redis,
    redis_url: str,
    browser_graph: Path,
    world: World,
    tmp_path: Path,
    pages: Pages,
) -> None:
    env = service_env(redis_url, browser_graph)
    a = ServiceProc(env=env, log=tmp_path / "a.log")
    b = ServiceProc(env=env, log=tmp_path / "b.log")
    a.start()
    b.start()
    try:
        seed(a.url, world)
        page = await coordinator_page(pages, a.url, "fire", "fire-coord-1")
        with pages.errors.expecting():
            a.stop(kill=True)
            await expect(page.locator("#link-banner.banner-offline")).to_be_visible(timeout=s(30))
            await expect(page.locator("#link-banner")).to_contain_text("召集")
            await pages.shot(page, "test_summons_while_cut_off-offline")
            whistle_id = await sound_whistle(b.url, world, "C-3")
            a.start()
            await expect(page.locator("#link-state.link-live")).to_be_visible(timeout=s(30))
        card = page.locator(f"[data-whistle='{whistle_id}']")
        await expect(card).to_be_visible(timeout=s(10))
        await expect(card.locator("#missed-note")).to_be_visible()
        assert await ringing(page)
        await pages.shot(page, "test_summons_while_cut_off-reconnected")
        await page.click("#ack-button")
        await expect(page.locator("#ack-button")).to_have_count(0, timeout=s(10))
    finally:
        await pages.close()
        a.stop()
        b.stop()
