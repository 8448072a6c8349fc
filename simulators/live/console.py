"""The live drill's joint console: dispatchers assigning units and sounding the whistle.

One dispatcher websocket (the joint screen of 122, 120 and 119) hears every incident event.
For each recommendation the service publishes, the console assigns the suggested units the
incident still needs (over REST, as a dispatcher of the incident's first centre), and asks for
a fresh recommendation a while later while a need is unmet. A whistle-eligible incident is
sounded by the centre the service's own rule names (:func:`dispatch.core.whistle.sounding_centre`):
at once when that centre's caller got through, else after ``whistle_wait_s`` (joint intake shows
120 or 119 an incident only 122 heard of; their own caller may still get through first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError

from dispatch.core.whistle import SOUNDING_CENTRES, sounding_centre
from dispatch.models import CENTRE_AGENCY, Agency, Incident, IncidentStatus, Role

from ..calls import ScheduledCall
from .config import LiveConfig
from .field import FieldClock, parse_ts
from .net import Message, Tokens
from .report import IncidentLog

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]


@dataclass(frozen=True, slots=True)
class PostedCall:
    """A scenario call as the drill posted it (to tell which incident came of which event)."""

    scheduled: ScheduledCall
    key: str
    at: datetime
    at_s: float


class Console:
    """The joint console (see the module docstring).

    Args:
        http: the drill's REST client (base URL set).
        tokens: mints the dispatchers' tokens.
        config: the drill's tuning (redispatch, whistle wait).
        admin: headers of the drill's admin (reads incidents).
        clock: the field clock (event times as field seconds).
        now_s: the current field second.
        spawn: runs a coroutine as a task of the drill (the drill waits for its tasks).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: Tokens,
        config: LiveConfig,
        *,
        admin: dict[str, str],
        clock: FieldClock,
        now_s: Callable[[], float],
        spawn: Spawn,
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.cfg = config
        self.admin = admin
        self.clock = clock
        self.now_s = now_s
        self.spawn = spawn
        self.posted: dict[str, PostedCall] = {}
        self.incidents: dict[str, IncidentLog] = {}
        self.assign_errors: list[str] = []
        self._need_type: dict[tuple[str, str], str] = {}
        self._tries: dict[str, int] = {}
        self._sounded: set[str] = set()
        self._whistle_waits: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def dispatcher(self, agency: Agency) -> dict[str, str]:
        """Headers of the agency's console dispatcher."""
        return self.tokens.bearer(Role.DISPATCHER, agency, f"drill-{agency.value}-console")

    def event_s(self, msg: Message) -> float:
        """The field second of an event (its ``ts``), else now."""
        ts = msg.get("ts")
        if isinstance(ts, str):
            with contextlib.suppress(ValueError):
                return self.clock.seconds(parse_ts(ts))
        return self.now_s()

    # -- what the screen shows -------------------------------------------------------------

    def on_event(self, msg: Message) -> None:
        """One event of the console's websocket (must not block: slow work is spawned)."""
        kind = str(msg.get("type"))
        data = msg.get("data") or {}
        incident_id = msg.get("incident_id")
        if not isinstance(incident_id, str):
            return
        if kind in ("incident.created", "incident.merged"):
            call = data.get("call") or {}
            posted = self.posted.get(f"{call.get('centre')}:{call.get('call_id')}")
            if posted is not None and incident_id not in self.incidents:
                self.incidents[incident_id] = IncidentLog(
                    incident_id=incident_id,
                    source=posted.scheduled.source,
                    first_call_at=posted.at,
                    first_call_s=posted.at_s,
                )
            if posted is not None:
                self.incidents[incident_id].calls += 1
        found = self.incidents.get(incident_id)
        if found is None:
            return
        if kind.startswith("incident.") and isinstance(data.get("incident"), dict):
            found.incident = data["incident"]
        if kind == "incident.recommended":
            self.spawn(self._dispatch(incident_id, data.get("recommendations") or {}))
        elif kind == "whistle.sounded" and found.whistle_id is None:
            found.whistle_id = str((data.get("whistle") or {}).get("id") or "") or None
            found.whistle_s = self.event_s(msg)
        elif kind == "whistle.alert":
            found.alerts += 1
        elif kind == "greenwave.enabled" and found.greenwave_s is None:
            found.greenwave_s = self.event_s(msg)

    # -- dispatching -----------------------------------------------------------------------

    def _lock(self, incident_id: str) -> asyncio.Lock:
        return self._locks.setdefault(incident_id, asyncio.Lock())

    async def _incident(self, incident_id: str) -> Incident | None:
        r = await self.http.get(f"/api/incidents/{incident_id}", headers=self.admin)
        if r.status_code != 200:
            return None
        data: dict[str, Any] = r.json()
        self.incidents[incident_id].incident = data
        try:
            return Incident.model_validate(data)
        except ValidationError as exc:
            log.warning("incident %s: unreadable: %s", incident_id, exc)
            return None

    async def _dispatch(self, incident_id: str, recs: dict[str, Any]) -> None:
        async with self._lock(incident_id):
            incident = await self._incident(incident_id)
            if incident is None or incident.status is IncidentStatus.CLOSED:
                return
            await self._maybe_whistle(incident)
            short = await self._assign(incident, recs)
        tries = self._tries.get(incident_id, 0)
        if short and tries < self.cfg.redispatch_tries:
            self._tries[incident_id] = tries + 1
            await asyncio.sleep(self.cfg.redispatch_after_s)
            again = await self.http.get(
                f"/api/incidents/{incident_id}/recommendations", headers=self.admin
            )
            if again.status_code == 200:
                await self._dispatch(incident_id, again.json())

    async def _assign(self, incident: Incident, recs: dict[str, Any]) -> bool:
        """Assign the suggested units the incident still needs; True when some need is unmet."""
        have: dict[tuple[str, str], int] = {}
        for a in incident.assignments:
            unit_type = self._need_type.get((incident.id, a.unit_id), a.unit_type.value)
            key = (a.agency.value, unit_type)
            have[key] = have.get(key, 0) + 1
        unmet = {
            (n.agency.value, n.unit_type.value): n.count
            - have.get((n.agency.value, n.unit_type.value), 0)
            for n in incident.needs
        }
        found = self.incidents[incident.id]
        for rec in recs.get("agencies", []):
            # Each centre assigns its own units (the service refuses another agency's).
            headers = self.dispatcher(Agency(rec["agency"]))
            by_id = {c["unit_id"]: c for c in rec.get("candidates", [])}
            for unit_id in rec.get("suggested", []):
                cand = by_id.get(unit_id)
                if cand is None:
                    continue
                need = cand.get("substitute_for") or cand["unit_type"]
                key = (rec["agency"], need)
                if unmet.get(key, 0) <= 0:
                    continue
                r = await self.http.post(
                    f"/api/incidents/{incident.id}/assignments",
                    json={"unit_ids": [unit_id]},
                    headers=headers,
                )
                if r.status_code == 201:
                    unmet[key] -= 1
                    self._need_type[(incident.id, unit_id)] = need
                else:  # 409: already assigned (another console, an earlier recommendation)
                    self.assign_errors.append(f"{unit_id}: {r.status_code} {r.text[:200]}")
                    log.info(
                        "assign %s to %s: %s %s", unit_id, incident.id, r.status_code, r.text[:200]
                    )
            for miss in rec.get("missing", []):
                found.missing.add(str(miss["unit_type"]))
        if any(v > 0 for v in unmet.values()):
            return True
        found.missing.clear()
        return False

    # -- the whistle -----------------------------------------------------------------------

    async def _maybe_whistle(self, incident: Incident) -> None:
        if (
            not incident.whistle_eligible
            or incident.whistle_id
            or incident.id in self._sounded
            or sounding_centre(incident) is None
        ):
            return
        if any(call.centre in SOUNDING_CENTRES for call in incident.calls):
            await self._sound(incident)
        elif incident.id not in self._whistle_waits:
            # Only 122 heard of it: the joint intake shows it to 120 (or 119), who sound it
            # unless their own caller gets through first.
            self._whistle_waits.add(incident.id)
            self.spawn(self._sound_later(incident.id))

    async def _sound_later(self, incident_id: str) -> None:
        await asyncio.sleep(self.cfg.whistle_wait_s)
        async with self._lock(incident_id):
            incident = await self._incident(incident_id)
            if incident is None or incident.whistle_id or incident_id in self._sounded:
                return
            await self._sound(incident)

    async def _sound(self, incident: Incident) -> None:
        centre = sounding_centre(incident)
        if centre is None:
            return
        r = await self.http.post(
            f"/api/incidents/{incident.id}/whistle",
            json={},
            headers=self.dispatcher(CENTRE_AGENCY[centre]),
        )
        if r.status_code in (201, 409):  # 409: already sounded (the service's auto-whistle)
            self._sounded.add(incident.id)
        else:
            log.warning("whistle for %s: %s %s", incident.id, r.status_code, r.text[:200])
