"""The running service's parts, opened in the app's lifespan and shared by the edge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dispatch.core.plans import PlanTable
from dispatch.flow.assign import Responder
from dispatch.flow.fleet import Fleet
from dispatch.flow.greenwave import SignalDesk
from dispatch.flow.intake import Intake
from dispatch.flow.merge import CallHandler
from dispatch.flow.recommend import Reactor
from dispatch.flow.track import PositionDesk
from dispatch.flow.whistle import WhistleService
from dispatch.infra.store import AnyRedis, Store
from dispatch.infra.timers import Timers
from dispatch.push.hub import Hub
from dispatch.settings import Settings
from routing import Router


@dataclass
class Services:
    settings: Settings
    redis: AnyRedis
    store: Store
    plans: PlanTable
    calls: CallHandler
    fleet: Fleet
    responder: Responder
    timers: Timers
    whistles: WhistleService
    clock: Callable[[], datetime]
    instance: str
    signals: SignalDesk | None = None
    positions: PositionDesk | None = None
    router: Router | None = None
    intake: Intake | None = None
    reactor: Reactor | None = None
    graph_name: str | None = None
    hub: Hub | None = None
