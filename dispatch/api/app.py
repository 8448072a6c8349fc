"""``create_app(settings)``: the FastAPI application, its lifespan and error mapping."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from dispatch import __version__
from dispatch.api.edge import (
    BodyLimit,
    SecurityHeaders,
    install_error_handlers,
    install_log_scrubber,
)
from dispatch.api.routes import router as api_router
from dispatch.api.routes_access import router as access_router
from dispatch.api.routes_console import router as console_router
from dispatch.api.routes_dispatch import router as dispatch_router
from dispatch.api.routes_interop import router as interop_router
from dispatch.api.routes_kpis import page_router as kpis_page_router
from dispatch.api.routes_kpis import router as kpis_router
from dispatch.api.routes_pivots import router as pivots_router
from dispatch.api.routes_property import router as property_router
from dispatch.api.routes_referrals import router as referrals_router
from dispatch.api.routes_reports import router as reports_router
from dispatch.api.routes_snapshot import router as snapshot_router
from dispatch.api.ws import install_handlers
from dispatch.api.ws import router as ws_router
from dispatch.api.ws_live import install_live_handlers
from dispatch.constants import EVENT_STREAM_MAXLEN as EVENT_MAXLEN
from dispatch.constants import Keys
from dispatch.infra.connect import open_redis
from dispatch.infra.store import Store
from dispatch.push.feed import PositionFeed
from dispatch.records.db import open_pool
from dispatch.services import build
from dispatch.settings import HubConfig, Settings
from routing import Router

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def instance_name(settings: Settings) -> str:
    """A consumer name unique to this process (host, pid and a random suffix)."""
    if settings.instance:
        return settings.instance
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = _utcnow,
    run_workers: bool = True,
    hub_config: HubConfig | None = None,
) -> FastAPI:
    """Build the service.

    Args:
        settings: the service's settings (secret checked already by ``Settings``).
        clock: the time source every decision uses; tests and drills pass their own.
        run_workers: start the call consumer, the event reactor and the timer poller in the
            lifespan (tests may drive them by hand instead).
        hub_config: websocket push tuning (default: the ``YISHAO_WS_*`` settings).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = open_redis(settings)
        pool = await open_pool(settings.database_url) if settings.database_url else None
        # With an archive, the event log is trimmed only below what PostgreSQL committed.
        store = Store(
            redis,
            Keys(settings.namespace),
            dead=settings.dead_limits(),
            event_maxlen=0 if pool else EVENT_MAXLEN,
        )
        name = instance_name(settings)
        router = await _load_router(settings)
        svc = build(
            settings,
            store,
            router=router,
            clock=clock,
            instance=name,
            hub_config=hub_config,
            pool=pool,
        )
        stop = asyncio.Event()
        # The push hub runs on every instance (each serves its own websocket clients).
        install_handlers(svc.hub, svc)
        install_live_handlers(
            svc.hub, tracking=svc.tracking, greenwave=svc.greenwave, fleet=svc.fleet, clock=clock
        )
        feed = PositionFeed(store, svc.hub, svc.fleet, interval_s=settings.position_frame_s)
        loops = [svc.hub.run(stop), feed.run(stop)]
        if run_workers:
            poll_s = settings.timer_poll_ms / 1000
            loops += [svc.reactor.run(stop), svc.timers.run(stop, poll_s=poll_s)]
            loops += [svc.intake.run(stop), svc.watch.run(stop)]
            if svc.record is not None:
                loops += [svc.record.run(stop)]
        tasks = [asyncio.create_task(loop) for loop in loops]
        app.state.services = svc
        # Everything loaded so far (modules, the road graph and its hierarchy, the services)
        # lives as long as the app: keep it out of the collector's full passes, which would
        # otherwise walk it all and stall a request for 50-100 ms now and then (measured on a
        # million-node graph's routes, benchmarks/routing.py). Unfrozen at shutdown.
        gc.freeze()
        log.info("yishao %s instance %s serving (redis %s)", __version__, name, _safe_url(settings))
        try:
            yield
        finally:
            gc.unfreeze()
            stop.set()
            for task in tasks:
                try:
                    await asyncio.wait_for(task, timeout=5)
                except TimeoutError:
                    task.cancel()
            await redis.aclose()
            if pool is not None:
                await pool.close()

    # /docs and /redoc with their scripts served from a package: they work on a closed network.
    app = FastAPIOffline(
        title="Yishao (一哨群应)",
        version=__version__,
        description="Joint 122/120/119 emergency dispatch with green-wave signal priority.",
        lifespan=lifespan,
    )
    install_log_scrubber()
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, default_bytes=settings.max_body_bytes)
    app.include_router(api_router)
    app.include_router(access_router)
    app.include_router(dispatch_router)
    app.include_router(snapshot_router)
    app.include_router(reports_router)
    app.include_router(interop_router)
    app.include_router(kpis_router)
    app.include_router(kpis_page_router)
    app.include_router(ws_router)
    app.include_router(console_router)
    app.include_router(property_router)
    app.include_router(referrals_router)
    app.include_router(pivots_router)
    install_error_handlers(app)
    return app


async def _load_router(settings: Settings) -> Router | None:
    """Load the road graph named by ``YISHAO_GRAPH`` off the event loop (None without one)."""
    if settings.graph is None:
        log.warning("no road graph (YISHAO_GRAPH): recommendations and routes are unavailable")
        return None
    started = time.perf_counter()
    router = await asyncio.to_thread(Router.from_file, settings.graph)
    log.info(
        "road graph %s: %d nodes, %d signals, loaded in %.2f s",
        settings.graph.name,
        router.graph.node_count,
        router.graph.signal_count,
        time.perf_counter() - started,
    )
    return router


def _safe_url(settings: Settings) -> str:
    url = settings.redis_url
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
