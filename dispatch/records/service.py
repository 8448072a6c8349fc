"""What the running service holds of the record: the pool, the archiver, the figures."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from dispatch.infra.store import Store
from dispatch.records import reports
from dispatch.records.archive import Archiver
from dispatch.records.kpis import KpiQuery, figures
from dispatch.settings import Settings


@dataclass
class Records:
    """The record as one instance serves it (built by :func:`dispatch.services.build`)."""

    pool: asyncpg.Pool
    archiver: Archiver

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        pool: asyncpg.Pool,
        *,
        instance: str,
        clock: Callable[[], datetime],
    ) -> Records:
        archiver = Archiver(
            store,
            pool,
            consumer=instance,
            clock=clock,
            keep_s=settings.archive_keep_s,
            batch=settings.archive_batch,
            reclaim_idle_ms=settings.reclaim_idle_ms,
            trim_every_s=settings.archive_trim_s,
        )
        return cls(pool=pool, archiver=archiver)

    async def run(self, stop: asyncio.Event) -> None:
        await self.archiver.run(stop)

    async def figures(self, query: KpiQuery) -> dict[str, Any]:
        if query.now is None:  # overdue referrals count against the service's clock
            query = dataclasses.replace(query, now=self.archiver.clock())
        return await figures(self.pool, query)

    async def put_report(
        self,
        drill_id: str,
        *,
        info: dict[str, Any],
        report: dict[str, Any],
        html: str,
        stored_at: datetime,
    ) -> None:
        await reports.put_report(
            self.pool, drill_id, info=info, report=report, html=html, stored_at=stored_at
        )
