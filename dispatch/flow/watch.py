"""The intake watch: reads the intake group's backlog, keeps the latest reading for readiness
and backpressure, and raises or clears the lag alarm (an event and a log line) on a change.

Every instance runs one; the alarm is one hash field guarded in the commit, so however many
instances see the backlog pass the threshold, the alarm is raised (and cleared) once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dispatch.constants import CONSUMER_GROUP
from dispatch.core.backlog import AlarmChange, Backlog, BacklogLimits, alarm_change
from dispatch.errors import StoreError
from dispatch.events import EventType, IntakeLag
from dispatch.infra.store import Store, VersionConflict

log = logging.getLogger(__name__)

ALARM = "intake_lag"


@dataclass(frozen=True, slots=True)
class Reading:
    backlog: Backlog
    at: float  # time.monotonic() of the reading


class IntakeWatch:
    """Watches the intake backlog; :meth:`run` as a task, :meth:`sample` in tests."""

    def __init__(
        self,
        store: Store,
        *,
        limits: BacklogLimits,
        clock: Callable[[], datetime],
        instance: str,
        interval_s: float = 1.0,
    ) -> None:
        self.store = store
        self.limits = limits
        self.clock = clock
        self.instance = instance
        self.interval_s = interval_s
        self.last: Reading | None = None
        self.alarm_raised = False

    async def read(self) -> Backlog:
        """The intake group's backlog now.

        Raises:
            StoreError: Redis failed.
        """
        calls = self.store.keys.calls
        pending, lag = await self.store.group_backlog(calls, CONSUMER_GROUP)
        if pending is None:
            # No consumer has created the group yet: it will start at the stream's beginning.
            pending, lag = 0, await self.store.stream_length(calls)
        backlog = Backlog(pending=pending, lag=lag)
        self.last = Reading(backlog, time.monotonic())
        return backlog

    async def current(self, *, max_age_s: float | None = None) -> Backlog:
        """The latest reading if younger than ``max_age_s`` (default two intervals), else a new one.

        Raises:
            StoreError: Redis failed.
        """
        age = 2 * self.interval_s if max_age_s is None else max_age_s
        last = self.last
        if last is not None and time.monotonic() - last.at <= age:
            return last.backlog
        return await self.read()

    async def sample(self) -> AlarmChange:
        """Read the backlog and raise or clear the alarm if it crossed a threshold.

        Raises:
            StoreError: Redis failed.
        """
        backlog = await self.read()
        keys = self.store.keys
        (since,) = await self.store.hash_fields(keys.alarms, [ALARM])
        self.alarm_raised = since is not None
        change = alarm_change(self.alarm_raised, backlog, self.limits)
        if change is AlarmChange.KEEP:
            return change
        now = self.clock()
        payload = IntakeLag(
            backlog=backlog.size,
            pending=backlog.pending,
            lag=backlog.lag,
            threshold=self.limits.alarm if change is AlarmChange.RAISE else self.limits.clear_below,
            instance=self.instance,
        )
        tx = self.store.tx()
        if change is AlarmChange.RAISE:
            tx.expect_field(keys.alarms, ALARM, "")
            tx.hset(keys.alarms, {ALARM: now.isoformat()})
            tx.event(EventType.INTAKE_LAG_ALARM, payload, actor=f"instance:{self.instance}", ts=now)
        else:
            tx.expect_field(keys.alarms, ALARM, since or "")
            tx.hdel(keys.alarms, ALARM)
            tx.event(
                EventType.INTAKE_LAG_CLEARED, payload, actor=f"instance:{self.instance}", ts=now
            )
        try:
            await self.store.commit(tx)
        except VersionConflict:
            # Another instance raised (or cleared) it first: nothing left to do.
            return AlarmChange.KEEP
        self.alarm_raised = change is AlarmChange.RAISE
        if self.alarm_raised:
            log.error(
                "intake lag alarm: %d entries owed (pending %s, lag %s), threshold %d",
                backlog.size, backlog.pending, backlog.lag, self.limits.alarm,
            )  # fmt: skip
        else:
            log.warning("intake lag alarm cleared: %d entries owed", backlog.size)
        return change

    async def run(self, stop: asyncio.Event) -> None:
        """Sample every ``interval_s`` until ``stop`` is set; Redis outages are waited out."""
        while not stop.is_set():
            try:
                await self.sample()
            except StoreError as exc:
                log.warning("intake watch: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
