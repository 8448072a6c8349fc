"""The running service's parts, wired once in dependency order and shared by the edge.

:func:`build` is the one place that knows how the flow's steps depend on each other; the
app's lifespan calls it with the Redis client and the road graph, and the tests call it
with their own clock. Nothing is patched after construction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from dispatch.codec import BBox, CallLimits, parse_area
from dispatch.core.merge import MergePolicy
from dispatch.core.plans import PlanTable
from dispatch.core.referrals import MediationBody, bodies_from_list, parse_bodies
from dispatch.errors import ConfigError
from dispatch.flow.access import Access
from dispatch.flow.assign import AssignmentRecords, Assignments
from dispatch.flow.compounds import CompoundBook
from dispatch.flow.fleet import Fleet
from dispatch.flow.greenwave import GreenWave
from dispatch.flow.intake import Intake
from dispatch.flow.merge import JointIntake
from dispatch.flow.pivots import PivotDesk
from dispatch.flow.property import PropertyDesk
from dispatch.flow.reactor import Reactor
from dispatch.flow.recommend import Recommender
from dispatch.flow.referrals import ReferralDesk
from dispatch.flow.track import Tracking
from dispatch.flow.watch import IntakeWatch
from dispatch.flow.whistle import WhistleDesk
from dispatch.infra.store import Store
from dispatch.infra.timers import Timers
from dispatch.interop.j2735 import DerivedIntersections, IntersectionMap, intersections_from_list
from dispatch.push.hub import Hub
from dispatch.records.service import Records
from dispatch.settings import HubConfig, Settings
from routing import Router


@dataclass(frozen=True)
class Services:
    """Every step of a call's way, as this instance runs it."""

    settings: Settings
    store: Store
    clock: Callable[[], datetime]
    instance: str
    plans: PlanTable
    fleet: Fleet
    joint: JointIntake
    intake: Intake
    recommender: Recommender
    records: AssignmentRecords
    greenwave: GreenWave
    assignments: Assignments
    timers: Timers
    whistles: WhistleDesk
    reactor: Reactor
    tracking: Tracking
    hub: Hub
    access: Access
    limits: CallLimits
    compounds: CompoundBook
    property_desk: PropertyDesk
    referrals: ReferralDesk
    pivots: PivotDesk
    watch: IntakeWatch
    router: Router | None = None
    # The system of record (None without YISHAO_DATABASE_URL).
    record: Records | None = None
    # How intersections are numbered in J2735 (signal clients on ?wire=j2735).
    j2735_intersections: IntersectionMap = field(default_factory=DerivedIntersections)

    @property
    def graph_name(self) -> str | None:
        return self.settings.graph.name if self.settings.graph else None

    @property
    def graph_ok(self) -> bool:
        """The road graph is loaded, or this is not a production instance (which needs one)."""
        return self.router is not None or self.settings.env != "prod"


def build(
    settings: Settings,
    store: Store,
    *,
    router: Router | None,
    clock: Callable[[], datetime],
    instance: str,
    plans: PlanTable | None = None,
    hub_config: HubConfig | None = None,
    timer_lease_s: float | None = None,
    pool: asyncpg.Pool | None = None,
) -> Services:
    """Wire the service's parts (no I/O: nothing runs until the caller starts the loops)."""
    plans = plans or PlanTable.load(settings.plans)
    limits = CallLimits(
        area=parse_area(settings.service_area) or _graph_area(router),
        max_age_s=settings.call_max_age_s,
        max_ahead_s=settings.call_max_ahead_s,
    )
    policy = MergePolicy(distance_m=settings.merge_distance_m, window_s=settings.merge_window_s)
    stale = settings.stale_position_s
    fleet = Fleet(store, clock=clock)
    compounds = CompoundBook(store, clock=clock, gate_distance_m=settings.compound_gate_distance_m)
    referrals = ReferralDesk(
        store,
        mediation_bodies(settings),
        clock=clock,
        due_after=timedelta(hours=settings.referral_due_h),
        repeat_window=timedelta(hours=settings.referral_repeat_h),
        repeat_radius_m=settings.referral_repeat_m,
    )
    property_desk = PropertyDesk(store, compounds, clock=clock)
    joint = JointIntake(
        store,
        plans,
        policy=policy,
        clock=clock,
        compounds=compounds,
        referrals=referrals,
        auto_join=property_desk if settings.property_auto_join else None,
    )
    intake = Intake(
        store,
        joint,
        consumer=instance,
        clock=clock,
        limits=limits,
        batch=settings.intake_batch,
        block_ms=settings.intake_block_ms,
        reclaim_idle_ms=settings.reclaim_idle_ms,
        max_deliveries=settings.max_deliveries,
    )
    timers = Timers(
        store,
        clock=clock,
        lease_s=settings.timer_lease_s if timer_lease_s is None else timer_lease_s,
        heartbeat_s=settings.timer_heartbeat_s,
    )
    pivots = PivotDesk(store, fleet, timers, clock=clock)
    recommender = Recommender(store, fleet, router, clock=clock, stale_after_s=stale, pivots=pivots)
    records = AssignmentRecords(store)
    greenwave = GreenWave(store, fleet, clock=clock)
    assignments = Assignments(
        store, fleet, records, greenwave, router, clock=clock, stale_after_s=stale
    )
    whistles = WhistleDesk(
        store,
        fleet,
        assignments,
        recommender,
        timers,
        clock=clock,
        ack_timeout_s=settings.whistle_ack_timeout_s,
        auto_assign=settings.auto_assign_whistle,
    )
    reactor = Reactor(
        store,
        recommender,
        whistles,
        consumer=instance,
        clock=clock,
        auto_whistle=settings.auto_whistle,
        reclaim_idle_ms=settings.reclaim_idle_ms,
    )
    tracking = Tracking(store, fleet, records, greenwave, router, clock=clock)
    hub = Hub(store, config=hub_config or settings.hub_config(), instance=instance)
    return Services(
        settings=settings,
        store=store,
        clock=clock,
        instance=instance,
        plans=plans,
        fleet=fleet,
        joint=joint,
        intake=intake,
        recommender=recommender,
        records=records,
        greenwave=greenwave,
        assignments=assignments,
        timers=timers,
        whistles=whistles,
        reactor=reactor,
        tracking=tracking,
        hub=hub,
        access=Access(store, settings, clock=clock),
        limits=limits,
        compounds=compounds,
        property_desk=property_desk,
        referrals=referrals,
        pivots=pivots,
        watch=IntakeWatch(
            store,
            limits=settings.backlog_limits(),
            clock=clock,
            instance=instance,
            interval_s=settings.intake_watch_s,
        ),
        router=router,
        record=None
        if pool is None
        else Records.build(settings, store, pool, instance=instance, clock=clock),
        j2735_intersections=j2735_intersections(settings),
    )


def j2735_intersections(settings: Settings) -> IntersectionMap:
    """The J2735 numbering: ``YISHAO_J2735_INTERSECTIONS``'s, else the derived one.

    Raises:
        ConfigError: the file cannot be read or is not a valid list.
    """
    if settings.j2735_intersections is None:
        return DerivedIntersections()
    try:
        data = json.loads(settings.j2735_intersections.read_text(encoding="utf-8"))
        return intersections_from_list(data)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"j2735_intersections: {exc}") from exc


def mediation_bodies(settings: Settings) -> dict[str, MediationBody]:
    """The mediation bodies disputes may be referred to: the file's, else the setting's.

    Raises:
        ConfigError: the file cannot be read or is not a list of {id, name}.
    """
    try:
        if settings.mediation_file is not None:
            data = json.loads(settings.mediation_file.read_text(encoding="utf-8"))
            return bodies_from_list(data)
        return parse_bodies(settings.mediation_bodies)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"mediation bodies: {exc}") from exc


# Calls a little beyond the mapped roads are still the district's (a river bank, a hillside).
AREA_MARGIN_DEG = 0.05


def _graph_area(router: Router | None) -> BBox | None:
    """The road graph's extent, widened by about 5 km (None without a graph)."""
    if router is None:
        return None
    g = router.graph
    m = AREA_MARGIN_DEG
    return (
        float(g.node_lon.min()) - m,
        float(g.node_lat.min()) - m,
        float(g.node_lon.max()) + m,
        float(g.node_lat.max()) + m,
    )
