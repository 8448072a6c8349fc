"""The console and the crew terminal in Chromium against the real service: a joint response from
two centres' calls to the whistle, the acks and one escalation, one-click assignment, green
waves turning granted, a unit driving on the map and a crew changing status."""

from __future__ import annotations

import asyncio
import re

import httpx
from playwright.async_api import Route, expect

from tests.browser.conftest import (
    Pages,
    ServiceProc,
    World,
    bearer,
    call,
    rest,
    s,
    token,
    wait_js,
)

EMS_DISPATCHER = ("dispatcher", "ems", "console-120")
TRAFFIC_DISPATCHER = ("dispatcher", "traffic", "console-122")


async def post_calls(url: str, world: World) -> None:
    lat, lon = world.scene
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        r = await http.post(
            "/api/calls",
            headers=bearer(*TRAFFIC_DISPATCHER),
            json=call(
                "122",
                "T-1",
                "traffic_accident_entrapment",
                lat,
                lon,
                address="测试路口",
                description="出租车侧翻，司机被困",
            ),
        )
        assert r.status_code == 202, r.text
        r = await http.post(
            "/api/calls",
            headers=bearer(*EMS_DISPATCHER),
            json=call("120", "E-1", "critical_patient", lat + 0.0003, lon, description="路人报警"),
        )
        assert r.status_code == 202, r.text


async def ack(url: str, whistle_id: str, agency: str, sub: str) -> None:
    await rest("POST", f"{url}/api/whistles/{whistle_id}/ack", bearer("coordinator", agency, sub))


async def test_pages_run_under_their_own_csp(
    service: ServiceProc, world: World, pages: Pages
) -> None:
    """With the Content-Security-Policy enforced, every page signs in, draws and goes live:
    no inline script, no eval, nothing from elsewhere (a violation is a console error)."""
    for path, who, name in [
        ("/", token(*EMS_DISPATCHER), "csp-console"),
        ("/terminal", token("terminal", "ems", "A-1"), "csp-terminal"),
        ("/coordinator", token("coordinator", "ems", "ems-coord-1"), "csp-coordinator"),
    ]:
        page = await pages.open(f"{service.url}{path}#token={who}", name=name, bypass_csp=False)
        await expect(page.locator("#link-state.link-live")).to_be_visible(timeout=s(20))
        await pages.shot(page, f"test_{name}")


async def test_sign_in_typed_and_by_link(service: ServiceProc, world: World, pages: Pages) -> None:
    page = await pages.open(f"{service.url}/", name="typed")
    await expect(page.locator("#signin")).to_be_visible()
    await page.fill("#token-input", "not-a-token")
    with pages.errors.expecting(re.compile(r"status of 401")):
        await page.click("#signin button[type=submit]")
        await expect(page.locator("#signin .error")).to_be_visible()
    await page.fill("#token-input", token(*EMS_DISPATCHER))
    await page.click("#signin button[type=submit]")
    await expect(page.locator("#link-state.link-live")).to_be_visible(timeout=s(20))
    await wait_js(page, "Number(document.querySelector('#map').dataset.roads || 0) > 100")
    await expect(page.locator("#figures")).to_contain_text("今日")
    # The record's report page is linked from the figures.
    await expect(page.locator("#f-report")).to_have_attribute("href", re.compile(r"^/kpis\?token="))
    await pages.shot(page, "test_sign_in-console-empty")

    # A link with the token in the fragment signs in and leaves the address bar clean.
    link = await pages.open(
        f"{service.url}/#token={token('observer', 'police', 'obs')}", name="link"
    )
    await expect(link.locator("#link-state.link-live")).to_be_visible(timeout=s(20))
    assert "token=" not in link.url
    # An observer may not sound the whistle, assign or close: none of it is offered.
    assert await link.evaluate("window.yishao.console.me.can.whistle") is False

    # A coordinator's token belongs on the coordinator's page.
    coord = await pages.open(
        f"{service.url}/#token={token('coordinator', 'ems', 'ems-coord-1')}", name="wrong"
    )
    await expect(coord.locator("#wrong-page a[href='/coordinator']")).to_be_visible()

    # A property team sees its own compounds' incidents only: not this one.
    estate = await pages.open(
        f"{service.url}/terminal#token={token('property', 'property', 'guard', ['compound-9'])}",
        width=390,
        height=844,
        name="property",
    )
    await expect(estate.locator("#link-state.link-live")).to_be_visible(timeout=s(20))
    await expect(estate.locator("#t-panel")).to_contain_text("本小区警情")
    await post_calls(service.url, world)
    await expect(page.locator("#queue .row")).to_have_count(1, timeout=s(15))
    await estate.wait_for_timeout(1000)
    await expect(estate.locator("#t-incidents")).to_have_count(0)
    await expect(estate.locator("#t-panel")).to_contain_text("暂无警情")

    # English by the switch, kept for the next page.
    await page.click("#lang")
    await expect(page.locator("#figures")).to_contain_text("Today")
    await expect(page.locator("#queue .row .status")).to_have_text("open")


async def test_joint_response_on_the_console(
    service: ServiceProc, world: World, pages: Pages
) -> None:
    url = service.url
    page = await pages.open(f"{url}/#token={token(*EMS_DISPATCHER)}", name="console")
    await expect(page.locator("#link-state.link-live")).to_be_visible(timeout=s(20))
    await wait_js(page, "Number(document.querySelector('#map').dataset.roads || 0) > 100")

    # Two centres report one emergency: one incident, both calls, a growing timeline.
    await post_calls(url, world)
    await expect(page.locator("#queue .row")).to_have_count(1, timeout=s(15))
    await page.locator("#queue").focus()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await expect(page.locator("#calls li")).to_have_count(2, timeout=s(15))
    await expect(page.locator("#timeline li.ev-incident-merged")).to_have_count(1)
    await expect(page.locator("#queue .row .centres .chip")).to_have_count(2)
    incident_id = await page.get_attribute("#queue .row", "data-id")
    assert incident_id

    # The 120 dispatcher sounds the whistle: three coordinators summoned, counting down.
    await expect(page.locator("#whistle-button")).to_be_enabled()
    await page.keyboard.press("w")  # the whistle by keyboard
    await expect(page.locator("#whistle-button")).to_be_disabled(timeout=s(10))
    board = page.locator("#ack-board")
    await expect(board.locator("li.summons.s-pending")).to_have_count(3, timeout=s(10))
    await expect(board.locator("li.summons .countdown .secs").first).to_contain_text(":")
    whistle_id = f"W-{incident_id}"
    await ack(url, whistle_id, "traffic", "traffic-coord-1")
    await ack(url, whistle_id, "fire", "fire-coord-1")
    await expect(board.locator("li.summons.s-acked")).to_have_count(2, timeout=s(10))
    # The EMS primary stays silent: after the timeout the backup is summoned.
    await expect(board.locator("li.summons.s-escalated")).to_have_count(1, timeout=s(15))
    await expect(board.locator(".escalation.e-backup_summoned")).to_have_count(1, timeout=s(10))
    await expect(board.locator("li.summons.s-pending")).to_have_count(1)
    await ack(url, whistle_id, "ems", "ems-coord-2")
    await expect(board.locator("li.summons.s-acked")).to_have_count(3, timeout=s(10))
    await expect(page.locator("#timeline li.ev-whistle-ack")).to_have_count(3, timeout=s(10))
    await pages.shot(page, "test_joint_response-ack-board")

    # One click assigns the suggested units; their routes and green waves appear.
    await expect(page.locator("#assign-suggested")).to_be_visible(timeout=s(20))
    await page.click("#assign-suggested")
    assigned = page.locator("#assigned li")
    await expect(assigned.first).to_be_visible(timeout=s(15))
    # The 122 coordinator acked, so the green wave is on: signals turn granted.
    await expect(page.locator("#assigned .sig[data-status=granted]").first).to_be_visible(
        timeout=s(20)
    )
    routes = await rest("GET", f"{url}/api/console/routes", bearer(*EMS_DISPATCHER))
    ems = next(r for r in routes if r["agency"] == "ems")
    unit_id = ems["unit_id"]
    leg = ems["legs"][0]
    granted = next(sig for sig in leg["signals"] if sig["status"] == "granted")
    assert (
        await page.evaluate(
            "([u, n]) => window.yishao.signalStatus(u, n)", [unit_id, granted["intersection_id"]]
        )
        == "granted"
    )
    # The map holds a route polyline and coloured signal dots for it.
    assert await page.evaluate(
        "(u) => window.yishao.console.routesLayer.routes.get(u).signals.size", unit_id
    ) == len({sig["intersection_id"] for lg in ems["legs"] for sig in lg["signals"]})
    await expect(page.locator("#f-whistles .value")).to_have_text("1", timeout=s(10))
    await expect(page.locator("#f-incidents .value")).to_have_text("1")

    # The ambulance's crew terminal sends the browser's position: the marker drives the route.
    coords = leg["coordinates"]
    start = await page.evaluate("(u) => window.yishao.unitPosition(u)", unit_id)
    first = coords[0]
    term = await pages.open(
        f"{url}/terminal#token={token('terminal', 'ems', unit_id)}",
        width=1024,
        height=768,
        name="terminal",
        permissions=["geolocation"],
        geolocation={"latitude": first[1], "longitude": first[0]},
    )
    await expect(term.locator("#t-job h2")).to_be_visible(timeout=s(20))
    await expect(term.locator("#t-signals li").first).to_be_visible()
    await expect(term.locator("#t-hospital")).to_contain_text("仁济医院")
    await expect(term.locator("#gps-button.go")).to_be_visible(timeout=s(10))
    step = max(1, len(coords) // 6)
    for lon, lat in coords[step : step * 4 : step]:
        await term.context.set_geolocation({"latitude": lat, "longitude": lon})
        await asyncio.sleep(1.2)
    last_lon, last_lat = coords[step * 3]
    moved = await wait_js(
        page,
        """([u, lat, lon]) => {
            const p = window.yishao.unitPosition(u);
            return p && Math.abs(p[0] - lat) < 2e-4 && Math.abs(p[1] - lon) < 2e-4 ? p : null;
        }""",
        [unit_id, last_lat, last_lon],
        timeout_s=15,
    )
    assert moved != start
    await page.wait_for_timeout(500)  # let a glide step land before the picture
    await pages.shot(page, "test_joint_response-console")
    await pages.shot(term, "test_joint_response-terminal-1024")

    # The crew is on scene: the console shows it, the service has it.
    await term.click("button[data-status=on_scene]")
    await expect(term.locator("#unit-status")).to_have_text("到场", timeout=s(10))
    await expect(page.locator(f"#assigned li[data-unit='{unit_id}'] .state")).to_have_text(
        "到场", timeout=s(10)
    )
    unit = await rest("GET", f"{url}/api/units", bearer(*EMS_DISPATCHER))
    assert next(u for u in unit if u["id"] == unit_id)["status"] == "on_scene"
    await term.set_viewport_size({"width": 390, "height": 844})
    await pages.shot(term, "test_joint_response-terminal-390")


async def test_api_docs_work_on_a_closed_network(service: ServiceProc, pages: Pages) -> None:
    """/docs and /redoc draw with their own policy and nothing fetched from outside the service."""
    ctx = await pages.browser.new_context()
    pages.contexts.append(ctx)
    outside: list[str] = []

    async def only_the_service(route: Route) -> None:
        if route.request.url.startswith(service.url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await ctx.route("**/*", only_the_service)
    page = await ctx.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    await page.goto(f"{service.url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Yishao", timeout=s(20))
    await expect(page.locator(".opblock-tag").first).to_be_visible(timeout=s(20))
    await pages.shot(page, "test_api_docs")
    await page.goto(f"{service.url}/redoc")
    await expect(page.locator("h1").first).to_contain_text("Yishao", timeout=s(20))
    # Swagger UI asks for nothing outside; ReDoc's only outside asks are Google's fonts and its
    # "powered by" logo (blocked by the policy, drawn without).
    assert [u for u in outside if "fonts.googleapis.com" not in u] == []
    assert [m for m in blocked if "script-src" in m or "connect-src" in m] == [], blocked
