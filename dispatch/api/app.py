"""``create_app(settings)``: the FastAPI application, its lifespan and error mapping."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster

from dispatch import __version__
from dispatch.api.routes import router as api_router
from dispatch.api.routes_console import router as console_router
from dispatch.api.routes_dispatch import router as dispatch_router
from dispatch.api.routes_reports import router as reports_router
from dispatch.api.routes_snapshot import router as snapshot_router
from dispatch.api.ws import install_handlers
from dispatch.api.ws import router as ws_router
from dispatch.api.ws_live import PositionFeed, install_live_handlers
from dispatch.constants import Keys
from dispatch.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidCallError,
    NotFoundError,
    StoreError,
)
from dispatch.fleet import Fleet
from dispatch.hub import Hub, HubConfig
from dispatch.incidents import CallHandler
from dispatch.intake import Intake
from dispatch.merge import MergePolicy
from dispatch.plans import PlanTable
from dispatch.positions import PositionDesk
from dispatch.reactor import Reactor
from dispatch.response import Responder
from dispatch.services import Services
from dispatch.settings import Settings
from dispatch.signals import SignalDesk
from dispatch.store import AnyRedis, Store
from dispatch.timers import Timers
from dispatch.whistles import WhistleService
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
        hub_config: websocket push tuning (default: ``YISHAO_WS_*`` variables).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A blocking pool: under a burst, a request waits for a free connection (up to
        # redis_pool_timeout_s) instead of failing at once with "Too many connections".
        redis: AnyRedis = (
            RedisCluster.from_url(settings.redis_url, max_connections=settings.redis_pool_size)
            if settings.redis_cluster
            else Redis.from_pool(
                BlockingConnectionPool.from_url(
                    settings.redis_url,
                    max_connections=settings.redis_pool_size,
                    timeout=settings.redis_pool_timeout_s,
                    health_check_interval=30,
                )
            )
        )
        keys = Keys(settings.namespace)
        store = Store(redis, keys)
        plans = PlanTable.load(settings.plans)
        policy = MergePolicy(distance_m=settings.merge_distance_m, window_s=settings.merge_window_s)
        handler = CallHandler(store, plans, policy=policy, clock=clock)
        name = instance_name(settings)
        router = await _load_router(settings)
        fleet = Fleet(store, clock=clock)
        responder = Responder(
            store, fleet, router, clock=clock, stale_after_s=settings.stale_position_s
        )
        timers = Timers(store, clock=clock)
        whistles = WhistleService(
            store,
            fleet,
            responder,
            timers,
            clock=clock,
            ack_timeout_s=settings.whistle_ack_timeout_s,
            auto_assign=settings.auto_assign_whistle,
        )
        signals = SignalDesk(store, clock=clock)
        positions = PositionDesk(store, fleet, responder, signals, clock=clock)
        responder.activation = positions.activate
        svc = Services(
            settings=settings,
            redis=redis,
            store=store,
            plans=plans,
            calls=handler,
            fleet=fleet,
            responder=responder,
            timers=timers,
            whistles=whistles,
            clock=clock,
            instance=name,
            router=router,
            signals=signals,
            positions=positions,
            graph_name=settings.graph.name if settings.graph else None,
        )
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        # The push hub runs on every instance (each serves its own websocket clients).
        svc.hub = Hub(store, config=hub_config or HubConfig(), instance=name)
        install_handlers(svc.hub, svc)
        install_live_handlers(
            svc.hub, positions=positions, signals=signals, fleet=fleet, clock=clock
        )
        feed = PositionFeed(store, svc.hub, fleet, interval_s=settings.position_frame_s)
        tasks.append(asyncio.create_task(svc.hub.run(stop), name="hub"))
        tasks.append(asyncio.create_task(feed.run(stop), name="position-feed"))
        if run_workers:
            svc.reactor = Reactor(
                store,
                responder,
                whistles,
                consumer=name,
                clock=clock,
                auto_whistle=settings.auto_whistle,
                reclaim_idle_ms=settings.reclaim_idle_ms,
            )
            tasks.append(asyncio.create_task(svc.reactor.run(stop), name="reactor"))
            tasks.append(
                asyncio.create_task(
                    timers.run(stop, poll_s=settings.timer_poll_ms / 1000), name="timers"
                )
            )
        if run_workers:
            svc.intake = Intake(
                store,
                handler,
                consumer=name,
                clock=clock,
                batch=settings.intake_batch,
                block_ms=settings.intake_block_ms,
                reclaim_idle_ms=settings.reclaim_idle_ms,
                max_deliveries=settings.max_deliveries,
            )
            tasks.append(asyncio.create_task(svc.intake.run(stop), name="intake"))
        app.state.services = svc
        log.info("yishao %s instance %s serving (redis %s)", __version__, name, _safe_url(settings))
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                try:
                    await asyncio.wait_for(task, timeout=5)
                except TimeoutError:
                    task.cancel()
            await redis.aclose()

    app = FastAPI(
        title="Yishao (一哨群应)",
        version=__version__,
        description="Joint 122/120/119 emergency dispatch with green-wave signal priority.",
        lifespan=lifespan,
    )
    app.include_router(api_router)
    app.include_router(dispatch_router)
    app.include_router(snapshot_router)
    app.include_router(reports_router)
    app.include_router(ws_router)
    app.include_router(console_router)
    _install_error_handlers(app)
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


_STATUS: list[tuple[type[Exception], int]] = [
    (ForbiddenError, 403),
    (AuthError, 401),
    (InvalidCallError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (StoreError, 503),
]


def _install_error_handlers(app: FastAPI) -> None:
    for exc_type, status in _STATUS:

        async def handler(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

        app.add_exception_handler(exc_type, handler)
