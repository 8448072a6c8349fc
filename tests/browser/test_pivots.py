"""The console's pivot-post layer in Chromium against the real service: a plan put in force, a
patrol car posted, the posts and their coverage drawn on the map."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from playwright.async_api import expect

from tests.browser.conftest import Pages, ServiceProc, World, admin, bearer, rest, s, token, wait_js
from tests.pivot_sample import plan_json

PLAN_TZ = timezone(timedelta(hours=8))


def plan_for_now(world: World) -> dict[str, object]:
    """A plan whose one band holds the service's now (local +08:00, six-hour bands)."""
    local = datetime.now(PLAN_TZ)
    start = (local.hour // 6) * 6
    kind = "weekend" if local.weekday() >= 5 else "weekday"
    lat, lon = world.scene
    patrol = next(u for u in world.units if u["agency"] == "police")
    return plan_json(
        [(1, lat, lon), (2, patrol["lat"], patrol["lon"])],
        month=f"{local.year:04d}-{local.month:02d}",
        day_kind=kind,
        start=start,
        end=start + 6,
    )


async def test_the_console_draws_the_posts_standing_now(
    service: ServiceProc, world: World, pages: Pages
) -> None:
    plan = plan_for_now(world)
    await rest("PUT", f"{service.url}/api/pivots/plan", admin(), plan)
    post_id = plan["bands"][0]["posts"][0]["id"]  # type: ignore[index]
    patrol = next(u for u in world.units if u["agency"] == "police")
    police = bearer("dispatcher", "police", "console-110")
    await rest("POST", f"{service.url}/api/pivots/posts/{post_id}/units/{patrol['id']}", police)

    page = await pages.open(
        f"{service.url}/#token={token('dispatcher', 'police', 'console-110')}", name="pivots"
    )
    await expect(page.locator("#link-state.link-live")).to_be_visible(timeout=s(20))
    assert await page.evaluate("window.yishao.console.me.can.actions['pivots.read']") is True
    await wait_js(page, "document.querySelector('#map').dataset.pivots === '2'")
    await wait_js(page, "Number(document.querySelector('#map').dataset.roads || 0) > 100")
    # The post's tooltip names it, its hours, the posted unit and the plan's label.
    lat, lon = world.scene
    tip = await page.evaluate(
        """([lat, lon]) => {
            const map = window.yishao.console.base.map;
            let text = null;
            map.eachLayer((l) => {
                if (l.getTooltip && l.getTooltip() && l.getLatLng) {
                    const p = l.getLatLng();
                    if (Math.abs(p.lat - lat) < 1e-9 && Math.abs(p.lng - lon) < 1e-9) {
                        text = l.getTooltip().getContent();
                    }
                }
            });
            return text;
        }""",
        [lat, lon],
    )
    assert tip is not None and "支点" in tip and patrol["id"] in tip and "SYNTHETIC" in tip
    await pages.shot(page, "test_the_console_draws_the_posts_standing_now")

    # Released: the layer follows the live event.
    await rest("DELETE", f"{service.url}/api/pivots/posts/{post_id}/units/{patrol['id']}", police)
    await wait_js(
        page,
        """() => { let n = 0; window.yishao.console.base.map.eachLayer((l) => {
            const c = l.getTooltip && l.getTooltip() && l.getTooltip().getContent();
            if (typeof c === 'string' && c.includes('支点') && c.includes('驻点警力')) n += 1; });
            return n === 0; }""",
    )
