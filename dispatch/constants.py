"""Stream, key and group names: the one place that knows how Yishao lays out Redis.

External streams keep plain names because other systems write and read them:

- ``{ns}:calls``       call events from the 122/120/119 call-taking systems (input)
- ``{ns}:calls:dead``  entries that failed validation or processing, with the reason

Everything the dispatch core commits atomically (incident state, the call-id index
and the event log) shares one Redis Cluster hash tag, ``{<ns>}``, so a Lua commit that
touches several of them is legal on a cluster: the event log is ``{yishao}:events``
(the braces are the hash tag), an incident ``{yishao}:incident:<id>``. One
deployment (one district) lives on one slot; a province-wide cluster spreads
districts, each with its own namespace, across shards.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "yishao"
# Consumer groups: call intake on the calls stream, reactions on the event log.
CONSUMER_GROUP = "dispatch"
REACTOR_GROUP = "reactor"
# About 50 days of a district like Fuyang (a few hundred incidents a day, ~20 events each);
# the stream is the live audit and replay window, not the archive.
EVENT_STREAM_MAXLEN = 250_000
CALL_STREAM_MAXLEN = 1_000_000
# Every fix of every unit, for the live map: 2,000 units at 1 Hz is 100 s of history.
POSITION_STREAM_MAXLEN = 200_000


@dataclass(frozen=True, slots=True)
class Keys:
    """Redis key names for one namespace (one deployment, one cluster slot for state)."""

    ns: str = DEFAULT_NAMESPACE

    @property
    def tag(self) -> str:
        """The hash tag shared by every key the core commits atomically."""
        return "{" + self.ns + "}"

    # -- input streams (plain names, cluster slot of their own) ------------------
    @property
    def calls(self) -> str:
        return f"{self.ns}:calls"

    @property
    def calls_dead(self) -> str:
        return f"{self.ns}:calls:dead"

    # -- committed state (one hash tag) ------------------------------------------
    @property
    def events(self) -> str:
        return f"{self.tag}:events"

    def incident(self, incident_id: str) -> str:
        return f"{self.tag}:incident:{incident_id}"

    def incident_events(self, incident_id: str) -> str:
        """List of the event ids of one incident: its audit trail."""
        return f"{self.tag}:incident:{incident_id}:events"

    @property
    def intake_errors(self) -> str:
        """Hash stream id -> last processing error, for the dead-letter reason."""
        return f"{self.tag}:intake:errors"

    @property
    def incident_index(self) -> str:
        """Sorted set of incident ids scored by creation time (epoch seconds)."""
        return f"{self.tag}:incidents"

    @property
    def open_incidents(self) -> str:
        """Sorted set of incident ids not yet closed, scored by last call time."""
        return f"{self.tag}:incidents:open"

    @property
    def open_geo(self) -> str:
        """Geo set of every open incident: no longer written (see :meth:`open_geo_bucket`);
        closing still removes an incident from it, for state written before the buckets."""
        return f"{self.tag}:incidents:geo"

    def open_geo_bucket(self, bucket: int) -> str:
        """Geo set of the open incidents whose last call fell in one time bucket
        (:mod:`dispatch.core.buckets`): joint intake's candidate search."""
        return f"{self.tag}:incidents:geo:{bucket}"

    @property
    def alarms(self) -> str:
        """Hash alarm name -> when it was raised (ISO time): one alarm across instances."""
        return f"{self.tag}:alarms"

    @property
    def cell_versions(self) -> str:
        """Hash grid-cell -> change counter; guards merge decisions against races."""
        return f"{self.tag}:cells"

    @property
    def call_index(self) -> str:
        """Hash ``centre:call_id`` -> incident id: the idempotency index of calls."""
        return f"{self.tag}:callids"

    @property
    def call_conflicts(self) -> str:
        """Hash stream id of a conflicting duplicate -> call key: each conflict recorded once."""
        return f"{self.tag}:callids:conflicts"

    @property
    def incident_seq(self) -> str:
        return f"{self.tag}:seq:incident"

    def unit(self, unit_id: str) -> str:
        return f"{self.tag}:unit:{unit_id}"

    @property
    def fleet_version(self) -> str:
        """Hash with one counter, bumped by every unit write (cache validation)."""
        return f"{self.tag}:fleet:version"

    @property
    def unit_index(self) -> str:
        return f"{self.tag}:units"

    def hospital(self, hospital_id: str) -> str:
        return f"{self.tag}:hospital:{hospital_id}"

    @property
    def hospital_index(self) -> str:
        return f"{self.tag}:hospitals"

    @property
    def roster_entries(self) -> str:
        """Hash ``date:agency`` -> roster entry JSON."""
        return f"{self.tag}:roster:entries"

    @property
    def roster_rules(self) -> str:
        """Hash ``agency:start`` -> rotation rule JSON."""
        return f"{self.tag}:roster:rules"

    def compound(self, compound_id: str) -> str:
        return f"{self.tag}:compound:{compound_id}"

    @property
    def compound_index(self) -> str:
        """Set of compound ids."""
        return f"{self.tag}:compounds"

    @property
    def compounds_version(self) -> str:
        """An object-like hash whose ``v`` is bumped by every compound write (cache check)."""
        return f"{self.tag}:compounds:version"

    def referral(self, referral_id: str) -> str:
        return f"{self.tag}:referral:{referral_id}"

    @property
    def referral_index(self) -> str:
        """Sorted set of referral ids scored by referral time (epoch seconds)."""
        return f"{self.tag}:referrals"

    @property
    def referral_seq(self) -> str:
        return f"{self.tag}:seq:referral"

    def pivot_plan(self, seq: int) -> str:
        """One stored pivot-post plan (object: version and JSON), by its sequence number."""
        return f"{self.tag}:pivots:plan:{seq}"

    @property
    def pivot_plans(self) -> str:
        """Sorted set of plan sequence numbers scored by when each was stored (epoch s)."""
        return f"{self.tag}:pivots:plans"

    @property
    def pivot_plan_record(self) -> str:
        """Hash ``seq`` -> :class:`~dispatch.core.pivot_plan.PlanRecord` JSON."""
        return f"{self.tag}:pivots:records"

    @property
    def pivot_postings(self) -> str:
        """Hash unit id -> :class:`~dispatch.core.pivot_plan.Posting` JSON."""
        return f"{self.tag}:pivots:postings"

    def whistle(self, whistle_id: str) -> str:
        return f"{self.tag}:whistle:{whistle_id}"

    @property
    def open_whistles(self) -> str:
        return f"{self.tag}:whistles:open"

    @property
    def timers(self) -> str:
        """Sorted set of timer ids scored by due time (epoch seconds)."""
        return f"{self.tag}:timers"

    @property
    def timers_inflight(self) -> str:
        """Sorted set of claimed timer ids scored by lease expiry (epoch seconds)."""
        return f"{self.tag}:timers:inflight"

    @property
    def timer_payloads(self) -> str:
        return f"{self.tag}:timers:payload"

    @property
    def positions(self) -> str:
        """Hash unit id -> latest position JSON."""
        return f"{self.tag}:positions"

    @property
    def position_stream(self) -> str:
        """Capped stream of every fix, read by each instance for the live map."""
        return f"{self.tag}:positions:stream"

    def assignment(self, unit_id: str) -> str:
        """A unit's current assignment record (routes, green-wave plans)."""
        return f"{self.tag}:assignment:{unit_id}"

    @property
    def greenwave_incidents(self) -> str:
        """Set of incident ids whose units have green-wave protection on."""
        return f"{self.tag}:greenwave:incidents"

    def greenwave(self, intersection_id: str) -> str:
        return f"{self.tag}:greenwave:{intersection_id}"

    @property
    def revoked(self) -> str:
        """Hash ``jti:<id>`` / ``sub:<name>`` / ``role:<role>`` -> revocation JSON."""
        return f"{self.tag}:auth:revoked"

    def auth_failures(self, client: str) -> str:
        """Counter of failed sign-ins from one address (expires with its window)."""
        return f"{self.tag}:auth:failures:{client}"

    def auth_lock(self, client: str) -> str:
        """Set while an address is locked out (expires with the lockout)."""
        return f"{self.tag}:auth:lock:{client}"

    def report(self, drill_id: str) -> str:
        """Hash of one drill report: info, json, html."""
        return f"{self.tag}:report:{drill_id}"

    @property
    def report_index(self) -> str:
        return f"{self.tag}:reports"

    # -- standards adapters (dispatch.interop) -------------------------------------
    def cap_alert(self, alert_id: str) -> str:
        """One CAP alert thread: its messages and their XML."""
        return f"{self.tag}:cap:{alert_id}"

    @property
    def cap_alerts(self) -> str:
        """Sorted set of CAP alert ids scored by their latest message (epoch seconds)."""
        return f"{self.tag}:cap:alerts"

    def incident_cap(self, incident_id: str) -> str:
        """Set of the CAP alert ids of one incident."""
        return f"{self.tag}:incident:{incident_id}:cap"

    @property
    def eido_received(self) -> str:
        """Hash ``<EIDO id>|<call id>`` -> call stream id: EIDOs already taken as calls."""
        return f"{self.tag}:eido:received"
