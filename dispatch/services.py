"""The running service's parts, opened in the app's lifespan and shared by the edge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dispatch.fleet import Fleet
from dispatch.hub import Hub
from dispatch.incidents import CallHandler
from dispatch.intake import Intake
from dispatch.plans import PlanTable
from dispatch.positions import PositionDesk
from dispatch.reactor import Reactor
from dispatch.response import Responder
from dispatch.settings import Settings
from dispatch.signals import SignalDesk
from dispatch.store import AnyRedis, Store
from dispatch.timers import Timers
from dispatch.whistles import WhistleService
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
