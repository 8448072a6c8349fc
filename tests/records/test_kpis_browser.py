"""The ``/kpis`` report page in Debian's Chromium (Playwright), under the service's CSP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from dispatch.api import create_app
from dispatch.auth import mint
from dispatch.models import Agency, Role
from dispatch.settings import Settings
from tests.utils import TEST_SECRET, ServerThread

CHROMIUM = Path(os.environ.get("YISHAO_CHROMIUM", "/usr/bin/chromium"))
pytestmark = pytest.mark.slow


@pytest.fixture
def server(settings: Settings, database_url: str) -> Iterator[ServerThread]:
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with_db = settings.model_copy(update={"database_url": database_url})
    with ServerThread(create_app(with_db)) as srv:
        yield srv


async def test_kpis_page_in_the_browser(server: ServerThread, pool: asyncpg.Pool) -> None:
    from playwright.async_api import async_playwright

    from tests.records.test_kpis_api import _seed

    await _seed(pool)
    jwt = mint(TEST_SECRET, role=Role.DISPATCHER, agency=Agency.FIRE, sub="t", ttl_s=21_600)
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{server.url}/kpis?token={jwt}")
            assert "4 real incidents" in await page.inner_text("#incidents")
            assert await page.locator("#agencies tbody tr").count() == 1
            assert await page.locator("figure svg").count() == 2
            assert await page.locator("#programme tbody tr").count() > 10
            box = await page.locator("figure svg").first.bounding_box()
            assert box is not None and box["width"] > 300
        finally:
            await browser.close()
    assert not errors, errors
