"""The running service's parts, opened in the app's lifespan and shared by the edge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime


from dispatch.incidents import CallHandler
from dispatch.intake import Intake
from dispatch.plans import PlanTable
from dispatch.settings import Settings
from dispatch.store import AnyRedis, Store


@dataclass
class Services:
    settings: Settings
    redis: AnyRedis
    store: Store
    plans: PlanTable
    calls: CallHandler
    clock: Callable[[], datetime]
    instance: str
    intake: Intake | None = None
    graph_name: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
